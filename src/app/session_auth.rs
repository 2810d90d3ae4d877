//! Authentication of a namespace's sockets: the connect middleware, the room
//! `user:{userId}`, disconnect at token expiry, and `auth:refresh {token}`.

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use super::error::{AppError, Code};
use super::events;
use super::names::user_room;
use super::reply;
use crate::auth::{self, AuthError, Identity, Role, Verifier};
use crate::db::{users, Db};
use crate::socketio::{ConnectError, Event, Namespace, Refused, SocketCtx, SocketData};

/// Name of the per-socket timer that disconnects at token expiry.
const EXPIRY_TIMER: &str = "auth-expiry";

/// The authenticated user of a socket (every socket of an authenticated namespace has one).
pub fn user_id(s: &SocketCtx<'_>) -> Option<String> {
    s.data::<Identity>().map(|i| i.user_id.clone())
}

/// Who may connect to a namespace.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Any active user.
    Users,
    /// Users whose stored role is admin; others get `FORBIDDEN`.
    Admins,
    /// As `Admins`, for the socket.io admin UI: its login form sends the token as
    /// `auth.password` (any `auth.username`), and reconnects with the `auth.sessionId` it
    /// was given (the token again; docs/admin-ui.md).
    AdminUi,
}

/// The token an admin UI socket presents: `auth.token`, `auth.password` or
/// `auth.sessionId`, else as any socket may (a header).
pub(super) fn admin_ui_token(hs: &crate::socketio::Handshake) -> Option<String> {
    ["token", "password", "sessionId"]
        .iter()
        .find_map(|k| hs.auth.get(*k).and_then(Value::as_str))
        .filter(|t| !t.is_empty())
        .map(str::to_owned)
        .or_else(|| auth::extract_token(hs, false).map(|(t, _)| t))
}

/// Adds authentication to `ns`: every socket must present a valid JWT of a stored, active
/// user (of the stored role admin for `Access::Admins`); its identity (with the stored role)
/// becomes the socket's data.
pub fn authenticated(
    ns: Namespace,
    verifier: Arc<Verifier>,
    db: Db,
    allow_query: bool,
    access: Access,
) -> Namespace {
    let v = verifier.clone();
    let refresh_db = db.clone();
    ns.middleware(move |hs| {
        let verdict = match access {
            Access::AdminUi => admin_ui_token(&hs)
                .ok_or(AuthError::Required)
                .and_then(|t| v.verify(&t)),
            _ => auth::authenticate(&v, &hs, allow_query),
        };
        let db = db.clone();
        Box::pin(async move {
            let id = verdict.map_err(|e| e.connect_error())?;
            let id = stored_identity(&db, id)
                .await
                .map_err(NotAllowed::connect_error)?;
            if access != Access::Users && id.role != Role::Admin {
                return Err(ConnectError::new("admin role required")
                    .with_data(json!({"code": "FORBIDDEN"})));
            }
            let data: SocketData = Some(Arc::new(id));
            Ok(data)
        })
    })
    // a plain WebSocket client's `auth:ok` says who it is
    .welcome(|data| {
        let user = data.as_ref().and_then(|d| d.downcast_ref::<Identity>());
        json!({"userId": user.map(|i| i.user_id.as_str())})
    })
    .on_connect(|s| {
        let Some(id) = s.data::<Identity>().cloned() else {
            return;
        };
        s.join(&user_room(&id.user_id));
        arm_expiry(s, id.exp);
    })
    .on(events::AUTH_REFRESH, move |s, ev| {
        refresh(s, ev, &verifier, &refresh_db)
    })
    // events refused before their handler (nested too deeply, over the socket's rate):
    // INVALID_PAYLOAD / RATE_LIMITED, the socket kept
    .on_refused(|s, ack, why| {
        let code = match why {
            Refused::TooDeep(_) => Code::InvalidPayload,
            Refused::RateLimited => Code::RateLimited,
        };
        reply::fail(s, ack, &AppError::refused(code, why.to_string()))
    })
}

/// Why a verified token's user may not have a socket.
#[derive(Debug, Clone, Copy)]
enum NotAllowed {
    /// Not in the users table.
    Unknown,
    /// `isActive: false`.
    Disabled,
    /// The look-up failed.
    Failed,
}

impl NotAllowed {
    fn connect_error(self) -> ConnectError {
        match self {
            NotAllowed::Unknown => AuthError::Invalid.connect_error(),
            NotAllowed::Disabled => AuthError::Disabled.connect_error(),
            NotAllowed::Failed => {
                ConnectError::new("Internal error").with_data(json!({"code": "INTERNAL"}))
            }
        }
    }

    fn app_error(self) -> AppError {
        match self {
            NotAllowed::Unknown => AppError::refused(Code::TokenInvalid, "unknown user"),
            NotAllowed::Disabled => {
                AppError::refused(Code::AccountDisabled, "this account is disabled")
            }
            NotAllowed::Failed => AppError::Internal("user look-up failed"),
        }
    }
}

/// The users table is the truth: unknown → TOKEN_INVALID, inactive → ACCOUNT_DISABLED, and
/// the role is the stored one.
async fn stored_identity(db: &Db, mut id: Identity) -> Result<Identity, NotAllowed> {
    let user_id = id.user_id.clone();
    let user = db
        .run(move |c| users::find(c, &user_id))
        .await
        .map_err(|e| {
            log::error!("user look-up failed err={e}");
            NotAllowed::Failed
        })?;
    match user {
        None => Err(NotAllowed::Unknown),
        Some(u) if !u.is_active => Err(NotAllowed::Disabled),
        Some(u) => {
            id.role = if u.role == "admin" {
                Role::Admin
            } else {
                Role::User
            };
            Ok(id)
        }
    }
}

/// A verified token's identity checked against the users table, for the HTTP API: 401
/// `TOKEN_INVALID` (unknown user) or `ACCOUNT_DISABLED`; the role is the stored one.
pub(super) async fn stored(db: &Db, id: Identity) -> Result<Identity, AppError> {
    stored_identity(db, id).await.map_err(NotAllowed::app_error)
}

/// Disconnects the socket when its token expires (clients reconnect with a fresh one).
fn arm_expiry(s: &mut SocketCtx<'_>, exp: u64) {
    let left = Duration::from_secs(exp.saturating_sub(auth::now_s()));
    s.set_timer(EXPIRY_TIMER, left, |s| {
        log::info!("token expired, disconnecting socket id={}", s.id());
        s.disconnect_for("TOKEN_EXPIRED");
    });
}

/// `auth:refresh {token}`: a fresh token of the same user replaces the old one. Checked like
/// a connect, in this order: the token (`TOKEN_INVALID` / `TOKEN_EXPIRED`), the same user as
/// the socket (`FORBIDDEN`), the users table (`ACCOUNT_DISABLED`); the role kept is the
/// stored one, never the token's.
fn refresh(s: &mut SocketCtx<'_>, ev: Event, verifier: &Verifier, db: &Db) {
    let token = match ev.args.first() {
        Some(Value::Object(o)) => o.get("token").and_then(Value::as_str),
        _ => None,
    };
    let Some(token) = token.filter(|t| !t.is_empty()) else {
        return reply::fail(s, ev.ack, &AppError::invalid("token (string) is required"));
    };
    let new = match verifier.verify(token) {
        Ok(id) => id,
        Err(e) => {
            let code = match e {
                AuthError::Expired => Code::TokenExpired,
                _ => Code::TokenInvalid,
            };
            return reply::fail(s, ev.ack, &AppError::refused(code, e.to_string()));
        }
    };
    let same_user = s
        .data::<Identity>()
        .is_some_and(|old| old.user_id == new.user_id);
    if !same_user {
        let e = AppError::forbidden("the token belongs to another user");
        return reply::fail(s, ev.ack, &e);
    }
    let (mut h, ack, db) = (s.handle(), ev.ack, db.clone());
    actix_rt::spawn(async move {
        match stored_identity(&db, new).await {
            Err(why) => reply::answer(&mut h, ack, "auth:refresh", Err(why.app_error())),
            Ok(id) => h.run(move |s| {
                let exp = id.exp;
                s.set_data(Some(Arc::new(id)));
                arm_expiry(s, exp);
                reply::ok(s, ack, Value::Null);
            }),
        }
    });
}
