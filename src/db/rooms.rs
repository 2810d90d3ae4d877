//! Queries on `rooms` and `room_members`.

use diesel::prelude::*;

use super::schema::{room_members, rooms};
use super::{now_ms, write_transaction, DbConnection, DbError};

/// A stored chat room.
#[allow(missing_docs)] // the fields are the table's columns (migrations/)
#[derive(Debug, Clone, PartialEq, Eq, Queryable, Selectable)]
#[diesel(table_name = rooms)]
pub struct Room {
    pub id: String,
    pub name: String,
    pub is_public: bool,
    pub created_at: i64,
}

/// Creates or updates a room; a given `members` list replaces the stored one (members that
/// stay keep their read position).
pub fn upsert(
    conn: &mut DbConnection,
    id: &str,
    name: &str,
    is_public: bool,
    members: Option<&[String]>,
) -> Result<(), DbError> {
    conn.transaction(|conn| {
        let updated = diesel::update(rooms::table.find(id))
            .set((rooms::name.eq(name), rooms::is_public.eq(is_public)))
            .execute(conn)?;
        if updated == 0 {
            diesel::insert_into(rooms::table)
                .values((
                    rooms::id.eq(id),
                    rooms::name.eq(name),
                    rooms::is_public.eq(is_public),
                    rooms::created_at.eq(now_ms()),
                ))
                .execute(conn)?;
        }
        if let Some(members) = members {
            diesel::delete(
                room_members::table
                    .filter(room_members::room_id.eq(id))
                    .filter(room_members::user_id.ne_all(members)),
            )
            .execute(conn)?;
            for user in members {
                add_member_in(conn, id, user)?;
            }
        }
        Ok(())
    })
}

fn add_member_in(conn: &mut DbConnection, room: &str, user: &str) -> Result<(), DbError> {
    let exists = room_members::table
        .find((room, user))
        .count()
        .get_result::<i64>(conn)?
        > 0;
    if !exists {
        diesel::insert_into(room_members::table)
            .values((
                room_members::room_id.eq(room),
                room_members::user_id.eq(user),
                room_members::joined_at.eq(now_ms()),
            ))
            .execute(conn)?;
    }
    Ok(())
}

/// The room `id`, if stored.
pub fn find(conn: &mut DbConnection, id: &str) -> Result<Option<Room>, DbError> {
    Ok(rooms::table
        .find(id)
        .select(Room::as_select())
        .first(conn)
        .optional()?)
}

/// The stored rooms among `ids` (looked up 500 at a time).
pub fn find_many(conn: &mut DbConnection, ids: &[String]) -> Result<Vec<Room>, DbError> {
    let mut out = Vec::new();
    for chunk in ids.chunks(500) {
        out.extend(
            rooms::table
                .filter(rooms::id.eq_any(chunk))
                .select(Room::as_select())
                .load(conn)?,
        );
    }
    Ok(out)
}

/// Adds a member; false when the room does not exist.
pub fn add_member(conn: &mut DbConnection, room: &str, user: &str) -> Result<bool, DbError> {
    write_transaction(conn, |conn| {
        if find(conn, room)?.is_none() {
            return Ok(false);
        }
        add_member_in(conn, room, user)?;
        Ok(true)
    })
}

/// Removes a member; false when the room does not exist.
pub fn remove_member(conn: &mut DbConnection, room: &str, user: &str) -> Result<bool, DbError> {
    write_transaction(conn, |conn| {
        if find(conn, room)?.is_none() {
            return Ok(false);
        }
        diesel::delete(room_members::table.find((room, user))).execute(conn)?;
        Ok(true)
    })
}

/// Whether `user` is a member of `room`.
pub fn is_member(conn: &mut DbConnection, room: &str, user: &str) -> Result<bool, DbError> {
    Ok(room_members::table
        .find((room, user))
        .count()
        .get_result::<i64>(conn)?
        > 0)
}

/// The members of `room`.
pub fn members(conn: &mut DbConnection, room: &str) -> Result<Vec<String>, DbError> {
    Ok(room_members::table
        .filter(room_members::room_id.eq(room))
        .select(room_members::user_id)
        .order(room_members::user_id)
        .load(conn)?)
}
