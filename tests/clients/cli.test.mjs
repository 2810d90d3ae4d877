// The operator's subcommands (DESIGN 1): `user add/disable/list`, `room add`, `config check`
// and `token`'s warning, run as a user would, with their exit codes and their effects seen
// by a real socket.io-client connecting to a server on the same database.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync, mkdirSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { io } from "socket.io-client";
import { serverBinary, startProduct, hsToken, once } from "./common.mjs";

const SECRET = "cli-jwt-secret-padded-to-at-least-32-bytes!";
let dir;
let env;
let srv;

/** Runs `realtime-server ...args` in the temp dir: {code, out, err}. */
function cli(args, extra = {}) {
  const r = spawnSync(serverBinary(), args, { cwd: dir, env: { ...process.env, ...env, ...extra }, encoding: "utf8" });
  return { code: r.status, out: r.stdout, err: r.stderr };
}
async function attempt(user, nsp = "/") {
  const s = io(srv.url + nsp, { forceNew: true, reconnection: false, transports: ["websocket"], auth: { token: hsToken(SECRET, user) } });
  const outcome = await Promise.race([
    once(s, "connect", 5000).then(() => "connected"),
    once(s, "connect_error", 5000).then(([e]) => e.data?.code ?? e.message),
  ]);
  return { s, outcome };
}

before(async () => {
  dir = mkdtempSync(path.join(tmpdir(), "rt-cli-"));
  env = { DATABASE_URL: `sqlite://${path.join(dir, "rt.db")}`, JWT_SECRET: SECRET };
  srv = await startProduct(env, { cwd: dir });
});
after(async () => {
  await srv?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test("user add / disable / list: exit codes, output, and what a connecting client meets", async () => {
  assert.equal((await attempt("alice")).outcome, "TOKEN_INVALID", "unknown before");
  let r = cli(["user", "add", "alice", "--name", "Alice", "--email", "alice@example.com"]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /added user alice/);
  const ok = await attempt("alice");
  assert.equal(ok.outcome, "connected");
  ok.s.disconnect();

  assert.equal(cli(["user", "add", "root", "--admin"]).code, 0);
  const admin = await attempt("root", "/admin");
  assert.equal(admin.outcome, "connected", "the stored role counts");
  admin.s.disconnect();
  // updating leaves the fields not given as they are
  assert.equal(cli(["user", "add", "alice", "--email", "a@example.org"]).code, 0);
  r = cli(["user", "list"]);
  assert.equal(r.code, 0);
  assert.deepEqual(r.out.replace(/\n$/, "").split("\n").map((l) => l.split("\t")), [
    ["alice", "user", "true", "Alice", "a@example.org"],
    ["root", "admin", "true", "root", ""],
  ]);

  r = cli(["user", "disable", "alice"]);
  assert.equal(r.code, 0, r.err);
  assert.equal((await attempt("alice")).outcome, "ACCOUNT_DISABLED");
  assert.match(cli(["user", "list"]).out, /^alice\tuser\tfalse\t/m);
  r = cli(["user", "disable", "nobody"]);
  assert.equal(r.code, 1);
  assert.match(r.err, /unknown user nobody/);
  // adding again makes the user active
  assert.equal(cli(["user", "add", "alice"]).code, 0);
  const back = await attempt("alice");
  assert.equal(back.outcome, "connected");
  back.s.disconnect();
});

test("room add: public and private rooms, members added never removed, unknown members refused", async () => {
  for (const u of ["bob", "carol"]) assert.equal(cli(["user", "add", u]).code, 0);
  assert.equal(cli(["room", "add", "general", "--name", "General"]).code, 0);
  let r = cli(["room", "add", "team", "--private", "--member", "bob"]);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /added room team \(private\)/);
  r = cli(["room", "add", "team", "--member", "ghost"]);
  assert.equal(r.code, 1);
  assert.match(r.err, /unknown user ghost/);

  const bob = (await attempt("bob")).s;
  const carol = (await attempt("carol")).s;
  const join = (s, room) => s.timeout(3000).emitWithAck("room:join", room);
  assert.equal((await join(bob, "general")).success, true);
  assert.equal((await join(carol, "general")).success, true);
  assert.equal((await join(bob, "team")).success, true);
  assert.equal((await join(carol, "team")).code, "FORBIDDEN");
  assert.equal((await join(bob, "nowhere")).code, "NOT_FOUND");
  // --member adds; the room stays private and bob stays a member
  assert.equal(cli(["room", "add", "team", "--member", "carol"]).code, 0);
  assert.equal((await join(carol, "team")).success, true);
  const again = (await attempt("bob")).s;
  assert.equal((await join(again, "team")).success, true);
  for (const s of [bob, carol, again]) s.disconnect();
});

test("token: a token for an unknown user is printed with a warning", () => {
  const r = cli(["token", "--user", "ghost"]);
  assert.equal(r.code, 0);
  assert.match(r.out.trim(), /^[\w-]+\.[\w-]+\.[\w-]+$/);
  assert.match(r.err, /warning: user ghost is not in the database/);
  const known = cli(["token", "--user", "bob"]);
  assert.equal(known.code, 0);
  assert.doesNotMatch(known.err, /warning/);
});

test("config check: effective settings with secrets masked; unknown keys and bad values exit 1", () => {
  const secrets = {
    JWT_SECRET: "jwt-secret-value-that-is-long-enough-32",
    WEBHOOK_SECRET: "hook-secret-value-that-is-long-enough-32",
    DATABASE_URL: "postgres://app:db-Passw0rd@127.0.0.1:5/rt",
  };
  let r = cli(["config", "check"], secrets);
  assert.equal(r.code, 0, r.err);
  assert.match(r.out, /\[server\]\nhost = "0\.0\.0\.0"\nport = 4000/);
  assert.match(r.out, /jwt_secret = "\*\*\*"/);
  assert.match(r.out, /url = "postgres:\/\/app:\*\*\*@127\.0\.0\.1:5\/rt"/);
  assert.ok(!r.out.includes("db-Passw0rd") && !r.out.includes("jwt-secret-value") && !r.out.includes("hook-secret-value"));
  assert.match(r.err, /configuration OK/);

  r = cli(["config", "check"], { RT__SERVER__PROT: "1" });
  assert.equal(r.code, 1);
  assert.match(r.err, /unknown field `prot`/);
  r = cli(["config", "check"], { WEBHOOK_SECRET: "short", REDIS_URL: "redis://127.0.0.1:1/" });
  assert.equal(r.code, 1);
  assert.match(r.err, /WEBHOOK_SECRET\) must be at least 32 bytes/);
  assert.match(r.err, /CLUSTER_SECRET/);
  // a typo in a file is caught too
  mkdirSync(path.join(dir, "config"), { recursive: true });
  writeFileSync(path.join(dir, "config", "local.toml"), "[chat]\nmax_char = 10\n");
  r = cli(["config", "check"]);
  assert.equal(r.code, 1);
  assert.match(r.err, /unknown field `max_char`/);
  rmSync(path.join(dir, "config"), { recursive: true });
});
