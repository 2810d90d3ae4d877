//! Namespace `/` (chat): `room:join` (permission, member-update with the count of distinct
//! users, history, ack), `room:leave`, `chat:send` (through the group-commit writer),
//! `chat:read`, typing with auto-stop, `room:sync`, product watching, and `left` with
//! `reason:"disconnect"` when a user's last socket in a room goes.
//!
//! Order of checks for every event: payload shape → text rules → referenced things exist →
//! permission (DESIGN section 9).

use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use super::events;
use super::payload::{self, Bad};
use super::presence::Presence;
use super::reply::{self, Code};
use super::session_auth::user_id;
use super::writer::{self, MessageWriter, Pending, Rejected};
use crate::config::ChatConfig;
use crate::db::messages::{self, NewMessage, Refusal};
use crate::db::{products, rooms, Db};
use crate::socketio::bus::{PresenceChange, PresenceOp};
use crate::socketio::{Event, IoHandle, Namespace, SocketCtx};

pub const NSP: &str = "/";

/// What the chat handlers share.
pub struct Chat {
    pub db: Db,
    pub presence: Presence,
    pub writer: MessageWriter,
    pub cfg: ChatConfig,
}

/// Prefix of the Socket.IO rooms that are chat rooms (apart from `user:{id}` rooms).
const ROOM_PREFIX: &str = "room:";

/// The Socket.IO room of chat room `id`.
fn sio_room(id: &str) -> String {
    format!("{ROOM_PREFIX}{id}")
}

/// The chat rooms this socket is in.
fn chat_rooms(s: &SocketCtx<'_>) -> Vec<String> {
    s.rooms()
        .filter_map(|r| r.strip_prefix(ROOM_PREFIX))
        .map(str::to_owned)
        .collect()
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
                    member_update(&io, &room, "joined", &user, p.count, false, None)
                }
                PresenceChange::Departed => {
                    member_update(&io, &room, "left", &user, p.count, true, None)
                }
                PresenceChange::Unchanged => {}
            }
        });
    }
}

/// The room id and user of a `room:join`/`room:leave`, or the failure already answered.
fn room_and_user(s: &mut SocketCtx<'_>, ev: &Event) -> Option<(String, String)> {
    let Some(room) = room_id(ev) else {
        reply::fail(
            s,
            ev.ack,
            Code::InvalidPayload,
            "roomId (string) is required",
        );
        return None;
    };
    let Some(user) = user_id(s) else {
        reply::fail(s, ev.ack, Code::Forbidden, "not authenticated");
        return None;
    };
    Some((room, user))
}

/// `roomId` or `{roomId}`.
fn room_id(ev: &Event) -> Option<String> {
    match ev.args.first() {
        Some(Value::String(s)) if !s.is_empty() => Some(s.clone()),
        Some(Value::Object(o)) => o
            .get("roomId")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(str::to_owned),
        _ => None,
    }
}

/// Adds the chat handlers to `ns`.
pub fn handlers(ns: Namespace, chat: Arc<Chat>) -> Namespace {
    let (p1, p2, presence) = (
        chat.presence.clone(),
        chat.presence.clone(),
        chat.presence.clone(),
    );
    let (c1, c2, c3, c4, c5, c6, c7) = (
        chat.clone(),
        chat.clone(),
        chat.clone(),
        chat.clone(),
        chat.clone(),
        chat.clone(),
        chat.clone(),
    );
    ns.on(events::ROOM_JOIN, move |s, ev| join(s, ev, &c1))
        .on(events::ROOM_LEAVE, move |s, ev| leave(s, ev, &p1))
        .on(events::CHAT_SEND, move |s, ev| send(s, ev, &c2))
        .on(events::CHAT_READ, move |s, ev| read(s, ev, &c3))
        .on(events::CHAT_TYPING_START, move |s, ev| {
            typing(s, ev, true, &c4)
        })
        .on(events::CHAT_TYPING_STOP, move |s, ev| {
            typing(s, ev, false, &c5)
        })
        .on(events::ROOM_SYNC, move |s, ev| sync(s, ev, &c6))
        .on(events::PRODUCT_WATCH, move |s, ev| watch(s, ev, true, &c7))
        .on(events::PRODUCT_UNWATCH, move |s, ev| {
            watch(s, ev, false, &chat)
        })
        .on_connect(move |s| {
            // A recovered socket is back in its rooms: count it in again.
            if s.recovered() {
                recount(s, &p2, PresenceOp::Join);
            }
        })
        .on_disconnect(move |s, _reason| {
            for room in chat_rooms(s) {
                stop_typing(s, &room);
            }
            recount(s, &presence, PresenceOp::Leave)
        })
}

/// `room:member-update` to the room, except `except` (a socket id).
fn member_update(
    io: &IoHandle,
    room: &str,
    kind: &str,
    user: &str,
    count: usize,
    disconnect: bool,
    except: Option<&str>,
) {
    let mut payload = json!({"type": kind, "userId": user, "roomId": room, "memberCount": count});
    if disconnect {
        payload["reason"] = json!("disconnect");
    }
    let mut op = io.of(NSP).to(&sio_room(room));
    if let Some(id) = except {
        op = op.except(id);
    }
    op.emit(events::ROOM_MEMBER_UPDATE, &[payload]);
}

fn join(s: &mut SocketCtx<'_>, ev: Event, chat: &Chat) {
    let (db, history_len) = (chat.db.clone(), chat.cfg.history);
    let presence = chat.presence.clone();
    let Some((room, user)) = room_and_user(s, &ev) else {
        return;
    };
    let (h, ack) = (s.handle(), ev.ack);
    actix_rt::spawn(async move {
        let (r, u) = (room.clone(), user.clone());
        let checked = db
            .run(move |c| match messages::readable(c, &r, &u)? {
                Ok(()) => Ok(Ok(messages::history(c, &r, history_len)?)),
                Err(refusal) => Ok(Err(refusal)),
            })
            .await;
        let (history, has_more) = match checked {
            Ok(Ok(h)) => h,
            Ok(Err(r)) => return refused_later(&h, ack, r),
            Err(e) => {
                log::error!("room:join failed room={room} err={e}");
                return reply::fail_later(&h, ack, Code::Internal, "internal error");
            }
        };
        // Joined and counted in the socket's own context: a socket gone meanwhile is not
        // counted (its disconnect already ran), and a socket counted is in the room, so its
        // disconnect counts it out. Counting is per socket: a second join changes nothing.
        h.run(move |s| {
            s.join(&sio_room(&room));
            let (h, io) = (s.handle(), s.io_handle());
            let update = presence.join(&io, NSP, &room, &user, s.id());
            actix_rt::spawn(async move {
                let p = update.await;
                if p.change == PresenceChange::Arrived {
                    // Others through the room; the joiner directly (its join is done).
                    member_update(&io, &room, "joined", &user, p.count, false, Some(h.id()));
                    h.emit(
                        events::ROOM_MEMBER_UPDATE,
                        vec![json!({"type": "joined", "userId": user, "roomId": room, "memberCount": p.count})],
                    );
                }
                h.emit(
                    events::ROOM_HISTORY,
                    vec![json!({"roomId": room, "messages": history, "hasMore": has_more})],
                );
                if let Some(ack) = ack {
                    h.ack(
                        ack,
                        vec![json!({"success": true, "roomId": room, "memberCount": p.count})],
                    );
                }
            });
        });
    });
}

fn leave(s: &mut SocketCtx<'_>, ev: Event, presence: &Presence) {
    let Some((room, user)) = room_and_user(s, &ev) else {
        return;
    };
    let joined = s.rooms().any(|r| r == sio_room(&room));
    if !joined {
        return reply::ok(s, ev.ack, json!({"roomId": room}));
    }
    stop_typing(s, &room);
    s.leave(&sio_room(&room));
    let (h, io, ack) = (s.handle(), s.io_handle(), ev.ack);
    let update = presence.leave(&io, NSP, &room, &user, s.id());
    actix_rt::spawn(async move {
        let p = update.await;
        if p.change == PresenceChange::Departed {
            member_update(&io, &room, "left", &user, p.count, false, None);
        }
        if let Some(ack) = ack {
            h.ack(
                ack,
                vec![json!({"success": true, "roomId": room, "memberCount": p.count})],
            );
        }
    });
}

/// Answers a refused payload.
fn refuse(s: &mut SocketCtx<'_>, ack: Option<crate::socketio::AckId>, (code, msg): Bad) {
    reply::fail(s, ack, code, &msg);
}

fn joined(s: &SocketCtx<'_>, room: &str) -> bool {
    let r = sio_room(room);
    s.rooms().any(|x| x == r)
}

/// `chat:send {roomId, text, replyToId?, clientMsgId?}`: checked here for shape and text,
/// then stored, broadcast and acked by the writer.
fn send(s: &mut SocketCtx<'_>, ev: Event, chat: &Chat) {
    let parsed = (|| -> Result<NewMessage, Bad> {
        let o = payload::object(&ev)?;
        let room = payload::id(o, "roomId")?;
        let reply_to = payload::opt_id(o, "replyToId")?;
        let client_msg_id = payload::opt_id(o, "clientMsgId")?;
        let text = payload::text(o, "text", chat.cfg.max_chars)?;
        Ok(NewMessage {
            room_id: room.to_owned(),
            sender_id: String::new(),
            text,
            reply_to_id: reply_to.map(str::to_owned),
            client_msg_id: client_msg_id.map(str::to_owned),
            joined: false,
        })
    })();
    let mut msg = match parsed {
        Ok(m) => m,
        Err(bad) => return refuse(s, ev.ack, bad),
    };
    let Some(user) = user_id(s) else {
        return reply::fail(s, ev.ack, Code::Forbidden, "not authenticated");
    };
    msg.sender_id = user;
    msg.joined = joined(s, &msg.room_id);
    let p = Pending {
        room: sio_room(&msg.room_id),
        msg,
        from: s.handle(),
        ack: ev.ack,
        io: s.io_handle(),
    };
    match chat.writer.submit(p) {
        Ok(()) => {}
        Err(Rejected::Busy) => reply::fail(
            s,
            ev.ack,
            Code::RateLimited,
            "server busy, retry with the same clientMsgId",
        ),
        Err(Rejected::Gone) => reply::fail(s, ev.ack, Code::Internal, "server shutting down"),
    }
}

/// Answers a refusal found in the database, after the handler returned.
fn refused_later(
    h: &crate::socketio::SocketHandle,
    ack: Option<crate::socketio::AckId>,
    r: Refusal,
) {
    let (code, why) = writer::refusal(r);
    reply::fail_later(h, ack, code, why);
}

/// `chat:read {roomId, lastReadMessageId}`: the marker only moves forward; others in the room
/// get a receipt when it moved.
fn read(s: &mut SocketCtx<'_>, ev: Event, chat: &Chat) {
    let parsed = payload::object(&ev).and_then(|o| {
        Ok((
            payload::id(o, "roomId")?.to_owned(),
            payload::id(o, "lastReadMessageId")?.to_owned(),
        ))
    });
    let (room, msg_id) = match parsed {
        Ok(p) => p,
        Err(bad) => return refuse(s, ev.ack, bad),
    };
    let Some(user) = user_id(s) else {
        return reply::fail(s, ev.ack, Code::Forbidden, "not authenticated");
    };
    let is_in = joined(s, &room);
    let (h, io, ack, db) = (s.handle(), s.io_handle(), ev.ack, chat.db.clone());
    actix_rt::spawn(async move {
        let at = crate::db::now_ms();
        let (r, u, m) = (room.clone(), user.clone(), msg_id.clone());
        match db
            .run(move |c| messages::mark_read(c, &r, &u, &m, is_in, at))
            .await
        {
            Ok(Ok(moved)) => {
                if moved {
                    io.of(NSP).to(&sio_room(&room)).except(h.id()).emit(
                        events::CHAT_READ_RECEIPT,
                        &[json!({"userId": user, "roomId": room, "lastReadMessageId": msg_id, "timestamp": at})],
                    );
                }
                if let Some(ack) = ack {
                    h.ack(ack, vec![json!({"success": true})]);
                }
            }
            Ok(Err(r)) => refused_later(&h, ack, r),
            Err(e) => {
                log::error!("chat:read failed room={room} err={e}");
                reply::fail_later(&h, ack, Code::Internal, "internal error");
            }
        }
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
    s.to(&sio_room(room))
        .except(s.id())
        .emit(event, &[json!({"userId": user, "roomId": room})]);
}

/// `chat:typing-start` / `chat:typing-stop {roomId}`: others hear it once per start (repeated
/// starts only push the auto-stop back).
fn typing(s: &mut SocketCtx<'_>, ev: Event, start: bool, chat: &Chat) {
    let room = match payload::object(&ev).and_then(|o| payload::id(o, "roomId")) {
        Ok(r) => r.to_owned(),
        Err(bad) => return refuse(s, ev.ack, bad),
    };
    if !joined(s, &room) {
        // Unknown room (NOT_FOUND) or not joined (FORBIDDEN): ask the database which.
        let (h, ack, db) = (s.handle(), ev.ack, chat.db.clone());
        actix_rt::spawn(async move {
            let r = room.clone();
            let refusal = match db.run(move |c| rooms::find(c, &r)).await {
                Ok(None) => Refusal::UnknownRoom,
                Ok(Some(_)) => Refusal::NotJoined,
                Err(e) => {
                    log::error!("typing check failed room={room} err={e}");
                    return reply::fail_later(&h, ack, Code::Internal, "internal error");
                }
            };
            refused_later(&h, ack, refusal);
        });
        return;
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
        ))
    });
    let (room, after) = match parsed {
        Ok(p) => p,
        Err(bad) => return refuse(s, ev.ack, bad),
    };
    let Some(user) = user_id(s) else {
        return reply::fail(s, ev.ack, Code::Forbidden, "not authenticated");
    };
    let (h, ack, db, limit) = (s.handle(), ev.ack, chat.db.clone(), chat.cfg.sync_limit);
    actix_rt::spawn(async move {
        let r = room.clone();
        match db
            .run(move |c| messages::since(c, &r, &user, after.as_deref(), limit))
            .await
        {
            Ok(Ok((items, more))) => {
                if let Some(ack) = ack {
                    h.ack(
                        ack,
                        vec![json!({"success": true, "messages": items, "hasMore": more})],
                    );
                }
            }
            Ok(Err(r)) => refused_later(&h, ack, r),
            Err(e) => {
                log::error!("room:sync failed room={room} err={e}");
                reply::fail_later(&h, ack, Code::Internal, "internal error");
            }
        }
    });
}

/// `product:watch` / `product:unwatch {productId}`.
fn watch(s: &mut SocketCtx<'_>, ev: Event, on: bool, chat: &Chat) {
    let product = match payload::object(&ev).and_then(|o| payload::id(o, "productId")) {
        Ok(p) => p.to_owned(),
        Err(bad) => return refuse(s, ev.ack, bad),
    };
    let Some(user) = user_id(s) else {
        return reply::fail(s, ev.ack, Code::Forbidden, "not authenticated");
    };
    let (h, ack, db) = (s.handle(), ev.ack, chat.db.clone());
    actix_rt::spawn(async move {
        let p = product.clone();
        let done = db
            .run(move |c| {
                if on {
                    products::watch(c, &user, &p)
                } else {
                    products::unwatch(c, &user, &p)
                }
            })
            .await;
        match done {
            Ok(()) => {
                if let Some(ack) = ack {
                    h.ack(ack, vec![json!({"success": true})]);
                }
            }
            Err(e) => {
                log::error!("product watch failed product={product} err={e}");
                reply::fail_later(&h, ack, Code::Internal, "internal error");
            }
        }
    });
}
