//! Namespace `/` (chat): rooms so far — `room:join` (permission, member-update with the
//! count of distinct users, history, ack), `room:leave`, and `left` with
//! `reason:"disconnect"` when a user's last socket in a room goes.

use serde_json::{json, Value};

use super::events;
use super::reply::{self, Code};
use crate::auth::Identity;
use crate::db::{messages, rooms, Db, DbError};
use crate::socketio::{Event, IoHandle, Namespace, SocketCtx};

/// Messages a joiner gets as history.
const HISTORY: i64 = 50;
const NSP: &str = "/";

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

/// Counts the socket's user out of (`delta` -1) or back into (1) all its chat rooms, telling
/// each room when that was the user's last socket out or first one in.
fn recount(s: &SocketCtx<'_>, delta: i8) {
    let Some(user) = s.data::<Identity>().map(|i| i.user_id.clone()) else {
        return;
    };
    let io = s.io_handle();
    for room in chat_rooms(s) {
        let (io, user) = (io.clone(), user.clone());
        actix_rt::spawn(async move {
            let p = io.presence(NSP, &room, &user, delta).await;
            if p.changed {
                let (kind, disconnect) = if delta > 0 {
                    ("joined", false)
                } else {
                    ("left", true)
                };
                member_update(&io, &room, kind, &user, p.count, disconnect, None);
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
    let Some(user) = s.data::<Identity>().map(|i| i.user_id.clone()) else {
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
pub fn handlers(ns: Namespace, db: Db) -> Namespace {
    ns.on(events::ROOM_JOIN, move |s, ev| join(s, ev, db.clone()))
        .on(events::ROOM_LEAVE, leave)
        .on_disconnect(|s, _reason| recount(s, -1))
}

/// A recovered socket is back in its rooms: count it in again.
pub fn on_recovered(s: &mut SocketCtx<'_>) {
    recount(s, 1);
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

/// Why a join was refused.
enum Refused {
    NotFound,
    Forbidden,
}

fn join(s: &mut SocketCtx<'_>, ev: Event, db: Db) {
    let Some((room, user)) = room_and_user(s, &ev) else {
        return;
    };
    // A socket already in the room is not counted twice.
    let already = s.rooms().any(|r| r == sio_room(&room));
    let (h, io, ack) = (s.handle(), s.io_handle(), ev.ack);
    actix_rt::spawn(async move {
        let (r, u) = (room.clone(), user.clone());
        let checked = db
            .run(
                move |c| -> Result<Result<(Vec<Value>, bool), Refused>, DbError> {
                    let Some(found) = rooms::find(c, &r)? else {
                        return Ok(Err(Refused::NotFound));
                    };
                    if !found.is_public && !rooms::is_member(c, &r, &u)? {
                        return Ok(Err(Refused::Forbidden));
                    }
                    Ok(Ok(messages::history(c, &r, HISTORY)?))
                },
            )
            .await;
        let (history, has_more) = match checked {
            Ok(Ok(h)) => h,
            Ok(Err(Refused::NotFound)) => {
                return reply::fail_later(&h, ack, Code::NotFound, "unknown room")
            }
            Ok(Err(Refused::Forbidden)) => {
                return reply::fail_later(
                    &h,
                    ack,
                    Code::Forbidden,
                    "not a member of this private room",
                )
            }
            Err(e) => {
                log::error!("room:join failed room={room} err={e}");
                return reply::fail_later(&h, ack, Code::Internal, "internal error");
            }
        };
        h.join(&sio_room(&room));
        let p = io
            .presence(NSP, &room, &user, if already { 0 } else { 1 })
            .await;
        if p.changed {
            // Others through the room; the joiner directly, after its join (same mailbox).
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
}

fn leave(s: &mut SocketCtx<'_>, ev: Event) {
    let Some((room, user)) = room_and_user(s, &ev) else {
        return;
    };
    let joined = s.rooms().any(|r| r == sio_room(&room));
    if !joined {
        return reply::ok(s, ev.ack, json!({"roomId": room}));
    }
    s.leave(&sio_room(&room));
    let (h, io, ack) = (s.handle(), s.io_handle(), ev.ack);
    actix_rt::spawn(async move {
        let p = io.presence(NSP, &room, &user, -1).await;
        if p.changed {
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
