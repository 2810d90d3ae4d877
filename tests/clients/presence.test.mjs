// Presence (DESIGN 13) on one node (SQLite) with the real socket.io-client: presence:subscribe
// statuses and user:status events, last seen stored, no flap on a quick reconnect, the online
// list of room:join, bad input and the subscription cap; and outbound webhooks against a real
// HTTP receiver on loopback: every event signed, in order per user and room, and none lost
// while the receiver answers 500 for a while.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { io } from "socket.io-client";
import { readFileSync } from "node:fs";
import { startProduct, testDatabase, signedCall, hsToken, once, collect, until, delay, startHookReceiver } from "./common.mjs";
import { rawWs } from "./ws.mjs";

const SECRET = "presence-jwt-secret-padded-to-at-least-32-bytes";
const HOOK = "presence-hook-secret-padded-to-at-least-32-bytes";
const OUT = "presence-outbound-secret-padded-to-32-bytes";
const GRACE = 1000;
let srv;
let db;
let recv;

async function client(user) {
  const s = io(srv.url, { forceNew: true, reconnection: false, transports: ["websocket"], auth: { token: hsToken(SECRET, user) } });
  await once(s, "connect");
  return s;
}
const ask = (s, event, payload) => s.timeout(3000).emitWithAck(event, payload);
const internal = (method, route, body) => signedCall(srv.url, HOOK, method, route, body);
const offline = (userId, lastSeen = null) => ({ userId, status: "offline", lastSeen });
const online = (userId) => ({ userId, status: "online", lastSeen: null });

before(async () => {
  recv = await startHookReceiver(OUT);
  db = await testDatabase("sqlite", "presence");
  srv = await startProduct({
    JWT_SECRET: SECRET,
    WEBHOOK_SECRET: HOOK,
    DATABASE_URL: db.url,
    RT__PRESENCE__GRACE_MS: String(GRACE),
    RT__WEBHOOKS__OUTBOUND_URL: `${recv.url}/hooks/realtime?source=test`,
    RT__WEBHOOKS__OUTBOUND_SECRET: OUT,
  });
  for (const u of ["alice", "bob", "carol", "dave", "erin", "frank", "gina"]) {
    assert.equal((await internal("PUT", `/users/${u}`, { name: u, email: `${u}@example.com`, role: "user", isActive: true })).status, 200);
  }
  assert.equal((await internal("PUT", "/rooms/lobby", { name: "Lobby", isPublic: true })).status, 200);
  assert.equal((await internal("PUT", "/rooms/vip", { name: "VIP", isPublic: false, members: ["bob", "carol", "gina"] })).status, 200);
});
after(async () => {
  await srv?.stop();
  db?.stop();
  await recv?.stop();
});

test("subscribe: statuses in request order, user:status on changes, last seen stored, no flap on a quick reconnect", async () => {
  const alice = await client("alice");
  const ack = await ask(alice, "presence:subscribe", { userIds: ["bob", "alice", "bob"] });
  assert.deepEqual(ack, { success: true, statuses: [offline("bob"), online("alice")] });
  const seen = collect(alice, "user:status");

  const bob = await client("bob");
  await until(() => seen.length === 1, 3000, "bob online");
  assert.deepEqual(seen[0][0], online("bob"));

  // a second socket and a quick reconnect: nothing changes for subscribers
  const bob2 = await client("bob");
  bob.disconnect();
  await delay(200);
  const bob3 = await client("bob");
  bob2.disconnect();
  await delay(GRACE + 800);
  assert.equal(seen.length, 1, `no flap: ${JSON.stringify(seen)}`);

  const before = Date.now();
  bob3.disconnect();
  const after = Date.now();
  await until(() => seen.length === 2, GRACE + 3000, "bob offline after the grace");
  const arrived = Date.now();
  const ev = seen[1][0];
  assert.equal(ev.userId, "bob");
  assert.equal(ev.status, "offline");
  // lastSeen is when the last socket went, not the end of the grace
  assert.ok(ev.lastSeen >= before - 50 && ev.lastSeen <= after + 500, `lastSeen ${ev.lastSeen} in [${before}, ${after}]`);
  assert.ok(arrived - before >= GRACE - 50, `offline only after the grace (${arrived - before} ms)`);

  // stored, and what a later subscriber reads
  const rows = await db.query("SELECT last_seen_at FROM users WHERE id = 'bob'");
  assert.equal(Number(rows[0][0]), ev.lastSeen);
  const carol = await client("carol");
  assert.deepEqual(await ask(carol, "presence:subscribe", { userIds: ["bob"] }), { success: true, statuses: [offline("bob", ev.lastSeen)] });

  // unsubscribed: no more events; ids not followed are ignored
  assert.deepEqual(await ask(alice, "presence:unsubscribe", { userIds: ["bob", "carol"] }), { success: true });
  const carolSeen = collect(carol, "user:status");
  const bob4 = await client("bob");
  await until(() => carolSeen.length === 1, 3000, "carol still follows bob");
  await delay(200);
  assert.equal(seen.length, 2, "alice unsubscribed");
  for (const s of [alice, bob4, carol]) s.disconnect();
});

test("subscribe: bad input, unknown ids, the 2,000 cap", async () => {
  const dave = await client("dave");
  const code = async (payload, event = "presence:subscribe") => {
    const r = await ask(dave, event, payload);
    assert.equal(r.success, false, JSON.stringify(r));
    assert.equal(typeof r.error, "string");
    return r.code;
  };
  const many = (n, prefix = "u") => Array.from({ length: n }, (_, i) => `${prefix}${i}`);
  assert.equal(await code({ userIds: [] }), "INVALID_PAYLOAD");
  assert.equal(await code({}), "INVALID_PAYLOAD");
  assert.equal(await code("bob"), "INVALID_PAYLOAD");
  assert.equal(await code({ userIds: "bob" }), "INVALID_PAYLOAD");
  assert.equal(await code({ userIds: ["bob", 7] }), "INVALID_PAYLOAD");
  assert.equal(await code({ userIds: [""] }), "INVALID_PAYLOAD");
  // more than 500 (unknown ones too): INVALID_PAYLOAD is checked before NOT_FOUND
  assert.equal(await code({ userIds: many(501) }), "INVALID_PAYLOAD");
  assert.equal(await code({ userIds: [] }, "presence:unsubscribe"), "INVALID_PAYLOAD");
  assert.equal(await code({ userIds: many(501) }, "presence:unsubscribe"), "INVALID_PAYLOAD");
  // duplicates count once: 600 entries, 500 distinct ids
  assert.equal(await code({ userIds: [...many(500), ...many(100)] }), "NOT_FOUND");
  const nf = await ask(dave, "presence:subscribe", { userIds: ["bob", "nobody"] });
  assert.equal(nf.code, "NOT_FOUND");
  assert.match(nf.error, /nobody/);
  // nothing was subscribed by the refused call
  const seen = collect(dave, "user:status");
  const bob = await client("bob");
  await delay(300);
  assert.equal(seen.length, 0);
  bob.disconnect();

  // 2,100 stored users: 4 × 500 fills the cap, one more is refused whole
  await db.query(`INSERT INTO users (id, name, email, role, is_active, created_at)
    WITH RECURSIVE n(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM n WHERE i < 2099)
    SELECT 'cap' || i, 'cap', 'cap@example.com', 'user', 1, 0 FROM n`);
  const capIds = many(2100, "cap");
  for (let k = 0; k < 4; k++) {
    const r = await ask(dave, "presence:subscribe", { userIds: capIds.slice(k * 500, k * 500 + 500) });
    assert.equal(r.success, true, JSON.stringify(r).slice(0, 200));
    assert.equal(r.statuses.length, 500);
  }
  assert.equal(await code({ userIds: ["cap2000"] }), "RATE_LIMITED");
  // refused whole: a call with one new id among followed ones is refused, followed ones are fine
  assert.equal(await code({ userIds: ["cap0", "cap2001"] }), "RATE_LIMITED");
  assert.equal((await ask(dave, "presence:subscribe", { userIds: ["cap0", "cap1"] })).success, true);
  assert.deepEqual(await ask(dave, "presence:unsubscribe", { userIds: ["cap0"] }), { success: true });
  assert.equal((await ask(dave, "presence:subscribe", { userIds: ["cap2000"] })).success, true);
  // the socket is still fine
  assert.equal((await ask(dave, "room:join", "lobby")).success, true);
  dave.disconnect();
});

test("a raw client holding the most subscriptions on many sockets: refused past 2,000 each, server memory bounded", async () => {
  // the 2,100 users of the cap test exist: 40 raw sockets follow 2,000 of them each (80k
  // subscriptions over 2,000 presence rooms) and then ask for more
  const rssMb = () => Number(readFileSync(`/proc/${srv.proc.pid}/status`, "utf8").match(/VmRSS:\s+(\d+)/)[1]) / 1024;
  const before = rssMb();
  const ids = Array.from({ length: 2100 }, (_, i) => `cap${i}`);
  const sockets = [];
  for (let k = 0; k < 40; k++) {
    const c = rawWs(srv.url);
    await c.opened;
    await c.next((m) => m.startsWith("0{"));
    c.send(`40${JSON.stringify({ token: hsToken(SECRET, `cap${k}`) })}`);
    await c.next((m) => m.startsWith("40"));
    sockets.push(c);
  }
  let ack = 0;
  const call = async (c, event, userIds) => {
    ack += 1;
    c.send(`42${ack}${JSON.stringify([event, { userIds }])}`);
    const prefix = `43${ack}`;
    const m = await c.next((x) => x.startsWith(prefix), 10000);
    return JSON.parse(m.slice(prefix.length))[0];
  };
  for (const c of sockets) {
    for (let i = 0; i < 2000; i += 500) assert.equal((await call(c, "presence:subscribe", ids.slice(i, i + 500))).success, true);
  }
  for (const c of sockets) assert.equal((await call(c, "presence:subscribe", ids.slice(2000, 2100))).code, "RATE_LIMITED");
  const grown = rssMb() - before;
  console.log(`80k subscriptions grew the server by ${grown.toFixed(1)} MiB`);
  assert.ok(grown <= 96, `80k subscriptions grew the server by ${grown.toFixed(1)} MiB`);
  for (const c of sockets) c.ws.close();
});

test("room:join's online list: users joined to a public room, online members of a private one", async () => {
  const erin = await client("erin");
  const frank = await client("frank");
  const a = await ask(erin, "room:join", "lobby");
  assert.ok(a.online.includes("erin"), JSON.stringify(a));
  const b = await ask(frank, "room:join", "lobby");
  assert.ok(b.online.includes("erin") && b.online.includes("frank"), JSON.stringify(b));
  assert.equal(b.online.length, b.memberCount);
  // vip: bob, carol, gina are members; bob and carol online (carol not in the room), gina not
  const bob = await client("bob");
  const carol = await client("carol");
  const v = await ask(bob, "room:join", "vip");
  assert.deepEqual([...v.online].sort(), ["bob", "carol"]);
  for (const s of [erin, frank, bob, carol]) s.disconnect();
});

test("outbound webhooks: signed, one per POST, user and room events in order; none lost while the receiver fails", async () => {
  // what the earlier tests caused has arrived by now (each user settled after the grace)
  await delay(GRACE + 1500);
  for (const g of recv.got) {
    assert.equal(g.verified, true, `signature of ${g.raw}`);
    assert.equal(g.method, "POST");
    assert.equal(g.url, "/hooks/realtime?source=test");
    assert.equal(g.contentType, "application/json");
    assert.deepEqual(Object.keys(g.body).sort(), ["data", "id", "timestamp", "type"]);
  }
  const types = (pred) => recv.accepted().filter(pred).map((e) => e.type);
  console.log(JSON.stringify(recv.got.map((g) => [g.at, g.status, g.body])));
  // bob: online (first connect), offline, online (carol's check), offline, and so on: strictly
  // alternating, none lost, none twice
  const bobs = types((e) => e.data.userId === "bob");
  assert.ok(bobs.length >= 4, JSON.stringify(bobs));
  bobs.forEach((t, i) => assert.equal(t, i % 2 ? "user.offline" : "user.online", JSON.stringify(bobs)));
  const bobOff = recv.accepted().find((e) => e.type === "user.offline" && e.data.userId === "bob");
  assert.equal(typeof bobOff.data.lastSeen, "number");
  assert.equal("lastSeen" in recv.accepted().find((e) => e.type === "user.online").data, false);
  const lobby = types((e) => e.data.roomId === "lobby");
  assert.deepEqual(lobby.slice(0, 2), ["room.occupied", "room.vacated"]);
  assert.equal(new Set(recv.accepted().map((e) => e.id)).size, recv.accepted().length, "ids are unique");

  // the receiver fails for a while: everything arrives later, in order per key
  const mark = recv.got.length;
  recv.fail(500);
  for (let i = 0; i < 2; i++) {
    const f = await client("frank");
    await ask(f, "room:join", "vip").catch(() => {});
    f.disconnect();
    await delay(GRACE + 300);
  }
  await until(() => recv.got.slice(mark).length >= 2, 5000, "failing attempts");
  const failedOnes = recv.got.slice(mark).filter((g) => g.status === 500).map((g) => g.body.id);
  assert.ok(failedOnes.length >= 1);
  recv.fail(null);
  const frankEvents = () => recv.accepted().filter((e) => e.data.userId === "frank").slice(-4);
  await until(() => frankEvents().length === 4 && frankEvents()[3].type === "user.offline" && recv.got.slice(mark).filter((g) => g.status < 300).length >= 4, 20000, "every event after the receiver recovered");
  const newOnes = recv.got.slice(mark).filter((g) => g.status < 300).map((g) => g.body).filter((e) => e.data.userId === "frank");
  assert.deepEqual(newOnes.map((e) => e.type), ["user.online", "user.offline", "user.online", "user.offline"]);
  // a retried event is the same event: same id, same body
  for (const id of failedOnes) {
    const bodies = new Set(recv.got.filter((g) => g.body.id === id).map((g) => g.raw));
    assert.equal(bodies.size, 1, `body of ${id} identical on every attempt`);
    assert.ok(recv.got.some((g) => g.body.id === id && g.status === 200), `${id} accepted later`);
  }
  // each attempt signed afresh: all verify
  assert.ok(recv.got.every((g) => g.verified));
  const metrics = await (await fetch(`${srv.url}/metrics`)).text();
  const sent = Number(/rt_webhook_events_total\{outcome="sent"\} (\d+)/.exec(metrics)[1]);
  const failed = Number(/rt_webhook_events_total\{outcome="failed"\} (\d+)/.exec(metrics)[1]);
  assert.equal(sent, recv.got.filter((g) => g.status < 300).length);
  assert.equal(failed, recv.got.filter((g) => g.status >= 300).length);
  assert.match(metrics, /rt_webhook_pending \d+/);
});

test("outbound webhooks: a 410 drops the event (counted) and the key goes on; events older than 24 h are dropped with a log line and a metric", async () => {
  const metric = async (outcome) => {
    const text = await (await fetch(`${srv.url}/metrics`)).text();
    return Number(new RegExp(`rt_webhook_events_total\\{outcome="${outcome}"\\} (\\d+)`).exec(text)[1]);
  };
  const gone = await metric("dropped_gone");
  const mark = recv.got.length;
  recv.fail(410);
  const g = await client("gina");
  await until(() => recv.got.slice(mark).some((x) => x.body.data.userId === "gina" && x.status === 410), 5000, "gina's online answered 410");
  recv.fail(null);
  g.disconnect();
  // the offline that follows is not held back by the dropped online
  await until(() => recv.accepted().some((e) => e.data.userId === "gina" && e.type === "user.offline"), GRACE + 5000, "gina's offline sent");
  assert.equal(await metric("dropped_gone"), gone + recv.got.filter((x) => x.status === 410).length);
  assert.equal(recv.got.filter((x) => x.body.data.userId === "gina" && x.body.type === "user.online").length, 1, "a 410 is not retried");

  // an event stored 25 h ago (a receiver that was down for a day): dropped at the next sweep
  const expired = await metric("dropped_expired");
  const old = Date.now() - 25 * 3600 * 1000;
  await db.query(`INSERT INTO outbound_events (id, event_key, seq, body, created_at, attempts, next_at, owner, lease_until)
    VALUES ('old-1', 'user:nobody', 1, '{"id":"old-1"}', ${old}, 40, ${Date.now() + 3600 * 1000}, '', 0)`);
  await until(async () => (await metric("dropped_expired")) === expired + 1, 15000, "the old event dropped");
  assert.match(srv.output(), /dropped 1 outbound webhook events older than 24 h/);
  assert.equal((await db.query("SELECT count(*) FROM outbound_events WHERE id = 'old-1'"))[0][0], "0");
  assert.ok(!recv.got.some((x) => x.body.id === "old-1"), "never sent");
});

test("a receiver that never answers does not slow the realtime path; its events wait and arrive once it answers", async () => {
  recv.hold(true);
  const mark = recv.got.length;
  // 30 users come and go: 60 events, 16 of them held in flight, the rest stored
  const users = Array.from({ length: 30 }, (_, i) => `cap${1000 + i}`);
  const sockets = await Promise.all(users.map((u) => client(u)));
  await until(() => recv.got.length - mark >= 16, 5000, "attempts held by the receiver");
  // meanwhile chat is as fast as ever
  const alice = await client("alice");
  await ask(alice, "room:join", "lobby");
  const times = [];
  for (let i = 0; i < 20; i++) {
    const t = Date.now();
    assert.equal((await ask(alice, "chat:send", { roomId: "lobby", text: `while held ${i}` })).success, true);
    times.push(Date.now() - t);
  }
  times.sort((a, b) => a - b);
  assert.ok(times[18] < 250, `chat:send acks while the receiver hangs: ${times}`);
  for (const s of sockets) s.disconnect();
  alice.disconnect();
  await delay(GRACE + 500);
  recv.hold(false);
  // held attempts time out (10 s) and are retried; everything arrives, in order per user
  await until(() => users.every((u) => recv.accepted().filter((e) => e.data.userId === u).length >= 2), 30000, "every held event delivered");
  for (const u of users) {
    const seq = recv.accepted().filter((e) => e.data.userId === u).map((e) => e.type);
    assert.deepEqual([...new Set(seq)], ["user.online", "user.offline"], `${u}: ${seq}`);
  }
});
