//! Plain HTTP endpoints beside Engine.IO: the backend's directory sync and webhooks under
//! `/internal/` (HMAC-signed), readiness, health, metrics and CORS. JSON in, JSON out;
//! failures are `{success:false, error, code}`.

pub mod directory;
pub mod health;
pub mod notify;
pub mod outbound;
pub mod pages;
pub mod proxy;
pub mod rest;
pub mod server_api;
pub mod signature;

use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::app::error::{AppError, Code};
use crate::app::notify::NotificationActor;
use crate::db::Db;

/// What the internal endpoints need.
#[derive(Clone)]
pub struct InternalState {
    /// The database.
    pub db: Db,
    /// HMAC key of `X-Signature-256`; `None` refuses every internal call.
    pub webhook_secret: Option<Vec<u8>>,
    /// Where webhooks go.
    pub notifier: actix::Addr<NotificationActor>,
    /// The server's broadcast handle (readiness asks it about Redis; the server API
    /// delivers through it).
    pub io: crate::socketio::IoHandle,
    /// The application the server API works on (chat messages, presence).
    pub api: crate::app::api::Api,
}

/// `server.trusted_proxies`, parsed once, for the apps' handlers (`app_data`).
#[derive(Clone, Default)]
pub struct TrustedProxies(pub Vec<ipnet::IpNet>);

/// The client address of `req` (see `engine::client_ip`), when known.
fn client_addr(req: &actix_web::HttpRequest) -> Option<String> {
    let trusted = req
        .app_data::<web::Data<TrustedProxies>>()
        .map(|t| t.0.as_slice())
        .unwrap_or_default();
    crate::engine::client_ip(req.peer_addr(), req.headers(), trusted).map(|ip| ip.to_string())
}

/// The client address of `req` for log lines, `-` when unknown.
fn client_ip(req: &actix_web::HttpRequest) -> String {
    client_addr(req).unwrap_or_else(|| "-".to_owned())
}

/// Times a request into `rt_http_seconds{route}` (the matched route pattern, so the label's
/// values are as few as the routes), and logs a refused one (401, 403, 429) with the
/// client's address under `realtime_server::access`.
pub(crate) async fn timed(
    req: actix_web::dev::ServiceRequest,
    next: actix_web::middleware::Next<impl actix_web::body::MessageBody>,
) -> Result<actix_web::dev::ServiceResponse<impl actix_web::body::MessageBody>, actix_web::Error> {
    let started = std::time::Instant::now();
    let res = next.call(req).await?;
    let route = res
        .request()
        .match_pattern()
        .unwrap_or_else(|| "unmatched".to_owned());
    crate::metrics::get()
        .http_seconds
        .with_label_values(&[&route])
        .observe(started.elapsed().as_secs_f64());
    let status = res.status().as_u16();
    if matches!(status, 401 | 403 | 429) {
        let req = res.request();
        log::info!(
            target: "realtime_server::access",
            method = req.method().as_str(), route = route.as_str(), status = status,
            ip = client_ip(req).as_str();
            "request refused"
        );
    }
    Ok(res)
}

/// What every handler here answers: a JSON success, or an [`AppError`] rendered as
/// `{success:false, error, code}` with its status.
pub type Answer = Result<HttpResponse, AppError>;

/// Checks `X-Signature-256` of an internal call (docs/http.md): bound to this method, target and
/// body, within 300 s of now, and never seen before on any node (the replay cache is in the
/// database). 401 `UNAUTHORIZED` otherwise.
pub(crate) async fn check_signature(
    req: &actix_web::HttpRequest,
    body: &[u8],
    st: &InternalState,
) -> Result<(), AppError> {
    let Some(secret) = st.webhook_secret.as_deref() else {
        return Err(AppError::refused(
            Code::Unauthorized,
            "internal calls are disabled: no webhook secret is configured",
        ));
    };
    let header = req
        .headers()
        .get("x-signature-256")
        .and_then(|v| v.to_str().ok());
    // The request target exactly as sent: percent-encoding kept, with the query.
    let target = req
        .uri()
        .path_and_query()
        .map_or_else(|| req.path(), |pq| pq.as_str());
    let now = crate::db::now_ms() / 1000;
    let verified = signature::verify(&[secret], req.method().as_str(), target, body, header, now)
        .map_err(|r| AppError::refused(Code::Unauthorized, r.message()))?;
    let (t, v1) = (verified.t, verified.v1);
    let first = st
        .db
        .run(move |c| crate::db::replay::first_use(c, t, &v1, now, signature::WINDOW_S))
        .await
        .map_err(|e| {
            let e = AppError::from(e);
            e.log_internal("signature replay cache");
            e
        })?;
    if !first {
        log::warn!(
            "refused a replayed X-Signature-256 on {} {target}",
            req.method()
        );
        return Err(AppError::refused(
            Code::Unauthorized,
            "X-Signature-256 was used before (a replay): sign every request afresh",
        ));
    }
    Ok(())
}

/// `{success:true}`.
fn success() -> Answer {
    Ok(HttpResponse::Ok().json(json!({"success": true})))
}

/// `GET /readyz`: 200 when the database answers (and, in a cluster, Redis), else 503; the
/// body says which part is down.
async fn readyz(st: web::Data<InternalState>) -> HttpResponse {
    if st.io.is_draining() {
        // shutting down: the load balancer sends new clients elsewhere at once
        return HttpResponse::ServiceUnavailable().json(json!({"status": "draining"}));
    }
    let db = st.db.clone();
    let db_ok = web::block(move || db.ping()).await.unwrap_or(false);
    let redis = st.io.cluster_status().await;
    let status = match (db_ok, redis) {
        (false, _) => "unavailable",
        // Redis away: this node still serves its own clients, but not the cluster.
        (true, Some(false)) => "degraded",
        _ => "ready",
    };
    let mut body = json!({"status": status, "db": if db_ok { "ok" } else { "down" }});
    if let Some(up) = redis {
        body["redis"] = json!(if up { "ok" } else { "down" });
    }
    if status == "ready" {
        HttpResponse::Ok().json(body)
    } else {
        HttpResponse::ServiceUnavailable().json(body)
    }
}

/// Registers `/internal/...` and `/readyz`.
pub fn configure(state: InternalState) -> impl Fn(&mut web::ServiceConfig) + Clone + Send + Sync {
    move |cfg: &mut web::ServiceConfig| {
        cfg.service(
            web::resource("/readyz")
                .app_data(web::Data::new(state.clone()))
                .route(web::get().to(readyz)),
        );
        // A wrong method on a known path is an unknown route too: 404 JSON, never a bare 405.
        let nf =
            || web::to(|| async { Answer::Err(AppError::not_found("unknown internal route")) });
        cfg.service(
            web::scope("/internal")
                .wrap(actix_web::middleware::from_fn(timed))
                .app_data(web::Data::new(state.clone()))
                .app_data(web::PayloadConfig::new(1 << 20))
                .service(
                    web::resource("/users/{id}")
                        .route(web::put().to(directory::put_user))
                        .default_service(nf()),
                )
                .service(
                    web::resource("/rooms/{id}")
                        .route(web::put().to(directory::put_room))
                        .default_service(nf()),
                )
                .service(
                    web::resource("/rooms/{id}/members/{user}")
                        .route(web::put().to(directory::member))
                        .route(web::delete().to(directory::member))
                        .default_service(nf()),
                )
                .service(
                    web::resource("/carts/{user}/items/{product}")
                        .route(web::put().to(directory::cart_item))
                        .route(web::delete().to(directory::cart_item))
                        .default_service(nf()),
                )
                .service(
                    web::resource("/emit")
                        .route(web::post().to(server_api::emit))
                        .default_service(nf()),
                )
                .service(
                    web::resource("/rooms/{id}/messages")
                        .route(web::post().to(server_api::room_message))
                        .default_service(nf()),
                )
                .service(
                    web::resource("/rooms/{id}/online")
                        .route(web::get().to(server_api::online))
                        .default_service(nf()),
                )
                .service(
                    web::resource("/users/{id}/disconnect")
                        .route(web::post().to(server_api::disconnect))
                        .default_service(nf()),
                )
                .service(
                    web::resource("/presence")
                        .route(web::get().to(server_api::presence))
                        .default_service(nf()),
                )
                .service(
                    web::resource("/stats")
                        .route(web::get().to(server_api::stats))
                        .default_service(nf()),
                )
                .service(
                    web::resource("/notify/{kind}")
                        .route(web::post().to(notify::notify))
                        .default_service(nf()),
                )
                .default_service(nf()),
        );
    }
}
