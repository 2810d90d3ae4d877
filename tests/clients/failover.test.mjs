// A node killed under its users: two nodes (PostgreSQL + Redis) behind real nginx; the node a
// client is on is killed (SIGKILL); socket.io-client reconnects by itself through nginx to the
// other node, rejoins, catches up with room:sync, and no acked message is lost.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { io } from "socket.io-client";
import { startProduct, startPostgres, startRedis, startNginx, signedCall, hsToken, once, collect, until } from "./common.mjs";

const SECRET = "failover-jwt-secret-padded-to-at-least-32-bytes";
const CLUSTER_SECRET = "cluster-bridge-secret-padded-to-at-least-32-bytes";
const HOOK = "failover-hook-secret-padded-to-at-least-32-bytes";
let pg;
let redis;
let nodes = [];
let nginx;

before(async () => {
  pg = await startPostgres();
  redis = await startRedis();
  const env = { JWT_SECRET: SECRET, WEBHOOK_SECRET: HOOK, DATABASE_URL: pg.createDb(), REDIS_URL: redis.url, CLUSTER_SECRET };
  for (const id of ["node-1", "node-2"]) nodes.push(await startProduct({ ...env, RT__SERVER__NODE_ID: id }));
  nginx = await startNginx(nodes.map((n) => n.port));
  for (const [u, role] of [["alice", "user"], ["bob", "user"], ["root", "admin"]]) {
    assert.equal((await signedCall(nginx.privateUrl, HOOK, "PUT", `/users/${u}`, { name: u, email: `${u}@example.com`, role, isActive: true })).status, 200);
  }
  assert.equal((await signedCall(nginx.privateUrl, HOOK, "PUT", "/rooms/lobby", { name: "Lobby", isPublic: true })).status, 200);
});
after(async () => {
  await nginx?.stop();
  for (const n of nodes) await n.stop();
  await redis?.stop();
  pg?.stop();
});

/** The connections a node has, from its metrics. */
async function connections(node) {
  const text = await (await fetch(`${node.url}/metrics`)).text();
  const row = text.split("\n").find((l) => l.startsWith("rt_connections "));
  return row ? Number(row.split(" ")[1]) : 0;
}

test("kill the node under a client: it reconnects to the other one and loses no acked message", async () => {
  const alice = io(nginx.url, {
    forceNew: true, transports: ["websocket"], rejectUnauthorized: false,
    reconnectionDelay: 100, reconnectionDelayMax: 500,
    auth: { token: hsToken(SECRET, "alice") },
  });
  const connects = collect(alice, "connect");
  await until(() => connects.length === 1, 5000, "alice connected");
  assert.equal((await alice.timeout(3000).emitWithAck("room:join", "lobby")).success, true);
  const acked = [];
  for (let i = 0; i < 5; i++) {
    const r = await alice.timeout(3000).emitWithAck("chat:send", { roomId: "lobby", text: `before ${i}`, clientMsgId: `a-${i}` });
    assert.equal(r.success, true);
    acked.push(r.messageId);
  }
  // which node is she on?
  let victim;
  await until(async () => {
    const counts = await Promise.all(nodes.map(connections));
    victim = nodes[counts.indexOf(1)];
    return counts.filter((c) => c === 1).length === 1 && counts.includes(0);
  }, 3000, "alice on exactly one node");
  const survivor = nodes.find((n) => n !== victim);
  // bob is on the surviving node and keeps talking while alice is away
  const bob = io(survivor.url, { forceNew: true, reconnection: false, transports: ["websocket"], auth: { token: hsToken(SECRET, "bob") } });
  await once(bob, "connect");
  assert.equal((await bob.timeout(3000).emitWithAck("room:join", "lobby")).success, true);

  const gone = once(alice, "disconnect", 5000);
  victim.proc.kill("SIGKILL");
  assert.equal((await gone)[0], "transport close");
  const during = [];
  for (let i = 0; i < 3; i++) {
    const r = await bob.timeout(3000).emitWithAck("chat:send", { roomId: "lobby", text: `during ${i}` });
    assert.equal(r.success, true);
    during.push(r.messageId);
  }

  await until(() => connects.length === 2, 15000, "alice reconnected through nginx");
  assert.equal(await connections(survivor), 2, "both now on the surviving node");
  assert.equal((await alice.timeout(3000).emitWithAck("room:join", "lobby")).success, true);
  const sync = await alice.timeout(3000).emitWithAck("room:sync", { roomId: "lobby", afterMessageId: acked[4] });
  assert.equal(sync.success, true);
  assert.deepEqual(sync.messages.map((m) => m.id), during, "caught up with what she missed");
  // a retry of a message acked before the crash is recognised, not stored twice
  const retry = await alice.timeout(3000).emitWithAck("chat:send", { roomId: "lobby", text: "before 4", clientMsgId: "a-4" });
  assert.deepEqual(retry, { success: true, messageId: acked[4] });
  const all = await alice.timeout(3000).emitWithAck("room:sync", { roomId: "lobby" });
  assert.deepEqual(all.messages.map((m) => m.id), [...acked, ...during], "every acked message, once, in order");
  // and she is live again: bob's next message reaches her
  const live = once(alice, "chat:message");
  await bob.timeout(3000).emitWithAck("chat:send", { roomId: "lobby", text: "welcome back" });
  assert.equal((await live)[0].text, "welcome back");
  // the dead node drops out of admin:stats (its heartbeat goes stale within 15 s)
  const root = io(survivor.url + "/admin", { forceNew: true, reconnection: false, transports: ["websocket"], auth: { token: hsToken(SECRET, "root", { role: "admin" }) } });
  await once(root, "connect");
  await until(async () => (await root.timeout(3000).emitWithAck("admin:stats")).nodes.length === 1, 30000, "dead node gone from admin:stats");
  const st = await root.timeout(3000).emitWithAck("admin:stats");
  assert.equal(st.nodes[0].id, survivor === nodes[0] ? "node-1" : "node-2");
  alice.disconnect();
  bob.disconnect();
  root.disconnect();
});
