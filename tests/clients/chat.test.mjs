// Chat rooms on the product server: room:join (permission, member-update counting users,
// history, ack), room:leave, and `left` with reason "disconnect".
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { execFileSync } from "node:child_process";
import { tmpdir } from "node:os";
import path from "node:path";
import { io } from "socket.io-client";
import { startProduct, once, collect, until, delay } from "./common.mjs";

const SECRET = "chat-jwt-secret";
const HOOK = "chat-hook-secret";
const dbPath = path.join(tmpdir(), `rt-test-chat-${process.pid}.db`);
let srv;

const b64 = (v) => Buffer.from(JSON.stringify(v)).toString("base64url");
function token(sub) {
  const head = b64({ alg: "HS256", typ: "JWT" });
  const body = b64({ sub, role: "user", exp: Math.floor(Date.now() / 1000) + 600 });
  const sig = createHmac("sha256", SECRET).update(`${head}.${body}`).digest("base64url");
  return `${head}.${body}.${sig}`;
}
function internal(method, route, body) {
  const raw = body === undefined ? "" : JSON.stringify(body);
  const sig = "sha256=" + createHmac("sha256", HOOK).update(raw).digest("hex");
  return fetch(`${srv.url}/internal${route}`, { method, headers: { "Content-Type": "application/json", "X-Signature-256": sig }, body: raw || undefined });
}
function sql(statement) {
  execFileSync("python3", ["-c", "import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.executescript(sys.argv[2]); c.commit()", dbPath, statement]);
}
async function client(user) {
  const s = io(srv.url, { forceNew: true, reconnection: false, transports: ["websocket"], auth: { token: token(user) } });
  await once(s, "connect");
  return s;
}
const join = (s, payload) => s.timeout(3000).emitWithAck("room:join", payload);

before(async () => {
  srv = await startProduct({ JWT_SECRET: SECRET, WEBHOOK_SECRET: HOOK, DATABASE_URL: `sqlite://${dbPath}` });
  for (const u of ["alice", "bob", "carol"]) {
    assert.equal((await internal("PUT", `/users/${u}`, { name: u.toUpperCase(), email: `${u}@example.com`, role: "user", isActive: true, ...(u === "alice" ? { avatarUrl: "https://example.com/a.png" } : {}) })).status, 200);
  }
  assert.equal((await internal("PUT", "/rooms/lobby", { name: "Lobby", isPublic: true })).status, 200);
  assert.equal((await internal("PUT", "/rooms/secret", { name: "Secret", isPublic: false, members: ["alice"] })).status, 200);
  assert.equal((await internal("PUT", "/rooms/archive", { name: "Archive", isPublic: true })).status, 200);
});
after(async () => { await srv.stop(); });

test("join: ack, own member-update and history; others see joins counted per user", async () => {
  const alice = await client("alice");
  const aliceUpdates = collect(alice, "room:member-update");
  const history = once(alice, "room:history");
  assert.deepEqual(await join(alice, "lobby"), { success: true, roomId: "lobby", memberCount: 1 });
  assert.deepEqual((await history)[0], { roomId: "lobby", messages: [], hasMore: false });
  await until(() => aliceUpdates.length === 1, 3000, "alice's own joined update");
  assert.deepEqual(aliceUpdates[0][0], { type: "joined", userId: "alice", roomId: "lobby", memberCount: 1 });

  const bob = await client("bob");
  assert.deepEqual(await join(bob, { roomId: "lobby" }), { success: true, roomId: "lobby", memberCount: 2 });
  await until(() => aliceUpdates.length === 2, 3000, "bob joined");
  assert.deepEqual(aliceUpdates[1][0], { type: "joined", userId: "bob", roomId: "lobby", memberCount: 2 });

  // a second tab of alice and a repeated join: no update, the count stays
  const alice2 = await client("alice");
  assert.deepEqual(await join(alice2, "lobby"), { success: true, roomId: "lobby", memberCount: 2 });
  assert.deepEqual(await join(alice2, "lobby"), { success: true, roomId: "lobby", memberCount: 2 });

  // bob leaves: left without reason
  assert.deepEqual(await bob.timeout(3000).emitWithAck("room:leave", "lobby"), { success: true, roomId: "lobby", memberCount: 1 });
  await until(() => aliceUpdates.length === 3, 3000, "bob left");
  assert.deepEqual(aliceUpdates[2][0], { type: "left", userId: "bob", roomId: "lobby", memberCount: 1 });

  // bob rejoins and disconnects: left with reason "disconnect"
  await join(bob, "lobby");
  await until(() => aliceUpdates.length === 4, 3000, "bob back");
  bob.disconnect();
  await until(() => aliceUpdates.length === 5, 3000, "bob gone");
  assert.deepEqual(aliceUpdates[4][0], { type: "left", userId: "bob", roomId: "lobby", memberCount: 1, reason: "disconnect" });

  // alice's second tab goes: alice is still in the room, nobody is told
  alice2.disconnect();
  await delay(300);
  assert.equal(aliceUpdates.length, 5);
  alice.disconnect();
});

test("join refusals: bad payload, unknown room, private room; without ack an error event", async () => {
  const bob = await client("bob");
  for (const bad of [42, {}, { roomId: 5 }, ""]) {
    assert.deepEqual(await join(bob, bad), { success: false, error: "roomId (string) is required", code: "INVALID_PAYLOAD" });
  }
  assert.equal((await join(bob, "nowhere")).code, "NOT_FOUND");
  assert.equal((await join(bob, "secret")).code, "FORBIDDEN");
  const err = once(bob, "error");
  bob.emit("room:join", "secret");
  assert.equal((await err)[0].code, "FORBIDDEN");
  // still working afterwards
  assert.equal((await join(bob, "lobby")).success, true);
  bob.disconnect();
  // a member may join the private room
  const alice = await client("alice");
  assert.equal((await join(alice, "secret")).success, true);
  alice.disconnect();
});

test("history: the last 50 in order, chat:message shape, replies, hasMore", async () => {
  let values = [];
  for (let i = 1; i <= 52; i++) {
    const id = `m${String(i).padStart(3, "0")}`;
    const reply = i === 52 ? "'m051'" : "NULL";
    const cmid = i === 52 ? "'c-52'" : "NULL";
    values.push(`('${id}','archive','${i % 2 ? "alice" : "bob"}','text ${i}',${reply},${cmid},${1000 + i})`);
  }
  sql(`insert into messages (id, room_id, sender_id, text, reply_to_id, client_msg_id, created_at) values ${values.join(",")};`);
  const carol = await client("carol");
  const h = once(carol, "room:history");
  await join(carol, "archive");
  const [{ roomId, messages, hasMore }] = await h;
  assert.equal(roomId, "archive");
  assert.equal(hasMore, true);
  assert.equal(messages.length, 50);
  assert.equal(messages[0].id, "m003");
  assert.equal(messages[49].id, "m052");
  assert.deepEqual(messages[48], {
    id: "m051", roomId: "archive", sender: { id: "alice", name: "ALICE", avatarUrl: "https://example.com/a.png" },
    text: "text 51", replyTo: null, timestamp: 1051, readBy: ["alice"],
  });
  assert.deepEqual(messages[49], {
    id: "m052", roomId: "archive", sender: { id: "bob", name: "BOB" },
    text: "text 52", replyTo: { id: "m051", text: "text 51", senderId: "alice" }, timestamp: 1052,
    readBy: ["bob"], clientMsgId: "c-52",
  });
  carol.disconnect();
});
