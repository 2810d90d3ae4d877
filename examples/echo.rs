//! The echo server used by the protocol tests, built on the public API only.
//!
//! - `/engine.io/`: a bare Engine.IO server echoing every message (text as text, binary as
//!   binary).
//! - `/socket.io/`: namespaces `/` and `/custom`; on connect each emits `auth` with the
//!   CONNECT auth payload; on `/`, `message` → `message-back` with the same arguments,
//!   `message-with-ack` is acknowledged with the same arguments. For the tests of features
//!   beyond that, `/` also serves: `join` (room) / `leave` (room), `to-room` (room, ...args)
//!   → `room-message` to the room except the sender, `to-all` (...args) → `all-message` to
//!   the whole namespace, `ask` (event, timeoutMs) → emits `event` with an ack request and
//!   reports `ask-result` {ok, args | error}, `kick` → server-side disconnect. `/refused`
//!   refuses every connect with `{message: "not allowed", data: {code: "FORBIDDEN"}}`.
//!
//! `cargo run --release --example echo -- --addr 127.0.0.1:PORT`

use std::net::TcpListener;
use std::time::Duration;

use clap::Parser;
use realtime_server::socketio::{ConnectError, Event, Namespace, SocketCtx};
use realtime_server::{Config, EngineCtx, EngineHandler, EngineMessage, Server, SocketIo};
use serde_json::{json, Value};

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "127.0.0.1:3000")]
    addr: String,
    #[arg(long, default_value_t = 300)]
    ping_interval: u64,
    #[arg(long, default_value_t = 200)]
    ping_timeout: u64,
    #[arg(long, default_value_t = 1000)]
    connect_timeout: u64,
    #[arg(long, default_value_t = 1_000_000)]
    max_payload: u64,
    /// Bytes queued to one connection before it is closed as a slow consumer.
    #[arg(long, default_value_t = 8 << 20)]
    max_queued_bytes: usize,
    /// Connections not yet in a namespace; beyond, handshakes get 503.
    #[arg(long, default_value_t = 10_000)]
    max_pending_sessions: usize,
    /// Allowed CORS origins (comma separated); `*` for any.
    #[arg(long, default_value = "*")]
    cors: String,
    /// Connection state recovery (off by default, as in Node; `--recovery true` turns it on).
    #[arg(long, default_value_t = false, action = clap::ArgAction::Set)]
    recovery: bool,
}

/// The bare Engine.IO application: each connection sends every message back.
struct Echo;

impl EngineHandler for Echo {
    fn on_message(&mut self, msg: EngineMessage, ctx: &mut EngineCtx<'_, Self>) {
        ctx.send(msg);
    }
}

fn send_auth(s: &mut SocketCtx<'_>) {
    let auth = s.handshake().map_or(json!({}), |h| h.auth.clone());
    s.emit("auth", &[auth]);
}

fn arg_str(ev: &Event, i: usize) -> Option<String> {
    ev.args.get(i).and_then(Value::as_str).map(str::to_owned)
}

fn main() -> std::io::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let a = Args::parse();
    let mut config = Config::default();
    config.engine.ping_interval_ms = a.ping_interval;
    config.engine.ping_timeout_ms = a.ping_timeout;
    config.engine.connect_timeout_ms = a.connect_timeout;
    config.engine.max_payload = a.max_payload;
    config.limits.max_queued_bytes = a.max_queued_bytes;
    config.limits.max_pending_sessions = a.max_pending_sessions;
    config.cors.origins = a.cors.split(',').map(str::to_owned).collect();
    config.recovery.enabled = a.recovery;

    let main_ns = Namespace::new()
        .on_connect(send_auth)
        .on("message", |s, ev| {
            s.emit_binary("message-back", &ev.args, ev.binary)
        })
        .on("message-with-ack", |s, ev| {
            if let Some(ack) = ev.ack {
                s.ack_binary(ack, &ev.args, ev.binary);
            }
        })
        .on("join", |s, ev| {
            if let Some(room) = arg_str(&ev, 0) {
                s.join(&room);
                if let Some(ack) = ev.ack {
                    s.ack(ack, &[json!(room)]);
                }
            }
        })
        .on("leave", |s, ev| {
            if let Some(room) = arg_str(&ev, 0) {
                s.leave(&room);
                if let Some(ack) = ev.ack {
                    s.ack(ack, &[json!(room)]);
                }
            }
        })
        .on("to-room", |s, ev| {
            if let Some(room) = arg_str(&ev, 0) {
                s.to(&room)
                    .emit_binary("room-message", &ev.args[1..], ev.binary);
            }
        })
        .on("to-all", |s, ev| {
            s.io().emit_binary("all-message", &ev.args, ev.binary)
        })
        .on("ask", |s, ev| {
            let event = arg_str(&ev, 0).unwrap_or_else(|| "question".into());
            let ms = ev.args.get(1).and_then(Value::as_u64).unwrap_or(1000);
            let me = s.handle();
            s.emit_with_ack(
                &event,
                &[json!("please answer")],
                Duration::from_millis(ms),
                move |r| {
                    let report = match r {
                        Ok(reply) => json!({"ok": true, "args": reply.args}),
                        Err(e) => json!({"ok": false, "error": e.to_string()}),
                    };
                    me.emit("ask-result", vec![report]);
                },
            );
        })
        .on("kick", |s, _| s.disconnect());
    let io = SocketIo::new()
        .recovery(a.recovery)
        .namespace("/", main_ns)
        .namespace("/custom", Namespace::new().on_connect(send_auth))
        .namespace(
            "/refused",
            Namespace::new().middleware(|_| {
                Box::pin(async {
                    Err(ConnectError::new("not allowed").with_data(json!({"code": "FORBIDDEN"})))
                })
            }),
        );

    let listener = TcpListener::bind(&a.addr)?;
    realtime_server::raise_fd_limit();
    // Tests read this line to learn the port.
    println!("listening on {}", listener.local_addr()?);
    actix_web::rt::System::new().block_on(async move {
        Server::new(config)
            .engine_io("/engine.io/", || Echo)
            .socket_io("/socket.io/", io)
            .run(listener, async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
    })
}
