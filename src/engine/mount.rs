//! `Mount<H>`: one Engine.IO endpoint (a path), the way it makes a handler for each new
//! connection, and the registry of its live sessions.
//!
//! Polling requests and upgrades find their session here directly (a lock and a hash
//! look-up on the request's worker), not by asking an actor. A session is registered when
//! it is created and leaves when it stops.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use actix::{Actor, Addr, AsyncContext};
use actix_web::web;
use futures_util::future::LocalBoxFuture;

use super::handler::EngineHandler;
use super::session::{CloseSession, Session};
use super::upgrade::Conn;
use super::{RequestInfo, Sid};
use crate::config::Config;
use crate::protocol::DisconnectReason;

/// Makes the handler of a new connection from its opening request.
pub type HandlerFactory<H> = Box<dyn Fn(&Arc<RequestInfo>) -> H + Send + Sync>;

/// An Engine.IO endpoint serving handlers of type `H`.
pub struct Mount<H: EngineHandler> {
    pub(crate) path: String,
    pub(crate) config: Arc<Config>,
    /// `server.trusted_proxies`, parsed once.
    pub(crate) trusted: Vec<ipnet::IpNet>,
    factory: HandlerFactory<H>,
    sessions: Mutex<HashMap<Sid, Addr<Session<H>>>>,
    /// Sessions not established yet (see [`EngineHandler::WAITS_TO_ESTABLISH`]).
    pending: Arc<AtomicUsize>,
    /// Draining: new sessions are refused (503).
    closing: AtomicBool,
    /// A plain WebSocket endpoint (`GET /ws`): no Engine.IO handshake, polling or packets.
    pub(crate) plain: bool,
}

impl<H: EngineHandler> Mount<H> {
    /// An endpoint at `path` (e.g. `/socket.io/`).
    pub fn new(path: &str, config: Arc<Config>, factory: HandlerFactory<H>) -> Arc<Self> {
        Self::with_framing(path, config, factory, false)
    }

    /// A plain WebSocket endpoint at `path` (e.g. `/ws`, docs/events.md): each text frame is
    /// one handler message as it is, the heartbeat is WebSocket pings, closes carry codes.
    pub fn plain(path: &str, config: Arc<Config>, factory: HandlerFactory<H>) -> Arc<Self> {
        Self::with_framing(path, config, factory, true)
    }

    fn with_framing(
        path: &str,
        config: Arc<Config>,
        factory: HandlerFactory<H>,
        plain: bool,
    ) -> Arc<Self> {
        let mount = Arc::new(Mount {
            path: path.to_owned(),
            trusted: config.trusted_proxies(),
            config,
            factory,
            sessions: Mutex::new(HashMap::new()),
            pending: Arc::new(AtomicUsize::new(0)),
            closing: AtomicBool::new(false),
            plain,
        });
        let map = if plain {
            "plain_sessions"
        } else {
            "engine_sessions"
        };
        crate::metrics::track_weak(map, &mount, |m| m.sessions().len());
        crate::metrics::track_weak("engine_pending", &mount.pending, |n| {
            n.load(Ordering::Relaxed)
        });
        mount
    }

    fn sessions(&self) -> MutexGuard<'_, HashMap<Sid, Addr<Session<H>>>> {
        // A panic while the lock was held cannot leave the map half-changed (single
        // inserts and removes), so a poisoned lock is still usable.
        self.sessions.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(super) fn new_handler(&self, request: &Arc<RequestInfo>) -> H {
        (self.factory)(request)
    }

    /// The live session `sid`, if any.
    pub(super) fn session(&self, sid: &str) -> Option<Addr<Session<H>>> {
        self.sessions().get(sid).cloned()
    }

    /// Takes a place for a new session; false when `limits.max_pending_sessions` are
    /// waiting to be established already (the handshake is then refused with 503).
    /// True once the mount drains: new sessions get 503.
    pub(super) fn closing(&self) -> bool {
        self.closing.load(Ordering::Acquire)
    }

    pub(super) fn admit(&self) -> bool {
        if !H::WAITS_TO_ESTABLISH {
            return true;
        }
        let max = self.config.limits.max_pending_sessions;
        let admitted = self
            .pending
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < max).then_some(n + 1)
            })
            .is_ok();
        if !admitted {
            crate::metrics::get().error("pending_sessions");
            crate::metrics::get().refused("pending_sessions");
        }
        admitted
    }

    /// A place taken by [`Mount::admit`] that no session took (the handshake failed).
    pub(super) fn unpend(&self) {
        unpend(&self.pending);
    }

    /// The pending count, for a new session to leave once established.
    pub(super) fn pending_counter(&self) -> Arc<AtomicUsize> {
        self.pending.clone()
    }

    /// Starts a session on polling and registers it.
    pub(super) fn open_polling(self: &Arc<Self>, info: RequestInfo) -> Addr<Session<H>> {
        let sid = Sid::from(super::random_id());
        let addr = Session::polling(sid.clone(), self.clone(), info).start();
        self.insert(sid, addr.clone());
        addr
    }

    /// Starts a session born on a WebSocket and registers it.
    pub(super) fn open_websocket<S>(
        self: &Arc<Self>,
        frames: S,
        writer: tokio::net::tcp::OwnedWriteHalf,
        info: RequestInfo,
    ) where
        S: futures_util::Stream<Item = super::ws::WsIn> + 'static,
    {
        let sid = Sid::from(super::random_id());
        let (me, id) = (self.clone(), sid.clone());
        let addr = Session::create(move |ctx| {
            ctx.add_stream(frames);
            Session::websocket(id, me, writer, info)
        });
        self.insert(sid, addr);
    }

    fn insert(&self, sid: Sid, addr: Addr<Session<H>>) {
        if self.sessions().insert(sid, addr).is_none() {
            crate::metrics::get().connections.inc();
        }
    }

    pub(super) fn remove(&self, sid: &Sid) {
        if self.sessions().remove(sid).is_some() {
            crate::metrics::get().connections.dec();
        }
    }
}

/// One pending session fewer.
pub(super) fn unpend(pending: &AtomicUsize) {
    let _ = pending.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1));
}

/// What the HTTP service needs of a mount, whatever its handler type.
pub trait Endpoint: Send + Sync + 'static {
    /// The path it serves.
    fn path(&self) -> &str;
    /// Adds its polling/handshake route to an app.
    fn configure(self: Arc<Self>, cfg: &mut web::ServiceConfig);
    /// Serves a WebSocket request that arrived with its raw connection.
    fn upgrade(
        self: Arc<Self>,
        req: actix_http::Request,
        conn: Conn,
    ) -> LocalBoxFuture<'static, ()>;
    /// Live Engine.IO sessions.
    fn len(&self) -> usize;
    /// True with no live session.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Tells every session to close for `reason`; returns how many were told.
    fn close_all(&self, reason: DisconnectReason) -> usize;
    /// Refuses new sessions from now on (503), as a draining server does.
    fn stop_admitting(&self);
    /// Closes every session for `reason`, spread evenly over `over` (the first at once);
    /// returns how many will be closed. Must be called inside the actix system.
    fn close_spread(&self, reason: DisconnectReason, over: Duration) -> usize;
}

impl<H: EngineHandler> Endpoint for Mount<H> {
    fn path(&self) -> &str {
        &self.path
    }

    fn configure(self: Arc<Self>, cfg: &mut web::ServiceConfig) {
        let path = self.path.clone();
        if self.plain {
            cfg.service(
                web::resource(path).default_service(web::to(super::http::upgrade_required)),
            );
            return;
        }
        cfg.service(
            web::resource(path)
                .app_data(web::Data::from(self))
                .default_service(web::to(super::http::endpoint::<H>)),
        );
    }

    fn upgrade(
        self: Arc<Self>,
        req: actix_http::Request,
        conn: Conn,
    ) -> LocalBoxFuture<'static, ()> {
        Box::pin(super::upgrade::serve(self, req, conn))
    }

    fn len(&self) -> usize {
        self.sessions().len()
    }

    fn close_all(&self, reason: DisconnectReason) -> usize {
        let all: Vec<_> = self.sessions().values().cloned().collect();
        for addr in &all {
            addr.do_send(CloseSession { reason });
        }
        all.len()
    }

    fn stop_admitting(&self) {
        self.closing.store(true, Ordering::Release);
    }

    fn close_spread(&self, reason: DisconnectReason, over: Duration) -> usize {
        let all: Vec<_> = self.sessions().values().cloned().collect();
        let n = all.len();
        if n == 0 {
            return 0;
        }
        actix_rt::spawn(async move {
            let start = tokio::time::Instant::now();
            for (i, addr) in all.into_iter().enumerate() {
                // session i of n closes at i/n of the way
                let at = start + over.mul_f64(i as f64 / n as f64);
                tokio::time::sleep_until(at).await;
                addr.do_send(CloseSession { reason });
            }
        });
        n
    }
}
