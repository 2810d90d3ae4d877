// A small plain WebSocket client for `GET /ws` over Node's `ws` (docs/events.md, "Plain
// WebSocket"): JSON frames `{type, payload?, id?}`, acks by id, every frame kept for the
// test to look at, and the close code and reason once it ends.
import WebSocket from "ws";

export class Plain {
  /** Opens `ws://…/ws` of the server at `httpUrl`; `token` goes in the Authorization header
   * unless `header: false`. Resolves once the socket is open (not yet authenticated). */
  static async open(httpUrl, { token, header = true, headers = {}, autoPong = true, path = "/ws" } = {}) {
    const h = { ...headers };
    if (token && header) h.Authorization = `Bearer ${token}`;
    const ws = new WebSocket(httpUrl.replace(/^http/, "ws") + path, { headers: h, autoPong });
    const p = new Plain(ws);
    await new Promise((resolve, reject) => {
      ws.once("open", resolve);
      ws.once("error", reject);
      ws.once("unexpected-response", (_req, res) => reject(Object.assign(new Error(`upgrade refused: ${res.statusCode}`), { status: res.statusCode })));
    });
    return p;
  }

  /** Opens and authenticates (header by default, else an `auth` frame); resolves with the
   * client once `auth:ok` came. */
  static async connect(httpUrl, token, { header = true } = {}) {
    const p = await Plain.open(httpUrl, { token, header });
    if (!header) p.send({ type: "auth", payload: { token } });
    const ok = await p.next("auth:ok", 5000);
    p.userId = ok.payload.userId;
    return p;
  }

  constructor(ws) {
    this.ws = ws;
    this.frames = [];
    this.waiters = [];
    this.nextId = 1;
    this.closed = new Promise((resolve) => {
      ws.on("close", (code, reason) => resolve({ code, reason: reason.toString() }));
    });
    ws.on("error", () => {});
    ws.on("message", (data, binary) => {
      const f = binary ? { type: "<binary>" } : JSON.parse(data.toString());
      this.frames.push(f);
      this.waiters = this.waiters.filter((w) => !w(f));
    });
  }

  send(obj) {
    this.ws.send(typeof obj === "string" ? obj : JSON.stringify(obj));
  }

  /** The next frame (from now, or already received and not yet taken) matching `pred`. */
  next(pred, ms = 3000) {
    const match = typeof pred === "string" ? (f) => f.type === pred : pred;
    const i = this.frames.findIndex(match);
    if (i >= 0) return Promise.resolve(this.frames.splice(i, 1)[0]);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no frame matching ${pred} in ${ms} ms; got ${JSON.stringify(this.frames)}`)), ms);
      this.waiters.push((f) => {
        if (!match(f)) return false;
        clearTimeout(timer);
        this.frames.splice(this.frames.indexOf(f), 1);
        resolve(f);
        return true;
      });
    });
  }

  /** Sends `type` with `payload` and an id; resolves with the ack's payload. */
  async call(type, payload, ms = 3000) {
    const id = this.nextId++;
    this.send(payload === undefined ? { type, id } : { type, payload, id });
    const ack = await this.next((f) => f.type === "ack" && f.id === id, ms);
    return ack.payload;
  }

  /** The close `{code, reason}` within `ms`. */
  async closeInfo(ms = 5000) {
    let timer;
    const t = new Promise((_, reject) => (timer = setTimeout(() => reject(new Error(`still open after ${ms} ms`)), ms)));
    try {
      return await Promise.race([this.closed, t]);
    } finally {
      clearTimeout(timer);
    }
  }

  close() {
    if (this.ws.readyState === WebSocket.OPEN || this.ws.readyState === WebSocket.CONNECTING) this.ws.close(1000);
  }
}
