// Differential: the same raw HTTP long-polling sequences against Node's own engine.io server
// (from npm, run in this process) and against ours (the echo example's bare Engine.IO
// mount), with the same ping settings. Statuses and bodies must match, session ids aside.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import { Server as EngineServer } from "engine.io";
import { startServer, delay } from "./common.mjs";

const PING_INTERVAL = 300;
const PING_TIMEOUT = 200;
let ours, nodeHttp;
const servers = {};

before(async () => {
  ours = await startServer(["--ping-interval", `${PING_INTERVAL}`, "--ping-timeout", `${PING_TIMEOUT}`]);
  nodeHttp = http.createServer();
  const engine = new EngineServer({ pingInterval: PING_INTERVAL, pingTimeout: PING_TIMEOUT });
  engine.attach(nodeHttp);
  engine.on("connection", (s) => s.on("message", (m) => s.send(m)));
  await new Promise((r) => nodeHttp.listen(0, "127.0.0.1", r));
  servers.node = `http://127.0.0.1:${nodeHttp.address().port}`;
  servers.ours = ours.url;
});
after(async () => {
  await ours.stop();
  nodeHttp.closeAllConnections();
  await new Promise((r) => nodeHttp.close(r));
});

async function req(url, method = "GET", body) {
  const res = await fetch(url, { method, body, headers: body ? { "content-type": "text/plain;charset=UTF-8" } : {} });
  return [res.status, (await res.text()).replace(/"sid":"[^"]+"/, '"sid":"…"')];
}

/** A polling handshake: the open packet (sid masked) and the URL of the session. */
async function open(base) {
  const url = `${base}/engine.io/?EIO=4&transport=polling`;
  const res = await fetch(url);
  const text = await res.text();
  const { sid } = JSON.parse(text.slice(1));
  return { first: [res.status, text.replace(sid, "…")], url: `${url}&sid=${sid}` };
}

/** Runs `steps` against both servers; returns what each saw. */
async function both(steps) {
  const [node, mine] = await Promise.all([steps(servers.node), steps(servers.ours)]);
  return { node, mine };
}

const UNKNOWN = [400, '{"code":1,"message":"Session ID unknown"}'];

test("the open packet is Node's", async () => {
  const { node, mine } = await both(async (base) => (await open(base)).first);
  assert.deepEqual(mine, node);
});

test("an invalid POST closes the session: the next GET is refused", async () => {
  const { node, mine } = await both(async (base) => {
    const s = await open(base);
    const post = await req(s.url, "POST", "abc");
    const get = await req(s.url);
    return [post, get];
  });
  assert.deepEqual(node, [[200, "ok"], UNKNOWN], "what Node does");
  assert.deepEqual(mine, node);
});

test("an unanswered ping closes the session even with no GET pending", async () => {
  const { node, mine } = await both(async (base) => {
    const s = await open(base);
    await delay(PING_INTERVAL + PING_TIMEOUT + 400);
    return [await req(s.url)];
  });
  assert.deepEqual(node, [UNKNOWN], "what Node does");
  assert.deepEqual(mine, node);
});

test("a close packet POSTed while a GET waits: the GET gets a noop, the session is gone", async () => {
  const { node, mine } = await both(async (base) => {
    const s = await open(base);
    const waiting = req(s.url);
    await delay(50);
    const post = await req(s.url, "POST", "1");
    const answered = await waiting;
    const after = await req(s.url);
    return [post, answered, after];
  });
  assert.deepEqual(node, [[200, "ok"], [200, "6"], UNKNOWN], "what Node does");
  assert.deepEqual(mine, node);
});

test("messages round-trip the same way", async () => {
  const { node, mine } = await both(async (base) => {
    const s = await open(base);
    const post = await req(s.url, "POST", "4hello\x1e4world");
    const get = await req(s.url);
    return [post, get];
  });
  assert.deepEqual(node, [[200, "ok"], [200, "4hello\x1e4world"]], "what Node does");
  assert.deepEqual(mine, node);
});
