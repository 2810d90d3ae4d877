// Directory sync from the backend: rooms and members, checked in the SQLite file itself.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { tmpdir } from "node:os";
import path from "node:path";
import { startProduct, signedCall } from "./common.mjs";

const HOOK = "directory-hook-secret-padded-to-at-least-32-bytes";
const dbPath = path.join(tmpdir(), `rt-test-dir-${process.pid}.db`);
let srv;

const call = (method, route, body) => signedCall(srv.url, HOOK, method, route, body);

/** Rows of a query on the server's SQLite file (python's sqlite3 reads it). */
function rows(sql) {
  const out = execFileSync("python3", ["-c",
    "import sqlite3,sys,json; c=sqlite3.connect(sys.argv[1]); print(json.dumps(c.execute(sys.argv[2]).fetchall()))",
    dbPath, sql]);
  return JSON.parse(out.toString());
}

before(async () => {
  srv = await startProduct({ WEBHOOK_SECRET: HOOK, DATABASE_URL: `sqlite://${dbPath}`, JWT_SECRET: "x".repeat(32) });
  for (const id of ["u1", "u2", "u3"]) {
    const res = await call("PUT", `/users/${id}`, { name: id, email: `${id}@example.com`, role: "user", isActive: true });
    assert.equal(res.status, 200);
  }
});
after(async () => { await srv.stop(); });

test("PUT room with members, then members replaced, added and removed", async () => {
  let res = await call("PUT", "/rooms/general", { name: "General", isPublic: true, members: ["u1", "u2"] });
  assert.deepEqual([res.status, await res.json()], [200, { success: true }]);
  assert.deepEqual(rows("select id, name, is_public from rooms"), [["general", "General", 1]]);
  assert.deepEqual(rows("select user_id from room_members where room_id='general' order by user_id"), [["u1"], ["u2"]]);

  // a given list replaces the stored one; no list leaves members alone
  res = await call("PUT", "/rooms/general", { name: "General chat", isPublic: false, members: ["u2", "u3"] });
  assert.equal(res.status, 200);
  assert.deepEqual(rows("select user_id from room_members where room_id='general' order by user_id"), [["u2"], ["u3"]]);
  res = await call("PUT", "/rooms/general", { name: "General chat", isPublic: false });
  assert.equal(res.status, 200);
  assert.deepEqual(rows("select name, is_public from rooms"), [["General chat", 0]]);
  assert.equal(rows("select count(*) from room_members")[0][0], 2);

  assert.equal((await call("PUT", "/rooms/general/members/u1")).status, 200);
  assert.equal((await call("PUT", "/rooms/general/members/u1")).status, 200); // idempotent
  assert.equal((await call("DELETE", "/rooms/general/members/u2")).status, 200);
  assert.deepEqual(rows("select user_id from room_members where room_id='general' order by user_id"), [["u1"], ["u3"]]);
});

test("unknown rooms and users are 404 NOT_FOUND; bad bodies 400; nothing stored", async () => {
  const check = async (res, status, code) => {
    assert.equal(res.status, status);
    const b = await res.json();
    assert.deepEqual([b.success, b.code], [false, code]);
  };
  await check(await call("PUT", "/rooms/nope/members/u1"), 404, "NOT_FOUND");
  await check(await call("DELETE", "/rooms/nope/members/u1"), 404, "NOT_FOUND");
  await call("PUT", "/rooms/r2", { name: "R2", isPublic: true });
  await check(await call("PUT", "/rooms/r2/members/ghost"), 404, "NOT_FOUND");
  await check(await call("PUT", "/rooms/r3", { name: "R3", isPublic: true, members: ["u1", "ghost"] }), 404, "NOT_FOUND");
  await check(await call("PUT", "/rooms/r4", { name: "R4", isPublic: "yes" }), 400, "INVALID_PAYLOAD");
  await check(await call("PUT", "/rooms/r4", { name: "R4", isPublic: true, members: "u1" }), 400, "INVALID_PAYLOAD");
  assert.deepEqual(rows("select id from rooms where id in ('r3','r4')"), []);
  assert.deepEqual(rows("select count(*) from room_members where room_id='r2'"), [[0]]);
  const unsigned = await fetch(`${srv.url}/internal/rooms/r2/members/u1`, { method: "PUT" });
  await check(unsigned, 401, "UNAUTHORIZED");
});
