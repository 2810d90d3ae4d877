//! The connection storm: `users` authenticated clients (JWT in the CONNECT auth, a users-table
//! look-up on the server) connect within `window` of each other, as socket.io-client's
//! randomized reconnect delay spreads them after a server restart. A probe socket, connected
//! before, keeps asking for an ack every 10 ms meanwhile: its latency shows whether the
//! server stays responsive for the sockets it already serves.

use std::cell::RefCell;
use std::net::IpAddr;
use std::rc::Rc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use serde_json::json;
use tokio_tungstenite::tungstenite::Message;

use crate::client::Conn;
use crate::{new_hist, percentiles, proc_stats, product};

/// What the storm needs.
pub struct Storm<'a> {
    pub url: &'a str,
    pub pid: Option<u32>,
    pub jwt_secret: &'a str,
    /// Users `{prefix}0` … `{prefix}{users-1}` (the probe is `{prefix}probe`).
    pub prefix: &'a str,
    pub users: usize,
    pub window: Duration,
    /// The probe's event (acked by the server whatever it answers).
    pub probe_event: &'a str,
    pub source_ip: fn(usize) -> IpAddr,
}

pub async fn run(s: Storm<'_>) -> serde_json::Value {
    let auth = |user: &str| json!({ "token": product::token(s.jwt_secret, user) });
    // The probe: one socket already in place, asking every 10 ms.
    let probe = Conn::open_with(s.url, None, Some(&auth(&format!("{}probe", s.prefix))))
        .await
        .expect("the probe connects");
    let (mut psink, mut pstream) = probe.split();
    let probe_hist = Rc::new(RefCell::new(new_hist()));
    let storm_over = Rc::new(tokio::sync::Notify::new());
    let probe_task = {
        let (hist, over) = (probe_hist.clone(), storm_over.clone());
        let event = serde_json::to_string(s.probe_event).unwrap_or_default();
        tokio::task::spawn_local(async move {
            let mut tick = tokio::time::interval(Duration::from_millis(10));
            let mut id: u64 = 0;
            loop {
                tokio::select! {
                    _ = over.notified() => break,
                    _ = tick.tick() => {}
                }
                id += 1;
                let sent = Instant::now();
                if psink
                    .send(Message::Text(format!("42{id}[{event},{{}}]")))
                    .await
                    .is_err()
                {
                    break;
                }
                let want = format!("43{id}");
                // wait for this ack (answering pings on the way)
                loop {
                    match pstream.next().await {
                        Some(Ok(Message::Text(t))) if t == "2" => {
                            let _ = psink.send(Message::Text("3".into())).await;
                        }
                        Some(Ok(Message::Text(t))) if t.starts_with(&want) => break,
                        Some(Ok(_)) => {}
                        _ => return,
                    }
                }
                let us = sent.elapsed().as_micros() as u64;
                let _ = hist.borrow_mut().record(us.max(1));
            }
        })
    };
    tokio::time::sleep(Duration::from_millis(300)).await;

    let cpu_before = s.pid.and_then(proc_stats::cpu_seconds);
    let connect = Rc::new(RefCell::new(new_hist()));
    let (done, failed) = (Rc::new(RefCell::new(0usize)), Rc::new(RefCell::new(0usize)));
    let errors: Rc<RefCell<Vec<String>>> = Rc::default();
    let last_done = Rc::new(RefCell::new(Duration::ZERO));
    let all_in = Rc::new(tokio::sync::Notify::new());
    let hold = Rc::new(tokio::sync::Notify::new());
    let start = Instant::now();
    // a fixed pseudo-random spread (xorshift), the same in every run
    let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
    for i in 0..s.users {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        let offset = s.window.mul_f64((x % 1_000_000) as f64 / 1_000_000.0);
        let a = auth(&format!("{}{i}", s.prefix));
        let url = s.url.to_owned();
        let ip = (s.source_ip)(i);
        let (connect, done, failed, errors, last_done, all_in, hold) = (
            connect.clone(),
            done.clone(),
            failed.clone(),
            errors.clone(),
            last_done.clone(),
            all_in.clone(),
            hold.clone(),
        );
        let users = s.users;
        tokio::task::spawn_local(async move {
            tokio::time::sleep_until(tokio::time::Instant::from_std(start + offset)).await;
            let t = Instant::now();
            let res = Conn::open_with(&url, Some(ip), Some(&a)).await;
            let finished = {
                match &res {
                    Ok(_) => {
                        let _ = connect
                            .borrow_mut()
                            .record((t.elapsed().as_micros() as u64).max(1));
                        *done.borrow_mut() += 1;
                    }
                    Err(e) => {
                        *failed.borrow_mut() += 1;
                        let mut errs = errors.borrow_mut();
                        if errs.len() < 3 {
                            errs.push(e.to_string());
                        }
                    }
                }
                *last_done.borrow_mut() = start.elapsed();
                *done.borrow() + *failed.borrow() == users
            };
            if finished {
                all_in.notify_one();
            }
            if let Ok(mut c) = res {
                // stay connected (answering pings) until the figures are read
                tokio::select! {
                    _ = hold.notified() => {}
                    _ = c.idle() => {}
                }
            }
        });
    }
    let deadline = s.window + Duration::from_secs(60);
    let complete = tokio::time::timeout(deadline, all_in.notified())
        .await
        .is_ok();
    let all_s = last_done.borrow().as_secs_f64();
    let cpu = match (cpu_before, s.pid.and_then(proc_stats::cpu_seconds)) {
        (Some(a), Some(b)) => Some(b - a),
        _ => None,
    };
    storm_over.notify_one();
    let _ = probe_task.await;
    let rss = s.pid.and_then(proc_stats::rss_bytes);
    hold.notify_waiters();
    let connected = *done.borrow();
    let failures = *failed.borrow();
    let errs = errors.borrow().clone();
    let probe = percentiles(&probe_hist.borrow());
    let connect_ms = percentiles(&connect.borrow());
    json!({
        "scenario": "storm",
        "users": s.users,
        "window_ms": s.window.as_millis() as u64,
        "connected": connected,
        "failed": failures,
        "errors": errs,
        "complete": complete,
        "all_connected_s": all_s,
        "connect": connect_ms,
        "server_cpu_s": cpu,
        "server_rss_mb": rss.map(|b| b as f64 / 1048576.0),
        "probe": probe,
    })
}
