//! [`Server`]: the builder an application (or `main`) assembles, and [`Server::run`], which
//! starts the actors, serves HTTP on an already-bound listener, and drains on shutdown.

use std::future::Future;
use std::net::TcpListener;
use std::os::fd::AsRawFd;
use std::sync::Arc;
use std::time::Duration;

use actix::{AsyncContext, Context};
use actix_http::HttpService;
use actix_service::{fn_factory, fn_service, map_config};
use actix_web::dev::AppConfig;
use actix_web::{web, App};

use crate::cluster::RedisBus;
use crate::config::Config;
use crate::engine::{Endpoint, EngineHandler, HandlerFactory, Mount};
use crate::protocol::NodeId;
use crate::socketio::adapter::{ServerActor, SetBus, Shutdown};
use crate::socketio::bus::{BusNode, Cluster};
use crate::socketio::{Client, IoHandle, SocketIo};

/// Extra HTTP routes an application registers beside Engine.IO.
pub type Routes = Arc<dyn Fn(&mut web::ServiceConfig) + Send + Sync>;

/// Routes built once the server runs, from its handle (webhooks that notify, ...).
pub type IoRoutes = Box<dyn FnOnce(IoHandle) -> Routes>;

/// Makes a node's link to its cluster once its registry runs.
pub type BusFactory = Box<dyn FnOnce(BusNode) -> Cluster>;

/// A bare Engine.IO mount waiting for the configuration.
type EngineMount = Box<dyn FnOnce(Arc<Config>) -> Arc<dyn Endpoint>>;

/// The server: configuration, what it serves, and its extra routes.
pub struct Server {
    config: Config,
    socket_io: Option<(String, SocketIo)>,
    /// Where plain WebSocket clients reach the Socket.IO application's `/` (e.g. `/ws`).
    plain_path: Option<String>,
    engines: Vec<EngineMount>,
    routes: Vec<Routes>,
    io_routes: Vec<IoRoutes>,
    bus: Option<BusFactory>,
    drain_hooks: Vec<DrainHook>,
    internal: Option<TcpListener>,
}

/// Work the application finishes when the server drains, before connections close (e.g.
/// storing and acknowledging what was accepted).
pub type DrainHook = Box<dyn FnOnce() -> futures_util::future::LocalBoxFuture<'static, ()>>;

impl Server {
    /// A server with `config` and nothing mounted yet.
    pub fn new(config: Config) -> Self {
        Server {
            config,
            socket_io: None,
            plain_path: None,
            engines: Vec::new(),
            routes: Vec::new(),
            io_routes: Vec::new(),
            bus: None,
            drain_hooks: Vec::new(),
            internal: None,
        }
    }

    /// Serves `/internal/…` and `/metrics` on `listener` only (docs/http.md, `internal.addr`):
    /// the public listener answers 404 there. `/healthz` and `/readyz` are on both.
    pub fn internal_listener(mut self, listener: TcpListener) -> Self {
        self.internal = Some(listener);
        self
    }

    /// Serves Socket.IO at `path` (usually `/socket.io/`); one Socket.IO server per process.
    pub fn socket_io(mut self, path: &str, io: SocketIo) -> Self {
        self.socket_io = Some((path.to_owned(), io));
        self
    }

    /// Also serves the Socket.IO application's namespace `/` to plain WebSocket clients at
    /// `path` (e.g. `/ws`; docs/events.md, "Plain WebSocket"): the same handlers, rooms and
    /// broadcasts, in JSON frames `{type, payload?, id?}`.
    pub fn plain_websocket(mut self, path: &str) -> Self {
        self.plain_path = Some(path.to_owned());
        self
    }

    /// Serves a bare Engine.IO application at `path`: `new_handler` makes the handler of
    /// each connection.
    pub fn engine_io<H: EngineHandler>(
        mut self,
        path: &str,
        new_handler: impl Fn() -> H + Send + Sync + 'static,
    ) -> Self {
        let path = path.to_owned();
        let factory: HandlerFactory<H> = Box::new(move |_| new_handler());
        self.engines.push(Box::new(move |config| {
            Mount::new(&path, config, factory) as Arc<dyn Endpoint>
        }));
        self
    }

    /// Adds HTTP routes (webhooks, directory sync, ...).
    pub fn routes(mut self, f: impl Fn(&mut web::ServiceConfig) + Send + Sync + 'static) -> Self {
        self.routes.push(Arc::new(f));
        self
    }

    /// Adds HTTP routes that need the server's handle: `f` runs once inside the actix
    /// system when the server starts (actors it starts live as long as the server).
    pub fn routes_with_io<R>(mut self, f: impl FnOnce(IoHandle) -> R + 'static) -> Self
    where
        R: Fn(&mut web::ServiceConfig) + Send + Sync + 'static,
    {
        self.io_routes
            .push(Box::new(move |io| -> Routes { Arc::new(f(io)) }));
        self
    }

    /// Joins a cluster through `bus` (e.g. [`crate::cluster::MemoryHub::join`]); with
    /// `redis.url` configured, Redis is used instead.
    pub fn bus(mut self, f: impl FnOnce(BusNode) -> Cluster + 'static) -> Self {
        self.bus = Some(Box::new(f));
        self
    }

    /// Runs `f` when the server drains, after new clients are refused and before the
    /// connections close; the drain waits for it.
    pub fn on_drain<F, Fut>(mut self, f: F) -> Self
    where
        F: FnOnce() -> Fut + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        self.drain_hooks.push(Box::new(move || {
            Box::pin(f()) as futures_util::future::LocalBoxFuture<'static, ()>
        }));
        self
    }

    /// Serves on `listener` until `shutdown` resolves, then drains (docs/configuration.md): not ready
    /// any more and new sessions refused at once, the drain hooks finished, every session
    /// closed with `server shutting down` spread over `server.drain_ms`, and stops once they
    /// are gone (or a little after). Must run inside an actix system.
    pub async fn run(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        let config = Arc::new(self.config);
        let node_id = node_id(&config);
        log::info!("node id={node_id}");
        if config.cors.origins.iter().any(|o| o == "*") {
            log::warn!(
                "cors.origins is \"*\": pages of any site may call this server (answered without credentials)"
            );
        }

        // The registry first (its address is what every connection and handle talks to),
        // then the mounts that need that address, then the registry runs over them.
        let registry = Context::<ServerActor>::new();
        let (mounted, path, sio) = match self.socket_io {
            Some((path, sio)) => (true, path, sio),
            None => (false, String::new(), SocketIo::new()),
        };
        let io = sio.into_shared(registry.address(), &config);
        let mut endpoints: Vec<Arc<dyn Endpoint>> = self
            .engines
            .into_iter()
            .map(|m| m(config.clone()))
            .collect();
        if mounted {
            endpoints.push(Mount::new(
                &path,
                config.clone(),
                Client::factory(io.clone()),
            ));
            if let Some(plain) = &self.plain_path {
                endpoints.push(Mount::plain(
                    plain,
                    config.clone(),
                    Client::factory(io.clone()),
                ));
            }
        }
        let endpoints = Arc::new(endpoints);
        let server = registry.run(ServerActor::new(
            config.recovery.clone(),
            node_id.clone(),
            endpoints.clone(),
        ));

        // The cluster, if any.
        let node = BusNode {
            id: node_id,
            server: server.clone(),
        };
        let bus = match config.redis.url.as_deref().filter(|u| !u.is_empty()) {
            Some(url) => {
                let secret = cluster_secret(&config)?;
                log::info!("cluster through redis {}", crate::config::masked_url(url));
                Some(
                    RedisBus::start(url, node, secret)
                        .map_err(|e| std::io::Error::other(format!("redis.url: {e}")))?,
                )
            }
            None => self.bus.map(|f| f(node)),
        };
        if let Some(cluster) = bus {
            server.do_send(SetBus(cluster.relay.clone()));
            let _ = io.bus.set(cluster);
        }

        // HTTP.
        let handle = IoHandle::new(io);
        let mut routes = self.routes;
        routes.push(Arc::new(crate::http::health::configure(handle.clone())));
        for f in self.io_routes {
            routes.push(f(handle.clone()));
        }
        let listeners = Listeners {
            public: listener,
            internal: self.internal,
        };
        let http = serve_http(listeners, &config, endpoints.clone(), Arc::new(routes))?;
        let stop = http.handle();
        let http = actix_web::rt::spawn(http);

        shutdown.await;
        let spread = Duration::from_millis(config.server.drain_ms);
        log::info!(
            "draining: refusing new clients, closing connections over {} ms",
            spread.as_millis()
        );
        handle.start_draining();
        crate::metrics::get().draining.set(1);
        for e in endpoints.iter() {
            e.stop_admitting();
        }
        for hook in self.drain_hooks {
            hook().await;
        }
        let n = server.send(Shutdown { spread }).await.unwrap_or(0);
        // The closes go out over `spread`; each WebSocket then waits a moment for its
        // client's close. Polling sessions wait for their next GET.
        let deadline = tokio::time::Instant::now() + spread + Duration::from_secs(3);
        while endpoints.iter().any(|e| !e.is_empty()) && tokio::time::Instant::now() < deadline {
            actix_web::rt::time::sleep(Duration::from_millis(20)).await;
        }
        let left: usize = endpoints.iter().map(|e| e.len()).sum();
        log::info!("drained: {n} connections closed, {left} left");
        stop.stop(true).await;
        let _ = http.await;
        Ok(())
    }
}

/// Shortest cluster secret accepted (as for the JWT and webhook secrets).
pub const MIN_CLUSTER_SECRET: usize = 32;

/// The cluster secret a node with Redis needs (docs/security.md).
pub fn cluster_secret(config: &Config) -> std::io::Result<&[u8]> {
    match config
        .redis
        .cluster_secret
        .as_deref()
        .filter(|s| !s.is_empty())
    {
        Some(s) if s.len() >= MIN_CLUSTER_SECRET => Ok(s.as_bytes()),
        Some(_) => Err(std::io::Error::other(format!(
            "redis.cluster_secret (CLUSTER_SECRET) must be at least {MIN_CLUSTER_SECRET} bytes long"
        ))),
        None => Err(std::io::Error::other(
            "redis.url (REDIS_URL) is set but redis.cluster_secret (CLUSTER_SECRET) is not: \
             every node of a cluster needs the same secret of at least 32 bytes",
        )),
    }
}

/// The configured node id, or a generated one.
fn node_id(config: &Config) -> NodeId {
    if config.server.node_id.is_empty() {
        let id = uuid::Uuid::now_v7().simple().to_string();
        NodeId::from(format!("node-{}", &id[id.len() - 8..]))
    } else {
        NodeId::from(config.server.node_id.as_str())
    }
}

/// `server.tcp_user_timeout_ms` on an accepted connection: the kernel ends it when its peer
/// takes nothing for that long. This is what ends an SSE response whose client stopped
/// reading (the HTTP dispatcher stops polling a body it cannot write, so the body cannot end
/// itself); a WebSocket keeps the option after its upgrade.
fn set_user_timeout(io: &tokio::net::TcpStream, timeout: std::time::Duration) {
    if timeout.is_zero() {
        return;
    }
    if let Err(e) = socket2::SockRef::from(io).set_tcp_user_timeout(Some(timeout)) {
        log::debug!("TCP_USER_TIMEOUT not set: {e}");
    }
}

/// Where HTTP is served: the public listener, and the private one of `internal.addr`.
struct Listeners {
    public: TcpListener,
    internal: Option<TcpListener>,
}

/// The HTTP server: actix-web's `HttpServer` cannot hand over upgraded connections, so the
/// service is assembled here: the App for every request, plus an upgrade service that
/// receives WebSocket connections raw (see `engine::upgrade`). With a private listener,
/// the internal routes are served there alone.
fn serve_http(
    listeners: Listeners,
    config: &Arc<Config>,
    endpoints: Arc<Vec<Arc<dyn Endpoint>>>,
    routes: Arc<Vec<Routes>>,
) -> std::io::Result<actix_server::Server> {
    use crate::http::health::not_found;
    let workers = match config.server.workers {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        n => n,
    };
    let split = listeners.internal.is_some();
    let cfg = config.clone();
    let user_timeout = std::time::Duration::from_millis(config.server.tcp_user_timeout_ms);
    crate::socketio::adapter::set_flush_duty(config.server.flush_duty);
    let trusted = web::Data::new(crate::http::TrustedProxies(config.trusted_proxies()));
    let trusted_internal = trusted.clone();
    let public_routes = routes.clone();
    let mut server = actix_server::Server::build()
        .workers(workers)
        .disable_signals()
        .shutdown_timeout(5)
        .listen("realtime", listeners.public, move || {
            let mut app = App::new()
                .app_data(trusted.clone())
                .wrap(crate::http::health::cors(&cfg))
                .default_service(web::to(not_found));
            if split {
                // Registered first, so they shadow the routes below on this listener.
                app = app
                    .service(web::scope("/internal").default_service(web::to(not_found)))
                    .route("/metrics", web::to(not_found));
            }
            for r in public_routes.iter() {
                app = app.configure(|c| r(c));
            }
            for e in endpoints.iter() {
                app = app.configure(|c| e.clone().configure(c));
            }
            let endpoints = endpoints.clone();
            let upgrade = fn_factory(move || {
                let endpoints = endpoints.clone();
                async move {
                    Ok::<_, ()>(fn_service(move |(req, framed)| {
                        let endpoints = endpoints.clone();
                        async move {
                            crate::engine::upgrade::service(req, framed, endpoints).await;
                            Ok::<_, std::convert::Infallible>(())
                        }
                    }))
                }
            });
            // Small frames (acks, chat messages) must not wait for Nagle + delayed ACK.
            HttpService::build()
                .tcp_nodelay(true)
                .on_connect_ext(move |io: &tokio::net::TcpStream, ext| {
                    set_user_timeout(io, user_timeout);
                    // so that a long poll notices its client going (engine::PeerFd)
                    ext.insert(crate::engine::PeerFd(io.as_raw_fd()));
                })
                .upgrade(upgrade)
                .finish(map_config(app, |_| AppConfig::default()))
                .tcp()
        })?;
    if let Some(internal) = listeners.internal {
        log::info!(
            "internal listener on http://{} (/internal/, /metrics, /healthz, /readyz)",
            internal.local_addr()?
        );
        server = server.listen("internal", internal, move || {
            let mut app = App::new()
                .app_data(trusted_internal.clone())
                .default_service(web::to(not_found));
            for r in routes.iter() {
                app = app.configure(|c| r(c));
            }
            HttpService::build()
                .finish(map_config(app, |_| AppConfig::default()))
                .tcp()
        })?;
    }
    Ok(server.run())
}
