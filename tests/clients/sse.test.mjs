// Server-Sent Events (DESIGN 11) on one node: GET /events with a Bearer token or a
// single-use ticket, notifications / job:progress / chat:direct with their ids, Last-Event-ID
// replay, keep-alive comments, the ends of a stream (disabled user, admin:disconnect-user,
// token expiry), the per-user stream limit and the byte budget of a stream that never reads.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { readFileSync } from "node:fs";
import { io } from "socket.io-client";
import { startProduct, signedCall, hsToken, once, until, delay, sqliteQuery } from "./common.mjs";
import { openEvents, bearer } from "./sse.mjs";

const SECRET = "sse-jwt-secret-padded-to-at-least-32-bytes";
const HOOK = "sse-hook-secret-padded-to-at-least-32-bytes";
let srv;
let dbFile;
const streams = [];

const internal = (method, route, body) => signedCall(srv.url, HOOK, method, route, body);
const token = (user, opts) => hsToken(SECRET, user, opts);
async function events(opts) {
  const s = await openEvents(srv.url, opts);
  streams.push(s);
  return s;
}
async function socket(user, nsp = "/", role = "user") {
  const s = io(srv.url + nsp, { forceNew: true, reconnection: false, transports: ["websocket"], auth: { token: token(user, { role }) } });
  await once(s, "connect");
  return s;
}
const ask = (s, event, payload) => s.timeout(5000).emitWithAck(event, payload);
const soldOut = async (user, product) => {
  assert.equal((await internal("PUT", `/carts/${user}/items/${product}`)).status, 200);
  const res = await internal("POST", "/notify/stock", { productId: product, stock: 0 });
  assert.equal(res.status, 200);
  return res.json();
};
const metrics = async () => (await fetch(`${srv.url}/metrics`)).text();
const gauge = (text, name) => Number((text.match(new RegExp(`^${name} (\\d+)`, "m")) || [])[1] ?? NaN);

before(async () => {
  dbFile = `/tmp/rt-sse-${process.pid}.db`;
  srv = await startProduct({ JWT_SECRET: SECRET, WEBHOOK_SECRET: HOOK, DATABASE_URL: `sqlite://${dbFile}`, RT__SSE__KEEPALIVE_MS: "300" });
  for (const [u, role] of [["alice", "user"], ["bob", "user"], ["carol", "user"], ["dave", "user"], ["erin", "user"], ["frank", "user"], ["root", "admin"]]) {
    assert.equal((await internal("PUT", `/users/${u}`, { name: u, email: `${u}@example.com`, role, isActive: true })).status, 200);
  }
});
after(async () => {
  for (const s of streams) s.close();
  await srv.stop();
});

test("auth: no token, a bad one, an expired one and a disabled user get 401 JSON; a Bearer stream opens", async () => {
  const none = await events();
  assert.equal(none.status, 401);
  assert.deepEqual([none.body.success, none.body.code], [false, "AUTH_REQUIRED"]);
  const bad = await events({ headers: bearer("not.a.token") });
  assert.deepEqual([bad.status, bad.body.code], [401, "TOKEN_INVALID"]);
  const old = await events({ headers: bearer(token("alice", { ttl: -3600 })) });
  assert.deepEqual([old.status, old.body.code], [401, "TOKEN_EXPIRED"]);
  const stranger = await events({ headers: bearer(token("nobody")) });
  assert.deepEqual([stranger.status, stranger.body.code], [401, "TOKEN_INVALID"]);
  assert.equal((await internal("PUT", "/users/frank", { name: "frank", email: "f@example.com", role: "user", isActive: false })).status, 200);
  const disabled = await events({ headers: bearer(token("frank")) });
  assert.deepEqual([disabled.status, disabled.body.code], [401, "ACCOUNT_DISABLED"]);

  const s = await events({ headers: bearer(token("alice")) });
  assert.equal(s.status, 200);
  assert.match(s.headers["content-type"], /^text\/event-stream/);
  assert.equal(s.headers["cache-control"], "no-cache");
  assert.equal(s.headers["x-accel-buffering"], "no");
  await until(() => s.retry !== undefined, 2000, "the opening lines");
  assert.equal(s.retry, 3000);
  assert.equal(s.ended, false);
  s.close();
});

test("notifications (with their id), job:progress and chat:direct (with the DM id) arrive; the stream counts as online but acknowledges no DM", async () => {
  const s = await events({ headers: bearer(token("bob")) });
  assert.equal(s.status, 200);
  // job:progress: bob is online through the stream alone
  const progress = await internal("POST", "/notify/progress", { userId: "bob", jobId: "export-1", progress: 40, status: "processing" });
  assert.deepEqual(await progress.json(), { success: true, notified: 1 });
  await until(() => s.events.some((e) => e.event === "job:progress"), 3000, "job:progress");
  const jp = s.events.find((e) => e.event === "job:progress");
  assert.equal(jp.id, undefined, "job:progress is not stored and carries no id");
  assert.deepEqual([jp.data.jobId, jp.data.progress, jp.data.status], ["export-1", 40, "processing"]);
  // a stored notification carries its id
  assert.equal((await soldOut("bob", "sku-1")).notified, 1);
  await until(() => s.events.some((e) => e.event === "notification"), 3000, "notification");
  const n = s.events.find((e) => e.event === "notification");
  assert.equal(n.data.type, "STOCK_SOLD_OUT");
  assert.equal(n.id, n.data.id);
  const listed = await (await fetch(`${srv.url}/api/notifications`, { headers: bearer(token("bob")) })).json();
  assert.ok(listed.items.some((i) => i.id === n.id), "the id is the stored notification's");
  // a DM: delivered (online through the stream), arrives with its id, stays undelivered
  const carol = await socket("carol");
  const sent = await ask(carol, "user:direct-message", { targetId: "bob", message: "hi over SSE" });
  assert.equal(sent.success, true);
  assert.equal(sent.delivered, true, "an open stream counts as online");
  await until(() => s.events.some((e) => e.event === "chat:direct"), 3000, "chat:direct");
  const dm = s.events.find((e) => e.event === "chat:direct");
  assert.equal(dm.id, sent.id);
  assert.deepEqual([dm.data.id, dm.data.fromUserId, dm.data.message], [sent.id, "carol", "hi over SSE"]);
  const row = await sqliteQuery(dbFile, `SELECT delivered_at IS NULL FROM direct_messages WHERE id = '${sent.id}'`);
  assert.deepEqual(row, [["1"]], "only a socket's ack marks a DM delivered");
  // ... so bob's next socket gets it
  const bobSocket = io(srv.url, { forceNew: true, reconnection: false, transports: ["websocket"], auth: { token: token("bob") } });
  const [again] = await once(bobSocket, "chat:direct", 5000);
  assert.equal(again.id, sent.id);
  // nothing of the chat namespace besides these goes down the stream
  assert.ok(s.events.every((e) => ["job:progress", "notification", "chat:direct"].includes(e.event)));
  // closed: no longer online
  s.close();
  bobSocket.close();
  await until(async () => {
    const r = await ask(carol, "user:direct-message", { targetId: "bob", message: "later" });
    return r.success && r.delivered === false;
  }, 5000, "bob offline once the stream and the socket are gone");
  carol.close();
});

test("tickets: POST /api/sse-ticket (Bearer) gives a single-use ticket valid 60 s; a bad, used or old one is 401 TOKEN_INVALID", async () => {
  const noAuth = await fetch(`${srv.url}/api/sse-ticket`, { method: "POST" });
  assert.equal(noAuth.status, 401);
  assert.equal((await noAuth.json()).code, "AUTH_REQUIRED");
  const issue = async () => {
    const res = await fetch(`${srv.url}/api/sse-ticket`, { method: "POST", headers: bearer(token("carol")) });
    assert.equal(res.status, 200);
    const body = await res.json();
    assert.equal(body.success, true);
    assert.match(body.ticket, /^[0-9a-f]{64}$/);
    return body.ticket;
  };
  const t1 = await issue();
  const s = await events({ query: `?ticket=${t1}` });
  assert.equal(s.status, 200);
  const p = await internal("POST", "/notify/progress", { userId: "carol", jobId: "j", progress: 1, status: "processing" });
  assert.equal((await p.json()).notified, 1);
  await until(() => s.events.length === 1, 3000, "an event on the ticket's stream");
  const used = await events({ query: `?ticket=${t1}` });
  assert.deepEqual([used.status, used.body.success, used.body.code], [401, false, "TOKEN_INVALID"]);
  const bogus = await events({ query: `?ticket=${"0".repeat(64)}` });
  assert.deepEqual([bogus.status, bogus.body.code], [401, "TOKEN_INVALID"]);
  // stored as a hash, valid for 60 s from its issue
  const t2 = await issue();
  const now = Date.now();
  const rows = await sqliteQuery(dbFile, "SELECT ticket_hash, expires_at FROM sse_tickets");
  assert.equal(rows.length, 1, "the used ticket is gone");
  assert.notEqual(rows[0][0], t2, "only a hash of the ticket is kept");
  const left = Number(rows[0][1]) - now;
  assert.ok(left > 58_000 && left <= 60_000, `${left} ms left`);
  // once older than 60 s it is refused (the clock moved by rewriting its expiry)
  await sqliteQuery(dbFile, `UPDATE sse_tickets SET expires_at = ${now - 1}`);
  const late = await events({ query: `?ticket=${t2}` });
  assert.deepEqual([late.status, late.body.code], [401, "TOKEN_INVALID"]);
  // a ticket of a user disabled since is refused like the token would be
  const t3 = await issue();
  assert.equal((await internal("PUT", "/users/carol", { name: "carol", email: "c@example.com", role: "user", isActive: false })).status, 200);
  const gone = await events({ query: `?ticket=${t3}` });
  assert.deepEqual([gone.status, gone.body.code], [401, "ACCOUNT_DISABLED"]);
  assert.equal((await internal("PUT", "/users/carol", { name: "carol", email: "c@example.com", role: "user", isActive: true })).status, 200);
  s.close();
});

test("Last-Event-ID replays the stored notifications after it (oldest first, at most 200), then live ones without duplicates", async () => {
  // 205 notifications while dave has no stream
  for (let i = 0; i < 205; i++) assert.equal((await soldOut("dave", `p-${i}`)).notified, 1);
  const all = (await (await fetch(`${srv.url}/api/notifications?limit=200`, { headers: bearer(token("dave")) })).json()).items;
  // the REST list is newest first and at most 200: the oldest of them is the 6th stored
  const sixth = all[all.length - 1].id;
  const s = await events({ headers: { ...bearer(token("dave")), "Last-Event-ID": sixth } });
  assert.equal(s.status, 200);
  await until(() => s.events.length === 199, 5000, "199 replayed");
  assert.deepEqual(s.events.map((e) => e.id), all.slice(0, 199).reverse().map((i) => i.id), "oldest first, each once");
  assert.ok(s.events.every((e) => e.event === "notification" && e.data.id === e.id));
  // the first of all: 204 after it, 200 replayed
  const oldest = (await sqliteQuery(dbFile, "SELECT id FROM notifications WHERE user_id = 'dave' ORDER BY id LIMIT 1"))[0][0];
  const capped = await events({ query: `?lastEventId=${oldest}`, headers: bearer(token("dave")) });
  await until(() => capped.events.length === 200, 5000, "200 replayed");
  await delay(300);
  assert.equal(capped.events.length, 200, "at most 200");
  // a live one after the replay reaches both, once
  await soldOut("dave", "p-live");
  await until(() => s.events.length === 200 && capped.events.length === 201, 3000, "the live one");
  assert.equal(s.events.at(-1).data.productId, "p-live");
  // unknown id, or another user's: no replay
  const unknown = await events({ headers: { ...bearer(token("dave")), "Last-Event-ID": "no-such-id" } });
  const bobs = (await sqliteQuery(dbFile, "SELECT id FROM notifications WHERE user_id = 'bob' LIMIT 1"))[0][0];
  const foreign = await events({ headers: { ...bearer(token("dave")), "Last-Event-ID": bobs } });
  await delay(500);
  assert.deepEqual([unknown.status, unknown.events.length, foreign.status, foreign.events.length], [200, 0, 200, 0]);
  for (const x of [s, capped, unknown, foreign]) x.close();
});

test("a comment line goes down an idle stream every sse.keepalive_ms", async () => {
  const s = await events({ headers: bearer(token("erin")) });
  await delay(1100);
  const keepalives = s.comments.filter((c) => c === "keep-alive").length;
  assert.ok(keepalives >= 2 && keepalives <= 4, `${keepalives} keep-alives in 1.1 s at 300 ms`);
  assert.equal(s.ended, false);
  s.close();
});

test("a stream ends when its user is disabled, disconnected by an admin, or its token expires", async () => {
  const disabled = await events({ headers: bearer(token("erin")) });
  assert.equal((await internal("PUT", "/users/erin", { name: "erin", email: "e@example.com", role: "user", isActive: false })).status, 200);
  await until(() => disabled.ended, 3000, "the stream of a disabled user ends");
  assert.equal((await internal("PUT", "/users/erin", { name: "erin", email: "e@example.com", role: "user", isActive: true })).status, 200);

  const kicked = await events({ headers: bearer(token("erin")) });
  const other = await events({ headers: bearer(token("dave")) });
  const root = await socket("root", "/admin", "admin");
  assert.deepEqual(await ask(root, "admin:disconnect-user", { userId: "erin" }), { success: true });
  await until(() => kicked.ended, 3000, "admin:disconnect-user ends the stream");
  await delay(300);
  assert.equal(other.ended, false, "other users' streams stay");
  root.close();
  other.close();

  const short = await events({ headers: bearer(token("erin", { ttl: 2 })) });
  assert.equal(short.status, 200);
  await until(() => short.ended, 5000, "the stream ends at the token's expiry");
});

test("at most sse.max_per_user (10) streams per user: the next is 429 RATE_LIMITED, other users unaffected", async () => {
  const mine = [];
  for (let i = 0; i < 10; i++) {
    const s = await events({ headers: bearer(token("alice")) });
    assert.equal(s.status, 200);
    mine.push(s);
  }
  const over = await events({ headers: bearer(token("alice")) });
  assert.deepEqual([over.status, over.body.success, over.body.code], [429, false, "RATE_LIMITED"]);
  assert.match(await metrics(), /rt_limit_refusals_total\{limit="sse_streams"\} [1-9]/);
  const bob = await events({ headers: bearer(token("bob")) });
  assert.equal(bob.status, 200);
  assert.equal(gauge(await metrics(), "rt_sse_streams") >= 11, true);
  // a closed stream frees its slot
  mine.pop().close();
  await until(async () => (await events({ headers: bearer(token("alice")) })).status === 200, 3000, "a slot again");
  for (const s of mine) s.close();
  bob.close();
});

const rss = (pid) => Number(readFileSync(`/proc/${pid}/status`, "utf8").match(/VmRSS:\s+(\d+)/)[1]) / 1024;

/** A server of its own for a flood: rate limits out of the way, `env` added; with a reader
 * whose raw socket asks for its stream and then reads nothing, and a writer socket. */
async function floodSetup(env) {
  const flood = await startProduct({
    JWT_SECRET: SECRET, WEBHOOK_SECRET: HOOK,
    RT__LIMITS__USER_SENDS_PER_S: "1000000", RT__LIMITS__USER_SENDS_BURST: "1000000",
    RT__LIMITS__EVENTS_PER_S: "1000000", RT__LIMITS__EVENTS_BURST: "1000000",
    RT__LIMITS__MAX_PENDING_DMS: "1000000",
    ...env,
  });
  for (const u of ["reader", "writer"]) {
    assert.equal((await signedCall(flood.url, HOOK, "PUT", `/users/${u}`, { name: u, email: `${u}@example.com`, role: "user", isActive: true })).status, 200);
  }
  const streamsOpen = async () => gauge(await (await fetch(`${flood.url}/metrics`)).text(), "rt_sse_streams");
  const raw = net.connect(flood.port, "127.0.0.1");
  await once(raw, "connect");
  raw.write(`GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: Bearer ${token("reader")}\r\n\r\n`);
  raw.pause();
  const state = { closed: false };
  raw.on("close", () => { state.closed = true; });
  raw.on("error", () => { state.closed = true; });
  await until(async () => (await streamsOpen()) === 1, 3000, "the stream open");
  const writer = io(flood.url, { forceNew: true, reconnection: false, transports: ["websocket"], auth: { token: token("writer") } });
  await once(writer, "connect");
  /** `n` DMs of 2,000 characters, 500 at a time; how many found the reader online. */
  const send = async (n) => {
    let delivered = 0;
    for (let done = 0; done < n; done += 500) {
      const acks = await Promise.all(Array.from({ length: 500 }, () => writer.timeout(30000).emitWithAck("user:direct-message", { targetId: "reader", message: "x".repeat(2000) })));
      assert.ok(acks.every((a) => a.success), JSON.stringify(acks.find((a) => !a.success)));
      delivered += acks.filter((a) => a.delivered).length;
    }
    return delivered;
  };
  return { flood, raw, state, writer, send, streamsOpen };
}

test("a stream whose reader stops is cut off at the byte budget (limits.max_queued_bytes): no longer online, server memory bounded", async () => {
  const { flood, raw, state, writer, send, streamsOpen } = await floodSetup({ RT__LIMITS__MAX_QUEUED_BYTES: String(256 * 1024) });
  try {
    const before = rss(flood.proc.pid);
    // 16,000 DMs of 2,000 characters: ~34 MB for a reader that takes nothing
    const delivered = await send(16000);
    const grown = rss(flood.proc.pid) - before;
    assert.match(await (await fetch(`${flood.url}/metrics`)).text(), /rt_errors_total\{kind="slow_consumer"\} [1-9]/);
    assert.ok(delivered < 16000, `the reader stopped counting as online (${delivered} delivered)`);
    const later = await writer.timeout(5000).emitWithAck("user:direct-message", { targetId: "reader", message: "now?" });
    assert.equal(later.delivered, false, "a stream over its budget does not count as online");
    assert.ok(grown < 32, `server RSS grew ${grown.toFixed(1)} MiB for ~34 MB sent to a reader that takes nothing`);
    console.log(`sse budget: RSS +${grown.toFixed(1)} MiB, ${delivered} of 16000 DMs found the reader online`);
    // when it reads again it gets what was written, then the end of the stream
    raw.resume();
    await until(() => state.closed, 10000, "the raw socket sees the end");
    await until(async () => (await streamsOpen()) === 0, 3000, "the stream gone");
  } finally {
    writer.close();
    raw.destroy();
    await flood.stop();
  }
});

test("a stream whose reader takes nothing at all is ended by the kernel after server.tcp_user_timeout_ms", async () => {
  // a budget the flood stays under: only the connection's timeout ends it
  const { flood, raw, state, writer, send, streamsOpen } = await floodSetup({
    RT__LIMITS__MAX_QUEUED_BYTES: String(256 << 20),
    RT__SERVER__TCP_USER_TIMEOUT_MS: "1500",
  });
  try {
    // ~12 MB: more than the socket buffers of both ends hold, so the reader's window closes
    await send(6000);
    await until(async () => (await streamsOpen()) === 0, 15000, "the kernel ended the connection, and the response with it");
    assert.match(await (await fetch(`${flood.url}/metrics`)).text(), /rt_errors_total\{kind="slow_consumer"\} 0\n/, "not closed for its budget");
    const later = await writer.timeout(5000).emitWithAck("user:direct-message", { targetId: "reader", message: "now?" });
    assert.equal(later.delivered, false);
    raw.resume();
    await until(() => state.closed, 10000, "the raw socket sees the reset");
  } finally {
    writer.close();
    raw.destroy();
    await flood.stop();
  }
});
