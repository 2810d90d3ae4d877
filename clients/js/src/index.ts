// @realtime-server/client: the typed events of every namespace (generated from the server's
// AsyncAPI file) and a client that does the reconnect work. React hooks: "./react".
export * from "./events.gen.js";
export {
  RealtimeClient,
  RealtimeError,
  newClientMsgId,
  tokenExpiry,
  type ChatMessage,
  type ChatSocket,
  type DirectMessage,
  type NotificationsSocket,
  type RealtimeOptions,
  type RoomSnapshot,
  type RoomSummary,
  type Status,
} from "./client.js";
export {
  PlainClient,
  type PlainAck,
  type PlainClose,
  type PlainEvent,
  type PlainOptions,
  type PlainPayload,
  type WebSocketCtor,
  type WebSocketLike,
} from "./plain.js";
