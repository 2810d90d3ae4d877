//! The application built into the server: namespaces, their handlers and rules
//! (validate → store → broadcast → ack). Built only on the public `socketio` API.

mod admin;
mod admin_ui;
pub mod api;
mod chat;
mod direct;
mod edits;
pub mod error;
pub mod events;
mod limits;
pub mod live;
pub mod names;
mod notifications;
pub mod notify;
pub mod outbound;
mod payload;
pub mod presence;
pub mod proxy;
pub mod reply;
pub mod server_api;
mod session_auth;
pub mod sse;
mod status;
mod writer;

use std::sync::Arc;

use crate::auth::Verifier;
use crate::config::Config;
use crate::db::Db;
use crate::socketio::{EventRate, Namespace, SocketIo};
use presence::Presence;
use session_auth::Access;

/// What the application finishes when the server drains.
#[derive(Clone)]
pub struct Drain {
    writer: writer::MessageWriter,
}

impl Drain {
    /// Refuses new `chat:send`s and waits until every accepted one is stored and acked (at
    /// most `max`).
    pub async fn run(self, max: std::time::Duration) {
        self.writer.drain(max).await
    }
}

/// The product's Socket.IO application, what it finishes on a drain, and its HTTP API; its presence
/// counts are shared with `presence` (the webhooks' `notified` asks them). Events of `/` the
/// server does not define go to the backend through `proxy` when their prefix says so.
pub fn socket_io(
    config: &Config,
    verifier: Arc<Verifier>,
    db: Db,
    presence: Presence,
    proxy: Option<proxy::ProxyLink>,
    hooks: Option<Arc<outbound::Hooks>>,
) -> (SocketIo, Drain, api::Api) {
    let allow_query = config.auth.allow_query_token;
    let auth = |access| {
        session_auth::authenticated(
            Namespace::new(),
            verifier.clone(),
            db.clone(),
            allow_query,
            access,
        )
    };
    let notifications = notifications::handlers(auth(Access::Users), db.clone(), presence.clone());
    let chat = auth(Access::Users);
    let writer = writer::MessageWriter::start(db.clone(), config.chat.write_queue, hooks.clone());
    let drain = Drain {
        writer: writer.clone(),
    };
    let admin = auth(Access::Admins);
    let admin_ui = config.admin_ui.enabled.then(|| auth(Access::AdminUi));
    let shared = Arc::new(chat::Chat {
        writer,
        db,
        presence,
        cfg: config.chat.clone(),
        sends: limits::UserSends::new(&config.limits),
        syncs: limits::SyncSlots::new(&config.limits),
        max_pending_dms: config.limits.max_pending_dms,
        max_queued_bytes: config.limits.max_queued_bytes,
        hooks,
    });
    let admin = admin::handlers(admin, shared.clone());
    let chat = chat::handlers(chat, shared.clone());
    let chat = edits::handlers(chat, shared.clone());
    let api = api::Api::new(
        shared.clone(),
        verifier.clone(),
        limits::UserSends::requests(&config.limits),
        config.sse.clone(),
    );
    let chat = direct::handlers(chat, shared.clone());
    let chat = status::handlers(chat, shared.db.clone(), shared.presence.clone());
    let proxy = proxy::Proxy::new(&config.proxy, proxy);
    let chat = chat.on_any(move |s, ev| {
        let user = session_auth::user_id(s);
        proxy.handle(s, ev, user)
    });
    let (notifications, admin) = (
        notifications.on_any(proxy::unknown),
        admin.on_any(proxy::unknown),
    );
    // The chat application turns connection state recovery on; a recovered socket is
    // authenticated again with the token it presents (docs/events.md).
    let l = &config.limits;
    let io = SocketIo::new()
        .event_rate(Some(EventRate {
            per_s: l.events_per_s,
            burst: l.events_burst,
            disconnect_after: std::time::Duration::from_millis(l.events_over_disconnect_ms),
        }))
        .recovery(true)
        .recovery_middleware(true)
        .namespace(names::CHAT, chat)
        .namespace(names::NOTIFICATIONS, notifications)
        .namespace(names::ADMIN, admin);
    let io = match admin_ui {
        Some(ui) => {
            let nsp = &config.admin_ui.namespace;
            names::set_admin_ui(nsp);
            log::info!("socket.io admin UI protocol on namespace {nsp} (admins only)");
            let feed = admin_ui::Feed::new(nsp);
            io.namespace(nsp, admin_ui::handlers(ui).on_any(proxy::unknown))
                .tap(move |s, event, args| feed.tap(s, event, args))
        }
        None => io,
    };
    (io, drain, api)
}
