// `GET /ws`, the plain WebSocket protocol (docs/events.md, "Plain WebSocket"), end to end with
// Node's `ws` against the real binary: authentication by header and by first frame, every
// event of `/` with acks and errors, rooms and DMs shared with socket.io-client sockets, the
// heartbeat, and every close code a client can provoke.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { io } from "socket.io-client";
import { startProduct, signedCall, hsToken, once, until, delay } from "./common.mjs";
import { Plain } from "./plain.mjs";
import { openEvents } from "./sse.mjs";

const SECRET = "plainws-jwt-secret-padded-to-at-least-32-bytes";
const HOOK = "plainws-hook-secret-padded-to-at-least-32-bytes";
let srv;

const token = (sub, opts) => hsToken(SECRET, sub, opts);
const internal = (method, route, body) => signedCall(srv.url, HOOK, method, route, body);
async function sio(user) {
  const s = io(srv.url, { forceNew: true, reconnection: false, transports: ["websocket"], auth: { token: token(user) } });
  await once(s, "connect");
  return s;
}
const ask = (s, event, payload) => s.timeout(3000).emitWithAck(event, payload);

before(async () => {
  srv = await startProduct({
    JWT_SECRET: SECRET,
    WEBHOOK_SECRET: HOOK,
    RT__ENGINE__CONNECT_TIMEOUT_MS: "1500",
    RT__ENGINE__PING_INTERVAL_MS: "600",
    RT__ENGINE__PING_TIMEOUT_MS: "600",
    RT__ENGINE__MAX_PAYLOAD: "20000",
    RT__LIMITS__EVENTS_OVER_DISCONNECT_MS: "1500",
    RT__SERVER__DRAIN_MS: "1000",
  });
  for (const u of ["ann", "ben", "cat", "dan", "eve", "fay", "gus", "hal", "ivy"]) {
    assert.equal((await internal("PUT", `/users/${u}`, { name: u.toUpperCase(), email: `${u}@example.com`, role: "user", isActive: true })).status, 200);
  }
  assert.equal((await internal("PUT", "/users/root", { name: "Root", email: "root@example.com", role: "admin", isActive: true })).status, 200);
  assert.equal((await internal("PUT", "/users/off", { name: "Off", email: "off@example.com", role: "user", isActive: false })).status, 200);
  for (const r of ["mixed", "quiet"]) {
    assert.equal((await internal("PUT", `/rooms/${r}`, { name: r, isPublic: true })).status, 200);
  }
});
after(() => srv.stop());

test("Bearer header: auth:ok with the user, then events with acks, same room traffic as Socket.IO", async () => {
  const p = await Plain.connect(srv.url, token("ann"));
  assert.equal(p.userId, "ann");
  const joined = await p.call("room:join", { roomId: "mixed" });
  assert.equal(joined.success, true);
  assert.deepEqual(joined.online, ["ann"]);
  // the history a join sends comes as a plain event too
  assert.deepEqual((await p.next("room:history")).payload, { roomId: "mixed", messages: [], hasMore: false });

  const s = await sio("ben");
  assert.equal((await ask(s, "room:join", "mixed")).success, true);
  const fromPlain = once(s, "chat:message");
  const sent = await p.call("chat:send", { roomId: "mixed", text: "hello from /ws" });
  assert.equal(sent.success, true);
  const [msg] = await fromPlain;
  assert.equal(msg.text, "hello from /ws");
  assert.equal(msg.sender.id, "ann");
  assert.equal(msg.id, sent.messageId);
  // ann's own copy
  assert.equal((await p.next((f) => f.type === "chat:message" && f.payload.id === sent.messageId)).payload.text, "hello from /ws");

  const back = await ask(s, "chat:send", { roomId: "mixed", text: "hello from socket.io" });
  const got = await p.next((f) => f.type === "chat:message" && f.payload.id === back.messageId);
  assert.deepEqual(Object.keys(got).sort(), ["payload", "type"]);
  assert.equal(got.payload.text, "hello from socket.io");
  assert.equal(got.payload.sender.id, "ben");
  s.disconnect();
  p.close();
  assert.equal((await p.closeInfo()).code, 1000);
});

test("user events, presence and announcements reach /ws like socket.io and SSE of the same user (one node)", async () => {
  const p = await Plain.connect(srv.url, token("eve"));
  const s = await sio("eve");
  const ticket = await fetch(`${srv.url}/api/sse-ticket`, { method: "POST", headers: { authorization: `Bearer ${token("eve")}` } });
  const sse = await openEvents(srv.url, { query: `?ticket=${(await ticket.json()).ticket}` });
  try {
    const viaSio = [];
    s.on("job:progress", (j) => viaSio.push(j));
    const res = await internal("POST", "/notify/progress", { userId: "eve", jobId: "j1", progress: 40, status: "processing" });
    assert.equal((await res.json()).success, true);
    const frame = await p.next("job:progress");
    await until(() => viaSio.length === 1 && sse.events.some((e) => e.event === "job:progress"), 3000, "socket.io and SSE");
    assert.deepEqual(frame.payload, viaSio[0]);
    assert.deepEqual(sse.events.find((e) => e.event === "job:progress").data, viaSio[0]);
    // presence: following a user who comes online
    const followed = await p.call("presence:subscribe", { userIds: ["gus"] });
    assert.equal(followed.success, true);
    const gus = await sio("gus");
    assert.deepEqual((await p.next((f) => f.type === "user:status" && f.payload.userId === "gus")).payload.status, "online");
    gus.disconnect();
    // an admin's announcement to every socket of /
    const admin = io(srv.url + "/admin", { forceNew: true, reconnection: false, transports: ["websocket"], auth: { token: token("root", { role: "admin" }) } });
    await once(admin, "connect");
    const heard = once(s, "system:announcement");
    assert.equal((await ask(admin, "admin:announce", { message: "to every protocol" })).success, true);
    assert.equal((await p.next("system:announcement")).payload.message, "to every protocol");
    assert.equal((await heard)[0].message, "to every protocol");
    admin.disconnect();
  } finally {
    sse.close();
    s.disconnect();
    p.close();
  }
});

test("first frame auth: ok; string ids echoed; failures as ack or error frames; ping → pong", async () => {
  const p = await Plain.connect(srv.url, token("cat"), { header: false });
  assert.equal(p.userId, "cat");
  p.send({ type: "room:join", payload: { roomId: "nowhere" }, id: "req-1" });
  const ack = await p.next((f) => f.type === "ack" && f.id === "req-1");
  assert.deepEqual(ack.payload, { success: false, error: ack.payload.error, code: "NOT_FOUND" });
  // without an id the failure is an error frame
  p.send({ type: "chat:send", payload: { roomId: "quiet", text: "x" } });
  assert.deepEqual((await p.next("error")).payload, { message: "join the room first", code: "FORBIDDEN" });
  // a wrong type of payload is INVALID_PAYLOAD, and the connection stays
  assert.equal((await p.call("room:join", 42)).code, "INVALID_PAYLOAD");
  p.send({ type: "ping" });
  assert.deepEqual(await p.next("pong"), { type: "pong" });
  assert.equal((await p.call("room:join", "quiet")).success, true);
  // auth:refresh works as for Socket.IO
  assert.deepEqual(await p.call("auth:refresh", { token: token("cat") }), { success: true });
  assert.equal((await p.call("auth:refresh", { token: token("ann") })).code, "FORBIDDEN");
  p.close();
});

test("frames sent right after auth wait for it and are all handled", async () => {
  const p = await Plain.open(srv.url, {});
  p.send({ type: "auth", payload: { token: token("dan") } });
  p.send({ type: "room:join", payload: "quiet", id: 1 });
  p.send({ type: "presence:subscribe", payload: { userIds: ["ann"] }, id: 2 });
  p.send({ type: "ping" });
  await p.next("auth:ok");
  const first = await p.next((f) => f.type === "ack" && f.id === 1);
  assert.equal(first.payload.success, true, JSON.stringify(first));
  const second = await p.next((f) => f.type === "ack" && f.id === 2);
  assert.equal(second.payload.success, true, JSON.stringify(second));
  await p.next("pong");
  p.close();
});

test("authentication failures close 4401 with the code as the reason", async () => {
  const cases = [
    [{ token: "garbage" }, "TOKEN_INVALID"],
    [{ token: token("ann", { ttl: -60 }) }, "TOKEN_EXPIRED"],
    [{ token: token("off") }, "ACCOUNT_DISABLED"],
    [{ token: token("nobody") }, "TOKEN_INVALID"],
  ];
  for (const [opts, code] of cases) {
    const viaHeader = await Plain.open(srv.url, opts);
    assert.deepEqual(await viaHeader.closeInfo(), { code: 4401, reason: code }, `header ${code}`);
    const viaFrame = await Plain.open(srv.url, {});
    viaFrame.send({ type: "auth", payload: { token: opts.token } });
    assert.deepEqual(await viaFrame.closeInfo(), { code: 4401, reason: code }, `frame ${code}`);
  }
  // a first frame that is not auth, or auth without a token
  for (const first of [{ type: "room:join", payload: "quiet" }, { type: "auth", payload: {} }, { type: "auth" }]) {
    const p = await Plain.open(srv.url, {});
    p.send(first);
    assert.deepEqual(await p.closeInfo(), { code: 4401, reason: "AUTH_REQUIRED" });
  }
  // nothing within engine.connect_timeout_ms
  const idle = await Plain.open(srv.url, {});
  const t0 = Date.now();
  assert.deepEqual(await idle.closeInfo(4000), { code: 4401, reason: "AUTH_REQUIRED" });
  assert.ok(Date.now() - t0 >= 1200, "closed at the connect timeout");
});

test("bad frames: binary 1003, not JSON or no type 1007, too big 1009; others unaffected", async () => {
  const watcher = await Plain.connect(srv.url, token("eve"));
  const kinds = [
    [(p) => p.ws.send(Buffer.from([1, 2, 3])), 1003, "UNSUPPORTED_DATA"],
    [(p) => p.send("not json"), 1007, "INVALID_PAYLOAD"],
    [(p) => p.send("[1,2]"), 1007, "INVALID_PAYLOAD"],
    [(p) => p.send({ payload: 1 }), 1007, "INVALID_PAYLOAD"],
    [(p) => p.send({ type: "room:join", id: -3 }), 1007, "INVALID_PAYLOAD"],
    [(p) => p.send({ type: "chat:send", payload: { text: "x".repeat(30000) } }), 1009, "MESSAGE_TOO_BIG"],
  ];
  for (const [act, code, reason] of kinds) {
    const p = await Plain.connect(srv.url, token("fay"));
    act(p);
    assert.deepEqual(await p.closeInfo(), { code, reason });
  }
  // the same before authentication
  const early = await Plain.open(srv.url, {});
  early.send("{");
  assert.equal((await early.closeInfo()).code, 1007);
  assert.equal((await watcher.call("room:join", "quiet")).success, true);
  watcher.close();
});

test("DMs to a /ws user carry an id; answered with ack they are not delivered again", async () => {
  const s = await sio("gus");
  let p = await Plain.connect(srv.url, token("hal"));
  assert.equal((await ask(s, "user:direct-message", { targetId: "hal", message: "unanswered" })).success, true);
  const first = await p.next("chat:direct");
  assert.equal(typeof first.id, "string");
  assert.equal(first.payload.message, "unanswered");
  // not acknowledged: the next connect gets it again
  p.close();
  await p.closeInfo();
  p = await Plain.connect(srv.url, token("hal"));
  const again = await p.next("chat:direct", 5000);
  assert.equal(again.payload.id, first.payload.id);
  p.send({ type: "ack", id: again.id, payload: { success: true } });
  assert.equal((await ask(s, "user:direct-message", { targetId: "hal", message: "answered" })).success, true);
  const second = await p.next((f) => f.type === "chat:direct" && f.payload.message === "answered");
  p.send({ type: "ack", id: second.id });
  await delay(300);
  p.close();
  await p.closeInfo();
  // both acknowledged: nothing comes again
  p = await Plain.connect(srv.url, token("hal"));
  await delay(800);
  assert.deepEqual(p.frames.filter((f) => f.type === "chat:direct"), []);
  p.close();
  s.disconnect();
});

test("heartbeat: pings answered by the WebSocket stack keep it open; no pong closes 4408", async () => {
  const alive = await Plain.connect(srv.url, token("ivy"));
  const pings = [];
  alive.ws.on("ping", () => pings.push(Date.now()));
  await delay(2000);
  assert.ok(pings.length >= 2, `pings seen: ${pings.length}`);
  assert.equal((await alive.call("room:join", "quiet")).success, true);
  alive.close();

  const mute = await Plain.open(srv.url, { token: token("ivy"), autoPong: false });
  await mute.next("auth:ok");
  assert.deepEqual(await mute.closeInfo(4000), { code: 4408, reason: "PING_TIMEOUT" });
});

test("server-side ends: admin disconnect and disabled user 4403, token expiry 4401 TOKEN_EXPIRED, event flood 4429", async () => {
  const admin = await sio("root");
  const adminNs = io(srv.url + "/admin", { forceNew: true, reconnection: false, transports: ["websocket"], auth: { token: token("root", { role: "admin" }) } });
  await once(adminNs, "connect");
  const p = await Plain.connect(srv.url, token("ben"));
  assert.deepEqual(await ask(adminNs, "admin:disconnect-user", { userId: "ben" }), { success: true });
  assert.deepEqual(await p.closeInfo(), { code: 4403, reason: "FORBIDDEN" });
  adminNs.disconnect();
  admin.disconnect();

  // disabled by the directory: the same
  const ivy = await Plain.connect(srv.url, token("ivy"));
  assert.equal((await internal("PUT", "/users/ivy", { name: "IVY", email: "ivy@example.com", role: "user", isActive: false })).status, 200);
  assert.deepEqual(await ivy.closeInfo(), { code: 4403, reason: "FORBIDDEN" });

  const short = await Plain.connect(srv.url, token("cat", { ttl: 2 }));
  assert.deepEqual(await short.closeInfo(5000), { code: 4401, reason: "TOKEN_EXPIRED" });

  const flood = await Plain.connect(srv.url, token("dan"));
  const refusals = [];
  const end = Date.now() + 4000;
  while (flood.ws.readyState === 1 && Date.now() < end) {
    for (let i = 0; i < 50; i++) flood.send({ type: "chat:typing-start", payload: { roomId: "quiet" } });
    await delay(20);
  }
  refusals.push(...flood.frames.filter((f) => f.type === "error" && f.payload.code === "RATE_LIMITED"));
  assert.ok(refusals.length > 0, "refused before being closed");
  assert.deepEqual(await flood.closeInfo(), { code: 4429, reason: "RATE_LIMITED" });
});

test("upgrade checks: a foreign origin gets 403; a plain GET gets 426 with a JSON body", async () => {
  await assert.rejects(Plain.open(srv.url, { token: token("ann"), headers: { Origin: "https://evil.example" } }), (e) => e.status === 403);
  const res = await fetch(`${srv.url}/ws`);
  assert.equal(res.status, 426);
  assert.equal((await res.json()).code, "UPGRADE_REQUIRED");
  // the server's own origin is fine
  const ok = await Plain.open(srv.url, { token: token("ann"), headers: { Origin: srv.url } });
  await ok.next("auth:ok");
  ok.close();
});

test("a /ws client that stops reading is closed 4000 SLOW_CONSUMER at the byte budget", async () => {
  const small = await startProduct({
    JWT_SECRET: SECRET,
    WEBHOOK_SECRET: HOOK,
    RT__LIMITS__MAX_QUEUED_BYTES: "65536",
    RT__LIMITS__EVENTS_PER_S: "100000",
    RT__LIMITS__EVENTS_BURST: "100000",
  });
  try {
    for (const [u, role] of [["slow", "user"], ["boss", "admin"]]) {
      assert.equal((await signedCall(small.url, HOOK, "PUT", `/users/${u}`, { name: u, email: `${u}@example.com`, role, isActive: true })).status, 200);
    }
    const p = await Plain.connect(small.url, hsToken(SECRET, "slow"));
    p.ws._socket.pause();
    const admin = io(small.url + "/admin", { forceNew: true, reconnection: false, transports: ["websocket"], auth: { token: hsToken(SECRET, "boss", { role: "admin" }) } });
    await once(admin, "connect");
    const text = "y".repeat(2000);
    // ~24 MB of announcements: far beyond the socket buffers and the 64 KiB budget
    for (let i = 0; i < 12000 && !/closing slow consumer/.test(small.output()); i++) {
      admin.emit("admin:announce", { message: text });
      if (i % 200 === 199) await delay(5);
    }
    await until(() => /closing slow consumer/.test(small.output()), 10000, "the slow consumer closed");
    p.ws._socket.resume();
    assert.deepEqual(await p.closeInfo(8000), { code: 4000, reason: "SLOW_CONSUMER" });
    admin.disconnect();
  } finally {
    await small.stop();
  }
});

test("raw socket: an unmasked client frame closes 1002; 13 frames before auth:ok close 4429", async () => {
  const net = await import("node:net");
  // a WebSocket upgrade by hand, then bytes no WebSocket library would send
  const raw = (extra = "") => new Promise((resolve, reject) => {
    const sock = net.connect(srv.port, "127.0.0.1");
    let buf = Buffer.alloc(0);
    const got = { sock, frames: [], closed: null };
    sock.on("error", reject);
    sock.on("data", (d) => {
      buf = Buffer.concat([buf, d]);
      if (!got.upgraded) {
        const end = buf.indexOf("\r\n\r\n");
        if (end < 0) return;
        got.upgraded = buf.subarray(0, end).toString().startsWith("HTTP/1.1 101");
        buf = buf.subarray(end + 4);
        resolve(got);
      }
      // server frames are unmasked, short ones only here
      while (buf.length >= 2) {
        let len = buf[1] & 0x7f;
        let at = 2;
        if (len === 126) { len = buf.readUInt16BE(2); at = 4; }
        if (buf.length < at + len) break;
        const op = buf[0] & 0x0f;
        const body = buf.subarray(at, at + len);
        if (op === 8) got.closed = { code: body.readUInt16BE(0), reason: body.subarray(2).toString() };
        else if (op === 1) got.frames.push(JSON.parse(body.toString()));
        buf = buf.subarray(at + len);
      }
    });
    sock.write(`GET /ws HTTP/1.1\r\nHost: 127.0.0.1:${srv.port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n` +
      `Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n${extra}\r\n`);
  });
  /** A masked client text frame (mask 0: the bytes as they are). */
  const masked = (text) => {
    const body = Buffer.from(text);
    const head = body.length < 126
      ? Buffer.from([0x81, 0x80 | body.length])
      : Buffer.from([0x81, 0x80 | 126, body.length >> 8, body.length & 0xff]);
    return Buffer.concat([head, Buffer.from([0, 0, 0, 0]), body]);
  };
  const a = await raw(`Authorization: Bearer ${token("gus")}\r\n`);
  assert.ok(a.upgraded);
  await until(() => a.frames.some((f) => f.type === "auth:ok"), 3000, "auth:ok");
  a.sock.write(Buffer.from([0x81, 0x05, ...Buffer.from("hello")])); // not masked
  await until(() => a.closed, 3000, "the close frame");
  assert.deepEqual(a.closed, { code: 1002, reason: "PROTOCOL_ERROR" });
  a.sock.destroy();

  // frames sent while the auth is checked are kept, up to 12 (a raw client can send them all before the check ends)
  const b = await raw();
  const frames = [masked(JSON.stringify({ type: "auth", payload: { token: token("gus") } }))];
  for (let i = 0; i < 40; i++) frames.push(masked(JSON.stringify({ type: "room:join", payload: "quiet" })));
  b.sock.write(Buffer.concat(frames));
  await until(() => b.closed, 3000, "the close frame");
  assert.deepEqual(b.closed, { code: 4429, reason: "RATE_LIMITED" });
  b.sock.destroy();
});

test("/ws sockets count in /metrics and admin:stats; a drain closes them 1001", async () => {
  const p = await Plain.connect(srv.url, token("eve"));
  const metrics = await (await fetch(`${srv.url}/metrics`)).text();
  assert.match(metrics, /rt_state_entries\{map="plain_sessions"\} [1-9]/);
  const adminNs = io(srv.url + "/admin", { forceNew: true, reconnection: false, transports: ["websocket"], auth: { token: token("root", { role: "admin" }) } });
  await once(adminNs, "connect");
  const other = await sio("fay");
  const stats = await ask(adminNs, "admin:stats");
  assert.ok(stats.namespaces["/"] >= 1, JSON.stringify(stats.namespaces));
  // this test's connection (earlier tests' closed ones may still be on their way out)
  assert.ok(stats.transports.ws >= 1, JSON.stringify(stats.transports));
  assert.ok(stats.transports.websocket >= 2, "the two socket.io clients of this test");
  assert.equal(typeof stats.transports.polling, "number");
  assert.equal(typeof stats.transports.sse, "number");
  assert.match(metrics, /rt_transport_connections\{transport="ws"\} [1-9]/);
  adminNs.disconnect();
  other.disconnect();
  // last test of the file: the server drains
  srv.proc.kill("SIGTERM");
  assert.deepEqual(await p.closeInfo(8000), { code: 1001, reason: "GOING_AWAY" });
});
