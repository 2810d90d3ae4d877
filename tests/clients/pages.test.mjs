// The pages the binary serves, in headless Chromium (Debian's chromium driven by
// playwright-core): the admin dashboard (sign-in good and bad, live connection count
// following real clients, rooms, announce and disconnect-user reaching real clients, a stock
// alert from a signed webhook, the events chart) and the demo chat (two users chatting,
// typing, DMing, history after a reload; edits, deletes, reactions and unread badges across
// two rooms), with no request leaving the server's origin.
// UPDATE_SCREENSHOTS=1 writes docs/dashboard.png and docs/demo.png.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { io } from "socket.io-client";
import { startProduct, signedCall, hsToken, once, until } from "./common.mjs";

const SECRET = "pages-jwt-secret-padded-to-at-least-32-bytes";
const HOOK = "pages-hook-secret-padded-to-at-least-32-bytes";
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const CHROMIUM = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].find((p) => existsSync(p));
let srv;
let plain;
let browser;
const seen = []; // every URL the pages asked for
const errors = []; // script errors on the pages

before(async () => {
  if (!CHROMIUM) throw new Error("chromium not found: apt-get install chromium (scripts/test.sh does)");
  srv = await startProduct({ JWT_SECRET: SECRET, WEBHOOK_SECRET: HOOK, RT__SERVER__DEMO: "true" });
  plain = await startProduct({ JWT_SECRET: SECRET });
  assert.equal((await signedCall(srv.url, HOOK, "PUT", "/users/root", { name: "Root", email: "root@example.com", role: "admin", isActive: true })).status, 200);
  assert.equal((await signedCall(srv.url, HOOK, "PUT", "/users/dave", { name: "Dave", email: "dave@example.com", role: "user", isActive: true })).status, 200);
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
      "--disable-component-update", "--disable-sync"],
  });
});
after(async () => {
  await browser?.close();
  await srv?.stop();
  await plain?.stop();
});

async function newPage() {
  const context = await browser.newContext({ viewport: { width: 1100, height: 900 } });
  const page = await context.newPage();
  page.on("request", (r) => seen.push(r.url()));
  page.on("websocket", (w) => seen.push(w.url()));
  page.on("pageerror", (e) => errors.push(String(e.stack || e)));
  return page;
}
const byTest = (page, id) => page.locator(`[data-testid="${id}"]`);
const user = (name) => {
  const s = io(srv.url, { forceNew: true, reconnection: false, transports: ["websocket"], auth: { token: hsToken(SECRET, name) } });
  return once(s, "connect", 5000).then(() => s);
};

test("the pages and assets are served by the binary; the socket.io-client bundle is the npm package's, unmodified", async () => {
  for (const p of ["/admin/", "/demo/"]) {
    const res = await fetch(srv.url + p);
    assert.equal(res.status, 200, p);
    assert.match(res.headers.get("content-type"), /text\/html/);
    assert.match(res.headers.get("content-security-policy"), /default-src 'self'/);
    assert.doesNotMatch(await res.text(), /https?:\/\//, `${p} names no other origin`);
  }
  const bundle = await (await fetch(`${srv.url}/assets/socket.io.min.js`)).text();
  const npm = readFileSync(path.join(root, "tests", "node_modules", "socket.io-client", "dist", "socket.io.min.js"), "utf8");
  assert.equal(bundle, npm);
  assert.equal((await fetch(`${srv.url}/assets/nope.js`)).status, 404);
  // without demo mode everything under /demo/ is 404; the dashboard is always there
  for (const [method, p] of [["GET", "/demo/"], ["POST", "/demo/token"], ["GET", "/demo/x"]]) {
    const res = await fetch(plain.url + p, { method, body: method === "POST" ? "{}" : undefined });
    assert.equal(res.status, 404, `${method} ${p}`);
    assert.equal((await res.json()).code, "NOT_FOUND");
  }
  assert.equal((await fetch(`${plain.url}/admin/`)).status, 200);
  // demo tokens for the seeded users only
  const ok = await fetch(`${srv.url}/demo/token`, { method: "POST", body: JSON.stringify({ userId: "bob" }) });
  assert.equal(ok.status, 200);
  assert.match((await ok.json()).token, /^[\w-]+\.[\w-]+\.[\w-]+$/);
  for (const body of [{ userId: "dave" }, { userId: "root" }]) {
    const res = await fetch(`${srv.url}/demo/token`, { method: "POST", body: JSON.stringify(body) });
    assert.equal(res.status, 403);
    assert.equal((await res.json()).code, "FORBIDDEN");
  }
  assert.equal((await fetch(`${srv.url}/demo/token`, { method: "POST", body: "nope" })).status, 400);
});

test("dashboard sign-in: a bad token and a non-admin's token show signin-error; the form is usable by keyboard", async () => {
  const page = await newPage();
  await page.goto(`${srv.url}/admin/`);
  await byTest(page, "signin-token").fill("not-a-token");
  await byTest(page, "signin-send").click();
  await byTest(page, "signin-error").waitFor({ state: "visible" });
  assert.match(await byTest(page, "signin-error").textContent(), /TOKEN_INVALID/);
  await byTest(page, "signin-token").fill(hsToken(SECRET, "dave", { role: "admin" }));
  await byTest(page, "signin-token").press("Tab");
  await page.keyboard.press("Enter");
  await page.waitForFunction(() => /FORBIDDEN/.test(document.querySelector('[data-testid="signin-error"]').textContent));
  assert.equal(await page.locator("#dash").isVisible(), false);
  await page.context().close();
});

test("dashboard: live connections, rooms, announce and disconnect reaching real clients, stock alerts, events chart", async () => {
  const page = await newPage();
  await page.goto(`${srv.url}/admin/#token=${hsToken(SECRET, "root", { role: "admin" })}`);
  const connections = byTest(page, "connections");
  await connections.waitFor({ state: "visible" });
  assert.equal(new URL(page.url()).hash, "", "the token leaves the address bar");
  const count = async () => parseInt(await connections.textContent(), 10);
  await page.waitForFunction(() => Number.parseInt(document.querySelector('[data-testid="connections"]').textContent, 10) >= 1);
  const base = await count();
  const clients = [await user("alice"), await user("bob"), await user("carol")];
  await until(async () => (await count()) === base + 3, 5000, "the count follows three new clients");
  for (const s of clients) assert.equal((await s.timeout(3000).emitWithAck("room:join", "lobby")).success, true);
  await page.waitForFunction(() => /Lobby\s*3/.test(document.querySelector('[data-testid="rooms"]').textContent), null, { timeout: 5000 });
  assert.match(await byTest(page, "nodes").textContent(), /node-/);

  const heard = once(clients[0], "system:announcement", 5000);
  await byTest(page, "announce-input").fill("maintenance at noon");
  await byTest(page, "announce-send").click();
  assert.equal((await heard)[0].message, "maintenance at noon");

  const bobId = clients[1].id;
  await page.waitForFunction((id) => document.querySelector(`[data-testid="sockets"] tr[data-socket-id="${id}"]`), bobId, { timeout: 5000 });
  const gone = once(clients[1], "disconnect", 5000);
  await byTest(page, "disconnect-input").fill("bob");
  await byTest(page, "disconnect-send").click();
  assert.equal((await gone)[0], "io server disconnect");
  await until(async () => (await count()) === base + 2, 5000, "the count drops");
  await page.waitForFunction((id) => !document.querySelector(`[data-testid="sockets"] tr[data-socket-id="${id}"]`), bobId, { timeout: 5000 });

  const res = await signedCall(srv.url, HOOK, "POST", "/notify/stock", { productId: "sku-42", stock: 3 });
  assert.equal(res.status, 200);
  await page.waitForFunction(() => /sku-42: stock 3 \(low\)/.test(document.querySelector('[data-testid="stock-alerts"]').textContent), null, { timeout: 5000 });

  for (let i = 0; i < 5; i++) await clients[0].timeout(3000).emitWithAck("chat:send", { roomId: "lobby", text: `load ${i}` });
  await page.waitForFunction(() => (document.querySelector("#chart-in").getAttribute("points") || "").split(" ").length >= 3, null, { timeout: 8000 });
  if (process.env.UPDATE_SCREENSHOTS) await page.screenshot({ path: path.join(root, "docs", "dashboard.png"), fullPage: true });
  for (const s of clients) s.close();
  await page.context().close();
});

test("dashboard: users found as you type, disabled and enabled, promoted and demoted; a room's members and messages, one deleted; empty states", async () => {
  const page = await newPage();
  await page.goto(`${srv.url}/admin/#token=${hsToken(SECRET, "root", { role: "admin" })}`);
  await byTest(page, "users").waitFor({ state: "visible" });
  // empty states
  await page.waitForFunction(() => /No stock alert yet|sku-/.test(document.querySelector('[data-testid="stock-alerts"]').textContent));
  // search as you type
  await byTest(page, "user-search").fill("dav");
  await page.waitForFunction(() => {
    const rows = [...document.querySelectorAll('[data-testid="users"] tbody tr')];
    return rows.length === 1 && rows[0].dataset.userId === "dave";
  }, null, { timeout: 5000 });
  await byTest(page, "user-search").fill("zzz-nobody");
  await page.waitForFunction(() => /No user matches/.test(document.querySelector('[data-testid="users"]').textContent), null, { timeout: 5000 });
  await byTest(page, "user-search").fill("dave");
  const row = page.locator('[data-testid="users"] tbody tr[data-user-id="dave"]');
  await row.waitFor({ timeout: 5000 });
  // disable: dave's socket ends; enable again
  const dave = await user("dave");
  const gone = once(dave, "disconnect", 5000);
  await row.locator('[data-testid="user-toggle"]').click();
  assert.equal((await gone)[0], "io server disconnect");
  await page.waitForFunction(() => /disabled/.test(document.querySelector('[data-testid="users"] tbody tr[data-user-id="dave"]').textContent), null, { timeout: 5000 });
  await row.locator('[data-testid="user-toggle"]').click();
  await page.waitForFunction(() => !/disabled/.test(document.querySelector('[data-testid="users"] tbody tr[data-user-id="dave"]').textContent), null, { timeout: 5000 });
  // promote: dave may open /admin; demote
  await row.locator('[data-testid="user-role"]').click();
  await page.waitForFunction(() => /admin/.test(document.querySelector('[data-testid="users"] tbody tr[data-user-id="dave"] td:nth-child(3)').textContent), null, { timeout: 5000 });
  const daveAdmin = io(`${srv.url}/admin`, { forceNew: true, reconnection: false, transports: ["websocket"], auth: { token: hsToken(SECRET, "dave") } });
  await once(daveAdmin, "connect", 5000);
  const demoted = once(daveAdmin, "disconnect", 5000);
  await row.locator('[data-testid="user-role"]').click();
  assert.equal((await demoted)[0], "io server disconnect");

  // a room's view: open it from the rooms table, members online, messages, delete one
  const alice = await user("alice");
  await alice.timeout(3000).emitWithAck("room:join", "lobby");
  const ids = [];
  for (const t of ["keep me", "remove me"]) ids.push((await alice.timeout(3000).emitWithAck("chat:send", { roomId: "lobby", text: t })).messageId);
  const deleted = once(alice, "chat:message-deleted", 5000);
  await page.locator('[data-testid="rooms"] tbody tr[data-room-id="lobby"]').click({ timeout: 5000 });
  await byTest(page, "room-detail").waitFor({ state: "visible" });
  await page.waitForFunction(() => /alice · online/.test(document.querySelector('[data-testid="room-detail"]').textContent), null, { timeout: 5000 });
  const msg = page.locator(`[data-testid="room-messages"] li[data-id="${ids[1]}"]`);
  await msg.waitFor({ timeout: 5000 });
  await msg.locator('[data-testid="message-delete"]').click();
  assert.equal((await deleted)[0].id, ids[1]);
  await page.waitForFunction((id) => /deleted/.test(document.querySelector(`[data-testid="room-messages"] li[data-id="${id}"]`).textContent), ids[1], { timeout: 5000 });
  assert.match(await page.locator(`[data-testid="room-messages"] li[data-id="${ids[0]}"]`).textContent(), /keep me/);
  assert.deepEqual(errors, []);
  for (const s of [dave, daveAdmin, alice]) s.close();
  await page.context().close();
});

test("dashboard: the connections table lists each socket with its user and transport, filters by user, and ends one by its button", async () => {
  const page = await newPage();
  await page.goto(`${srv.url}/admin/#token=${hsToken(SECRET, "root", { role: "admin" })}`);
  await byTest(page, "sockets").waitFor({ state: "visible" });
  assert.equal((await signedCall(srv.url, HOOK, "PUT", "/users/erin", { name: "Erin", email: "erin@example.com", role: "user", isActive: true })).status, 200);
  const erin = await user("erin");
  const erinId = erin.id;
  await erin.timeout(3000).emitWithAck("room:join", "lobby");
  const erinPolling = io(srv.url, { forceNew: true, reconnection: false, transports: ["polling"], auth: { token: hsToken(SECRET, "erin") } });
  await once(erinPolling, "connect", 5000);
  const row = page.locator(`[data-testid="sockets"] tbody tr[data-socket-id="${erinId}"]`);
  await row.waitFor({ timeout: 5000 });
  const text = await row.textContent();
  for (const part of ["erin", "websocket", "127.0.0.1", "lobby", "node-"]) assert.ok(text.includes(part), `${part} in ${text}`);
  // only erin's: both of her connections, nobody else's
  await byTest(page, "socket-filter").fill("erin");
  await page.waitForFunction(() => {
    const rows = [...document.querySelectorAll('[data-testid="sockets"] tbody tr')];
    return rows.length === 2 && rows.every((r) => r.children[1].textContent === "erin");
  }, null, { timeout: 5000 });
  assert.match(await byTest(page, "sockets").textContent(), /polling/);
  // her WebSocket one ends, the polling one stays
  const gone = once(erin, "disconnect", 5000);
  await row.locator('[data-testid="socket-disconnect"]').click();
  assert.equal((await gone)[0], "io server disconnect");
  await page.waitForFunction((id) => !document.querySelector(`[data-testid="sockets"] tbody tr[data-socket-id="${id}"]`), erinId, { timeout: 5000 });
  await page.waitForFunction(() => document.querySelectorAll('[data-testid="sockets"] tbody tr').length === 1, null, { timeout: 5000 });
  assert.equal(erinPolling.connected, true);
  // empty state
  await byTest(page, "socket-filter").fill("zzz-nobody");
  await page.waitForFunction(() => /has no open connection/.test(document.querySelector('[data-testid="sockets"]').textContent), null, { timeout: 5000 });
  assert.deepEqual(errors, []);
  erinPolling.close();
  await page.context().close();
});

test("demo: two users chat with typing and read receipts, DM each other, and history survives a reload", async () => {
  const [a, b] = [await newPage(), await newPage()];
  for (const [page, name] of [[a, "alice"], [b, "bob"]]) {
    await page.goto(`${srv.url}/demo/`);
    await byTest(page, "demo-user").selectOption(name);
    await byTest(page, "demo-signin").click();
    await byTest(page, "message-input").waitFor({ state: "visible" });
    await page.waitForFunction(() => /signed in/.test(document.querySelector("#status").textContent));
  }
  await a.waitForFunction(() => /online/.test(document.querySelector("#members").textContent));
  await byTest(a, "message-input").pressSequentially("hello bo", { delay: 20 });
  await b.waitForFunction(() => /alice is typing/.test(document.querySelector('[data-testid="typing"]').textContent), null, { timeout: 5000 });
  await byTest(a, "message-input").pressSequentially("b");
  await byTest(a, "message-send").click();
  await b.waitForFunction(() => /hello bob/.test(document.querySelector('[data-testid="message-list"]').textContent), null, { timeout: 5000 });
  await b.waitForFunction(() => document.querySelector('[data-testid="typing"]').textContent === "", null, { timeout: 5000 });
  // bob read it: alice sees the receipt
  await a.waitForFunction(() => /seen by bob/.test(document.querySelector('[data-testid="message-list"]').textContent), null, { timeout: 5000 });
  // a reply from bob quotes alice's message
  await b.locator('[data-testid="message-list"] li', { hasText: "hello bob" }).getByRole("button", { name: /Reply/ }).click();
  await byTest(b, "message-input").fill("hi alice");
  await byTest(b, "message-input").press("Enter");
  await a.waitForFunction(() => /↪ alice: hello bob[\s\S]*hi alice/.test(document.querySelector('[data-testid="message-list"]').textContent), null, { timeout: 5000 });

  await byTest(b, "dm-target").selectOption("alice");
  await byTest(b, "dm-input").fill("psst, a secret");
  await byTest(b, "dm-send").click();
  await byTest(a, "toast").filter({ hasText: "DM from bob: psst, a secret" }).waitFor({ timeout: 5000 });

  // an announcement shows as a toast
  const admin = io(`${srv.url}/admin`, { forceNew: true, reconnection: false, transports: ["websocket"], auth: { token: hsToken(SECRET, "root", { role: "admin" }) } });
  await once(admin, "connect", 5000);
  await admin.timeout(3000).emitWithAck("admin:announce", { message: "welcome, demo users" });
  await byTest(b, "toast").filter({ hasText: "welcome, demo users" }).waitFor({ timeout: 5000 });
  admin.close();

  // a notification for alice (she watches a product from another client) shows as a toast
  const aliceApp = await user("alice");
  assert.equal((await aliceApp.timeout(3000).emitWithAck("product:watch", { productId: "sku-7" })).success, true);
  assert.equal((await signedCall(srv.url, HOOK, "POST", "/notify/stock", { productId: "sku-7", stock: 2 })).status, 200);
  await byTest(a, "toast").filter({ hasText: "sku-7: stock 2 (low)" }).first().waitFor({ timeout: 5000 });
  aliceApp.close();

  await a.reload();
  await a.waitForFunction(() => /hello bob[\s\S]*hi alice/.test(document.querySelector('[data-testid="message-list"]').textContent), null, { timeout: 5000 });
  if (process.env.UPDATE_SCREENSHOTS) await b.screenshot({ path: path.join(root, "docs", "demo.png"), fullPage: true });
  await a.context().close();
  await b.context().close();
});

test("demo: edit and delete one's own message, react, and unread badges follow the other room", async () => {
  const [a, b] = [await newPage(), await newPage()];
  for (const [page, name] of [[a, "alice"], [b, "carol"]]) {
    await page.goto(`${srv.url}/demo/`);
    await byTest(page, "demo-user").selectOption(name);
    await byTest(page, "demo-signin").click();
    await byTest(page, "room-random").waitFor({ state: "visible", timeout: 5000 });
  }
  // both in #random
  for (const page of [a, b]) await byTest(page, "room-random").click();
  await a.waitForFunction(() => document.querySelector("#room-name").textContent === "#Random");
  await byTest(a, "message-input").fill("teh plan");
  await byTest(a, "message-send").click();
  const inB = (text) => b.locator('[data-testid="message-list"] li', { hasText: text });
  await inB("teh plan").waitFor({ timeout: 5000 });
  // alice fixes her typo: carol sees the new text, marked edited
  await a.locator('[data-testid="message-list"] li', { hasText: "teh plan" }).locator('[data-testid="message-edit"]').click();
  assert.equal(await byTest(a, "message-input").inputValue(), "teh plan");
  await byTest(a, "message-input").fill("the plan");
  await byTest(a, "message-send").click();
  await inB("the plan").filter({ hasText: "(edited)" }).waitFor({ timeout: 5000 });
  // carol has no edit or delete on alice's message
  assert.equal(await inB("the plan").locator('[data-testid="message-edit"]').count(), 0);
  // carol reacts: alice sees the count, pressed for carol only
  await inB("the plan").locator('[data-testid="reaction"][data-emoji="👍"]').click();
  const aliceChip = a.locator('[data-testid="message-list"] li', { hasText: "the plan" }).locator('[data-testid="reaction"][data-emoji="👍"]');
  await a.waitForFunction(() => /👍 1/.test(document.querySelector('[data-testid="message-list"]').textContent), null, { timeout: 5000 });
  assert.equal(await aliceChip.getAttribute("aria-pressed"), "false");
  await b.waitForFunction(() => document.querySelector('[data-testid="reaction"][data-emoji="👍"][aria-pressed="true"]'), null, { timeout: 5000 });

  // unread badges: carol moves to #lobby; alice writes twice in #random
  await byTest(b, "room-lobby").click();
  for (const t of ["one for the badge", "two for the badge"]) {
    await byTest(a, "message-input").fill(t);
    await byTest(a, "message-send").click();
    await a.locator('[data-testid="message-list"] li', { hasText: t }).waitFor({ timeout: 5000 });
  }
  await b.waitForFunction(() => document.querySelector('[data-testid="unread-random"]').textContent === "2", null, { timeout: 5000 });
  // a reload asks the server (rooms:list): still 2 unread in #random
  await b.reload();
  await b.waitForFunction(() => document.querySelector('[data-testid="unread-random"]')?.textContent === "2", null, { timeout: 5000 });
  await byTest(b, "room-random").click();
  await b.waitForFunction(() => document.querySelector('[data-testid="unread-random"]').textContent === "", null, { timeout: 5000 });

  // alice deletes her message: blanked in place for carol, the reaction gone
  await a.locator('[data-testid="message-list"] li', { hasText: "the plan" }).locator('[data-testid="message-delete"]').click();
  await b.waitForFunction(() => !/the plan/.test(document.querySelector('[data-testid="message-list"]').textContent), null, { timeout: 5000 });
  await inB("message deleted").waitFor({ timeout: 5000 });
  assert.equal(await inB("message deleted").locator('[data-testid="reaction"]').count(), 0);
  assert.deepEqual(errors, []);
  await a.context().close();
  await b.context().close();
});

test("both pages fit a phone's width (no horizontal scrolling at 375 px)", async () => {
  const signedIn = { "/admin/": `#token=${hsToken(SECRET, "root", { role: "admin" })}`, "/demo/": "" };
  for (const p of ["/admin/", "/demo/"]) {
    const context = await browser.newContext({ viewport: { width: 375, height: 740 }, isMobile: true });
    const page = await context.newPage();
    page.on("request", (r) => seen.push(r.url()));
    await page.goto(srv.url + p + signedIn[p]);
    if (p === "/admin/") await page.waitForFunction(() => document.querySelectorAll("#nodes-body tr").length > 0);
    else {
      await byTest(page, "demo-signin").click();
      await byTest(page, "message-input").waitFor({ state: "visible" });
    }
    const width = await page.evaluate(() => document.documentElement.scrollWidth);
    assert.ok(width <= 376, `${p} is ${width} px wide`);
    if (process.env.UPDATE_SCREENSHOTS && p === "/admin/") await page.screenshot({ path: "/tmp/phone.png", fullPage: true });
    await context.close();
  }
});

test("no request of either page left the server's origin, and no script failed", () => {
  assert.deepEqual(errors, []);
  assert.ok(seen.length > 10, `requests seen: ${seen.length}`);
  const origin = new URL(srv.url);
  const foreign = seen.filter((u) => new URL(u).host !== origin.host);
  assert.deepEqual(foreign, []);
});
