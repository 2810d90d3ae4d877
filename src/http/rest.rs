//! The REST API (docs/http.md): `GET`/`POST /api/rooms/{id}/messages`, `GET
//! /api/notifications`, `POST /api/notifications/read`, `POST /api/sse-ticket`,
//! Bearer-authenticated, JSON in and out, failures `{success:false, error, code}` with
//! 400/401/403/404/429; and the Server-Sent Events stream `GET /events`. The work is
//! [`crate::app::api::Api`]'s; this is the HTTP shape around it.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::Value;

use super::Answer;
use crate::app::api::{page_limit, Api};
use crate::app::error::AppError;
use crate::socketio::IoHandle;

/// What the handlers share.
#[derive(Clone)]
struct Rest {
    api: Api,
    io: IoHandle,
}

/// `{success:true}` merged with the fields of `v`.
fn ok(v: Value) -> Answer {
    let mut body = serde_json::Map::new();
    body.insert("success".into(), Value::Bool(true));
    if let Value::Object(o) = v {
        body.extend(o);
    }
    Ok(HttpResponse::Ok().json(Value::Object(body)))
}

fn authorization(req: &HttpRequest) -> Option<&str> {
    req.headers()
        .get(actix_web::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
}

fn json_body(body: &[u8]) -> Result<Value, AppError> {
    serde_json::from_slice(body).map_err(|e| AppError::invalid(format!("invalid JSON body: {e}")))
}

#[derive(Deserialize)]
struct PageQuery {
    before: Option<String>,
    after: Option<String>,
    limit: Option<String>,
}

async fn get_messages(req: HttpRequest, room: web::Path<String>, st: web::Data<Rest>) -> Answer {
    let user = st.api.caller(authorization(&req)).await?;
    let q = web::Query::<PageQuery>::from_query(req.query_string())
        .map_err(|e| AppError::invalid(format!("bad query: {e}")))?
        .into_inner();
    let limit = page_limit(q.limit.as_deref())?;
    ok(st
        .api
        .messages(&user, room.into_inner(), q.before, q.after, limit)
        .await?)
}

async fn post_message(
    req: HttpRequest,
    room: web::Path<String>,
    body: web::Bytes,
    st: web::Data<Rest>,
) -> Answer {
    let user = st.api.caller(authorization(&req)).await?;
    let body = json_body(&body)?;
    ok(st
        .api
        .post_message(&user, room.into_inner(), &body, &st.io)
        .await?)
}

async fn get_notifications(req: HttpRequest, st: web::Data<Rest>) -> Answer {
    let user = st.api.caller(authorization(&req)).await?;
    let unread_only = web::Query::<Vec<(String, String)>>::from_query(req.query_string())
        .map(|q| q.iter().any(|(k, v)| k == "unread" && v == "true"))
        .unwrap_or(false);
    ok(st.api.notifications(&user, unread_only).await?)
}

async fn read_notifications(req: HttpRequest, body: web::Bytes, st: web::Data<Rest>) -> Answer {
    let user = st.api.caller(authorization(&req)).await?;
    let body = json_body(&body)?;
    ok(st.api.mark_read(&user, &body).await?)
}

async fn sse_ticket(req: HttpRequest, st: web::Data<Rest>) -> Answer {
    let user = st.api.caller(authorization(&req)).await?;
    ok(st.api.sse_ticket(&user).await?)
}

/// `GET /events`: Server-Sent Events (Bearer, or `?ticket=`; `Last-Event-ID`, or
/// `?lastEventId=` for a client that cannot set it).
async fn events(req: HttpRequest, st: web::Data<Rest>) -> Answer {
    let query = web::Query::<Vec<(String, String)>>::from_query(req.query_string())
        .map(web::Query::into_inner)
        .unwrap_or_default();
    let param = |name: &str| {
        query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let last = req
        .headers()
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .or_else(|| param("lastEventId"))
        .map(str::to_owned);
    let stream = st
        .api
        .events(
            authorization(&req),
            param("ticket"),
            last,
            &st.io,
            super::client_addr(&req),
        )
        .await?;
    Ok(HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((actix_web::http::header::CACHE_CONTROL, "no-cache"))
        // nginx: pass each event on at once, whatever the location's buffering says
        .insert_header(("X-Accel-Buffering", "no"))
        .streaming(stream))
}

/// Registers `/api/…` (unknown routes and methods there: 404 JSON) and `/events`.
pub fn configure(api: Api, io: IoHandle) -> impl Fn(&mut web::ServiceConfig) + Clone + Send + Sync {
    let state = Rest { api, io };
    move |cfg: &mut web::ServiceConfig| {
        let nf = || web::to(|| async { Answer::Err(AppError::not_found("unknown API route")) });
        cfg.service(
            web::scope("/api")
                .wrap(actix_web::middleware::from_fn(super::timed))
                .app_data(web::Data::new(state.clone()))
                .app_data(web::PayloadConfig::new(64 * 1024))
                .service(
                    web::resource("/rooms/{id}/messages")
                        .route(web::get().to(get_messages))
                        .route(web::post().to(post_message))
                        .default_service(nf()),
                )
                .service(
                    web::resource("/notifications")
                        .route(web::get().to(get_notifications))
                        .default_service(nf()),
                )
                .service(
                    web::resource("/notifications/read")
                        .route(web::post().to(read_notifications))
                        .default_service(nf()),
                )
                .service(
                    web::resource("/sse-ticket")
                        .route(web::post().to(sse_ticket))
                        .default_service(nf()),
                )
                .default_service(nf()),
        );
        cfg.service(
            web::resource("/events")
                .wrap(actix_web::middleware::from_fn(super::timed))
                .app_data(web::Data::new(state.clone()))
                .route(web::get().to(events))
                .default_service(nf()),
        );
    }
}
