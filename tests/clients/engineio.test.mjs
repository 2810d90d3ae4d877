// The bare Engine.IO server at /engine.io/ with the real engine.io-client.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { Socket } from "engine.io-client";
import { startServer, once } from "./common.mjs";

let srv;
before(async () => { srv = await startServer(); });
after(async () => { await srv.stop(); });

for (const transports of [["websocket"], ["polling"], ["polling", "websocket"]]) {
  test(`engine.io echo over ${transports.join("+")}: text as text, binary as binary`, async () => {
    const s = new Socket(srv.url, { path: "/engine.io/", transports });
    await once(s, "open");
    if (transports.length === 2 && s.transport.name !== "websocket") await once(s, "upgrade");
    s.send("hello €");
    assert.deepEqual(await once(s, "message"), ["hello €"]);
    s.send(Buffer.from([1, 2, 3]));
    const [bin] = await once(s, "message");
    assert.ok(typeof bin !== "string");
    assert.deepEqual(Buffer.from(bin), Buffer.from([1, 2, 3]));
    s.close();
  });
}
