// What the server exposes and to whom (DESIGN 6, issue 12 part 5): CORS only for configured
// origins (none by default, `*` without credentials), WebSockets from pages of other
// origins refused with 403, the private listener of `internal.addr`, the SQLite file and
// data directory private to the server's user, secrets never in the log, unknown
// configuration keys refused.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { mkdtempSync, rmSync, statSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { io } from "socket.io-client";
import { startProduct, startPostgres, signedCall, hsToken, once, until } from "./common.mjs";

const SECRET = "exposure-jwt-secret-padded-to-at-least-32-bytes";
const HOOK = "exposure-hook-secret-padded-to-at-least-32-bytes";
const started = [];
let pg;
after(async () => {
  for (const s of started) await s.stop();
  pg?.stop();
});

async function product(env = {}, opts = {}) {
  const s = await startProduct({ JWT_SECRET: SECRET, WEBHOOK_SECRET: HOOK, ...env }, opts);
  started.push(s);
  return s;
}

/** A raw WebSocket upgrade to Engine.IO: the status (101 when accepted) and any body. */
function upgrade(srv, headers = {}) {
  return new Promise((resolve, reject) => {
    const req = http.request({
      host: "127.0.0.1",
      port: srv.port,
      path: "/socket.io/?EIO=4&transport=websocket",
      headers: {
        Connection: "Upgrade",
        Upgrade: "websocket",
        "Sec-WebSocket-Version": "13",
        "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
        ...headers,
      },
    });
    req.setTimeout(3000, () => req.destroy(new Error("no answer to the upgrade")));
    req.on("upgrade", (res, socket) => {
      socket.destroy();
      resolve({ status: res.statusCode });
    });
    req.on("response", (res) => {
      let body = "";
      res.on("data", (d) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode, body }));
    });
    req.on("error", reject);
    req.end();
  });
}

const handshake = (srv, origin) =>
  fetch(`${srv.url}/socket.io/?EIO=4&transport=polling`, { headers: origin ? { Origin: origin } : {} });

test("default: no CORS headers for any origin, a WebSocket from another site's page is refused with 403", async () => {
  const srv = await product();
  const res = await handshake(srv, "http://evil.example");
  assert.equal(res.status, 200, "answered, as Node does; the browser keeps the body from the page");
  assert.equal(res.headers.get("access-control-allow-origin"), null);
  assert.equal(res.headers.get("access-control-allow-credentials"), null);
  const pre = await fetch(`${srv.url}/socket.io/?EIO=4&transport=polling`, {
    method: "OPTIONS",
    headers: { Origin: "http://evil.example", "Access-Control-Request-Method": "POST" },
  });
  assert.equal(pre.headers.get("access-control-allow-origin"), null);

  const refused = await upgrade(srv, { Origin: "http://evil.example" });
  assert.equal(refused.status, 403);
  assert.deepEqual(JSON.parse(refused.body), { code: 4, message: "Forbidden" });
  assert.equal((await upgrade(srv, { Origin: "null" })).status, 403);
  // the server's own pages, non-browser clients, and the page's origin as a TLS proxy forwards it
  assert.equal((await upgrade(srv, { Origin: `http://127.0.0.1:${srv.port}` })).status, 101);
  assert.equal((await upgrade(srv)).status, 101);
  assert.equal((await upgrade(srv, { Origin: `https://127.0.0.1:${srv.port}`, "X-Forwarded-Proto": "https" })).status, 101);
  assert.equal((await upgrade(srv, { Origin: `https://127.0.0.1:${srv.port}` })).status, 403);
  assert.equal((await upgrade(srv, { Origin: `http://127.0.0.1:${srv.port + 1}` })).status, 403);

  // a socket.io client sending a foreign Origin over WebSocket gets a connect_error
  const s = io(srv.url, {
    forceNew: true,
    reconnection: false,
    transports: ["websocket"],
    extraHeaders: { Origin: "http://evil.example" },
    auth: { token: hsToken(SECRET, "alice") },
  });
  const [err] = await once(s, "connect_error", 5000);
  assert.match(err.message, /websocket error/);
  s.close();
});

test("configured origins: listed ones get CORS with credentials and may open WebSockets, others not", async () => {
  const srv = await product({ CLIENT_URL: "https://App.example/, http://b.example:8080" });
  const ok = await handshake(srv, "https://app.example");
  assert.equal(ok.headers.get("access-control-allow-origin"), "https://app.example");
  assert.equal(ok.headers.get("access-control-allow-credentials"), "true");
  const b = await handshake(srv, "http://b.example:8080");
  assert.equal(b.headers.get("access-control-allow-origin"), "http://b.example:8080");
  const bad = await handshake(srv, "http://evil.example");
  assert.equal(bad.headers.get("access-control-allow-origin"), null);
  assert.equal((await upgrade(srv, { Origin: "https://app.example" })).status, 101);
  assert.equal((await upgrade(srv, { Origin: "http://b.example:8080" })).status, 101);
  assert.equal((await upgrade(srv, { Origin: "http://b.example" })).status, 403);
  assert.equal((await upgrade(srv, { Origin: "http://evil.example" })).status, 403);
});

test("`*` is answered as `*` without credentials, and said in the log", async () => {
  const srv = await product({ CLIENT_URL: "*" });
  const res = await handshake(srv, "http://anyone.example");
  assert.equal(res.headers.get("access-control-allow-origin"), "*");
  assert.equal(res.headers.get("access-control-allow-credentials"), null);
  assert.equal((await upgrade(srv, { Origin: "http://anyone.example" })).status, 101);
  await until(() => /WARN.*cors\.origins is "\*"/.test(srv.output()), 3000, "the warning");
});

test("server.public_url names the origin pages use behind a proxy", async () => {
  const srv = await product({ RT__SERVER__PUBLIC_URL: "https://chat.example/" });
  assert.equal((await upgrade(srv, { Origin: "https://chat.example" })).status, 101);
  assert.equal((await upgrade(srv, { Origin: `http://127.0.0.1:${srv.port}` })).status, 403);
});

test("internal.addr: /internal/ and /metrics only on the private listener, health on both", async () => {
  const srv = await product({ RT__INTERNAL__ADDR: "127.0.0.1:0" });
  let m;
  await until(() => (m = srv.output().match(/internal listener on http:\/\/127\.0\.0\.1:(\d+)/)), 5000, "internal listener");
  const internal = `http://127.0.0.1:${m[1]}`;
  const body = { name: "Alice", email: "a@example.com", role: "admin", isActive: true };

  const pub = await signedCall(srv.url, HOOK, "PUT", "/users/alice", body);
  assert.equal(pub.status, 404);
  assert.deepEqual(await pub.json(), { success: false, error: "not found", code: "NOT_FOUND" });
  const pubMetrics = await fetch(`${srv.url}/metrics`);
  assert.equal(pubMetrics.status, 404);
  assert.equal((await pubMetrics.json()).code, "NOT_FOUND");
  assert.equal((await fetch(`${srv.url}/internal`)).status, 404);

  assert.equal((await signedCall(internal, HOOK, "PUT", "/users/alice", body)).status, 200);
  const metrics = await fetch(`${internal}/metrics`);
  assert.equal(metrics.status, 200);
  assert.match(await metrics.text(), /# TYPE/);
  for (const base of [srv.url, internal]) {
    assert.equal((await fetch(`${base}/healthz`)).status, 200, base);
    assert.equal((await fetch(`${base}/readyz`)).status, 200, base);
    const nf = await fetch(`${base}/no-such-page`);
    assert.equal(nf.status, 404);
    assert.equal((await nf.json()).code, "NOT_FOUND");
  }
  // the public port still serves clients, and the user written on the private one exists
  const s = io(srv.url, { forceNew: true, reconnection: false, auth: { token: hsToken(SECRET, "alice") } });
  await once(s, "connect", 5000);
  s.close();
});

test("the SQLite file and the data directory are private to the server's user (0600 / 0700)", async () => {
  const dir = mkdtempSync(path.join(tmpdir(), "rt-perm-"));
  try {
    const db = path.join(dir, "store", "nested", "realtime.db");
    // no JWT secret: one is generated under data/ in the working directory
    const srv = await product({ DATABASE_URL: `sqlite://${db}`, JWT_SECRET: "" }, { cwd: dir });
    const mode = (p) => statSync(p).mode & 0o777;
    assert.equal(mode(db), 0o600);
    assert.equal(mode(path.dirname(db)), 0o700);
    assert.equal(mode(path.join(dir, "store")), 0o700);
    for (const extra of [`${db}-wal`, `${db}-shm`]) {
      if (existsSync(extra)) assert.equal(mode(extra) & 0o077, 0, `${extra} readable by others`);
    }
    assert.ok(existsSync(`${db}-wal`), "WAL mode is on");
    assert.equal(mode(path.join(dir, "data")), 0o700);
    assert.equal(mode(path.join(dir, "data", "jwt_secret")), 0o600);
    await srv.stop();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("secrets stay out of the log: a database password is masked, a bad URL not echoed", async () => {
  pg = await startPostgres();
  // trust authentication: the password is accepted whatever it is
  const url = pg.createDb().replace("postgres://postgres@", "postgres://postgres:Sekr3t-Passw0rd@");
  const srv = await product({ DATABASE_URL: url });
  await until(() => /database ready backend=Postgres url=postgres:\/\/postgres:\*\*\*@127\.0\.0\.1/.test(srv.output()), 3000, "masked url");
  assert.ok(!srv.output().includes("Sekr3t-Passw0rd"));
  await srv.stop();

  const err = await startProduct({ DATABASE_URL: "mysql://root:Sekr3t-Passw0rd@db.example/rt", JWT_SECRET: SECRET }).then(
    () => assert.fail("started with a mysql URL"),
    (e) => e.message,
  );
  assert.match(err, /unsupported database url "mysql:\/\/…"/);
  assert.ok(!err.includes("Sekr3t-Passw0rd"));
});

test("unknown configuration keys are errors, not ignored", async () => {
  const err = await startProduct({ RT__SERVER__PROT: "4001", JWT_SECRET: SECRET }).then(
    () => assert.fail("started with an unknown key"),
    (e) => e.message,
  );
  assert.match(err, /invalid configuration: .*unknown field `prot`/);
  const bad = await startProduct({ CLIENT_URL: "app.example.com", JWT_SECRET: SECRET }).then(
    () => assert.fail("started with an origin that is no URL"),
    (e) => e.message,
  );
  assert.match(bad, /cors\.origins: "app\.example\.com" is not a URL/);
});
