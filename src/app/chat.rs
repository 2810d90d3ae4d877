//! Namespace `/` (chat): `room:join` (permission, member-update with the count of distinct
//! users, history, ack), `room:leave`, `chat:send` (through the group-commit writer),
//! `chat:read`, typing with auto-stop, `room:sync`, product watching, and `left` with
//! `reason:"disconnect"` when a user's last socket in a room goes.
//!
//! Order of checks for every event: payload shape → text rules → referenced things exist →
//! permission (docs/events.md).

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use super::error::AppError;
use super::events;
use super::limits::{SyncSlots, UserSends};
use super::names::{self, chat_room, CHAT as NSP};
use super::payload;
use super::presence::Presence;
use super::reply;
use super::session_auth::user_id;
use super::writer::{MessageWriter, Pending, Rejected, Reply};
use crate::config::ChatConfig;
use crate::db::messages::{self, NewMessage, Refusal};
use crate::db::{products, rooms, Db};
use crate::socketio::bus::{PresenceChange, PresenceOp};
use crate::socketio::{Event, IoHandle, Namespace, SocketCtx};

/// Most users in `room:join`'s `online` list.
const ONLINE_MAX: usize = 500;

/// What the chat handlers share.
pub struct Chat {
    pub db: Db,
    pub presence: Presence,
    pub writer: MessageWriter,
    pub cfg: ChatConfig,
    /// `chat:send` and DMs per user.
    pub sends: UserSends,
    /// `room:sync` answers in preparation per socket.
    pub syncs: SyncSlots,
    /// Undelivered DMs one user may have waiting.
    pub max_pending_dms: u64,
    /// The byte budget of a connection (DM pages stay well within it).
    pub max_queued_bytes: usize,
    /// Outbound webhooks, when they are on.
    pub hooks: Option<Arc<super::outbound::Hooks>>,
}

/// The chat rooms this socket is in.
fn chat_rooms(s: &SocketCtx<'_>) -> Vec<String> {
    s.rooms()
        .filter_map(names::chat_room_id)
        .map(str::to_owned)
        .collect()
}

fn joined(s: &SocketCtx<'_>, room: &str) -> bool {
    let r = chat_room(room);
    s.rooms().any(|x| x == r)
}

/// The socket's user (every socket of `/` has one).
fn user(s: &SocketCtx<'_>) -> Result<String, AppError> {
    user_id(s).ok_or_else(|| AppError::forbidden("not authenticated"))
}

/// Runs a database check that may refuse, on the database threads.
async fn checked<T: Send + 'static>(
    db: &Db,
    f: impl FnOnce(&mut crate::db::DbConnection) -> Result<Result<T, Refusal>, crate::db::DbError>
        + Send
        + 'static,
) -> Result<T, AppError> {
    Ok(db.run(f).await??)
}

/// Counts the socket's user out of (`Leave`) or back into (`Join`) all its chat rooms,
/// telling each room when that was the user's last socket out or first one in.
fn recount(s: &SocketCtx<'_>, presence: &Presence, op: PresenceOp) {
    let Some(user) = user_id(s) else {
        return;
    };
    let io = s.io_handle();
    for room in chat_rooms(s) {
        let (io, user) = (io.clone(), user.clone());
        let update = presence.step(&io, NSP, &room, &user, s.id(), op);
        actix_rt::spawn(async move {
            let p = update.await;
            match p.change {
                PresenceChange::Arrived => {
                    member_update(&io, &room, "joined", &user, p.count, None, None)
                }
                PresenceChange::Departed => {
                    member_update(&io, &room, "left", &user, p.count, Some("disconnect"), None)
                }
                PresenceChange::Unchanged => {}
            }
        });
    }
}

/// Adds the chat handlers to `ns`.
pub fn handlers(ns: Namespace, chat: Arc<Chat>) -> Namespace {
    let on = |f: fn(&mut SocketCtx<'_>, Event, &Chat)| {
        let chat = chat.clone();
        move |s: &mut SocketCtx<'_>, ev: Event| f(s, ev, &chat)
    };
    let (p1, p2, p3) = (
        chat.presence.clone(),
        chat.presence.clone(),
        chat.presence.clone(),
    );
    ns.on(events::ROOM_JOIN, on(join))
        .on(events::ROOM_LEAVE, on(leave))
        .on(events::CHAT_SEND, on(send))
        .on(events::CHAT_READ, on(read))
        .on(
            events::CHAT_TYPING_START,
            on(|s, ev, c| typing(s, ev, true, c)),
        )
        .on(
            events::CHAT_TYPING_STOP,
            on(|s, ev, c| typing(s, ev, false, c)),
        )
        .on(events::ROOM_SYNC, on(sync))
        .on(events::PRODUCT_WATCH, on(|s, ev, c| watch(s, ev, true, c)))
        .on(
            events::PRODUCT_UNWATCH,
            on(|s, ev, c| watch(s, ev, false, c)),
        )
        .on_command(super::live::ROOM_ACCESS, move |s, args| {
            enforce_access(s, args, &p3)
        })
        .on_connect(move |s| {
            // A recovered socket is back in its rooms: count it in again.
            if s.recovered() {
                recount(s, &p1, PresenceOp::Join);
            }
        })
        .on_disconnect(move |s, _reason| {
            for room in chat_rooms(s) {
                stop_typing(s, &room);
            }
            recount(s, &p2, PresenceOp::Leave)
        })
}

/// `room:member-update` to the room, except `except` (a socket id); `reason` for a leave
/// the user did not ask for (`disconnect`, `removed`).
fn member_update(
    io: &IoHandle,
    room: &str,
    kind: &str,
    user: &str,
    count: usize,
    reason: Option<&str>,
    except: Option<&str>,
) {
    let mut payload = json!({"type": kind, "userId": user, "roomId": room, "memberCount": count});
    if let Some(reason) = reason {
        payload["reason"] = json!(reason);
    }
    let mut op = io.of(NSP).to(&chat_room(room));
    if let Some(id) = except {
        op = op.except(id);
    }
    op.emit(events::ROOM_MEMBER_UPDATE, &[payload]);
}

fn join(s: &mut SocketCtx<'_>, ev: Event, chat: &Chat) {
    let parsed = payload::room_id(&ev).and_then(|room| Ok((room, user(s)?)));
    let (room, user) = match parsed {
        Ok(p) => p,
        Err(e) => return reply::fail(s, ev.ack, &e),
    };
    let (db, history_len, presence) = (chat.db.clone(), chat.cfg.history, chat.presence.clone());
    let (mut h, ack) = (s.handle(), ev.ack);
    let (db2, presence2) = (db.clone(), presence.clone());
    actix_rt::spawn(async move {
        let (r, u) = (room.clone(), user.clone());
        let checked = checked(&db, move |c| match messages::readable(c, &r, &u)? {
            Ok(()) => {
                let history = messages::history(c, &r, history_len)?;
                // a private room's online list is drawn from its members
                let private = rooms::find(c, &r)?.is_some_and(|room| !room.is_public);
                let members = if private {
                    Some(rooms::members(c, &r)?)
                } else {
                    None
                };
                Ok(Ok((history, members)))
            }
            Err(refusal) => Ok(Err(refusal)),
        })
        .await;
        let ((history, has_more), members) = match checked {
            Ok(h) => h,
            Err(e) => return reply::answer(&mut h, ack, "room:join", Err(e)),
        };
        // Joined and counted in the socket's own context: a socket gone meanwhile is not
        // counted (its disconnect already ran), and a socket counted is in the room, so its
        // disconnect counts it out. Counting is per socket: a second join changes nothing.
        h.run(move |s| {
            s.join(&chat_room(&room));
            let (mut h, io) = (s.handle(), s.io_handle());
            let update = presence.join(&io, NSP, &room, &user, s.id());
            actix_rt::spawn(async move {
                let p = update.await;
                let online = presence
                    .online_in(&io, &room, members, ONLINE_MAX)
                    .await;
                if p.change == PresenceChange::Arrived {
                    // Others through the room; the joiner directly (its join is done).
                    member_update(&io, &room, "joined", &user, p.count, None, Some(h.id()));
                    h.emit(
                        events::ROOM_MEMBER_UPDATE,
                        vec![json!({"type": "joined", "userId": user, "roomId": room, "memberCount": p.count})],
                    );
                }
                h.emit(
                    events::ROOM_HISTORY,
                    vec![json!({"roomId": room, "messages": history, "hasMore": has_more})],
                );
                reply::ok(
                    &mut h,
                    ack,
                    json!({"roomId": room, "memberCount": p.count, "online": online}),
                );
                // A directory change may have landed between the check above and the join
                // (its removal then found this socket not yet in the room): look again.
                let (r, u) = (room.clone(), user.clone());
                if let Ok(Err(_)) = db2.run(move |c| messages::readable(c, &r, &u)).await {
                    h.run(move |s| {
                        if joined(s, &room) {
                            take_out(s, &room, &user, &presence2);
                        }
                    });
                }
            });
        });
    });
}

/// The directory closed a room to everyone but `members` (`{roomId, members}`, see
/// [`super::live`]): a socket of another user in it is taken out, told with exactly
/// `room:removed {roomId}`, and the room hears `left` with reason `removed` when it was the
/// user's last socket there.
fn enforce_access(s: &mut SocketCtx<'_>, args: &Value, presence: &Presence) {
    let (Some(room), Some(user)) = (args["roomId"].as_str(), user_id(s)) else {
        return;
    };
    let allowed = args["members"]
        .as_array()
        .is_some_and(|m| m.iter().any(|v| v.as_str() == Some(user.as_str())));
    if allowed || !joined(s, room) {
        return;
    }
    take_out(s, room, &user, presence);
}

/// Takes this socket out of `room` because the directory no longer lets `user` in.
fn take_out(s: &mut SocketCtx<'_>, room: &str, user: &str, presence: &Presence) {
    let (room, user) = (room.to_owned(), user.to_owned());
    stop_typing(s, &room);
    s.leave(&chat_room(&room));
    s.emit(events::ROOM_REMOVED, &[json!({"roomId": room})]);
    log::info!(
        "removed socket id={} user={user} from room={room} (directory)",
        s.id()
    );
    let io = s.io_handle();
    let update = presence.leave(&io, NSP, &room, &user, s.id());
    actix_rt::spawn(async move {
        let p = update.await;
        if p.change == PresenceChange::Departed {
            member_update(&io, &room, "left", &user, p.count, Some("removed"), None);
        }
    });
}

fn leave(s: &mut SocketCtx<'_>, ev: Event, chat: &Chat) {
    let parsed = payload::room_id(&ev).and_then(|room| Ok((room, user(s)?)));
    let (room, user) = match parsed {
        Ok(p) => p,
        Err(e) => return reply::fail(s, ev.ack, &e),
    };
    if !joined(s, &room) {
        return reply::ok(s, ev.ack, json!({"roomId": room}));
    }
    stop_typing(s, &room);
    s.leave(&chat_room(&room));
    let (mut h, io, ack) = (s.handle(), s.io_handle(), ev.ack);
    let update = chat.presence.leave(&io, NSP, &room, &user, s.id());
    actix_rt::spawn(async move {
        let p = update.await;
        if p.change == PresenceChange::Departed {
            member_update(&io, &room, "left", &user, p.count, None, None);
        }
        reply::ok(&mut h, ack, json!({"roomId": room, "memberCount": p.count}));
    });
}

/// `chat:send {roomId, text, replyToId?, clientMsgId?}`: checked here for shape and text,
/// then stored, broadcast and acked by the writer.
fn send(s: &mut SocketCtx<'_>, ev: Event, chat: &Chat) {
    let parsed = (|| -> Result<NewMessage, AppError> {
        let o = payload::object(&ev)?;
        let room = payload::id(o, "roomId")?;
        let reply_to = payload::opt_id(o, "replyToId")?;
        let client_msg_id = payload::opt_id(o, "clientMsgId")?;
        let text = payload::text(o, "text", chat.cfg.max_chars)?;
        Ok(NewMessage {
            room_id: room.to_owned(),
            sender_id: user(s)?,
            text,
            reply_to_id: reply_to.map(str::to_owned),
            client_msg_id: client_msg_id.map(str::to_owned),
            joined: joined(s, room),
        })
    })();
    let msg = match parsed.and_then(|m| chat.sends.check(&m.sender_id).map(|()| m)) {
        Ok(m) => m,
        Err(e) => return reply::fail(s, ev.ack, &e),
    };
    let p = Pending {
        room: chat_room(&msg.room_id),
        msg,
        reply: Reply::Socket {
            from: s.handle(),
            ack: ev.ack,
        },
        io: s.io_handle(),
    };
    let refused = match chat.writer.submit(p) {
        Ok(()) => return,
        Err(Rejected::Busy) => AppError::Busy("server busy, retry with the same clientMsgId"),
        Err(Rejected::Gone) => AppError::Internal("message writer stopped"),
        Err(Rejected::Draining) => {
            AppError::Busy("server shutting down, retry with the same clientMsgId")
        }
    };
    reply::fail(s, ev.ack, &refused);
}

/// `chat:read {roomId, lastReadMessageId}`: the marker only moves forward; others in the room
/// get a receipt when it moved.
fn read(s: &mut SocketCtx<'_>, ev: Event, chat: &Chat) {
    let parsed = payload::object(&ev).and_then(|o| {
        Ok((
            payload::id(o, "roomId")?.to_owned(),
            payload::id(o, "lastReadMessageId")?.to_owned(),
            user(s)?,
        ))
    });
    let (room, msg_id, user) = match parsed {
        Ok(p) => p,
        Err(e) => return reply::fail(s, ev.ack, &e),
    };
    let is_in = joined(s, &room);
    let (me, io, db) = (s.id().to_owned(), s.io_handle(), chat.db.clone());
    reply::answer_later(s, ev.ack, "chat:read", async move {
        let at = crate::db::now_ms();
        let (r, u, m) = (room.clone(), user.clone(), msg_id.clone());
        let moved = checked(&db, move |c| messages::mark_read(c, &r, &u, &m, is_in, at)).await?;
        if moved {
            io.of(NSP).to(&chat_room(&room)).except(&me).emit(
                events::CHAT_READ_RECEIPT,
                &[json!({"userId": user, "roomId": room, "lastReadMessageId": msg_id, "timestamp": at})],
            );
        }
        Ok(Value::Null)
    });
}

fn typing_timer(room: &str) -> String {
    format!("typing:{room}")
}

/// Ends this socket's typing indicator in `room`, if it is on.
fn stop_typing(s: &mut SocketCtx<'_>, room: &str) {
    let name = typing_timer(room);
    if !s.has_timer(&name) {
        return;
    }
    s.cancel_timer(&name);
    typing_event(s, room, events::CHAT_USER_STOPPED_TYPING);
}

fn typing_event(s: &SocketCtx<'_>, room: &str, event: &str) {
    let Some(user) = user_id(s) else { return };
    s.to(&chat_room(room))
        .emit(event, &[json!({"userId": user, "roomId": room})]);
}

/// `chat:typing-start` / `chat:typing-stop {roomId}`: others hear it once per start (repeated
/// starts only push the auto-stop back).
fn typing(s: &mut SocketCtx<'_>, ev: Event, start: bool, chat: &Chat) {
    let room = match payload::object(&ev).and_then(|o| payload::id(o, "roomId")) {
        Ok(r) => r.to_owned(),
        Err(e) => return reply::fail(s, ev.ack, &e),
    };
    if !joined(s, &room) {
        // Unknown room (NOT_FOUND) or not joined (FORBIDDEN): ask the database which.
        let db = chat.db.clone();
        return reply::answer_later(s, ev.ack, "typing", async move {
            let refusal = match db.run(move |c| rooms::find(c, &room)).await? {
                None => Refusal::UnknownRoom,
                Some(_) => Refusal::NotJoined,
            };
            Err(refusal.into())
        });
    }
    if start {
        let name = typing_timer(&room);
        if !s.has_timer(&name) {
            typing_event(s, &room, events::CHAT_USER_TYPING);
        }
        let after = Duration::from_millis(chat.cfg.typing_ms);
        let r = room.clone();
        s.set_timer(name, after, move |s| {
            typing_event(s, &r, events::CHAT_USER_STOPPED_TYPING)
        });
    } else {
        stop_typing(s, &room);
    }
    reply::ok(s, ev.ack, Value::Null);
}

/// `room:sync {roomId, afterMessageId?}`: the messages after that one (from the start
/// without it), oldest first, at most `sync_limit`, and `hasMore`.
fn sync(s: &mut SocketCtx<'_>, ev: Event, chat: &Chat) {
    let parsed = payload::object(&ev).and_then(|o| {
        Ok((
            payload::id(o, "roomId")?.to_owned(),
            payload::opt_id(o, "afterMessageId")?.map(str::to_owned),
            user(s)?,
        ))
    });
    let taken = parsed.and_then(|p| Ok((p, chat.syncs.take(s.id())?)));
    let ((room, after, user), slot) = match taken {
        Ok(p) => p,
        Err(e) => return reply::fail(s, ev.ack, &e),
    };
    let (db, limit) = (chat.db.clone(), chat.cfg.sync_limit);
    reply::answer_later(s, ev.ack, "room:sync", async move {
        let _slot = slot;
        let (items, more) = checked(&db, move |c| {
            messages::since(c, &room, &user, after.as_deref(), limit)
        })
        .await?;
        Ok(json!({"messages": items, "hasMore": more}))
    });
}

/// `product:watch` / `product:unwatch {productId}`.
fn watch(s: &mut SocketCtx<'_>, ev: Event, on: bool, chat: &Chat) {
    let parsed = payload::object(&ev)
        .and_then(|o| payload::id(o, "productId"))
        .map(str::to_owned)
        .and_then(|p| Ok((p, user(s)?)));
    let (product, user) = match parsed {
        Ok(p) => p,
        Err(e) => return reply::fail(s, ev.ack, &e),
    };
    let db = chat.db.clone();
    reply::answer_later(s, ev.ack, "product watch", async move {
        db.run(move |c| {
            if on {
                products::watch(c, &user, &product)
            } else {
                products::unwatch(c, &user, &product)
            }
        })
        .await?;
        Ok(Value::Null)
    });
}
