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
