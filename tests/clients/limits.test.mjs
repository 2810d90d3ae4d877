// Attacks on the per-connection byte budget (DESIGN 10), from raw sockets: the server's
// memory stays bounded, the attacker is closed as a slow consumer, others are unaffected.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { startServer, connect, delay, until } from "./common.mjs";
import { rawWs } from "./ws.mjs";

let srv;
before(async () => { srv = await startServer(["--ping-interval", "20000", "--ping-timeout", "20000"]); });
after(async () => { await srv.stop(); });

const rssMb = (pid) => Number(readFileSync(`/proc/${pid}/status`, "utf8").match(/VmRSS:\s+(\d+)/)[1]) / 1024;

test("a WebSocket ping flood from a client that never reads: bounded memory, closed as a slow consumer", async () => {
  const bystander = await connect(srv.url, "/", { transports: ["websocket"] });
  const attacker = rawWs(srv.url);
  await attacker.opened;
  await attacker.next((m) => typeof m === "string" && m.startsWith("0{"));
  attacker.ws._socket.pause(); // never reads again: every pong stays with the server
  const before = rssMb(srv.proc.pid);
  let peak = before;
  const sampler = setInterval(() => { peak = Math.max(peak, rssMb(srv.proc.pid)); }, 50);
  // 8,000 masked WebSocket pings of 125 bytes (the largest control frame), written raw
  const one = Buffer.concat([Buffer.from([0x89, 0x80 | 125, 0, 0, 0, 0]), Buffer.alloc(125, 7)]);
  const chunk = Buffer.concat(Array(8000).fill(one));
  const sock = attacker.ws._socket;
  const end = Date.now() + 10_000;
  let sent = 0;
  let gone = false;
  sock.once("close", () => (gone = true));
  while (Date.now() < end && !gone) {
    if (sock.writableLength < 4 << 20) {
      sock.write(chunk);
      sent += 8000;
    }
    await delay(2);
  }
  clearInterval(sampler);
  peak = Math.max(peak, rssMb(srv.proc.pid));
  assert.ok(sent * 127 > 16 << 20, `the flood asked for more than twice the budget in pongs (${sent} pings)`);
  assert.ok(peak - before <= 64, `server RSS grew ${(peak - before).toFixed(1)} MiB under the flood`);
  attacker.ws._socket.resume();
  await attacker.waitClose(10_000);
  assert.match(srv.output(), /closing slow consumer/);
  // everyone else is served as before
  const echoed = new Promise((r) => bystander.once("message-back", r));
  bystander.emit("message", "still here");
  assert.equal(await echoed, "still here");
  bystander.disconnect();
});

test("a polling session that never polls while its room is flooded: dropped at the byte budget", async () => {
  const base = `${srv.url}/socket.io/?EIO=4&transport=polling`;
  const { sid } = JSON.parse((await (await fetch(base)).text()).slice(1));
  const url = `${base}&sid=${sid}`;
  const post = async (body) => assert.equal(await (await fetch(url, { method: "POST", body })).text(), "ok");
  await post("40");
  await post('42["join","pflood"]');
  const flooder = await connect(srv.url, "/", { transports: ["websocket"] });
  const before = rssMb(srv.proc.pid);
  const chunk = "x".repeat(16 * 1024);
  for (let i = 0; i < 1000; i++) { // ~16 MB for a budget of 8 MiB
    flooder.emit("to-room", "pflood", chunk);
    if (i % 20 === 19) await delay(2);
  }
  await until(() => srv.output().includes(`closing slow consumer sid=${sid}`), 10000, "the slow consumer to be closed");
  const res = await fetch(url);
  assert.equal(res.status, 400, "the session is gone");
  assert.ok(rssMb(srv.proc.pid) - before <= 64, "bounded memory");
  flooder.disconnect();
});

test("binary attachments: none before a namespace is joined, at most 10 per packet and 1 MB in all", async () => {
  const bystander = await connect(srv.url, "/", { transports: ["websocket"] });
  const ph = (n) => Array.from({ length: n }, (_, i) => ({ _placeholder: true, num: i }));
  const binaryEvent = (n) => `45${n}-${JSON.stringify(["message", ...ph(n)])}`;

  // before any namespace: the first binary packet ends the connection
  const early = rawWs(srv.url);
  await early.opened;
  await early.next((m) => typeof m === "string" && m.startsWith("0{"));
  early.send(binaryEvent(1));
  await early.waitClose(3000);

  // 11 attachments announced: closed
  const many = rawWs(srv.url);
  await many.handshake();
  many.send(binaryEvent(11));
  await many.waitClose(3000);

  // 2 attachments of 600 kB: 1.2 MB in all, over the 1 MB payload limit: closed
  const big = rawWs(srv.url);
  await big.handshake();
  big.send(binaryEvent(2));
  big.send(Buffer.alloc(600_000, 1));
  big.send(Buffer.alloc(600_000, 2));
  await big.waitClose(3000);

  // within the limits: echoed
  const fine = rawWs(srv.url);
  await fine.handshake();
  fine.send(binaryEvent(2));
  fine.send(Buffer.alloc(400_000, 1));
  fine.send(Buffer.alloc(400_000, 2));
  const back = await fine.next((m) => typeof m === "string" && m.startsWith('452-["message-back"'));
  assert.ok(back);
  fine.ws.close();

  const echoed = new Promise((r) => bystander.once("message-back", r));
  bystander.emit("message", "still here");
  assert.equal(await echoed, "still here");
  bystander.disconnect();
});

test("connections that never join a namespace are capped: handshakes get 503 until one joins or goes", async () => {
  const small = await startServer(["--max-pending-sessions", "3", "--connect-timeout", "60000"]);
  try {
    const base = `${small.url}/socket.io/?EIO=4&transport=polling`;
    const open = async () => {
      const res = await fetch(base);
      const text = await res.text();
      return { status: res.status, text, sid: res.status === 200 ? JSON.parse(text.slice(1)).sid : null };
    };
    const held = [await open(), await open(), await open()];
    assert.deepEqual(held.map((h) => h.status), [200, 200, 200]);
    const refused = await open();
    assert.equal(refused.status, 503);
    assert.deepEqual(JSON.parse(refused.text), { code: 503, message: "Server busy: too many pending sessions" });
    const ws = rawWs(small.url);
    await assert.rejects(ws.opened, "a new WebSocket session is refused too");
    // one joins a namespace: a place frees up
    const url = `${base}&sid=${held[0].sid}`;
    assert.equal(await (await fetch(url, { method: "POST", body: "40" })).text(), "ok");
    assert.ok((await (await fetch(url)).text()).startsWith("40"));
    assert.equal((await open()).status, 200);
    assert.equal((await open()).status, 503);
    // one goes away: another place
    assert.equal(await (await fetch(`${base}&sid=${held[1].sid}`, { method: "POST", body: "1" })).text(), "ok");
    assert.equal((await open()).status, 200);
  } finally {
    await small.stop();
  }
});
