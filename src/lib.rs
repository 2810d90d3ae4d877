//! A Socket.IO v4-compatible realtime server on actix.
//!
//! Module map, from the wire up:
//! - [`protocol`]: pure Engine.IO / Socket.IO codecs (no I/O).
//! - [`transport`]: HTTP long-polling and WebSocket on actix-web.
//! - [`actors`]: `WsSession` per connection, `RoomActor` per room, the `ServerActor` registry.
//! - [`socketio`]: the API applications build on (namespaces, handlers, broadcasts).
//! - [`config`]: layered configuration.
//!
//! [`Server::run`] takes an already-bound listener, so tests and benchmarks start the real
//! server on port 0.

pub mod actors;
pub mod app;
pub mod auth;
pub mod config;
pub mod db;
pub mod http;
pub mod metrics;
pub mod protocol;
pub mod socketio;
pub mod transport;

use std::future::Future;
use std::net::TcpListener;
use std::sync::Arc;
use std::time::Duration;

use actix::{Actor, Addr};
use actix_http::HttpService;
use actix_service::{fn_factory, fn_service, map_config};
use actix_web::dev::AppConfig;
use actix_web::{web, App, HttpResponse};

pub use actors::session::{EngineHandler, EngineMessage};
pub use config::Config;
pub use socketio::SocketIo;

use actors::messages::{GetStats, Shutdown};
use actors::ServerActor;

/// What a mount point serves.
#[derive(Clone)]
pub enum Service {
    /// Socket.IO over Engine.IO.
    SocketIo(Arc<SocketIo>),
    /// A bare Engine.IO server.
    Engine(Arc<dyn EngineHandler>),
}

/// One Engine.IO endpoint (a path) and what it serves.
pub struct Mount {
    pub(crate) id: u32,
    pub(crate) path: String,
    pub(crate) config: Arc<Config>,
    pub(crate) server: Addr<ServerActor>,
    pub(crate) service: Service,
}

impl Mount {
    /// The live session `sid` of this mount, if any.
    pub(crate) async fn session(&self, sid: &str) -> Option<Addr<actors::WsSession>> {
        self.server
            .send(actors::messages::LookupSession {
                sid: sid.to_owned(),
                mount: self.id,
            })
            .await
            .ok()
            .flatten()
    }
}

/// Raises the open-files soft limit to the hard limit (each connection is a file); returns
/// the limit now in force.
pub fn raise_fd_limit() -> u64 {
    rlimit::increase_nofile_limit(u64::MAX).unwrap_or(0)
}

/// The server: configuration plus its mount points.
/// Extra HTTP routes an application registers beside Engine.IO.
pub type Routes = Arc<dyn Fn(&mut web::ServiceConfig) + Send + Sync>;

/// Routes built once the server runs, from its broadcast handle (webhooks that notify, ...).
pub type IoRoutes = Box<dyn FnOnce(socketio::IoHandle) -> Routes>;

pub struct Server {
    config: Config,
    mounts: Vec<(String, Service)>,
    routes: Vec<Routes>,
    io_routes: Vec<IoRoutes>,
}

impl Server {
    pub fn new(config: Config) -> Self {
        Server {
            config,
            mounts: Vec::new(),
            routes: Vec::new(),
            io_routes: Vec::new(),
        }
    }

    /// Adds HTTP routes that need the server's broadcast handle: `f` runs once inside the
    /// actix system when the server starts (actors it starts live as long as the server).
    pub fn routes_with_io<R>(mut self, f: impl FnOnce(socketio::IoHandle) -> R + 'static) -> Self
    where
        R: Fn(&mut web::ServiceConfig) + Send + Sync + 'static,
    {
        self.io_routes
            .push(Box::new(move |io| -> Routes { Arc::new(f(io)) }));
        self
    }

    /// Adds HTTP routes (webhooks, directory sync, ...).
    pub fn routes(mut self, f: impl Fn(&mut web::ServiceConfig) + Send + Sync + 'static) -> Self {
        self.routes.push(Arc::new(f));
        self
    }

    /// Serves Socket.IO at `path` (usually `/socket.io/`).
    pub fn socket_io(mut self, path: &str, io: SocketIo) -> Self {
        self.mounts
            .push((path.to_owned(), Service::SocketIo(Arc::new(io))));
        self
    }

    /// Serves a bare Engine.IO application at `path`.
    pub fn engine_io(mut self, path: &str, handler: impl EngineHandler) -> Self {
        self.mounts
            .push((path.to_owned(), Service::Engine(Arc::new(handler))));
        self
    }

    /// Serves on `listener` until `shutdown` resolves, then closes every session with
    /// `server shutting down` and stops. Must run inside an actix system.
    pub async fn run(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()>,
    ) -> std::io::Result<()> {
        let config = Arc::new(self.config);
        let node_id: Arc<str> = if config.server.node_id.is_empty() {
            let id = uuid::Uuid::now_v7().simple().to_string();
            Arc::from(format!("node-{}", &id[id.len() - 8..]))
        } else {
            Arc::from(config.server.node_id.as_str())
        };
        log::info!("node id={node_id}");
        let server = ServerActor::new(config.recovery.clone(), node_id.clone()).start();
        let bridge = match config.redis.url.as_deref().filter(|u| !u.is_empty()) {
            None => None,
            Some(url) => {
                let b = actors::bridge::RedisBridge::new(url, node_id, server.clone())
                    .map_err(|e| std::io::Error::other(format!("redis.url: {e}")))?
                    .start();
                server.do_send(actors::messages::SetBridge(b.clone()));
                Some(b)
            }
        };
        let recovery = config.recovery.enabled
            && self
                .mounts
                .iter()
                .any(|(_, s)| matches!(s, Service::SocketIo(io) if io.recovery));
        let mut routes = self.routes;
        for f in self.io_routes {
            routes.push(f(socketio::IoHandle::new(server.clone(), recovery)));
        }
        let mounts: Vec<Arc<Mount>> = self
            .mounts
            .into_iter()
            .enumerate()
            .map(|(i, (path, service))| {
                Arc::new(Mount {
                    id: i as u32,
                    path,
                    config: config.clone(),
                    server: server.clone(),
                    service,
                })
            })
            .collect();
        let workers = match config.server.workers {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let cfg = config.clone();
        let stats_server = server.clone();
        let mounts = Arc::new(mounts);
        let routes = Arc::new(routes);
        // actix-web's HttpServer cannot hand over upgraded connections, so the HTTP
        // service is assembled here: the App for every request, plus an upgrade service
        // that receives WebSocket connections raw (see `transport::upgrade`).
        let http = actix_server::Server::build()
            .workers(workers)
            .disable_signals()
            .shutdown_timeout(5)
            .listen("realtime", listener, move || {
                let mut app = App::new()
                    .wrap(cors(&cfg))
                    .app_data(web::Data::new(stats_server.clone()))
                    .route("/healthz", web::get().to(healthz))
                    .route("/metrics", web::get().to(metrics_text));
                for r in routes.iter() {
                    app = app.configure(|c| r(c));
                }
                for m in mounts.iter() {
                    let data = web::Data::from(m.clone());
                    app = app.service(
                        web::resource(m.path.as_str())
                            .app_data(data)
                            .default_service(web::to(transport::endpoint)),
                    );
                }
                let mounts = mounts.clone();
                let upgrade = fn_factory(move || {
                    let mounts = mounts.clone();
                    async move {
                        Ok::<_, ()>(fn_service(move |(req, framed)| {
                            let mounts = mounts.clone();
                            async move {
                                transport::upgrade::service(req, framed, mounts).await;
                                Ok::<_, std::convert::Infallible>(())
                            }
                        }))
                    }
                });
                // Small frames (acks, chat messages) must not wait for Nagle + delayed ACK.
                HttpService::build()
                    .tcp_nodelay(true)
                    .upgrade(upgrade)
                    .finish(map_config(app, |_| AppConfig::default()))
                    .tcp()
            })?
            .run();
        let handle = http.handle();
        let http = actix_web::rt::spawn(http);
        shutdown.await;
        log::info!("shutting down");
        if let Some(b) = &bridge {
            let _ = b.send(actors::bridge::Leave).await;
        }
        let _ = server.send(Shutdown).await;
        // Let the close packets reach the clients.
        actix_web::rt::time::sleep(Duration::from_millis(100)).await;
        handle.stop(true).await;
        let _ = http.await;
        Ok(())
    }
}

fn cors(cfg: &Config) -> actix_cors::Cors {
    let mut c = actix_cors::Cors::default()
        .allow_any_method()
        .allow_any_header()
        .supports_credentials()
        .max_age(3600);
    if cfg.cors.origins.iter().any(|o| o == "*") {
        c = c.allow_any_origin();
    } else {
        for o in &cfg.cors.origins {
            c = c.allowed_origin(o);
        }
    }
    c
}

async fn metrics_text() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(metrics::render())
}

async fn healthz(server: web::Data<Addr<ServerActor>>) -> HttpResponse {
    match server.send(GetStats).await {
        Ok(stats) => HttpResponse::Ok().json(serde_json::json!({"status": "ok", "stats": stats})),
        Err(_) => HttpResponse::ServiceUnavailable().json(serde_json::json!({"status": "down"})),
    }
}
