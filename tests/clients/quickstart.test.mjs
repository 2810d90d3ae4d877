// README.md's quickstart, literally: the shell blocks run as written (through `cargo run`, in
// a fresh directory under target/ so cargo finds the project and the data stays there), and
// the client block is saved as client.mjs and run with node. Only the port differs: the
// server gets a free loopback one (HOST/PORT) and the client's URL says so.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync, existsSync } from "node:fs";
import net from "node:net";
import path from "node:path";
import { fileURLToPath } from "node:url";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const readme = readFileSync(path.join(root, "README.md"), "utf8");
const running = [];
const dirs = [];
after(() => {
  for (const p of running) if (p.exitCode === null) p.kill("SIGKILL");
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

/** The fenced block after `<!-- quickstart:NAME -->`. */
function block(name) {
  const m = new RegExp(`<!-- quickstart:${name} -->\\s*\`\`\`\\w*\\n([\\s\\S]*?)\`\`\``).exec(readme);
  assert.ok(m, `README has the quickstart:${name} block`);
  return m[1];
}
const lines = (text) => text.split("\n").map((l) => l.trim()).filter((l) => l && !l.startsWith("#"));

function freePort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.on("error", reject);
    s.listen(0, "127.0.0.1", () => { const p = s.address().port; s.close(() => resolve(p)); });
  });
}
function workDir(name) {
  const d = path.join(root, "target", `quickstart-${name}-${process.pid}`);
  rmSync(d, { recursive: true, force: true });
  mkdirSync(d, { recursive: true });
  dirs.push(d);
  // what `npm install socket.io-client` gives
  symlinkSync(path.join(root, "tests", "node_modules"), path.join(d, "node_modules"));
  return d;
}
/** Starts a long-running command of the README; resolves with its output once it listens. */
function serve(line, cwd, env) {
  return new Promise((resolve, reject) => {
    const p = spawn("bash", ["-c", `exec ${line}`], { cwd, env, stdio: ["ignore", "pipe", "pipe"] });
    running.push(p);
    let out = "";
    const timer = setTimeout(() => reject(new Error(`${line}: not listening in 120 s\n${out}`)), 120000);
    const take = (d) => {
      out += d;
      if (/listening on/.test(out)) {
        clearTimeout(timer);
        // the demo links are printed just after
        setTimeout(() => resolve({ proc: p, output: () => out }), 300);
      }
    };
    p.stdout.on("data", take);
    p.stderr.on("data", take);
    p.on("close", (code) => reject(new Error(`${line} exited with ${code}\n${out}`)));
  });
}
async function stop(p) {
  if (p.exitCode !== null) return;
  const gone = new Promise((r) => p.once("exit", r));
  p.kill("SIGINT");
  await gone;
}

test("quickstart 1: `serve --demo` serves /demo/, demo tokens and prints a working admin link", async () => {
  const [cmd] = lines(block("demo"));
  assert.equal(cmd, "cargo run --release -- serve --demo");
  const port = await freePort();
  const cwd = workDir("demo");
  const srv = await serve(cmd, cwd, { ...process.env, HOST: "127.0.0.1", PORT: String(port), RUST_LOG: "info" });
  const base = `http://127.0.0.1:${port}`;
  assert.equal((await fetch(`${base}/demo/`)).status, 200);
  const t = await fetch(`${base}/demo/token`, { method: "POST", body: JSON.stringify({ userId: "alice" }) });
  assert.equal(t.status, 200);
  const link = new RegExp(`admin dashboard: ${base}/admin/#token=([\\w.-]+)`).exec(srv.output());
  assert.ok(link, `the admin link is printed:\n${srv.output()}`);
  const { io } = await import("socket.io-client");
  const admin = io(`${base}/admin`, { forceNew: true, reconnection: false, transports: ["websocket"], auth: { token: link[1] } });
  await new Promise((resolve, reject) => { admin.once("connect", resolve); admin.once("connect_error", reject); });
  assert.equal((await admin.timeout(3000).emitWithAck("admin:stats")).success, true);
  admin.close();
  await stop(srv.proc);
});

test("quickstart 2: user add, room add, token, serve, and the client snippet receives its chat:message", async () => {
  const cmds = lines(block("setup"));
  assert.deepEqual(cmds.map((c) => c.split(" -- ")[0]), ["cargo run --release", "cargo run --release", "cargo run --release", "cargo run --release"]);
  const port = await freePort();
  const cwd = workDir("setup");
  const env = { ...process.env, HOST: "127.0.0.1", PORT: String(port) };
  for (const c of cmds.slice(0, -1)) {
    const r = spawnSync("bash", ["-c", c], { cwd, env, encoding: "utf8", timeout: 120000 });
    assert.equal(r.status, 0, `${c}\n${r.stderr}`);
    assert.doesNotMatch(r.stderr, /warning: user/, c);
  }
  assert.ok(existsSync(path.join(cwd, "alice.jwt")));
  const srv = await serve(cmds[cmds.length - 1], cwd, env);
  writeFileSync(path.join(cwd, "client.mjs"), block("client").replaceAll("127.0.0.1:4000", `127.0.0.1:${port}`));
  const r = spawnSync("node", ["client.mjs"], { cwd, encoding: "utf8", timeout: 20000 });
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), "Alice: hello from client.mjs");
  await stop(srv.proc);
});
