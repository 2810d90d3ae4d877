// Server-Sent Events across a cluster and through nginx: two nodes sharing a real PostgreSQL
// and a real redis-server, real nginx (TLS, nginx/realtime.conf) in front. A stream on one
// node gets what the other node emits; a ticket issued by one node is good once on any; through
// nginx each event arrives at once and keep-alives hold the stream open past the proxy's read
// timeout.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { io } from "socket.io-client";
import { startProduct, startPostgres, startRedis, startNginx, signedCall, hsToken, once, until, delay } from "./common.mjs";
import { openEvents, bearer } from "./sse.mjs";

const SECRET = "sse-cluster-jwt-secret-padded-to-32-bytes";
const CLUSTER_SECRET = "sse-cluster-bridge-secret-padded-to-32-bytes";
const HOOK = "sse-cluster-hook-secret-padded-to-32-bytes";
let pg;
let redis;
let nginx;
let a;
let b;
const streams = [];

const token = (user) => hsToken(SECRET, user);
async function events(url, opts) {
  const s = await openEvents(url, opts);
  streams.push(s);
  return s;
}
const ticket = async (node, user) => {
  const res = await fetch(`${node.url}/api/sse-ticket`, { method: "POST", headers: bearer(token(user)) });
  assert.equal(res.status, 200);
  return (await res.json()).ticket;
};

before(async () => {
  pg = await startPostgres();
  redis = await startRedis();
  const env = {
    JWT_SECRET: SECRET, WEBHOOK_SECRET: HOOK, DATABASE_URL: pg.createDb(), REDIS_URL: redis.url, CLUSTER_SECRET,
    RT__SSE__KEEPALIVE_MS: "300",
  };
  a = await startProduct({ ...env, RT__SERVER__NODE_ID: "node-a" });
  b = await startProduct({ ...env, RT__SERVER__NODE_ID: "node-b" });
  for (const u of ["alice", "bob", "carol"]) {
    assert.equal((await signedCall(a.url, HOOK, "PUT", `/users/${u}`, { name: u, email: `${u}@example.com`, role: "user", isActive: true })).status, 200);
  }
  for (const n of [a, b]) {
    await until(async () => (await (await fetch(`${n.url}/readyz`)).json()).redis === "ok", 5000, "bridge up");
  }
  // nginx's read timeout on /events cut to 2 s: only the keep-alives hold the stream open
  nginx = await startNginx([a.port, b.port], {
    edit: (site) => {
      const at = site.indexOf("location = /events");
      assert.ok(at > 0, "nginx/realtime.conf has a location for /events");
      const end = site.indexOf("}", at);
      const block = site.slice(at, end);
      assert.match(block, /proxy_buffering off;/);
      return site.slice(0, at) + block.replace(/proxy_read_timeout \d+s;/, "proxy_read_timeout 2s;") + site.slice(end);
    },
  });
});
after(async () => {
  for (const s of streams) s.close();
  await nginx?.stop();
  for (const n of [a, b]) await n?.stop();
  await redis?.stop();
  pg?.stop();
});

test("a stream on one node gets the notifications, job:progress and DMs of the other; it counts as online cluster-wide", async () => {
  const s = await events(b.url, { headers: bearer(token("alice")) });
  assert.equal(s.status, 200);
  // the webhook reaches node a; alice is online only through node b's stream
  const progress = await signedCall(a.url, HOOK, "POST", "/notify/progress", { userId: "alice", jobId: "j-1", progress: 10, status: "processing" });
  assert.deepEqual(await progress.json(), { success: true, notified: 1 });
  assert.equal((await signedCall(a.url, HOOK, "PUT", "/carts/alice/items/sku-9")).status, 200);
  const sold = await signedCall(a.url, HOOK, "POST", "/notify/stock", { productId: "sku-9", stock: 0 });
  assert.equal((await sold.json()).notified, 1);
  const bob = io(a.url, { forceNew: true, reconnection: false, transports: ["websocket"], auth: { token: token("bob") } });
  await once(bob, "connect", 5000);
  const dm = await bob.timeout(5000).emitWithAck("user:direct-message", { targetId: "alice", message: "from node a" });
  assert.deepEqual([dm.success, dm.delivered], [true, true], "alice counts as online through a stream on the other node");
  await until(() => s.events.length === 3, 5000, "three events from node a");
  assert.deepEqual(s.events.map((e) => e.event), ["job:progress", "notification", "chat:direct"]);
  assert.equal(s.events[1].data.type, "STOCK_SOLD_OUT");
  assert.equal(s.events[1].id, s.events[1].data.id);
  assert.equal(s.events[2].id, dm.id);
  await delay(300);
  assert.equal(s.events.length, 3, "each once");
  // gone from node b: offline on node a too
  s.close();
  await until(async () => {
    const r = await bob.timeout(3000).emitWithAck("user:direct-message", { targetId: "alice", message: "still there?" });
    return r.delivered === false;
  }, 5000, "alice offline everywhere");
  bob.close();
});

test("a ticket issued by one node opens one stream on the other, and only one", async () => {
  const t = await ticket(a, "carol");
  const first = await events(b.url, { query: `?ticket=${t}` });
  assert.equal(first.status, 200);
  const again = await events(a.url, { query: `?ticket=${t}` });
  assert.deepEqual([again.status, again.body.code], [401, "TOKEN_INVALID"]);
  // two nodes racing for one ticket: exactly one wins
  const t2 = await ticket(b, "carol");
  const race = await Promise.all([events(a.url, { query: `?ticket=${t2}` }), events(b.url, { query: `?ticket=${t2}` })]);
  assert.deepEqual(race.map((r) => r.status).sort(), [200, 401]);
  for (const r of [first, ...race]) r.close();
});

test("through nginx (TLS): the stream opens, each event arrives at once, keep-alives hold it past the proxy's read timeout; REST works", async () => {
  const s = await events(nginx.url, { headers: bearer(token("carol")) });
  assert.equal(s.status, 200);
  assert.match(s.headers["content-type"], /^text\/event-stream/);
  // small events are not held in a proxy buffer
  for (let i = 0; i < 3; i++) {
    const sent = Date.now();
    const res = await signedCall(nginx.privateUrl, HOOK, "POST", "/notify/progress", { userId: "carol", jobId: `n-${i}`, progress: i, status: "processing" });
    assert.equal((await res.json()).notified, 1);
    await until(() => s.events.length === i + 1, 2000, `event ${i} through nginx`);
    assert.ok(Date.now() - sent < 1500, "passed on at once");
  }
  // 4.5 s idle but for keep-alives, with nginx's read timeout at 2 s
  await delay(4500);
  assert.equal(s.ended, false, "the stream is still open");
  assert.ok(s.comments.filter((c) => c === "keep-alive").length >= 10, `${s.comments.length} comments`);
  const late = await signedCall(nginx.privateUrl, HOOK, "POST", "/notify/progress", { userId: "carol", jobId: "late", progress: 100, status: "completed" });
  assert.equal((await late.json()).notified, 1);
  await until(() => s.events.some((e) => e.data.jobId === "late"), 3000, "an event after the idle time");
  // the REST API and the ticket call through nginx
  const https = await import("node:https");
  const viaNginx = (method, route) => new Promise((resolve, reject) => {
    const req = https.request(`${nginx.url}${route}`, { method, rejectUnauthorized: false, headers: bearer(token("carol")) }, (r) => {
      let body = "";
      r.on("data", (d) => { body += d; });
      r.on("end", () => resolve({ status: r.statusCode, body: JSON.parse(body) }));
    });
    req.on("error", reject);
    req.end();
  });
  const list = await viaNginx("GET", "/api/notifications");
  assert.deepEqual([list.status, list.body.success], [200, true]);
  const t = await viaNginx("POST", "/api/sse-ticket");
  assert.equal(t.status, 200);
  const byTicket = await events(nginx.url, { query: `?ticket=${t.body.ticket}` });
  assert.equal(byTicket.status, 200);
  s.close();
  byTicket.close();
});
