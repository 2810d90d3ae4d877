//! Queries on `messages`, shaped as the `chat:message` payload.

use std::collections::HashMap;

use diesel::prelude::*;
use serde_json::{json, Map, Value};

use super::schema::{messages, users};
use super::{DbConnection, DbError};

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
}

/// The last `limit` messages of a room, oldest first, and whether older ones exist.
pub fn history(
    conn: &mut DbConnection,
    room: &str,
    limit: i64,
) -> Result<(Vec<Value>, bool), DbError> {
    let mut rows: Vec<Message> = messages::table
        .filter(messages::room_id.eq(room))
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
    Ok(rows
        .iter()
        .map(|m| {
            let mut sender = Map::new();
            sender.insert("id".into(), json!(m.sender_id));
            let (name, avatar) = senders
                .get(&m.sender_id)
                .cloned()
                .unwrap_or_else(|| (m.sender_id.clone(), None));
            sender.insert("name".into(), json!(name));
            if let Some(a) = avatar {
                sender.insert("avatarUrl".into(), json!(a));
            }
            let reply_to = m
                .reply_to_id
                .as_ref()
                .and_then(|r| {
                    replies
                        .get(r)
                        .map(|(text, s)| json!({"id": r, "text": text, "senderId": s}))
                })
                .unwrap_or(Value::Null);
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
            Value::Object(o)
        })
        .collect())
}
