// Heartbeat: the server pings every pingInterval; a client that stops answering is dropped
// within pingInterval + pingTimeout; one that answers stays.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, delay } from "./common.mjs";
import { rawWs } from "./ws.mjs";

let srv;
before(async () => { srv = await startServer(["--ping-interval", "300", "--ping-timeout", "200"]); });
after(async () => { await srv.stop(); });

test("server pings; a silent client is dropped within pingInterval + pingTimeout", async () => {
  const silent = rawWs(srv.url);
  silent.autoPong = false;
  const alive = rawWs(srv.url);
  await silent.handshake();
  await alive.handshake();
  const opened = Date.now();
  assert.equal(await silent.next((m) => m === "2", 1000), "2");
  const { at } = await silent.waitClose(2000);
  const took = at - opened;
  assert.ok(took <= 300 + 200 + 250, `dropped after ${took} ms`);
  assert.ok(took >= 450, `dropped too early (${took} ms)`);
  // the answering client survives several intervals
  await delay(1000);
  assert.equal(alive.closed, null);
  alive.send('42["message","still"]');
  assert.equal(await alive.next((m) => typeof m === "string" && m.startsWith('42["message-back"')), '42["message-back","still"]');
  alive.close();
});

test("polling: a client that stops polling is dropped too", async () => {
  const base = `${srv.url}/socket.io/?EIO=4&transport=polling`;
  const { sid } = JSON.parse((await (await fetch(base)).text()).slice(1));
  const url = `${base}&sid=${sid}`;
  await delay(900);
  const res = await fetch(url);
  // the session is gone, as in Node's engine.io (polling-diff.test.mjs)
  assert.equal(res.status, 400);
  assert.deepEqual(await res.json(), { code: 1, message: "Session ID unknown" });
});
