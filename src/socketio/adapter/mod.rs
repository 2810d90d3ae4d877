//! The adapter of this node: which sockets are in which namespace and room, and the actors
//! that deliver to them.
//!
//! - [`ServerActor`]: the registry of namespaces, sockets and rooms (starting and stopping
//!   [`RoomActor`]s), the connection-state-recovery store, the routing of broadcasts (local
//!   ones are also handed to the cluster [`NodeRelay`](super::NodeRelay)), the node's figures, and
//!   graceful shutdown.
//! - [`RoomActor`]: one per room and worker thread with members; the fan-out.
//! - `local`: the sockets of a worker thread as the fan-outs there see them.
//! - `watch`: followers of a room that are not sockets (SSE streams).

mod fetch;
mod local;
mod room;
mod server;
mod watch;

use actix::Addr;

pub use fetch::{
    FetchQuery, FetchSockets, HandshakeInfo, SocketInfo, FETCH_TIMEOUT, MAX_FETCH, REDACTED,
};
pub(crate) use local::LocalSocket;
pub use local::Shard;
pub use room::{set_flush_duty, RoomActor};
pub use server::*;
pub use watch::{Watched, Watcher, Watching};

use super::WsSession;

pub use crate::protocol::{Nsp, Room, SocketId};

/// A socket as a room sees it: its key (unique in the process) and its session.
#[derive(Clone)]
pub struct Member {
    /// The socket's key.
    pub key: u64,
    /// The session the socket lives on.
    pub addr: Addr<WsSession>,
}
