// Logs as an operator reads them: `log.format = "json"` writes one JSON object per line with
// ts / level / target / msg and the event's fields; connect, refusal and disconnect lines
// carry the client's address, taken from X-Forwarded-For / X-Real-IP only when the peer is in
// server.trusted_proxies (a forged entry left of the nearest untrusted hop is ignored).
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { io } from "socket.io-client";
import { startProduct, signedCall, hsToken, once, until } from "./common.mjs";

const SECRET = "logs-jwt-secret-padded-to-at-least-32-bytes";
const HOOK = "logs-hook-secret-padded-to-at-least-32-bytes";
const servers = [];
after(async () => { for (const s of servers) await s.stop(); });

async function server(env) {
  const srv = await startProduct({ JWT_SECRET: SECRET, WEBHOOK_SECRET: HOOK, ...env });
  servers.push(srv);
  assert.equal((await signedCall(srv.url, HOOK, "PUT", "/users/alice", { name: "alice", email: "a@example.com", role: "user", isActive: true })).status, 200);
  return srv;
}
/** Connects alice with `headers`, then disconnects; resolves with the socket id. */
async function visit(srv, headers, token = hsToken(SECRET, "alice")) {
  const s = io(srv.url, { forceNew: true, reconnection: false, transports: ["websocket"], auth: { token }, extraHeaders: headers });
  const outcome = await Promise.race([once(s, "connect").then(() => "connected"), once(s, "connect_error").then(() => "refused")]);
  const id = s.id;
  s.close();
  return { outcome, id };
}
const jsonLines = (srv) => srv.output().split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));

test("json: every line is an object with ts, level, target, msg; access lines carry the forwarded client address from a trusted proxy", async () => {
  const srv = await server({ RT__LOG__FORMAT: "json", RT__SERVER__TRUSTED_PROXIES: "127.0.0.1,10.0.0.0/8" });
  const a = await visit(srv, { "x-forwarded-for": "6.6.6.6, 203.0.113.7, 10.1.2.3" });
  assert.equal(a.outcome, "connected");
  const b = await visit(srv, { "x-real-ip": "198.51.100.4" });
  const refused = await visit(srv, { "x-forwarded-for": "192.0.2.55" }, "not-a-token");
  assert.equal(refused.outcome, "refused");
  // the log travels through a pipe, the client's answers through a socket: wait for the lines
  await until(() => {
    const l = jsonLines(srv);
    return l.filter((x) => x.msg === "socket disconnected").length === 2 && l.some((x) => x.msg.startsWith("connect refused"));
  }, 3000, "the disconnect and refusal lines");

  const text = srv.output().split("\n").filter((l) => l.trim() && !l.startsWith("#"));
  for (const l of text) {
    const o = JSON.parse(l);
    assert.equal(typeof o.ts, "string");
    assert.ok(!Number.isNaN(Date.parse(o.ts)), o.ts);
    assert.match(o.level, /^(ERROR|WARN|INFO|DEBUG|TRACE)$/);
    assert.equal(typeof o.target, "string");
    assert.equal(typeof o.msg, "string");
  }
  const lines = jsonLines(srv);
  const connected = lines.find((l) => l.msg === "socket connected" && l.id === a.id);
  assert.deepEqual([connected.ip, connected.nsp, connected.target], ["203.0.113.7", "/", "realtime_server::access"]);
  assert.equal(typeof connected.sid, "string");
  assert.equal(connected.recovered, false);
  const gone = lines.find((l) => l.msg === "socket disconnected" && l.id === a.id);
  assert.deepEqual([gone.ip, gone.reason], ["203.0.113.7", "client namespace disconnect"]);
  assert.equal(lines.find((l) => l.msg === "socket connected" && l.id === b.id).ip, "198.51.100.4", "X-Real-IP without X-Forwarded-For");
  const refusal = lines.find((l) => l.msg.startsWith("connect refused"));
  assert.deepEqual([refusal.ip, refusal.code, refusal.level], ["192.0.2.55", "TOKEN_INVALID", "INFO"]);
  assert.ok(lines.some((l) => /listening on/.test(l.msg)), "start-up lines too");
});

test("json: refused HTTP calls (a bad token, a bad signature) are logged with the client address", async () => {
  const srv = await server({ RT__LOG__FORMAT: "json", RT__SERVER__TRUSTED_PROXIES: "127.0.0.1" });
  const api = await fetch(`${srv.url}/api/notifications`, { headers: { authorization: "Bearer nope", "x-forwarded-for": "203.0.113.9" } });
  assert.equal(api.status, 401);
  const hook = await fetch(`${srv.url}/internal/notify/stock`, { method: "POST", body: "{}", headers: { "x-signature-256": "t=1,v1=00", "x-real-ip": "198.51.100.20" } });
  assert.equal(hook.status, 401);
  const sse = await fetch(`${srv.url}/events?ticket=unknown`, { headers: { "x-forwarded-for": "192.0.2.99" } });
  assert.equal(sse.status, 401);
  const refused = () => jsonLines(srv).filter((l) => l.msg === "request refused");
  await until(() => refused().length === 3, 3000, "three refusal lines");
  assert.deepEqual(refused().map((l) => [l.method, l.route, l.status, l.ip, l.target]), [
    ["GET", "/api/notifications", 401, "203.0.113.9", "realtime_server::access"],
    ["POST", "/internal/notify/{kind}", 401, "198.51.100.20", "realtime_server::access"],
    ["GET", "/events", 401, "192.0.2.99", "realtime_server::access"],
  ]);
});

test("json: from a peer that is not a trusted proxy the headers are ignored", async () => {
  const srv = await server({ RT__LOG__FORMAT: "json" });
  const a = await visit(srv, { "x-forwarded-for": "203.0.113.7", "x-real-ip": "198.51.100.4" });
  await until(() => jsonLines(srv).some((l) => l.msg === "socket connected" && l.id === a.id), 3000, "the connect line");
  assert.equal(jsonLines(srv).find((l) => l.msg === "socket connected" && l.id === a.id).ip, "127.0.0.1");
});

test("text (the default): fields follow the message as key=value", async () => {
  const srv = await server({});
  const a = await visit(srv, {});
  await until(() => srv.output().includes(`id=${a.id}`), 3000, "the connect line");
  const line = srv.output().split("\n").find((l) => l.includes("socket connected") && l.includes(`id=${a.id}`));
  assert.match(line, /^\[\S+Z INFO  realtime_server::access\] socket connected sid=\S+ nsp=\/ id=\S+ ip=127\.0\.0\.1 recovered=false$/);
});

test("a bad server.trusted_proxies entry stops the server with a clear message", async () => {
  await assert.rejects(
    startProduct({ JWT_SECRET: SECRET, WEBHOOK_SECRET: HOOK, RT__SERVER__TRUSTED_PROXIES: "10.0.0.0/8,not-an-address" }),
    /server\.trusted_proxies: "not-an-address" is not an address or a CIDR block/,
  );
});
