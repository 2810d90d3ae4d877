// Memory under connection churn (DESIGN 20): thousands of connect / join / disconnect cycles
// with the real socket.io-client, over WebSocket, polling with upgrade and polling only, half
// of them ending abruptly (the TCP connection dropped, no close packet), then every map of
// the node (`rt_state_entries{map}` in /metrics) returns to what it held before: what is kept
// is bounded by what is live (and the recovery window, the presence grace), never by what has
// been. On one node (SQLite), and on two nodes sharing PostgreSQL and a real redis-server.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import net from "node:net";
import { io } from "socket.io-client";
import { startProduct, startPostgres, startRedis, signedCall, hsToken, until, startHookReceiver } from "./common.mjs";

const SECRET = "churn-jwt-secret-padded-to-at-least-32-bytes";
const HOOK = "churn-hook-secret-padded-to-at-least-32-bytes";
const OUT = "churn-outbound-secret-padded-to-32-bytes";
const CLUSTER_SECRET = "churn-bridge-secret-padded-to-at-least-32-bytes";
const USERS = Array.from({ length: 12 }, (_, i) => `churner${i}`);
const ROOMS = ["churn-a", "churn-b", "churn-c"];
// short windows, so that what they keep runs out within the test (a client that vanished
// before its next request reached the server is only found out by the ping timeout)
const env = {
  JWT_SECRET: SECRET,
  WEBHOOK_SECRET: HOOK,
  RT__ENGINE__PING_INTERVAL_MS: "1500",
  RT__ENGINE__PING_TIMEOUT_MS: "1500",
  RT__PRESENCE__GRACE_MS: "300",
  RT__RECOVERY__MAX_DISCONNECTION_MS: "1500",
};
/** Maps bounded by the users who ever sent (a token bucket each, swept when full again),
 * not by sockets: at most one entry per user. */
const PER_USER = ["user_send_buckets", "request_buckets"];
/** At most one remembered sender process per other node. */
const PER_NODE = ["bridge_senders"];

let recv;
let pg;
let redis;
const servers = [];

before(async () => {
  recv = await startHookReceiver(OUT);
});
after(async () => {
  for (const s of servers) await s.stop();
  await recv?.stop();
  await redis?.stop();
  pg?.stop();
});

async function sizes(url) {
  const text = await (await fetch(`${url}/metrics`)).text();
  const out = {};
  for (const m of text.matchAll(/^rt_state_entries\{map="([a-z_]+)"\} (\d+)$/gm)) out[m[1]] = Number(m[2]);
  return out;
}

async function setUp(url) {
  for (const u of USERS) {
    const res = await signedCall(url, HOOK, "PUT", `/users/${u}`, { name: u, email: `${u}@example.com`, role: "user", isActive: true });
    assert.equal(res.status, 200);
  }
  for (const r of ROOMS) assert.equal((await signedCall(url, HOOK, "PUT", `/rooms/${r}`, { name: r, isPublic: true })).status, 200);
}

const MODES = [["websocket"], ["polling", "websocket"], ["polling"]];

/** Cycle `i`: connect, join (sometimes the same room twice, sometimes two), follow, send,
 * then leave cleanly or drop the connection; resolves when the client side is done. */
async function cycle(url, i) {
  const agent = new http.Agent();
  const s = io(url, {
    forceNew: true,
    reconnection: false,
    transports: MODES[i % 3],
    auth: { token: hsToken(SECRET, USERS[i % USERS.length]) },
    agent,
  });
  s.on("chat:direct", (_dm, ack) => typeof ack === "function" && ack({ success: true }));
  try {
    await new Promise((resolve, reject) => {
      s.once("connect", resolve);
      s.once("connect_error", reject);
      setTimeout(() => reject(new Error(`cycle ${i}: no connect in 10 s`)), 10000);
    });
    const ask = (event, payload) => s.timeout(5000).emitWithAck(event, payload);
    const room = ROOMS[i % ROOMS.length];
    assert.equal((await ask("room:join", room)).success, true);
    if (i % 3 === 0) assert.equal((await ask("room:join", room)).success, true, "a second join of one room");
    if (i % 4 === 1) assert.equal((await ask("room:join", ROOMS[(i + 1) % ROOMS.length])).success, true);
    if (i % 5 === 2) assert.equal((await ask("presence:subscribe", { userIds: [USERS[(i + 3) % USERS.length]] })).success, true);
    if (i % 7 === 3) assert.equal((await ask("chat:send", { roomId: room, text: `churn ${i}` })).success, true);
    if (i % 11 === 4) assert.equal((await ask("room:leave", room)).success, true);
  } finally {
    if (i % 2 === 0 && s.io.engine?.transport) {
      // abrupt: no close packet, the TCP connection dropped
      const t = s.io.engine.transport;
      if (t.name === "websocket" && t.ws?._socket) t.ws._socket.destroy();
      else {
        t.doClose = () => {};
        s.io.engine.close();
      }
      agent.destroy();
    } else {
      s.disconnect();
      setTimeout(() => agent.destroy(), 500);
    }
    s.removeAllListeners();
  }
}

async function churn(urls, n, concurrency) {
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      await cycle(urls[i % urls.length], i);
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

/** Waits until every node's maps hold what they held at `base` again (per-user and per-node
 * maps: at most one entry per user or node), or fails naming the maps that did not. */
async function backToBase(urls, bases) {
  let last = [];
  const settled = async () => {
    last = [];
    for (const [k, url] of urls.entries()) {
      const now = await sizes(url);
      for (const [map, n] of Object.entries(now)) {
        const was = bases[k][map] ?? 0;
        const ok = PER_USER.includes(map) ? n <= USERS.length : PER_NODE.includes(map) ? n <= urls.length - 1 : n === was;
        if (!ok) last.push(`node ${k} ${map}: ${n} (before: ${was})`);
      }
    }
    return last.length === 0;
  };
  await until(settled, 30000, "maps back to their size before the churn").catch(() => {
    assert.fail(`maps still hold what churn left: ${last.join(", ")}`);
  });
}

test("2,000 cycles on one node, half abrupt, over every transport: every map returns to its size before", async () => {
  const srv = await startProduct({
    ...env,
    RT__WEBHOOKS__OUTBOUND_URL: `${recv.url}/hooks`,
    RT__WEBHOOKS__OUTBOUND_SECRET: OUT,
  });
  servers.push(srv);
  await setUp(srv.url);
  const base = await sizes(srv.url);
  for (const map of ["engine_sessions", "engine_actors", "sockets", "worker_sockets", "rooms", "room_actors", "presence_rooms", "presence_sockets", "presence_states", "recovery_sockets", "recovery_packets", "user_send_buckets"]) {
    assert.ok(map in base, `rt_state_entries{map="${map}"} is exported`);
  }
  await churn([srv.url], 2000, 25);
  const during = await sizes(srv.url);
  assert.ok(during.recovery_sockets > 0, "abrupt ends kept sockets for recovery (the test exercises it)");
  await backToBase([srv.url], [base]);
});

test("600 cycles over two nodes (PostgreSQL, Redis): every map of both returns to its size before", async () => {
  pg = await startPostgres();
  redis = await startRedis();
  const cluster = { ...env, DATABASE_URL: pg.createDb(), REDIS_URL: redis.url, CLUSTER_SECRET };
  const a = await startProduct({ ...cluster, RT__SERVER__NODE_ID: "churn-a" });
  servers.push(a);
  const b = await startProduct({ ...cluster, RT__SERVER__NODE_ID: "churn-b" });
  servers.push(b);
  for (const n of [a, b]) {
    await until(async () => (await (await fetch(`${n.url}/readyz`)).json()).redis === "ok", 5000, "bridge up");
  }
  await setUp(a.url);
  const bases = [await sizes(a.url), await sizes(b.url)];
  assert.ok("bridge_presence_keys" in bases[0], "the bridge's presence keys are exported");
  await churn([a.url, b.url], 600, 20);
  assert.ok((await sizes(a.url)).bridge_presence_keys >= 0);
  await backToBase([a.url, b.url], bases);
});

test("a polling client that closes its connection mid-poll ends its session at once (as Node), not at the ping timeout", async () => {
  // default heartbeat: a vanished client would otherwise hold its session for 45 s
  const srv = await startProduct({ JWT_SECRET: SECRET, WEBHOOK_SECRET: HOOK });
  servers.push(srv);
  await setUp(srv.url);
  const open = await (await fetch(`${srv.url}/socket.io/?EIO=4&transport=polling`)).text();
  const sid = JSON.parse(open.slice(1)).sid;
  // a raw GET that waits (nothing to send), then the TCP connection closed under it
  const port = new URL(srv.url).port;
  const sock = net.connect(Number(port), "127.0.0.1");
  await new Promise((r) => sock.once("connect", r));
  sock.write(`GET /socket.io/?EIO=4&transport=polling&sid=${sid} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n`);
  await new Promise((r) => setTimeout(r, 300));
  sock.destroy();
  await until(async () => (await sizes(srv.url)).engine_sessions === 0, 4000, "the session ended");
  const after = await fetch(`${srv.url}/socket.io/?EIO=4&transport=polling&sid=${sid}`);
  assert.equal(after.status, 400);
  assert.deepEqual(await after.json(), { code: 1, message: "Session ID unknown" });
  // and with the stock client: 20 polling sockets dropped abruptly, none left behind
  const clients = [];
  for (let i = 0; i < 20; i++) {
    const agent = new http.Agent();
    const s = io(srv.url, { forceNew: true, reconnection: false, transports: ["polling"], agent, auth: { token: hsToken(SECRET, USERS[i % USERS.length]) } });
    await new Promise((resolve, reject) => {
      s.once("connect", resolve);
      s.once("connect_error", reject);
    });
    clients.push([s, agent]);
  }
  assert.equal((await sizes(srv.url)).engine_sessions, 20);
  // mid-poll: each client's next GET on the wire and waiting (a client dropped between two
  // polls is found by the ping timeout only, in Node too)
  await new Promise((r) => setTimeout(r, 500));
  for (const [s, agent] of clients) {
    s.io.engine.transport.doClose = () => {};
    s.io.engine.close();
    agent.destroy();
  }
  await until(async () => (await sizes(srv.url)).engine_sessions === 0, 4000, "every dropped session ended");
});
