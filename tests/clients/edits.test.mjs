// The chat completed (docs/events.md), once on SQLite and once on a throwaway PostgreSQL,
// with the real socket.io-client: chat:edit, chat:delete and chat:react with their live
// events, the stored state in history, room:sync and REST, rooms:list with unread counts
// across reconnects, clientMsgId scoped to the room, admin:messages and
// admin:delete-message, and the outbound webhooks message.created|updated|deleted and
// direct.created, signed, received by a real HTTP server and chosen by webhooks.events.
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { io } from "socket.io-client";
import { startProduct, testDatabase, signedCall, hsToken, once, collect, until, delay, startHookReceiver } from "./common.mjs";
import { Plain } from "./plain.mjs";

const SECRET = "edits-jwt-secret-padded-to-at-least-32-bytes";
const HOOK = "edits-hook-secret-padded-to-at-least-32-bytes";
const OUT = "edits-outbound-secret-padded-to-32-bytes";

for (const backend of ["sqlite", "postgres"]) describe(`chat edits on ${backend}`, () => {
  let srv, db, recv;
  const internal = (method, route, body) => signedCall(srv.url, HOOK, method, route, body);
  async function client(user, { nsp = "/", role = "user" } = {}) {
    const s = io(srv.url + nsp, { forceNew: true, reconnection: false, transports: ["websocket"], auth: { token: hsToken(SECRET, user, { role }) } });
    await once(s, "connect");
    return s;
  }
  const ask = (s, event, payload) => s.timeout(3000).emitWithAck(event, payload);
  const send = async (s, roomId, text, extra = {}) => {
    const a = await ask(s, "chat:send", { roomId, text, ...extra });
    assert.equal(a.success, true, JSON.stringify(a));
    return a.messageId;
  };
  const history = async (s, roomId) => (await ask(s, "room:sync", { roomId })).messages;
  const byId = async (s, roomId, id) => (await history(s, roomId)).find((m) => m.id === id);
  const events = (type) => recv.accepted().filter((e) => e.type === type);

  before(async () => {
    db = await testDatabase(backend, "edits");
    recv = await startHookReceiver(OUT);
    srv = await startProduct({
      JWT_SECRET: SECRET, WEBHOOK_SECRET: HOOK, DATABASE_URL: db.url,
      RT__WEBHOOKS__OUTBOUND_URL: `${recv.url}/hooks`, RT__WEBHOOKS__OUTBOUND_SECRET: OUT,
      // the 21-emoji test reacts 21 times in a row
      RT__LIMITS__USER_SENDS_BURST: "200", RT__LIMITS__EVENTS_BURST: "400",
    });
    for (const [u, role] of [["alice", "user"], ["bob", "user"], ["carol", "user"], ["erin", "user"], ["mod", "admin"]]) {
      assert.equal((await internal("PUT", `/users/${u}`, { name: u.toUpperCase(), email: `${u}@example.com`, role, isActive: true })).status, 200);
    }
    for (const r of ["lobby", "news", "quiet", "other"]) {
      assert.equal((await internal("PUT", `/rooms/${r}`, { name: r, isPublic: true })).status, 200);
    }
    assert.equal((await internal("PUT", "/rooms/secret", { name: "Secret", isPublic: false, members: ["alice"] })).status, 200);
  });
  after(async () => { await srv?.stop(); await recv?.stop(); db?.stop(); });

  test("chat:edit: the author's new text reaches the room and history, room:sync and REST", async () => {
    const alice = await client("alice");
    const bob = await client("bob");
    await ask(alice, "room:join", "lobby");
    await ask(bob, "room:join", "lobby");
    const id = await send(alice, "lobby", "helo wrld");
    const bobSees = collect(bob, "chat:message-updated");
    const aliceSees = collect(alice, "chat:message-updated");
    const before = Date.now();
    assert.deepEqual(await ask(alice, "chat:edit", { messageId: id, text: "  hello world  " }), { success: true });
    await until(() => bobSees.length === 1 && aliceSees.length === 1, 3000, "the update to both");
    const upd = bobSees[0][0];
    assert.deepEqual(Object.keys(upd).sort(), ["editedAt", "id", "roomId", "text"]);
    assert.equal(upd.id, id);
    assert.equal(upd.roomId, "lobby");
    assert.equal(upd.text, "hello world");
    assert.ok(upd.editedAt >= before && upd.editedAt <= Date.now());

    const stored = await byId(bob, "lobby", id);
    assert.equal(stored.text, "hello world");
    assert.equal(stored.editedAt, upd.editedAt);
    assert.equal(stored.deletedAt, undefined);
    // a fresh join's history shows it too
    const carol = await client("carol");
    const hist = once(carol, "room:history");
    await ask(carol, "room:join", "lobby");
    const fromHistory = (await hist)[0].messages.find((m) => m.id === id);
    assert.deepEqual(fromHistory, stored);
    // REST
    const res = await fetch(`${srv.url}/api/rooms/lobby/messages`, { headers: { authorization: `Bearer ${hsToken(SECRET, "carol")}` } });
    const page = await res.json();
    assert.deepEqual(page.messages.find((m) => m.id === id), stored);
    for (const s of [alice, bob, carol]) s.disconnect();
  });

  test("chat:edit refusals: payload, text rules, unknown, deleted, not the author", async () => {
    const alice = await client("alice");
    const bob = await client("bob");
    await ask(alice, "room:join", "lobby");
    await ask(bob, "room:join", "lobby");
    const id = await send(alice, "lobby", "mine");
    for (const bad of [null, "x", { text: "t" }, { messageId: 5, text: "t" }, { messageId: id }, { messageId: id, text: 7 }]) {
      assert.equal((await ask(alice, "chat:edit", bad)).code, "INVALID_PAYLOAD", JSON.stringify(bad));
    }
    assert.equal((await ask(alice, "chat:edit", { messageId: id, text: "   " })).code, "INVALID_MESSAGE");
    assert.equal((await ask(alice, "chat:edit", { messageId: id, text: "x".repeat(2001) })).code, "INVALID_MESSAGE");
    assert.deepEqual(await ask(alice, "chat:edit", { messageId: "no-such-message", text: "t" }), { success: false, error: "unknown or deleted message", code: "NOT_FOUND" });
    const bobSees = collect(bob, "chat:message-updated");
    assert.deepEqual(await ask(bob, "chat:edit", { messageId: id, text: "hijack" }), { success: false, error: "not the author of this message", code: "FORBIDDEN" });
    // even an admin may not edit someone else's words
    const mod = await client("mod");
    assert.equal((await ask(mod, "chat:edit", { messageId: id, text: "moderated" })).code, "FORBIDDEN");
    assert.equal((await ask(alice, "chat:delete", { messageId: id })).success, true);
    assert.equal((await ask(alice, "chat:edit", { messageId: id, text: "back" })).code, "NOT_FOUND");
    await delay(200);
    assert.equal(bobSees.length, 0, "no update for a refused edit");
    assert.equal((await byId(bob, "lobby", id)).text, "");
    // without an ack a refusal is an error event
    const err = once(bob, "error");
    bob.emit("chat:edit", { messageId: id, text: "x" });
    assert.equal((await err)[0].code, "NOT_FOUND");
    for (const s of [alice, bob, mod]) s.disconnect();
  });

  test("chat:delete: author or admin by stored role; blanked in place, replies hold, twice is NOT_FOUND", async () => {
    const alice = await client("alice");
    const bob = await client("bob");
    await ask(alice, "room:join", "news");
    await ask(bob, "room:join", "news");
    const first = await send(alice, "news", "first words");
    const reply = await send(bob, "news", "a reply", { replyToId: first });
    const third = await send(bob, "news", "third");
    assert.deepEqual(await ask(bob, "chat:react", { messageId: first, emoji: "👍", on: true }), { success: true });
    assert.equal((await byId(bob, "news", first)).reactions.length, 1);

    assert.deepEqual(await ask(bob, "chat:delete", { messageId: first }), { success: false, error: "not the author of this message", code: "FORBIDDEN" });
    for (const bad of [null, {}, { messageId: 1 }]) assert.equal((await ask(bob, "chat:delete", bad)).code, "INVALID_PAYLOAD");
    const seen = collect(bob, "chat:message-deleted");
    const before = Date.now();
    assert.deepEqual(await ask(alice, "chat:delete", { messageId: first }), { success: true });
    await until(() => seen.length === 1, 3000, "the delete event");
    assert.deepEqual(Object.keys(seen[0][0]).sort(), ["deletedAt", "id", "roomId"]);
    assert.equal(seen[0][0].id, first);
    assert.equal(seen[0][0].roomId, "news");
    assert.ok(seen[0][0].deletedAt >= before);
    assert.deepEqual(await ask(alice, "chat:delete", { messageId: first }), { success: false, error: "unknown or deleted message", code: "NOT_FOUND" });
    assert.equal((await ask(alice, "chat:delete", { messageId: "nope" })).code, "NOT_FOUND");

    const msgs = await history(bob, "news");
    assert.deepEqual(msgs.map((m) => m.id), [first, reply, third], "order holds");
    const gone = msgs[0];
    assert.equal(gone.text, "");
    assert.equal(gone.deletedAt, seen[0][0].deletedAt);
    assert.equal(gone.reactions, undefined, "no reactions on a deleted message");
    assert.equal(gone.sender.id, "alice");
    assert.deepEqual(msgs[1].replyTo, { id: first, text: "", senderId: "alice" });
    // reacting to a deleted message: NOT_FOUND
    assert.equal((await ask(bob, "chat:react", { messageId: first, emoji: "👍", on: false })).code, "NOT_FOUND");
    // a user whose stored role is admin deletes on `/` (token role says nothing); alice not
    const mod = await client("mod");
    assert.deepEqual(await ask(mod, "chat:delete", { messageId: third }), { success: true });
    await until(() => seen.length === 2, 3000, "the admin's delete");
    const promoted = await client("carol", { role: "admin" }); // a token's role is not the stored role
    const own = await send(bob, "news", "bob again");
    assert.equal((await ask(promoted, "chat:delete", { messageId: own })).code, "FORBIDDEN");
    for (const s of [alice, bob, mod, promoted]) s.disconnect();
  });

  test("chat:react: toggles per user and emoji, events only on change, at most 20 distinct emoji", async () => {
    const alice = await client("alice");
    const bob = await client("bob");
    await ask(alice, "room:join", "quiet");
    await ask(bob, "room:join", "quiet");
    const id = await send(alice, "quiet", "react to me");
    const seen = collect(alice, "chat:reaction");
    assert.deepEqual(await ask(bob, "chat:react", { messageId: id, emoji: "🎉", on: true }), { success: true });
    assert.deepEqual(await ask(bob, "chat:react", { messageId: id, emoji: "🎉", on: true }), { success: true });
    assert.deepEqual(await ask(alice, "chat:react", { messageId: id, emoji: "🎉", on: true }), { success: true });
    assert.deepEqual(await ask(alice, "chat:react", { messageId: id, emoji: "👍", on: true }), { success: true });
    await until(() => seen.length === 3, 3000, "three changes");
    await delay(150);
    assert.equal(seen.length, 3, "a repeated toggle changes nothing and is not announced");
    assert.deepEqual(seen[0][0], { messageId: id, roomId: "quiet", userId: "bob", emoji: "🎉", on: true });
    let m = await byId(alice, "quiet", id);
    assert.deepEqual(m.reactions, [
      { emoji: "🎉", count: 2, userIds: ["bob", "alice"] },
      { emoji: "👍", count: 1, userIds: ["alice"] },
    ]);
    assert.deepEqual(await ask(bob, "chat:react", { messageId: id, emoji: "🎉", on: false }), { success: true });
    assert.deepEqual(await ask(bob, "chat:react", { messageId: id, emoji: "🎉", on: false }), { success: true });
    await until(() => seen.length === 4, 3000, "bob's off");
    await delay(150);
    assert.equal(seen.length, 4);
    assert.deepEqual(seen[3][0], { messageId: id, roomId: "quiet", userId: "bob", emoji: "🎉", on: false });
    m = await byId(alice, "quiet", id);
    assert.deepEqual(m.reactions, [{ emoji: "🎉", count: 1, userIds: ["alice"] }, { emoji: "👍", count: 1, userIds: ["alice"] }]);

    // emoji rules and payload shapes
    for (const bad of [
      { messageId: id, emoji: "", on: true },
      { messageId: id, emoji: "x".repeat(17), on: true },
      { messageId: id, emoji: "a b", on: true },
      { messageId: id, emoji: "\t", on: true },
      { messageId: id, emoji: 5, on: true },
      { messageId: id, emoji: "👍" },
      { messageId: id, emoji: "👍", on: "yes" },
      { emoji: "👍", on: true },
    ]) {
      assert.equal((await ask(bob, "chat:react", bad)).code, "INVALID_PAYLOAD", JSON.stringify(bad));
    }
    assert.equal((await ask(bob, "chat:react", { messageId: id, emoji: "x".repeat(16), on: true })).success, true);
    assert.equal((await ask(bob, "chat:react", { messageId: "nope", emoji: "👍", on: true })).code, "NOT_FOUND");

    // 20 distinct at most: this message has 3 (🎉, 👍, x×16); 17 more fit, the 21st is refused
    for (let i = 0; i < 17; i++) {
      assert.equal((await ask(bob, "chat:react", { messageId: id, emoji: `e${i}`, on: true })).success, true, `emoji ${i}`);
    }
    assert.deepEqual(await ask(bob, "chat:react", { messageId: id, emoji: "🚀", on: true }), { success: false, error: "a message carries at most 20 distinct emoji", code: "RATE_LIMITED" });
    // one already on it is still fine for another user
    assert.equal((await ask(alice, "chat:react", { messageId: id, emoji: "e3", on: true })).success, true);
    m = await byId(alice, "quiet", id);
    assert.equal(m.reactions.length, 20);
    assert.deepEqual(m.reactions.find((r) => r.emoji === "e3"), { emoji: "e3", count: 2, userIds: ["bob", "alice"] });
    for (const s of [alice, bob]) s.disconnect();
  });

  test("private rooms: a user not allowed in the room may not react or edit there", async () => {
    const alice = await client("alice");
    await ask(alice, "room:join", "secret");
    const id = await send(alice, "secret", "members only");
    const bob = await client("bob");
    assert.deepEqual(await ask(bob, "chat:react", { messageId: id, emoji: "👀", on: true }), { success: false, error: "not a member of this private room", code: "FORBIDDEN" });
    // alice loses her membership: her own message can no longer be edited, still deleted
    assert.equal((await internal("PUT", "/rooms/secret", { name: "Secret", isPublic: false, members: ["carol"] })).status, 200);
    assert.equal((await ask(alice, "chat:edit", { messageId: id, text: "x" })).code, "FORBIDDEN");
    assert.equal((await ask(alice, "chat:delete", { messageId: id })).success, true);
    for (const s of [alice, bob]) s.disconnect();
  });

  test("a plain WebSocket (/ws) client edits, reacts, deletes and lists rooms like a Socket.IO one", async () => {
    const carol = await Plain.connect(srv.url, hsToken(SECRET, "carol"));
    const alice = await client("alice");
    assert.equal((await carol.call("room:join", "quiet")).success, true);
    await ask(alice, "room:join", "quiet");
    const sent = await carol.call("chat:send", { roomId: "quiet", text: "over ws" });
    assert.equal(sent.success, true);
    const seen = collect(alice, "chat:message-updated");
    assert.deepEqual(await carol.call("chat:edit", { messageId: sent.messageId, text: "over ws, edited" }), { success: true });
    await until(() => seen.length === 1, 3000, "the Socket.IO client hears the /ws edit");
    assert.deepEqual(await ask(alice, "chat:react", { messageId: sent.messageId, emoji: "🔌", on: true }), { success: true });
    const reaction = await carol.next("chat:reaction");
    assert.deepEqual(reaction.payload, { messageId: sent.messageId, roomId: "quiet", userId: "alice", emoji: "🔌", on: true });
    assert.deepEqual(await carol.call("chat:react", { messageId: sent.messageId, emoji: "a b", on: true }), { success: false, error: "emoji may not contain whitespace", code: "INVALID_PAYLOAD" });
    // a public room is listed once read in
    assert.deepEqual(await carol.call("chat:read", { roomId: "quiet", lastReadMessageId: sent.messageId }), { success: true });
    const listed = await carol.call("rooms:list");
    assert.equal(listed.success, true);
    assert.ok(listed.rooms.some((r) => r.id === "quiet"));
    assert.deepEqual(await carol.call("chat:delete", { messageId: sent.messageId }), { success: true });
    const deleted = await carol.next("chat:message-deleted");
    assert.equal(deleted.payload.id, sent.messageId);
    carol.close();
    alice.disconnect();
  });

  test("clientMsgId is scoped to the sender and room", async () => {
    const alice = await client("alice");
    const bob = await client("bob");
    for (const r of ["lobby", "other"]) { await ask(alice, "room:join", r); await ask(bob, "room:join", r); }
    const id = await send(alice, "lobby", "once", { clientMsgId: "c-1" });
    assert.equal(await send(alice, "lobby", "once", { clientMsgId: "c-1" }), id);
    assert.deepEqual(await ask(alice, "chat:send", { roomId: "other", text: "elsewhere", clientMsgId: "c-1" }), { success: false, error: "clientMsgId already used", code: "INVALID_PAYLOAD" });
    // another sender's same id is theirs
    const bobs = await send(bob, "other", "bob's", { clientMsgId: "c-1" });
    assert.notEqual(bobs, id);
    // REST: same rule
    const res = await fetch(`${srv.url}/api/rooms/other/messages`, {
      method: "POST", headers: { authorization: `Bearer ${hsToken(SECRET, "alice")}`, "content-type": "application/json" },
      body: JSON.stringify({ text: "via REST", clientMsgId: "c-1" }),
    });
    assert.equal(res.status, 400);
    assert.deepEqual(await res.json(), { success: false, error: "clientMsgId already used", code: "INVALID_PAYLOAD" });
    assert.equal((await history(alice, "other")).filter((m) => m.sender.id === "alice").length, 0);
    for (const s of [alice, bob]) s.disconnect();
  });

  test("rooms:list: unread after the marker, not own, not deleted, newest first, across reconnects", async () => {
    for (const r of ["r-a", "r-b", "r-c"]) assert.equal((await internal("PUT", `/rooms/${r}`, { name: r.toUpperCase(), isPublic: true })).status, 200);
    assert.equal((await internal("PUT", "/rooms/r-m", { name: "Members", isPublic: false, members: ["erin", "bob"] })).status, 200);
    const erin = await client("erin");
    const alice = await client("alice");
    assert.deepEqual(await ask(erin, "rooms:list"), {
      success: true,
      rooms: [{ id: "r-m", name: "Members", isPublic: false, memberCount: 0, unread: 0, lastMessage: null }],
    });
    for (const r of ["r-a", "r-b"]) { await ask(erin, "room:join", r); await ask(alice, "room:join", r); }
    const a1 = await send(alice, "r-a", "a1");
    const own = await send(erin, "r-a", "erin's own");
    await ask(erin, "chat:read", { roomId: "r-a", lastReadMessageId: own });
    const a2 = await send(alice, "r-a", "a2");
    const a3 = await send(alice, "r-a", "a3");
    const b1 = await send(alice, "r-b", "b1");
    await ask(erin, "chat:read", { roomId: "r-b", lastReadMessageId: b1 });
    const b2 = await send(alice, "r-b", "b2");
    void a1; void a2;
    let list = await ask(erin, "rooms:list");
    assert.equal(list.success, true);
    assert.deepEqual(list.rooms.map((r) => [r.id, r.unread]), [["r-b", 1], ["r-a", 2], ["r-m", 0]]);
    const rb = list.rooms[0];
    assert.equal(rb.name, "R-B");
    assert.equal(rb.isPublic, true);
    assert.equal(rb.memberCount, 2);
    assert.equal(rb.lastMessage.id, b2);
    assert.equal(rb.lastMessage.text, "b2");
    assert.equal(rb.lastMessage.roomId, "r-b");
    // a deleted message is not unread and not the last message
    assert.equal((await ask(alice, "chat:delete", { messageId: b2 })).success, true);
    list = await ask(erin, "rooms:list");
    // (b1 is still newer than anything in r-a)
    assert.deepEqual(list.rooms.map((r) => [r.id, r.unread]), [["r-b", 0], ["r-a", 2], ["r-m", 0]]);
    assert.equal(list.rooms[0].lastMessage.id, b1);
    // across a reconnect, with messages sent while away
    erin.disconnect();
    const c1 = await send(alice, "r-b", "while away");
    const erin2 = await client("erin");
    list = await ask(erin2, "rooms:list");
    assert.deepEqual(list.rooms.map((r) => [r.id, r.unread, r.memberCount]), [["r-b", 1, 1], ["r-a", 2, 1], ["r-m", 0, 0]]);
    assert.equal(list.rooms[0].lastMessage.id, c1);
    await ask(erin2, "room:join", "r-a");
    await ask(erin2, "chat:read", { roomId: "r-a", lastReadMessageId: a3 });
    list = await ask(erin2, "rooms:list");
    assert.deepEqual(list.rooms.map((r) => [r.id, r.unread]), [["r-b", 1], ["r-a", 0], ["r-m", 0]]);
    // a room only read in (never a member) is listed; one never touched is not
    assert.ok(!list.rooms.some((r) => r.id === "r-c"));
    for (const s of [alice, erin2]) s.disconnect();
  });

  test("rooms:list: unread stops at 999", async () => {
    assert.equal((await internal("PUT", "/rooms/busy", { name: "Busy", isPublic: false, members: ["bob"] })).status, 200);
    const rows = [];
    for (let i = 0; i < 1005; i++) rows.push(`('busy-${String(i).padStart(5, "0")}','busy','alice','n${i}',${1000 + i})`);
    await db.query(`insert into messages (id, room_id, sender_id, text, created_at) values ${rows.join(",")};`);
    const bob = await client("bob");
    const list = await ask(bob, "rooms:list");
    const busy = list.rooms.find((r) => r.id === "busy");
    assert.equal(busy.unread, 999);
    assert.equal(busy.lastMessage.id, "busy-01004");
    // read up to the 10th from the end: 9 unread
    await ask(bob, "room:join", "busy");
    await ask(bob, "chat:read", { roomId: "busy", lastReadMessageId: "busy-00995" });
    assert.equal((await ask(bob, "rooms:list")).rooms.find((r) => r.id === "busy").unread, 9);
    bob.disconnect();
  });

  test("admin:messages and admin:delete-message", async () => {
    const alice = await client("alice");
    await ask(alice, "room:join", "other");
    const ids = [];
    for (let i = 0; i < 3; i++) ids.push(await send(alice, "other", `m${i}`));
    await ask(alice, "chat:delete", { messageId: ids[0] });
    const admin = await client("mod", { nsp: "/admin", role: "admin" });
    const got = await ask(admin, "admin:messages", { roomId: "other", limit: 3 });
    assert.equal(got.success, true);
    assert.deepEqual(got.messages.map((m) => m.id), [ids[2], ids[1], ids[0]], "newest first, deleted included");
    assert.equal(got.messages[2].text, "");
    assert.ok(got.messages[2].deletedAt > 0);
    assert.equal((await ask(admin, "admin:messages", { roomId: "other" })).messages.length >= 3, true);
    const clamped = await ask(admin, "admin:messages", { roomId: "other", limit: 5000 });
    assert.equal(clamped.success, true, "a limit above 200 is taken as 200");
    assert.ok(clamped.messages.length <= 200);
    for (const bad of [null, {}, { roomId: "other", limit: 0 }, { roomId: "other", limit: 2.5 }, { roomId: "other", limit: "5" }]) {
      assert.equal((await ask(admin, "admin:messages", bad)).code, "INVALID_PAYLOAD", JSON.stringify(bad));
    }
    assert.equal((await ask(admin, "admin:messages", { roomId: "nowhere" })).code, "NOT_FOUND");

    const seen = collect(alice, "chat:message-deleted");
    assert.deepEqual(await ask(admin, "admin:delete-message", { messageId: ids[1] }), { success: true });
    await until(() => seen.length === 1, 3000, "the room hears the admin's delete");
    assert.equal(seen[0][0].id, ids[1]);
    assert.equal((await ask(admin, "admin:delete-message", { messageId: ids[1] })).code, "NOT_FOUND");
    assert.equal((await ask(admin, "admin:delete-message", {})).code, "INVALID_PAYLOAD");
    // a socket of /admin is only for admins; a user's admin:messages on / is not an event there
    for (const s of [alice, admin]) s.disconnect();
  });

  test("webhooks: message.created|updated|deleted and direct.created with delivered, signed", async () => {
    const alice = await client("alice");
    await ask(alice, "room:join", "lobby");
    const id = await send(alice, "lobby", "hooked");
    await ask(alice, "chat:edit", { messageId: id, text: "hooked, edited" });
    await ask(alice, "chat:delete", { messageId: id });
    const find = (type) => events(type).find((e) => e.data.id === id);
    await until(() => find("message.created") && find("message.updated") && find("message.deleted"), 5000, "three message events");
    const created = find("message.created");
    assert.deepEqual(Object.keys(created).sort(), ["data", "id", "timestamp", "type"]);
    assert.equal(created.data.roomId, "lobby");
    assert.equal(created.data.text, "hooked");
    assert.deepEqual(created.data.sender, { id: "alice", name: "ALICE" });
    assert.equal(created.data.timestamp, created.timestamp);
    const updated = find("message.updated");
    assert.equal(updated.data.text, "hooked, edited");
    assert.ok(updated.data.editedAt > 0);
    const deleted = find("message.deleted");
    assert.equal(deleted.data.text, "");
    assert.ok(deleted.data.deletedAt > 0);
    // in order within the room, each signed
    const order = recv.accepted().filter((e) => e.data?.id === id).map((e) => e.type);
    assert.deepEqual(order, ["message.created", "message.updated", "message.deleted"]);
    assert.ok(recv.got.filter((g) => g.body?.data?.id === id).every((g) => g.verified));

    // DMs: bob offline → delivered:false; bob online → delivered:true
    const dm1 = await ask(alice, "user:direct-message", { targetId: "bob", message: "are you there?" });
    const bob = await client("bob");
    const dm2 = await ask(alice, "user:direct-message", { targetId: "bob", message: "now you are" });
    const dmEvent = (dmId) => events("direct.created").find((e) => e.data.id === dmId);
    await until(() => dmEvent(dm1.id) && dmEvent(dm2.id), 5000, "two direct.created");
    assert.deepEqual(dmEvent(dm1.id).data, { id: dm1.id, fromUserId: "alice", targetId: "bob", delivered: false });
    assert.deepEqual(dmEvent(dm2.id).data, { id: dm2.id, fromUserId: "alice", targetId: "bob", delivered: true });
    // REST and the server API store through the same writer: message.created too
    const res = await internal("POST", "/rooms/lobby/messages", { senderId: "bob", text: "from the backend" });
    assert.equal(res.status, 200);
    const backendId = (await res.json()).messageId;
    await until(() => events("message.created").some((e) => e.data.id === backendId), 5000, "the server API's message");
    for (const s of [alice, bob]) s.disconnect();
  });
});

describe("webhooks.events chooses the types sent", () => {
  test("only message.deleted: nothing else is stored or sent", async () => {
    const db = await testDatabase("sqlite", "edits-choice");
    const recv = await startHookReceiver(OUT);
    const srv = await startProduct({
      JWT_SECRET: SECRET, WEBHOOK_SECRET: HOOK, DATABASE_URL: db.url,
      RT__WEBHOOKS__OUTBOUND_URL: `${recv.url}/hooks`, RT__WEBHOOKS__OUTBOUND_SECRET: OUT,
      RT__WEBHOOKS__EVENTS: "message.deleted",
    });
    try {
      for (const u of ["alice", "bob"]) assert.equal((await signedCall(srv.url, HOOK, "PUT", `/users/${u}`, { name: u, email: `${u}@example.com`, role: "user", isActive: true })).status, 200);
      assert.equal((await signedCall(srv.url, HOOK, "PUT", "/rooms/lobby", { name: "Lobby", isPublic: true })).status, 200);
      const s = io(srv.url, { forceNew: true, reconnection: false, transports: ["websocket"], auth: { token: hsToken(SECRET, "alice") } });
      await once(s, "connect");
      await s.timeout(3000).emitWithAck("room:join", "lobby");
      const { messageId } = await s.timeout(3000).emitWithAck("chat:send", { roomId: "lobby", text: "x" });
      await s.timeout(3000).emitWithAck("chat:edit", { messageId, text: "y" });
      await s.timeout(3000).emitWithAck("user:direct-message", { targetId: "bob", message: "hi" });
      await s.timeout(3000).emitWithAck("chat:delete", { messageId });
      await until(() => recv.accepted().length >= 1, 5000, "the delete event");
      await delay(500);
      assert.deepEqual(recv.accepted().map((e) => e.type), ["message.deleted"], "user.online and the rest not sent");
      assert.equal(Number((await db.query("select count(*) from outbound_events"))[0][0]), 0, "nothing left stored");
      s.disconnect();
    } finally {
      await srv.stop(); await recv.stop(); db.stop();
    }
  });

  test("an unknown type stops the server at start with a clear error", async () => {
    const db = await testDatabase("sqlite", "edits-bad");
    const srv = startProduct({
      JWT_SECRET: SECRET, DATABASE_URL: db.url,
      RT__WEBHOOKS__OUTBOUND_URL: "http://127.0.0.1:9/hooks", RT__WEBHOOKS__OUTBOUND_SECRET: OUT,
      RT__WEBHOOKS__EVENTS: "message.created,message.exploded",
    });
    await assert.rejects(srv, /webhooks\.events: unknown event type "message\.exploded"/);
    db.stop();
  });
});
