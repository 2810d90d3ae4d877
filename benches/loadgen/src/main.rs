//! Load generator for any Socket.IO v4 server, speaking Engine.IO v4 / Socket.IO v5 over
//! WebSocket itself. One thread drives every connection (on a 2-core box the server gets
//! the other core). Every run ends with one JSON line of its figures, including the
//! generator's own CPU time so a saturated generator shows.
//!
//! Bench contract served by both servers (namespace `/`): `join` (room, ack?) joins and acks
//! the room name; `bcast` (payload) sends `msg` (payload) to the sender's room, sender
//! included; `bcast` (room, payload) to that room; `echo` (payload, ack) acks the payload.

mod client;
mod proc_stats;

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

use client::Conn;

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
    },
    /// Emit-with-ack round trips at a fixed concurrency.
    Echo {
        #[arg(long, default_value_t = 100)]
        n: usize,
        #[arg(long, default_value_t = 16)]
        inflight: usize,
        #[arg(long, default_value_t = 5)]
        duration: u64,
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
            Cmd::Connections { n, rate, hold } => {
                connections(&cli.url, cli.pid, n, rate, hold).await
            }
            Cmd::Broadcast {
                n,
                senders,
                rate,
                duration,
                room,
            } => broadcast(&cli.url, cli.pid, n, senders, rate, duration, &room).await,
            Cmd::Echo {
                n,
                inflight,
                duration,
            } => echo(&cli.url, cli.pid, n, inflight, duration).await,
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

fn percentiles(h: &Histogram<u64>) -> serde_json::Value {
    let ms = |v: u64| (v as f64) / 1000.0;
    json!({
        "p50_ms": ms(h.value_at_quantile(0.50)),
        "p90_ms": ms(h.value_at_quantile(0.90)),
        "p99_ms": ms(h.value_at_quantile(0.99)),
        "max_ms": ms(h.max()),
        "samples": h.len(),
    })
}

fn new_hist() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 60_000_000, 3).expect("valid histogram bounds")
}

async fn connections(
    url: &str,
    pid: Option<u32>,
    n: usize,
    rate: u64,
    hold: u64,
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
            match Conn::open(&url, Some(source_ip(i))).await {
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
        "n": n,
        "connected": ok,
        "failed": failed,
        "connect_rate_per_s": ok as f64 / connect_s,
        "server_rss_before": rss_before,
        "server_rss_after": rss_after,
        "server_rss_per_conn_bytes": per_conn,
    })
}

async fn broadcast(
    url: &str,
    pid: Option<u32>,
    n: usize,
    senders: usize,
    rate: u64,
    duration: u64,
    room: &str,
) -> serde_json::Value {
    let t0 = Instant::now();
    let hist = Rc::new(RefCell::new(new_hist()));
    let received = Rc::new(RefCell::new(0u64));
    let mut conns = Vec::with_capacity(n);
    for i in 0..n {
        match Conn::open(url, Some(source_ip(i))).await {
            Ok(mut c) => {
                if let Err(e) = c.join(room).await {
                    eprintln!("join failed: {e}");
                    continue;
                }
                conns.push(c);
            }
            Err(e) => eprintln!("connect failed: {e}"),
        }
    }
    let members = conns.len();
    let senders = senders.min(members).max(1);
    let mut sinks = Vec::new();
    for c in conns {
        let (sink, mut stream) = c.split();
        sinks.push(sink);
        let (hist, received) = (hist.clone(), received.clone());
        tokio::task::spawn_local(async move {
            while let Some(Ok(m)) = stream.next().await {
                if let Message::Text(t) = m {
                    if let Some(sent_us) = client::field_u64(&t, "\"t\":") {
                        let now = t0.elapsed().as_micros() as u64;
                        let _ = hist.borrow_mut().record(now.saturating_sub(sent_us).max(1));
                        *received.borrow_mut() += 1;
                    }
                }
            }
        });
    }
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
                let msg = format!("42[\"bcast\",{{\"t\":{t}}}]");
                if sink.send(Message::Text(msg)).await.is_err() {
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
    let h = hist.borrow();
    json!({
        "scenario": "broadcast",
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
) -> serde_json::Value {
    let t0 = Instant::now();
    let hist = Rc::new(RefCell::new(new_hist()));
    let acks = Rc::new(RefCell::new(0u64));
    let mut conns = Vec::with_capacity(n);
    for i in 0..n {
        match Conn::open(url, Some(source_ip(i))).await {
            Ok(c) => conns.push(c),
            Err(e) => eprintln!("connect failed: {e}"),
        }
    }
    let cpu_before = pid.and_then(proc_stats::cpu_seconds);
    let start = Instant::now();
    let end = start + Duration::from_secs(duration);
    let mut tasks = Vec::new();
    for c in conns {
        let (hist, acks) = (hist.clone(), acks.clone());
        tasks.push(tokio::task::spawn_local(async move {
            let (mut sink, mut stream) = c.split();
            let mut next_id = 0u64;
            let send = |id: u64| {
                let t = t0.elapsed().as_micros() as u64;
                Message::Text(format!("42{id}[\"echo\",{{\"t\":{t}}}]"))
            };
            for _ in 0..inflight {
                let _ = sink.feed(send(next_id)).await;
                next_id += 1;
            }
            let _ = sink.flush().await;
            let mut outstanding = inflight;
            // Handle every message already received, then write all answers at once.
            while outstanding > 0 {
                let Some(Ok(first)) = stream.next().await else {
                    break;
                };
                let mut batch = vec![first];
                while let Some(Some(Ok(m))) = stream.next().now_or_never() {
                    batch.push(m);
                }
                for m in batch {
                    let Message::Text(t) = m else { continue };
                    if t == "2" {
                        let _ = sink.feed(Message::Text("3".into())).await;
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
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let secs = start.elapsed().as_secs_f64();
    let cpu_after = pid.and_then(proc_stats::cpu_seconds);
    let server_cpu = match (cpu_before, cpu_after) {
        (Some(b), Some(a)) => Some(a - b),
        _ => None,
    };
    let got = *acks.borrow();
    let h = hist.borrow();
    json!({
        "scenario": "echo",
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
