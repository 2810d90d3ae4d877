// Two server nodes sharing a real PostgreSQL and a real redis-server: chat, member counts,
// DMs, notifications (to /ws, socket.io and SSE alike), admin:stats, disconnect-user,
// admin:sockets and disconnect-socket across nodes, each delivery exactly
// once; Redis stopped mid-test (local delivery goes on, readiness degraded) and restarted
// (the bridge reconnects by itself and cross-node delivery resumes).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { io } from "socket.io-client";
import { startProduct, startPostgres, startRedis, signedCall, signature, hsToken, once, collect, until, delay } from "./common.mjs";
import { Plain } from "./plain.mjs";
import { openEvents } from "./sse.mjs";

const SECRET = "cluster-jwt-secret-padded-to-at-least-32-bytes";
const CLUSTER_SECRET = "cluster-bridge-secret-padded-to-at-least-32-bytes";
const HOOK = "cluster-hook-secret-padded-to-at-least-32-bytes";
let pg;
let redis;
let a;
let b;
let clusterEnv;

function connect(node, user, nsp = "/", role = "user") {
  const s = io(node.url + nsp, { forceNew: true, reconnection: false, transports: ["websocket"], auth: { token: hsToken(SECRET, user, { role }) } });
  return once(s, "connect", 5000).then(() => s);
}
const ask = (s, event, payload) => s.timeout(3000).emitWithAck(event, payload);

before(async () => {
  pg = await startPostgres();
  redis = await startRedis();
  const env = { JWT_SECRET: SECRET, WEBHOOK_SECRET: HOOK, DATABASE_URL: pg.createDb(), REDIS_URL: redis.url, CLUSTER_SECRET };
  clusterEnv = env;
  a = await startProduct({ ...env, RT__SERVER__NODE_ID: "node-a" });
  b = await startProduct({ ...env, RT__SERVER__NODE_ID: "node-b" });
  for (const [u, role] of [["alice", "user"], ["bob", "user"], ["carol", "user"], ["root", "admin"]]) {
    assert.equal((await signedCall(a.url, HOOK, "PUT", `/users/${u}`, { name: u, email: `${u}@example.com`, role, isActive: true })).status, 200);
  }
  assert.equal((await signedCall(b.url, HOOK, "PUT", "/rooms/lobby", { name: "Lobby", isPublic: true })).status, 200);
  for (const n of [a, b]) {
    await until(async () => (await (await fetch(`${n.url}/readyz`)).json()).redis === "ok", 5000, "bridge up");
  }
});
after(async () => {
  for (const n of [a, b]) await n?.stop();
  await redis?.stop();
  pg?.stop();
});

test("chat across nodes: cluster-wide member counts, each message once, typing, DMs", async () => {
  const alice = await connect(a, "alice");
  const bob = await connect(b, "bob");
  const aliceUpdates = collect(alice, "room:member-update");
  assert.deepEqual(await ask(alice, "room:join", "lobby"), { success: true, roomId: "lobby", memberCount: 1, online: ["alice"] });
  // the online list counts every node
  assert.deepEqual(await ask(bob, "room:join", "lobby"), { success: true, roomId: "lobby", memberCount: 2, online: ["alice", "bob"] });
  await until(() => aliceUpdates.some((u) => u[0].userId === "bob"), 3000, "bob's join seen on node a");
  assert.deepEqual(aliceUpdates.find((u) => u[0].userId === "bob")[0], { type: "joined", userId: "bob", roomId: "lobby", memberCount: 2 });
  // a second tab of bob on the other node: still two users
  const bob2 = await connect(a, "bob");
  assert.equal((await ask(bob2, "room:join", "lobby")).memberCount, 2);

  const got = { alice: collect(alice, "chat:message"), bob: collect(bob, "chat:message"), bob2: collect(bob2, "chat:message") };
  const acks = [];
  for (let i = 0; i < 20; i++) acks.push(await ask(i % 2 ? bob : alice, "chat:send", { roomId: "lobby", text: `m${i}` }));
  assert.ok(acks.every((x) => x.success));
  await until(() => Object.values(got).every((g) => g.length === 20), 3000, "20 messages everywhere");
  await delay(300);
  // each message once everywhere; each sender's messages in their order (across nodes there
  // is no global order at delivery: a local broadcast may overtake one relayed by Redis)
  const texts = acks.map((_, i) => `m${i}`);
  for (const [who, g] of Object.entries(got)) {
    const seen = g.map((m) => m[0].text);
    assert.deepEqual([...seen].sort(), [...texts].sort(), `${who} got each message once`);
    for (const parity of [0, 1]) {
      const mine = texts.filter((_, i) => i % 2 === parity);
      assert.deepEqual(seen.filter((t) => mine.includes(t)), mine, `${who}: one sender's messages in order`);
    }
  }

  const typing = collect(bob, "chat:user-typing");
  await ask(alice, "chat:typing-start", { roomId: "lobby" });
  await until(() => typing.length === 1, 3000, "typing across nodes");

  // DMs: bob (on both nodes) is online cluster-wide
  const dms = [collect(bob, "chat:direct"), collect(bob2, "chat:direct")];
  const dm = await ask(alice, "user:direct-message", { targetId: "bob", message: "psst" });
  assert.equal(dm.delivered, true);
  await until(() => dms.every((d) => d.length === 1), 3000, "DM to both tabs on both nodes");

  // bob leaves entirely (both nodes): one left, count 1
  bob2.disconnect();
  await delay(200);
  bob.disconnect();
  await until(() => aliceUpdates.some((u) => u[0].type === "left" && u[0].userId === "bob"), 3000, "bob left");
  const left = aliceUpdates.filter((u) => u[0].type === "left");
  assert.equal(left.length, 1);
  assert.deepEqual(left[0][0], { type: "left", userId: "bob", roomId: "lobby", memberCount: 1, reason: "disconnect" });
  alice.disconnect();
});

test("edits, deletes and reactions across nodes; rooms:list counts on either node", async () => {
  const alice = await connect(a, "alice");
  const bob = await connect(b, "bob");
  await ask(alice, "room:join", "lobby");
  await ask(bob, "room:join", "lobby");
  const { messageId } = await ask(alice, "chat:send", { roomId: "lobby", text: "across" });
  const seen = { upd: collect(bob, "chat:message-updated"), react: collect(bob, "chat:reaction"), del: collect(bob, "chat:message-deleted") };
  const aliceReacts = collect(alice, "chat:reaction");
  assert.deepEqual(await ask(alice, "chat:edit", { messageId, text: "across, edited" }), { success: true });
  assert.deepEqual(await ask(bob, "chat:react", { messageId, emoji: "🌍", on: true }), { success: true });
  await until(() => seen.upd.length === 1 && seen.react.length === 1 && aliceReacts.length === 1, 3000, "edit and reaction on both nodes");
  assert.equal(seen.upd[0][0].text, "across, edited");
  assert.deepEqual(aliceReacts[0][0], { messageId, roomId: "lobby", userId: "bob", emoji: "🌍", on: true });
  // carol has read nothing in lobby yet: alice's message is unread for her on either node
  const carolA = await connect(a, "carol");
  await ask(carolA, "room:join", "lobby");
  const { messageId: second } = await ask(alice, "chat:send", { roomId: "lobby", text: "second" });
  await ask(carolA, "chat:read", { roomId: "lobby", lastReadMessageId: messageId });
  const carolB = await connect(b, "carol");
  const listed = (await ask(carolB, "rooms:list")).rooms.find((r) => r.id === "lobby");
  assert.equal(listed.unread, 1);
  assert.equal(listed.lastMessage.id, second);
  assert.equal(listed.memberCount, 3, "users in the room counted cluster-wide");
  assert.deepEqual(await ask(alice, "chat:delete", { messageId }), { success: true });
  await until(() => seen.del.length === 1, 3000, "the delete on node b");
  assert.equal(seen.del[0][0].id, messageId);
  await delay(200);
  assert.equal(seen.upd.length, 1, "each event once");
  assert.equal(seen.react.length, 1, "each event once");
  for (const s of [alice, bob, carolA, carolB]) s.disconnect();
});

test("notifications across nodes: a webhook on node a reaches a watcher and an admin on node b once", async () => {
  const carol = await connect(b, "carol");
  const carolN = await connect(a, "carol", "/notifications");
  const root = await connect(b, "root", "/admin", "admin");
  await ask(carol, "product:watch", { productId: "p1" });
  const got = [collect(carol, "notification"), collect(carolN, "notification")];
  const alerts = collect(root, "admin:stock-alert");
  const res = await signedCall(a.url, HOOK, "POST", "/notify/stock", { productId: "p1", stock: 2 });
  assert.deepEqual(await res.json(), { success: true, notified: 1 });
  await until(() => got.every((g) => g.length === 1) && alerts.length === 1, 3000, "delivered");
  const prog = collect(carol, "job:progress");
  const p = await signedCall(b.url, HOOK, "POST", "/notify/progress", { userId: "carol", jobId: "j", progress: 10, status: "processing" });
  assert.equal((await p.json()).notified, 1);
  await until(() => prog.length === 1, 3000, "progress");
  await delay(300);
  assert.equal(got[0].length + got[1].length + alerts.length, 3, "exactly once each");
  for (const s of [carol, carolN, root]) s.disconnect();
});

test("three protocols, two nodes: /ws, socket.io and SSE of one user get the same user events; rooms shared", async () => {
  const plain = await Plain.connect(b.url, hsToken(SECRET, "carol"));
  const sio = await connect(a, "carol");
  const res = await fetch(`${a.url}/api/sse-ticket`, { method: "POST", headers: { authorization: `Bearer ${hsToken(SECRET, "carol")}` } });
  const sse = await openEvents(a.url, { query: `?ticket=${(await res.json()).ticket}` });
  try {
    const viaSio = collect(sio, "job:progress");
    const p = await signedCall(a.url, HOOK, "POST", "/notify/progress", { userId: "carol", jobId: "j3", progress: 30, status: "processing" });
    assert.equal((await p.json()).success, true);
    const frame = await plain.next("job:progress");
    await until(() => viaSio.length === 1 && sse.events.some((e) => e.event === "job:progress"), 3000, "socket.io and SSE");
    assert.deepEqual(frame.payload, viaSio[0][0]);
    assert.deepEqual(sse.events.find((e) => e.event === "job:progress").data, viaSio[0][0]);
    // a DM from node a reaches the /ws socket on node b
    const alice = await connect(a, "alice");
    assert.equal((await ask(alice, "user:direct-message", { targetId: "carol", message: "to all tabs" })).success, true);
    assert.equal((await plain.next("chat:direct")).payload.message, "to all tabs");
    // one room, both nodes, both protocols
    assert.equal((await plain.call("room:join", "lobby")).success, true);
    assert.equal((await ask(alice, "room:join", "lobby")).success, true);
    const sent = await ask(alice, "chat:send", { roomId: "lobby", text: "node a to /ws on node b" });
    assert.equal((await plain.next((f) => f.type === "chat:message" && f.payload.id === sent.messageId)).payload.text, "node a to /ws on node b");
    const got = once(alice, "chat:message");
    const back = await plain.call("chat:send", { roomId: "lobby", text: "back from /ws" });
    assert.equal((await got)[0].id, back.messageId);
    alice.disconnect();
  } finally {
    sse.close();
    sio.disconnect();
    plain.close();
  }
});

test("admin:stats lists every node; disconnect-user reaches the other node", async () => {
  const root = await connect(a, "root", "/admin", "admin");
  const bob = await connect(b, "bob");
  const bobN = await connect(a, "bob", "/notifications");
  const alice = await connect(b, "alice");
  let st;
  await until(async () => {
    st = await ask(root, "admin:stats");
    return st.connections === 4 && st.nodes.length === 2;
  }, 8000, "both nodes with their connections");
  assert.deepEqual(st.nodes.map((n) => n.id).sort(), ["node-a", "node-b"]);
  assert.deepEqual(st.namespaces, { "/": 2, "/admin": 1, "/notifications": 1 });
  // whole-namespace broadcasts cross nodes too, once each
  const ops = await connect(b, "root", "/admin", "admin");
  const heard = [collect(alice, "system:announcement"), collect(bob, "system:announcement")];
  const admins = [collect(root, "admin:announcement"), collect(ops, "admin:announcement")];
  await ask(root, "admin:announce", { message: "maintenance" });
  await ask(ops, "broadcast:all", { from: "b" });
  await until(() => heard.every((h) => h.length === 1) && admins.every((x) => x.length === 1), 3000, "announcements on both nodes");
  await delay(200);
  assert.deepEqual(heard.map((h) => h.length), [1, 1]);
  assert.deepEqual(admins.map((x) => x[0][0]), [{ from: "b" }, { from: "b" }]);
  ops.disconnect();
  const gone = [once(bob, "disconnect"), once(bobN, "disconnect")];
  assert.deepEqual(await ask(root, "admin:disconnect-user", { userId: "bob" }), { success: true });
  for (const [reason] of await Promise.all(gone)) assert.equal(reason, "io server disconnect");
  await delay(200);
  assert.equal(alice.connected, true);
  for (const s of [root, alice]) s.disconnect();
});

test("admin:sockets lists both nodes' sockets and streams; admin:disconnect-socket ends one on the other node", async () => {
  assert.equal((await signedCall(a.url, HOOK, "PUT", "/users/hugo", { name: "Hugo", email: "h@example.com", role: "user", isActive: true })).status, 200);
  const token = hsToken(SECRET, "hugo");
  const root = await connect(a, "root", "/admin", "admin");
  const onB = await connect(b, "hugo");
  const onA = await connect(a, "hugo");
  const plain = await Plain.connect(b.url, token);
  const sse = await openEvents(b.url, { headers: { authorization: `Bearer ${token}` } });
  try {
    let mine;
    await until(async () => (mine = (await ask(root, "admin:sockets", { userId: "hugo" })).sockets).length === 4, 5000, "hugo's four connections on two nodes");
    const where = Object.fromEntries(mine.map((s) => [s.id, s.node]));
    assert.equal(where[onB.id], "node-b");
    assert.equal(where[onA.id], "node-a");
    assert.deepEqual(mine.filter((s) => s.node === "node-b").map((s) => s.transport).sort(), ["sse", "websocket", "ws"]);
    const all = (await ask(root, "admin:sockets")).sockets;
    assert.deepEqual([...new Set(all.map((s) => s.node))].sort(), ["node-a", "node-b"]);
    assert.equal(new Set(all.map((s) => s.id)).size, all.length, "each socket once");
    // the one on node b, asked through node a: that socket alone ends
    const bId = onB.id;
    const gone = once(onB, "disconnect", 5000);
    assert.equal((await ask(root, "admin:disconnect-socket", { socketId: bId })).success, true);
    assert.equal((await gone)[0], "io server disconnect");
    const ws = mine.find((s) => s.transport === "ws");
    assert.equal((await ask(root, "admin:disconnect-socket", { socketId: ws.id })).success, true);
    assert.equal((await plain.closeInfo()).code, 4403);
    const stream = mine.find((s) => s.transport === "sse");
    assert.equal((await ask(root, "admin:disconnect-socket", { socketId: stream.id })).success, true);
    await until(() => sse.ended, 3000, "the stream on node b ends");
    assert.equal((await ask(root, "admin:disconnect-socket", { socketId: bId })).code, "NOT_FOUND");
    assert.equal(onA.connected, true);
    assert.deepEqual((await ask(root, "admin:sockets", { userId: "hugo" })).sockets.map((s) => s.id), [onA.id]);
  } finally {
    sse.close();
    plain.close();
    for (const s of [root, onA, onB]) s.disconnect();
  }
});

test("per node, /metrics counts the messages of other nodes received and the channels subscribed", async () => {
  const metric = async (node, name) => Number((await (await fetch(`${node.url}/metrics`)).text()).match(new RegExp(`^${name} (\\d+)`, "m"))?.[1]);
  for (const n of [a, b]) assert.equal(await metric(n, "rt_bus_subscriptions"), 1, "one channel: rt:broadcast");
  const before = await metric(b, "rt_bus_messages_received_total");
  const alice = await connect(a, "alice");
  assert.equal((await ask(alice, "room:join", "lobby")).success, true);
  assert.equal((await ask(alice, "chat:send", { roomId: "lobby", text: "counted on b" })).success, true);
  await until(async () => (await metric(b, "rt_bus_messages_received_total")) > before, 3000, "b counts a's broadcast");
  alice.disconnect();
});

test("a signed call is good once in the whole cluster: replayed on the other node it is refused", async () => {
  const raw = JSON.stringify({ name: "Replay", isPublic: true });
  const header = signature(HOOK, "PUT", "/internal/rooms/replay", raw);
  const first = await signedCall(a.url, HOOK, "PUT", "/rooms/replay", raw, { header });
  assert.equal(first.status, 200);
  const again = await signedCall(b.url, HOOK, "PUT", "/rooms/replay", raw, { header });
  assert.equal(again.status, 401);
  assert.match((await again.json()).error, /replay/i);
});

test("Redis stopped: local delivery goes on, readiness degraded; restarted: the bridge reconnects and cross-node delivery resumes", async () => {
  const alice = await connect(a, "alice");
  const carol = await connect(a, "carol");
  const bob = await connect(b, "bob");
  for (const s of [alice, carol, bob]) assert.equal((await ask(s, "room:join", "lobby")).success, true);
  const carolGot = collect(carol, "chat:message");
  const bobGot = collect(bob, "chat:message");

  await redis.stop();
  await until(async () => (await fetch(`${a.url}/readyz`)).status === 503, 5000, "node a degraded");
  assert.deepEqual(await (await fetch(`${a.url}/readyz`)).json(), { status: "degraded", db: "ok", redis: "down" });
  const local = await ask(alice, "chat:send", { roomId: "lobby", text: "while redis is down" });
  assert.equal(local.success, true, "acked and stored without Redis");
  await until(() => carolGot.some((m) => m[0].text === "while redis is down"), 3000, "local delivery");

  await redis.restart();
  for (const n of [a, b]) {
    await until(async () => (await fetch(`${n.url}/readyz`)).status === 200, 15000, "bridge back");
  }
  // both bridges have resubscribed: a message from a reaches b
  await until(async () => {
    await ask(alice, "chat:send", { roomId: "lobby", text: "after restart" });
    await delay(100);
    return bobGot.some((m) => m[0].text === "after restart");
  }, 10000, "cross-node delivery resumed");
  const metrics = await (await fetch(`${a.url}/metrics`)).text();
  assert.match(metrics, /rt_bridge_reconnects_total [1-9]/);
  for (const s of [alice, carol, bob]) s.disconnect();
});

test("connection state recovery across nodes: back on the other node with the same id, rooms and missed messages", async () => {
  const alice = await connect(a, "alice");
  const bob = await connect(b, "bob");
  for (const s of [alice, bob]) assert.equal((await ask(s, "room:join", "lobby")).success, true);
  const first = once(alice, "chat:message");
  await ask(bob, "chat:send", { roomId: "lobby", text: "r1" });
  assert.equal((await first)[0].text, "r1");
  const { id, _pid: pid, _lastOffset: offset } = alice;
  assert.ok(pid && offset, "recovery is on: the client holds a pid and an offset");
  // the connection drops (not a deliberate disconnect, so the session is kept)
  const dropped = once(alice, "disconnect");
  alice.io.engine.transport.ws.terminate();
  assert.equal((await dropped)[0], "transport close");
  alice.close();
  await delay(200);
  await ask(bob, "chat:send", { roomId: "lobby", text: "r2" });
  await ask(bob, "chat:send", { roomId: "lobby", text: "r3" });
  // it comes back on node b
  // (behind nginx the same client object would reconnect to whichever node is up; here a
  // client for node b takes over the dropped one's recovery state)
  const back = io(b.url, { forceNew: true, reconnection: false, autoConnect: false, transports: ["websocket"], auth: { token: hsToken(SECRET, "alice") } });
  back._pid = pid;
  back._lastOffset = offset;
  const missed = collect(back, "chat:message");
  back.connect();
  await once(back, "connect", 5000);
  assert.equal(back.recovered, true);
  assert.equal(back.id, id);
  await until(() => missed.length === 2, 3000, "missed messages");
  assert.deepEqual(missed.map((m) => m[0].text), ["r2", "r3"]);
  // still in the room without joining again, and still herself
  const live = once(back, "chat:message");
  await ask(bob, "chat:send", { roomId: "lobby", text: "r4" });
  assert.equal((await live)[0].text, "r4");
  assert.equal((await ask(back, "chat:send", { roomId: "lobby", text: "from alice" })).success, true);
  back.disconnect();
  bob.disconnect();
});

/** redis-cli against the test's Redis (installed with redis-server). */
function redisCli(...args) {
  return execFileSync("redis-cli", ["-p", String(redis.port), ...args], { encoding: "utf8" }).trim();
}
async function rejected(node, reason) {
  const text = await (await fetch(`${node.url}/metrics`)).text();
  const m = text.match(new RegExp(`^rt_bridge_rejected_total\\{reason="${reason}"\\} (\\d+)`, "m"));
  return m ? Number(m[1]) : 0;
}

test("a forged PUBLISH on the bridge channel is dropped and counted, whatever it claims", async () => {
  const alice = await connect(a, "alice");
  assert.equal((await ask(alice, "room:join", "lobby")).success, true);
  const heard = [collect(alice, "chat:message"), collect(alice, "system:announcement")];
  const gone = collect(alice, "disconnect");
  const before = await rejected(a, "unverified");
  const forged = [
    // the unsealed form every node accepted before
    JSON.stringify({ o: "node-x", k: "b", n: "/", r: ["room:lobby"], e: [], t: `42["chat:message",{"id":"fake","roomId":"lobby","userId":"root","text":"from admin1"}]`, b: [], x: null, p: Date.now() }),
    JSON.stringify({ o: "node-x", k: "b", n: "/", r: [], e: [], t: `42["system:announcement",{"message":"fake"}]`, b: [], x: null, p: Date.now() }),
    JSON.stringify({ o: "node-x", k: "d", n: "/", r: [], e: [], t: "", b: [], x: null, p: Date.now() }),
    // a sealed-looking one with a made-up MAC
    "0".repeat(64) + `0000000000000001.1.` + JSON.stringify({ o: "node-x", k: "d", n: "/", r: [], e: [], t: "", b: [], x: null, p: Date.now() }),
  ];
  for (const f of forged) assert.equal(redisCli("PUBLISH", "rt:broadcast", f), "2", "both nodes heard it");
  await until(async () => (await rejected(a, "unverified")) >= before + forged.length, 3000, "counted on node a");
  await delay(200);
  assert.deepEqual(heard.map((h) => h.length), [0, 0], "nothing delivered");
  assert.equal(gone.length, 0, "nobody disconnected");
  assert.equal((await ask(alice, "room:join", "lobby")).success, true, "still connected");
  alice.disconnect();
});

test("a captured bridge message published again is dropped as a replay", async () => {
  const alice = await connect(a, "alice");
  const bob = await connect(b, "bob");
  for (const s of [alice, bob]) assert.equal((await ask(s, "room:join", "lobby")).success, true);
  // a Redis client listening on the channel captures the genuine message
  const sub = spawn("redis-cli", ["-p", String(redis.port), "SUBSCRIBE", "rt:broadcast"], { stdio: ["ignore", "pipe", "ignore"] });
  let captured = "";
  sub.stdout.on("data", (d) => (captured += d));
  await until(() => captured.includes("subscribe"), 3000, "subscribed");
  const got = collect(alice, "chat:message");
  await ask(bob, "chat:send", { roomId: "lobby", text: "only once" });
  await until(() => got.length === 1, 3000, "delivered once");
  let frame;
  await until(() => (frame = captured.split("\n").find((l) => l.includes("only once"))), 3000, "captured");
  sub.kill();
  assert.match(frame, /^[0-9a-f]{64}[0-9a-f]{16}\.\d+\./, "sealed: MAC, process, sequence");
  const before = await rejected(a, "replayed");
  redisCli("PUBLISH", "rt:broadcast", frame);
  await until(async () => (await rejected(a, "replayed")) === before + 1, 3000, "counted as a replay");
  await delay(200);
  assert.equal(got.length, 1, "not delivered again");
  for (const s of [alice, bob]) s.disconnect();
});

test("a kept session written to Redis by someone else is not restored", async () => {
  const alice = await connect(a, "alice");
  const bob = await connect(b, "bob");
  for (const s of [alice, bob]) assert.equal((await ask(s, "room:join", "lobby")).success, true);
  const first = once(alice, "chat:message");
  await ask(bob, "chat:send", { roomId: "lobby", text: "an offset" });
  await first;
  const offset = alice._lastOffset;
  assert.ok(offset);
  redisCli("SET", "rt:session:/:forged-pid", JSON.stringify({ id: "FORGEDSOCKETID000000", rooms: ["room:lobby", "user:root"] }), "PX", "60000");
  const before = await rejected(b, "unverified");
  const mallory = io(b.url, { forceNew: true, reconnection: false, autoConnect: false, transports: ["websocket"], auth: { token: hsToken(SECRET, "carol") } });
  mallory._pid = "forged-pid";
  mallory._lastOffset = offset;
  mallory.connect();
  await once(mallory, "connect", 5000);
  assert.notEqual(mallory.id, "FORGEDSOCKETID000000");
  assert.equal(mallory.recovered, false);
  assert.equal(await rejected(b, "unverified"), before + 1);
  for (const s of [alice, bob, mallory]) s.disconnect();
});

test("every key the nodes write in Redis expires", async () => {
  const alice = await connect(a, "alice");
  const bob = await connect(b, "bob");
  for (const s of [alice, bob]) assert.equal((await ask(s, "room:join", "lobby")).success, true);
  // a kept session too: a dropped connection with recovery on
  const first = once(alice, "chat:message");
  await ask(bob, "chat:send", { roomId: "lobby", text: "before the drop" });
  await first;
  alice.io.engine.transport.ws.terminate();
  await until(() => redisCli("--scan", "--pattern", "rt:session:*").length > 0, 3000, "session kept");
  const keys = redisCli("--scan", "--pattern", "rt:*").split("\n").filter(Boolean);
  assert.ok(keys.includes("rt:nodes"), `rt:nodes in ${keys}`);
  assert.ok(keys.some((k) => k.startsWith("rt:presence:/:") && k.endsWith("lobby")), `a presence set in ${keys}`);
  for (const k of keys) {
    const ttl = Number(redisCli("PTTL", k));
    assert.ok(ttl > 0 && ttl <= 120000, `${k} expires (PTTL ${ttl})`);
  }
  alice.close();
  bob.disconnect();
});

test("admin:rooms and admin:stats are cluster-wide", async () => {
  const root = await connect(a, "root", "/admin", "admin");
  const alice = await connect(a, "alice");
  const bob = await connect(b, "bob");
  assert.equal((await signedCall(a.url, HOOK, "PUT", "/rooms/far", { name: "Far", isPublic: true })).status, 200);
  for (const s of [alice, bob]) assert.equal((await ask(s, "room:join", "lobby")).success, true);
  assert.equal((await ask(bob, "room:join", "far")).success, true);
  const rooms = (await ask(root, "admin:rooms")).rooms;
  assert.deepEqual(rooms.find((r) => r.id === "lobby"), { id: "lobby", name: "Lobby", isPublic: true, memberCount: 2 });
  assert.deepEqual(rooms.find((r) => r.id === "far"), { id: "far", name: "Far", isPublic: true, memberCount: 1 }, "members only on node b");
  // events counted on node b show up in node a's answer (through node b's heartbeat)
  const before = (await ask(root, "admin:stats")).eventsIn;
  for (let i = 0; i < 3; i++) await ask(bob, "chat:send", { roomId: "far", text: `e${i}` });
  await until(async () => (await ask(root, "admin:stats")).eventsIn >= before + 3, 8000, "node b's events counted");
  for (const s of [root, alice, bob]) s.disconnect();
});

test("directory changes reach sockets on the other node within 1 s: removal from a private room, a disabled user, a demoted admin", async () => {
  const put = (node, route, body) => signedCall(node.url, HOOK, "PUT", route, body);
  for (const [u, role] of [["hank", "user"], ["ops", "admin"]]) {
    assert.equal((await put(a, `/users/${u}`, { name: u, email: `${u}@example.com`, role, isActive: true })).status, 200);
  }
  assert.equal((await put(a, "/rooms/vault", { name: "Vault", isPublic: false, members: ["alice", "bob"] })).status, 200);
  const alice = await connect(b, "alice");
  const bob = await connect(a, "bob");
  for (const s of [alice, bob]) assert.equal((await ask(s, "room:join", "vault")).success, true);
  const removed = collect(bob, "room:removed");
  const updates = collect(alice, "room:member-update");
  assert.equal((await signedCall(b.url, HOOK, "DELETE", "/rooms/vault/members/bob")).status, 200);
  await until(() => removed.length === 1, 1000, "bob (node a) taken out by a call to node b");
  await until(() => updates.some((u) => u[0].type === "left" && u[0].reason === "removed"), 1000, "alice (node b) told");
  const bobHeard = collect(bob, "chat:message");
  assert.equal((await ask(alice, "chat:send", { roomId: "vault", text: "bob is out" })).success, true);
  await delay(300);
  assert.equal(bobHeard.length, 0);

  const hank = [await connect(a, "hank"), await connect(b, "hank"), await connect(b, "hank", "/notifications")];
  const ends = hank.map((s) => once(s, "disconnect", 1000));
  assert.equal((await put(a, "/users/hank", { name: "hank", email: "hank@example.com", role: "user", isActive: false })).status, 200);
  for (const [reason] of await Promise.all(ends)) assert.equal(reason, "io server disconnect");

  const ops = await connect(b, "ops", "/admin", "admin");
  const opsChat = await connect(b, "ops");
  const demoted = once(ops, "disconnect", 1000);
  assert.equal((await put(a, "/users/ops", { name: "ops", email: "ops@example.com", role: "user", isActive: true })).status, 200);
  assert.equal((await demoted)[0], "io server disconnect");
  assert.equal(opsChat.connected, true);
  for (const s of [alice, bob, opsChat]) s.disconnect();
});

test("the server API across nodes: an emit to one node reaches exactly the targeted sockets, /ws and streams on both", async () => {
  const alice = [await connect(a, "alice"), await connect(b, "alice")];
  const bob = await connect(b, "bob");
  const carol = await connect(a, "carol");
  const plain = await Plain.connect(b.url, hsToken(SECRET, "alice"));
  const ticket = await (await fetch(`${b.url}/api/sse-ticket`, { method: "POST", headers: { authorization: `Bearer ${hsToken(SECRET, "alice")}` } })).json();
  const stream = await openEvents(b.url, { query: `?ticket=${ticket.ticket}` });
  assert.equal((await ask(bob, "room:join", "lobby")).success, true);
  const got = { a0: collect(alice[0], "invoice:paid"), a1: collect(alice[1], "invoice:paid"), bob: collect(bob, "invoice:paid"), carol: collect(carol, "invoice:paid") };
  await delay(200);
  const res = await signedCall(a.url, HOOK, "POST", "/emit", { event: "invoice:paid", data: { n: 1 }, to: { users: ["alice"], rooms: ["lobby"] } });
  assert.equal(res.status, 200);
  await until(() => got.a0.length === 1 && got.a1.length === 1 && got.bob.length === 1, 3000, "alice on both nodes and bob's room");
  assert.deepEqual((await plain.next("invoice:paid")).payload, { n: 1 });
  await until(() => stream.events.some((e) => e.event === "invoice:paid"), 3000, "alice's stream on node b");
  await delay(300);
  assert.deepEqual([got.a0.length, got.a1.length, got.bob.length, got.carol.length], [1, 1, 1, 0], "exactly the targeted sockets, once");
  assert.equal(stream.events.filter((e) => e.event === "invoice:paid").length, 1);
  // a disconnect through node b ends alice's sockets on node a too
  const ends = alice.map((s) => once(s, "disconnect", 2000));
  assert.equal((await signedCall(b.url, HOOK, "POST", "/users/alice/disconnect")).status, 200);
  for (const [reason] of await Promise.all(ends)) assert.equal(reason, "io server disconnect");
  assert.equal((await plain.closeInfo()).code, 4403);
  // presence and stats read cluster-wide from either node
  const st = await (await signedCall(a.url, HOOK, "GET", "/stats")).json();
  assert.deepEqual(st.nodes.map((n) => n.id).sort(), ["node-a", "node-b"]);
  const p = await (await signedCall(a.url, HOOK, "GET", "/presence?userIds=bob")).json();
  assert.equal(p.statuses[0].status, "online", "bob is on node b");
  assert.deepEqual((await (await signedCall(a.url, HOOK, "GET", "/rooms/lobby/online")).json()).online, ["bob"]);
  stream.close();
  bob.disconnect();
  carol.disconnect();
});

test("the event proxy in a cluster: a call through node c, the backend's emit through node a, back to the caller", async () => {
  const { spawn } = await import("node:child_process");
  const net = await import("node:net");
  const port = await new Promise((resolve) => { const s = net.createServer(); s.listen(0, "127.0.0.1", () => { const p = s.address().port; s.close(() => resolve(p)); }); });
  const PROXY_SECRET = "cluster-proxy-secret-padded-to-at-least-32-b";
  const c = await startProduct({ ...clusterEnv, RT__SERVER__NODE_ID: "node-c", RT__PROXY__URL: `http://127.0.0.1:${port}/rpc`, RT__PROXY__SECRET: PROXY_SECRET });
  const backend = spawn("node", [new URL("../../examples/backend/server.mjs", import.meta.url).pathname], {
    env: { ...process.env, PORT: String(port), PROXY_SECRET, WEBHOOK_SECRET: HOOK, RT_URL: a.url, SHIP_AFTER_MS: "100" },
    stdio: ["ignore", "pipe", "inherit"],
  });
  try {
    let out = "";
    backend.stdout.on("data", (d) => { out += d; });
    await until(() => /backend listening/.test(out), 10000, "the example backend");
    await until(async () => (await (await fetch(`${c.url}/readyz`)).json()).redis === "ok", 5000, "node c's bridge");
    const carol = await connect(c, "carol");
    const shipped = once(carol, "order:shipped", 3000);
    const placed = await ask(carol, "rpc:order.place", { sku: "sku-1", qty: 1 });
    assert.deepEqual(placed, { success: true, result: { orderId: "o-1", status: "placed" } });
    assert.deepEqual((await shipped)[0], { orderId: "o-1", carrier: "DHL" });
    // node a has no proxy: the same event there is unknown
    const carolA = await connect(a, "carol");
    assert.equal((await ask(carolA, "rpc:order.place", { sku: "sku-1", qty: 1 })).code, "UNKNOWN_EVENT");
    carol.disconnect();
    carolA.disconnect();
  } finally {
    const gone = new Promise((r) => backend.once("close", r));
    backend.kill("SIGTERM");
    await gone;
    await c.stop();
  }
});

test("a node with REDIS_URL refuses to start without a cluster secret of at least 32 bytes", async () => {
  for (const [secret, msg] of [[undefined, /CLUSTER_SECRET\) is not/], ["short", /at least 32 bytes/]]) {
    const env = { JWT_SECRET: SECRET, WEBHOOK_SECRET: HOOK, DATABASE_URL: pg.createDb(), REDIS_URL: redis.url, CLUSTER_SECRET: secret ?? "" };
    const err = await startProduct(env).then(() => assert.fail("started"), (e) => e.message);
    assert.match(err, msg);
  }
});
