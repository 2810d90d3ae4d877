// Cluster traffic against interest (docs/benchmarks.md, "Scale-out"): N bench_server nodes
// linked by one redis-server, R rooms per node whose members (M socket.io-client sockets
// each) are all on that node, one message a second into every room for D seconds. Per node:
// the messages of other nodes its subscriptions delivered (`rt_bus_messages_received_total`),
// its channels (`rt_bus_subscriptions`) and its CPU over the run. With one channel for every
// relay, each node receives every other node's broadcasts although no member of those rooms
// is on it. Prints one JSON line. Loopback only, bounded; every process it starts stops.
//
//   cargo build --release --example bench_server
//   node benches/interest.mjs [--nodes 4] [--rooms 400] [--members 2] [--seconds 10]
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { startBinary, startRedis } from "../tests/clients/common.mjs";

const require = createRequire(new URL("../tests/package.json", import.meta.url));
const { io } = require("socket.io-client");
const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return Number(i > 0 ? process.argv[i + 1] : dflt);
};
const NODES = arg("nodes", 4), ROOMS = arg("rooms", 400), MEMBERS = arg("members", 2), SECONDS = arg("seconds", 10);
const TICKS = 100; // USER_HZ on Linux (clock ticks in /proc/PID/stat)

/** User + system CPU seconds of process `pid`. */
function cpu(pid) {
  const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
  return (Number(f[11]) + Number(f[12])) / TICKS;
}
async function metric(url, name) {
  const text = await (await fetch(`${url}/metrics`)).text();
  return Number(text.match(new RegExp(`^${name} (\\d+)`, "m"))?.[1] ?? NaN);
}

const redis = await startRedis();
const nodes = [];
const sockets = [];
try {
  for (let n = 0; n < NODES; n++) {
    nodes.push(await startBinary(new URL("../target/release/examples/bench_server", import.meta.url).pathname,
      ["--addr", "127.0.0.1:0", "--workers", "1", "--redis", redis.url],
      { env: { CLUSTER_SECRET: "bench-interest-cluster-secret-padded-to-32-bytes" } }));
  }
  // every room's members on one node; the first member of each room sends
  const senders = [];
  for (let n = 0; n < NODES; n++) {
    for (let r = 0; r < ROOMS; r++) {
      const room = `n${n}-r${r}`;
      for (let m = 0; m < MEMBERS; m++) {
        const s = io(nodes[n].url, { forceNew: true, reconnection: false, transports: ["websocket"] });
        await new Promise((resolve, reject) => { s.once("connect", resolve); s.once("connect_error", reject); });
        await s.timeout(5000).emitWithAck("join", room);
        sockets.push(s);
        if (m === 0) senders.push([s, room]);
      }
    }
  }
  await new Promise((r) => setTimeout(r, 1000));
  const before = await Promise.all(nodes.map(async (n) => ({ got: await metric(n.url, "rt_bus_messages_received_total"), cpu: cpu(n.proc.pid) })));
  let sent = 0;
  const t0 = Date.now();
  while (Date.now() - t0 < SECONDS * 1000) {
    const tick = Date.now();
    for (const [s, room] of senders) { s.emit("bcast", room, { t: tick }); sent++; }
    await new Promise((r) => setTimeout(r, Math.max(0, 1000 - (Date.now() - tick))));
  }
  await new Promise((r) => setTimeout(r, 1000));
  const elapsed = (Date.now() - t0) / 1000;
  const per_node = await Promise.all(nodes.map(async (n, i) => ({
    node: i,
    bus_received_per_s: Math.round((await metric(n.url, "rt_bus_messages_received_total") - before[i].got) / elapsed),
    bus_subscriptions: await metric(n.url, "rt_bus_subscriptions"),
    cpu_share: Number(((cpu(n.proc.pid) - before[i].cpu) / elapsed).toFixed(3)),
  })));
  console.log(JSON.stringify({ label: "cluster-interest", nodes: NODES, rooms_per_node: ROOMS, members: MEMBERS,
    sent_per_s: Math.round(sent / elapsed), per_node }));
} finally {
  for (const s of sockets) s.close();
  for (const n of nodes) await n.stop();
  await redis.stop();
}
