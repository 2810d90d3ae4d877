// `admin:sockets` at scale (docs/benchmarks.md, "The admin dashboard"): two product nodes
// sharing a throwaway PostgreSQL and a redis-server, N socket.io-client sockets spread over
// both, an admin on node a asking for the list (`{limit: 1000}`, the dashboard's
// `{limit: 200}`, one user's) 20 times each: answer time p50 / p99 / max and the sockets
// listed. Prints one JSON line per N. Loopback only, bounded; every process it starts stops.
//
//   node benches/admin_sockets.mjs [--sockets 1000,4000]
import { createRequire } from "node:module";
import { startProduct, startPostgres, startRedis, signedCall, hsToken } from "../tests/clients/common.mjs";

const require = createRequire(new URL("../tests/package.json", import.meta.url));
const { io } = require("socket.io-client");
const arg = (name, dflt) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? process.argv[i + 1] : dflt;
};
const COUNTS = arg("sockets", "1000,4000").split(",").map(Number);
const SECRET = "bench-admin-jwt-secret-padded-to-32-bytes";
const HOOK = "bench-admin-hook-secret-padded-to-32-bytes";
const CLUSTER = "bench-admin-cluster-secret-padded-to-32-bytes";
const USERS = 20;

const pg = await startPostgres();
const redis = await startRedis();
const env = { JWT_SECRET: SECRET, WEBHOOK_SECRET: HOOK, DATABASE_URL: pg.createDb(), REDIS_URL: redis.url, CLUSTER_SECRET: CLUSTER,
  RT__LIMITS__EVENTS_PER_S: "1000000", RT__LIMITS__EVENTS_BURST: "1000000" };
const a = await startProduct({ ...env, RT__SERVER__NODE_ID: "node-a" });
const b = await startProduct({ ...env, RT__SERVER__NODE_ID: "node-b" });
const sockets = [];
try {
  for (let i = 0; i < USERS; i++) {
    await signedCall(a.url, HOOK, "PUT", `/users/u${i}`, { name: `u${i}`, email: `u${i}@example.com`, role: "user", isActive: true });
  }
  await signedCall(a.url, HOOK, "PUT", "/users/root", { name: "root", email: "root@example.com", role: "admin", isActive: true });
  const tokens = Array.from({ length: USERS }, (_, i) => hsToken(SECRET, `u${i}`));
  const root = io(`${a.url}/admin`, { forceNew: true, transports: ["websocket"], auth: { token: hsToken(SECRET, "root", { role: "admin" }) } });
  await new Promise((r) => root.once("connect", r));
  for (const n of COUNTS) {
    while (sockets.length < n) {
      const batch = [];
      for (let k = 0; k < 200 && sockets.length + batch.length < n; k++) {
        const i = sockets.length + batch.length;
        const s = io(i % 2 ? b.url : a.url, { forceNew: true, reconnection: false, transports: ["websocket"], auth: { token: tokens[i % USERS] } });
        batch.push(new Promise((resolve, reject) => { s.once("connect", () => resolve(s)); s.once("connect_error", reject); }));
      }
      sockets.push(...(await Promise.all(batch)));
    }
    const timed = async (payload) => {
      const ms = [];
      let listed = 0;
      for (let r = 0; r < 20; r++) {
        const t = performance.now();
        const answer = await root.timeout(10000).emitWithAck("admin:sockets", payload);
        ms.push(performance.now() - t);
        if (!answer.success) throw new Error(JSON.stringify(answer));
        listed = answer.sockets.length;
      }
      ms.sort((x, y) => x - y);
      const q = (p) => Number(ms[Math.min(ms.length - 1, Math.floor(p * ms.length))].toFixed(1));
      return { p50_ms: q(0.5), p99_ms: q(0.99), max_ms: Number(ms[ms.length - 1].toFixed(1)), listed };
    };
    console.log(JSON.stringify({
      label: "admin-sockets", sockets: n, nodes: 2,
      limit_1000: await timed({ limit: 1000 }),
      limit_200: await timed({ limit: 200 }),
      one_user: await timed({ userId: "u1" }),
    }));
  }
  root.close();
} finally {
  for (const s of sockets) s.close();
  await a.stop();
  await b.stop();
  await redis.stop();
  pg.stop();
}
