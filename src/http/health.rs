//! What operators and browsers get beside the API: `GET /healthz`, `GET /metrics`, and the
//! CORS policy of every route.

use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::config::Config;
use crate::socketio::IoHandle;

/// The CORS policy: the configured origins, or any (`*`, echoed, with credentials).
pub fn cors(cfg: &Config) -> actix_cors::Cors {
    let mut c = actix_cors::Cors::default()
        .allow_any_method()
        .allow_any_header()
        .supports_credentials()
        .max_age(3600);
    if cfg.cors.origins.iter().any(|o| o == "*") {
        c = c.allow_any_origin();
    } else {
        for o in &cfg.cors.origins {
            c = c.allowed_origin(o);
        }
    }
    c
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
