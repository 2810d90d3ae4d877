//! Implementations of the cluster [`Bus`](crate::socketio::Bus): [`redis`] for several
//! processes (one channel for every relay, presence sets, node figures, kept sessions, all
//! with expiries) and [`memory`] for several servers in one process (tests). Both speak the
//! same [`wire`] format.

pub mod memory;
pub mod redis;
pub mod seal;
pub mod wire;

pub use memory::MemoryHub;
pub use redis::RedisBus;
