//! Presence at scale (`realtime-server` only, DESIGN 13): `users` users each connect once
//! and leave after `hold_ms` (online, then offline after the server's grace); `subscribers`
//! sockets follow them (`follows` users each, so every user has
//! `subscribers × follows / users` followers). Reports `user:status` deliveries, their
//! rate and latency (online: from the user's CONNECT answer; offline: from the close plus
//! `grace_ms`), the server's CPU, and the outbound webhook events a fast receiver in this
//! process got. The receiver holds its answers until every `user:status` arrived, so the
//! events queue up (stored); then it answers at once and the drain rate is the sender's
//! throughput (latency from each event's `timestamp` includes the hold).

use std::cell::RefCell;
use std::net::{IpAddr, SocketAddr};
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use hdrhistogram::Histogram;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio_tungstenite::tungstenite::Message;

use crate::client::{self, Conn};
use crate::{new_hist, percentiles, proc_stats, product};

pub struct Presence<'a> {
    pub url: &'a str,
    pub pid: Option<u32>,
    pub jwt_secret: &'a str,
    pub webhook_secret: &'a str,
    pub users: usize,
    pub subscribers: usize,
    pub follows: usize,
    /// New user connections per second.
    pub rate: u64,
    pub hold_ms: u64,
    /// The server's `presence.grace_ms`.
    pub grace_ms: u64,
    /// Where the fast webhook receiver listens (the server's `webhooks.outbound_url`).
    pub receiver: Option<SocketAddr>,
    pub source_ip: fn(usize) -> IpAddr,
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}

/// What the webhook receiver saw.
#[derive(Default)]
struct Hooks {
    events: u64,
    /// Events received while the answers were held.
    held: u64,
    released: Option<Instant>,
    last: Option<Instant>,
    hist: Option<Histogram<u64>>,
    release: Rc<tokio::sync::Notify>,
}

/// A minimal keep-alive HTTP/1.1 server answering 204 to every POST.
async fn receiver(addr: SocketAddr, hooks: Rc<RefCell<Hooks>>) {
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .expect("the receiver address is free");
    loop {
        let Ok((stream, _)) = listener.accept().await else {
            continue;
        };
        let hooks = hooks.clone();
        tokio::task::spawn_local(async move {
            let mut s = BufReader::new(stream);
            let mut line = String::new();
            loop {
                line.clear();
                if s.read_line(&mut line).await.unwrap_or(0) == 0 {
                    return;
                }
                let Ok(Some(len)) = product::read_head(&mut s).await else {
                    return;
                };
                let mut body = vec![0; len];
                if s.read_exact(&mut body).await.is_err() {
                    return;
                }
                let release = {
                    let h = hooks.borrow();
                    h.released.is_none().then(|| h.release.clone())
                };
                if let Some(r) = release {
                    hooks.borrow_mut().held += 1;
                    r.notified().await;
                }
                let at = now_ms();
                {
                    let mut h = hooks.borrow_mut();
                    h.events += 1;
                    h.last = Some(Instant::now());
                    let text = String::from_utf8_lossy(&body);
                    if let Some(ts) = client::field_u64(&text, "\"timestamp\":") {
                        let _ = h
                            .hist
                            .get_or_insert_with(new_hist)
                            .record(at.saturating_sub(ts).max(1) * 1000);
                    }
                }
                let ok = b"HTTP/1.1 204 No Content\r\n\r\n";
                if s.get_mut().write_all(ok).await.is_err() {
                    return;
                }
            }
        });
    }
}

pub async fn run(p: Presence<'_>) -> serde_json::Value {
    let addr: SocketAddr = p
        .url
        .trim_start_matches("http://")
        .trim_end_matches('/')
        .parse()
        .expect("--url is http://IP:PORT");
    let hooks = Rc::new(RefCell::new(Hooks::default()));
    if let Some(r) = p.receiver {
        tokio::task::spawn_local(receiver(r, hooks.clone()));
    }
    let name = |i: usize| format!("pres-u{i}");
    let mut internal = product::Internal::connect(addr, p.webhook_secret)
        .await
        .expect("the server answers HTTP");
    let setup = Instant::now();
    for i in 0..p.users + p.subscribers {
        let id = if i < p.users {
            name(i)
        } else {
            format!("pres-s{i}")
        };
        let body = format!(
            "{{\"name\":\"{id}\",\"email\":\"{id}@example.com\",\"role\":\"user\",\"isActive\":true}}"
        );
        match internal.call("PUT", &format!("/users/{id}"), &body).await {
            Ok((200, _)) => {}
            other => panic!("PUT /users/{id} failed: {other:?}"),
        }
    }
    let users_s = setup.elapsed().as_secs_f64();

    // when each user turned online (its CONNECT answer) and offline (close + grace), µs
    // since t0; 0 while unknown
    let t0 = Instant::now();
    let online_at = Rc::new(RefCell::new(vec![0u64; p.users]));
    let offline_at = Rc::new(RefCell::new(vec![0u64; p.users]));
    let online_hist = Rc::new(RefCell::new(new_hist()));
    let offline_hist = Rc::new(RefCell::new(new_hist()));
    let counts = Rc::new(RefCell::new((0u64, 0u64))); // (online, offline) deliveries
    let stop = Rc::new(tokio::sync::Notify::new());
    let subscribed = Rc::new(RefCell::new(0usize));
    for k in 0..p.subscribers {
        let auth =
            json!({ "token": product::token(p.jwt_secret, &format!("pres-s{}", p.users + k)) });
        let mut c = Conn::open_with(p.url, Some((p.source_ip)(k)), Some(&auth))
            .await
            .expect("a subscriber connects");
        // follows ids, spread so every user gets the same number of followers
        let ids: Vec<String> = (0..p.follows)
            .map(|j| name((k * p.follows + j) % p.users))
            .collect();
        for chunk in ids.chunks(500) {
            let a = c
                .ask("presence:subscribe", &json!({ "userIds": chunk }))
                .await
                .expect("presence:subscribe answers");
            assert!(a.contains("\"success\":true"), "subscribe refused: {a}");
        }
        *subscribed.borrow_mut() += 1;
        let (online_at, offline_at, online_hist, offline_hist, counts, stop) = (
            online_at.clone(),
            offline_at.clone(),
            online_hist.clone(),
            offline_hist.clone(),
            counts.clone(),
            stop.clone(),
        );
        let users = p.users;
        tokio::task::spawn_local(async move {
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
                    continue;
                }
                if !t.starts_with("42[\"user:status\"") {
                    continue;
                }
                let now = t0.elapsed().as_micros() as u64;
                let Some(i) = client::field_u64(&t, "\"userId\":\"pres-u")
                    .map(|i| i as usize)
                    .filter(|i| *i < users)
                else {
                    continue;
                };
                if t.contains("\"status\":\"online\"") {
                    counts.borrow_mut().0 += 1;
                    let at = online_at.borrow()[i];
                    if at > 0 {
                        let _ = online_hist
                            .borrow_mut()
                            .record(now.saturating_sub(at).max(1));
                    }
                } else {
                    counts.borrow_mut().1 += 1;
                    let at = offline_at.borrow()[i];
                    if at > 0 {
                        let _ = offline_hist
                            .borrow_mut()
                            .record(now.saturating_sub(at).max(1));
                    }
                }
            }
        });
    }
    let followers = (p.subscribers * p.follows) as u64 / p.users.max(1) as u64;

    let cpu_before = proc_stats_cpu(p.pid);
    let start = Instant::now();
    let gap = Duration::from_micros(1_000_000 / p.rate.max(1));
    let mut next = tokio::time::Instant::now();
    let failed = Rc::new(RefCell::new(0usize));
    let left = Rc::new(RefCell::new(0usize));
    let mut rng_state = 0x9E37_79B9_7F4A_7C15u64;
    for i in 0..p.users {
        tokio::time::sleep_until(next).await;
        next += gap;
        // a random hold around hold_ms, so closes do not come in lockstep with connects
        rng_state ^= rng_state << 13;
        rng_state ^= rng_state >> 7;
        rng_state ^= rng_state << 17;
        let hold = p.hold_ms / 2 + rng_state % p.hold_ms.max(1);
        let auth = json!({ "token": product::token(p.jwt_secret, &name(i)) });
        let (url, online_at, offline_at, failed, left) = (
            p.url.to_owned(),
            online_at.clone(),
            offline_at.clone(),
            failed.clone(),
            left.clone(),
        );
        let (grace_us, ip) = (p.grace_ms * 1000, (p.source_ip)(p.subscribers + i));
        tokio::task::spawn_local(async move {
            let c = match Conn::open_with(&url, Some(ip), Some(&auth)).await {
                Ok(c) => c,
                Err(e) => {
                    if *failed.borrow() < 3 {
                        eprintln!("connect failed: {e}");
                    }
                    *failed.borrow_mut() += 1;
                    return;
                }
            };
            online_at.borrow_mut()[i] = t0.elapsed().as_micros() as u64;
            tokio::time::sleep(Duration::from_millis(hold)).await;
            c.close().await;
            offline_at.borrow_mut()[i] = t0.elapsed().as_micros() as u64 + grace_us;
            *left.borrow_mut() += 1;
        });
    }
    let connected = p.users - *failed.borrow();
    let expected = connected as u64 * followers;
    let deadline = Instant::now() + Duration::from_millis(p.hold_ms * 2 + p.grace_ms + 20_000);
    while Instant::now() < deadline {
        let (on, off) = *counts.borrow();
        if on >= expected && off >= expected {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let secs = start.elapsed().as_secs_f64();
    let cpu_after = proc_stats_cpu(p.pid);
    // every webhook event is stored by now (two per user, one per subscriber): answer them
    let hooks_expected = 2 * connected as u64 + p.subscribers as u64;
    tokio::time::sleep(Duration::from_secs(1)).await;
    let cpu_hooks = proc_stats_cpu(p.pid);
    {
        let mut h = hooks.borrow_mut();
        h.released = Some(Instant::now());
        h.release.notify_waiters();
    }
    let hooks_deadline = Instant::now() + Duration::from_secs(120);
    while p.receiver.is_some()
        && hooks.borrow().events < hooks_expected
        && Instant::now() < hooks_deadline
    {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let cpu_drained = proc_stats_cpu(p.pid);
    stop.notify_waiters();
    let (on, off) = *counts.borrow();
    let server_cpu = match (cpu_before, cpu_after) {
        (Some(b), Some(a)) => Some(a - b),
        _ => None,
    };
    let h = hooks.borrow();
    let hook_span = match (h.released, h.last) {
        (Some(a), Some(b)) => b.duration_since(a).as_secs_f64(),
        _ => 0.0,
    };
    let drain_cpu = match (cpu_hooks, cpu_drained) {
        (Some(b), Some(a)) => Some(a - b),
        _ => None,
    };
    let empty = new_hist();
    json!({
        "scenario": "presence",
        "users": p.users,
        "connected": connected,
        "subscribers": p.subscribers,
        "follows_each": p.follows,
        "followers_per_user": followers,
        "connect_rate": p.rate,
        "hold_ms": p.hold_ms,
        "grace_ms": p.grace_ms,
        "users_setup_s": users_s,
        "expected_each_way": expected,
        "online_deliveries": on,
        "offline_deliveries": off,
        "lost": (2 * expected).saturating_sub(on + off),
        "duration_s": secs,
        "status_deliveries_per_s": (on + off) as f64 / secs,
        "online_latency": percentiles(&online_hist.borrow()),
        "offline_latency_after_grace": percentiles(&offline_hist.borrow()),
        "server_cpu_s": server_cpu,
        "server_cpu_ms_per_user_flap": server_cpu.map(|c| c * 1e3 / connected.max(1) as f64),
        "webhook_events_expected": hooks_expected,
        "webhook_events": h.events,
        "webhook_held_in_flight": h.held,
        "webhook_drain_s": hook_span,
        "webhook_events_per_s": if hook_span > 0.0 { h.events as f64 / hook_span } else { 0.0 },
        "webhook_drain_server_cpu_us_per_event": drain_cpu.map(|c| c * 1e6 / h.events.max(1) as f64),
        "webhook_latency_incl_hold": percentiles(h.hist.as_ref().unwrap_or(&empty)),
        "server_rss_bytes": p.pid.and_then(proc_stats::rss_bytes),
        "users_left": *left.borrow(),
    })
}

fn proc_stats_cpu(pid: Option<u32>) -> Option<f64> {
    pid.and_then(proc_stats::cpu_seconds)
}
