//! Changes to stored chat messages (`chat:edit`, `chat:delete`, `chat:react`, docs/events.md)
//! and the lists built on them: a user's rooms with unread counts (`rooms:list`) and a
//! room's messages for admins (`admin:messages`).
//!
//! Each change runs in one write transaction that first takes the message's row (an update
//! of the row: PostgreSQL locks it, SQLite's transaction holds the write lock), so a delete
//! and a reaction, or two new emoji, never interleave. The outbound event of a change is
//! written in the same transaction.

use std::collections::HashMap;

use diesel::prelude::*;
use serde_json::Value;

use super::messages::{readable, shape, Message, Refusal};
use super::outbound::NewEvent;
use super::schema::{message_reactions, messages, rooms, users};
use super::{write_transaction, DbConnection, DbError};

/// Distinct emoji one message may carry.
pub const MAX_EMOJI: i64 = 20;
/// `unread` counts up to this.
pub const UNREAD_MAX: i64 = 999;

/// The outbound event of a change (given the message after it), if one is wanted.
pub type OnChange<'a> = &'a dyn Fn(&Value) -> Option<NewEvent>;

/// A message after an edit or a delete, in the history shape.
#[derive(Debug, Clone)]
pub struct Changed {
    /// Its room.
    pub room_id: String,
    /// The message as history now shows it.
    pub message: Value,
}

/// Runs `f` in one write transaction on message `id`, taken first (its row updated to
/// itself: PostgreSQL locks it, SQLite's transaction holds the write lock), unless it is
/// unknown or deleted (`NoMessage`).
fn on_message<T>(
    conn: &mut DbConnection,
    id: &str,
    f: impl FnOnce(&mut DbConnection, Message) -> Result<Result<T, Refusal>, DbError>,
) -> Result<Result<T, Refusal>, DbError> {
    write_transaction(conn, |c| {
        let n = diesel::update(
            messages::table
                .find(id)
                .filter(messages::deleted_at.is_null()),
        )
        .set(messages::deleted_at.eq(messages::deleted_at))
        .execute(c)?;
        let taken = if n == 0 {
            None
        } else {
            messages::table
                .find(id)
                .select(Message::as_select())
                .first(c)
                .optional()?
        };
        match taken {
            Some(m) => f(c, m),
            None => Ok(Err(Refusal::NoMessage)),
        }
    })
}

/// The one message `id` in the history shape, with the outbound event of the change.
fn finish(
    c: &mut DbConnection,
    id: &str,
    on_change: OnChange<'_>,
) -> Result<Result<Changed, Refusal>, DbError> {
    let row: Message = messages::table
        .find(id)
        .select(Message::as_select())
        .first(c)?;
    let room_id = row.room_id.clone();
    let message = shape(c, &[row])?.pop().unwrap_or(Value::Null);
    if let Some(e) = on_change(&message) {
        super::outbound::enqueue(c, &e)?;
    }
    Ok(Ok(Changed { room_id, message }))
}

/// `chat:edit`: the author (still allowed in the room) replaces the text of a message that
/// is not deleted.
pub fn edit(
    conn: &mut DbConnection,
    id: &str,
    user: &str,
    text: &str,
    at: i64,
    on_change: OnChange<'_>,
) -> Result<Result<Changed, Refusal>, DbError> {
    on_message(conn, id, |c, m| {
        if m.sender_id != user {
            return Ok(Err(Refusal::NotAuthor));
        }
        if let Err(r) = readable(c, &m.room_id, user)? {
            return Ok(Err(r));
        }
        diesel::update(messages::table.find(id))
            .set((messages::text.eq(text), messages::edited_at.eq(Some(at))))
            .execute(c)?;
        finish(c, id, on_change)
    })
}

/// `chat:delete` / `admin:delete-message`: the author, or a user whose stored role is
/// `admin`, blanks a message (its row stays, so replies and order hold) and drops its
/// reactions.
pub fn delete(
    conn: &mut DbConnection,
    id: &str,
    user: &str,
    at: i64,
    on_change: OnChange<'_>,
) -> Result<Result<Changed, Refusal>, DbError> {
    on_message(conn, id, |c, m| {
        if m.sender_id != user && !is_admin(c, user)? {
            return Ok(Err(Refusal::NotAuthor));
        }
        diesel::update(messages::table.find(id))
            .set((messages::text.eq(""), messages::deleted_at.eq(Some(at))))
            .execute(c)?;
        diesel::delete(message_reactions::table.filter(message_reactions::message_id.eq(id)))
            .execute(c)?;
        finish(c, id, on_change)
    })
}

/// Whether `user`'s stored role is `admin`.
pub fn is_admin(c: &mut DbConnection, user: &str) -> Result<bool, DbError> {
    Ok(users::table
        .find(user)
        .select(users::role)
        .first::<String>(c)
        .optional()?
        .is_some_and(|r| r == "admin"))
}

/// `chat:react`: turns `user`'s `emoji` on message `id` on or off. Answers the message's
/// room and whether the state changed (a repeated toggle changes nothing).
pub fn react(
    conn: &mut DbConnection,
    id: &str,
    user: &str,
    emoji: &str,
    on: bool,
    at: i64,
) -> Result<Result<(String, bool), Refusal>, DbError> {
    on_message(conn, id, |c, m| {
        if let Err(r) = readable(c, &m.room_id, user)? {
            return Ok(Err(r));
        }
        let mine = message_reactions::table
            .filter(message_reactions::message_id.eq(id))
            .filter(message_reactions::emoji.eq(emoji));
        if !on {
            let n = diesel::delete(mine.filter(message_reactions::user_id.eq(user))).execute(c)?;
            return Ok(Ok((m.room_id, n > 0)));
        }
        let users_of_emoji: Vec<String> = mine.select(message_reactions::user_id).load(c)?;
        if users_of_emoji.iter().any(|u| u == user) {
            return Ok(Ok((m.room_id, false)));
        }
        if users_of_emoji.is_empty() {
            let distinct: Vec<String> = message_reactions::table
                .filter(message_reactions::message_id.eq(id))
                .select(message_reactions::emoji)
                .distinct()
                .load(c)?;
            if distinct.len() as i64 >= MAX_EMOJI {
                return Ok(Err(Refusal::TooManyEmoji));
            }
        }
        // the stamp orders `userIds` and the emoji: strictly after the message's newest
        // reaction, so two in the same millisecond keep the order they were made in (the
        // message row is held, so no other reaction to it interleaves)
        let newest: Option<i64> = message_reactions::table
            .filter(message_reactions::message_id.eq(id))
            .select(diesel::dsl::max(message_reactions::created_at))
            .first(c)?;
        let stamp = newest.map_or(at, |n| at.max(n + 1));
        diesel::insert_into(message_reactions::table)
            .values((
                message_reactions::message_id.eq(id),
                message_reactions::emoji.eq(emoji),
                message_reactions::user_id.eq(user),
                message_reactions::created_at.eq(stamp),
            ))
            .execute(c)?;
        Ok(Ok((m.room_id, true)))
    })
}

/// `admin:messages`: the newest `limit` messages of `room`, newest first, deleted ones
/// included (blanked).
pub fn newest_first(
    c: &mut DbConnection,
    room: &str,
    limit: i64,
) -> Result<Result<Vec<Value>, Refusal>, DbError> {
    if rooms::table.find(room).count().get_result::<i64>(c)? == 0 {
        return Ok(Err(Refusal::UnknownRoom));
    }
    let rows: Vec<Message> = messages::table
        .filter(messages::room_id.eq(room))
        .order(messages::id.desc())
        .limit(limit)
        .select(Message::as_select())
        .load(c)?;
    Ok(Ok(shape(c, &rows)?))
}

/// One room of `rooms:list` (its online count is the caller's to add).
#[derive(Debug, Clone)]
pub struct ListedRoom {
    /// The room.
    pub id: String,
    /// Its name.
    pub name: String,
    /// Whether it is public.
    pub is_public: bool,
    /// Messages after the user's read marker, not the user's own, not deleted (at most
    /// [`UNREAD_MAX`]).
    pub unread: i64,
    /// The newest message not deleted, in the history shape.
    pub last: Option<Value>,
}

/// `rooms:list` in one statement: the user's rooms (members or read in), each with its
/// unread count (a walk of at most `UNREAD_MAX` entries of the `(room_id, id, sender_id,
/// deleted_at)` index after the marker; "" sorts before every id) and the id of its newest
/// message not deleted (the same index, backwards). `?1` is the user (`$1` on PostgreSQL).
const ROOMS_OF: &str = "
SELECT r.id, r.name, r.is_public,
    (SELECT count(*) FROM (
        SELECT 1 FROM messages m
        WHERE m.room_id = r.id AND m.id > coalesce(k.last_read_message_id, '')
          AND m.sender_id <> ?1 AND m.deleted_at IS NULL
        LIMIT 999) AS u) AS unread,
    (SELECT m.id FROM messages m
        WHERE m.room_id = r.id AND m.deleted_at IS NULL
        ORDER BY m.id DESC LIMIT 1) AS last_id
FROM rooms r
LEFT JOIN read_markers k ON k.room_id = r.id AND k.user_id = ?1
WHERE r.id IN (SELECT room_id FROM room_members WHERE user_id = ?1
               UNION SELECT room_id FROM read_markers WHERE user_id = ?1)";

/// A row of [`ROOMS_OF`].
#[derive(QueryableByName)]
struct ListRow {
    #[diesel(sql_type = diesel::sql_types::Text)]
    id: String,
    #[diesel(sql_type = diesel::sql_types::Text)]
    name: String,
    #[diesel(sql_type = diesel::sql_types::Bool)]
    is_public: bool,
    #[diesel(sql_type = diesel::sql_types::BigInt)]
    unread: i64,
    #[diesel(sql_type = diesel::sql_types::Nullable<diesel::sql_types::Text>)]
    last_id: Option<String>,
}

// irrefutable in a SQLite-only build
#[allow(irrefutable_let_patterns)]
fn list_rows(c: &mut DbConnection, user: &str) -> Result<Vec<ListRow>, DbError> {
    use diesel::sql_types::Text;
    debug_assert!(ROOMS_OF.contains(&format!("LIMIT {UNREAD_MAX})")));
    match c {
        DbConnection::Sqlite(c) => Ok(diesel::sql_query(ROOMS_OF).bind::<Text, _>(user).load(c)?),
        #[cfg(feature = "postgres")]
        DbConnection::Postgresql(c) => Ok(diesel::sql_query(ROOMS_OF.replace("?1", "$1"))
            .bind::<Text, _>(user)
            .load(c)?),
    }
}

/// `rooms:list`: the rooms `user` is a member of or has a read marker in, newest last
/// message first (rooms without one last, by name): one statement for the rooms and their
/// counts, one for the last messages (then their senders, replies and reactions in bulk).
pub fn rooms_of(c: &mut DbConnection, user: &str) -> Result<Vec<ListedRoom>, DbError> {
    let rows = list_rows(c, user)?;
    let last_ids: Vec<&str> = rows.iter().filter_map(|r| r.last_id.as_deref()).collect();
    let mut last_rows: Vec<Message> = Vec::with_capacity(last_ids.len());
    for chunk in last_ids.chunks(500) {
        last_rows.extend(
            messages::table
                .filter(messages::id.eq_any(chunk))
                .select(Message::as_select())
                .load::<Message>(c)?,
        );
    }
    let shaped = shape(c, &last_rows)?;
    let mut lasts: HashMap<String, Value> = last_rows
        .iter()
        .zip(shaped)
        .map(|(m, v)| (m.room_id.clone(), v))
        .collect();
    let mut list: Vec<ListedRoom> = rows
        .into_iter()
        .map(|r| ListedRoom {
            last: lasts.remove(&r.id),
            id: r.id,
            name: r.name,
            is_public: r.is_public,
            unread: r.unread,
        })
        .collect();
    list.sort_by(|a, b| {
        let key = |r: &ListedRoom| {
            r.last
                .as_ref()
                .and_then(|m| m["id"].as_str().map(str::to_owned))
        };
        key(b)
            .cmp(&key(a))
            .then_with(|| a.name.cmp(&b.name))
            .then_with(|| a.id.cmp(&b.id))
    });
    Ok(list)
}
