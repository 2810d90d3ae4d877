// Rooms: emit to a room except the sender, to several rooms (each member once), to the
// whole namespace, leaving, and a socket addressed by its id.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, connect, once, collect, until, delay } from "./common.mjs";

let srv;
before(async () => { srv = await startServer(); });
after(async () => { await srv.stop(); });

const join = (s, room) => s.timeout(2000).emitWithAck("join", room);

test("to a room reaches its members except the sender; others get nothing", async () => {
  const [a, b, c, outsider] = await Promise.all(
    [0, 1, 2, 3].map((i) => connect(srv.url, "/", { transports: [i % 2 ? "polling" : "websocket"] })),
  );
  try {
    await Promise.all([join(a, "r1"), join(b, "r1"), join(c, "r1")]);
    const got = { a: collect(a, "room-message"), b: collect(b, "room-message"), c: collect(c, "room-message"), o: collect(outsider, "room-message") };
    a.emit("to-room", "r1", "hello", { n: 1 });
    await until(() => got.b.length === 1 && got.c.length === 1, 3000, "room delivery");
    assert.deepEqual(got.b[0], ["hello", { n: 1 }]);
    assert.deepEqual(got.c[0], ["hello", { n: 1 }]);
    // a marker through the same path proves nothing else is in flight
    const marker = once(outsider, "all-message");
    a.emit("to-all", "done");
    await marker;
    await delay(50);
    assert.equal(got.a.length, 0, "sender excluded");
    assert.equal(got.o.length, 0, "non-member gets nothing");

    // after leaving, b no longer gets room messages
    await b.timeout(2000).emitWithAck("leave", "r1");
    c.emit("to-room", "r1", "second");
    await until(() => got.a.length === 1, 3000, "a gets second");
    const marker2 = once(b, "all-message");
    c.emit("to-all", "done");
    await marker2;
    await delay(50);
    assert.equal(got.b.length, 1, "b left the room");
  } finally {
    for (const s of [a, b, c, outsider]) s.disconnect();
  }
});

test("binary payloads fan out to every member", async () => {
  const [a, b, c] = await Promise.all([0, 1, 2].map(() => connect(srv.url, "/", { transports: ["websocket"] })));
  try {
    await Promise.all([join(a, "bin"), join(b, "bin"), join(c, "bin")]);
    const pb = once(b, "room-message");
    const pc = once(c, "room-message");
    a.emit("to-room", "bin", Buffer.from([7, 8, 9]));
    assert.deepEqual(Buffer.from((await pb)[0]), Buffer.from([7, 8, 9]));
    assert.deepEqual(Buffer.from((await pc)[0]), Buffer.from([7, 8, 9]));
  } finally {
    for (const s of [a, b, c]) s.disconnect();
  }
});

test("to the whole namespace, sender included; other namespaces unaffected", async () => {
  const [a, b] = await Promise.all([0, 1].map(() => connect(srv.url, "/", { transports: ["websocket"] })));
  const custom = await connect(srv.url, "/custom", { transports: ["websocket"] });
  const gotCustom = collect(custom, "all-message");
  try {
    const pa = once(a, "all-message");
    const pb = once(b, "all-message");
    b.emit("to-all", 42, "x");
    assert.deepEqual(await pa, [42, "x"]);
    assert.deepEqual(await pb, [42, "x"]);
    await delay(50);
    assert.equal(gotCustom.length, 0);
  } finally {
    for (const s of [a, b, custom]) s.disconnect();
  }
});

test("a socket is reachable through the room named by its id", async () => {
  const [a, b] = await Promise.all([0, 1].map(() => connect(srv.url, "/", { transports: ["websocket"] })));
  try {
    const p = once(b, "room-message");
    a.emit("to-room", b.id, "direct");
    assert.deepEqual(await p, ["direct"]);
  } finally {
    a.disconnect();
    b.disconnect();
  }
});

test("many members: every one gets every broadcast exactly once, in order", async () => {
  const n = 50;
  const sockets = await Promise.all(Array.from({ length: n }, () => connect(srv.url, "/", { transports: ["websocket"] })));
  try {
    await Promise.all(sockets.map((s) => join(s, "big")));
    const got = sockets.map((s) => collect(s, "room-message"));
    const sender = await connect(srv.url, "/", { transports: ["websocket"] });
    for (let i = 0; i < 20; i++) sender.emit("to-room", "big", i);
    await until(() => got.every((g) => g.length >= 20), 5000, "all deliveries");
    await delay(50);
    for (const g of got) assert.deepEqual(g.map((x) => x[0]), Array.from({ length: 20 }, (_, i) => i));
    sender.disconnect();
  } finally {
    for (const s of sockets) s.disconnect();
  }
});
