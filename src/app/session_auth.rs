//! Authentication of a namespace's sockets: the connect middleware, the room
//! `user:{userId}`, disconnect at token expiry, and `auth:refresh {token}`.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use super::events;
use super::reply::{self, Code};
use crate::auth::{self, AuthError, Identity, Verifier};
use crate::socketio::{Event, Namespace, SocketCtx, SocketData};

/// Name of the per-socket timer that disconnects at token expiry.
const EXPIRY_TIMER: &str = "auth-expiry";

/// Adds token checking to `ns`: every socket must present a valid JWT; its identity becomes
/// the socket's data.
pub fn authenticated(ns: Namespace, verifier: Arc<Verifier>, allow_query: bool) -> Namespace {
    let v = verifier.clone();
    ns.middleware(move |hs| {
        let verdict = auth::authenticate(&v, &hs, allow_query);
        Box::pin(async move {
            match verdict {
                Ok(id) => {
                    let data: SocketData = Some(Arc::new(id));
                    Ok(data)
                }
                Err(e) => Err(e.connect_error()),
            }
        })
    })
    .on_connect(|s| {
        let Some(id) = s.data::<Identity>().cloned() else {
            return;
        };
        s.join(&format!("user:{}", id.user_id));
        arm_expiry(s, id.exp);
    })
    .on(events::AUTH_REFRESH, move |s, ev| refresh(s, ev, &verifier))
}

/// Disconnects the socket when its token expires (clients reconnect with a fresh one).
fn arm_expiry(s: &mut SocketCtx<'_>, exp: u64) {
    let left = Duration::from_secs(exp.saturating_sub(auth::now_s()));
    s.set_timer(EXPIRY_TIMER, left, |s| {
        log::info!("token expired, disconnecting socket id={}", s.id());
        s.disconnect();
    });
}

/// `auth:refresh {token}`: a fresh token of the same user replaces the old one.
fn refresh(s: &mut SocketCtx<'_>, ev: Event, verifier: &Verifier) {
    let token = match ev.args.first() {
        Some(Value::Object(o)) => o.get("token").and_then(Value::as_str),
        _ => None,
    };
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return reply::fail(
            s,
            ev.ack,
            Code::InvalidPayload,
            "token (string) is required",
        );
    };
    let new = match verifier.verify(token) {
        Ok(id) => id,
        Err(e) => {
            let code = match e {
                AuthError::Expired => Code::TokenExpired,
                _ => Code::TokenInvalid,
            };
            return reply::fail(s, ev.ack, code, &e.to_string());
        }
    };
    let same_user = s
        .data::<Identity>()
        .is_some_and(|old| old.user_id == new.user_id);
    if !same_user {
        return reply::fail(
            s,
            ev.ack,
            Code::Forbidden,
            "the token belongs to another user",
        );
    }
    let exp = new.exp;
    s.set_data(Some(Arc::new(new)));
    arm_expiry(s, exp);
    reply::ok(s, ev.ack, json!({ "expiresAt": exp * 1000 }));
}
