// What operators deploy, checked: the Grafana dashboard (deploy/grafana/realtime.json) is a
// valid dashboard whose every query names a metric a real server's /metrics exports, and
// /metrics has the process, database, HTTP and drain figures.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { io } from "socket.io-client";
import { startProduct, signedCall, hsToken, once } from "./common.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const SECRET = "deploy-jwt-secret-padded-to-at-least-32-bytes";
const HOOK = "deploy-hook-secret-padded-to-at-least-32-bytes";
let srv;

before(async () => {
  srv = await startProduct({ JWT_SECRET: SECRET, WEBHOOK_SECRET: HOOK });
  // a little of everything, so the labelled series exist
  assert.equal((await signedCall(srv.url, HOOK, "PUT", "/users/alice", { name: "alice", email: "a@example.com", role: "user", isActive: true })).status, 200);
  assert.equal((await signedCall(srv.url, HOOK, "PUT", "/rooms/lobby", { name: "Lobby", isPublic: true })).status, 200);
  const s = io(srv.url, { forceNew: true, reconnection: false, transports: ["websocket"], auth: { token: hsToken(SECRET, "alice") } });
  await once(s, "connect");
  assert.equal((await s.timeout(3000).emitWithAck("room:join", "lobby")).success, true);
  assert.equal((await s.timeout(3000).emitWithAck("chat:send", { roomId: "lobby", text: "hi" })).success, true);
  assert.equal((await s.timeout(3000).emitWithAck("chat:send", { roomId: "lobby" })).code, "INVALID_PAYLOAD");
  const api = await fetch(`${srv.url}/api/notifications`, { headers: { authorization: `Bearer ${hsToken(SECRET, "alice")}` } });
  assert.equal(api.status, 200);
  s.close();
});
after(async () => { await srv?.stop(); });

test("/metrics: process CPU, memory and fds; database and HTTP latency; drain state; every limit's refusals", async () => {
  const text = await (await fetch(`${srv.url}/metrics`)).text();
  for (const name of ["process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds", "process_max_fds", "rt_draining 0"]) {
    assert.ok(text.includes(`\n${name}`), `${name} exported`);
  }
  assert.match(text, /rt_db_seconds_count\{phase="query"\} [1-9]/);
  assert.match(text, /rt_db_seconds_count\{phase="wait"\} [1-9]/);
  assert.match(text, /rt_http_seconds_count\{route="\/internal\/users\/\{id\}"\} [1-9]/);
  assert.match(text, /rt_http_seconds_count\{route="\/api\/notifications"\} 1/);
  for (const limit of ["events", "user_sends", "requests", "sync", "json_depth", "queued_bytes", "attachments", "pending_sessions", "pending_dms", "sse_streams"]) {
    assert.ok(text.includes(`rt_limit_refusals_total{limit="${limit}"}`), `refusals by ${limit}`);
  }
});

test("deploy/grafana/realtime.json is a dashboard whose every query names a metric /metrics exports", async () => {
  const dash = JSON.parse(readFileSync(path.join(root, "deploy", "grafana", "realtime.json"), "utf8"));
  assert.equal(typeof dash.title, "string");
  assert.equal(typeof dash.uid, "string");
  assert.ok(Number.isInteger(dash.schemaVersion));
  assert.ok(Array.isArray(dash.panels) && dash.panels.length >= 10, "panels");
  const ids = new Set();
  const text = await (await fetch(`${srv.url}/metrics`)).text();
  const exported = new Set(text.split("\n").filter((l) => l && !l.startsWith("#")).map((l) => l.split(/[{ ]/)[0]));
  const used = new Set();
  for (const p of dash.panels) {
    assert.ok(!ids.has(p.id), `panel id ${p.id} unique`);
    ids.add(p.id);
    assert.ok(p.title && p.gridPos && p.datasource, `panel ${p.id} complete`);
    assert.ok(p.targets.length > 0, `panel ${p.title} has queries`);
    for (const t of p.targets) {
      const names = t.expr.match(/\b(?:rt|process)_[a-z_]+\b/g) ?? [];
      assert.ok(names.length > 0, `${p.title}: ${t.expr} names a metric`);
      for (const n of names) used.add(n);
    }
  }
  const missing = [...used].filter((n) => !exported.has(n));
  assert.deepEqual(missing, [], "metrics the dashboard asks for that /metrics does not export");
  // what the issue asks the dashboard to show
  for (const n of ["rt_connections", "rt_events_in_total", "rt_events_out_total", "rt_delivery_latency_seconds_bucket", "rt_errors_total", "rt_limit_refusals_total", "rt_bridge_lag_seconds_bucket"]) {
    assert.ok(used.has(n), `the dashboard shows ${n}`);
  }
});
