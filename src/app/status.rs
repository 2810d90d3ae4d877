//! `presence:subscribe` / `presence:unsubscribe` (docs/events.md): a socket of `/` follows the
//! online status of users; each subscription is the socket's membership of the user's
//! presence room, so `user:status` reaches it from every node and the subscriptions end
//! with the socket.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use serde_json::{json, Value};

use super::error::{AppError, Code};
use super::names::{is_presence_room, presence_room};
use super::presence::Presence;
use super::{events, payload, reply};
use crate::db::{users, Db};
use crate::socketio::{Event, IoHandle, Namespace, SocketCtx};

/// Most ids in one call.
pub const MAX_IDS: usize = 500;
/// Most subscriptions one socket holds.
pub const MAX_SUBSCRIPTIONS: usize = 2000;

/// Adds the presence handlers to `ns`.
pub fn handlers(ns: Namespace, db: Db, presence: Presence) -> Namespace {
    let shared = Arc::new((db, presence));
    ns.on(events::PRESENCE_SUBSCRIBE, move |s, ev| {
        subscribe(s, ev, &shared.0, &shared.1)
    })
    .on(events::PRESENCE_UNSUBSCRIBE, unsubscribe)
}

/// `{userIds: [id]}`: 1..=500 distinct ids, in the request's order.
fn user_ids(ev: &Event) -> Result<Vec<String>, AppError> {
    let o = payload::object(ev)?;
    let Some(Value::Array(list)) = o.get("userIds") else {
        return Err(AppError::invalid("userIds (array of strings) is required"));
    };
    distinct_ids(list.iter().map(|v| v.as_str()))
}

/// 1..=500 distinct user ids (`None`: not a string), in the given order.
pub(super) fn distinct_ids<'a>(
    list: impl Iterator<Item = Option<&'a str>>,
) -> Result<Vec<String>, AppError> {
    let mut seen = HashSet::new();
    let mut ids = Vec::new();
    for v in list {
        let Some(id) = v else {
            return Err(AppError::invalid("userIds must hold strings"));
        };
        if id.is_empty() || id.len() > payload::MAX_ID {
            return Err(AppError::invalid(format!(
                "each user id is a non-empty string of at most {} bytes",
                payload::MAX_ID
            )));
        }
        if seen.insert(id) {
            ids.push(id.to_owned());
        }
        if ids.len() > MAX_IDS {
            break;
        }
    }
    if ids.is_empty() || ids.len() > MAX_IDS {
        return Err(AppError::invalid(format!(
            "userIds holds 1 to {MAX_IDS} distinct ids"
        )));
    }
    Ok(ids)
}

/// How many users this socket follows.
fn subscriptions(s: &SocketCtx<'_>) -> usize {
    s.rooms().filter(|r| is_presence_room(r)).count()
}

/// How many of `ids` this socket does not follow yet.
fn new_ones(s: &SocketCtx<'_>, ids: &[String]) -> usize {
    let mine: HashSet<&str> = s.rooms().filter(|r| is_presence_room(r)).collect();
    ids.iter()
        .filter(|id| !mine.contains(presence_room(id).as_str()))
        .count()
}

fn over_cap(s: &SocketCtx<'_>, ids: &[String]) -> Option<AppError> {
    (subscriptions(s) + new_ones(s, ids) > MAX_SUBSCRIPTIONS).then(|| {
        AppError::refused(
            Code::RateLimited,
            format!("a socket follows at most {MAX_SUBSCRIPTIONS} users"),
        )
    })
}

fn subscribe(s: &mut SocketCtx<'_>, ev: Event, db: &Db, presence: &Presence) {
    let ids = match user_ids(&ev) {
        Ok(ids) => ids,
        Err(e) => return reply::fail(s, ev.ack, &e),
    };
    if let Some(e) = over_cap(s, &ids) {
        return reply::fail(s, ev.ack, &e);
    }
    let (db, presence, ack) = (db.clone(), presence.clone(), ev.ack);
    let mut h = s.handle();
    actix_rt::spawn(async move {
        let known = match known_users(&db, &ids).await {
            Ok(k) => k,
            Err(e) => return reply::answer(&mut h, ack, "presence:subscribe", Err(e)),
        };
        // Followed first, then read: a change in between reaches the socket as an event.
        h.run(move |s| {
            if let Some(e) = over_cap(s, &ids) {
                return reply::fail(s, ack, &e);
            }
            let rooms: Vec<String> = ids.iter().map(|id| presence_room(id)).collect();
            s.join_all(rooms.iter().map(String::as_str));
            let (io, mut h) = (s.io_handle(), s.handle());
            actix_rt::spawn(async move {
                let statuses = status_list(&db, &presence, &io, &ids, known).await;
                reply::ok(&mut h, ack, json!({ "statuses": statuses }));
            });
        });
    });
}

/// The stored last-seen time of each of `ids`; `NOT_FOUND` naming the first unknown one.
pub(super) async fn known_users(
    db: &Db,
    ids: &[String],
) -> Result<HashMap<String, Option<i64>>, AppError> {
    let wanted = ids.to_vec();
    let stored = db.run(move |c| users::last_seen(c, &wanted)).await?;
    let known: HashMap<String, Option<i64>> = stored.into_iter().collect();
    match ids.iter().find(|id| !known.contains_key(*id)) {
        Some(unknown) => Err(AppError::not_found(format!("unknown user {unknown}"))),
        None => Ok(known),
    }
}

/// `{userId, status, lastSeen}` of each of `ids` (all known), in their order: online on any
/// node, else offline since its stored last-seen time (read after the state, which is
/// stored first; `known` stands in when the read fails).
pub(super) async fn status_list(
    db: &Db,
    presence: &Presence,
    io: &IoHandle,
    ids: &[String],
    known: HashMap<String, Option<i64>>,
) -> Vec<Value> {
    let up = presence.statuses(io, ids).await;
    let down: Vec<String> = ids
        .iter()
        .zip(&up)
        .filter(|(_, up)| !**up)
        .map(|(id, _)| id.clone())
        .collect();
    let seen: HashMap<String, Option<i64>> = if down.is_empty() {
        Default::default()
    } else {
        match db.run(move |c| users::last_seen(c, &down)).await {
            Ok(rows) => rows.into_iter().collect(),
            Err(_) => known,
        }
    };
    ids.iter()
        .zip(up)
        .map(|(id, up)| {
            let last = if up {
                None
            } else {
                seen.get(id).copied().flatten()
            };
            json!({
                "userId": id,
                "status": if up { "online" } else { "offline" },
                "lastSeen": last,
            })
        })
        .collect()
}

fn unsubscribe(s: &mut SocketCtx<'_>, ev: Event) {
    let ids = match user_ids(&ev) {
        Ok(ids) => ids,
        Err(e) => return reply::fail(s, ev.ack, &e),
    };
    let rooms: Vec<String> = ids.iter().map(|id| presence_room(id)).collect();
    s.leave_all(rooms.iter().map(String::as_str));
    reply::ok(s, ev.ack, Value::Null);
}
