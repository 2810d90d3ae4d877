// The client every app otherwise writes on top of socket.io-client: a token from a callback,
// `auth:refresh` before the token expires, the joined rooms joined again and caught up with
// `room:sync` after a reconnect, sends with a `clientMsgId` retried until they are acked (the
// server stores a message once per clientMsgId), edits, deletes and reactions applied to the
// kept messages as they happen, DMs acknowledged and deduplicated by id, and followed users'
// online status kept (followed again after a reconnect).
import { io, type ManagerOptions, type Socket, type SocketOptions } from "socket.io-client";
import type {
  ChatClientToServerEvents,
  ChatServerToClientEvents,
  ChatChatMessagePayload,
  ChatChatDirectPayload,
  ChatChatReadReceiptPayload,
  ChatChatReactionPayload,
  ChatRoomMemberUpdatePayload,
  ChatRoomsListAck,
  Failure,
  UserStatus,
  NotificationsClientToServerEvents,
  NotificationsServerToClientEvents,
} from "./events.gen.js";

/** A chat message as the server sends it. */
export type ChatMessage = ChatChatMessagePayload;
/** A direct message as the server sends it. */
export type DirectMessage = ChatChatDirectPayload;
/** One room of `rooms:list`: unread count and last message. */
export type RoomSummary = Extract<ChatRoomsListAck, { success: true }>["rooms"][number];
/** The `/` socket, typed. */
export type ChatSocket = Socket<ChatServerToClientEvents, ChatClientToServerEvents>;
/** The `/notifications` socket, typed. */
export type NotificationsSocket = Socket<NotificationsServerToClientEvents, NotificationsClientToServerEvents>;

/** A refused request: the server's `{success:false, error, code}`, or `TIMEOUT` / `CLOSED`. */
export class RealtimeError extends Error {
  readonly code: string;
  constructor(message: string, code: string) {
    super(message);
    this.name = "RealtimeError";
    this.code = code;
  }
}

export type Status = "connecting" | "connected" | "disconnected";

export interface RealtimeOptions {
  /** The server's origin, e.g. `https://chat.example.com`. */
  url: string;
  /** Gives a token for the connect and for each refresh (called again whenever one is needed). */
  getToken: () => string | Promise<string>;
  /** Refresh this long before the token's `exp` (default: a fifth of its lifetime, at most 60 s). */
  refreshBeforeMs?: number;
  /** How long one attempt of a request waits for its ack (default 5000 ms). */
  ackTimeoutMs?: number;
  /** How long a send keeps retrying across reconnects before it gives up (default 60 s). */
  sendDeadlineMs?: number;
  /** Messages kept per room (default 500, the oldest dropped). */
  keepMessages?: number;
  /** Passed to socket.io-client (transports, reconnection delays, ...). */
  socket?: Partial<ManagerOptions & SocketOptions>;
  /** Start connected (default true). */
  autoConnect?: boolean;
}

type Listener<T> = (value: T) => void;

/** A tiny event emitter for the client's own events. */
class Topic<T> {
  private listeners = new Set<Listener<T>>();
  on(l: Listener<T>): () => void {
    this.listeners.add(l);
    return () => this.listeners.delete(l);
  }
  emit(v: T): void {
    for (const l of [...this.listeners]) l(v);
  }
}

/** One joined room as the client keeps it. */
interface RoomState {
  messages: ChatMessage[];
  ids: Set<string>;
  memberCount: number;
  /** users whose first socket joined since we did (room:member-update) */
  present: Set<string>;
  receipts: Map<string, string>;
  typing: Map<string, ReturnType<typeof setTimeout>>;
}

/** What a room's listeners are told. */
export interface RoomSnapshot {
  roomId: string;
  messages: readonly ChatMessage[];
  memberCount: number;
  present: readonly string[];
  typing: readonly string[];
  receipts: Readonly<Record<string, string>>;
}

/** The seconds-since-epoch `exp` of a JWT, read without verifying it (the server does that). */
export function tokenExpiry(token: string): number | undefined {
  const part = token.split(".")[1];
  if (!part) return undefined;
  try {
    const json = atob(part.replace(/-/g, "+").replace(/_/g, "/").padEnd(Math.ceil(part.length / 4) * 4, "="));
    const exp = JSON.parse(json).exp;
    return typeof exp === "number" ? exp : undefined;
  } catch {
    return undefined;
  }
}

const isFailure = (a: unknown): a is Failure => !!a && typeof a === "object" && (a as { success?: unknown }).success === false;

let counter = 0;
/** A fresh clientMsgId (random, unique per send). */
export function newClientMsgId(): string {
  const rnd = globalThis.crypto?.randomUUID?.() ?? `${Date.now().toString(36)}-${Math.random().toString(36).slice(2)}`;
  counter += 1;
  return `c-${rnd}-${counter}`;
}

/** The typed client: one `/` socket (and, on demand, one `/notifications` socket). */
export class RealtimeClient {
  readonly chat: ChatSocket;
  private readonly opts: Required<Pick<RealtimeOptions, "ackTimeoutMs" | "sendDeadlineMs" | "keepMessages">> & RealtimeOptions;
  private token = "";
  private refreshTimer: ReturnType<typeof setTimeout> | undefined;
  private rooms = new Map<string, RoomState>();
  private seenDms = new Set<string>();
  private seenDmOrder: string[] = [];
  private notificationsSocket: NotificationsSocket | undefined;
  private closed = false;
  private everConnected = false;
  private readonly statusTopic = new Topic<Status>();
  private readonly roomTopic = new Topic<RoomSnapshot>();
  private readonly dmTopic = new Topic<DirectMessage>();
  private readonly errorTopic = new Topic<RealtimeError>();
  private readonly presenceTopic = new Topic<UserStatus>();
  private readonly readTopic = new Topic<string>();
  /** Followed users and their last known status. */
  private followed = new Map<string, UserStatus>();
  status: Status = "connecting";

  constructor(options: RealtimeOptions) {
    this.opts = { ackTimeoutMs: 5000, sendDeadlineMs: 60_000, keepMessages: 500, ...options };
    this.chat = io(options.url, {
      ...options.socket,
      autoConnect: false,
      // asked on every (re)connect: a fresh token each time
      auth: (cb) => {
        void this.freshToken().then(
          (token) => cb({ token }),
          () => cb({ token: this.token }),
        );
      },
    }) as ChatSocket;
    this.chat.on("connect", () => this.onConnect());
    this.chat.on("disconnect", (reason) => {
      this.setStatus("disconnected");
      // the server ended the socket on purpose (kicked, disabled, token expired): only a
      // reconnect with a fresh token can tell which; socket.io-client does not retry it by itself
      if (reason === "io server disconnect" && !this.closed) {
        setTimeout(() => { if (!this.closed) this.chat.connect(); }, 1000);
      }
    });
    this.chat.on("connect_error", (err) => {
      const code = (err as { data?: { code?: string } }).data?.code ?? "CONNECT_ERROR";
      this.errorTopic.emit(new RealtimeError(err.message, code));
    });
    this.chat.on("chat:message", (m) => this.addMessages(m.roomId, [m]));
    this.chat.on("room:history", (h) => this.addMessages(h.roomId, h.messages as ChatMessage[]));
    this.chat.on("room:member-update", (u) => this.onMemberUpdate(u));
    this.chat.on("chat:read-receipt", (r) => this.onReceipt(r));
    this.chat.on("chat:message-updated", (u) => this.change(u.roomId, u.id, (m) => ({ ...m, text: u.text, editedAt: u.editedAt })));
    this.chat.on("chat:message-deleted", (d) => this.onDeleted(d.roomId, d.id, d.deletedAt));
    this.chat.on("chat:reaction", (r) => this.change(r.roomId, r.messageId, (m) => withReaction(m, r)));
    this.chat.on("chat:user-typing", ({ roomId, userId }) => this.setTyping(roomId, userId, true));
    this.chat.on("chat:user-stopped-typing", ({ roomId, userId }) => this.setTyping(roomId, userId, false));
    this.chat.on("user:status", (st) => this.setPresence(st));
    this.chat.on("room:removed", ({ roomId }) => {
      this.rooms.delete(roomId);
    });
    this.chat.on("chat:direct", (dm, ack) => {
      ack?.();
      if (this.seenDms.has(dm.id)) return;
      this.seenDms.add(dm.id);
      this.seenDmOrder.push(dm.id);
      if (this.seenDmOrder.length > 5000) this.seenDms.delete(this.seenDmOrder.shift() as string);
      this.dmTopic.emit(dm);
    });
    if (options.autoConnect !== false) this.connect();
  }

  /** Connects (again after `close`). */
  connect(): void {
    this.closed = false;
    this.setStatus("connecting");
    this.chat.connect();
  }

  /** Disconnects for good: no reconnects, no refreshes. */
  close(): void {
    this.closed = true;
    clearTimeout(this.refreshTimer);
    this.chat.disconnect();
    this.notificationsSocket?.disconnect();
    this.setStatus("disconnected");
  }

  onStatus(l: Listener<Status>): () => void { return this.statusTopic.on(l); }
  /** Every change of a joined room (messages, members, typing, receipts). */
  onRoom(l: Listener<RoomSnapshot>): () => void { return this.roomTopic.on(l); }
  /** Each DM once, however often it is delivered (it is acknowledged for you). */
  onDirectMessage(l: Listener<DirectMessage>): () => void { return this.dmTopic.on(l); }
  /** Refused connects and failed background work (re-joins, catch-ups). */
  onError(l: Listener<RealtimeError>): () => void { return this.errorTopic.on(l); }
  /** This user's read marker moved in a room (through `markRead`). */
  onRead(l: Listener<string>): () => void { return this.readTopic.on(l); }
  /** Every change of a followed user's status (also one missed while disconnected). */
  onPresence(l: Listener<UserStatus>): () => void { return this.presenceTopic.on(l); }

  /** A followed user's last known status (`undefined` when not followed). */
  presence(userId: string): UserStatus | undefined {
    return this.followed.get(userId);
  }

  /** Follows users' online status (again after every reconnect); answers their statuses now,
   * in order. An unknown id rejects with `NOT_FOUND` and follows none of them; the server
   * allows 2,000 followed users per connection (`RATE_LIMITED` beyond). */
  async follow(userIds: string[]): Promise<UserStatus[]> {
    const ids = [...new Set(userIds)];
    await this.connected(Date.now() + this.opts.sendDeadlineMs);
    const statuses: UserStatus[] = [];
    for (let i = 0; i < ids.length; i += 500) {
      const ack = (await this.request("presence:subscribe", { userIds: ids.slice(i, i + 500) as [string, ...string[]] })) as { statuses: UserStatus[] };
      for (const st of ack.statuses) {
        this.followed.set(st.userId, st);
        statuses.push(st);
      }
    }
    return statuses;
  }

  /** Stops following users. */
  async unfollow(userIds: string[]): Promise<void> {
    for (const id of userIds) this.followed.delete(id);
    const ids = [...new Set(userIds)];
    for (let i = 0; i < ids.length && this.chat.connected; i += 500) {
      await this.request("presence:unsubscribe", { userIds: ids.slice(i, i + 500) as [string, ...string[]] });
    }
  }

  /** The room's state now (`undefined` until joined). */
  room(roomId: string): RoomSnapshot | undefined {
    const r = this.rooms.get(roomId);
    return r && this.snapshot(roomId, r);
  }

  /** Joins a room (and again after every reconnect, then catches up with room:sync). */
  async join(roomId: string): Promise<RoomSnapshot> {
    if (!this.rooms.has(roomId)) this.rooms.set(roomId, emptyRoom());
    await this.connected(Date.now() + this.opts.sendDeadlineMs);
    await this.joinNow(roomId).done;
    return this.snapshot(roomId, this.rooms.get(roomId) as RoomState);
  }

  /** Leaves a room. */
  async leave(roomId: string): Promise<void> {
    this.rooms.delete(roomId);
    if (this.chat.connected) await this.request("room:leave", roomId);
  }

  /** Sends a message: a clientMsgId is attached and the send retried across reconnects until
   * it is acked (the server stores it once); refusals (too long, forbidden) reject at once. */
  async send(roomId: string, text: string, extra: { replyToId?: string; clientMsgId?: string } = {}): Promise<{ messageId: string; clientMsgId: string }> {
    const clientMsgId = extra.clientMsgId ?? newClientMsgId();
    const payload = { roomId, text, clientMsgId, ...(extra.replyToId ? { replyToId: extra.replyToId } : {}) };
    const deadline = Date.now() + this.opts.sendDeadlineMs;
    for (;;) {
      try {
        const ack = await this.request("chat:send", payload);
        return { messageId: (ack as { messageId: string }).messageId, clientMsgId };
      } catch (e) {
        const code = (e as RealtimeError).code;
        // the outcome is unknown (no ack) or the server asks for a retry: the same clientMsgId again
        const retry = code === "TIMEOUT" || code === "CLOSED" || code === "RATE_LIMITED" || code === "INTERNAL";
        if (!retry || Date.now() > deadline || this.closed) throw e;
        await this.connected(deadline);
        if (code === "RATE_LIMITED") await sleep(250);
      }
    }
  }

  /** Replaces the text of one of this user's messages (the room hears `chat:message-updated`). */
  async edit(messageId: string, text: string): Promise<void> {
    await this.request("chat:edit", { messageId, text });
  }

  /** Deletes a message: this user's own, or any as a user whose stored role is admin. It stays
   * in place in every room's list, blanked (`text: ""`, `deletedAt`). */
  async deleteMessage(messageId: string): Promise<void> {
    await this.request("chat:delete", { messageId });
  }

  /** Turns this user's reaction with `emoji` on or off (a message carries at most 20
   * distinct emoji: the 21st rejects with `RATE_LIMITED`). */
  async react(messageId: string, emoji: string, on: boolean): Promise<void> {
    await this.request("chat:react", { messageId, emoji, on });
  }

  /** The rooms this user is a member of or has read in, newest last message first, each with
   * its `unread` count (at most 999) and `lastMessage`. */
  async roomsList(): Promise<RoomSummary[]> {
    const ack = (await this.request("rooms:list", {})) as { rooms: RoomSummary[] };
    return ack.rooms;
  }

  /** Moves this user's read marker. */
  async markRead(roomId: string, lastReadMessageId: string): Promise<void> {
    await this.request("chat:read", { roomId, lastReadMessageId });
    this.readTopic.emit(roomId);
  }

  /** Says this user is typing (or stopped) in a room. */
  typing(roomId: string, on: boolean): void {
    if (this.chat.connected) this.chat.emit(on ? "chat:typing-start" : "chat:typing-stop", { roomId }, () => {});
  }

  /** Sends a DM. */
  async directMessage(targetId: string, message: string): Promise<{ id: string; delivered: boolean }> {
    return (await this.request("user:direct-message", { targetId, message })) as { id: string; delivered: boolean };
  }

  /** The `/notifications` socket, opened on first use with the same token source. */
  notifications(): NotificationsSocket {
    if (!this.notificationsSocket) {
      this.notificationsSocket = this.chat.io.socket("/notifications", {
        auth: (cb) => {
          void this.freshToken().then((token) => cb({ token }), () => cb({ token: this.token }));
        },
      }) as NotificationsSocket;
      this.notificationsSocket.connect();
    }
    return this.notificationsSocket;
  }

  /** Sends an event with an ack; rejects with the server's failure, `TIMEOUT` or `CLOSED`. */
  async request<E extends keyof ChatClientToServerEvents>(event: E, payload: Parameters<ChatClientToServerEvents[E]>[0]): Promise<unknown> {
    if (!this.chat.connected) throw new RealtimeError("not connected", "CLOSED");
    let answer: unknown;
    try {
      // eslint-disable-next-line @typescript-eslint/no-explicit-any
      answer = await (this.chat.timeout(this.opts.ackTimeoutMs) as any).emitWithAck(event, payload);
    } catch {
      throw new RealtimeError(`${String(event)}: no answer`, this.chat.connected ? "TIMEOUT" : "CLOSED");
    }
    if (isFailure(answer)) throw new RealtimeError(answer.error, answer.code);
    return answer;
  }

  // --- internals ---

  /** `presence:subscribe` in calls of 500; statuses of followed users are updated (and told
   * when they changed). */
  private async subscribe(ids: string[]): Promise<void> {
    for (let i = 0; i < ids.length; i += 500) {
      const ack = (await this.request("presence:subscribe", { userIds: ids.slice(i, i + 500) as [string, ...string[]] })) as { statuses: UserStatus[] };
      for (const st of ack.statuses) this.setPresence(st);
    }
  }

  private setPresence(st: UserStatus): void {
    const known = this.followed.get(st.userId);
    if (!known) return;
    this.followed.set(st.userId, st);
    if (known.status !== st.status || known.lastSeen !== st.lastSeen) this.presenceTopic.emit(st);
  }

  private setStatus(s: Status): void {
    if (this.status === s) return;
    this.status = s;
    this.statusTopic.emit(s);
  }

  private async freshToken(): Promise<string> {
    const exp = tokenExpiry(this.token);
    if (!this.token || (exp !== undefined && exp * 1000 - Date.now() < 5000)) {
      this.token = await this.opts.getToken();
    }
    return this.token;
  }

  private onConnect(): void {
    this.scheduleRefresh();
    const again = this.everConnected;
    this.everConnected = true;
    if (!again) {
      this.setStatus("connected");
      return;
    }
    // a new socket: the rooms are joined again before the client says it is connected (so a
    // retried send finds its room joined), then caught up in the background
    const rejoins = [...this.rooms.keys()].map((roomId) => this.joinNow(roomId));
    void Promise.allSettled(rejoins.map((r) => r.joined)).then(() => {
      if (this.chat.connected) this.setStatus("connected");
    });
    for (const r of rejoins) void r.done.catch((e: RealtimeError) => this.errorTopic.emit(e));
    // followed again: a change missed while away is told now
    if (this.followed.size > 0) {
      void this.subscribe([...this.followed.keys()]).catch((e: RealtimeError) => this.errorTopic.emit(e));
    }
  }

  /** Joins `roomId` now: `joined` settles with the join's ack, `done` after the catch-up. */
  private joinNow(roomId: string): { joined: Promise<void>; done: Promise<void> } {
    const last = this.rooms.get(roomId)?.messages.at(-1)?.id;
    const joined = this.request("room:join", roomId).then((answer) => {
      const ack = answer as { memberCount: number; online?: string[] };
      const room = this.rooms.get(roomId);
      if (!room) return;
      room.memberCount = ack.memberCount;
      if (Array.isArray(ack.online)) room.present = new Set(ack.online);
      this.publish(roomId);
    });
    const done = joined.then(() => (last && this.rooms.has(roomId) ? this.catchUp(roomId, last) : undefined));
    return { joined, done };
  }

  /** `room:sync` after `after` until nothing more: everything missed while away. */
  private async catchUp(roomId: string, after: string): Promise<void> {
    let cursor = after;
    for (let page = 0; page < 50; page++) {
      const ack = (await this.request("room:sync", { roomId, afterMessageId: cursor })) as { messages: ChatMessage[]; hasMore: boolean };
      this.addMessages(roomId, ack.messages);
      const next = ack.messages.at(-1)?.id;
      if (!ack.hasMore || !next) return;
      cursor = next;
    }
  }

  private addMessages(roomId: string, list: readonly ChatMessage[]): void {
    const room = this.rooms.get(roomId);
    if (!room || list.length === 0) return;
    let changed = false;
    for (const m of list) {
      if (room.ids.has(m.id)) {
        // history and catch-ups carry the stored state: an edit or delete missed while away
        const i = room.messages.findIndex((k) => k.id === m.id);
        if (i >= 0 && newer(m, room.messages[i])) {
          room.messages[i] = m;
          changed = true;
        }
        continue;
      }
      room.ids.add(m.id);
      room.messages.push(m);
      changed = true;
    }
    if (!changed) return;
    // ids are time-ordered: keep the list in server order whatever the arrival order
    room.messages.sort((a, b) => (a.timestamp - b.timestamp) || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
    while (room.messages.length > this.opts.keepMessages) {
      const old = room.messages.shift() as ChatMessage;
      room.ids.delete(old.id);
    }
    this.publish(roomId);
  }

  /** Applies `f` to message `id` of a kept room (nothing when it is not kept). */
  private change(roomId: string, id: string, f: (m: ChatMessage) => ChatMessage): void {
    const room = this.rooms.get(roomId);
    const i = room?.messages.findIndex((m) => m.id === id) ?? -1;
    if (!room || i < 0) return;
    room.messages[i] = f(room.messages[i]);
    this.publish(roomId);
  }

  /** A delete: the message blanked in place, replies to it show an empty quote. */
  private onDeleted(roomId: string, id: string, deletedAt: number): void {
    const room = this.rooms.get(roomId);
    if (!room) return;
    room.messages = room.messages.map((m) => {
      if (m.id === id) {
        const { reactions: _gone, ...rest } = m;
        return { ...rest, text: "", deletedAt };
      }
      if (m.replyTo?.id === id) return { ...m, replyTo: { ...m.replyTo, text: "" } };
      return m;
    });
    this.publish(roomId);
  }

  private onMemberUpdate(u: ChatRoomMemberUpdatePayload): void {
    const room = this.rooms.get(u.roomId);
    if (!room) return;
    room.memberCount = u.memberCount;
    if (u.type === "joined") room.present.add(u.userId);
    else room.present.delete(u.userId);
    this.publish(u.roomId);
  }

  private onReceipt(r: ChatChatReadReceiptPayload): void {
    const room = this.rooms.get(r.roomId);
    if (!room) return;
    room.receipts.set(r.userId, r.lastReadMessageId);
    this.publish(r.roomId);
  }

  private setTyping(roomId: string, userId: string, on: boolean): void {
    const room = this.rooms.get(roomId);
    if (!room) return;
    clearTimeout(room.typing.get(userId));
    room.typing.delete(userId);
    // the server stops a typist by itself after 3 s; a lost stop must not leave one forever
    if (on) room.typing.set(userId, setTimeout(() => this.setTyping(roomId, userId, false), 6000));
    this.publish(roomId);
  }

  private publish(roomId: string): void {
    const room = this.rooms.get(roomId);
    if (room) this.roomTopic.emit(this.snapshot(roomId, room));
  }

  private snapshot(roomId: string, r: RoomState): RoomSnapshot {
    return {
      roomId,
      messages: [...r.messages],
      memberCount: r.memberCount,
      present: [...r.present],
      typing: [...r.typing.keys()],
      receipts: Object.fromEntries(r.receipts),
    };
  }

  private scheduleRefresh(): void {
    clearTimeout(this.refreshTimer);
    const exp = tokenExpiry(this.token);
    if (exp === undefined || this.closed) return;
    const lifetime = exp * 1000 - Date.now();
    const before = this.opts.refreshBeforeMs ?? Math.min(60_000, Math.max(1000, lifetime / 5));
    this.refreshTimer = setTimeout(() => void this.refresh(), Math.max(0, lifetime - before));
  }

  /** `auth:refresh` with a fresh token: the socket stays, only its expiry moves. */
  private async refresh(): Promise<void> {
    if (this.closed || !this.chat.connected) return;
    try {
      const token = await this.opts.getToken();
      await this.request("auth:refresh", { token });
      this.token = token;
      const n = this.notificationsSocket;
      if (n?.connected) await n.timeout(this.opts.ackTimeoutMs).emitWithAck("auth:refresh", { token });
    } catch (e) {
      this.errorTopic.emit(e instanceof RealtimeError ? e : new RealtimeError(String(e), "REFRESH_FAILED"));
    }
    this.scheduleRefresh();
  }

  private connected(deadline: number): Promise<void> {
    if (this.chat.connected) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => { off(); reject(new RealtimeError("not connected in time", "CLOSED")); }, Math.max(0, deadline - Date.now()));
      const off = this.statusTopic.on((s) => {
        if (s === "connected") { clearTimeout(timer); off(); resolve(); }
      });
    });
  }
}

/** Whether `incoming` is a later state of the same message than `kept`. */
function newer(incoming: ChatMessage, kept: ChatMessage): boolean {
  if (kept.deletedAt !== undefined) return false;
  if (incoming.deletedAt !== undefined) return true;
  if ((incoming.editedAt ?? 0) !== (kept.editedAt ?? 0)) return (incoming.editedAt ?? 0) > (kept.editedAt ?? 0);
  return JSON.stringify(incoming.reactions ?? []) !== JSON.stringify(kept.reactions ?? []);
}

/** `m` with one user's reaction turned on or off (`chat:reaction`), as the server keeps it:
 * emoji in first-use order, at most 20 users shown, `count` the full number. */
function withReaction(m: ChatMessage, r: ChatChatReactionPayload): ChatMessage {
  const list = (m.reactions ?? []).map((x) => ({ ...x, userIds: [...x.userIds] }));
  const i = list.findIndex((x) => x.emoji === r.emoji);
  if (r.on) {
    if (i < 0) list.push({ emoji: r.emoji, count: 1, userIds: [r.userId] });
    else if (!list[i].userIds.includes(r.userId)) {
      list[i].count += 1;
      if (list[i].userIds.length < 20) list[i].userIds.push(r.userId);
    }
  } else if (i >= 0) {
    list[i].count = Math.max(0, list[i].count - 1);
    list[i].userIds = list[i].userIds.filter((u) => u !== r.userId);
    if (list[i].count === 0) list.splice(i, 1);
  }
  const { reactions: _old, ...rest } = m;
  return list.length > 0 ? { ...rest, reactions: list } : rest;
}

function emptyRoom(): RoomState {
  return { messages: [], ids: new Set(), memberCount: 0, present: new Set(), receipts: new Map(), typing: new Map() };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
