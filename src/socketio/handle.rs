//! Handles that outlive a handler call: [`SocketHandle`] for one socket, [`IoHandle`] for
//! broadcasts. Both are `Send + Clone` and act by messages, never by shared state.

use std::sync::Arc;

use actix::Addr;
use bytes::Bytes;
use serde_json::Value;

use super::ctx::{BroadcastOp, SocketCtx};
use super::AckId;
pub use crate::actors::messages::Stats;
use crate::actors::messages::{PresenceChange, UpdatePresence};
use crate::actors::session::{ForSocket, SocketCommand};
use crate::actors::{ServerActor, WsSession};

#[derive(Clone)]
pub struct SocketHandle {
    addr: Addr<WsSession>,
    key: u64,
    id: Arc<str>,
    nsp: Arc<str>,
}

impl SocketHandle {
    pub(crate) fn new(addr: Addr<WsSession>, key: u64, id: Arc<str>, nsp: Arc<str>) -> Self {
        SocketHandle { addr, key, id, nsp }
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn nsp(&self) -> &str {
        &self.nsp
    }

    fn send(&self, cmd: SocketCommand) {
        self.addr.do_send(ForSocket { key: self.key, cmd });
    }

    pub fn emit(&self, event: &str, args: Vec<Value>) {
        self.emit_binary(event, args, Vec::new());
    }

    pub fn emit_binary(&self, event: &str, args: Vec<Value>, binary: Vec<Bytes>) {
        self.send(SocketCommand::Emit {
            event: event.to_owned(),
            args,
            binary,
        });
    }

    pub fn ack(&self, ack: AckId, args: Vec<Value>) {
        self.send(SocketCommand::Ack {
            ack,
            args,
            binary: Vec::new(),
        });
    }

    pub fn join(&self, room: &str) {
        self.send(SocketCommand::Join(vec![Arc::from(room)]));
    }

    pub fn leave(&self, room: &str) {
        self.send(SocketCommand::Leave(vec![Arc::from(room)]));
    }

    pub fn disconnect(&self) {
        self.send(SocketCommand::Disconnect);
    }

    /// Runs `f` in the socket's context on its session's thread, after everything sent to
    /// the socket before; not at all if the socket is gone by then.
    pub fn run<F: FnOnce(&mut SocketCtx<'_>) + Send + 'static>(&self, f: F) {
        self.send(SocketCommand::Run(Box::new(f)));
    }
}

/// Broadcasts from anywhere: `io.of("/").to("room").emit(...)`.
#[derive(Clone)]
pub struct IoHandle {
    server: Addr<ServerActor>,
    recovery: bool,
}

impl IoHandle {
    pub(crate) fn new(server: Addr<ServerActor>, recovery: bool) -> Self {
        IoHandle { server, recovery }
    }

    /// The figures of every live node (this one alone without Redis).
    pub async fn cluster_stats(&self) -> Vec<Stats> {
        self.server
            .send(crate::actors::messages::ClusterStats)
            .await
            .unwrap_or_default()
    }

    /// Whether Redis answers: `None` on a single node (no Redis configured).
    pub async fn redis_status(&self) -> Option<bool> {
        self.server
            .send(crate::actors::messages::RedisStatus)
            .await
            .unwrap_or(Some(false))
    }

    pub fn of(&self, nsp: &str) -> BroadcastOp {
        BroadcastOp::new(self.server.clone(), self.recovery, Arc::from(nsp))
    }

    /// Counts socket `socket` of `user` into (`delta` 1) or out of (-1) a room of `nsp`, or
    /// only reads (0); says whether that was the user's first socket in (last out) and how
    /// many distinct users are in the room. Counting a socket in (or out) twice is a no-op.
    ///
    /// The update is queued when this is called (not when the future is first polled), so
    /// updates reach the registry in the order of the calls.
    pub fn presence(
        &self,
        nsp: &str,
        room: &str,
        user: &str,
        socket: &str,
        delta: i8,
    ) -> impl std::future::Future<Output = PresenceChange> + 'static {
        let req = self.server.send(UpdatePresence {
            nsp: Arc::from(nsp),
            room: Arc::from(room),
            user: Arc::from(user),
            socket: Arc::from(socket),
            delta,
        });
        async move {
            req.await.unwrap_or(PresenceChange {
                changed: false,
                count: 0,
            })
        }
    }
}
