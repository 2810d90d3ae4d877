//! Namespace `/notifications`: each socket joins `user:{id}:notifications`, gets
//! `notification:backlog {items, unread}` on connect, and marks its own notifications read
//! with `notification:read {ids}`.

use serde_json::{json, Value};

use super::error::AppError;
use super::events;
use super::names::{notifications_room, NOTIFICATIONS as NSP};
use super::presence::Presence;
use super::reply;
use super::session_auth::user_id;
use crate::db::{notifications, now_ms, Db};
use crate::socketio::{Event, Namespace, SocketCtx};

/// Backlog items sent on connect at most (`unread` counts all).
const BACKLOG: i64 = 200;
/// Ids one `notification:read` may carry.
const MAX_IDS: usize = 1000;

pub fn handlers(ns: Namespace, db: Db, presence: Presence) -> Namespace {
    let db2 = db.clone();
    let p2 = presence.clone();
    ns.on_connect(move |s| {
        let Some(user) = user_id(s) else {
            return;
        };
        let room = notifications_room(&user);
        s.join(&room);
        let (h, io, db) = (s.handle(), s.io_handle(), db.clone());
        let counted = presence.join(&io, NSP, &room, &user, s.id());
        actix_rt::spawn(async move {
            counted.await;
            match db
                .run(move |c| notifications::backlog(c, &user, BACKLOG))
                .await
            {
                Ok((items, unread)) => h.emit(
                    events::NOTIFICATION_BACKLOG,
                    vec![json!({"items": items, "unread": unread})],
                ),
                Err(e) => log::error!("notification backlog failed err={e}"),
            }
        });
    })
    .on_disconnect(move |s, _| {
        let Some(user) = user_id(s) else {
            return;
        };
        let gone = p2.leave(
            &s.io_handle(),
            NSP,
            &notifications_room(&user),
            &user,
            s.id(),
        );
        actix_rt::spawn(gone);
    })
    .on(events::NOTIFICATION_READ, move |s, ev| read(s, ev, &db2))
}

fn read(s: &mut SocketCtx<'_>, ev: Event, db: &Db) {
    let ids = match ev.args.first() {
        Some(Value::Object(o)) => match o.get("ids") {
            Some(Value::Array(a)) if a.len() <= MAX_IDS => a
                .iter()
                .map(|v| v.as_str().map(str::to_owned))
                .collect::<Option<Vec<String>>>(),
            _ => None,
        },
        _ => None,
    };
    let Some(ids) = ids else {
        let e = AppError::invalid("ids (array of at most 1000 strings) is required");
        return reply::fail(s, ev.ack, &e);
    };
    let Some(user) = user_id(s) else {
        return reply::fail(s, ev.ack, &AppError::forbidden("not authenticated"));
    };
    let db = db.clone();
    reply::answer_later(s, ev.ack, "notification:read", async move {
        let n = db
            .run(move |c| notifications::mark_read(c, &user, &ids, now_ms()))
            .await?;
        Ok(json!({"updated": n}))
    });
}
