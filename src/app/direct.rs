//! `user:direct-message {targetId, message}` and the delivery of DMs that waited for their
//! target: every DM is stored; it is marked delivered when it goes to a live socket, and a
//! target that was offline gets it, once, on its next connect to `/`.
//!
//! "Online" is the presence count of the target's `user:{id}` room (counted on connect and
//! disconnect), cluster-wide in a cluster.

use std::sync::Arc;

use serde_json::json;

use super::chat::Chat;
use super::error::AppError;
use super::events;
use super::names::{user_room, CHAT as NSP};
use super::payload;
use super::presence::Presence;
use super::reply;
use super::session_auth::user_id;
use crate::db::direct::{self, DirectMessage};
use crate::db::{now_ms, Db};
use crate::socketio::{Event, IoHandle, Namespace, SocketCtx};

/// Adds the DM handler and the online count to `ns` (after authentication: sockets have
/// their identity and are in `user:{id}`).
pub fn handlers(ns: Namespace, chat: Arc<Chat>) -> Namespace {
    let db = chat.db.clone();
    let (p1, p2) = (chat.presence.clone(), chat.presence.clone());
    ns.on(events::DIRECT_MESSAGE, move |s, ev| send(s, ev, &chat))
        .on_connect(move |s| {
            let Some(user) = user_id(s) else {
                return;
            };
            let (io, db, id) = (s.io_handle(), db.clone(), s.id().to_owned());
            let counted = p1.join(&io, NSP, &user_room(&user), &user, &id);
            actix_rt::spawn(async move {
                // Counted first, then the look-up: a DM stored in between is seen by one
                // of the two (see `send`).
                counted.await;
                deliver_pending(&db, &io, &user, Some(&id)).await;
            });
        })
        .on_disconnect(move |s, _| {
            let Some(user) = user_id(s) else {
                return;
            };
            let gone = p2.leave(&s.io_handle(), NSP, &user_room(&user), &user, s.id());
            actix_rt::spawn(gone);
        })
}

fn send(s: &mut SocketCtx<'_>, ev: Event, chat: &Chat) {
    let parsed = payload::object(&ev).and_then(|o| {
        let target = payload::id(o, "targetId")?.to_owned();
        let text = payload::text(o, "message", chat.cfg.max_chars)?;
        let from = user_id(s).ok_or_else(|| AppError::forbidden("not authenticated"))?;
        chat.sends.check(&from)?;
        Ok((target, text, from))
    });
    let (target, text, from) = match parsed {
        Ok(p) => p,
        Err(e) => return reply::fail(s, ev.ack, &e),
    };
    let (io, db) = (s.io_handle(), chat.db.clone());
    let presence = chat.presence.clone();
    reply::answer_later(s, ev.ack, "user:direct-message", async move {
        let t = target.clone();
        if !db.run(move |c| direct::user_exists(c, &t)).await? {
            return Err(AppError::not_found("unknown user"));
        }
        let online = online(&presence, &io, &target).await;
        let now = now_ms();
        let dm = DirectMessage {
            id: uuid::Uuid::now_v7().to_string(),
            from_user_id: from,
            to_user_id: target.clone(),
            message: text,
            created_at: now,
            delivered_at: online.then_some(now),
        };
        let stored = dm.clone();
        db.run(move |c| direct::store(c, &stored)).await?;
        let mut delivered = online;
        if online {
            io.of(NSP)
                .to(&user_room(&target))
                .emit(events::CHAT_DIRECT, &[dm.payload()]);
        } else if self::online(&presence, &io, &target).await {
            // The target connected while this DM was being stored; its connect may have looked
            // for pending DMs before the row existed. Claims make this delivery the only one.
            delivered = deliver_pending(&db, &io, &target, None).await > 0;
        }
        Ok(json!({"id": dm.id, "delivered": delivered}))
    });
}

/// Whether `user` has a socket in `/` (on any node).
pub(super) async fn online(presence: &Presence, io: &IoHandle, user: &str) -> bool {
    presence.count(io, NSP, &user_room(user)).await > 0
}

/// Sends `user`'s pending DMs (oldest first) to `to` (a socket id), or to all the user's
/// sockets; returns how many went.
pub async fn deliver_pending(db: &Db, io: &IoHandle, user: &str, to: Option<&str>) -> usize {
    let u = user.to_owned();
    let claimed = match db
        .run(move |c| direct::claim_pending(c, &u, now_ms()))
        .await
    {
        Ok(c) => c,
        Err(e) => {
            log::error!("pending DMs not loaded user={user} err={e}");
            return 0;
        }
    };
    let room = to.map_or_else(|| user_room(user), str::to_owned);
    for dm in &claimed {
        io.of(NSP)
            .to(&room)
            .emit(events::CHAT_DIRECT, &[dm.payload()]);
    }
    claimed.len()
}
