//! The seam to the other nodes of a cluster: [`Bus`], implemented in the `cluster` module by
//! Redis and by an in-memory hub (tests, several servers in one process).
//!
//! The local `ServerActor` hands the bus every broadcast and `disconnect_sockets` emitted
//! on this node ([`Relay`]); the bus delivers what *other* nodes relayed to this node's
//! `ServerActor` as [`FromNode`], which never relays it again. The bus also keeps the
//! cluster-wide state: room presence sets, the live nodes and their figures, and the
//! recoverable sessions of every node.

use std::sync::Arc;

use actix::{Addr, Message};
use futures_util::future::BoxFuture;

use super::adapter::{ServerActor, Stats};
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

/// The cluster: relays between nodes and the state they share. Every method returns at
/// once; futures resolve to `None` (or `false`) when the cluster cannot answer, and the
/// caller then falls back to this node's own view.
pub trait Bus: Send + Sync + 'static {
    /// Relays a local broadcast or disconnect to every other node, once.
    fn publish(&self, relay: Relay);

    /// A presence step, answered from every live node's entries. Steps issued in order
    /// are applied in order.
    fn presence(&self, update: PresenceUpdate) -> BoxFuture<'static, Option<PresenceCount>>;

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

    /// Every room of `nsp` counted by presence on a live node, with its distinct users
    /// (at most `max` rooms, an arbitrary selection beyond).
    fn rooms(&self, nsp: Nsp, max: usize) -> BoxFuture<'static, Option<Vec<(Room, usize)>>>;
}
