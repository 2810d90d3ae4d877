// PlainClient: the plain WebSocket protocol of `GET /ws` (docs/events.md, "Plain WebSocket")
// for environments without socket.io-client: JSON frames {type, payload?, id?}, typed with the
// same event maps as the Socket.IO client of `/`. No reconnection: on close, connect again
// (and catch up with `room:sync`).
import type { ChatClientToServerEvents, ChatServerToClientEvents } from "./events.gen.js";

type Fn = (...args: never[]) => unknown;
/** The payload of a client event of `/`. */
export type PlainPayload<E extends keyof ChatClientToServerEvents> = Parameters<ChatClientToServerEvents[E]>[0];
/** The ack of a client event of `/`. */
export type PlainAck<E extends keyof ChatClientToServerEvents> =
  Parameters<ChatClientToServerEvents[E]> extends [unknown, infer A]
    ? A extends (answer: infer R) => void
      ? R
      : never
    : never;
/** The payload of a server event of `/`. */
export type PlainEvent<E extends keyof ChatServerToClientEvents> =
  ChatServerToClientEvents[E] extends Fn ? Parameters<ChatServerToClientEvents[E]>[0] : never;

/** What a WebSocket implementation must offer (the browser's, or Node's `ws`). */
export interface WebSocketLike {
  readyState: number;
  send(data: string): void;
  close(code?: number, reason?: string): void;
  onopen: ((ev: unknown) => void) | null;
  onmessage: ((ev: { data: unknown }) => void) | null;
  onclose: ((ev: { code: number; reason: string }) => void) | null;
  onerror: ((ev: unknown) => void) | null;
}
export type WebSocketCtor = new (url: string) => WebSocketLike;

export interface PlainOptions {
  /** The server's base URL (`https://…` or `wss://…`); `/ws` is added. */
  url: string;
  /** The user's JWT (sent in the first frame, as browsers cannot set headers). */
  token: string;
  /** A WebSocket constructor (default: the global `WebSocket`). */
  WebSocket?: WebSocketCtor;
  /** How long to wait for `auth:ok`, and for each ack (ms; default 10000). */
  timeoutMs?: number;
}

/** How a plain connection ended: the close code and its name (e.g. 4401 `TOKEN_EXPIRED`). */
export interface PlainClose {
  code: number;
  reason: string;
}

interface Frame {
  type: string;
  payload?: unknown;
  id?: number | string;
}

/** A connected plain WebSocket client of namespace `/`. */
export class PlainClient {
  /** The authenticated user. */
  userId = "";
  /** Resolves when the connection ends. */
  readonly closed: Promise<PlainClose>;
  private nextId = 1;
  private readonly waiting = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void; timer: ReturnType<typeof setTimeout> }>();
  private readonly handlers = new Map<string, Set<(payload: unknown) => void>>();
  private onClosed!: (c: PlainClose) => void;

  private constructor(private readonly ws: WebSocketLike, private readonly timeoutMs: number) {
    this.closed = new Promise((resolve) => (this.onClosed = resolve));
  }

  /** Opens `/ws`, authenticates with `token`, and resolves once the server said `auth:ok`;
   * rejects with the close (e.g. `{code: 4401, reason: "TOKEN_INVALID"}`) otherwise. */
  static connect(opts: PlainOptions): Promise<PlainClient> {
    const Ctor = opts.WebSocket ?? (globalThis as { WebSocket?: WebSocketCtor }).WebSocket;
    if (!Ctor) throw new Error("no WebSocket: pass options.WebSocket (e.g. the `ws` package)");
    const base = opts.url.replace(/^http/, "ws").replace(/\/+$/, "");
    const ws = new Ctor(`${base}/ws`);
    const client = new PlainClient(ws, opts.timeoutMs ?? 10000);
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new Error("no auth:ok in time"));
        ws.close(1000);
      }, client.timeoutMs);
      ws.onopen = () => ws.send(JSON.stringify({ type: "auth", payload: { token: opts.token } }));
      ws.onerror = () => {};
      ws.onclose = (ev) => {
        clearTimeout(timer);
        const c = { code: ev.code, reason: ev.reason };
        client.ended(c);
        reject(Object.assign(new Error(`closed ${c.code} ${c.reason}`), c));
      };
      ws.onmessage = (ev) => {
        const f = client.parse(ev.data);
        if (f?.type !== "auth:ok") return client.receive(f);
        clearTimeout(timer);
        client.userId = String((f.payload as { userId?: string } | undefined)?.userId ?? "");
        ws.onmessage = (e) => client.receive(client.parse(e.data));
        ws.onclose = (e) => client.ended({ code: e.code, reason: e.reason });
        resolve(client);
      };
    });
  }

  /** Sends an event and resolves with its ack (rejects after `timeoutMs`, or on close). */
  call<E extends keyof ChatClientToServerEvents>(event: E, payload: PlainPayload<E>): Promise<PlainAck<E>> {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.waiting.delete(id);
        reject(new Error(`${String(event)}: no ack in ${this.timeoutMs} ms`));
      }, this.timeoutMs);
      this.waiting.set(id, { resolve: resolve as (v: unknown) => void, reject, timer });
      this.ws.send(JSON.stringify({ type: event, payload, id }));
    });
  }

  /** Sends an event without waiting for an answer (failures come as the `error` event). */
  emit<E extends keyof ChatClientToServerEvents>(event: E, payload: PlainPayload<E>): void {
    this.ws.send(JSON.stringify({ type: event, payload }));
  }

  /** Listens to a server event; `chat:direct` is acknowledged (marked delivered) once the
   * handlers ran. Returns a function that stops listening. */
  on<E extends keyof ChatServerToClientEvents>(event: E, handler: (payload: PlainEvent<E>) => void): () => void {
    const set = this.handlers.get(event as string) ?? new Set();
    this.handlers.set(event as string, set);
    const h = handler as (payload: unknown) => void;
    set.add(h);
    return () => set.delete(h);
  }

  /** Closes the connection (code 1000). */
  close(): void {
    this.ws.close(1000);
  }

  private parse(data: unknown): Frame | null {
    try {
      const f = JSON.parse(String(data)) as Frame;
      return f && typeof f.type === "string" ? f : null;
    } catch {
      return null;
    }
  }

  private receive(f: Frame | null): void {
    if (!f) return;
    if (f.type === "ack" && typeof f.id === "number") {
      const w = this.waiting.get(f.id);
      if (w) {
        clearTimeout(w.timer);
        this.waiting.delete(f.id);
        w.resolve(f.payload);
      }
      return;
    }
    for (const h of this.handlers.get(f.type) ?? []) h(f.payload);
    // the server wants an answer (a DM): delivered
    if (f.id !== undefined) this.ws.send(JSON.stringify({ type: "ack", id: f.id }));
  }

  private ended(c: PlainClose): void {
    for (const [id, w] of this.waiting) {
      clearTimeout(w.timer);
      w.reject(new Error(`closed ${c.code} ${c.reason} before the ack`));
      this.waiting.delete(id);
    }
    this.onClosed(c);
  }
}
