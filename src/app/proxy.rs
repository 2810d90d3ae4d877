//! The event proxy (docs/extending.md): a client event of `/` whose name starts with one of
//! `proxy.prefixes` is passed to the backend as `{id, event, userId, data, timestamp}`, and
//! the backend's answer becomes the ack. Any other event the server does not define is
//! answered `UNKNOWN_EVENT` when it asks for an ack, and ignored otherwise (as Node does).
//!
//! The HTTP call itself is made elsewhere (`http::proxy`, on a thread of its own): a call
//! goes there as a [`ProxyCall`] and its outcome comes back on a oneshot channel, so a
//! socket's worker never waits on the backend. At most `proxy.max_in_flight` calls are out
//! per node (a call holds its [`Slot`] until its HTTP request ends); beyond, `RATE_LIMITED`
//! at once. A backend that answers late, never, or with something else than the contract
//! gives `UNAVAILABLE`; the client's ack is always answered.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tokio::sync::{mpsc, oneshot};

use super::error::{AppError, Code};
use super::reply;
use crate::config::ProxyConfig;
use crate::db::now_ms;
use crate::socketio::{Event, SocketCtx};

/// One call for the backend: the JSON body to POST, and where its outcome goes.
pub struct ProxyCall {
    /// `{id, event, userId, data, timestamp}`, encoded.
    pub body: Vec<u8>,
    /// The HTTP outcome: the status and body of the answer, or why there is none.
    pub reply: oneshot::Sender<Result<(u16, Vec<u8>), String>>,
    /// Held until the HTTP request ends.
    pub slot: Slot,
}

/// A call in flight; dropping it frees its place.
pub struct Slot(Arc<AtomicUsize>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Where calls go: the sender that `http::proxy` drains.
pub type ProxyLink = mpsc::UnboundedSender<ProxyCall>;

/// The proxy as the namespace's handlers see it.
pub struct Proxy {
    link: Option<ProxyLink>,
    prefixes: Vec<String>,
    timeout: Duration,
    max_in_flight: usize,
    in_flight: Arc<AtomicUsize>,
}

/// What a call came to, as counted in `rt_proxy_calls_total{outcome}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Ok,
    Error,
    Unavailable,
    Refused,
}

impl Outcome {
    fn label(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Error => "error",
            Outcome::Unavailable => "unavailable",
            Outcome::Refused => "refused",
        }
    }
}

fn unavailable() -> Value {
    json!({"success": false, "error": "the backend is unavailable", "code": "UNAVAILABLE"})
}

/// The ack of a backend's answer: 200 with `{result}` → `{success:true, result}`; 200 with
/// `{error:{code, message}}` (`code` like `^[A-Z][A-Z0-9_]{0,31}$`, `message` a string) →
/// `{success:false, error:message, code}`; anything else → `UNAVAILABLE`.
fn ack_of(status: u16, body: &[u8]) -> (Outcome, Value) {
    if !(200..300).contains(&status) {
        return (Outcome::Unavailable, unavailable());
    }
    let Ok(Value::Object(mut o)) = serde_json::from_slice::<Value>(body) else {
        return (Outcome::Unavailable, unavailable());
    };
    if o.contains_key("result") && o.contains_key("error") {
        return (Outcome::Unavailable, unavailable());
    }
    if let Some(result) = o.remove("result") {
        return (Outcome::Ok, json!({"success": true, "result": result}));
    }
    if let Some(Value::Object(e)) = o.get("error") {
        let code = e
            .get("code")
            .and_then(Value::as_str)
            .filter(|c| error_code(c));
        let message = e.get("message").and_then(Value::as_str);
        if let (Some(code), Some(message)) = (code, message) {
            return (
                Outcome::Error,
                json!({"success": false, "error": message, "code": code}),
            );
        }
    }
    (Outcome::Unavailable, unavailable())
}

/// `^[A-Z][A-Z0-9_]{0,31}$`.
fn error_code(c: &str) -> bool {
    let b = c.as_bytes();
    (1..=32).contains(&b.len())
        && b[0].is_ascii_uppercase()
        && b.iter()
            .all(|c| c.is_ascii_uppercase() || c.is_ascii_digit() || *c == b'_')
}

impl Proxy {
    /// The proxy of `cfg`, calling through `link` (none: `proxy.url` is not set, and every
    /// event the server does not define is unknown).
    pub fn new(cfg: &ProxyConfig, link: Option<ProxyLink>) -> Self {
        Proxy {
            link,
            prefixes: cfg.prefixes.clone(),
            timeout: Duration::from_millis(cfg.timeout_ms),
            max_in_flight: cfg.max_in_flight,
            in_flight: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Whether `event` goes to the backend.
    fn passes(&self, event: &str) -> bool {
        self.link.is_some() && self.prefixes.iter().any(|p| event.starts_with(p.as_str()))
    }

    /// A place for one more call, unless `max_in_flight` are out.
    fn slot(&self) -> Option<Slot> {
        let taken = self.in_flight.fetch_add(1, Ordering::AcqRel);
        let slot = Slot(self.in_flight.clone());
        (taken < self.max_in_flight).then_some(slot)
    }

    /// Handles an event of `/` that no handler of the server takes.
    pub fn handle(&self, s: &mut SocketCtx<'_>, ev: Event, user: Option<String>) {
        if !self.passes(&ev.name) {
            return unknown(s, ev);
        }
        let m = crate::metrics::get();
        let (Some(link), Some(slot)) = (self.link.as_ref(), self.slot()) else {
            m.proxy_calls
                .with_label_values(&[Outcome::Refused.label()])
                .inc();
            let e = AppError::refused(
                Code::RateLimited,
                "too many calls to the backend are in flight: retry shortly",
            );
            return reply::fail(s, ev.ack, &e);
        };
        let data = ev.args.first().cloned().unwrap_or(Value::Null);
        let body = json!({
            "id": uuid::Uuid::now_v7().to_string(),
            "event": ev.name,
            "userId": user,
            "data": data,
            "timestamp": now_ms(),
        });
        let body = serde_json::to_vec(&body).unwrap_or_default();
        let (tx, rx) = oneshot::channel();
        let started = Instant::now();
        if link
            .send(ProxyCall {
                body,
                reply: tx,
                slot,
            })
            .is_err()
        {
            m.proxy_calls
                .with_label_values(&[Outcome::Unavailable.label()])
                .inc();
            return reply::raw(s, ev.ack, unavailable());
        }
        let (mut h, ack, timeout) = (s.handle(), ev.ack, self.timeout);
        actix_rt::spawn(async move {
            let (outcome, answer) = match tokio::time::timeout(timeout, rx).await {
                Ok(Ok(Ok((status, body)))) => ack_of(status, &body),
                Ok(Ok(Err(why))) => {
                    log::debug!("proxy call failed: {why}");
                    (Outcome::Unavailable, unavailable())
                }
                Ok(Err(_)) | Err(_) => (Outcome::Unavailable, unavailable()),
            };
            let m = crate::metrics::get();
            m.proxy_calls.with_label_values(&[outcome.label()]).inc();
            m.proxy_seconds.observe(started.elapsed().as_secs_f64());
            reply::raw(&mut h, ack, answer);
        });
    }
}

/// An event no handler takes and the proxy does not pass on: `UNKNOWN_EVENT` in its ack,
/// ignored without one (as Node does).
pub fn unknown(s: &mut SocketCtx<'_>, ev: Event) {
    if ev.ack.is_some() {
        reply::fail(
            s,
            ev.ack,
            &AppError::refused(Code::UnknownEvent, "unknown event"),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_become_acks() {
        let (o, a) = ack_of(200, br#"{"result":{"n":1}}"#);
        assert_eq!(o, Outcome::Ok);
        assert_eq!(a, json!({"success": true, "result": {"n": 1}}));
        let (o, a) = ack_of(200, br#"{"result":null}"#);
        assert_eq!(
            (o, a),
            (Outcome::Ok, json!({"success": true, "result": null}))
        );
        let (o, a) = ack_of(
            200,
            br#"{"error":{"code":"OUT_OF_STOCK","message":"none left"}}"#,
        );
        assert_eq!(o, Outcome::Error);
        assert_eq!(
            a,
            json!({"success": false, "error": "none left", "code": "OUT_OF_STOCK"})
        );
        for (status, body) in [
            (500, &br#"{"result":1}"#[..]),
            (200, b"not json"),
            (200, b"[1]"),
            (200, b"{}"),
            (200, br#"{"error":{"code":"lower","message":"m"}}"#),
            (200, br#"{"error":{"code":"OK"}}"#),
            (200, br#"{"error":"text"}"#),
            (200, br#"{"result":1,"error":{"code":"X","message":"m"}}"#),
        ] {
            assert_eq!(
                ack_of(status, body).0,
                Outcome::Unavailable,
                "{status} {body:?}"
            );
        }
    }

    #[test]
    fn error_codes_are_upper_snake() {
        assert!(error_code("A"));
        assert!(error_code("OUT_OF_STOCK_2"));
        assert!(!error_code(""));
        assert!(!error_code("_A"));
        assert!(!error_code("Abc"));
        assert!(!error_code(&"A".repeat(33)));
    }
}
