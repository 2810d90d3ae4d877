//! Reference side of the bench contract on socketioxide (default options, axum, tokio's
//! multi-thread runtime): `join` (room, ack?) joins and acks the room name; `bcast`
//! (payload) emits `msg` to the sender's room, sender included; `bcast` (room, payload) to
//! that room; `echo` (payload, ack) acks the payload. Prints `listening on ADDR`.
//!
//! `benches/socketioxide/target/release/sioxide-bench 127.0.0.1:0`

use serde_json::Value;
use socketioxide::extract::{AckSender, Data, SocketRef};
use socketioxide::SocketIo;

static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();

fn on_connect(s: SocketRef) {
    s.on_disconnect(
        async |s: SocketRef, reason: socketioxide::socket::DisconnectReason| {
            if std::env::var_os("SIOXIDE_LOG").is_some() {
                eprintln!(
                    "disconnect {} {reason:?} {:?}",
                    s.id,
                    START.get().map(|t| t.elapsed())
                );
            }
        },
    );
    s.on(
        "join",
        async |s: SocketRef, Data(room): Data<String>, ack: AckSender| {
            s.join(room.clone());
            let _ = ack.send(&room);
        },
    );
    s.on("bcast", async |s: SocketRef, Data(args): Data<Value>| {
        // One argument arrives as itself, several as an array.
        let (room, payload) = match args {
            Value::Array(mut a) if a.len() == 2 && a[0].is_string() => {
                let p = a.pop().unwrap_or_default();
                (a[0].as_str().map(str::to_owned), p)
            }
            p => (
                s.rooms()
                    .into_iter()
                    .find(|r| *r != s.id.as_str())
                    .map(|r| r.to_string()),
                p,
            ),
        };
        if let Some(room) = room {
            let _ = s.within(room).emit("msg", &payload).await;
        }
    });
    s.on(
        "echo",
        async |Data(payload): Data<Value>, ack: AckSender| {
            let _ = ack.send(&payload);
        },
    );
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    START.get_or_init(std::time::Instant::now);
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:0".into());
    let (layer, io) = SocketIo::new_layer();
    io.ns("/", async |s: SocketRef| on_connect(s));
    let app = axum::Router::new().layer(layer);
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!("listening on {}", listener.local_addr()?);
    axum::serve(listener, app).await?;
    Ok(())
}
