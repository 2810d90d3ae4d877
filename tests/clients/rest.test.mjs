// The REST API (DESIGN 11) against the real server with real sockets beside it: Bearer
// authentication with the connect's codes, message pages before/after/latest with the room
// permission, a POST that reaches sockets as chat:message exactly like chat:send (idempotent
// by clientMsgId), the same validation codes and rate limit, notifications read/unread.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { io } from "socket.io-client";
import { startProduct, signedCall, hsToken, once, collect, until, delay } from "./common.mjs";

const SECRET = "rest-jwt-secret-padded-to-at-least-32-bytes";
const HOOK = "rest-hook-secret-padded-to-at-least-32-bytes";
let srv;
const internal = (method, route, body) => signedCall(srv.url, HOOK, method, route, body);
const bearer = (user, opts) => ({ Authorization: `Bearer ${hsToken(SECRET, user, opts)}` });
async function api(method, route, { user = "alice", headers, body } = {}) {
  const res = await fetch(`${srv.url}/api${route}`, {
    method,
    headers: { "Content-Type": "application/json", ...(headers ?? (user ? bearer(user) : {})) },
    body: body === undefined ? undefined : typeof body === "string" ? body : JSON.stringify(body),
  });
  return { status: res.status, body: await res.json() };
}
async function socket(user) {
  const s = io(srv.url, { forceNew: true, reconnection: false, transports: ["websocket"], auth: { token: hsToken(SECRET, user) } });
  await once(s, "connect", 5000);
  return s;
}
const ask = (s, event, payload) => s.timeout(3000).emitWithAck(event, payload);

before(async () => {
  srv = await startProduct({ JWT_SECRET: SECRET, WEBHOOK_SECRET: HOOK });
  for (const [u, active] of [["alice", true], ["bob", true], ["carol", true], ["dave", false]]) {
    assert.equal((await internal("PUT", `/users/${u}`, { name: u.toUpperCase(), email: `${u}@example.com`, role: "user", isActive: active })).status, 200);
  }
  assert.equal((await internal("PUT", "/rooms/hall", { name: "Hall", isPublic: true })).status, 200);
  assert.equal((await internal("PUT", "/rooms/vault", { name: "Vault", isPublic: false, members: ["alice"] })).status, 200);
});
after(async () => { await srv?.stop(); });

test("Bearer authentication answers 401 with the connect's codes", async () => {
  const cases = [
    [{}, "AUTH_REQUIRED"],
    [{ Authorization: "Bearer not-a-jwt" }, "TOKEN_INVALID"],
    [{ Authorization: "Basic YWxpY2U6eA==" }, "AUTH_REQUIRED"],
    [bearer("alice", { ttl: -60 }), "TOKEN_EXPIRED"],
    [bearer("nobody"), "TOKEN_INVALID"],
    [bearer("dave"), "ACCOUNT_DISABLED"],
  ];
  for (const [headers, code] of cases) {
    const r = await api("GET", "/rooms/hall/messages", { headers });
    assert.equal(r.status, 401, code);
    assert.deepEqual(Object.keys(r.body).sort(), ["code", "error", "success"]);
    assert.equal(r.body.code, code);
  }
  const unknown = await api("GET", "/nope");
  assert.equal(unknown.status, 404);
  assert.equal(unknown.body.code, "NOT_FOUND");
});

test("message pages: latest, before and after an id, limit clamped, permission as room:join", async () => {
  const s = await socket("bob");
  assert.equal((await ask(s, "room:join", "hall")).success, true);
  const ids = [];
  for (let i = 0; i < 7; i++) ids.push((await ask(s, "chat:send", { roomId: "hall", text: `m${i}` })).messageId);
  s.disconnect();
  const texts = (r) => r.body.messages.map((m) => m.text);
  let r = await api("GET", "/rooms/hall/messages?limit=3");
  assert.equal(r.status, 200);
  assert.equal(r.body.success, true);
  assert.deepEqual(texts(r), ["m4", "m5", "m6"]);
  assert.equal(r.body.hasMore, true);
  assert.deepEqual(Object.keys(r.body.messages[0]).sort(), ["id", "readBy", "replyTo", "roomId", "sender", "text", "timestamp"]);
  r = await api("GET", `/rooms/hall/messages?before=${ids[4]}&limit=2`);
  assert.deepEqual([texts(r), r.body.hasMore], [["m2", "m3"], true]);
  r = await api("GET", `/rooms/hall/messages?before=${ids[2]}`);
  assert.deepEqual([texts(r), r.body.hasMore], [["m0", "m1"], false]);
  r = await api("GET", `/rooms/hall/messages?after=${ids[4]}`);
  assert.deepEqual([texts(r), r.body.hasMore], [["m5", "m6"], false]);
  r = await api("GET", `/rooms/hall/messages?after=${ids[0]}&limit=2`);
  assert.deepEqual([texts(r), r.body.hasMore], [["m1", "m2"], true]);
  assert.equal((await api("GET", "/rooms/hall/messages?limit=5000")).status, 200, "clamped to 200");
  for (const [q, status, code] of [
    [`?before=${ids[1]}&after=${ids[0]}`, 400, "INVALID_PAYLOAD"],
    ["?limit=0", 400, "INVALID_PAYLOAD"],
    ["?limit=ten", 400, "INVALID_PAYLOAD"],
    ["?before=nope", 404, "NOT_FOUND"],
    ["?after=nope", 404, "NOT_FOUND"],
  ]) {
    r = await api("GET", `/rooms/hall/messages${q}`);
    assert.deepEqual([r.status, r.body.code], [status, code], q);
  }
  r = await api("GET", "/rooms/nowhere/messages");
  assert.deepEqual([r.status, r.body.code], [404, "NOT_FOUND"]);
  r = await api("GET", "/rooms/vault/messages", { user: "bob" });
  assert.deepEqual([r.status, r.body.code], [403, "FORBIDDEN"]);
  assert.equal((await api("GET", "/rooms/vault/messages", { user: "alice" })).status, 200);
});

test("POST a message: broadcast like chat:send, idempotent by clientMsgId, the same codes", async () => {
  const listener = await socket("carol");
  assert.equal((await ask(listener, "room:join", "hall")).success, true);
  const heard = collect(listener, "chat:message");
  // alice has no socket at all
  const r = await api("POST", "/rooms/hall/messages", { body: { text: "  over http  ", clientMsgId: "http-1" } });
  assert.equal(r.status, 200);
  assert.equal(r.body.success, true);
  assert.match(r.body.messageId, /\S/);
  await until(() => heard.length === 1, 3000, "delivered to the room");
  const m = heard[0][0];
  assert.deepEqual(m, { id: r.body.messageId, roomId: "hall", sender: { id: "alice", name: "ALICE" }, text: "over http", replyTo: null, timestamp: m.timestamp, readBy: ["alice"], clientMsgId: "http-1" });
  const again = await api("POST", "/rooms/hall/messages", { body: { text: "over http", clientMsgId: "http-1" } });
  assert.equal(again.body.messageId, r.body.messageId, "a retry answers the same id");
  const reply = await api("POST", "/rooms/hall/messages", { body: { text: "a reply", replyToId: r.body.messageId } });
  assert.equal(reply.status, 200);
  await until(() => heard.length === 2, 3000, "the reply");
  await delay(200);
  assert.equal(heard.length, 2, "the retry broadcast nothing");
  assert.deepEqual(heard[1][0].replyTo, { id: r.body.messageId, text: "over http", senderId: "alice" });
  for (const [room, body, status, code] of [
    ["hall", { text: "   " }, 400, "INVALID_MESSAGE"],
    ["hall", { text: "x".repeat(2001) }, 400, "INVALID_MESSAGE"],
    ["hall", {}, 400, "INVALID_PAYLOAD"],
    ["hall", { text: 5 }, 400, "INVALID_PAYLOAD"],
    ["hall", { text: "x", replyToId: 7 }, 400, "INVALID_PAYLOAD"],
    ["hall", "not json", 400, "INVALID_PAYLOAD"],
    ["hall", [1], 400, "INVALID_PAYLOAD"],
    ["nowhere", { text: "x" }, 404, "NOT_FOUND"],
    ["hall", { text: "x", replyToId: "nope" }, 404, "NOT_FOUND"],
  ]) {
    const res = await api("POST", `/rooms/${room}/messages`, { body });
    assert.deepEqual([res.status, res.body.code], [status, code], JSON.stringify(body));
  }
  const forbidden = await api("POST", "/rooms/vault/messages", { user: "bob", body: { text: "let me in" } });
  assert.deepEqual([forbidden.status, forbidden.body.code], [403, "FORBIDDEN"]);
  // replyToId from another room is NOT_FOUND before the permission says FORBIDDEN
  const order = await api("POST", "/rooms/vault/messages", { user: "bob", body: { text: "x", replyToId: r.body.messageId } });
  assert.deepEqual([order.status, order.body.code], [404, "NOT_FOUND"]);
  assert.equal((await api("POST", "/rooms/vault/messages", { user: "alice", body: { text: "member" } })).status, 200);
  assert.equal(heard.length, 2, "nothing from the private room reached the hall");
  listener.disconnect();
});

test("the per-user send limit applies to POSTs too (429 RATE_LIMITED)", async () => {
  const results = await Promise.all(Array.from({ length: 60 }, (_, i) =>
    api("POST", "/rooms/hall/messages", { user: "bob", body: { text: `burst ${i}` } })));
  const statuses = results.map((r) => r.status);
  // a burst of 40, then 20 a second: most of 60 at once pass, the rest are refused
  assert.ok(statuses.filter((s) => s === 200).length >= 20, statuses.join(","));
  const limited = results.filter((r) => r.status === 429);
  assert.ok(limited.length >= 5, statuses.join(","));
  assert.ok(limited.every((r) => r.body.code === "RATE_LIMITED"));
});

test("notifications: newest first with read flags, unread=true, mark read", async () => {
  const s = await socket("carol");
  assert.equal((await ask(s, "product:watch", { productId: "p-rest" })).success, true);
  for (const stock of [5, 4]) assert.equal((await internal("POST", "/notify/stock", { productId: "p-rest", stock })).status, 200);
  s.disconnect();
  let r = await api("GET", "/notifications", { user: "carol" });
  assert.equal(r.status, 200);
  assert.equal(r.body.unread, 2);
  assert.deepEqual(r.body.items.map((n) => [n.stock, n.read]), [[4, false], [5, false]]);
  assert.ok(r.body.items.every((n) => typeof n.id === "string" && n.type === "STOCK_UPDATE"));
  const newest = r.body.items[0].id;
  const read = await api("POST", "/notifications/read", { user: "carol", body: { ids: [newest, "someone-elses"] } });
  assert.deepEqual(read, { status: 200, body: { success: true, updated: 1 } });
  r = await api("GET", "/notifications?unread=true", { user: "carol" });
  assert.deepEqual([r.body.unread, r.body.items.map((n) => n.stock)], [1, [5]]);
  r = await api("GET", "/notifications", { user: "carol" });
  assert.deepEqual(r.body.items.map((n) => [n.stock, n.read]), [[4, true], [5, false]]);
  assert.deepEqual((await api("GET", "/notifications", { user: "bob" })).body, { success: true, items: [], unread: 0 });
  for (const body of [{}, { ids: "x" }, { ids: [1] }, "nope"]) {
    const bad = await api("POST", "/notifications/read", { user: "carol", body });
    assert.deepEqual([bad.status, bad.body.code], [400, "INVALID_PAYLOAD"], JSON.stringify(body));
  }
});
