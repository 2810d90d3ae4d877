// docs/extending.md, run as written: the example backend (examples/backend/server.mjs, plain
// Node) behind the real server's event proxy, placing and listing orders from socket.io-client
// and /ws, pushing its own events back through /internal/emit, refusing forged and replayed
// calls; and the embedding example (examples/embed.rs) driven by socket.io-client.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { createHmac } from "node:crypto";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { io } from "socket.io-client";
import { startProduct, startBinary, signedCall, hsToken, once, collect, until } from "./common.mjs";
import { Plain } from "./plain.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const SECRET = "extending-jwt-secret-padded-to-at-least-32-bytes";
const HOOK = "extending-hook-secret-padded-to-at-least-32-bytes";
const PROXY_SECRET = "extending-proxy-secret-padded-to-at-least-32-b";
let srv;
let backend;
let backendUrl;

const freePort = () => new Promise((resolve, reject) => {
  const s = net.createServer();
  s.on("error", reject);
  s.listen(0, "127.0.0.1", () => { const p = s.address().port; s.close(() => resolve(p)); });
});
const token = (sub) => hsToken(SECRET, sub);
async function sio(user) {
  const s = io(srv.url, { forceNew: true, reconnection: false, transports: ["websocket"], auth: { token: token(user) } });
  await once(s, "connect", 5000);
  return s;
}
const ask = (s, event, payload) => s.timeout(4000).emitWithAck(event, payload);

before(async () => {
  const port = await freePort();
  backendUrl = `http://127.0.0.1:${port}/rpc`;
  srv = await startProduct({ JWT_SECRET: SECRET, WEBHOOK_SECRET: HOOK, RT__PROXY__URL: backendUrl, RT__PROXY__SECRET: PROXY_SECRET });
  for (const u of ["alice", "bob"]) {
    assert.equal((await signedCall(srv.url, HOOK, "PUT", `/users/${u}`, { name: u, email: `${u}@example.com`, role: "user", isActive: true })).status, 200);
  }
  backend = spawn("node", [path.join(root, "examples", "backend", "server.mjs")], {
    env: { ...process.env, PORT: String(port), PROXY_SECRET, WEBHOOK_SECRET: HOOK, RT_URL: srv.url, SHIP_AFTER_MS: "300" },
    stdio: ["ignore", "pipe", "inherit"],
  });
  let out = "";
  backend.stdout.on("data", (d) => { out += d; });
  await until(() => /backend listening/.test(out), 10000, "the example backend listening");
});
after(async () => {
  if (backend && backend.exitCode === null) {
    const gone = new Promise((r) => backend.once("close", r));
    backend.kill("SIGTERM");
    await gone;
  }
  await srv?.stop();
});

test("orders placed over the proxy; the backend's own events reach the user's other connections", async () => {
  const alice = await sio("alice");
  const phone = await Plain.connect(srv.url, token("alice"));
  const confirmed = collect(alice, "order:confirmed");
  const placed = await ask(alice, "rpc:order.place", { sku: "sku-1", qty: 2 });
  assert.deepEqual(placed, { success: true, result: { orderId: "o-1", status: "placed" } });
  // pushed by the backend through /internal/emit, to every connection of alice
  assert.deepEqual((await phone.next("order:confirmed")).payload, { orderId: "o-1" });
  assert.deepEqual((await phone.next("order:shipped", 3000)).payload, { orderId: "o-1", carrier: "DHL" });
  await until(() => confirmed.length === 1, 2000, "the socket.io tab got order:confirmed");

  // coded errors from the backend, as the client's ack
  assert.deepEqual(await ask(alice, "rpc:order.place", { sku: "sku-2", qty: 5 }), { success: false, error: "only 1 of sku-2 left", code: "OUT_OF_STOCK" });
  assert.equal((await ask(alice, "rpc:order.place", { sku: "nope", qty: 1 })).code, "UNKNOWN_SKU");
  assert.equal((await ask(alice, "rpc:order.place", { sku: "sku-1" })).code, "BAD_ORDER");
  assert.equal((await ask(alice, "rpc:order.cancel", { orderId: "o-1" })).code, "NO_SUCH_CALL");

  // the /ws client calls the same way; lists are per user (the server vouches for userId)
  assert.deepEqual(await phone.call("rpc:order.place", { sku: "sku-2", qty: 1 }), { success: true, result: { orderId: "o-2", status: "placed" } });
  const list = await ask(alice, "rpc:order.list");
  assert.deepEqual(list.result.orders.map((o) => [o.orderId, o.sku, o.qty]), [["o-1", "sku-1", 2], ["o-2", "sku-2", 1]]);
  const bob = await sio("bob");
  assert.deepEqual(await ask(bob, "rpc:order.list"), { success: true, result: { orders: [] } });
  alice.disconnect();
  bob.disconnect();
  phone.close();
});

test("the example backend refuses forged and replayed calls", async () => {
  const body = JSON.stringify({ id: "x", event: "rpc:order.list", userId: "alice", data: null, timestamp: Date.now() });
  const t = Math.floor(Date.now() / 1000);
  const post = (sig) => fetch(backendUrl, { method: "POST", headers: { "content-type": "application/json", "x-signature-256": sig }, body });
  assert.equal((await post(`t=${t},v1=${"0".repeat(64)}`)).status, 401);
  const good = `t=${t},v1=` + createHmac("sha256", PROXY_SECRET).update(`${t}.POST./rpc.${body}`).digest("hex");
  assert.equal((await post(good)).status, 200);
  assert.equal((await post(good)).status, 401, "a replay is refused");
  const old = t - 400;
  const stale = `t=${old},v1=` + createHmac("sha256", PROXY_SECRET).update(`${old}.POST./rpc.${body}`).digest("hex");
  assert.equal((await post(stale)).status, 401);
});

test("the embedding example: a /poll namespace with its own connect rule, acks and room broadcasts", async () => {
  const embed = await startBinary(path.join(root, "target", "release", "examples", "embed"), ["--addr", "127.0.0.1:0"]);
  try {
    const join = (name) => {
      const s = io(`${embed.url}/poll`, { forceNew: true, reconnection: false, transports: ["websocket"], auth: name === undefined ? {} : { name } });
      return s;
    };
    const nameless = join();
    const [err] = await once(nameless, "connect_error");
    assert.equal(err.data.code, "INVALID_PAYLOAD");
    nameless.close();

    const ann = join("ann");
    const ben = join("ben");
    await Promise.all([once(ann, "connect"), once(ben, "connect")]);
    assert.deepEqual(await ann.timeout(3000).emitWithAck("watch", { pollId: "lunch" }), { success: true, pollId: "lunch", counts: {} });
    const tallies = collect(ann, "tally");
    assert.deepEqual(await ben.timeout(3000).emitWithAck("vote", { pollId: "lunch", option: "pizza" }), { success: true, pollId: "lunch", counts: { pizza: 1 } });
    await until(() => tallies.length === 1, 2000, "the watcher saw the vote");
    assert.deepEqual(tallies[0], [{ pollId: "lunch", counts: { pizza: 1 }, by: "ben" }]);
    // a new vote replaces the old one
    assert.deepEqual((await ben.timeout(3000).emitWithAck("vote", { pollId: "lunch", option: "salad" })).counts, { salad: 1 });
    assert.deepEqual(await ann.timeout(3000).emitWithAck("vote", { pollId: "lunch" }), { success: false, error: "expected {pollId, option}", code: "INVALID_PAYLOAD" });
    ann.close();
    ben.close();
  } finally {
    await embed.stop();
  }
});
