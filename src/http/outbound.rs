//! The outbound webhook sender (docs/events.md): drains the stored queue
//! ([`crate::db::outbound`]) on a thread of its own, so a slow or failing receiver never
//! slows the realtime path.
//!
//! Each event is POSTed as stored (`application/json`), signed afresh at every attempt
//! (`X-Signature-256: t=…,v1=…` over `{t}.POST.{path and query}.{body}`), and deleted on a
//! 2xx. Any other answer or a timeout (10 s) is retried after 1 s, doubling to 5 min; a 410
//! drops the event; events older than 24 h are dropped with a log line. Only the first
//! pending event of a key (a user, a room) is sent, so a key's events arrive in order, and
//! an event is sent only under this node's lease, so one node sends it (another one takes
//! it over when the lease runs out, after a node died).

use std::cell::RefCell;
use std::collections::HashSet;
use std::rc::Rc;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::Notify;

use crate::config::WebhooksConfig;
use crate::db::{now_ms, outbound, Db};

/// An attempt waits this long for an answer.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts in flight at once (each on another key).
const PARALLEL: usize = 16;
/// The first retry waits this long, doubling up to [`MAX_BACKOFF_MS`].
const FIRST_BACKOFF_MS: i64 = 1000;
const MAX_BACKOFF_MS: i64 = 300_000;
/// Events older than this are dropped.
const MAX_AGE_MS: i64 = 24 * 3600 * 1000;
/// Without a wake-up, the queue is looked at this often (events stored by other nodes,
/// retries coming due).
const POLL: Duration = Duration::from_millis(500);
const DEFAULT_LEASE_MS: i64 = 30_000;

/// What the sender needs.
struct Sender {
    db: Db,
    url: String,
    /// The path and query of `url`, as signed.
    target: String,
    secret: Vec<u8>,
    /// This process (a lease names it).
    owner: String,
    lease_ms: i64,
    client: awc::Client,
    /// Events this process is sending now.
    in_flight: RefCell<HashSet<String>>,
    /// An attempt ended (a slot is free, a key may have a next event).
    done: Notify,
}

/// Starts the sender on a thread of its own when `webhooks.outbound_url` is set; `wake`
/// is notified when an event was stored on this node.
pub fn start(db: Db, cfg: &WebhooksConfig, wake: Arc<Notify>) -> Option<actix_rt::Arbiter> {
    let url = cfg.outbound_url.clone().filter(|u| !u.is_empty())?;
    let parsed = url::Url::parse(&url).ok()?;
    let target = super::signature::sign_target(&parsed);
    let secret = cfg.outbound_secret.clone().unwrap_or_default().into_bytes();
    let lease_ms = match cfg.outbound_lease_ms {
        0 => DEFAULT_LEASE_MS,
        ms => ms as i64,
    };
    let owner = format!("{}-{}", std::process::id(), uuid::Uuid::now_v7().simple());
    log::info!("outbound webhooks to {}", crate::config::masked_url(&url));
    let arbiter = actix_rt::Arbiter::new();
    // the client and the sender live on the arbiter's thread (neither is `Send`)
    arbiter.spawn_fn(move || {
        actix_rt::spawn(async move {
            let client = awc::Client::builder()
                .timeout(TIMEOUT)
                .disable_redirects()
                .finish();
            let s = Rc::new(Sender {
                db,
                url,
                target,
                secret,
                owner,
                lease_ms,
                client,
                in_flight: RefCell::default(),
                done: Notify::new(),
            });
            s.run(wake).await;
        });
    });
    Some(arbiter)
}

impl Sender {
    async fn run(self: Rc<Self>, wake: Arc<Notify>) {
        let m = crate::metrics::get();
        let mut swept: Option<Instant> = None;
        let mut counted: Option<Instant> = None;
        loop {
            if swept.is_none_or(|t| t.elapsed() >= Duration::from_secs(10)) {
                swept = Some(Instant::now());
                self.sweep().await;
            }
            if counted.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
                counted = Some(Instant::now());
                match self.db.run(outbound::pending).await {
                    Ok(n) => m.webhook_pending.set(n),
                    Err(e) => log::warn!("outbound webhook queue: {e}"),
                }
            }
            let free = PARALLEL.saturating_sub(self.in_flight.borrow().len());
            let mut leased = Vec::new();
            if free > 0 {
                let (owner, lease_ms) = (self.owner.clone(), self.lease_ms);
                let skip: Vec<String> = self.in_flight.borrow().iter().cloned().collect();
                let now = now_ms();
                match self
                    .db
                    .run(move |c| {
                        outbound::lease_due(c, &owner, now, now + lease_ms, &skip, free as i64)
                    })
                    .await
                {
                    Ok(rows) => leased = rows,
                    Err(e) => {
                        m.error("outbound_queue");
                        log::warn!("outbound webhook queue: {e}");
                    }
                }
            }
            let idle = leased.is_empty();
            for e in leased {
                self.in_flight.borrow_mut().insert(e.id.clone());
                let me = self.clone();
                actix_rt::spawn(async move {
                    let id = e.id.clone();
                    me.attempt(e).await;
                    me.in_flight.borrow_mut().remove(&id);
                    me.done.notify_one();
                });
            }
            if idle || free == 0 {
                tokio::select! {
                    _ = wake.notified() => {}
                    _ = self.done.notified() => {}
                    _ = tokio::time::sleep(POLL) => {}
                }
            }
        }
    }

    /// Drops events older than 24 h.
    async fn sweep(&self) {
        let m = crate::metrics::get();
        let before = now_ms() - MAX_AGE_MS;
        match self.db.run(move |c| outbound::drop_older(c, before)).await {
            Ok(dropped) => {
                if !dropped.is_empty() {
                    m.webhook_events
                        .with_label_values(&["dropped_expired"])
                        .inc_by(dropped.len() as u64);
                    let keys: HashSet<&str> = dropped.iter().map(|(k, _)| k.as_str()).collect();
                    log::warn!(
                        "dropped {} outbound webhook events older than 24 h (never accepted by the receiver; {} keys, e.g. {})",
                        dropped.len(),
                        keys.len(),
                        keys.iter().next().copied().unwrap_or_default()
                    );
                }
            }
            Err(e) => log::warn!("outbound webhook queue: {e}"),
        }
    }

    /// One attempt at event `e`; stores its outcome.
    async fn attempt(&self, e: outbound::Event) {
        let m = crate::metrics::get();
        if e.created_at < now_ms() - MAX_AGE_MS {
            return self.sweep().await;
        }
        let t = now_ms() / 1000;
        let signature =
            super::signature::sign(&self.secret, t, "POST", &self.target, e.body.as_bytes());
        let started = Instant::now();
        let sent = self
            .client
            .post(&self.url)
            .insert_header(("content-type", "application/json"))
            .insert_header(("x-signature-256", signature))
            .insert_header(("x-webhook-id", e.id.as_str()))
            .send_body(e.body.clone())
            .await;
        m.webhook_seconds.observe(started.elapsed().as_secs_f64());
        let outcome = match sent {
            Ok(mut res) => {
                // read (a bounded part of) the answer so the connection can be reused
                let _ = res.body().limit(64 * 1024).await;
                let status = res.status();
                if status.is_success() {
                    Ok(true)
                } else if status.as_u16() == 410 {
                    Ok(false)
                } else {
                    Err(format!("HTTP {status}"))
                }
            }
            Err(err) => Err(err.to_string()),
        };
        let id = e.id.clone();
        let stored = match outcome {
            Ok(accepted) => {
                let label = if accepted { "sent" } else { "dropped_gone" };
                m.webhook_events.with_label_values(&[label]).inc();
                if !accepted {
                    log::warn!("outbound webhook event {id} dropped: the receiver answered 410");
                }
                self.db.run(move |c| outbound::remove(c, &id)).await
            }
            Err(why) => {
                m.webhook_events.with_label_values(&["failed"]).inc();
                let delay = backoff(e.attempts);
                log::debug!(
                    "outbound webhook event {id} ({}), attempt {}: {why}; next in {} ms",
                    e.event_key,
                    e.attempts + 1,
                    delay
                );
                let (owner, lease_ms) = (self.owner.clone(), self.lease_ms);
                self.db
                    .run(move |c| {
                        outbound::retry_later(c, &id, &owner, now_ms() + delay, lease_ms, &why)
                    })
                    .await
            }
        };
        if let Err(err) = stored {
            log::warn!("outbound webhook queue: {err}");
        }
    }
}

/// The wait before the next attempt, `attempts` attempts having failed before this one.
fn backoff(attempts: i32) -> i64 {
    let doublings = attempts.clamp(0, 20) as u32;
    FIRST_BACKOFF_MS
        .saturating_mul(1i64 << doublings)
        .min(MAX_BACKOFF_MS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_from_one_second_to_five_minutes() {
        assert_eq!(backoff(0), 1000);
        assert_eq!(backoff(1), 2000);
        assert_eq!(backoff(8), 256_000);
        assert_eq!(backoff(9), 300_000);
        assert_eq!(backoff(1000), 300_000);
    }
}
