//! `SocketCtx`: what an event handler acts through while it runs on the session.

use std::any::Any;
use std::sync::Arc;
use std::time::Duration;

use actix::{Addr, AsyncContext, Context};
use bytes::Bytes;
use serde_json::Value;

use super::handle::{IoHandle, SocketHandle};
use super::{AckError, AckId, AckReply, Handshake};
use crate::actors::messages::{Broadcast, Outgoing, Room};
use crate::actors::{ServerActor, WsSession};
use crate::protocol::engine::Frame;
use crate::protocol::socket;

/// The socket an event handler runs for, with the session it lives on.
pub struct SocketCtx<'a> {
    session: &'a mut WsSession,
    ctx: &'a mut Context<WsSession>,
    key: u64,
}

impl<'a> SocketCtx<'a> {
    pub(crate) fn new(
        session: &'a mut WsSession,
        ctx: &'a mut Context<WsSession>,
        key: u64,
    ) -> Self {
        SocketCtx { session, ctx, key }
    }

    /// The socket id (`socket.id` on the client); empty once disconnected.
    pub fn id(&self) -> &str {
        self.session.socket(self.key).map_or("", |s| &s.id)
    }

    pub fn nsp(&self) -> &str {
        self.session.socket(self.key).map_or("", |s| &s.nsp)
    }

    pub fn connected(&self) -> bool {
        self.session.socket(self.key).is_some()
    }

    /// True when this socket was restored by connection state recovery.
    pub fn recovered(&self) -> bool {
        self.session.socket(self.key).is_some_and(|s| s.recovered)
    }

    pub fn handshake(&self) -> Option<&Handshake> {
        self.session.socket(self.key).map(|s| &*s.handshake)
    }

    /// The data the connect middleware attached.
    pub fn data<T: Any + Send + Sync>(&self) -> Option<&T> {
        let s = self.session.socket(self.key)?;
        s.data.as_ref()?.downcast_ref::<T>()
    }

    /// Replaces the socket's application data.
    pub fn set_data(&mut self, data: super::SocketData) {
        self.session.set_socket_data(self.key, data);
    }

    /// Runs `f` on this socket after `after`; a timer of the same name is replaced. Timers
    /// end with the socket.
    pub fn set_timer<F>(
        &mut self,
        name: impl Into<std::borrow::Cow<'static, str>>,
        after: Duration,
        f: F,
    ) where
        F: FnOnce(&mut SocketCtx<'_>) + 'static,
    {
        self.session
            .set_socket_timer(self.key, name.into(), after, Box::new(f), self.ctx);
    }

    pub fn cancel_timer(&mut self, name: &str) {
        self.session.cancel_socket_timer(self.key, name, self.ctx);
    }

    /// Whether the timer `name` is armed.
    pub fn has_timer(&self, name: &str) -> bool {
        self.session.has_socket_timer(self.key, name)
    }

    /// Rooms this socket joined (its own id room is implicit).
    pub fn rooms(&self) -> impl Iterator<Item = &str> {
        self.session
            .socket(self.key)
            .into_iter()
            .flat_map(|s| s.rooms.iter().map(|r| &**r))
    }

    pub fn emit(&mut self, event: &str, args: &[Value]) {
        self.emit_binary(event, args, Vec::new());
    }

    /// Emits with binary attachments; `args` hold `{"_placeholder":true,"num":N}` for them.
    pub fn emit_binary(&mut self, event: &str, args: &[Value], binary: Vec<Bytes>) {
        self.session
            .emit_to_socket(self.key, event, args, binary, None, self.ctx);
    }

    /// Emits and waits for the client's acknowledgement, at most `timeout`.
    pub fn emit_with_ack<F>(&mut self, event: &str, args: &[Value], timeout: Duration, cb: F)
    where
        F: FnOnce(Result<AckReply, AckError>) + 'static,
    {
        self.session.emit_to_socket(
            self.key,
            event,
            args,
            Vec::new(),
            Some((timeout, Box::new(cb))),
            self.ctx,
        );
    }

    /// Answers the client's acknowledgement request.
    pub fn ack(&mut self, ack: AckId, args: &[Value]) {
        self.ack_binary(ack, args, Vec::new());
    }

    pub fn ack_binary(&mut self, ack: AckId, args: &[Value], binary: Vec<Bytes>) {
        self.session
            .ack_socket(self.key, ack, args, binary, self.ctx);
    }

    pub fn join(&mut self, room: &str) {
        self.session
            .join_rooms(self.key, vec![Arc::from(room)], self.ctx);
    }

    pub fn leave(&mut self, room: &str) {
        self.session.leave_rooms(self.key, vec![Arc::from(room)]);
    }

    /// Disconnects this socket from its namespace (the client sees `io server disconnect`).
    pub fn disconnect(&mut self) {
        self.session.disconnect_socket(self.key, self.ctx);
    }

    /// To a room, except this socket (like `socket.to(room)` in Node).
    pub fn to(&self, room: &str) -> BroadcastOp {
        self.io().to(room).except(self.id())
    }

    /// To the whole namespace except this socket (like `socket.broadcast`).
    pub fn broadcast(&self) -> BroadcastOp {
        self.io().except(self.id())
    }

    /// Server-level operations on this socket's namespace (like `io.of(nsp)`).
    pub fn io(&self) -> BroadcastOp {
        let (server, recovery) = self.session.io_parts();
        BroadcastOp::new(server, recovery, Arc::from(self.nsp()))
    }

    /// A handle usable after the handler returned (from a spawned future, another thread).
    pub fn handle(&self) -> SocketHandle {
        let (id, nsp) = self
            .session
            .socket(self.key)
            .map(|s| (s.id.clone(), s.nsp.clone()))
            .unwrap_or_else(|| (Arc::from(""), Arc::from("/")));
        SocketHandle::new(self.ctx.address(), self.key, id, nsp)
    }

    /// A handle on the whole server, for broadcasts from anywhere.
    pub fn io_handle(&self) -> IoHandle {
        let (server, recovery) = self.session.io_parts();
        IoHandle::new(server, recovery)
    }
}

/// Builds a broadcast: rooms to reach (none: the whole namespace) and rooms to skip.
#[derive(Clone)]
pub struct BroadcastOp {
    server: Addr<ServerActor>,
    recovery: bool,
    nsp: Arc<str>,
    rooms: Vec<Room>,
    except: Vec<Room>,
}

/// Broadcast ids; also the counter part of recovery offsets.
static NEXT_BROADCAST: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// A fresh broadcast id (unique in this process).
pub fn next_broadcast_id() -> u64 {
    NEXT_BROADCAST.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

fn offset_prefix() -> &'static str {
    static PREFIX: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PREFIX.get_or_init(|| {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        format!("{ms:x}")
    })
}

impl BroadcastOp {
    pub(crate) fn new(server: Addr<ServerActor>, recovery: bool, nsp: Arc<str>) -> Self {
        BroadcastOp {
            server,
            recovery,
            nsp,
            rooms: Vec::new(),
            except: Vec::new(),
        }
    }

    pub fn to(mut self, room: &str) -> Self {
        if !self.rooms.iter().any(|r| &**r == room) {
            self.rooms.push(Arc::from(room));
        }
        self
    }

    pub fn except(mut self, room: &str) -> Self {
        if !room.is_empty() && !self.except.iter().any(|r| &**r == room) {
            self.except.push(Arc::from(room));
        }
        self
    }

    pub fn emit(self, event: &str, args: &[Value]) {
        self.emit_binary(event, args, Vec::new());
    }

    /// Disconnects the targeted sockets server side (Node's `disconnectSockets()`): the
    /// clients see `io server disconnect` and do not reconnect by themselves. Exceptions do
    /// not apply here.
    pub fn disconnect_sockets(self) {
        self.server
            .do_send(crate::actors::messages::DisconnectSockets {
                nsp: self.nsp,
                rooms: self.rooms,
                remote: false,
            });
    }

    /// Encodes the packet once and hands it to the rooms' actors.
    pub fn emit_binary(self, event: &str, args: &[Value], binary: Vec<Bytes>) {
        let id = next_broadcast_id();
        let offset: Option<Arc<str>> = self
            .recovery
            .then(|| Arc::from(format!("{}-{id:x}", offset_prefix())));
        let text = socket::encode_event(
            &self.nsp,
            event,
            args,
            None,
            binary.len(),
            offset.as_deref(),
        );
        let mut frames = Vec::with_capacity(1 + binary.len());
        frames.push(Frame::Text(text));
        frames.extend(binary.into_iter().map(Frame::Binary));
        let packet = Arc::new(Outgoing {
            id,
            nsp: self.nsp,
            frames,
            except_rooms: self.except,
            multi: self.rooms.len() > 1,
            created: std::time::Instant::now(),
        });
        crate::metrics::get()
            .broadcasts
            .with_label_values(&[&packet.nsp])
            .inc();
        self.server.do_send(Broadcast {
            rooms: self.rooms,
            packet,
            offset,
            remote: false,
        });
    }
}
