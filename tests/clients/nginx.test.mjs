// nginx/realtime.conf for real: nginx with a self-signed certificate in front of two server
// nodes; the stock socket.io-client connects over wss:// (WebSocket only, and polling with
// upgrade) and chats; /internal/ is refused on the public side and served on the private one.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync, spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync, chmodSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { io } from "socket.io-client";
import { startProduct, signedCall, hsToken, once, until } from "./common.mjs";

const SECRET = "nginx-jwt-secret";
const HOOK = "nginx-hook-secret";
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const NGINX = ["/usr/sbin/nginx", "/usr/local/sbin/nginx"].find((p) => existsSync(p));
let dir;
let nodes = [];
let nginx;
let httpsPort;
let privatePort;

const freePort = () => new Promise((resolve, reject) => {
  const s = createServer();
  s.on("error", reject);
  s.listen(0, "127.0.0.1", () => { const p = s.address().port; s.close(() => resolve(p)); });
});

before(async () => {
  if (!NGINX) throw new Error("nginx not found: apt-get install nginx-light (scripts/test.sh does)");
  dir = mkdtempSync(path.join(tmpdir(), "rt-nginx-"));
  chmodSync(dir, 0o755);
  execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
    "-keyout", path.join(dir, "tls.key"), "-out", path.join(dir, "tls.crt")], { stdio: "ignore" });
  const db = `sqlite://${path.join(dir, "shared.db")}`;
  for (let i = 0; i < 2; i++) {
    nodes.push(await startProduct({ JWT_SECRET: SECRET, WEBHOOK_SECRET: HOOK, DATABASE_URL: db }));
  }
  httpsPort = await freePort();
  privatePort = await freePort();
  // the shipped config, with this test's ports and files put in
  const site = readFileSync(path.join(root, "nginx", "realtime.conf"), "utf8")
    .replace("server 127.0.0.1:4001", `server 127.0.0.1:${nodes[0].port}`)
    .replace("server 127.0.0.1:4002", `server 127.0.0.1:${nodes[1].port}`)
    .replace("listen 443 ssl;", `listen 127.0.0.1:${httpsPort} ssl;`)
    .replace("listen 127.0.0.1:8081;", `listen 127.0.0.1:${privatePort};`)
    .replace("/etc/nginx/certs/realtime.crt", path.join(dir, "tls.crt"))
    .replace("/etc/nginx/certs/realtime.key", path.join(dir, "tls.key"));
  const directives = site.split("\n").filter((l) => !l.trim().startsWith("#")).join("\n");
  assert.ok(!directives.includes(":4001") && !directives.includes("/etc/nginx"), "every placeholder replaced");
  writeFileSync(path.join(dir, "site.conf"), site);
  const asRoot = process.getuid?.() === 0;
  writeFileSync(path.join(dir, "nginx.conf"), `
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
  execFileSync(NGINX, ["-t", "-q", "-p", dir, "-c", path.join(dir, "nginx.conf")]);
  nginx = spawn(NGINX, ["-p", dir, "-c", path.join(dir, "nginx.conf"), "-g", "daemon off;"], { stdio: "inherit" });
  await until(async () => {
    try { return (await fetch(`http://127.0.0.1:${privatePort}/healthz`)).ok; } catch { return false; }
  }, 10000, "nginx up");
  for (const u of ["alice", "bob"]) {
    const res = await signedCall(`http://127.0.0.1:${privatePort}`, HOOK, "PUT", `/users/${u}`, { name: u, email: `${u}@example.com`, role: "user", isActive: true });
    assert.equal(res.status, 200, "directory sync through the private side");
  }
  const room = await signedCall(`http://127.0.0.1:${privatePort}`, HOOK, "PUT", "/rooms/lobby", { name: "Lobby", isPublic: true });
  assert.equal(room.status, 200);
});

after(async () => {
  if (nginx && nginx.exitCode === null) {
    const exited = new Promise((r) => nginx.once("exit", r));
    nginx.kill("SIGQUIT");
    await exited;
  }
  for (const n of nodes) await n.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

async function chatOver(transports, user) {
  const s = io(`https://127.0.0.1:${httpsPort}`, {
    forceNew: true, reconnection: false, transports, rejectUnauthorized: false,
    auth: { token: hsToken(SECRET, user) },
  });
  await once(s, "connect", 5000);
  const joined = await s.timeout(3000).emitWithAck("room:join", "lobby");
  assert.equal(joined.success, true);
  const got = once(s, "chat:message");
  const ack = await s.timeout(3000).emitWithAck("chat:send", { roomId: "lobby", text: `hello over ${transports.join("+")}` });
  assert.equal(ack.success, true);
  assert.equal((await got)[0].id, ack.messageId);
  return s;
}

test("wss:// with WebSocket only", async () => {
  const s = await chatOver(["websocket"], "alice");
  assert.equal(s.io.engine.transport.name, "websocket");
  s.disconnect();
});

test("https:// long-polling, then the upgrade to WebSocket through nginx", async () => {
  const s = await chatOver(["polling", "websocket"], "bob");
  await until(() => s.io.engine.transport.name === "websocket", 5000, "upgrade");
  // still working after the upgrade
  const again = await s.timeout(3000).emitWithAck("chat:send", { roomId: "lobby", text: "after upgrade" });
  assert.equal(again.success, true);
  s.disconnect();
});

test("polling without upgrade keeps working across many requests (sticky upstream)", async () => {
  const s = io(`https://127.0.0.1:${httpsPort}`, {
    forceNew: true, reconnection: false, transports: ["polling"], rejectUnauthorized: false,
    auth: { token: hsToken(SECRET, "alice") },
  });
  await once(s, "connect", 5000);
  for (let i = 0; i < 20; i++) {
    assert.equal((await s.timeout(3000).emitWithAck("room:join", "lobby")).success, true);
  }
  s.disconnect();
});

test("the public side refuses /internal/, /metrics and /readyz; the private side serves them", async () => {
  const httpsFetch = (p) => new Promise((resolve, reject) => {
    import("node:https").then(({ request }) => {
      const req = request({ host: "127.0.0.1", port: httpsPort, path: p, method: "GET", rejectUnauthorized: false }, (res) => {
        let body = "";
        res.on("data", (d) => (body += d));
        res.on("end", () => resolve({ status: res.statusCode, body }));
      });
      req.on("error", reject);
      req.end();
    });
  });
  for (const p of ["/internal/users/alice", "/metrics", "/readyz"]) {
    const r = await httpsFetch(p);
    assert.equal(r.status, 404, p);
    assert.equal(JSON.parse(r.body).code, "NOT_FOUND");
  }
  assert.equal((await httpsFetch("/healthz")).status, 200);
  assert.equal((await fetch(`http://127.0.0.1:${privatePort}/readyz`)).status, 200);
  assert.match(await (await fetch(`http://127.0.0.1:${privatePort}/metrics`)).text(), /# TYPE rt_connections gauge/);
});
