// Namespace connect: middleware refusal with data, unknown namespace, connect timeout.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { io } from "socket.io-client";
import { startServer, once } from "./common.mjs";
import { rawWs } from "./ws.mjs";

let srv;
before(async () => { srv = await startServer(["--connect-timeout", "1000"]); });
after(async () => { await srv.stop(); });

for (const transport of ["websocket", "polling"]) {
  test(`${transport}: middleware refusal reaches the client as connect_error with data`, async () => {
    const s = io(srv.url + "/refused", { forceNew: true, reconnection: false, transports: [transport] });
    const [err] = await once(s, "connect_error");
    assert.equal(err.message, "not allowed");
    assert.deepEqual(err.data, { code: "FORBIDDEN" });
    assert.equal(s.connected, false);
    s.disconnect();
  });

  test(`${transport}: unknown namespace → connect_error "Invalid namespace"`, async () => {
    const s = io(srv.url + "/does-not-exist", { forceNew: true, reconnection: false, transports: [transport] });
    const [err] = await once(s, "connect_error");
    assert.equal(err.message, "Invalid namespace");
    s.disconnect();
  });
}

test("a connection that joins no namespace is closed after connectTimeout", async () => {
  const c = rawWs(srv.url);
  await c.opened;
  const started = Date.now();
  await c.next((m) => typeof m === "string" && m.startsWith("0{"));
  const { at } = await c.waitClose(3000);
  const waited = at - started;
  assert.ok(waited >= 900 && waited < 2500, `closed after ${waited} ms`);
});

test("a refused namespace does not stop other namespaces on the same connection", async () => {
  const main = io(srv.url, { forceNew: true, reconnection: false, transports: ["websocket"] });
  await once(main, "connect");
  const refused = main.io.socket("/refused");
  refused.connect();
  await once(refused, "connect_error");
  const back = once(main, "message-back");
  main.emit("message", 1);
  assert.deepEqual(await back, [1]);
  main.disconnect();
});

test("a repeated CONNECT while the first is being checked keeps the connection", async () => {
  // socket.io-client does this for `io.socket(nsp)` followed by `connect()`
  const c = rawWs(srv.url);
  await c.handshake();
  c.send("40/refused,");
  c.send("40/refused,");
  const m = await c.next((x) => typeof x === "string" && x.startsWith("44/refused,"));
  assert.deepEqual(JSON.parse(m.slice("44/refused,".length)), { message: "not allowed", data: { code: "FORBIDDEN" } });
  c.send('42["message","still open"]');
  assert.equal(await c.next((x) => typeof x === "string" && x.startsWith('42["message-back"')), '42["message-back","still open"]');
  assert.equal(c.closed, null);
  c.close();
});
