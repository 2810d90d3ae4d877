//! The public Socket.IO API an application builds on: namespaces with a connect middleware,
//! event handlers, and the socket context handlers act through.
//!
//! Handlers run on the connection's `WsSession` actor thread and must not block; slow work
//! (database, HTTP) is spawned and acts later through a [`SocketHandle`] or [`IoHandle`].

mod ctx;
mod handle;

use std::any::Any;
use std::collections::HashMap;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::future::LocalBoxFuture;
use serde_json::Value;

pub use ctx::{next_broadcast_id, BroadcastOp, SocketCtx};
pub use handle::{IoHandle, SocketHandle};

/// The HTTP request that opened the Engine.IO connection (shared by its sockets).
#[derive(Debug, Default)]
pub struct RequestInfo {
    /// The query of the Engine.IO handshake request.
    pub query: Vec<(String, String)>,
    /// Headers of the handshake request (lower-case names).
    pub headers: Vec<(String, String)>,
    pub remote_addr: Option<std::net::SocketAddr>,
}

/// What a socket's connect middleware sees.
#[derive(Debug, Clone)]
pub struct Handshake {
    /// The CONNECT packet's auth payload (`{}` when none).
    pub auth: Value,
    pub request: Arc<RequestInfo>,
}

impl Handshake {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.request
            .headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn query(&self, name: &str) -> Option<&str> {
        self.request
            .query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    pub fn remote_addr(&self) -> Option<std::net::SocketAddr> {
        self.request.remote_addr
    }
}

/// A refused namespace connect: sent as CONNECT_ERROR `{message, data}`.
#[derive(Debug, Clone)]
pub struct ConnectError {
    pub message: String,
    pub data: Option<Value>,
}

impl ConnectError {
    pub fn new(message: impl Into<String>) -> Self {
        ConnectError {
            message: message.into(),
            data: None,
        }
    }
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
pub type ConnectHandler = Arc<dyn Fn(&mut SocketCtx<'_>) + Send + Sync>;
pub type EventHandler = Arc<dyn Fn(&mut SocketCtx<'_>, Event) + Send + Sync>;
pub type DisconnectHandler = Arc<dyn Fn(&mut SocketCtx<'_>, &str) + Send + Sync>;

/// An event received from a client.
#[derive(Debug, Clone)]
pub struct Event {
    pub name: String,
    /// The arguments after the event name; binary arguments are placeholders into `binary`.
    pub args: Vec<Value>,
    pub binary: Vec<Bytes>,
    /// Present when the client asked for an acknowledgement.
    pub ack: Option<AckId>,
}

/// The id of an acknowledgement the client waits for (and when its event arrived).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AckId {
    pub id: u64,
    pub(crate) at: std::time::Instant,
}

/// Why a server→client acknowledgement did not arrive.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AckError {
    #[error("operation has timed out")]
    Timeout,
    #[error("socket has been disconnected")]
    Disconnected,
}

/// The arguments of an acknowledgement the client sent back.
#[derive(Debug, Clone)]
pub struct AckReply {
    pub args: Vec<Value>,
    pub binary: Vec<Bytes>,
}

pub type AckCallback = Box<dyn FnOnce(Result<AckReply, AckError>)>;

/// A namespace definition: middleware, handlers.
#[derive(Clone, Default)]
pub struct Namespace {
    pub(crate) middleware: Vec<Middleware>,
    pub(crate) on_connect: Option<ConnectHandler>,
    pub(crate) on_disconnect: Option<DisconnectHandler>,
    pub(crate) events: HashMap<String, EventHandler>,
    pub(crate) fallback: Option<EventHandler>,
    /// Its metrics, resolved when it is mounted under its name.
    pub(crate) counters: Option<crate::metrics::NsCounters>,
}

impl Namespace {
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
    pub fn on_disconnect<F: Fn(&mut SocketCtx<'_>, &str) + Send + Sync + 'static>(
        mut self,
        f: F,
    ) -> Self {
        self.on_disconnect = Some(match self.on_disconnect.take() {
            None => Arc::new(f),
            Some(first) => Arc::new(move |s: &mut SocketCtx<'_>, reason: &str| {
                first(s, reason);
                f(s, reason);
            }),
        });
        self
    }

    pub fn on<F: Fn(&mut SocketCtx<'_>, Event) + Send + Sync + 'static>(
        mut self,
        event: &str,
        f: F,
    ) -> Self {
        self.events.insert(event.to_owned(), Arc::new(f));
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
}

impl SocketIo {
    pub fn new() -> Self {
        Self::default()
    }

    /// Registers a namespace (`"/"`, `"/admin"`, ...).
    pub fn namespace(mut self, name: &str, mut ns: Namespace) -> Self {
        ns.counters = Some(crate::metrics::NsCounters::new(name));
        self.namespaces.insert(name.to_owned(), Arc::new(ns));
        self
    }

    /// Turns connection state recovery on or off (default off, as in Node).
    pub fn recovery(mut self, on: bool) -> Self {
        self.recovery = on;
        self
    }
}

/// Disconnect reasons, named as Node's socket.io names them.
pub mod reason {
    pub const TRANSPORT_CLOSE: &str = "transport close";
    pub const TRANSPORT_ERROR: &str = "transport error";
    pub const PING_TIMEOUT: &str = "ping timeout";
    pub const PARSE_ERROR: &str = "parse error";
    pub const FORCED_CLOSE: &str = "forced close";
    pub const FORCED_SERVER_CLOSE: &str = "forced server close";
    pub const SERVER_SHUTTING_DOWN: &str = "server shutting down";
    pub const CLIENT_NAMESPACE_DISCONNECT: &str = "client namespace disconnect";
    pub const SERVER_NAMESPACE_DISCONNECT: &str = "server namespace disconnect";

    /// Reasons after which a socket's state is kept for recovery.
    pub fn recoverable(r: &str) -> bool {
        matches!(
            r,
            TRANSPORT_CLOSE
                | TRANSPORT_ERROR
                | PING_TIMEOUT
                | FORCED_CLOSE
                | FORCED_SERVER_CLOSE
                | SERVER_SHUTTING_DOWN
        )
    }
}
