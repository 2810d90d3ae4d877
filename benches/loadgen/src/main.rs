//! Load generator for any Socket.IO v4 server, speaking Engine.IO v4 / Socket.IO v5 over
//! WebSocket itself. One thread drives every connection (on a 2-core box the server gets
//! the other core). Every run ends with one JSON line of its figures, including the
//! generator's own CPU time so a saturated generator shows.
//!
//! Bench contract served by both servers (namespace `/`): `join` (room, ack?) joins and acks
//! the room name; `bcast` (payload) sends `msg` (payload) to the sender's room, sender
//! included; `bcast` (room, payload) to that room; `echo` (payload, ack) acks the payload.

mod client;
mod polling;
mod presence;
mod proc_stats;
mod product;
mod storm;

use std::cell::RefCell;
use std::net::{IpAddr, Ipv4Addr};
use std::rc::Rc;
use std::time::{Duration, Instant};

use clap::{Parser, Subcommand};
use futures_util::{FutureExt, SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde_json::json;
use tokio::task::LocalSet;
use tokio_tungstenite::tungstenite::Message;

use client::{Conn, Transport};

#[derive(Parser)]
#[command(name = "loadgen")]
struct Cli {
    /// Server base URL, e.g. http://127.0.0.1:3000
    #[arg(long, global = true, default_value = "http://127.0.0.1:3000")]
    url: String,
    /// Server process id, to read its memory and CPU time from /proc.
    #[arg(long, global = true)]
    pid: Option<u32>,
    /// A label copied into the JSON result (e.g. "rust" or "node").
    #[arg(long, global = true, default_value = "server")]
    label: String,
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand)]
enum Cmd {
    /// Open N idle connections at a bounded rate; report connect rate and memory per connection.
    Connections {
        #[arg(long, default_value_t = 1000)]
        n: usize,
        /// New connections per second.
        #[arg(long, default_value_t = 2000)]
        rate: u64,
        /// Seconds to hold them once all are open (memory is read at the end).
        #[arg(long, default_value_t = 3)]
        hold: u64,
        /// Socket.IO over WebSocket, or the plain protocol (`/ws`); polling is not offered.
        #[arg(long, value_enum, default_value = "websocket")]
        transport: Transport,
    },
    /// N members of one room; S of them emit at a total rate; every member receives.
    Broadcast {
        #[arg(long, default_value_t = 1000)]
        n: usize,
        #[arg(long, default_value_t = 10)]
        senders: usize,
        /// Messages per second emitted in total (deliveries/s = rate × n).
        #[arg(long, default_value_t = 50)]
        rate: u64,
        #[arg(long, default_value_t = 5)]
        duration: u64,
        #[arg(long, default_value = "bench")]
        room: String,
        /// A second node: members alternate between --url and this one (senders too).
        #[arg(long)]
        url2: Option<String>,
        /// The members' transport (polling: long-polling only, no upgrade).
        #[arg(long, value_enum, default_value = "websocket")]
        transport: Transport,
    },
    /// The product's chat (needs `realtime-server` with a room and users): `members` sockets
    /// join `room`; `senders` of them keep `inflight` `chat:send`s with ack outstanding each;
    /// reports acked messages/s, ack latency and the deliveries every member got.
    Chat {
        /// A file with one JWT per line, one per member (tokens of distinct users).
        #[arg(long)]
        tokens: std::path::PathBuf,
        #[arg(long, default_value = "bench")]
        room: String,
        #[arg(long, default_value_t = 20)]
        senders: usize,
        #[arg(long, default_value_t = 8)]
        inflight: usize,
        #[arg(long, default_value_t = 5)]
        duration: u64,
    },
    /// The product's webhooks (needs `realtime-server`): creates `users` users through the
    /// signed directory, connects them all, lets `watchers` of them watch one product, then
    /// posts `webhooks` stock changes and reports webhook → delivery latency.
    Notify {
        #[arg(long)]
        jwt_secret: String,
        #[arg(long)]
        webhook_secret: String,
        #[arg(long, default_value_t = 10000)]
        users: usize,
        #[arg(long, default_value_t = 1000)]
        watchers: usize,
        #[arg(long, default_value_t = 50)]
        webhooks: usize,
        #[arg(long, default_value_t = 100)]
        interval_ms: u64,
    },
    /// A connection storm: `users` authenticated clients (`{prefix}N`, HS256 tokens made
    /// with `jwt_secret`) connect within `window_ms` of each other; a probe socket
    /// (`{prefix}probe`) connected before measures the server's responsiveness meanwhile.
    Storm {
        #[arg(long)]
        jwt_secret: String,
        #[arg(long, default_value_t = 10000)]
        users: usize,
        #[arg(long, default_value = "storm-u")]
        prefix: String,
        #[arg(long, default_value_t = 1000)]
        window_ms: u64,
        /// The event the probe asks for an ack (any event the server acks).
        #[arg(long, default_value = "chat:typing-stop")]
        probe_event: String,
    },
    /// Presence at scale (`realtime-server`): `users` users flap online/offline once each
    /// while `subscribers` sockets follow them; `user:status` fan-out rate, latency and
    /// server CPU, and the outbound webhook events of a fast receiver at `receiver`.
    Presence {
        #[arg(long)]
        jwt_secret: String,
        #[arg(long)]
        webhook_secret: String,
        #[arg(long, default_value_t = 10000)]
        users: usize,
        #[arg(long, default_value_t = 100)]
        subscribers: usize,
        /// Users each subscriber follows (at most 2000).
        #[arg(long, default_value_t = 1000)]
        follows: usize,
        /// New user connections per second.
        #[arg(long, default_value_t = 1000)]
        rate: u64,
        #[arg(long, default_value_t = 2000)]
        hold_ms: u64,
        /// The server's presence.grace_ms.
        #[arg(long, default_value_t = 5000)]
        grace_ms: u64,
        /// Listen here as the server's webhooks.outbound_url (answers 204 to every POST).
        #[arg(long)]
        receiver: Option<std::net::SocketAddr>,
    },
    /// Emit-with-ack round trips at a fixed concurrency.
    Echo {
        #[arg(long, default_value_t = 100)]
        n: usize,
        #[arg(long, default_value_t = 16)]
        inflight: usize,
        #[arg(long, default_value_t = 5)]
        duration: u64,
        /// The clients' transport (polling: long-polling only, no upgrade).
        #[arg(long, value_enum, default_value = "websocket")]
        transport: Transport,
    },
}

fn main() {
    let cli = Cli::parse();
    proc_stats::raise_fd_limit();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("a tokio runtime starts");
    let local = LocalSet::new();
    let result = local.block_on(&rt, async move {
        match cli.cmd {
            Cmd::Connections {
                n,
                rate,
                hold,
                transport,
            } => connections(&cli.url, cli.pid, n, rate, hold, transport).await,
            Cmd::Broadcast {
                n,
                senders,
                rate,
                duration,
                room,
                url2,
                transport,
            } => {
                let urls: Vec<&str> = std::iter::once(cli.url.as_str())
                    .chain(url2.as_deref())
                    .collect();
                let b = Bcast {
                    n,
                    senders,
                    rate,
                    duration,
                    room: &room,
                    transport,
                };
                broadcast(&urls, cli.pid, b).await
            }
            Cmd::Echo {
                transport: Transport::Plain,
                ..
            } => {
                eprintln!("echo speaks Socket.IO packets: use websocket or polling");
                std::process::exit(2)
            }
            Cmd::Echo {
                n,
                inflight,
                duration,
                transport,
            } => echo(&cli.url, cli.pid, n, inflight, duration, transport).await,
            Cmd::Notify {
                jwt_secret,
                webhook_secret,
                users,
                watchers,
                webhooks,
                interval_ms,
            } => {
                notify(
                    &cli.url,
                    cli.pid,
                    &jwt_secret,
                    &webhook_secret,
                    users,
                    watchers,
                    webhooks,
                    interval_ms,
                )
                .await
            }
            Cmd::Storm {
                jwt_secret,
                users,
                prefix,
                window_ms,
                probe_event,
            } => {
                storm::run(storm::Storm {
                    url: &cli.url,
                    pid: cli.pid,
                    jwt_secret: &jwt_secret,
                    prefix: &prefix,
                    users,
                    window: Duration::from_millis(window_ms),
                    probe_event: &probe_event,
                    source_ip,
                })
                .await
            }
            Cmd::Presence {
                jwt_secret,
                webhook_secret,
                users,
                subscribers,
                follows,
                rate,
                hold_ms,
                grace_ms,
                receiver,
            } => {
                presence::run(presence::Presence {
                    url: &cli.url,
                    pid: cli.pid,
                    jwt_secret: &jwt_secret,
                    webhook_secret: &webhook_secret,
                    users,
                    subscribers,
                    follows,
                    rate,
                    hold_ms,
                    grace_ms,
                    receiver,
                    source_ip,
                })
                .await
            }
            Cmd::Chat {
                tokens,
                room,
                senders,
                inflight,
                duration,
            } => {
                let tokens = std::fs::read_to_string(&tokens).expect("the tokens file is readable");
                let tokens: Vec<&str> = tokens.lines().filter(|l| !l.is_empty()).collect();
                chat(
                    &cli.url, cli.pid, &tokens, &room, senders, inflight, duration,
                )
                .await
            }
        }
    });
    let mut result = result;
    result["label"] = json!(cli.label);
    result["generator_cpu_s"] = json!(proc_stats::self_cpu_seconds());
    println!("{result}");
}

/// Source address for connection `i`: every 10k connections use another 127.0.0.x so the
/// ephemeral port range does not run out.
fn source_ip(i: usize) -> IpAddr {
    IpAddr::V4(Ipv4Addr::new(127, 0, 0, 1 + (i / 10_000) as u8))
}

pub(crate) fn percentiles(h: &Histogram<u64>) -> serde_json::Value {
    let ms = |v: u64| (v as f64) / 1000.0;
    json!({
        "p50_ms": ms(h.value_at_quantile(0.50)),
        "p90_ms": ms(h.value_at_quantile(0.90)),
        "p99_ms": ms(h.value_at_quantile(0.99)),
        "max_ms": ms(h.max()),
        "samples": h.len(),
    })
}

pub(crate) fn new_hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

async fn connections(
    url: &str,
    pid: Option<u32>,
    n: usize,
    rate: u64,
    hold: u64,
    transport: Transport,
) -> serde_json::Value {
    let rss_before = pid.and_then(proc_stats::rss_bytes);
    let stop = Rc::new(tokio::sync::Notify::new());
    let ok = Rc::new(RefCell::new(0usize));
    let failed = Rc::new(RefCell::new(0usize));
    let started = Instant::now();
    let gap = Duration::from_nanos(1_000_000_000 / rate.max(1));
    let mut next = tokio::time::Instant::now();
    for i in 0..n {
        tokio::time::sleep_until(next).await;
        next += gap;
        let (url, stop, ok, failed) = (url.to_owned(), stop.clone(), ok.clone(), failed.clone());
        tokio::task::spawn_local(async move {
            let opened = match transport {
                Transport::Plain => Conn::open_plain(&url, Some(source_ip(i))).await,
                _ => Conn::open(&url, Some(source_ip(i))).await,
            };
            match opened {
                Ok(mut c) => {
                    *ok.borrow_mut() += 1;
                    tokio::select! {
                        _ = c.idle() => {}
                        _ = stop.notified() => {}
                    }
                }
                Err(e) => {
                    if *failed.borrow() < 3 {
                        eprintln!("connect failed: {e}");
                    }
                    *failed.borrow_mut() += 1;
                }
            }
        });
    }
    // wait until every attempt finished
    let deadline = Instant::now() + Duration::from_secs(60);
    while *ok.borrow() + *failed.borrow() < n && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let connect_s = started.elapsed().as_secs_f64();
    tokio::time::sleep(Duration::from_secs(hold)).await;
    let rss_after = pid.and_then(proc_stats::rss_bytes);
    let (ok, failed) = (*ok.borrow(), *failed.borrow());
    stop.notify_waiters();
    let per_conn = match (rss_before, rss_after) {
        (Some(b), Some(a)) if ok > 0 => Some((a.saturating_sub(b)) as f64 / ok as f64),
        _ => None,
    };
    json!({
        "scenario": "connections",
        "transport": format!("{transport:?}").to_lowercase(),
        "n": n,
        "connected": ok,
        "failed": failed,
        "connect_rate_per_s": ok as f64 / connect_s,
        "server_rss_before": rss_before,
        "server_rss_after": rss_after,
        "server_rss_per_conn_bytes": per_conn,
    })
}

/// The broadcast scenario's parameters.
struct Bcast<'a> {
    n: usize,
    senders: usize,
    rate: u64,
    duration: u64,
    room: &'a str,
    transport: Transport,
}

async fn broadcast(urls: &[&str], pid: Option<u32>, b: Bcast<'_>) -> serde_json::Value {
    let Bcast {
        n,
        senders,
        rate,
        duration,
        room,
        transport,
    } = b;
    let t0 = Instant::now();
    let hist = Rc::new(RefCell::new(new_hist()));
    let received = Rc::new(RefCell::new(0u64));
    let mut sinks = Vec::with_capacity(n);
    for i in 0..n {
        match client::open_pair(
            transport,
            urls[i % urls.len()],
            Some(source_ip(i)),
            Some(room),
        )
        .await
        {
            Ok((tx, mut rx)) => {
                sinks.push(tx);
                let (hist, received) = (hist.clone(), received.clone());
                tokio::task::spawn_local(async move {
                    while let Some(t) = rx.next().await {
                        if let Some(sent_us) = client::field_u64(&t, "\"t\":") {
                            let now = t0.elapsed().as_micros() as u64;
                            let _ = hist.borrow_mut().record(now.saturating_sub(sent_us).max(1));
                            *received.borrow_mut() += 1;
                        }
                    }
                });
            }
            Err(e) => eprintln!("connect failed: {e}"),
        }
    }
    let members = sinks.len();
    let senders = senders.min(members).max(1);
    let cpu_before = pid.and_then(proc_stats::cpu_seconds);
    let sent = Rc::new(RefCell::new(0u64));
    let per_sender_gap = Duration::from_nanos(1_000_000_000 * senders as u64 / rate.max(1));
    let end = tokio::time::Instant::now() + Duration::from_secs(duration);
    let mut tasks = Vec::new();
    for (k, mut sink) in sinks.drain(..senders).enumerate() {
        let sent = sent.clone();
        tasks.push(tokio::task::spawn_local(async move {
            // stagger senders across one gap
            let mut next = tokio::time::Instant::now() + per_sender_gap * k as u32 / senders as u32;
            while next < end {
                tokio::time::sleep_until(next).await;
                next += per_sender_gap;
                let t = t0.elapsed().as_micros() as u64;
                let msg = client::bcast_packet(transport, t);
                if !sink.send(msg).await {
                    break;
                }
                *sent.borrow_mut() += 1;
            }
            sink
        }));
    }
    let send_start = Instant::now();
    let mut kept = Vec::new();
    for t in tasks {
        if let Ok(s) = t.await {
            kept.push(s);
        }
    }
    let send_s = send_start.elapsed().as_secs_f64();
    let expected = *sent.borrow() * members as u64;
    // drain: wait until everything arrived or 2 s passed
    let drain_end = Instant::now() + Duration::from_secs(2);
    while *received.borrow() < expected && Instant::now() < drain_end {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let cpu_after = pid.and_then(proc_stats::cpu_seconds);
    let got = *received.borrow();
    let server_cpu = match (cpu_before, cpu_after) {
        (Some(b), Some(a)) => Some(a - b),
        _ => None,
    };
    for s in kept.into_iter().chain(sinks) {
        s.close();
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let h = hist.borrow();
    json!({
        "scenario": "broadcast",
        "transport": format!("{transport:?}").to_lowercase(),
        "nodes": urls.len(),
        "members": members,
        "senders": senders,
        "rate_msgs_per_s": rate,
        "duration_s": send_s,
        "sent": *sent.borrow(),
        "expected_deliveries": expected,
        "deliveries": got,
        "lost": expected.saturating_sub(got),
        "deliveries_per_s": got as f64 / send_s,
        "latency": percentiles(&h),
        "server_cpu_s": server_cpu,
        "server_cpu_us_per_delivery": server_cpu.map(|c| if got > 0 { c * 1e6 / got as f64 } else { 0.0 }),
        "server_rss_bytes": pid.and_then(proc_stats::rss_bytes),
    })
}

async fn echo(
    url: &str,
    pid: Option<u32>,
    n: usize,
    inflight: usize,
    duration: u64,
    transport: Transport,
) -> serde_json::Value {
    let t0 = Instant::now();
    let hist = Rc::new(RefCell::new(new_hist()));
    let acks = Rc::new(RefCell::new(0u64));
    let mut conns = Vec::with_capacity(n);
    for i in 0..n {
        match client::open_pair(transport, url, Some(source_ip(i)), None).await {
            Ok(c) => conns.push(c),
            Err(e) => eprintln!("connect failed: {e}"),
        }
    }
    let cpu_before = pid.and_then(proc_stats::cpu_seconds);
    let start = Instant::now();
    let end = start + Duration::from_secs(duration);
    let mut tasks = Vec::new();
    for (mut sink, mut stream) in conns {
        let (hist, acks) = (hist.clone(), acks.clone());
        tasks.push(tokio::task::spawn_local(async move {
            let mut next_id = 0u64;
            let send = |id: u64| {
                let t = t0.elapsed().as_micros() as u64;
                format!("42{id}[\"echo\",{{\"t\":{t}}}]")
            };
            for _ in 0..inflight {
                let _ = sink.feed(send(next_id)).await;
                next_id += 1;
            }
            let _ = sink.flush().await;
            let mut outstanding = inflight;
            // Handle every message already received, then write all answers at once.
            while outstanding > 0 {
                let Some(first) = stream.next().await else {
                    break;
                };
                let mut batch = vec![first];
                while let Some(m) = stream.try_next() {
                    batch.push(m);
                }
                for t in batch {
                    if t == "2" {
                        let _ = sink.feed("3".into()).await;
                        continue;
                    }
                    if !t.starts_with("43") {
                        continue;
                    }
                    if let Some(sent) = client::field_u64(&t, "\"t\":") {
                        let now = t0.elapsed().as_micros() as u64;
                        let _ = hist.borrow_mut().record(now.saturating_sub(sent).max(1));
                    }
                    *acks.borrow_mut() += 1;
                    outstanding -= 1;
                    if Instant::now() < end {
                        let _ = sink.feed(send(next_id)).await;
                        next_id += 1;
                        outstanding += 1;
                    }
                }
                let _ = sink.flush().await;
            }
            sink.close();
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let secs = start.elapsed().as_secs_f64();
    let cpu_after = pid.and_then(proc_stats::cpu_seconds);
    // the close packets of polling sessions leave meanwhile
    tokio::time::sleep(Duration::from_millis(300)).await;
    let server_cpu = match (cpu_before, cpu_after) {
        (Some(b), Some(a)) => Some(a - b),
        _ => None,
    };
    let got = *acks.borrow();
    let h = hist.borrow();
    json!({
        "scenario": "echo",
        "transport": format!("{transport:?}").to_lowercase(),
        "connections": n,
        "inflight": inflight,
        "duration_s": secs,
        "acks": got,
        "acks_per_s": got as f64 / secs,
        "latency": percentiles(&h),
        "server_cpu_s": server_cpu,
        "server_cpu_us_per_ack": server_cpu.map(|c| if got > 0 { c * 1e6 / got as f64 } else { 0.0 }),
    })
}

/// Counters of the chat scenario.
#[derive(Default)]
struct ChatStats {
    sent: u64,
    acked: u64,
    refused: u64,
    delivered: u64,
}

#[allow(clippy::too_many_arguments)]
async fn chat(
    url: &str,
    pid: Option<u32>,
    tokens: &[&str],
    room: &str,
    senders: usize,
    inflight: usize,
    duration: u64,
) -> serde_json::Value {
    let t0 = Instant::now();
    let ack_hist = Rc::new(RefCell::new(new_hist()));
    let msg_hist = Rc::new(RefCell::new(new_hist()));
    let stats = Rc::new(RefCell::new(ChatStats::default()));
    let mut conns = Vec::with_capacity(tokens.len());
    for (i, t) in tokens.iter().enumerate() {
        let auth = json!({ "token": t });
        match Conn::open_with(url, Some(source_ip(i)), Some(&auth)).await {
            Ok(mut c) => match c.ask("room:join", &json!(room)).await {
                Ok(a) if a.contains("\"success\":true") => conns.push(c),
                Ok(a) => eprintln!("join refused: {a}"),
                Err(e) => eprintln!("join failed: {e}"),
            },
            Err(e) => eprintln!("connect failed: {e}"),
        }
    }
    let members = conns.len();
    let senders = senders.min(members);
    // let the join traffic (member updates) settle before measuring
    tokio::time::sleep(Duration::from_millis(300)).await;
    let cpu_before = pid.and_then(proc_stats::cpu_seconds);
    let stop = Rc::new(std::cell::Cell::new(false));
    let start = Instant::now();
    let end = start + Duration::from_secs(duration);
    let room_json = serde_json::to_string(room).expect("a string encodes");
    // clientMsgIds are unique per run: a retried id is (rightly) not broadcast again
    let run_id = format!("{}-{}", std::process::id(), t0.elapsed().as_nanos());
    let mut tasks = Vec::new();
    for (k, c) in conns.into_iter().enumerate() {
        let (ack_hist, msg_hist, stats, stop) = (
            ack_hist.clone(),
            msg_hist.clone(),
            stats.clone(),
            stop.clone(),
        );
        let (room_json, run_id) = (room_json.clone(), run_id.clone());
        let sending = k < senders;
        tasks.push(tokio::task::spawn_local(async move {
            let (mut sink, mut stream) = c.split();
            let mut sent_at: std::collections::HashMap<u64, u64> = Default::default();
            let mut next_id = 1u64;
            let send = |id: u64| {
                let t = t0.elapsed().as_micros() as u64;
                let text = format!(
                    "42{id}[\"chat:send\",{{\"roomId\":{room_json},\"text\":\"bench message @{t} from {k}\",\"clientMsgId\":\"{run_id}-{k}-{id}\"}}]"
                );
                (t, Message::Text(text))
            };
            if sending {
                for _ in 0..inflight {
                    let (t, m) = send(next_id);
                    sent_at.insert(next_id, t);
                    next_id += 1;
                    stats.borrow_mut().sent += 1;
                    let _ = sink.feed(m).await;
                }
                let _ = sink.flush().await;
            }
            loop {
                if stop.get() {
                    break;
                }
                let first = tokio::select! {
                    m = stream.next() => m,
                    _ = tokio::time::sleep(Duration::from_millis(50)) => continue,
                };
                let Some(Ok(first)) = first else { break };
                let mut batch = vec![first];
                while let Some(Some(Ok(m))) = stream.next().now_or_never() {
                    batch.push(m);
                }
                for m in batch {
                    let Message::Text(t) = m else { continue };
                    if t == "2" {
                        let _ = sink.feed(Message::Text("3".into())).await;
                    } else if t.starts_with("42[\"chat:message\"") {
                        if let Some(sent) = client::field_u64(&t, "@") {
                            let now = t0.elapsed().as_micros() as u64;
                            let _ = msg_hist.borrow_mut().record(now.saturating_sub(sent).max(1));
                        }
                        stats.borrow_mut().delivered += 1;
                    } else if let Some(rest) = t.strip_prefix("43") {
                        let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
                        let Ok(id) = rest[..digits].parse::<u64>() else { continue };
                        if let Some(sent) = sent_at.remove(&id) {
                            let now = t0.elapsed().as_micros() as u64;
                            let _ = ack_hist.borrow_mut().record(now.saturating_sub(sent).max(1));
                        }
                        if rest[digits..].contains("\"success\":true") {
                            stats.borrow_mut().acked += 1;
                        } else {
                            let mut s = stats.borrow_mut();
                            if s.refused < 3 {
                                eprintln!("chat:send refused: {t}");
                            }
                            s.refused += 1;
                        }
                        if Instant::now() < end {
                            let (t, m) = send(next_id);
                            sent_at.insert(next_id, t);
                            next_id += 1;
                            stats.borrow_mut().sent += 1;
                            let _ = sink.feed(m).await;
                        }
                    }
                }
                let _ = sink.flush().await;
            }
        }));
    }
    // senders stop issuing at `end`; then wait for their last acks and every delivery
    tokio::time::sleep_until(end.into()).await;
    let send_s = start.elapsed().as_secs_f64();
    let drain_end = Instant::now() + Duration::from_secs(5);
    loop {
        let done = {
            let s = stats.borrow();
            s.acked + s.refused >= s.sent && s.delivered >= s.acked * members as u64
        };
        if done || Instant::now() > drain_end {
            break;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let acked_s = start.elapsed().as_secs_f64();
    let cpu_after = pid.and_then(proc_stats::cpu_seconds);
    stop.set(true);
    for t in tasks {
        let _ = t.await;
    }
    let server_cpu = match (cpu_before, cpu_after) {
        (Some(b), Some(a)) => Some(a - b),
        _ => None,
    };
    let s = stats.borrow();
    json!({
        "scenario": "chat",
        "members": members,
        "senders": senders,
        "inflight": inflight,
        "duration_s": send_s,
        "sent": s.sent,
        "acked": s.acked,
        "refused": s.refused,
        "acked_per_s": s.acked as f64 / send_s,
        "ack_latency": percentiles(&ack_hist.borrow()),
        "expected_deliveries": s.acked * members as u64,
        "deliveries": s.delivered,
        "lost": (s.acked * members as u64).saturating_sub(s.delivered),
        "delivery_latency": percentiles(&msg_hist.borrow()),
        "drain_s": acked_s - send_s,
        "server_cpu_s": server_cpu,
        "server_cpu_us_per_message": server_cpu.map(|c| if s.acked > 0 { c * 1e6 / s.acked as f64 } else { 0.0 }),
    })
}

/// Stock webhooks fanned out to the watchers among many connected users.
#[allow(clippy::too_many_arguments)]
async fn notify(
    url: &str,
    pid: Option<u32>,
    jwt_secret: &str,
    webhook_secret: &str,
    users: usize,
    watchers: usize,
    webhooks: usize,
    interval_ms: u64,
) -> serde_json::Value {
    let t0 = Instant::now();
    let addr: std::net::SocketAddr = url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .expect("--url is http://IP:PORT");
    let mut internal = product::Internal::connect(addr, webhook_secret)
        .await
        .expect("the server answers HTTP");
    let setup = Instant::now();
    for i in 0..users {
        let body = format!(
            "{{\"name\":\"Bench {i}\",\"email\":\"u{i}@example.com\",\"role\":\"user\",\"isActive\":true}}"
        );
        match internal
            .call("PUT", &format!("/users/bench-u{i}"), &body)
            .await
        {
            Ok((200, _)) => {}
            Ok((s, b)) => panic!("PUT /users failed: {s} {b}"),
            Err(e) => panic!("PUT /users failed: {e}"),
        }
    }
    let users_s = setup.elapsed().as_secs_f64();
    let product = format!("bench-product-{}", std::process::id());
    let sent_at: Rc<RefCell<Vec<u64>>> = Rc::new(RefCell::new(vec![0; webhooks + 1]));
    let hist = Rc::new(RefCell::new(new_hist()));
    let delivered = Rc::new(RefCell::new(0u64));
    let ready = Rc::new(RefCell::new(0usize));
    let failed = Rc::new(RefCell::new(0usize));
    let stop = Rc::new(tokio::sync::Notify::new());
    let gap = Duration::from_micros(500); // 2000 connections/s
    let mut next = tokio::time::Instant::now();
    for i in 0..users {
        tokio::time::sleep_until(next).await;
        next += gap;
        let auth = json!({ "token": product::token(jwt_secret, &format!("bench-u{i}")) });
        let (url, product) = (url.to_owned(), product.clone());
        let (sent_at, hist, delivered, ready, failed, stop) = (
            sent_at.clone(),
            hist.clone(),
            delivered.clone(),
            ready.clone(),
            failed.clone(),
            stop.clone(),
        );
        tokio::task::spawn_local(async move {
            let mut c = match Conn::open_with(&url, Some(source_ip(i)), Some(&auth)).await {
                Ok(c) => c,
                Err(e) => {
                    if *failed.borrow() < 3 {
                        eprintln!("connect failed: {e}");
                    }
                    *failed.borrow_mut() += 1;
                    return;
                }
            };
            if i < watchers {
                match c
                    .ask("product:watch", &json!({ "productId": product }))
                    .await
                {
                    Ok(a) if a.contains("\"success\":true") => {}
                    other => {
                        eprintln!("product:watch failed: {other:?}");
                        *failed.borrow_mut() += 1;
                        return;
                    }
                }
            }
            *ready.borrow_mut() += 1;
            let (mut sink, mut stream) = c.split();
            loop {
                let m = tokio::select! {
                    m = stream.next() => m,
                    _ = stop.notified() => break,
                };
                let Some(Ok(Message::Text(t))) = m else {
                    if m.is_none() {
                        break;
                    }
                    continue;
                };
                if t == "2" {
                    let _ = sink.send(Message::Text("3".into())).await;
                } else if t.starts_with("42[\"notification\"") {
                    let now = t0.elapsed().as_micros() as u64;
                    if let Some(k) = client::field_u64(&t, "\"stock\":") {
                        let sent = sent_at.borrow().get(k as usize).copied().unwrap_or(0);
                        if sent > 0 {
                            let _ = hist.borrow_mut().record(now.saturating_sub(sent).max(1));
                        }
                    }
                    *delivered.borrow_mut() += 1;
                }
            }
        });
    }
    let deadline = Instant::now() + Duration::from_secs(120);
    while *ready.borrow() + *failed.borrow() < users && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let connected = *ready.borrow();
    tokio::time::sleep(Duration::from_millis(500)).await;
    // a fresh connection: the server closes keep-alive connections idle for 5 s
    let mut internal = product::Internal::connect(addr, webhook_secret)
        .await
        .expect("the server answers HTTP");
    let cpu_before = pid.and_then(proc_stats::cpu_seconds);
    let mut http = new_hist();
    let mut notified_ok = 0usize;
    let start = Instant::now();
    let mut next = tokio::time::Instant::now();
    for k in 1..=webhooks {
        tokio::time::sleep_until(next).await;
        next += Duration::from_millis(interval_ms);
        let body = format!("{{\"productId\":\"{product}\",\"stock\":{k}}}");
        let t = t0.elapsed().as_micros() as u64;
        sent_at.borrow_mut()[k] = t;
        match internal.call("POST", "/notify/stock", &body).await {
            Ok((200, b)) => {
                let _ = http.record((t0.elapsed().as_micros() as u64).saturating_sub(t).max(1));
                if b.contains(&format!("\"notified\":{watchers}")) {
                    notified_ok += 1;
                } else {
                    eprintln!("webhook answer: {b}");
                }
            }
            other => eprintln!("webhook failed: {other:?}"),
        }
    }
    let expected = (webhooks * watchers.min(connected)) as u64;
    let drain_end = Instant::now() + Duration::from_secs(5);
    while *delivered.borrow() < expected && Instant::now() < drain_end {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let secs = start.elapsed().as_secs_f64();
    let cpu_after = pid.and_then(proc_stats::cpu_seconds);
    stop.notify_waiters();
    let got = *delivered.borrow();
    let h = hist.borrow();
    json!({
        "scenario": "notify",
        "users": users,
        "connected": connected,
        "watchers": watchers,
        "webhooks": webhooks,
        "interval_ms": interval_ms,
        "users_setup_s": users_s,
        "notified_matched": notified_ok,
        "expected_deliveries": expected,
        "deliveries": got,
        "lost": expected.saturating_sub(got),
        "delivery_latency": percentiles(&h),
        "webhook_http_latency": percentiles(&http),
        "server_cpu_s": match (cpu_before, cpu_after) { (Some(b), Some(a)) => Some(a - b), _ => None },
        "duration_s": secs,
        "server_rss_bytes": pid.and_then(proc_stats::rss_bytes),
    })
}
