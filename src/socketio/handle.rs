//! Handles that outlive a handler call: [`SocketHandle`] for one socket, [`IoHandle`] for
//! broadcasts and the server's figures. Both are `Send + Clone` and act by messages, never
//! by shared mutable state.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock};

use actix::Addr;
use bytes::Bytes;
use serde_json::Value;

use super::adapter::{
    BusStatus, ClusterStats, FetchQuery, FetchSockets, Nsp, Room, ServerActor, SocketId,
    SocketInfo, Stats, Watcher, Watching,
};
use super::broadcast::BroadcastOp;
use super::bus::{Cluster, ClusterState};
use super::client::{ForSocket, SocketCommand, WsSession};
use super::ctx::SocketCtx;
use super::{AckId, Namespace};

/// What every connection and handle of one Socket.IO server shares.
pub(crate) struct IoShared {
    pub(crate) namespaces: HashMap<String, Arc<Namespace>>,
    /// Connection state recovery on (the application asked and the configuration allows).
    pub(crate) recovery: bool,
    /// Recovered sockets pass the connect middleware again.
    pub(crate) recovery_middleware: bool,
    /// Binary attachments of one packet at most.
    pub(crate) max_attachments: usize,
    /// Their bytes together at most.
    pub(crate) max_attachment_bytes: usize,
    /// Levels an event's arguments may nest.
    pub(crate) max_json_depth: usize,
    /// The bucket on each socket's events, and how long over it disconnects.
    pub(crate) event_rate: Option<(governor::Quota, std::time::Duration)>,
    /// Sees every event before its handler.
    pub(crate) tap: Option<super::EventTap>,
    pub(crate) server: Addr<ServerActor>,
    /// The cluster, once attached (never on a single node).
    pub(crate) bus: OnceLock<Cluster>,
    /// Set when the server starts draining (SIGTERM): it is no longer ready.
    pub(crate) draining: std::sync::atomic::AtomicBool,
}

/// One socket, from anywhere (a spawned future, another thread).
#[derive(Clone)]
pub struct SocketHandle {
    addr: Addr<WsSession>,
    key: u64,
    id: SocketId,
    nsp: Nsp,
}

impl SocketHandle {
    pub(crate) fn new(addr: Addr<WsSession>, key: u64, id: SocketId, nsp: Nsp) -> Self {
        SocketHandle { addr, key, id, nsp }
    }

    /// The socket id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// Its namespace.
    pub fn nsp(&self) -> &str {
        &self.nsp
    }

    fn send(&self, cmd: SocketCommand) {
        self.addr.do_send(ForSocket { key: self.key, cmd });
    }

    /// Emits to this socket.
    pub fn emit(&self, event: &str, args: Vec<Value>) {
        self.emit_binary(event, args, Vec::new());
    }

    /// Emits with binary attachments.
    pub fn emit_binary(&self, event: &str, args: Vec<Value>, binary: Vec<Bytes>) {
        self.send(SocketCommand::Emit {
            event: event.to_owned(),
            args,
            binary,
        });
    }

    /// Answers the client's acknowledgement request.
    pub fn ack(&self, ack: AckId, args: Vec<Value>) {
        self.send(SocketCommand::Ack {
            ack,
            args,
            binary: Vec::new(),
        });
    }

    /// Joins a room.
    pub fn join(&self, room: &str) {
        self.send(SocketCommand::Join(vec![Room::from(room)]));
    }

    /// Leaves a room.
    pub fn leave(&self, room: &str) {
        self.send(SocketCommand::Leave(vec![Room::from(room)]));
    }

    /// Disconnects the socket from its namespace (server side).
    pub fn disconnect(&self) {
        self.send(SocketCommand::Disconnect);
    }

    /// Runs `f` in the socket's context on its session's thread, after everything sent to
    /// the socket before; not at all if the socket is gone by then.
    pub fn run<F: FnOnce(&mut SocketCtx<'_>) + Send + 'static>(&self, f: F) {
        self.send(SocketCommand::Run(Box::new(f)));
    }
}

/// The server, from anywhere: `io.of("/").to("room").emit(...)`, figures, the cluster.
#[derive(Clone)]
pub struct IoHandle {
    io: Arc<IoShared>,
}

impl IoHandle {
    /// True once the server drains (a shutdown signal came): not ready for new clients.
    pub fn is_draining(&self) -> bool {
        self.io.draining.load(std::sync::atomic::Ordering::Acquire)
    }

    pub(crate) fn start_draining(&self) {
        self.io
            .draining
            .store(true, std::sync::atomic::Ordering::Release);
    }

    pub(crate) fn new(io: Arc<IoShared>) -> Self {
        IoHandle { io }
    }

    /// This node's figures; `None` when the registry is gone (shutting down).
    pub async fn node_stats(&self) -> Option<Stats> {
        self.io.server.send(super::adapter::GetStats).await.ok()
    }

    /// The figures of every live node (this one alone on a single node).
    pub async fn cluster_stats(&self) -> Vec<Stats> {
        self.io.server.send(ClusterStats).await.unwrap_or_default()
    }

    /// Whether the cluster bus answers: `None` on a single node.
    pub async fn cluster_status(&self) -> Option<bool> {
        self.io.server.send(BusStatus).await.unwrap_or(Some(false))
    }

    /// The sockets (and self-describing room followers) matching `query` on every live
    /// node, at most `query.limit`; with `query.disconnect` each is disconnected too. Nodes
    /// that do not answer within [`FETCH_TIMEOUT`](super::adapter::FETCH_TIMEOUT) are left
    /// out. Empty when the registry is gone (shutting down).
    pub async fn fetch_sockets(&self, query: FetchQuery) -> Vec<SocketInfo> {
        self.io
            .server
            .send(FetchSockets(query))
            .await
            .unwrap_or_default()
    }

    /// The state this node shares with its cluster, if it is part of one.
    pub fn cluster_state(&self) -> Option<&Arc<dyn ClusterState>> {
        self.io.bus.get().map(|c| &c.state)
    }

    /// Has `watcher` follow room `room` of `nsp` on this node (see [`Watcher`]) until the
    /// returned guard is dropped.
    pub fn watch(&self, nsp: &str, room: &str, watcher: Arc<dyn Watcher>) -> Watching {
        Watching::start(
            self.io.server.clone(),
            Nsp::from(nsp),
            Room::from(room),
            watcher,
        )
    }

    /// Operations on namespace `nsp` (like `io.of(nsp)`).
    pub fn of(&self, nsp: &str) -> BroadcastOp {
        BroadcastOp::new(self.io.clone(), Nsp::from(nsp))
    }
}
