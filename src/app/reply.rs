//! The answers every client event gets: an ack `{success:true, ...}` or
//! `{success:false, error, code}`, or without an ack an `error {message, code}` event.

use serde_json::{json, Map, Value};

use super::events;
use crate::socketio::{AckId, SocketCtx, SocketHandle};

/// Error codes of client events (DESIGN section 5) plus the authentication codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    InvalidPayload,
    InvalidMessage,
    NotFound,
    Forbidden,
    RateLimited,
    Internal,
    TokenExpired,
    TokenInvalid,
}

impl Code {
    pub fn as_str(self) -> &'static str {
        match self {
            Code::InvalidPayload => "INVALID_PAYLOAD",
            Code::InvalidMessage => "INVALID_MESSAGE",
            Code::RateLimited => "RATE_LIMITED",
            Code::NotFound => "NOT_FOUND",
            Code::Forbidden => "FORBIDDEN",
            Code::Internal => "INTERNAL",
            Code::TokenExpired => "TOKEN_EXPIRED",
            Code::TokenInvalid => "TOKEN_INVALID",
        }
    }
}

/// Acks success with extra fields (`fields` must be an object or null).
pub fn ok(s: &mut SocketCtx<'_>, ack: Option<AckId>, fields: Value) {
    let Some(ack) = ack else { return };
    let mut m = Map::new();
    m.insert("success".into(), Value::Bool(true));
    if let Value::Object(extra) = fields {
        m.extend(extra);
    }
    s.ack(ack, &[Value::Object(m)]);
}

/// Reports a failure: in the ack when there is one, else as an `error` event.
pub fn fail(s: &mut SocketCtx<'_>, ack: Option<AckId>, code: Code, message: &str) {
    crate::metrics::get().error(code.as_str());
    match ack {
        Some(ack) => s.ack(
            ack,
            &[json!({"success": false, "error": message, "code": code.as_str()})],
        ),
        None => s.emit(
            events::ERROR,
            &[json!({"message": message, "code": code.as_str()})],
        ),
    }
}

/// `fail` for work finished after the handler returned (through a socket handle).
pub fn fail_later(h: &SocketHandle, ack: Option<AckId>, code: Code, message: &str) {
    crate::metrics::get().error(code.as_str());
    match ack {
        Some(ack) => h.ack(
            ack,
            vec![json!({"success": false, "error": message, "code": code.as_str()})],
        ),
        None => h.emit(
            events::ERROR,
            vec![json!({"message": message, "code": code.as_str()})],
        ),
    }
}
