// Directory changes reach open sockets (DESIGN 9, "Live directory changes"), on one node:
// a member removed from a private room (or a room made private without them) is taken out
// of it within 1 s and hears nothing more from it; a disabled user's sockets end; a demoted
// admin loses /admin; auth:refresh checks the users table. Across nodes: cluster.test.mjs.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { io } from "socket.io-client";
import { startProduct, testDatabase, signedCall, hsToken, once, collect, until, delay } from "./common.mjs";

const SECRET = "live-jwt-secret-padded-to-at-least-32-bytes";
const HOOK = "live-hook-secret-padded-to-at-least-32-bytes";
let srv;
let db;

const internal = (method, route, body) => signedCall(srv.url, HOOK, method, route, body);
const user = (name, { role = "user", active = true } = {}) => ({ name, email: `${name}@example.com`, role, isActive: active });
async function client(name, nsp = "/", role = "user") {
  const s = io(srv.url + nsp, { forceNew: true, reconnection: false, transports: ["websocket"], auth: { token: hsToken(SECRET, name, { role }) } });
  await once(s, "connect", 5000);
  return s;
}
const ask = (s, event, payload) => s.timeout(3000).emitWithAck(event, payload);

before(async () => {
  db = await testDatabase("sqlite", "live");
  srv = await startProduct({ JWT_SECRET: SECRET, WEBHOOK_SECRET: HOOK, DATABASE_URL: db.url });
  for (const u of ["alice", "bob", "carol", "dave", "erin", "frank"]) {
    assert.equal((await internal("PUT", `/users/${u}`, user(u))).status, 200);
  }
  assert.equal((await internal("PUT", "/users/root", user("root", { role: "admin" }))).status, 200);
});
after(async () => {
  await srv?.stop();
  db?.stop();
});

/** Resolves with the ms from now to the first `event` on `s`. */
function timed(s, event) {
  const t0 = Date.now();
  return once(s, event, 3000).then((args) => ({ args, ms: Date.now() - t0 }));
}

test("a member removed from a private room is taken out within 1 s: room:removed once, left/removed to the room, nothing more from it", async () => {
  assert.equal((await internal("PUT", "/rooms/team", { name: "Team", isPublic: false, members: ["alice", "bob"] })).status, 200);
  const alice = await client("alice");
  const bob = await client("bob");
  const bob2 = await client("bob");
  for (const s of [alice, bob, bob2]) assert.equal((await ask(s, "room:join", "team")).success, true);
  const removed = [collect(bob, "room:removed"), collect(bob2, "room:removed")];
  const updates = collect(alice, "room:member-update");
  const bobHeard = [collect(bob, "chat:message"), collect(bob2, "chat:message")];

  const res = await internal("DELETE", "/rooms/team/members/bob");
  assert.equal(res.status, 200);
  await until(() => removed.every((r) => r.length === 1), 1000, "both of bob's sockets told within 1 s of the answer");
  await until(() => updates.some((u) => u[0].type === "left"), 1000, "the room told");
  await delay(200);
  for (const r of removed) assert.deepEqual(r, [[{ roomId: "team" }]], "exactly room:removed {roomId}");
  assert.deepEqual(updates.filter((u) => u[0].type === "left").map((u) => u[0]), [
    { type: "left", userId: "bob", roomId: "team", memberCount: 1, reason: "removed" },
  ], "one left for the user, not one per socket");

  // nothing more from the room, and no way back in
  assert.equal((await ask(alice, "chat:send", { roomId: "team", text: "after bob left" })).success, true);
  await delay(300);
  assert.deepEqual(bobHeard.map((h) => h.length), [0, 0]);
  assert.equal((await ask(bob, "chat:send", { roomId: "team", text: "still here?" })).code, "FORBIDDEN");
  assert.equal((await ask(bob, "room:join", "team")).code, "FORBIDDEN");
  assert.equal((await ask(bob, "room:sync", { roomId: "team" })).code, "FORBIDDEN");
  for (const s of [alice, bob, bob2]) s.disconnect();
});

test("a join racing the removal ends outside the room either way", async () => {
  assert.equal((await internal("PUT", "/rooms/race", { name: "Race", isPublic: false, members: ["alice", "bob"] })).status, 200);
  const alice = await client("alice");
  const bob = await client("bob");
  assert.equal((await ask(alice, "room:join", "race")).success, true);
  const bobHeard = collect(bob, "chat:message");
  for (let i = 0; i < 10; i++) {
    assert.equal((await internal("PUT", "/rooms/race/members/bob")).status, 200);
    await ask(bob, "room:leave", "race");
    const [, removal] = await Promise.all([ask(bob, "room:join", "race"), internal("DELETE", "/rooms/race/members/bob")]);
    assert.equal(removal.status, 200);
    await delay(150);
    assert.equal((await ask(alice, "chat:send", { roomId: "race", text: `round ${i}` })).success, true);
  }
  await delay(300);
  assert.deepEqual(bobHeard.map((m) => m[0].text), [], "bob heard nothing once removed");
  for (const s of [alice, bob]) s.disconnect();
});

test("a public room made private without some of its readers: they are taken out, listed members stay", async () => {
  assert.equal((await internal("PUT", "/rooms/plaza", { name: "Plaza", isPublic: true })).status, 200);
  const [alice, carol, dave] = [await client("alice"), await client("carol"), await client("dave")];
  for (const s of [alice, carol, dave]) assert.equal((await ask(s, "room:join", "plaza")).success, true);
  const told = { alice: collect(alice, "room:removed"), carol: collect(carol, "room:removed"), dave: collect(dave, "room:removed") };
  assert.equal((await internal("PUT", "/rooms/plaza", { name: "Plaza", isPublic: false, members: ["alice", "dave"] })).status, 200);
  await until(() => told.carol.length === 1, 1000, "carol taken out within 1 s");
  await delay(200);
  assert.deepEqual([told.alice.length, told.dave.length], [0, 0]);
  const heard = collect(dave, "chat:message");
  assert.equal((await ask(alice, "chat:send", { roomId: "plaza", text: "members only" })).success, true);
  await until(() => heard.length === 1, 2000, "members still chat");
  assert.equal((await ask(carol, "room:join", "plaza")).code, "FORBIDDEN");
  // members added back get in again (adding never takes anyone out)
  assert.equal((await internal("PUT", "/rooms/plaza/members/carol")).status, 200);
  assert.equal((await ask(carol, "room:join", "plaza")).success, true);
  for (const s of [alice, carol, dave]) s.disconnect();
});

test("a disabled user's sockets end in every namespace within 1 s; reconnecting says ACCOUNT_DISABLED", async () => {
  const chat = await client("erin");
  const alerts = await client("erin", "/notifications");
  const other = await client("frank");
  const ends = [timed(chat, "disconnect"), timed(alerts, "disconnect")];
  const res = await internal("PUT", "/users/erin", user("erin", { active: false }));
  assert.equal(res.status, 200);
  for (const e of await Promise.all(ends)) {
    assert.equal(e.args[0], "io server disconnect");
    assert.ok(e.ms < 1000, `${e.ms} ms`);
  }
  assert.equal(other.connected, true, "others stay");
  const again = io(srv.url, { forceNew: true, reconnection: false, transports: ["websocket"], auth: { token: hsToken(SECRET, "erin") } });
  const [err] = await once(again, "connect_error", 5000);
  assert.equal(err.data?.code, "ACCOUNT_DISABLED");
  again.close();
  other.disconnect();
  assert.equal((await internal("PUT", "/users/erin", user("erin"))).status, 200);
});

test("a demoted admin loses its /admin sockets within 1 s and keeps chatting", async () => {
  const admin = await client("root", "/admin", "admin");
  const chat = await client("root");
  const gone = timed(admin, "disconnect");
  // an unrelated update of an admin changes nothing
  assert.equal((await internal("PUT", "/users/root", { ...user("root", { role: "admin" }), name: "Root" })).status, 200);
  await delay(300);
  assert.equal(admin.connected, true);
  assert.equal((await internal("PUT", "/users/root", user("root"))).status, 200);
  const { args, ms } = await gone;
  assert.equal(args[0], "io server disconnect");
  assert.ok(ms < 1300, `${ms} ms`);
  assert.equal(chat.connected, true);
  assert.equal((await ask(chat, "room:join", "plaza")).code, "FORBIDDEN", "still served in /");
  const again = io(srv.url + "/admin", { forceNew: true, reconnection: false, transports: ["websocket"], auth: { token: hsToken(SECRET, "root", { role: "admin" }) } });
  const [err] = await once(again, "connect_error", 5000);
  assert.equal(err.data?.code, "FORBIDDEN");
  again.close();
  chat.disconnect();
  assert.equal((await internal("PUT", "/users/root", user("root", { role: "admin" }))).status, 200);
});

test("auth:refresh checks the users table: token errors, then another user, then a disabled account", async () => {
  const s = await client("dave");
  const good = hsToken(SECRET, "dave", { ttl: 1200 });
  assert.deepEqual(await ask(s, "auth:refresh", { token: good }), { success: true });
  // the account is disabled in the database alone (as `realtime-server user disable` does)
  await db.query("UPDATE users SET is_active = 0 WHERE id = 'dave'");
  const code = async (token) => (await ask(s, "auth:refresh", { token })).code;
  assert.equal(await code("not-a-jwt"), "TOKEN_INVALID");
  assert.equal(await code(hsToken(SECRET, "dave", { ttl: -60 })), "TOKEN_EXPIRED");
  assert.equal(await code(hsToken(SECRET, "frank")), "FORBIDDEN");
  assert.equal(await code(hsToken(SECRET, "dave")), "ACCOUNT_DISABLED");
  await db.query("UPDATE users SET is_active = 1 WHERE id = 'dave'");
  assert.deepEqual(await ask(s, "auth:refresh", { token: good }), { success: true });
  s.disconnect();
});
