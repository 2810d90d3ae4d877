//! `Session<H>`: one actor per Engine.IO connection, whatever its transport, carrying the
//! connection's handler `H` (the layer above) so one actor serves both.
//!
//! It owns the heartbeat (server ping `2`, client pong `3`), the transport (a polling queue
//! answered by GET requests, or a WebSocket writer), the polling→WebSocket upgrade and the
//! bound on outbound frames. Packets are decoded by `crate::protocol`; nothing here parses
//! bytes itself, and nothing here knows what the messages mean.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::atomic::AtomicUsize;
use std::sync::Arc;

use actix::{
    Actor, ActorContext, ActorFutureExt, AsyncContext, Context, Handler, Message, SpawnHandle,
    StreamHandler, WrapFuture,
};
use actix_http::ws::CloseCode;
use bytes::Bytes;
use tokio::sync::oneshot;

use super::handler::{EngineCtx, EngineHandler};
use super::mount::Mount;
use super::outbox::{Outbox, SharedOutbox, Transport};
use super::ws::{Flushed, WsIn, WsWriter};
use super::{EngineMessage, RequestInfo, Sid};
use crate::config::Config;
use crate::protocol::engine::{self, kind, Frame, Packet};
use crate::protocol::plain::Close;
use crate::protocol::DisconnectReason;

/// The first WebSocket of a session has generation 0; upgrades count up from 1.
const DIRECT_WS_GEN: u32 = 0;

/// After the server closes a WebSocket, how long it keeps reading (and dropping) what the
/// client still sends, waiting for the client's close. Closing a socket with unread input
/// makes the kernel send a reset, and the client then loses the last frames sent to it
/// (an ack, a disconnect packet, the close frame).
const LINGER: std::time::Duration = std::time::Duration::from_secs(2);

/// The engine's state of one connection (everything but the handler).
pub(crate) struct Engine {
    pub(super) sid: Sid,
    pub(super) config: Arc<Config>,
    pub(super) request: Arc<RequestInfo>,
    /// The transport, shared with the fan-outs of this worker.
    pub(super) outbox: SharedOutbox,
    /// The WebSocket being probed during an upgrade.
    probe: Option<WsWriter>,
    /// A flush of the WebSocket is scheduled for the end of the current batch of work.
    flush_scheduled: bool,
    /// A wait for the full socket to become writable is under way.
    flush_waiting: bool,
    /// Generation of the last WebSocket attached by an upgrade.
    last_gen: u32,
    pub(super) closed: bool,
    /// After an orderly server-side close on polling: the close packet waits for the next
    /// GET (as in Node's engine.io).
    close_on_next_get: bool,
    /// The mount's count of pending sessions, while this one is counted in it.
    pending: Option<Arc<AtomicUsize>>,
    /// A close asked for while the handler ran; done when it returns.
    pub(super) close_requested: Option<DisconnectReason>,
    /// Closed by the server, the WebSocket waits for the client's close (see [`LINGER`]).
    lingering: bool,
    pong_timer: Option<SpawnHandle>,
    /// A plain WebSocket (`GET /ws`, docs/events.md): frames carry the handler's messages
    /// as they are (no Engine.IO packets), the heartbeat is WebSocket pings, and every
    /// close has a code.
    pub(super) plain: bool,
    /// The close code a handler chose for the plain protocol's close.
    pub(super) plain_close: Option<Close>,
    /// The transport this connection is counted under in `rt_transport_connections`.
    counted: Option<&'static str>,
}

impl Engine {
    fn is_websocket(&self) -> bool {
        self.outbox.borrow().is_websocket()
    }

    /// The current transport's name: `websocket`, `polling`, or `ws` for the plain
    /// WebSocket protocol.
    pub(super) fn transport(&self) -> &'static str {
        match (self.plain, self.is_websocket()) {
            (true, _) => "ws",
            (false, true) => "websocket",
            (false, false) => "polling",
        }
    }

    /// Counts the connection under its current transport (`admin:stats`, `/metrics`).
    fn count_transport(&mut self) {
        let now = self.transport();
        let gauges = &crate::metrics::get().transports;
        if let Some(before) = self.counted.replace(now) {
            gauges.with_label_values(&[before]).dec();
        }
        gauges.with_label_values(&[now]).inc();
    }

    fn uncount_transport(&mut self) {
        if let Some(before) = self.counted.take() {
            crate::metrics::get()
                .transports
                .with_label_values(&[before])
                .dec();
        }
    }

    /// Leaves the mount's pending count (at most once).
    pub(super) fn established(&mut self) {
        if let Some(p) = self.pending.take() {
            super::mount::unpend(&p);
        }
    }

    pub(super) fn request_close(&mut self, reason: DisconnectReason) {
        if !self.closed && self.close_requested.is_none() {
            self.close_requested = Some(reason);
        }
    }

    /// The byte budget was hit: the connection closes rather than grows.
    pub(super) fn overflowed(&mut self) {
        if self.closed || self.close_requested.is_some() {
            return;
        }
        let max = self.config.limits.max_queued_bytes;
        let ip = self.request.client_ip.map(|ip| ip.to_string());
        log::warn!(
            sid:% = self.sid, ip = ip.as_deref().unwrap_or("-"), max_queued_bytes = max;
            "closing slow consumer"
        );
        crate::metrics::get().error("slow_consumer");
        crate::metrics::get().refused("queued_bytes");
        self.plain_close.get_or_insert(Close::SLOW_CONSUMER);
        self.request_close(DisconnectReason::TransportError);
    }

    /// Writes the WebSocket buffer once the current batch of messages is handled, so all
    /// frames queued by it leave in one write.
    pub(super) fn schedule_flush<H: EngineHandler>(&mut self, ctx: &mut Context<Session<H>>) {
        if self.flush_scheduled || !self.is_websocket() {
            return;
        }
        self.flush_scheduled = true;
        ctx.spawn(actix::fut::ready(()).map(|_, act: &mut Session<H>, ctx| {
            act.engine.flush_scheduled = false;
            act.flush_ws(ctx);
        }));
    }

    /// Releases the client's pending GET with a noop (during an upgrade).
    fn answer_poll_with_noop(&mut self) {
        if let Transport::Polling { queue, pending } = &mut self.outbox.borrow_mut().transport {
            if queue.is_empty() {
                if let Some(tx) = pending.take() {
                    let _ = tx.send(Bytes::from_static(b"6"));
                }
            }
        }
    }

    fn abandon_probe(&mut self) {
        if let Some(mut p) = self.probe.take() {
            p.close(None);
            p.finish_in_background();
        }
    }
}

/// One Engine.IO connection and its handler.
pub struct Session<H: EngineHandler> {
    pub(super) engine: Engine,
    handler: H,
    mount: Arc<Mount<H>>,
}

impl<H: EngineHandler> Session<H> {
    /// A session on polling; the open packet is queued for the first GET.
    pub(super) fn polling(sid: Sid, mount: Arc<Mount<H>>, request: RequestInfo) -> Self {
        Self::new(sid, mount, Transport::polling(), request)
    }

    /// A session born on a WebSocket (a plain one when its mount is plain).
    pub(super) fn websocket(
        sid: Sid,
        mount: Arc<Mount<H>>,
        writer: tokio::net::tcp::OwnedWriteHalf,
        request: RequestInfo,
    ) -> Self {
        let out = WsWriter::new(writer, DIRECT_WS_GEN);
        let plain = mount.plain;
        let mut session = Self::new(sid, mount, Transport::WebSocket(out), request);
        session.engine.plain = plain;
        session
    }

    fn new(sid: Sid, mount: Arc<Mount<H>>, transport: Transport, req: RequestInfo) -> Self {
        let request = Arc::new(req);
        let handler = mount.new_handler(&request);
        let config = mount.config.clone();
        let max = config.limits.max_queued_bytes;
        Session {
            engine: Engine {
                sid,
                config,
                request,
                outbox: Rc::new(RefCell::new(Outbox::new(transport, max))),
                probe: None,
                flush_scheduled: false,
                flush_waiting: false,
                last_gen: DIRECT_WS_GEN,
                closed: false,
                close_on_next_get: false,
                pending: H::WAITS_TO_ESTABLISH.then(|| mount.pending_counter()),
                close_requested: None,
                lingering: false,
                pong_timer: None,
                plain: false,
                plain_close: None,
                counted: None,
            },
            handler,
            mount,
        }
    }

    /// Runs `f` on the handler with its connection context, then carries out a close the
    /// handler asked for. Every call into the handler goes through here.
    pub fn with_handler<R>(
        &mut self,
        ctx: &mut Context<Self>,
        f: impl FnOnce(&mut H, &mut EngineCtx<'_, H>) -> R,
    ) -> R {
        let r = f(
            &mut self.handler,
            &mut EngineCtx {
                engine: &mut self.engine,
                ctx,
            },
        );
        self.settle(ctx);
        r
    }

    /// Carries out a close asked for meanwhile.
    fn settle(&mut self, ctx: &mut Context<Self>) {
        if let Some(reason) = self.engine.close_requested.take() {
            self.close(reason, ctx);
        }
    }

    /// Queues an engine frame (ping, noop) and follows it up.
    fn send_frame(&mut self, frame: Frame, ctx: &mut Context<Self>) {
        let queued = self.engine.outbox.borrow_mut().push(&frame);
        EngineCtx {
            engine: &mut self.engine,
            ctx,
        }
        .queued(queued);
        self.settle(ctx);
    }

    fn flush_ws(&mut self, ctx: &mut Context<Self>) {
        let flushed = self.engine.outbox.borrow_mut().flush();
        self.after_flush(flushed, ctx);
    }

    /// A full socket parks the writes until it is writable again; a broken one ends it.
    fn after_flush(&mut self, flushed: Flushed, ctx: &mut Context<Self>) {
        match flushed {
            Flushed::Done => {}
            Flushed::Blocked => self.wait_writable(ctx),
            Flushed::Broken => self.close(DisconnectReason::TransportClose, ctx),
        }
    }

    fn wait_writable(&mut self, ctx: &mut Context<Self>) {
        let sock = {
            let mut ob = self.engine.outbox.borrow_mut();
            let Transport::WebSocket(w) = &ob.transport else {
                return;
            };
            if ob.blocked && self.engine.flush_waiting {
                return;
            }
            let sock = w.socket();
            ob.blocked = true;
            sock
        };
        self.engine.flush_waiting = true;
        ctx.spawn(
            async move { sock.writable().await }
                .into_actor(self)
                .map(|res, act, ctx| {
                    act.engine.flush_waiting = false;
                    act.engine.outbox.borrow_mut().blocked = false;
                    match res {
                        Ok(()) => act.flush_ws(ctx),
                        Err(_) => act.close(DisconnectReason::TransportClose, ctx),
                    }
                }),
        );
    }

    /// The plain protocol's heartbeat: a WebSocket ping (inside the byte budget).
    fn send_ws_ping(&mut self, ctx: &mut Context<Self>) {
        let queued = {
            let mut ob = self.engine.outbox.borrow_mut();
            let closed = ob.closed;
            match &mut ob.transport {
                Transport::WebSocket(w) if !closed => {
                    w.ping();
                    super::outbox::Queued::Yes
                }
                _ => super::outbox::Queued::No,
            }
        };
        EngineCtx {
            engine: &mut self.engine,
            ctx,
        }
        .queued(queued);
    }

    /// A pong (an Engine.IO `3`, or a WebSocket pong on the plain protocol) answers the
    /// ping: the next one is due after `pingInterval`.
    fn on_pong(&mut self, ctx: &mut Context<Self>) {
        if let Some(h) = self.engine.pong_timer.take() {
            ctx.cancel_future(h);
            self.schedule_ping(ctx);
        }
    }

    fn schedule_ping(&mut self, ctx: &mut Context<Self>) {
        let interval = self.engine.config.engine.ping_interval();
        ctx.run_later(interval, |act, ctx| {
            if act.engine.closed {
                return;
            }
            if act.engine.plain {
                act.send_ws_ping(ctx);
            } else {
                act.send_frame(Frame::bare(kind::PING), ctx);
            }
            let timeout = act.engine.config.engine.ping_timeout();
            act.engine.pong_timer = Some(ctx.run_later(timeout, |act, ctx| {
                act.close(DisconnectReason::PingTimeout, ctx);
            }));
        });
    }

    /// Closes the session once: the handler hears the reason first (what it sends then
    /// still goes out), then the transport gets its close.
    ///
    /// As in Node's engine.io: a close the server decides on (shutdown, a forced close) is
    /// orderly: on polling without a waiting GET, the close packet waits for the next GET.
    /// Any other close (the client's, errors, ping timeout) takes the session out of its
    /// mount at once, so every later request for it is answered 400 `Session ID unknown`.
    pub(super) fn close(&mut self, why: DisconnectReason, ctx: &mut Context<Self>) {
        if self.engine.closed {
            return;
        }
        log::debug!("session closing sid={} reason={why}", self.engine.sid);
        let orderly = matches!(
            why,
            DisconnectReason::ForcedClose
                | DisconnectReason::ForcedServerClose
                | DisconnectReason::ServerShuttingDown
        );
        if !orderly {
            self.mount.remove(&self.engine.sid);
        }
        self.engine.established();
        self.handler.on_close(
            why,
            &mut EngineCtx {
                engine: &mut self.engine,
                ctx,
            },
        );
        let engine = &mut self.engine;
        engine.closed = true;
        engine.close_requested = None;
        engine.abandon_probe();
        let client_gone = why == DisconnectReason::TransportClose;
        let mut ob = engine.outbox.borrow_mut();
        ob.closed = true;
        let blocked = ob.blocked;
        if let Transport::WebSocket(out) = &mut ob.transport {
            if engine.plain {
                // every plain close has a code; the client's own close is answered
                let close = engine.plain_close.unwrap_or_else(|| Close::for_reason(why));
                out.close_with(close.code, close.name);
                if client_gone {
                    return ctx.stop();
                }
            } else if client_gone {
                return ctx.stop();
            } else {
                out.close(None);
            }
            if !blocked {
                out.flush();
            }
            // Read on until the client closes too, or a while.
            engine.lingering = true;
            ctx.run_later(LINGER, |_, ctx| ctx.stop());
            return;
        }
        // Polling. A waiting GET hears of the close: a noop when the client closed (it
        // knows), else what is queued and the close packet.
        if let Some(tx) = ob.take_pending() {
            let body = if client_gone {
                Bytes::from_static(b"6")
            } else {
                ob.push_close();
                ob.take_payload()
                    .unwrap_or_else(|| Bytes::from_static(b"1"))
            };
            let _ = tx.send(body);
            ob.discard();
            ctx.stop();
        } else if orderly {
            // The next GET gets the close packet; give the client a while.
            ob.push_close();
            engine.close_on_next_get = true;
            let wait = engine.config.engine.ping_timeout();
            ctx.run_later(wait, |_, ctx| ctx.stop());
        } else {
            // The client learns it from the 400 of its next request.
            ob.discard();
            ctx.stop();
        }
    }

    /// An Engine.IO packet from the client on the current transport.
    fn on_packet(&mut self, packet: Packet, ctx: &mut Context<Self>) {
        match packet {
            Packet::Pong(_) => self.on_pong(ctx),
            Packet::Message(text) => self.on_message(EngineMessage::Text(text), ctx),
            Packet::Binary(b) => self.on_message(EngineMessage::Binary(b), ctx),
            Packet::Close => self.close(DisconnectReason::TransportClose, ctx),
            // A v4 client never pings: Node treats it as a transport error.
            Packet::Ping(_) => self.close(DisconnectReason::TransportError, ctx),
            Packet::Open(_) | Packet::Upgrade | Packet::Noop => {}
        }
    }

    fn on_message(&mut self, msg: EngineMessage, ctx: &mut Context<Self>) {
        if self.engine.closed {
            return;
        }
        self.with_handler(ctx, |h, ectx| h.on_message(msg, ectx));
    }

    /// A WebSocket message from the socket of generation `gen`.
    fn on_ws(&mut self, gen: u32, item: WsIn, ctx: &mut Context<Self>) {
        let current = matches!(&self.engine.outbox.borrow().transport,
            Transport::WebSocket(o) if o.gen == gen);
        let probing = self.engine.probe.as_ref().is_some_and(|p| p.gen == gen);
        if self.engine.closed {
            if current && self.engine.lingering && matches!(item, WsIn::Close | WsIn::Error { .. })
            {
                ctx.stop();
            }
            return;
        }
        if !(current || probing) {
            return;
        }
        if self.engine.plain {
            return self.on_plain(item, ctx);
        }
        if matches!(item, WsIn::Pong) {
            return;
        }
        if probing {
            return self.on_probe(item, ctx);
        }
        match item {
            WsIn::Text(b) => match engine::decode_text_bytes(&b) {
                Ok(p) => self.on_packet(p, ctx),
                Err(e) => {
                    log::debug!("engine parse error sid={} err={e}", self.engine.sid);
                    crate::metrics::get().error("parse");
                    self.close(DisconnectReason::ParseError, ctx);
                }
            },
            WsIn::Binary(b) => self.on_packet(Packet::Binary(b), ctx),
            WsIn::Ping(b) => self.answer_ping(&b, ctx),
            WsIn::Pong => {}
            WsIn::Close => self.close(DisconnectReason::TransportClose, ctx),
            WsIn::Error { too_big } => {
                if too_big {
                    if let Transport::WebSocket(out) =
                        &mut self.engine.outbox.borrow_mut().transport
                    {
                        out.close(Some(CloseCode::Size));
                    }
                }
                log::debug!("websocket error sid={} too_big={too_big}", self.engine.sid);
                self.close(DisconnectReason::TransportError, ctx);
            }
        }
    }

    fn answer_ping(&mut self, payload: &[u8], ctx: &mut Context<Self>) {
        let queued = self.engine.outbox.borrow_mut().pong(payload);
        EngineCtx {
            engine: &mut self.engine,
            ctx,
        }
        .queued(queued);
        self.settle(ctx);
    }

    /// A frame of a plain WebSocket: text goes to the handler as it is; binary frames are
    /// not part of the protocol (1003); framing errors close 1009 (too big) or 1002.
    fn on_plain(&mut self, item: WsIn, ctx: &mut Context<Self>) {
        match item {
            WsIn::Text(b) => match String::from_utf8(b.to_vec()) {
                Ok(text) => self.on_message(EngineMessage::Text(text), ctx),
                Err(_) => self.close_plain(Close::INVALID_PAYLOAD, ctx),
            },
            WsIn::Binary(_) => self.close_plain(Close::UNSUPPORTED_DATA, ctx),
            WsIn::Ping(b) => self.answer_ping(&b, ctx),
            WsIn::Pong => self.on_pong(ctx),
            WsIn::Close => self.close(DisconnectReason::TransportClose, ctx),
            WsIn::Error { too_big } => {
                log::debug!("websocket error sid={} too_big={too_big}", self.engine.sid);
                let close = if too_big {
                    Close::MESSAGE_TOO_BIG
                } else {
                    Close::PROTOCOL_ERROR
                };
                self.close_plain(close, ctx);
            }
        }
    }

    /// Ends a plain WebSocket with `close` (unless a close is already decided).
    fn close_plain(&mut self, close: Close, ctx: &mut Context<Self>) {
        self.engine.plain_close.get_or_insert(close);
        self.close(DisconnectReason::TransportError, ctx);
    }

    /// Messages on the probe socket of an upgrade: `2probe` → `3probe`, then `5` switches.
    fn on_probe(&mut self, item: WsIn, ctx: &mut Context<Self>) {
        let packet = match item {
            WsIn::Text(b) => engine::decode_text_bytes(&b).ok(),
            _ => None,
        };
        match packet {
            Some(Packet::Ping(p)) if p == "probe" => {
                if let Some(probe) = &mut self.engine.probe {
                    probe.frame(&Frame::text(kind::PONG, b"probe"));
                    if probe.flush() == Flushed::Blocked {
                        // a fresh socket that cannot take 8 bytes: give up the probe
                        if let Some(p) = self.engine.probe.take() {
                            p.finish_in_background();
                        }
                    }
                }
                // Release the client's pending GET so it can send the upgrade.
                self.engine.answer_poll_with_noop();
            }
            Some(Packet::Upgrade) => {
                let Some(probe) = self.engine.probe.take() else {
                    return;
                };
                let (queue, pending) = self.engine.outbox.borrow_mut().switch_to_websocket(probe);
                if let Some(tx) = pending {
                    let _ = tx.send(Bytes::from_static(b"6"));
                }
                self.engine.count_transport();
                for f in queue {
                    self.send_frame(f, ctx);
                }
                log::debug!("session upgraded sid={}", self.engine.sid);
            }
            Some(Packet::Noop) | Some(Packet::Pong(_)) => {}
            // Anything else on the probe: abandon the upgrade, keep polling.
            _ => self.engine.abandon_probe(),
        }
    }
}

/// Session actors running in the process (`rt_state_entries{map="engine_actors"}`): once a
/// session stops, nothing of it stays.
fn live_sessions() -> &'static crate::metrics::SizeCell {
    static CELL: std::sync::OnceLock<crate::metrics::SizeCell> = std::sync::OnceLock::new();
    CELL.get_or_init(|| crate::metrics::SizeCell::new("engine_actors"))
}

impl<H: EngineHandler> Actor for Session<H> {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(1 << 16);
        live_sessions().add();
        self.engine.count_transport();
        let cfg = &self.engine.config.engine;
        let websocket = self.engine.is_websocket();
        let upgrades: &[&str] = if websocket { &[] } else { &["websocket"] };
        if !self.engine.plain {
            let open = engine::open_json(
                &self.engine.sid,
                upgrades,
                cfg.ping_interval_ms,
                cfg.ping_timeout_ms,
                cfg.max_payload,
            );
            self.send_frame(Frame::text(kind::OPEN, open.as_bytes()), ctx);
        }
        self.schedule_ping(ctx);
        self.with_handler(ctx, |h, ectx| h.on_open(ectx));
        log::debug!(
            "session opened sid={} transport={}",
            self.engine.sid,
            self.engine.transport()
        );
    }

    fn stopped(&mut self, ctx: &mut Self::Context) {
        live_sessions().sub();
        self.engine.uncount_transport();
        if !self.engine.closed {
            self.close(DisconnectReason::TransportClose, ctx);
        }
        // Whatever is still queued (the close frame, last packets) is written in the
        // background; dropping the writer then closes the socket.
        let transport = std::mem::replace(
            &mut self.engine.outbox.borrow_mut().transport,
            Transport::polling(),
        );
        if let Transport::WebSocket(out) = transport {
            out.finish_in_background();
        }
        self.mount.remove(&self.engine.sid);
    }
}

/// Inbound frames of a session born on a WebSocket (added with `add_stream`).
impl<H: EngineHandler> StreamHandler<WsIn> for Session<H> {
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
pub(super) struct ForwardWs {
    pub(super) gen: u32,
    pub(super) item: WsIn,
}

impl<H: EngineHandler> Handler<ForwardWs> for Session<H> {
    type Result = ();
    fn handle(&mut self, msg: ForwardWs, ctx: &mut Self::Context) {
        self.on_ws(msg.gen, msg.item, ctx);
    }
}

/// A fan-out on this session's thread found its socket full, or a frame over the bound.
#[derive(Message)]
#[rtype(result = "()")]
pub struct OutboxTrouble {
    /// What the fan-out's flush achieved.
    pub flushed: Flushed,
}

impl<H: EngineHandler> Handler<OutboxTrouble> for Session<H> {
    type Result = ();
    fn handle(&mut self, msg: OutboxTrouble, ctx: &mut Self::Context) {
        if self.engine.outbox.borrow().overflowed {
            self.engine.overflowed();
            return self.settle(ctx);
        }
        self.after_flush(msg.flushed, ctx);
    }
}

/// Why a polling request or upgrade was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum RequestError {
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
pub(super) struct Poll;

pub(super) enum PollReply {
    Ready(Bytes),
    Wait(oneshot::Receiver<Bytes>),
}

impl<H: EngineHandler> Handler<Poll> for Session<H> {
    type Result = Result<PollReply, RequestError>;
    fn handle(&mut self, _: Poll, ctx: &mut Self::Context) -> Self::Result {
        if self.engine.closed && !self.engine.close_on_next_get {
            return Err(RequestError::UnknownSid);
        }
        let probing = self.engine.probe.is_some();
        let outbox = self.engine.outbox.clone();
        let mut ob = outbox.borrow_mut();
        let Transport::Polling { pending, .. } = &ob.transport else {
            return Err(RequestError::BadRequest);
        };
        if pending.as_ref().is_some_and(|p| !p.is_closed()) {
            drop(ob);
            self.close(DisconnectReason::TransportError, ctx);
            return Err(RequestError::Overlap);
        }
        if let Some(body) = ob.take_payload() {
            if self.engine.close_on_next_get {
                ctx.stop();
            }
            return Ok(PollReply::Ready(body));
        }
        if probing {
            return Ok(PollReply::Ready(Bytes::from_static(b"6")));
        }
        let Transport::Polling { pending, .. } = &mut ob.transport else {
            return Err(RequestError::BadRequest);
        };
        let (tx, rx) = oneshot::channel();
        *pending = Some(tx);
        Ok(PollReply::Wait(rx))
    }
}

/// The client of the waiting GET closed its connection (see `peer`): the session ends as
/// Node's does, with `transport error`.
#[derive(Message)]
#[rtype(result = "()")]
pub(super) struct PollAbandoned;

impl<H: EngineHandler> Handler<PollAbandoned> for Session<H> {
    type Result = ();
    fn handle(&mut self, _: PollAbandoned, ctx: &mut Self::Context) {
        let polling = matches!(
            &self.engine.outbox.borrow().transport,
            Transport::Polling { .. }
        );
        // Upgraded meanwhile: the polling transport is over anyway.
        if polling {
            log::debug!("poll connection closed prematurely sid={}", self.engine.sid);
            self.close(DisconnectReason::TransportError, ctx);
        }
    }
}

/// A polling POST, already decoded (or the error that stopped decoding).
#[derive(Message)]
#[rtype(result = "Result<(), RequestError>")]
pub(super) struct PollData {
    pub(super) packets: Vec<Packet>,
    pub(super) error: bool,
}

impl<H: EngineHandler> Handler<PollData> for Session<H> {
    type Result = Result<(), RequestError>;
    fn handle(&mut self, msg: PollData, ctx: &mut Self::Context) -> Self::Result {
        if self.engine.closed {
            return Err(RequestError::UnknownSid);
        }
        if self.engine.is_websocket() {
            return Err(RequestError::BadRequest);
        }
        for p in msg.packets {
            if self.engine.closed {
                break;
            }
            self.on_packet(p, ctx);
        }
        if msg.error {
            crate::metrics::get().error("parse");
            self.close(DisconnectReason::ParseError, ctx);
        }
        Ok(())
    }
}

/// A WebSocket wants to take over this polling session.
#[derive(Message)]
#[rtype(result = "Result<u32, RequestError>")]
pub(super) struct BeginUpgrade {
    pub(super) writer: tokio::net::tcp::OwnedWriteHalf,
}

impl<H: EngineHandler> Handler<BeginUpgrade> for Session<H> {
    type Result = Result<u32, RequestError>;
    fn handle(&mut self, msg: BeginUpgrade, ctx: &mut Self::Context) -> Self::Result {
        if self.engine.closed {
            return Err(RequestError::UnknownSid);
        }
        if self.engine.is_websocket() || self.engine.probe.is_some() {
            return Err(RequestError::BadRequest);
        }
        self.engine.last_gen += 1;
        let gen = self.engine.last_gen;
        self.engine.probe = Some(WsWriter::new(msg.writer, gen));
        let timeout = self.engine.config.engine.upgrade_timeout();
        ctx.run_later(timeout, move |act, _| {
            if act.engine.probe.as_ref().is_some_and(|p| p.gen == gen) {
                log::debug!("upgrade timed out sid={}", act.engine.sid);
                act.engine.abandon_probe();
            }
        });
        Ok(gen)
    }
}

/// Closes the session from outside (shutdown, admin).
#[derive(Message)]
#[rtype(result = "()")]
pub struct CloseSession {
    /// What the handler and the client are told.
    pub reason: DisconnectReason,
}

impl<H: EngineHandler> Handler<CloseSession> for Session<H> {
    type Result = ();
    fn handle(&mut self, msg: CloseSession, ctx: &mut Self::Context) {
        self.close(msg.reason, ctx);
    }
}
