//! Event names of the application, in one place (docs/events.md).
#![allow(missing_docs)] // each constant is the event name it spells

pub const AUTH_REFRESH: &str = "auth:refresh";
pub const ERROR: &str = "error";
pub const ROOM_JOIN: &str = "room:join";
pub const PRESENCE_SUBSCRIBE: &str = "presence:subscribe";
pub const PRESENCE_UNSUBSCRIBE: &str = "presence:unsubscribe";
pub const USER_STATUS: &str = "user:status";
pub const ROOM_LEAVE: &str = "room:leave";
pub const ROOM_MEMBER_UPDATE: &str = "room:member-update";
/// To a socket taken out of a room by the directory (docs/events.md).
pub const ROOM_REMOVED: &str = "room:removed";
pub const ROOM_HISTORY: &str = "room:history";
pub const ROOM_SYNC: &str = "room:sync";
pub const CHAT_SEND: &str = "chat:send";
pub const CHAT_MESSAGE: &str = "chat:message";
pub const CHAT_READ: &str = "chat:read";
pub const CHAT_READ_RECEIPT: &str = "chat:read-receipt";
pub const CHAT_TYPING_START: &str = "chat:typing-start";
pub const CHAT_TYPING_STOP: &str = "chat:typing-stop";
pub const CHAT_USER_TYPING: &str = "chat:user-typing";
pub const CHAT_USER_STOPPED_TYPING: &str = "chat:user-stopped-typing";
pub const DIRECT_MESSAGE: &str = "user:direct-message";
pub const CHAT_DIRECT: &str = "chat:direct";
pub const PRODUCT_WATCH: &str = "product:watch";
pub const PRODUCT_UNWATCH: &str = "product:unwatch";
pub const NOTIFICATION: &str = "notification";
pub const NOTIFICATION_BACKLOG: &str = "notification:backlog";
pub const NOTIFICATION_READ: &str = "notification:read";
pub const JOB_PROGRESS: &str = "job:progress";
pub const ADMIN_STOCK_ALERT: &str = "admin:stock-alert";
pub const BROADCAST_ALL: &str = "broadcast:all";
pub const ADMIN_ANNOUNCEMENT: &str = "admin:announcement";
pub const ADMIN_STATS: &str = "admin:stats";
pub const ADMIN_ROOMS: &str = "admin:rooms";
pub const ADMIN_ANNOUNCE: &str = "admin:announce";
pub const SYSTEM_ANNOUNCEMENT: &str = "system:announcement";
pub const ADMIN_DISCONNECT_USER: &str = "admin:disconnect-user";
pub const CHAT_EDIT: &str = "chat:edit";
pub const CHAT_DELETE: &str = "chat:delete";
pub const CHAT_REACT: &str = "chat:react";
pub const CHAT_MESSAGE_UPDATED: &str = "chat:message-updated";
pub const CHAT_MESSAGE_DELETED: &str = "chat:message-deleted";
pub const CHAT_REACTION: &str = "chat:reaction";
pub const ROOMS_LIST: &str = "rooms:list";
pub const ADMIN_MESSAGES: &str = "admin:messages";
pub const ADMIN_DELETE_MESSAGE: &str = "admin:delete-message";
pub const ADMIN_USERS: &str = "admin:users";
pub const ADMIN_USER_UPDATE: &str = "admin:user-update";
pub const ADMIN_ROOM_MEMBERS: &str = "admin:room-members";
pub const ADMIN_SOCKETS: &str = "admin:sockets";
pub const ADMIN_DISCONNECT_SOCKET: &str = "admin:disconnect-socket";

/// Names a backend may not emit (`POST /internal/emit`, docs/http.md): every event the
/// server defines, in either direction and in any namespace (those of the chat's edits,
/// reactions and room list and of the admin dashboard included), the plain WebSocket
/// protocol's frame types (Socket.IO's own reserved names are
/// `protocol::socket::RESERVED_EVENTS`).
pub const RESERVED: &[&str] = &[
    // plain WebSocket frames
    "auth",
    "auth:ok",
    "ack",
    "ping",
    "pong",
    // the server's events
    AUTH_REFRESH,
    ERROR,
    ROOM_JOIN,
    PRESENCE_SUBSCRIBE,
    PRESENCE_UNSUBSCRIBE,
    USER_STATUS,
    ROOM_LEAVE,
    ROOM_MEMBER_UPDATE,
    ROOM_REMOVED,
    ROOM_HISTORY,
    ROOM_SYNC,
    CHAT_SEND,
    CHAT_MESSAGE,
    CHAT_READ,
    CHAT_READ_RECEIPT,
    CHAT_TYPING_START,
    CHAT_TYPING_STOP,
    CHAT_USER_TYPING,
    CHAT_USER_STOPPED_TYPING,
    DIRECT_MESSAGE,
    CHAT_DIRECT,
    PRODUCT_WATCH,
    PRODUCT_UNWATCH,
    NOTIFICATION,
    NOTIFICATION_BACKLOG,
    NOTIFICATION_READ,
    JOB_PROGRESS,
    ADMIN_STOCK_ALERT,
    BROADCAST_ALL,
    ADMIN_ANNOUNCEMENT,
    ADMIN_STATS,
    ADMIN_ROOMS,
    ADMIN_ANNOUNCE,
    SYSTEM_ANNOUNCEMENT,
    ADMIN_DISCONNECT_USER,
    CHAT_EDIT,
    CHAT_DELETE,
    CHAT_REACT,
    CHAT_MESSAGE_UPDATED,
    CHAT_MESSAGE_DELETED,
    CHAT_REACTION,
    ROOMS_LIST,
    ADMIN_MESSAGES,
    ADMIN_DELETE_MESSAGE,
    // the admin dashboard's
    ADMIN_SOCKETS,
    ADMIN_DISCONNECT_SOCKET,
    ADMIN_USERS,
    ADMIN_USER_UPDATE,
    ADMIN_ROOM_MEMBERS,
];
