//! Event names of the application, in one place (DESIGN section 5).

pub const AUTH_REFRESH: &str = "auth:refresh";
pub const ERROR: &str = "error";
pub const ROOM_JOIN: &str = "room:join";
pub const ROOM_LEAVE: &str = "room:leave";
pub const ROOM_MEMBER_UPDATE: &str = "room:member-update";
pub const ROOM_HISTORY: &str = "room:history";
