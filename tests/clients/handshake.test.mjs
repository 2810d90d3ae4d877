// The Engine.IO handshake and request checks, over raw HTTP, compared with Node's answers.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { startServer } from "./common.mjs";

let srv;
before(async () => { srv = await startServer(["--cors", "http://allowed.example"]); });
after(async () => { await srv.stop(); });

const eio = (q) => `${srv.url}/socket.io/?${q}`;

async function json400(res, code, message) {
  assert.equal(res.status, 400);
  assert.match(res.headers.get("content-type"), /application\/json/);
  assert.deepEqual(await res.json(), { code, message });
}

test("polling handshake: open packet with exactly Node's keys", async () => {
  const res = await fetch(eio("EIO=4&transport=polling"));
  assert.equal(res.status, 200);
  assert.equal(res.headers.get("content-type"), "text/plain; charset=UTF-8");
  const body = await res.text();
  assert.equal(body[0], "0");
  const open = JSON.parse(body.slice(1));
  assert.deepEqual(Object.keys(open), ["sid", "upgrades", "pingInterval", "pingTimeout", "maxPayload"]);
  assert.deepEqual(open.upgrades, ["websocket"]);
  assert.equal(open.pingInterval, 300);
  assert.equal(open.pingTimeout, 200);
  assert.equal(open.maxPayload, 1000000);
  assert.match(open.sid, /^[A-Za-z0-9_-]{20}$/);
});

test("bad requests get Node's {code, message} bodies", async () => {
  await json400(await fetch(eio("EIO=4&transport=carrier-pigeon")), 0, "Transport unknown");
  await json400(await fetch(eio("EIO=4")), 0, "Transport unknown");
  await json400(await fetch(eio("EIO=4&transport=polling&sid=unknown")), 1, "Session ID unknown");
  await json400(await fetch(eio("EIO=4&transport=polling"), { method: "POST", body: "40" }), 2, "Bad handshake method");
  await json400(await fetch(eio("EIO=3&transport=polling")), 5, "Unsupported protocol version");
  await json400(await fetch(eio("transport=polling")), 5, "Unsupported protocol version");
  // websocket transport without an Upgrade header
  await json400(await fetch(eio("EIO=4&transport=websocket")), 3, "Bad request");
});

test("a polling session refuses requests of another transport", async () => {
  const body = await (await fetch(eio("EIO=4&transport=polling"))).text();
  const { sid } = JSON.parse(body.slice(1));
  await json400(await fetch(eio(`EIO=4&transport=websocket&sid=${sid}`)), 3, "Bad request");
});

test("CORS: configured origin allowed with credentials, others not", async () => {
  const ok = await fetch(eio("EIO=4&transport=polling"), { headers: { Origin: "http://allowed.example" } });
  assert.equal(ok.headers.get("access-control-allow-origin"), "http://allowed.example");
  assert.equal(ok.headers.get("access-control-allow-credentials"), "true");
  const pre = await fetch(eio("EIO=4&transport=polling"), {
    method: "OPTIONS",
    headers: { Origin: "http://allowed.example", "Access-Control-Request-Method": "POST" },
  });
  assert.ok(pre.status === 200 || pre.status === 204);
  assert.equal(pre.headers.get("access-control-allow-origin"), "http://allowed.example");
  const bad = await fetch(eio("EIO=4&transport=polling"), { headers: { Origin: "http://evil.example" } });
  assert.equal(bad.headers.get("access-control-allow-origin"), null);
});
