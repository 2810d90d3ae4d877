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

/// A user as the admin dashboard lists it (`admin:users`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Listed {
    /// The stored user.
    pub user: User,
    /// When its last socket went (ms), if ever.
    pub last_seen: Option<i64>,
}

diesel::define_sql_function!(
    /// SQL `lower(text)` (both backends).
    fn lower(x: diesel::sql_types::Text) -> diesel::sql_types::Text
);

/// `admin:users`: users whose id or name contains `query` (any case; every user without a
/// query), by id, at most `limit`.
pub fn search(
    conn: &mut DbConnection,
    query: Option<&str>,
    limit: i64,
) -> Result<Vec<Listed>, DbError> {
    let mut q = users::table.into_boxed();
    if let Some(text) = query.filter(|t| !t.is_empty()) {
        // `%`, `_` and the escape itself match literally
        let escaped: String = text
            .to_lowercase()
            .chars()
            .flat_map(|c| match c {
                '%' | '_' | '\\' => vec!['\\', c],
                c => vec![c],
            })
            .collect();
        let pattern = format!("%{escaped}%");
        q = q.filter(
            lower(users::id)
                .like(pattern.clone())
                .escape('\\')
                .or(lower(users::name).like(pattern).escape('\\')),
        );
    }
    let rows: Vec<(User, Option<i64>)> = q
        .order(users::id)
        .limit(limit)
        .select((User::as_select(), users::last_seen_at))
        .load(conn)?;
    Ok(rows
        .into_iter()
        .map(|(user, last_seen)| Listed { user, last_seen })
        .collect())
}

/// `admin:user-update`: sets what is given of `is_active` and `role`; the user after the
/// change, or `None` when there is no such user.
pub fn update_access(
    conn: &mut DbConnection,
    id: &str,
    is_active: Option<bool>,
    role: Option<&str>,
) -> Result<Option<User>, DbError> {
    if let Some(a) = is_active {
        diesel::update(users::table.find(id))
            .set(users::is_active.eq(a))
            .execute(conn)?;
    }
    if let Some(r) = role {
        diesel::update(users::table.find(id))
            .set(users::role.eq(r))
            .execute(conn)?;
    }
    find(conn, id)
}
