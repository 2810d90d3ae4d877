// The event proxy (docs/extending.md) against the real binary and a real HTTP backend (node:http
// in this process, verifying every signature): `rpc:` events of `/` from socket.io-client and
// /ws become signed calls whose answers are the acks; the backend's errors, failures, garbage,
// silence and absence; the in-flight bound; events the server does not define.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { createHmac, timingSafeEqual } from "node:crypto";
import { io } from "socket.io-client";
import { startProduct, signedCall, hsToken, once, collect, until, delay } from "./common.mjs";
import { Plain } from "./plain.mjs";

const SECRET = "proxy-jwt-secret-padded-to-at-least-32-bytes";
const HOOK = "proxy-hook-secret-padded-to-at-least-32-bytes";
const PROXY_SECRET = "proxy-call-secret-padded-to-at-least-32-bytes";
const UUID7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
let srv;
let backend;

/** The backend: answers by event name, records every call with its verified signature;
 * `rpc:hold` calls wait for `release()`. */
async function startBackend() {
  const calls = [];
  let held = [];
  const server = http.createServer((req, res) => {
    const chunks = [];
    req.on("data", (c) => chunks.push(c));
    req.on("end", () => {
      const raw = Buffer.concat(chunks).toString("utf8");
      const header = req.headers["x-signature-256"] || "";
      const t = Number((/(?:^|,)t=(\d+)/.exec(header) || [])[1]);
      const v1 = (/(?:^|,)v1=([0-9a-f]{64})/.exec(header) || [])[1] || "";
      const want = createHmac("sha256", PROXY_SECRET).update(`${t}.POST.${req.url}.${raw}`).digest("hex");
      const verified = v1.length === 64 && timingSafeEqual(Buffer.from(v1), Buffer.from(want)) && Math.abs(Date.now() / 1000 - t) <= 300;
      const body = JSON.parse(raw);
      calls.push({ url: req.url, verified, body, contentType: req.headers["content-type"] });
      const json = (status, v) => { res.writeHead(status, { "content-type": "application/json" }); res.end(typeof v === "string" ? v : JSON.stringify(v)); };
      if (!verified) return json(401, { error: "bad signature" });
      switch (body.event) {
        case "rpc:echo": return json(200, { result: { echo: body.data, user: body.userId } });
        case "rpc:fail": return json(200, { error: { code: "OUT_OF_STOCK", message: "none left" } });
        case "rpc:500": return json(500, { result: 1 });
        case "rpc:garbage": return json(200, "<html>oops</html>");
        case "rpc:badcode": return json(200, { error: { code: "lower-case", message: "m" } });
        case "rpc:slow": return; // never answered
        case "rpc:hold": held.push(() => json(200, { result: "released" })); return;
        default: return json(404, {});
      }
    });
  });
  await new Promise((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${server.address().port}/rpc?env=test`,
    calls,
    release() { const h = held; held = []; h.forEach((f) => f()); },
    stop: () => new Promise((r) => { server.closeAllConnections(); server.close(r); }),
  };
}

const token = (sub, role = "user") => hsToken(SECRET, sub, { role });
async function sio(user, nsp = "/", role = "user") {
  const s = io(srv.url + nsp, { forceNew: true, reconnection: false, transports: ["websocket"], auth: { token: token(user, role) } });
  await once(s, "connect", 5000);
  return s;
}
const ask = (s, event, payload, ms = 4000) => s.timeout(ms).emitWithAck(event, payload);

before(async () => {
  backend = await startBackend();
  srv = await startProduct({
    JWT_SECRET: SECRET,
    WEBHOOK_SECRET: HOOK,
    RT__PROXY__URL: backend.url,
    RT__PROXY__SECRET: PROXY_SECRET,
    RT__PROXY__TIMEOUT_MS: "800",
    RT__PROXY__MAX_IN_FLIGHT: "3",
  });
  for (const u of ["amy", "ben"]) {
    assert.equal((await signedCall(srv.url, HOOK, "PUT", `/users/${u}`, { name: u, email: `${u}@example.com`, role: "user", isActive: true })).status, 200);
  }
  assert.equal((await signedCall(srv.url, HOOK, "PUT", "/users/boss", { name: "boss", email: "boss@example.com", role: "admin", isActive: true })).status, 200);
  assert.equal((await signedCall(srv.url, HOOK, "PUT", "/rooms/lobby", { name: "Lobby", isPublic: true })).status, 200);
});
after(async () => {
  await srv?.stop();
  await backend?.stop();
});

test("an rpc: event is a signed call; the backend's result is the ack", async () => {
  const amy = await sio("amy");
  const before = backend.calls.length;
  const data = { sku: "A-1", qty: 2, note: "ünïcödé" };
  assert.deepEqual(await ask(amy, "rpc:echo", data), { success: true, result: { echo: data, user: "amy" } });
  const call = backend.calls[before];
  assert.equal(call.verified, true);
  assert.equal(call.url, "/rpc?env=test");
  assert.equal(call.contentType, "application/json");
  assert.deepEqual(Object.keys(call.body).sort(), ["data", "event", "id", "timestamp", "userId"]);
  assert.match(call.body.id, UUID7);
  assert.equal(call.body.event, "rpc:echo");
  assert.equal(call.body.userId, "amy");
  assert.ok(Math.abs(call.body.timestamp - Date.now()) < 5000);
  // only the first argument travels; none is null
  assert.deepEqual(await ask(amy, "rpc:echo", undefined), { success: true, result: { echo: null, user: "amy" } });
  amy.disconnect();
});

test("the backend's error is the ack's; failures, garbage and bad codes are UNAVAILABLE", async () => {
  const amy = await sio("amy");
  assert.deepEqual(await ask(amy, "rpc:fail", {}), { success: false, error: "none left", code: "OUT_OF_STOCK" });
  for (const ev of ["rpc:500", "rpc:garbage", "rpc:badcode", "rpc:unknown-to-backend"]) {
    const a = await ask(amy, ev, {});
    assert.equal(a.success, false, ev);
    assert.equal(a.code, "UNAVAILABLE", ev);
  }
  assert.equal(amy.connected, true);
  amy.disconnect();
});

test("a backend that never answers: UNAVAILABLE after the timeout, other sockets unaffected", async () => {
  const amy = await sio("amy");
  const ben = await sio("ben");
  assert.equal((await ask(ben, "room:join", "lobby")).success, true);
  const started = Date.now();
  const slow = ask(amy, "rpc:slow", {});
  // meanwhile the server serves everyone else at once
  const t0 = Date.now();
  assert.equal((await ask(ben, "chat:send", { roomId: "lobby", text: "still here" })).success, true);
  assert.ok(Date.now() - t0 < 500, `chat:send took ${Date.now() - t0} ms`);
  const a = await slow;
  const took = Date.now() - started;
  assert.equal(a.code, "UNAVAILABLE");
  assert.ok(took >= 700 && took < 2500, `answered after ${took} ms (timeout 800)`);
  assert.equal(amy.connected, true);
  amy.disconnect();
  ben.disconnect();
});

test("at most max_in_flight calls per node: beyond, RATE_LIMITED at once", async () => {
  const amy = await sio("amy");
  const held = [ask(amy, "rpc:hold", 1), ask(amy, "rpc:hold", 2), ask(amy, "rpc:hold", 3)];
  await until(() => backend.calls.filter((c) => c.body.event === "rpc:hold").length === 3, 2000, "three calls out");
  const t0 = Date.now();
  const refused = await ask(amy, "rpc:echo", "fourth");
  assert.equal(refused.code, "RATE_LIMITED");
  assert.ok(Date.now() - t0 < 300, "refused at once");
  backend.release();
  for (const a of await Promise.all(held)) assert.deepEqual(a, { success: true, result: "released" });
  await delay(50);
  assert.equal((await ask(amy, "rpc:echo", "again")).success, true);
  amy.disconnect();
});

test("without an ack the call is still made; its answer is dropped", async () => {
  const amy = await sio("amy");
  const errors = collect(amy, "error");
  const before = backend.calls.length;
  amy.emit("rpc:echo", { fire: "and forget" });
  amy.emit("rpc:fail", {});
  await until(() => backend.calls.length === before + 2, 2000, "both calls made");
  await delay(200);
  assert.deepEqual(errors, []);
  assert.equal(amy.connected, true);
  amy.disconnect();
});

test("/ws clients call the backend the same way", async () => {
  const p = await Plain.connect(srv.url, token("ben"));
  const ack = await p.call("rpc:echo", { from: "ws" });
  assert.deepEqual(ack, { success: true, result: { echo: { from: "ws" }, user: "ben" } });
  const unknown = await p.call("nope:never", {});
  assert.deepEqual(unknown, { success: false, error: "unknown event", code: "UNKNOWN_EVENT" });
  p.close();
});

test("events the server does not define: UNKNOWN_EVENT with an ack, ignored without; in every namespace", async () => {
  const amy = await sio("amy");
  const notes = await sio("amy", "/notifications");
  const boss = await sio("boss", "/admin", "admin");
  const errors = [collect(amy, "error"), collect(notes, "error"), collect(boss, "error")];
  const before = backend.calls.length;
  for (const s of [amy, notes, boss]) {
    assert.deepEqual(await ask(s, "made:up", { x: 1 }), { success: false, error: "unknown event", code: "UNKNOWN_EVENT" });
    s.emit("made:up", { x: 2 });
  }
  // the proxy serves `/` only
  assert.equal((await ask(notes, "rpc:echo", 1)).code, "UNKNOWN_EVENT");
  assert.equal((await ask(boss, "rpc:echo", 1)).code, "UNKNOWN_EVENT");
  await delay(200);
  assert.equal(backend.calls.length, before);
  for (const e of errors) assert.deepEqual(e, []);
  for (const s of [amy, notes, boss]) assert.equal(s.connected, true);
  for (const s of [amy, notes, boss]) s.disconnect();
});

test("the event rate limit applies to proxied events", async () => {
  const srv2 = await startProduct({
    JWT_SECRET: SECRET, WEBHOOK_SECRET: HOOK, RT__PROXY__URL: backend.url, RT__PROXY__SECRET: PROXY_SECRET,
    RT__LIMITS__EVENTS_PER_S: "1", RT__LIMITS__EVENTS_BURST: "3",
  });
  try {
    assert.equal((await signedCall(srv2.url, HOOK, "PUT", "/users/amy", { name: "amy", email: "amy@example.com", role: "user", isActive: true })).status, 200);
    const s = io(srv2.url, { forceNew: true, reconnection: false, transports: ["websocket"], auth: { token: token("amy") } });
    await once(s, "connect", 5000);
    const before = backend.calls.length;
    const answers = await Promise.all(Array.from({ length: 6 }, (_, i) => s.timeout(3000).emitWithAck("rpc:echo", i)));
    const codes = answers.map((a) => (a.success ? "ok" : a.code));
    assert.equal(codes.filter((c) => c === "ok").length, 3, codes.join());
    assert.equal(codes.filter((c) => c === "RATE_LIMITED").length, 3, codes.join());
    assert.equal(backend.calls.length, before + 3);
    s.disconnect();
  } finally {
    await srv2.stop();
  }
});

test("metrics count each outcome; a backend that is gone is UNAVAILABLE", async () => {
  const amy = await sio("amy");
  const text = await (await fetch(`${srv.url}/metrics`)).text();
  const count = (o) => Number((new RegExp(`rt_proxy_calls_total\\{outcome="${o}"\\} (\\d+)`).exec(text) || [])[1]);
  for (const o of ["ok", "error", "unavailable", "refused"]) assert.ok(count(o) >= 1, `${o}: ${count(o)}`);
  assert.match(text, /rt_proxy_seconds_count \d+/);
  await backend.stop();
  const a = await ask(amy, "rpc:echo", 1);
  assert.equal(a.code, "UNAVAILABLE");
  amy.disconnect();
});

test("without proxy.url every rpc: event is unknown; a url without a secret refuses to start", async () => {
  const plain = await startProduct({ JWT_SECRET: SECRET, WEBHOOK_SECRET: HOOK });
  try {
    assert.equal((await signedCall(plain.url, HOOK, "PUT", "/users/amy", { name: "amy", email: "amy@example.com", role: "user", isActive: true })).status, 200);
    const s = io(plain.url, { forceNew: true, reconnection: false, transports: ["websocket"], auth: { token: token("amy") } });
    await once(s, "connect", 5000);
    assert.equal((await s.timeout(3000).emitWithAck("rpc:echo", 1)).code, "UNKNOWN_EVENT");
    s.disconnect();
  } finally {
    await plain.stop();
  }
  for (const [env, msg] of [
    [{ RT__PROXY__URL: "http://127.0.0.1:9/x" }, /proxy\.secret/],
    [{ RT__PROXY__URL: "http://127.0.0.1:9/x", RT__PROXY__SECRET: "short" }, /proxy\.secret/],
    [{ RT__PROXY__URL: "ftp://127.0.0.1/x", RT__PROXY__SECRET: PROXY_SECRET }, /proxy\.url/],
  ]) {
    const err = await startProduct({ JWT_SECRET: SECRET, WEBHOOK_SECRET: HOOK, ...env }).then(() => assert.fail("started"), (e) => e.message);
    assert.match(err, /exited early with 2/);
    assert.match(err, msg);
  }
});
