//! `Outbox`: a session's transport and the filter its broadcasts pass, shared (same thread
//! only) between the `WsSession` and the `RoomActor`s of its worker.
//!
//! A room actor lives on the same worker thread as its members, so it can queue a broadcast
//! straight into each member's outbox and write every touched socket once at the end of its
//! batch: no actor message, no task wake-up and no allocation per recipient. The session
//! uses the same outbox for what it sends itself. Anything that needs the session's actor
//! context (closing a slow consumer, waiting for a full socket) is asked of it by message.

use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;
use std::sync::Arc;

use bytes::Bytes;
use tokio::sync::oneshot;

use crate::actors::messages::{Outgoing, Room};
use crate::protocol::engine::{self, Frame};
use crate::transport::ws::{Flushed, WsWriter};

pub(crate) enum Transport {
    Polling {
        queue: VecDeque<Frame>,
        pending: Option<oneshot::Sender<Bytes>>,
    },
    WebSocket(WsWriter),
}

/// What a broadcast needs to know of one socket of the session.
struct SocketFilter {
    key: u64,
    id: Arc<str>,
    rooms: Vec<Room>,
}

/// How many multi-room broadcast ids an outbox remembers to drop duplicates.
const RECENT_MULTI: usize = 64;

pub(crate) struct Outbox {
    pub(crate) transport: Transport,
    max_buffered: usize,
    sockets: Vec<SocketFilter>,
    recent: VecDeque<u64>,
    /// Frames no longer go out (closed, or over the bound).
    pub(crate) closed: bool,
    /// A frame did not fit: the session must close the connection as a slow consumer.
    pub(crate) overflowed: bool,
    /// The socket is full and a wait for writability is under way (owned by the session).
    pub(crate) blocked: bool,
}

/// The result of queueing a frame.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Queued {
    Yes,
    /// Filtered out (an excluded room, a duplicate) or the outbox is closed.
    No,
    /// Over the bound: the connection must be closed.
    Overflow,
}

pub(crate) type SharedOutbox = Rc<RefCell<Outbox>>;

thread_local! {
    /// The outboxes of this worker's sockets, by socket key, for the room actors here.
    static LOCAL: RefCell<HashMap<u64, SharedOutbox>> = RefCell::new(HashMap::new());
}

/// Registers a socket's outbox for the room actors of this thread.
pub(crate) fn register(key: u64, outbox: SharedOutbox) {
    LOCAL.with(|l| l.borrow_mut().insert(key, outbox));
}

pub(crate) fn unregister(key: u64) {
    LOCAL.with(|l| l.borrow_mut().remove(&key));
}

/// The outbox of socket `key` if it lives on this thread.
pub(crate) fn local(key: u64) -> Option<SharedOutbox> {
    LOCAL.with(|l| l.borrow().get(&key).cloned())
}

impl Outbox {
    pub(crate) fn new(transport: Transport, max_buffered: usize) -> Self {
        Outbox {
            transport,
            max_buffered,
            sockets: Vec::new(),
            recent: VecDeque::new(),
            closed: false,
            overflowed: false,
            blocked: false,
        }
    }

    pub(crate) fn is_websocket(&self) -> bool {
        matches!(self.transport, Transport::WebSocket(_))
    }

    /// Queues a frame on the current transport (a waiting GET is answered at once).
    pub(crate) fn push(&mut self, frame: &Frame) -> Queued {
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

    /// Writes what the WebSocket has queued, unless a writability wait is under way.
    pub(crate) fn flush(&mut self) -> Flushed {
        match &mut self.transport {
            Transport::WebSocket(_) if self.blocked => Flushed::Blocked,
            Transport::WebSocket(w) => w.flush(),
            Transport::Polling { .. } => Flushed::Done,
        }
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

    /// A broadcast packet for socket `key`: exclusions and duplicates are dropped here.
    pub(crate) fn deliver(&mut self, key: u64, p: &Outgoing) -> Queued {
        let Some(s) = self.sockets.iter().find(|s| s.key == key) else {
            return Queued::No;
        };
        if p.except_rooms
            .iter()
            .any(|r| *r == s.id || s.rooms.contains(r))
        {
            return Queued::No;
        }
        if p.multi {
            if self.recent.contains(&p.id) {
                return Queued::No;
            }
            if self.recent.len() >= RECENT_MULTI {
                self.recent.pop_front();
            }
            self.recent.push_back(p.id);
        }
        let mut out = Queued::No;
        for f in &p.frames {
            out = self.push(f);
            if out == Queued::Overflow {
                break;
            }
        }
        out
    }

    pub(crate) fn add_socket(&mut self, key: u64, id: Arc<str>, rooms: Vec<Room>) {
        self.sockets.push(SocketFilter { key, id, rooms });
    }

    pub(crate) fn remove_socket(&mut self, key: u64) {
        self.sockets.retain(|s| s.key != key);
    }

    pub(crate) fn set_rooms(&mut self, key: u64, rooms: &[Room]) {
        if let Some(s) = self.sockets.iter_mut().find(|s| s.key == key) {
            s.rooms = rooms.to_vec();
        }
    }
}
