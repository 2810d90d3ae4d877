// Churn soak against the product server (DESIGN 20), driven by the stock `socket.io-client`
// (from tests/node_modules). `clients` loops each connect as one of `users` users, over
// WebSocket, polling with upgrade or polling only; join 1–3 rooms, send, read, type, follow
// presence, DM, `room:sync`; then disconnect cleanly or abruptly (the TCP connection dropped
// with no close packet) and connect again as a new socket. Every minute it prints the
// server's RSS, open fds, the map gauges of `/metrics` and the errors so far; at the end,
// after the clients stop and the server's timers ran out, the same once more, and one JSON
// line with the verdict: RSS within `tolerance` of minute 2, fds back at their baseline.
//
//   node benches/soak.mjs --url http://127.0.0.1:4000 --pid PID --minutes 20 \
//     --jwt-secret S --webhook-secret W [--clients 400] [--users 200] [--rooms 20] [--settle-s 60]
//     [--modes websocket,upgrade,polling] [--ends clean,abrupt]   (narrowing: a subset of each)
//
// Loopback only: it refuses any other host.
import { createHmac } from "node:crypto";
import { createRequire } from "node:module";
import { readFileSync, readdirSync, readlinkSync } from "node:fs";
import http from "node:http";

const require = createRequire(new URL("../tests/package.json", import.meta.url));
const { io } = require("socket.io-client");

const args = Object.fromEntries(
  process.argv
    .slice(2)
    .join(" ")
    .split(/\s*--/)
    .filter(Boolean)
    .map((kv) => {
      const [k, ...v] = kv.split(/\s+/);
      return [k, v.join(" ")];
    }),
);
const url = args.url || "http://127.0.0.1:4000";
const pid = Number(args.pid);
const minutes = Number(args.minutes || 20);
const clients = Number(args.clients || 400);
const userCount = Number(args.users || 200);
const roomCount = Number(args.rooms || 20);
const settleS = Number(args["settle-s"] || 60);
const tolerance = Number(args.tolerance || 0.1);
const modes = (args.modes || "websocket,upgrade,polling").split(",");
const ends = (args.ends || "clean,abrupt").split(",");
const jwtSecret = args["jwt-secret"];
const hookSecret = args["webhook-secret"];
if (!/^http:\/\/(127\.\d+\.\d+\.\d+|\[::1\]|localhost)(:\d+)?$/.test(url)) {
  console.error(`soak: only loopback targets (got ${url})`);
  process.exit(2);
}
if (!pid || !jwtSecret || !hookSecret) {
  console.error("soak: --pid, --jwt-secret and --webhook-secret are required");
  process.exit(2);
}

const users = Array.from({ length: userCount }, (_, i) => `soak${i}`);
const rooms = Array.from({ length: roomCount }, (_, i) => `soak-room-${i}`);
const pick = (list) => list[Math.floor(Math.random() * list.length)];
const delay = (ms) => new Promise((r) => setTimeout(r, ms));

function token(sub) {
  const b64 = (v) => Buffer.from(JSON.stringify(v)).toString("base64url");
  const head = b64({ alg: "HS256", typ: "JWT" });
  const body = b64({ sub, role: "user", exp: Math.floor(Date.now() / 1000) + 3 * 3600 });
  const sig = createHmac("sha256", jwtSecret).update(`${head}.${body}`).digest("base64url");
  return `${head}.${body}.${sig}`;
}

let signed = 0;
async function directory(method, route, body) {
  const raw = JSON.stringify(body);
  const t = Math.floor(Date.now() / 1000);
  // a nonce in the query keeps every signature distinct within the replay window
  const target = `/internal${route}?n=${signed++}`;
  const v1 = createHmac("sha256", hookSecret).update(`${t}.${method}.${target}.${raw}`).digest("hex");
  const res = await fetch(url + target, {
    method,
    headers: { "content-type": "application/json", "x-signature-256": `t=${t},v1=${v1}` },
    body: raw,
  });
  if (!res.ok) throw new Error(`${method} ${route}: ${res.status} ${await res.text()}`);
}

// --- the server's figures -------------------------------------------------------------------
function rssMb() {
  const m = readFileSync(`/proc/${pid}/status`, "utf8").match(/VmRSS:\s+(\d+)/);
  return m ? Number(m[1]) / 1024 : NaN;
}
const fds = () => readdirSync(`/proc/${pid}/fd`).length;
/** The server's open files by kind (sockets and pipes by type, files by path). */
function fdKinds() {
  const kinds = {};
  for (const fd of readdirSync(`/proc/${pid}/fd`)) {
    let target;
    try {
      target = readlinkSync(`/proc/${pid}/fd/${fd}`).replace(/:\[\d+\]$/, "");
    } catch {
      continue;
    }
    kinds[target] = (kinds[target] || 0) + 1;
  }
  return kinds;
}
async function gauges() {
  const text = await (await fetch(`${url}/metrics`)).text();
  const g = {};
  for (const line of text.split("\n")) {
    const m = line.match(/^(rt_(?:state|connections|sockets)\S*?)(\{[^}]*\})? (\S+)$/);
    if (m) g[m[1] + (m[2] || "")] = Number(m[3]);
  }
  return g;
}

// --- one client's life ----------------------------------------------------------------------
const stats = { connects: 0, ops: 0, errors: 0, messages: 0, dms: 0, abrupt: 0, clean: 0 };
const errorsSeen = new Map();
function fail(what) {
  stats.errors++;
  errorsSeen.set(what, (errorsSeen.get(what) || 0) + 1);
}

/** An acked emit: counts the operation and its failure (a refusal or no answer in 10 s). */
function call(socket, event, payload) {
  stats.ops++;
  return socket
    .timeout(10000)
    .emitWithAck(event, payload)
    .then(
      (ack) => {
        if (!ack || ack.success !== true) fail(`${event}: ${ack && ack.code}`);
        return ack;
      },
      () => {
        fail(`${event}: no ack`);
        return null;
      },
    );
}

/** Drops the connection without a close packet: WebSocket's TCP socket destroyed; on
 * polling, the session abandoned and the TCP connections of its requests (its own agent's)
 * destroyed. */
function dropAbruptly(socket, agent) {
  const engine = socket.io.engine;
  const t = engine && engine.transport;
  if (!t) return socket.disconnect();
  if (t.name === "websocket" && t.ws && t.ws._socket) {
    t.ws._socket.destroy();
  } else {
    t.doClose = () => {};
    engine.close();
  }
  agent.destroy();
}

const transportsOf = [
  { name: "websocket", opts: { transports: ["websocket"] } },
  { name: "upgrade", opts: { transports: ["polling", "websocket"] } },
  { name: "polling", opts: { transports: ["polling"] } },
].filter((m) => modes.includes(m.name));

let stopping = false;
async function life(n) {
  while (!stopping) {
    const user = users[n % users.length];
    const mode = pick(transportsOf);
    const agent = new http.Agent();
    const socket = io(url, {
      forceNew: true,
      reconnection: false,
      auth: { token: token(user) },
      agent,
      ...mode.opts,
    });
    socket.on("chat:direct", (_dm, ack) => typeof ack === "function" && ack({ success: true }));
    try {
      await new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error("connect timeout")), 10000);
        socket.once("connect", () => (clearTimeout(timer), resolve()));
        socket.once("connect_error", (e) => (clearTimeout(timer), reject(e)));
      });
    } catch (e) {
      stats.ops++;
      fail(`connect: ${e.message}`);
      socket.close();
      agent.destroy();
      await delay(500);
      continue;
    }
    stats.connects++;
    stats.ops++;
    const mine = [];
    for (let i = 0, k = 1 + Math.floor(Math.random() * 3); i < k; i++) {
      const room = pick(rooms);
      if (mine.includes(room)) continue;
      const ack = await call(socket, "room:join", room);
      if (ack && ack.success) mine.push(room);
    }
    let last = null;
    const steps = 2 + Math.floor(Math.random() * 4);
    for (let i = 0; i < steps && !stopping && socket.connected; i++) {
      const room = pick(mine.length ? mine : rooms);
      switch (Math.floor(Math.random() * 6)) {
        case 0:
        case 1: {
          const ack = await call(socket, "chat:send", {
            roomId: room,
            text: `soak ${n} ${i}`,
            clientMsgId: `${user}-${Date.now()}-${Math.random()}`,
          });
          if (ack && ack.success) {
            stats.messages++;
            last = { room, id: ack.messageId };
          }
          break;
        }
        case 2:
          socket.emit("chat:typing-start", { roomId: room });
          if (last) await call(socket, "chat:read", { roomId: last.room, lastReadMessageId: last.id });
          break;
        case 3:
          await call(socket, "presence:subscribe", {
            userIds: Array.from({ length: 5 }, () => pick(users)),
          });
          break;
        case 4: {
          const ack = await call(socket, "user:direct-message", {
            targetId: pick(users),
            message: `dm ${n} ${i}`,
          });
          if (ack && ack.success) stats.dms++;
          break;
        }
        case 5:
          if (last) await call(socket, "room:sync", { roomId: last.room, afterMessageId: last.id });
          break;
      }
      await delay(600 + Math.random() * 2000);
    }
    if (pick(ends) === "abrupt") {
      stats.abrupt++;
      dropAbruptly(socket, agent);
    } else {
      stats.clean++;
      socket.disconnect();
      setTimeout(() => agent.destroy(), 1000);
    }
    socket.removeAllListeners();
    await delay(Math.random() * 4000);
  }
}

// --- the run --------------------------------------------------------------------------------
function line(label, g) {
  const keys = Object.keys(g).filter((k) => k.startsWith("rt_state"));
  const maps = keys.map((k) => `${k.replace(/^rt_state_/, "")}=${g[k]}`).join(" ");
  console.log(
    `${label.padEnd(10)} rss_mb=${rssMb().toFixed(1)} fds=${fds()} connections=${g.rt_connections ?? "?"} ` +
      `connects=${stats.connects} messages=${stats.messages} dms=${stats.dms} ops=${stats.ops} ` +
      `errors=${stats.errors} ${maps}`,
  );
}

for (const u of users) await directory("PUT", `/users/${u}`, { name: u, email: `${u}@soak.test`, role: "user", isActive: true });
for (const r of rooms) await directory("PUT", `/rooms/${r}`, { name: r, isPublic: true });
const baseFds = fds();
const baseKinds = fdKinds();
line("baseline", await gauges());
console.log(
  `soak: ${clients} clients over ${userCount} users, ${roomCount} rooms, ${minutes} min, then ${settleS} s idle`,
);

const lives = Array.from({ length: clients }, (_, n) => delay(Math.random() * 3000).then(() => life(n)));
const perMinute = [];
for (let m = 1; m <= minutes; m++) {
  await delay(60000);
  perMinute.push(rssMb());
  line(`minute ${m}`, await gauges());
}
stopping = true;
await Promise.all(lives);
// the last churn minute's figures stand for "under load"; then the node's timers run out
// (presence grace, ping timeouts of clients that vanished, the recovery window)
const lastLoaded = rssMb();
for (let s = 10; s < settleS; s += 10) {
  await delay(10000);
  console.log(`idle +${s} s rss_mb=${rssMb().toFixed(1)} fds=${fds()} connections=${(await gauges()).rt_connections}`);
}
await delay((settleS % 10 || 10) * 1000);
const end = await gauges();
line(`+${settleS} s idle`, end);
const endRss = rssMb();
const endFds = fds();
const endKinds = fdKinds();
const fdsChanged = Object.fromEntries(
  [...new Set([...Object.keys(baseKinds), ...Object.keys(endKinds)])]
    .map((k) => [k, (endKinds[k] || 0) - (baseKinds[k] || 0)])
    .filter(([, d]) => d !== 0),
);
const ref = perMinute[1] ?? perMinute[0];
const result = {
  scenario: "soak",
  minutes,
  clients,
  connects: stats.connects,
  clean: stats.clean,
  abrupt: stats.abrupt,
  messages: stats.messages,
  ops: stats.ops,
  errors: stats.errors,
  error_rate: stats.ops ? stats.errors / stats.ops : 0,
  errors_by_kind: Object.fromEntries(errorsSeen),
  rss_mb_per_minute: perMinute.map((r) => Number(r.toFixed(1))),
  rss_mb_end: Number(endRss.toFixed(1)),
  rss_growth_vs_minute2: ref ? Number(((endRss - ref) / ref).toFixed(4)) : null,
  rss_growth_loaded_vs_minute2: ref ? Number(((lastLoaded - ref) / ref).toFixed(4)) : null,
  fds_baseline: baseFds,
  fds_end: endFds,
  fds_changed: fdsChanged,
  gauges_end: end,
};
result.pass =
  result.rss_growth_vs_minute2 !== null &&
  result.rss_growth_vs_minute2 <= tolerance &&
  result.rss_growth_loaded_vs_minute2 <= tolerance &&
  endFds <= baseFds &&
  result.error_rate <= 0.001;
console.log(JSON.stringify(result));
process.exit(result.pass ? 0 : 1);
