//! Queries on `users`.

use diesel::prelude::*;

use super::schema::users;
use super::{now_ms, DbConnection, DbError};

/// A stored user.
#[allow(missing_docs)] // the fields are the table's columns (migrations/)
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = users)]
pub struct User {
    pub id: String,
    pub name: String,
    pub email: String,
    pub avatar_url: Option<String>,
    pub role: String,
    pub is_active: bool,
    pub created_at: i64,
}

/// The fields a directory sync sets.
#[allow(missing_docs)] // the fields are the table's columns (migrations/)
#[derive(Debug, Clone, PartialEq, Eq, Insertable, AsChangeset)]
#[diesel(table_name = users, treat_none_as_null = true)]
pub struct UserUpdate {
    pub name: String,
    pub email: String,
    pub avatar_url: Option<String>,
    pub role: String,
    pub is_active: bool,
}

/// Creates or replaces a user (its `created_at` is kept on update).
pub fn upsert(conn: &mut DbConnection, id: &str, u: &UserUpdate) -> Result<(), DbError> {
    conn.transaction(|conn| {
        let updated = diesel::update(users::table.find(id)).set(u).execute(conn)?;
        if updated == 0 {
            diesel::insert_into(users::table)
                .values((users::id.eq(id), u, users::created_at.eq(now_ms())))
                .execute(conn)?;
        }
        Ok(())
    })
}

/// The user `id`, if stored.
pub fn find(conn: &mut DbConnection, id: &str) -> Result<Option<User>, DbError> {
    Ok(users::table
        .find(id)
        .select(User::as_select())
        .first(conn)
        .optional()?)
}

/// Every user, by id.
pub fn list(conn: &mut DbConnection) -> Result<Vec<User>, DbError> {
    Ok(users::table
        .order(users::id)
        .select(User::as_select())
        .load(conn)?)
}

/// `last_seen_at` of each of `ids` that is stored (ids not stored are left out).
pub fn last_seen(
    conn: &mut DbConnection,
    ids: &[String],
) -> Result<Vec<(String, Option<i64>)>, DbError> {
    let mut out = Vec::with_capacity(ids.len());
    // bounded IN lists (SQLite allows some thousands of parameters)
    for chunk in ids.chunks(500) {
        out.extend(
            users::table
                .filter(users::id.eq_any(chunk))
                .select((users::id, users::last_seen_at))
                .load::<(String, Option<i64>)>(conn)?,
        );
    }
    Ok(out)
}

/// Stores when user `id`'s last socket went (it never moves back).
pub fn set_last_seen(conn: &mut DbConnection, id: &str, at: i64) -> Result<(), DbError> {
    diesel::update(
        users::table
            .find(id)
            .filter(users::last_seen_at.is_null().or(users::last_seen_at.lt(at))),
    )
    .set(users::last_seen_at.eq(at))
    .execute(conn)?;
    Ok(())
}
