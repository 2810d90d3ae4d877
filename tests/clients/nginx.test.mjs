// nginx/realtime.conf for real: nginx with a self-signed certificate in front of two server
// nodes; the stock socket.io-client connects over wss:// (WebSocket only, and polling with
// upgrade) and chats, and a plain WebSocket client (`/ws`) shares its room; /internal/ is refused on the public side and served on the private one;
// port 80 redirects; the client's real address reaches the nodes' logs; too many requests from
// one address get 429; the admin dashboard loads through nginx from loopback (and is refused
// to an address outside the allowed ranges).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { io } from "socket.io-client";
import WebSocket from "ws";
import { startProduct, startNginx, signedCall, hsToken, once, until } from "./common.mjs";

const SECRET = "nginx-jwt-secret-padded-to-at-least-32-bytes";
const HOOK = "nginx-hook-secret-padded-to-at-least-32-bytes";
let dir;
let nodes = [];
let nginx;
let httpsPort;
let privatePort;

before(async () => {
  dir = mkdtempSync(path.join(tmpdir(), "rt-nginx-db-"));
  const db = `sqlite://${path.join(dir, "shared.db")}`;
  for (let i = 0; i < 2; i++) {
    nodes.push(await startProduct({
      JWT_SECRET: SECRET, WEBHOOK_SECRET: HOOK, DATABASE_URL: db,
      // nginx reaches the nodes from 127.0.0.1: its forwarded client address counts
      RT__LOG__FORMAT: "json", RT__SERVER__TRUSTED_PROXIES: "127.0.0.1",
    }));
  }
  nginx = await startNginx(nodes.map((n) => n.port));
  ({ httpsPort, privatePort } = nginx);
  for (const u of ["alice", "bob"]) {
    const res = await signedCall(nginx.privateUrl, HOOK, "PUT", `/users/${u}`, { name: u, email: `${u}@example.com`, role: "user", isActive: true });
    assert.equal(res.status, 200, "directory sync through the private side");
  }
  const room = await signedCall(nginx.privateUrl, HOOK, "PUT", "/rooms/lobby", { name: "Lobby", isPublic: true });
  assert.equal(room.status, 200);
});

after(async () => {
  await nginx?.stop();
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

test("wss:///ws, the plain WebSocket, through nginx: auth, join, and the room shared with socket.io", async () => {
  const ws = new WebSocket(`wss://127.0.0.1:${httpsPort}/ws`, { headers: { Authorization: `Bearer ${hsToken(SECRET, "bob")}` }, rejectUnauthorized: false });
  const frames = [];
  ws.on("message", (d) => frames.push(JSON.parse(d.toString())));
  await once(ws, "open", 5000);
  await until(() => frames.some((f) => f.type === "auth:ok" && f.payload.userId === "bob"), 5000, "auth:ok");
  ws.send(JSON.stringify({ type: "room:join", payload: "lobby", id: 1 }));
  await until(() => frames.some((f) => f.type === "ack" && f.id === 1 && f.payload.success), 3000, "the join's ack");
  const s = await chatOver(["websocket"], "alice");
  await until(() => frames.some((f) => f.type === "chat:message" && f.payload.text === "hello over websocket"), 3000, "alice's message at the plain client");
  s.disconnect();
  const closed = once(ws, "close", 3000);
  ws.close(1000);
  assert.equal((await closed)[0], 1000);
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

test("WebSocket origins through nginx: the page's own https origin is accepted, another site's refused", async () => {
  const attempt = (origin) => {
    const s = io(`https://127.0.0.1:${httpsPort}`, {
      forceNew: true, reconnection: false, transports: ["websocket"], rejectUnauthorized: false,
      extraHeaders: { Origin: origin }, auth: { token: hsToken(SECRET, "alice") },
    });
    return new Promise((resolve) => {
      s.once("connect", () => { s.disconnect(); resolve("connected"); });
      s.once("connect_error", (e) => { s.close(); resolve(e.message); });
    });
  };
  assert.equal(await attempt(`https://127.0.0.1:${httpsPort}`), "connected");
  assert.match(await attempt("https://evil.example"), /websocket error/);
  assert.match(await attempt(`http://127.0.0.1:${httpsPort}`), /websocket error/, "the scheme counts");
});

/** A GET through nginx's TLS side from local address `from`. */
function httpsFrom(from, p, headers = {}) {
  return new Promise((resolve, reject) => {
    import("node:https").then(({ request }) => {
      const req = request({ host: "127.0.0.1", port: httpsPort, path: p, method: "GET", localAddress: from, rejectUnauthorized: false, agent: false, headers }, (res) => {
        let body = "";
        res.on("data", (d) => (body += d));
        res.on("end", () => resolve({ status: res.statusCode, body, headers: res.headers }));
      });
      req.on("error", reject);
      req.end();
    });
  });
}

test("plain HTTP on port 80 redirects to HTTPS", async () => {
  const res = await fetch(`${nginx.httpUrl}/socket.io/?EIO=4&transport=polling`, { redirect: "manual" });
  assert.equal(res.status, 301);
  assert.equal(res.headers.get("location"), "https://127.0.0.1/socket.io/?EIO=4&transport=polling");
});

test("the client's real address reaches the nodes' logs; an X-Forwarded-For the client wrote is not believed", async () => {
  // the client connects from 127.0.0.3 and claims to be 6.6.6.6
  const s = io(`https://127.0.0.1:${httpsPort}`, {
    forceNew: true, reconnection: false, transports: ["websocket"], rejectUnauthorized: false, localAddress: "127.0.0.3",
    extraHeaders: { "X-Forwarded-For": "6.6.6.6" }, auth: { token: hsToken(SECRET, "alice") },
  });
  await once(s, "connect", 5000);
  const id = s.id;
  s.disconnect();
  const line = () => nodes.flatMap((n) => n.output().split("\n"))
    .filter((l) => l.startsWith("{"))
    .map((l) => JSON.parse(l))
    .find((l) => l.msg === "socket connected" && l.id === id);
  await until(() => line() !== undefined, 3000, "the connect line");
  assert.equal(line().ip, "127.0.0.3");
});

test("past the configured rate one address gets 429 with a JSON body; another address is not affected", async () => {
  const answers = await Promise.all(Array.from({ length: 300 }, () => httpsFrom("127.0.0.4", "/api/notifications")));
  const limited = answers.filter((a) => a.status === 429);
  assert.ok(limited.length >= 100, `${limited.length} of 300 limited (rate 50/s, burst 100)`);
  assert.deepEqual(JSON.parse(limited[0].body), { success: false, error: "too many requests from this address", code: "RATE_LIMITED" });
  assert.ok(answers.some((a) => a.status === 401), "the first ones reached the API (no token: 401)");
  const other = await httpsFrom("127.0.0.5", "/api/notifications");
  assert.equal(other.status, 401, "another address still reaches the API");
});

test("the admin dashboard and its assets load through nginx from an allowed address; others get 403", async () => {
  const httpsGet = (port, p) => new Promise((resolve, reject) => {
    import("node:https").then(({ request }) => {
      const req = request({ host: "127.0.0.1", port, path: p, method: "GET", rejectUnauthorized: false }, (res) => {
        let body = "";
        res.on("data", (d) => (body += d));
        res.on("end", () => resolve({ status: res.statusCode, body, type: res.headers["content-type"] }));
      });
      req.on("error", reject);
      req.end();
    });
  });
  const page = await httpsGet(httpsPort, "/admin/");
  assert.equal(page.status, 200);
  assert.match(page.type, /text\/html/);
  assert.match(page.body, /admin\.js/);
  for (const a of ["/assets/admin.js", "/assets/style.css", "/assets/socket.io.min.js"]) {
    assert.equal((await httpsGet(httpsPort, a)).status, 200, a);
  }
  // the same file with loopback taken out of the allowed ranges, as for a visitor from the
  // internet: refused by nginx
  const closed = await startNginx(nodes.map((n) => n.port), { edit: (site) => site.replace("allow 127.0.0.0/8;", "") });
  try {
    assert.equal((await httpsGet(closed.httpsPort, "/admin/")).status, 403);
    assert.equal((await httpsGet(closed.httpsPort, "/healthz")).status, 200, "the rest is served");
  } finally {
    await closed.stop();
  }
});
