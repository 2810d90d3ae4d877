//! The one seam between the engine and what runs above it: [`EngineHandler`], the state of
//! one connection's application (the Socket.IO client, or a bare Engine.IO app), and
//! [`EngineCtx`], what a handler may do with its connection.
//!
//! The handler lives inside the connection's [`Session`] actor, so one actor per
//! connection carries both layers and a handler call costs no message.

use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

use actix::{ActorFutureExt, Addr, AsyncContext, Context, SpawnHandle};

use super::outbox::{Queued, SharedOutbox};
use super::session::{Engine, Session};
use super::{EngineMessage, RequestInfo, Sid};
use crate::config::Config;
use crate::protocol::engine::{kind, Frame};
use crate::protocol::plain::Close;
use crate::protocol::DisconnectReason;

/// The application of one Engine.IO connection. Calls run on the connection's actor
/// thread, in order, and must not block.
pub trait EngineHandler: Unpin + Sized + 'static {
    /// True when a connection only counts as established once the handler says so
    /// ([`EngineCtx::established`], e.g. Socket.IO after its first namespace); until then
    /// it counts against `limits.max_pending_sessions`. False: established at open.
    const WAITS_TO_ESTABLISH: bool = false;

    /// The connection is open (its open packet is queued).
    fn on_open(&mut self, _ctx: &mut EngineCtx<'_, Self>) {}

    /// A whole message from the client (text, or one binary message).
    fn on_message(&mut self, msg: EngineMessage, ctx: &mut EngineCtx<'_, Self>);

    /// The connection is closing for `reason`. Called once; messages sent now still go out
    /// before the transport's close.
    fn on_close(&mut self, _reason: DisconnectReason, _ctx: &mut EngineCtx<'_, Self>) {}
}

/// What a handler can do with its connection while it runs.
pub struct EngineCtx<'a, H: EngineHandler> {
    pub(super) engine: &'a mut Engine,
    pub(super) ctx: &'a mut Context<Session<H>>,
}

impl<'a, H: EngineHandler> EngineCtx<'a, H> {
    /// A shorter-lived copy (to hand to a callee that needs an owned context).
    pub fn reborrow(&mut self) -> EngineCtx<'_, H> {
        EngineCtx {
            engine: &mut *self.engine,
            ctx: &mut *self.ctx,
        }
    }

    /// The Engine.IO session id.
    pub fn sid(&self) -> &Sid {
        &self.engine.sid
    }

    /// The HTTP request that opened the connection.
    pub fn request(&self) -> &Arc<RequestInfo> {
        &self.engine.request
    }

    /// The connection's current transport: `websocket`, `polling` or `ws` (plain).
    pub fn transport(&self) -> &'static str {
        self.engine.transport()
    }

    /// The server's configuration.
    pub fn config(&self) -> &Config {
        &self.engine.config
    }

    /// True once the connection is closed (or closing): sends are dropped.
    pub fn is_closed(&self) -> bool {
        self.engine.closed || self.engine.close_requested.is_some()
    }

    /// True on a plain WebSocket (`GET /ws`): messages go out as they are, one text frame
    /// each, and a close carries a code ([`EngineCtx::close_with`]).
    pub fn is_plain(&self) -> bool {
        self.engine.plain
    }

    /// Sends a message (text as an Engine.IO `4` packet, or as it is on a plain WebSocket;
    /// binary as a binary message).
    pub fn send(&mut self, msg: EngineMessage) {
        let frame = match msg {
            EngineMessage::Text(t) if self.engine.plain => Frame::text_raw(t.as_bytes()),
            EngineMessage::Text(t) => Frame::text(kind::MESSAGE, t.as_bytes()),
            EngineMessage::Binary(b) => Frame::binary(&b),
        };
        self.send_frame(&frame);
    }

    /// Sends an already encoded frame (a shared broadcast frame is not copied).
    pub fn send_frame(&mut self, frame: &Frame) {
        let queued = self.engine.outbox.borrow_mut().push(frame);
        self.queued(queued);
    }

    /// Sends a packet and its attachments.
    pub fn send_frames<'f>(&mut self, frames: impl IntoIterator<Item = &'f Frame>) {
        let queued = self.engine.outbox.borrow_mut().push_all(frames);
        self.queued(queued);
    }

    /// Follows up a queueing: a WebSocket is flushed at the end of this batch of work; an
    /// overflow closes the connection once the handler returns.
    pub fn queued(&mut self, queued: Queued) {
        match queued {
            Queued::Yes => self.engine.schedule_flush(self.ctx),
            Queued::Overflow => self.engine.overflowed(),
            Queued::No => {}
        }
    }

    /// The connection is established (no longer counts as pending); once is enough.
    pub fn established(&mut self) {
        self.engine.established();
    }

    /// Closes the connection for `reason` once the current handler call returns
    /// (`on_close` then runs as for any close).
    pub fn close(&mut self, reason: DisconnectReason) {
        self.engine.request_close(reason);
    }

    /// Closes a plain WebSocket with `close` (its code and name) once the current handler
    /// call returns; `reason` is what the handler's `on_close` hears. On an Engine.IO
    /// connection the same as [`EngineCtx::close`].
    pub fn close_with(&mut self, close: Close, reason: DisconnectReason) {
        if self.engine.plain && !self.is_closed() {
            self.engine.plain_close.get_or_insert(close);
        }
        self.engine.request_close(reason);
    }

    /// The transport, shared with the fan-outs of this thread.
    pub fn outbox(&self) -> &SharedOutbox {
        &self.engine.outbox
    }

    /// The connection's actor (messages to it reach this handler through
    /// [`Session::with_handler`]).
    pub fn address(&self) -> Addr<Session<H>> {
        self.ctx.address()
    }

    /// Runs `f` on the handler after `after` (not at all once the connection is gone).
    pub fn run_later<F>(&mut self, after: Duration, f: F) -> SpawnHandle
    where
        F: FnOnce(&mut H, &mut EngineCtx<'_, H>) + 'static,
    {
        self.ctx
            .run_later(after, move |act, ctx| act.with_handler(ctx, f))
    }

    /// Cancels a timer or a spawned future.
    pub fn cancel(&mut self, handle: SpawnHandle) {
        self.ctx.cancel_future(handle);
    }

    /// Runs `fut` beside the connection and hands its output to `then` on the handler.
    pub fn spawn<F, T>(&mut self, fut: F, then: T) -> SpawnHandle
    where
        F: Future + 'static,
        T: FnOnce(&mut H, F::Output, &mut EngineCtx<'_, H>) + 'static,
    {
        let fut = actix::fut::wrap_future::<_, Session<H>>(fut);
        self.ctx
            .spawn(fut.map(move |out, act: &mut Session<H>, ctx| {
                act.with_handler(ctx, move |h, ectx| then(h, out, ectx))
            }))
    }
}
