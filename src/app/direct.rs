//! `user:direct-message {targetId, message}` and the delivery of DMs (docs/events.md,
//! `chat:direct`): every DM is stored undelivered; the target's sockets get `chat:direct`
//! with an ack request, and a DM is marked delivered only when one of them acknowledges it.
//! A DM sent while the target is online goes at once to each of its sockets, on every node
//! (a socket command); on each connect to `/` the socket gets the undelivered ones again,
//! oldest first, in pages of at most 100 awaiting their acks. Duplicates are possible after
//! a reconnect; clients dedupe by `id`.
//!
//! "Online" is the presence count of the target's `user:{id}` room (counted on connect and
//! disconnect), cluster-wide in a cluster.

use std::cell::RefCell;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use super::chat::Chat;
use super::error::{AppError, Code};
use super::events;
use super::names::{user_room, CHAT as NSP};
use super::outbound::{Hooks, DIRECT_CREATED};
use super::payload;
use super::presence::Presence;
use super::reply;
use super::session_auth::user_id;
use crate::db::direct::{self, Cursor, DirectMessage};
use crate::db::{now_ms, Db};
use crate::socketio::{AckError, AckReply, IoHandle, Namespace, SocketCtx, SocketHandle};

/// The socket command that hands a new DM to each of the target's sockets.
pub(super) const NEW_DM: &str = "dm:new";
/// Undelivered DMs sent to a socket at a time, each awaiting its ack.
const PAGE: i64 = 100;
/// A page takes at most this share of the connection's byte budget, so that a client
/// reading at any pace is never closed as a slow consumer by its own backlog.
const PAGE_BUDGET_SHARE: usize = 4;
/// Bytes of a `chat:direct` packet besides its text (ids, names, framing), roughly.
const DM_OVERHEAD: usize = 160;
/// How long a socket may take to acknowledge a DM; without it, the DM waits for the next
/// connect.
const ACK_TIMEOUT: Duration = Duration::from_secs(30);

/// Adds the DM handler, the live delivery and the resending on connect to `ns` (after
/// authentication: sockets have their identity and are in `user:{id}`).
pub fn handlers(ns: Namespace, chat: Arc<Chat>) -> Namespace {
    let (db1, db2) = (chat.db.clone(), chat.db.clone());
    let page_bytes = (chat.max_queued_bytes / PAGE_BUDGET_SHARE).max(1);
    let (p1, p2) = (chat.presence.clone(), chat.presence.clone());
    ns.on(events::DIRECT_MESSAGE, move |s, ev| send(s, ev, &chat))
        .on_command(NEW_DM, move |s, dm| offer(s, dm, &db1))
        .on_connect(move |s| {
            let Some(user) = user_id(s) else {
                return;
            };
            let (io, db, handle) = (s.io_handle(), db2.clone(), s.handle());
            // counted in the user's room (with SSE streams: DMs and notifications find the
            // user online), and for the user's status (sockets of `/` only, docs/events.md)
            let counted = p1.join(&io, NSP, &user_room(&user), &user, s.id());
            actix_rt::spawn(p1.user_connected(&io, &user, s.id()));
            actix_rt::spawn(async move {
                // Counted first, then the look-up: a DM stored in between is seen by one
                // of the two (see `send`).
                counted.await;
                resend(db, handle, user, None, page_bytes).await;
            });
        })
        .on_disconnect(move |s, _| {
            let Some(user) = user_id(s) else {
                return;
            };
            let gone = p2.leave(&s.io_handle(), NSP, &user_room(&user), &user, s.id());
            actix_rt::spawn(gone);
            p2.user_disconnected(&s.io_handle(), &user, s.id());
        })
}

fn send(s: &mut SocketCtx<'_>, ev: crate::socketio::Event, chat: &Chat) {
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
    let (presence, hooks) = (chat.presence.clone(), chat.hooks.clone());
    let max_pending = chat.max_pending_dms;
    reply::answer_later(s, ev.ack, "user:direct-message", async move {
        let t = target.clone();
        let waiting = db
            .run(move |c| {
                if !direct::user_exists(c, &t)? {
                    return Ok(None);
                }
                direct::pending_count(c, &t).map(Some)
            })
            .await?;
        match waiting {
            None => return Err(AppError::not_found("unknown user")),
            Some(n) if n as u64 >= max_pending => {
                crate::metrics::get().refused("pending_dms");
                return Err(AppError::refused(
                    Code::RateLimited,
                    "too many DMs wait for this user",
                ));
            }
            Some(_) => {}
        }
        let dm = DirectMessage {
            id: uuid::Uuid::now_v7().to_string(),
            from_user_id: from,
            to_user_id: target.clone(),
            message: text,
            created_at: now_ms(),
            delivered_at: None,
        };
        let stored = dm.clone();
        db.run(move |c| direct::store(c, &stored)).await?;
        // Stored first, then counted: a target connecting meanwhile finds the row when it
        // looks for undelivered DMs after being counted.
        let online = online(&presence, &io, &target).await;
        if online {
            io.of(NSP)
                .to(&user_room(&target))
                .command(NEW_DM, dm.payload());
        }
        if let Some(h) = hooks {
            direct_created(&db, &h, &dm, online).await;
        }
        Ok(json!({"id": dm.id, "delivered": online}))
    });
}

/// Stores `direct.created` for a DM (`delivered:false`: the cue for a push notification),
/// once the target's presence is known (a failure is logged; the DM stays sent).
async fn direct_created(db: &Db, hooks: &Arc<Hooks>, dm: &DirectMessage, delivered: bool) {
    let data = json!({
        "id": dm.id,
        "fromUserId": dm.from_user_id,
        "targetId": dm.to_user_id,
        "delivered": delivered,
    });
    let key = format!("direct:{}", dm.to_user_id);
    let Some(e) = hooks.event(key, dm.created_at, DIRECT_CREATED, data, dm.created_at) else {
        return;
    };
    let what = format!("direct.created of dm {}", dm.id);
    hooks.clone().store(db.clone(), e, what).await;
}

/// Whether `user` has a socket in `/` (on any node).
pub(super) async fn online(presence: &Presence, io: &IoHandle, user: &str) -> bool {
    presence.count(io, NSP, &user_room(user)).await > 0
}

/// A new DM for this socket: sent with an ack request, marked delivered when acked.
fn offer(s: &mut SocketCtx<'_>, dm: &Value, db: &Db) {
    let Some(id) = dm.get("id").and_then(Value::as_str).map(str::to_owned) else {
        return;
    };
    let db = db.clone();
    s.emit_with_ack(
        events::CHAT_DIRECT,
        std::slice::from_ref(dm),
        ACK_TIMEOUT,
        move |res| {
            if res.is_ok() {
                actix_rt::spawn(async move { mark(&db, vec![id]).await });
            }
        },
    );
}

async fn mark(db: &Db, ids: Vec<String>) {
    if ids.is_empty() {
        return;
    }
    let n = ids.len();
    if let Err(e) = db
        .run(move |c| direct::mark_delivered(c, &ids, now_ms()))
        .await
    {
        // They stay undelivered and go again on the next connect.
        log::error!("DMs not marked delivered count={n} err={e}");
    }
}

/// Sends `user`'s undelivered DMs after `after` to the socket behind `to`, a page (at most
/// `PAGE` DMs and about `page_bytes`) at a time; the next page goes once every DM of this
/// one was acknowledged.
async fn resend(db: Db, to: SocketHandle, user: String, after: Option<Cursor>, page_bytes: usize) {
    let u = user.clone();
    let mut page = match db
        .run(move |c| direct::pending_page(c, &u, after.as_ref(), PAGE))
        .await
    {
        Ok(p) => p,
        Err(e) => {
            log::error!("undelivered DMs not loaded user={user} err={e}");
            return;
        }
    };
    let mut bytes = 0;
    let fits = page
        .iter()
        .take_while(|d| {
            bytes += d.message.len() + DM_OVERHEAD;
            bytes <= page_bytes
        })
        .count();
    // always one, so a page moves on whatever the budget
    let more = fits.max(1) < page.len();
    page.truncate(fits.max(1));
    if page.is_empty() {
        return;
    }
    let target = to.clone();
    to.run(move |s| send_page(s, db, target, user, page, more, page_bytes));
}

/// What a page waits for: acks still to come, the ids acked so far, and whether one failed.
struct PageAcks {
    left: usize,
    acked: Vec<String>,
    failed: bool,
}

fn send_page(
    s: &mut SocketCtx<'_>,
    db: Db,
    to: SocketHandle,
    user: String,
    page: Vec<DirectMessage>,
    cut: bool,
    page_bytes: usize,
) {
    let full = cut || page.len() as i64 == PAGE;
    let cursor = page.last().map(|d| (d.created_at, d.id.clone()));
    let acks = Rc::new(RefCell::new(PageAcks {
        left: page.len(),
        acked: Vec::with_capacity(page.len()),
        failed: false,
    }));
    for dm in page {
        let (acks, db, to, user, cursor) = (
            acks.clone(),
            db.clone(),
            to.clone(),
            user.clone(),
            cursor.clone(),
        );
        let id = dm.id.clone();
        s.emit_with_ack(
            events::CHAT_DIRECT,
            &[dm.payload()],
            ACK_TIMEOUT,
            move |res: Result<AckReply, AckError>| {
                let mut a = acks.borrow_mut();
                match res {
                    Ok(_) => a.acked.push(id),
                    Err(_) => a.failed = true,
                }
                a.left -= 1;
                if a.left > 0 {
                    return;
                }
                let acked = std::mem::take(&mut a.acked);
                let more = full && !a.failed;
                actix_rt::spawn(async move {
                    mark(&db, acked).await;
                    if more {
                        resend(db, to, user, cursor, page_bytes).await;
                    }
                });
            },
        );
    }
}
