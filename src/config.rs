//! Configuration, layered with the `config` crate:
//! built-in defaults < `config/default.toml` < `config/local.toml` < env `RT__SECTION__KEY`
//! < the conventional variables (`HOST`, `PORT`, `CLIENT_URL`).
//!
//! Only plain data lives here; nothing reads files or the environment outside [`Config::load`].

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The whole configuration, one field per `[section]`.
#[allow(missing_docs)] // each section's type says what it is
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub engine: EngineConfig,
    pub recovery: RecoveryConfig,
    pub cors: CorsConfig,
    pub auth: AuthConfig,
    pub database: DatabaseConfig,
    pub internal: InternalConfig,
    pub chat: ChatConfig,
    pub notifications: NotificationsConfig,
    pub redis: RedisConfig,
    pub limits: LimitsConfig,
    pub sse: SseConfig,
    pub log: LogConfig,
    pub presence: PresenceConfig,
    pub webhooks: WebhooksConfig,
    pub proxy: ProxyConfig,
    pub admin_ui: AdminUiConfig,
}

/// `[admin_ui]`: the `@socket.io/admin-ui` server protocol (docs/admin-ui.md).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AdminUiConfig {
    /// Speak it (off by default).
    pub enabled: bool,
    /// On this namespace (admins only, with their JWT as the password).
    pub namespace: String,
}

impl Default for AdminUiConfig {
    fn default() -> Self {
        AdminUiConfig {
            enabled: false,
            namespace: "/admin-ui".into(),
        }
    }
}

/// `[proxy]`: client events the server does not define, passed to the backend
/// (docs/extending.md).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ProxyConfig {
    /// Where calls are POSTed; none: no event is passed on.
    pub url: Option<String>,
    /// Their signing secret (at least 32 bytes; required with `url`).
    pub secret: Option<String>,
    /// Events whose names start with one of these are passed on.
    pub prefixes: Vec<String>,
    /// A call without an answer this long acks `UNAVAILABLE` (milliseconds).
    pub timeout_ms: u64,
    /// Calls in flight per node; beyond, a call is refused with `RATE_LIMITED` at once.
    pub max_in_flight: usize,
}

impl Default for ProxyConfig {
    fn default() -> Self {
        ProxyConfig {
            url: None,
            secret: None,
            prefixes: vec!["rpc:".into()],
            timeout_ms: 5000,
            max_in_flight: 1000,
        }
    }
}

/// `[presence]` (docs/events.md).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PresenceConfig {
    /// A user turns offline (a room vacated) this long after its last socket went.
    pub grace_ms: u64,
}

impl Default for PresenceConfig {
    fn default() -> Self {
        PresenceConfig { grace_ms: 5000 }
    }
}

/// Every type of outbound webhook event (docs/events.md), the default of `webhooks.events`.
pub const WEBHOOK_EVENT_TYPES: &[&str] = &[
    "user.online",
    "user.offline",
    "room.occupied",
    "room.vacated",
    "message.created",
    "message.updated",
    "message.deleted",
    "direct.created",
];

/// `[webhooks]`: outbound events (docs/events.md).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WebhooksConfig {
    /// Where events are POSTed; none: no events are stored or sent.
    pub outbound_url: Option<String>,
    /// Their signing secret (at least 32 bytes; required with `outbound_url`).
    pub outbound_secret: Option<String>,
    /// How long a node holds an event it sends before another node may take it over
    /// (milliseconds; 0: 30 s).
    pub outbound_lease_ms: u64,
    /// The event types sent (default: every one of [`WEBHOOK_EVENT_TYPES`]).
    pub events: Vec<String>,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        WebhooksConfig {
            outbound_url: None,
            outbound_secret: None,
            outbound_lease_ms: 0,
            events: WEBHOOK_EVENT_TYPES
                .iter()
                .map(|t| (*t).to_owned())
                .collect(),
        }
    }
}

/// How log lines look (`RUST_LOG` says which are written).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogConfig {
    /// `text` (default) or `json` (one object per line).
    pub format: LogFormat,
}

/// The log line format.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// `[ts LEVEL target] message key=value …`
    #[default]
    Text,
    /// `{"ts":…,"level":…,"target":…,"msg":…, fields…}`
    Json,
}

/// Server-Sent Events (`GET /events`, docs/http.md).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SseConfig {
    /// A comment line goes down an idle stream this often, so proxies keep it open.
    pub keepalive_ms: u64,
    /// Streams one user may hold open on one node; beyond, `429 RATE_LIMITED`.
    pub max_per_user: usize,
}

impl Default for SseConfig {
    fn default() -> Self {
        SseConfig {
            keepalive_ms: 15_000,
            max_per_user: 10,
        }
    }
}

/// Limits every client is held to (docs/configuration.md).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LimitsConfig {
    /// Bytes queued to one connection (frames, polling payloads, pongs) before it counts as
    /// a slow consumer and is closed.
    pub max_queued_bytes: usize,
    /// Binary attachments of one packet (their total size is bounded by
    /// `engine.max_payload`); more closes the connection.
    pub max_attachments: usize,
    /// Levels an event's arguments may nest; deeper is refused (`INVALID_PAYLOAD`), the
    /// socket stays.
    pub max_json_depth: usize,
    /// Engine.IO sessions per node not yet in a namespace; beyond, new handshakes get 503.
    pub max_pending_sessions: usize,
    /// Longest token lifetime accepted (`exp − iat`, or `exp − now` without `iat`), seconds.
    pub max_token_lifetime_s: u64,
    /// Client events per socket and second (a token bucket; 0: no limit). Over it: refused
    /// with `RATE_LIMITED`.
    pub events_per_s: u32,
    /// The bucket's size: events a socket may send at once.
    pub events_burst: u32,
    /// A socket refused at least once a second for this long is disconnected.
    pub events_over_disconnect_ms: u64,
    /// `chat:send`s and DMs per user and second, on each node (0: no limit).
    pub user_sends_per_s: u32,
    /// Their bucket's size.
    pub user_sends_burst: u32,
    /// `room:sync` answers being prepared for one socket at a time.
    pub sync_in_flight: usize,
    /// Offline DMs waiting for one target user; beyond, the sender gets `RATE_LIMITED`.
    pub max_pending_dms: u64,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            max_queued_bytes: 8 << 20,
            max_attachments: 10,
            max_json_depth: 64,
            max_pending_sessions: 10_000,
            max_token_lifetime_s: 30 * 24 * 3600,
            events_per_s: 100,
            events_burst: 200,
            events_over_disconnect_ms: 10_000,
            user_sends_per_s: 20,
            user_sends_burst: 40,
            sync_in_flight: 2,
            max_pending_dms: 10_000,
        }
    }
}

/// Several nodes: the Redis that relays broadcasts and keeps cluster state (`REDIS_URL`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RedisConfig {
    /// `redis://host:port/`; unset: a single node, no bridge.
    pub url: Option<String>,
    /// The key that authenticates what nodes write to Redis (`CLUSTER_SECRET`): required,
    /// at least 32 bytes, whenever `url` is set; the same on every node.
    pub cluster_secret: Option<String>,
}

/// Webhook notifications.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NotificationsConfig {
    /// `isLowStock` is true below this stock.
    pub low_stock_threshold: u64,
}

impl Default for NotificationsConfig {
    fn default() -> Self {
        NotificationsConfig {
            low_stock_threshold: 10,
        }
    }
}

/// The chat application's limits.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChatConfig {
    /// Longest message (and DM) text, in Unicode scalar values, after trimming.
    pub max_chars: usize,
    /// Messages a joiner gets as `room:history`.
    pub history: i64,
    /// Most messages one `room:sync` answers.
    pub sync_limit: i64,
    /// A typing indicator stops by itself this long after the last `chat:typing-start`.
    pub typing_ms: u64,
    /// `chat:send`s waiting for the writer at most; beyond, senders get `RATE_LIMITED`.
    pub write_queue: usize,
}

impl Default for ChatConfig {
    fn default() -> Self {
        ChatConfig {
            max_chars: 2000,
            history: 50,
            sync_limit: 200,
            typing_ms: 3000,
            write_queue: 20_000,
        }
    }
}

/// The backend-facing HTTP endpoints.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct InternalConfig {
    /// HMAC key of `X-Signature-256` (`WEBHOOK_SECRET`); unset: internal calls are refused.
    pub webhook_secret: Option<String>,
    /// A private listener (`127.0.0.1:4001`) for `/internal/…` and `/metrics`; set, they
    /// answer 404 on the public port. Unset: everything is on the public port.
    pub addr: Option<String>,
}

/// Storage: SQLite by default, PostgreSQL for several nodes (`DATABASE_URL`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DatabaseConfig {
    /// `sqlite://PATH`, a plain path, or `postgres://…`.
    pub url: String,
    /// Connections in the pool.
    pub pool_size: u32,
    /// SQLite's page cache per pooled connection, in KiB.
    pub sqlite_cache_kib: u32,
}

impl Default for DatabaseConfig {
    fn default() -> Self {
        DatabaseConfig {
            url: "sqlite://data/realtime.db".into(),
            pool_size: 8,
            sqlite_cache_kib: 512, // as `db::SQLITE_CACHE_KIB`
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
/// The listener and the node.
pub struct ServerConfig {
    /// Listen address (`HOST`).
    pub host: String,
    /// Listen port (`PORT`).
    pub port: u16,
    /// HTTP worker threads; 0 means one per core.
    pub workers: usize,
    /// This node's id in a cluster (`admin:stats`); empty: generated at start.
    pub node_id: String,
    /// On SIGTERM/SIGINT, the connections are closed spread over this many milliseconds.
    pub drain_ms: u64,
    /// The origin browsers reach this server at (`https://chat.example.com`), when a proxy
    /// in front changes the scheme or host; a WebSocket whose `Origin` is neither this (or,
    /// unset, the scheme and `Host` of the request) nor in `cors.origins` is refused.
    pub public_url: Option<String>,
    /// Demo mode (`serve --demo`): seeded users and room, `/demo/` and `POST /demo/token`.
    /// Never on a server that matters: anyone gets a token for the demo users.
    pub demo: bool,
    /// A connection whose peer takes none of the data sent to it for this long (nothing
    /// acknowledged, or a zero receive window) is ended by the kernel (`TCP_USER_TIMEOUT`):
    /// a client that stopped reading cannot hold its connection open forever. 0: the
    /// system's default (minutes of retransmissions, and never for a zero window).
    pub tcp_user_timeout_ms: u64,
    /// Write pacing of broadcasts: a room's rounds of writes to its members may take up to
    /// 1/`flush_duty` of a worker's time (default 6); beyond that (a busy worker, broadcasts
    /// coming faster than it writes them one by one) the next round waits for the next
    /// broadcast, and each member gets both in one write. 0: every broadcast is written at
    /// once.
    pub flush_duty: u32,
    /// Proxies (addresses or CIDR blocks, e.g. `10.0.0.0/8`) whose `X-Forwarded-For` /
    /// `X-Real-IP` name the client; from any other peer those headers are ignored and the
    /// peer's address is the client's. Empty (default): no proxy is trusted.
    pub trusted_proxies: Vec<String>,
}

/// Engine.IO settings, named as in Node's server options.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct EngineConfig {
    /// The Engine.IO endpoint (`/socket.io/`).
    pub path: String,
    /// Server ping period.
    pub ping_interval_ms: u64,
    /// Time allowed for the pong.
    pub ping_timeout_ms: u64,
    /// Largest message (WebSocket) or POST body (polling) accepted, in bytes.
    pub max_payload: u64,
    /// Time a new connection has to join a namespace before it is closed.
    pub connect_timeout_ms: u64,
    /// Time to complete a polling→WebSocket upgrade.
    pub upgrade_timeout_ms: u64,
}

/// Connection state recovery (Socket.IO 4.6+), off by default as in Node.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RecoveryConfig {
    /// Recovery allowed (the application still has to ask for it).
    pub enabled: bool,
    /// How long a disconnected socket can be recovered.
    pub max_disconnection_ms: u64,
    /// Broadcast packets kept for replay per namespace (oldest dropped first).
    pub max_packets: usize,
}

/// Cross-origin requests (`CLIENT_URL`).
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct CorsConfig {
    /// Origins whose pages may call this server (`https://app.example.com`), answered with
    /// credentials allowed. Empty (the default): same-origin pages and non-browser clients
    /// only. `*` allows any origin, answered as `*` without credentials (logged at start).
    pub origins: Vec<String>,
}

/// JWT authentication (docs/security.md).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AuthConfig {
    /// HMAC secret (`JWT_SECRET`); when absent one is generated and kept in `secret_file`.
    pub jwt_secret: Option<String>,
    /// Where a generated secret is kept.
    pub secret_file: String,
    /// Accepted algorithms; HMAC and public-key ones cannot be mixed.
    pub algorithms: Vec<String>,
    /// PEM public key for RS*/ES* tokens.
    pub public_key_path: Option<String>,
    /// Accept `?token=` on the handshake (deprecated, logged).
    pub allow_query_token: bool,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            jwt_secret: None,
            secret_file: "data/jwt_secret".into(),
            algorithms: vec!["HS256".into()],
            public_key_path: None,
            allow_query_token: false,
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            host: "0.0.0.0".into(),
            port: 4000,
            workers: 0,
            node_id: String::new(),
            drain_ms: 5000,
            public_url: None,
            demo: false,
            tcp_user_timeout_ms: 60_000,
            flush_duty: 6,
            trusted_proxies: Vec::new(),
        }
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        EngineConfig {
            path: "/socket.io/".into(),
            ping_interval_ms: 25_000,
            ping_timeout_ms: 20_000,
            max_payload: 1_000_000,
            connect_timeout_ms: 45_000,
            upgrade_timeout_ms: 10_000,
        }
    }
}

impl Default for RecoveryConfig {
    fn default() -> Self {
        RecoveryConfig {
            enabled: false,
            max_disconnection_ms: 120_000,
            max_packets: 10_000,
        }
    }
}

impl EngineConfig {
    /// `ping_interval_ms` as a duration.
    pub fn ping_interval(&self) -> Duration {
        Duration::from_millis(self.ping_interval_ms)
    }
    /// `ping_timeout_ms` as a duration.
    pub fn ping_timeout(&self) -> Duration {
        Duration::from_millis(self.ping_timeout_ms)
    }
    /// `connect_timeout_ms` as a duration.
    pub fn connect_timeout(&self) -> Duration {
        Duration::from_millis(self.connect_timeout_ms)
    }
    /// `upgrade_timeout_ms` as a duration.
    pub fn upgrade_timeout(&self) -> Duration {
        Duration::from_millis(self.upgrade_timeout_ms)
    }
}

impl Config {
    /// Loads the layered configuration from `dir` (usually `config/`) and the environment.
    pub fn load(dir: &Path) -> Result<Config, config::ConfigError> {
        let env = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        let origins = env("CLIENT_URL").map(|u| {
            u.split(',')
                .map(|s| s.trim().to_owned())
                .collect::<Vec<_>>()
        });
        config::Config::builder()
            .add_source(config::File::from(dir.join("default.toml")).required(false))
            .add_source(config::File::from(dir.join("local.toml")).required(false))
            .add_source(
                config::Environment::with_prefix("RT")
                    .prefix_separator("__")
                    .separator("__")
                    .list_separator(",")
                    .with_list_parse_key("cors.origins")
                    .with_list_parse_key("auth.algorithms")
                    .with_list_parse_key("server.trusted_proxies")
                    .with_list_parse_key("webhooks.events")
                    .with_list_parse_key("proxy.prefixes")
                    .try_parsing(true),
            )
            .set_override_option("server.host", env("HOST"))?
            .set_override_option("server.port", env("PORT"))?
            .set_override_option("cors.origins", origins)?
            .set_override_option("auth.jwt_secret", env("JWT_SECRET"))?
            .set_override_option("database.url", env("DATABASE_URL"))?
            .set_override_option("redis.url", env("REDIS_URL"))?
            .set_override_option("redis.cluster_secret", env("CLUSTER_SECRET"))?
            .set_override_option("internal.webhook_secret", env("WEBHOOK_SECRET"))?
            .build()?
            .try_deserialize::<Config>()?
            .checked()
            .map_err(config::ConfigError::Message)
    }

    /// Refuses what cannot work and spells origins the way browsers send them
    /// (`https://app.example.com`, no trailing slash, default port left out).
    fn checked(mut self) -> Result<Config, String> {
        for o in self.cors.origins.iter_mut().filter(|o| *o != "*") {
            *o = origin(o).map_err(|e| format!("cors.origins: {e}"))?;
        }
        if let Some(url) = self
            .webhooks
            .outbound_url
            .as_deref()
            .filter(|u| !u.is_empty())
        {
            check_target("webhooks.outbound_url", url)?;
            let secret = self.webhooks.outbound_secret.as_deref().unwrap_or_default();
            if secret.len() < 32 {
                return Err(
                    "webhooks.outbound_secret (at least 32 bytes) is required when \
                     webhooks.outbound_url is set"
                        .into(),
                );
            }
        }
        if let Some(t) = self
            .webhooks
            .events
            .iter()
            .find(|t| !WEBHOOK_EVENT_TYPES.contains(&t.as_str()))
        {
            return Err(format!(
                "webhooks.events: unknown event type {t:?} (known: {})",
                WEBHOOK_EVENT_TYPES.join(", ")
            ));
        }
        if let Some(url) = self.proxy.url.as_deref().filter(|u| !u.is_empty()) {
            check_target("proxy.url", url)?;
            if self.proxy.secret.as_deref().unwrap_or_default().len() < 32 {
                return Err(
                    "proxy.secret (at least 32 bytes) is required when proxy.url is set".into(),
                );
            }
            if self.proxy.prefixes.iter().any(|p| p.is_empty()) {
                return Err("proxy.prefixes: an empty prefix would pass on every event".into());
            }
            if self.proxy.timeout_ms == 0 || self.proxy.max_in_flight == 0 {
                return Err("proxy.timeout_ms and proxy.max_in_flight must be above 0".into());
            }
        }
        if self.admin_ui.enabled {
            let n = &self.admin_ui.namespace;
            if !n.starts_with('/')
                || n.len() < 2
                || ["/admin", "/notifications"].contains(&n.as_str())
            {
                return Err(format!(
                    "admin_ui.namespace: {n:?} must start with / and be none of /, /admin, \
                     /notifications"
                ));
            }
        }
        if let Some(u) = self.server.public_url.as_mut() {
            *u = origin(u).map_err(|e| format!("server.public_url: {e}"))?;
        }
        for p in &self.server.trusted_proxies {
            proxy_net(p).ok_or_else(|| {
                format!("server.trusted_proxies: {p:?} is not an address or a CIDR block")
            })?;
        }
        Ok(self)
    }

    /// `server.trusted_proxies` as networks (each was checked at load).
    pub fn trusted_proxies(&self) -> Vec<ipnet::IpNet> {
        self.server
            .trusted_proxies
            .iter()
            .filter_map(|p| proxy_net(p))
            .collect()
    }
}

/// An address (`10.0.0.1`, one host) or a block (`10.0.0.0/8`).
fn proxy_net(text: &str) -> Option<ipnet::IpNet> {
    let t = text.trim();
    t.parse::<ipnet::IpNet>()
        .ok()
        .or_else(|| t.parse::<std::net::IpAddr>().ok().map(ipnet::IpNet::from))
}

/// The origin of `url` (`scheme://host[:port]`), or why it is none.
fn origin(text: &str) -> Result<String, String> {
    let u = url::Url::parse(text.trim()).map_err(|e| format!("{text:?} is not a URL ({e})"))?;
    let bare = u.username().is_empty()
        && u.password().is_none()
        && u.path() == "/"
        && u.query().is_none()
        && u.fragment().is_none();
    if !matches!(u.scheme(), "http" | "https") || u.host().is_none() || !bare {
        return Err(format!(
            "{text:?} is not an origin (scheme://host[:port], http or https)"
        ));
    }
    Ok(u.origin().ascii_serialization())
}

/// `url` with its password replaced by `***`, for logs (a URL that does not parse is
/// shown as its scheme alone).
pub fn masked_url(text: &str) -> String {
    match url::Url::parse(text) {
        Ok(mut u) => {
            if u.password().is_some() {
                let _ = u.set_password(Some("***"));
            }
            u.to_string()
        }
        Err(_) if text.contains("://") => {
            let scheme = text.split("://").next().unwrap_or_default();
            format!("{scheme}://…")
        }
        Err(_) => text.to_owned(),
    }
}

/// An outbound target (`key` names the setting): an http URL with a host, or https when
/// the build has TLS.
fn check_target(key: &str, url: &str) -> Result<(), String> {
    let u = url::Url::parse(url).map_err(|e| format!("{key}: {url:?} is not a URL ({e})"))?;
    if !matches!(u.scheme(), "http" | "https") || u.host().is_none() {
        return Err(format!("{key}: {url:?} is not an http or https URL"));
    }
    if u.scheme() == "https" && !cfg!(feature = "tls") {
        return Err(format!(
            "{key}: this build has no TLS; build with the `tls` feature (on by default) for \
             https targets"
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_match_design() {
        let c = Config::default();
        assert_eq!(c.server.port, 4000);
        assert_eq!(c.engine.ping_interval_ms, 25_000);
        assert_eq!(c.engine.ping_timeout_ms, 20_000);
        assert_eq!(c.engine.max_payload, 1_000_000);
        assert_eq!(c.engine.connect_timeout_ms, 45_000);
        assert!(!c.recovery.enabled);
        assert!(c.cors.origins.is_empty());
    }

    #[test]
    fn origins_are_spelled_as_browsers_send_them() {
        assert_eq!(
            origin("https://App.example.com/").unwrap(),
            "https://app.example.com"
        );
        assert_eq!(origin("http://a.example:80").unwrap(), "http://a.example");
        assert_eq!(
            origin("http://a.example:8080").unwrap(),
            "http://a.example:8080"
        );
        for bad in [
            "app.example.com",
            "ftp://a.example",
            "https://a.example/app",
            "https://u:p@a.example",
        ] {
            assert!(origin(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn passwords_are_masked() {
        assert_eq!(
            masked_url("postgres://app:s3cret@db.example:5432/rt"),
            "postgres://app:***@db.example:5432/rt"
        );
        assert_eq!(
            masked_url("redis://:pw@127.0.0.1:6379/"),
            "redis://:***@127.0.0.1:6379/"
        );
        assert_eq!(
            masked_url("sqlite://data/realtime.db"),
            "sqlite://data/realtime.db"
        );
        assert_eq!(masked_url("data/realtime.db"), "data/realtime.db");
        assert!(!masked_url("postgres://a:b@[bad").contains('b'));
    }

    #[test]
    fn outbound_webhooks_need_a_secret_and_an_http_url() {
        let dir = std::env::temp_dir().join(format!("rt-config-hooks-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let load = |text: &str| {
            std::fs::write(dir.join("default.toml"), text).unwrap();
            Config::load(&dir).map_err(|e| e.to_string())
        };
        let url = "[webhooks]\noutbound_url = \"http://127.0.0.1:9/hooks\"\n";
        assert!(load(url).unwrap_err().contains("outbound_secret"));
        let short = format!("{url}outbound_secret = \"too-short\"\n");
        assert!(load(&short).unwrap_err().contains("outbound_secret"));
        let ok = format!("{url}outbound_secret = \"{}\"\n", "s".repeat(32));
        assert!(load(&ok).is_ok());
        let ftp = format!(
            "[webhooks]\noutbound_url = \"ftp://h/x\"\noutbound_secret = \"{}\"\n",
            "s".repeat(32)
        );
        assert!(load(&ftp).unwrap_err().contains("outbound_url"));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn unknown_keys_are_errors() {
        let dir = std::env::temp_dir().join(format!("rt-config-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("default.toml"), "[server]\ndrain_mss = 4001\n").unwrap();
        let err = Config::load(&dir).unwrap_err().to_string();
        assert!(err.contains("drain_mss"), "{err}");
        std::fs::write(dir.join("default.toml"), "[servr]\ndrain_ms = 4001\n").unwrap();
        assert!(Config::load(&dir).is_err());
        std::fs::write(dir.join("default.toml"), "[server]\ndrain_ms = 4001\n").unwrap();
        assert_eq!(Config::load(&dir).unwrap().server.drain_ms, 4001);
        let _ = std::fs::remove_dir_all(&dir);
    }
}
