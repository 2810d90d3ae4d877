//! The actor system: one [`session::WsSession`] per Engine.IO connection, one
//! [`room::RoomActor`] per live room, all registered with the [`server::ServerActor`].

pub mod bridge;
pub mod messages;
pub mod room;
pub mod server;
pub mod session;

pub use room::RoomActor;
pub use server::ServerActor;
pub use session::WsSession;
