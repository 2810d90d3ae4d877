//! Directory sync from the backend: `PUT /internal/users/{id}` (more to come: rooms,
//! members, carts). Strict bodies: numbers must be numbers, booleans booleans.

use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use serde_json::json;

use super::{bad_request, internal_error, signature, InternalState};
use crate::db::users::{self, UserUpdate};

/// Why a signed call is refused before it is handled.
enum Refusal {
    Unauthorized,
    BadBody(String),
}

impl Refusal {
    fn response(self) -> HttpResponse {
        match self {
            Refusal::Unauthorized => super::error(
                actix_web::http::StatusCode::UNAUTHORIZED,
                "UNAUTHORIZED",
                "missing or invalid X-Signature-256",
            ),
            Refusal::BadBody(why) => bad_request(&format!("invalid body: {why}")),
        }
    }
}

/// Checks the signature; the parsed JSON body or why not.
fn signed_json<T: for<'de> Deserialize<'de>>(
    req: &HttpRequest,
    body: &[u8],
    st: &InternalState,
) -> Result<T, Refusal> {
    let header = req
        .headers()
        .get("x-signature-256")
        .and_then(|v| v.to_str().ok());
    let ok = st
        .webhook_secret
        .as_deref()
        .is_some_and(|k| signature::valid(k, body, header));
    if !ok {
        return Err(Refusal::Unauthorized);
    }
    serde_json::from_slice(body).map_err(|e| Refusal::BadBody(e.to_string()))
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct UserBody {
    name: String,
    email: String,
    #[serde(default)]
    avatar_url: Option<String>,
    role: RoleBody,
    is_active: bool,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "lowercase")]
enum RoleBody {
    User,
    Admin,
}

pub async fn put_user(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    st: web::Data<InternalState>,
) -> HttpResponse {
    let b: UserBody = match signed_json(&req, &body, &st) {
        Ok(b) => b,
        Err(refusal) => return refusal.response(),
    };
    let id = path.into_inner();
    if id.trim().is_empty() || b.name.trim().is_empty() {
        return bad_request("id and name must not be empty");
    }
    let update = UserUpdate {
        name: b.name,
        email: b.email,
        avatar_url: b.avatar_url,
        role: match b.role {
            RoleBody::User => "user".into(),
            RoleBody::Admin => "admin".into(),
        },
        is_active: b.is_active,
    };
    match st.db.run(move |c| users::upsert(c, &id, &update)).await {
        Ok(()) => HttpResponse::Ok().json(json!({"success": true})),
        Err(e) => {
            log::error!("directory sync failed op=put_user err={e}");
            internal_error()
        }
    }
}
