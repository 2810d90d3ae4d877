//! The answers every client event gets: an ack `{success:true, ...}` or
//! `{success:false, error, code}`, or without an ack an `error {message, code}` event. The
//! same functions answer from the handler ([`SocketCtx`]) and from later work
//! ([`SocketHandle`]).

use std::future::Future;

use serde_json::{json, Map, Value};

use super::error::AppError;
use super::events;
use crate::socketio::{AckId, SocketCtx, SocketHandle};

/// Where an answer goes: the socket, now or later.
pub trait Answer {
    /// Answers the acknowledgement request `ack`.
    fn ack_with(&mut self, ack: AckId, payload: Value);
    /// Emits `event` to the socket.
    fn emit_one(&mut self, event: &str, payload: Value);
}

impl Answer for SocketCtx<'_> {
    fn ack_with(&mut self, ack: AckId, payload: Value) {
        self.ack(ack, &[payload]);
    }
    fn emit_one(&mut self, event: &str, payload: Value) {
        self.emit(event, &[payload]);
    }
}

impl Answer for SocketHandle {
    fn ack_with(&mut self, ack: AckId, payload: Value) {
        self.ack(ack, vec![payload]);
    }
    fn emit_one(&mut self, event: &str, payload: Value) {
        self.emit(event, vec![payload]);
    }
}

/// Acks success with extra fields (`fields` must be an object or null).
pub fn ok(to: &mut impl Answer, ack: Option<AckId>, fields: Value) {
    let Some(ack) = ack else { return };
    let mut m = Map::new();
    m.insert("success".into(), Value::Bool(true));
    if let Value::Object(extra) = fields {
        m.extend(extra);
    }
    to.ack_with(ack, Value::Object(m));
}

/// Acks with `payload` as it is (another server's answer); nothing without an ack.
pub fn raw(to: &mut impl Answer, ack: Option<AckId>, payload: Value) {
    if let Some(ack) = ack {
        to.ack_with(ack, payload);
    }
}

/// Reports a failure (counted by code): in the ack when there is one, else as an `error`
/// event.
pub fn fail(to: &mut impl Answer, ack: Option<AckId>, err: &AppError) {
    let (code, message) = (err.code().as_str(), err.message());
    crate::metrics::get().error(code);
    match ack {
        Some(ack) => to.ack_with(
            ack,
            json!({"success": false, "error": message, "code": code}),
        ),
        None => to.emit_one(events::ERROR, json!({"message": message, "code": code})),
    }
}

/// Answers with `outcome`: success with its fields, or the failure (recorded as `what`).
pub fn answer(
    to: &mut impl Answer,
    ack: Option<AckId>,
    what: &str,
    outcome: Result<Value, AppError>,
) {
    match outcome {
        Ok(fields) => ok(to, ack, fields),
        Err(e) => {
            e.log_internal(what);
            fail(to, ack, &e)
        }
    }
}

/// Runs `work` (database look-ups, cluster answers) beside the socket and answers its
/// outcome once it is done, as [`answer`] does.
pub fn answer_later<F>(s: &SocketCtx<'_>, ack: Option<AckId>, what: &'static str, work: F)
where
    F: Future<Output = Result<Value, AppError>> + 'static,
{
    let mut h = s.handle();
    actix_rt::spawn(async move {
        let outcome = work.await;
        answer(&mut h, ack, what, outcome);
    });
}
