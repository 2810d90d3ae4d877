// The server API and the event proxy under load (docs/benchmarks.md, "Server API and event
// proxy"), against the product server on SQLite, one node:
// - emit: `POST /internal/emit` to a room of 100 socket.io-client members, signed, from
//   `--callers` concurrent callers for `--seconds`: calls/s, call latency p50/p99, deliveries/s
//   and emit-to-delivery latency p99 (every delivery counted, none may be lost);
// - proxy: `rpc:ping` with an ack from `--sockets` sockets in a closed loop, through a local
//   backend (node:http in this process) that answers at once: round trips/s, p50/p99.
// With each, the server's CPU (share of one core, and µs per call) over the phase. Prints one
// JSON line. Loopback only, bounded in time.
//
//   node benches/server_api.mjs --url http://127.0.0.1:PORT --pid PID --hook SECRET --jwt SECRET
//        --proxy-port PORT --proxy-secret SECRET [--seconds 10] [--callers 16] [--sockets 50]
import http from "node:http";
import { createHmac } from "node:crypto";
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";

const require = createRequire(new URL("../tests/package.json", import.meta.url));
const { io } = require("socket.io-client");

const args = Object.fromEntries(process.argv.slice(2).reduce((acc, a, i, all) => (a.startsWith("--") ? [...acc, [a.slice(2), all[i + 1]]] : acc), []));
const url = args.url;
const HOOK = args.hook;
const JWT = args.jwt;
const seconds = Number(args.seconds || 10);
const callers = Number(args.callers || 16);
const socketsN = Number(args.sockets || 50);
const members = 100;
/** The server's CPU seconds so far (user + system, from /proc). */
function cpuSeconds() {
  const stat = readFileSync(`/proc/${args.pid}/stat`, "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / 100; // utime, stime in clock ticks
}

const b64 = (v) => Buffer.from(JSON.stringify(v)).toString("base64url");
function token(sub) {
  const head = b64({ alg: "HS256", typ: "JWT" });
  const body = b64({ sub, role: "user", exp: Math.floor(Date.now() / 1000) + 3600 });
  return `${head}.${body}.${createHmac("sha256", JWT).update(`${head}.${body}`).digest("base64url")}`;
}
let nonce = 0;
async function signed(method, path, body) {
  const raw = body === undefined ? "" : JSON.stringify(body);
  // a signature is good once: the same body in the same second gets a nonce in the query
  const target = `${path}${path.includes("?") ? "&" : "?"}n=${nonce++}`;
  const t = Math.floor(Date.now() / 1000);
  const v1 = createHmac("sha256", HOOK).update(`${t}.${method}.${target}.${raw}`).digest("hex");
  const res = await fetch(url + target, { method, headers: { "content-type": "application/json", "x-signature-256": `t=${t},v1=${v1}` }, body: raw || undefined });
  const text = await res.text();
  if (res.status !== 200) throw new Error(`${method} ${path}: ${res.status} ${text}`);
  return JSON.parse(text);
}
const pct = (xs, p) => {
  if (!xs.length) return null;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))];
};
const round = (x) => (x === null ? null : Math.round(x * 100) / 100);
async function connect(user) {
  const s = io(url, { forceNew: true, reconnection: false, transports: ["websocket"], auth: { token: token(user) } });
  await new Promise((resolve, reject) => { s.once("connect", resolve); s.once("connect_error", reject); });
  return s;
}

// --- the backend the proxy calls: answers at once --------------------------------------------
const backend = http.createServer((req, res) => {
  const chunks = [];
  req.on("data", (c) => chunks.push(c));
  req.on("end", () => {
    const call = JSON.parse(Buffer.concat(chunks).toString("utf8"));
    res.writeHead(200, { "content-type": "application/json" });
    res.end(JSON.stringify({ result: call.data }));
  });
});
await new Promise((r) => backend.listen(Number(args["proxy-port"]), "127.0.0.1", r));

for (let i = 0; i < members; i++) await signed("PUT", `/internal/users/u${i}`, { name: `u${i}`, email: `u${i}@example.com`, role: "user", isActive: true });
await signed("PUT", "/internal/rooms/bench", { name: "bench", isPublic: true });
const sockets = [];
for (let i = 0; i < members; i++) sockets.push(await connect(`u${i}`));
for (const s of sockets) await s.timeout(5000).emitWithAck("room:join", "bench");

// --- emit to a room of 100 ------------------------------------------------------------------
let deliveries = 0;
const deliveryMs = [];
for (const s of sockets) {
  s.on("bench:tick", (d) => {
    deliveries++;
    if (deliveries % 10 === 0) deliveryMs.push(Date.now() - d.at);
  });
}
const callMs = [];
let calls = 0;
const emitCpu0 = cpuSeconds();
const emitEnd = Date.now() + seconds * 1000;
await Promise.all(Array.from({ length: callers }, async () => {
  while (Date.now() < emitEnd) {
    const t0 = performance.now();
    await signed("POST", "/internal/emit", { event: "bench:tick", data: { at: Date.now() }, to: { rooms: ["bench"] } });
    callMs.push(performance.now() - t0);
    calls++;
  }
}));
const emitSeconds = seconds + (Date.now() - emitEnd) / 1000;
const emitCpu = cpuSeconds() - emitCpu0;
const expected = calls * members;
const settle = Date.now() + 5000;
while (deliveries < expected && Date.now() < settle) await new Promise((r) => setTimeout(r, 50));

// --- proxy round trips -------------------------------------------------------------------------
const rpcMs = [];
let rpcs = 0;
let failed = 0;
const callersOfProxy = sockets.slice(0, socketsN);
const proxyCpu0 = cpuSeconds();
const proxyEnd = Date.now() + seconds * 1000;
await Promise.all(callersOfProxy.map(async (s, i) => {
  while (Date.now() < proxyEnd) {
    const t0 = performance.now();
    const a = await s.timeout(10000).emitWithAck("rpc:ping", i);
    rpcMs.push(performance.now() - t0);
    if (a.success) rpcs++;
    else failed++;
  }
}));
const proxySeconds = seconds + (Date.now() - proxyEnd) / 1000;
const proxyCpu = cpuSeconds() - proxyCpu0;

for (const s of sockets) s.disconnect();
backend.close();
console.log(JSON.stringify({
  scenario: "server_api",
  members,
  callers,
  emit_calls_per_s: Math.round(calls / emitSeconds),
  emit_call_p50_ms: round(pct(callMs, 50)),
  emit_call_p99_ms: round(pct(callMs, 99)),
  deliveries_per_s: Math.round(deliveries / emitSeconds),
  deliveries_lost: expected - deliveries,
  delivery_p99_ms: round(pct(deliveryMs, 99)),
  emit_server_cpu_share: round(emitCpu / emitSeconds),
  emit_server_cpu_us_per_call: round((emitCpu * 1e6) / Math.max(calls, 1)),
  proxy_sockets: callersOfProxy.length,
  proxy_round_trips_per_s: Math.round(rpcs / proxySeconds),
  proxy_p50_ms: round(pct(rpcMs, 50)),
  proxy_p99_ms: round(pct(rpcMs, 99)),
  proxy_failed: failed,
  proxy_server_cpu_share: round(proxyCpu / proxySeconds),
  proxy_server_cpu_us_per_call: round((proxyCpu * 1e6) / Math.max(rpcs + failed, 1)),
}));
process.exit(0);
