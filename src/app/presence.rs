//! Who is in a room: users (not sockets) counted per room of a namespace, cluster-wide
//! through the bus when there is one, with this node's own count standing in while the
//! cluster does not answer (and on a single node).
//!
//! A step is per socket, so counting one socket in twice (two joins in flight) or out twice
//! changes nothing; a step is applied when it is asked (not when its future is first
//! polled), so steps reach the count in the order of the calls.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use crate::protocol::{Nsp, Room, SocketId, UserId};
use crate::socketio::bus::{PresenceChange, PresenceCount, PresenceOp, PresenceUpdate};
use crate::socketio::IoHandle;

/// A room's users, each with the ids of its sockets in the room.
type RoomUsers = HashMap<UserId, Vec<SocketId>>;

/// (namespace, room) → its users.
type Rooms = HashMap<(Nsp, Room), RoomUsers>;

/// The presence counts of the application.
#[derive(Clone, Default)]
pub struct Presence {
    /// (namespace, room) → user → sockets, on this node.
    local: Arc<Mutex<Rooms>>,
}

impl Presence {
    /// Counts socket `socket` of `user` into room `room` of `nsp`.
    pub fn join(
        &self,
        io: &IoHandle,
        nsp: &str,
        room: &str,
        user: &str,
        socket: &str,
    ) -> impl Future<Output = PresenceCount> + 'static {
        self.step(io, nsp, room, user, socket, PresenceOp::Join)
    }

    /// Counts socket `socket` of `user` out of room `room` of `nsp`.
    pub fn leave(
        &self,
        io: &IoHandle,
        nsp: &str,
        room: &str,
        user: &str,
        socket: &str,
    ) -> impl Future<Output = PresenceCount> + 'static {
        self.step(io, nsp, room, user, socket, PresenceOp::Leave)
    }

    /// The distinct users in room `room` of `nsp`.
    pub fn count(
        &self,
        io: &IoHandle,
        nsp: &str,
        room: &str,
    ) -> impl Future<Output = usize> + 'static {
        let step = self.step(io, nsp, room, "", "", PresenceOp::Count);
        async move { step.await.count }
    }

    /// The rooms of `nsp` with at least one user (at most `max`), each with its distinct
    /// users: cluster-wide, or this node's own view when the cluster does not answer.
    pub fn rooms(
        &self,
        io: &IoHandle,
        nsp: &str,
        max: usize,
    ) -> impl Future<Output = Vec<(Room, usize)>> + 'static {
        let local: Vec<(Room, usize)> = {
            let all = self.local.lock().unwrap_or_else(|e| e.into_inner());
            all.iter()
                .filter(|((n, _), users)| &**n == nsp && !users.is_empty())
                .map(|((_, room), users)| (room.clone(), users.len()))
                .take(max)
                .collect()
        };
        let cluster = io.bus().map(|bus| bus.rooms(Nsp::from(nsp), max));
        async move {
            match cluster {
                Some(ask) => ask.await.unwrap_or(local),
                None => local,
            }
        }
    }

    /// Applies a step here and in the cluster; the cluster's answer wins when it comes.
    pub fn step(
        &self,
        io: &IoHandle,
        nsp: &str,
        room: &str,
        user: &str,
        socket: &str,
        op: PresenceOp,
    ) -> impl Future<Output = PresenceCount> + 'static {
        let update = PresenceUpdate {
            nsp: Nsp::from(nsp),
            room: Room::from(room),
            user: UserId::from(user),
            socket: SocketId::from(socket),
            op,
        };
        let local = self.apply_local(&update);
        let cluster = io.bus().map(|bus| bus.presence(update));
        async move {
            match cluster {
                Some(ask) => ask.await.unwrap_or(local),
                None => local,
            }
        }
    }

    fn apply_local(&self, u: &PresenceUpdate) -> PresenceCount {
        let mut all = self.local.lock().unwrap_or_else(|e| e.into_inner());
        let key = (u.nsp.clone(), u.room.clone());
        let users = all.entry(key.clone()).or_default();
        let change = match u.op {
            PresenceOp::Join => {
                let sockets = users.entry(u.user.clone()).or_default();
                if sockets.contains(&u.socket) {
                    PresenceChange::Unchanged
                } else {
                    sockets.push(u.socket.clone());
                    if sockets.len() == 1 {
                        PresenceChange::Arrived
                    } else {
                        PresenceChange::Unchanged
                    }
                }
            }
            PresenceOp::Leave => match users.get_mut(&u.user) {
                Some(sockets) => {
                    sockets.retain(|s| *s != u.socket);
                    if sockets.is_empty() {
                        users.remove(&u.user);
                        PresenceChange::Departed
                    } else {
                        PresenceChange::Unchanged
                    }
                }
                None => PresenceChange::Unchanged,
            },
            PresenceOp::Count => PresenceChange::Unchanged,
        };
        let count = users.len();
        if count == 0 {
            all.remove(&key);
        }
        PresenceCount { change, count }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(p: &Presence, user: &str, socket: &str, op: PresenceOp) -> PresenceCount {
        p.apply_local(&PresenceUpdate {
            nsp: Nsp::from("/"),
            room: Room::from("lobby"),
            user: UserId::from(user),
            socket: SocketId::from(socket),
            op,
        })
    }

    #[test]
    fn users_not_sockets_are_counted() {
        let p = Presence::default();
        let c = step(&p, "alice", "s1", PresenceOp::Join);
        assert_eq!((c.change, c.count), (PresenceChange::Arrived, 1));
        let c = step(&p, "alice", "s2", PresenceOp::Join);
        assert_eq!((c.change, c.count), (PresenceChange::Unchanged, 1));
        let c = step(&p, "bob", "s3", PresenceOp::Join);
        assert_eq!((c.change, c.count), (PresenceChange::Arrived, 2));
        let c = step(&p, "alice", "s1", PresenceOp::Leave);
        assert_eq!((c.change, c.count), (PresenceChange::Unchanged, 2));
        let c = step(&p, "alice", "s2", PresenceOp::Leave);
        assert_eq!((c.change, c.count), (PresenceChange::Departed, 1));
    }

    #[test]
    fn repeating_a_step_changes_nothing() {
        let p = Presence::default();
        step(&p, "alice", "s1", PresenceOp::Join);
        let c = step(&p, "alice", "s1", PresenceOp::Join);
        assert_eq!((c.change, c.count), (PresenceChange::Unchanged, 1));
        step(&p, "alice", "s1", PresenceOp::Leave);
        let c = step(&p, "alice", "s1", PresenceOp::Leave);
        assert_eq!((c.change, c.count), (PresenceChange::Unchanged, 0));
        let c = step(&p, "", "", PresenceOp::Count);
        assert_eq!(c.count, 0);
    }
}
