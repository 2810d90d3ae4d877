//! Stored notifications (`notification` events), the `/notifications` backlog and read marks,
//! and the look-ups webhooks need: watchers, cart holders.

use diesel::prelude::*;
use serde_json::{Map, Value};

use super::schema::{cart_items, notifications, product_watchers, users};
use super::{DbConnection, DbError};

/// A notification to store for one user.
#[allow(missing_docs)] // the fields are the table's columns (docs/architecture.md)
#[derive(Debug, Clone)]
pub struct NewNotification {
    pub id: String,
    pub user_id: String,
    pub kind: String,
    /// The live payload without `id` (added when shaped).
    pub payload: Value,
    pub created_at: i64,
}

/// Stores many notifications in one transaction.
pub fn store_many(c: &mut DbConnection, items: &[NewNotification]) -> Result<(), DbError> {
    if items.is_empty() {
        return Ok(());
    }
    super::write_transaction(c, |c| {
        for n in items {
            diesel::insert_into(notifications::table)
                .values((
                    notifications::id.eq(&n.id),
                    notifications::user_id.eq(&n.user_id),
                    notifications::kind.eq(&n.kind),
                    notifications::payload.eq(n.payload.to_string()),
                    notifications::created_at.eq(n.created_at),
                ))
                .execute(c)?;
        }
        Ok(())
    })
}

/// The live `notification` payload: the stored payload plus its `id`.
pub fn live(id: &str, payload: &Value) -> Value {
    let mut o = match payload {
        Value::Object(o) => o.clone(),
        _ => Map::new(),
    };
    o.insert("id".into(), Value::String(id.to_owned()));
    Value::Object(o)
}

/// `user`'s unread notifications, oldest first (at most `limit`), as backlog items (the live
/// payload plus `id` and `read:false`), and how many are unread in all.
pub fn backlog(c: &mut DbConnection, user: &str, limit: i64) -> Result<(Vec<Value>, i64), DbError> {
    let unread = notifications::table
        .filter(notifications::user_id.eq(user))
        .filter(notifications::read_at.is_null());
    let total: i64 = unread.count().get_result(c)?;
    let rows: Vec<(String, String)> = unread
        .order(notifications::id.asc())
        .limit(limit)
        .select((notifications::id, notifications::payload))
        .load(c)?;
    let items = rows
        .into_iter()
        .map(|(id, payload)| {
            let p: Value = serde_json::from_str(&payload).unwrap_or(Value::Null);
            let mut v = live(&id, &p);
            v["read"] = Value::Bool(false);
            v
        })
        .collect();
    Ok((items, total))
}

/// Marks `ids` read where they belong to `user` and are unread; returns how many changed.
pub fn mark_read(
    c: &mut DbConnection,
    user: &str,
    ids: &[String],
    at: i64,
) -> Result<usize, DbError> {
    Ok(diesel::update(
        notifications::table
            .filter(notifications::user_id.eq(user))
            .filter(notifications::id.eq_any(ids))
            .filter(notifications::read_at.is_null()),
    )
    .set(notifications::read_at.eq(at))
    .execute(c)?)
}

/// Users watching `product`.
pub fn watchers(c: &mut DbConnection, product: &str) -> Result<Vec<String>, DbError> {
    Ok(product_watchers::table
        .filter(product_watchers::product_id.eq(product))
        .select(product_watchers::user_id)
        .order(product_watchers::user_id)
        .load(c)?)
}

/// Users with `product` in their cart.
pub fn cart_holders(c: &mut DbConnection, product: &str) -> Result<Vec<String>, DbError> {
    Ok(cart_items::table
        .filter(cart_items::product_id.eq(product))
        .select(cart_items::user_id)
        .order(cart_items::user_id)
        .load(c)?)
}

/// Puts `product` in `user`'s cart (once); false when the user does not exist.
pub fn cart_add(c: &mut DbConnection, user: &str, product: &str, at: i64) -> Result<bool, DbError> {
    if users::table.find(user).count().get_result::<i64>(c)? == 0 {
        return Ok(false);
    }
    diesel::insert_into(cart_items::table)
        .values((
            cart_items::user_id.eq(user),
            cart_items::product_id.eq(product),
            cart_items::created_at.eq(at),
        ))
        .execute(c)
        .map(drop)
        .or_else(super::ignore_duplicate)?;
    Ok(true)
}

/// Takes `product` out of `user`'s cart; false when the user does not exist.
pub fn cart_remove(c: &mut DbConnection, user: &str, product: &str) -> Result<bool, DbError> {
    if users::table.find(user).count().get_result::<i64>(c)? == 0 {
        return Ok(false);
    }
    diesel::delete(cart_items::table.find((user, product))).execute(c)?;
    Ok(true)
}

/// `GET /api/notifications`: the user's notifications, newest first, at most `limit`
/// (unread ones only with `unread_only`), each the live payload plus `id` and `read`; and
/// how many are unread in all.
pub fn list(
    c: &mut DbConnection,
    user: &str,
    unread_only: bool,
    limit: i64,
) -> Result<(Vec<Value>, i64), DbError> {
    let unread: i64 = notifications::table
        .filter(notifications::user_id.eq(user))
        .filter(notifications::read_at.is_null())
        .count()
        .get_result(c)?;
    let mut q = notifications::table
        .filter(notifications::user_id.eq(user))
        .into_boxed();
    if unread_only {
        q = q.filter(notifications::read_at.is_null());
    }
    let rows: Vec<(String, String, Option<i64>)> = q
        .order(notifications::id.desc())
        .limit(limit)
        .select((
            notifications::id,
            notifications::payload,
            notifications::read_at,
        ))
        .load(c)?;
    let items = rows
        .into_iter()
        .map(|(id, payload, read_at)| {
            let p: Value = serde_json::from_str(&payload).unwrap_or(Value::Null);
            let mut v = live(&id, &p);
            v["read"] = Value::Bool(read_at.is_some());
            v
        })
        .collect();
    Ok((items, unread))
}

/// The replay of an SSE stream (`Last-Event-ID`): `user`'s notifications stored after the
/// event `last_id` (a notification of the user, or a DM to the user; ids are time-ordered
/// UUIDv7), oldest first, at most `limit`, in the live shape. `None` when `last_id` is
/// neither (no replay).
pub fn after_event(
    c: &mut DbConnection,
    user: &str,
    last_id: &str,
    limit: i64,
) -> Result<Option<Vec<Value>>, DbError> {
    use super::schema::direct_messages;
    let known = notifications::table
        .filter(notifications::user_id.eq(user))
        .filter(notifications::id.eq(last_id))
        .count()
        .get_result::<i64>(c)?
        > 0
        || direct_messages::table
            .filter(direct_messages::to_user_id.eq(user))
            .filter(direct_messages::id.eq(last_id))
            .count()
            .get_result::<i64>(c)?
            > 0;
    if !known {
        return Ok(None);
    }
    let rows: Vec<(String, String)> = notifications::table
        .filter(notifications::user_id.eq(user))
        .filter(notifications::id.gt(last_id))
        .order(notifications::id.asc())
        .limit(limit)
        .select((notifications::id, notifications::payload))
        .load(c)?;
    Ok(Some(
        rows.into_iter()
            .map(|(id, payload)| {
                let p: Value = serde_json::from_str(&payload).unwrap_or(Value::Null);
                live(&id, &p)
            })
            .collect(),
    ))
}
