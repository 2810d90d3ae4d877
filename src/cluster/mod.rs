//! Implementations of the cluster's two traits, the relay
//! ([`NodeRelay`](crate::socketio::NodeRelay)) and the shared state
//! ([`ClusterState`](crate::socketio::ClusterState)): [`redis`] for several processes (one
//! channel for every relay, presence sets, node figures, kept sessions, all with expiries;
//! `redis/relay.rs` and `redis/presence.rs`) and [`memory`] for several servers in one
//! process (tests). Both speak the same [`wire`] format.

pub mod memory;
pub mod redis;
pub mod seal;
pub mod wire;

pub use memory::MemoryHub;
pub use redis::RedisBus;
