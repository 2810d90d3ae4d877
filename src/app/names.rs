//! Namespace and Socket.IO room names of the application, built in one place.

/// The chat namespace.
pub const CHAT: &str = "/";
/// Per-user alerts.
pub const NOTIFICATIONS: &str = "/notifications";
/// Admins only.
pub const ADMIN: &str = "/admin";
/// Every namespace (`admin:stats` reports all three; `admin:disconnect-user` ends all).
pub const ALL: [&str; 3] = [CHAT, ADMIN, NOTIFICATIONS];

/// The admin UI's namespace (`admin_ui.namespace`), once it is mounted.
static ADMIN_UI: std::sync::OnceLock<String> = std::sync::OnceLock::new();

/// Records the admin UI's namespace (at start-up, when `admin_ui.enabled`).
pub fn set_admin_ui(nsp: &str) {
    let _ = ADMIN_UI.set(nsp.to_owned());
}

/// The namespaces only admins may use: `/admin` and the admin UI's when mounted.
pub fn admin_only() -> impl Iterator<Item = &'static str> {
    std::iter::once(ADMIN).chain(ADMIN_UI.get().map(String::as_str))
}

/// Every namespace with authenticated sockets: [`ALL`] and the admin UI's when mounted.
pub fn every() -> impl Iterator<Item = &'static str> {
    ALL.into_iter().chain(ADMIN_UI.get().map(String::as_str))
}

/// Prefix of the Socket.IO rooms that are chat rooms.
const CHAT_ROOM: &str = "room:";

/// The room of all of a user's sockets in a namespace.
pub fn user_room(user: &str) -> String {
    format!("user:{user}")
}

/// Whether presence room `room` of `/` is a user's own room (not a chat room).
pub fn is_user_room(room: &str) -> bool {
    room.starts_with("user:")
}

/// The room of a user's `/notifications` sockets.
pub fn notifications_room(user: &str) -> String {
    format!("user:{user}:notifications")
}

/// Prefix of the Socket.IO rooms of `presence:subscribe` (one per watched user).
const PRESENCE_ROOM: &str = "presence:";

/// The room of the sockets subscribed to user `user`'s status.
pub fn presence_room(user: &str) -> String {
    format!("{PRESENCE_ROOM}{user}")
}

/// Whether a Socket.IO room is a presence subscription.
pub fn is_presence_room(room: &str) -> bool {
    room.starts_with(PRESENCE_ROOM)
}

/// The Socket.IO room of chat room `id`.
pub fn chat_room(id: &str) -> String {
    format!("{CHAT_ROOM}{id}")
}

/// The chat room id of a Socket.IO room, if it is one.
pub fn chat_room_id(room: &str) -> Option<&str> {
    room.strip_prefix(CHAT_ROOM)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip() {
        assert_eq!(user_room("alice"), "user:alice");
        assert_eq!(notifications_room("alice"), "user:alice:notifications");
        assert_eq!(chat_room_id(&chat_room("lobby")), Some("lobby"));
        assert_eq!(chat_room_id("user:alice"), None);
    }
}
