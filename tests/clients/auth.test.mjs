// JWT authentication on the product server (`realtime-server serve`): every refusal reaches
// a real client as connect_error with data.code; valid tokens from every source connect.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { execFileSync } from "node:child_process";
import { io } from "socket.io-client";
import { startProduct, serverBinary, signedCall, once, delay } from "./common.mjs";
import { rawWs } from "./ws.mjs";

const SECRET = "test-secret-for-auth-tests-padded-to-at-least-32-bytes";
const HOOK = "webhook-secret-for-tests-padded-to-at-least-32-bytes";
let srv;

/** A signed directory-sync call. */
function internal(method, route, body, { secret = HOOK, sign = true } = {}) {
  return signedCall(srv.url, secret, method, route, body, { sign });
}
const user = (name, isActive = true, role = "user") => ({ name, email: `${name}@example.com`, role, isActive });

before(async () => {
  srv = await startProduct({ JWT_SECRET: SECRET, WEBHOOK_SECRET: HOOK, RUST_LOG: "info" });
  for (const id of ["alice", "bob", "carol", "dave", "mallory", "erin"]) {
    const res = await internal("PUT", `/users/${id}`, user(id));
    assert.deepEqual(await res.json(), { success: true });
  }
  assert.equal((await internal("PUT", "/users/zoe", user("zoe", false))).status, 200);
});
after(async () => { await srv.stop(); });

const b64 = (v) => Buffer.from(typeof v === "string" ? v : JSON.stringify(v)).toString("base64url");
function jwt(claims, { alg = "HS256", secret = SECRET } = {}) {
  const head = b64({ alg, typ: "JWT" });
  const body = b64(claims);
  if (alg === "none") return `${head}.${body}.`;
  const hash = { HS256: "sha256", HS512: "sha512" }[alg];
  const sig = createHmac(hash, secret).update(`${head}.${body}`).digest("base64url");
  return `${head}.${body}.${sig}`;
}
const now = () => Math.floor(Date.now() / 1000);
const valid = () => jwt({ sub: "alice", role: "user", exp: now() + 600 });

async function refusal(opts) {
  const s = io(srv.url, { forceNew: true, reconnection: false, ...opts });
  try {
    const [err] = await once(s, "connect_error", 5000);
    return err;
  } finally {
    s.close();
  }
}

async function connects(opts) {
  const s = io(srv.url, { forceNew: true, reconnection: false, ...opts });
  try {
    await once(s, "connect", 5000);
    return true;
  } finally {
    s.close();
  }
}

for (const transport of ["websocket", "polling"]) {
  const t = { transports: [transport] };
  test(`${transport}: no token → AUTH_REQUIRED`, async () => {
    const err = await refusal(t);
    assert.equal(err.data?.code, "AUTH_REQUIRED");
    assert.equal(err.message, "Authentication required");
  });

  test(`${transport}: expired token → TOKEN_EXPIRED`, async () => {
    const err = await refusal({ ...t, auth: { token: jwt({ sub: "alice", role: "user", exp: now() - 3600 }) } });
    assert.equal(err.data?.code, "TOKEN_EXPIRED");
  });

  test(`${transport}: forged, wrong-algorithm and garbage tokens → TOKEN_INVALID`, async () => {
    const claims = { sub: "alice", role: "user", exp: now() + 600 };
    for (const token of [
      jwt(claims, { secret: "not-the-secret" }),
      jwt(claims, { alg: "HS512" }),
      jwt(claims, { alg: "none" }),
      jwt({ role: "user", exp: now() + 600 }), // no user
      "garbage",
    ]) {
      const err = await refusal({ ...t, auth: { token } });
      assert.equal(err.data?.code, "TOKEN_INVALID", `token ${token.slice(0, 30)}…`);
    }
  });

  test(`${transport}: a valid token in auth or in the Authorization header connects`, async () => {
    assert.ok(await connects({ ...t, auth: { token: valid() } }));
    assert.ok(await connects({ ...t, extraHeaders: { Authorization: `Bearer ${valid()}` } }));
  });
}

test("the users table is the truth: unknown → TOKEN_INVALID, inactive → ACCOUNT_DISABLED", async () => {
  const unknown = await refusal({ transports: ["websocket"], auth: { token: jwt({ sub: "nobody", role: "user", exp: now() + 600 }) } });
  assert.equal(unknown.data?.code, "TOKEN_INVALID");
  const disabled = await refusal({ transports: ["websocket"], auth: { token: jwt({ sub: "zoe", role: "user", exp: now() + 600 }) } });
  assert.equal(disabled.data?.code, "ACCOUNT_DISABLED");
  // re-activated by the backend: connects
  assert.equal((await internal("PUT", "/users/zoe", user("zoe", true))).status, 200);
  assert.ok(await connects({ transports: ["websocket"], auth: { token: jwt({ sub: "zoe", role: "user", exp: now() + 600 }) } }));
});

test("directory sync: signature, body and route errors answer JSON with codes", async () => {
  const expect = async (res, status, code) => {
    assert.equal(res.status, status);
    const b = await res.json();
    assert.equal(b.success, false);
    assert.equal(b.code, code);
    assert.equal(typeof b.error, "string");
  };
  await expect(await internal("PUT", "/users/x", user("x"), { sign: false }), 401, "UNAUTHORIZED");
  await expect(await internal("PUT", "/users/x", user("x"), { secret: "wrong" }), 401, "UNAUTHORIZED");
  await expect(await internal("PUT", "/users/x", { ...user("x"), isActive: "yes" }), 400, "INVALID_PAYLOAD");
  await expect(await internal("PUT", "/users/x", { ...user("x"), role: "root" }), 400, "INVALID_PAYLOAD");
  await expect(await internal("PUT", "/users/x", { email: "x@example.com", role: "user", isActive: true }), 400, "INVALID_PAYLOAD");
  await expect(await internal("PUT", "/users/x", "{not json"), 400, "INVALID_PAYLOAD");
  await expect(await internal("PUT", "/users/x", { ...user("x"), name: "  " }), 400, "INVALID_PAYLOAD");
  await expect(await internal("GET", "/nothing-here"), 404, "NOT_FOUND");
  await expect(await internal("GET", "/users/alice"), 404, "NOT_FOUND");
  await expect(await internal("POST", "/rooms/r1/members/alice"), 404, "NOT_FOUND");
  // nothing was stored by the refused calls
  const err = await refusal({ transports: ["websocket"], auth: { token: jwt({ sub: "x", role: "user", exp: now() + 600 }) } });
  assert.equal(err.data?.code, "TOKEN_INVALID");
});

test("a token in the query string is refused unless enabled", async () => {
  const err = await refusal({ transports: ["websocket"], query: { token: valid() } });
  assert.equal(err.data?.code, "AUTH_REQUIRED");
});

test("`realtime-server token` mints a token the server accepts", async () => {
  const token = execFileSync(serverBinary(), ["token", "--user", "bob", "--role", "admin", "--ttl", "10m"], {
    env: { ...process.env, JWT_SECRET: SECRET },
  }).toString().trim();
  assert.match(token, /^[\w-]+\.[\w-]+\.[\w-]+$/);
  const claims = JSON.parse(Buffer.from(token.split(".")[1], "base64url"));
  assert.equal(claims.sub, "bob");
  assert.equal(claims.role, "admin");
  assert.ok(claims.exp > now() + 500 && claims.exp <= now() + 600);
  assert.ok(await connects({ transports: ["websocket"], auth: { token } }));
});

test("a socket is disconnected when its token expires", async () => {
  const s = io(srv.url, { forceNew: true, reconnection: false, transports: ["websocket"],
    auth: { token: jwt({ sub: "carol", role: "user", exp: now() + 2 }) } });
  try {
    await once(s, "connect");
    const started = Date.now();
    const [reason] = await once(s, "disconnect", 5000);
    assert.equal(reason, "io server disconnect");
    assert.ok(Date.now() - started < 3500, "disconnected at expiry");
  } finally {
    s.close();
  }
});

test("auth:refresh extends the session; bad refreshes are refused with codes", async () => {
  const s = io(srv.url, { forceNew: true, reconnection: false, transports: ["websocket"],
    auth: { token: jwt({ sub: "dave", role: "user", exp: now() + 2 }) } });
  let gone = null;
  s.on("disconnect", (r) => (gone = r));
  try {
    await once(s, "connect");
    const ask = (payload) => s.timeout(2000).emitWithAck("auth:refresh", payload);
    assert.deepEqual(await ask({}), { success: false, error: "token (string) is required", code: "INVALID_PAYLOAD" });
    assert.deepEqual(await ask("not-an-object"), { success: false, error: "token (string) is required", code: "INVALID_PAYLOAD" });
    assert.equal((await ask({ token: "garbage" })).code, "TOKEN_INVALID");
    assert.equal((await ask({ token: jwt({ sub: "dave", role: "user", exp: now() - 3600 }) })).code, "TOKEN_EXPIRED");
    assert.equal((await ask({ token: jwt({ sub: "mallory", role: "user", exp: now() + 600 }) })).code, "FORBIDDEN");
    const exp = now() + 600;
    assert.deepEqual(await ask({ token: jwt({ sub: "dave", role: "user", exp }) }), { success: true });
    // past the first token's expiry the socket is still there
    await new Promise((r) => setTimeout(r, 3000));
    assert.equal(gone, null);
    assert.equal(s.connected, true);
    // without an ack a failure arrives as an `error` event
    const err = once(s, "error");
    s.emit("auth:refresh", {});
    assert.deepEqual((await err)[0], { message: "token (string) is required", code: "INVALID_PAYLOAD" });
  } finally {
    s.close();
  }
});

test("tokens: nbf in the future and lifetimes over 30 days are refused", async () => {
  const day = 24 * 3600;
  for (const claims of [
    { sub: "alice", role: "user", nbf: now() + day, exp: now() + 2 * day },
    { sub: "alice", role: "user", iat: now(), exp: now() + 31 * day },
    { sub: "alice", role: "user", exp: now() + 100 * 365 * day },
  ]) {
    const err = await refusal({ auth: { token: jwt(claims) } });
    assert.equal(err.data.code, "TOKEN_INVALID", JSON.stringify(claims));
  }
  assert.ok(await connects({ auth: { token: jwt({ sub: "alice", role: "user", iat: now(), exp: now() + 30 * day }) } }));
});

test("secrets shorter than 32 bytes stop the server at start, saying why", async () => {
  for (const env of [{ JWT_SECRET: "short" }, { JWT_SECRET: SECRET, WEBHOOK_SECRET: "short" }]) {
    await assert.rejects(startProduct(env), (e) => /at least 32 bytes/.test(e.message), JSON.stringify(env));
  }
});

test("a recovered session is authenticated again: refused without a valid token or for a disabled user, nothing replayed", async () => {
  assert.equal((await internal("PUT", "/rooms/recover", { name: "Recover", isPublic: true })).status, 200);
  const bob = io(srv.url, { forceNew: true, reconnection: false, transports: ["websocket"], auth: { token: jwt({ sub: "bob", role: "user", exp: now() + 600 }) } });
  await once(bob, "connect");
  assert.equal((await bob.timeout(3000).emitWithAck("room:join", "recover")).success, true);
  const say = async (text) => assert.equal((await bob.timeout(3000).emitWithAck("chat:send", { roomId: "recover", text })).success, true);

  /** A session of `user` ended by a dropped connection after one broadcast, with one more
   * broadcast missed: its pid and last offset. */
  async function dropped(user) {
    const raw = rawWs(srv.url);
    await raw.opened;
    await raw.next((m) => m.startsWith("0{"));
    raw.send(`40${JSON.stringify({ token: jwt({ sub: user, role: "user", exp: now() + 600 }) })}`);
    const { pid } = JSON.parse((await raw.next((m) => m.startsWith("40"))).slice(2));
    raw.send('421["room:join","recover"]');
    await raw.next((m) => m.startsWith("431"));
    await say("before");
    const args = JSON.parse((await raw.next((m) => m.startsWith('42["chat:message"'))).slice(2));
    const offset = args[args.length - 1];
    raw.ws.terminate();
    await raw.waitClose();
    await say("missed");
    return { pid, offset };
  }
  async function comeBack(auth) {
    const raw = rawWs(srv.url);
    await raw.opened;
    await raw.next((m) => m.startsWith("0{"));
    raw.send(`40${JSON.stringify(auth)}`);
    const answer = await raw.next((m) => m.startsWith("40") || m.startsWith("44"));
    await delay(300);
    const rest = raw.msgs.filter((m) => typeof m === "string" && m.startsWith("42"));
    raw.ws.close();
    return { answer, rest };
  }

  // control: a valid token recovers the session and gets what it missed
  let back = await comeBack({ token: valid(), ...(await dropped("alice")) });
  assert.ok(back.answer.startsWith("40"), back.answer);
  assert.ok(back.rest.some((m) => m.includes('"missed"')), `replayed: ${back.rest}`);

  for (const [auth, code] of [
    [{}, "AUTH_REQUIRED"],
    [{ token: jwt({ sub: "alice", role: "user", exp: now() - 60 }) }, "TOKEN_EXPIRED"],
  ]) {
    back = await comeBack({ ...auth, ...(await dropped("alice")) });
    assert.ok(back.answer.startsWith("44"), back.answer);
    assert.equal(JSON.parse(back.answer.slice(2)).data.code, code);
    assert.deepEqual(back.rest, [], "nothing replayed");
  }

  const session = await dropped("erin");
  assert.equal((await internal("PUT", "/users/erin", user("erin", false))).status, 200);
  back = await comeBack({ token: jwt({ sub: "erin", role: "user", exp: now() + 600 }), ...session });
  assert.ok(back.answer.startsWith("44"), back.answer);
  assert.equal(JSON.parse(back.answer.slice(2)).data.code, "ACCOUNT_DISABLED");
  assert.deepEqual(back.rest, [], "nothing replayed");
  bob.close();
});

test("arguments nested deeper than 64 levels: INVALID_PAYLOAD, the socket stays connected", async () => {
  const s = io(srv.url, { forceNew: true, reconnection: false, transports: ["websocket"], auth: { token: valid() } });
  await once(s, "connect");
  let deep = "bottom";
  for (let i = 0; i < 200; i++) deep = { a: deep };
  const ack = await s.timeout(3000).emitWithAck("room:sync", { roomId: "r", afterMessageId: deep });
  assert.equal(ack.success, false);
  assert.equal(ack.code, "INVALID_PAYLOAD");
  const err = once(s, "error", 3000);
  s.emit("room:sync", deep);
  assert.equal((await err)[0].code, "INVALID_PAYLOAD");
  // a binary event nested as deeply: refused once its attachment is in, the socket stays
  let deepBin = Buffer.from("bottom");
  for (let i = 0; i < 200; i++) deepBin = [deepBin];
  const binAck = await s.timeout(3000).emitWithAck("room:sync", { roomId: "r", afterMessageId: deepBin });
  assert.equal(binAck.code, "INVALID_PAYLOAD");
  assert.ok(s.connected, "still connected after a deep binary event");
  // 64 levels are fine: the event reaches its handler (which refuses the shape itself)
  let ok = "x";
  for (let i = 0; i < 62; i++) ok = [ok];
  const shaped = await s.timeout(3000).emitWithAck("room:sync", { roomId: ok });
  assert.equal(shaped.code, "INVALID_PAYLOAD");
  assert.match(shaped.error, /roomId/);
  assert.ok(s.connected, "still connected");
  assert.equal((await s.timeout(3000).emitWithAck("auth:refresh", { token: valid() })).success, true);
  s.close();
});
