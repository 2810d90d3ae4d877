// Namespace /admin with real clients: only stored admins connect; broadcast:all,
// admin:stats, admin:announce, admin:disconnect-user, admin:users, admin:user-update and
// admin:room-members, admin:sockets and admin:disconnect-socket end to end.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { io } from "socket.io-client";
import { startProduct, signedCall, hsToken, once, collect, until, delay } from "./common.mjs";
import { Plain } from "./plain.mjs";
import { openEvents, bearer } from "./sse.mjs";

const SECRET = "admin-jwt-secret-padded-to-at-least-32-bytes";
const HOOK = "admin-hook-secret-padded-to-at-least-32-bytes";
let srv;

function socket(user, nsp = "/", role = "user") {
  return io(srv.url + nsp, { forceNew: true, reconnection: false, transports: ["websocket"], auth: { token: hsToken(SECRET, user, { role }) } });
}
async function connect(user, nsp = "/", role = "user") {
  const s = socket(user, nsp, role);
  await once(s, "connect");
  return s;
}
const ask = (s, event, payload) => s.timeout(3000).emitWithAck(event, payload);

before(async () => {
  srv = await startProduct({ JWT_SECRET: SECRET, WEBHOOK_SECRET: HOOK });
  for (const [u, role] of [["root", "admin"], ["ops", "admin"], ["bob", "user"], ["carol", "user"]]) {
    assert.equal((await signedCall(srv.url, HOOK, "PUT", `/users/${u}`, { name: u, email: `${u}@example.com`, role, isActive: true })).status, 200);
  }
});
after(async () => { await srv.stop(); });

test("only stored admins connect: a user, even one whose token claims admin, gets FORBIDDEN", async () => {
  for (const [user, role] of [["bob", "user"], ["bob", "admin"]]) {
    const s = socket(user, "/admin", role);
    const [err] = await once(s, "connect_error");
    assert.equal(err.data.code, "FORBIDDEN", `${user} claiming ${role}`);
    assert.equal(typeof err.message, "string");
    s.close();
  }
  const anon = io(srv.url + "/admin", { forceNew: true, reconnection: false, transports: ["websocket"] });
  assert.equal((await once(anon, "connect_error"))[0].data.code, "AUTH_REQUIRED");
  anon.close();
  // a stored admin whose token claims only "user" is an admin
  const root = await connect("root", "/admin", "user");
  root.disconnect();
});

test("broadcast:all relays the argument unchanged to every admin", async () => {
  const root = await connect("root", "/admin", "admin");
  const ops = await connect("ops", "/admin", "admin");
  const bob = await connect("bob");
  const a = collect(root, "admin:announcement");
  const b = collect(ops, "admin:announcement");
  const none = collect(bob, "admin:announcement");
  assert.deepEqual(await ask(root, "broadcast:all", "deploy at 5"), { success: true });
  root.emit("broadcast:all", { level: "warn", text: "disk" });
  root.emit("broadcast:all", null);
  await until(() => a.length === 3 && b.length === 3, 3000, "announcements");
  assert.deepEqual(b.map((x) => x[0]), ["deploy at 5", { level: "warn", text: "disk" }, null]);
  assert.deepEqual(a.map((x) => x[0]), b.map((x) => x[0]));
  await delay(100);
  assert.equal(none.length, 0);
  for (const s of [root, ops, bob]) s.disconnect();
});

test("admin:stats: connections, rooms and sockets per namespace", async () => {
  const root = await connect("root", "/admin", "admin");
  const bob = await connect("bob");
  const carol = await connect("carol");
  const carolN = await connect("carol", "/notifications");
  await delay(100);
  const st = await ask(root, "admin:stats");
  assert.equal(st.success, true);
  assert.equal(st.connections, 4);
  assert.deepEqual(st.namespaces, { "/": 2, "/admin": 1, "/notifications": 1 });
  assert.equal(st.nodes.length, 1);
  const [node] = st.nodes;
  assert.deepEqual(Object.keys(node).sort(), ["connections", "id", "rooms", "uptimeS"]);
  assert.equal(node.connections, 4);
  assert.equal(typeof node.id, "string");
  assert.ok(node.id.length > 0);
  assert.ok(node.rooms >= 3, `rooms ${node.rooms}`);
  assert.ok(Number.isInteger(node.uptimeS) && node.uptimeS >= 0);
  // one Engine.IO connection carrying two namespaces counts once
  const manager = io(srv.url, { forceNew: true, reconnection: false, transports: ["websocket"], auth: { token: hsToken(SECRET, "bob") } });
  await once(manager, "connect");
  // io.socket() connects by itself; calling connect() too would send a second CONNECT,
  // which Node (and we) answer by closing the connection once the first has completed
  const second = manager.io.socket("/notifications", { auth: { token: hsToken(SECRET, "bob") } });
  await once(second, "connect");
  // the registry is updated by message, so the figures catch up a moment after the connect
  let st2;
  await until(async () => (st2 = await ask(root, "admin:stats")).connections === 5, 3000, "five connections");
  assert.deepEqual(st2.namespaces, { "/": 3, "/admin": 1, "/notifications": 2 });
  for (const s of [root, bob, carol, carolN, second, manager]) s.disconnect();
});

test("admin:stats counts events in and out: each client event once, a broadcast once per recipient, acks not at all", async () => {
  const root = await connect("root", "/admin", "admin");
  const bob = await connect("bob");
  const carol = await connect("carol");
  assert.equal((await signedCall(srv.url, HOOK, "PUT", "/rooms/counted", { name: "Counted", isPublic: true })).status, 200);
  for (const s of [bob, carol]) assert.equal((await ask(s, "room:join", "counted")).success, true);
  await delay(200);
  const before = await ask(root, "admin:stats");
  assert.ok(Number.isInteger(before.eventsIn) && Number.isInteger(before.eventsOut));
  const heard = [collect(bob, "chat:message"), collect(carol, "chat:message")];
  for (let i = 0; i < 5; i++) assert.equal((await ask(bob, "chat:send", { roomId: "counted", text: `n${i}` })).success, true);
  await until(() => heard.every((h) => h.length === 5), 3000, "delivered");
  const after = await ask(root, "admin:stats");
  // in: 5 chat:send + the admin:stats that asked; out: 5 messages × 2 recipients
  assert.equal(after.eventsIn - before.eventsIn, 6);
  assert.equal(after.eventsOut - before.eventsOut, 10);
  for (const s of [root, bob, carol]) s.disconnect();
});

test("admin:rooms: chat rooms with members online, most members first, distinct users, limit checked", async () => {
  const root = await connect("root", "/admin", "admin");
  for (const r of ["busy", "quiet", "empty"]) {
    assert.equal((await signedCall(srv.url, HOOK, "PUT", `/rooms/${r}`, { name: r.toUpperCase(), isPublic: r !== "quiet", ...(r === "quiet" ? { members: ["bob"] } : {}) })).status, 200);
  }
  const bob = await connect("bob");
  const bob2 = await connect("bob");
  const carol = await connect("carol");
  for (const [s, r] of [[bob, "busy"], [bob2, "busy"], [carol, "busy"], [bob, "quiet"]]) assert.equal((await ask(s, "room:join", r)).success, true);
  const got = await ask(root, "admin:rooms");
  assert.equal(got.success, true);
  const mine = got.rooms.filter((r) => ["busy", "quiet", "empty"].includes(r.id));
  assert.deepEqual(mine, [
    { id: "busy", name: "BUSY", isPublic: true, memberCount: 2 },
    { id: "quiet", name: "QUIET", isPublic: false, memberCount: 1 },
  ]);
  assert.ok(got.rooms.every((r) => !r.id.startsWith("user:")), "users' own rooms are not chat rooms");
  for (let i = 1; i < got.rooms.length; i++) assert.ok(got.rooms[i - 1].memberCount >= got.rooms[i].memberCount);
  assert.equal((await ask(root, "admin:rooms", { limit: 1 })).rooms.length, 1);
  assert.equal((await ask(root, "admin:rooms", { limit: 5000 })).success, true, "clamped to 1000");
  for (const bad of [{ limit: 0 }, { limit: -1 }, { limit: "5" }, { limit: 1.5 }, "busy"]) {
    assert.equal((await ask(root, "admin:rooms", bad)).code, "INVALID_PAYLOAD", JSON.stringify(bad));
  }
  // the count follows leaves: bob's two tabs leaving drops busy to carol alone
  for (const s of [bob, bob2]) await ask(s, "room:leave", "busy");
  await until(async () => (await ask(root, "admin:rooms")).rooms.find((r) => r.id === "busy")?.memberCount === 1, 3000, "busy down to 1");
  for (const s of [root, bob, bob2, carol]) s.disconnect();
});

test("admin:announce reaches every socket in /, with a timestamp; bad payloads refused", async () => {
  const root = await connect("root", "/admin", "admin");
  const bob = await connect("bob");
  const carol = await connect("carol");
  const carolN = await connect("carol", "/notifications");
  const got = [collect(bob, "system:announcement"), collect(carol, "system:announcement")];
  const notHere = collect(carolN, "system:announcement");
  assert.deepEqual(await ask(root, "admin:announce", { message: " maintenance at 22:00 " }), { success: true });
  await until(() => got.every((g) => g.length === 1), 3000, "announcement");
  const a = got[0][0][0];
  assert.deepEqual(a, { message: "maintenance at 22:00", timestamp: a.timestamp });
  assert.ok(Math.abs(a.timestamp - Date.now()) < 10000);
  for (const [bad, code] of [["text", "INVALID_PAYLOAD"], [{}, "INVALID_PAYLOAD"], [{ message: 3 }, "INVALID_PAYLOAD"], [{ message: "  " }, "INVALID_MESSAGE"]]) {
    assert.equal((await ask(root, "admin:announce", bad)).code, code);
  }
  await delay(100);
  assert.equal(got[0].length, 1);
  assert.equal(notHere.length, 0);
  // a user cannot use admin events in /
  const err = once(bob, "error");
  bob.emit("admin:announce", { message: "x" });
  await assert.rejects(err, /timeout/, "unknown events in / are ignored, not executed");
  for (const s of [root, bob, carol, carolN]) s.disconnect();
});

test("admin:disconnect-user ends that user's sockets in every namespace as a server disconnect", async () => {
  const root = await connect("root", "/admin", "admin");
  const bob1 = await connect("bob");
  const bob2 = await connect("bob");
  const bobN = await connect("bob", "/notifications");
  const carol = await connect("carol");
  const reasons = [bob1, bob2, bobN].map((s) => once(s, "disconnect"));
  const carolGone = collect(carol, "disconnect");
  assert.deepEqual(await ask(root, "admin:disconnect-user", { userId: "bob" }), { success: true });
  for (const r of await Promise.all(reasons)) assert.equal(r[0], "io server disconnect");
  await delay(200);
  assert.equal(carolGone.length, 0);
  assert.equal(carol.connected, true);
  assert.equal((await ask(root, "admin:disconnect-user", {})).code, "INVALID_PAYLOAD");
  assert.deepEqual(await ask(root, "admin:disconnect-user", { userId: "nobody" }), { success: true });
  // the admin's own namespace too: ops disconnects root
  const ops = await connect("ops", "/admin", "admin");
  const rootGone = once(root, "disconnect");
  await ask(ops, "admin:disconnect-user", { userId: "root" });
  assert.equal((await rootGone)[0], "io server disconnect");
  for (const s of [carol, ops]) s.disconnect();
});

test("admin:users: search by id or name in any case, online and last seen, limit clamped", async () => {
  assert.equal((await signedCall(srv.url, HOOK, "PUT", "/users/ali_baba", { name: "Ali Baba", email: "ab@example.com", role: "user", isActive: true })).status, 200);
  const root = await connect("root", "/admin", "admin");
  const carol = await connect("carol");
  const all = await ask(root, "admin:users");
  assert.equal(all.success, true);
  const ids = all.users.map((u) => u.id);
  assert.deepEqual(ids, [...ids].sort(), "by id");
  assert.ok(ids.includes("bob") && ids.includes("root"));
  const found = await ask(root, "admin:users", { query: "BABA" });
  assert.deepEqual(found.users, [{ id: "ali_baba", name: "Ali Baba", email: "ab@example.com", role: "user", isActive: true, online: false, lastSeen: null }]);
  // % and _ are literal characters, not wildcards
  assert.deepEqual((await ask(root, "admin:users", { query: "%" })).users, []);
  assert.deepEqual((await ask(root, "admin:users", { query: "i_b" })).users.map((u) => u.id), ["ali_baba"]);
  await until(async () => (await ask(root, "admin:users", { query: "carol" })).users[0].online === true, 3000, "carol online");
  carol.disconnect();
  assert.equal((await ask(root, "admin:users", { limit: 1 })).users.length, 1);
  assert.equal((await ask(root, "admin:users", { limit: 100000 })).success, true, "a big limit is clamped");
  for (const bad of [5, { query: 7 }, { limit: 0 }, { limit: "3" }, { query: "x".repeat(300) }]) {
    assert.equal((await ask(root, "admin:users", bad)).code, "INVALID_PAYLOAD", JSON.stringify(bad));
  }
  root.disconnect();
});

test("admin:user-update: disable ends the user's sockets, promote and demote apply live", async () => {
  assert.equal((await signedCall(srv.url, HOOK, "PUT", "/users/dora", { name: "Dora", email: "d@example.com", role: "user", isActive: true })).status, 200);
  const root = await connect("root", "/admin", "admin");
  const dora = await connect("dora");
  const gone = once(dora, "disconnect", 5000);
  const off = await ask(root, "admin:user-update", { userId: "dora", isActive: false });
  assert.equal(off.success, true);
  assert.equal(off.user.isActive, false);
  assert.equal((await gone)[0], "io server disconnect");
  const refused = socket("dora");
  assert.equal((await once(refused, "connect_error"))[0].data.code, "ACCOUNT_DISABLED");
  refused.close();
  assert.equal((await ask(root, "admin:user-update", { userId: "dora", isActive: true })).user.isActive, true);
  // promoted: dora may open /admin; demoted: that socket ends
  assert.equal((await ask(root, "admin:user-update", { userId: "dora", role: "admin" })).user.role, "admin");
  const doraAdmin = await connect("dora", "/admin");
  const demoted = once(doraAdmin, "disconnect", 5000);
  assert.equal((await ask(root, "admin:user-update", { userId: "dora", role: "user" })).user.role, "user");
  assert.equal((await demoted)[0], "io server disconnect");
  for (const bad of [{}, { userId: "dora" }, { userId: "dora", role: "root" }, { userId: "dora", isActive: "no" }]) {
    assert.equal((await ask(root, "admin:user-update", bad)).code, "INVALID_PAYLOAD", JSON.stringify(bad));
  }
  assert.equal((await ask(root, "admin:user-update", { userId: "nobody", isActive: false })).code, "NOT_FOUND");
  root.disconnect();
});

test("admin:room-members: a private room's members, a public room's users now, online first", async () => {
  // fay never connects (bob may still count as online within the presence grace period)
  assert.equal((await signedCall(srv.url, HOOK, "PUT", "/users/fay", { name: "Fay", email: "f@example.com", role: "user", isActive: true })).status, 200);
  assert.equal((await signedCall(srv.url, HOOK, "PUT", "/rooms/staff", { name: "Staff", isPublic: false, members: ["fay", "carol"] })).status, 200);
  assert.equal((await signedCall(srv.url, HOOK, "PUT", "/rooms/hall", { name: "Hall", isPublic: true })).status, 200);
  const root = await connect("root", "/admin", "admin");
  const carol = await connect("carol");
  await ask(carol, "room:join", "hall");
  await until(async () => (await ask(root, "admin:room-members", { roomId: "staff" })).members[0].online, 3000, "carol online");
  assert.deepEqual(await ask(root, "admin:room-members", { roomId: "staff" }), {
    success: true, roomId: "staff", members: [{ userId: "carol", online: true }, { userId: "fay", online: false }],
  });
  assert.deepEqual((await ask(root, "admin:room-members", "hall")).members, [{ userId: "carol", online: true }]);
  assert.equal((await ask(root, "admin:room-members", { roomId: "nowhere" })).code, "NOT_FOUND");
  assert.equal((await ask(root, "admin:room-members", 5)).code, "INVALID_PAYLOAD");
  carol.disconnect();
  root.disconnect();
});

test("admin:sockets lists every transport with its user, rooms and address; admin:disconnect-socket ends exactly one", async () => {
  assert.equal((await signedCall(srv.url, HOOK, "PUT", "/users/gus", { name: "Gus", email: "g@example.com", role: "user", isActive: true })).status, 200);
  assert.equal((await signedCall(srv.url, HOOK, "PUT", "/rooms/dock", { name: "Dock", isPublic: true })).status, 200);
  const token = hsToken(SECRET, "gus");
  const root = await connect("root", "/admin", "admin");
  const ws = await connect("gus");
  assert.equal((await ask(ws, "room:join", "dock")).success, true);
  const polling = io(srv.url + "/notifications", { forceNew: true, reconnection: false, transports: ["polling"], auth: { token } });
  await once(polling, "connect");
  const plain = await Plain.connect(srv.url, token);
  const sse = await openEvents(srv.url, { headers: bearer(token) });
  assert.equal(sse.status, 200);
  const bob = await connect("bob");

  let mine;
  await until(async () => (mine = (await ask(root, "admin:sockets", { userId: "gus" })).sockets).length === 4, 3000, "gus's four connections");
  assert.deepEqual(mine.map((s) => s.transport).sort(), ["polling", "sse", "websocket", "ws"]);
  const byTransport = Object.fromEntries(mine.map((s) => [s.transport, s]));
  assert.equal(byTransport.websocket.id, ws.id);
  assert.equal(byTransport.websocket.namespace, "/");
  assert.deepEqual(byTransport.websocket.rooms, ["dock"]);
  assert.equal(byTransport.polling.id, polling.id);
  assert.equal(byTransport.polling.namespace, "/notifications");
  assert.equal(byTransport.ws.namespace, "/");
  for (const s of mine) {
    assert.equal(s.userId, "gus");
    assert.equal(s.address, "127.0.0.1");
    assert.equal(typeof s.node, "string");
    assert.ok(s.node.length > 0);
    assert.ok(Math.abs(Date.now() - s.connectedAt) < 60000, "connectedAt is a time in ms");
  }
  assert.deepEqual(mine.map((s) => s.connectedAt), [...mine.map((s) => s.connectedAt)].sort((a, b) => a - b), "oldest first");

  // by room: gus's socket in dock, not bob's
  const inDock = (await ask(root, "admin:sockets", { roomId: "dock" })).sockets;
  assert.deepEqual(inDock.map((s) => s.id), [ws.id]);
  assert.deepEqual((await ask(root, "admin:sockets", { userId: "bob", roomId: "dock" })).sockets, []);
  // everything: bob and root too; the limit holds
  const all = (await ask(root, "admin:sockets")).sockets;
  for (const id of [ws.id, bob.id, root.id]) assert.ok(all.some((s) => s.id === id), id);
  assert.equal((await ask(root, "admin:sockets", { limit: 2 })).sockets.length, 2);
  assert.equal((await ask(root, "admin:sockets", { limit: 1000000 })).success, true, "a big limit is clamped");
  for (const bad of [5, { limit: 0 }, { limit: "3" }, { userId: 7 }, { roomId: "" }]) {
    assert.equal((await ask(root, "admin:sockets", bad)).code, "INVALID_PAYLOAD", JSON.stringify(bad));
  }

  // one socket ends, as a server disconnect; the others stay
  const gone = once(ws, "disconnect", 5000);
  assert.deepEqual(await ask(root, "admin:disconnect-socket", { socketId: ws.id }), { success: true, socketId: byTransport.websocket.id });
  assert.equal((await gone)[0], "io server disconnect");
  assert.equal((await ask(root, "admin:disconnect-socket", { socketId: byTransport.websocket.id })).code, "NOT_FOUND");
  assert.equal(polling.connected, true);
  assert.equal(bob.connected, true);
  // the plain one closes 4403, the event stream ends
  assert.equal((await ask(root, "admin:disconnect-socket", { socketId: byTransport.ws.id })).success, true);
  assert.equal((await plain.closeInfo()).code, 4403);
  assert.equal((await ask(root, "admin:disconnect-socket", { socketId: byTransport.sse.id })).success, true);
  await until(() => sse.ended, 3000, "the event stream ends");
  const left = (await ask(root, "admin:sockets", { userId: "gus" })).sockets;
  assert.deepEqual(left.map((s) => s.transport), ["polling"]);
  for (const bad of [undefined, 5, {}, { socketId: 5 }]) {
    assert.equal((await ask(root, "admin:disconnect-socket", bad)).code, "INVALID_PAYLOAD", JSON.stringify(bad));
  }
  assert.equal((await ask(root, "admin:disconnect-socket", { socketId: "nobody-has-this" })).code, "NOT_FOUND");
  for (const s of [polling, bob, root]) s.disconnect();
});
