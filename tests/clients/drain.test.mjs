// Graceful drain of the product server (DESIGN 10): on SIGTERM /readyz answers 503 at once,
// new sessions are refused, every chat:send already accepted is stored and acked (and none
// that was refused or unanswered is stored), the connections are closed at the Engine.IO
// level ("transport close") spread over server.drain_ms, and the process exits 0. A second
// signal exits at once.
import { test } from "node:test";
import assert from "node:assert/strict";
import path from "node:path";
import { tmpdir } from "node:os";
import { io } from "socket.io-client";
import { startProduct, signedCall, hsToken, once, until, sqliteQuery } from "./common.mjs";

const SECRET = "drain-jwt-secret-padded-to-at-least-32-bytes";
const HOOK = "drain-hook-secret-padded-to-at-least-32-bytes";
const USERS = 20;

async function product(drainMs) {
  const db = path.join(tmpdir(), `rt-drain-${process.pid}-${Math.random().toString(36).slice(2)}.db`);
  const srv = await startProduct({
    JWT_SECRET: SECRET, WEBHOOK_SECRET: HOOK, DATABASE_URL: `sqlite://${db}`, RUST_LOG: "info",
    RT__SERVER__DRAIN_MS: String(drainMs),
    // the flood below is the point: the send limits are raised out of its way
    RT__LIMITS__USER_SENDS_BURST: "100000", RT__LIMITS__EVENTS_BURST: "100000",
  });
  return { srv, db };
}

const client = (srv, user) => io(srv.url, { forceNew: true, reconnection: false, transports: ["websocket"], auth: { token: hsToken(SECRET, user) } });
// "close": after the exit and after stdout/stderr are read to the end (the tests read them).
const exited = (proc) => new Promise((r) => proc.once("close", (code, signal) => r({ code, signal, at: Date.now() })));

test("SIGTERM with chat:sends in flight: not ready at once, accepted ones stored and acked, closes spread, exit 0", async () => {
  const { srv, db } = await product(2000);
  try {
    const internal = (method, route, body) => signedCall(srv.url, HOOK, method, route, body);
    assert.equal((await internal("PUT", "/rooms/d", { name: "d", isPublic: true })).status, 200);
    const sockets = [];
    for (let i = 0; i < USERS; i++) {
      assert.equal((await internal("PUT", `/users/u${i}`, { name: `u${i}`, email: `u${i}@example.com`, role: "user", isActive: true })).status, 200);
      const s = client(srv, `u${i}`);
      await once(s, "connect");
      assert.equal((await s.timeout(3000).emitWithAck("room:join", "d")).success, true);
      sockets.push(s);
    }
    assert.equal((await fetch(`${srv.url}/readyz`)).status, 200);
    const closedAt = [];
    const reasons = [];
    for (const s of sockets) s.on("disconnect", (r) => { reasons.push(r); closedAt.push(Date.now()); });

    // the flood: every socket keeps sending until it is closed; the signal comes once the
    // first 500 are acked, so sends are in flight, queued, and still coming during the drain
    const outcome = new Map(); // clientMsgId -> "ok" | code | "unanswered"
    let acked = 0;
    const sends = [];
    const send = (s, i, k) => {
      const id = `d-${i}-${k}`;
      sends.push(s.timeout(8000).emitWithAck("chat:send", { roomId: "d", text: `m ${id}`, clientMsgId: id })
        .then((a) => { acked++; outcome.set(id, a.success ? "ok" : a.code); }, () => outcome.set(id, "unanswered")));
    };
    let k = 0;
    const flood = setInterval(() => {
      sockets.forEach((s, i) => { if (s.connected) for (let j = 0; j < 5; j++) send(s, i, k + j); });
      k += 5;
    }, 5);
    await until(() => acked >= 500, 10000, "the first acks");
    const exit = exited(srv.proc);
    const signalled = Date.now();
    srv.proc.kill("SIGTERM");

    // not ready at once, and new sessions are refused
    await until(async () => (await fetch(`${srv.url}/readyz`)).status === 503, 1000, "readyz 503");
    assert.deepEqual(await (await fetch(`${srv.url}/readyz`)).json(), { status: "draining" });
    const hs = await fetch(`${srv.url}/socket.io/?EIO=4&transport=polling`);
    assert.equal(hs.status, 503);
    assert.deepEqual(await hs.json(), { code: 503, message: "Server shutting down" });

    const { code, at } = await exit;
    clearInterval(flood);
    await Promise.all(sends);
    assert.equal(code, 0, srv.output().slice(-2000));
    assert.ok(at - signalled < 2000 + 4000, `exited ${at - signalled} ms after the signal`);

    // every connection was closed by the engine, the closes spread over the drain
    assert.equal(reasons.length, USERS);
    assert.ok(reasons.every((r) => r === "transport close"), JSON.stringify(reasons));
    const spread = Math.max(...closedAt) - Math.min(...closedAt);
    assert.ok(spread >= 1000, `closes spread over ${spread} ms`);

    // stored == acked with success; refused and unanswered ones are not stored
    const stored = new Set((await sqliteQuery(db, "select client_msg_id from messages where room_id = 'd'")).map((r) => r[0]));
    const ok = [...outcome].filter(([, v]) => v === "ok").map(([k]) => k);
    const counts = {};
    for (const v of outcome.values()) counts[v] = (counts[v] || 0) + 1;
    console.log("drain outcomes:", JSON.stringify(counts));
    assert.ok(ok.length >= 500, JSON.stringify(counts));
    assert.deepEqual([...stored].sort(), ok.sort(), `stored vs acked: ${JSON.stringify(counts)}`);
    for (const [id, v] of outcome) {
      if (v !== "ok") assert.ok(v === "RATE_LIMITED" || v === "unanswered", `${id}: ${v}`);
    }
    assert.match(srv.output(), /drained: \d+ connections closed, 0 left/);
  } finally {
    await srv.stop();
  }
});

test("a second signal exits at once", async () => {
  const { srv } = await product(20000);
  try {
    const internal = (method, route, body) => signedCall(srv.url, HOOK, method, route, body);
    const sockets = [];
    for (let i = 0; i < 3; i++) {
      assert.equal((await internal("PUT", `/users/s${i}`, { name: `s${i}`, email: `s${i}@example.com`, role: "user", isActive: true })).status, 200);
      const s = client(srv, `s${i}`);
      await once(s, "connect");
      sockets.push(s);
    }
    const exit = exited(srv.proc);
    const start = Date.now();
    srv.proc.kill("SIGTERM");
    await until(() => /draining/.test(srv.output()), 2000, "the drain to start");
    srv.proc.kill("SIGTERM");
    const { code, at } = await exit;
    assert.notEqual(code, 0);
    assert.ok(at - start < 2000, `exited ${at - start} ms after the first signal (the drain would take 13 s)`);
    assert.match(srv.output(), /second signal/);
    for (const s of sockets) s.close();
  } finally {
    await srv.stop();
  }
});
