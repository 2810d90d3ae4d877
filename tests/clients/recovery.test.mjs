// Connection state recovery (Socket.IO 4.6+): after a forced transport close the client
// reconnects with the same id and rooms, and gets what was emitted while it was away.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { io } from "socket.io-client";
import { startServer, connect, once, collect, until } from "./common.mjs";

for (const transport of ["websocket", "polling"]) {
  test(`${transport}: recovery after a forced transport close`, async () => {
    const srv = await startServer(["--recovery", "true", "--ping-interval", "1000", "--ping-timeout", "1000"]);
    let s;
    try {
      s = io(srv.url, { forceNew: true, transports: [transport], reconnectionDelay: 50, reconnectionDelayMax: 100 });
      await once(s, "connect");
      assert.equal(s.recovered, false);
      await s.timeout(2000).emitWithAck("join", "lobby");
      const other = await connect(srv.url, "/", { transports: ["websocket"] });
      const room = collect(s, "room-message");
      const all = collect(s, "all-message");
      // one broadcast first, so the client holds an offset
      other.emit("to-all", "before");
      await until(() => all.length === 1, 3000, "first broadcast");
      const id = s.id;

      // cut the transport; emit while the client is away
      const gone = once(s, "disconnect");
      s.io.engine.close();
      await gone;
      other.emit("to-room", "lobby", "missed-1");
      other.emit("to-all", "missed-2");
      await once(s, "connect", 5000);
      assert.equal(s.recovered, true);
      assert.equal(s.id, id);
      await until(() => room.length === 1 && all.length === 2, 3000, "missed packets");
      assert.equal(room[0][0], "missed-1");
      assert.equal(all[1][0], "missed-2");
      // offsets are appended as the last argument, as Node does
      assert.equal(typeof room[0][1], "string");

      // the rooms came back: a new room message arrives live
      other.emit("to-room", "lobby", "live");
      await until(() => room.length === 2, 3000, "live room message");
      assert.equal(room[1][0], "live");
      other.disconnect();
    } finally {
      s?.disconnect();
      await srv.stop();
    }
  });
}

test("without recovery the CONNECT answer carries only sid", async () => {
  const srv = await startServer(["--recovery", "false"]);
  try {
    const res = await fetch(`${srv.url}/socket.io/?EIO=4&transport=polling`);
    const { sid } = JSON.parse((await res.text()).slice(1));
    const url = `${srv.url}/socket.io/?EIO=4&transport=polling&sid=${sid}`;
    await fetch(url, { method: "POST", body: "40" });
    const body = await (await fetch(url)).text();
    const connect = body.split("\x1e")[0];
    assert.deepEqual(Object.keys(JSON.parse(connect.slice(2))), ["sid"]);
  } finally {
    await srv.stop();
  }
});

test("a client disconnecting on purpose is not recovered", async () => {
  const srv = await startServer(["--recovery", "true"]);
  try {
    const s = io(srv.url, { forceNew: true, transports: ["websocket"] });
    await once(s, "connect");
    const other = await connect(srv.url, "/", { transports: ["websocket"] });
    const p = once(s, "all-message");
    other.emit("to-all", "x");
    await p;
    const id = s.id;
    s.disconnect();
    s.connect();
    await once(s, "connect");
    assert.equal(s.recovered, false);
    assert.notEqual(s.id, id);
    s.disconnect();
    other.disconnect();
  } finally {
    await srv.stop();
  }
});
