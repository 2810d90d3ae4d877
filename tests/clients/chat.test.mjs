// The chat application end to end with the real socket.io-client, once on SQLite and once on
// a throwaway PostgreSQL cluster: rooms (join, history, leave, member updates), chat:send
// (group commit, replies, clientMsgId retries), read receipts, typing with auto-stop, DMs
// online and offline, room:sync after a reconnect, product watching, and bad input for
// every event checked against the database.
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { io } from "socket.io-client";
import { startProduct, testDatabase, signedCall, hsToken, once, collect, until, delay } from "./common.mjs";

const SECRET = "chat-jwt-secret-padded-to-at-least-32-bytes";
const HOOK = "chat-hook-secret-padded-to-at-least-32-bytes";
let srv;
let query; // (sql) => Promise<rows>

const token = (sub) => hsToken(SECRET, sub);
const internal = (method, route, body) => signedCall(srv.url, HOOK, method, route, body);
async function client(user, opts = {}) {
  const s = io(srv.url, { forceNew: true, reconnection: false, transports: ["websocket"], auth: { token: token(user) }, ...opts });
  await once(s, "connect");
  return s;
}
const join = (s, payload) => s.timeout(3000).emitWithAck("room:join", payload);
const ask = (s, event, payload) => s.timeout(3000).emitWithAck(event, payload);
const count = async (sql) => Number((await query(sql))[0][0]);

for (const backend of ["sqlite", "postgres"]) describe(`chat on ${backend}`, () => {
let db;
before(async () => {
  db = await testDatabase(backend, "chat");
  query = db.query;
  const url = db.url;
  // bursts of sends and syncs here check storage and order; the limits have their own tests
  // (ratelimit.test.mjs)
  const roomy = { RT__LIMITS__EVENTS_BURST: "2000", RT__LIMITS__USER_SENDS_BURST: "2000", RT__LIMITS__SYNC_IN_FLIGHT: "500" };
  srv = await startProduct({ JWT_SECRET: SECRET, WEBHOOK_SECRET: HOOK, DATABASE_URL: url, ...roomy });
  for (const u of ["alice", "bob", "carol", "dave"]) {
    assert.equal((await internal("PUT", `/users/${u}`, { name: u.toUpperCase(), email: `${u}@example.com`, role: "user", isActive: true, ...(u === "alice" ? { avatarUrl: "https://example.com/a.png" } : {}) })).status, 200);
  }
  for (const r of ["lobby", "archive", "talk", "other", "typing", "syncroom"]) {
    assert.equal((await internal("PUT", `/rooms/${r}`, { name: r, isPublic: true })).status, 200);
  }
  assert.equal((await internal("PUT", "/rooms/secret", { name: "Secret", isPublic: false, members: ["alice"] })).status, 200);
});
after(async () => { await srv.stop(); db?.stop(); });

test("join: ack, own member-update and history; others see joins counted per user", async () => {
  const alice = await client("alice");
  const aliceUpdates = collect(alice, "room:member-update");
  const history = once(alice, "room:history");
  assert.deepEqual(await join(alice, "lobby"), { success: true, roomId: "lobby", memberCount: 1, online: ["alice"] });
  assert.deepEqual((await history)[0], { roomId: "lobby", messages: [], hasMore: false });
  await until(() => aliceUpdates.length === 1, 3000, "alice's own joined update");
  assert.deepEqual(aliceUpdates[0][0], { type: "joined", userId: "alice", roomId: "lobby", memberCount: 1 });

  const bob = await client("bob");
  assert.deepEqual(await join(bob, { roomId: "lobby" }), { success: true, roomId: "lobby", memberCount: 2, online: ["alice", "bob"] });
  await until(() => aliceUpdates.length === 2, 3000, "bob joined");
  assert.deepEqual(aliceUpdates[1][0], { type: "joined", userId: "bob", roomId: "lobby", memberCount: 2 });

  // a second tab of alice and a repeated join: no update, the count stays
  const alice2 = await client("alice");
  assert.deepEqual(await join(alice2, "lobby"), { success: true, roomId: "lobby", memberCount: 2, online: ["alice", "bob"] });
  assert.deepEqual(await join(alice2, "lobby"), { success: true, roomId: "lobby", memberCount: 2, online: ["alice", "bob"] });

  // bob leaves: left without reason
  assert.deepEqual(await bob.timeout(3000).emitWithAck("room:leave", "lobby"), { success: true, roomId: "lobby", memberCount: 1 });
  await until(() => aliceUpdates.length === 3, 3000, "bob left");
  assert.deepEqual(aliceUpdates[2][0], { type: "left", userId: "bob", roomId: "lobby", memberCount: 1 });

  // bob rejoins with two joins in flight at once (counted once) and disconnects: one left
  // with reason "disconnect"
  const both = await Promise.all([join(bob, "lobby"), join(bob, { roomId: "lobby" })]);
  assert.deepEqual(both.map((a) => a.memberCount), [2, 2]);
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
  for (const bad of [42, {}, { roomId: [] }, null]) {
    assert.equal((await bob.timeout(3000).emitWithAck("room:leave", bad)).code, "INVALID_PAYLOAD");
  }
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
  await query(`insert into messages (id, room_id, sender_id, text, reply_to_id, client_msg_id, created_at) values ${values.join(",")};`);
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

test("chat:send: ack, chat:message to the whole room, replies, clientMsgId retries", async () => {
  const alice = await client("alice");
  const bob = await client("bob");
  await join(alice, "talk");
  await join(bob, "talk");
  const aliceGot = collect(alice, "chat:message");
  const bobGot = collect(bob, "chat:message");
  const ack = await ask(alice, "chat:send", { roomId: "talk", text: "  hello bob \n", clientMsgId: "c-1" });
  assert.equal(ack.success, true);
  assert.match(ack.messageId, /^[0-9a-f-]{36}$/);
  await until(() => aliceGot.length === 1 && bobGot.length === 1, 3000, "hello to both");
  const msg = bobGot[0][0];
  assert.deepEqual(aliceGot[0][0], msg);
  assert.equal(typeof msg.timestamp, "number");
  assert.ok(Math.abs(msg.timestamp - Date.now()) < 10000);
  assert.deepEqual(msg, {
    id: ack.messageId, roomId: "talk", sender: { id: "alice", name: "ALICE", avatarUrl: "https://example.com/a.png" },
    text: "hello bob", replyTo: null, timestamp: msg.timestamp, readBy: ["alice"], clientMsgId: "c-1",
  });

  // forged identity fields are ignored: the sender is the authenticated user
  const forged = await ask(alice, "chat:send", { roomId: "talk", text: "who am i", senderId: "bob", sender: { id: "bob" }, userId: "bob" });
  await until(() => bobGot.length === 2, 3000, "forged");
  assert.equal(bobGot[1][0].sender.id, "alice");
  assert.deepEqual(await query(`select sender_id from messages where id = '${forged.messageId}'`), [["alice"]]);
  aliceGot.splice(1);
  bobGot.splice(1);
  await query(`delete from messages where id = '${forged.messageId}'`);

  // a reply resolves its target; without clientMsgId the field is absent
  const r = await ask(bob, "chat:send", { roomId: "talk", text: "hi!", replyToId: ack.messageId });
  await until(() => aliceGot.length === 2, 3000, "reply");
  const reply = aliceGot[1][0];
  assert.equal(reply.id, r.messageId);
  assert.deepEqual(reply.replyTo, { id: ack.messageId, text: "hello bob", senderId: "alice" });
  assert.deepEqual(reply.sender, { id: "bob", name: "BOB" });
  assert.equal("clientMsgId" in reply, false);
  assert.ok(reply.id > msg.id, "ids are time-ordered");

  // the same clientMsgId again (a retry): same id, no second message, one row
  const again = await ask(alice, "chat:send", { roomId: "talk", text: "hello bob", clientMsgId: "c-1" });
  assert.deepEqual(again, { success: true, messageId: ack.messageId });
  // a burst of retries in flight together, in one group commit: still one row
  const burst = await Promise.all(Array.from({ length: 20 }, () => ask(alice, "chat:send", { roomId: "talk", text: "burst", clientMsgId: "c-burst" })));
  assert.equal(new Set(burst.map((b) => b.messageId)).size, 1);
  await delay(200);
  assert.equal(aliceGot.length, 3, "a retry broadcasts nothing");
  assert.equal(await count("select count(*) from messages where room_id = 'talk'"), 3);
  assert.equal(await count("select count(*) from messages where client_msg_id = 'c-burst'"), 1);

  // every acked message is stored; history has them in order
  const acks = await Promise.all(Array.from({ length: 50 }, (_, i) => ask(bob, "chat:send", { roomId: "talk", text: `n${i}` })));
  assert.ok(acks.every((a) => a.success));
  await until(() => aliceGot.length === 53, 3000, "50 more");
  const ids = aliceGot.slice(3).map((m) => m[0].id);
  assert.deepEqual(ids, [...ids].sort(), "members see a room's messages in stored order");
  assert.equal(await count("select count(*) from messages where room_id = 'talk'"), 53);
  const carol = await client("carol");
  const h = once(carol, "room:history");
  await join(carol, "talk");
  const [hist] = await h;
  assert.equal(hist.messages.length, 50);
  assert.equal(hist.hasMore, true);
  assert.deepEqual(hist.messages[49], aliceGot[52][0]);
  for (const s of [alice, bob, carol]) s.disconnect();
});

test("chat:send bad input: the precise error, nothing stored, the socket keeps working", async () => {
  const alice = await client("alice");
  const bob = await client("bob");
  await join(alice, "lobby");
  await join(alice, "other");
  const otherMsg = await ask(alice, "chat:send", { roomId: "other", text: "elsewhere" });
  const before = await count("select count(*) from messages");
  const cases = [
    [42, "INVALID_PAYLOAD"],
    ["lobby", "INVALID_PAYLOAD"],
    [{ text: "x" }, "INVALID_PAYLOAD"],
    [{ roomId: 7, text: "x" }, "INVALID_PAYLOAD"],
    [{ roomId: "lobby" }, "INVALID_PAYLOAD"],
    [{ roomId: "lobby", text: 5 }, "INVALID_PAYLOAD"],
    [{ roomId: "lobby", text: "x", clientMsgId: 5 }, "INVALID_PAYLOAD"],
    [{ roomId: "lobby", text: "x", replyToId: {} }, "INVALID_PAYLOAD"],
    [{ roomId: "x".repeat(300), text: "x" }, "INVALID_PAYLOAD"],
    [{ roomId: "lobby", text: "" }, "INVALID_MESSAGE"],
    [{ roomId: "lobby", text: " \n\t " }, "INVALID_MESSAGE"],
    [{ roomId: "lobby", text: "a".repeat(2001) }, "INVALID_MESSAGE"],
    [{ roomId: "lobby", text: "😀".repeat(2001) }, "INVALID_MESSAGE"],
    [{ roomId: "nowhere", text: "x" }, "NOT_FOUND"],
    [{ roomId: "lobby", text: "x", replyToId: "no-such-message" }, "NOT_FOUND"],
    [{ roomId: "lobby", text: "x", replyToId: otherMsg.messageId }, "NOT_FOUND"],
    [{ roomId: "secret", text: "x" }, "FORBIDDEN"],
  ];
  for (const [payload, code] of cases) {
    const r = await ask(alice, "chat:send", payload);
    assert.equal(r.success, false, JSON.stringify(payload).slice(0, 80));
    assert.equal(r.code, code, JSON.stringify(payload).slice(0, 80));
    assert.equal(typeof r.error, "string");
  }
  // not joined (the room exists): FORBIDDEN; checks come in order (text before room)
  assert.equal((await ask(bob, "chat:send", { roomId: "lobby", text: "x" })).code, "FORBIDDEN");
  assert.equal((await ask(bob, "chat:send", { roomId: "nowhere", text: "" })).code, "INVALID_MESSAGE");
  // without an ack: an error event
  const err = once(bob, "error");
  bob.emit("chat:send", { roomId: "lobby", text: "x" });
  assert.deepEqual((await err)[0], { message: "join the room first", code: "FORBIDDEN" });
  assert.equal(await count("select count(*) from messages"), before, "nothing stored");
  // 2000 characters (astral ones count once) are fine, and the socket still works
  const okAck = await ask(alice, "chat:send", { roomId: "lobby", text: "😀".repeat(2000) });
  assert.equal(okAck.success, true);
  assert.equal(await count("select count(*) from messages"), before + 1);
  alice.disconnect();
  bob.disconnect();
});

test("chat:read: persisted, only forward, receipts to the others", async () => {
  const alice = await client("alice");
  const bob = await client("bob");
  const bob2 = await client("bob");
  await join(alice, "lobby");
  await join(bob, "lobby");
  await join(bob2, "lobby");
  const m1 = (await ask(alice, "chat:send", { roomId: "lobby", text: "one" })).messageId;
  const m2 = (await ask(alice, "chat:send", { roomId: "lobby", text: "two" })).messageId;
  const aliceRc = collect(alice, "chat:read-receipt");
  const bobRc = collect(bob, "chat:read-receipt");
  const bob2Rc = collect(bob2, "chat:read-receipt");
  assert.deepEqual(await ask(bob, "chat:read", { roomId: "lobby", lastReadMessageId: m2 }), { success: true });
  await until(() => aliceRc.length === 1 && bob2Rc.length === 1, 3000, "receipt");
  const rc = aliceRc[0][0];
  assert.deepEqual(rc, { userId: "bob", roomId: "lobby", lastReadMessageId: m2, timestamp: rc.timestamp });
  assert.equal(typeof rc.timestamp, "number");
  // backwards: accepted, nothing moves, nobody told
  assert.deepEqual(await ask(bob, "chat:read", { roomId: "lobby", lastReadMessageId: m1 }), { success: true });
  await delay(200);
  assert.equal(aliceRc.length, 1);
  assert.equal(bobRc.length, 0, "the reader's own socket gets no receipt");
  assert.deepEqual(await query("select last_read_message_id from read_markers where room_id = 'lobby' and user_id = 'bob'"), [[m2]]);
  // refusals
  const other = (await query("select id from messages where room_id = 'other'"))[0][0];
  for (const [payload, code] of [
    [{ roomId: "lobby" }, "INVALID_PAYLOAD"],
    [{ roomId: "lobby", lastReadMessageId: 3 }, "INVALID_PAYLOAD"],
    [{ roomId: "nowhere", lastReadMessageId: m2 }, "NOT_FOUND"],
    [{ roomId: "lobby", lastReadMessageId: "nope" }, "NOT_FOUND"],
    [{ roomId: "lobby", lastReadMessageId: other }, "NOT_FOUND"],
    [{ roomId: "other", lastReadMessageId: other }, "FORBIDDEN"],
  ]) {
    assert.equal((await ask(bob, "chat:read", payload)).code, code, JSON.stringify(payload));
  }
  assert.deepEqual(await query("select last_read_message_id from read_markers where room_id = 'lobby' and user_id = 'bob'"), [[m2]]);
  for (const s of [alice, bob, bob2]) s.disconnect();
});

test("chat:read stores a marker, not a membership: a public room made private is closed to a mere reader", async () => {
  assert.equal((await internal("PUT", "/rooms/readable", { name: "Readable", isPublic: true })).status, 200);
  const alice = await client("alice");
  const bob = await client("bob");
  await join(alice, "readable");
  await join(bob, "readable");
  const m = (await ask(alice, "chat:send", { roomId: "readable", text: "read me" })).messageId;
  assert.deepEqual(await ask(bob, "chat:read", { roomId: "readable", lastReadMessageId: m }), { success: true });
  assert.deepEqual(await query("select last_read_message_id from read_markers where room_id = 'readable' and user_id = 'bob'"), [[m]]);
  assert.equal(await count("select count(*) from room_members where room_id = 'readable'"), 0);
  bob.disconnect();
  assert.equal((await internal("PUT", "/rooms/readable", { name: "Readable", isPublic: false, members: ["alice"] })).status, 200);
  const again = await client("bob");
  assert.equal((await join(again, "readable")).code, "FORBIDDEN");
  assert.equal((await join(alice, "readable")).success, true, "the listed member still gets in");
  again.disconnect();
  alice.disconnect();
});

test("typing: others hear start once, stop, auto-stop after 3 s, stop on leave and disconnect", async () => {
  const alice = await client("alice");
  const bob = await client("bob");
  await join(alice, "typing");
  await join(bob, "typing");
  const typing = collect(bob, "chat:user-typing");
  const stopped = collect(bob, "chat:user-stopped-typing");
  const own = collect(alice, "chat:user-typing");
  assert.deepEqual(await ask(alice, "chat:typing-start", { roomId: "typing" }), { success: true });
  await until(() => typing.length === 1, 3000, "typing");
  assert.deepEqual(typing[0][0], { userId: "alice", roomId: "typing" });
  await ask(alice, "chat:typing-stop", { roomId: "typing" });
  await until(() => stopped.length === 1, 3000, "stopped");
  assert.deepEqual(stopped[0][0], { userId: "alice", roomId: "typing" });
  // auto-stop 3 s after the last start; repeated starts are heard once
  await ask(alice, "chat:typing-start", { roomId: "typing" });
  await delay(1000);
  const last = Date.now();
  await ask(alice, "chat:typing-start", { roomId: "typing" });
  await until(() => stopped.length === 2, 5000, "auto-stop");
  const after = Date.now() - last;
  assert.ok(after >= 2800 && after < 4000, `auto-stop after ${after} ms`);
  assert.equal(typing.length, 2);
  assert.equal(own.length, 0, "the typist is not told about itself");
  // leaving or going while typing stops it
  await ask(alice, "chat:typing-start", { roomId: "typing" });
  await ask(alice, "room:leave", "typing");
  await until(() => stopped.length === 3, 3000, "stop on leave");
  await join(alice, "typing");
  await ask(alice, "chat:typing-start", { roomId: "typing" });
  await until(() => typing.length === 4, 3000, "typing again");
  alice.disconnect();
  await until(() => stopped.length === 4, 3000, "stop on disconnect");
  // refusals
  for (const [payload, code] of [[{}, "INVALID_PAYLOAD"], ["typing", "INVALID_PAYLOAD"], [{ roomId: "nowhere" }, "NOT_FOUND"], [{ roomId: "lobby" }, "FORBIDDEN"]]) {
    assert.equal((await ask(bob, "chat:typing-start", payload)).code, code, JSON.stringify(payload));
    assert.equal((await ask(bob, "chat:typing-stop", payload)).code, code, JSON.stringify(payload));
  }
  bob.disconnect();
});

// Collects chat:direct on `s`, acknowledging each (as a client must for it to count as delivered).
function dmInbox(s) {
  const got = [];
  s.on("chat:direct", (dm, ack) => { got.push([dm]); ack?.(); });
  return got;
}

test("DMs: all of an online target's sockets; marked delivered only when acked; undelivered ones again on every connect", async () => {
  const alice = await client("alice");
  const bob1 = await client("bob");
  const bob2 = await client("bob");
  const got1 = dmInbox(bob1);
  const got2 = dmInbox(bob2);
  const ack = await ask(alice, "user:direct-message", { targetId: "bob", message: "  psst " });
  assert.equal(ack.success, true);
  assert.equal(ack.delivered, true);
  await until(() => got1.length === 1 && got2.length === 1, 3000, "DM to both tabs");
  const dm = got1[0][0];
  assert.deepEqual(dm, { id: ack.id, fromUserId: "alice", message: "psst", timestamp: dm.timestamp });
  assert.deepEqual(got2[0][0], dm);
  await until(async () => (await count(`select count(*) from direct_messages where id = '${ack.id}' and delivered_at is not null`)) === 1, 3000, "the acked DM marked delivered");
  bob1.disconnect();
  bob2.disconnect();

  // dave is offline: stored undelivered
  await until(async () => (await ask(alice, "user:direct-message", { targetId: "bob", message: "probe" })).delivered === false, 3000, "bob counted offline");
  const off1 = await ask(alice, "user:direct-message", { targetId: "dave", message: "first" });
  const off2 = await ask(alice, "user:direct-message", { targetId: "dave", message: "second" });
  assert.equal(off1.delivered, false);
  assert.equal(off2.delivered, false);
  const pending = () => count(`select count(*) from direct_messages where to_user_id = 'dave' and delivered_at is null`);
  assert.equal(await pending(), 2);
  // a client that does not acknowledge gets them, but they stay undelivered
  const deaf = io(srv.url, { forceNew: true, reconnection: false, transports: ["websocket"], auth: { token: token("dave") } });
  const heard = collect(deaf, "chat:direct");
  await once(deaf, "connect");
  await until(() => heard.length === 2, 3000, "pending DMs");
  assert.deepEqual(heard.map((d) => d[0].message), ["first", "second"]);
  assert.equal(typeof heard[0].at(-1), "function", "sent with an ack request");
  deaf.disconnect();
  assert.equal(await pending(), 2);
  // the next connect gets them again, in order, and acknowledges them
  const dave = io(srv.url, { forceNew: true, reconnection: false, transports: ["websocket"], auth: { token: token("dave") } });
  const daveGot = dmInbox(dave);
  await once(dave, "connect");
  await until(() => daveGot.length === 2, 3000, "pending DMs again");
  assert.deepEqual(daveGot.map((d) => d[0].id), [off1.id, off2.id]);
  await until(async () => (await pending()) === 0, 3000, "acked DMs marked delivered");
  dave.disconnect();
  const dave2 = io(srv.url, { forceNew: true, reconnection: false, transports: ["websocket"], auth: { token: token("dave") } });
  const again = collect(dave2, "chat:direct");
  await once(dave2, "connect");
  await delay(300);
  assert.equal(again.length, 0, "nothing once delivered");
  dave2.disconnect();

  for (const [payload, code] of [
    [{ message: "x" }, "INVALID_PAYLOAD"],
    [{ targetId: "bob" }, "INVALID_PAYLOAD"],
    [{ targetId: 1, message: "x" }, "INVALID_PAYLOAD"],
    [{ targetId: "bob", message: "   " }, "INVALID_MESSAGE"],
    [{ targetId: "bob", message: "b".repeat(2001) }, "INVALID_MESSAGE"],
    [{ targetId: "nobody", message: "x" }, "NOT_FOUND"],
  ]) {
    assert.equal((await ask(alice, "user:direct-message", payload)).code, code, JSON.stringify(payload).slice(0, 60));
  }
  assert.equal(await count(`select count(*) from direct_messages where to_user_id = 'nobody'`), 0);
  alice.disconnect();
});

test("room:sync: catch-up after a reconnect, pages of 200, refusals", async () => {
  const alice = await client("alice");
  let bob = await client("bob");
  await join(alice, "syncroom");
  await join(bob, "syncroom");
  const seen = collect(bob, "chat:message");
  await ask(alice, "chat:send", { roomId: "syncroom", text: "before" });
  await until(() => seen.length === 1, 3000, "first message");
  const lastSeen = seen[0][0].id;
  bob.disconnect();
  const missed = [];
  for (let i = 0; i < 3; i++) missed.push((await ask(alice, "chat:send", { roomId: "syncroom", text: `missed ${i}` })).messageId);
  bob = await client("bob");
  const r = await ask(bob, "room:sync", { roomId: "syncroom", afterMessageId: lastSeen });
  assert.equal(r.success, true);
  assert.equal(r.hasMore, false);
  assert.deepEqual(r.messages.map((m) => m.id), missed);
  assert.deepEqual(r.messages[0], { id: missed[0], roomId: "syncroom", sender: { id: "alice", name: "ALICE", avatarUrl: "https://example.com/a.png" }, text: "missed 0", replyTo: null, timestamp: r.messages[0].timestamp, readBy: ["alice"] });
  // pages: 210 more, synced in two rounds
  await Promise.all(Array.from({ length: 210 }, (_, i) => ask(alice, "chat:send", { roomId: "syncroom", text: `bulk ${i}` })));
  const p1 = await ask(bob, "room:sync", { roomId: "syncroom", afterMessageId: missed[2] });
  assert.equal(p1.messages.length, 200);
  assert.equal(p1.hasMore, true);
  const p2 = await ask(bob, "room:sync", { roomId: "syncroom", afterMessageId: p1.messages[199].id });
  assert.equal(p2.messages.length, 10);
  assert.equal(p2.hasMore, false);
  const all = [...p1.messages, ...p2.messages].map((m) => m.text);
  assert.equal(new Set(all).size, 210);
  // without afterMessageId: from the start
  const first = await ask(bob, "room:sync", { roomId: "syncroom" });
  assert.equal(first.messages[0].text, "before");
  const other = (await query("select id from messages where room_id = 'other'"))[0][0];
  for (const [payload, code] of [
    [{}, "INVALID_PAYLOAD"],
    [{ roomId: "syncroom", afterMessageId: 5 }, "INVALID_PAYLOAD"],
    [{ roomId: "nowhere" }, "NOT_FOUND"],
    [{ roomId: "syncroom", afterMessageId: "nope" }, "NOT_FOUND"],
    [{ roomId: "syncroom", afterMessageId: other }, "NOT_FOUND"],
    [{ roomId: "secret" }, "FORBIDDEN"],
  ]) {
    assert.equal((await ask(bob, "room:sync", payload)).code, code, JSON.stringify(payload));
  }
  alice.disconnect();
  bob.disconnect();
});

test("product:watch / unwatch: stored, idempotent, bad payloads refused", async () => {
  const carol = await client("carol");
  assert.deepEqual(await ask(carol, "product:watch", { productId: "p-1" }), { success: true });
  assert.deepEqual(await ask(carol, "product:watch", { productId: "p-1" }), { success: true });
  assert.deepEqual(await query("select user_id, product_id from product_watchers where product_id = 'p-1'"), [["carol", "p-1"]]);
  assert.deepEqual(await ask(carol, "product:unwatch", { productId: "p-1" }), { success: true });
  assert.equal(await count("select count(*) from product_watchers where product_id = 'p-1'"), 0);
  for (const bad of [undefined, "p-1", {}, { productId: 3 }, { productId: "" }]) {
    assert.equal((await ask(carol, "product:watch", bad)).code, "INVALID_PAYLOAD");
  }
  carol.disconnect();
});
});
