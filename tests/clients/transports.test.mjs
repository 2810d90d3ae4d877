// Events, binary and acks over each transport with the real socket.io-client.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { io } from "socket.io-client";
import { startServer, connect, once } from "./common.mjs";

let srv;
before(async () => { srv = await startServer(); });
after(async () => { await srv.stop(); });

const variants = {
  "websocket only": { transports: ["websocket"] },
  "polling only": { transports: ["polling"] },
  "polling with upgrade": { transports: ["polling", "websocket"] },
};

for (const [name, opts] of Object.entries(variants)) {
  test(`${name}: connect, JSON and binary events, acks`, async () => {
    const s = io(srv.url, { forceNew: true, reconnection: false, ...opts, auth: { token: "abc" } });
    const greeted = once(s, "auth");
    await once(s, "connect");
    try {
      // the server greets with the CONNECT auth payload
      assert.deepEqual(await greeted, [{ token: "abc" }]);
      if (name === "polling with upgrade") {
        if (s.io.engine.transport.name !== "websocket") await once(s.io.engine, "upgrade");
        assert.equal(s.io.engine.transport.name, "websocket");
      } else {
        assert.equal(s.io.engine.transport.name, opts.transports[0]);
      }

      // JSON, key order and integers preserved
      const obj = { z: 1, a: [1, 2.5, "x"], m: { k: null, b: true }, big: 9007199254740991 };
      s.emit("message", obj, "two", 3);
      const back = await once(s, "message-back");
      assert.deepEqual(back, [obj, "two", 3]);
      assert.deepEqual(Object.keys(back[0]), ["z", "a", "m", "big"]);

      // binary (Buffer) arguments, mixed with JSON
      const bin = Buffer.from([0, 1, 2, 255]);
      s.emit("message", bin, { nested: Buffer.from("hi") });
      const [b1, b2] = await once(s, "message-back");
      assert.deepEqual(Buffer.from(b1), bin);
      assert.deepEqual(Buffer.from(b2.nested), Buffer.from("hi"));

      // client -> server ack
      const acked = await s.timeout(2000).emitWithAck("message-with-ack", 1, "2", { three: 3 });
      assert.deepEqual(acked, 1); // emitWithAck resolves with the first argument
      const all = await new Promise((res) => s.emit("message-with-ack", 1, "2", Buffer.from([9]), (...a) => res(a)));
      assert.equal(all[0], 1);
      assert.equal(all[1], "2");
      assert.deepEqual(Buffer.from(all[2]), Buffer.from([9]));

      // server -> client ack
      s.once("question", (q, cb) => cb("answer", q));
      s.emit("ask", "question", 2000);
      const [res] = await once(s, "ask-result");
      assert.deepEqual(res, { ok: true, args: ["answer", "please answer"] });
    } finally {
      s.disconnect();
    }
  });
}

test("server -> client ack times out when the client never answers", async () => {
  const s = await connect(srv.url, "/", { transports: ["websocket"] });
  try {
    s.on("silent", () => {}); // takes the ack callback but never calls it
    s.emit("ask", "silent", 200);
    const [res] = await once(s, "ask-result", 3000);
    assert.deepEqual(res, { ok: false, error: "operation has timed out" });
  } finally {
    s.disconnect();
  }
});

test("client -> server ack times out on the client when the server has no handler", async () => {
  const s = await connect(srv.url, "/", { transports: ["websocket"] });
  try {
    await assert.rejects(s.timeout(300).emitWithAck("nobody-listens", 1), /operation has timed out/);
  } finally {
    s.disconnect();
  }
});

test("a second namespace on the same connection; no auth gives {}", async () => {
  const a = io(srv.url, { forceNew: true, reconnection: false, transports: ["websocket"] });
  const aAuth = once(a, "auth");
  const c = a.io.socket("/custom", { auth: { k: "v" } });
  const cAuth = once(c, "auth");
  c.connect();
  try {
    assert.deepEqual(await aAuth, [{}]);
    assert.deepEqual(await cAuth, [{ k: "v" }]);
    assert.ok(c.id && c.id !== a.id);
  } finally {
    a.disconnect();
    c.disconnect();
  }
});

test("server-side disconnect: the client sees 'io server disconnect'", async () => {
  const s = await connect(srv.url, "/", { transports: ["websocket"] });
  const gone = once(s, "disconnect");
  s.emit("kick");
  const [reason] = await gone;
  assert.equal(reason, "io server disconnect");
});
