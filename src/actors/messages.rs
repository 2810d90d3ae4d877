//! Messages between actors. Commands are imperative (`JoinRooms`), reports past tense
//! (`SessionClosed`).

use std::sync::Arc;
use std::time::Instant;

use actix::{Addr, Message};
use serde_json::Value;

use super::session::WsSession;
use crate::protocol::engine::Frame;
use crate::socketio::SocketData;

/// A room name.
pub type Room = Arc<str>;

/// The worker thread a session lives on. Rooms keep one `RoomActor` per worker with local
/// members, started on that worker's arbiter, so a broadcast crosses threads once per worker
/// rather than once per member.
#[derive(Clone)]
pub struct Shard {
    pub worker: usize,
    pub arbiter: actix::dev::ArbiterHandle,
}

static NEXT_WORKER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

thread_local! {
    static WORKER: usize = NEXT_WORKER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
}

impl Shard {
    /// The shard of the calling thread (which must run an actix arbiter).
    pub fn current() -> Shard {
        Shard {
            worker: WORKER.with(|w| *w),
            arbiter: actix::Arbiter::current(),
        }
    }
}

/// An encoded packet shared by every recipient of one broadcast: encoded once, cloned as
/// reference-counted bytes.
#[derive(Debug)]
pub struct Outgoing {
    /// Unique per broadcast; lets a socket reached through several rooms get it once.
    pub id: u64,
    pub nsp: Arc<str>,
    /// The text frame, then its binary attachments.
    pub frames: Vec<Frame>,
    /// Sockets in any of these rooms (or with one of these ids) do not get it.
    pub except_rooms: Vec<Room>,
    /// True when it targets several rooms, so duplicates must be filtered.
    pub multi: bool,
    /// When it was emitted (delivery latency).
    pub created: std::time::Instant,
}

/// Hands a broadcast packet to one socket of a session.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Deliver {
    pub key: u64,
    pub packet: Arc<Outgoing>,
}

/// An Engine.IO session started.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RegisterSession {
    pub sid: Arc<str>,
    pub mount: u32,
    pub addr: Addr<WsSession>,
}

/// An Engine.IO session ended.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SessionClosed {
    pub sid: Arc<str>,
}

/// Finds the session of a polling request or an upgrade.
#[derive(Message)]
#[rtype(result = "Option<Addr<WsSession>>")]
pub struct LookupSession {
    pub sid: String,
    pub mount: u32,
}

/// A socket joined a namespace.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SocketConnected {
    pub nsp: Arc<str>,
    pub id: Arc<str>,
    pub key: u64,
    pub addr: Addr<WsSession>,
    pub shard: Shard,
}

/// A socket left its namespace; `persist` keeps its state for connection state recovery.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SocketDisconnected {
    pub nsp: Arc<str>,
    pub id: Arc<str>,
    pub key: u64,
    pub worker: usize,
    pub rooms: Vec<Room>,
    pub persist: Option<PersistedSocket>,
}

/// What recovery keeps of a disconnected socket.
pub struct PersistedSocket {
    pub pid: Arc<str>,
    pub id: Arc<str>,
    pub rooms: Vec<Room>,
    pub data: SocketData,
    pub at: Instant,
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct JoinRooms {
    pub nsp: Arc<str>,
    pub key: u64,
    pub addr: Addr<WsSession>,
    pub shard: Shard,
    pub rooms: Vec<Room>,
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct LeaveRooms {
    pub nsp: Arc<str>,
    pub key: u64,
    pub worker: usize,
    pub rooms: Vec<Room>,
}

/// Sends a packet to rooms (none: the whole namespace). `offset` is set when the packet is
/// kept for recovery.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Broadcast {
    pub rooms: Vec<Room>,
    pub packet: Arc<Outgoing>,
    pub offset: Option<Arc<str>>,
    /// Received from another node (delivered here, never published again).
    pub remote: bool,
}

/// Disconnects (server side) every socket of `nsp` in any of `rooms` (all of the namespace
/// when empty).
#[derive(Message)]
#[rtype(result = "()")]
pub struct DisconnectSockets {
    pub nsp: Arc<str>,
    pub rooms: Vec<Room>,
    /// Received from another node.
    pub remote: bool,
}

/// The figures of every live node of the cluster (just this one without Redis).
#[derive(Message)]
#[rtype(result = "Vec<Stats>")]
pub struct ClusterStats;

/// Whether the Redis bridge answers: `None` on a single node.
#[derive(Message)]
#[rtype(result = "Option<bool>")]
pub struct RedisStatus;

/// Attaches the Redis bridge.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SetBridge(pub Addr<super::bridge::RedisBridge>);

/// Room actor: disconnect every member (server side).
#[derive(Message)]
#[rtype(result = "()")]
pub struct DisconnectMembers;

/// Looks up a persisted socket for a reconnecting client (`pid`, `offset` from its auth).
#[derive(Message)]
#[rtype(result = "Option<Restored>")]
pub struct RestoreSession {
    pub nsp: Arc<str>,
    pub pid: String,
    pub offset: String,
}

/// A recovered socket: its id, rooms, data and the packets it missed.
pub struct Restored {
    pub pid: Arc<str>,
    pub id: Arc<str>,
    pub rooms: Vec<Room>,
    pub data: SocketData,
    pub missed: Vec<Vec<Frame>>,
    /// Restored from another node: its data did not travel, the middleware rebuilds it.
    pub needs_middleware: bool,
}

/// Asks every session to close (server shutting down); answers when all were told.
#[derive(Message)]
#[rtype(result = "usize")]
pub struct Shutdown;

/// Counts for stats and tests.
#[derive(Message)]
#[rtype(result = "Stats")]
pub struct GetStats;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Stats {
    /// This node's id.
    pub node_id: String,
    pub uptime_s: u64,
    /// Engine.IO connections.
    pub sessions: usize,
    pub rooms: usize,
    /// Sockets per namespace.
    pub sockets: Value,
}

/// Room actor: add a member.
#[derive(Message)]
#[rtype(result = "()")]
pub struct AddMember {
    pub key: u64,
    pub addr: Addr<WsSession>,
}

/// Room actor: remove a member.
#[derive(Message)]
#[rtype(result = "()")]
pub struct RemoveMember {
    pub key: u64,
}

/// Room actor: deliver to every member.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Fanout {
    pub packet: Arc<Outgoing>,
}

/// Room actor: no members are left; stop.
#[derive(Message)]
#[rtype(result = "()")]
pub struct StopRoom;

/// Counts socket `socket` of `user` into (`delta` 1) or out of (-1) a room, or only reads
/// the room's count (0): users, not sockets, are counted; repeating a step changes nothing.
#[derive(Message)]
#[rtype(result = "PresenceChange")]
pub struct UpdatePresence {
    pub nsp: Arc<str>,
    pub room: Room,
    pub user: Arc<str>,
    pub socket: Arc<str>,
    pub delta: i8,
}

/// `changed`: the user's first socket joined or last one left; `count`: distinct users now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PresenceChange {
    pub changed: bool,
    pub count: usize,
}
