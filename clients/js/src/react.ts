// React hooks over a RealtimeClient: put one client in a <RealtimeProvider>, then
// useSocket(), useChat(roomId), useRooms(), useNotifications() and usePresence(roomId)
// anywhere below it.
import { createContext, createElement, useCallback, useContext, useEffect, useState, type ReactNode } from "react";
import { RealtimeClient, RealtimeError, type ChatMessage, type ChatSocket, type RoomSnapshot, type RoomSummary, type Status } from "./client.js";
import type { Notification, NotificationsJobProgressPayload } from "./events.gen.js";

const ClientContext = createContext<RealtimeClient | null>(null);

/** Makes `client` available to the hooks below it. */
export function RealtimeProvider(props: { client: RealtimeClient; children?: ReactNode }) {
  return createElement(ClientContext.Provider, { value: props.client }, props.children);
}

function useClient(): RealtimeClient {
  const c = useContext(ClientContext);
  if (!c) throw new Error("realtime hooks need a <RealtimeProvider client={...}> above them");
  return c;
}

/** The client, its typed `/` socket and the connection status (re-renders on change). */
export function useSocket(): { client: RealtimeClient; socket: ChatSocket; status: Status } {
  const client = useClient();
  const [status, setStatus] = useState<Status>(client.status);
  useEffect(() => {
    setStatus(client.status);
    return client.onStatus(setStatus);
  }, [client]);
  return { client, socket: client.chat, status };
}

/** Rooms joined through hooks, counted per client so two components can share one. */
const holders = new WeakMap<RealtimeClient, Map<string, number>>();

function hold(client: RealtimeClient, roomId: string): () => void {
  const m = holders.get(client) ?? new Map<string, number>();
  holders.set(client, m);
  m.set(roomId, (m.get(roomId) ?? 0) + 1);
  return () => {
    const n = (m.get(roomId) ?? 1) - 1;
    if (n > 0) {
      m.set(roomId, n);
      return;
    }
    m.delete(roomId);
    void client.leave(roomId).catch(() => {});
  };
}

/** Follows one room: joins it while mounted (again after reconnects, caught up with room:sync). */
function useRoom(roomId: string): { room: RoomSnapshot | undefined; error: RealtimeError | undefined } {
  const client = useClient();
  const [room, setRoom] = useState<RoomSnapshot | undefined>(() => client.room(roomId));
  const [error, setError] = useState<RealtimeError | undefined>();
  useEffect(() => {
    let live = true;
    setRoom(client.room(roomId));
    setError(undefined);
    const off = client.onRoom((r) => {
      if (live && r.roomId === roomId) setRoom(r);
    });
    const release = hold(client, roomId);
    client.join(roomId).then(
      (r) => live && setRoom(r),
      (e: RealtimeError) => live && setError(e),
    );
    return () => {
      live = false;
      off();
      release();
    };
  }, [client, roomId]);
  return { room, error };
}

export interface UseChat {
  /** The room's messages, oldest first, each once (history, live, caught up). */
  messages: readonly ChatMessage[];
  /** Sends with a clientMsgId, retried across reconnects until acked. */
  send: (text: string, extra?: { replyToId?: string }) => Promise<{ messageId: string; clientMsgId: string }>;
  /** Users typing now. */
  typing: readonly string[];
  startTyping: () => void;
  stopTyping: () => void;
  /** Moves this user's read marker. */
  markRead: (lastReadMessageId: string) => Promise<void>;
  /** Replaces the text of one of this user's messages. */
  edit: (messageId: string, text: string) => Promise<void>;
  /** Deletes a message (own; any for an admin): it stays in `messages`, blanked. */
  remove: (messageId: string) => Promise<void>;
  /** Turns this user's reaction with `emoji` on or off. */
  react: (messageId: string, emoji: string, on: boolean) => Promise<void>;
  /** userId → the last message that user read (chat:read-receipt). */
  receipts: Readonly<Record<string, string>>;
  memberCount: number;
  joined: boolean;
  error: RealtimeError | undefined;
}

/** One room's chat. */
export function useChat(roomId: string): UseChat {
  const client = useClient();
  const { room, error } = useRoom(roomId);
  const send = useCallback((text: string, extra?: { replyToId?: string }) => client.send(roomId, text, extra), [client, roomId]);
  const startTyping = useCallback(() => client.typing(roomId, true), [client, roomId]);
  const stopTyping = useCallback(() => client.typing(roomId, false), [client, roomId]);
  const markRead = useCallback((id: string) => client.markRead(roomId, id), [client, roomId]);
  const edit = useCallback((id: string, text: string) => client.edit(id, text), [client]);
  const remove = useCallback((id: string) => client.deleteMessage(id), [client]);
  const react = useCallback((id: string, emoji: string, on: boolean) => client.react(id, emoji, on), [client]);
  return {
    messages: room?.messages ?? [],
    send,
    typing: room?.typing ?? [],
    startTyping,
    stopTyping,
    markRead,
    edit,
    remove,
    react,
    receipts: room?.receipts ?? {},
    memberCount: room?.memberCount ?? 0,
    joined: room !== undefined && room.memberCount > 0,
    error,
  };
}

export interface UseRooms {
  /** The user's rooms, newest last message first, each with `unread` and `lastMessage`. */
  rooms: readonly RoomSummary[];
  /** Asks again now (it also asks on connect, and shortly after messages and read markers move). */
  refresh: () => Promise<void>;
  error: RealtimeError | undefined;
}

/** The user's room list with unread counts (`rooms:list`), kept fresh: asked again on every
 * (re)connect and at most every `settleMs` (default 500) while messages arrive, edits and
 * deletes happen or this user's markers move. */
export function useRooms(settleMs = 500): UseRooms {
  const client = useClient();
  const [rooms, setRooms] = useState<readonly RoomSummary[]>([]);
  const [error, setError] = useState<RealtimeError | undefined>();
  const refresh = useCallback(async () => {
    try {
      setRooms(await client.roomsList());
      setError(undefined);
    } catch (e) {
      setError(e instanceof RealtimeError ? e : new RealtimeError(String(e), "INTERNAL"));
    }
  }, [client]);
  useEffect(() => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const soon = () => {
      if (timer === undefined) timer = setTimeout(() => { timer = undefined; void refresh(); }, settleMs);
    };
    const s = client.chat;
    const moved = ["chat:message", "chat:message-deleted", "room:removed"] as const;
    for (const e of moved) s.on(e, soon);
    const offRead = client.onRead(soon);
    const offStatus = client.onStatus((st) => { if (st === "connected") void refresh(); });
    if (client.status === "connected") void refresh();
    return () => {
      clearTimeout(timer);
      for (const e of moved) s.off(e, soon);
      offRead();
      offStatus();
    };
  }, [client, refresh, settleMs]);
  return { rooms, refresh, error };
}

/** Who is in a room: the member count (users, cluster-wide), the users seen present (the
 * join's `online` list where the server sends one, then `room:member-update`s), and typists. */
export function usePresence(roomId: string): { memberCount: number; present: readonly string[]; typing: readonly string[] } {
  const { room } = useRoom(roomId);
  return { memberCount: room?.memberCount ?? 0, present: room?.present ?? [], typing: room?.typing ?? [] };
}

export interface UseNotifications {
  /** Stored notifications, newest first (the unread backlog on connect, then live ones). */
  items: readonly (Notification & { read?: boolean })[];
  unread: number;
  /** Marks notifications read (here and on the server). */
  markRead: (ids: string[]) => Promise<void>;
  /** The latest `job:progress` of each job. */
  jobs: Readonly<Record<string, NotificationsJobProgressPayload>>;
}

/** The user's notifications, over the `/notifications` namespace. */
export function useNotifications(): UseNotifications {
  const client = useClient();
  const [items, setItems] = useState<(Notification & { read?: boolean })[]>([]);
  const [unread, setUnread] = useState(0);
  const [jobs, setJobs] = useState<Record<string, NotificationsJobProgressPayload>>({});
  useEffect(() => {
    const s = client.notifications();
    const onBacklog = (b: { items: Notification[]; unread: number }) => {
      // oldest first from the server; kept newest first, merged with what arrived live
      setItems((prev) => {
        const seen = new Set(prev.map((n) => n.id));
        return [...prev, ...[...b.items].reverse().filter((n) => !seen.has(n.id))];
      });
      setUnread(b.unread);
    };
    const onNotification = (n: Notification) => {
      setItems((prev) => (prev.some((p) => p.id === n.id) ? prev : [{ ...n, read: false }, ...prev]));
      setUnread((u) => u + 1);
    };
    const onJob = (j: NotificationsJobProgressPayload) => setJobs((prev) => ({ ...prev, [j.jobId]: j }));
    s.on("notification:backlog", onBacklog);
    s.on("notification", onNotification);
    s.on("job:progress", onJob);
    return () => {
      s.off("notification:backlog", onBacklog);
      s.off("notification", onNotification);
      s.off("job:progress", onJob);
    };
  }, [client]);
  const markRead = useCallback(async (ids: string[]) => {
    const answer = await client.notifications().timeout(5000).emitWithAck("notification:read", { ids });
    if (answer.success === false) throw new RealtimeError(answer.error, answer.code);
    const set = new Set(ids);
    setItems((prev) => prev.map((n) => (n.id && set.has(n.id) ? { ...n, read: true } : n)));
    setUnread((u) => Math.max(0, u - answer.updated));
  }, [client]);
  return { items, unread, markRead, jobs };
}
