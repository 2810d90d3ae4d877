// docs/client.md's plain WebSocket snippets, as written: the browser one in headless Chromium
// on a page of the server's origin (only the token line is filled in), the Python one with
// the `websockets` package (RT_WS_URL and RT_TOKEN set). A socket.io-client user in the same
// room sees what each sends: one room, two protocols.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync, readFileSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { io } from "socket.io-client";
import { startProduct, signedCall, hsToken, once, until } from "./common.mjs";

const SECRET = "snippets-jwt-secret-padded-to-at-least-32-bytes";
const HOOK = "snippets-hook-secret-padded-to-at-least-32-bytes";
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const docs = readFileSync(path.join(root, "docs", "client.md"), "utf8");
const CHROMIUM = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].find((p) => existsSync(p));
let srv;
let watcher;
let heard;

/** The fenced block after `<!-- plain:NAME -->`. */
function block(name) {
  const m = new RegExp(`<!-- plain:${name} -->\\s*\`\`\`\\w*\\n([\\s\\S]*?)\`\`\``).exec(docs);
  assert.ok(m, `docs/client.md has the plain:${name} block`);
  return m[1];
}

before(async () => {
  srv = await startProduct({ JWT_SECRET: SECRET, WEBHOOK_SECRET: HOOK });
  for (const u of ["web", "py", "sio"]) {
    assert.equal((await signedCall(srv.url, HOOK, "PUT", `/users/${u}`, { name: u.toUpperCase(), email: `${u}@example.com`, role: "user", isActive: true })).status, 200);
  }
  assert.equal((await signedCall(srv.url, HOOK, "PUT", "/rooms/lobby", { name: "Lobby", isPublic: true })).status, 200);
  watcher = io(srv.url, { forceNew: true, reconnection: false, transports: ["websocket"], auth: { token: hsToken(SECRET, "sio") } });
  await once(watcher, "connect", 5000);
  assert.equal((await watcher.timeout(3000).emitWithAck("room:join", "lobby")).success, true);
  heard = [];
  watcher.on("chat:message", (m) => heard.push(m));
});
after(async () => {
  watcher?.disconnect();
  await srv?.stop();
});

test("the browser snippet, in Chromium: auth frame, join, send, and the room's messages", async () => {
  if (!CHROMIUM) throw new Error("chromium not found: apt-get install chromium (scripts/test.sh does)");
  const code = block("browser");
  assert.match(code, /const token = "<JWT from your backend>";/);
  const script = code.replace('"<JWT from your backend>"', JSON.stringify(hsToken(SECRET, "web")));
  const browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox", "--disable-gpu"] });
  try {
    const page = await browser.newPage();
    const logs = [];
    page.on("console", (m) => logs.push(m.text()));
    // a page of the server's own origin
    await page.goto(`${srv.url}/healthz`);
    await page.addScriptTag({ content: script });
    await until(() => heard.some((m) => m.text === "hello from a plain WebSocket" && m.sender.id === "web"), 5000, "the browser's message at the socket.io client");
    await until(() => logs.includes("joined true"), 3000, "the join logged");
    await until(() => logs.includes("WEB: hello from a plain WebSocket"), 3000, "its own message back");
    watcher.emit("chat:send", { roomId: "lobby", text: "hello, browser" });
    await until(() => logs.includes("SIO: hello, browser"), 3000, "the socket.io user's message in the page");
  } finally {
    await browser.close();
  }
});

test("the Python snippet with the websockets package: header auth, join, send", async () => {
  const file = path.join(tmpdir(), `plain-${process.pid}.py`);
  writeFileSync(file, block("python"));
  try {
    const out = await new Promise((resolve, reject) => {
      execFile(process.env.PYTHON || "python3", [file], {
        timeout: 30000,
        env: { ...process.env, RT_WS_URL: srv.url.replace(/^http/, "ws") + "/ws", RT_TOKEN: hsToken(SECRET, "py") },
      }, (err, stdout, stderr) => (err ? reject(new Error(`python snippet failed: ${err.message}\n${stderr}`)) : resolve(stdout)));
    });
    assert.match(out, /'type': 'auth:ok', 'payload': \{'userId': 'py'\}/);
    const id = /sent (\S+)/.exec(out)?.[1];
    assert.ok(id, out);
    await until(() => heard.some((m) => m.id === id && m.text === "hello from Python"), 3000, "python's message at the socket.io client");
  } finally {
    rmSync(file, { force: true });
  }
});
