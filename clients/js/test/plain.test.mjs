// PlainClient against the real server binary over Node's `ws`: auth:ok with the user, typed
// calls answered by their acks, room traffic from the REST API, DMs acknowledged by the kit
// (not delivered again), a bad token refused with its close code, the close reported.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import WebSocket from "ws";
import { PlainClient } from "../dist/index.js";
import { startServer, token, until, delay } from "./fixture.mjs";

let srv;
const open = (user, t = token(user)) => PlainClient.connect({ url: srv.url, token: t, WebSocket, timeoutMs: 5000 });

before(async () => {
  srv = await startServer();
  for (const u of ["pam", "quinn"]) await srv.user(u);
  await srv.room("plain");
});
after(async () => {
  await srv.stop();
});

test("connects, calls with acks, hears the room, acknowledges DMs", async () => {
  const pam = await open("pam");
  assert.equal(pam.userId, "pam");
  const heard = [];
  pam.on("chat:message", (m) => heard.push(m));
  const joined = await pam.call("room:join", { roomId: "plain" });
  assert.equal(joined.success, true);
  const sent = await pam.call("chat:send", { roomId: "plain", text: "from the kit" });
  assert.equal(sent.success, true);
  const posted = await srv.post("quinn", "plain", "from REST");
  await until(() => heard.some((m) => m.id === posted) && heard.some((m) => m.id === sent.messageId), 3000, "both messages");
  assert.equal((await pam.call("room:join", { roomId: "nowhere" })).code, "NOT_FOUND");

  const dms = [];
  pam.on("chat:direct", (dm) => dms.push(dm));
  const quinn = await open("quinn");
  assert.equal((await quinn.call("user:direct-message", { targetId: "pam", message: "psst" })).success, true);
  await until(() => dms.length === 1, 3000, "the DM");
  await delay(300);
  pam.close();
  assert.equal((await pam.closed).code, 1000);
  // acknowledged by the kit: a new connection does not get it again
  const again = await open("pam");
  const later = [];
  again.on("chat:direct", (dm) => later.push(dm));
  await delay(800);
  assert.deepEqual(later, []);
  again.close();
  quinn.close();
});

test("a bad token rejects with the close code and reason", async () => {
  await assert.rejects(open("pam", "not-a-token"), (e) => e.code === 4401 && e.reason === "TOKEN_INVALID");
});
