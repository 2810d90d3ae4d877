//! Namespace `/admin` (stored role admin only; others get `connect_error` `FORBIDDEN`):
//! `broadcast:all`, `admin:stats`, `admin:rooms`, `admin:announce`, `admin:disconnect-user`,
//! `admin:messages`, `admin:delete-message`.

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
use crate::socketio::{Event, Namespace, SocketCtx};

/// Adds the admin handlers to `ns` (already authenticated as admin).
pub fn handlers(ns: Namespace, chat: Arc<Chat>) -> Namespace {
    let (c1, c2, c3, c4) = (chat.clone(), chat.clone(), chat.clone(), chat);
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
}

/// Messages `admin:messages` lists by default, and at most.
const MESSAGES_DEFAULT: u64 = 50;
const MESSAGES_MAX: u64 = 200;

/// `admin:messages {roomId, limit?}` → `{messages}`: the room's newest messages, newest
/// first, deleted ones included (blanked, with `deletedAt`).
fn messages(s: &mut SocketCtx<'_>, ev: Event, db: &Db) {
    let parsed = payload::object(&ev).and_then(|o| {
        let room = payload::id(o, "roomId")?.to_owned();
        let limit = match o.get("limit") {
            None | Some(Value::Null) => MESSAGES_DEFAULT,
            Some(v) => v
                .as_u64()
                .filter(|n| (1..=MESSAGES_MAX).contains(n))
                .ok_or_else(|| AppError::invalid("limit must be a whole number from 1 to 200"))?,
        };
        Ok((room, limit as i64))
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
