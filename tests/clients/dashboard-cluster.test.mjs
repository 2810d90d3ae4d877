// The admin dashboard as operators reach it: through the shipped nginx/realtime.conf (real
// nginx, TLS with a self-signed certificate) in front of two nodes sharing a real PostgreSQL
// and Redis, in headless Chromium. The page lists both nodes, finds a user connected to the
// other node as online, shows a room's members from both nodes, and a message deleted from
// the page reaches a client on either node; the connections table lists both nodes' sockets
// and ends one; disabling a user ends its socket on the other node.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { chromium } from "playwright-core";
import { io } from "socket.io-client";
import { startProduct, startPostgres, startRedis, startNginx, signedCall, hsToken, once, until } from "./common.mjs";

const SECRET = "dashc-jwt-secret-padded-to-at-least-32-bytes";
const HOOK = "dashc-hook-secret-padded-to-at-least-32-bytes";
const CLUSTER_SECRET = "dashc-cluster-secret-padded-to-32-bytes!";
const CHROMIUM = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].find((p) => existsSync(p));
let pg, redis, a, b, nginx, browser;
const errors = [];

before(async () => {
  if (!CHROMIUM) throw new Error("chromium not found: apt-get install chromium (scripts/test.sh does)");
  pg = await startPostgres();
  redis = await startRedis();
  const env = { JWT_SECRET: SECRET, WEBHOOK_SECRET: HOOK, DATABASE_URL: pg.createDb(), REDIS_URL: redis.url, CLUSTER_SECRET, RT__PRESENCE__GRACE_MS: "300" };
  a = await startProduct({ ...env, RT__SERVER__NODE_ID: "node-a" });
  b = await startProduct({ ...env, RT__SERVER__NODE_ID: "node-b" });
  for (const [u, role] of [["root", "admin"], ["alice", "user"], ["bob", "user"]]) {
    assert.equal((await signedCall(a.url, HOOK, "PUT", `/users/${u}`, { name: u.toUpperCase(), email: `${u}@example.com`, role, isActive: true })).status, 200);
  }
  assert.equal((await signedCall(a.url, HOOK, "PUT", "/rooms/lobby", { name: "Lobby", isPublic: true })).status, 200);
  for (const n of [a, b]) {
    await until(async () => (await (await fetch(`${n.url}/readyz`)).json()).redis === "ok", 5000, "bridge up");
  }
  nginx = await startNginx([a.port, b.port]);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox", "--disable-gpu", "--no-first-run"] });
});
after(async () => {
  await browser?.close();
  await nginx?.stop();
  for (const n of [a, b]) await n?.stop();
  await redis?.stop();
  pg?.stop();
});

const client = (node, user) => {
  const s = io(node.url, { forceNew: true, reconnection: false, transports: ["websocket"], auth: { token: hsToken(SECRET, user) } });
  return once(s, "connect", 5000).then(() => s);
};
const byTest = (page, id) => page.locator(`[data-testid="${id}"]`);

test("through nginx, two nodes: nodes, users online on either node, a room's members, both nodes' connections, a delete, a socket ended and a disable reaching the other node", async () => {
  const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  page.on("pageerror", (e) => errors.push(String(e.stack || e)));
  await page.goto(`${nginx.url}/admin/#token=${hsToken(SECRET, "root", { role: "admin" })}`);
  await byTest(page, "users").waitFor({ state: "visible", timeout: 10000 });
  await page.waitForFunction(() => /node-a[\s\S]*node-b|node-b[\s\S]*node-a/.test(document.querySelector('[data-testid="nodes"]').textContent), null, { timeout: 10000 });

  const alice = await client(a, "alice");
  const bob = await client(b, "bob");
  for (const s of [alice, bob]) assert.equal((await s.timeout(3000).emitWithAck("room:join", "lobby")).success, true);
  const row = (id) => `[data-testid="users"] tbody tr[data-user-id="${id}"]`;
  await page.waitForFunction((sel) => /online/.test(document.querySelector(sel)?.textContent || ""), row("bob"), { timeout: 5000 });
  await page.waitForFunction((sel) => /online/.test(document.querySelector(sel)?.textContent || ""), row("alice"), { timeout: 5000 });

  // the room: both members online, whichever node they are on
  await page.locator('[data-testid="rooms"] tbody tr[data-room-id="lobby"]').click({ timeout: 5000 });
  await page.waitForFunction(() => /alice · online[\s\S]*bob · online/.test(document.querySelector('[data-testid="room-detail"]').textContent), null, { timeout: 5000 });
  const { messageId } = await alice.timeout(3000).emitWithAck("chat:send", { roomId: "lobby", text: "moderate me" });
  const heardOnB = once(bob, "chat:message-deleted", 5000);
  const msg = page.locator(`[data-testid="room-messages"] li[data-id="${messageId}"]`);
  await msg.waitFor({ timeout: 5000 });
  await msg.locator('[data-testid="message-delete"]').click();
  assert.equal((await heardOnB)[0].id, messageId, "the client on the other node hears the delete");

  // the connections table: both nodes' sockets; alice's on node a ended from the page
  const sock = (id) => `[data-testid="sockets"] tbody tr[data-socket-id="${id}"]`;
  const aliceId = alice.id;
  await page.waitForFunction((sel) => /node-b/.test(document.querySelector(sel)?.textContent || ""), sock(bob.id), { timeout: 5000 });
  await page.waitForFunction((sel) => /node-a/.test(document.querySelector(sel)?.textContent || ""), sock(aliceId), { timeout: 5000 });
  const aliceGone = once(alice, "disconnect", 5000);
  await page.locator(sock(aliceId)).locator('[data-testid="socket-disconnect"]').click();
  assert.equal((await aliceGone)[0], "io server disconnect");
  await page.waitForFunction((sel) => !document.querySelector(sel), sock(aliceId), { timeout: 5000 });
  assert.equal(bob.connected, true);

  // disabling bob (connected to node b) from the page behind nginx ends his socket there
  const gone = once(bob, "disconnect", 5000);
  await page.locator(row("bob")).locator('[data-testid="user-toggle"]').click();
  assert.equal((await gone)[0], "io server disconnect");
  await page.waitForFunction((sel) => /disabled/.test(document.querySelector(sel).textContent), row("bob"), { timeout: 5000 });
  assert.deepEqual(errors, []);
  alice.close();
  await context.close();
});
