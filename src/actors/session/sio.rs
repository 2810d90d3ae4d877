//! The Socket.IO layer of a session: its namespace sockets, binary reassembly, connect
//! (middleware, recovery), event dispatch, acknowledgements in both directions, and leaving.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::{ActorFutureExt, AsyncContext, Context, Handler, Message, SpawnHandle, WrapFuture};
use bytes::Bytes;
use serde_json::{Map, Value};

use super::{EngineMessage, Queued, WsSession};
use crate::actors::messages::*;
use crate::protocol::engine::Frame;
use crate::protocol::socket::{self, Complete, PacketKind, Reassembler};
use crate::socketio::{
    reason, AckCallback, AckError, AckId, AckReply, Event, Handshake, Namespace, SocketCtx,
    SocketData, SocketIo,
};

/// A socket timer's name: usually a constant, sometimes built (one per room).
pub(crate) type TimerName = std::borrow::Cow<'static, str>;

/// Unique key of a socket in room maps (cheaper than its string id).
static NEXT_KEY: AtomicU64 = AtomicU64::new(1);

pub struct SioClient {
    pub(crate) io: Arc<SocketIo>,
    pub(crate) sockets: Vec<SockState>,
    connecting: Vec<String>,
    reasm: Reassembler,
    connect_timer: Option<SpawnHandle>,
}

pub(crate) struct SockState {
    pub(crate) ns: Arc<Namespace>,
    pub(crate) nsp: Arc<str>,
    pub(crate) id: Arc<str>,
    pub(crate) key: u64,
    pub(crate) pid: Option<Arc<str>>,
    pub(crate) rooms: Vec<Room>,
    pub(crate) data: SocketData,
    pub(crate) handshake: Arc<Handshake>,
    pub(crate) recovered: bool,
    acks: HashMap<u64, (AckCallback, SpawnHandle)>,
    next_ack: u64,
    /// Named application timers (`SocketCtx::set_timer`).
    timers: Vec<(TimerName, SpawnHandle)>,
}

impl SioClient {
    pub fn new(io: Arc<SocketIo>) -> Self {
        SioClient {
            io,
            sockets: Vec::new(),
            connecting: Vec::new(),
            reasm: Reassembler::default(),
            connect_timer: None,
        }
    }

    pub(crate) fn index(&self, key: u64) -> Option<usize> {
        self.sockets.iter().position(|s| s.key == key)
    }
}

/// A random id like Node's (20 URL-safe characters).
pub fn random_id() -> Arc<str> {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    let bytes: [u8; 15] = rand::random();
    Arc::from(URL_SAFE_NO_PAD.encode(bytes))
}

impl WsSession {
    pub(super) fn sio_started(&mut self, ctx: &mut Context<Self>) {
        if self.client.is_none() {
            return;
        }
        let timeout = self.mount.config.engine.connect_timeout();
        let h = ctx.run_later(timeout, |act, ctx| {
            if act.client.as_ref().is_some_and(|c| c.sockets.is_empty()) {
                log::debug!("no namespace joined in time sid={}", act.sid);
                act.close(reason::FORCED_CLOSE, ctx);
            }
        });
        if let Some(c) = self.client.as_mut() {
            c.connect_timer = Some(h);
        }
    }

    /// An Engine.IO message carrying Socket.IO data.
    pub(super) fn sio_message(&mut self, msg: EngineMessage, ctx: &mut Context<Self>) {
        let Some(client) = self.client.as_mut() else {
            return;
        };
        let res = match msg {
            EngineMessage::Text(t) => client.reasm.push_text(&t),
            EngineMessage::Binary(b) => client.reasm.push_binary(b),
        };
        match res {
            Ok(Some(c)) => self.sio_packet(c, ctx),
            Ok(None) => {}
            Err(e) => {
                // Node closes the connection with "forced close" on a bad Socket.IO packet.
                log::debug!("socket.io decode error sid={} err={e}", self.sid);
                self.close(reason::FORCED_CLOSE, ctx);
            }
        }
    }

    fn sio_packet(&mut self, c: Complete, ctx: &mut Context<Self>) {
        let Some(client) = self.client.as_mut() else {
            return;
        };
        let Complete {
            packet,
            attachments,
        } = c;
        let idx = client.sockets.iter().position(|s| *s.nsp == *packet.nsp);
        let connecting = client.connecting.contains(&packet.nsp);
        match (packet.kind, idx) {
            (PacketKind::Connect, None) if !connecting => {
                self.start_connect(packet.nsp, packet.data, ctx)
            }
            // socket.io-client sends CONNECT twice when `io.socket(nsp)` (auto-connect) is
            // followed by `connect()`: the answer to the first one serves both.
            (PacketKind::Connect, None) => {}
            (PacketKind::Event | PacketKind::BinaryEvent, Some(i)) => {
                self.dispatch_event(i, packet.id, packet.data, attachments, ctx)
            }
            (PacketKind::Ack | PacketKind::BinaryAck, Some(i)) => {
                let Some(id) = packet.id else { return };
                crate::metrics::get().acks_received.inc();
                let s = &mut client.sockets[i];
                if let Some((cb, timer)) = s.acks.remove(&id) {
                    ctx.cancel_future(timer);
                    let args = match packet.data {
                        Some(Value::Array(a)) => a,
                        _ => Vec::new(),
                    };
                    cb(Ok(AckReply {
                        args,
                        binary: attachments,
                    }));
                }
            }
            (PacketKind::Disconnect, Some(i)) => {
                self.remove_socket(i, reason::CLIENT_NAMESPACE_DISCONNECT, false, ctx)
            }
            _ => {
                // Node: a packet for a namespace the client is not in (or a second
                // CONNECT) is an invalid state and closes the connection.
                log::debug!(
                    "invalid socket.io state sid={} type={:?} nsp={}",
                    self.sid,
                    packet.kind,
                    packet.nsp
                );
                self.close(reason::FORCED_CLOSE, ctx);
            }
        }
    }

    fn start_connect(&mut self, nsp: String, auth: Option<Value>, ctx: &mut Context<Self>) {
        let Some(client) = self.client.as_mut() else {
            return;
        };
        let Some(ns) = client.io.namespaces.get(&nsp).cloned() else {
            let err = serde_json::json!({"message": "Invalid namespace"});
            let frame = socket::encode_control(PacketKind::ConnectError, &nsp, Some(&err));
            self.send_frame(frame, ctx);
            return;
        };
        let auth = auth.unwrap_or_else(|| Value::Object(Map::new()));
        let handshake = Arc::new(Handshake {
            auth: auth.clone(),
            request: self.request.clone(),
        });
        let nsp: Arc<str> = Arc::from(nsp);
        let recovery = client.io.recovery && self.mount.config.recovery.enabled;
        let pid = auth.get("pid").and_then(Value::as_str);
        let offset = auth.get("offset").and_then(Value::as_str);
        if let (true, Some(pid), Some(offset)) = (recovery, pid, offset) {
            client.connecting.push(nsp.to_string());
            let ask = self.mount.server.send(RestoreSession {
                nsp: nsp.clone(),
                pid: pid.to_owned(),
                offset: offset.to_owned(),
            });
            ctx.spawn(
                ask.into_actor(self)
                    .map(move |res, act, ctx| match res.ok().flatten() {
                        Some(restored) if restored.needs_middleware => {
                            act.run_middleware(ns, nsp, handshake, Some(restored), ctx)
                        }
                        Some(restored) => {
                            act.connect_done(&nsp);
                            act.finish_connect(ns, nsp, handshake, None, Some(restored), ctx)
                        }
                        None => act.run_middleware(ns, nsp, handshake, None, ctx),
                    }),
            );
            return;
        }
        if ns.middleware.is_empty() {
            return self.finish_connect(ns, nsp, handshake, None, None, ctx);
        }
        client.connecting.push(nsp.to_string());
        self.run_middleware(ns, nsp, handshake, None, ctx);
    }

    fn connect_done(&mut self, nsp: &str) {
        if let Some(c) = self.client.as_mut() {
            c.connecting.retain(|n| n != nsp);
        }
    }

    fn run_middleware(
        &mut self,
        ns: Arc<Namespace>,
        nsp: Arc<str>,
        hs: Arc<Handshake>,
        restored: Option<Restored>,
        ctx: &mut Context<Self>,
    ) {
        let chain = ns.middleware.clone();
        let hs2 = hs.clone();
        let fut = async move {
            let mut data: SocketData = None;
            for m in chain {
                if let Some(d) = m(hs2.clone()).await? {
                    data = Some(d);
                }
            }
            Ok(data)
        };
        ctx.spawn(fut.into_actor(self).map(move |res, act, ctx| {
            act.connect_done(&nsp);
            if act.closed {
                return;
            }
            match res {
                Ok(data) => {
                    // A session restored from another node takes the middleware's data.
                    let restored = restored.map(|r| Restored {
                        data: data.clone(),
                        ..r
                    });
                    act.finish_connect(ns, nsp, hs, data, restored, ctx)
                }
                Err(e) => {
                    let e: crate::socketio::ConnectError = e;
                    crate::metrics::get().error("connect_refused");
                    let frame =
                        socket::encode_control(PacketKind::ConnectError, &nsp, Some(&e.to_json()));
                    act.send_frame(frame, ctx);
                }
            }
        }));
    }

    fn finish_connect(
        &mut self,
        ns: Arc<Namespace>,
        nsp: Arc<str>,
        handshake: Arc<Handshake>,
        data: SocketData,
        restored: Option<Restored>,
        ctx: &mut Context<Self>,
    ) {
        if self.closed {
            return;
        }
        let recovery = self.mount.config.recovery.enabled
            && self.client.as_ref().is_some_and(|c| c.io.recovery);
        let key = NEXT_KEY.fetch_add(1, Ordering::Relaxed);
        let (id, pid, rooms, data, missed, recovered) = match restored {
            Some(r) => (r.id, Some(r.pid), r.rooms, r.data, r.missed, true),
            None => (
                random_id(),
                recovery.then(random_id),
                Vec::new(),
                data,
                Vec::new(),
                false,
            ),
        };
        let addr = ctx.address();
        self.mount.server.do_send(SocketConnected {
            nsp: nsp.clone(),
            id: id.clone(),
            key,
            addr: addr.clone(),
            shard: self.shard.clone(),
        });
        if !rooms.is_empty() {
            self.mount.server.do_send(JoinRooms {
                nsp: nsp.clone(),
                key,
                addr,
                shard: self.shard.clone(),
                rooms: rooms.clone(),
            });
        }
        let mut answer = Map::new();
        answer.insert("sid".into(), Value::from(&*id));
        if let Some(pid) = &pid {
            answer.insert("pid".into(), Value::from(&**pid));
        }
        let Some(client) = self.client.as_mut() else {
            return;
        };
        if let Some(h) = client.connect_timer.take() {
            ctx.cancel_future(h);
        }
        self.outbox
            .borrow_mut()
            .add_socket(key, id.clone(), rooms.clone());
        super::outbox::register(key, self.outbox.clone());
        client.sockets.push(SockState {
            ns: ns.clone(),
            nsp: nsp.clone(),
            id: id.clone(),
            key,
            pid,
            rooms,
            data,
            handshake,
            recovered,
            acks: HashMap::new(),
            next_ack: 0,
            timers: Vec::new(),
        });
        let frame = socket::encode_control(PacketKind::Connect, &nsp, Some(&Value::Object(answer)));
        self.send_frame(frame, ctx);
        for frames in missed {
            for f in frames {
                self.send_frame(f, ctx);
            }
        }
        log::debug!(
            "socket connected sid={} nsp={nsp} id={id} recovered={recovered}",
            self.sid
        );
        if let Some(h) = ns.on_connect.clone() {
            h(&mut SocketCtx::new(self, ctx, key));
        }
    }

    fn dispatch_event(
        &mut self,
        i: usize,
        id: Option<u64>,
        data: Option<Value>,
        binary: Vec<Bytes>,
        ctx: &mut Context<Self>,
    ) {
        let Some(client) = self.client.as_ref() else {
            return;
        };
        let s = &client.sockets[i];
        let Some(Value::Array(mut arr)) = data else {
            return;
        };
        if arr.is_empty() {
            return;
        }
        let name = match arr.remove(0) {
            Value::String(s) => s,
            other => other.to_string(),
        };
        if let Some(c) = &s.ns.counters {
            c.events_in.inc();
        }
        let handler = s.ns.events.get(&name).or(s.ns.fallback.as_ref()).cloned();
        let key = s.key;
        if let Some(h) = handler {
            let ev = Event {
                name,
                args: arr,
                binary,
                ack: id.map(|id| AckId {
                    id,
                    at: Instant::now(),
                }),
            };
            h(&mut SocketCtx::new(self, ctx, key), ev);
        }
    }

    /// Removes socket `i`: its handler hears the reason, its rooms are left, its pending
    /// acks fail, and (when recovery is on and the reason allows) its state is kept.
    pub(crate) fn remove_socket(
        &mut self,
        i: usize,
        why: &'static str,
        send_disconnect: bool,
        ctx: &mut Context<Self>,
    ) {
        let Some(client) = self.client.as_ref() else {
            return;
        };
        let Some(s) = client.sockets.get(i) else {
            return;
        };
        let (key, handler) = (s.key, s.ns.on_disconnect.clone());
        if let Some(h) = handler {
            h(&mut SocketCtx::new(self, ctx, key), why);
        }
        let Some(client) = self.client.as_mut() else {
            return;
        };
        let Some(i) = client.index(key) else {
            return;
        };
        let mut s = client.sockets.remove(i);
        self.outbox.borrow_mut().remove_socket(key);
        super::outbox::unregister(key);
        let recovery = client.io.recovery && self.mount.config.recovery.enabled;
        for (_, timer) in s.timers.drain(..) {
            ctx.cancel_future(timer);
        }
        for (_, (cb, timer)) in s.acks.drain() {
            ctx.cancel_future(timer);
            cb(Err(AckError::Disconnected));
        }
        let persist = match (&s.pid, recovery && reason::recoverable(why)) {
            (Some(pid), true) => Some(PersistedSocket {
                pid: pid.clone(),
                id: s.id.clone(),
                rooms: s.rooms.clone(),
                data: s.data.take(),
                at: Instant::now(),
            }),
            _ => None,
        };
        self.mount.server.do_send(SocketDisconnected {
            nsp: s.nsp.clone(),
            id: s.id.clone(),
            key,
            worker: self.shard.worker,
            rooms: std::mem::take(&mut s.rooms),
            persist,
        });
        if send_disconnect {
            let frame = socket::encode_control(PacketKind::Disconnect, &s.nsp, None);
            self.send_frame(frame, ctx);
        }
        log::debug!(
            "socket disconnected sid={} nsp={} id={} reason={why}",
            self.sid,
            s.nsp,
            s.id
        );
    }

    /// The engine connection is closing: every socket goes with `why`.
    pub(super) fn sio_closed(&mut self, why: &'static str, ctx: &mut Context<Self>) {
        while self.client.as_ref().is_some_and(|c| !c.sockets.is_empty()) {
            self.remove_socket(0, why, false, ctx);
        }
    }

    // ---- operations used by `SocketCtx` and `SocketHandle` ----

    pub(crate) fn socket(&self, key: u64) -> Option<&SockState> {
        let c = self.client.as_ref()?;
        c.sockets.iter().find(|s| s.key == key)
    }

    pub(crate) fn socket_mut(&mut self, key: u64) -> Option<&mut SockState> {
        let c = self.client.as_mut()?;
        c.sockets.iter_mut().find(|s| s.key == key)
    }

    pub(crate) fn emit_to_socket(
        &mut self,
        key: u64,
        event: &str,
        args: &[Value],
        binary: Vec<Bytes>,
        ack: Option<(Duration, AckCallback)>,
        ctx: &mut Context<Self>,
    ) {
        let Some(s) = self.socket_mut(key) else {
            if let Some((_, cb)) = ack {
                cb(Err(AckError::Disconnected));
            }
            return;
        };
        let id = match ack {
            Some((timeout, cb)) => {
                let id = s.next_ack;
                s.next_ack += 1;
                let timer = ctx.run_later(timeout, move |act, _| {
                    if let Some(s) = act.socket_mut(key) {
                        if let Some((cb, _)) = s.acks.remove(&id) {
                            cb(Err(AckError::Timeout));
                        }
                    }
                });
                s.acks.insert(id, (cb, timer));
                Some(id)
            }
            None => None,
        };
        if let Some(c) = &s.ns.counters {
            c.events_out.inc();
        }
        let text = socket::encode_event(&s.nsp, event, args, id, binary.len(), None);
        self.send_frame(Frame::Text(text), ctx);
        for b in binary {
            self.send_frame(Frame::Binary(b), ctx);
        }
    }

    pub(crate) fn ack_socket(
        &mut self,
        key: u64,
        ack: AckId,
        args: &[Value],
        binary: Vec<Bytes>,
        ctx: &mut Context<Self>,
    ) {
        let Some(s) = self.socket(key) else { return };
        if let Some(c) = &s.ns.counters {
            c.events_out.inc();
        }
        let m = crate::metrics::get();
        m.acks_sent.inc();
        m.ack_latency.observe(ack.at.elapsed().as_secs_f64());
        let text = socket::encode_ack(&s.nsp, ack.id, args, binary.len());
        self.send_frame(Frame::Text(text), ctx);
        for b in binary {
            self.send_frame(Frame::Binary(b), ctx);
        }
    }

    pub(crate) fn join_rooms(&mut self, key: u64, rooms: Vec<Room>, ctx: &mut Context<Self>) {
        let Some(s) = self.socket_mut(key) else {
            return;
        };
        let mut new = Vec::new();
        for r in rooms {
            if !s.rooms.contains(&r) && !new.contains(&r) {
                new.push(r);
            }
        }
        if new.is_empty() {
            return;
        }
        s.rooms.extend(new.iter().cloned());
        let (nsp, rooms) = (s.nsp.clone(), s.rooms.clone());
        self.outbox.borrow_mut().set_rooms(key, &rooms);
        self.mount.server.do_send(JoinRooms {
            nsp,
            key,
            addr: ctx.address(),
            shard: self.shard.clone(),
            rooms: new,
        });
    }

    pub(crate) fn leave_rooms(&mut self, key: u64, rooms: Vec<Room>) {
        let Some(s) = self.socket_mut(key) else {
            return;
        };
        let gone: Vec<Room> = rooms.into_iter().filter(|r| s.rooms.contains(r)).collect();
        if gone.is_empty() {
            return;
        }
        s.rooms.retain(|r| !gone.contains(r));
        let (nsp, rooms) = (s.nsp.clone(), s.rooms.clone());
        self.outbox.borrow_mut().set_rooms(key, &rooms);
        self.mount.server.do_send(LeaveRooms {
            nsp,
            key,
            worker: self.shard.worker,
            rooms: gone,
        });
    }

    pub(crate) fn disconnect_socket(&mut self, key: u64, ctx: &mut Context<Self>) {
        let Some(i) = self.client.as_ref().and_then(|c| c.index(key)) else {
            return;
        };
        self.remove_socket(i, reason::SERVER_NAMESPACE_DISCONNECT, true, ctx);
    }
}

impl Handler<Deliver> for WsSession {
    type Result = ();
    fn handle(&mut self, msg: Deliver, ctx: &mut Self::Context) {
        let (queued, ws) = {
            let mut ob = self.outbox.borrow_mut();
            (ob.deliver(msg.key, &msg.packet), ob.is_websocket())
        };
        match queued {
            Queued::Yes if ws => self.schedule_flush(ctx),
            Queued::Overflow => self.slow_consumer(ctx),
            _ => {}
        }
    }
}

/// Operations on one socket from anywhere (a spawned future, another thread).
pub enum SocketCommand {
    Emit {
        event: String,
        args: Vec<Value>,
        binary: Vec<Bytes>,
    },
    Ack {
        ack: AckId,
        args: Vec<Value>,
        binary: Vec<Bytes>,
    },
    Join(Vec<Room>),
    Leave(Vec<Room>),
    Disconnect,
    /// Runs in the socket's context, if the socket still exists.
    Run(Box<dyn FnOnce(&mut SocketCtx<'_>) + Send>),
}

#[derive(Message)]
#[rtype(result = "()")]
pub struct ForSocket {
    pub key: u64,
    pub cmd: SocketCommand,
}

impl Handler<ForSocket> for WsSession {
    type Result = ();
    fn handle(&mut self, msg: ForSocket, ctx: &mut Self::Context) {
        let key = msg.key;
        match msg.cmd {
            SocketCommand::Emit {
                event,
                args,
                binary,
            } => self.emit_to_socket(key, &event, &args, binary, None, ctx),
            SocketCommand::Ack { ack, args, binary } => {
                self.ack_socket(key, ack, &args, binary, ctx)
            }
            SocketCommand::Join(rooms) => self.join_rooms(key, rooms, ctx),
            SocketCommand::Leave(rooms) => self.leave_rooms(key, rooms),
            SocketCommand::Disconnect => self.disconnect_socket(key, ctx),
            SocketCommand::Run(f) => {
                if self.socket(key).is_some() {
                    f(&mut SocketCtx::new(self, ctx, key));
                }
            }
        }
    }
}

impl WsSession {
    /// The server address and whether broadcasts are kept for recovery.
    pub(crate) fn io_parts(&self) -> (actix::Addr<crate::actors::ServerActor>, bool) {
        let recovery = self.mount.config.recovery.enabled
            && self.client.as_ref().is_some_and(|c| c.io.recovery);
        (self.mount.server.clone(), recovery)
    }
}

impl WsSession {
    /// Runs `f` on socket `key` after `after`, replacing its timer of the same name.
    pub(crate) fn set_socket_timer(
        &mut self,
        key: u64,
        name: TimerName,
        after: Duration,
        f: Box<dyn FnOnce(&mut SocketCtx<'_>)>,
        ctx: &mut Context<Self>,
    ) {
        self.cancel_socket_timer(key, &name, ctx);
        if self.socket(key).is_none() {
            return;
        }
        let fired = name.clone();
        let handle = ctx.run_later(after, move |act, ctx| {
            let Some(s) = act.socket_mut(key) else { return };
            s.timers.retain(|(n, _)| *n != fired);
            f(&mut SocketCtx::new(act, ctx, key));
        });
        if let Some(s) = self.socket_mut(key) {
            s.timers.push((name, handle));
        }
    }

    pub(crate) fn cancel_socket_timer(&mut self, key: u64, name: &str, ctx: &mut Context<Self>) {
        let Some(s) = self.socket_mut(key) else {
            return;
        };
        if let Some(i) = s.timers.iter().position(|(n, _)| *n == name) {
            let (_, h) = s.timers.swap_remove(i);
            ctx.cancel_future(h);
        }
    }

    pub(crate) fn has_socket_timer(&self, key: u64, name: &str) -> bool {
        self.socket(key)
            .is_some_and(|s| s.timers.iter().any(|(n, _)| n == name))
    }

    pub(crate) fn set_socket_data(&mut self, key: u64, data: SocketData) {
        if let Some(s) = self.socket_mut(key) {
            s.data = data;
        }
    }
}
