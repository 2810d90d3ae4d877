//! WebSocket connections: the HTTP dispatcher hands every `Connection: Upgrade` request here
//! together with the raw connection. After the checks (Node's error bodies) and the 101
//! answer, the TCP stream is split between a [`Session`](super::Session)'s reader and writer; the HTTP
//! dispatcher and its buffers are gone.

use std::sync::Arc;

use actix_codec::Framed;
use actix_http::body::BodySize;
use actix_http::header::{self, HeaderMap};
use actix_http::{h1, ws, HttpMessage, Request, Response, StatusCode};
use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use tokio::net::TcpStream;

use super::handler::EngineHandler;
use super::http::{query_pairs, request_info, EngineError};
use super::mount::{Endpoint, Mount};
use super::session::{BeginUpgrade, ForwardWs, RequestError};
use crate::config::Config;

/// An HTTP/1 connection handed over by the dispatcher with its upgrade request.
pub type Conn = Framed<TcpStream, h1::Codec>;

/// Answers with a status and a body, then the connection ends.
async fn reply(mut framed: Conn, status: StatusCode, content_type: &str, body: String) {
    let mut res = Response::with_body(status, ());
    // Not upgraded: the client must not wait for a WebSocket on this connection.
    res.head_mut()
        .set_connection_type(actix_http::ConnectionType::Close);
    if let Ok(v) = actix_http::header::HeaderValue::from_str(content_type) {
        res.headers_mut()
            .insert(actix_http::header::CONTENT_TYPE, v);
    }
    let body = Bytes::from(body);
    let size = BodySize::Sized(body.len() as u64);
    let _ = framed.send(h1::Message::Item((res, size))).await;
    let _ = framed.send(h1::Message::Chunk(Some(body))).await;
    let _ = framed.send(h1::Message::Chunk(None)).await;
}

async fn refuse(framed: Conn, e: EngineError) {
    reply(framed, e.status(), "application/json", e.body()).await;
}

/// docs/http.md: a WebSocket from a browser page is accepted when its `Origin` is the server's
/// own (`server.public_url`, or the scheme and `Host` it was reached at) or listed in
/// `cors.origins` (`*`: any); a request without `Origin` is not from a page. Browsers send
/// no CORS preflight for WebSockets, so without this any site could open one with the
/// visitor's cookies.
pub(crate) fn origin_allowed(headers: &HeaderMap, config: &Config) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let Ok(origin) = origin.to_str() else {
        return false;
    };
    let listed = config
        .cors
        .origins
        .iter()
        .any(|o| o == "*" || o.eq_ignore_ascii_case(origin));
    if listed {
        return true;
    }
    if let Some(own) = &config.server.public_url {
        return own.eq_ignore_ascii_case(origin);
    }
    let text = |h| headers.get(h).and_then(|v| v.to_str().ok());
    let Some(host) = text(header::HOST) else {
        return false;
    };
    // Behind a proxy that ends TLS the request arrives as http; a page cannot set this
    // header on a WebSocket, so it cannot be used to pass the check from another site.
    let scheme = text(header::HeaderName::from_static("x-forwarded-proto"))
        .and_then(|v| v.split(',').next())
        .map_or("http", str::trim);
    origin
        .split_once("://")
        .is_some_and(|(s, h)| s.eq_ignore_ascii_case(scheme) && h.eq_ignore_ascii_case(host))
}

/// The upgrade service: one call per upgrade request, routed to the mount of its path.
pub async fn service(req: Request, framed: Conn, mounts: Arc<Vec<Arc<dyn Endpoint>>>) {
    let Some(mount) = mounts.iter().find(|m| m.path() == req.path()).cloned() else {
        let body = r#"{"code":404,"message":"Not found"}"#.to_owned();
        return reply(framed, StatusCode::NOT_FOUND, "application/json", body).await;
    };
    mount.upgrade(req, framed).await;
}

/// A WebSocket request for `mount`: a new session, or the upgrade of a polling one.
pub(super) async fn serve<H: EngineHandler>(mount: Arc<Mount<H>>, req: Request, framed: Conn) {
    let query = query_pairs(req.uri().query().unwrap_or(""));
    let get = |k: &str| query.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    // a plain WebSocket has no Engine.IO query: every upgrade is a new connection
    let sid = if mount.plain {
        None
    } else {
        match get("transport") {
            Some("websocket") => {}
            Some("polling") => return refuse(framed, EngineError::BadRequest).await,
            _ => return refuse(framed, EngineError::UnknownTransport).await,
        }
        let sid = get("sid").map(str::to_owned);
        if sid.is_none() && get("EIO") != Some("4") {
            return refuse(framed, EngineError::UnsupportedProtocolVersion).await;
        }
        sid
    };
    if ws::verify_handshake(req.head()).is_err() {
        return refuse(framed, EngineError::BadRequest).await;
    }
    if !origin_allowed(req.headers(), &mount.config) {
        log::info!(
            "refused a WebSocket from origin {:?} (not in cors.origins)",
            req.headers().get(header::ORIGIN)
        );
        return refuse(framed, EngineError::Forbidden).await;
    }
    let session = match &sid {
        Some(sid) => match mount.session(sid) {
            Some(s) => Some(s),
            None => return refuse(framed, EngineError::UnknownSid).await,
        },
        None => None,
    };
    // A new session while draining, or with too many waiting to be established: 503.
    let unavailable = match (&session, mount.closing()) {
        (Some(_), _) => None,
        (None, true) => Some(super::http::SHUTTING_DOWN),
        (None, false) => (!mount.admit()).then_some(super::http::BUSY),
    };
    if let Some(body) = unavailable {
        let status = StatusCode::SERVICE_UNAVAILABLE;
        return reply(framed, status, "application/json", body.to_owned()).await;
    }
    let info = request_info(req.headers(), query, req.peer_addr(), &mount.trusted);
    let max = mount.config.engine.max_payload as usize;

    let mut framed = framed;
    let res = ws::handshake_response(req.head()).finish().drop_body();
    if framed
        .send(h1::Message::Item((res, BodySize::None)))
        .await
        .is_err()
    {
        if session.is_none() {
            mount.unpend();
        }
        return;
    }
    let parts = framed.into_parts();
    let leftover = parts.read_buf;
    let (rd, wr) = parts.io.into_split();

    match session {
        None => {
            let frames = super::ws::inbound(rd, leftover, max);
            mount.open_websocket(frames, wr, info);
        }
        Some(session) => {
            let gen = match session.send(BeginUpgrade { writer: wr }).await {
                Ok(Ok(gen)) => gen,
                // The 101 is already out: closing the socket is all that is left.
                Ok(Err(RequestError::UnknownSid | RequestError::BadRequest))
                | Ok(Err(RequestError::Overlap))
                | Err(_) => return,
            };
            // The session may live on another thread: forward frames, waiting for each
            // to be taken so a fast client cannot flood the session's mailbox.
            let mut frames = Box::pin(super::ws::inbound(rd, leftover, max));
            while let Some(item) = frames.next().await {
                if session.send(ForwardWs { gen, item }).await.is_err() {
                    break;
                }
            }
        }
    }
}
