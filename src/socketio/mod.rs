//! The Socket.IO v5 layer, above the engine: the per-connection [`Client`] (the engine
//! handler: namespace sockets, binary reassembly, connect with middleware and recovery,
//! event dispatch, acks both ways), the [`SocketCtx`] handlers act through, broadcasts
//! ([`BroadcastOp`], encoded once), connection state recovery, and the [`adapter`] (the
//! `ServerActor` registry of namespaces and rooms, and the `RoomActor`s that fan out).
//! Between nodes it talks through a [`NodeRelay`]; it never names the application.
//!
//! Handlers run on the connection's actor thread and must not block; slow work (database,
//! HTTP) is spawned and acts later through a [`SocketHandle`] or [`IoHandle`].

pub mod adapter;
mod broadcast;
pub mod bus;
mod client;
mod ctx;
mod handle;
mod limit;
mod recovery;

use std::any::Any;
use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::future::LocalBoxFuture;
use serde_json::Value;

pub use crate::engine::RequestInfo;
pub use crate::protocol::DisconnectReason;
pub use adapter::{FetchQuery, Room, SocketInfo, Stats, Watched, Watcher, Watching};
pub use broadcast::{next_broadcast_id, BroadcastOp, Outgoing};
pub use bus::{Cluster, ClusterState, NodeRelay};
pub use client::{Client, WsSession};
pub use ctx::SocketCtx;
pub(crate) use handle::IoShared;
pub use handle::{IoHandle, SocketHandle};

/// What a socket's connect middleware sees.
#[derive(Debug, Clone)]
pub struct Handshake {
    /// The CONNECT packet's auth payload (`{}` when none).
    pub auth: Value,
    /// The request that opened the connection.
    pub request: Arc<RequestInfo>,
}

impl Handshake {
    /// A header of the handshake request (case-insensitive name).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.request
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// A query parameter of the handshake request.
    pub fn query(&self, name: &str) -> Option<&str> {
        self.request
            .query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The peer's address.
    pub fn remote_addr(&self) -> Option<std::net::SocketAddr> {
        self.request.remote_addr
    }
}

/// A refused namespace connect: sent as CONNECT_ERROR `{message, data}`.
#[derive(Debug, Clone)]
pub struct ConnectError {
    /// `message` of the CONNECT_ERROR.
    pub message: String,
    /// `data` of the CONNECT_ERROR (e.g. `{code}`).
    pub data: Option<Value>,
}

impl ConnectError {
    /// A refusal with a message.
    pub fn new(message: impl Into<String>) -> Self {
        ConnectError {
            message: message.into(),
            data: None,
        }
    }
    /// Adds `data` (e.g. `{code}`).
    pub fn with_data(mut self, data: Value) -> Self {
        self.data = Some(data);
        self
    }
    pub(crate) fn to_json(&self) -> Value {
        let mut m = serde_json::Map::new();
        m.insert("message".into(), Value::String(self.message.clone()));
        if let Some(d) = &self.data {
            m.insert("data".into(), d.clone());
        }
        Value::Object(m)
    }
}

/// Per-socket application data set by the middleware (e.g. the authenticated user).
pub type SocketData = Option<Arc<dyn Any + Send + Sync>>;

/// A connect middleware: accepts (optionally attaching data) or refuses the socket.
pub type Middleware = Arc<
    dyn Fn(Arc<Handshake>) -> LocalBoxFuture<'static, Result<SocketData, ConnectError>>
        + Send
        + Sync,
>;
/// What a plain WebSocket client is told once connected (the payload of `auth:ok`), from
/// the socket's data.
pub type WelcomeHandler = Arc<dyn Fn(&SocketData) -> Value + Send + Sync>;
/// Runs when a socket has connected.
pub type ConnectHandler = Arc<dyn Fn(&mut SocketCtx<'_>) + Send + Sync>;
/// Handles one event.
pub type EventHandler = Arc<dyn Fn(&mut SocketCtx<'_>, Event) + Send + Sync>;
/// Answers an event refused before its handler: the socket, the ack the client waits for
/// (if any), and why.
pub type RefusedHandler = Arc<dyn Fn(&mut SocketCtx<'_>, Option<AckId>, Refused) + Send + Sync>;

/// Why an event was refused before any handler saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// Its arguments nest deeper than this many levels.
    TooDeep(usize),
    /// The socket sends faster than its [`EventRate`] allows.
    RateLimited,
}

impl EventRate {
    /// The bucket's quota, or none when a figure is zero (no limit).
    fn quota(self) -> Option<(governor::Quota, std::time::Duration)> {
        let per_s = std::num::NonZeroU32::new(self.per_s)?;
        let burst = std::num::NonZeroU32::new(self.burst)?;
        Some((
            governor::Quota::per_second(per_s).allow_burst(burst),
            self.disconnect_after,
        ))
    }
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::TooDeep(max) => write!(f, "payload nested deeper than {max} levels"),
            Refused::RateLimited => f.write_str("too many events, slow down"),
        }
    }
}

/// A token bucket on the events each socket may send: `per_s` a second on average, `burst`
/// at once. Events over it are refused (through the namespace's `on_refused`); a socket that
/// stays over it for `disconnect_after` (refused at least once a second all that time) is
/// disconnected by the server.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct EventRate {
    /// Events a second, sustained.
    pub per_s: u32,
    /// Events at once.
    pub burst: u32,
    /// How long a socket may keep hitting the limit before it is disconnected.
    pub disconnect_after: std::time::Duration,
}
/// Runs a command sent to the socket (`BroadcastOp::command`), with its argument.
pub type CommandHandler = Arc<dyn Fn(&mut SocketCtx<'_>, &Value) + Send + Sync>;
/// Runs before a socket goes, with the reason.
pub type DisconnectHandler = Arc<dyn Fn(&mut SocketCtx<'_>, DisconnectReason) + Send + Sync>;

/// An event received from a client.
#[derive(Debug, Clone)]
pub struct Event {
    /// The event name.
    pub name: String,
    /// The arguments after the event name; binary arguments are placeholders into `binary`.
    pub args: Vec<Value>,
    /// Binary attachments.
    pub binary: Vec<Bytes>,
    /// Present when the client asked for an acknowledgement.
    pub ack: Option<AckId>,
}

/// The id of an acknowledgement the client waits for (and when its event arrived).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AckId {
    /// The packet id the client waits on.
    pub id: u64,
    pub(crate) at: std::time::Instant,
}

/// Why a server→client acknowledgement did not arrive.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AckError {
    /// No answer in time.
    #[error("operation has timed out")]
    Timeout,
    /// The socket went away first.
    #[error("socket has been disconnected")]
    Disconnected,
}

/// The arguments of an acknowledgement the client sent back.
#[derive(Debug, Clone)]
pub struct AckReply {
    /// The answer's arguments.
    pub args: Vec<Value>,
    /// Its binary attachments.
    pub binary: Vec<Bytes>,
}

/// Receives a client's acknowledgement (or why none came).
pub type AckCallback = Box<dyn FnOnce(Result<AckReply, AckError>)>;

/// A namespace definition: middleware, handlers.
#[derive(Clone, Default)]
pub struct Namespace {
    pub(crate) middleware: Vec<Middleware>,
    pub(crate) on_connect: Option<ConnectHandler>,
    pub(crate) on_disconnect: Option<DisconnectHandler>,
    pub(crate) events: HashMap<String, EventHandler>,
    pub(crate) fallback: Option<EventHandler>,
    pub(crate) on_refused: Option<RefusedHandler>,
    pub(crate) commands: HashMap<String, CommandHandler>,
    /// The payload of a plain WebSocket client's `auth:ok` (`{}` without it).
    pub(crate) welcome: Option<WelcomeHandler>,
    /// Its metrics, resolved when it is mounted under its name.
    pub(crate) counters: Option<crate::metrics::NsCounters>,
}

impl Namespace {
    /// An empty namespace (accepts every socket, handles nothing).
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a connect middleware; they run in order and the first refusal wins.
    pub fn middleware<F>(mut self, f: F) -> Self
    where
        F: Fn(Arc<Handshake>) -> LocalBoxFuture<'static, Result<SocketData, ConnectError>>
            + Send
            + Sync
            + 'static,
    {
        self.middleware.push(Arc::new(f));
        self
    }

    /// Runs `f` when a socket has connected; handlers added later run after earlier ones.
    pub fn on_connect<F: Fn(&mut SocketCtx<'_>) + Send + Sync + 'static>(mut self, f: F) -> Self {
        self.on_connect = Some(match self.on_connect.take() {
            None => Arc::new(f),
            Some(first) => Arc::new(move |s: &mut SocketCtx<'_>| {
                first(s);
                f(s);
            }),
        });
        self
    }

    /// Runs `f` (with the reason) before a socket goes; handlers added later run after
    /// earlier ones.
    pub fn on_disconnect<F: Fn(&mut SocketCtx<'_>, DisconnectReason) + Send + Sync + 'static>(
        mut self,
        f: F,
    ) -> Self {
        self.on_disconnect = Some(match self.on_disconnect.take() {
            None => Arc::new(f),
            Some(first) => Arc::new(move |s: &mut SocketCtx<'_>, reason: DisconnectReason| {
                first(s, reason);
                f(s, reason);
            }),
        });
        self
    }

    /// Handles the event `event`.
    pub fn on<F: Fn(&mut SocketCtx<'_>, Event) + Send + Sync + 'static>(
        mut self,
        event: &str,
        f: F,
    ) -> Self {
        self.events.insert(event.to_owned(), Arc::new(f));
        self
    }

    /// Answers events refused before any handler sees them (arguments nested deeper than
    /// `limits.max_json_depth`, or over the server's [`EventRate`]); without it they are
    /// dropped. The socket stays connected.
    pub fn on_refused<F>(mut self, f: F) -> Self
    where
        F: Fn(&mut SocketCtx<'_>, Option<AckId>, Refused) + Send + Sync + 'static,
    {
        self.on_refused = Some(Arc::new(f));
        self
    }

    /// Handles the server-side command `name`, sent to sockets of this namespace from any
    /// node with `BroadcastOp::command`; the client sees nothing of it.
    pub fn on_command<F: Fn(&mut SocketCtx<'_>, &Value) + Send + Sync + 'static>(
        mut self,
        name: &str,
        f: F,
    ) -> Self {
        self.commands.insert(name.to_owned(), Arc::new(f));
        self
    }

    /// What a plain WebSocket client (`GET /ws`, docs/events.md) is told once connected: the
    /// payload of its `auth:ok` frame, from the socket's data (`{}` without this).
    pub fn welcome<F: Fn(&SocketData) -> Value + Send + Sync + 'static>(mut self, f: F) -> Self {
        self.welcome = Some(Arc::new(f));
        self
    }

    /// Handles every event with no handler of its own.
    pub fn on_any<F: Fn(&mut SocketCtx<'_>, Event) + Send + Sync + 'static>(
        mut self,
        f: F,
    ) -> Self {
        self.fallback = Some(Arc::new(f));
        self
    }
}

/// The application side of a Socket.IO server: its namespaces and options.
#[derive(Clone, Default)]
pub struct SocketIo {
    pub(crate) namespaces: HashMap<String, Arc<Namespace>>,
    /// Connection state recovery on (per server, as in Node).
    pub(crate) recovery: bool,
    /// A recovered socket runs the connect middleware again (Node skips it by default).
    pub(crate) recovery_middleware: bool,
    /// The limit on each socket's events (none by default, as in Node).
    pub(crate) event_rate: Option<EventRate>,
    /// Sees every event a handler is about to get.
    pub(crate) tap: Option<EventTap>,
}

/// Sees an event of a socket before its handler does (its name and arguments; binary
/// arguments are placeholders). It must only look and hand over, never work.
pub type EventTap = Arc<dyn Fn(&SocketCtx<'_>, &str, &[Value]) + Send + Sync>;

impl SocketIo {
    /// No namespaces yet, recovery off.
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a namespace (`"/"`, `"/admin"`, ...).
    pub fn namespace(mut self, name: &str, mut ns: Namespace) -> Self {
        ns.counters = Some(crate::metrics::NsCounters::new(name));
        self.namespaces.insert(name.to_owned(), Arc::new(ns));
        self
    }

    /// The shared state of its connections once it serves through `server`; recovery stays
    /// on only where the configuration allows it.
    pub(crate) fn into_shared(
        self,
        server: actix::Addr<adapter::ServerActor>,
        config: &crate::config::Config,
    ) -> Arc<IoShared> {
        Arc::new(IoShared {
            namespaces: self.namespaces,
            recovery: self.recovery && config.recovery.enabled,
            max_attachments: config.limits.max_attachments,
            max_attachment_bytes: config.engine.max_payload as usize,
            max_json_depth: config.limits.max_json_depth,
            recovery_middleware: self.recovery_middleware,
            event_rate: self.event_rate.and_then(EventRate::quota),
            tap: self.tap,
            server,
            bus: std::sync::OnceLock::new(),
            draining: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Whether a recovered socket passes the connect middleware again (default off, as
    /// Node's `skipMiddlewares`): on, a middleware refusal refuses the recovery too, and
    /// nothing is replayed.
    pub fn recovery_middleware(mut self, on: bool) -> Self {
        self.recovery_middleware = on;
        self
    }

    /// Limits the events each socket may send (default: no limit, as in Node).
    pub fn event_rate(mut self, rate: Option<EventRate>) -> Self {
        self.event_rate = rate;
        self
    }

    /// Has `f` see every event of every namespace before its handler (see [`EventTap`]).
    pub fn tap<F: Fn(&SocketCtx<'_>, &str, &[Value]) + Send + Sync + 'static>(
        mut self,
        f: F,
    ) -> Self {
        self.tap = Some(Arc::new(f));
        self
    }

    /// Turns connection state recovery on or off (default off, as in Node).
    pub fn recovery(mut self, on: bool) -> Self {
        self.recovery = on;
        self
    }
}
