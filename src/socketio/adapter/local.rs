//! The sockets of this worker thread, for the room actors that run here: each socket's
//! outbox (shared with its session) and the filter a broadcast passes (excluded rooms,
//! duplicates of a broadcast reaching it through several rooms).

use super::{Room, SocketId};
use crate::engine::{Queued, SharedOutbox};
use crate::socketio::Outgoing;
use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::rc::Rc;

/// The worker thread a session lives on. Rooms keep one `RoomActor` per worker with local
/// members, started on that worker's arbiter, so a broadcast crosses threads once per worker
/// rather than once per member.
#[derive(Clone)]
pub struct Shard {
    /// The worker's number (per process).
    pub worker: usize,
    /// Where that worker's room actors are started.
    pub arbiter: actix::dev::ArbiterHandle,
}

static NEXT_WORKER: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

thread_local! {
    static WORKER: usize = NEXT_WORKER.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    /// The sockets of this worker, by socket key.
    static LOCAL: RefCell<HashMap<u64, Rc<LocalSocket>>> = RefCell::new(HashMap::new());
}

impl Shard {
    /// The shard of the calling thread (which must run an actix arbiter).
    pub fn current() -> Shard {
        Shard {
            worker: WORKER.with(|w| *w),
            arbiter: actix::Arbiter::current(),
        }
    }
}

/// Sockets registered on every worker (`rt_state_entries{map="worker_sockets"}`).
fn registered() -> &'static crate::metrics::SizeCell {
    static CELL: std::sync::OnceLock<crate::metrics::SizeCell> = std::sync::OnceLock::new();
    CELL.get_or_init(|| crate::metrics::SizeCell::new("worker_sockets"))
}

/// How many multi-room broadcast ids a socket remembers to drop duplicates.
const RECENT_MULTI: usize = 64;

/// What a broadcast needs to know of one socket.
struct Filter {
    id: SocketId,
    rooms: Vec<Room>,
    recent: VecDeque<u64>,
}

impl Filter {
    /// Whether `p` goes to this socket (and, for a multi-room broadcast, remembers it).
    fn accepts(&mut self, p: &Outgoing) -> bool {
        if p.except_rooms
            .iter()
            .any(|r| r.as_str() == self.id.as_str() || self.rooms.contains(r))
        {
            return false;
        }
        if p.multi {
            if self.recent.contains(&p.id) {
                return false;
            }
            if self.recent.len() >= RECENT_MULTI {
                self.recent.pop_front();
            }
            self.recent.push_back(p.id);
        }
        true
    }
}

/// One socket as the fan-outs of its thread see it.
pub struct LocalSocket {
    key: u64,
    outbox: SharedOutbox,
    filter: RefCell<Filter>,
    /// The socket left: a room actor that has not heard yet delivers nothing more.
    gone: std::cell::Cell<bool>,
    /// It speaks the plain WebSocket protocol: it gets a broadcast's plain frame.
    plain: bool,
}

impl LocalSocket {
    /// A socket writing into `outbox` (plain WebSocket frames when `plain`), registered for this thread's room actors under `key`.
    pub(crate) fn register(
        key: u64,
        id: SocketId,
        rooms: Vec<Room>,
        outbox: SharedOutbox,
        plain: bool,
    ) -> Rc<Self> {
        let me = Rc::new(LocalSocket {
            key,
            outbox,
            plain,
            gone: std::cell::Cell::new(false),
            filter: RefCell::new(Filter {
                id,
                rooms,
                recent: VecDeque::new(),
            }),
        });
        if LOCAL
            .with(|l| l.borrow_mut().insert(key, me.clone()))
            .is_none()
        {
            registered().add();
        }
        me
    }

    /// The socket left its namespace.
    pub(crate) fn retire(&self) {
        self.gone.set(true);
        if LOCAL.with(|l| l.borrow_mut().remove(&self.key)).is_some() {
            registered().sub();
        }
    }

    /// The socket `key` if it lives on this thread.
    pub(crate) fn find(key: u64) -> Option<Rc<Self>> {
        LOCAL.with(|l| l.borrow().get(&key).cloned())
    }

    pub(crate) fn set_rooms(&self, rooms: &[Room]) {
        self.filter.borrow_mut().rooms = rooms.to_vec();
    }

    pub(crate) fn outbox(&self) -> &SharedOutbox {
        &self.outbox
    }

    /// Queues a broadcast packet unless the filter drops it; `None` when the outbox is in
    /// use (the caller then goes through the session's mailbox).
    pub(crate) fn deliver(&self, p: &Outgoing) -> Option<Queued> {
        let mut ob = self.outbox.try_borrow_mut().ok()?;
        if self.gone.get() || !self.filter.borrow_mut().accepts(p) {
            return Some(Queued::No);
        }
        if self.plain {
            return Some(p.plain_frame().map_or(Queued::No, |f| ob.push(f)));
        }
        Some(ob.push_all(&p.frames))
    }
}
