// The real server for the client kit's tests: `realtime-server serve` on a loopback port with
// its own SQLite file, restartable on the same port and database (a server-side disconnect
// every client sees as the transport closing). Helpers come from the repository's tests.
import { tmpdir } from "node:os";
import path from "node:path";
import { rmSync } from "node:fs";
import { startBinary, serverBinary, signedCall, hsToken, until, delay } from "../../../tests/clients/common.mjs";

export { until, delay };

export const SECRET = "client-kit-jwt-secret-padded-to-32-bytes";
export const HOOK = "client-kit-hook-secret-padded-to-32-bytes";

/** A token of `user`, valid `ttl` seconds. */
export const token = (user, ttl = 600) => hsToken(SECRET, user, { ttl });

/** Starts a server; `restart()` stops it (SIGTERM: a drain, clients see the transport close)
 * and starts it again on the same port with the same database. */
export async function startServer(env = {}) {
  const db = path.join(tmpdir(), `rt-client-kit-${process.pid}-${Math.random().toString(36).slice(2)}.db`);
  const fullEnv = { JWT_SECRET: SECRET, WEBHOOK_SECRET: HOOK, DATABASE_URL: `sqlite://${db}`, RT__SERVER__DRAIN_MS: "0", ...env };
  let proc = await startBinary(serverBinary(), ["serve", "--addr", "127.0.0.1:0"], { env: fullEnv });
  const port = proc.port;
  const url = proc.url;
  const srv = {
    url,
    port,
    internal: (method, route, body) => signedCall(url, HOOK, method, route, body),
    async user(id, role = "user") {
      const res = await srv.internal("PUT", `/users/${id}`, { name: id, email: `${id}@example.com`, role, isActive: true });
      if (res.status !== 200) throw new Error(`user ${id}: ${res.status}`);
    },
    async room(id, isPublic = true) {
      const res = await srv.internal("PUT", `/rooms/${id}`, { name: id, isPublic });
      if (res.status !== 200) throw new Error(`room ${id}: ${res.status}`);
    },
    /** POST /api/rooms/{id}/messages as `user` (no socket). */
    async post(user, roomId, text) {
      const res = await fetch(`${url}/api/rooms/${roomId}/messages`, {
        method: "POST",
        headers: { authorization: `Bearer ${token(user)}`, "content-type": "application/json" },
        body: JSON.stringify({ text }),
      });
      const body = await res.json();
      if (!body.success) throw new Error(`post: ${JSON.stringify(body)}`);
      return body.messageId;
    },
    /** GET /api/rooms/{id}/messages (the latest 200). */
    async messages(user, roomId) {
      const res = await fetch(`${url}/api/rooms/${roomId}/messages?limit=200`, { headers: { authorization: `Bearer ${token(user)}` } });
      return (await res.json()).messages;
    },
    /** Stops the process (SIGTERM, waiting for its exit). */
    async down() {
      if (proc.alive()) {
        const exited = new Promise((r) => proc.proc.once("exit", r));
        proc.proc.kill("SIGTERM");
        await exited;
      }
    },
    /** Starts it again on the same port and database. */
    async up() {
      for (let i = 0; ; i++) {
        try {
          proc = await startBinary(serverBinary(), ["serve", "--addr", `127.0.0.1:${port}`], { env: fullEnv });
          return;
        } catch (e) {
          if (i >= 20) throw e;
          await delay(100);
        }
      }
    },
    async stop() {
      if (proc.alive()) await proc.stop();
      for (const f of [db, `${db}-wal`, `${db}-shm`]) rmSync(f, { force: true });
    },
  };
  return srv;
}
