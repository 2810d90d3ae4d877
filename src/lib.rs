//! A Socket.IO v4-compatible realtime server on actix.
//!
//! Modules in the order of the data path, each importing only the ones above it:
//! - [`config`]: layered configuration (plain data).
//! - [`metrics`]: the Prometheus registry every layer counts into.
//! - [`protocol`]: pure Engine.IO / Socket.IO codecs and the disconnect reasons (no I/O).
//! - [`engine`]: Engine.IO: handshake, polling, WebSocket I/O, upgrade, heartbeat, the
//!   bounded outbox, one `Session` actor per connection generic over an `EngineHandler`.
//! - [`socketio`]: Socket.IO over the engine: the per-connection `Client`, namespaces,
//!   `SocketCtx`, acks, broadcasts, recovery, the adapter (`ServerActor`, `RoomActor`s)
//!   and the cluster's traits (`NodeRelay` for relays, `ClusterState` for shared state).
//! - [`cluster`]: both over Redis, and in memory.
//! - [`db`]: diesel storage (SQLite, PostgreSQL) run on the database's own threads.
//! - [`auth`]: JWT verification and token extraction.
//! - [`app`]: the chat, notification and admin application (validate → store → broadcast
//!   → ack).
//! - [`http`]: webhooks, directory sync, readiness, health, metrics, CORS.
//! - [`server`]: [`Server`], which assembles all of it and runs it on a bound listener.
//!
//! [`Server::run`] takes an already-bound listener, so tests and benchmarks start the real
//! server on port 0.

#![warn(missing_docs)]

pub mod app;
pub mod auth;
pub mod cluster;
pub mod config;
pub mod db;
pub mod engine;
pub mod http;
pub(crate) mod metrics;
pub mod protocol;
pub mod server;
pub mod socketio;

pub use config::Config;
pub use engine::{EngineCtx, EngineHandler, EngineMessage};
pub use server::Server;
pub use socketio::SocketIo;

/// Has mimalloc (the binaries' allocator) give freed memory back to the OS at once rather
/// than after its default delay of a second. Under connection churn the pages freed by
/// closing sessions are otherwise always a second from being returned, and RSS stays above
/// what is live (docs/benchmarks.md, "Memory under churn": 8 MB less, and back to its
/// minute-2 level once idle). An operator's `MIMALLOC_PURGE_DELAY` wins. Call first in
/// `main`, before threads start.
pub fn purge_freed_memory_at_once() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_some() {
        return;
    }
    extern "C" {
        // mimalloc's own API (mimalloc.h), linked in by the `mimalloc` crate
        fn mi_option_set(option: std::os::raw::c_int, value: std::os::raw::c_long);
    }
    // `mi_option_purge_delay` in mimalloc.h's `mi_option_e` (v2 and v3 alike)
    const MI_OPTION_PURGE_DELAY: std::os::raw::c_int = 15;
    // SAFETY: sets one integer option; mimalloc reads options at any time, thread-safely.
    unsafe { mi_option_set(MI_OPTION_PURGE_DELAY, 0) };
}

/// Raises the open-files soft limit to the hard limit (each connection is a file); returns
/// the limit now in force.
pub fn raise_fd_limit() -> u64 {
    rlimit::increase_nofile_limit(u64::MAX).unwrap_or(0)
}
