//! Who is in a room: users (not sockets) counted per room of a namespace, cluster-wide
//! through the bus when there is one, with this node's own count standing in while the
//! cluster does not answer (and on a single node).
//!
//! A step is per socket, so counting one socket in twice (two joins in flight) or out twice
//! changes nothing; a step is applied when it is asked (not when its future is first
//! polled), so steps reach the count in the order of the calls.
//!
//! Users' online status and rooms' occupancy (docs/events.md) are built on the same counts: a
//! user's sockets of `/` are counted in a pseudo-room of their own, and an announced state
//! per user (per room) is kept by the cluster ([`ClusterState::arrive`](crate::socketio::ClusterState::arrive)): it
//! goes up at an arrival, and down when, a grace period after the last socket went, nothing
//! arrived meanwhile. Each change is decided by exactly one node, which tells subscribers
//! (`user:status`), stores `last_seen_at` and queues the outbound webhook event.

use std::collections::HashMap;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use serde_json::{json, Value};

use super::{events, names};
use crate::db::{users, Db};
use crate::protocol::{Nsp, Room, SocketId, UserId};
use crate::socketio::bus::{
    Arrival, PresenceChange, PresenceCount, PresenceOp, PresenceUpdate, StateKey, StateTable,
};
use crate::socketio::IoHandle;

/// The pseudo-namespace of users' online state: one presence room per user, holding the
/// user's sockets of `/` (real namespaces start with `/`).
const USERS: &str = "@users";

/// What status changes need besides the cluster.
pub struct StatusHooks {
    /// Where `last_seen_at` and outbound events are stored.
    pub db: Db,
    /// How long after its last socket a user turns offline (a room is vacated).
    pub grace: Duration,
    /// Set when outbound webhooks are on.
    pub outbound: Option<Arc<super::outbound::Hooks>>,
}

/// A room's users, each with the ids of its sockets in the room.
type RoomUsers = HashMap<UserId, Vec<SocketId>>;

/// (namespace, room) → its users.
type Rooms = HashMap<(Nsp, Room), RoomUsers>;

/// The presence counts of the application.
#[derive(Clone)]
pub struct Presence {
    /// (namespace, room) → user → sockets, on this node.
    local: Arc<Mutex<Rooms>>,
    /// The announced states when there is no cluster.
    states: Arc<Mutex<StateTable>>,
    /// Status changes (none: counts only).
    hooks: Option<Arc<StatusHooks>>,
    /// Whether the watch for dead nodes runs.
    sweeping: Arc<AtomicBool>,
}

impl Default for Presence {
    /// Counts only (no status changes); its maps are shown in `rt_state_entries`.
    fn default() -> Self {
        let p = Presence {
            local: Arc::default(),
            states: Arc::default(),
            hooks: None,
            sweeping: Arc::default(),
        };
        let rooms = |all: &Mutex<Rooms>| all.lock().unwrap_or_else(|e| e.into_inner()).len();
        let sockets = |all: &Mutex<Rooms>| {
            let all = all.lock().unwrap_or_else(|e| e.into_inner());
            all.values()
                .flat_map(|users| users.values())
                .map(Vec::len)
                .sum()
        };
        crate::metrics::track_weak("presence_rooms", &p.local, rooms);
        crate::metrics::track_weak("presence_sockets", &p.local, sockets);
        crate::metrics::track_weak("presence_states", &p.states, |t| {
            t.lock().unwrap_or_else(|e| e.into_inner()).len()
        });
        p
    }
}

impl Presence {
    /// Counts, users' status and rooms' occupancy.
    pub fn with_status(hooks: StatusHooks) -> Self {
        Presence {
            hooks: Some(Arc::new(hooks)),
            ..Presence::default()
        }
    }

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
        let cluster = io.cluster_state().map(|bus| bus.rooms(Nsp::from(nsp), max));
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
        let cluster = io.cluster_state().map(|bus| bus.presence(update));
        // rooms of `/` are occupied and vacated for outbound webhooks
        let occupancy =
            (nsp == names::CHAT && op != PresenceOp::Count && !names::is_user_room(room))
                .then(|| self.hooks.as_ref().filter(|h| h.outbound.is_some()))
                .flatten()
                .map(|_| (self.clone(), io.clone(), room.to_owned()));
        async move {
            let count = match cluster {
                Some(ask) => ask.await.unwrap_or(local),
                None => local,
            };
            if let Some((me, io, room)) = occupancy {
                match count.change {
                    PresenceChange::Arrived => me.room_arrived(&io, room),
                    PresenceChange::Departed if count.count == 0 => me.room_departed(&io, room),
                    _ => {}
                }
            }
            count
        }
    }

    /// A socket of `user` in `/` connected (or came back): counted (the future resolves
    /// once it is), and the user turns online when it was not.
    pub fn user_connected(
        &self,
        io: &IoHandle,
        user: &str,
        socket: &str,
    ) -> impl Future<Output = ()> + 'static {
        self.watch_lost_nodes(io);
        let step = self.step(io, USERS, user, user, socket, PresenceOp::Join);
        let status = self.hooks.clone().map(|hooks| {
            (
                hooks,
                self.arrive(io, user_key(user)),
                io.clone(),
                user.to_owned(),
            )
        });
        async move {
            step.await;
            let Some((hooks, arrive, io, user)) = status else {
                return;
            };
            let Some(a) = arrive.await else { return };
            if a.announce {
                let at = crate::db::now_ms();
                status_event(&io, &user, None);
                hooks.store_event(
                    format!("user:{user}"),
                    a.gen * 2,
                    "user.online",
                    json!({ "userId": user }),
                    at,
                );
            }
        }
    }

    /// A socket of `user` in `/` went: counted out, and when it was the user's last one,
    /// the user turns offline after the grace period unless a socket came back meanwhile.
    pub fn user_disconnected(&self, io: &IoHandle, user: &str, socket: &str) {
        let step = self.step(io, USERS, user, user, socket, PresenceOp::Leave);
        let (me, io, user) = (self.clone(), io.clone(), user.to_owned());
        actix_rt::spawn(async move {
            if step.await.change == PresenceChange::Departed {
                me.settle_user(&io, user, crate::db::now_ms()).await;
            }
        });
    }

    /// `user`'s last socket went at `went`: after the grace period, offline unless a
    /// socket came back (or another node turned the user offline first).
    async fn settle_user(&self, io: &IoHandle, user: String, went: i64) {
        let Some(hooks) = self.hooks.clone() else {
            return;
        };
        let key = user_key(&user);
        let gen = self.generation(io, key.clone()).await;
        if gen == 0 {
            return;
        }
        tokio::time::sleep(hooks.grace).await;
        if self.count(io, USERS, &user).await > 0 {
            return;
        }
        // stored before the state turns down, so whoever reads "offline" finds it
        let u = user.clone();
        let stored = hooks
            .db
            .run(move |c| users::set_last_seen(c, &u, went))
            .await;
        if let Err(e) = stored {
            log::warn!("cannot store last_seen_at of user {user}: {e}");
        }
        if !self.settle(io, key, gen).await {
            return;
        }
        status_event(io, &user, Some(went));
        hooks.store_event(
            format!("user:{user}"),
            gen * 2 + 1,
            "user.offline",
            json!({ "userId": user, "lastSeen": went }),
            crate::db::now_ms(),
        );
    }

    /// Once per process: while the cluster finds nodes dead, the users and rooms left up
    /// with no live socket (their sockets were on the dead node) are settled as if their
    /// last socket went now.
    fn watch_lost_nodes(&self, io: &IoHandle) {
        let Some(bus) = io.cluster_state().cloned() else {
            return;
        };
        if self.hooks.is_none() || self.sweeping.swap(true, Ordering::Relaxed) {
            return;
        }
        let (me, io) = (self.clone(), io.clone());
        actix_rt::spawn(async move {
            let mut seen = bus.lost_nodes();
            loop {
                tokio::time::sleep(Duration::from_secs(2)).await;
                let lost = bus.lost_nodes();
                if lost == seen {
                    continue;
                }
                seen = lost;
                let went = crate::db::now_ms();
                let users = bus
                    .orphans(Nsp::from(USERS), 100_000)
                    .await
                    .unwrap_or_default();
                let outbound = me.hooks.as_ref().is_some_and(|h| h.outbound.is_some());
                let rooms = if outbound {
                    bus.orphans(Nsp::from(names::CHAT), 100_000)
                        .await
                        .unwrap_or_default()
                } else {
                    Vec::new()
                };
                log::info!(
                    "{} users and {} rooms lost their last socket with a dead node",
                    users.len(),
                    rooms.len()
                );
                for user in users {
                    let (me, io) = (me.clone(), io.clone());
                    actix_rt::spawn(
                        async move { me.settle_user(&io, user.to_string(), went).await },
                    );
                }
                for room in rooms {
                    me.room_departed(&io, room.to_string());
                }
            }
        });
    }

    /// Whether each of `users` is online (cluster-wide; this node's own view when the
    /// cluster does not answer).
    pub fn statuses(
        &self,
        io: &IoHandle,
        users: &[String],
    ) -> impl Future<Output = Vec<bool>> + 'static {
        let keys: Vec<StateKey> = users.iter().map(|u| user_key(u)).collect();
        let here = {
            let all = self.local.lock().unwrap_or_else(|e| e.into_inner());
            keys.iter()
                .map(|k| all.contains_key(&(k.nsp.clone(), k.room.clone())))
                .collect::<Vec<bool>>()
        };
        let ask = match io.cluster_state() {
            Some(bus) => Err(bus.states(keys)),
            None => Ok(self.lock_states().states(&keys)),
        };
        async move {
            match ask {
                Ok(up) => up,
                Err(ask) => ask.await.unwrap_or(here),
            }
        }
    }

    /// The users of room `room` of `/` who are online now, at most `max`: with `members`
    /// (a private room) those of them online, else (a public room) the users joined to it.
    pub fn online_in(
        &self,
        io: &IoHandle,
        room: &str,
        members: Option<Vec<String>>,
        max: usize,
    ) -> impl Future<Output = Vec<String>> + 'static {
        let (me, io, room) = (self.clone(), io.clone(), room.to_owned());
        async move {
            match members {
                Some(members) => {
                    let mut out = Vec::new();
                    for chunk in members.chunks(500) {
                        let up = me.statuses(&io, chunk).await;
                        out.extend(
                            chunk
                                .iter()
                                .zip(up)
                                .filter(|(_, up)| *up)
                                .map(|(u, _)| u.clone()),
                        );
                        if out.len() >= max {
                            break;
                        }
                    }
                    out.truncate(max);
                    out
                }
                None => {
                    let local: Vec<String> = {
                        let all = me.local.lock().unwrap_or_else(|e| e.into_inner());
                        all.get(&(Nsp::from(names::CHAT), Room::from(room.as_str())))
                            .map(|users| users.keys().take(max).map(|u| u.to_string()).collect())
                            .unwrap_or_default()
                    };
                    let cluster = io.cluster_state().map(|b| {
                        b.room_users(Nsp::from(names::CHAT), Room::from(room.as_str()), max)
                    });
                    let users = match cluster {
                        Some(ask) => ask
                            .await
                            .map(|u| u.iter().map(|u| u.to_string()).collect())
                            .unwrap_or(local),
                        None => local,
                    };
                    let mut users = users;
                    users.sort();
                    users
                }
            }
        }
    }

    /// A user's first socket came into room `room` of `/`: the room is occupied when it
    /// was not.
    fn room_arrived(&self, io: &IoHandle, room: String) {
        let Some(hooks) = self.hooks.clone() else {
            return;
        };
        let arrive = self.arrive(io, room_key(&room));
        actix_rt::spawn(async move {
            if let Some(a) = arrive.await.filter(|a| a.announce) {
                hooks.store_event(
                    format!("room:{room}"),
                    a.gen * 2,
                    "room.occupied",
                    json!({ "roomId": room }),
                    crate::db::now_ms(),
                );
            }
        });
    }

    /// The last user left room `room` of `/`: vacated after the grace period unless one
    /// came back.
    fn room_departed(&self, io: &IoHandle, room: String) {
        let Some(hooks) = self.hooks.clone() else {
            return;
        };
        let (me, io) = (self.clone(), io.clone());
        actix_rt::spawn(async move {
            let key = room_key(&room);
            let gen = me.generation(&io, key.clone()).await;
            if gen == 0 {
                return;
            }
            tokio::time::sleep(hooks.grace).await;
            if me.count(&io, names::CHAT, &room).await > 0 {
                return;
            }
            if me.settle(&io, key, gen).await {
                hooks.store_event(
                    format!("room:{room}"),
                    gen * 2 + 1,
                    "room.vacated",
                    json!({ "roomId": room }),
                    crate::db::now_ms(),
                );
            }
        });
    }

    fn lock_states(&self) -> std::sync::MutexGuard<'_, StateTable> {
        self.states.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// [`ClusterState::arrive`](crate::socketio::ClusterState::arrive), or this node's table without a
    /// cluster; `None` when the cluster does not answer.
    fn arrive(
        &self,
        io: &IoHandle,
        key: StateKey,
    ) -> impl Future<Output = Option<Arrival>> + 'static {
        let ask = match io.cluster_state() {
            Some(bus) => Err(bus.arrive(key)),
            None => Ok(self.lock_states().arrive(key, crate::db::now_ms())),
        };
        async move {
            match ask {
                Ok(a) => Some(a),
                Err(ask) => ask.await,
            }
        }
    }

    /// The key's generation (0 when down, or when the cluster does not answer).
    fn generation(&self, io: &IoHandle, key: StateKey) -> impl Future<Output = i64> + 'static {
        let ask = match io.cluster_state() {
            Some(bus) => Err(bus.generation(key)),
            None => Ok(self.lock_states().generation(&key)),
        };
        async move {
            match ask {
                Ok(g) => g,
                Err(ask) => ask.await.unwrap_or(0),
            }
        }
    }

    /// Turns the key down if nothing arrived since `gen`: true for the one caller that did.
    fn settle(
        &self,
        io: &IoHandle,
        key: StateKey,
        gen: i64,
    ) -> impl Future<Output = bool> + 'static {
        let ask = match io.cluster_state() {
            Some(bus) => Err(bus.settle(key, gen)),
            None => Ok(self.lock_states().settle(&key, gen)),
        };
        async move {
            match ask {
                Ok(d) => d,
                Err(ask) => ask.await.unwrap_or(false),
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

fn user_key(user: &str) -> StateKey {
    StateKey {
        nsp: Nsp::from(USERS),
        room: Room::from(user),
    }
}

fn room_key(room: &str) -> StateKey {
    StateKey {
        nsp: Nsp::from(names::CHAT),
        room: Room::from(room),
    }
}

/// `user:status` to the subscribers of `user` on every node.
fn status_event(io: &IoHandle, user: &str, last_seen: Option<i64>) {
    let status = if last_seen.is_some() {
        "offline"
    } else {
        "online"
    };
    io.of(names::CHAT).to(&names::presence_room(user)).emit(
        events::USER_STATUS,
        &[json!({"userId": user, "status": status, "lastSeen": last_seen})],
    );
}

impl StatusHooks {
    /// Stores an outbound event (when webhooks are on) and wakes the sender; `seq` orders
    /// it within `key`.
    fn store_event(&self, key: String, seq: i64, kind: &str, data: Value, at: i64) {
        let Some(hooks) = self.outbound.clone() else {
            return;
        };
        let Some(e) = hooks.event(key, seq, kind, data, at) else {
            return;
        };
        actix_rt::spawn(hooks.store(self.db.clone(), e, kind.to_owned()));
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
