// The socket.io admin UI (docs/admin-ui.md): with `admin_ui.enabled` the server speaks the
// `@socket.io/admin-ui` server protocol on /admin-ui, admins only, the admin JWT as the
// password. Checked twice: on the wire with socket.io-client (session, config, the socket
// list, live changes, client events, disconnects, refusals), and with the UI itself: the
// static build from the npm package, served by a local file server, in headless Chromium,
// which lists this server's sockets, rooms, events and node and ends a socket. Off by
// default.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { io } from "socket.io-client";
import { startProduct, signedCall, hsToken, once, collect, until, delay } from "./common.mjs";

const SECRET = "admin-ui-jwt-secret-padded-to-at-least-32-bytes";
const HOOK = "admin-ui-hook-secret-padded-to-at-least-32-bytes";
const CHROMIUM = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].find((p) => existsSync(p));
const here = path.dirname(fileURLToPath(import.meta.url));
const DIST = path.resolve(here, "../node_modules/@socket.io/admin-ui/ui/dist");
const TYPES = { ".html": "text/html", ".js": "text/javascript", ".css": "text/css", ".png": "image/png", ".svg": "image/svg+xml" };
let srv;
let files;
let uiUrl;

/** The UI's static build, served as files from 127.0.0.1 (nothing else). */
function serveUi() {
  const server = http.createServer(async (req, res) => {
    const rel = decodeURIComponent(new URL(req.url, "http://x").pathname).replace(/\/$/, "/index.html");
    const file = path.join(DIST, rel);
    if (!file.startsWith(DIST + path.sep)) return res.writeHead(403).end();
    try {
      res.writeHead(200, { "content-type": TYPES[path.extname(file)] || "application/octet-stream" }).end(await readFile(file));
    } catch {
      res.writeHead(404).end();
    }
  });
  return new Promise((resolve) => server.listen(0, "127.0.0.1", () => resolve(server)));
}

const admin = () => hsToken(SECRET, "root", { role: "admin" });
function user(name, transports = ["websocket"]) {
  const s = io(srv.url, { forceNew: true, reconnection: false, transports, auth: { token: hsToken(SECRET, name) } });
  return once(s, "connect", 5000).then(() => s);
}
/** A UI socket, as the UI's login form makes it; collects everything it is told. */
async function uiSocket(auth) {
  const s = io(`${srv.url}/admin-ui`, { forceNew: true, reconnection: false, transports: ["websocket"], auth });
  const told = [];
  s.onAny((event, ...args) => told.push([event, ...args]));
  await once(s, "connect", 5000);
  return { s, told, all: (event) => told.filter(([e]) => e === event).map(([, ...args]) => args) };
}

before(async () => {
  if (!existsSync(DIST)) throw new Error(`${DIST} missing: npm ci in tests/ installs @socket.io/admin-ui`);
  files = await serveUi();
  uiUrl = `http://127.0.0.1:${files.address().port}`;
  srv = await startProduct({ JWT_SECRET: SECRET, WEBHOOK_SECRET: HOOK, RT__ADMIN_UI__ENABLED: "true", CLIENT_URL: uiUrl });
  for (const [u, role] of [["root", "admin"], ["alice", "user"], ["bob", "user"], ["carol", "user"]]) {
    assert.equal((await signedCall(srv.url, HOOK, "PUT", `/users/${u}`, { name: u, email: `${u}@example.com`, role, isActive: true })).status, 200);
  }
  assert.equal((await signedCall(srv.url, HOOK, "PUT", "/rooms/lobby", { name: "Lobby", isPublic: true })).status, 200);
});
after(async () => {
  await srv?.stop();
  files?.close();
});

test("off by default: no /admin-ui namespace", async () => {
  const plain = await startProduct({ JWT_SECRET: SECRET });
  try {
    const s = io(`${plain.url}/admin-ui`, { forceNew: true, reconnection: false, transports: ["websocket"], auth: { password: admin() } });
    assert.equal((await once(s, "connect_error", 5000))[0].message, "Invalid namespace");
    s.close();
  } finally {
    await plain.stop();
  }
});

test("admins only: a wrong password, a user's token and no credentials are refused", async () => {
  for (const [auth, code] of [
    [{ username: "admin", password: "not-a-token" }, "TOKEN_INVALID"],
    [{ username: "admin", password: hsToken(SECRET, "alice") }, "FORBIDDEN"],
    [{ username: "admin", password: hsToken(SECRET, "alice", { role: "admin" }) }, "FORBIDDEN"],
    [{}, "AUTH_REQUIRED"],
  ]) {
    const s = io(`${srv.url}/admin-ui`, { forceNew: true, reconnection: false, transports: ["websocket"], auth });
    assert.equal((await once(s, "connect_error", 5000))[0].data.code, code, JSON.stringify(auth));
    s.close();
  }
});

test("the protocol: session, config, every socket with its rooms, live changes, client events, stats, disconnects", async () => {
  const alice = await user("alice");
  assert.equal((await alice.timeout(3000).emitWithAck("room:join", "lobby")).success, true);
  const ui = await uiSocket({ username: "admin", password: admin() });
  await until(() => ui.all("all_sockets").length === 1 && ui.all("server_stats").length >= 1, 5000, "the first look");
  assert.deepEqual(ui.all("session"), [[admin()]], "the session to reconnect with is the token");
  assert.deepEqual(ui.all("config")[0][0].supportedFeatures.sort(), ["AGGREGATED_EVENTS", "ALL_EVENTS", "DISCONNECT", "MDISCONNECT"]);
  const [sockets] = ui.all("all_sockets")[0];
  const a = sockets.find((s) => s.id === alice.id);
  assert.equal(a.nsp, "/");
  assert.equal(a.transport, "websocket");
  assert.deepEqual(a.data, { userId: "alice" });
  assert.deepEqual([...a.rooms].sort(), [alice.id, "room:lobby", "user:alice"].sort());
  assert.equal(a.handshake.address, "127.0.0.1");
  assert.equal(typeof a.handshake.issued, "number");
  assert.equal(typeof a.clientId, "string");
  assert.ok(sockets.some((s) => s.id === ui.s.id && s.nsp === "/admin-ui"), "the UI's own socket is listed");
  const [stats] = ui.all("server_stats")[0];
  assert.match(stats.serverId, /^node-/);
  assert.ok(stats.namespaces.some((n) => n.name === "/" && n.socketsCount >= 1));
  assert.ok(stats.namespaces.some((n) => n.name === "/notifications"), "every namespace, empty ones too");

  // live: a new socket, a room joined, a client event, a socket gone
  const bob = await user("bob", ["polling"]);
  await until(() => ui.all("socket_connected").some(([s]) => s.id === bob.id), 5000, "bob connected");
  const [bobSeen] = ui.all("socket_connected").find(([s]) => s.id === bob.id);
  assert.equal(bobSeen.transport, "polling");
  assert.equal((await bob.timeout(3000).emitWithAck("room:join", "lobby")).success, true);
  await until(() => ui.all("room_joined").some(([nsp, room, id]) => nsp === "/" && room === "room:lobby" && id === bob.id), 5000, "bob joined");
  assert.equal((await bob.timeout(3000).emitWithAck("chat:send", { roomId: "lobby", text: "seen by the UI" })).success, true);
  await until(() => ui.all("event_received").some(([nsp, id, args]) => nsp === "/" && id === bob.id && args[0] === "chat:send"), 5000, "bob's event");
  const [, , args, at] = ui.all("event_received").find(([, id, a]) => id === bob.id && a[0] === "chat:send");
  assert.deepEqual(args[1], { roomId: "lobby", text: "seen by the UI" });
  assert.ok(!Number.isNaN(Date.parse(at)));
  // a token in auth:refresh is not passed on
  await bob.timeout(3000).emitWithAck("auth:refresh", { token: hsToken(SECRET, "bob") });
  await until(() => ui.all("event_received").some(([, id, a]) => id === bob.id && a[0] === "auth:refresh"), 5000, "the refresh seen");
  assert.deepEqual(ui.all("event_received").find(([, id, a]) => id === bob.id && a[0] === "auth:refresh")[2], ["auth:refresh", "[redacted]"]);
  const bobId = bob.id;
  bob.close();
  await until(() => ui.all("socket_disconnected").some(([nsp, id]) => nsp === "/" && id === bobId), 5000, "bob gone");

  // _disconnect: one socket by id; a room's; never the UI's own namespace whole
  const gone = once(alice, "disconnect", 5000);
  ui.s.emit("_disconnect", "/", false, alice.id);
  assert.equal((await gone)[0], "io server disconnect");
  const carol = await user("carol");
  assert.equal((await carol.timeout(3000).emitWithAck("room:join", "lobby")).success, true);
  const carolGone = once(carol, "disconnect", 5000);
  ui.s.emit("_disconnect", "/", true, "room:lobby");
  assert.equal((await carolGone)[0], "io server disconnect");
  const refused = await ui.s.timeout(3000).emitWithAck("_disconnect", "/admin-ui", false);
  assert.equal(refused.code, "INVALID_PAYLOAD");
  assert.equal(ui.s.connected, true);

  // the UI reconnects with its session
  const again = await uiSocket({ sessionId: admin() });
  await until(() => again.all("all_sockets").length === 1, 5000, "the list again");
  again.s.close();
  ui.s.close();
});

test("the stock UI from npm, in Chromium: login with the admin JWT, then this server's sockets, rooms, events and node", async () => {
  if (!CHROMIUM) throw new Error("chromium not found: apt-get install chromium (scripts/test.sh does)");
  const alice = await user("alice");
  assert.equal((await alice.timeout(3000).emitWithAck("room:join", "lobby")).success, true);
  const bob = await user("bob", ["polling"]);
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox", "--disable-gpu", "--no-first-run"] });
  try {
    const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    const errors = [];
    page.on("pageerror", (e) => errors.push(String(e)));
    // offline: the UI's web fonts and icon CDN are refused, everything else is on 127.0.0.1
    await page.route((url) => url.hostname !== "127.0.0.1", (r) => r.abort());
    await page.goto(uiUrl);
    await page.getByLabel("Server URL").fill(srv.url);
    await page.getByLabel("Username").fill("admin");
    await page.getByLabel("Password").fill(admin());
    await page.getByText("Advanced options").click();
    await page.getByLabel("Admin namespace").fill("/admin-ui");
    await page.getByRole("button", { name: "Connect" }).click();
    await page.getByText("connected", { exact: true }).first().waitFor({ timeout: 10000 });

    await page.goto(`${uiUrl}/#/sockets/`);
    await page.waitForFunction(([a, b]) => document.body.textContent.includes(a) && document.body.textContent.includes(b), [alice.id, bob.id], { timeout: 10000 });
    const text = await page.textContent("body");
    assert.match(text, /WebSocket/);
    assert.match(text, /HTTP long-polling/);
    // a socket appearing later is listed too; one is ended from its row's button
    const carol = await user("carol");
    await page.waitForFunction((c) => document.body.textContent.includes(c), carol.id, { timeout: 10000 });
    const carolId = carol.id;
    const carolGone = once(carol, "disconnect", 5000);
    await page.locator("tr", { hasText: carolId }).locator("button").click();
    assert.equal((await carolGone)[0], "io server disconnect");
    await page.goto(`${uiUrl}/#/sockets/`);
    await page.waitForFunction((c) => ![...document.querySelectorAll("tr")].some((tr) => tr.textContent.includes(c)), carolId, { timeout: 10000 });

    await page.goto(`${uiUrl}/#/rooms/`);
    await page.waitForFunction(() => document.body.textContent.includes("room:lobby"), null, { timeout: 10000 });

    assert.equal((await alice.timeout(3000).emitWithAck("chat:send", { roomId: "lobby", text: "hello UI" })).success, true);
    await page.goto(`${uiUrl}/#/events/`);
    await page.waitForFunction(() => document.body.textContent.includes("chat:send"), null, { timeout: 10000 });

    await page.goto(`${uiUrl}/#/servers/`);
    await page.waitForFunction(() => /node-/.test(document.body.textContent), null, { timeout: 10000 });
    if (process.env.UPDATE_SCREENSHOTS) {
      await page.goto(`${uiUrl}/#/sockets/`);
      await delay(2500);
      await page.screenshot({ path: path.resolve(here, "../../docs/admin-ui.png") });
    }
    assert.deepEqual(errors, []);
  } finally {
    await browser.close();
    alice.close();
    bob.close();
  }
});
