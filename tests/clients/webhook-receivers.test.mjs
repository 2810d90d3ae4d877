// The two webhook receivers docs/http.md gives (Node and Python) run as written against a real
// server: every outbound event they get verifies and is answered 204 (the server counts them
// sent, none failed), and a request with a forged signature gets 401. The documentation
// cannot drift from what the server sends.
import { test, after } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { readFileSync, writeFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import net from "node:net";
import { fileURLToPath } from "node:url";
import { io } from "socket.io-client";
import { startProduct, signedCall, hsToken, once, until, delay } from "./common.mjs";

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..", "..");
const SECRET = "receivers-jwt-secret-padded-to-at-least-32-bytes";
const HOOK = "receivers-hook-secret-padded-to-at-least-32-bytes";
const OUT = "receivers-outbound-secret-padded-to-32-bytes";
const dir = mkdtempSync(path.join(tmpdir(), "rt-receivers-"));
after(() => rmSync(dir, { recursive: true, force: true }));

/** The code block of `lang` in the outbound webhooks section of docs/http.md. */
function example(lang) {
  const doc = readFileSync(path.join(root, "docs", "http.md"), "utf8");
  const section = doc.slice(doc.indexOf("## Outbound webhooks"), doc.indexOf("## REST API"));
  const m = new RegExp("```" + lang + "\\n([\\s\\S]*?)```").exec(section);
  assert.ok(m, `docs/http.md has a ${lang} receiver`);
  return m[1];
}

const freePort = () => new Promise((resolve, reject) => {
  const s = net.createServer();
  s.on("error", reject);
  s.listen(0, "127.0.0.1", () => { const p = s.address().port; s.close(() => resolve(p)); });
});

async function metric(srv, outcome) {
  const text = await (await fetch(`${srv.url}/metrics`)).text();
  return Number(new RegExp(`rt_webhook_events_total\\{outcome="${outcome}"\\} (\\d+)`).exec(text)[1]);
}

for (const [lang, file, cmd] of [["js", "receiver.cjs", "node"], ["python", "receiver.py", "python3"]]) {
  test(`the ${lang === "js" ? "Node" : "Python"} receiver of docs/http.md verifies and accepts every event`, async () => {
    const port = await freePort();
    const code = example(lang).replace("8080", String(port));
    assert.ok(code.includes(String(port)), "the example listens on a port the test can set");
    const source = path.join(dir, file);
    writeFileSync(source, code);
    const receiver = spawn(cmd, [source], { env: { ...process.env, RT_OUTBOUND_SECRET: OUT }, stdio: ["ignore", "inherit", "inherit"] });
    let srv;
    try {
      await until(async () => {
        try { await fetch(`http://127.0.0.1:${port}/`, { method: "POST", body: "{}" }); return true; } catch { return false; }
      }, 10000, "the receiver listening");
      // a forged signature is refused
      const forged = await fetch(`http://127.0.0.1:${port}/hooks/realtime`, {
        method: "POST",
        headers: { "content-type": "application/json", "x-signature-256": `t=${Math.floor(Date.now() / 1000)},v1=${"0".repeat(64)}` },
        body: JSON.stringify({ id: "x", type: "user.online", timestamp: 0, data: { userId: "mallory" } }),
      });
      assert.equal(forged.status, 401);

      srv = await startProduct({
        JWT_SECRET: SECRET, WEBHOOK_SECRET: HOOK,
        RT__PRESENCE__GRACE_MS: "300",
        RT__WEBHOOKS__OUTBOUND_URL: `http://127.0.0.1:${port}/hooks/realtime?env=test`,
        RT__WEBHOOKS__OUTBOUND_SECRET: OUT,
      });
      assert.equal((await signedCall(srv.url, HOOK, "PUT", "/users/alice", { name: "Alice", email: "a@example.com", role: "user", isActive: true })).status, 200);
      assert.equal((await signedCall(srv.url, HOOK, "PUT", "/rooms/lobby", { name: "Lobby", isPublic: true })).status, 200);
      const s = io(srv.url, { forceNew: true, reconnection: false, transports: ["websocket"], auth: { token: hsToken(SECRET, "alice") } });
      await once(s, "connect");
      assert.equal((await s.timeout(3000).emitWithAck("room:join", "lobby")).success, true);
      s.disconnect();
      // user.online, room.occupied, user.offline, room.vacated
      await until(async () => (await metric(srv, "sent")) === 4, 10000, "four events accepted");
      await delay(300);
      assert.equal(await metric(srv, "sent"), 4);
      assert.equal(await metric(srv, "failed"), 0);
    } finally {
      await srv?.stop();
      receiver.kill("SIGKILL");
    }
  });
}
