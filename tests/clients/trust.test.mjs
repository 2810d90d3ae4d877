// Trust boundaries (issue 12) attacked as the report did: captured X-Signature-256
// values moved to another path or method, replayed, too old, in the old body-only form.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { createHmac } from "node:crypto";
import { io } from "socket.io-client";
import { startProduct, signedCall, signature, hsToken, once } from "./common.mjs";

const SECRET = "trust-jwt-secret-padded-to-at-least-32-bytes";
const HOOK = "trust-hook-secret-padded-to-at-least-32-bytes";
let srv;

const internal = (method, route, body, opts) => signedCall(srv.url, HOOK, method, route, body, opts);
const user = (name, role = "user", isActive = true) => ({ name, email: `${name}@example.com`, role, isActive });
const now = () => Math.floor(Date.now() / 1000);

/** Sends `header` as the signature of a request. */
async function withHeader(method, route, body, header) {
  const res = await internal(method, route, body, { header });
  return { status: res.status, body: await res.json() };
}

async function roleOf(id) {
  // admin rights come from the stored role: a /admin connect tells
  const s = io(srv.url + "/admin", { forceNew: true, reconnection: false, transports: ["websocket"], auth: { token: hsToken(SECRET, id, { role: "admin" }) } });
  try {
    const [ev] = await Promise.race([once(s, "connect").then(() => ["connect"]), once(s, "connect_error")]);
    return ev === "connect" ? "admin" : ev.data?.code;
  } finally {
    s.close();
  }
}

before(async () => {
  srv = await startProduct({ JWT_SECRET: SECRET, WEBHOOK_SECRET: HOOK });
  for (const [u, role] of [["admin1", "admin"], ["mallory", "user"], ["bob", "user"]]) {
    assert.equal((await internal("PUT", `/users/${u}`, user(u, role))).status, 200);
  }
  assert.equal((await internal("PUT", "/rooms/secret", { name: "Secret", isPublic: false, members: ["admin1"] })).status, 200);
});
after(async () => { await srv.stop(); });

test("a signature is bound to its path, method and body", async () => {
  const t = now() - 7; // not a second `before` signed the same request in
  const raw = JSON.stringify(user("admin1", "admin"));
  const sig = signature(HOOK, "PUT", "/internal/users/admin1", raw, t);
  // moved to mallory's path: refused, mallory stays a user
  const moved = await withHeader("PUT", "/users/mallory", { ...user("admin1", "admin") }, sig);
  assert.equal(moved.status, 401);
  assert.deepEqual(moved.body, { success: false, error: "invalid X-Signature-256", code: "UNAUTHORIZED" });
  assert.equal(await roleOf("mallory"), "FORBIDDEN");
  // a body-less DELETE's signature does not add through PUT, nor work on another member
  const del = signature(HOOK, "DELETE", "/internal/rooms/secret/members/bob", "", t);
  assert.equal((await withHeader("PUT", "/rooms/secret/members/bob", undefined, del)).status, 401);
  assert.equal((await withHeader("DELETE", "/rooms/secret/members/admin1", undefined, del)).status, 401);
  // a query string is part of what is signed
  const q = signature(HOOK, "POST", "/internal/notify/stock", '{"productId":"p","stock":1}', t);
  assert.equal((await withHeader("POST", "/notify/stock?x=1", '{"productId":"p","stock":1}', q)).status, 401);
  // the genuine request still works once
  assert.deepEqual(await withHeader("PUT", "/users/admin1", raw, sig), { status: 200, body: { success: true } });
});

test("a replayed signature is refused, even for a request that failed the first time", async () => {
  const raw = JSON.stringify(user("bob", "admin"));
  const sig = signature(HOOK, "PUT", "/internal/users/bob", raw);
  assert.equal((await withHeader("PUT", "/users/bob", raw, sig)).status, 200);
  const again = await withHeader("PUT", "/users/bob", raw, sig);
  assert.equal(again.status, 401);
  assert.equal(again.body.code, "UNAUTHORIZED");
  assert.match(again.body.error, /replay/);
  // a 400 (bad body) also uses the signature up
  const bad = '{"name":"x"}';
  const badSig = signature(HOOK, "PUT", "/internal/users/bob", bad);
  assert.equal((await withHeader("PUT", "/users/bob", bad, badSig)).status, 400);
  assert.equal((await withHeader("PUT", "/users/bob", bad, badSig)).status, 401);
  // a retry signed afresh (another t) goes through
  assert.equal((await internal("PUT", "/users/bob", user("bob"))).status, 200);
  assert.equal((await internal("PUT", "/users/bob", user("bob"))).status, 200);
  assert.equal(await roleOf("bob"), "FORBIDDEN");
});

test("a timestamp more than 300 s away, the old sha256= form and malformed headers are refused", async () => {
  const raw = JSON.stringify(user("mallory", "admin"));
  for (const t of [now() - 400, now() + 400]) {
    const r = await withHeader("PUT", "/users/mallory", raw, signature(HOOK, "PUT", "/internal/users/mallory", raw, t));
    assert.equal(r.status, 401, `t=${t}`);
    assert.match(r.body.error, /300 s/);
  }
  const old = "sha256=" + createHmac("sha256", HOOK).update(raw).digest("hex");
  const oldForm = await withHeader("PUT", "/users/mallory", raw, old);
  assert.equal(oldForm.status, 401);
  assert.match(oldForm.body.error, /malformed/);
  const good = signature(HOOK, "PUT", "/internal/users/mallory", raw, now() - 100);
  const v1 = good.split("v1=")[1];
  for (const h of [`v1=${v1}`, `t=${now()}`, `t=abc,v1=${v1}`, `t=${now() - 100},v1=${v1.slice(2)}`, `t=${now() - 100};v1=${v1}`]) {
    const r = await withHeader("PUT", "/users/mallory", raw, h);
    assert.equal(r.status, 401, h);
    assert.equal(r.body.code, "UNAUTHORIZED");
  }
  assert.equal(await roleOf("mallory"), "FORBIDDEN");
  // spaces after commas and a second v1 (key rotation) are accepted
  const t = now() - 5;
  const other = createHmac("sha256", "an-old-key").update(`${t}.PUT./internal/users/mallory.${raw}`).digest("hex");
  const rotated = `t=${t}, v1=${other}, v1=` + signature(HOOK, "PUT", "/internal/users/mallory", raw, t).split("v1=")[1];
  assert.equal((await withHeader("PUT", "/users/mallory", raw, rotated)).status, 200);
  assert.equal(await roleOf("mallory"), "admin");
  assert.equal((await internal("PUT", "/users/mallory", user("mallory"))).status, 200);
});

test("the signing examples of docs/security.md (shell, Node, Python) work as written", async () => {
  const { readFileSync, writeFileSync, mkdtempSync, rmSync } = await import("node:fs");
  const { execFileSync } = await import("node:child_process");
  const { tmpdir } = await import("node:os");
  const path = await import("node:path");
  const doc = readFileSync(new URL("../../docs/security.md", import.meta.url), "utf8");
  const block = (lang) => {
    const m = doc.match(new RegExp("```" + lang + "\\n([\\s\\S]*?)```"));
    assert.ok(m, `a ${lang} example in docs/security.md`);
    // the examples talk to the default port; this server listens elsewhere
    return m[1].replaceAll("http://127.0.0.1:4000", srv.url).replaceAll("alice", `alice_${lang}`);
  };
  const dir = mkdtempSync(path.join(tmpdir(), "rt-sign-"));
  try {
    const env = { ...process.env, WEBHOOK_SECRET: HOOK };
    for (const [lang, file, cmd] of [["sh", "a.sh", "sh"], ["js", "a.mjs", process.execPath], ["python", "a.py", "python3"]]) {
      writeFileSync(path.join(dir, file), block(lang));
      const out = execFileSync(cmd, [path.join(dir, file)], { env, encoding: "utf8", timeout: 20000 });
      assert.match(out, /success/, `${lang} printed ${out}`);
      // the user it stored connects
      const s = io(srv.url, { forceNew: true, reconnection: false, transports: ["websocket"], auth: { token: hsToken(SECRET, `alice_${lang}`) } });
      await once(s, "connect");
      s.close();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
