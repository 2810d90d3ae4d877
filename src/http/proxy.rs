//! The event proxy's HTTP side (docs/extending.md): calls from
//! [`crate::app::proxy`] are POSTed to `proxy.url`, signed with `proxy.secret`
//! (`X-Signature-256: t=…,v1=…` over `{t}.POST.{path and query}.{body}`), from a thread of
//! their own with a pooled client, each within `proxy.timeout_ms`. The answer (its status
//! and up to 1 MiB of body) goes back to the socket's side, which makes the ack; a call
//! frees its place when its request ends.

use std::time::Duration;

use tokio::sync::mpsc;

use crate::app::proxy::{ProxyCall, ProxyLink};
use crate::config::ProxyConfig;

/// Most bytes of an answer read.
const MAX_ANSWER: usize = 1 << 20;

/// The link to hand to the application and its other end for [`start`], when `proxy.url`
/// is set.
pub fn link(cfg: &ProxyConfig) -> Option<(ProxyLink, mpsc::UnboundedReceiver<ProxyCall>)> {
    cfg.url
        .as_deref()
        .is_some_and(|u| !u.is_empty())
        .then(mpsc::unbounded_channel)
}

/// Starts the caller on a thread of its own (inside the actix system): it makes the calls
/// that arrive on `rx`. The arbiter is kept for the process's life.
pub fn start(
    cfg: &ProxyConfig,
    mut rx: mpsc::UnboundedReceiver<ProxyCall>,
) -> Option<actix_rt::Arbiter> {
    let url = cfg.url.clone().filter(|u| !u.is_empty())?;
    let target = super::signature::sign_target(&url::Url::parse(&url).ok()?);
    let secret = cfg.secret.clone().unwrap_or_default().into_bytes();
    let timeout = Duration::from_millis(cfg.timeout_ms);
    let connections = cfg.max_in_flight;
    log::info!(
        "event proxy to {} for events starting with {:?}",
        crate::config::masked_url(&url),
        cfg.prefixes
    );
    let arbiter = actix_rt::Arbiter::new();
    // the client lives on the arbiter's thread (it is not `Send`)
    arbiter.spawn_fn(move || {
        actix_rt::spawn(async move {
            let client = awc::Client::builder()
                .timeout(timeout)
                .disable_redirects()
                .connector(awc::Connector::new().limit(connections))
                .finish();
            while let Some(call) = rx.recv().await {
                let t = crate::db::now_ms() / 1000;
                let signature = super::signature::sign(&secret, t, "POST", &target, &call.body);
                let request = client
                    .post(&url)
                    .insert_header(("content-type", "application/json"))
                    .insert_header(("x-signature-256", signature))
                    .send_body(call.body);
                actix_rt::spawn(async move {
                    let outcome = match request.await {
                        Ok(mut res) => {
                            let status = res.status().as_u16();
                            match res.body().limit(MAX_ANSWER).await {
                                Ok(body) => Ok((status, body.to_vec())),
                                Err(e) => Err(format!("reading the answer: {e}")),
                            }
                        }
                        Err(e) => Err(e.to_string()),
                    };
                    let _ = call.reply.send(outcome);
                    drop(call.slot);
                });
            }
        });
    });
    Some(arbiter)
}
