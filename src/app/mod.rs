//! The application built into the server: namespaces, their handlers and rules
//! (validate → store → broadcast → ack). Built only on the public `socketio` API.

mod chat;
mod direct;
pub mod events;
mod payload;
pub mod reply;
mod session_auth;
mod writer;

use std::sync::Arc;

use crate::auth::Verifier;
use crate::config::Config;
use crate::db::Db;
use crate::socketio::{Namespace, SocketIo};

/// The product's Socket.IO application.
pub fn socket_io(config: &Config, verifier: Arc<Verifier>, db: Db) -> SocketIo {
    let allow_query = config.auth.allow_query_token;
    let chat = session_auth::authenticated(Namespace::new(), verifier, db.clone(), allow_query);
    let shared = Arc::new(chat::Chat {
        writer: writer::MessageWriter::start(db.clone(), config.chat.write_queue),
        db,
        cfg: config.chat.clone(),
    });
    let chat = chat::handlers(chat, shared.clone());
    let chat = direct::handlers(chat, shared);
    // The chat application turns connection state recovery on.
    SocketIo::new().recovery(true).namespace("/", chat)
}
