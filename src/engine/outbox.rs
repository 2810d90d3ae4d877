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

/// A connection's transport and its outbound bound.
pub struct Outbox {
    pub(crate) transport: Transport,
    max_buffered: usize,
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
    pub(crate) fn new(transport: Transport, max_buffered: usize) -> Self {
        Outbox {
            transport,
            max_buffered,
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

    /// Queues a frame on the current transport (a waiting GET is answered at once).
    pub fn push(&mut self, frame: &Frame) -> Queued {
        if self.closed {
            return Queued::No;
        }
        let full = match &mut self.transport {
            Transport::WebSocket(w) => {
                if w.queued() >= self.max_buffered {
                    true
                } else {
                    w.frame(frame);
                    false
                }
            }
            Transport::Polling { queue, .. } => {
                if queue.len() >= self.max_buffered {
                    true
                } else {
                    queue.push_back(frame.clone());
                    self.flush_poll();
                    false
                }
            }
        };
        if full {
            self.overflowed = true;
            self.closed = true;
            return Queued::Overflow;
        }
        Queued::Yes
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
        if let Transport::Polling { queue, pending } = &mut self.transport {
            if queue.is_empty() {
                return;
            }
            if let Some(tx) = pending.take() {
                // A GET whose client went away takes nothing: the frames wait for the next.
                if tx.is_closed() {
                    return;
                }
                let body = engine::encode_payload(queue.iter());
                queue.clear();
                let _ = tx.send(body);
            }
        }
    }
}
