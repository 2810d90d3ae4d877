// RealtimeClient against the real server binary: a short-lived token refreshed with
// auth:refresh (the same socket stays), rooms joined again and caught up with room:sync
// after the server restarts, a send whose ack was lost retried with the same clientMsgId
// (stored once), DMs acknowledged and delivered to the app once, followed users' status kept
// across a reconnect, edits, deletes and reactions applied to the kept messages (also those
// missed while the server was down), and the room list with unread counts.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { RealtimeClient, tokenExpiry } from "../dist/index.js";
import { startServer, token, until, delay } from "./fixture.mjs";

let srv;
const clients = [];
function client(user, opts = {}) {
  let issued = 0;
  const c = new RealtimeClient({
    url: srv.url,
    getToken: () => {
      issued += 1;
      return token(user, opts.ttl ?? 600);
    },
    socket: { transports: ["websocket"], reconnectionDelay: 200, reconnectionDelayMax: 500 },
    ...opts.client,
  });
  c.tokensIssued = () => issued;
  clients.push(c);
  return c;
}

before(async () => {
  // chat:send and DMs not limited in the way of the catch-up test's 120 posts
  srv = await startServer({ RT__LIMITS__USER_SENDS_PER_S: "1000", RT__LIMITS__USER_SENDS_BURST: "1000", RT__PRESENCE__GRACE_MS: "300" });
  for (const u of ["alice", "bob", "carol", "dave", "erin"]) await srv.user(u);
  for (const r of ["lobby", "refresh", "retry", "edits"]) await srv.room(r);
});
after(async () => {
  for (const c of clients) c.close();
  await srv.stop();
});

test("tokenExpiry reads a JWT's exp", () => {
  const exp = tokenExpiry(token("alice", 100));
  assert.ok(Math.abs(exp - (Date.now() / 1000 + 100)) < 2);
  assert.equal(tokenExpiry("garbage"), undefined);
});

test("a short-lived token is refreshed with auth:refresh before it expires: the same socket lives on", async () => {
  const c = client("alice", { ttl: 3 });
  await c.join("refresh");
  const id = c.chat.id;
  const disconnects = [];
  c.chat.on("disconnect", (r) => disconnects.push(r));
  // three lifetimes of the first token: without refreshes the server would have disconnected it
  await delay(7500);
  assert.deepEqual(disconnects, []);
  assert.equal(c.chat.id, id, "the same socket");
  assert.ok(c.tokensIssued() >= 3, `${c.tokensIssued()} tokens asked for`);
  const sent = await c.send("refresh", "still here");
  assert.match(sent.messageId, /.+/);
});

test("after the server restarts, joined rooms are joined again and caught up with room:sync (more than the history holds)", async () => {
  const c = client("bob");
  await c.join("lobby");
  const first = await c.send("lobby", "before the restart");
  await until(() => c.room("lobby").messages.some((m) => m.id === first.messageId), 3000, "own message");
  const statuses = [];
  c.onStatus((s) => statuses.push(s));
  await srv.down();
  await until(() => c.status === "disconnected", 5000, "the client sees the close");
  // while bob is away: 120 messages (the join's history holds the last 50)
  await srv.up();
  const missed = [];
  for (let i = 0; i < 120; i++) missed.push(await srv.post("carol", "lobby", `missed ${i}`));
  await until(() => c.status === "connected", 10000, "reconnected");
  await until(() => missed.every((id) => c.room("lobby").messages.some((m) => m.id === id)), 10000, "all 120 caught up");
  const ids = c.room("lobby").messages.map((m) => m.id);
  assert.equal(new Set(ids).size, ids.length, "each message once");
  const texts = c.room("lobby").messages.map((m) => m.text);
  assert.deepEqual(texts.slice(texts.indexOf("before the restart")), ["before the restart", ...missed.map((_, i) => `missed ${i}`)], "in order");
  // and live messages flow on the new socket
  const live = await srv.post("carol", "lobby", "after");
  await until(() => c.room("lobby").messages.some((m) => m.id === live), 3000, "a live one");
  assert.ok(statuses.includes("disconnected") && statuses.at(-1) === "connected");
});

test("a send whose ack is lost is retried with the same clientMsgId across the reconnect: one message", async () => {
  const c = client("dave");
  await c.join("retry");
  // the message is stored, but its ack is lost: the client drops the ACK packet and the
  // transport closes in the same moment
  const mgr = c.chat.io;
  const emit = mgr.emitReserved.bind(mgr);
  let lostAck;
  mgr.emitReserved = (ev, ...args) => {
    if (ev === "packet" && args[0]?.type === 3 && lostAck === undefined) {
      lostAck = args[0].data[0];
      mgr.engine.close();
      return;
    }
    return emit(ev, ...args);
  };
  const { messageId, clientMsgId } = await c.send("retry", "exactly once", { clientMsgId: "dave-msg-1" });
  mgr.emitReserved = emit;
  assert.equal(lostAck?.success, true, "the first attempt was stored; its ack never reached the app");
  assert.equal(clientMsgId, "dave-msg-1");
  assert.equal(messageId, lostAck.messageId, "the retry answers the stored message's id");
  const stored = (await srv.messages("dave", "retry")).filter((m) => m.text === "exactly once");
  assert.equal(stored.length, 1, "stored once");
  assert.equal(stored[0].id, messageId);
  assert.equal(stored[0].clientMsgId, "dave-msg-1");
  // a send while disconnected waits for the connection and goes then
  c.chat.io.engine.close();
  const later = await c.send("retry", "sent while away");
  assert.match(later.messageId, /.+/);
  // a refusal is not retried
  await assert.rejects(c.send("retry", ""), (e) => e.code === "INVALID_MESSAGE");
});

test("DMs are acknowledged for the app and given to it once, even when the server delivers one again", async () => {
  const carol = client("carol");
  const alice = client("alice");
  await until(() => carol.status === "connected" && alice.status === "connected", 5000, "both connected");
  const got = [];
  alice.onDirectMessage((dm) => got.push(dm));
  const sent = await carol.directMessage("alice", "hello alice");
  assert.equal(sent.delivered, true);
  await until(() => got.length === 1, 3000, "the DM");
  assert.equal(got[0].id, sent.id);
  // the same DM arriving again (a redelivery after a reconnect) is dropped
  alice.chat.listeners("chat:direct").forEach((l) => l({ ...got[0] }, () => {}));
  await delay(100);
  assert.equal(got.length, 1);
  // acknowledged: not delivered again on the next connect
  alice.chat.disconnect();
  alice.chat.connect();
  await until(() => alice.status === "connected", 5000, "alice back");
  await delay(500);
  assert.equal(got.length, 1, "no second delivery");
});

test("followed users' status: answered now, changes told, followed again after a reconnect (a change missed meanwhile is told)", async () => {
  const c = client("carol");
  const changes = [];
  c.onPresence((st) => changes.push(st));
  await until(() => c.status === "connected", 5000, "connected");
  const now = await c.follow(["erin", "carol", "erin"]);
  assert.deepEqual(now.map((s) => [s.userId, s.status]), [["erin", "offline"], ["carol", "online"]]);
  await assert.rejects(c.follow(["nobody"]), (e) => e.code === "NOT_FOUND");
  // from here on about erin only: carol's own status flaps with her reconnect below
  await c.unfollow(["carol"]);
  const erin = client("erin");
  await until(() => c.presence("erin")?.status === "online", 5000, "erin online");
  assert.deepEqual(changes.map((s) => [s.userId, s.status]), [["erin", "online"]]);
  // carol's connection drops for a while; erin leaves meanwhile (the server's grace is 300 ms)
  // a fixed delay (no jitter: with socket.io-client's default 0.5 it could be 750 ms)
  c.chat.io.reconnectionDelay(1500);
  c.chat.io.reconnectionDelayMax(1500);
  c.chat.io.randomizationFactor(0);
  c.chat.io.engine.close();
  await until(() => c.status === "disconnected", 3000, "carol away");
  erin.close();
  await delay(1000);
  assert.equal(c.status, "disconnected", "still away when erin turned offline");
  await until(() => c.presence("erin")?.status === "offline", 10000, "erin offline, seen after the reconnect");
  assert.deepEqual(changes.map((s) => [s.userId, s.status]), [["erin", "online"], ["erin", "offline"]]);
  assert.equal(typeof c.presence("erin").lastSeen, "number");
  await c.unfollow(["erin"]);
  assert.equal(c.presence("erin"), undefined);
});

test("edits, deletes and reactions change the kept messages live, and after a restart from the history", async () => {
  const a = client("alice");
  const b = client("bob");
  await a.join("edits");
  await b.join("edits");
  const first = await a.send("edits", "frist");
  const second = await b.send("edits", "a reply", { replyToId: first.messageId });
  const kept = (c, id) => c.room("edits").messages.find((m) => m.id === id);
  await until(() => kept(b, first.messageId) && kept(a, second.messageId), 3000, "both messages on both");
  await a.edit(first.messageId, "first");
  await b.react(first.messageId, "👍", true);
  await a.react(first.messageId, "👍", true);
  await a.react(first.messageId, "🎉", true);
  await a.react(first.messageId, "🎉", false);
  await until(() => kept(b, first.messageId).text === "first" && kept(b, first.messageId).reactions?.length === 1 && kept(b, first.messageId).reactions[0].count === 2, 3000, "edit and reactions on bob's side");
  assert.deepEqual(kept(b, first.messageId).reactions, [{ emoji: "👍", count: 2, userIds: ["bob", "alice"] }]);
  assert.ok(kept(b, first.messageId).editedAt > 0);
  // bob's view equals what the server stores
  const stored = (await b.request("room:sync", { roomId: "edits" })).messages.find((m) => m.id === first.messageId);
  assert.deepEqual(kept(b, first.messageId), stored);
  // refused: not bob's message
  await assert.rejects(b.edit(first.messageId, "mine now"), (e) => e.code === "FORBIDDEN");
  await a.deleteMessage(first.messageId);
  await until(() => kept(b, first.messageId).deletedAt > 0, 3000, "the delete on bob's side");
  assert.equal(kept(b, first.messageId).text, "");
  assert.equal(kept(b, first.messageId).reactions, undefined);
  assert.equal(kept(b, second.messageId).replyTo.text, "", "the quote of a deleted message is blank");
  // while bob is away the server restarts and alice edits: the history after the reconnect
  // carries the stored state
  await srv.down();
  await until(() => b.status === "disconnected", 5000, "bob sees the close");
  await srv.up();
  await until(() => a.status === "connected", 10000, "alice back");
  await a.react(second.messageId, "👀", true);
  await until(() => b.status === "connected", 10000, "bob back");
  await until(() => kept(b, second.messageId).reactions?.length === 1, 5000, "the reaction made while bob was away");
  assert.deepEqual(kept(b, second.messageId).reactions, [{ emoji: "👀", count: 1, userIds: ["alice"] }]);
});

test("roomsList: unread counts and last messages", async () => {
  const c = client("dave");
  await c.join("lobby");
  const mine = await c.send("lobby", "dave reads from here");
  await c.markRead("lobby", mine.messageId);
  const other = await srv.post("erin", "lobby", "unread for dave");
  const lobby = (await c.roomsList()).find((r) => r.id === "lobby");
  assert.equal(lobby.unread, 1);
  assert.equal(lobby.lastMessage.id, other);
  await c.markRead("lobby", other);
  assert.equal((await c.roomsList()).find((r) => r.id === "lobby").unread, 0);
});
