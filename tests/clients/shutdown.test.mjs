// Graceful shutdown: on SIGINT every client is told (its transport closes) and the
// process exits promptly.
import { test } from "node:test";
import assert from "node:assert/strict";
import { startServer, connect, once } from "./common.mjs";

test("SIGINT closes every connection and exits", async () => {
  const srv = await startServer();
  const ws = await connect(srv.url, "/", { transports: ["websocket"] });
  const poll = await connect(srv.url, "/", { transports: ["polling"] });
  const gone = [once(ws, "disconnect", 5000), once(poll, "disconnect", 5000)];
  const exited = new Promise((r) => srv.proc.once("exit", (code, signal) => r({ code, signal })));
  srv.proc.kill("SIGINT");
  const reasons = (await Promise.all(gone)).map((a) => a[0]);
  assert.deepEqual(reasons, ["transport close", "transport close"]);
  const { code } = await exited;
  assert.equal(code, 0);
});
