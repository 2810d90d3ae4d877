//! `WsSession`: one actor per Engine.IO connection, whatever its transport.
//!
//! It owns the heartbeat (server ping `2`, client pong `3`), the transport (a polling queue
//! answered by GET requests, or a WebSocket writer queue), the polling→WebSocket upgrade, the
//! bound on outbound frames, and, above the engine, the Socket.IO sockets of the connection
//! (`sio.rs`). Packets are decoded by `crate::protocol`; nothing here parses bytes itself.

mod outbox;
mod sio;

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;
use std::sync::Arc;

use actix::{
    Actor, ActorContext, ActorFutureExt, AsyncContext, Context, Handler, Message, SpawnHandle,
    StreamHandler, WrapFuture,
};
use actix_http::ws::CloseCode;
use bytes::Bytes;
use tokio::sync::oneshot;

use super::messages::{RegisterSession, SessionClosed};
use crate::protocol::engine::{self, kind, Frame, Packet};
use crate::socketio::reason;
use crate::transport::ws::{Flushed, WsIn, WsWriter};
use crate::Mount;

pub use sio::{random_id, ForSocket, SioClient, SocketCommand};

/// A room actor found this session's socket full or a frame over the bound.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct OutboxTrouble {
    pub(crate) flushed: Flushed,
}

impl Handler<OutboxTrouble> for WsSession {
    type Result = ();
    fn handle(&mut self, msg: OutboxTrouble, ctx: &mut Self::Context) {
        if self.outbox.borrow().overflowed {
            return self.slow_consumer(ctx);
        }
        self.after_flush(msg.flushed, ctx);
    }
}

/// A message of a bare Engine.IO server (no Socket.IO layer).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineMessage {
    Text(String),
    Binary(Bytes),
}

/// The application of a bare Engine.IO server: answers each message with messages.
pub trait EngineHandler: Send + Sync + 'static {
    fn on_message(&self, msg: EngineMessage) -> Vec<EngineMessage>;
}

pub(crate) use outbox::{local as local_outbox, Outbox, Queued, SharedOutbox, Transport};

pub use crate::socketio::RequestInfo;

pub struct WsSession {
    sid: Arc<str>,
    mount: Arc<Mount>,
    /// The transport, shared with this worker's room actors.
    pub(crate) outbox: SharedOutbox,
    /// The WebSocket being probed during an upgrade.
    probe: Option<WsWriter>,
    /// A flush of the WebSocket is scheduled for the end of the current batch of work.
    flush_scheduled: bool,
    /// A wait for the full socket to become writable is under way.
    flush_waiting: bool,
    /// Generation of the last WebSocket attached by an upgrade.
    last_gen: u32,
    /// After a server-side close on polling: the close packet waits for the next GET.
    closing: bool,
    closed: bool,
    pong_timer: Option<SpawnHandle>,
    request: Arc<RequestInfo>,
    client: Option<SioClient>,
    /// The worker this session lives on (for sharded rooms).
    pub(crate) shard: super::messages::Shard,
}

/// The first WebSocket of a session has generation 0; upgrades count up from 1.
const DIRECT_WS_GEN: u32 = 0;

impl WsSession {
    /// A session on polling; the open packet is queued for the first GET.
    pub fn polling(sid: Arc<str>, mount: Arc<Mount>, request: RequestInfo) -> Self {
        Self::new(
            sid,
            mount,
            Transport::Polling {
                queue: VecDeque::new(),
                pending: None,
            },
            request,
        )
    }

    /// A session born on a WebSocket.
    pub fn websocket(
        sid: Arc<str>,
        mount: Arc<Mount>,
        writer: tokio::net::tcp::OwnedWriteHalf,
        request: RequestInfo,
    ) -> Self {
        let out = WsWriter::new(writer, DIRECT_WS_GEN);
        Self::new(sid, mount, Transport::WebSocket(out), request)
    }

    fn new(sid: Arc<str>, mount: Arc<Mount>, transport: Transport, req: RequestInfo) -> Self {
        let client = match &mount.service {
            crate::Service::SocketIo(io) => Some(SioClient::new(io.clone())),
            crate::Service::Engine(_) => None,
        };
        let max = mount.config.engine.max_buffered_frames;
        WsSession {
            sid,
            mount,
            outbox: Rc::new(RefCell::new(Outbox::new(transport, max))),
            probe: None,
            flush_scheduled: false,
            flush_waiting: false,
            last_gen: DIRECT_WS_GEN,
            closing: false,
            closed: false,
            pong_timer: None,
            request: Arc::new(req),
            client,
            shard: super::messages::Shard::current(),
        }
    }

    fn is_websocket(&self) -> bool {
        self.outbox.borrow().is_websocket()
    }

    /// Queues a frame on the current transport. A full queue means a slow consumer: the
    /// connection is closed rather than allowed to grow.
    pub(crate) fn send_frame(&mut self, frame: Frame, ctx: &mut Context<Self>) {
        if self.closed {
            return;
        }
        let (queued, ws) = {
            let mut ob = self.outbox.borrow_mut();
            (ob.push(&frame), ob.is_websocket())
        };
        match queued {
            Queued::Yes if ws => self.schedule_flush(ctx),
            Queued::Overflow => self.slow_consumer(ctx),
            _ => {}
        }
    }

    /// The outbound bound was hit: close rather than grow.
    pub(crate) fn slow_consumer(&mut self, ctx: &mut Context<Self>) {
        let max = self.mount.config.engine.max_buffered_frames;
        log::warn!("closing slow consumer sid={} max_buffered={max}", self.sid);
        crate::metrics::get().error("slow_consumer");
        self.close(reason::TRANSPORT_ERROR, ctx);
    }

    /// Writes the WebSocket buffer once the current batch of messages is handled, so all
    /// frames queued by it leave in one write.
    pub(crate) fn schedule_flush(&mut self, ctx: &mut Context<Self>) {
        if self.flush_scheduled {
            return;
        }
        self.flush_scheduled = true;
        ctx.spawn(actix::fut::ready(()).map(|_, act: &mut Self, ctx| {
            act.flush_scheduled = false;
            act.flush_ws(ctx);
        }));
    }

    fn flush_ws(&mut self, ctx: &mut Context<Self>) {
        let flushed = self.outbox.borrow_mut().flush();
        self.after_flush(flushed, ctx);
    }

    /// A full socket parks the writes until it is writable again; a broken one ends it.
    fn after_flush(&mut self, flushed: Flushed, ctx: &mut Context<Self>) {
        match flushed {
            Flushed::Done => {}
            Flushed::Blocked => self.wait_writable(ctx),
            Flushed::Broken => self.close(reason::TRANSPORT_CLOSE, ctx),
        }
    }

    fn wait_writable(&mut self, ctx: &mut Context<Self>) {
        let sock = {
            let mut ob = self.outbox.borrow_mut();
            let Transport::WebSocket(w) = &ob.transport else {
                return;
            };
            if ob.blocked && self.flush_waiting {
                return;
            }
            let sock = w.socket();
            ob.blocked = true;
            sock
        };
        self.flush_waiting = true;
        ctx.spawn(
            async move { sock.writable().await }
                .into_actor(self)
                .map(|res, act, ctx| {
                    act.flush_waiting = false;
                    act.outbox.borrow_mut().blocked = false;
                    match res {
                        Ok(()) => act.flush_ws(ctx),
                        Err(_) => act.close(reason::TRANSPORT_CLOSE, ctx),
                    }
                }),
        );
    }

    fn schedule_ping(&mut self, ctx: &mut Context<Self>) {
        let interval = self.mount.config.engine.ping_interval();
        ctx.run_later(interval, |act, ctx| {
            if act.closed {
                return;
            }
            act.send_frame(Frame::bare(kind::PING), ctx);
            let timeout = act.mount.config.engine.ping_timeout();
            act.pong_timer = Some(ctx.run_later(timeout, |act, ctx| {
                act.close(reason::PING_TIMEOUT, ctx);
            }));
        });
    }

    /// Closes the session once: sockets are told the reason, the transport gets its close.
    pub(crate) fn close(&mut self, why: &'static str, ctx: &mut Context<Self>) {
        if self.closed {
            return;
        }
        log::debug!("session closing sid={} reason={why}", self.sid);
        self.sio_closed(why, ctx);
        self.closed = true;
        if let Some(mut p) = self.probe.take() {
            p.close(None);
            p.finish_in_background();
        }
        let client_gone = why == reason::TRANSPORT_CLOSE;
        let mut ob = self.outbox.borrow_mut();
        ob.closed = true;
        let blocked = ob.blocked;
        match &mut ob.transport {
            Transport::WebSocket(out) => {
                if !client_gone {
                    out.close(None);
                    if !blocked {
                        out.flush();
                    }
                }
                ctx.stop();
            }
            Transport::Polling { queue, pending } => {
                queue.push_back(Frame::bare(kind::CLOSE));
                if let Some(tx) = pending.take() {
                    let _ = tx.send(engine::encode_payload(queue.iter()));
                    ctx.stop();
                } else if client_gone {
                    ctx.stop();
                } else {
                    // The client learns of the close on its next GET; give it a while.
                    self.closing = true;
                    let wait = self.mount.config.engine.ping_timeout();
                    ctx.run_later(wait, |_, ctx| ctx.stop());
                }
            }
        }
    }

    /// An Engine.IO packet from the client on the current transport.
    fn on_packet(&mut self, packet: Packet, ctx: &mut Context<Self>) {
        match packet {
            Packet::Pong(_) => {
                if let Some(h) = self.pong_timer.take() {
                    ctx.cancel_future(h);
                    self.schedule_ping(ctx);
                }
            }
            Packet::Message(text) => self.on_message(EngineMessage::Text(text), ctx),
            Packet::Binary(b) => self.on_message(EngineMessage::Binary(b), ctx),
            Packet::Close => self.close(reason::TRANSPORT_CLOSE, ctx),
            // A v4 client never pings: Node treats it as a transport error.
            Packet::Ping(_) => self.close(reason::TRANSPORT_ERROR, ctx),
            Packet::Open(_) | Packet::Upgrade | Packet::Noop => {}
        }
    }

    fn on_message(&mut self, msg: EngineMessage, ctx: &mut Context<Self>) {
        if self.closed {
            return;
        }
        match &self.mount.service {
            crate::Service::Engine(handler) => {
                let handler = handler.clone();
                for reply in handler.on_message(msg) {
                    let frame = match reply {
                        EngineMessage::Text(t) => Frame::text(kind::MESSAGE, t.as_bytes()),
                        EngineMessage::Binary(b) => Frame::Binary(b),
                    };
                    self.send_frame(frame, ctx);
                }
            }
            crate::Service::SocketIo(_) => self.sio_message(msg, ctx),
        }
    }

    /// A WebSocket message from the socket of generation `gen`.
    fn on_ws(&mut self, gen: u32, item: WsIn, ctx: &mut Context<Self>) {
        let current =
            matches!(&self.outbox.borrow().transport, Transport::WebSocket(o) if o.gen == gen);
        let probing = self.probe.as_ref().is_some_and(|p| p.gen == gen);
        if self.closed || !(current || probing) {
            return;
        }
        if probing {
            return self.on_probe(item, ctx);
        }
        match item {
            WsIn::Text(b) => match engine::decode_text_bytes(&b) {
                Ok(p) => self.on_packet(p, ctx),
                Err(e) => {
                    log::debug!("engine parse error sid={} err={e}", self.sid);
                    crate::metrics::get().error("parse");
                    self.close(reason::PARSE_ERROR, ctx);
                }
            },
            WsIn::Binary(b) => self.on_packet(Packet::Binary(b), ctx),
            WsIn::Ping(b) => {
                if let Transport::WebSocket(out) = &mut self.outbox.borrow_mut().transport {
                    out.pong(&b);
                }
                self.schedule_flush(ctx);
            }
            WsIn::Close => self.close(reason::TRANSPORT_CLOSE, ctx),
            WsIn::Error { too_big } => {
                if too_big {
                    if let Transport::WebSocket(out) = &mut self.outbox.borrow_mut().transport {
                        out.close(Some(CloseCode::Size));
                    }
                }
                log::debug!("websocket error sid={} too_big={too_big}", self.sid);
                self.close(reason::TRANSPORT_ERROR, ctx);
            }
        }
    }

    /// Messages on the probe socket of an upgrade: `2probe` → `3probe`, then `5` switches.
    fn on_probe(&mut self, item: WsIn, ctx: &mut Context<Self>) {
        let packet = match item {
            WsIn::Text(b) => engine::decode_text_bytes(&b).ok(),
            _ => None,
        };
        match packet {
            Some(Packet::Ping(p)) if p == "probe" => {
                if let Some(probe) = &mut self.probe {
                    probe.frame(&Frame::text(kind::PONG, b"probe"));
                    if probe.flush() == Flushed::Blocked {
                        // a fresh socket that cannot take 8 bytes: give up the probe
                        if let Some(p) = self.probe.take() {
                            p.finish_in_background();
                        }
                    }
                }
                // Release the client's pending GET so it can send the upgrade.
                self.answer_poll_with_noop();
            }
            Some(Packet::Upgrade) => {
                let Some(probe) = self.probe.take() else {
                    return;
                };
                let old = std::mem::replace(
                    &mut self.outbox.borrow_mut().transport,
                    Transport::WebSocket(probe),
                );
                if let Transport::Polling { queue, pending } = old {
                    if let Some(tx) = pending {
                        let _ = tx.send(Bytes::from_static(b"6"));
                    }
                    for f in queue {
                        self.send_frame(f, ctx);
                    }
                }
                log::debug!("session upgraded sid={}", self.sid);
            }
            Some(Packet::Noop) | Some(Packet::Pong(_)) => {}
            _ => {
                // Anything else on the probe: abandon the upgrade, keep polling.
                if let Some(mut p) = self.probe.take() {
                    p.close(None);
                    p.finish_in_background();
                }
            }
        }
    }

    fn answer_poll_with_noop(&mut self) {
        if let Transport::Polling { queue, pending } = &mut self.outbox.borrow_mut().transport {
            if queue.is_empty() {
                if let Some(tx) = pending.take() {
                    let _ = tx.send(Bytes::from_static(b"6"));
                }
            }
        }
    }
}

impl Actor for WsSession {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(1 << 16);
        self.mount.server.do_send(RegisterSession {
            sid: self.sid.clone(),
            mount: self.mount.id,
            addr: ctx.address(),
        });
        let cfg = &self.mount.config.engine;
        let upgrades: &[&str] = if self.is_websocket() {
            &[]
        } else {
            &["websocket"]
        };
        let open = engine::open_json(
            &self.sid,
            upgrades,
            cfg.ping_interval_ms,
            cfg.ping_timeout_ms,
            cfg.max_payload,
        );
        self.send_frame(Frame::text(kind::OPEN, open.as_bytes()), ctx);
        self.schedule_ping(ctx);
        self.sio_started(ctx);
        log::debug!(
            "session opened sid={} transport={}",
            self.sid,
            if self.is_websocket() {
                "websocket"
            } else {
                "polling"
            }
        );
    }

    fn stopped(&mut self, ctx: &mut Self::Context) {
        if !self.closed {
            self.close(reason::TRANSPORT_CLOSE, ctx);
        }
        // Whatever is still queued (the close frame, last packets) is written in the
        // background; dropping the writer then closes the socket.
        let transport = std::mem::replace(
            &mut self.outbox.borrow_mut().transport,
            Transport::Polling {
                queue: VecDeque::new(),
                pending: None,
            },
        );
        if let Transport::WebSocket(out) = transport {
            out.finish_in_background();
        }
        self.mount.server.do_send(SessionClosed {
            sid: self.sid.clone(),
        });
    }
}

/// Inbound frames of a session born on a WebSocket (added with `add_stream`).
impl StreamHandler<WsIn> for WsSession {
    fn handle(&mut self, item: WsIn, ctx: &mut Self::Context) {
        self.on_ws(DIRECT_WS_GEN, item, ctx);
    }

    fn finished(&mut self, ctx: &mut Self::Context) {
        self.on_ws(DIRECT_WS_GEN, WsIn::Close, ctx);
    }
}

/// Inbound frames of an upgrade WebSocket, forwarded from the thread that accepted it.
#[derive(Message)]
#[rtype(result = "()")]
pub struct ForwardWs {
    pub gen: u32,
    pub item: WsIn,
}

impl Handler<ForwardWs> for WsSession {
    type Result = ();
    fn handle(&mut self, msg: ForwardWs, ctx: &mut Self::Context) {
        self.on_ws(msg.gen, msg.item, ctx);
    }
}

/// Why a polling request or upgrade was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestError {
    /// The session is gone (or going).
    UnknownSid,
    /// The request does not fit the session's transport.
    BadRequest,
    /// A second GET while one is pending.
    Overlap,
}

/// A polling GET.
#[derive(Message)]
#[rtype(result = "Result<PollReply, RequestError>")]
pub struct Poll;

pub enum PollReply {
    Ready(Bytes),
    Wait(oneshot::Receiver<Bytes>),
}

impl Handler<Poll> for WsSession {
    type Result = Result<PollReply, RequestError>;
    fn handle(&mut self, _: Poll, ctx: &mut Self::Context) -> Self::Result {
        if self.closed && !self.closing {
            return Err(RequestError::UnknownSid);
        }
        let probing = self.probe.is_some();
        let outbox = self.outbox.clone();
        let mut ob = outbox.borrow_mut();
        let Transport::Polling { queue, pending } = &mut ob.transport else {
            return Err(RequestError::BadRequest);
        };
        if pending.as_ref().is_some_and(|p| !p.is_closed()) {
            drop(ob);
            self.close(reason::TRANSPORT_ERROR, ctx);
            return Err(RequestError::Overlap);
        }
        if !queue.is_empty() {
            let body = engine::encode_payload(queue.iter());
            queue.clear();
            if self.closing {
                ctx.stop();
            }
            return Ok(PollReply::Ready(body));
        }
        if probing {
            return Ok(PollReply::Ready(Bytes::from_static(b"6")));
        }
        let (tx, rx) = oneshot::channel();
        *pending = Some(tx);
        Ok(PollReply::Wait(rx))
    }
}

/// A polling POST, already decoded (or the error that stopped decoding).
#[derive(Message)]
#[rtype(result = "Result<(), RequestError>")]
pub struct PollData {
    pub packets: Vec<Packet>,
    pub error: bool,
}

impl Handler<PollData> for WsSession {
    type Result = Result<(), RequestError>;
    fn handle(&mut self, msg: PollData, ctx: &mut Self::Context) -> Self::Result {
        if self.closed {
            return Err(RequestError::UnknownSid);
        }
        if self.is_websocket() {
            return Err(RequestError::BadRequest);
        }
        for p in msg.packets {
            if self.closed {
                break;
            }
            self.on_packet(p, ctx);
        }
        if msg.error {
            crate::metrics::get().error("parse");
            self.close(reason::PARSE_ERROR, ctx);
        }
        Ok(())
    }
}

/// A WebSocket wants to take over this polling session.
#[derive(Message)]
#[rtype(result = "Result<u32, RequestError>")]
pub struct BeginUpgrade {
    pub writer: tokio::net::tcp::OwnedWriteHalf,
}

impl Handler<BeginUpgrade> for WsSession {
    type Result = Result<u32, RequestError>;
    fn handle(&mut self, msg: BeginUpgrade, ctx: &mut Self::Context) -> Self::Result {
        if self.closed {
            return Err(RequestError::UnknownSid);
        }
        if self.is_websocket() || self.probe.is_some() {
            return Err(RequestError::BadRequest);
        }
        self.last_gen += 1;
        let gen = self.last_gen;
        self.probe = Some(WsWriter::new(msg.writer, gen));
        let timeout = self.mount.config.engine.upgrade_timeout();
        ctx.run_later(timeout, move |act, _| {
            if act.probe.as_ref().is_some_and(|p| p.gen == gen) {
                log::debug!("upgrade timed out sid={}", act.sid);
                if let Some(mut p) = act.probe.take() {
                    p.close(None);
                    p.finish_in_background();
                }
            }
        });
        Ok(gen)
    }
}

/// Closes the session from outside (shutdown, admin).
#[derive(Message)]
#[rtype(result = "()")]
pub struct CloseSession {
    pub reason: &'static str,
}

impl Handler<CloseSession> for WsSession {
    type Result = ();
    fn handle(&mut self, msg: CloseSession, ctx: &mut Self::Context) {
        self.close(msg.reason, ctx);
    }
}
