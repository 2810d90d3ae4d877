// A raw WebSocket Engine.IO client for tests that must send what no real client would.
import WebSocket from "ws";

export function rawWs(url, path = "/socket.io/") {
  const ws = new WebSocket(url.replace("http", "ws") + `${path}?EIO=4&transport=websocket`);
  const msgs = [];
  const waiters = [];
  let closed = null;
  ws.on("message", (d, isBinary) => {
    const m = isBinary ? Buffer.from(d) : d.toString();
    msgs.push(m);
    for (const w of waiters.splice(0)) w();
  });
  ws.on("close", (code) => {
    closed = { code, at: Date.now() };
    for (const w of waiters.splice(0)) w();
  });
  ws.on("error", () => {});
  const api = {
    ws,
    msgs,
    get closed() { return closed; },
    opened: new Promise((res, rej) => { ws.once("open", res); ws.once("error", rej); }),
    send(m) { ws.send(m); },
    /** Waits for a message matching `pred` (searching those already received too). */
    async next(pred = () => true, ms = 3000) {
      const end = Date.now() + ms;
      let seen = 0;
      for (;;) {
        for (; seen < msgs.length; seen++) if (pred(msgs[seen])) return msgs.splice(seen, 1)[0];
        if (closed) throw new Error(`socket closed (${closed.code}) while waiting`);
        const left = end - Date.now();
        if (left <= 0) throw new Error("timeout waiting for a message");
        await new Promise((r) => { waiters.push(r); setTimeout(r, left); });
      }
    },
    async waitClose(ms = 3000) {
      const end = Date.now() + ms;
      while (!closed) {
        const left = end - Date.now();
        if (left <= 0) throw new Error("timeout waiting for close");
        await new Promise((r) => { waiters.push(r); setTimeout(r, left); });
      }
      return closed;
    },
    /** Opens the engine and joins namespace `/`; resolves with the socket id. */
    async handshake() {
      await api.opened;
      await api.next((m) => typeof m === "string" && m.startsWith("0{"));
      api.send("40");
      const c = await api.next((m) => typeof m === "string" && m.startsWith("40"));
      return JSON.parse(c.slice(2)).sid;
    },
    close() { ws.terminate(); },
  };
  // answer pings so the heartbeat keeps the connection alive
  ws.on("message", (d, isBinary) => { if (!isBinary && d.toString() === "2" && api.autoPong !== false) ws.send("3"); });
  return api;
}
