//! Webhooks from the backend: `POST /internal/notify/stock`, `/price`, `/progress`. Signed
//! like every internal call, strictly validated, then handed to the `NotificationActor`.
//! A call with an `Idempotency-Key` already answered within 10 minutes (per endpoint path)
//! gets the first answer again and delivers nothing.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde_json::{json, Map, Value};

use super::{check_signature, Answer, InternalState};
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
    check_signature(&req, &body, &st).await?;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(kind: &str, body: &str) -> String {
        match parse(kind, body.as_bytes()) {
            Ok(_) => panic!("{kind} {body} must be refused"),
            Err(why) => why,
        }
    }

    #[test]
    fn stock_changes_are_whole_non_negative_numbers() {
        match parse("stock", br#"{"productId":"p1","stock":3}"#) {
            Ok(Call::Stock(s)) => assert_eq!((s.product_id.as_str(), s.stock), ("p1", 3)),
            _ => panic!("a stock change"),
        }
        assert_eq!(
            refused("stock", r#"{"productId":"p1","stock":-1}"#),
            "stock must not be negative"
        );
        assert_eq!(
            refused("stock", r#"{"productId":"p1","stock":1.5}"#),
            "stock must be a whole number"
        );
        assert_eq!(
            refused("stock", r#"{"productId":"p1","stock":"5"}"#),
            "stock (number) is required"
        );
        assert_eq!(
            refused("stock", r#"{"stock":5}"#),
            "productId (string) is required"
        );
        assert_eq!(
            refused("stock", r#"{"productId":"  ","stock":5}"#),
            "productId must be a non-empty string of at most 256 bytes"
        );
        assert_eq!(refused("stock", "[1]"), "body must be a JSON object");
        assert!(refused("stock", "{").starts_with("invalid JSON"));
    }

    #[test]
    fn prices_must_be_finite_and_the_old_one_positive() {
        match parse(
            "price",
            br#"{"productId":"p","oldPrice":10,"newPrice":7.5}"#,
        ) {
            Ok(Call::Price(p)) => assert_eq!((p.old_price, p.new_price), (10.0, 7.5)),
            _ => panic!("a price change"),
        }
        assert_eq!(
            refused("price", r#"{"productId":"p","oldPrice":0,"newPrice":1}"#),
            "oldPrice must be greater than 0"
        );
        assert_eq!(
            refused("price", r#"{"productId":"p","oldPrice":1,"newPrice":-1}"#),
            "newPrice must not be negative"
        );
        // too large for a float: refused by the JSON reader already
        assert!(refused(
            "price",
            r#"{"productId":"p","oldPrice":1e999,"newPrice":1}"#
        )
        .starts_with("invalid JSON"));
    }

    #[test]
    fn progress_is_a_percentage_with_a_known_status() {
        let ok = r#"{"userId":"u","jobId":"j","progress":100,"status":"completed"}"#;
        match parse("progress", ok.as_bytes()) {
            Ok(Call::Progress(p)) => {
                assert_eq!((p.user_id.as_str(), p.job_id.as_str()), ("u", "j"));
                assert_eq!((p.progress, p.status.as_str()), (100.0, "completed"));
            }
            _ => panic!("a job progress"),
        }
        assert_eq!(
            refused(
                "progress",
                r#"{"userId":"u","jobId":"j","progress":101,"status":"completed"}"#
            ),
            "progress must be between 0 and 100"
        );
        assert_eq!(
            refused(
                "progress",
                r#"{"userId":"u","jobId":"j","progress":1,"status":"done"}"#
            ),
            "status must be processing, completed or failed"
        );
        assert_eq!(
            refused("progress", r#"{"userId":"u","jobId":"j","progress":1}"#),
            "status (string) is required"
        );
    }
}
