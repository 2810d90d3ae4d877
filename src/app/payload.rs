//! Reading client payloads: the shape checks every event shares (`INVALID_PAYLOAD`) and the
//! text rule of messages and DMs (`INVALID_MESSAGE`).

use serde_json::{Map, Value};

use super::reply::Code;
use crate::socketio::Event;

/// Longest id a client may send (room, message, user, product, clientMsgId).
const MAX_ID: usize = 256;

/// A refused payload: its code and message.
pub type Bad = (Code, String);

fn bad(message: impl Into<String>) -> Bad {
    (Code::InvalidPayload, message.into())
}

/// The event's first argument as an object.
pub fn object(ev: &Event) -> Result<&Map<String, Value>, Bad> {
    match ev.args.first() {
        Some(Value::Object(o)) => Ok(o),
        _ => Err(bad("payload must be an object")),
    }
}

/// A required id: a non-empty string of at most 256 bytes.
pub fn id<'a>(o: &'a Map<String, Value>, key: &str) -> Result<&'a str, Bad> {
    opt_id(o, key)?.ok_or_else(|| bad(format!("{key} (string) is required")))
}

/// An optional id: absent or null is `None`; anything but a non-empty string is refused.
pub fn opt_id<'a>(o: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>, Bad> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.is_empty() && s.len() <= MAX_ID => Ok(Some(s)),
        Some(Value::String(s)) if s.len() > MAX_ID => {
            Err(bad(format!("{key} is longer than {MAX_ID} bytes")))
        }
        Some(_) => Err(bad(format!("{key} must be a non-empty string"))),
    }
}

/// Message text: a string, trimmed, 1..=`max` Unicode scalar values.
pub fn text(o: &Map<String, Value>, key: &str, max: usize) -> Result<String, Bad> {
    let Some(Value::String(raw)) = o.get(key) else {
        return Err(bad(format!("{key} (string) is required")));
    };
    let t = raw.trim();
    if t.is_empty() {
        return Err((Code::InvalidMessage, format!("{key} is empty")));
    }
    // Count at most max+1 characters: a huge text costs no more than a legal one.
    if t.chars().take(max + 1).count() > max {
        return Err((
            Code::InvalidMessage,
            format!("{key} is longer than {max} characters"),
        ));
    }
    Ok(t.to_owned())
}
