//! Namespace `/admin` (stored role admin only; others get `connect_error` `FORBIDDEN`):
//! `broadcast:all`, `admin:stats`, `admin:rooms`, `admin:announce`, `admin:disconnect-user`,
//! `admin:messages`, `admin:delete-message`, `admin:users`, `admin:user-update`,
//! `admin:room-members`, `admin:sockets`, `admin:disconnect-socket`.

use std::sync::Arc;

use serde_json::{json, Value};

use super::chat::Chat;
use super::error::AppError;
use super::events;
use super::names;
use super::payload;
use super::presence::Presence;
use super::reply;
use super::session_auth::user_id;
use crate::config::ChatConfig;
use crate::db::{edits, now_ms, rooms, Db};
use crate::socketio::{Event, FetchQuery, Namespace, SocketCtx, SocketInfo};

/// Adds the admin handlers to `ns` (already authenticated as admin).
pub fn handlers(ns: Namespace, chat: Arc<Chat>) -> Namespace {
    let (c1, c2, c3, c4) = (chat.clone(), chat.clone(), chat.clone(), chat.clone());
    let (c5, c6, c7) = (chat.clone(), chat.clone(), chat);
    ns.on(events::BROADCAST_ALL, broadcast_all)
        .on(events::ADMIN_STATS, stats)
        .on(events::ADMIN_ROOMS, move |s, ev| {
            room_list(s, ev, &c1.db, &c1.presence)
        })
        .on(events::ADMIN_ANNOUNCE, move |s, ev| {
            announce(s, ev, &c2.cfg)
        })
        .on(events::ADMIN_DISCONNECT_USER, disconnect_user)
        .on(events::ADMIN_MESSAGES, move |s, ev| messages(s, ev, &c3.db))
        .on(events::ADMIN_DELETE_MESSAGE, move |s, ev| {
            delete_message(s, ev, &c4)
        })
        .on(events::ADMIN_USERS, move |s, ev| users(s, ev, &c5))
        .on(events::ADMIN_USER_UPDATE, move |s, ev| {
            user_update(s, ev, &c6)
        })
        .on(events::ADMIN_ROOM_MEMBERS, move |s, ev| {
            room_members(s, ev, &c7)
        })
        .on(events::ADMIN_SOCKETS, sockets)
        .on(events::ADMIN_DISCONNECT_SOCKET, disconnect_socket)
}

/// Sockets `admin:sockets` lists by default, and at most.
const SOCKETS_DEFAULT: u64 = 200;
const SOCKETS_MAX: u64 = 1000;

/// The `admin:sockets` shape of a socket: its user, and of its rooms the chat rooms (by
/// room id; a socket's own user room and presence subscriptions are not listed).
fn socket_json(s: &SocketInfo) -> Value {
    let rooms: Vec<&str> = s
        .rooms
        .iter()
        .filter_map(|r| names::chat_room_id(r))
        .collect();
    json!({
        "id": s.id,
        "userId": s.data.get("userId"),
        "namespace": s.nsp,
        "transport": s.transport,
        "address": s.address,
        "connectedAt": s.connected_at,
        "rooms": rooms,
        "node": s.node,
    })
}

/// `admin:sockets {userId?, roomId?, limit?}` → `{sockets: [{id, userId, namespace,
/// transport, address, connectedAt, rooms, node}]}`: every namespace's sockets and event
/// streams on every node, oldest first; `userId` keeps that user's, `roomId` those in that
/// chat room of `/`. At most `limit` (default 200, at most 1000).
fn sockets(s: &mut SocketCtx<'_>, ev: Event) {
    let parsed = match ev.args.first() {
        None | Some(Value::Null) => Ok((None, None, SOCKETS_DEFAULT as i64)),
        Some(Value::Object(o)) => (|| {
            let user = payload::opt_id(o, "userId")?.map(str::to_owned);
            let room = payload::opt_id(o, "roomId")?.map(str::to_owned);
            Ok((user, room, limit(o, SOCKETS_DEFAULT, SOCKETS_MAX)?))
        })(),
        Some(_) => Err(AppError::invalid("expected {userId?, roomId?, limit?}")),
    };
    let (user, room, limit) = match parsed {
        Ok(p) => p,
        Err(e) => return reply::fail(s, ev.ack, &e),
    };
    let limit = limit as usize;
    let query = match (&user, &room) {
        // a user's sockets, then those in the room: a user has few
        (Some(u), _) => FetchQuery {
            rooms: vec![names::user_room(u)],
            limit: crate::socketio::adapter::MAX_FETCH,
            ..FetchQuery::default()
        },
        (None, Some(r)) => FetchQuery {
            nsp: Some(names::CHAT.to_owned()),
            rooms: vec![names::chat_room(r)],
            limit,
            ..FetchQuery::default()
        },
        (None, None) => FetchQuery {
            limit,
            ..FetchQuery::default()
        },
    };
    let io = s.io_handle();
    reply::answer_later(s, ev.ack, "admin:sockets", async move {
        let in_room = room.map(|r| names::chat_room(&r));
        let list: Vec<Value> = io
            .fetch_sockets(query)
            .await
            .iter()
            .filter(|s| {
                in_room
                    .as_ref()
                    .is_none_or(|r| s.nsp == names::CHAT && s.rooms.contains(r))
            })
            .take(limit)
            .map(socket_json)
            .collect();
        Ok(json!({ "sockets": list }))
    });
}

/// `admin:disconnect-socket {socketId}`: that socket (or event stream), on whichever node,
/// is disconnected server-side (`io server disconnect`; `/ws` closes 4403) → `{success:
/// true}`; `NOT_FOUND` when no node has it.
fn disconnect_socket(s: &mut SocketCtx<'_>, ev: Event) {
    let id = match payload::object(&ev).and_then(|o| payload::id(o, "socketId")) {
        Ok(id) => id.to_owned(),
        Err(e) => return reply::fail(s, ev.ack, &e),
    };
    let io = s.io_handle();
    let by = user_id(s).unwrap_or_default();
    reply::answer_later(s, ev.ack, "admin:disconnect-socket", async move {
        let gone = io
            .fetch_sockets(FetchQuery {
                ids: vec![id.clone()],
                limit: 1,
                disconnect: true,
                ..FetchQuery::default()
            })
            .await;
        let Some(found) = gone.first() else {
            return Err(AppError::not_found("no such socket"));
        };
        log::info!(
            "admin={by} disconnected socket={id} nsp={} node={}",
            found.nsp,
            found.node
        );
        Ok(json!({ "socketId": id }))
    });
}

/// An optional `limit`: `default` when absent, at most `max` (more is clamped), refused
/// below 1 or when not a whole number.
fn limit(o: &serde_json::Map<String, Value>, default: u64, max: u64) -> Result<i64, AppError> {
    match o.get("limit") {
        None | Some(Value::Null) => Ok(default as i64),
        Some(v) => v
            .as_u64()
            .filter(|n| *n >= 1)
            .map(|n| n.min(max) as i64)
            .ok_or_else(|| {
                AppError::invalid(format!("limit must be a whole number from 1 to {max}"))
            }),
    }
}

/// Users `admin:users` lists by default, and at most.
const USERS_DEFAULT: u64 = 50;
const USERS_MAX: u64 = 200;

/// The `admin:users` shape of a stored user.
fn user_json(u: &crate::db::users::User, online: bool, last_seen: Option<i64>) -> Value {
    json!({
        "id": u.id,
        "name": u.name,
        "email": u.email,
        "role": u.role,
        "isActive": u.is_active,
        "online": online,
        "lastSeen": if online { None } else { last_seen },
    })
}

/// `admin:users {query?, limit?}` → `{users: [{id, name, email, role, isActive, online,
/// lastSeen}]}`: users whose id or name contains `query` (any case), by id.
fn users(s: &mut SocketCtx<'_>, ev: Event, chat: &Chat) {
    let parsed = match ev.args.first() {
        None | Some(Value::Null) => Ok((None, USERS_DEFAULT as i64)),
        Some(Value::Object(o)) => (|| {
            let query = match o.get("query") {
                None | Some(Value::Null) => None,
                Some(Value::String(q)) if q.len() <= payload::MAX_ID => Some(q.trim().to_owned()),
                Some(_) => {
                    return Err(AppError::invalid(format!(
                        "query must be a string of at most {} bytes",
                        payload::MAX_ID
                    )))
                }
            };
            Ok((query, limit(o, USERS_DEFAULT, USERS_MAX)?))
        })(),
        Some(_) => Err(AppError::invalid("expected {query?, limit?}")),
    };
    let (query, limit) = match parsed {
        Ok(p) => p,
        Err(e) => return reply::fail(s, ev.ack, &e),
    };
    let (db, io, presence) = (chat.db.clone(), s.io_handle(), chat.presence.clone());
    reply::answer_later(s, ev.ack, "admin:users", async move {
        let found = db
            .run(move |c| crate::db::users::search(c, query.as_deref(), limit))
            .await?;
        let ids: Vec<String> = found.iter().map(|l| l.user.id.clone()).collect();
        let up = presence.statuses(&io, &ids).await;
        let list: Vec<Value> = found
            .iter()
            .zip(up)
            .map(|(l, online)| user_json(&l.user, online, l.last_seen))
            .collect();
        Ok(json!({ "users": list }))
    });
}

/// `admin:user-update {userId, isActive?, role?}`: as `PUT /internal/users/{id}` for those
/// fields, applied to open sockets at once (a disabled user's end, a demoted admin's
/// `/admin` ones end) → `{user}` after the change.
fn user_update(s: &mut SocketCtx<'_>, ev: Event, chat: &Chat) {
    let parsed = payload::object(&ev).and_then(|o| {
        let id = payload::id(o, "userId")?.to_owned();
        let active = match o.get("isActive") {
            None | Some(Value::Null) => None,
            Some(Value::Bool(b)) => Some(*b),
            Some(_) => return Err(AppError::invalid("isActive must be a boolean")),
        };
        let role = match o.get("role") {
            None | Some(Value::Null) => None,
            Some(Value::String(r)) if r == "user" || r == "admin" => Some(r.clone()),
            Some(_) => return Err(AppError::invalid("role must be \"user\" or \"admin\"")),
        };
        if active.is_none() && role.is_none() {
            return Err(AppError::invalid("give isActive, role or both"));
        }
        Ok((id, active, role))
    });
    let (id, active, role) = match parsed {
        Ok(p) => p,
        Err(e) => return reply::fail(s, ev.ack, &e),
    };
    let by = user_id(s).unwrap_or_default();
    let (db, io, presence) = (chat.db.clone(), s.io_handle(), chat.presence.clone());
    reply::answer_later(s, ev.ack, "admin:user-update", async move {
        let who = id.clone();
        let updated = db
            .run(move |c| crate::db::users::update_access(c, &who, active, role.as_deref()))
            .await?
            .ok_or_else(|| AppError::not_found(format!("unknown user {id}")))?;
        super::live::user_changed(&io, &id, updated.is_active, updated.role == "admin");
        log::info!(
            "admin updated user={id} active={} role={} by={by}",
            updated.is_active,
            updated.role
        );
        let online = presence.statuses(&io, std::slice::from_ref(&id)).await;
        let seen = db
            .run(move |c| crate::db::users::last_seen(c, &[id]))
            .await?
            .pop()
            .and_then(|(_, t)| t);
        Ok(json!({ "user": user_json(&updated, online.first().copied().unwrap_or(false), seen) }))
    });
}

/// Members `admin:room-members` lists at most.
const MEMBERS_MAX: usize = 1000;

/// `admin:room-members {roomId}` → `{members: [{userId, online}]}`: a private room's
/// members; a public room's stored members and the users in it now. Online first, then by
/// id; at most 1000.
fn room_members(s: &mut SocketCtx<'_>, ev: Event, chat: &Chat) {
    let room = match payload::room_id(&ev) {
        Ok(r) => r,
        Err(e) => return reply::fail(s, ev.ack, &e),
    };
    let (db, io, presence) = (chat.db.clone(), s.io_handle(), chat.presence.clone());
    reply::answer_later(s, ev.ack, "admin:room-members", async move {
        let r = room.clone();
        let (found, stored) = db
            .run(move |c| {
                let found = rooms::find(c, &r)?;
                let members = rooms::members(c, &r)?;
                Ok((found, members))
            })
            .await?;
        let found = found.ok_or_else(|| AppError::not_found("unknown room"))?;
        let mut ids: std::collections::BTreeSet<String> = stored.into_iter().collect();
        if found.is_public {
            ids.extend(presence.online_in(&io, &room, None, MEMBERS_MAX).await);
        }
        let ids: Vec<String> = ids.into_iter().take(MEMBERS_MAX).collect();
        let up = presence.statuses(&io, &ids).await;
        let mut members: Vec<(bool, String)> = up.into_iter().zip(ids).collect();
        members.sort_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(&b.1)));
        let members: Vec<Value> = members
            .into_iter()
            .map(|(online, id)| json!({"userId": id, "online": online}))
            .collect();
        Ok(json!({ "roomId": room, "members": members }))
    });
}

/// Messages `admin:messages` lists by default, and at most.
const MESSAGES_DEFAULT: u64 = 50;
const MESSAGES_MAX: u64 = 200;

/// `admin:messages {roomId, limit?}` → `{messages}`: the room's newest messages, newest
/// first, deleted ones included (blanked, with `deletedAt`).
fn messages(s: &mut SocketCtx<'_>, ev: Event, db: &Db) {
    let parsed = payload::object(&ev).and_then(|o| {
        let room = payload::id(o, "roomId")?.to_owned();
        Ok((room, limit(o, MESSAGES_DEFAULT, MESSAGES_MAX)?))
    });
    let (room, limit) = match parsed {
        Ok(p) => p,
        Err(e) => return reply::fail(s, ev.ack, &e),
    };
    let db = db.clone();
    reply::answer_later(s, ev.ack, "admin:messages", async move {
        let list = db
            .run(move |c| edits::newest_first(c, &room, limit))
            .await??;
        Ok(json!({ "messages": list }))
    });
}

/// `admin:delete-message {messageId}`: as `chat:delete` by an admin.
fn delete_message(s: &mut SocketCtx<'_>, ev: Event, chat: &Chat) {
    let parsed = payload::object(&ev).and_then(|o| {
        let id = payload::id(o, "messageId")?.to_owned();
        let admin = user_id(s).ok_or_else(|| AppError::forbidden("not authenticated"))?;
        Ok((id, admin))
    });
    let (id, admin) = match parsed {
        Ok(p) => p,
        Err(e) => return reply::fail(s, ev.ack, &e),
    };
    let (db, io, hooks) = (chat.db.clone(), s.io_handle(), chat.hooks.clone());
    reply::answer_later(s, ev.ack, "admin:delete-message", async move {
        let changed = super::edits::delete_message(&db, &io, &hooks, id, admin.clone()).await?;
        log::info!(
            "admin deleted message id={} room={} by={admin}",
            changed.message["id"].as_str().unwrap_or_default(),
            changed.room_id
        );
        Ok(Value::Null)
    });
}

/// Relays the admin's argument unchanged (even `null`) to every `/admin` socket.
fn broadcast_all(s: &mut SocketCtx<'_>, ev: Event) {
    let arg = ev.args.first().cloned().unwrap_or(Value::Null);
    s.io().emit(events::ADMIN_ANNOUNCEMENT, &[arg]);
    reply::ok(s, ev.ack, Value::Null);
}

fn stats(s: &mut SocketCtx<'_>, ev: Event) {
    let Some(ack) = ev.ack else {
        return reply::fail(s, None, &AppError::invalid("admin:stats needs an ack"));
    };
    let (h, io) = (s.handle(), s.io_handle());
    actix_rt::spawn(async move {
        h.ack(ack, vec![figures(&io).await]);
    });
}

/// The `admin:stats` answer (also `GET /internal/stats`): every node's figures and their
/// sums, `success:true` first.
pub(super) async fn figures(io: &crate::socketio::IoHandle) -> Value {
    let all = io.cluster_stats().await;
    let mut namespaces = serde_json::Map::new();
    for n in names::ALL {
        let count: u64 = all
            .iter()
            .map(|st| st.sockets.get(n).and_then(Value::as_u64).unwrap_or(0))
            .sum();
        namespaces.insert(n.into(), json!(count));
    }
    let nodes: Vec<Value> = all
        .iter()
        .map(|st| {
            json!({
                "id": st.node_id,
                "connections": st.sessions,
                "rooms": st.rooms,
                "uptimeS": st.uptime_s,
            })
        })
        .collect();
    let connections: usize = all.iter().map(|st| st.sessions).sum();
    let mut transports = serde_json::Map::new();
    for t in ["websocket", "polling", "ws", "sse"] {
        let n: u64 = all
            .iter()
            .map(|st| st.transports.get(t).and_then(Value::as_u64).unwrap_or(0))
            .sum();
        transports.insert(t.into(), json!(n));
    }
    let events_in: u64 = all.iter().map(|st| st.events_in).sum();
    let events_out: u64 = all.iter().map(|st| st.events_out).sum();
    json!({
        "success": true,
        "nodes": nodes,
        "connections": connections,
        "namespaces": namespaces,
        "transports": transports,
        "eventsIn": events_in,
        "eventsOut": events_out,
    })
}

/// Rooms `admin:rooms` lists by default, and at most.
const ROOMS_DEFAULT: u64 = 100;
const ROOMS_MAX: u64 = 1000;

/// `admin:rooms {limit?}` → `{rooms: [{id, name, isPublic, memberCount}]}`: the chat rooms
/// with at least one member online anywhere in the cluster, most members first.
fn room_list(s: &mut SocketCtx<'_>, ev: Event, db: &Db, presence: &Presence) {
    let limit = match ev.args.first() {
        None | Some(Value::Null) => Ok(ROOMS_DEFAULT),
        Some(Value::Object(o)) => match o.get("limit") {
            None | Some(Value::Null) => Ok(ROOMS_DEFAULT),
            Some(v) => v
                .as_u64()
                .filter(|n| *n >= 1)
                .map(|n| n.min(ROOMS_MAX))
                .ok_or_else(|| AppError::invalid("limit must be a whole number from 1 to 1000")),
        },
        Some(_) => Err(AppError::invalid("expected {limit?}")),
    };
    let limit = match limit {
        Ok(l) => l as usize,
        Err(e) => return reply::fail(s, ev.ack, &e),
    };
    // presence also counts users' own rooms; the rooms table tells the chat rooms apart
    let online = presence.rooms(&s.io_handle(), names::CHAT, 100_000);
    let db = db.clone();
    reply::answer_later(s, ev.ack, "admin:rooms", async move {
        let counts: std::collections::HashMap<String, usize> = online
            .await
            .into_iter()
            .map(|(room, n)| (room.to_string(), n))
            .collect();
        let ids: Vec<String> = counts.keys().cloned().collect();
        let stored = db.run(move |c| rooms::find_many(c, &ids)).await?;
        let mut list: Vec<(usize, rooms::Room)> = stored
            .into_iter()
            .filter_map(|r| counts.get(&r.id).map(|n| (*n, r)))
            .collect();
        list.sort_by(|(a, ra), (b, rb)| b.cmp(a).then_with(|| ra.id.cmp(&rb.id)));
        let rooms: Vec<Value> = list
            .into_iter()
            .take(limit)
            .map(|(n, r)| json!({"id": r.id, "name": r.name, "isPublic": r.is_public, "memberCount": n}))
            .collect();
        Ok(json!({ "rooms": rooms }))
    });
}

/// `admin:announce {message}` → `system:announcement {message, timestamp}` to all of `/`.
fn announce(s: &mut SocketCtx<'_>, ev: Event, cfg: &ChatConfig) {
    let message =
        match payload::object(&ev).and_then(|o| payload::text(o, "message", cfg.max_chars)) {
            Ok(m) => m,
            Err(e) => return reply::fail(s, ev.ack, &e),
        };
    s.io_handle().of(names::CHAT).emit(
        events::SYSTEM_ANNOUNCEMENT,
        &[json!({"message": message, "timestamp": now_ms()})],
    );
    reply::ok(s, ev.ack, Value::Null);
}

/// `admin:disconnect-user {userId}`: that user's sockets in every namespace end as a
/// server-side disconnect (clients do not reconnect by themselves).
fn disconnect_user(s: &mut SocketCtx<'_>, ev: Event) {
    let user = match payload::object(&ev).and_then(|o| payload::id(o, "userId")) {
        Ok(u) => u.to_owned(),
        Err(e) => return reply::fail(s, ev.ack, &e),
    };
    super::live::end_user(&s.io_handle(), &user);
    log::info!("admin disconnected user={user} by={}", s.id());
    reply::ok(s, ev.ack, Value::Null);
}
