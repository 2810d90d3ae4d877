// A client that stops reading is closed once its bounded outbound queue fills; everyone
// else keeps getting every broadcast, and the server's memory does not run away.
import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { startServer, connect, once, until } from "./common.mjs";
import { rawWs } from "./ws.mjs";

let srv;
before(async () => { srv = await startServer(["--max-queued-bytes", `${4 << 20}`, "--ping-interval", "5000", "--ping-timeout", "5000"]); });
after(async () => { await srv.stop(); });

const rssKb = (pid) => Number(readFileSync(`/proc/${pid}/status`, "utf8").match(/VmRSS:\s+(\d+)/)[1]);

test("slow consumer is disconnected, fast members get everything", async () => {
  const slow = rawWs(srv.url);
  await slow.handshake();
  slow.send('42["join","flood"]');
  const fast = await connect(srv.url, "/", { transports: ["websocket"] });
  await fast.timeout(2000).emitWithAck("join", "flood");
  // let the join land before the slow client stops reading
  await new Promise((r) => setTimeout(r, 100));
  slow.ws._socket.pause();

  let received = 0;
  let fastGone = null;
  fast.on("disconnect", (r) => (fastGone = r));
  fast.on("room-message", () => received++);
  const sender = await connect(srv.url, "/", { transports: ["websocket"] });
  const chunk = "x".repeat(16 * 1024);
  const total = 1500; // ~24 MB towards the slow client: far beyond socket buffers
  const before = rssKb(srv.proc.pid);
  for (let i = 0; i < total; i++) {
    sender.emit("to-room", "flood", i, chunk);
    if (i % 10 === 9) await new Promise((r) => setTimeout(r, 1));
    // The fast member keeps up: the sender stays at most 100 messages (1.6 MB) ahead of
    // what it has read, below the 4 MiB budget, however busy this test process is; the
    // paused one still gets all ~24 MB thrown at it.
    if (i % 50 === 49) await until(() => received >= i - 100 || fastGone, 20000, "the fast member to keep up");
  }
  await until(() => received === total || fastGone, 20000, `fast member to get ${total}`);
  assert.equal(fastGone, null, "the fast member stays connected");
  assert.equal(received, total);
  slow.ws._socket.resume();
  const { code } = await slow.waitClose(5000);
  assert.equal(code, 1005);
  const growthMb = (rssKb(srv.proc.pid) - before) / 1024;
  assert.ok(growthMb < 64, `server RSS grew ${growthMb.toFixed(1)} MB`);
  sender.disconnect();
  fast.disconnect();
});
