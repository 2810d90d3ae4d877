//! Embedding the crate (docs/extending.md, "When to embed the crate instead"): a live poll
//! built on the public library API only — a namespace with its own connect rule, handlers
//! with acks, rooms and broadcasts, with the engine's limits.
//!
//! Namespace `/poll`: a client connects with `auth: {name}` (1 to 32 characters; else
//! `connect_error` with `data.code = "INVALID_PAYLOAD"`).
//! - `watch {pollId}` → joins the poll's room; ack `{success:true, pollId, counts}`.
//! - `vote {pollId, option}` (`option` 1 to 32 characters; one vote per name and poll, a new
//!   vote replaces the old) → ack `{success:true, pollId, counts}`; every socket watching or
//!   voting in the poll gets `tally {pollId, counts, by}`.
//! - anything malformed → ack `{success:false, error, code:"INVALID_PAYLOAD"}`.
//!
//! `cargo run --release --example embed -- --addr 127.0.0.1:4100`

use std::collections::{BTreeMap, HashMap};
use std::net::TcpListener;
use std::sync::{Arc, Mutex};

use clap::Parser;
use realtime_server::socketio::{ConnectError, Event, Namespace, SocketCtx};
use realtime_server::{Config, Server, SocketIo};
use serde_json::{json, Value};

#[derive(Parser)]
struct Args {
    #[arg(long, default_value = "127.0.0.1:4100")]
    addr: String,
}

/// The polls: for each poll, each voter's option. Shared by every worker thread.
#[derive(Default)]
struct Polls(Mutex<HashMap<String, HashMap<String, String>>>);

impl Polls {
    /// Votes per option of `poll`, in the options' order.
    fn counts(&self, poll: &str) -> BTreeMap<String, u64> {
        let all = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let mut counts = BTreeMap::new();
        for option in all.get(poll).into_iter().flat_map(HashMap::values) {
            *counts.entry(option.clone()).or_insert(0) += 1;
        }
        counts
    }

    fn vote(&self, poll: &str, voter: &str, option: &str) {
        let mut all = self.0.lock().unwrap_or_else(|e| e.into_inner());
        all.entry(poll.to_owned())
            .or_default()
            .insert(voter.to_owned(), option.to_owned());
    }
}

/// The voter's name, set by the connect rule.
struct Voter(String);

/// A string field of 1 to 32 characters.
fn field<'a>(v: &'a Value, key: &str) -> Option<&'a str> {
    v.get(key)
        .and_then(Value::as_str)
        .filter(|s| (1..=32).contains(&s.chars().count()))
}

fn refuse(s: &mut SocketCtx<'_>, ev: &Event, why: &str) {
    if let Some(ack) = ev.ack {
        s.ack(
            ack,
            &[json!({"success": false, "error": why, "code": "INVALID_PAYLOAD"})],
        );
    }
}

fn room(poll: &str) -> String {
    format!("poll:{poll}")
}

fn poll_namespace(polls: Arc<Polls>) -> Namespace {
    let (watching, voting) = (polls.clone(), polls);
    Namespace::new()
        .middleware(|hs| {
            let name = field(&hs.auth, "name").map(str::to_owned);
            Box::pin(async move {
                match name {
                    Some(n) => Ok(Some(Arc::new(Voter(n)) as Arc<_>)),
                    None => Err(
                        ConnectError::new("auth.name (1 to 32 characters) is required")
                            .with_data(json!({"code": "INVALID_PAYLOAD"})),
                    ),
                }
            })
        })
        .on("watch", move |s, ev| {
            let Some(poll) = ev.args.first().and_then(|a| field(a, "pollId")) else {
                return refuse(s, &ev, "expected {pollId}");
            };
            let poll = poll.to_owned();
            s.join(&room(&poll));
            if let Some(ack) = ev.ack {
                let counts = watching.counts(&poll);
                s.ack(
                    ack,
                    &[json!({"success": true, "pollId": poll, "counts": counts})],
                );
            }
        })
        .on("vote", move |s, ev| {
            let arg = ev.args.first().cloned().unwrap_or(Value::Null);
            let (Some(poll), Some(option)) = (field(&arg, "pollId"), field(&arg, "option")) else {
                return refuse(s, &ev, "expected {pollId, option}");
            };
            let Some(voter) = s.data::<Voter>().map(|v| v.0.clone()) else {
                return refuse(s, &ev, "no voter");
            };
            voting.vote(poll, &voter, option);
            let counts = voting.counts(poll);
            s.join(&room(poll));
            // everyone in the poll's room, on every worker (and every node with a Redis bridge)
            s.io().to(&room(poll)).emit(
                "tally",
                &[json!({"pollId": poll, "counts": counts, "by": voter})],
            );
            if let Some(ack) = ev.ack {
                s.ack(
                    ack,
                    &[json!({"success": true, "pollId": poll, "counts": counts})],
                );
            }
        })
}

fn main() -> std::io::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("warn")).init();
    let a = Args::parse();
    let io = SocketIo::new().namespace("/poll", poll_namespace(Arc::default()));
    let listener = TcpListener::bind(&a.addr)?;
    realtime_server::raise_fd_limit();
    println!("listening on {}", listener.local_addr()?);
    actix_web::rt::System::new().block_on(async move {
        Server::new(Config::default())
            .socket_io("/socket.io/", io)
            .run(listener, async {
                let _ = tokio::signal::ctrl_c().await;
            })
            .await
    })
}
