//! The HTTP face of Engine.IO: request checks with Node's error bodies, the handshake and
//! polling GET/POST. (WebSocket requests arrive in [`super::upgrade`].)
//!
//! This only moves bytes between HTTP and a [`Session`]; decoding is the protocol layer's,
//! behaviour is the session's.

use std::sync::Arc;

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use futures_util::StreamExt;
use serde::Serialize;

use super::handler::EngineHandler;
use super::mount::Mount;
use super::session::{Poll, PollAbandoned, PollData, PollReply, RequestError, Session};
use super::RequestInfo;
use crate::protocol::engine;

/// Node's Engine.IO error codes and messages.
#[allow(missing_docs)] // Node's names
#[derive(Debug, Clone, Copy)]
pub enum EngineError {
    UnknownTransport,
    UnknownSid,
    BadHandshakeMethod,
    BadRequest,
    UnsupportedProtocolVersion,
    /// A WebSocket from a page of an origin that is not allowed (403).
    Forbidden,
}

impl EngineError {
    pub(crate) fn code_message(self) -> (u8, &'static str) {
        match self {
            EngineError::UnknownTransport => (0, "Transport unknown"),
            EngineError::UnknownSid => (1, "Session ID unknown"),
            EngineError::BadHandshakeMethod => (2, "Bad handshake method"),
            EngineError::BadRequest => (3, "Bad request"),
            EngineError::UnsupportedProtocolVersion => (5, "Unsupported protocol version"),
            EngineError::Forbidden => (4, "Forbidden"),
        }
    }

    /// 403 for [`EngineError::Forbidden`], 400 for the others (as Node).
    pub(crate) fn status(self) -> StatusCode {
        match self {
            EngineError::Forbidden => StatusCode::FORBIDDEN,
            _ => StatusCode::BAD_REQUEST,
        }
    }

    /// The JSON body Node sends with the 400.
    pub(crate) fn body(self) -> String {
        #[derive(Serialize)]
        struct Body {
            code: u8,
            message: &'static str,
        }
        let (code, message) = self.code_message();
        serde_json::to_string(&Body { code, message }).unwrap_or_default()
    }

    /// The answer Node gives.
    pub fn response(self) -> HttpResponse {
        HttpResponse::build(self.status())
            .content_type("application/json")
            .body(self.body())
    }
}

pub(crate) fn query_pairs(query: &str) -> Vec<(String, String)> {
    web::Query::<Vec<(String, String)>>::from_query(query)
        .map(|q| q.into_inner())
        .unwrap_or_default()
}

pub(crate) fn request_info(
    headers: &actix_web::http::header::HeaderMap,
    query: Vec<(String, String)>,
    remote_addr: Option<std::net::SocketAddr>,
    trusted: &[ipnet::IpNet],
) -> RequestInfo {
    let client_ip = client_ip(remote_addr, headers, trusted);
    let headers = headers
        .iter()
        .filter_map(|(k, v)| Some((k.as_str().to_owned(), v.to_str().ok()?.to_owned())))
        .collect();
    RequestInfo {
        query,
        headers,
        remote_addr,
        client_ip,
    }
}

/// The client's address. From a peer in `trusted` (a proxy): the nearest address of
/// `X-Forwarded-For` that is not itself a trusted proxy (read from the right: each proxy
/// appends the address it got the request from, so entries left of the first untrusted one
/// may be forged by the client), else `X-Real-IP`, else the peer. From any other peer: the
/// peer, whatever the headers say.
pub fn client_ip(
    peer: Option<std::net::SocketAddr>,
    headers: &actix_web::http::header::HeaderMap,
    trusted: &[ipnet::IpNet],
) -> Option<std::net::IpAddr> {
    use std::net::IpAddr;
    let peer = peer.map(|p| p.ip().to_canonical())?;
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|n| n.contains(ip));
    if !is_trusted(&peer) {
        return Some(peer);
    }
    let parse = |s: &str| s.trim().parse::<IpAddr>().ok().map(|ip| ip.to_canonical());
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(parse)
        .collect::<Option<Vec<_>>>()
        .unwrap_or_default();
    if let Some(ip) = forwarded.iter().rev().find(|ip| !is_trusted(ip)) {
        return Some(*ip);
    }
    if let Some(first) = forwarded.first() {
        // every hop is a trusted proxy: the first one is the nearest to the client we know
        return Some(*first);
    }
    headers
        .get("x-real-ip")
        .and_then(|v| v.to_str().ok())
        .and_then(parse)
        .or(Some(peer))
}

/// A plain WebSocket endpoint reached without an upgrade: 426 with a JSON body.
pub async fn upgrade_required() -> HttpResponse {
    HttpResponse::build(StatusCode::UPGRADE_REQUIRED)
        .insert_header((header::UPGRADE, "websocket"))
        .content_type("application/json")
        .body(r#"{"code":"UPGRADE_REQUIRED","message":"this endpoint takes a WebSocket upgrade"}"#)
}

/// Every Engine.IO request of a mount comes here, except WebSocket upgrades (the
/// dispatcher hands those to [`upgrade::service`] with the raw connection).
pub async fn endpoint<H: EngineHandler>(
    req: HttpRequest,
    body: web::Payload,
    mount: web::Data<Mount<H>>,
) -> HttpResponse {
    let mount = mount.into_inner();
    let query = query_pairs(req.query_string());
    let get = |k: &str| query.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    let websocket = match get("transport") {
        Some("polling") => false,
        Some("websocket") => true,
        _ => return EngineError::UnknownTransport.response(),
    };
    if let Some(sid) = get("sid") {
        let Some(session) = mount.session(sid) else {
            return EngineError::UnknownSid.response();
        };
        return if websocket {
            // A WebSocket request that reached here carried no upgrade.
            EngineError::BadRequest.response()
        } else {
            polling(&req, body, session, &mount).await
        };
    }
    // A new session.
    if req.method() != actix_web::http::Method::GET {
        return EngineError::BadHandshakeMethod.response();
    }
    if get("EIO") != Some("4") {
        return EngineError::UnsupportedProtocolVersion.response();
    }
    if websocket {
        return EngineError::BadRequest.response();
    }
    if mount.closing() {
        return shutting_down();
    }
    if !mount.admit() {
        return busy();
    }
    let info = request_info(req.headers(), query, req.peer_addr(), &mount.trusted);
    let addr = mount.open_polling(info);
    respond_poll(
        addr.send(Poll)
            .await
            .unwrap_or(Err(RequestError::UnknownSid)),
    )
    .await
}

/// 503: too many sessions wait to be established; the client retries later.
pub(crate) fn busy() -> HttpResponse {
    HttpResponse::ServiceUnavailable()
        .content_type("application/json")
        .body(BUSY)
}

/// 503: the server drains; the client goes elsewhere (or retries later).
pub(crate) fn shutting_down() -> HttpResponse {
    HttpResponse::ServiceUnavailable()
        .content_type("application/json")
        .body(SHUTTING_DOWN)
}

/// The body of [`shutting_down`].
pub(crate) const SHUTTING_DOWN: &str = r#"{"code":503,"message":"Server shutting down"}"#;

/// The body of [`busy`].
pub(crate) const BUSY: &str = r#"{"code":503,"message":"Server busy: too many pending sessions"}"#;

async fn respond_poll(res: Result<PollReply, RequestError>) -> HttpResponse {
    let body = match res {
        Ok(PollReply::Ready(b)) => b,
        Ok(PollReply::Wait(rx)) => match rx.await {
            Ok(b) => b,
            // The session ended without answering: tell the client it is closed.
            Err(_) => bytes::Bytes::from_static(b"1"),
        },
        Err(RequestError::UnknownSid) => return EngineError::UnknownSid.response(),
        Err(RequestError::BadRequest) => return EngineError::BadRequest.response(),
        Err(RequestError::Overlap) => return HttpResponse::BadRequest().finish(),
    };
    poll_body(body)
}

/// A polling GET's answer.
fn poll_body(body: bytes::Bytes) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=UTF-8"),
        ))
        .insert_header((header::CACHE_CONTROL, HeaderValue::from_static("no-store")))
        .body(body)
}

async fn polling<H: EngineHandler>(
    req: &HttpRequest,
    mut body: web::Payload,
    session: actix::Addr<Session<H>>,
    mount: &Arc<Mount<H>>,
) -> HttpResponse {
    match *req.method() {
        actix_web::http::Method::GET => {
            let res = session
                .send(Poll)
                .await
                .unwrap_or(Err(RequestError::UnknownSid));
            let Ok(PollReply::Wait(rx)) = res else {
                return respond_poll(res).await;
            };
            // While the GET waits, its client may vanish (see `peer`): noticed while it
            // waits, or when its answer is ready (then the answer is dropped with the
            // session, whose client is gone).
            let answered = tokio::select! {
                body = rx => Some(body.unwrap_or_else(|_| bytes::Bytes::from_static(b"1")))
                    .filter(|_| !super::peer::gone(req)),
                () = super::peer::closed(req) => None,
            };
            match answered {
                Some(body) => poll_body(body),
                None => {
                    session.do_send(PollAbandoned);
                    // nobody reads it
                    HttpResponse::Ok().finish()
                }
            }
        }
        actix_web::http::Method::POST => {
            let limit = mount.config.engine.max_payload as usize;
            let mut buf = web::BytesMut::new();
            while let Some(chunk) = body.next().await {
                let Ok(chunk) = chunk else {
                    return EngineError::BadRequest.response();
                };
                if buf.len() + chunk.len() > limit {
                    return HttpResponse::PayloadTooLarge().finish();
                }
                buf.extend_from_slice(&chunk);
            }
            // Decode what is valid; an error stops there and closes the session.
            let (packets, error) = match engine::decode_payload(&buf) {
                Ok(p) => (p, false),
                Err(_) => (decode_prefix(&buf), true),
            };
            let res = session
                .send(PollData { packets, error })
                .await
                .unwrap_or(Err(RequestError::UnknownSid));
            match res {
                Ok(()) => HttpResponse::Ok()
                    .insert_header((header::CONTENT_TYPE, "text/html"))
                    .insert_header((header::CACHE_CONTROL, "no-store"))
                    .body("ok"),
                Err(RequestError::BadRequest) => EngineError::BadRequest.response(),
                Err(_) => EngineError::UnknownSid.response(),
            }
        }
        _ => HttpResponse::BadRequest().finish(),
    }
}

/// The packets of a payload before the first undecodable record.
fn decode_prefix(buf: &[u8]) -> Vec<engine::Packet> {
    let mut out = Vec::new();
    for rec in buf.split(|b| *b == engine::SEPARATOR) {
        match engine::decode_payload(rec) {
            Ok(mut p) => out.append(&mut p),
            Err(_) => break,
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::client_ip;
    use actix_web::http::header::{HeaderMap, HeaderName, HeaderValue};

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(HeaderName::from_static(k), HeaderValue::from_static(v));
        }
        h
    }

    fn ip(peer: &str, pairs: &[(&'static str, &'static str)], trusted: &[&str]) -> String {
        let nets: Vec<ipnet::IpNet> = trusted.iter().map(|t| t.parse().unwrap()).collect();
        client_ip(Some(peer.parse().unwrap()), &headers(pairs), &nets)
            .unwrap()
            .to_string()
    }

    #[test]
    fn headers_count_only_from_a_trusted_peer() {
        let xff = [("x-forwarded-for", "203.0.113.7")];
        assert_eq!(ip("10.0.0.5:1", &xff, &[]), "10.0.0.5");
        assert_eq!(ip("10.0.0.5:1", &xff, &["192.168.0.0/16"]), "10.0.0.5");
        assert_eq!(ip("10.0.0.5:1", &xff, &["10.0.0.0/8"]), "203.0.113.7");
    }

    #[test]
    fn the_nearest_untrusted_hop_wins_over_forged_entries() {
        let trusted = ["10.0.0.0/8"];
        // the client wrote 6.6.6.6 itself; the edge proxy appended the real 203.0.113.7;
        // an inner proxy appended the edge's 10.1.1.1
        let xff = [("x-forwarded-for", "6.6.6.6, 203.0.113.7, 10.1.1.1")];
        assert_eq!(ip("10.0.0.5:1", &xff, &trusted), "203.0.113.7");
        // several headers read as one list
        let two = [
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-for", "203.0.113.8"),
        ];
        assert_eq!(ip("10.0.0.5:1", &two, &trusted), "203.0.113.8");
        // all hops trusted: the first
        let inner = [("x-forwarded-for", "10.9.9.9, 10.1.1.1")];
        assert_eq!(ip("10.0.0.5:1", &inner, &trusted), "10.9.9.9");
        // garbage: the peer
        let junk = [("x-forwarded-for", "not-an-ip")];
        assert_eq!(ip("10.0.0.5:1", &junk, &trusted), "10.0.0.5");
    }

    #[test]
    fn x_real_ip_without_x_forwarded_for_and_mapped_addresses() {
        let real = [("x-real-ip", "198.51.100.4")];
        assert_eq!(ip("127.0.0.1:1", &real, &["127.0.0.1/32"]), "198.51.100.4");
        assert_eq!(ip("127.0.0.1:1", &real, &[]), "127.0.0.1");
        // an IPv4 peer seen on a dual-stack socket is still the IPv4 address
        assert_eq!(
            ip("[::ffff:127.0.0.1]:1", &real, &["127.0.0.1/32"]),
            "198.51.100.4"
        );
    }
}
