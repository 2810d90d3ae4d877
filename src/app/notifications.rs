//! Namespace `/notifications`: each socket joins `user:{id}:notifications`, gets
//! `notification:backlog {items, unread}` on connect, and marks its own notifications read
//! with `notification:read {ids}`.

use serde_json::{json, Value};

use super::events;
use super::notify::notifications_room;
use super::presence::Presence;
use super::reply::{self, Code};
use super::session_auth::user_id;
use crate::db::{notifications, now_ms, Db};
use crate::socketio::{Event, Namespace, SocketCtx};

pub const NSP: &str = "/notifications";
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
        return reply::fail(
            s,
            ev.ack,
            Code::InvalidPayload,
            "ids (array of at most 1000 strings) is required",
        );
    };
    let Some(user) = user_id(s) else {
        return reply::fail(s, ev.ack, Code::Forbidden, "not authenticated");
    };
    let (h, ack, db) = (s.handle(), ev.ack, db.clone());
    actix_rt::spawn(async move {
        match db
            .run(move |c| notifications::mark_read(c, &user, &ids, now_ms()))
            .await
        {
            Ok(n) => {
                if let Some(ack) = ack {
                    h.ack(ack, vec![json!({"success": true, "updated": n})]);
                }
            }
            Err(e) => {
                log::error!("notification:read failed err={e}");
                reply::fail_later(&h, ack, Code::Internal, "internal error");
            }
        }
    });
}
