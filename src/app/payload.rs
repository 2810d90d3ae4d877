//! Reading client payloads: the shape checks every event shares (`INVALID_PAYLOAD`) and the
//! text rule of messages and DMs (`INVALID_MESSAGE`). Pure.

use serde_json::{Map, Value};

use super::error::{AppError, Code};
use crate::socketio::Event;

/// Longest id a client may send (room, message, user, product, clientMsgId).
pub const MAX_ID: usize = 256;

/// The event's first argument as an object.
pub fn object(ev: &Event) -> Result<&Map<String, Value>, AppError> {
    match ev.args.first() {
        Some(Value::Object(o)) => Ok(o),
        _ => Err(AppError::invalid("payload must be an object")),
    }
}

/// A required id: a non-empty string of at most 256 bytes.
pub fn id<'a>(o: &'a Map<String, Value>, key: &str) -> Result<&'a str, AppError> {
    opt_id(o, key)?.ok_or_else(|| AppError::invalid(format!("{key} (string) is required")))
}

/// An optional id: absent or null is `None`; anything but a non-empty string is refused.
pub fn opt_id<'a>(o: &'a Map<String, Value>, key: &str) -> Result<Option<&'a str>, AppError> {
    match o.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.is_empty() && s.len() <= MAX_ID => Ok(Some(s)),
        Some(Value::String(s)) if s.len() > MAX_ID => Err(AppError::invalid(format!(
            "{key} is longer than {MAX_ID} bytes"
        ))),
        Some(_) => Err(AppError::invalid(format!(
            "{key} must be a non-empty string"
        ))),
    }
}

/// Message text: a string, trimmed, 1..=`max` Unicode scalar values.
pub fn text(o: &Map<String, Value>, key: &str, max: usize) -> Result<String, AppError> {
    let Some(Value::String(raw)) = o.get(key) else {
        return Err(AppError::invalid(format!("{key} (string) is required")));
    };
    let t = raw.trim();
    if t.is_empty() {
        return Err(AppError::refused(
            Code::InvalidMessage,
            format!("{key} is empty"),
        ));
    }
    // Count at most max+1 characters: a huge text costs no more than a legal one.
    if t.chars().take(max + 1).count() > max {
        return Err(AppError::refused(
            Code::InvalidMessage,
            format!("{key} is longer than {max} characters"),
        ));
    }
    Ok(t.to_owned())
}

/// `roomId` or `{roomId}` (the two forms `room:join` / `room:leave` accept).
pub fn room_id(ev: &Event) -> Result<String, AppError> {
    let room = match ev.args.first() {
        Some(Value::String(s)) => Some(s.as_str()),
        Some(Value::Object(o)) => o.get("roomId").and_then(Value::as_str),
        _ => None,
    };
    match room {
        Some(r) if !r.is_empty() && r.len() <= MAX_ID => Ok(r.to_owned()),
        _ => Err(AppError::invalid("roomId (string) is required")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ev(arg: Value) -> Event {
        Event {
            name: "x".into(),
            args: vec![arg],
            binary: Vec::new(),
            ack: None,
        }
    }

    fn code<T>(r: Result<T, AppError>) -> Option<Code> {
        r.err().map(|e| e.code())
    }

    #[test]
    fn shapes_are_checked_before_text_rules() {
        assert_eq!(code(object(&ev(json!("nope")))), Some(Code::InvalidPayload));
        let o = json!({"roomId": "", "n": 5, "t": "   ", "long": "é".repeat(3)});
        let o = o.as_object().expect("object");
        assert_eq!(code(id(o, "roomId")), Some(Code::InvalidPayload));
        assert_eq!(code(id(o, "missing")), Some(Code::InvalidPayload));
        assert_eq!(code(opt_id(o, "n")), Some(Code::InvalidPayload));
        assert_eq!(opt_id(o, "missing").ok(), Some(None));
        assert_eq!(code(text(o, "n", 10)), Some(Code::InvalidPayload));
        assert_eq!(code(text(o, "t", 10)), Some(Code::InvalidMessage));
        assert_eq!(code(text(o, "long", 2)), Some(Code::InvalidMessage));
        assert_eq!(text(o, "long", 3).ok().as_deref(), Some("ééé"));
    }

    #[test]
    fn room_ids_come_in_two_forms() {
        assert_eq!(room_id(&ev(json!("lobby"))).ok().as_deref(), Some("lobby"));
        assert_eq!(
            room_id(&ev(json!({"roomId": "lobby"}))).ok().as_deref(),
            Some("lobby")
        );
        assert_eq!(code(room_id(&ev(json!(5)))), Some(Code::InvalidPayload));
        assert_eq!(code(room_id(&ev(json!("")))), Some(Code::InvalidPayload));
    }
}
