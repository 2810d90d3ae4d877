// DMs are never lost (DESIGN 9): a target that reads too slowly and is closed as a slow
// consumer gets every DM again on later connects, until it has acknowledged them all; the
// undelivered DMs of one user are capped (RATE_LIMITED to the sender). A small byte budget
// (64 KiB) makes the slow consumer quick to reach; the send limits are raised for the flood.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { io } from "socket.io-client";
import { startProduct, signedCall, hsToken, once, until, delay } from "./common.mjs";

const SECRET = "dms-jwt-secret-padded-to-at-least-32-bytes";
const HOOK = "dms-hook-secret-padded-to-at-least-32-bytes";
const CAP = 1500;
let srv;

const internal = (method, route, body) => signedCall(srv.url, HOOK, method, route, body);
const socket = (user) => io(srv.url, { forceNew: true, reconnection: false, transports: ["websocket"], auth: { token: hsToken(SECRET, user) } });
const ask = (s, event, payload) => s.timeout(10000).emitWithAck(event, payload);

before(async () => {
  srv = await startProduct({
    JWT_SECRET: SECRET, WEBHOOK_SECRET: HOOK, RUST_LOG: "info",
    RT__LIMITS__MAX_QUEUED_BYTES: "65536", RT__LIMITS__MAX_PENDING_DMS: String(CAP),
    RT__LIMITS__USER_SENDS_BURST: "100000", RT__LIMITS__EVENTS_BURST: "100000",
  });
  for (const u of ["alice", "erin"]) {
    assert.equal((await internal("PUT", `/users/${u}`, { name: u, email: `${u}@example.com`, role: "user", isActive: true })).status, 200);
  }
});
after(async () => { await srv.stop(); });

test("1,500 DMs to a user who stops reading (closed as a slow consumer or cut off): every one arrives across reconnects, in order", async () => {
  // erin is online, then stops reading
  const slow = socket("erin");
  slow.on("chat:direct", (_dm, ack) => ack());
  await once(slow, "connect");
  slow.io.engine.transport.ws._socket.pause();
  const alice = socket("alice");
  await once(alice, "connect");
  const sent = [];
  for (let i = 0; i < CAP; i += 100) {
    const batch = await Promise.all(Array.from({ length: 100 }, (_, k) => ask(alice, "user:direct-message", { targetId: "erin", message: `dm ${i + k} ${"x".repeat(900)}` })));
    for (const a of batch) {
      assert.equal(a.success, true, JSON.stringify(a));
      sent.push(a.id);
    }
  }
  // the live DMs overflow her byte budget once the kernel's socket buffers are full (how
  // much they take varies): she is closed as a slow consumer, or, if the buffers took it
  // all, her connection breaks; either way none of them was acknowledged
  const raw = slow.io.engine.transport.ws._socket;
  const closed = await until(() => /closing slow consumer/.test(srv.output()), 5000, "slow consumer").then(() => true, () => false);
  console.log(closed ? "erin was closed as a slow consumer" : "the socket buffers took every DM; erin's connection is cut");
  raw.destroy();
  slow.close();
  // the cap: one more is refused
  const over = await ask(alice, "user:direct-message", { targetId: "erin", message: "one too many" });
  assert.equal(over.success, false);
  assert.equal(over.code, "RATE_LIMITED");
  assert.match(over.error, /too many DMs/);

  // she comes back (as often as needed) and reads normally: every DM arrives
  const seen = new Set();
  for (let round = 0; round < 5 && seen.size < CAP; round++) {
    const s = socket("erin");
    const got = [];
    s.on("chat:direct", (dm, ack) => { got.push(dm); seen.add(dm.id); ack(); });
    await once(s, "connect");
    let last = -1;
    await until(async () => { const n = got.length; const moved = n !== last; last = n; await delay(300); return !moved || seen.size === CAP; }, 20000, "the DMs to stop coming");
    // in order within one connection
    const stamps = got.map((d) => d.timestamp);
    assert.deepEqual(stamps, [...stamps].sort((a, b) => a - b));
    s.close();
  }
  assert.equal(seen.size, CAP, "every DM id arrived");
  assert.deepEqual([...seen].sort(), [...sent].sort());
  // all acknowledged: a later connect gets none, and the cap has room again
  const last = socket("erin");
  const none = [];
  last.on("chat:direct", (dm) => none.push(dm));
  await once(last, "connect");
  await delay(500);
  assert.equal(none.length, 0);
  last.close();
  assert.equal((await ask(alice, "user:direct-message", { targetId: "erin", message: "room again" })).success, true);
  alice.close();
});
