// Holds socket.io admin UI connections open during a benchmark (benches/chat.sh with
// ADMIN_UI_WATCHERS=N; docs/benchmarks.md) and, when stopped (SIGTERM), prints one JSON
// line: the client events the UIs were passed and the other UI events they got.
// Loopback only.
//
//   node benches/admin_ui_watch.mjs URL ADMIN_TOKEN N
import { createRequire } from "node:module";

const require = createRequire(new URL("../tests/package.json", import.meta.url));
const { io } = require("socket.io-client");
const [url, token, n = "1"] = process.argv.slice(2);
if (!/^http:\/\/(127\.|\[::1\])/.test(url || "")) throw new Error("a loopback URL is required");
const counts = { watchers: Number(n), event_received: 0, other: 0, connect_errors: 0 };
const sockets = [];
for (let i = 0; i < counts.watchers; i++) {
  const s = io(`${url}/admin-ui`, { forceNew: true, transports: ["websocket"], auth: { username: "bench", password: token } });
  s.onAny((event) => { if (event === "event_received") counts.event_received++; else counts.other++; });
  s.on("connect_error", () => { counts.connect_errors++; });
  sockets.push(s);
}
const stop = () => {
  for (const s of sockets) s.close();
  console.log(JSON.stringify({ label: "admin-ui-watch", ...counts }));
  process.exit(0);
};
process.on("SIGTERM", stop);
process.on("SIGINT", stop);
setTimeout(stop, 30 * 60 * 1000); // bounded even if nobody stops it
