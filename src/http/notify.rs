//! Webhooks from the backend: `POST /internal/notify/stock`, `/price`, `/progress`. Signed
//! like every internal call, strictly validated, then handed to the `NotificationActor`.
//! A call with an `Idempotency-Key` already answered within 10 minutes (per endpoint path)
//! gets the first answer again and delivers nothing.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Map, Value};

use super::{directory::check_signature, Answer, InternalState};
use crate::app::error::{AppError, Code};
use crate::app::notify::{JobProgress, PriceChanged, StockChanged};
use crate::db::{idempotency, now_ms, DbError};

/// How long an `Idempotency-Key` is remembered.
const IDEMPOTENCY_WINDOW_MS: i64 = 10 * 60 * 1000;
/// Longest accepted `Idempotency-Key`.
const MAX_KEY: usize = 255;

/// A validated webhook.
enum Call {
    Stock(StockChanged),
    Price(PriceChanged),
    Progress(JobProgress),
}

type Invalid = String;

fn object(body: &[u8]) -> Result<Map<String, Value>, Invalid> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(o)) => Ok(o),
        Ok(_) => Err("body must be a JSON object".into()),
        Err(e) => Err(format!("invalid JSON: {e}")),
    }
}

fn string(o: &Map<String, Value>, key: &str) -> Result<String, Invalid> {
    match o.get(key) {
        Some(Value::String(s)) if !s.trim().is_empty() && s.len() <= 256 => Ok(s.clone()),
        Some(Value::String(_)) => Err(format!(
            "{key} must be a non-empty string of at most 256 bytes"
        )),
        _ => Err(format!("{key} (string) is required")),
    }
}

/// A finite JSON number (JSON has no NaN or infinity; a number too large for f64 is refused).
fn number(o: &Map<String, Value>, key: &str) -> Result<f64, Invalid> {
    match o.get(key) {
        Some(Value::Number(n)) => n
            .as_f64()
            .filter(|f| f.is_finite())
            .ok_or_else(|| format!("{key} must be a finite number")),
        _ => Err(format!("{key} (number) is required")),
    }
}

fn parse(kind: &str, body: &[u8]) -> Result<Call, Invalid> {
    let o = object(body)?;
    match kind {
        "stock" => {
            let product_id = string(&o, "productId")?;
            let stock = match o.get("stock") {
                Some(Value::Number(n)) => match n.as_u64() {
                    Some(s) => s,
                    None if n.as_f64().is_some_and(|f| f < 0.0) => {
                        return Err("stock must not be negative".into())
                    }
                    None => return Err("stock must be a whole number".into()),
                },
                _ => return Err("stock (number) is required".into()),
            };
            Ok(Call::Stock(StockChanged { product_id, stock }))
        }
        "price" => {
            let product_id = string(&o, "productId")?;
            let old_price = number(&o, "oldPrice")?;
            let new_price = number(&o, "newPrice")?;
            if old_price <= 0.0 {
                return Err("oldPrice must be greater than 0".into());
            }
            if new_price < 0.0 {
                return Err("newPrice must not be negative".into());
            }
            Ok(Call::Price(PriceChanged {
                product_id,
                old_price,
                new_price,
            }))
        }
        _ => {
            let user_id = string(&o, "userId")?;
            let job_id = string(&o, "jobId")?;
            let progress = number(&o, "progress")?;
            if !(0.0..=100.0).contains(&progress) {
                return Err("progress must be between 0 and 100".into());
            }
            let status = match o.get("status").and_then(Value::as_str) {
                Some(s @ ("processing" | "completed" | "failed")) => s.to_owned(),
                Some(_) => return Err("status must be processing, completed or failed".into()),
                None => return Err("status (string) is required".into()),
            };
            Ok(Call::Progress(JobProgress {
                user_id,
                job_id,
                progress,
                status,
            }))
        }
    }
}

/// `POST /internal/notify/{kind}`.
pub async fn notify(
    req: HttpRequest,
    kind: web::Path<String>,
    body: web::Bytes,
    st: web::Data<InternalState>,
) -> Answer {
    let kind = kind.into_inner();
    if !matches!(kind.as_str(), "stock" | "price" | "progress") {
        return Err(AppError::not_found("unknown internal route"));
    }
    check_signature(&req, &body, &st)?;
    let call = parse(&kind, &body).map_err(AppError::invalid)?;
    let key = match req.headers().get("idempotency-key").map(|v| v.to_str()) {
        None => None,
        Some(Ok(k)) if !k.is_empty() && k.len() <= MAX_KEY => Some(k.to_owned()),
        Some(_) => {
            return Err(AppError::invalid(
                "Idempotency-Key must be 1 to 255 visible ASCII characters",
            ))
        }
    };
    let path = req.path().to_owned();
    if let Some(key) = &key {
        let (p, k) = (path.clone(), key.clone());
        let claim = st
            .db
            .run(move |c| idempotency::claim(c, &p, &k, now_ms(), IDEMPOTENCY_WINDOW_MS))
            .await;
        match claim {
            Ok(idempotency::Claim::New) => {}
            Ok(idempotency::Claim::Done(status, body)) => {
                return Ok(HttpResponse::build(
                    StatusCode::from_u16(status).unwrap_or(StatusCode::OK),
                )
                .insert_header(("Idempotent-Replayed", "true"))
                .content_type("application/json")
                .body(body))
            }
            Ok(idempotency::Claim::InProgress) => {
                return Err(AppError::refused(
                    Code::Conflict,
                    "a request with this Idempotency-Key is still being processed",
                ))
            }
            Err(e) => {
                let e = AppError::from(e);
                e.log_internal("idempotency look-up");
                return Err(e);
            }
        }
    }
    let result: Result<usize, DbError> = match call {
        Call::Stock(m) => st.notifier.send(m).await,
        Call::Price(m) => st.notifier.send(m).await,
        Call::Progress(m) => st.notifier.send(m).await,
    }
    .unwrap_or(Err(DbError::Blocking));
    match result {
        Ok(n) => {
            let body = json!({"success": true, "notified": n}).to_string();
            if let Some(key) = key {
                let b = body.clone();
                if let Err(e) = st
                    .db
                    .run(move |c| idempotency::finish(c, &path, &key, 200, &b))
                    .await
                {
                    log::error!("idempotency record failed err={e}");
                }
            }
            Ok(HttpResponse::Ok()
                .content_type("application/json")
                .body(body))
        }
        Err(e) => {
            let e = AppError::from(e);
            e.log_internal(&format!("webhook {kind}"));
            if let Some(key) = key {
                // Not done: a retry with the same key may process it.
                let _ = st
                    .db
                    .run(move |c| idempotency::release(c, &path, &key))
                    .await;
            }
            Err(e)
        }
    }
}
