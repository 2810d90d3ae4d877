//! Prometheus metrics (the `prometheus` crate), served as text at `GET /metrics`.
//!
//! Hot paths touch only pre-resolved counters (an atomic add): per-namespace counters are
//! looked up once per namespace or room actor, never per packet.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock, Weak};

use prometheus::{
    Encoder, Histogram, HistogramOpts, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

/// Every metric of the process, registered once.
pub struct Metrics {
    registry: Registry,
    /// Engine.IO connections.
    pub connections: IntGauge,
    /// Connections by transport: `polling`, `websocket` (Engine.IO, after an upgrade too)
    /// and `ws` (plain WebSocket, `GET /ws`).
    pub transports: IntGaugeVec,
    /// Sockets per namespace.
    pub sockets: IntGaugeVec,
    /// Client events received, per namespace.
    pub events_in: IntCounterVec,
    /// Packets sent to sockets (events, acks, broadcast deliveries), per namespace.
    pub events_out: IntCounterVec,
    /// Broadcasts emitted, per namespace.
    pub broadcasts: IntCounterVec,
    /// `rt_acks_total{direction="sent"}` (server answers), resolved once (hot paths); the
    /// vector itself lives in the registry only.
    pub acks_sent: IntCounter,
    /// `acks{direction="received"}`.
    pub acks_received: IntCounter,
    /// Errors by kind (`parse`, `slow_consumer`, `connect_refused`, application codes, ...).
    pub errors: IntCounterVec,
    /// Refusals by the limit that refused (docs/configuration.md): `events`, `user_sends`, `sync`,
    /// `json_depth`, `queued_bytes`, `attachments`, `pending_sessions`, `pending_dms`.
    pub refusals: IntCounterVec,
    /// From an event with ack arriving to its ack being sent.
    pub ack_latency: Histogram,
    /// From a broadcast's emit to its fan-out on a room's thread.
    pub delivery_latency: Histogram,
    /// Cluster: broadcasts relayed through Redis, `direction` = `published` or `received`.
    pub bridge_messages: IntCounterVec,
    /// Cluster: from a broadcast's publish on one node to its arrival on another.
    pub bridge_lag: Histogram,
    /// Cluster: messages of other nodes this node's subscriptions delivered (whatever
    /// became of them), `rt_bus_messages_received_total`.
    pub bus_received: IntCounter,
    /// Cluster: channels this node is subscribed to, `rt_bus_subscriptions`.
    pub bus_subscriptions: IntGauge,
    /// Cluster: reconnections of the Redis bridge.
    pub bridge_reconnects: IntCounter,
    /// Cluster: channel messages dropped, `reason` = `unverified` (no valid MAC: forged or
    /// another cluster's secret), `replayed`, `stale` (outside the 30 s window) or
    /// `undecodable`.
    pub bridge_rejected: IntCounterVec,
    /// Open Server-Sent Events streams (`GET /events`).
    pub sse_streams: IntGauge,
    /// 1 while the node drains (after SIGTERM/SIGINT), else 0.
    pub draining: IntGauge,
    /// Database work: `phase` = `wait` (for a pooled connection) or `query` (the work itself).
    pub db_seconds: prometheus::HistogramVec,
    /// HTTP requests under `/internal/` (webhooks, directory sync) and `/api/`, by route
    /// pattern.
    pub http_seconds: prometheus::HistogramVec,
    /// Outbound webhook events by outcome: `sent` (a 2xx), `failed` (an attempt to be
    /// retried), `dropped_gone` (a 410), `dropped_expired` (24 h without a 2xx).
    pub webhook_events: IntCounterVec,
    /// Outbound webhook events waiting (stored, not yet accepted; every node's).
    pub webhook_pending: IntGauge,
    /// Outbound webhook attempts, from request to answer.
    pub webhook_seconds: Histogram,
    /// Event proxy calls by outcome: `ok`, `error` (the backend's), `unavailable`,
    /// `refused` (over `proxy.max_in_flight`).
    pub proxy_calls: IntCounterVec,
    /// Event proxy calls, from the event to the ack.
    pub proxy_seconds: Histogram,
    /// Authenticated server API calls (`/internal/emit`, ...), by route name.
    pub server_api: IntCounterVec,
    /// `rt_state_entries{map}`: entries of each map that grows with sockets, users or rooms,
    /// read from their owners at every scrape ([`track_size`]).
    state_entries: IntGaugeVec,
    sizes: Mutex<Vec<SizeReader>>,
}

/// Reads one owner's entry count of a map; `None` once the owner is gone.
type SizeReader = (&'static str, Box<dyn Fn() -> Option<usize> + Send + Sync>);

const LATENCY_BUCKETS: &[f64] = &[
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
];

fn counter_vec(r: &Registry, name: &str, help: &str, labels: &[&str]) -> IntCounterVec {
    let c = IntCounterVec::new(Opts::new(name, help), labels).expect("valid metric");
    r.register(Box::new(c.clone())).expect("unique metric");
    c
}

fn histogram(r: &Registry, name: &str, help: &str) -> Histogram {
    let h = Histogram::with_opts(HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec()))
        .expect("valid metric");
    r.register(Box::new(h.clone())).expect("unique metric");
    h
}

fn histogram_vec(
    r: &Registry,
    name: &str,
    help: &str,
    labels: &[&str],
) -> prometheus::HistogramVec {
    let h = prometheus::HistogramVec::new(
        HistogramOpts::new(name, help).buckets(LATENCY_BUCKETS.to_vec()),
        labels,
    )
    .expect("valid metric");
    r.register(Box::new(h.clone())).expect("unique metric");
    h
}

impl Metrics {
    fn new() -> Metrics {
        let r = Registry::new();
        let connections =
            IntGauge::new("rt_connections", "Engine.IO connections").expect("valid metric");
        r.register(Box::new(connections.clone()))
            .expect("unique metric");
        let transports = IntGaugeVec::new(
            Opts::new(
                "rt_transport_connections",
                "Connections by transport (polling, websocket, ws)",
            ),
            &["transport"],
        )
        .expect("valid metric");
        r.register(Box::new(transports.clone()))
            .expect("unique metric");
        for t in TRANSPORTS {
            transports.with_label_values(&[t]);
        }
        let sockets = IntGaugeVec::new(
            Opts::new("rt_sockets", "Sockets per namespace"),
            &["namespace"],
        )
        .expect("valid metric");
        r.register(Box::new(sockets.clone()))
            .expect("unique metric");
        let bridge_reconnects = IntCounter::new(
            "rt_bridge_reconnects_total",
            "Reconnections of the Redis bridge",
        )
        .expect("valid metric");
        r.register(Box::new(bridge_reconnects.clone()))
            .expect("unique metric");
        let bus_received = IntCounter::new(
            "rt_bus_messages_received_total",
            "Messages of other nodes delivered to this node by its cluster subscriptions",
        )
        .expect("valid metric");
        r.register(Box::new(bus_received.clone()))
            .expect("unique metric");
        let bus_subscriptions = IntGauge::new(
            "rt_bus_subscriptions",
            "Cluster channels this node is subscribed to",
        )
        .expect("valid metric");
        r.register(Box::new(bus_subscriptions.clone()))
            .expect("unique metric");
        let sse_streams = IntGauge::new("rt_sse_streams", "Open Server-Sent Events streams")
            .expect("valid metric");
        r.register(Box::new(sse_streams.clone()))
            .expect("unique metric");
        let draining =
            IntGauge::new("rt_draining", "1 while the node drains, else 0").expect("valid metric");
        r.register(Box::new(draining.clone()))
            .expect("unique metric");
        // process_cpu_seconds_total, process_resident_memory_bytes, process_open_fds, ...
        r.register(Box::new(
            prometheus::process_collector::ProcessCollector::for_self(),
        ))
        .expect("unique metric");
        let acks = counter_vec(&r, "rt_acks_total", "Acknowledgements", &["direction"]);
        let state_entries = IntGaugeVec::new(
            Opts::new(
                "rt_state_entries",
                "Entries of the node's maps that grow with sockets, users and rooms, by map \
                 (docs/configuration.md lists them): each is bounded by what is live",
            ),
            &["map"],
        )
        .expect("valid metric");
        r.register(Box::new(state_entries.clone()))
            .expect("unique metric");
        let webhook_pending = IntGauge::new(
            "rt_webhook_pending",
            "Outbound webhook events waiting to be accepted (all nodes)",
        )
        .expect("valid metric");
        r.register(Box::new(webhook_pending.clone()))
            .expect("unique metric");
        let webhook_events = counter_vec(
            &r,
            "rt_webhook_events_total",
            "Outbound webhook events: sent, failed (attempts), dropped_gone, dropped_expired",
            &["outcome"],
        );
        for outcome in ["sent", "failed", "dropped_gone", "dropped_expired"] {
            webhook_events.with_label_values(&[outcome]);
        }
        let server_api = counter_vec(
            &r,
            "rt_server_api_total",
            "Authenticated server API calls, by route: emit, room_message, disconnect, presence, online, stats",
            &["route"],
        );
        for route in [
            "emit",
            "room_message",
            "disconnect",
            "presence",
            "online",
            "stats",
        ] {
            server_api.with_label_values(&[route]);
        }
        let proxy_calls = counter_vec(
            &r,
            "rt_proxy_calls_total",
            "Event proxy calls by outcome: ok, error, unavailable, refused",
            &["outcome"],
        );
        for outcome in ["ok", "error", "unavailable", "refused"] {
            proxy_calls.with_label_values(&[outcome]);
        }
        Metrics {
            proxy_calls,
            proxy_seconds: histogram(
                &r,
                "rt_proxy_seconds",
                "Event proxy calls, from the client's event to its ack",
            ),
            server_api,
            acks_sent: acks.with_label_values(&["sent"]),
            acks_received: acks.with_label_values(&["received"]),
            connections,
            transports,
            sockets,
            events_in: counter_vec(
                &r,
                "rt_events_in_total",
                "Client events received",
                &["namespace"],
            ),
            events_out: counter_vec(
                &r,
                "rt_events_out_total",
                "Packets sent to sockets (events, acks, broadcast deliveries)",
                &["namespace"],
            ),
            broadcasts: counter_vec(
                &r,
                "rt_broadcasts_total",
                "Broadcasts emitted",
                &["namespace"],
            ),
            errors: counter_vec(&r, "rt_errors_total", "Errors by kind", &["kind"]),
            refusals: counter_vec(
                &r,
                "rt_limit_refusals_total",
                "Requests, events and connections refused by a limit",
                &["limit"],
            ),
            ack_latency: histogram(
                &r,
                "rt_ack_latency_seconds",
                "From an event with ack arriving to its ack being sent",
            ),
            delivery_latency: histogram(
                &r,
                "rt_delivery_latency_seconds",
                "From a broadcast's emit to its fan-out on a room's thread",
            ),
            bridge_messages: counter_vec(
                &r,
                "rt_bridge_messages_total",
                "Broadcasts relayed through Redis",
                &["direction"],
            ),
            bridge_lag: histogram(
                &r,
                "rt_bridge_lag_seconds",
                "From a broadcast's publish on one node to its arrival on another",
            ),
            bridge_reconnects,
            bus_received,
            bus_subscriptions,
            bridge_rejected: counter_vec(
                &r,
                "rt_bridge_rejected_total",
                "Cluster channel messages dropped: unverified, replayed, stale or undecodable",
                &["reason"],
            ),
            sse_streams,
            draining,
            db_seconds: histogram_vec(
                &r,
                "rt_db_seconds",
                "Database work: waiting for a connection, then the query",
                &["phase"],
            ),
            http_seconds: histogram_vec(
                &r,
                "rt_http_seconds",
                "Requests to /internal/ (webhooks, directory) and /api/, by route",
                &["route"],
            ),
            webhook_events,
            webhook_pending,
            webhook_seconds: histogram(
                &r,
                "rt_webhook_seconds",
                "Outbound webhook attempts, from request to answer",
            ),
            state_entries,
            sizes: Mutex::new(Vec::new()),
            registry: r,
        }
    }

    /// Reads every tracked map's size into `rt_state_entries` (summed over the owners of
    /// each map: several servers may share a process), forgetting owners that are gone.
    fn read_sizes(&self) {
        let mut sizes = self.sizes.lock().unwrap_or_else(|e| e.into_inner());
        // a map whose owners are all gone reads 0
        let mut totals: Vec<(&'static str, usize)> = MAPS.iter().map(|m| (*m, 0)).collect();
        sizes.retain(|(map, read)| {
            let n = read();
            match totals.iter_mut().find(|(m, _)| m == map) {
                Some((_, t)) => *t += n.unwrap_or(0),
                None => totals.push((map, n.unwrap_or(0))),
            }
            n.is_some()
        });
        for (map, n) in totals {
            self.state_entries.with_label_values(&[map]).set(n as i64);
        }
    }

    /// Counts one refusal by `limit`.
    pub fn refused(&self, limit: &str) {
        self.refusals.with_label_values(&[limit]).inc();
    }

    /// Counts one error of `kind`.
    pub fn error(&self, kind: &str) {
        self.errors.with_label_values(&[kind]).inc();
    }
}

/// Every limit that counts refusals (docs/configuration.md), so each series exists from the start.
const LIMITS: &[&str] = &[
    "events",
    "user_sends",
    "requests",
    "sync",
    "json_depth",
    "queued_bytes",
    "attachments",
    "pending_sessions",
    "pending_dms",
    "sse_streams",
];

/// Every map shown in `rt_state_entries` (docs/configuration.md says what each holds), so
/// each series exists from the start.
const MAPS: &[&str] = &[
    "engine_sessions",
    "plain_sessions",
    "engine_pending",
    "engine_actors",
    "sockets",
    "worker_sockets",
    "rooms",
    "room_actors",
    "watched_rooms",
    "recovery_sockets",
    "recovery_packets",
    "presence_rooms",
    "presence_sockets",
    "presence_states",
    "user_send_buckets",
    "request_buckets",
    "sync_slots",
    "sse_users",
    "bridge_presence_keys",
    "bridge_senders",
];

/// The process's metrics.
pub fn get() -> &'static Metrics {
    static M: OnceLock<Metrics> = OnceLock::new();
    M.get_or_init(|| {
        let m = Metrics::new();
        // Series that exist from the start at 0 (a dashboard's rate() needs them before the
        // first event): every limit, the bridge's directions and reasons, the errors a healthy
        // node should show as 0.
        for l in LIMITS {
            m.refusals.with_label_values(&[l]);
        }
        for d in ["published", "received"] {
            m.bridge_messages.with_label_values(&[d]);
        }
        for r in ["unverified", "replayed", "stale", "undecodable"] {
            m.bridge_rejected.with_label_values(&[r]);
        }
        for k in ["slow_consumer", "parse"] {
            m.errors.with_label_values(&[k]);
        }
        for p in ["wait", "query"] {
            m.db_seconds.with_label_values(&[p]);
        }
        for map in MAPS {
            m.state_entries.with_label_values(&[map]);
        }
        m
    })
}

/// The transports `rt_transport_connections` counts.
pub const TRANSPORTS: [&str; 3] = ["polling", "websocket", "ws"];

/// This node's connections by transport, and its open SSE streams, as `admin:stats` shows
/// them: `{polling, websocket, ws, sse}`.
pub fn transport_counts() -> serde_json::Value {
    let m = get();
    let mut o = serde_json::Map::new();
    for t in TRANSPORTS {
        o.insert(
            t.into(),
            m.transports.with_label_values(&[t]).get().max(0).into(),
        );
    }
    o.insert("sse".into(), m.sse_streams.get().max(0).into());
    serde_json::Value::Object(o)
}

/// Events received and events written (acks not counted) since start, over every
/// namespace: what `admin:stats` reports as `eventsIn` / `eventsOut`.
pub fn event_totals() -> (u64, u64) {
    use prometheus::core::Collector;
    let m = get();
    let sum = |v: &IntCounterVec| -> u64 {
        v.collect()
            .iter()
            .flat_map(|f| f.get_metric())
            .map(|x| x.get_counter().get_value() as u64)
            .sum()
    };
    let out = sum(&m.events_out).saturating_sub(m.acks_sent.get());
    (sum(&m.events_in), out)
}

/// Shows the size of a map as `rt_state_entries{map}`: `read` is called at every scrape
/// (keep it to a lock and a `len`) until it answers `None` (its owner is gone). Owners hold
/// the map; the reader holds a `Weak` to it ([`track_weak`]) or a [`SizeCell`].
pub fn track_size(map: &'static str, read: impl Fn() -> Option<usize> + Send + Sync + 'static) {
    debug_assert!(MAPS.contains(&map), "{map} is listed in MAPS");
    let m = get();
    m.sizes
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .push((map, Box::new(read)));
}

/// [`track_size`] of a map inside `owner`, read with `len` while the owner lives.
pub fn track_weak<T: Send + Sync + 'static>(
    map: &'static str,
    owner: &Arc<T>,
    len: impl Fn(&T) -> usize + Send + Sync + 'static,
) {
    let weak: Weak<T> = Arc::downgrade(owner);
    track_size(map, move || weak.upgrade().map(|t| len(&t)));
}

/// A size kept up to date by its owner (an actor's map, read where it changes) and shown
/// as `rt_state_entries{map}` while the cell lives.
#[derive(Clone)]
pub struct SizeCell(Arc<AtomicUsize>);

impl SizeCell {
    /// A cell for `map`, at 0.
    pub fn new(map: &'static str) -> SizeCell {
        let cell = Arc::new(AtomicUsize::new(0));
        track_weak(map, &cell, |n| n.load(Ordering::Relaxed));
        SizeCell(cell)
    }

    /// The map now holds `n` entries.
    pub fn set(&self, n: usize) {
        self.0.store(n, Ordering::Relaxed);
    }

    /// One more entry.
    pub fn add(&self) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }

    /// One entry less.
    pub fn sub(&self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Everything in the Prometheus text format.
pub fn render() -> String {
    get().read_sizes();
    let mut buf = Vec::new();
    if let Err(e) = TextEncoder::new().encode(&get().registry.gather(), &mut buf) {
        log::error!("metrics encoding failed err={e}");
    }
    String::from_utf8(buf).unwrap_or_default()
}

/// Per-namespace counters resolved once.
#[derive(Clone)]
pub struct NsCounters {
    /// `rt_events_in_total{nsp}`.
    pub events_in: IntCounter,
    /// `rt_events_out_total{nsp}`.
    pub events_out: IntCounter,
}

impl NsCounters {
    /// The counters of namespace `nsp`.
    pub fn new(nsp: &str) -> NsCounters {
        let m = get();
        NsCounters {
            events_in: m.events_in.with_label_values(&[nsp]),
            events_out: m.events_out.with_label_values(&[nsp]),
        }
    }
}
