// A complete small backend for realtime-server (docs/extending.md), with nothing but Node's
// standard library (Node 18 or later): a shop's orders, added to the realtime server without
// touching its code.
//
// - It answers the server's event proxy: clients emit `rpc:order.place {sku, qty}` and
//   `rpc:order.list`; the server POSTs each call here, signed, and the answer is the client's
//   ack (`{result}` or `{error: {code, message}}`).
// - It pushes events of its own through the server API: once an order is placed, its owner's
//   sockets get `order:confirmed` and, a little later, `order:shipped` (`POST /internal/emit`,
//   signed with the server's WEBHOOK_SECRET).
//
// Environment: PORT (default 8080), PROXY_SECRET (the server's proxy.secret),
// WEBHOOK_SECRET (the server's), RT_URL (the server, default http://127.0.0.1:4000),
// SHIP_AFTER_MS (default 1000). Start the server with
//   RT__PROXY__URL=http://127.0.0.1:8080/rpc RT__PROXY__SECRET=... WEBHOOK_SECRET=... realtime-server
import http from "node:http";
import { createHmac, timingSafeEqual } from "node:crypto";

const PORT = Number(process.env.PORT || 8080);
const PROXY_SECRET = process.env.PROXY_SECRET || "";
const WEBHOOK_SECRET = process.env.WEBHOOK_SECRET || "";
const RT_URL = process.env.RT_URL || "http://127.0.0.1:4000";
const SHIP_AFTER_MS = Number(process.env.SHIP_AFTER_MS || 1000);
if (PROXY_SECRET.length < 32 || WEBHOOK_SECRET.length < 32) {
  console.error("PROXY_SECRET and WEBHOOK_SECRET (at least 32 bytes each) are required");
  process.exit(2);
}

// --- the signatures, both ways -----------------------------------------------------------

const hmac = (secret, text) => createHmac("sha256", secret).update(text).digest("hex");

/** Signatures seen in the last 300 s: a call is accepted once (no replays). */
const seen = new Map();

/** Verifies `X-Signature-256: t=…,v1=…` over `{t}.POST.{path and query}.{body}`. */
function verified(req, raw) {
  const header = String(req.headers["x-signature-256"] || "");
  const t = Number((/(?:^|,)\s*t=(\d+)/.exec(header) || [])[1]);
  const now = Math.floor(Date.now() / 1000);
  if (!t || Math.abs(now - t) > 300) return false;
  const want = Buffer.from(hmac(PROXY_SECRET, `${t}.POST.${req.url}.${raw}`));
  const v1s = [...header.matchAll(/v1=([0-9a-f]{64})/g)].map((m) => m[1]);
  const match = v1s.find((v) => timingSafeEqual(Buffer.from(v), want));
  if (!match || seen.has(`${t}.${match}`)) return false;
  for (const [k, at] of seen) if (now - at > 300) seen.delete(k);
  seen.set(`${t}.${match}`, now);
  return true;
}

/** A signed call to the server API. */
async function serverApi(method, path, body) {
  const raw = body === undefined ? "" : JSON.stringify(body);
  const t = Math.floor(Date.now() / 1000);
  const v1 = hmac(WEBHOOK_SECRET, `${t}.${method}.${path}.${raw}`);
  const res = await fetch(RT_URL + path, {
    method,
    headers: { "Content-Type": "application/json", "X-Signature-256": `t=${t},v1=${v1}` },
    body: raw || undefined,
  });
  return { status: res.status, body: await res.json() };
}

/** Sends `event` to every socket of `userId` (and its /ws connections and event streams). */
const emitTo = (userId, event, data) => serverApi("POST", "/internal/emit", { event, data, to: { users: [userId] } });

// --- the shop ------------------------------------------------------------------------------

const stock = new Map([["sku-1", 5], ["sku-2", 1]]);
const orders = [];

/** The calls clients may make: each gets the caller's user id (from its token, checked by
 * the server) and the event's first argument, and returns a result or throws a coded error. */
const calls = {
  "rpc:order.place": (userId, data) => {
    const sku = data?.sku;
    const qty = data?.qty;
    if (typeof sku !== "string" || !Number.isInteger(qty) || qty < 1) {
      throw coded("BAD_ORDER", "sku (string) and qty (whole number ≥ 1) are required");
    }
    if (!stock.has(sku)) throw coded("UNKNOWN_SKU", `no product ${sku}`);
    if (stock.get(sku) < qty) throw coded("OUT_OF_STOCK", `only ${stock.get(sku)} of ${sku} left`);
    stock.set(sku, stock.get(sku) - qty);
    const order = { orderId: `o-${orders.length + 1}`, userId, sku, qty, status: "placed" };
    orders.push(order);
    // after the ack: events of our own, through the server API
    setTimeout(() => emitTo(userId, "order:confirmed", { orderId: order.orderId }).catch(report), 0);
    setTimeout(() => {
      order.status = "shipped";
      emitTo(userId, "order:shipped", { orderId: order.orderId, carrier: "DHL" }).catch(report);
    }, SHIP_AFTER_MS);
    return { orderId: order.orderId, status: order.status };
  },
  "rpc:order.list": (userId) => ({
    orders: orders.filter((o) => o.userId === userId).map(({ orderId, sku, qty, status }) => ({ orderId, sku, qty, status })),
  }),
};

function coded(code, message) {
  return Object.assign(new Error(message), { code });
}
function report(e) {
  console.error("server API call failed:", e.message);
}

// --- HTTP ------------------------------------------------------------------------------------

const server = http.createServer((req, res) => {
  const chunks = [];
  let size = 0;
  req.on("data", (c) => {
    size += c.length;
    if (size <= 1 << 20) chunks.push(c);
  });
  req.on("end", () => {
    const reply = (status, body) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
    };
    const raw = Buffer.concat(chunks).toString("utf8");
    if (req.method !== "POST" || !req.url.startsWith("/rpc")) return reply(404, { error: "not found" });
    if (size > 1 << 20 || !verified(req, raw)) return reply(401, { error: "bad signature" });
    let call;
    try {
      call = JSON.parse(raw); // {id, event, userId, data, timestamp}
    } catch {
      return reply(400, { error: "bad JSON" });
    }
    const handler = calls[call.event];
    if (!handler) return reply(200, { error: { code: "NO_SUCH_CALL", message: `no call ${call.event}` } });
    try {
      reply(200, { result: handler(call.userId, call.data) });
    } catch (e) {
      reply(200, { error: { code: e.code || "FAILED", message: e.message } });
    }
  });
});

server.listen(PORT, "127.0.0.1", () => console.log(`backend listening on http://127.0.0.1:${PORT}/rpc`));
for (const sig of ["SIGINT", "SIGTERM"]) process.on(sig, () => server.close(() => process.exit(0)));
