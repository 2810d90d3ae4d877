// The server against docs/asyncapi.yaml, the file the client's types are generated from: a
// scripted session drives every event of every namespace on the real server, records every
// payload and ack it sends, and validates each against its AsyncAPI schema (ajv). Every
// message and every ack the file describes must be seen at least once, so a payload the
// server changes, or an event it adds or drops, fails here, and the types cannot drift. A
// plain WebSocket (`/ws`) session is checked against the envelope schemas and the same ones.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import YAML from "yaml";
import Ajv from "ajv";
import { io } from "socket.io-client";
import WebSocket from "ws";
import { startServer, token, until } from "./fixture.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..", "..");
const doc = YAML.parse(readFileSync(path.join(root, "docs", "asyncapi.yaml"), "utf8"));
const ajv = new Ajv({ strict: false, allErrors: true });
ajv.addSchema(doc, "asyncapi");

/** (namespace address, event, direction) → message key, from the operations. */
const catalogue = new Map();
for (const op of Object.values(doc.operations)) {
  const channel = doc.channels[op.channel.$ref.split("/").pop()];
  for (const ref of op.messages) {
    const key = channel.messages[ref.$ref.split("/").pop()].$ref.split("/").pop();
    const msg = doc.components.messages[key];
    catalogue.set(`${channel.address} ${op.action} ${msg.name}`, { key, hasAck: "x-ack" in msg });
  }
}

const seen = new Set();
const failures = [];
function check(nsp, action, event, part, value) {
  const entry = catalogue.get(`${nsp} ${action} ${event}`);
  if (!entry) {
    failures.push(`${nsp} ${event} (${action}) is not in asyncapi.yaml`);
    return;
  }
  const pointer = part === "ack" ? "x-ack" : "payload";
  const validate = ajv.getSchema(`asyncapi#/components/messages/${entry.key}/${pointer}`);
  if (!validate(value)) {
    failures.push(`${nsp} ${event} ${part}: ${ajv.errorsText(validate.errors)} in ${JSON.stringify(value).slice(0, 300)}`);
  }
  seen.add(`${entry.key} ${part}`);
}

let srv;
const sockets = [];
function connect(user, nsp = "/") {
  const s = io(srv.url + nsp, { forceNew: true, reconnection: false, transports: ["websocket"], auth: { token: token(user) } });
  s.onAny((event, ...args) => {
    check(nsp, "receive", event, "payload", args[0]);
    const ack = args.at(-1);
    if (typeof ack === "function") {
      // the server asks for an ack (chat:direct): what the client answers is checked too
      check(nsp, "receive", event, "ack", null);
      ack(null);
    }
  });
  sockets.push(s);
  return new Promise((resolve, reject) => {
    s.once("connect", () => resolve(s));
    s.once("connect_error", reject);
  });
}
/** Emits with an ack; checks what was sent (it must be a documented shape) and the answer. */
async function ask(s, nsp, event, payload, { invalid = false } = {}) {
  // a deliberately bad payload (to see the failure ack) is not a documented shape
  if (!invalid) check(nsp, "send", event, "payload", payload);
  const answer = await s.timeout(5000).emitWithAck(event, payload);
  check(nsp, "send", event, "ack", answer);
  return answer;
}

/** A plain WebSocket session (`/ws`): every frame each way is checked against the envelope
 * schemas, and what it carries against the schemas of `/` (event payloads; acks by the
 * event their id asked for). */
async function plainSession(user) {
  const ws = new WebSocket(`${srv.url.replace(/^http/, "ws")}/ws`, { headers: { authorization: `Bearer ${token(user)}` } });
  const asked = new Map();
  const got = [];
  const envelope = (key, f) => {
    const validate = ajv.getSchema(`asyncapi#/components/messages/${key}/payload`);
    if (!validate(f)) failures.push(`/ws ${key}: ${ajv.errorsText(validate.errors)} in ${JSON.stringify(f).slice(0, 300)}`);
    seen.add(`${key} payload`);
  };
  ws.on("message", (d) => {
    const f = JSON.parse(d.toString());
    got.push(f);
    envelope("plain_server_frame", f);
    if (f.type === "ack") check("/", "send", asked.get(f.id), "ack", f.payload);
    else if (f.type !== "auth:ok" && f.type !== "pong") check("/", "receive", f.type, "payload", f.payload);
  });
  await new Promise((resolve, reject) => (ws.once("open", resolve), ws.once("error", reject)));
  const send = (f) => {
    envelope("plain_client_frame", f);
    if (f.id !== undefined) asked.set(f.id, f.type);
    ws.send(JSON.stringify(f));
  };
  await until(() => got.some((f) => f.type === "auth:ok"), 3000, "auth:ok");
  send({ type: "room:join", payload: "lobby", id: 1 });
  send({ type: "chat:send", payload: { roomId: "lobby", text: "over /ws" }, id: "two" });
  send({ type: "ping" });
  await until(() => got.some((f) => f.id === 1) && got.some((f) => f.id === "two") && got.some((f) => f.type === "pong"), 3000, "the plain answers");
  ws.close(1000);
}

before(async () => {
  srv = await startServer();
  for (const u of ["alice", "bob", "carol"]) await srv.user(u);
  await srv.user("root", "admin");
  await srv.room("lobby");
  await srv.internal("PUT", "/rooms/vip", { name: "VIP", isPublic: false, members: ["alice", "bob"] });
});
after(async () => {
  for (const s of sockets) s.close();
  await srv.stop();
});

test("every payload and ack of a session over all three namespaces matches docs/asyncapi.yaml, and every message of the file is seen", async () => {
  const alice = await connect("alice");
  const bob = await connect("bob");
  const aliceN = await connect("alice", "/notifications");
  const root = await connect("root", "/admin");

  // chat
  await ask(alice, "/", "room:join", "lobby");
  await ask(bob, "/", "room:join", { roomId: "lobby" });
  await ask(bob, "/", "room:join", "no-such-room");
  const sent = await ask(alice, "/", "chat:send", { roomId: "lobby", text: "hello", clientMsgId: "c-1" });
  const re = await ask(bob, "/", "chat:send", { roomId: "lobby", text: "re", replyToId: sent.messageId });
  // the chat completed: edit, react, delete, the room list
  await ask(alice, "/", "chat:edit", { messageId: sent.messageId, text: "hello, edited" });
  await ask(bob, "/", "chat:react", { messageId: sent.messageId, emoji: "👍", on: true });
  const oops = await ask(bob, "/", "chat:send", { roomId: "lobby", text: "oops" });
  await ask(bob, "/", "chat:delete", { messageId: oops.messageId });
  await ask(bob, "/", "chat:edit", { messageId: sent.messageId, text: "not mine" });
  await ask(alice, "/", "room:sync", { roomId: "lobby" });
  await ask(bob, "/", "chat:read", { roomId: "lobby", lastReadMessageId: sent.messageId });
  await ask(bob, "/", "rooms:list", {});
  await ask(bob, "/", "chat:typing-start", { roomId: "lobby" });
  await ask(bob, "/", "chat:typing-stop", { roomId: "lobby" });
  await ask(alice, "/", "room:sync", { roomId: "lobby", afterMessageId: sent.messageId });
  await ask(alice, "/", "user:direct-message", { targetId: "bob", message: "psst" });
  await ask(alice, "/", "product:watch", { productId: "sku-1" });
  await ask(alice, "/", "product:unwatch", { productId: "sku-2" });
  await ask(alice, "/", "auth:refresh", { token: token("alice") });
  await ask(alice, "/", "auth:refresh", { token: "garbage" });
  alice.emit("chat:send", { roomId: "lobby" }); // no ack: the error event
  await ask(bob, "/", "room:join", "vip");
  await ask(bob, "/", "room:leave", "lobby");
  // presence: carol comes online while alice follows her
  await ask(alice, "/", "presence:subscribe", { userIds: ["bob", "carol"] });
  await connect("carol");
  await until(() => seen.has("chat_user_status payload"), 3000, "user:status");
  await ask(alice, "/", "presence:unsubscribe", { userIds: ["carol"] });
  // the same events over the plain WebSocket
  await plainSession("carol");

  // notifications (the watch above) and the /notifications namespace
  await srv.internal("POST", "/notify/stock", { productId: "sku-1", stock: 3 });
  await srv.internal("POST", "/notify/progress", { userId: "alice", jobId: "j", progress: 50, status: "processing" });
  await until(() => seen.has("notifications_notification payload") && seen.has("notifications_job_progress payload"), 3000, "notifications");
  const backlogged = await connect("alice", "/notifications");
  await until(() => seen.has("notifications_notification_backlog payload"), 3000, "the backlog");
  const ids = [];
  backlogged.once("notification", (n) => ids.push(n.id));
  await srv.internal("POST", "/notify/price", { productId: "sku-1", oldPrice: 10, newPrice: 8 });
  await until(() => ids.length === 1, 3000, "a price drop");
  await ask(aliceN, "/notifications", "notification:read", { ids });
  await ask(aliceN, "/notifications", "auth:refresh", { token: token("alice") });
  aliceN.emit("notification:read", { ids: "x" });

  // admin
  await ask(root, "/admin", "admin:stats", null);
  await ask(root, "/admin", "admin:rooms", { limit: 10 });
  await ask(root, "/admin", "admin:rooms", { limit: 0 }, { invalid: true });
  await ask(root, "/admin", "admin:announce", { message: "maintenance at noon" });
  await ask(root, "/admin", "admin:messages", { roomId: "lobby", limit: 5 });
  await ask(root, "/admin", "admin:delete-message", { messageId: re.messageId });
  await ask(root, "/admin", "admin:users", { query: "ALI", limit: 10 });
  await ask(root, "/admin", "admin:room-members", { roomId: "vip" });
  await ask(root, "/admin", "admin:user-update", { userId: "carol", role: "user" });
  await ask(root, "/admin", "broadcast:all", "hello admins");
  await ask(root, "/admin", "auth:refresh", { token: token("root") });
  root.emit("admin:announce", {});
  // a directory change takes bob out of the private room
  await srv.internal("DELETE", "/rooms/vip/members/bob");
  await until(() => seen.has("chat_room_removed payload"), 3000, "room:removed");
  const bobs = await ask(root, "/admin", "admin:sockets", { userId: "bob" });
  await ask(root, "/admin", "admin:sockets", null);
  await ask(root, "/admin", "admin:disconnect-socket", { socketId: bobs.sockets[0].id });
  await ask(root, "/admin", "admin:disconnect-socket", { socketId: "gone-already" });
  await ask(root, "/admin", "admin:disconnect-user", { userId: "bob" });

  await until(() => [...catalogue.values()].every(({ key, hasAck }) => seen.has(`${key} payload`) && (!hasAck || seen.has(`${key} ack`))), 5000, "every message seen")
    .catch(() => {});
  assert.deepEqual(failures, [], "payloads that do not match the file");
  const missing = [...catalogue.values()].flatMap(({ key, hasAck }) => [
    ...(seen.has(`${key} payload`) ? [] : [`${key} payload`]),
    ...(hasAck && !seen.has(`${key} ack`) ? [`${key} ack`] : []),
  ]);
  assert.deepEqual(missing, [], "messages of asyncapi.yaml the session never saw");
});
