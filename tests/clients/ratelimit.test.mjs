// Rate limits of the application server (DESIGN 10) with their default figures, driven by the
// real socket.io-client: the per-socket event bucket (100/s, burst 200; a socket over it for
// long is disconnected), chat:send and DMs per user (20/s, burst 40), room:sync answers in
// flight per socket (2). Refusals answer RATE_LIMITED, are counted in /metrics, and nothing
// refused is stored; other users are not affected.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { io } from "socket.io-client";
import { startProduct, signedCall, hsToken, once, collect, until, delay } from "./common.mjs";

const SECRET = "ratelimit-jwt-secret-padded-to-32-bytes";
const HOOK = "ratelimit-hook-secret-padded-to-32-bytes";
let srv;

const internal = (method, route, body) => signedCall(srv.url, HOOK, method, route, body);
async function client(user, transports = ["websocket"]) {
  const s = io(srv.url, { forceNew: true, reconnection: false, transports, upgrade: false, auth: { token: hsToken(SECRET, user) } });
  await once(s, "connect");
  return s;
}
const ask = (s, event, payload) => s.timeout(5000).emitWithAck(event, payload);
const metric = async (limit) => {
  const text = await (await fetch(`${srv.url}/metrics`)).text();
  const m = text.match(new RegExp(`rt_limit_refusals_total\\{limit="${limit}"\\} (\\d+)`));
  return m ? Number(m[1]) : 0;
};

before(async () => {
  // the default limits, except that a socket over its event rate goes after 2 s, not 10 s
  srv = await startProduct({ JWT_SECRET: SECRET, WEBHOOK_SECRET: HOOK, RT__LIMITS__EVENTS_OVER_DISCONNECT_MS: "2000" });
  for (const u of ["alice", "bob", "carol", "flood"]) {
    assert.equal((await internal("PUT", `/users/${u}`, { name: u, email: `${u}@example.com`, role: "user", isActive: true })).status, 200);
  }
  for (const r of ["rl", "sync"]) {
    assert.equal((await internal("PUT", `/rooms/${r}`, { name: r, isPublic: true })).status, 200);
  }
});
after(async () => { await srv.stop(); });

test("events per socket: a burst of 200 passes, the rest is RATE_LIMITED (ack or error event); the bucket refills", async () => {
  const s = await client("alice");
  const before = await metric("events");
  // 300 cheap events at once (each refused by its handler for its shape when it gets there)
  const acks = await Promise.all(Array.from({ length: 300 }, () => ask(s, "chat:typing-stop", {})));
  const codes = acks.map((a) => a.code);
  assert.ok(codes.slice(0, 200).every((c) => c === "INVALID_PAYLOAD"), "the burst reaches the handlers");
  const limited = codes.filter((c) => c === "RATE_LIMITED").length;
  assert.ok(limited >= 80 && limited <= 100, `${limited} of 300 refused`);
  assert.ok(codes.every((c) => c === "INVALID_PAYLOAD" || c === "RATE_LIMITED"));
  const refused = acks.find((a) => a.code === "RATE_LIMITED");
  assert.equal(refused.success, false);
  assert.match(refused.error, /too many events/);
  // without an ack: an error event
  const errors = collect(s, "error");
  for (let i = 0; i < 20; i++) s.emit("chat:typing-stop", {});
  await until(() => errors.length === 20, 3000, "20 error events");
  assert.ok(errors.some(([e]) => e.code === "RATE_LIMITED"), JSON.stringify(errors.slice(-1)));
  assert.ok((await metric("events")) - before >= limited, "refusals are counted by limit");
  // after two quiet seconds the whole burst is there again
  await delay(2100);
  const again = await Promise.all(Array.from({ length: 150 }, () => ask(s, "chat:typing-stop", {})));
  assert.ok(again.every((a) => a.code === "INVALID_PAYLOAD"));
  assert.ok(s.connected);
  s.close();
});

test("a socket that keeps flooding is disconnected by the server; others are served meanwhile", async () => {
  const bystander = await client("bob");
  const s = await client("flood");
  const start = Date.now();
  const gone = once(s, "disconnect", 8000);
  const timer = setInterval(() => { for (let i = 0; i < 50; i++) s.emit("chat:typing-stop", {}); }, 50);
  try {
    // bob is answered while the flood goes on
    await delay(500);
    const ok = await ask(bystander, "room:join", "rl");
    assert.equal(ok.success, true);
    const [reason] = await gone;
    const after = Date.now() - start;
    assert.equal(reason, "io server disconnect");
    assert.ok(after >= 1900, `disconnected only after the configured 2 s over the limit (${after} ms)`);
  } finally {
    clearInterval(timer);
  }
  await until(() => /disconnecting socket over its event rate/.test(srv.output()), 3000, "the log line");
  assert.equal((await ask(bystander, "room:leave", "rl")).success, true);
  bystander.close();
});

test("chat:send per user: 40 at once, then RATE_LIMITED across the user's sockets; nothing refused is stored", async () => {
  const a1 = await client("alice");
  const a2 = await client("alice");
  const carol = await client("carol");
  for (const s of [a1, a2, carol]) assert.equal((await ask(s, "room:join", "rl")).success, true);
  const got = collect(carol, "chat:message");
  const send = (s, i) => ask(s, "chat:send", { roomId: "rl", text: `m${i}`, clientMsgId: `rl-${i}` });
  const acks = await Promise.all(Array.from({ length: 60 }, (_, i) => send(i % 2 ? a1 : a2, i)));
  const ok = acks.filter((a) => a.success);
  const limited = acks.filter((a) => a.code === "RATE_LIMITED");
  assert.equal(ok.length + limited.length, 60);
  assert.ok(ok.length >= 40 && ok.length <= 44, `${ok.length} accepted`);
  assert.match(limited[0].error, /too many messages/);
  // every accepted message reached the room once, no refused one did
  await until(() => got.length === ok.length, 3000, "the accepted messages");
  await delay(200);
  assert.equal(got.length, ok.length);
  assert.deepEqual(new Set(got.map(([m]) => m.id)), new Set(ok.map((a) => a.messageId)));
  // carol has a bucket of her own, shared by her DMs and sends: 45 DMs then 5 sends, in order
  // on one socket: the first 40 pass, the rest is refused (but for a token or two refilled)
  const mixed = await Promise.all([
    ...Array.from({ length: 45 }, (_, i) => ask(carol, "user:direct-message", { targetId: "bob", message: `dm ${i}` })),
    ...Array.from({ length: 5 }, (_, i) => ask(carol, "chat:send", { roomId: "rl", text: `late ${i}` })),
  ]);
  assert.ok(mixed.slice(0, 40).every((a) => a.success), "the burst passes");
  assert.ok(mixed.slice(40).filter((a) => a.code === "RATE_LIMITED").length >= 8, JSON.stringify(mixed.slice(40)));
  assert.ok(mixed.slice(45).some((a) => a.code === "RATE_LIMITED"), "sends share the bucket of DMs");
  // a second later alice may send again (20/s)
  await delay(1000);
  assert.equal((await send(a1, 100)).success, true);
  assert.ok((await metric("user_sends")) >= limited.length + 1);
  for (const s of [a1, a2, carol]) s.close();
});

test("room:sync: at most two answers in preparation per socket", async () => {
  // long-polling: the ten requests of one tick travel in one POST, so they reach the server
  // together however fast it answers each (over WebSocket a quick server may answer one before
  // the next frame arrives, and then there is nothing to refuse)
  const s = await client("bob", ["polling"]);
  assert.equal((await ask(s, "room:join", "sync")).success, true);
  const before = await metric("sync");
  const answers = await Promise.all(Array.from({ length: 10 }, () => ask(s, "room:sync", { roomId: "sync" })));
  const ok = answers.filter((a) => a.success).length;
  const limited = answers.filter((a) => a.code === "RATE_LIMITED").length;
  assert.equal(ok + limited, 10, JSON.stringify(answers));
  assert.ok(ok >= 2, `${ok} answered`);
  assert.ok(limited >= 1, "syncs beyond two in flight are refused");
  assert.match(answers.find((a) => a.code === "RATE_LIMITED").error, /room:sync/);
  assert.equal((await metric("sync")) - before, limited);
  // one at a time is always fine
  for (let i = 0; i < 5; i++) assert.equal((await ask(s, "room:sync", { roomId: "sync" })).success, true);
  s.close();
});
