//! `Outbox`: a session's transport (a polling queue answered by GET requests, or a
//! WebSocket writer) and the bound on what waits in it.
//!
//! It is shared (same thread only, `Rc<RefCell<_>>`) between the session and whatever else
//! on that worker writes to the connection, so a fan-out on the session's thread can queue
//! a shared frame straight into it and write once at the end of its batch, with no actor
//! message per recipient. Anything that needs the session's actor context (closing a slow
//! consumer, waiting for a full socket) is asked of the session with [`OutboxTrouble`].
//!
//! [`OutboxTrouble`]: super::OutboxTrouble

use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

use bytes::Bytes;
use tokio::sync::oneshot;

use super::ws::{Flushed, WsWriter};
use crate::protocol::engine::{self, Frame};

pub(crate) enum Transport {
    Polling {
        queue: VecDeque<Frame>,
        /// The GET waiting for data, if any.
        pending: Option<oneshot::Sender<Bytes>>,
    },
    WebSocket(WsWriter),
}

impl Transport {
    pub(crate) fn polling() -> Self {
        Transport::Polling {
            queue: VecDeque::new(),
            pending: None,
        }
    }
}

/// Frames' room a drained polling queue keeps (more is given back).
const KEPT_QUEUE_SLOTS: usize = 16;

/// The bytes a frame adds to a WebSocket buffer at most (payload and a 14-byte header).
fn ws_size(frame: &Frame) -> usize {
    frame.len() + 14
}

/// A connection's transport and its outbound bound.
pub struct Outbox {
    pub(crate) transport: Transport,
    /// The byte budget: what may wait to be written (frames, pongs, a polling payload).
    max_bytes: usize,
    /// Bytes in the polling queue (the WebSocket writer counts its own buffer).
    poll_bytes: usize,
    /// Frames no longer go out (closed, or over the bound).
    pub(crate) closed: bool,
    /// A frame did not fit: the session must close the connection as a slow consumer.
    pub(crate) overflowed: bool,
    /// The socket is full and a wait for writability is under way (owned by the session).
    pub(crate) blocked: bool,
}

/// The result of queueing a frame.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Queued {
    /// Queued (a WebSocket needs a flush).
    Yes,
    /// Not queued: the outbox is closed.
    No,
    /// Over the bound: the connection must be closed.
    Overflow,
}

/// An outbox shared by the session and the fan-outs of its thread.
pub type SharedOutbox = Rc<RefCell<Outbox>>;

impl Outbox {
    pub(crate) fn new(transport: Transport, max_bytes: usize) -> Self {
        Outbox {
            transport,
            max_bytes,
            poll_bytes: 0,
            closed: false,
            overflowed: false,
            blocked: false,
        }
    }

    /// True on a WebSocket (frames wait for a flush), false on polling.
    pub fn is_websocket(&self) -> bool {
        matches!(self.transport, Transport::WebSocket(_))
    }

    /// True once nothing more goes out (closed or over the bound).
    pub fn is_closed(&self) -> bool {
        self.closed
    }

    /// Bytes waiting to be written.
    pub fn queued_bytes(&self) -> usize {
        match &self.transport {
            Transport::WebSocket(w) => w.queued_bytes(),
            Transport::Polling { .. } => self.poll_bytes,
        }
    }

    /// Whether `more` bytes fit the budget. Into an empty queue one frame always fits (a
    /// single large answer is bounded by the application, not by the budget).
    fn fits(&self, more: usize) -> bool {
        let queued = self.queued_bytes();
        queued == 0 || queued + more <= self.max_bytes
    }

    fn overflow(&mut self) -> Queued {
        self.overflowed = true;
        self.closed = true;
        Queued::Overflow
    }

    /// Queues a frame on the current transport (a waiting GET is answered at once). Over
    /// the byte budget the outbox closes: the connection is a slow consumer.
    pub fn push(&mut self, frame: &Frame) -> Queued {
        if self.closed {
            return Queued::No;
        }
        let more = match &self.transport {
            Transport::WebSocket(_) => ws_size(frame),
            Transport::Polling { .. } => frame.len() + 1,
        };
        if !self.fits(more) {
            return self.overflow();
        }
        match &mut self.transport {
            Transport::WebSocket(w) => w.frame(frame),
            Transport::Polling { queue, .. } => {
                queue.push_back(frame.clone());
                self.poll_bytes += more;
                self.flush_poll();
            }
        }
        Queued::Yes
    }

    /// Queues the pong of a client's WebSocket ping, inside the same budget: a client that
    /// pings without reading is a slow consumer like any other.
    pub(crate) fn pong(&mut self, payload: &[u8]) -> Queued {
        if self.closed {
            return Queued::No;
        }
        if !self.fits(payload.len() + 14) {
            return self.overflow();
        }
        match &mut self.transport {
            Transport::WebSocket(w) => {
                w.pong(payload);
                Queued::Yes
            }
            Transport::Polling { .. } => Queued::No,
        }
    }

    /// The GET waiting for data, taken.
    pub(crate) fn take_pending(&mut self) -> Option<oneshot::Sender<Bytes>> {
        match &mut self.transport {
            Transport::Polling { pending, .. } => pending.take(),
            Transport::WebSocket(_) => None,
        }
    }

    /// Queues the close packet on polling, whatever the budget (it ends the queue).
    pub(crate) fn push_close(&mut self) {
        if let Transport::Polling { queue, .. } = &mut self.transport {
            queue.push_back(Frame::bare(engine::kind::CLOSE));
            self.poll_bytes += 2;
        }
    }

    /// Drops what the polling queue holds.
    pub(crate) fn discard(&mut self) {
        if let Transport::Polling { queue, .. } = &mut self.transport {
            queue.clear();
            self.poll_bytes = 0;
        }
    }

    /// Switches to the upgraded WebSocket; returns what polling still held (frames and a
    /// waiting GET).
    pub(crate) fn switch_to_websocket(
        &mut self,
        w: WsWriter,
    ) -> (VecDeque<Frame>, Option<oneshot::Sender<Bytes>>) {
        self.poll_bytes = 0;
        match std::mem::replace(&mut self.transport, Transport::WebSocket(w)) {
            Transport::Polling { queue, pending } => (queue, pending),
            Transport::WebSocket(_) => (VecDeque::new(), None),
        }
    }

    /// Takes everything the polling queue holds as one payload.
    pub(crate) fn take_payload(&mut self) -> Option<Bytes> {
        let Transport::Polling { queue, .. } = &mut self.transport else {
            return None;
        };
        if queue.is_empty() {
            return None;
        }
        let body = engine::encode_payload(queue.iter());
        queue.clear();
        // a queue that grew while its client was away (a burst, or a client that vanished
        // between two polls and is kept until the ping timeout) gives the room back
        if queue.capacity() > KEPT_QUEUE_SLOTS {
            queue.shrink_to(KEPT_QUEUE_SLOTS);
        }
        self.poll_bytes = 0;
        Some(body)
    }

    /// Queues several frames (a packet and its attachments); stops at an overflow.
    pub fn push_all<'a>(&mut self, frames: impl IntoIterator<Item = &'a Frame>) -> Queued {
        let mut out = Queued::No;
        for f in frames {
            out = self.push(f);
            if out != Queued::Yes {
                break;
            }
        }
        out
    }

    /// Writes what the WebSocket has queued, unless a writability wait is under way.
    pub fn flush(&mut self) -> Flushed {
        match &mut self.transport {
            Transport::WebSocket(_) if self.blocked => Flushed::Blocked,
            Transport::WebSocket(w) => w.flush(),
            Transport::Polling { .. } => Flushed::Done,
        }
    }

    /// Writes what is queued when nobody else will: `None` when a flush is not this
    /// caller's to do (blocked or closed), else what the flush achieved. A result other
    /// than `Done` must be reported to the session ([`OutboxTrouble`](super::OutboxTrouble)).
    pub fn flush_if_idle(&mut self) -> Option<Flushed> {
        if self.blocked || self.closed {
            return None;
        }
        let flushed = self.flush();
        if flushed == Flushed::Blocked {
            self.blocked = true;
        }
        Some(flushed)
    }

    /// Answers a waiting GET with everything queued.
    pub(crate) fn flush_poll(&mut self) {
        let Transport::Polling { queue, pending } = &mut self.transport else {
            return;
        };
        // A GET whose client went away takes nothing: the frames wait for the next.
        if queue.is_empty() || pending.as_ref().is_none_or(|tx| tx.is_closed()) {
            return;
        }
        let tx = pending.take();
        if let (Some(tx), Some(body)) = (tx, self.take_payload()) {
            let _ = tx.send(body);
        }
    }
}
