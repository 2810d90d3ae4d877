//! Directory changes applied to open sockets on every node (docs/events.md,
//! `room:removed`; docs/http.md, directory sync): the HTTP directory calls these after the database has the change, before they
//! answer. Each is a cluster-wide operation (a disconnect or a socket command relayed by the
//! bus), so every node applies it to its own sockets at once.

use serde_json::json;

use super::names::{self, chat_room, user_room};
use crate::socketio::IoHandle;

/// The socket command that closes a room to all but its listed members (handled in
/// `chat::enforce_access`).
pub const ROOM_ACCESS: &str = "room-access";

/// A user's stored record changed: a disabled user's sockets end in every namespace; a user
/// who is not (or no longer) an admin loses its `/admin` (and admin UI) sockets. Server-side disconnects:
/// clients do not reconnect by themselves.
pub fn user_changed(io: &IoHandle, user: &str, active: bool, admin: bool) {
    if !active {
        end_user(io, user);
        log::info!("user={user} disabled: its sockets are disconnected on every node");
    } else if !admin {
        for n in names::admin_only() {
            io.of(n).to(&user_room(user)).disconnect_sockets();
        }
    }
}

/// Every socket of `user` in every namespace, and every event stream of it, ends on every
/// node: server-side disconnects (`io server disconnect`, `/ws` closes 4403), after which
/// clients do not reconnect by themselves.
pub fn end_user(io: &IoHandle, user: &str) {
    let room = user_room(user);
    for n in names::every() {
        io.of(n).to(&room).disconnect_sockets();
    }
}

/// Private room `room` now admits only `members`: every socket in it of another user is
/// taken out, on every node.
pub fn room_restricted(io: &IoHandle, room: &str, members: &[String]) {
    io.of(names::CHAT)
        .to(&chat_room(room))
        .command(ROOM_ACCESS, json!({"roomId": room, "members": members}));
}
