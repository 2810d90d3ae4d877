//! Pure protocol layer: Engine.IO v4 and Socket.IO v5 packet codecs, the disconnect
//! reasons and the id types.
//!
//! Nothing here performs I/O or knows about actix; every function takes bytes or strings
//! and returns typed packets (or a typed [`DecodeError`]). This keeps the decoders fuzzable
//! and unit-testable against the examples of the official protocol documents.

pub mod engine;
pub mod error;
pub mod ids;
pub mod plain;
pub mod reason;
pub mod socket;

pub use error::DecodeError;
pub use ids::{NodeId, Nsp, Room, Sid, SocketId, UserId};
pub use reason::DisconnectReason;

/// Milliseconds since the epoch (0 on a clock before it): the time unit of stored rows,
/// wire stamps and socket descriptions.
pub fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}
