// Shared fixture: starts the real echo server binary on a loopback port and gives
// small helpers that wait for events with a deadline (never a fixed sleep).
import { spawn } from "node:child_process";
import { createHmac } from "node:crypto";
import { existsSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { fileURLToPath } from "node:url";
import path from "node:path";
import { io } from "socket.io-client";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");

export function echoBinary() {
  if (process.env.ECHO_BIN) return process.env.ECHO_BIN;
  for (const profile of ["release", "debug"]) {
    const p = path.join(root, "target", profile, "examples", "echo");
    if (existsSync(p)) return p;
  }
  throw new Error("echo example not built: run `cargo build --release --examples`");
}

/** Starts the echo server with extra flags; resolves once it listens. */
export function startServer(args = [], opts = {}) {
  return startBinary(echoBinary(), ["--addr", "127.0.0.1:0", ...args], opts);
}

/** The product binary (`realtime-server`). */
export function serverBinary() {
  if (process.env.SERVER_BIN) return process.env.SERVER_BIN;
  for (const profile of ["release", "debug"]) {
    const p = path.join(root, "target", profile, "realtime-server");
    if (existsSync(p)) return p;
  }
  throw new Error("realtime-server not built: run `cargo build --release`");
}

/** Starts `realtime-server serve` on a free loopback port with `env` added; by default
 * with its own SQLite file in a temp dir. */
export function startProduct(env = {}, opts = {}) {
  const db = path.join(tmpdir(), `rt-test-${process.pid}-${Math.random().toString(36).slice(2)}.db`);
  return startBinary(serverBinary(), ["serve", "--addr", "127.0.0.1:0"], {
    ...opts,
    env: { DATABASE_URL: `sqlite://${db}`, ...env },
  });
}

/** Starts a server binary; resolves once it says where it listens (stdout or log). */
export function startBinary(bin, args, { env = {}, cwd } = {}) {
  return new Promise((resolve, reject) => {
    const proc = spawn(bin, args, {
      stdio: ["ignore", "pipe", "pipe"],
      env: { ...process.env, ...env },
      cwd,
    });
    let out = "";
    const timer = setTimeout(() => reject(new Error(`${bin} did not start in 10 s:\n${out}`)), 10000);
    // "close", not "exit": it comes after stdout and stderr are read to the end, so the
    // message carries what the binary said before it stopped.
    proc.on("close", (code) => reject(new Error(`${bin} exited early with ${code}:\n${out}`)));
    const onData = (d) => {
      out += d;
      const m = out.match(/listening on (?:http:\/\/)?([\d.]+):(\d+)/);
      if (m) {
        clearTimeout(timer);
        const port = Number(m[2]);
        const url = `http://127.0.0.1:${port}`;
        resolve({
          url,
          port,
          proc,
          output: () => out,
          async stop() {
            if (proc.exitCode === null && proc.signalCode === null) {
              const exited = new Promise((r) => proc.once("exit", r));
              proc.kill("SIGKILL");
              await exited;
            }
            const db = (env.DATABASE_URL || "").replace(/^sqlite:\/\//, "");
            if (db.startsWith(tmpdir())) {
              for (const f of [db, `${db}-wal`, `${db}-shm`]) rmSync(f, { force: true });
            }
          },
          alive() {
            return proc.exitCode === null && proc.signalCode === null;
          },
        });
      }
    };
    proc.stdout.on("data", onData);
    proc.stderr.on("data", (d) => {
      process.stderr.write(d);
      onData(d);
    });
  });
}

/** Resolves with the event's arguments, or rejects after `ms`. */
export function once(emitter, event, ms = 3000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      emitter.off?.(event, handler);
      reject(new Error(`timeout waiting for "${event}"`));
    }, ms);
    const handler = (...args) => {
      clearTimeout(timer);
      resolve(args);
    };
    emitter.once(event, handler);
  });
}

/** A connected socket.io-client socket. */
export async function connect(url, nsp = "/", opts = {}) {
  const socket = io(url + nsp, { forceNew: true, reconnection: false, ...opts });
  await once(socket, "connect", 5000);
  return socket;
}

/** Collects every emission of `event` on `socket`. */
export function collect(socket, event) {
  const got = [];
  socket.on(event, (...args) => got.push(args));
  return got;
}

/** Waits until `pred()` is true, polling every 10 ms, at most `ms`. */
export async function until(pred, ms = 3000, what = "condition") {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await pred()) return;
    await new Promise((r) => setTimeout(r, 10));
  }
  throw new Error(`timeout waiting for ${what}`);
}

export const delay = (ms) => new Promise((r) => setTimeout(r, ms));

/** A throwaway PostgreSQL cluster (initdb + pg_ctl in a temp dir, a free loopback port),
 * run as the `postgres` user when we are root. Missing binaries fail loudly. */
export async function startPostgres() {
  const { execFileSync } = await import("node:child_process");
  const { mkdtempSync, readdirSync } = await import("node:fs");
  const net = await import("node:net");
  const versions = existsSync("/usr/lib/postgresql") ? readdirSync("/usr/lib/postgresql").sort() : [];
  const bin = versions.map((v) => `/usr/lib/postgresql/${v}/bin`).filter((b) => existsSync(`${b}/pg_ctl`)).pop();
  if (!bin) throw new Error("PostgreSQL binaries not found under /usr/lib/postgresql: apt-get install postgresql");
  const root = process.getuid?.() === 0;
  const run = (tool, args) => {
    const [cmd, argv] = root ? ["runuser", ["-u", "postgres", "--", `${bin}/${tool}`, ...args]] : [`${bin}/${tool}`, args];
    return execFileSync(cmd, argv, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
  };
  const dir = mkdtempSync(path.join(tmpdir(), "rt-pg-"));
  if (root) execFileSync("chown", ["-R", "postgres:postgres", dir]);
  const port = await new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => { const p = s.address().port; s.close(() => resolve(p)); });
  });
  const data = path.join(dir, "data");
  run("initdb", ["-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8", "--no-sync"]);
  run("pg_ctl", ["-D", data, "-o", `-p ${port} -c listen_addresses=127.0.0.1 -k ${dir} -c fsync=off`, "-l", path.join(dir, "log"), "-w", "start"]);
  let n = 0;
  let stopped = false;
  const psql = (db, sql) => run("psql", ["-h", "127.0.0.1", "-p", String(port), "-U", "postgres", "-d", db, "-v", "ON_ERROR_STOP=1", "-At", "-c", sql]);
  return {
    port,
    /** A fresh database; returns its URL. */
    createDb() {
      const name = `rt_${process.pid}_${++n}`;
      psql("postgres", `CREATE DATABASE ${name}`);
      return `postgres://postgres@127.0.0.1:${port}/${name}`;
    },
    /** Runs SQL in the database of `url`; returns rows as arrays of strings. */
    query(url, sql) {
      const out = psql(url.split("/").pop(), sql).trim();
      return out ? out.split("\n").map((l) => l.split("|")) : [];
    },
    /** Stops the cluster and removes its files (again: nothing). */
    stop() {
      if (stopped) return;
      stopped = true;
      try { run("pg_ctl", ["-D", data, "-m", "immediate", "-w", "stop"]); } finally { rmSync(dir, { recursive: true, force: true }); }
    },
  };
}

/** Runs SQL against a SQLite file (python3's sqlite3); returns rows as arrays of strings. */
export async function sqliteQuery(file, sql) {
  const { execFileSync } = await import("node:child_process");
  const script = "import sqlite3,sys\nc=sqlite3.connect(sys.argv[1])\ncur=c.cursor()\ncur.executescript(sys.argv[2]) if sys.argv[2].strip().lower().split()[0] not in ('select','with') else None\nrows=[] if sys.argv[2].strip().lower().split()[0] not in ('select','with') else c.execute(sys.argv[2]).fetchall()\nc.commit()\nprint('\\n'.join('|'.join('' if v is None else str(v) for v in r) for r in rows))";
  const out = execFileSync("python3", ["-c", script, file, sql], { encoding: "utf8" }).trim();
  return out ? out.split("\n").map((l) => l.split("|")) : [];
}

/** Signed requests already made by this process: (t, method, target, body) may be used once. */
const usedSignatures = new Set();

/** The `X-Signature-256` value (DESIGN 6) for a request: HMAC-SHA256 over
 * `{t}.{METHOD}.{target}.{body}`. `t` defaults to now; when the same request was already signed
 * for that second (a deliberate retry), an earlier second within the window is used, as the
 * server refuses a signature it has seen. */
export function signature(secret, method, target, raw, t) {
  if (t === undefined) {
    t = Math.floor(Date.now() / 1000);
    while (usedSignatures.has(`${t}.${method}.${target}.${raw}`)) t -= 1;
  }
  usedSignatures.add(`${t}.${method}.${target}.${raw}`);
  return `t=${t},v1=` + createHmac("sha256", secret).update(`${t}.${method}.${target}.${raw}`).digest("hex");
}

/** A signed `/internal/…` call; `body` may be a string sent as is. `header` replaces the
 * signature header's value (attacks); `sign: false` sends none. */
export async function signedCall(url, secret, method, route, body, { sign = true, headers = {}, header, t } = {}) {
  const raw = body === undefined ? "" : typeof body === "string" ? body : JSON.stringify(body);
  const h = { "Content-Type": "application/json", ...headers };
  if (header !== undefined) h["X-Signature-256"] = header;
  else if (sign) h["X-Signature-256"] = signature(secret, method, `/internal${route}`, raw, t);
  return fetch(`${url}/internal${route}`, { method, headers: h, body: raw || undefined });
}

/** An HS256 JWT for `sub` (10 minutes unless `ttl` seconds are given). */
export function hsToken(secret, sub, { role = "user", ttl = 600 } = {}) {
  const b64 = (v) => Buffer.from(JSON.stringify(v)).toString("base64url");
  const head = b64({ alg: "HS256", typ: "JWT" });
  const body = b64({ sub, role, exp: Math.floor(Date.now() / 1000) + ttl });
  const sig = createHmac("sha256", secret).update(`${head}.${body}`).digest("base64url");
  return `${head}.${body}.${sig}`;
}

/** A real redis-server on a free loopback port (no persistence); `restart()` brings it back
 * on the same port. Missing binary fails loudly. */
export async function startRedis() {
  const net = await import("node:net");
  const { existsSync: exists } = await import("node:fs");
  const bin = ["/usr/bin/redis-server", "/usr/local/bin/redis-server"].find((p) => exists(p));
  if (!bin) throw new Error("redis-server not found: apt-get install redis-server (scripts/test.sh does)");
  const port = await new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => { const p = s.address().port; s.close(() => resolve(p)); });
  });
  let proc;
  const up = () => new Promise((resolve, reject) => {
    proc = spawn(bin, ["--port", String(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--protected-mode", "no"], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    const timer = setTimeout(() => reject(new Error(`redis-server did not start:\n${out}`)), 10000);
    proc.stdout.on("data", (d) => {
      out += d;
      if (/Ready to accept connections/.test(out)) { clearTimeout(timer); resolve(); }
    });
    proc.on("close", (code) => { clearTimeout(timer); reject(new Error(`redis-server exited with ${code}:\n${out}`)); });
  });
  const down = async () => {
    if (proc && proc.exitCode === null && proc.signalCode === null) {
      const exited = new Promise((r) => proc.once("exit", r));
      proc.kill("SIGKILL");
      await exited;
    }
  };
  await up();
  return { port, url: `redis://127.0.0.1:${port}/`, stop: down, async restart() { await down(); await up(); } };
}

/** Real nginx with `nginx/realtime.conf` in front of `ports` (node ports), a fresh self-signed
 * certificate, and its files in a temp dir (`edit` may change the site's text first). Resolves
 * with the public TLS port and the private port once it answers. Missing nginx fails loudly. */
export async function startNginx(ports, { edit = (site) => site } = {}) {
  const { execFileSync: exec } = await import("node:child_process");
  const fs = await import("node:fs");
  const net = await import("node:net");
  const bin = ["/usr/sbin/nginx", "/usr/local/sbin/nginx"].find((p) => fs.existsSync(p));
  if (!bin) throw new Error("nginx not found: apt-get install nginx-light (scripts/test.sh does)");
  const freePort = () => new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => { const p = s.address().port; s.close(() => resolve(p)); });
  });
  const dir = fs.mkdtempSync(path.join(tmpdir(), "rt-nginx-"));
  fs.chmodSync(dir, 0o755);
  exec("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
    "-keyout", path.join(dir, "tls.key"), "-out", path.join(dir, "tls.crt")], { stdio: "ignore" });
  const httpsPort = await freePort();
  const httpPort = await freePort();
  const privatePort = await freePort();
  const site = fs.readFileSync(path.join(root, "nginx", "realtime.conf"), "utf8")
    .replace(/    server 127\.0\.0\.1:4001[^\n]*\n    server 127\.0\.0\.1:4002[^\n]*\n/,
      ports.map((p) => `    server 127.0.0.1:${p} max_fails=3 fail_timeout=10s;\n`).join(""))
    .replace("listen 443 ssl;", `listen 127.0.0.1:${httpsPort} ssl;`)
    .replace("listen 80;", `listen 127.0.0.1:${httpPort};`)
    .replace("listen 127.0.0.1:8081;", `listen 127.0.0.1:${privatePort};`)
    .replace("/etc/nginx/certs/realtime.crt", path.join(dir, "tls.crt"))
    .replace("/etc/nginx/certs/realtime.key", path.join(dir, "tls.key"));
  const directives = site.split("\n").filter((l) => !l.trim().startsWith("#")).join("\n");
  if (directives.includes(":4001") || directives.includes("/etc/nginx") || directives.includes(" 443 ") || /listen 80;/.test(directives)) {
    throw new Error("nginx/realtime.conf changed: the test's substitutions no longer apply");
  }
  fs.writeFileSync(path.join(dir, "site.conf"), edit(site));
  const asRoot = process.getuid?.() === 0;
  fs.writeFileSync(path.join(dir, "nginx.conf"), `
${asRoot ? "user root;" : ""}
worker_processes 1;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  include ${dir}/site.conf;
}
`);
  exec(bin, ["-t", "-q", "-p", dir, "-c", path.join(dir, "nginx.conf")]);
  const proc = spawn(bin, ["-p", dir, "-c", path.join(dir, "nginx.conf"), "-g", "daemon off;"], { stdio: "inherit" });
  await until(async () => {
    try { return (await fetch(`http://127.0.0.1:${privatePort}/healthz`)).status > 0; } catch { return false; }
  }, 10000, "nginx up");
  return {
    httpsPort,
    httpPort,
    privatePort,
    url: `https://127.0.0.1:${httpsPort}`,
    httpUrl: `http://127.0.0.1:${httpPort}`,
    privateUrl: `http://127.0.0.1:${privatePort}`,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        const exited = new Promise((r) => proc.once("exit", r));
        proc.kill("SIGQUIT");
        await exited;
      }
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A database for one test file: `sqlite` (a temp file) or `postgres` (a throwaway cluster).
 * `url` goes to DATABASE_URL, `query(sql)` reads rows as arrays of strings, `stop()` cleans. */
export async function testDatabase(backend, name) {
  if (backend === "postgres") {
    const pg = await startPostgres();
    const url = pg.createDb();
    return { url, query: (sql) => pg.query(url, sql), stop: () => pg.stop() };
  }
  const file = path.join(tmpdir(), `rt-test-${name}-${process.pid}.db`);
  return {
    url: `sqlite://${file}`,
    query: (sql) => sqliteQuery(file, sql),
    stop: () => { for (const f of [file, `${file}-wal`, `${file}-shm`]) rmSync(f, { force: true }); },
  };
}

/** A webhook receiver on loopback: records every POST with whether its `X-Signature-256`
 * verifies under `secret` (HMAC-SHA256 over `{t}.POST.{path and query}.{body}`, `t` within
 * 300 s). `fail(status)` makes it answer `status` until `fail(null)`; `hold(true)` keeps
 * requests unanswered (recorded with status "held") until `hold(false)`. */
export async function startHookReceiver(secret) {
  const http = await import("node:http");
  const crypto = await import("node:crypto");
  const got = [];
  let failWith = null;
  let holding = false;
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const raw = Buffer.concat(chunks).toString("utf8");
      const header = req.headers["x-signature-256"] || "";
      const t = Number((/(?:^|,)t=(\d+)/.exec(header) || [])[1]);
      const v1 = (/(?:^|,)v1=([0-9a-f]{64})/.exec(header) || [])[1] || "";
      const want = crypto.createHmac("sha256", secret).update(`${t}.POST.${req.url}.${raw}`).digest("hex");
      const verified = v1.length === 64 && crypto.timingSafeEqual(Buffer.from(v1), Buffer.from(want))
        && Math.abs(Date.now() / 1000 - t) <= 300;
      let body = null;
      try { body = JSON.parse(raw); } catch { /* recorded as null */ }
      const status = holding ? "held" : failWith ?? 200;
      got.push({ at: Date.now(), method: req.method, url: req.url, contentType: req.headers["content-type"], header, t, verified, raw, body, status });
      if (holding) return; // never answered
      res.writeHead(status, { "content-type": "application/json" });
      res.end("{}");
    });
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  const { port } = server.address();
  return {
    url: `http://127.0.0.1:${port}`,
    got,
    /** Accepted events (answered 2xx), in arrival order. */
    accepted: () => got.filter((g) => typeof g.status === "number" && g.status < 300).map((g) => g.body),
    fail(status) { failWith = status; },
    hold(on) { holding = on; },
    stop: () => new Promise((r) => { server.closeAllConnections?.(); server.close(r); }),
  };
}
