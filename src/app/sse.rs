//! Server-Sent Events (docs/http.md): `GET /events` streams a user's notifications,
//! `job:progress`, `chat:direct` and the backend's own events for the user (`POST
//! /internal/emit`) as `text/event-stream`, from every node.
//!
//! A stream follows the user's room `user:{id}` of `/` as a [`Watcher`] (it gets what that
//! room's sockets get, relayed from every node), counts in the room's presence (so a DM to
//! the user says `delivered:true` and `job:progress` counts it notified; a stream never
//! acknowledges a DM, so the DM stays undelivered for the sockets), replays the stored
//! notifications after `Last-Event-ID`, sends a comment line every `sse.keepalive_ms`, ends
//! when its token expires, when the user is disconnected or disabled, and when the node
//! shuts down. What waits for a slow reader is budgeted in bytes like a socket's outbox
//! (`limits.max_queued_bytes`); over it the stream takes nothing more, stops counting as
//! online and ends when it is next polled, or, for a client that reads nothing at all,
//! when the kernel ends the connection (`server.tcp_user_timeout_ms`).

use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;
use serde_json::Value;
use tokio::sync::mpsc;

use super::direct::NEW_DM;
use super::error::{AppError, Code};
use super::events;
use super::names::{user_room, CHAT};
use super::presence::Presence;
use super::server_api::SSE_EMIT;
use crate::socketio::{IoHandle, SocketInfo, Watched, Watcher, Watching};

/// Stored notifications one `Last-Event-ID` replays at most.
pub const MAX_REPLAY: i64 = 200;

/// How many streams each user holds open on this node.
#[derive(Default)]
pub(super) struct Streams {
    per_user: Mutex<HashMap<String, usize>>,
}

impl Streams {
    /// No stream yet; the users holding streams are shown in `rt_state_entries`.
    pub(super) fn tracked() -> Arc<Self> {
        let s = Arc::new(Streams::default());
        crate::metrics::track_weak("sse_users", &s, |s| {
            s.per_user.lock().unwrap_or_else(|e| e.into_inner()).len()
        });
        s
    }

    /// Counts a stream of `user` in, unless it already holds `max`.
    fn open(self: &Arc<Self>, user: &str, max: usize) -> Result<StreamSlot, AppError> {
        let mut m = self.per_user.lock().unwrap_or_else(|e| e.into_inner());
        let n = m.entry(user.to_owned()).or_default();
        if *n >= max {
            crate::metrics::get().refused("sse_streams");
            return Err(AppError::refused(
                Code::RateLimited,
                format!("at most {max} event streams per user"),
            ));
        }
        *n += 1;
        Ok(StreamSlot {
            streams: self.clone(),
            user: user.to_owned(),
        })
    }
}

/// One counted stream; counted out when dropped.
struct StreamSlot {
    streams: Arc<Streams>,
    user: String,
}

impl Drop for StreamSlot {
    fn drop(&mut self) {
        let mut m = self
            .streams
            .per_user
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if let Some(n) = m.get_mut(&self.user) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                m.remove(&self.user);
            }
        }
    }
}

/// What the watcher and the stream share: the bytes waiting in the channel.
struct Budget {
    queued: AtomicUsize,
    max: usize,
    over: AtomicBool,
}

/// The stream's side on the `ServerActor`'s thread: counts and hands over, nothing more.
struct SseWatcher {
    tx: mpsc::UnboundedSender<(usize, Watched)>,
    budget: Arc<Budget>,
    /// The stream's presence count, given up as soon as the stream is over its budget (its
    /// connection may linger until the kernel ends it; the user is not online through it).
    counted: Arc<Mutex<Option<Counted>>>,
    /// How `admin:sockets` lists it.
    info: SocketInfo,
}

impl Watcher for SseWatcher {
    fn watched(&self, what: Watched) -> bool {
        let n = match &what {
            Watched::Packet(p) => p.byte_len(),
            Watched::Command { name, args } if &**name == NEW_DM || &**name == SSE_EMIT => {
                serde_json::to_vec(&**args).map_or(0, |v| v.len())
            }
            // nothing else of a command goes down the stream
            Watched::Command { .. } => return true,
            Watched::Disconnect | Watched::Shutdown => 0,
        };
        let queued = self.budget.queued.fetch_add(n, Ordering::AcqRel) + n;
        if queued > self.budget.max {
            self.budget.over.store(true, Ordering::Release);
            log::warn!("an event stream is a slow consumer: closed");
            crate::metrics::get().error("slow_consumer");
            crate::metrics::get().refused("queued_bytes");
            drop(
                self.counted
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .take(),
            );
            // wake the stream so it ends now
            let _ = self.tx.send((0, Watched::Disconnect));
            return false;
        }
        self.tx.send((n, what)).is_ok()
    }

    fn describe(&self) -> Option<SocketInfo> {
        Some(self.info.clone())
    }
}

/// Leaves the presence count when the stream goes.
struct Counted {
    presence: Presence,
    io: IoHandle,
    user: String,
    id: String,
}

impl Drop for Counted {
    fn drop(&mut self) {
        let gone =
            self.presence
                .leave(&self.io, CHAT, &user_room(&self.user), &self.user, &self.id);
        // the local count changed already; the cluster's follows if a runtime is there
        if tokio::runtime::Handle::try_current().is_ok() {
            actix_rt::spawn(gone);
        }
    }
}

/// Counts the stream in `rt_sse_streams` while its response lives.
struct Gauged;

impl Gauged {
    fn new() -> Self {
        crate::metrics::get().sse_streams.inc();
        Gauged
    }
}

impl Drop for Gauged {
    fn drop(&mut self) {
        crate::metrics::get().sse_streams.dec();
    }
}

/// One open stream: the body of a `GET /events` answer.
pub struct EventStream {
    rx: mpsc::UnboundedReceiver<(usize, Watched)>,
    budget: Arc<Budget>,
    /// The opening lines and the replay, sent first.
    head: VecDeque<Bytes>,
    /// Notification ids the replay sent (a live copy of one is skipped).
    replayed: HashSet<String>,
    keepalive: tokio::time::Interval,
    /// The token's expiry.
    expiry: Option<Pin<Box<tokio::time::Sleep>>>,
    done: bool,
    user: String,
    _watch: Watching,
    counted: Arc<Mutex<Option<Counted>>>,
    _gauged: Gauged,
    _slot: StreamSlot,
}

impl Drop for EventStream {
    fn drop(&mut self) {
        drop(
            self.counted
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .take(),
        );
    }
}

/// One event in SSE form: `id:` (when there is one), `event:`, `data:` and a blank line.
pub fn frame(event: &str, id: Option<&str>, data: &Value) -> Bytes {
    let json = data.to_string();
    let mut s = String::with_capacity(json.len() + event.len() + 64);
    if let Some(id) = id.filter(|i| !i.contains(['\n', '\r'])) {
        s.push_str("id: ");
        s.push_str(id);
        s.push('\n');
    }
    s.push_str("event: ");
    s.push_str(event);
    s.push_str("\ndata: ");
    // compact JSON has no raw line breaks (they are escaped inside strings)
    s.push_str(&json);
    s.push_str("\n\n");
    Bytes::from(s)
}

fn id_of(v: &Value) -> Option<&str> {
    v.get("id").and_then(Value::as_str)
}

impl EventStream {
    /// The SSE form of what the room got, if it is for the stream.
    fn render(&mut self, what: Watched) -> Result<Option<Bytes>, ()> {
        match what {
            Watched::Packet(p) => {
                let Some((name, args)) = p.event() else {
                    return Ok(None);
                };
                let Some(data) = args.first() else {
                    return Ok(None);
                };
                match name.as_str() {
                    events::NOTIFICATION => {
                        let id = id_of(data);
                        if id.is_some_and(|i| self.replayed.contains(i)) {
                            return Ok(None);
                        }
                        Ok(Some(frame(&name, id, data)))
                    }
                    events::JOB_PROGRESS => Ok(Some(frame(&name, None, data))),
                    _ => Ok(None),
                }
            }
            Watched::Command { name, args } if &*name == SSE_EMIT => {
                // a backend's own event (`POST /internal/emit` to the user)
                match (args.get("event").and_then(Value::as_str), args.get("data")) {
                    (Some(event), Some(data)) => Ok(Some(frame(event, None, data))),
                    _ => Ok(None),
                }
            }
            Watched::Command { args, .. } => {
                Ok(Some(frame(events::CHAT_DIRECT, id_of(&args), &args)))
            }
            Watched::Disconnect | Watched::Shutdown => Err(()),
        }
    }

    fn end(&mut self, why: &str) -> Poll<Option<Result<Bytes, std::convert::Infallible>>> {
        log::debug!("event stream ends user={} why={why}", self.user);
        self.done = true;
        Poll::Ready(None)
    }
}

impl Stream for EventStream {
    type Item = Result<Bytes, std::convert::Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        if let Some(b) = this.head.pop_front() {
            return Poll::Ready(Some(Ok(b)));
        }
        loop {
            if this.budget.over.load(Ordering::Acquire) {
                return this.end("slow consumer");
            }
            match this.rx.poll_recv(cx) {
                Poll::Ready(Some((n, what))) => {
                    this.budget.queued.fetch_sub(n, Ordering::AcqRel);
                    match this.render(what) {
                        Ok(Some(b)) => return Poll::Ready(Some(Ok(b))),
                        Ok(None) => continue,
                        Err(()) => return this.end("disconnected"),
                    }
                }
                Poll::Ready(None) => return this.end("watch ended"),
                Poll::Pending => break,
            }
        }
        if let Some(exp) = this.expiry.as_mut() {
            if exp.as_mut().poll(cx).is_ready() {
                return this.end("token expired");
            }
        }
        if this.keepalive.poll_tick(cx).is_ready() {
            return Poll::Ready(Some(Ok(Bytes::from_static(b": keep-alive\n\n"))));
        }
        Poll::Pending
    }
}

/// What opening a stream needs.
pub(super) struct Opening<'a> {
    pub(super) user: String,
    /// The token's expiry (seconds since the epoch), if known.
    pub(super) exp: Option<u64>,
    pub(super) last_event_id: Option<String>,
    pub(super) io: &'a IoHandle,
    /// The client's address, when known.
    pub(super) address: Option<String>,
    pub(super) keepalive: Duration,
    pub(super) max_bytes: usize,
    pub(super) max_per_user: usize,
}

/// Opens a stream for `o.user`: counted, following its room, replayed.
pub(super) async fn open(
    o: Opening<'_>,
    streams: &Arc<Streams>,
    presence: &Presence,
    db: &crate::db::Db,
) -> Result<EventStream, AppError> {
    if o.io.is_draining() {
        return Err(AppError::Busy("server shutting down, connect again"));
    }
    let slot = streams.open(&o.user, o.max_per_user)?;
    let budget = Arc::new(Budget {
        queued: AtomicUsize::new(0),
        max: o.max_bytes,
        over: AtomicBool::new(false),
    });
    let (tx, rx) = mpsc::unbounded_channel();
    let gauged = Gauged::new();
    let id = format!("sse-{}", uuid::Uuid::now_v7());
    let counted = Arc::new(Mutex::new(Some(Counted {
        presence: presence.clone(),
        io: o.io.clone(),
        user: o.user.clone(),
        id: id.clone(),
    })));
    // following first, then counted, then the replay read: nothing stored after the
    // `Last-Event-ID` falls between the replay and the live events
    let watch = o.io.watch(
        CHAT,
        &user_room(&o.user),
        Arc::new(SseWatcher {
            tx,
            budget: budget.clone(),
            counted: counted.clone(),
            info: SocketInfo {
                id: id.clone(),
                nsp: CHAT.to_owned(),
                client_id: String::new(),
                transport: "sse".to_owned(),
                address: o.address.clone(),
                connected_at: crate::db::now_ms(),
                rooms: vec![user_room(&o.user)],
                data: serde_json::json!({"userId": o.user}),
                node: String::new(),
                handshake: None,
            },
        }),
    );
    presence
        .join(o.io, CHAT, &user_room(&o.user), &o.user, &id)
        .await;
    let mut head = VecDeque::new();
    // a reconnecting EventSource waits this long; comments open the stream at once
    head.push_back(Bytes::from_static(b"retry: 3000\n: stream open\n\n"));
    let mut replayed = HashSet::new();
    if let Some(last) = o.last_event_id.filter(|l| !l.is_empty() && l.len() <= 200) {
        let u = o.user.clone();
        let items = db
            .run(move |c| crate::db::notifications::after_event(c, &u, &last, MAX_REPLAY))
            .await?
            .unwrap_or_default();
        for n in items {
            if let Some(i) = id_of(&n) {
                replayed.insert(i.to_owned());
            }
            head.push_back(frame(events::NOTIFICATION, id_of(&n), &n));
        }
    }
    let every = o.keepalive.max(Duration::from_millis(100));
    let keepalive = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    let expiry = o.exp.map(|exp| {
        let left = exp.saturating_sub(crate::auth::now_s());
        Box::pin(tokio::time::sleep(Duration::from_secs(left)))
    });
    Ok(EventStream {
        rx,
        budget,
        head,
        replayed,
        keepalive,
        expiry,
        done: false,
        user: o.user,
        _watch: watch,
        counted,
        _gauged: gauged,
        _slot: slot,
    })
}
