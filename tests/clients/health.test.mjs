// Health, readiness and Prometheus metrics of the product server, on a throwaway PostgreSQL
// (so readiness can be seen failing when the database goes away).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { io } from "socket.io-client";
import { startProduct, startPostgres, signedCall, hsToken, once, until } from "./common.mjs";

const SECRET = "health-jwt-secret-padded-to-at-least-32-bytes";
const HOOK = "health-hook-secret-padded-to-at-least-32-bytes";
let srv;
let pg;

/** The value of one sample line of /metrics (0 when absent). */
async function metric(line) {
  const text = await (await fetch(`${srv.url}/metrics`)).text();
  const row = text.split("\n").find((l) => l.startsWith(line + " "));
  return row ? Number(row.slice(line.length + 1)) : 0;
}

before(async () => {
  pg = await startPostgres();
  srv = await startProduct({ JWT_SECRET: SECRET, WEBHOOK_SECRET: HOOK, DATABASE_URL: pg.createDb() });
  assert.equal((await signedCall(srv.url, HOOK, "PUT", "/users/alice", { name: "A", email: "a@example.com", role: "user", isActive: true })).status, 200);
  assert.equal((await signedCall(srv.url, HOOK, "PUT", "/rooms/lobby", { name: "Lobby", isPublic: true })).status, 200);
});
after(async () => { await srv.stop(); pg.stop(); });

test("healthz and readyz answer JSON", async () => {
  const h = await fetch(`${srv.url}/healthz`);
  assert.equal(h.status, 200);
  assert.equal((await h.json()).status, "ok");
  const r = await fetch(`${srv.url}/readyz`);
  assert.equal(r.status, 200);
  assert.deepEqual(await r.json(), { status: "ready", db: "ok" });
});

test("metrics: connections, sockets, events, broadcasts, acks, errors and latencies", async () => {
  const res = await fetch(`${srv.url}/metrics`);
  assert.equal(res.status, 200);
  assert.match(res.headers.get("content-type"), /^text\/plain/);
  const text = await res.text();
  for (const name of ["rt_connections", "rt_ack_latency_seconds", "rt_delivery_latency_seconds", "rt_bridge_reconnects_total"]) {
    assert.match(text, new RegExp(`# TYPE ${name} `), name);
  }
  const before = {
    in: await metric('rt_events_in_total{namespace="/"}'),
    acks: await metric('rt_acks_total{direction="sent"}'),
    lat: await metric("rt_ack_latency_seconds_count"),
    bc: await metric('rt_broadcasts_total{namespace="/"}'),
    out: await metric('rt_events_out_total{namespace="/"}'),
    bad: await metric('rt_errors_total{kind="INVALID_PAYLOAD"}'),
    refused: await metric('rt_errors_total{kind="connect_refused"}'),
  };
  const alice = io(srv.url, { forceNew: true, reconnection: false, transports: ["websocket"], auth: { token: hsToken(SECRET, "alice") } });
  await once(alice, "connect");
  await until(async () => (await metric("rt_connections")) === 1, 3000, "one connection");
  assert.equal(await metric('rt_sockets{namespace="/"}'), 1);
  assert.equal((await alice.timeout(3000).emitWithAck("room:join", "lobby")).success, true);
  assert.equal((await alice.timeout(3000).emitWithAck("chat:send", { roomId: "lobby", text: "hi" })).success, true);
  assert.equal((await alice.timeout(3000).emitWithAck("chat:send", { roomId: "lobby" })).code, "INVALID_PAYLOAD");
  const intruder = io(srv.url, { forceNew: true, reconnection: false, transports: ["websocket"], auth: { token: "nope" } });
  await once(intruder, "connect_error");
  intruder.close();
  await until(async () => (await metric('rt_events_in_total{namespace="/"}')) >= before.in + 3, 3000, "events in");
  assert.ok((await metric('rt_acks_total{direction="sent"}')) >= before.acks + 3);
  assert.ok((await metric("rt_ack_latency_seconds_count")) >= before.lat + 3);
  assert.ok((await metric('rt_broadcasts_total{namespace="/"}')) >= before.bc + 2, "member update and chat:message");
  assert.ok((await metric('rt_events_out_total{namespace="/"}')) >= before.out + 5);
  assert.equal(await metric('rt_errors_total{kind="INVALID_PAYLOAD"}'), before.bad + 1);
  assert.ok((await metric('rt_errors_total{kind="connect_refused"}')) >= before.refused + 1);
  assert.ok((await metric("rt_delivery_latency_seconds_count")) >= 1);
  alice.disconnect();
  await until(async () => (await metric("rt_connections")) === 0, 3000, "no connection");
  assert.equal(await metric('rt_sockets{namespace="/"}'), 0);
});

test("readyz: 503 with db down when the database is gone; healthz stays up", async () => {
  pg.stop();
  const t = Date.now();
  const r = await fetch(`${srv.url}/readyz`);
  assert.equal(r.status, 503);
  assert.deepEqual(await r.json(), { status: "unavailable", db: "down" });
  assert.ok(Date.now() - t < 5000, "answers within the ping timeout");
  assert.equal((await fetch(`${srv.url}/healthz`)).status, 200);
});
