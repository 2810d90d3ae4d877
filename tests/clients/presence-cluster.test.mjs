// Presence and outbound webhooks (DESIGN 13) on two nodes sharing a real PostgreSQL and a
// real redis-server: user:status reaches subscribers on both nodes exactly once, a reconnect
// to the other node within the grace does not flap, last seen is stored once, the online list
// of room:join counts both nodes; a user whose node dies turns offline; each webhook event is
// sent once by one node, and an event whose sender dies mid-send is sent again (same id) by
// another node once its lease ran out.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { io } from "socket.io-client";
import { startProduct, startPostgres, startRedis, signedCall, hsToken, once, collect, until, delay, startHookReceiver } from "./common.mjs";

const SECRET = "pcluster-jwt-secret-padded-to-at-least-32-bytes";
const CLUSTER_SECRET = "pcluster-bridge-secret-padded-to-at-least-32-bytes";
const HOOK = "pcluster-hook-secret-padded-to-at-least-32-bytes";
const OUT = "pcluster-outbound-secret-padded-to-32-bytes";
const GRACE = 1000;
let pg;
let redis;
let recv;
let env;
let a;
let b;

function connect(node, user) {
  const s = io(node.url, { forceNew: true, reconnection: false, transports: ["websocket"], auth: { token: hsToken(SECRET, user) } });
  return once(s, "connect", 5000).then(() => s);
}
const ask = (s, event, payload) => s.timeout(3000).emitWithAck(event, payload);

before(async () => {
  pg = await startPostgres();
  redis = await startRedis();
  recv = await startHookReceiver(OUT);
  const dbUrl = pg.createDb();
  env = {
    JWT_SECRET: SECRET, WEBHOOK_SECRET: HOOK, DATABASE_URL: dbUrl, REDIS_URL: redis.url, CLUSTER_SECRET,
    RT__PRESENCE__GRACE_MS: String(GRACE),
    RT__WEBHOOKS__OUTBOUND_URL: `${recv.url}/hooks`,
    RT__WEBHOOKS__OUTBOUND_SECRET: OUT,
    RT__WEBHOOKS__OUTBOUND_LEASE_MS: "2000",
  };
  a = await startProduct({ ...env, RT__SERVER__NODE_ID: "node-a" });
  b = await startProduct({ ...env, RT__SERVER__NODE_ID: "node-b" });
  for (const u of ["alice", "bob", "carol", "dave", "erin", "frank"]) {
    assert.equal((await signedCall(a.url, HOOK, "PUT", `/users/${u}`, { name: u, email: `${u}@example.com`, role: "user", isActive: true })).status, 200);
  }
  assert.equal((await signedCall(a.url, HOOK, "PUT", "/rooms/lobby", { name: "Lobby", isPublic: true })).status, 200);
  for (const n of [a, b]) {
    await until(async () => (await (await fetch(`${n.url}/readyz`)).json()).redis === "ok", 5000, "bridge up");
  }
});
after(async () => {
  for (const n of [a, b]) await n?.stop();
  await redis?.stop();
  pg?.stop();
  await recv?.stop();
});

test("user:status across nodes: once per change, no flap when reconnecting to the other node, last seen", async () => {
  const alice = await connect(a, "alice");
  const carol = await connect(b, "carol");
  for (const s of [alice, carol]) {
    assert.deepEqual(await ask(s, "presence:subscribe", { userIds: ["bob"] }), { success: true, statuses: [{ userId: "bob", status: "offline", lastSeen: null }] });
  }
  const seen = { alice: collect(alice, "user:status"), carol: collect(carol, "user:status") };
  const bob = await connect(b, "bob");
  await until(() => seen.alice.length === 1 && seen.carol.length === 1, 3000, "bob online on both nodes");
  // a subscriber on either node reads the same status
  assert.deepEqual((await ask(alice, "presence:subscribe", { userIds: ["bob"] })).statuses, [{ userId: "bob", status: "online", lastSeen: null }]);

  // bob moves from node b to node a within the grace: nothing to tell
  bob.disconnect();
  await delay(300);
  const bobA = await connect(a, "bob");
  await delay(GRACE + 700);
  assert.equal(seen.alice.length, 1, JSON.stringify(seen.alice));
  assert.equal(seen.carol.length, 1, JSON.stringify(seen.carol));

  const before = Date.now();
  bobA.disconnect();
  await until(() => seen.alice.length === 2 && seen.carol.length === 2, GRACE + 3000, "bob offline on both nodes");
  await delay(500);
  assert.equal(seen.alice.length, 2, "once per change");
  assert.equal(seen.carol.length, 2, "once per change");
  const off = seen.alice[1][0];
  assert.deepEqual(seen.carol[1][0], off);
  assert.equal(off.status, "offline");
  assert.ok(off.lastSeen >= before - 50 && off.lastSeen <= before + 500, `${off.lastSeen} vs ${before}`);
  const rows = await pg.query(env.DATABASE_URL, "SELECT last_seen_at FROM users WHERE id = 'bob'");
  assert.equal(Number(rows[0][0]), off.lastSeen);
  const dave = await connect(b, "dave");
  assert.deepEqual((await ask(dave, "presence:subscribe", { userIds: ["bob", "alice"] })).statuses, [
    { userId: "bob", status: "offline", lastSeen: off.lastSeen },
    { userId: "alice", status: "online", lastSeen: null },
  ]);
  for (const s of [alice, carol, dave]) s.disconnect();
});

test("room:join's online list counts every node", async () => {
  const alice = await connect(a, "alice");
  const erin = await connect(b, "erin");
  assert.deepEqual((await ask(alice, "room:join", "lobby")).online, ["alice"]);
  assert.deepEqual((await ask(erin, "room:join", "lobby")).online, ["alice", "erin"]);
  alice.disconnect();
  erin.disconnect();
});

test("a node dies with a user's only socket: another node turns the user offline (and says so once)", async () => {
  const alice = await connect(a, "alice");
  assert.equal((await ask(alice, "presence:subscribe", { userIds: ["frank"] })).statuses[0].status, "offline");
  const seen = collect(alice, "user:status");
  const frank = await connect(b, "frank");
  await until(() => seen.length === 1, 3000, "frank online");
  const died = Date.now();
  await b.stop(); // SIGKILL: no goodbye
  frank.close();
  // node a finds node b's heartbeat stale (15 s), then settles frank after the grace
  await until(() => seen.length === 2, 30000, "frank offline after node b died");
  assert.equal(seen[1][0].status, "offline");
  assert.ok(seen[1][0].lastSeen >= died, "last seen when the node was found dead");
  await delay(500);
  assert.equal(seen.length, 2, "said once");
  b = await startProduct({ ...env, RT__SERVER__NODE_ID: "node-b2" });
  await until(async () => (await (await fetch(`${b.url}/readyz`)).json()).redis === "ok", 5000, "bridge up");
  alice.disconnect();
});

test("webhooks with two nodes: each event once, in order per key; a sender that dies mid-send is replaced", async () => {
  await delay(GRACE + 2000);
  const accepted = recv.accepted();
  assert.ok(recv.got.every((g) => g.verified), "every attempt signed");
  const ids = accepted.map((e) => e.id);
  assert.equal(new Set(ids).size, ids.length, `each event once: ${JSON.stringify(accepted.map((e) => [e.type, e.data]))}`);
  const of = (pred) => accepted.filter(pred).map((e) => e.type);
  assert.deepEqual(of((e) => e.data.userId === "bob"), ["user.online", "user.offline"]);
  for (const u of ["alice", "carol", "dave", "erin"]) {
    assert.deepEqual(of((e) => e.data.userId === u).slice(0, 2), ["user.online", "user.offline"], u);
  }
  assert.deepEqual(of((e) => e.data.roomId === "lobby"), ["room.occupied", "room.vacated"]);

  // the receiver holds the next request; node b goes, so node a is the one sending
  await b.stop();
  recv.hold(true);
  const mark = recv.got.length;
  const erin = await connect(a, "erin");
  await until(() => recv.got.length > mark, 5000, "node a sending user.online");
  const held = recv.got[mark].body;
  assert.equal(held.type, "user.online");
  // node a dies mid-send; node c (same cluster) takes the event over when the lease ran out
  await a.stop();
  recv.hold(false);
  const c = await startProduct({ ...env, RT__SERVER__NODE_ID: "node-c" });
  try {
    await until(() => recv.accepted().some((e) => e.id === held.id), 15000, "the held event sent again by node c");
    const again = recv.got.filter((g) => g.body.id === held.id && g.status === 200);
    assert.equal(again[0].raw, recv.got[mark].raw, "the same body");
  } finally {
    erin.disconnect();
    await c.stop();
  }
});
