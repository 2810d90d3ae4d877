//! Directory sync from the backend: users, rooms, members, carts. Strict bodies: numbers
//! must be numbers, booleans booleans. A change that takes something away from open sockets
//! (a disabled user, a demoted admin, a member removed from a private room) is applied to
//! them on every node before the call answers ([`crate::app::live`]).

use actix_web::{web, HttpRequest};
use serde::Deserialize;

use super::{check_signature, success, Answer, InternalState};
use crate::app::error::AppError;
use crate::app::live;
use crate::db::users::{self, UserUpdate};

/// Checks the signature; the parsed JSON body or why not.
async fn signed_json<T: for<'de> Deserialize<'de>>(
    req: &HttpRequest,
    body: &[u8],
    st: &InternalState,
) -> Result<T, AppError> {
    check_signature(req, body, st).await?;
    serde_json::from_slice(body).map_err(|e| AppError::invalid(format!("invalid body: {e}")))
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

/// `PUT /internal/users/{id}`.
pub async fn put_user(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    st: web::Data<InternalState>,
) -> Answer {
    let b: UserBody = signed_json(&req, &body, &st).await?;
    let id = path.into_inner();
    if id.trim().is_empty() || b.name.trim().is_empty() {
        return Err(AppError::invalid("id and name must not be empty"));
    }
    let admin = matches!(b.role, RoleBody::Admin);
    let update = UserUpdate {
        name: b.name,
        email: b.email,
        avatar_url: b.avatar_url,
        role: if admin { "admin" } else { "user" }.into(),
        is_active: b.is_active,
    };
    let active = update.is_active;
    let user = id.clone();
    let done = st.db.run(move |c| users::upsert(c, &user, &update)).await;
    if done.is_ok() {
        live::user_changed(&st.io, &id, active, admin);
    }
    outcome(done.map(|()| Outcome::Done), "put_user")
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct RoomBody {
    name: String,
    is_public: bool,
    #[serde(default)]
    members: Option<Vec<String>>,
}

/// What a directory change found.
enum Outcome {
    Done,
    /// Done, and the room is private with these members: others are taken out of it.
    Restricted(String, Vec<String>),
    UnknownRoom,
    UnknownUser(String),
}

fn outcome(o: Result<Outcome, crate::db::DbError>, op: &str) -> Answer {
    match o.map_err(AppError::from) {
        Ok(Outcome::Done | Outcome::Restricted(..)) => success(),
        Ok(Outcome::UnknownRoom) => Err(AppError::not_found("unknown room")),
        Ok(Outcome::UnknownUser(u)) => Err(AppError::not_found(format!("unknown user {u}"))),
        Err(e) => {
            e.log_internal(&format!("directory sync op={op}"));
            Err(e)
        }
    }
}

/// The first of `ids` that is not a stored user.
fn first_unknown_user(
    c: &mut crate::db::DbConnection,
    ids: &[String],
) -> Result<Option<String>, crate::db::DbError> {
    for id in ids {
        if users::find(c, id)?.is_none() {
            return Ok(Some(id.clone()));
        }
    }
    Ok(None)
}

/// `Restricted` with the members when `room` is private (after a change), else `Done`.
fn restricted(c: &mut crate::db::DbConnection, room: &str) -> Result<Outcome, crate::db::DbError> {
    match crate::db::rooms::find(c, room)? {
        Some(r) if !r.is_public => Ok(Outcome::Restricted(
            room.to_owned(),
            crate::db::rooms::members(c, room)?,
        )),
        _ => Ok(Outcome::Done),
    }
}

/// Takes sockets of users who may no longer be in a private room out of it, everywhere.
fn apply(st: &InternalState, res: &Result<Outcome, crate::db::DbError>) {
    if let Ok(Outcome::Restricted(room, members)) = res {
        live::room_restricted(&st.io, room, members);
    }
}

/// `PUT /internal/rooms/{id}`.
pub async fn put_room(
    req: HttpRequest,
    path: web::Path<String>,
    body: web::Bytes,
    st: web::Data<InternalState>,
) -> Answer {
    let b: RoomBody = signed_json(&req, &body, &st).await?;
    let id = path.into_inner();
    if id.trim().is_empty() || b.name.trim().is_empty() {
        return Err(AppError::invalid("id and name must not be empty"));
    }
    let res = st
        .db
        .run(move |c| {
            if let Some(members) = &b.members {
                if let Some(u) = first_unknown_user(c, members)? {
                    return Ok(Outcome::UnknownUser(u));
                }
            }
            crate::db::rooms::upsert(c, &id, &b.name, b.is_public, b.members.as_deref())?;
            restricted(c, &id)
        })
        .await;
    apply(&st, &res);
    outcome(res, "put_room")
}

/// `PUT` or `DELETE /internal/rooms/{id}/members/{userId}` (no body; the signature covers
/// method, path and an empty body).
pub async fn member(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Bytes,
    st: web::Data<InternalState>,
) -> Answer {
    check_signature(&req, &body, &st).await?;
    let (room, user) = path.into_inner();
    let add = req.method() == actix_web::http::Method::PUT;
    let res = st
        .db
        .run(move |c| {
            if add {
                if users::find(c, &user)?.is_none() {
                    return Ok(Outcome::UnknownUser(user));
                }
                if !crate::db::rooms::add_member(c, &room, &user)? {
                    return Ok(Outcome::UnknownRoom);
                }
            } else if !crate::db::rooms::remove_member(c, &room, &user)? {
                return Ok(Outcome::UnknownRoom);
            } else {
                return restricted(c, &room);
            }
            Ok(Outcome::Done)
        })
        .await;
    apply(&st, &res);
    outcome(res, if add { "put_member" } else { "delete_member" })
}

/// `PUT` or `DELETE /internal/carts/{userId}/items/{productId}` (no body): what
/// `STOCK_SOLD_OUT` looks up.
pub async fn cart_item(
    req: HttpRequest,
    path: web::Path<(String, String)>,
    body: web::Bytes,
    st: web::Data<InternalState>,
) -> Answer {
    check_signature(&req, &body, &st).await?;
    let (user, product) = path.into_inner();
    if user.trim().is_empty() || product.trim().is_empty() {
        return Err(AppError::invalid("user and product ids must not be empty"));
    }
    let add = req.method() == actix_web::http::Method::PUT;
    let res = st
        .db
        .run(move |c| {
            let known = if add {
                crate::db::notifications::cart_add(c, &user, &product, crate::db::now_ms())?
            } else {
                crate::db::notifications::cart_remove(c, &user, &product)?
            };
            Ok(if known {
                Outcome::Done
            } else {
                Outcome::UnknownUser(user)
            })
        })
        .await;
    outcome(res, "cart_item")
}
