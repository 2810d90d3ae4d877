//! The seam to the other nodes of a cluster, in two parts: [`NodeRelay`], what the Socket.IO
//! layer needs (relays, node requests, kept sessions), and [`ClusterState`], what the
//! application shares (presence, announced states); each implemented in the `cluster`
//! module by Redis and by an in-memory hub (tests, several servers in one process), and
//! handed to a node together as a [`Cluster`].
//!
//! The local `ServerActor` hands the relay every broadcast and `disconnect_sockets` emitted
//! on this node ([`Relay`]); the relay delivers what *other* nodes relayed to this node's
//! `ServerActor` as [`FromNode`], which never relays it again. It also knows the live nodes
//! and their figures and keeps the recoverable sessions of every node; the cluster state
//! keeps the room presence sets and announced states.

use std::sync::Arc;

use actix::{Addr, Message};
use futures_util::future::BoxFuture;

use super::adapter::{FetchQuery, ServerActor, SocketInfo, Stats};
use super::Outgoing;
use crate::protocol::{NodeId, Nsp, Room, SocketId, UserId};

/// What one node tells the others.
#[derive(Clone)]
pub enum Relay {
    /// A broadcast: to `rooms` (none: the whole namespace) of `packet.nsp`.
    Broadcast {
        /// Target rooms; empty for the whole namespace.
        rooms: Vec<Room>,
        /// The encoded packet (its exceptions travel with it).
        packet: Arc<Outgoing>,
        /// Its recovery offset, when recovery is on.
        offset: Option<Arc<str>>,
    },
    /// `disconnect_sockets()`: the sockets of `nsp` in any of `rooms` (all when empty).
    DisconnectSockets {
        /// The namespace.
        nsp: Nsp,
        /// Target rooms; empty for the whole namespace.
        rooms: Vec<Room>,
    },
    /// A command to the sockets of `nsp` in any of `rooms` (all when empty): each runs its
    /// namespace's handler `name` (`Namespace::on_command`) with `args`.
    Command {
        /// The namespace.
        nsp: Nsp,
        /// Target rooms; empty for the whole namespace.
        rooms: Vec<Room>,
        /// The handler.
        name: Arc<str>,
        /// Its argument.
        args: Arc<serde_json::Value>,
    },
    /// A fetch of sockets (`fetch_sockets`), answered by every other node with
    /// [`Relay::Fetched`].
    Fetch {
        /// The asking node (set from the message's origin on receipt).
        from: NodeId,
        /// The asker's request number.
        request: u64,
        /// Which sockets.
        query: FetchQuery,
    },
    /// One node's answer to a [`Relay::Fetch`] (taken only by the node `to`).
    Fetched {
        /// The asking node.
        to: NodeId,
        /// Its request number.
        request: u64,
        /// This node's sockets that matched.
        sockets: Vec<SocketInfo>,
    },
}

/// A relay received from another node (delivered here, never relayed again).
#[derive(Message)]
#[rtype(result = "()")]
pub struct FromNode(pub Relay);

/// A step of a room's presence: users (not sockets) are counted; repeating a step changes
/// nothing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PresenceOp {
    /// This socket of the user is in the room.
    Join,
    /// This socket of the user left the room.
    Leave,
    /// Only read the count.
    Count,
}

/// One presence step in room `room` of namespace `nsp`.
#[derive(Debug, Clone)]
pub struct PresenceUpdate {
    /// The namespace.
    pub nsp: Nsp,
    /// The room.
    pub room: Room,
    /// The user the socket belongs to.
    pub user: UserId,
    /// The socket id.
    pub socket: SocketId,
    /// What happens.
    pub op: PresenceOp,
}

/// The outcome of a presence step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PresenceChange {
    /// The user's first socket came in.
    Arrived,
    /// The user's last socket went.
    Departed,
    /// The user was (or still is) there through another socket, or only counted.
    Unchanged,
}

/// A presence step's outcome and the room's distinct users afterwards (on every node).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PresenceCount {
    /// What the step changed for the user.
    pub change: PresenceChange,
    /// Distinct users in the room.
    pub count: usize,
}

/// A recoverable socket as the cluster keeps it (its data stays on its node).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeptSession {
    /// Its socket id.
    pub id: SocketId,
    /// Its rooms.
    pub rooms: Vec<Room>,
}

/// What a bus needs of the node it serves.
#[derive(Clone)]
pub struct BusNode {
    /// This node's id (relays carry it; a node drops its own).
    pub id: NodeId,
    /// Where relays from other nodes go, and where the node's figures come from.
    pub server: Addr<ServerActor>,
}

/// The relay the Socket.IO layer needs from the cluster: broadcasts and node requests to the
/// other nodes, the live nodes' figures, kept sessions, readiness. Every method returns at
/// once; futures resolve to `None` (or `false`) when the cluster cannot answer, and the
/// caller then falls back to this node's own view.
pub trait NodeRelay: Send + Sync + 'static {
    /// Relays a local broadcast, disconnect, command or node request to every other node,
    /// once.
    fn publish(&self, relay: Relay);

    /// The figures of every live node (this one's read fresh).
    fn nodes(&self) -> BoxFuture<'static, Option<Vec<Stats>>>;

    /// Keeps a recoverable socket for `ttl_ms`, for whichever node its client comes back to.
    fn keep_session(&self, nsp: Nsp, pid: Arc<str>, session: KeptSession, ttl_ms: u64);

    /// Takes (reads and deletes) a kept socket.
    fn take_session(&self, nsp: Nsp, pid: Arc<str>) -> BoxFuture<'static, Option<KeptSession>>;

    /// Whether the cluster answers (readiness).
    fn is_up(&self) -> BoxFuture<'static, bool>;

    /// Leaves the cluster on a clean shutdown (this node drops out of the figures at once).
    fn leave(&self) -> BoxFuture<'static, ()>;
}

/// The state the application shares across the cluster: presence per room, announced
/// states, lost nodes. Like [`NodeRelay`], every future resolves to `None` when the cluster
/// cannot answer.
pub trait ClusterState: Send + Sync + 'static {
    /// A presence step, answered from every live node's entries. Steps issued in order
    /// are applied in order.
    fn presence(&self, update: PresenceUpdate) -> BoxFuture<'static, Option<PresenceCount>>;

    /// Every room of `nsp` counted by presence on a live node, with its distinct users
    /// (at most `max` rooms, an arbitrary selection beyond).
    fn rooms(&self, nsp: Nsp, max: usize) -> BoxFuture<'static, Option<Vec<(Room, usize)>>>;

    /// The distinct users counted by presence in room `room` of `nsp` on live nodes (at
    /// most `max`, an arbitrary selection beyond).
    fn room_users(
        &self,
        nsp: Nsp,
        room: Room,
        max: usize,
    ) -> BoxFuture<'static, Option<Vec<UserId>>>;

    /// Turns a key's announced state up (see [`StateTable::arrive`]).
    fn arrive(&self, key: StateKey) -> BoxFuture<'static, Option<Arrival>>;

    /// A key's current generation (0 when never seen).
    fn generation(&self, key: StateKey) -> BoxFuture<'static, Option<i64>>;

    /// Turns a key down if nothing arrived since `gen` (see [`StateTable::settle`]).
    fn settle(&self, key: StateKey, gen: i64) -> BoxFuture<'static, Option<bool>>;

    /// Whether each key is up.
    fn states(&self, keys: Vec<StateKey>) -> BoxFuture<'static, Option<Vec<bool>>>;

    /// How many times this node found other nodes dead and dropped them from the cluster;
    /// after a change, keys may be up with no live socket left ([`ClusterState::orphans`]).
    fn lost_nodes(&self) -> u64;

    /// Keys of `nsp` that are up while no live node counts anyone in them (at most `max`).
    fn orphans(&self, nsp: Nsp, max: usize) -> BoxFuture<'static, Option<Vec<Room>>>;
}

/// A node's link to its cluster: the relay (for the Socket.IO layer) and the shared state
/// (for the application), which one connection may serve both.
#[derive(Clone)]
pub struct Cluster {
    /// Broadcasts, node requests, kept sessions.
    pub relay: Arc<dyn NodeRelay>,
    /// Presence and announced states.
    pub state: Arc<dyn ClusterState>,
}

impl Cluster {
    /// The cluster of one implementation of both.
    pub fn of<T: NodeRelay + ClusterState>(both: Arc<T>) -> Self {
        Cluster {
            relay: both.clone(),
            state: both,
        }
    }
}

/// A key whose announced state the cluster shares: a user's online status, a room's
/// occupancy. `room` is the key within `nsp` (application-chosen; see `app::presence`).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct StateKey {
    /// The namespace (or a pseudo-namespace of the application).
    pub nsp: Nsp,
    /// The key within it.
    pub room: Room,
}

/// What [`ClusterState::arrive`] answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arrival {
    /// The key's generation after this arrival: it grows at every arrival, and a key that
    /// was down starts at [`GENERATIONS_PER_MS`] times the time in milliseconds, so
    /// generations keep growing across restarts and forgetting.
    pub gen: i64,
    /// The key was down (or never seen): this caller, and no other, announces it up.
    pub announce: bool,
}

/// Generations start at the time in milliseconds times this, so a key that is forgotten
/// (down) and comes back starts above every generation it had (up to this many arrivals
/// per millisecond).
pub const GENERATIONS_PER_MS: i64 = 1024;

/// The announced states of keys: up at an arrival, down (forgotten) when a departure
/// settles with no arrival since. Shared by the in-memory hub and a node without a
/// cluster; Redis keeps the same rules in scripts. Holds only keys that are up.
#[derive(Default)]
pub struct StateTable {
    /// key → generation, for keys that are up.
    up: std::collections::HashMap<StateKey, i64>,
}

impl StateTable {
    /// Turns `key` up; see [`Arrival`].
    pub fn arrive(&mut self, key: StateKey, now_ms: i64) -> Arrival {
        match self.up.get_mut(&key) {
            Some(gen) => {
                *gen += 1;
                Arrival {
                    gen: *gen,
                    announce: false,
                }
            }
            None => {
                let gen = now_ms * GENERATIONS_PER_MS;
                self.up.insert(key, gen);
                Arrival {
                    gen,
                    announce: true,
                }
            }
        }
    }

    /// The key's current generation (0 when down).
    pub fn generation(&self, key: &StateKey) -> i64 {
        self.up.get(key).copied().unwrap_or(0)
    }

    /// Turns `key` down when it is up and nothing arrived since generation `gen`: true
    /// for the one caller that does.
    pub fn settle(&mut self, key: &StateKey, gen: i64) -> bool {
        if self.up.get(key) == Some(&gen) {
            self.up.remove(key);
            true
        } else {
            false
        }
    }

    /// Keys that are up.
    pub fn len(&self) -> usize {
        self.up.len()
    }

    /// No key is up.
    pub fn is_empty(&self) -> bool {
        self.up.is_empty()
    }

    /// Whether each key is up.
    pub fn states(&self, keys: &[StateKey]) -> Vec<bool> {
        keys.iter().map(|k| self.up.contains_key(k)).collect()
    }

    /// The keys of `nsp` that are up.
    pub fn up_in(&self, nsp: &str) -> Vec<Room> {
        self.up
            .keys()
            .filter(|k| &*k.nsp == nsp)
            .map(|k| k.room.clone())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(k: &str) -> StateKey {
        StateKey {
            nsp: Nsp::from("@users"),
            room: Room::from(k),
        }
    }

    #[test]
    fn one_caller_announces_each_change() {
        let mut t = StateTable::default();
        let a = t.arrive(key("bob"), 1000);
        assert!(a.announce);
        assert_eq!(a.gen, 1000 * GENERATIONS_PER_MS);
        // a second socket, elsewhere: no announcement, a newer generation
        let b = t.arrive(key("bob"), 1001);
        assert!(!b.announce);
        assert_eq!(b.gen, a.gen + 1);
        // a departure that saw the first generation settles nothing: one arrived since
        assert!(!t.settle(&key("bob"), a.gen));
        assert_eq!(t.states(&[key("bob"), key("ann")]), vec![true, false]);
        assert!(t.settle(&key("bob"), b.gen));
        assert!(!t.settle(&key("bob"), b.gen), "settled once");
        assert_eq!(t.generation(&key("bob")), 0);
        // back later: announced again, above every earlier generation
        let c = t.arrive(key("bob"), 1002);
        assert!(c.announce && c.gen > b.gen);
        assert_eq!(t.up_in("@users"), vec![Room::from("bob")]);
        assert!(t.up_in("/").is_empty());
    }
}
