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
