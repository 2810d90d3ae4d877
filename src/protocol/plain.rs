//! The plain WebSocket protocol of `GET /ws` (docs/events.md, "Plain WebSocket"): text frames
//! of one JSON object `{type, payload?, id?}` each way, and the close codes that say why a
//! connection ended. Pure functions, like the rest of this layer.

use bytes::{BufMut, Bytes, BytesMut};
use serde_json::{Map, Value};

use super::reason::DisconnectReason;

/// The longest string `id` a client may put on a frame.
pub const MAX_ID_CHARS: usize = 64;

/// A client's request for an answer: a non-negative integer or a short string, echoed back
/// as it came.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PlainId {
    /// An integer id.
    Number(u64),
    /// A string id (≤ [`MAX_ID_CHARS`] characters).
    Text(Box<str>),
}

impl PlainId {
    fn to_json(&self) -> Value {
        match self {
            PlainId::Number(n) => Value::from(*n),
            PlainId::Text(s) => Value::from(&**s),
        }
    }
}

/// One decoded client frame.
#[derive(Debug, Clone, PartialEq)]
pub struct Envelope {
    /// The event name (or `auth`, `ack`, `ping`).
    pub kind: String,
    /// The payload (`None` when absent).
    pub payload: Option<Value>,
    /// The id, when the client wants an answer (or answers one of ours).
    pub id: Option<PlainId>,
    /// The payload nests deeper than allowed: the event is refused, the socket kept.
    pub too_deep: bool,
}

/// Why a client frame was not an envelope (close code 1007).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnvelopeError {
    /// Not a JSON object.
    NotAnObject,
    /// No `type`, or not a non-empty string.
    NoType,
    /// `id` is neither a non-negative integer nor a string of at most 64 characters.
    BadId,
}

impl std::fmt::Display for EnvelopeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            EnvelopeError::NotAnObject => "a frame must be one JSON object",
            EnvelopeError::NoType => "a frame needs a non-empty string `type`",
            EnvelopeError::BadId => {
                "`id` must be a non-negative integer or a string of at most 64 characters"
            }
        })
    }
}

/// Decodes a client frame. `max_depth` is how deeply the payload may nest (as a Socket.IO
/// event's arguments); deeper payloads decode with `too_deep` set, up to the JSON parser's own
/// limit (beyond it the frame is not JSON).
pub fn decode(text: &str, max_depth: usize) -> Result<Envelope, EnvelopeError> {
    let too_deep = super::socket::json_depth(text) > max_depth + 1;
    let Ok(Value::Object(mut o)) = serde_json::from_str::<Value>(text) else {
        return Err(EnvelopeError::NotAnObject);
    };
    let kind = match o.remove("type") {
        Some(Value::String(s)) if !s.is_empty() => s,
        _ => return Err(EnvelopeError::NoType),
    };
    let id = match o.remove("id") {
        None | Some(Value::Null) => None,
        Some(Value::Number(n)) => Some(PlainId::Number(n.as_u64().ok_or(EnvelopeError::BadId)?)),
        Some(Value::String(s)) if s.chars().count() <= MAX_ID_CHARS => {
            Some(PlainId::Text(s.into_boxed_str()))
        }
        Some(_) => return Err(EnvelopeError::BadId),
    };
    Ok(Envelope {
        kind,
        payload: o.remove("payload"),
        id,
        too_deep,
    })
}

fn frame(kind: &str, payload: Option<&Value>, id: Option<&Value>) -> Bytes {
    let mut out = BytesMut::with_capacity(32 + kind.len());
    out.put_slice(b"{\"type\":");
    json_into(&mut out, &kind);
    if let Some(p) = payload {
        out.put_slice(b",\"payload\":");
        json_into(&mut out, p);
    }
    if let Some(id) = id {
        out.put_slice(b",\"id\":");
        json_into(&mut out, id);
    }
    out.put_u8(b'}');
    out.freeze()
}

fn json_into(out: &mut BytesMut, v: &impl serde::Serialize) {
    let mut w = out.writer();
    // Serializing a `Value` or a string to memory cannot fail.
    let _ = serde_json::to_writer(&mut w, v);
}

/// A server event: `{type, payload}` with its one argument; `ack` (a string, the server's
/// ack number) when the client must answer `{type:"ack", id}`.
pub fn encode_event(event: &str, args: &[Value], ack: Option<u64>) -> Bytes {
    let id = ack.map(|n| Value::String(n.to_string()));
    frame(event, args.first(), id.as_ref())
}

/// The answer to a client's frame with `id`: `{type:"ack", id, payload}`.
pub fn encode_ack(id: &PlainId, args: &[Value]) -> Bytes {
    frame("ack", args.first(), Some(&id.to_json()))
}

/// A frame of the server's own (`auth:ok`, `pong`, `error`).
pub fn encode(kind: &str, payload: Option<&Value>) -> Bytes {
    frame(kind, payload, None)
}

/// `{type:"error", payload:{message, code}}`.
pub fn encode_error(code: &str, message: &str) -> Bytes {
    let mut p = Map::new();
    p.insert("message".into(), Value::from(message));
    p.insert("code".into(), Value::from(code));
    frame("error", Some(&Value::Object(p)), None)
}

/// A close code and its name (the close frame's reason text).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Close {
    /// The WebSocket close code.
    pub code: u16,
    /// Its name, sent as the reason.
    pub name: &'static str,
}

impl Close {
    /// 1000: the client closed, or the server ended the connection normally.
    pub const NORMAL: Close = Close::new(1000, "NORMAL");
    /// 1001: the server drains or shuts down; clients reconnect (to another node).
    pub const GOING_AWAY: Close = Close::new(1001, "GOING_AWAY");
    /// 1002: a WebSocket framing error.
    pub const PROTOCOL_ERROR: Close = Close::new(1002, "PROTOCOL_ERROR");
    /// 1003: a binary frame.
    pub const UNSUPPORTED_DATA: Close = Close::new(1003, "UNSUPPORTED_DATA");
    /// 1007: a frame that is not one JSON object with a `type`.
    pub const INVALID_PAYLOAD: Close = Close::new(1007, "INVALID_PAYLOAD");
    /// 1009: a frame over `engine.max_payload`.
    pub const MESSAGE_TOO_BIG: Close = Close::new(1009, "MESSAGE_TOO_BIG");
    /// 1011: the server failed.
    pub const INTERNAL: Close = Close::new(1011, "INTERNAL");
    /// 4000: the connection did not read what was sent to it (`limits.max_queued_bytes`).
    pub const SLOW_CONSUMER: Close = Close::new(4000, "SLOW_CONSUMER");
    /// 4401: no token in time.
    pub const AUTH_REQUIRED: Close = Close::new(4401, "AUTH_REQUIRED");
    /// 4403: the user was disabled or disconnected by an admin.
    pub const FORBIDDEN: Close = Close::new(4403, "FORBIDDEN");
    /// 4408: no pong within `engine.ping_timeout_ms` of a ping.
    pub const PING_TIMEOUT: Close = Close::new(4408, "PING_TIMEOUT");
    /// 4429: over the event rate limit for too long.
    pub const RATE_LIMITED: Close = Close::new(4429, "RATE_LIMITED");

    const fn new(code: u16, name: &'static str) -> Close {
        Close { code, name }
    }

    /// The close for an engine-level end of the connection.
    pub fn for_reason(why: DisconnectReason) -> Close {
        match why {
            DisconnectReason::TransportClose
            | DisconnectReason::ClientNamespaceDisconnect
            | DisconnectReason::ForcedServerClose => Close::NORMAL,
            DisconnectReason::ServerShuttingDown => Close::GOING_AWAY,
            DisconnectReason::PingTimeout => Close::PING_TIMEOUT,
            DisconnectReason::ParseError => Close::INVALID_PAYLOAD,
            DisconnectReason::TransportError => Close::PROTOCOL_ERROR,
            DisconnectReason::ForcedClose => Close::AUTH_REQUIRED,
            DisconnectReason::ServerNamespaceDisconnect => Close::FORBIDDEN,
        }
    }

    /// The close for an application error code (a refused connect, a socket sent away):
    /// the authentication codes close 4401 with the code as the reason.
    pub fn for_code(code: &str) -> Close {
        match code {
            "AUTH_REQUIRED" => Close::AUTH_REQUIRED,
            "TOKEN_INVALID" => Close::new(4401, "TOKEN_INVALID"),
            "TOKEN_EXPIRED" => Close::new(4401, "TOKEN_EXPIRED"),
            "ACCOUNT_DISABLED" => Close::new(4401, "ACCOUNT_DISABLED"),
            "FORBIDDEN" => Close::FORBIDDEN,
            "RATE_LIMITED" => Close::RATE_LIMITED,
            "INTERNAL" => Close::INTERNAL,
            _ => Close::new(4401, "AUTH_REQUIRED"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn decodes_the_envelope() {
        let e = decode(r#"{"type":"chat:send","payload":{"a":1},"id":7}"#, 32).unwrap();
        assert_eq!(e.kind, "chat:send");
        assert_eq!(e.payload, Some(json!({"a":1})));
        assert_eq!(e.id, Some(PlainId::Number(7)));
        assert!(!e.too_deep);
        let e = decode(r#"{"type":"x","id":"abc"}"#, 32).unwrap();
        assert_eq!(e.id, Some(PlainId::Text("abc".into())));
        assert_eq!(e.payload, None);
    }

    #[test]
    fn refuses_what_is_not_an_envelope() {
        assert_eq!(decode("[1]", 32), Err(EnvelopeError::NotAnObject));
        assert_eq!(decode("nope", 32), Err(EnvelopeError::NotAnObject));
        assert_eq!(decode(r#"{"payload":1}"#, 32), Err(EnvelopeError::NoType));
        assert_eq!(decode(r#"{"type":""}"#, 32), Err(EnvelopeError::NoType));
        assert_eq!(decode(r#"{"type":3}"#, 32), Err(EnvelopeError::NoType));
        assert_eq!(
            decode(r#"{"type":"x","id":-1}"#, 32),
            Err(EnvelopeError::BadId)
        );
        assert_eq!(
            decode(r#"{"type":"x","id":1.5}"#, 32),
            Err(EnvelopeError::BadId)
        );
        let long = format!(r#"{{"type":"x","id":"{}"}}"#, "a".repeat(65));
        assert_eq!(decode(&long, 32), Err(EnvelopeError::BadId));
    }

    #[test]
    fn marks_deep_payloads() {
        let deep = format!(
            r#"{{"type":"x","payload":{}1{}}}"#,
            "[".repeat(5),
            "]".repeat(5)
        );
        assert!(decode(&deep, 4).unwrap().too_deep);
        assert!(!decode(&deep, 5).unwrap().too_deep);
    }

    #[test]
    fn encodes_frames() {
        let f = encode_event("chat:message", &[json!({"id":"m1"}), json!("offset")], None);
        assert_eq!(&f[..], br#"{"type":"chat:message","payload":{"id":"m1"}}"#);
        let f = encode_event("chat:direct", &[json!(1)], Some(4));
        assert_eq!(&f[..], br#"{"type":"chat:direct","payload":1,"id":"4"}"#);
        let f = encode_ack(&PlainId::Text("q".into()), &[json!({"success":true})]);
        assert_eq!(
            &f[..],
            br#"{"type":"ack","payload":{"success":true},"id":"q"}"#
        );
        assert_eq!(&encode("pong", None)[..], br#"{"type":"pong"}"#);
    }

    #[test]
    fn names_its_close_codes() {
        assert_eq!(
            Close::for_code("TOKEN_EXPIRED"),
            Close {
                code: 4401,
                name: "TOKEN_EXPIRED"
            }
        );
        assert_eq!(Close::for_code("FORBIDDEN").code, 4403);
        assert_eq!(Close::for_reason(DisconnectReason::PingTimeout).code, 4408);
        assert_eq!(
            Close::for_reason(DisconnectReason::ServerShuttingDown).code,
            1001
        );
    }
}
