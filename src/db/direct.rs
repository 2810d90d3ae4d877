//! Direct messages: stored always, marked delivered when they reach a live socket; a target
//! that was offline gets its pending ones, each exactly once, on its next connect.

use diesel::prelude::*;
use serde_json::{json, Value};

use super::schema::{direct_messages, users};
use super::{DbConnection, DbError};

/// A stored DM.
#[allow(missing_docs)] // the fields are the table's columns (DESIGN section 3, migrations/)
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

/// Stores a DM; `delivered_at` is set when it goes out live.
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

/// Claims `user`'s undelivered DMs (oldest first), marking them delivered at `now`. Each row
/// is claimed with its own conditional update, so two connects racing each other (or a
/// sender's late delivery) never hand out the same DM twice.
pub fn claim_pending(
    c: &mut DbConnection,
    user: &str,
    now: i64,
) -> Result<Vec<DirectMessage>, DbError> {
    let pending: Vec<DirectMessage> = direct_messages::table
        .filter(direct_messages::to_user_id.eq(user))
        .filter(direct_messages::delivered_at.is_null())
        .order((direct_messages::created_at.asc(), direct_messages::id.asc()))
        .select(DirectMessage::as_select())
        .load(c)?;
    let mut claimed = Vec::with_capacity(pending.len());
    for mut dm in pending {
        let n = diesel::update(
            direct_messages::table
                .filter(direct_messages::id.eq(&dm.id))
                .filter(direct_messages::delivered_at.is_null()),
        )
        .set(direct_messages::delivered_at.eq(now))
        .execute(c)?;
        if n == 1 {
            dm.delivered_at = Some(now);
            claimed.push(dm);
        }
    }
    Ok(claimed)
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
