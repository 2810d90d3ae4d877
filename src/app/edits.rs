//! Namespace `/`, the chat completed (docs/events.md): `chat:edit`, `chat:delete`,
//! `chat:react` with their live events to the room (on every node), and `rooms:list` with
//! unread counts. `admin:delete-message` deletes through [`delete_message`].
//!
//! Order of checks, as for every event: payload shape → text rules → referenced things
//! exist → permission. Edits, deletes and reactions count against the user's message rate
//! (`limits.user_sends_*`); `rooms:list` takes the socket's `room:sync` slot.

use std::sync::Arc;

use serde_json::{json, Value};

use super::chat::Chat;
use super::error::AppError;
use super::events;
use super::names::{chat_room, CHAT as NSP};
use super::outbound::{Hooks, MESSAGE_DELETED, MESSAGE_UPDATED};
use super::payload;
use super::reply;
use super::session_auth::user_id;
use crate::db::edits::{self, Changed};
use crate::db::{now_ms, Db};
use crate::socketio::{Event, IoHandle, Namespace, SocketCtx};

/// Longest emoji, in characters.
const EMOJI_MAX: usize = 16;

/// Adds the handlers to `ns`.
pub fn handlers(ns: Namespace, chat: Arc<Chat>) -> Namespace {
    let on = |f: fn(&mut SocketCtx<'_>, Event, &Chat)| {
        let chat = chat.clone();
        move |s: &mut SocketCtx<'_>, ev: Event| f(s, ev, &chat)
    };
    ns.on(events::CHAT_EDIT, on(edit))
        .on(events::CHAT_DELETE, on(delete))
        .on(events::CHAT_REACT, on(react))
        .on(events::ROOMS_LIST, on(list))
}

/// The socket's user, after the user's message rate.
fn sender(s: &SocketCtx<'_>, chat: &Chat) -> Result<String, AppError> {
    let user = user_id(s).ok_or_else(|| AppError::forbidden("not authenticated"))?;
    chat.sends.check(&user)?;
    Ok(user)
}

/// The outbound event of a change, when that type is sent.
fn on_change(
    hooks: &Option<Arc<Hooks>>,
    kind: &'static str,
    at: i64,
) -> impl Fn(&Value) -> Option<crate::db::outbound::NewEvent> + Send + 'static {
    let hooks = hooks.clone();
    move |m: &Value| hooks.as_ref().and_then(|h| h.message_event(kind, m, at))
}

/// A change was stored: the sender of webhooks looks, the room hears `event` with `body`.
fn announce(io: &IoHandle, hooks: &Option<Arc<Hooks>>, room: &str, event: &str, body: Value) {
    if let Some(h) = hooks {
        h.stored();
    }
    io.of(NSP).to(&chat_room(room)).emit(event, &[body]);
}

/// `chat:edit {messageId, text}`: the author replaces the text (the rules of `chat:send`);
/// the room gets `chat:message-updated {id, roomId, text, editedAt}`.
fn edit(s: &mut SocketCtx<'_>, ev: Event, chat: &Chat) {
    let parsed = payload::object(&ev).and_then(|o| {
        let id = payload::id(o, "messageId")?.to_owned();
        let text = payload::text(o, "text", chat.cfg.max_chars)?;
        Ok((id, text, sender(s, chat)?))
    });
    let (id, text, user) = match parsed {
        Ok(p) => p,
        Err(e) => return reply::fail(s, ev.ack, &e),
    };
    let (db, io, hooks) = (chat.db.clone(), s.io_handle(), chat.hooks.clone());
    reply::answer_later(s, ev.ack, "chat:edit", async move {
        let at = now_ms();
        let hook = on_change(&hooks, MESSAGE_UPDATED, at);
        let changed = db
            .run(move |c| edits::edit(c, &id, &user, &text, at, &hook))
            .await??;
        let m = &changed.message;
        let body =
            json!({"id": m["id"], "roomId": changed.room_id, "text": m["text"], "editedAt": at});
        announce(
            &io,
            &hooks,
            &changed.room_id,
            events::CHAT_MESSAGE_UPDATED,
            body,
        );
        Ok(Value::Null)
    });
}

/// `chat:delete {messageId}`: the author, or a user whose stored role is admin.
fn delete(s: &mut SocketCtx<'_>, ev: Event, chat: &Chat) {
    let parsed = payload::object(&ev).and_then(|o| {
        let id = payload::id(o, "messageId")?.to_owned();
        Ok((id, sender(s, chat)?))
    });
    let (id, user) = match parsed {
        Ok(p) => p,
        Err(e) => return reply::fail(s, ev.ack, &e),
    };
    let (db, io, hooks) = (chat.db.clone(), s.io_handle(), chat.hooks.clone());
    reply::answer_later(s, ev.ack, "chat:delete", async move {
        delete_message(&db, &io, &hooks, id, user).await?;
        Ok(Value::Null)
    });
}

/// Deletes message `id` on behalf of `user` (its author, or an admin by stored role): the
/// room gets `chat:message-deleted {id, roomId, deletedAt}`.
pub(super) async fn delete_message(
    db: &Db,
    io: &IoHandle,
    hooks: &Option<Arc<Hooks>>,
    id: String,
    user: String,
) -> Result<Changed, AppError> {
    let at = now_ms();
    let hook = on_change(hooks, MESSAGE_DELETED, at);
    let changed = db
        .run(move |c| edits::delete(c, &id, &user, at, &hook))
        .await??;
    let body = json!({"id": changed.message["id"], "roomId": changed.room_id, "deletedAt": at});
    announce(
        io,
        hooks,
        &changed.room_id,
        events::CHAT_MESSAGE_DELETED,
        body,
    );
    Ok(changed)
}

/// An emoji: 1..=16 characters, no whitespace.
fn emoji(o: &serde_json::Map<String, Value>) -> Result<String, AppError> {
    let Some(Value::String(e)) = o.get("emoji") else {
        return Err(AppError::invalid("emoji (string) is required"));
    };
    let n = e.chars().take(EMOJI_MAX + 1).count();
    if n == 0 || n > EMOJI_MAX {
        return Err(AppError::invalid(format!(
            "emoji must be 1 to {EMOJI_MAX} characters"
        )));
    }
    if e.chars().any(char::is_whitespace) {
        return Err(AppError::invalid("emoji may not contain whitespace"));
    }
    Ok(e.clone())
}

/// `chat:react {messageId, emoji, on}`: the room gets `chat:reaction {messageId, roomId,
/// userId, emoji, on}` only when the state changed.
fn react(s: &mut SocketCtx<'_>, ev: Event, chat: &Chat) {
    let parsed = payload::object(&ev).and_then(|o| {
        let id = payload::id(o, "messageId")?.to_owned();
        let emoji = emoji(o)?;
        let on = o
            .get("on")
            .and_then(Value::as_bool)
            .ok_or_else(|| AppError::invalid("on (boolean) is required"))?;
        Ok((id, emoji, on, sender(s, chat)?))
    });
    let (id, emoji, on, user) = match parsed {
        Ok(p) => p,
        Err(e) => return reply::fail(s, ev.ack, &e),
    };
    let (db, io) = (chat.db.clone(), s.io_handle());
    reply::answer_later(s, ev.ack, "chat:react", async move {
        let (i, e, u) = (id.clone(), emoji.clone(), user.clone());
        let (room, changed) = db
            .run(move |c| edits::react(c, &i, &u, &e, on, now_ms()))
            .await??;
        if changed {
            io.of(NSP).to(&chat_room(&room)).emit(
                events::CHAT_REACTION,
                &[json!({"messageId": id, "roomId": room, "userId": user, "emoji": emoji, "on": on})],
            );
        }
        Ok(Value::Null)
    });
}

/// `rooms:list` → `{rooms: [{id, name, isPublic, memberCount, unread, lastMessage|null}]}`:
/// the rooms the user is a member of or has read in, newest last message first;
/// `memberCount` is the users in the room now, as `room:join` counts them.
fn list(s: &mut SocketCtx<'_>, ev: Event, chat: &Chat) {
    let taken = user_id(s)
        .ok_or_else(|| AppError::forbidden("not authenticated"))
        .and_then(|u| Ok((u, chat.syncs.take(s.id())?)));
    let (user, slot) = match taken {
        Ok(t) => t,
        Err(e) => return reply::fail(s, ev.ack, &e),
    };
    let (db, io, presence) = (chat.db.clone(), s.io_handle(), chat.presence.clone());
    reply::answer_later(s, ev.ack, "rooms:list", async move {
        let _slot = slot;
        let listed = db.run(move |c| edits::rooms_of(c, &user)).await?;
        let counts = futures_util::future::join_all(
            listed
                .iter()
                .map(|r| presence.count(&io, NSP, &r.id))
                .collect::<Vec<_>>(),
        )
        .await;
        let rooms: Vec<Value> = listed
            .into_iter()
            .zip(counts)
            .map(|(r, n)| {
                json!({
                    "id": r.id,
                    "name": r.name,
                    "isPublic": r.is_public,
                    "memberCount": n,
                    "unread": r.unread,
                    "lastMessage": r.last,
                })
            })
            .collect();
        Ok(json!({ "rooms": rooms }))
    });
}
