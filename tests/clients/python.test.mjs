// python-socketio connects unchanged: websocket, polling, polling+upgrade.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import path from "node:path";
import { startServer } from "./common.mjs";

const script = path.join(path.dirname(fileURLToPath(import.meta.url)), "..", "python_client.py");
let srv;
before(async () => { srv = await startServer(); });
after(async () => { await srv.stop(); });

test("python-socketio client: events, binary and acks over every transport", async () => {
  const out = await new Promise((resolve, reject) => {
    execFile(process.env.PYTHON || "python3", [script, srv.url], { timeout: 60000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`python client failed: ${err.message}\n${stderr}`));
      else resolve(stdout);
    });
  });
  const runs = out.trim().split("\n").map((l) => JSON.parse(l));
  assert.equal(runs.length, 3);
  for (const r of runs) {
    assert.equal(r.final, r.transports[r.transports.length - 1]);
    assert.deepEqual(r.auth, { token: "py" });
    assert.deepEqual(r.back, [{ a: 1 }, "0102"]);
    assert.deepEqual(r.ack, [1, "two"]);
  }
});
