//! The `@socket.io/admin-ui` server protocol on `admin_ui.namespace` (docs/admin-ui.md):
//! the stock UI lists this cluster's servers, sockets, clients and rooms, follows them live
//! and can disconnect sockets.
//!
//! Admins only: the UI's login form sends the admin JWT as the password; the `session` the
//! UI keeps for reconnecting is that token again, so it ends when the token does. Nothing
//! is added to the path of client events: each UI socket polls the cluster every
//! [`EVERY`] (`fetch_sockets`, the nodes' figures) and tells the UI what changed since its
//! last look, as the events the UI understands (`socket_connected`, `room_joined`, …).
//! Client events reach the UI (`event_received`) through the server's event tap, only
//! while a UI is open somewhere in the cluster and at most [`FEED_PER_S`] a second per node.

use std::cell::RefCell;
use std::collections::{BTreeSet, HashMap};
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Once};
use std::time::{Duration, SystemTime};

use serde_json::{json, Map, Value};

use super::error::AppError;
use super::reply;
use crate::db::now_ms;
use crate::socketio::{Event, FetchQuery, Namespace, SocketCtx, SocketInfo, Stats};

/// How often a UI socket is told what changed.
pub const EVERY: Duration = Duration::from_secs(2);
/// Sockets the UI is shown at most (the oldest).
pub const SHOWN: usize = 1000;
/// What the UI may do here: disconnect sockets (one, a room's, a namespace's), read the
/// aggregated event counts and follow the events clients send. Emitting, joining and
/// leaving are not offered: they would bypass the application's own rules (room access,
/// presence, reserved events).
const FEATURES: [&str; 4] = [
    "DISCONNECT",
    "MDISCONNECT",
    "AGGREGATED_EVENTS",
    "ALL_EVENTS",
];
/// Client events one node passes to the UI per second at most (beyond, they are counted in
/// `rt_errors_total{kind="admin_ui_feed_dropped"}` and dropped).
pub const FEED_PER_S: u32 = 100;
/// How often a node checks whether any UI is open in the cluster.
const FEED_CHECK: Duration = Duration::from_secs(2);
const TIMER: &str = "admin-ui";

/// What one UI socket saw last.
#[derive(Default)]
struct Seen {
    /// By namespace and socket id: its transport and rooms.
    sockets: HashMap<(String, String), (String, BTreeSet<String>)>,
    /// Per node: events in and out so far.
    totals: HashMap<String, (u64, u64)>,
    /// The first look is sent whole (`all_sockets`).
    started: bool,
}

/// Adds the admin UI's handlers to `ns` (already authenticated as admin).
pub fn handlers(ns: Namespace) -> Namespace {
    ns.on_connect(|s| {
        // the session the UI reconnects with is the token it logged in with
        if let Some(t) = s.handshake().and_then(super::session_auth::admin_ui_token) {
            s.emit("session", &[Value::from(t)]);
        }
        s.emit("config", &[json!({ "supportedFeatures": FEATURES })]);
        tick(s, Rc::new(RefCell::new(Seen::default())));
    })
    .on("_disconnect", disconnect)
}

/// Looks at the cluster, tells the UI, and looks again after [`EVERY`].
fn tick(s: &mut SocketCtx<'_>, seen: Rc<RefCell<Seen>>) {
    let (io, h) = (s.io_handle(), s.handle());
    let now_seen = seen.clone();
    actix_rt::spawn(async move {
        let stats = io.cluster_stats().await;
        let sockets = io
            .fetch_sockets(FetchQuery {
                limit: SHOWN,
                handshake: true,
                ..FetchQuery::default()
            })
            .await;
        let mut seen = now_seen.borrow_mut();
        let now = now_ms();
        for st in &stats {
            h.emit("server_stats", vec![server_stats(st, &mut seen, now)]);
        }
        for (event, args) in changes(&sockets, &mut seen, now) {
            h.emit(event, args);
        }
    });
    s.set_timer(TIMER, EVERY, move |s| tick(s, seen));
}

/// One node's `server_stats`, with the events in and out since the last look.
fn server_stats(st: &Stats, seen: &mut Seen, now: i64) -> Value {
    let (before_in, before_out) = seen
        .totals
        .insert(st.node_id.clone(), (st.events_in, st.events_out))
        .unwrap_or((st.events_in, st.events_out));
    let second = now - now % 1000;
    let mut aggregated = Vec::new();
    for (kind, n) in [
        ("packetsIn", st.events_in.saturating_sub(before_in)),
        ("packetsOut", st.events_out.saturating_sub(before_out)),
    ] {
        if n > 0 {
            aggregated.push(json!({"timestamp": second, "type": kind, "count": n}));
        }
    }
    let polling = st.transports.get("polling").and_then(Value::as_u64);
    let namespaces: Vec<Value> = super::names::every()
        .map(|name| {
            let n = st.sockets.get(name).and_then(Value::as_u64).unwrap_or(0);
            json!({"name": name, "socketsCount": n})
        })
        .collect();
    json!({
        "serverId": st.node_id,
        "hostname": st.node_id,
        "pid": 0,
        "uptime": st.uptime_s,
        "clientsCount": st.sessions,
        "pollingClientsCount": polling.unwrap_or(0),
        "aggregatedEvents": aggregated,
        "namespaces": namespaces,
    })
}

/// What changed since the last look, as the UI's events (the whole list the first time).
fn changes(now: &[SocketInfo], seen: &mut Seen, at: i64) -> Vec<(&'static str, Vec<Value>)> {
    let date = Value::from(date(at));
    let mut out = Vec::new();
    let mut current = HashMap::with_capacity(now.len());
    for s in now {
        let rooms: BTreeSet<String> = s.rooms.iter().cloned().collect();
        current.insert((s.nsp.clone(), s.id.clone()), (s.transport.clone(), rooms));
    }
    if !seen.started {
        seen.started = true;
        out.push((
            "all_sockets",
            vec![Value::from(now.iter().map(serialize).collect::<Vec<_>>())],
        ));
        seen.sockets = current;
        return out;
    }
    for s in now {
        let key = (s.nsp.clone(), s.id.clone());
        let (transport, rooms) = &current[&key];
        match seen.sockets.get(&key) {
            None => out.push(("socket_connected", vec![serialize(s), date.clone()])),
            Some((was, before)) => {
                if was != transport {
                    out.push((
                        "socket_updated",
                        vec![json!({"id": s.id, "nsp": s.nsp, "transport": transport})],
                    ));
                }
                for r in rooms.difference(before) {
                    out.push((
                        "room_joined",
                        vec![json!(s.nsp), json!(r), json!(s.id), date.clone()],
                    ));
                }
                for r in before.difference(rooms) {
                    out.push((
                        "room_left",
                        vec![json!(s.nsp), json!(r), json!(s.id), date.clone()],
                    ));
                }
            }
        }
    }
    for (nsp, id) in seen.sockets.keys().filter(|k| !current.contains_key(*k)) {
        out.push((
            "socket_disconnected",
            vec![json!(nsp), json!(id), json!("disconnected"), date.clone()],
        ));
    }
    seen.sockets = current;
    out
}

/// An ISO 8601 time (the UI reads these as `Date`s).
fn date(ms: i64) -> String {
    let t = SystemTime::UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0));
    humantime::format_rfc3339_millis(t).to_string()
}

/// A socket as the UI lists it (credentials in its handshake were redacted on its node).
fn serialize(s: &SocketInfo) -> Value {
    let pairs = |v: &[(String, String)]| -> Map<String, Value> {
        v.iter()
            .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
            .collect()
    };
    let (headers, query) = s
        .handshake
        .as_ref()
        .map(|h| (pairs(&h.headers), pairs(&h.query)))
        .unwrap_or_default();
    let secure = headers
        .get("x-forwarded-proto")
        .and_then(Value::as_str)
        .is_some_and(|p| p == "https");
    let xdomain = headers.contains_key("origin");
    let mut rooms = vec![s.id.clone()];
    rooms.extend(s.rooms.iter().cloned());
    json!({
        "id": s.id,
        // an event stream has no Engine.IO connection: it is its own client
        "clientId": if s.client_id.is_empty() { &s.id } else { &s.client_id },
        "transport": s.transport,
        "nsp": s.nsp,
        "data": s.data,
        "handshake": {
            "address": s.address,
            "headers": headers,
            "query": query,
            "issued": s.connected_at,
            "time": date(s.connected_at),
            "secure": secure,
            "url": "",
            "xdomain": xdomain,
        },
        "rooms": rooms,
    })
}

/// `_disconnect (nsp, close, filter?)`: the socket `filter` names (on any node), or the
/// sockets of room `filter`, or without a filter every socket of `nsp` (this UI's own
/// namespace is refused: the UI would cut itself off).
fn disconnect(s: &mut SocketCtx<'_>, ev: Event) {
    let nsp = ev.args.first().and_then(Value::as_str).map(str::to_owned);
    let filter = ev.args.get(2).and_then(Value::as_str).map(str::to_owned);
    let Some(nsp) = nsp.filter(|n| n.starts_with('/')) else {
        return reply::fail(
            s,
            ev.ack,
            &AppError::invalid("expected (nsp, close, filter?)"),
        );
    };
    let by = super::session_auth::user_id(s).unwrap_or_default();
    let io = s.io_handle();
    match filter {
        None if nsp == s.nsp() => {
            return reply::fail(
                s,
                ev.ack,
                &AppError::invalid("the admin UI's own namespace is not disconnected whole"),
            )
        }
        None => io.of(&nsp).disconnect_sockets(),
        Some(f) => {
            io.of(&nsp).to(&f).disconnect_sockets();
            // an event stream is found by its id
            let query = FetchQuery {
                nsp: Some(nsp.clone()),
                ids: vec![f],
                limit: 1,
                disconnect: true,
                ..FetchQuery::default()
            };
            actix_rt::spawn(async move {
                io.fetch_sockets(query).await;
            });
        }
    }
    log::info!("admin={by} disconnected sockets of nsp={nsp} through the admin UI");
    if ev.ack.is_some() {
        reply::ok(s, ev.ack, json!({}));
    }
}

/// The feed of client events to the UI on this node.
pub struct Feed {
    /// The UI's namespace.
    nsp: String,
    /// Some node has a UI socket (checked every [`FEED_CHECK`]).
    watching: Arc<AtomicBool>,
    checking: Once,
    /// This second (ms of its start) and the events passed in it.
    window: Mutex<(i64, u32)>,
}

impl Feed {
    /// The feed to the UI on namespace `nsp`.
    pub fn new(nsp: &str) -> Arc<Self> {
        Arc::new(Feed {
            nsp: nsp.to_owned(),
            watching: Arc::default(),
            checking: Once::new(),
            window: Mutex::new((0, 0)),
        })
    }

    /// Sees one client event (the server's event tap): passes it to every UI as
    /// `event_received (nsp, id, [event, ...args], time)` while one is open.
    pub fn tap(&self, s: &SocketCtx<'_>, event: &str, args: &[Value]) {
        self.checking.call_once(|| self.check(s.io_handle()));
        if !self.watching.load(Ordering::Relaxed) || s.nsp() == self.nsp {
            return;
        }
        let now = now_ms();
        {
            let mut w = self.window.lock().unwrap_or_else(|e| e.into_inner());
            if now - w.0 >= 1000 {
                *w = (now - now % 1000, 0);
            }
            if w.1 >= FEED_PER_S {
                crate::metrics::get().error("admin_ui_feed_dropped");
                return;
            }
            w.1 += 1;
        }
        let mut all = Vec::with_capacity(args.len() + 1);
        all.push(Value::from(event));
        if event == super::events::AUTH_REFRESH {
            // a token is a credential: the UI is told the event, not the token
            all.push(Value::from(crate::socketio::adapter::REDACTED));
        } else {
            all.extend_from_slice(args);
        }
        s.io_handle().of(&self.nsp).emit(
            "event_received",
            &[
                json!(s.nsp()),
                json!(s.id()),
                Value::from(all),
                Value::from(date(now)),
            ],
        );
    }

    /// Follows whether any node has a UI socket, from the nodes' figures.
    fn check(&self, io: crate::socketio::IoHandle) {
        let (watching, nsp) = (self.watching.clone(), self.nsp.clone());
        actix_rt::spawn(async move {
            loop {
                let open = io
                    .cluster_stats()
                    .await
                    .iter()
                    .any(|st| st.sockets.get(&nsp).and_then(Value::as_u64).unwrap_or(0) > 0);
                watching.store(open, Ordering::Relaxed);
                tokio::time::sleep(FEED_CHECK).await;
            }
        });
    }
}
