//! The bench contract on the public API (the same server code a product would write):
//! on `/`, `join` (room, ack?) joins and acks the room name; `bcast` (payload) emits `msg`
//! with the payload to the sender's room, sender included; `bcast` (room, payload) to that
//! room; `echo` (payload, ack) acks with the payload. The same namespace is served to plain
//! WebSocket clients at `/ws` (JSON frames `{type, payload?, id?}`).
//!
//! `cargo run --release --example bench_server -- --addr 127.0.0.1:PORT`

// The same allocator as the product binary, so the figures are the product's.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

use std::net::TcpListener;

use clap::Parser;
use realtime_server::socketio::Namespace;
use realtime_server::{Config, Server, SocketIo};
use serde_json::Value;

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "127.0.0.1:3000")]
    addr: String,
    /// HTTP worker threads (0: one per core).
    #[arg(long, default_value_t = 0)]
    workers: usize,
    /// Join a cluster through this Redis (e.g. redis://127.0.0.1:6379/).
    #[arg(long)]
    redis: Option<String>,
    /// The cluster secret every node shares (at least 32 bytes; needed with `--redis`).
    #[arg(long, env = "CLUSTER_SECRET")]
    cluster_secret: Option<String>,
    /// `server.flush_duty` (write pacing of broadcasts; 0: off).
    #[arg(long, default_value_t = Config::default().server.flush_duty)]
    flush_duty: u32,
}

fn main() -> std::io::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let a = Args::parse();
    realtime_server::purge_freed_memory_at_once();
    let mut config = Config::default();
    config.server.workers = a.workers;
    config.server.flush_duty = a.flush_duty;
    config.redis.url = a.redis;
    config.redis.cluster_secret = a.cluster_secret;
    let ns = Namespace::new()
        .on("join", |s, ev| {
            let Some(room) = ev.args.first().and_then(Value::as_str).map(str::to_owned) else {
                return;
            };
            s.join(&room);
            if let Some(ack) = ev.ack {
                s.ack(ack, &[Value::String(room)]);
            }
        })
        .on("bcast", |s, ev| {
            let (room, payload) = match (ev.args.first(), ev.args.get(1)) {
                (Some(Value::String(room)), Some(p)) => (Some(room.as_str()), p),
                (Some(p), _) => (None, p),
                _ => return,
            };
            let Some(room) = room.or_else(|| s.rooms().next()) else {
                return;
            };
            let room = room.to_owned();
            s.io().to(&room).emit("msg", std::slice::from_ref(payload));
        })
        .on("echo", |s, ev| {
            if let Some(ack) = ev.ack {
                s.ack(ack, &ev.args[..ev.args.len().min(1)]);
            }
        });
    let io = SocketIo::new().namespace("/", ns);
    let listener = TcpListener::bind(&a.addr)?;
    realtime_server::raise_fd_limit();
    println!("listening on {}", listener.local_addr()?);
    actix_web::rt::System::new().block_on(async move {
        Server::new(config)
            .socket_io("/socket.io/", io)
            .plain_websocket("/ws")
            .run(listener, async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
    })
}
