//! What operators and browsers get beside the API: `GET /healthz`, `GET /metrics`, and the
//! CORS policy of every route.

use actix_web::middleware::Condition;
use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::config::Config;
use crate::socketio::IoHandle;

/// The CORS policy (docs/http.md): none by default (no CORS headers, same-origin pages and
/// non-browser clients only); the listed origins with credentials; `*` as `*` without them.
/// A request from another origin is still answered, without CORS headers, as Node does;
/// with no origins configured the middleware is off (a preflight gets Engine.IO's answer).
pub fn cors(cfg: &Config) -> Condition<actix_cors::Cors> {
    let origins = &cfg.cors.origins;
    Condition::new(!origins.is_empty(), cors_of(origins))
}

fn cors_of(origins: &[String]) -> actix_cors::Cors {
    let c = actix_cors::Cors::default()
        .allow_any_method()
        .allow_any_header()
        .max_age(3600);
    if origins.iter().any(|o| o == "*") {
        return c.allow_any_origin().send_wildcard();
    }
    origins
        .iter()
        .fold(c.supports_credentials(), |c, o| c.allowed_origin(o))
}

/// Any unknown route: 404 with the JSON body of every refusal.
pub async fn not_found() -> HttpResponse {
    HttpResponse::NotFound().json(json!({
        "success": false,
        "error": "not found",
        "code": "NOT_FOUND"
    }))
}

/// Registers `/healthz` and `/metrics` (they need only the server's handle).
pub fn configure(io: IoHandle) -> impl Fn(&mut web::ServiceConfig) + Clone + Send + Sync {
    move |cfg: &mut web::ServiceConfig| {
        cfg.app_data(web::Data::new(io.clone()))
            .route("/healthz", web::get().to(healthz))
            .route("/metrics", web::get().to(metrics_text));
    }
}

async fn metrics_text() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4; charset=utf-8")
        .body(crate::metrics::render())
}

/// `GET /healthz`: the process answers (with this node's figures).
async fn healthz(io: web::Data<IoHandle>) -> HttpResponse {
    match io.node_stats().await {
        Some(stats) => HttpResponse::Ok().json(json!({"status": "ok", "stats": stats})),
        None => HttpResponse::ServiceUnavailable().json(json!({"status": "down"})),
    }
}
