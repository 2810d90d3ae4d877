//! The application over plain HTTP (docs/http.md, REST): what `http::rest` calls. Each call
//! authenticates a Bearer token like a connect (users table included), then does what the
//! matching socket event does, with the same validation, order of checks, codes and limits;
//! a message posted here goes through the same group-commit writer and is broadcast exactly
//! like a `chat:send`.

use std::sync::Arc;

use serde_json::{json, Map, Value};

use super::chat::Chat;
use super::error::{AppError, Code};
use super::limits::UserSends;
use super::names::chat_room;
use super::payload;
use super::session_auth;
use super::sse;
use super::writer::{Pending, Rejected, Reply};
use crate::auth::{AuthError, Identity, Verifier};
use crate::config::SseConfig;
use crate::db::messages::{self, NewMessage, Refusal};
use crate::db::{notifications, now_ms, tickets};
use crate::socketio::IoHandle;

/// Most items one page answers.
const MAX_PAGE: i64 = 200;
/// Items a page answers without `limit`.
const DEFAULT_PAGE: i64 = 50;

/// The REST side of the application.
#[derive(Clone)]
pub struct Api {
    chat: Arc<Chat>,
    verifier: Arc<Verifier>,
    /// Requests per user (the per-socket event rate, applied per user here).
    requests: Arc<UserSends>,
    sse: SseConfig,
    streams: Arc<sse::Streams>,
}

/// How long a ticket for `GET /events?ticket=` is valid.
const TICKET_TTL_MS: i64 = 60_000;

/// A `limit` query value: default 50, clamped to 200, below 1 or not a number refused.
pub fn page_limit(raw: Option<&str>) -> Result<i64, AppError> {
    match raw {
        None => Ok(DEFAULT_PAGE),
        Some(v) => v
            .parse::<i64>()
            .ok()
            .filter(|n| *n >= 1)
            .map(|n| n.min(MAX_PAGE))
            .ok_or_else(|| AppError::invalid("limit must be a whole number of at least 1")),
    }
}

impl Api {
    pub(super) fn new(
        chat: Arc<Chat>,
        verifier: Arc<Verifier>,
        requests: UserSends,
        sse: SseConfig,
    ) -> Self {
        Api {
            chat,
            verifier,
            requests: Arc::new(requests),
            sse,
            streams: sse::Streams::tracked(),
        }
    }

    /// The chat application behind it (the server API shares it).
    pub(super) fn chat(&self) -> &Chat {
        &self.chat
    }

    /// `POST /api/sse-ticket`: a single-use ticket for `GET /events?ticket=`, valid 60 s.
    pub async fn sse_ticket(&self, user: &Identity) -> Result<Value, AppError> {
        let ticket = {
            use rand::RngCore;
            let mut raw = [0u8; 32];
            rand::thread_rng().fill_bytes(&mut raw);
            hex::encode(raw)
        };
        let now = now_ms();
        let owner = tickets::Ticket {
            user_id: user.user_id.clone(),
            token_exp: i64::try_from(user.exp).ok(),
        };
        let t = ticket.clone();
        self.chat
            .db
            .run(move |c| tickets::issue(c, &t, &owner, now + TICKET_TTL_MS, now))
            .await?;
        Ok(json!({"ticket": ticket}))
    }

    /// `GET /events`: the caller's event stream, authenticated by `Authorization: Bearer`
    /// or else by a ticket (401 `TOKEN_INVALID` when it is unknown, used or older than
    /// 60 s); `last_event_id` asks for the replay; `address` (the client's) is what
    /// `admin:sockets` shows.
    pub async fn events(
        &self,
        authorization: Option<&str>,
        ticket: Option<&str>,
        last_event_id: Option<String>,
        io: &IoHandle,
        address: Option<String>,
    ) -> Result<sse::EventStream, AppError> {
        let id = match (authorization, ticket) {
            (None, Some(t)) => {
                let t = t.to_owned();
                let now = now_ms();
                let owner = self
                    .chat
                    .db
                    .run(move |c| tickets::take(c, &t, now))
                    .await?
                    .ok_or_else(|| {
                        AppError::refused(Code::TokenInvalid, "invalid, used or expired ticket")
                    })?;
                let id = Identity {
                    user_id: owner.user_id,
                    email: None,
                    role: crate::auth::Role::User,
                    exp: owner
                        .token_exp
                        .and_then(|e| u64::try_from(e).ok())
                        .unwrap_or(0),
                };
                let id = session_auth::stored(&self.chat.db, id).await?;
                self.requests.check(&id.user_id)?;
                id
            }
            (auth, _) => self.caller(auth).await?,
        };
        sse::open(
            sse::Opening {
                user: id.user_id,
                exp: (id.exp > 0).then_some(id.exp),
                last_event_id,
                io,
                address,
                keepalive: std::time::Duration::from_millis(self.sse.keepalive_ms),
                max_bytes: self.chat.max_queued_bytes,
                max_per_user: self.sse.max_per_user,
            },
            &self.streams,
            &self.chat.presence,
            &self.chat.db,
        )
        .await
    }

    /// The caller of `Authorization: Bearer <JWT>`, checked like a connect: 401 with
    /// `AUTH_REQUIRED`, `TOKEN_EXPIRED`, `TOKEN_INVALID` or `ACCOUNT_DISABLED`; then the
    /// caller's request rate (`RATE_LIMITED`).
    pub async fn caller(&self, authorization: Option<&str>) -> Result<Identity, AppError> {
        let token = authorization
            .and_then(|h| {
                h.strip_prefix("Bearer ")
                    .or_else(|| h.strip_prefix("bearer "))
            })
            .map(str::trim)
            .filter(|t| !t.is_empty());
        let Some(token) = token else {
            return Err(AppError::refused(
                Code::AuthRequired,
                "Authorization: Bearer <token> is required",
            ));
        };
        let id = self.verifier.verify(token).map_err(|e| {
            let code = match e {
                AuthError::Expired => Code::TokenExpired,
                _ => Code::TokenInvalid,
            };
            AppError::refused(code, e.to_string())
        })?;
        let id = session_auth::stored(&self.chat.db, id).await?;
        self.requests.check(&id.user_id)?;
        Ok(id)
    }

    /// `GET /api/rooms/{id}/messages?before|after&limit`.
    pub async fn messages(
        &self,
        user: &Identity,
        room: String,
        before: Option<String>,
        after: Option<String>,
        limit: i64,
    ) -> Result<Value, AppError> {
        if before.is_some() && after.is_some() {
            return Err(AppError::invalid("give before or after, not both"));
        }
        let user = user.user_id.clone();
        let (items, more) = self
            .chat
            .db
            .run(move |c| {
                messages::page(c, &room, &user, before.as_deref(), after.as_deref(), limit)
            })
            .await??;
        Ok(json!({"messages": items, "hasMore": more}))
    }

    /// `POST /api/rooms/{id}/messages {text, replyToId?, clientMsgId?}`: as `chat:send`, by
    /// a user allowed to join the room (no socket needed).
    pub async fn post_message(
        &self,
        user: &Identity,
        room: String,
        body: &Value,
        io: &IoHandle,
    ) -> Result<Value, AppError> {
        let o = body
            .as_object()
            .ok_or_else(|| AppError::invalid("expected {text, replyToId?, clientMsgId?}"))?;
        let msg = new_message(o, &room, &user.user_id, self.chat.cfg.max_chars)?;
        self.chat.sends.check(&user.user_id)?;
        // allowed to join: public, or a member (checked where the writer checks `joined`,
        // after the room and the reply target exist)
        let (r, u) = (room.clone(), user.user_id.clone());
        let access = self
            .chat
            .db
            .run(move |c| messages::readable(c, &r, &u))
            .await?;
        let msg = match access {
            Err(Refusal::UnknownRoom) => return Err(Refusal::UnknownRoom.into()),
            Err(_) => NewMessage {
                joined: false,
                ..msg
            },
            Ok(()) => msg,
        };
        store(&self.chat, &room, msg, io).await
    }

    /// `GET /api/notifications?unread=true`.
    pub async fn notifications(
        &self,
        user: &Identity,
        unread_only: bool,
    ) -> Result<Value, AppError> {
        let u = user.user_id.clone();
        let (items, unread) = self
            .chat
            .db
            .run(move |c| notifications::list(c, &u, unread_only, MAX_PAGE))
            .await?;
        Ok(json!({"items": items, "unread": unread}))
    }

    /// `POST /api/notifications/read {ids}`.
    pub async fn mark_read(&self, user: &Identity, body: &Value) -> Result<Value, AppError> {
        let ids = body
            .get("ids")
            .and_then(Value::as_array)
            .filter(|a| a.len() <= 1000)
            .and_then(|a| {
                a.iter()
                    .map(|v| v.as_str().map(str::to_owned))
                    .collect::<Option<Vec<String>>>()
            })
            .ok_or_else(|| AppError::invalid("ids (array of at most 1000 strings) is required"))?;
        let u = user.user_id.clone();
        let n = self
            .chat
            .db
            .run(move |c| notifications::mark_read(c, &u, &ids, now_ms()))
            .await?;
        Ok(json!({"updated": n}))
    }
}

/// Hands a checked message of room `room` to the group-commit writer, which stores and
/// broadcasts it; its answer is `chat:send`'s ack (`messageId`).
pub(super) async fn store(
    chat: &Chat,
    room: &str,
    msg: NewMessage,
    io: &IoHandle,
) -> Result<Value, AppError> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    let p = Pending {
        room: chat_room(room),
        msg,
        reply: Reply::Http(tx),
        io: io.clone(),
    };
    match chat.writer.submit(p) {
        Ok(()) => {}
        Err(Rejected::Busy) => {
            return Err(AppError::Busy(
                "server busy, retry with the same clientMsgId",
            ))
        }
        Err(Rejected::Gone) => return Err(AppError::Internal("message writer stopped")),
        Err(Rejected::Draining) => {
            return Err(AppError::Busy(
                "server shutting down, retry with the same clientMsgId",
            ))
        }
    }
    rx.await
        .unwrap_or(Err(AppError::Internal("message writer stopped")))
}

/// The message of a POST body, checked like `chat:send`: shape, then text.
pub(super) fn new_message(
    o: &Map<String, Value>,
    room: &str,
    user: &str,
    max_chars: usize,
) -> Result<NewMessage, AppError> {
    let reply_to = payload::opt_id(o, "replyToId")?;
    let client_msg_id = payload::opt_id(o, "clientMsgId")?;
    let text = payload::text(o, "text", max_chars)?;
    Ok(NewMessage {
        room_id: room.to_owned(),
        sender_id: user.to_owned(),
        text,
        reply_to_id: reply_to.map(str::to_owned),
        client_msg_id: client_msg_id.map(str::to_owned),
        joined: true,
    })
}
