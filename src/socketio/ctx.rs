//! `SocketCtx`: what an event handler acts through while it runs on the socket's session.

use std::any::Any;
use std::time::Duration;

use bytes::Bytes;
use serde_json::Value;

use super::adapter::{Nsp, Room, SocketId};
use super::broadcast::BroadcastOp;
use super::client::{Client, SockState};
use super::handle::{IoHandle, SocketHandle};
use super::{AckError, AckId, AckReply, Handshake, SocketData};
use crate::engine::EngineCtx;

/// The socket an event handler runs for, with the connection it lives on.
pub struct SocketCtx<'a> {
    client: &'a mut Client,
    ctx: EngineCtx<'a, Client>,
    key: u64,
}

impl<'a> SocketCtx<'a> {
    pub(crate) fn new(client: &'a mut Client, ctx: EngineCtx<'a, Client>, key: u64) -> Self {
        SocketCtx { client, ctx, key }
    }

    fn socket(&self) -> Option<&SockState> {
        self.client.socket(self.key)
    }

    /// The socket id (`socket.id` on the client); empty once disconnected.
    pub fn id(&self) -> &str {
        self.socket().map_or("", |s| &s.id)
    }

    /// Its namespace.
    pub fn nsp(&self) -> &str {
        self.socket().map_or("", |s| &s.nsp)
    }

    /// False once the socket left.
    pub fn connected(&self) -> bool {
        self.socket().is_some()
    }

    /// True when this socket was restored by connection state recovery.
    pub fn recovered(&self) -> bool {
        self.socket().is_some_and(|s| s.recovered)
    }

    /// Its CONNECT packet's auth and the opening request.
    pub fn handshake(&self) -> Option<&Handshake> {
        self.socket().map(|s| &*s.handshake)
    }

    /// The data the connect middleware attached.
    pub fn data<T: Any + Send + Sync>(&self) -> Option<&T> {
        self.socket()?.data.as_ref()?.downcast_ref::<T>()
    }

    /// Replaces the socket's application data.
    pub fn set_data(&mut self, data: SocketData) {
        if let Some(s) = self.client.socket_mut(self.key) {
            s.data = data;
        }
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
        self.client
            .set_timer(self.key, name.into(), after, Box::new(f), &mut self.ctx);
    }

    /// Cancels the timer `name`.
    pub fn cancel_timer(&mut self, name: &str) {
        self.client.cancel_timer(self.key, name, &mut self.ctx);
    }

    /// Whether the timer `name` is armed.
    pub fn has_timer(&self, name: &str) -> bool {
        self.socket()
            .is_some_and(|s| s.timers.iter().any(|(n, _)| n == name))
    }

    /// Rooms this socket joined (its own id room is implicit).
    pub fn rooms(&self) -> impl Iterator<Item = &str> {
        self.socket()
            .into_iter()
            .flat_map(|s| s.rooms.iter().map(|r| &**r))
    }

    /// Emits to this socket.
    pub fn emit(&mut self, event: &str, args: &[Value]) {
        self.emit_binary(event, args, Vec::new());
    }

    /// Emits with binary attachments; `args` hold `{"_placeholder":true,"num":N}` for them.
    pub fn emit_binary(&mut self, event: &str, args: &[Value], binary: Vec<Bytes>) {
        self.client
            .emit(self.key, event, args, binary, None, &mut self.ctx);
    }

    /// Emits and waits for the client's acknowledgement, at most `timeout`.
    pub fn emit_with_ack<F>(&mut self, event: &str, args: &[Value], timeout: Duration, cb: F)
    where
        F: FnOnce(Result<AckReply, AckError>) + 'static,
    {
        self.client.emit(
            self.key,
            event,
            args,
            Vec::new(),
            Some((timeout, Box::new(cb))),
            &mut self.ctx,
        );
    }

    /// Answers the client's acknowledgement request.
    pub fn ack(&mut self, ack: AckId, args: &[Value]) {
        self.ack_binary(ack, args, Vec::new());
    }

    /// Answers with binary attachments.
    pub fn ack_binary(&mut self, ack: AckId, args: &[Value], binary: Vec<Bytes>) {
        self.client.ack(self.key, ack, args, binary, &mut self.ctx);
    }

    /// Joins a room.
    pub fn join(&mut self, room: &str) {
        self.client
            .join(self.key, vec![Room::from(room)], &mut self.ctx);
    }

    /// Joins several rooms at once (one update of the socket's rooms and of the adapter).
    pub fn join_all<'r>(&mut self, rooms: impl IntoIterator<Item = &'r str>) {
        let rooms = rooms.into_iter().map(Room::from).collect();
        self.client.join(self.key, rooms, &mut self.ctx);
    }

    /// Leaves a room.
    pub fn leave(&mut self, room: &str) {
        self.client.leave(self.key, vec![Room::from(room)]);
    }

    /// Leaves several rooms at once.
    pub fn leave_all<'r>(&mut self, rooms: impl IntoIterator<Item = &'r str>) {
        self.client
            .leave(self.key, rooms.into_iter().map(Room::from).collect());
    }

    /// Disconnects this socket from its namespace (the client sees `io server disconnect`).
    pub fn disconnect(&mut self) {
        self.client.disconnect(self.key, &mut self.ctx);
    }

    /// Disconnects the socket like [`SocketCtx::disconnect`], saying why with an application
    /// error code: a plain WebSocket closes with that code's close (docs/events.md, e.g.
    /// `TOKEN_EXPIRED` → 4401); a Socket.IO client sees `io server disconnect` as always.
    pub fn disconnect_for(&mut self, code: &str) {
        self.client.disconnect_for(self.key, code, &mut self.ctx);
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
        BroadcastOp::new(self.client.io.clone(), Nsp::from(self.nsp()))
    }

    /// A handle usable after the handler returned (from a spawned future, another thread).
    pub fn handle(&self) -> SocketHandle {
        let (id, nsp) = self
            .socket()
            .map(|s| (s.id.clone(), s.nsp.clone()))
            .unwrap_or_else(|| (SocketId::from(""), Nsp::from("/")));
        SocketHandle::new(self.ctx.address(), self.key, id, nsp)
    }

    /// A handle on the whole server, for broadcasts from anywhere.
    pub fn io_handle(&self) -> IoHandle {
        IoHandle::new(self.client.io.clone())
    }
}
