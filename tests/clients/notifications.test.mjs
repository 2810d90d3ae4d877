// Webhook notifications end to end: signed POSTs to /internal/notify/{stock,price,progress}
// reach the right users live in `/` and `/notifications`, admins in `/admin`, offline users
// through `notification:backlog`; `Idempotency-Key` replays; every bad input and signature.
import { test, describe, before, after } from "node:test";
import assert from "node:assert/strict";
import { io } from "socket.io-client";
import { startProduct, testDatabase, signedCall, hsToken, once, collect, until, delay } from "./common.mjs";

const SECRET = "notify-jwt-secret-padded-to-at-least-32-bytes";
const HOOK = "notify-hook-secret-padded-to-at-least-32-bytes";
let srv;
let query; // (sql) => Promise<rows>

const internal = (method, route, body, opts) => signedCall(srv.url, HOOK, method, route, body, opts);
const notify = async (kind, body, opts) => {
  const res = await internal("POST", `/notify/${kind}`, body, opts);
  return { status: res.status, body: await res.json(), headers: res.headers };
};
async function connect(user, nsp = "/", role = "user") {
  const s = io(srv.url + nsp, { forceNew: true, reconnection: false, transports: ["websocket"], auth: { token: hsToken(SECRET, user, { role }) } });
  await once(s, "connect");
  return s;
}

for (const backend of ["sqlite", "postgres"]) describe(`notifications on ${backend}`, () => {
let db;
before(async () => {
  db = await testDatabase(backend, "notify");
  query = db.query;
  const url = db.url;
  srv = await startProduct({ JWT_SECRET: SECRET, WEBHOOK_SECRET: HOOK, DATABASE_URL: url });
  for (const [u, role] of [["alice", "user"], ["bob", "user"], ["carol", "user"], ["dave", "user"], ["erin", "user"], ["root", "admin"]]) {
    const res = await internal("PUT", `/users/${u}`, { name: u, email: `${u}@example.com`, role, isActive: true });
    assert.equal(res.status, 200);
  }
});
after(async () => { await srv.stop(); db?.stop(); });

test("stock: watchers get STOCK_UPDATE in / and /notifications, cart holders STOCK_SOLD_OUT at 0, admins the alert", async () => {
  const alice = await connect("alice");
  const aliceN = await connect("alice", "/notifications");
  const bob = await connect("bob");
  const carol = await connect("carol");
  const root = await connect("root", "/admin", "admin");
  assert.deepEqual(await alice.timeout(3000).emitWithAck("product:watch", { productId: "p1" }), { success: true });
  assert.deepEqual(await (await internal("PUT", "/carts/bob/items/p1")).json(), { success: true });
  assert.deepEqual(await (await internal("PUT", "/carts/bob/items/p1")).json(), { success: true }, "twice is once");
  const got = { alice: collect(alice, "notification"), aliceN: collect(aliceN, "notification"), bob: collect(bob, "notification"), carol: collect(carol, "notification") };
  const alerts = collect(root, "admin:stock-alert");

  const r = await notify("stock", { productId: "p1", stock: 5 });
  assert.deepEqual(r, { status: 200, body: { success: true, notified: 1 }, headers: r.headers });
  await until(() => got.alice.length === 1 && got.aliceN.length === 1 && alerts.length === 1, 3000, "stock update");
  const n = got.alice[0][0];
  assert.deepEqual(n, { type: "STOCK_UPDATE", productId: "p1", stock: 5, isLowStock: true, timestamp: n.timestamp, id: n.id });
  assert.equal(typeof n.id, "string");
  assert.deepEqual(got.aliceN[0][0], n, "the same notification in both namespaces");
  assert.deepEqual(alerts[0][0], { type: "STOCK_UPDATE", productId: "p1", stock: 5, isLowStock: true, timestamp: n.timestamp });

  assert.equal((await notify("stock", { productId: "p1", stock: 10 })).body.notified, 1);
  await until(() => got.alice.length === 2, 3000, "not low");
  assert.equal(got.alice[1][0].isLowStock, false, "10 is not below the threshold of 10");

  assert.deepEqual((await notify("stock", { productId: "p1", stock: 0 })).body, { success: true, notified: 2 });
  await until(() => got.alice.length === 3 && got.bob.length === 1, 3000, "sold out");
  const sold = got.bob[0][0];
  assert.equal(sold.type, "STOCK_SOLD_OUT");
  assert.deepEqual({ ...sold, id: 0, timestamp: 0 }, { type: "STOCK_SOLD_OUT", productId: "p1", stock: 0, isLowStock: true, timestamp: 0, message: sold.message, id: 0 });
  assert.equal(typeof sold.message, "string");
  assert.equal(got.alice[2][0].type, "STOCK_UPDATE");
  await delay(200);
  assert.equal(got.carol.length, 0, "a non-watcher gets nothing");
  assert.equal(got.bob.length, 1, "a cart holder gets nothing while stock lasts");
  assert.equal(alerts.length, 3);
  // every notification is stored for its user
  assert.deepEqual(await query("select user_id, kind from notifications order by id"), [["alice", "STOCK_UPDATE"], ["alice", "STOCK_UPDATE"], ["alice", "STOCK_UPDATE"], ["bob", "STOCK_SOLD_OUT"]]);
  // an unwatched product and an emptied cart: nobody
  await alice.timeout(3000).emitWithAck("product:unwatch", { productId: "p1" });
  await internal("DELETE", "/carts/bob/items/p1");
  assert.equal((await notify("stock", { productId: "p1", stock: 0 })).body.notified, 0);
  for (const s of [alice, aliceN, bob, carol, root]) s.disconnect();
});

test("price: nothing on a rise, PRICE_DROP with a one-decimal percent on a drop", async () => {
  const carol = await connect("carol");
  await carol.timeout(3000).emitWithAck("product:watch", { productId: "p2" });
  const got = collect(carol, "notification");
  assert.deepEqual((await notify("price", { productId: "p2", oldPrice: 10, newPrice: 12 })).body, { success: true, notified: 0 });
  assert.deepEqual((await notify("price", { productId: "p2", oldPrice: 10, newPrice: 10 })).body, { success: true, notified: 0 });
  assert.deepEqual((await notify("price", { productId: "p2", oldPrice: 80, newPrice: 60 })).body, { success: true, notified: 1 });
  assert.equal((await notify("price", { productId: "p2", oldPrice: 3, newPrice: 2 })).body.notified, 1);
  assert.equal((await notify("price", { productId: "p2", oldPrice: 19.99, newPrice: 0 })).body.notified, 1);
  await until(() => got.length === 3, 3000, "drops");
  const d = got[0][0];
  assert.deepEqual(d, { type: "PRICE_DROP", productId: "p2", oldPrice: 80, newPrice: 60, changePercent: "25.0", timestamp: d.timestamp, id: d.id });
  assert.equal(got[1][0].changePercent, "33.3");
  assert.equal(got[2][0].changePercent, "100.0");
  carol.disconnect();
});

test("progress: only its user, in / and /notifications, not stored; notified says whether online", async () => {
  const erin = await connect("erin");
  const erinN = await connect("erin", "/notifications");
  const dave = await connect("dave");
  const a = collect(erin, "job:progress");
  const b = collect(erinN, "job:progress");
  const other = collect(dave, "job:progress");
  const r = await notify("progress", { userId: "erin", jobId: "job-1", progress: 40, status: "processing" });
  assert.deepEqual(r.body, { success: true, notified: 1 });
  await until(() => a.length === 1 && b.length === 1, 3000, "progress");
  assert.deepEqual(a[0][0], { jobId: "job-1", progress: 40, status: "processing", timestamp: a[0][0].timestamp });
  assert.deepEqual(b[0][0], a[0][0]);
  // only /notifications open still counts as online
  erin.disconnect();
  await delay(100);
  assert.equal((await notify("progress", { userId: "erin", jobId: "job-1", progress: 100, status: "completed" })).body.notified, 1);
  erinN.disconnect();
  await until(async () => (await notify("progress", { userId: "erin", jobId: "job-1", progress: 100, status: "completed" })).body.notified === 0, 3000, "offline");
  assert.equal((await notify("progress", { userId: "nobody", jobId: "j", progress: 0, status: "failed" })).body.notified, 0);
  await delay(100);
  assert.equal(other.length, 0);
  assert.equal((await query("select count(*) from notifications where user_id = 'erin'"))[0][0], "0");
  dave.disconnect();
});

test("offline users: stored, then notification:backlog on connect; notification:read marks only the owner's", async () => {
  const dave = await connect("dave");
  await dave.timeout(3000).emitWithAck("product:watch", { productId: "p3" });
  dave.disconnect();
  assert.equal((await notify("stock", { productId: "p3", stock: 3 })).body.notified, 1, "offline users count");
  assert.equal((await notify("price", { productId: "p3", oldPrice: 4, newPrice: 3 })).body.notified, 1);
  const dn = io(srv.url + "/notifications", { forceNew: true, reconnection: false, transports: ["websocket"], auth: { token: hsToken(SECRET, "dave") } });
  const backlog = once(dn, "notification:backlog");
  await once(dn, "connect");
  const [{ items, unread }] = await backlog;
  assert.equal(unread, 2);
  assert.deepEqual(items.map((i) => [i.type, i.read]), [["STOCK_UPDATE", false], ["PRICE_DROP", false]]);
  assert.equal(items[1].changePercent, "25.0");
  // another user's id is not marked; bad payloads are refused
  const alicesId = (await query("select id from notifications where user_id = 'alice' limit 1"))[0][0];
  assert.deepEqual(await dn.timeout(3000).emitWithAck("notification:read", { ids: [items[0].id, alicesId, "nope"] }), { success: true, updated: 1 });
  assert.equal((await query(`select count(*) from notifications where id = '${alicesId}' and read_at is null`))[0][0], "1");
  for (const bad of [undefined, "x", {}, { ids: "a" }, { ids: [1] }, { ids: Array(1001).fill("a") }]) {
    assert.equal((await dn.timeout(3000).emitWithAck("notification:read", bad)).code, "INVALID_PAYLOAD");
  }
  dn.disconnect();
  const again = io(srv.url + "/notifications", { forceNew: true, reconnection: false, transports: ["websocket"], auth: { token: hsToken(SECRET, "dave") } });
  const second = once(again, "notification:backlog");
  const [b2] = await second;
  assert.equal(b2.unread, 1);
  assert.deepEqual(b2.items.map((i) => i.id), [items[1].id]);
  again.disconnect();
});

test("Idempotency-Key: a replay gets the first answer and delivers nothing; scoped per path", async () => {
  const alice = await connect("alice");
  await alice.timeout(3000).emitWithAck("product:watch", { productId: "p4" });
  const got = collect(alice, "notification");
  const key = { headers: { "Idempotency-Key": "evt-1" } };
  const first = await notify("stock", { productId: "p4", stock: 7 }, key);
  assert.deepEqual(first.body, { success: true, notified: 1 });
  const replay = await notify("stock", { productId: "p4", stock: 7 }, key);
  assert.equal(replay.status, 200);
  assert.deepEqual(replay.body, first.body);
  // the same key on another path is another request
  assert.equal((await notify("price", { productId: "p4", oldPrice: 2, newPrice: 1 }, key)).body.notified, 1);
  await until(() => got.length === 2, 3000, "two deliveries");
  await delay(200);
  assert.equal(got.length, 2, "the replay delivered nothing");
  assert.equal((await query("select count(*) from notifications where payload like '%\"p4\"%'"))[0][0], "2");
  // a bad request with a key does not use the key up
  assert.equal((await notify("stock", { productId: "p4", stock: -1 }, { headers: { "Idempotency-Key": "evt-2" } })).status, 400);
  assert.equal((await notify("stock", { productId: "p4", stock: 1 }, { headers: { "Idempotency-Key": "evt-2" } })).body.notified, 1);
  alice.disconnect();
});

test("webhook bad input: 400 INVALID_PAYLOAD with a message; bad signature 401; unknown route 404", async () => {
  const bad = [
    ["stock", { productId: "p", stock: -1 }],
    ["stock", { productId: "p", stock: "5" }],
    ["stock", { productId: "p", stock: 1.5 }],
    ["stock", { productId: "p" }],
    ["stock", { stock: 1 }],
    ["stock", { productId: "", stock: 1 }],
    ["stock", { productId: 5, stock: 1 }],
    ["stock", '{"productId":"p","stock":NaN}'],
    ["stock", '{"productId":"p","stock":1e400}'],
    ["stock", "not json"],
    ["stock", "[1,2]"],
    ["price", { productId: "p", oldPrice: 0, newPrice: 1 }],
    ["price", { productId: "p", oldPrice: -3, newPrice: 1 }],
    ["price", { productId: "p", oldPrice: 3, newPrice: -1 }],
    ["price", { productId: "p", oldPrice: "3", newPrice: 1 }],
    ["price", '{"productId":"p","oldPrice":Infinity,"newPrice":1}'],
    ["price", { productId: "p", oldPrice: 3 }],
    ["progress", { userId: "erin", jobId: "j", progress: 101, status: "processing" }],
    ["progress", { userId: "erin", jobId: "j", progress: -1, status: "processing" }],
    ["progress", { userId: "erin", jobId: "j", progress: 5, status: "done" }],
    ["progress", { userId: "erin", jobId: "j", progress: "5", status: "processing" }],
    ["progress", { jobId: "j", progress: 5, status: "processing" }],
    ["progress", { userId: "erin", progress: 5, status: "processing" }],
  ];
  for (const [kind, body] of bad) {
    const r = await notify(kind, body);
    assert.equal(r.status, 400, `${kind} ${JSON.stringify(body)}`);
    assert.equal(r.body.success, false);
    assert.equal(r.body.code, "INVALID_PAYLOAD");
    assert.equal(typeof r.body.error, "string");
  }
  const unsigned = await internal("POST", "/notify/stock", { productId: "p", stock: 1 }, { sign: false });
  assert.equal(unsigned.status, 401);
  assert.deepEqual(await unsigned.json(), { success: false, error: "missing X-Signature-256", code: "UNAUTHORIZED" });
  const wrong = await signedCall(srv.url, "another-secret", "POST", "/notify/price", { productId: "p", oldPrice: 2, newPrice: 1 });
  assert.equal(wrong.status, 401);
  assert.equal((await wrong.json()).code, "UNAUTHORIZED");
  for (const [method, route] of [["POST", "/notify/nothing"], ["GET", "/notify/stock"], ["PUT", "/carts/bob"]]) {
    const r = await internal(method, route, method === "GET" ? undefined : {});
    assert.equal(r.status, 404, `${method} ${route}`);
    assert.equal((await r.json()).code, "NOT_FOUND");
  }
  const unknownUser = await internal("PUT", "/carts/nobody/items/p1");
  assert.equal(unknownUser.status, 404);
  assert.equal((await unknownUser.json()).code, "NOT_FOUND");
  const unsignedCart = await internal("PUT", "/carts/bob/items/p1", undefined, { sign: false });
  assert.equal(unsignedCart.status, 401);
});
});
