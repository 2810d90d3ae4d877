// Bad input: each case gets Node's answer, the offending connection alone is closed, and a
// bystander on the same server keeps working. Nothing panics (the server stays up).
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer, connect, once } from "./common.mjs";
import { rawWs } from "./ws.mjs";
import http from "node:http";

/** A GET on its own connection (fetch may queue a second request behind a pending one). */
function getOwnConnection(url) {
  return new Promise((resolve, reject) => {
    http.get(url, { agent: false }, (res) => {
      let body = "";
      res.on("data", (d) => (body += d));
      res.on("end", () => resolve({ status: res.statusCode, body }));
    }).on("error", reject);
  });
}

let srv;
let bystander;
before(async () => {
  srv = await startServer(["--max-payload", "1000", "--ping-interval", "2000", "--ping-timeout", "2000"]);
  bystander = await connect(srv.url, "/", { transports: ["websocket"] });
});
after(async () => {
  bystander.disconnect();
  await srv.stop();
});

async function bystanderWorks() {
  const back = once(bystander, "message-back");
  bystander.emit("message", "still here");
  assert.deepEqual(await back, ["still here"]);
  assert.ok(srv.alive(), "server process is still running");
}

const closingCases = {
  "garbage engine packet": ["garbage"],
  "empty engine packet": [""],
  "invalid JSON": ['42["message"'],
  "unknown socket.io packet type": ["47"],
  "reserved event name": ['42["connect"]'],
  "event payload not an array": ['42{"a":1}'],
  "second CONNECT for the same namespace": ["40"],
  "unexpected binary message": [Buffer.from([1, 2, 3])],
  "placeholder beyond the attachments": ['451-["message",{"_placeholder":true,"num":5}]', Buffer.from([1])],
  "attachment count absurd": ['45999999999-["message"]'],
  "attachment count not a number": ['45x-["message"]'],
  "client-initiated ping (v4 forbids it)": ["2"],
  "event after leaving the namespace": ["41", '42["message",1]'],
};

for (const [name, frames] of Object.entries(closingCases)) {
  test(`websocket: ${name} closes that connection only`, async () => {
    const c = rawWs(srv.url);
    await c.handshake();
    for (const f of frames) c.send(f);
    const { code } = await c.waitClose();
    assert.equal(code, 1005); // a close frame without status, as Node sends
    await bystanderWorks();
  });
}

test("websocket: oversize message is closed with 1009", async () => {
  const c = rawWs(srv.url);
  await c.handshake();
  c.send('42["message","' + "x".repeat(2000) + '"]');
  const { code } = await c.waitClose();
  assert.equal(code, 1009);
  await bystanderWorks();
});

test("websocket: unknown namespace answers CONNECT_ERROR and keeps the connection", async () => {
  const c = rawWs(srv.url);
  await c.handshake();
  c.send("40/nope,");
  const m = await c.next((x) => typeof x === "string" && x.startsWith("44"));
  assert.equal(m, '44/nope,{"message":"Invalid namespace"}');
  c.send('42["message","ok"]');
  assert.equal(await c.next((x) => typeof x === "string" && x.startsWith("42[\"message-back\"")), '42["message-back","ok"]');
  c.close();
});

test("websocket: unknown sid on upgrade", async () => {
  const c = rawWs(srv.url.replace(/$/, ""), "/socket.io/");
  await c.opened;
  c.close();
  const res = await fetch(`${srv.url}/socket.io/?EIO=4&transport=websocket&sid=doesnotexist`, {
    headers: { Connection: "Upgrade", Upgrade: "websocket", "Sec-WebSocket-Version": "13", "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==" },
  }).catch((e) => e);
  // undici refuses to send Upgrade itself; either way the server must not crash
  if (!(res instanceof Error)) {
    assert.equal(res.status, 400);
    assert.deepEqual(await res.json(), { code: 1, message: "Session ID unknown" });
  }
  await bystanderWorks();
});

async function pollingSession() {
  const base = `${srv.url}/socket.io/?EIO=4&transport=polling`;
  const open = await (await fetch(base)).text();
  const { sid } = JSON.parse(open.slice(1));
  const url = `${base}&sid=${sid}`;
  const post = await fetch(url, { method: "POST", body: "40" });
  assert.equal(await post.text(), "ok");
  let got = await (await fetch(url)).text();
  assert.match(got, /^40\{"sid":/);
  // the echo server greets with `auth`, possibly in the same payload
  while (!got.includes('"auth"')) got += await (await fetch(url)).text();
  return url;
}

test("polling: two concurrent GETs → second gets 400, first gets the close packet", async () => {
  const url = await pollingSession();
  const pending = getOwnConnection(url);
  await new Promise((r) => setTimeout(r, 100));
  const second = await getOwnConnection(url);
  assert.equal(second.status, 400);
  assert.deepEqual(await pending, { status: 200, body: "1" });
  // the session is gone
  const after = await fetch(url);
  assert.equal(after.status, 400);
  assert.deepEqual(await after.json(), { code: 1, message: "Session ID unknown" });
  await bystanderWorks();
});

test("polling: oversize POST → 413 and the session keeps working", async () => {
  const url = await pollingSession();
  const big = await fetch(url, { method: "POST", body: "4" + "x".repeat(2000) });
  assert.equal(big.status, 413);
  const ok = await fetch(url, { method: "POST", body: '42["message","fine"]' });
  assert.equal(await ok.text(), "ok");
  assert.equal(await (await fetch(url)).text(), '42["message-back","fine"]');
  await bystanderWorks();
});

test("polling: garbage payload closes the session (parse error)", async () => {
  const url = await pollingSession();
  const res = await fetch(url, { method: "POST", body: "garbage" });
  assert.equal(await res.text(), "ok");
  // the session is gone at once, as in Node's engine.io (polling-diff.test.mjs)
  const next = await fetch(url);
  assert.equal(next.status, 400);
  assert.deepEqual(await next.json(), { code: 1, message: "Session ID unknown" });
  await bystanderWorks();
});

test("polling: bad base64 binary and invalid JSON close the session", async () => {
  const unknown = { status: 400, body: '{"code":1,"message":"Session ID unknown"}' };
  const get = async (url) => {
    const res = await fetch(url);
    return { status: res.status, body: await res.text() };
  };
  // An Engine.IO parse error drops the session at once, as Node's engine.io does.
  let url = await pollingSession();
  assert.equal(await (await fetch(url, { method: "POST", body: "b!!!notbase64" })).text(), "ok");
  assert.deepEqual(await get(url), unknown);
  // A bad Socket.IO packet closes the connection in order (Node's socket.io calls
  // conn.close()): the next GET gets the close packet, then the session is gone.
  url = await pollingSession();
  assert.equal(await (await fetch(url, { method: "POST", body: '42["message"' })).text(), "ok");
  const closing = await get(url);
  assert.equal(closing.status, 200);
  assert.ok(closing.body.endsWith("1"), closing.body);
  assert.deepEqual(await get(url), unknown);
  await bystanderWorks();
});

test("EIO=3 clients are refused clearly", async () => {
  const res = await fetch(`${srv.url}/socket.io/?EIO=3&transport=polling`);
  assert.equal(res.status, 400);
  assert.deepEqual(await res.json(), { code: 5, message: "Unsupported protocol version" });
  await bystanderWorks();
});
