//! Group commit of chat messages.
//!
//! `chat:send` hands its message to one writer thread through a bounded queue (bounded by a
//! count, not preallocated: an idle queue holds nothing). The writer
//! takes everything queued (up to [`MAX_BATCH`]), stores it in one transaction, then — in
//! commit order — broadcasts each new `chat:message` to its room and acks its sender. While
//! one batch commits the next one gathers, so the rate is not one fsync per message, and
//! the messages of a room reach every member in the order they were stored.
//!
//! The thread does only blocking database work and hands results to actors by message; no
//! actor or event-loop thread ever waits on the database.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use super::error::AppError;
use super::events;
use super::reply;
use crate::db::messages::{self, NewMessage, Stored};
use crate::db::Db;
use crate::socketio::{AckId, IoHandle, SocketHandle};

/// Messages stored per transaction at most.
const MAX_BATCH: usize = 512;

/// Who hears how a queued message went.
pub enum Reply {
    /// A `chat:send`: the socket's ack (or its `error` event).
    Socket {
        from: SocketHandle,
        ack: Option<AckId>,
    },
    /// `POST /api/rooms/{id}/messages`: the request waiting for its answer.
    Http(tokio::sync::oneshot::Sender<Result<serde_json::Value, AppError>>),
}

/// One queued message.
pub struct Pending {
    pub msg: NewMessage,
    pub reply: Reply,
    pub io: IoHandle,
    /// The Socket.IO room the message goes to.
    pub room: String,
}

/// Why a message could not be queued.
pub enum Rejected {
    /// The queue is full: the server is behind; the client may retry (same `clientMsgId`).
    Busy,
    /// The writer thread is gone.
    Gone,
    /// The server drains: nothing new is accepted (the client retries on another node
    /// with the same `clientMsgId`).
    Draining,
}

/// The sending side of the writer's queue.
#[derive(Clone)]
pub struct MessageWriter {
    tx: Sender<Pending>,
    state: Arc<WriterState>,
    /// Accepted messages not answered yet, at most.
    capacity: usize,
}

/// What the drain looks at: accepted messages not answered yet, and whether it began.
#[derive(Default)]
struct WriterState {
    unanswered: AtomicUsize,
    draining: AtomicBool,
}

impl MessageWriter {
    /// Starts the writer thread with a queue of `capacity` messages.
    /// `message.created` goes to outbound webhooks through `hooks` (stored with the message).
    pub fn start(
        db: Db,
        capacity: usize,
        hooks: Option<Arc<super::outbound::Hooks>>,
    ) -> MessageWriter {
        // A list channel grows and shrinks with what waits; the count below bounds it.
        let (tx, rx) = mpsc::channel();
        let state = Arc::new(WriterState::default());
        let st = state.clone();
        let spawned = std::thread::Builder::new()
            .name("chat-writer".into())
            .spawn(move || run(db, rx, &st, hooks));
        if let Err(e) = spawned {
            // Without the thread every send answers INTERNAL (the queue's receiver is gone).
            log::error!("cannot start the chat writer thread: {e}");
        }
        MessageWriter {
            tx,
            state,
            capacity,
        }
    }

    /// Queues a message; it is stored, broadcast and acked in its turn.
    pub fn submit(&self, p: Pending) -> Result<(), Rejected> {
        if self.state.draining.load(Ordering::Acquire) {
            return Err(Rejected::Draining);
        }
        // counted before it is queued, so the drain never misses it
        let before = self.state.unanswered.fetch_add(1, Ordering::AcqRel);
        if before >= self.capacity {
            self.state.unanswered.fetch_sub(1, Ordering::AcqRel);
            log::warn!(
                "chat writer queue full, refusing a message room={}",
                p.msg.room_id
            );
            return Err(Rejected::Busy);
        }
        self.tx.send(p).map_err(|_| {
            self.state.unanswered.fetch_sub(1, Ordering::AcqRel);
            Rejected::Gone
        })
    }

    /// Stops accepting messages and resolves once every accepted one is stored and
    /// answered (or after `max`, with a log line saying how many were left).
    pub async fn drain(&self, max: Duration) {
        self.state.draining.store(true, Ordering::Release);
        let deadline = tokio::time::Instant::now() + max;
        loop {
            let left = self.state.unanswered.load(Ordering::Acquire);
            if left == 0 {
                return;
            }
            if tokio::time::Instant::now() >= deadline {
                log::error!("chat writer: {left} accepted messages still unanswered at the end of the drain");
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

fn run(
    db: Db,
    rx: Receiver<Pending>,
    state: &WriterState,
    hooks: Option<Arc<super::outbound::Hooks>>,
) {
    let created = |m: &serde_json::Value| {
        let at = m["timestamp"].as_i64().unwrap_or_else(crate::db::now_ms);
        hooks
            .as_ref()
            .and_then(|h| h.message_event(super::outbound::MESSAGE_CREATED, m, at))
    };
    while let Ok(first) = rx.recv() {
        let mut batch = vec![first];
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(p) => batch.push(p),
                Err(_) => break,
            }
        }
        let rows: Vec<NewMessage> = batch.iter().map(|p| p.msg.clone()).collect();
        let outcomes = match db.run_blocking(|c| Ok(messages::store_batch(c, &rows, &created))) {
            Ok(o) => o,
            Err(e) => {
                // No connection: nothing was stored, every sender hears so.
                log::error!("chat writer: no database connection: {e}");
                rows.iter()
                    .map(|_| Err(crate::db::DbError::Blocking))
                    .collect()
            }
        };
        let n = batch.len();
        if let Some(h) = &hooks {
            if outcomes.iter().any(|o| matches!(o, Ok(Stored::New(_)))) {
                h.stored();
            }
        }
        for (p, outcome) in batch.into_iter().zip(outcomes) {
            answer(p, outcome);
        }
        state.unanswered.fetch_sub(n, Ordering::AcqRel);
    }
}

fn answer(p: Pending, outcome: Result<Stored, crate::db::DbError>) {
    let outcome = match outcome {
        Ok(Stored::New(payload)) => {
            let id = payload["id"].as_str().unwrap_or_default().to_owned();
            p.io.of(super::names::CHAT)
                .to(&p.room)
                .emit(events::CHAT_MESSAGE, &[payload]);
            Ok(json!({"messageId": id}))
        }
        Ok(Stored::Duplicate(id)) => Ok(json!({"messageId": id})),
        Ok(Stored::Refused(r)) => Err(AppError::from(r)),
        Err(e) => Err(AppError::Db(e)),
    };
    match p.reply {
        Reply::Socket { mut from, ack } => {
            let what = format!("chat:send room={}", p.msg.room_id);
            reply::answer(&mut from, ack, &what, outcome);
        }
        Reply::Http(tx) => {
            if let Err(e) = &outcome {
                e.log_internal(&format!("POST messages room={}", p.msg.room_id));
            }
            // the request may be gone (client hung up): nothing to tell then
            let _ = tx.send(outcome);
        }
    }
}
