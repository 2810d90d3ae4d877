//! Queries on `messages`, shaped as the `chat:message` payload.

use std::collections::HashMap;

use diesel::prelude::*;
use serde_json::{json, Map, Value};

use super::outbound::NewEvent;
use super::schema::{message_reactions, messages, read_markers, rooms, users};
use super::{now_ms, write_transaction, DbConnection, DbError};

/// A stored chat message.
#[allow(missing_docs)] // the fields are the table's columns (migrations/)
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = messages)]
pub struct Message {
    pub id: String,
    pub room_id: String,
    pub sender_id: String,
    pub text: String,
    pub reply_to_id: Option<String>,
    pub client_msg_id: Option<String>,
    pub created_at: i64,
    pub edited_at: Option<i64>,
    pub deleted_at: Option<i64>,
}

/// The last `limit` messages of a room, oldest first, and whether older ones exist.
pub fn history(
    conn: &mut DbConnection,
    room: &str,
    limit: i64,
) -> Result<(Vec<Value>, bool), DbError> {
    newest(conn, room, None, limit)
}

/// The last `limit` messages of a room (before message `before`, if given), oldest first,
/// and whether older ones exist.
fn newest(
    conn: &mut DbConnection,
    room: &str,
    before: Option<&str>,
    limit: i64,
) -> Result<(Vec<Value>, bool), DbError> {
    let mut q = messages::table
        .filter(messages::room_id.eq(room))
        .into_boxed();
    if let Some(b) = before {
        q = q.filter(messages::id.lt(b.to_owned()));
    }
    let mut rows: Vec<Message> = q
        .order(messages::id.desc())
        .limit(limit + 1)
        .select(Message::as_select())
        .load(conn)?;
    let has_more = rows.len() as i64 > limit;
    rows.truncate(limit.max(0) as usize);
    rows.reverse();
    Ok((shape(conn, &rows)?, has_more))
}

/// `chat:message` payloads for stored rows: sender and reply target looked up in bulk.
pub fn shape(conn: &mut DbConnection, rows: &[Message]) -> Result<Vec<Value>, DbError> {
    let sender_ids: Vec<&str> = rows.iter().map(|m| m.sender_id.as_str()).collect();
    let senders: HashMap<String, (String, Option<String>)> = users::table
        .filter(users::id.eq_any(&sender_ids))
        .select((users::id, users::name, users::avatar_url))
        .load::<(String, String, Option<String>)>(conn)?
        .into_iter()
        .map(|(id, name, avatar)| (id, (name, avatar)))
        .collect();
    let reply_ids: Vec<&str> = rows
        .iter()
        .filter_map(|m| m.reply_to_id.as_deref())
        .collect();
    let replies: HashMap<String, (String, String)> = if reply_ids.is_empty() {
        HashMap::new()
    } else {
        messages::table
            .filter(messages::id.eq_any(&reply_ids))
            .select((messages::id, messages::text, messages::sender_id))
            .load::<(String, String, String)>(conn)?
            .into_iter()
            .map(|(id, text, sender)| (id, (text, sender)))
            .collect()
    };
    let live: Vec<&str> = rows
        .iter()
        .filter(|m| m.deleted_at.is_none())
        .map(|m| m.id.as_str())
        .collect();
    let mut reactions = reactions_of(conn, &live)?;
    Ok(rows
        .iter()
        .map(|m| {
            let (name, avatar) = senders
                .get(&m.sender_id)
                .cloned()
                .unwrap_or_else(|| (m.sender_id.clone(), None));
            let reply_to = m
                .reply_to_id
                .as_ref()
                .and_then(|r| {
                    replies
                        .get(r)
                        .map(|(text, s)| json!({"id": r, "text": text, "senderId": s}))
                })
                .unwrap_or(Value::Null);
            let mut p = payload(m, &name, avatar.as_deref(), reply_to);
            if let Some(r) = reactions.remove(&m.id) {
                p["reactions"] = Value::Array(r);
            }
            p
        })
        .collect())
}

/// Reactions shown per user list at most (`userIds`; `count` is the full number).
pub const REACTION_USERS_SHOWN: usize = 20;

/// The `reactions` of messages `ids`: per message `[{emoji, count, userIds}]`, in the order
/// each emoji was first used, `userIds` oldest first (at most [`REACTION_USERS_SHOWN`]).
fn reactions_of(
    conn: &mut DbConnection,
    ids: &[&str],
) -> Result<HashMap<String, Vec<Value>>, DbError> {
    if ids.is_empty() {
        return Ok(HashMap::new());
    }
    let rows: Vec<(String, String, String)> = message_reactions::table
        .filter(message_reactions::message_id.eq_any(ids))
        .order((
            message_reactions::created_at,
            message_reactions::emoji,
            message_reactions::user_id,
        ))
        .select((
            message_reactions::message_id,
            message_reactions::emoji,
            message_reactions::user_id,
        ))
        .load(conn)?;
    // per message: emoji in first-use order, each with its count and shown users
    let mut grouped: HashMap<String, Vec<(String, usize, Vec<String>)>> = HashMap::new();
    for (msg, emoji, user) in rows {
        let list = grouped.entry(msg).or_default();
        match list.iter_mut().find(|(e, _, _)| *e == emoji) {
            Some((_, n, users)) => {
                *n += 1;
                if users.len() < REACTION_USERS_SHOWN {
                    users.push(user);
                }
            }
            None => list.push((emoji, 1, vec![user])),
        }
    }
    Ok(grouped
        .into_iter()
        .map(|(msg, list)| {
            let shown = list
                .into_iter()
                .map(|(emoji, count, users)| json!({"emoji": emoji, "count": count, "userIds": users}))
                .collect();
            (msg, shown)
        })
        .collect())
}

/// The `chat:message` payload of a stored row (optional fields omitted when absent): a
/// deleted message keeps its place with `text:""` and `deletedAt`. [`shape`] adds
/// `reactions` to a message that has any.
fn payload(m: &Message, name: &str, avatar: Option<&str>, reply_to: Value) -> Value {
    let mut sender = Map::new();
    sender.insert("id".into(), json!(m.sender_id));
    sender.insert("name".into(), json!(name));
    if let Some(a) = avatar {
        sender.insert("avatarUrl".into(), json!(a));
    }
    let mut o = Map::new();
    o.insert("id".into(), json!(m.id));
    o.insert("roomId".into(), json!(m.room_id));
    o.insert("sender".into(), Value::Object(sender));
    o.insert("text".into(), json!(m.text));
    o.insert("replyTo".into(), reply_to);
    o.insert("timestamp".into(), json!(m.created_at));
    o.insert("readBy".into(), json!([m.sender_id]));
    if let Some(c) = &m.client_msg_id {
        o.insert("clientMsgId".into(), json!(c));
    }
    if let Some(t) = m.edited_at {
        o.insert("editedAt".into(), json!(t));
    }
    if let Some(t) = m.deleted_at {
        o.insert("deletedAt".into(), json!(t));
    }
    Value::Object(o)
}

/// A `chat:send` to store (text already trimmed and checked).
#[derive(Debug, Clone)]
pub struct NewMessage {
    /// The room.
    pub room_id: String,
    /// The sender.
    pub sender_id: String,
    /// The text.
    pub text: String,
    /// The message it answers.
    pub reply_to_id: Option<String>,
    /// The client's id of the message (retries are idempotent).
    pub client_msg_id: Option<String>,
    /// Whether the sending socket is in the room (checked after the existence checks, in
    /// the order the contract gives).
    pub joined: bool,
}

/// Why a message or a read marker was not stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// No such room.
    UnknownRoom,
    /// A `replyToId`, `afterMessageId` or `lastReadMessageId` that is unknown or belongs to
    /// another room.
    UnknownMessage,
    /// The sending socket has not joined the room.
    NotJoined,
    /// A private room the user is not a member of.
    NotMember,
    /// The sender used this `clientMsgId` for a message in another room.
    ClientIdUsed,
    /// No such message, or it was deleted.
    NoMessage,
    /// The user may not change this message (not its author; for deletes, not an admin
    /// either).
    NotAuthor,
    /// A new emoji on a message that has the most distinct ones already.
    TooManyEmoji,
}

/// What became of one `NewMessage`.
#[derive(Debug, Clone, PartialEq)]
pub enum Stored {
    /// Stored now: the `chat:message` payload.
    New(Value),
    /// The same sender's `clientMsgId` was stored before: its message id.
    Duplicate(String),
    /// Not stored, for this reason.
    Refused(Refusal),
}

/// For each message stored, the outbound event that goes with it (written in the same
/// transaction), if any.
pub type OnStored<'a> = &'a dyn Fn(&Value) -> Option<NewEvent>;

/// Stores a batch of messages in one transaction (group commit) and answers each in order;
/// `on_stored` adds an outbound event per new message in the same transaction.
/// If the batch fails as a whole (a constraint hit by a concurrent writer on another node,
/// say), each message is retried in a transaction of its own so one bad row costs no other.
pub fn store_batch(
    conn: &mut DbConnection,
    batch: &[NewMessage],
    on_stored: OnStored<'_>,
) -> Vec<Result<Stored, DbError>> {
    match write_transaction(conn, |c| {
        let mut seen = BatchState::default();
        batch
            .iter()
            .map(|m| store_one(c, m, &mut seen, on_stored))
            .collect::<Result<Vec<_>, _>>()
    }) {
        Ok(all) => all.into_iter().map(Ok).collect(),
        Err(e) => {
            log::warn!(
                "message batch of {} failed, storing one by one: {e}",
                batch.len()
            );
            batch
                .iter()
                .map(|m| {
                    write_transaction(conn, |c| {
                        store_one(c, m, &mut BatchState::default(), on_stored)
                    })
                    .or_else(|e| match find_duplicate(conn, m) {
                        Ok(Some((id, room))) if room == m.room_id => Ok(Stored::Duplicate(id)),
                        Ok(Some(_)) => Ok(Stored::Refused(Refusal::ClientIdUsed)),
                        _ => Err(e),
                    })
                })
                .collect()
        }
    }
}

/// Look-ups shared by the messages of one batch.
#[derive(Default)]
struct BatchState {
    rooms: HashMap<String, bool>,
    senders: HashMap<String, (String, Option<String>)>,
    /// (sender, clientMsgId) → id and room of the message stored earlier in this batch.
    client_ids: HashMap<(String, String), (String, String)>,
}

fn store_one(
    c: &mut DbConnection,
    m: &NewMessage,
    seen: &mut BatchState,
    on_stored: OnStored<'_>,
) -> Result<Stored, DbError> {
    let exists = match seen.rooms.get(&m.room_id) {
        Some(e) => *e,
        None => {
            let e = rooms::table.find(&m.room_id).count().get_result::<i64>(c)? > 0;
            seen.rooms.insert(m.room_id.clone(), e);
            e
        }
    };
    if !exists {
        return Ok(Stored::Refused(Refusal::UnknownRoom));
    }
    let reply_to = match &m.reply_to_id {
        None => Value::Null,
        Some(r) => match messages::table
            .find(r)
            .select((messages::room_id, messages::text, messages::sender_id))
            .first::<(String, String, String)>(c)
            .optional()?
        {
            Some((room, text, sender)) if room == m.room_id => {
                json!({"id": r, "text": text, "senderId": sender})
            }
            _ => return Ok(Stored::Refused(Refusal::UnknownMessage)),
        },
    };
    if !m.joined {
        return Ok(Stored::Refused(Refusal::NotJoined));
    }
    if let Some(cmid) = &m.client_msg_id {
        let key = (m.sender_id.clone(), cmid.clone());
        let earlier = match seen.client_ids.get(&key) {
            Some(e) => Some(e.clone()),
            None => find_duplicate(c, m)?,
        };
        // scoped to the sender and the room: another room's message is never revealed
        match earlier {
            Some((id, room)) if room == m.room_id => return Ok(Stored::Duplicate(id)),
            Some(_) => return Ok(Stored::Refused(Refusal::ClientIdUsed)),
            None => {}
        }
    }
    let (name, avatar) = match seen.senders.get(&m.sender_id) {
        Some(s) => s.clone(),
        None => {
            let s = users::table
                .find(&m.sender_id)
                .select((users::name, users::avatar_url))
                .first::<(String, Option<String>)>(c)
                .optional()?
                .unwrap_or_else(|| (m.sender_id.clone(), None));
            seen.senders.insert(m.sender_id.clone(), s.clone());
            s
        }
    };
    let row = Message {
        id: uuid::Uuid::now_v7().to_string(),
        room_id: m.room_id.clone(),
        sender_id: m.sender_id.clone(),
        text: m.text.clone(),
        reply_to_id: m.reply_to_id.clone(),
        client_msg_id: m.client_msg_id.clone(),
        created_at: now_ms(),
        edited_at: None,
        deleted_at: None,
    };
    diesel::insert_into(messages::table)
        .values((
            messages::id.eq(&row.id),
            messages::room_id.eq(&row.room_id),
            messages::sender_id.eq(&row.sender_id),
            messages::text.eq(&row.text),
            messages::reply_to_id.eq(&row.reply_to_id),
            messages::client_msg_id.eq(&row.client_msg_id),
            messages::created_at.eq(row.created_at),
        ))
        .execute(c)?;
    if let Some(cmid) = &m.client_msg_id {
        seen.client_ids.insert(
            (m.sender_id.clone(), cmid.clone()),
            (row.id.clone(), row.room_id.clone()),
        );
    }
    let p = payload(&row, &name, avatar.as_deref(), reply_to);
    if let Some(e) = on_stored(&p) {
        super::outbound::enqueue(c, &e)?;
    }
    Ok(Stored::New(p))
}

/// The id and room of the message the sender stored with this `clientMsgId`, if any.
fn find_duplicate(
    c: &mut DbConnection,
    m: &NewMessage,
) -> Result<Option<(String, String)>, DbError> {
    let Some(cmid) = &m.client_msg_id else {
        return Ok(None);
    };
    Ok(messages::table
        .filter(messages::sender_id.eq(&m.sender_id))
        .filter(messages::client_msg_id.eq(cmid))
        .select((messages::id, messages::room_id))
        .first::<(String, String)>(c)
        .optional()?)
}

/// Whether `room` exists and `user` may read it (public or member).
pub fn readable(
    c: &mut DbConnection,
    room: &str,
    user: &str,
) -> Result<Result<(), Refusal>, DbError> {
    let Some(public) = rooms::table
        .find(room)
        .select(rooms::is_public)
        .first::<bool>(c)
        .optional()?
    else {
        return Ok(Err(Refusal::UnknownRoom));
    };
    if !public && !super::rooms::is_member(c, room, user)? {
        return Ok(Err(Refusal::NotMember));
    }
    Ok(Ok(()))
}

/// Whether message `id` exists in `room`.
fn in_room(c: &mut DbConnection, id: &str, room: &str) -> Result<bool, DbError> {
    Ok(messages::table
        .filter(messages::id.eq(id))
        .filter(messages::room_id.eq(room))
        .count()
        .get_result::<i64>(c)?
        > 0)
}

/// `room:sync`: up to `limit` messages after `after` (all from the start without it),
/// oldest first, and whether more follow.
pub fn since(
    c: &mut DbConnection,
    room: &str,
    user: &str,
    after: Option<&str>,
    limit: i64,
) -> Result<Result<(Vec<Value>, bool), Refusal>, DbError> {
    if let Err(r) = readable(c, room, user)? {
        if r == Refusal::UnknownRoom {
            return Ok(Err(r));
        }
        // NOT_FOUND comes before FORBIDDEN: check the message first.
        if after.is_some_and(|a| !matches!(in_room(c, a, room), Ok(true))) {
            return Ok(Err(Refusal::UnknownMessage));
        }
        return Ok(Err(r));
    }
    let mut q = messages::table
        .filter(messages::room_id.eq(room))
        .order(messages::id.asc())
        .limit(limit + 1)
        .select(Message::as_select())
        .into_boxed();
    if let Some(a) = after {
        if !in_room(c, a, room)? {
            return Ok(Err(Refusal::UnknownMessage));
        }
        q = q.filter(messages::id.gt(a.to_owned()));
    }
    let mut rows: Vec<Message> = q.load(c)?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit.max(0) as usize);
    Ok(Ok((shape(c, &rows)?, more)))
}

/// `chat:read`: moves `user`'s read marker in `room` forward to `id`. `Ok(Ok(true))` when it
/// moved (then a receipt goes out), `Ok(Ok(false))` when it was already there or further.
/// Markers live in `read_markers`, apart from membership: reading never makes a member.
/// Each statement is atomic on its own, so two reads at once never fail or move it back.
pub fn mark_read(
    c: &mut DbConnection,
    room: &str,
    user: &str,
    id: &str,
    joined: bool,
    at: i64,
) -> Result<Result<bool, Refusal>, DbError> {
    if rooms::table.find(room).count().get_result::<i64>(c)? == 0 {
        return Ok(Err(Refusal::UnknownRoom));
    }
    if !in_room(c, id, room)? {
        return Ok(Err(Refusal::UnknownMessage));
    }
    if !joined {
        return Ok(Err(Refusal::NotJoined));
    }
    let forward = |c: &mut DbConnection| -> Result<bool, DbError> {
        let n = diesel::update(
            read_markers::table
                .find((room, user))
                .filter(read_markers::last_read_message_id.lt(id)),
        )
        .set((
            read_markers::last_read_message_id.eq(id),
            read_markers::last_read_at.eq(at),
        ))
        .execute(c)?;
        Ok(n > 0)
    };
    if forward(c)? {
        return Ok(Ok(true));
    }
    let inserted = diesel::insert_into(read_markers::table)
        .values((
            read_markers::room_id.eq(room),
            read_markers::user_id.eq(user),
            read_markers::last_read_message_id.eq(id),
            read_markers::last_read_at.eq(at),
        ))
        .execute(c);
    match inserted {
        Ok(_) => Ok(Ok(true)),
        // there is a marker (already this far, or just written by another read)
        Err(e) => {
            super::ignore_duplicate(e)?;
            Ok(Ok(forward(c)?))
        }
    }
}

/// `GET /api/rooms/{id}/messages`: up to `limit` messages, oldest first, and whether more
/// lie beyond the page: before `before` (older ones), after `after` (newer ones), or the
/// latest (older ones). Refused like `room:sync`: unknown room, then an unknown or foreign
/// `before`/`after` (`UnknownMessage`), then a private room without membership.
pub fn page(
    c: &mut DbConnection,
    room: &str,
    user: &str,
    before: Option<&str>,
    after: Option<&str>,
    limit: i64,
) -> Result<Result<(Vec<Value>, bool), Refusal>, DbError> {
    if before.is_none() {
        if after.is_some() {
            return since(c, room, user, after, limit);
        }
        if let Err(r) = readable(c, room, user)? {
            return Ok(Err(r));
        }
        return Ok(Ok(history(c, room, limit)?));
    }
    let before = before.unwrap_or_default();
    let access = readable(c, room, user)?;
    if access == Err(Refusal::UnknownRoom) {
        return Ok(Err(Refusal::UnknownRoom));
    }
    if !in_room(c, before, room)? {
        return Ok(Err(Refusal::UnknownMessage));
    }
    if let Err(r) = access {
        return Ok(Err(r));
    }
    Ok(Ok(newest(c, room, Some(before), limit)?))
}
