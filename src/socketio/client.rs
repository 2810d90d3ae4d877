//! `Client`: the Socket.IO side of one Engine.IO connection, and the engine's handler for
//! it. It holds the connection's namespace sockets, reassembles binary packets, connects
//! sockets (middleware, recovery), dispatches events, keeps acknowledgements in both
//! directions, and removes sockets. [`WsSession`] is the connection's actor.

use std::collections::HashMap;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::{Handler, Message, SpawnHandle};
use bytes::Bytes;
use serde_json::{Map, Value};

use super::adapter::{
    JoinRooms, LeaveRooms, LocalSocket, Member, Nsp, RestoreSession, Room, Shard, SocketConnected,
    SocketDisconnected, SocketId,
};
use super::limit::{EventLimiter, Verdict};
use super::recovery::{PersistedSocket, Restored};
use super::{
    AckCallback, AckError, AckId, AckReply, ConnectError, Event, Handshake, IoShared, Namespace,
    Outgoing, Refused, SocketCtx, SocketData,
};
use crate::engine::{random_id, EngineCtx, EngineHandler, EngineMessage, RequestInfo, Session};
use crate::protocol::engine::Frame;
use crate::protocol::plain::{self, Close, PlainId};
use crate::protocol::socket::{self, Complete, PacketKind, Reassembler};
use crate::protocol::DecodeError;
use crate::protocol::DisconnectReason;

/// The actor of one connection serving Socket.IO.
pub type WsSession = Session<Client>;

type Ctx<'a> = EngineCtx<'a, Client>;

/// A socket timer's name: usually a constant, sometimes built (one per room).
pub(crate) type TimerName = std::borrow::Cow<'static, str>;

/// Unique key of a socket in room maps (cheaper than its string id).
static NEXT_KEY: AtomicU64 = AtomicU64::new(1);

/// The log target of connect, refusal and disconnect lines (one per socket: silence them with
/// `RUST_LOG=info,realtime_server::access=warn`).
const ACCESS: &str = "realtime_server::access";

/// The Socket.IO state of one connection.
pub struct Client {
    pub(crate) io: Arc<IoShared>,
    request: Arc<RequestInfo>,
    sockets: Vec<SockState>,
    /// Namespaces whose CONNECT is being processed (middleware, recovery look-up).
    connecting: Vec<String>,
    reasm: Reassembler,
    connect_timer: Option<SpawnHandle>,
    /// The worker this connection lives on (for sharded rooms).
    shard: Shard,
    /// On a plain WebSocket (`GET /ws`): its state; the connection has one socket, of `/`.
    plain: Option<Box<PlainState>>,
}

/// The namespace a plain WebSocket's socket belongs to.
const PLAIN_NSP: &str = "/";

/// Client ids of a plain connection's events waiting for their answer at most; beyond, the
/// oldest is forgotten (its answer is not sent).
const PLAIN_IDS: usize = 256;

/// Frames a plain client may send while its authentication is checked (they are handled
/// once it is connected); more closes the connection (4429). Below the 16 frames the actor
/// takes from its socket per turn, so frames sent together with `auth` meet the bound
/// before the check can end (tests/clients/plainws.test.mjs attacks it that way).
const PLAIN_EARLY: usize = 12;

/// What the plain protocol keeps for one connection (docs/events.md, "Plain WebSocket").
#[derive(Default)]
struct PlainState {
    /// The client's ids of events waiting for their answer, by the number the socket layer
    /// gave them.
    ids: std::collections::BTreeMap<u64, PlainId>,
    next: u64,
    /// Frames that came while the connect ran.
    early: Vec<String>,
}

/// One namespace socket of the connection.
pub(crate) struct SockState {
    pub(crate) ns: Arc<Namespace>,
    pub(crate) nsp: Nsp,
    pub(crate) id: SocketId,
    pub(crate) key: u64,
    pub(crate) pid: Option<Arc<str>>,
    pub(crate) rooms: Vec<Room>,
    pub(crate) data: SocketData,
    pub(crate) handshake: Arc<Handshake>,
    pub(crate) recovered: bool,
    /// When it connected (ms since the epoch).
    connected_at: i64,
    /// What the fan-outs of this thread see of the socket.
    local: Rc<LocalSocket>,
    acks: HashMap<u64, (AckCallback, SpawnHandle)>,
    next_ack: u64,
    /// Named application timers (`SocketCtx::set_timer`).
    pub(crate) timers: Vec<(TimerName, SpawnHandle)>,
    /// The bucket on its events, when the server limits them.
    limiter: Option<Box<EventLimiter>>,
}

impl Client {
    /// The handler factory of a Socket.IO mount.
    pub(crate) fn factory(io: Arc<IoShared>) -> crate::engine::HandlerFactory<Client> {
        Box::new(move |request| Client {
            io: io.clone(),
            request: request.clone(),
            sockets: Vec::new(),
            connecting: Vec::new(),
            reasm: Reassembler::new(
                io.max_attachments,
                io.max_attachment_bytes,
                io.max_json_depth,
            ),
            connect_timer: None,
            shard: Shard::current(),
            plain: None,
        })
    }

    fn index(&self, key: u64) -> Option<usize> {
        self.sockets.iter().position(|s| s.key == key)
    }

    pub(crate) fn socket(&self, key: u64) -> Option<&SockState> {
        self.sockets.iter().find(|s| s.key == key)
    }

    pub(crate) fn socket_mut(&mut self, key: u64) -> Option<&mut SockState> {
        self.sockets.iter_mut().find(|s| s.key == key)
    }

    fn member(&self, key: u64, ctx: &Ctx<'_>) -> Member {
        Member {
            key,
            addr: ctx.address(),
        }
    }
}

impl EngineHandler for Client {
    /// A connection counts as pending until its first namespace is joined.
    const WAITS_TO_ESTABLISH: bool = true;

    fn on_open(&mut self, ctx: &mut Ctx<'_>) {
        let timeout = ctx.config().engine.connect_timeout();
        let h = ctx.run_later(timeout, |client, ctx| {
            if client.sockets.is_empty() {
                log::debug!("no namespace joined in time sid={}", ctx.sid());
                ctx.close_with(Close::AUTH_REQUIRED, DisconnectReason::ForcedClose);
            }
        });
        self.connect_timer = Some(h);
        if ctx.is_plain() {
            self.plain = Some(Box::default());
            // a token in the upgrade's `Authorization` header connects at once
            let bearer = self.request.headers.iter().any(|(k, v)| {
                k.eq_ignore_ascii_case("authorization")
                    && v.get(..7)
                        .is_some_and(|s| s.eq_ignore_ascii_case("bearer "))
            });
            if bearer {
                self.start_connect(PLAIN_NSP.to_owned(), None, ctx);
            }
        }
    }

    fn on_message(&mut self, msg: EngineMessage, ctx: &mut Ctx<'_>) {
        if self.plain.is_some() {
            if let EngineMessage::Text(t) = msg {
                self.on_plain(t, ctx);
            }
            return;
        }
        let res = match msg {
            EngineMessage::Text(t) => self.reasm.push_text(&t),
            EngineMessage::Binary(b) => self.reasm.push_binary(b),
        };
        match res {
            Ok(Some(c)) => self.on_packet(c, ctx),
            Ok(None) => {
                // Attachments are awaited: only for a namespace this connection is in
                // (none are held for a client that has not joined one).
                let joined = self
                    .reasm
                    .waiting_nsp()
                    .is_some_and(|n| self.sockets.iter().any(|s| *s.nsp == *n));
                if !joined {
                    log::debug!("binary packet outside a namespace sid={}", ctx.sid());
                    crate::metrics::get().refused("attachments");
                    ctx.close(DisconnectReason::ForcedClose);
                }
            }
            Err(DecodeError::TooDeep { kind, nsp, id, .. })
                if self.too_deep(kind, &nsp, id, ctx) => {}
            Err(e) => {
                if matches!(e, DecodeError::AttachmentsTooLarge) {
                    crate::metrics::get().refused("attachments");
                }
                // Node closes the connection with "forced close" on a bad Socket.IO packet.
                log::debug!("socket.io decode error sid={} err={e}", ctx.sid());
                ctx.close(DisconnectReason::ForcedClose);
            }
        }
    }

    /// Every socket goes with the connection's reason.
    fn on_close(&mut self, reason: DisconnectReason, ctx: &mut Ctx<'_>) {
        while !self.sockets.is_empty() {
            self.remove_socket(0, reason, false, ctx);
        }
    }
}

impl Client {
    /// An event too deeply nested for a socket of this connection: refused through the
    /// namespace's `on_refused`, the socket kept. False when it is not such an event (the
    /// connection is then closed as for any bad packet).
    fn too_deep(
        &mut self,
        kind: PacketKind,
        nsp: &str,
        id: Option<u64>,
        ctx: &mut Ctx<'_>,
    ) -> bool {
        let event = matches!(kind, PacketKind::Event | PacketKind::BinaryEvent);
        let Some(key) = self
            .sockets
            .iter()
            .find(|s| *s.nsp == *nsp)
            .filter(|_| event)
            .map(|s| s.key)
        else {
            return false;
        };
        crate::metrics::get().refused("json_depth");
        let why = Refused::TooDeep(self.io.max_json_depth);
        self.refuse(key, id, why, ctx);
        true
    }

    /// Answers an event refused before its handler through the namespace's `on_refused`.
    fn refuse(&mut self, key: u64, id: Option<u64>, why: Refused, ctx: &mut Ctx<'_>) {
        let Some(handler) = self.socket(key).and_then(|s| s.ns.on_refused.clone()) else {
            return;
        };
        let ack = id.map(|id| AckId {
            id,
            at: Instant::now(),
        });
        handler(&mut SocketCtx::new(self, ctx.reborrow(), key), ack, why);
    }

    /// A frame of a plain WebSocket (docs/events.md, "Plain WebSocket"): `auth` connects the
    /// socket, `ack` answers one of the server's events, `ping` is answered `pong`, anything
    /// else is an event of `/`, dispatched exactly as a Socket.IO client's.
    fn on_plain(&mut self, text: String, ctx: &mut Ctx<'_>) {
        let env = match plain::decode(&text, self.io.max_json_depth) {
            Ok(env) => env,
            Err(e) => {
                log::debug!("plain frame refused sid={} err={e}", ctx.sid());
                crate::metrics::get().error("parse");
                return ctx.close_with(Close::INVALID_PAYLOAD, DisconnectReason::ParseError);
            }
        };
        if env.kind == "ping" {
            return ctx.send_frame(&Frame::text_raw(&plain::encode("pong", None)));
        }
        let Some(i) = self.sockets.iter().position(|s| *s.nsp == *PLAIN_NSP) else {
            return self.plain_before_connect(text, env, ctx);
        };
        if env.kind == "ack" {
            let id = match &env.id {
                Some(PlainId::Number(n)) => Some(*n),
                Some(PlainId::Text(t)) => t.parse::<u64>().ok(),
                None => None,
            };
            let Some(id) = id else { return };
            crate::metrics::get().acks_received.inc();
            if let Some((cb, timer)) = self.sockets[i].acks.remove(&id) {
                ctx.cancel(timer);
                cb(Ok(AckReply {
                    args: env.payload.into_iter().collect(),
                    binary: Vec::new(),
                }));
            }
            return;
        }
        // the client's id is kept (bounded) until the handler answers
        let ack = env.id.and_then(|client_id| {
            let p = self.plain.as_mut()?;
            let n = p.next;
            p.next += 1;
            if p.ids.len() >= PLAIN_IDS {
                p.ids.pop_first();
            }
            p.ids.insert(n, client_id);
            Some(n)
        });
        if env.too_deep {
            crate::metrics::get().refused("json_depth");
            let key = self.sockets[i].key;
            let why = Refused::TooDeep(self.io.max_json_depth);
            return self.refuse(key, ack, why, ctx);
        }
        let mut args = vec![Value::String(env.kind)];
        args.extend(env.payload);
        self.dispatch_event(i, ack, Some(Value::Array(args)), Vec::new(), ctx);
    }

    /// A plain frame before the socket is connected: the first must be `auth` with a token
    /// (unless the upgrade carried one); frames during the check wait for its end.
    fn plain_before_connect(&mut self, text: String, env: plain::Envelope, ctx: &mut Ctx<'_>) {
        let connecting = self.connecting.iter().any(|n| n == PLAIN_NSP);
        let Some(p) = self.plain.as_mut() else { return };
        if connecting {
            if p.early.len() >= PLAIN_EARLY {
                crate::metrics::get().refused("events");
                return ctx.close_with(Close::RATE_LIMITED, DisconnectReason::ForcedClose);
            }
            return p.early.push(text);
        }
        let token = match (&*env.kind, &env.payload) {
            ("auth", Some(Value::Object(o))) => o
                .get("token")
                .and_then(Value::as_str)
                .filter(|t| !t.is_empty()),
            _ => None,
        };
        let Some(token) = token else {
            return ctx.close_with(Close::AUTH_REQUIRED, DisconnectReason::ForcedClose);
        };
        let mut auth = Map::new();
        auth.insert("token".into(), Value::from(token));
        self.start_connect(PLAIN_NSP.to_owned(), Some(Value::Object(auth)), ctx);
    }

    fn on_packet(&mut self, c: Complete, ctx: &mut Ctx<'_>) {
        let Complete {
            packet,
            attachments,
        } = c;
        let idx = self.sockets.iter().position(|s| *s.nsp == *packet.nsp);
        let connecting = self.connecting.contains(&packet.nsp);
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
                if let Some((cb, timer)) = self.sockets[i].acks.remove(&id) {
                    ctx.cancel(timer);
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
                self.remove_socket(i, DisconnectReason::ClientNamespaceDisconnect, false, ctx)
            }
            _ => {
                // Node: a packet for a namespace the client is not in (or a second
                // CONNECT) is an invalid state and closes the connection.
                log::debug!(
                    "invalid socket.io state sid={} type={:?} nsp={}",
                    ctx.sid(),
                    packet.kind,
                    packet.nsp
                );
                ctx.close(DisconnectReason::ForcedClose);
            }
        }
    }

    fn start_connect(&mut self, nsp: String, auth: Option<Value>, ctx: &mut Ctx<'_>) {
        let Some(ns) = self.io.namespaces.get(&nsp).cloned() else {
            if self.plain.is_some() {
                log::error!("plain WebSocket: no namespace {nsp} to connect to");
                return ctx.close_with(Close::INTERNAL, DisconnectReason::ForcedClose);
            }
            let err = serde_json::json!({"message": "Invalid namespace"});
            let frame = socket::encode_control(PacketKind::ConnectError, &nsp, Some(&err));
            ctx.send_frame(&frame);
            return;
        };
        let auth = auth.unwrap_or_else(|| Value::Object(Map::new()));
        let handshake = Arc::new(Handshake {
            auth: auth.clone(),
            request: self.request.clone(),
        });
        let nsp = Nsp::from(nsp);
        let pid = auth.get("pid").and_then(Value::as_str);
        let offset = auth.get("offset").and_then(Value::as_str);
        if let (true, Some(pid), Some(offset)) = (self.io.recovery, pid, offset) {
            self.connecting.push(nsp.to_string());
            let ask = self.io.server.send(RestoreSession {
                nsp: nsp.clone(),
                pid: pid.to_owned(),
                offset: offset.to_owned(),
            });
            let again = self.io.recovery_middleware && !ns.middleware.is_empty();
            ctx.spawn(ask, move |client, res, ctx| match res.ok().flatten() {
                Some(restored) if restored.needs_middleware || again => {
                    client.run_middleware(ns, nsp, handshake, Some(restored), ctx)
                }
                Some(restored) => {
                    client.connect_done(&nsp);
                    client.finish_connect(ns, nsp, handshake, None, Some(restored), ctx)
                }
                None => client.run_middleware(ns, nsp, handshake, None, ctx),
            });
            return;
        }
        if ns.middleware.is_empty() {
            return self.finish_connect(ns, nsp, handshake, None, None, ctx);
        }
        self.connecting.push(nsp.to_string());
        self.run_middleware(ns, nsp, handshake, None, ctx);
    }

    fn connect_done(&mut self, nsp: &str) {
        self.connecting.retain(|n| n != nsp);
    }

    fn run_middleware(
        &mut self,
        ns: Arc<Namespace>,
        nsp: Nsp,
        hs: Arc<Handshake>,
        restored: Option<Restored>,
        ctx: &mut Ctx<'_>,
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
            Ok::<_, ConnectError>(data)
        };
        ctx.spawn(fut, move |client, res, ctx| {
            client.connect_done(&nsp);
            if ctx.is_closed() {
                return;
            }
            match res {
                Ok(data) => {
                    // A session restored from another node takes the middleware's data.
                    let restored = restored.map(|r| Restored {
                        data: data.clone(),
                        ..r
                    });
                    client.finish_connect(ns, nsp, hs, data, restored, ctx)
                }
                Err(e) => {
                    crate::metrics::get().error("connect_refused");
                    let code = e
                        .data
                        .as_ref()
                        .and_then(|d| d.get("code"))
                        .and_then(Value::as_str)
                        .unwrap_or("-");
                    log::info!(
                        target: ACCESS,
                        sid:% = ctx.sid(), nsp = &*nsp, ip = client.ip().as_str(), code = code;
                        "connect refused: {}", e.message
                    );
                    if client.plain.is_some() {
                        let close = Close::for_code(code);
                        return ctx.close_with(close, DisconnectReason::ForcedClose);
                    }
                    let frame =
                        socket::encode_control(PacketKind::ConnectError, &nsp, Some(&e.to_json()));
                    ctx.send_frame(&frame);
                }
            }
        });
    }

    fn finish_connect(
        &mut self,
        ns: Arc<Namespace>,
        nsp: Nsp,
        handshake: Arc<Handshake>,
        data: SocketData,
        restored: Option<Restored>,
        ctx: &mut Ctx<'_>,
    ) {
        if ctx.is_closed() {
            return;
        }
        let key = NEXT_KEY.fetch_add(1, Ordering::Relaxed);
        let (id, pid, rooms, data, missed, recovered) = match restored {
            Some(r) => (r.id, Some(r.pid), r.rooms, r.data, r.missed, true),
            None => (
                SocketId::from(random_id()),
                // a plain client cannot recover a session: none is kept for it
                (self.io.recovery && self.plain.is_none()).then(random_id),
                Vec::new(),
                data,
                Vec::new(),
                false,
            ),
        };
        let member = self.member(key, ctx);
        self.io.server.do_send(SocketConnected {
            nsp: nsp.clone(),
            id: id.clone(),
            member: member.clone(),
            shard: self.shard.clone(),
        });
        if !rooms.is_empty() {
            self.io.server.do_send(JoinRooms {
                nsp: nsp.clone(),
                member,
                shard: self.shard.clone(),
                rooms: rooms.clone(),
            });
        }
        let mut answer = Map::new();
        answer.insert("sid".into(), Value::from(&*id));
        if let Some(pid) = &pid {
            answer.insert("pid".into(), Value::from(&**pid));
        }
        if let Some(h) = self.connect_timer.take() {
            ctx.cancel(h);
        }
        ctx.established();
        let local = LocalSocket::register(
            key,
            id.clone(),
            rooms.clone(),
            ctx.outbox().clone(),
            self.plain.is_some(),
        );
        self.sockets.push(SockState {
            ns: ns.clone(),
            nsp: nsp.clone(),
            id: id.clone(),
            key,
            pid,
            rooms,
            data,
            handshake,
            recovered,
            connected_at: crate::protocol::now_ms(),
            local,
            acks: HashMap::new(),
            next_ack: 0,
            timers: Vec::new(),
            limiter: self
                .io
                .event_rate
                .map(|(quota, after)| EventLimiter::new(quota, after)),
        });
        let frame = if self.plain.is_some() {
            let welcome = match (&ns.welcome, self.sockets.last()) {
                (Some(f), Some(s)) => f(&s.data),
                _ => Value::Object(Map::new()),
            };
            Frame::text_raw(&plain::encode("auth:ok", Some(&welcome)))
        } else {
            socket::encode_control(PacketKind::Connect, &nsp, Some(&Value::Object(answer)))
        };
        ctx.send_frame(&frame);
        log::info!(
            target: ACCESS,
            sid:% = ctx.sid(), nsp = &*nsp, id = &*id, ip = self.ip().as_str(), recovered = recovered;
            "socket connected"
        );
        for frames in &missed {
            ctx.send_frames(frames);
        }
        log::debug!(
            "socket connected sid={} nsp={nsp} id={id} recovered={recovered}",
            ctx.sid()
        );
        if let Some(h) = ns.on_connect.clone() {
            h(&mut SocketCtx::new(self, ctx.reborrow(), key));
        }
        // what a plain client sent while it was being authenticated
        let early = self
            .plain
            .as_mut()
            .map(|p| std::mem::take(&mut p.early))
            .unwrap_or_default();
        for text in early {
            if ctx.is_closed() {
                break;
            }
            self.on_plain(text, ctx);
        }
    }

    fn dispatch_event(
        &mut self,
        i: usize,
        id: Option<u64>,
        data: Option<Value>,
        binary: Vec<Bytes>,
        ctx: &mut Ctx<'_>,
    ) {
        let s = &mut self.sockets[i];
        let Some(Value::Array(mut arr)) = data else {
            return;
        };
        if arr.is_empty() {
            return;
        }
        if let Some(c) = &s.ns.counters {
            c.events_in.inc();
        }
        let verdict = s
            .limiter
            .as_mut()
            .map_or(Verdict::Pass, |l| l.check(Instant::now()));
        if verdict != Verdict::Pass {
            crate::metrics::get().refused("events");
            let key = s.key;
            if verdict == Verdict::Disconnect {
                let ip = self.ip();
                let s = &self.sockets[i];
                log::warn!(
                    sid:% = ctx.sid(), nsp = &*s.nsp, id = &*s.id, ip = ip.as_str();
                    "disconnecting socket over its event rate"
                );
                if self.plain.is_some() {
                    ctx.close_with(
                        Close::RATE_LIMITED,
                        DisconnectReason::ServerNamespaceDisconnect,
                    );
                }
                return self.remove_socket(
                    i,
                    DisconnectReason::ServerNamespaceDisconnect,
                    true,
                    ctx,
                );
            }
            return self.refuse(key, id, Refused::RateLimited, ctx);
        }
        let name = match arr.remove(0) {
            Value::String(s) => s,
            other => other.to_string(),
        };
        let handler = s.ns.events.get(&name).or(s.ns.fallback.as_ref()).cloned();
        let key = s.key;
        if let Some(tap) = self.io.tap.clone() {
            tap(&SocketCtx::new(self, ctx.reborrow(), key), &name, &arr);
        }
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
            h(&mut SocketCtx::new(self, ctx.reborrow(), key), ev);
        }
    }

    /// Removes socket `i`: its handler hears the reason, its rooms are left, its pending
    /// acks fail, and (when recovery is on and the reason allows) its state is kept.
    /// The client's address for log lines (`-` when unknown).
    fn ip(&self) -> String {
        self.request
            .client_ip
            .map_or_else(|| "-".to_owned(), |ip| ip.to_string())
    }

    fn remove_socket(
        &mut self,
        i: usize,
        why: DisconnectReason,
        send_disconnect: bool,
        ctx: &mut Ctx<'_>,
    ) {
        let Some(s) = self.sockets.get(i) else {
            return;
        };
        let (key, handler) = (s.key, s.ns.on_disconnect.clone());
        if let Some(h) = handler {
            h(&mut SocketCtx::new(self, ctx.reborrow(), key), why);
        }
        let Some(i) = self.index(key) else {
            return;
        };
        let mut s = self.sockets.remove(i);
        s.local.retire();
        for (_, timer) in s.timers.drain(..) {
            ctx.cancel(timer);
        }
        for (_, (cb, timer)) in s.acks.drain() {
            ctx.cancel(timer);
            cb(Err(AckError::Disconnected));
        }
        let persist = match (&s.pid, self.io.recovery && why.recoverable()) {
            (Some(pid), true) => Some(PersistedSocket {
                pid: pid.clone(),
                id: s.id.clone(),
                rooms: s.rooms.clone(),
                data: s.data.take(),
                at: Instant::now(),
            }),
            _ => None,
        };
        self.io.server.do_send(SocketDisconnected {
            nsp: s.nsp.clone(),
            id: s.id.clone(),
            key,
            worker: self.shard.worker,
            rooms: std::mem::take(&mut s.rooms),
            persist,
        });
        if send_disconnect && self.plain.is_some() {
            // a plain connection is its one socket: the server's disconnect closes it (the
            // code chosen before, e.g. TOKEN_EXPIRED, or 4403)
            ctx.close_with(Close::FORBIDDEN, why);
        } else if send_disconnect {
            let frame = socket::encode_control(PacketKind::Disconnect, &s.nsp, None);
            ctx.send_frame(&frame);
        }
        log::info!(
            target: ACCESS,
            sid:% = ctx.sid(), nsp = &*s.nsp, id = &*s.id, ip = self.ip().as_str(), reason:% = why;
            "socket disconnected"
        );
    }

    // ---- operations of `SocketCtx` and `SocketHandle` ----

    pub(crate) fn emit(
        &mut self,
        key: u64,
        event: &str,
        args: &[Value],
        binary: Vec<Bytes>,
        ack: Option<(Duration, AckCallback)>,
        ctx: &mut Ctx<'_>,
    ) {
        let plain = self.plain.is_some();
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
                let timer = ctx.run_later(timeout, move |client, _| {
                    if let Some(s) = client.socket_mut(key) {
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
        if plain {
            // the plain protocol carries JSON only: a binary event does not reach it
            if binary.is_empty() {
                ctx.send_frame(&Frame::text_raw(&plain::encode_event(event, args, id)));
            }
            return;
        }
        let text = socket::encode_event(&s.nsp, event, args, id, binary.len(), None);
        ctx.send_frame(&Frame::text_raw(&text));
        for b in binary {
            ctx.send_frame(&Frame::binary(&b));
        }
    }

    pub(crate) fn ack(
        &mut self,
        key: u64,
        ack: AckId,
        args: &[Value],
        binary: Vec<Bytes>,
        ctx: &mut Ctx<'_>,
    ) {
        let Some(s) = self.socket(key) else { return };
        if let Some(c) = &s.ns.counters {
            c.events_out.inc();
        }
        let nsp = s.nsp.clone();
        let m = crate::metrics::get();
        m.acks_sent.inc();
        m.ack_latency.observe(ack.at.elapsed().as_secs_f64());
        if let Some(p) = self.plain.as_mut() {
            if let Some(id) = p.ids.remove(&ack.id) {
                ctx.send_frame(&Frame::text_raw(&plain::encode_ack(&id, args)));
            }
            return;
        }
        let text = socket::encode_ack(&nsp, ack.id, args, binary.len());
        ctx.send_frame(&Frame::text_raw(&text));
        for b in binary {
            ctx.send_frame(&Frame::binary(&b));
        }
    }

    pub(crate) fn join(&mut self, key: u64, rooms: Vec<Room>, ctx: &mut Ctx<'_>) {
        let member = self.member(key, ctx);
        let shard = self.shard.clone();
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
        s.local.set_rooms(&s.rooms);
        let nsp = s.nsp.clone();
        self.io.server.do_send(JoinRooms {
            nsp,
            member,
            shard,
            rooms: new,
        });
    }

    pub(crate) fn leave(&mut self, key: u64, rooms: Vec<Room>) {
        let worker = self.shard.worker;
        let Some(s) = self.socket_mut(key) else {
            return;
        };
        let gone: Vec<Room> = rooms.into_iter().filter(|r| s.rooms.contains(r)).collect();
        if gone.is_empty() {
            return;
        }
        s.rooms.retain(|r| !gone.contains(r));
        s.local.set_rooms(&s.rooms);
        let nsp = s.nsp.clone();
        self.io.server.do_send(LeaveRooms {
            nsp,
            key,
            worker,
            rooms: gone,
        });
    }

    /// Disconnects socket `key` server side; on a plain WebSocket the connection closes
    /// with the close of the application code `code` (e.g. `TOKEN_EXPIRED` → 4401).
    pub(crate) fn disconnect_for(&mut self, key: u64, code: &str, ctx: &mut Ctx<'_>) {
        if self.plain.is_some() && self.index(key).is_some() {
            ctx.close_with(
                Close::for_code(code),
                DisconnectReason::ServerNamespaceDisconnect,
            );
        }
        self.disconnect(key, ctx);
    }

    pub(crate) fn disconnect(&mut self, key: u64, ctx: &mut Ctx<'_>) {
        let Some(i) = self.index(key) else {
            return;
        };
        self.remove_socket(i, DisconnectReason::ServerNamespaceDisconnect, true, ctx);
    }

    /// Runs `f` on socket `key` after `after`, replacing its timer of the same name.
    pub(crate) fn set_timer(
        &mut self,
        key: u64,
        name: TimerName,
        after: Duration,
        f: Box<dyn FnOnce(&mut SocketCtx<'_>)>,
        ctx: &mut Ctx<'_>,
    ) {
        self.cancel_timer(key, &name, ctx);
        if self.socket(key).is_none() {
            return;
        }
        let fired = name.clone();
        let handle = ctx.run_later(after, move |client, ctx| {
            let Some(s) = client.socket_mut(key) else {
                return;
            };
            s.timers.retain(|(n, _)| *n != fired);
            f(&mut SocketCtx::new(client, ctx.reborrow(), key));
        });
        if let Some(s) = self.socket_mut(key) {
            s.timers.push((name, handle));
        }
    }

    pub(crate) fn cancel_timer(&mut self, key: u64, name: &str, ctx: &mut Ctx<'_>) {
        let Some(s) = self.socket_mut(key) else {
            return;
        };
        if let Some(i) = s.timers.iter().position(|(n, _)| *n == name) {
            let (_, h) = s.timers.swap_remove(i);
            ctx.cancel(h);
        }
    }

    fn deliver(&mut self, key: u64, packet: &Outgoing, ctx: &mut Ctx<'_>) {
        let Some(s) = self.socket(key) else { return };
        if let Some(queued) = s.local.deliver(packet) {
            ctx.queued(queued);
        }
    }

    fn command(&mut self, key: u64, cmd: SocketCommand, ctx: &mut Ctx<'_>) {
        match cmd {
            SocketCommand::Emit {
                event,
                args,
                binary,
            } => self.emit(key, &event, &args, binary, None, ctx),
            SocketCommand::Ack { ack, args, binary } => self.ack(key, ack, &args, binary, ctx),
            SocketCommand::Join(rooms) => self.join(key, rooms, ctx),
            SocketCommand::Leave(rooms) => self.leave(key, rooms),
            SocketCommand::Disconnect => self.disconnect(key, ctx),
            SocketCommand::Command { name, args } => {
                let handler = self
                    .socket(key)
                    .and_then(|s| s.ns.commands.get(&*name).cloned());
                if let Some(h) = handler {
                    h(&mut SocketCtx::new(self, ctx.reborrow(), key), &args);
                }
            }
            SocketCommand::Run(f) => {
                if self.socket(key).is_some() {
                    f(&mut SocketCtx::new(self, ctx.reborrow(), key));
                }
            }
        }
    }
}

impl Client {
    /// How `fetch_sockets` lists socket `key`; disconnected afterwards when `end`.
    fn describe(
        &mut self,
        msg: &Describe,
        ctx: &mut Ctx<'_>,
    ) -> Option<crate::socketio::adapter::SocketInfo> {
        use crate::socketio::adapter::{HandshakeInfo, SocketInfo};
        let s = self.socket(msg.key)?;
        let data = s.ns.welcome.as_ref().map_or(Value::Null, |w| w(&s.data));
        let info = SocketInfo {
            id: s.id.to_string(),
            nsp: s.nsp.to_string(),
            client_id: ctx.sid().to_string(),
            transport: ctx.transport().to_owned(),
            address: self.request.client_ip.map(|ip| ip.to_string()),
            connected_at: s.connected_at,
            rooms: s.rooms.iter().map(|r| r.to_string()).collect(),
            data,
            node: String::new(),
            handshake: msg.handshake.then(|| HandshakeInfo::of(&self.request)),
        };
        if msg.disconnect {
            self.disconnect(msg.key, ctx);
        }
        Some(info)
    }
}

/// Asks a session to describe one of its sockets (`fetch_sockets`): `None` when it is
/// gone.
#[derive(Message)]
#[rtype(result = "Option<crate::socketio::adapter::SocketInfo>")]
pub struct Describe {
    /// The socket's key.
    pub key: u64,
    /// Include the handshake.
    pub handshake: bool,
    /// Disconnect it once described.
    pub disconnect: bool,
}

impl Handler<Describe> for WsSession {
    type Result = Option<crate::socketio::adapter::SocketInfo>;
    fn handle(&mut self, msg: Describe, ctx: &mut Self::Context) -> Self::Result {
        self.with_handler(ctx, |client, ectx| client.describe(&msg, ectx))
    }
}

/// Hands a broadcast packet to one socket of a session (when the socket is not on the
/// sending room actor's thread, or is the target of a single-socket broadcast).
#[derive(Message)]
#[rtype(result = "()")]
pub struct Deliver {
    /// The socket's key.
    pub key: u64,
    /// The shared packet.
    pub packet: Arc<Outgoing>,
}

impl Handler<Deliver> for WsSession {
    type Result = ();
    fn handle(&mut self, msg: Deliver, ctx: &mut Self::Context) {
        self.with_handler(ctx, |client, ectx| {
            client.deliver(msg.key, &msg.packet, ectx)
        });
    }
}

/// Operations on one socket from anywhere (a spawned future, another thread).
pub enum SocketCommand {
    /// Emit an event.
    Emit {
        /// Its name.
        event: String,
        /// Its arguments.
        args: Vec<Value>,
        /// Its attachments.
        binary: Vec<Bytes>,
    },
    /// Answer an acknowledgement request.
    Ack {
        /// The request.
        ack: AckId,
        /// The answer.
        args: Vec<Value>,
        /// Its attachments.
        binary: Vec<Bytes>,
    },
    /// Join rooms.
    Join(Vec<Room>),
    /// Leave rooms.
    Leave(Vec<Room>),
    /// Disconnect the socket (server side).
    Disconnect,
    /// Run the namespace's command handler `name` (`Namespace::on_command`).
    Command {
        /// The handler's name.
        name: Arc<str>,
        /// Its argument.
        args: Arc<Value>,
    },
    /// Runs in the socket's context, if the socket still exists.
    Run(Box<dyn FnOnce(&mut SocketCtx<'_>) + Send>),
}

/// A [`SocketCommand`] for socket `key` of a session.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ForSocket {
    /// The socket's key.
    pub key: u64,
    /// What to do.
    pub cmd: SocketCommand,
}

impl Handler<ForSocket> for WsSession {
    type Result = ();
    fn handle(&mut self, msg: ForSocket, ctx: &mut Self::Context) {
        self.with_handler(ctx, |client, ectx| client.command(msg.key, msg.cmd, ectx));
    }
}
