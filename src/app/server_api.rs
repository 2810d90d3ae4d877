//! The server API (docs/http.md, "Server API"): what a backend asks of the clients through
//! signed `/internal/` calls. Emit an event of its own to users, rooms, a namespace or every
//! admin; post a chat message as a user; disconnect a user; read presence, a room's online
//! users and the cluster's figures. Every node delivers to its own sockets, `/ws`
//! connections and event streams. `http::server_api` is the HTTP shape around it.

use std::collections::HashSet;

use serde_json::{json, Map, Value};

use super::api::Api;
use super::error::{AppError, Code};
use super::events;
use super::names::{self, chat_room, notifications_room, user_room};
use super::payload::MAX_ID;
use crate::db::messages::{NewMessage, Refusal};
use crate::db::{rooms, users};
use crate::socketio::IoHandle;

/// Largest `data` of an emit, encoded.
pub const MAX_DATA: usize = 64 * 1024;
/// Most user and room ids one emit lists.
pub const MAX_TARGETS: usize = 1000;
/// Most users `GET /internal/rooms/{id}/online` names.
pub const MAX_ONLINE: usize = 500;
/// The socket command that carries an emit to a user's event streams (`Watched::Command`).
pub const SSE_EMIT: &str = "sse:emit";

/// A checked `POST /internal/emit`.
#[derive(Debug)]
pub struct Emit {
    event: String,
    data: Value,
    namespace: &'static str,
    users: Vec<String>,
    rooms: Vec<String>,
    /// `to` named users or rooms (possibly none): only they are reached. Otherwise the whole
    /// namespace is.
    listed: bool,
}

/// Whether `name` may be emitted by a backend: `^[a-z][a-z0-9_.:-]{0,63}$` and not a name
/// the server defines or Socket.IO reserves (docs/http.md lists them).
pub fn custom_event_name(name: &str) -> bool {
    let b = name.as_bytes();
    let shaped = (1..=64).contains(&b.len())
        && b[0].is_ascii_lowercase()
        && b[1..].iter().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, b'_' | b'.' | b':' | b'-')
        });
    shaped && !reserved(name)
}

/// A name the server defines or Socket.IO reserves.
fn reserved(name: &str) -> bool {
    events::RESERVED.contains(&name) || crate::protocol::socket::RESERVED_EVENTS.contains(&name)
}

/// A list of ids under `key` of `to` (absent: none), each a non-empty string of at most
/// `MAX_ID` bytes, duplicates dropped.
fn ids(to: &Map<String, Value>, key: &str) -> Result<Vec<String>, AppError> {
    let list = match to.get(key) {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(a)) => a,
        Some(_) => {
            return Err(AppError::invalid(format!(
                "to.{key} must be an array of ids"
            )))
        }
    };
    if list.len() > MAX_TARGETS {
        return Err(AppError::invalid(format!(
            "to.users and to.rooms hold at most {MAX_TARGETS} ids in all"
        )));
    }
    let mut seen = HashSet::new();
    let mut out = Vec::with_capacity(list.len());
    for v in list {
        match v {
            Value::String(s) if !s.is_empty() && s.len() <= MAX_ID => {
                if seen.insert(s.as_str()) {
                    out.push(s.clone());
                }
            }
            _ => {
                return Err(AppError::invalid(format!(
                    "to.{key} holds ids: non-empty strings of at most {MAX_ID} bytes"
                )))
            }
        }
    }
    Ok(out)
}

impl Emit {
    /// Checks the body of `POST /internal/emit {event, data, to:{users?, rooms?}, namespace?}`.
    pub fn parse(body: &[u8]) -> Result<Emit, AppError> {
        let o = match serde_json::from_slice::<Value>(body) {
            Ok(Value::Object(o)) => o,
            Ok(_) => return Err(AppError::invalid("body must be a JSON object")),
            Err(e) => return Err(AppError::invalid(format!("invalid JSON body: {e}"))),
        };
        let event = match o.get("event") {
            Some(Value::String(e)) if custom_event_name(e) => e.clone(),
            Some(Value::String(e)) if reserved(e) => {
                return Err(AppError::invalid(format!(
                    "event {e} is reserved: the server or Socket.IO defines it"
                )))
            }
            Some(Value::String(_)) => {
                return Err(AppError::invalid(
                    "event must match ^[a-z][a-z0-9_.:-]{0,63}$",
                ))
            }
            _ => return Err(AppError::invalid("event (string) is required")),
        };
        let data = o.get("data").cloned().unwrap_or(Value::Null);
        let size = serde_json::to_vec(&data).map_or(usize::MAX, |v| v.len());
        if size > MAX_DATA {
            return Err(AppError::invalid(format!(
                "data is {size} bytes encoded; at most {MAX_DATA}"
            )));
        }
        let namespace = match o.get("namespace") {
            None | Some(Value::Null) => names::CHAT,
            Some(Value::String(n)) => match names::ALL.iter().find(|a| **a == n) {
                Some(n) => *n,
                None => {
                    return Err(AppError::invalid(
                        "namespace must be \"/\", \"/notifications\" or \"/admin\"",
                    ))
                }
            },
            Some(_) => return Err(AppError::invalid("namespace must be a string")),
        };
        let (users, rooms, listed) = match o.get("to") {
            None | Some(Value::Null) => (Vec::new(), Vec::new(), false),
            Some(Value::Object(to)) => {
                if let Some(k) = to.keys().find(|k| *k != "users" && *k != "rooms") {
                    return Err(AppError::invalid(format!(
                        "to has users and rooms, not {k}"
                    )));
                }
                // an empty list reaches nobody (never everyone: a backend's empty
                // selection must not turn into a broadcast)
                let listed = ["users", "rooms"]
                    .iter()
                    .any(|k| !matches!(to.get(*k), None | Some(Value::Null)));
                (ids(to, "users")?, ids(to, "rooms")?, listed)
            }
            Some(_) => return Err(AppError::invalid("to must be {users?, rooms?}")),
        };
        if users.len() + rooms.len() > MAX_TARGETS {
            return Err(AppError::invalid(format!(
                "to.users and to.rooms hold at most {MAX_TARGETS} ids in all"
            )));
        }
        if namespace == names::ADMIN && listed {
            return Err(AppError::invalid(
                "an emit to /admin reaches every admin socket: leave to empty",
            ));
        }
        Ok(Emit {
            event,
            data,
            namespace,
            users,
            rooms,
            listed,
        })
    }

    /// Delivers it on every node: once to each targeted socket (a socket in several of the
    /// listed rooms included), and, for listed users, to their event streams.
    pub fn deliver(self, io: &IoHandle) {
        let Emit {
            event,
            data,
            namespace,
            users,
            rooms,
            listed,
        } = self;
        if listed && users.is_empty() && rooms.is_empty() {
            return;
        }
        let user_rooms: Vec<String> = users
            .iter()
            .map(|u| {
                if namespace == names::NOTIFICATIONS {
                    notifications_room(u)
                } else {
                    user_room(u)
                }
            })
            .collect();
        // no rooms at all: the whole namespace
        let mut op = io.of(namespace);
        for room in user_rooms
            .iter()
            .cloned()
            .chain(rooms.iter().map(|r| chat_room(r)))
        {
            op = op.to(&room);
        }
        op.emit(&event, std::slice::from_ref(&data));
        if !users.is_empty() {
            let mut streams = io.of(names::CHAT);
            for u in &users {
                streams = streams.to(&user_room(u));
            }
            streams.command(SSE_EMIT, json!({"event": event, "data": data}));
        }
    }
}

/// `GET /internal/rooms/{id}/online`: who of room `room` is online now (at most 500), on
/// every node; 404 for an unknown room.
pub async fn room_online(api: &Api, io: &IoHandle, room: String) -> Result<Value, AppError> {
    let chat = api.chat();
    let r = room.clone();
    let found = chat
        .db
        .run(move |c| {
            let Some(found) = rooms::find(c, &r)? else {
                return Ok(None);
            };
            let members = if found.is_public {
                None
            } else {
                Some(rooms::members(c, &r)?)
            };
            Ok(Some(members))
        })
        .await?;
    let Some(members) = found else {
        return Err(Refusal::UnknownRoom.into());
    };
    let online = chat
        .presence
        .online_in(io, &room, members, MAX_ONLINE)
        .await;
    Ok(json!({ "online": online }))
}

/// `POST /internal/rooms/{id}/messages {senderId, text, replyToId?, clientMsgId?}`: a chat
/// message by `senderId` as `chat:send` stores and broadcasts it; the sender must exist (404)
/// and be active (403), need not be connected or a member.
pub async fn post_message(
    api: &Api,
    io: &IoHandle,
    room: String,
    body: &[u8],
) -> Result<Value, AppError> {
    let o = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(o)) => o,
        Ok(_) => {
            return Err(AppError::invalid(
                "expected {senderId, text, replyToId?, clientMsgId?}",
            ))
        }
        Err(e) => return Err(AppError::invalid(format!("invalid JSON body: {e}"))),
    };
    let sender = super::payload::id(&o, "senderId")?.to_owned();
    let chat = api.chat();
    let msg: NewMessage = super::api::new_message(&o, &room, &sender, chat.cfg.max_chars)?;
    let s = sender.clone();
    match chat.db.run(move |c| users::find(c, &s)).await? {
        None => return Err(AppError::not_found(format!("unknown user {sender}"))),
        Some(u) if !u.is_active => {
            return Err(AppError::refused(
                Code::Forbidden,
                format!("user {sender} is disabled"),
            ))
        }
        Some(_) => {}
    }
    super::api::store(chat, &room, msg, io).await
}

/// `POST /internal/users/{id}/disconnect`: every socket of the user in every namespace
/// (`io server disconnect`; `/ws` closes 4403) and every event stream ends, on every node.
pub fn disconnect_user(io: &IoHandle, user: &str) {
    super::live::end_user(io, user);
    log::info!("backend disconnected user={user}");
}

/// `GET /internal/stats`: the `admin:stats` answer.
pub async fn stats(io: &IoHandle) -> Value {
    super::admin::figures(io).await
}

/// `GET /internal/presence?userIds=a,b`: each user's status as `presence:subscribe` answers
/// it (1 to 500 distinct known ids; `NOT_FOUND` names an unknown one).
pub async fn presence(api: &Api, io: &IoHandle, user_ids: Option<&str>) -> Result<Value, AppError> {
    let raw = user_ids
        .filter(|s| !s.is_empty())
        .ok_or_else(|| AppError::invalid("userIds (ids separated by commas) is required"))?;
    let ids = super::status::distinct_ids(raw.split(',').map(Some))?;
    let chat = api.chat();
    let known = super::status::known_users(&chat.db, &ids).await?;
    let statuses = super::status::status_list(&chat.db, &chat.presence, io, &ids, known).await;
    Ok(json!({ "statuses": statuses }))
}
