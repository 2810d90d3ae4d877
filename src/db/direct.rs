//! Direct messages: stored always, marked delivered once a socket of the target has
//! acknowledged them; the undelivered ones are read in pages, oldest first, to be sent again.

use diesel::prelude::*;
use serde_json::{json, Value};

use super::schema::{direct_messages, users};
use super::{DbConnection, DbError};

/// A stored DM.
#[allow(missing_docs)] // the fields are the table's columns (migrations/)
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = direct_messages)]
pub struct DirectMessage {
    pub id: String,
    pub from_user_id: String,
    pub to_user_id: String,
    pub message: String,
    pub created_at: i64,
    pub delivered_at: Option<i64>,
}

impl DirectMessage {
    /// The `chat:direct` payload.
    pub fn payload(&self) -> Value {
        json!({
            "id": self.id,
            "fromUserId": self.from_user_id,
            "message": self.message,
            "timestamp": self.created_at,
        })
    }
}

/// Whether user `id` exists.
pub fn user_exists(c: &mut DbConnection, id: &str) -> Result<bool, DbError> {
    Ok(users::table.find(id).count().get_result::<i64>(c)? > 0)
}

/// Stores a DM (undelivered until acknowledged).
pub fn store(c: &mut DbConnection, dm: &DirectMessage) -> Result<(), DbError> {
    diesel::insert_into(direct_messages::table)
        .values((
            direct_messages::id.eq(&dm.id),
            direct_messages::from_user_id.eq(&dm.from_user_id),
            direct_messages::to_user_id.eq(&dm.to_user_id),
            direct_messages::message.eq(&dm.message),
            direct_messages::created_at.eq(dm.created_at),
            direct_messages::delivered_at.eq(dm.delivered_at),
        ))
        .execute(c)?;
    Ok(())
}

/// How many DMs wait for `user`.
pub fn pending_count(c: &mut DbConnection, user: &str) -> Result<i64, DbError> {
    Ok(direct_messages::table
        .filter(direct_messages::to_user_id.eq(user))
        .filter(direct_messages::delivered_at.is_null())
        .count()
        .get_result(c)?)
}

/// Where a page of pending DMs ends: the last one's time and id.
pub type Cursor = (i64, String);

/// Up to `limit` of `user`'s undelivered DMs after `after` (from the oldest without it),
/// oldest first.
pub fn pending_page(
    c: &mut DbConnection,
    user: &str,
    after: Option<&Cursor>,
    limit: i64,
) -> Result<Vec<DirectMessage>, DbError> {
    let mut q = direct_messages::table
        .filter(direct_messages::to_user_id.eq(user))
        .filter(direct_messages::delivered_at.is_null())
        .into_boxed();
    if let Some((at, id)) = after {
        q = q.filter(
            direct_messages::created_at
                .gt(*at)
                .or(direct_messages::created_at
                    .eq(*at)
                    .and(direct_messages::id.gt(id.clone()))),
        );
    }
    Ok(
        q.order((direct_messages::created_at.asc(), direct_messages::id.asc()))
            .limit(limit)
            .select(DirectMessage::as_select())
            .load(c)?,
    )
}

/// Marks the DMs `ids` delivered at `now` (those not already); returns how many changed.
pub fn mark_delivered(c: &mut DbConnection, ids: &[String], now: i64) -> Result<usize, DbError> {
    if ids.is_empty() {
        return Ok(0);
    }
    Ok(diesel::update(
        direct_messages::table
            .filter(direct_messages::id.eq_any(ids))
            .filter(direct_messages::delivered_at.is_null()),
    )
    .set(direct_messages::delivered_at.eq(now))
    .execute(c)?)
}

/// Whether DM `id` has been delivered (tests and tools).
pub fn delivered(c: &mut DbConnection, id: &str) -> Result<Option<bool>, DbError> {
    Ok(direct_messages::table
        .find(id)
        .select(direct_messages::delivered_at)
        .first::<Option<i64>>(c)
        .optional()?
        .map(|d| d.is_some()))
}
