//! Plain HTTP endpoints beside Engine.IO: the backend's directory sync under `/internal/`
//! (HMAC-signed), health. JSON in, JSON out; failures are `{success:false, error, code}`.

pub mod directory;
pub mod signature;

use actix_web::{web, HttpResponse};
use serde_json::json;

use crate::db::Db;

/// What the internal endpoints need.
#[derive(Clone)]
pub struct InternalState {
    pub db: Db,
    /// HMAC key of `X-Signature-256`; `None` refuses every internal call.
    pub webhook_secret: Option<Vec<u8>>,
}

/// A failure as the contract spells it.
pub fn error(status: actix_web::http::StatusCode, code: &str, message: &str) -> HttpResponse {
    HttpResponse::build(status).json(json!({"success": false, "error": message, "code": code}))
}

pub fn bad_request(message: &str) -> HttpResponse {
    error(
        actix_web::http::StatusCode::BAD_REQUEST,
        "INVALID_PAYLOAD",
        message,
    )
}

pub fn not_found(message: &str) -> HttpResponse {
    error(actix_web::http::StatusCode::NOT_FOUND, "NOT_FOUND", message)
}

pub fn internal_error() -> HttpResponse {
    error(
        actix_web::http::StatusCode::INTERNAL_SERVER_ERROR,
        "INTERNAL",
        "internal error",
    )
}

/// Registers `/internal/...`.
pub fn configure(state: InternalState) -> impl Fn(&mut web::ServiceConfig) + Clone + Send + Sync {
    move |cfg: &mut web::ServiceConfig| {
        cfg.service(
            web::scope("/internal")
                .app_data(web::Data::new(state.clone()))
                .app_data(web::PayloadConfig::new(1 << 20))
                .route("/users/{id}", web::put().to(directory::put_user))
                .route("/rooms/{id}", web::put().to(directory::put_room))
                .route(
                    "/rooms/{id}/members/{user}",
                    web::route()
                        .guard(
                            actix_web::guard::Any(actix_web::guard::Put())
                                .or(actix_web::guard::Delete()),
                        )
                        .to(directory::member),
                )
                .default_service(web::to(|| async { not_found("unknown internal route") })),
        );
    }
}
