// The server API (docs/http.md, "Server API"), signed calls against the real binary on one
// node: `/internal/emit` to users (Socket.IO, /ws and SSE alike), rooms, a namespace and
// every admin, each targeted socket once and no other; every refusal (reserved and bad
// names, sizes, id counts, namespaces, signatures); a bot's chat message; disconnecting a
// user everywhere; presence, a room's online users and the stats.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { io } from "socket.io-client";
import { startProduct, signedCall, hsToken, once, collect, until, delay } from "./common.mjs";
import { Plain } from "./plain.mjs";
import { openEvents, bearer } from "./sse.mjs";

const SECRET = "srvapi-jwt-secret-padded-to-at-least-32-bytes";
const HOOK = "srvapi-hook-secret-padded-to-at-least-32-bytes";
let srv;

const token = (sub, role = "user") => hsToken(SECRET, sub, { role });
const internal = (method, route, body, opts) => signedCall(srv.url, HOOK, method, route, body, opts);
async function sio(user, nsp = "/", role = "user") {
  const s = io(srv.url + nsp, { forceNew: true, reconnection: false, transports: ["websocket"], auth: { token: token(user, role) } });
  await once(s, "connect", 5000);
  return s;
}
const ask = (s, event, payload) => s.timeout(3000).emitWithAck(event, payload);
const UUID7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

async function emit(body) {
  const res = await internal("POST", "/emit", body);
  return { status: res.status, body: await res.json() };
}

before(async () => {
  srv = await startProduct({ JWT_SECRET: SECRET, WEBHOOK_SECRET: HOOK });
  for (const u of ["amy", "ben", "cal", "dee", "eli", "bot", "alice"]) {
    assert.equal((await internal("PUT", `/users/${u}`, { name: u.toUpperCase(), email: `${u}@example.com`, role: "user", isActive: true })).status, 200);
  }
  assert.equal((await internal("PUT", "/users/boss", { name: "Boss", email: "boss@example.com", role: "admin", isActive: true })).status, 200);
  assert.equal((await internal("PUT", "/users/gone", { name: "Gone", email: "gone@example.com", role: "user", isActive: false })).status, 200);
  for (const r of ["red", "blue", "green"]) {
    assert.equal((await internal("PUT", `/rooms/${r}`, { name: r, isPublic: true })).status, 200);
  }
  assert.equal((await internal("PUT", "/rooms/vault", { name: "Vault", isPublic: false, members: ["amy"] })).status, 200);
});
after(() => srv.stop());

test("emit to users: every socket of each listed user (socket.io, /ws, SSE), nobody else", async () => {
  const amy = await sio("amy");
  const amyPlain = await Plain.connect(srv.url, token("amy"));
  const amyStream = await openEvents(srv.url, { headers: bearer(token("amy")) });
  assert.equal(amyStream.status, 200);
  const amyNotes = await sio("amy", "/notifications");
  const ben = await sio("ben");
  const cal = await sio("cal");
  const got = { amy: collect(amy, "order:shipped"), ben: collect(ben, "order:shipped"), cal: collect(cal, "order:shipped"), notes: collect(amyNotes, "order:shipped") };
  await delay(100); // the stream follows the user's room once it is open

  const data = { orderId: "o-1", items: [1, 2, 3], nested: { ok: true } };
  const res = await emit({ event: "order:shipped", data, to: { users: ["amy", "ben", "nobody"] } });
  assert.equal(res.status, 200);
  assert.equal(res.body.success, true);
  assert.match(res.body.id, UUID7);

  await until(() => got.amy.length === 1 && got.ben.length === 1, 2000, "amy and ben got it");
  assert.deepEqual(got.amy[0][0], data); // (a recovery offset may follow, as for every broadcast)
  assert.deepEqual((await amyPlain.next("order:shipped")).payload, data);
  await until(() => amyStream.events.some((e) => e.event === "order:shipped"), 2000, "amy's stream got it");
  assert.deepEqual(amyStream.events.find((e) => e.event === "order:shipped").data, data);
  await delay(200);
  assert.equal(got.cal.length, 0, "an unlisted user gets nothing");
  assert.equal(got.notes.length, 0, "another namespace gets nothing");
  assert.equal(got.amy.length, 1, "once");
  assert.equal(amyStream.events.filter((e) => e.event === "order:shipped").length, 1);

  // the same to /notifications: its sockets, and the user's stream; not the sockets of /
  const second = await emit({ event: "order:shipped", data: { orderId: "o-2" }, to: { users: ["amy"] }, namespace: "/notifications" });
  assert.equal(second.status, 200);
  await until(() => got.notes.length === 1, 2000, "the /notifications socket got it");
  assert.deepEqual(got.notes[0][0], { orderId: "o-2" });
  await until(() => amyStream.events.filter((e) => e.event === "order:shipped").length === 2, 2000, "the stream got the second");
  await delay(200);
  assert.equal(got.amy.length, 1);
  for (const s of [amy, amyNotes, ben, cal]) s.disconnect();
  amyPlain.close();
  amyStream.close();
});

test("emit to rooms: each socket once even when in two listed rooms; users and rooms together", async () => {
  const dee = await sio("dee");
  const eli = await sio("eli");
  const cal = await sio("cal");
  assert.equal((await ask(dee, "room:join", "red")).success, true);
  assert.equal((await ask(dee, "room:join", "blue")).success, true);
  assert.equal((await ask(eli, "room:join", "blue")).success, true);
  assert.equal((await ask(cal, "room:join", "green")).success, true);
  const got = { dee: collect(dee, "doc:locked"), eli: collect(eli, "doc:locked"), cal: collect(cal, "doc:locked") };
  assert.equal((await emit({ event: "doc:locked", data: "d-9", to: { rooms: ["red", "blue", "unknown-room"] } })).status, 200);
  await until(() => got.dee.length === 1 && got.eli.length === 1, 2000, "both got it");
  await delay(200);
  assert.deepEqual(got.dee.map((a) => a[0]), ["d-9"]);
  assert.deepEqual(got.eli.map((a) => a[0]), ["d-9"]);
  assert.equal(got.cal.length, 0);

  // a user and a room holding the same socket: still once
  assert.equal((await emit({ event: "doc:locked", data: null, to: { users: ["dee"], rooms: ["red"] } })).status, 200);
  await until(() => got.dee.length === 2, 2000, "dee got the second");
  await delay(200);
  assert.equal(got.dee.length, 2);
  assert.equal(got.dee[1][0], null);
  assert.equal(got.eli.length, 1);
  for (const s of [dee, eli, cal]) s.disconnect();
});

test("emit without targets: the whole namespace; /admin reaches every admin socket", async () => {
  const amy = await sio("amy");
  const plain = await Plain.connect(srv.url, token("ben"));
  const boss = await sio("boss", "/admin", "admin");
  const bossChat = await sio("boss");
  const got = { amy: collect(amy, "sale:start"), boss: collect(boss, "sale:start"), bossChat: collect(bossChat, "sale:start") };
  assert.equal((await emit({ event: "sale:start", data: { pct: 20 } })).status, 200);
  await until(() => got.amy.length === 1 && got.bossChat.length === 1, 2000, "every socket of /");
  assert.deepEqual((await plain.next("sale:start")).payload, { pct: 20 });
  assert.equal(got.boss.length, 0);

  // empty lists reach nobody: never the whole namespace
  const none = collect(amy, "sale:none");
  assert.equal((await emit({ event: "sale:none", data: 1, to: { users: [], rooms: [] } })).status, 200);
  assert.equal((await emit({ event: "sale:none", data: 2, to: { users: [] } })).status, 200);

  const admins = collect(boss, "ops:page");
  const chatSide = collect(amy, "ops:page");
  assert.equal((await emit({ event: "ops:page", data: { sev: 2 }, to: {}, namespace: "/admin" })).status, 200);
  await until(() => admins.length === 1, 2000, "the admin socket");
  assert.deepEqual(admins[0][0], { sev: 2 });
  await delay(150);
  assert.equal(chatSide.length, 0);
  assert.equal(none.length, 0);
  for (const s of [amy, boss, bossChat]) s.disconnect();
  plain.close();
});

test("emit refusals: 400 INVALID_PAYLOAD with a reason, 401 unsigned, nothing delivered", async () => {
  const amy = await sio("amy");
  const seen = [];
  amy.onAny((name) => seen.push(name));
  const bad = [
    { event: "chat:message", data: {} },
    { event: "connect", data: {} },
    { event: "disconnect" },
    { event: "auth:ok" },
    { event: "chat:edit" },
    { event: "admin:users" },
    { event: "Order" },
    { event: "9lives" },
    { event: "" },
    { event: "a".repeat(65) },
    { event: "has space" },
    { event: 42 },
    { data: 1 },
    { event: "ok:event", data: "x".repeat(64 * 1024) },
    { event: "ok:event", to: { users: Array.from({ length: 600 }, (_, i) => `u${i}`), rooms: Array.from({ length: 401 }, (_, i) => `r${i}`) } },
    { event: "ok:event", to: { users: Array.from({ length: 1001 }, (_, i) => `u${i}`) } },
    { event: "ok:event", to: { users: "amy" } },
    { event: "ok:event", to: { users: [""] } },
    { event: "ok:event", to: { users: [7] } },
    { event: "ok:event", to: { groups: ["x"] } },
    { event: "ok:event", to: ["amy"] },
    { event: "ok:event", namespace: "/chat" },
    { event: "ok:event", namespace: "/admin", to: { users: ["boss"] } },
    { event: "ok:event", namespace: "/admin", to: { rooms: ["red"] } },
    { event: "ok:event", namespace: "/admin", to: { users: [] } },
    [1, 2],
  ];
  for (const body of bad) {
    const res = await emit(body);
    assert.equal(res.status, 400, JSON.stringify(body).slice(0, 120));
    assert.equal(res.body.success, false);
    assert.equal(res.body.code, "INVALID_PAYLOAD");
    assert.ok(res.body.error.length > 5);
  }
  const garbage = await internal("POST", "/emit", "{not json");
  assert.equal(garbage.status, 400);
  // exactly 64 KiB of data is allowed
  const edge = JSON.stringify("x".repeat(64 * 1024 - 2));
  assert.equal(edge.length, 64 * 1024);
  assert.equal((await emit({ event: "big:one", data: JSON.parse(edge), to: { users: ["nobody"] } })).status, 200);
  // reserved names of the chat are refused, other names in their families are not
  assert.equal((await emit({ event: "chat:custom", data: 1, to: { users: ["nobody"] } })).status, 200);

  const unsigned = await internal("POST", "/emit", { event: "ok:event" }, { sign: false });
  assert.equal(unsigned.status, 401);
  assert.equal((await unsigned.json()).code, "UNAUTHORIZED");
  const wrong = await signedCall(srv.url, "another-secret-padded-to-at-least-32-bytes", "POST", "/emit", { event: "ok:event" });
  assert.equal(wrong.status, 401);
  await delay(200);
  assert.deepEqual(seen, []);
  amy.disconnect();
});

test("a bot's chat message: stored and broadcast as chat:send by that user, retried once", async () => {
  const amy = await sio("amy");
  assert.equal((await ask(amy, "room:join", "vault")).success, true);
  const got = collect(amy, "chat:message");
  const post = (room, body) => internal("POST", `/rooms/${room}/messages`, body);
  // the bot is neither connected nor a member of the private room
  const res = await post("vault", { senderId: "bot", text: "  build 42 is green  ", clientMsgId: "ci-42" });
  assert.equal(res.status, 200);
  const body = await res.json();
  assert.equal(body.success, true);
  assert.equal(typeof body.messageId, "string");
  await until(() => got.length === 1, 2000, "the room got it");
  const [msg] = got[0];
  assert.equal(msg.id, body.messageId);
  assert.equal(msg.text, "build 42 is green");
  assert.equal(msg.sender.id, "bot");
  assert.equal(msg.roomId, "vault");
  // the same clientMsgId again: the same message, not a second one
  const again = await (await post("vault", { senderId: "bot", text: "build 42 is green", clientMsgId: "ci-42" })).json();
  assert.equal(again.messageId, body.messageId);
  await delay(200);
  assert.equal(got.length, 1);
  const history = await ask(amy, "room:sync", { roomId: "vault", afterMessageId: null });
  assert.equal(history.messages.filter((m) => m.sender?.id === "bot" || m.senderId === "bot").length, 1);

  for (const [room, b, status, code] of [
    ["vault", { senderId: "nobody", text: "x" }, 404, "NOT_FOUND"],
    ["vault", { senderId: "gone", text: "x" }, 403, "FORBIDDEN"],
    ["no-such-room", { senderId: "bot", text: "x" }, 404, "NOT_FOUND"],
    ["vault", { senderId: "bot", text: "   " }, 400, "INVALID_MESSAGE"],
    ["vault", { senderId: "bot" }, 400, "INVALID_PAYLOAD"],
    ["vault", { text: "x" }, 400, "INVALID_PAYLOAD"],
    ["vault", "[]", 400, "INVALID_PAYLOAD"],
  ]) {
    const r = await post(room, b);
    assert.equal(r.status, status, JSON.stringify(b));
    assert.equal((await r.json()).code, code, JSON.stringify(b));
  }
  await delay(100);
  assert.equal(got.length, 1);
  amy.disconnect();
});

test("disconnect a user: every socket (io server disconnect), /ws 4403 and the stream end; others stay", async () => {
  const cal = await sio("cal");
  const calNotes = await sio("cal", "/notifications");
  const calPlain = await Plain.connect(srv.url, token("cal"));
  const stream = await openEvents(srv.url, { headers: bearer(token("cal")) });
  const dee = await sio("dee");
  const ends = [once(cal, "disconnect"), once(calNotes, "disconnect")];
  await delay(100);
  const res = await internal("POST", "/users/cal/disconnect");
  assert.equal(res.status, 200);
  assert.deepEqual(await res.json(), { success: true });
  for (const [reason] of await Promise.all(ends)) assert.equal(reason, "io server disconnect");
  assert.equal((await calPlain.closeInfo()).code, 4403);
  await until(() => stream.ended, 2000, "the stream ended");
  assert.equal(dee.connected, true);
  // an unknown user: nothing to end, still a success
  assert.equal((await internal("POST", "/users/nobody/disconnect")).status, 200);
  assert.equal((await internal("POST", "/users/cal/disconnect", undefined, { sign: false })).status, 401);
  dee.disconnect();
});

test("presence, a room's online users and the stats", async () => {
  const amy = await sio("amy");
  const ben = await sio("ben");
  assert.equal((await ask(amy, "room:join", "green")).success, true);
  assert.equal((await ask(ben, "room:join", "green")).success, true);
  const p = await internal("GET", "/presence?userIds=amy,bot,amy");
  assert.equal(p.status, 200);
  const pb = await p.json();
  assert.equal(pb.success, true);
  assert.deepEqual(pb.statuses.map((s) => [s.userId, s.status]), [["amy", "online"], ["bot", "offline"]]);
  assert.equal(pb.statuses[0].lastSeen, null);
  for (const [q, status] of [["?userIds=amy,nobody", 404], ["", 400], ["?userIds=", 400], [`?userIds=${Array.from({ length: 501 }, (_, i) => `u${i}`).join(",")}`, 400]]) {
    const r = await internal("GET", `/presence${q}`);
    assert.equal(r.status, status, q.slice(0, 40));
    assert.equal((await r.json()).success, false);
  }

  const o = await internal("GET", "/rooms/green/online");
  assert.equal(o.status, 200);
  assert.deepEqual((await o.json()).online.sort(), ["amy", "ben"]);
  // a private room: its members who are online (amy is a member of vault, ben is not)
  assert.deepEqual(await (await internal("GET", "/rooms/vault/online")).json(), { success: true, online: ["amy"] });
  assert.equal((await internal("GET", "/rooms/no-such-room/online")).status, 404);

  const st = await internal("GET", "/stats");
  assert.equal(st.status, 200);
  const sb = await st.json();
  assert.equal(sb.success, true);
  assert.equal(sb.nodes.length, 1);
  assert.ok(sb.connections >= 2);
  assert.ok(sb.namespaces["/"] >= 2);
  assert.deepEqual(Object.keys(sb.transports).sort(), ["polling", "sse", "websocket", "ws"]);
  assert.equal((await internal("GET", "/stats", undefined, { sign: false })).status, 401);

  const metrics = await (await fetch(`${srv.url}/metrics`)).text();
  const count = (route) => Number((new RegExp(`rt_server_api_total\\{route="${route}"\\} (\\d+)`).exec(metrics) || [])[1]);
  assert.ok(count("emit") >= 5, "emits counted");
  assert.ok(count("stats") >= 1);
  assert.ok(count("presence") >= 1);
  amy.disconnect();
  ben.disconnect();
});

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
/** The fenced block after `<!-- server-api:NAME -->` in docs/http.md. */
function block(name) {
  const doc = readFileSync(path.join(root, "docs", "http.md"), "utf8");
  const m = new RegExp(`<!-- server-api:${name} -->\\n\`\`\`\\w+\\n([\\s\\S]*?)\`\`\``).exec(doc);
  assert.ok(m, `docs/http.md has the server-api:${name} block`);
  return m[1];
}

test("the shell, Node and Python examples of docs/http.md run as written and reach alice", async () => {
  const alice = await sio("alice");
  const got = collect(alice, "order:shipped");
  const dir = mkdtempSync(path.join(tmpdir(), "rt-server-api-"));
  try {
    const port = String(new URL(srv.url).port);
    for (const [name, file, cmd] of [["shell", "emit.sh", "bash"], ["node", "emit.mjs", "node"], ["python", "emit.py", "python3"]]) {
      const code = block(name).replaceAll("4000", port);
      assert.ok(code.includes(port), `${name}: the example names the server's port`);
      writeFileSync(path.join(dir, file), code);
      const run = spawnSync(cmd, [path.join(dir, file)], { env: { ...process.env, WEBHOOK_SECRET: HOOK }, encoding: "utf8", timeout: 15000 });
      assert.equal(run.status, 0, `${name}: ${run.stderr}`);
      assert.match(run.stdout, /success["']?:\s?[Tt]rue/, `${name} printed ${run.stdout}`);
    }
    await until(() => got.length === 3, 3000, "alice got all three");
    assert.deepEqual(got.map(([d]) => d.orderId), ["o-1001", "o-1002", "o-1003"]);
  } finally {
    rmSync(dir, { recursive: true, force: true });
    alice.disconnect();
  }
});
