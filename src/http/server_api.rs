//! The server API over HTTP (docs/http.md, "Server API"): `POST /internal/emit`,
//! `POST /internal/rooms/{id}/messages`, `POST /internal/users/{id}/disconnect`,
//! `GET /internal/presence`, `GET /internal/rooms/{id}/online`, `GET /internal/stats`.
//! Signed like every internal call (a GET signs an empty body); the work is
//! [`crate::app::server_api`]'s.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::{json, Value};

use super::{check_signature, Answer, InternalState};
use crate::app::server_api::{self as api, Emit};

/// Checks the signature, then counts the call under `route`.
async fn signed(
    req: &HttpRequest,
    body: &[u8],
    st: &InternalState,
    route: &str,
) -> Result<(), crate::app::error::AppError> {
    check_signature(req, body, st).await?;
    crate::metrics::get()
        .server_api
        .with_label_values(&[route])
        .inc();
    Ok(())
}

/// `{success:true}` merged with the fields of `v`.
fn ok(v: Value) -> Answer {
    let mut body = serde_json::Map::new();
    body.insert("success".into(), Value::Bool(true));
    if let Value::Object(o) = v {
        body.extend(o.into_iter().filter(|(k, _)| k != "success"));
    }
    Ok(HttpResponse::Ok().json(Value::Object(body)))
}

/// `POST /internal/emit`.
pub async fn emit(req: HttpRequest, body: web::Bytes, st: web::Data<InternalState>) -> Answer {
    signed(&req, &body, &st, "emit").await?;
    let emit = Emit::parse(&body)?;
    let id = uuid::Uuid::now_v7().to_string();
    emit.deliver(&st.io);
    ok(json!({ "id": id }))
}

/// `POST /internal/rooms/{id}/messages`.
pub async fn room_message(
    req: HttpRequest,
    room: web::Path<String>,
    body: web::Bytes,
    st: web::Data<InternalState>,
) -> Answer {
    signed(&req, &body, &st, "room_message").await?;
    ok(api::post_message(&st.api, &st.io, room.into_inner(), &body).await?)
}

/// `POST /internal/users/{id}/disconnect`.
pub async fn disconnect(
    req: HttpRequest,
    user: web::Path<String>,
    body: web::Bytes,
    st: web::Data<InternalState>,
) -> Answer {
    signed(&req, &body, &st, "disconnect").await?;
    api::disconnect_user(&st.io, &user);
    ok(Value::Null)
}

#[derive(Deserialize)]
struct PresenceQuery {
    #[serde(rename = "userIds")]
    user_ids: Option<String>,
}

/// `GET /internal/presence?userIds=a,b`.
pub async fn presence(req: HttpRequest, st: web::Data<InternalState>) -> Answer {
    signed(&req, b"", &st, "presence").await?;
    let q = web::Query::<PresenceQuery>::from_query(req.query_string())
        .map_err(|e| crate::app::error::AppError::invalid(format!("bad query: {e}")))?;
    ok(api::presence(&st.api, &st.io, q.user_ids.as_deref()).await?)
}

/// `GET /internal/rooms/{id}/online`.
pub async fn online(
    req: HttpRequest,
    room: web::Path<String>,
    st: web::Data<InternalState>,
) -> Answer {
    signed(&req, b"", &st, "online").await?;
    ok(api::room_online(&st.api, &st.io, room.into_inner()).await?)
}

/// `GET /internal/stats`.
pub async fn stats(req: HttpRequest, st: web::Data<InternalState>) -> Answer {
    signed(&req, b"", &st, "stats").await?;
    ok(api::stats(&st.io).await)
}
