//! The Engine.IO v4 engine: handshake, HTTP long-polling, WebSocket I/O, the upgrade from one
//! to the other, the heartbeat, and each connection's bounded outbound queue.
//!
//! It is generic over one narrow trait, [`EngineHandler`]: the layer above gets whole
//! messages and a context to answer through, and the engine never knows what they mean. It
//! imports nothing from Socket.IO or the application (`crate::protocol`, `crate::config` and
//! `crate::metrics` only).
//!
//! Data path: `http` (handshake, polling) or `upgrade` (WebSocket) → [`Mount`] (finds or
//! starts the connection's [`Session`]) → the session decodes with `crate::protocol` and calls
//! its handler → the handler answers through [`EngineCtx`] into the [`Outbox`] → `ws` writes.

mod handler;
mod http;
mod mount;
mod outbox;
mod peer;
mod session;
pub(crate) mod upgrade;
mod ws;

use std::sync::Arc;

use bytes::Bytes;

pub use crate::protocol::Sid;
pub use handler::{EngineCtx, EngineHandler};
pub use http::client_ip;
pub use mount::{Endpoint, HandlerFactory, Mount};
pub use outbox::{Outbox, Queued, SharedOutbox};
pub use peer::PeerFd;
pub use session::{CloseSession, OutboxTrouble, Session};
pub use ws::Flushed;

/// A whole message between the engine and its handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EngineMessage {
    /// A text message (an Engine.IO `4` packet).
    Text(String),
    /// A binary message.
    Binary(Bytes),
}

/// The HTTP request that opened an Engine.IO connection.
#[derive(Debug, Default)]
pub struct RequestInfo {
    /// The query of the handshake request.
    pub query: Vec<(String, String)>,
    /// Headers of the handshake request (lower-case names).
    pub headers: Vec<(String, String)>,
    /// The peer's address.
    pub remote_addr: Option<std::net::SocketAddr>,
    /// The client's address: the peer's, or the one a trusted proxy forwarded
    /// (`server.trusted_proxies`).
    pub client_ip: Option<std::net::IpAddr>,
}

/// A random id like Node's (20 URL-safe characters): Engine.IO session ids, Socket.IO
/// socket ids and recovery ids.
pub fn random_id() -> Arc<str> {
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine as _;
    let bytes: [u8; 15] = rand::random();
    Arc::from(URL_SAFE_NO_PAD.encode(bytes))
}
