//! Socket.IO v5 packets: `<type>[<attachments>-][<nsp>,][<ack id>][JSON]`.
//!
//! Decoding follows the reference parser's rules (packet types 0-6, payload shape per type,
//! reserved event names refused); binary packets are reassembled from the binary messages
//! that follow them by [`Reassembler`]. Binary arguments stay *deconstructed*: the JSON keeps
//! its `{"_placeholder":true,"num":N}` objects and the buffers travel beside it, so a binary
//! event can be re-emitted without rebuilding anything.
//! Pure: no I/O, no actix.

use bytes::{BufMut, Bytes, BytesMut};
use serde_json::Value;

use super::engine::{kind as eio, Frame};
use super::DecodeError;

/// Upper bound on attachments announced by one packet.
pub const MAX_ATTACHMENTS: usize = 10_000;

/// Event names a client may not emit.
pub const RESERVED_EVENTS: [&str; 6] = [
    "connect",
    "connect_error",
    "disconnect",
    "disconnecting",
    "newListener",
    "removeListener",
];

/// Socket.IO packet types (the protocol document's names and numbers).
#[allow(missing_docs)]
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PacketKind {
    Connect = 0,
    Disconnect = 1,
    Event = 2,
    Ack = 3,
    ConnectError = 4,
    BinaryEvent = 5,
    BinaryAck = 6,
}

impl PacketKind {
    fn from_char(c: char) -> Result<PacketKind, DecodeError> {
        Ok(match c {
            '0' => PacketKind::Connect,
            '1' => PacketKind::Disconnect,
            '2' => PacketKind::Event,
            '3' => PacketKind::Ack,
            '4' => PacketKind::ConnectError,
            '5' => PacketKind::BinaryEvent,
            '6' => PacketKind::BinaryAck,
            other => return Err(DecodeError::UnknownSocketType(other)),
        })
    }

    fn digit(self) -> u8 {
        b'0' + self as u8
    }

    fn is_binary(self) -> bool {
        matches!(self, PacketKind::BinaryEvent | PacketKind::BinaryAck)
    }
}

/// A decoded Socket.IO packet. `data` keeps placeholders for binary attachments.
#[derive(Debug, Clone, PartialEq)]
pub struct Packet {
    /// Its type.
    pub kind: PacketKind,
    /// Its namespace (`/` when absent).
    pub nsp: String,
    /// The ack id, if any.
    pub id: Option<u64>,
    /// The JSON data, if any.
    pub data: Option<Value>,
    /// How many binary attachments follow.
    pub attachments: usize,
}

/// How deep an event's arguments may nest by default (docs/configuration.md).
pub const MAX_DEPTH: usize = 64;

/// The deepest nesting of arrays and objects in a JSON text, read without parsing it (so
/// a hostile depth costs one pass, not the parser's recursion).
pub fn json_depth(s: &str) -> usize {
    let (mut depth, mut max, mut in_string, mut escaped) = (0usize, 0usize, false, false);
    for b in s.bytes() {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                max = max.max(depth);
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    max
}

/// Decodes the text of one Socket.IO packet (the data of an Engine.IO message), with the
/// default nesting limit.
pub fn decode(s: &str) -> Result<Packet, DecodeError> {
    decode_with(s, MAX_DEPTH)
}

/// Decodes one packet whose arguments may nest `max_depth` levels (the array that holds
/// an event's name and arguments is not counted).
pub fn decode_with(s: &str, max_depth: usize) -> Result<Packet, DecodeError> {
    let mut rest = s;
    let first = rest.chars().next().ok_or(DecodeError::Empty)?;
    let kind = PacketKind::from_char(first)?;
    rest = &rest[1..];

    let mut attachments = 0usize;
    if kind.is_binary() {
        let dash = rest.find('-').ok_or(DecodeError::IllegalAttachments)?;
        let num = &rest[..dash];
        if num.is_empty() || !num.bytes().all(|b| b.is_ascii_digit()) {
            return Err(DecodeError::IllegalAttachments);
        }
        attachments = num.parse().map_err(|_| DecodeError::TooManyAttachments)?;
        if attachments > MAX_ATTACHMENTS {
            return Err(DecodeError::TooManyAttachments);
        }
        rest = &rest[dash + 1..];
    }

    let mut nsp = String::from("/");
    if rest.starts_with('/') {
        match rest.find(',') {
            Some(comma) => {
                nsp = rest[..comma].to_owned();
                rest = &rest[comma + 1..];
            }
            None => {
                nsp = rest.to_owned();
                rest = "";
            }
        }
    }

    let digits = rest.bytes().take_while(u8::is_ascii_digit).count();
    let id = if digits > 0 {
        let id = rest[..digits]
            .parse::<u64>()
            .map_err(|_| DecodeError::InvalidAckId)?;
        rest = &rest[digits..];
        Some(id)
    } else {
        None
    };

    if json_depth(rest) > max_depth + 1 {
        return Err(DecodeError::TooDeep {
            kind,
            nsp,
            id,
            attachments,
        });
    }
    let data = if rest.is_empty() {
        None
    } else {
        let v: Value = serde_json::from_str(rest).map_err(|e| DecodeError::Json(e.to_string()))?;
        Some(v)
    };

    if !payload_valid(kind, data.as_ref()) {
        return Err(DecodeError::InvalidPayload);
    }
    Ok(Packet {
        kind,
        nsp,
        id,
        data,
        attachments,
    })
}

fn payload_valid(kind: PacketKind, data: Option<&Value>) -> bool {
    match kind {
        PacketKind::Connect => matches!(data, None | Some(Value::Object(_))),
        PacketKind::Disconnect => data.is_none(),
        PacketKind::ConnectError => matches!(data, Some(Value::String(_) | Value::Object(_))),
        PacketKind::Event | PacketKind::BinaryEvent => match data {
            Some(Value::Array(a)) => match a.first() {
                Some(Value::Number(_)) => true,
                Some(Value::String(name)) => !RESERVED_EVENTS.contains(&name.as_str()),
                _ => false,
            },
            _ => false,
        },
        PacketKind::Ack | PacketKind::BinaryAck => matches!(data, Some(Value::Array(_))),
    }
}

/// Checks that every placeholder in `v` points at one of `count` attachments.
pub fn placeholders_valid(v: &Value, count: usize) -> bool {
    match v {
        Value::Array(a) => a.iter().all(|x| placeholders_valid(x, count)),
        Value::Object(o) => {
            if o.get("_placeholder") == Some(&Value::Bool(true)) {
                return match o.get("num").and_then(Value::as_u64) {
                    Some(n) => (n as usize) < count,
                    None => false,
                };
            }
            o.values().all(|x| placeholders_valid(x, count))
        }
        _ => true,
    }
}

/// The JSON placeholder for attachment `num`.
pub fn placeholder(num: usize) -> Value {
    let mut m = serde_json::Map::new();
    m.insert("_placeholder".into(), Value::Bool(true));
    m.insert("num".into(), Value::from(num));
    Value::Object(m)
}

/// A packet with its binary attachments gathered.
#[derive(Debug, Clone, PartialEq)]
pub struct Complete {
    /// The packet.
    pub packet: Packet,
    /// Its attachments, in order.
    pub attachments: Vec<Bytes>,
}

/// Gathers a binary packet and the binary messages that follow it, within limits on how
/// many attachments one packet has and how many bytes they hold together.
#[derive(Debug)]
pub struct Reassembler {
    pending: Option<Complete>,
    /// A binary packet refused for its nesting: its attachments still to come are read and
    /// dropped (within the same limits), then the refusal is reported.
    skipping: Option<(usize, DecodeError)>,
    /// Bytes of the pending packet's attachments so far.
    bytes: usize,
    max_attachments: usize,
    max_bytes: usize,
    max_depth: usize,
}

/// The defaults (docs/configuration.md): 10 attachments, 1 MB in all, 64 levels of JSON.
impl Default for Reassembler {
    fn default() -> Self {
        Reassembler::new(10, 1_000_000, MAX_DEPTH)
    }
}

impl Reassembler {
    /// A reassembler allowing `max_attachments` per packet, `max_bytes` in all, and
    /// arguments nested `max_depth` levels.
    pub fn new(max_attachments: usize, max_bytes: usize, max_depth: usize) -> Self {
        Reassembler {
            pending: None,
            skipping: None,
            bytes: 0,
            max_attachments,
            max_bytes,
            max_depth,
        }
    }

    /// The namespace of the packet whose attachments are awaited.
    pub fn waiting_nsp(&self) -> Option<&str> {
        if let Some((_, DecodeError::TooDeep { nsp, .. })) = &self.skipping {
            return Some(nsp);
        }
        self.pending.as_ref().map(|p| p.packet.nsp.as_str())
    }

    /// True while binary attachments are awaited.
    pub fn is_waiting(&self) -> bool {
        self.pending.is_some() || self.skipping.is_some()
    }

    /// Feeds a text message. A binary packet with attachments returns `None` until they came.
    pub fn push_text(&mut self, s: &str) -> Result<Option<Complete>, DecodeError> {
        if self.pending.is_some() || self.skipping.is_some() {
            self.pending = None;
            self.skipping = None;
            return Err(DecodeError::IllegalAttachments);
        }
        let packet = match decode_with(s, self.max_depth) {
            Ok(p) => p,
            Err(e @ DecodeError::TooDeep { attachments, .. }) if attachments > 0 => {
                // refused once its attachments are in (and only if they are within bounds)
                if attachments > self.max_attachments {
                    return Err(DecodeError::TooManyAttachments);
                }
                self.bytes = 0;
                self.skipping = Some((attachments, e));
                return Ok(None);
            }
            Err(e) => return Err(e),
        };
        if packet.attachments > self.max_attachments {
            return Err(DecodeError::TooManyAttachments);
        }
        if packet.attachments > 0 {
            self.bytes = 0;
            self.pending = Some(Complete {
                attachments: Vec::with_capacity(packet.attachments.min(16)),
                packet,
            });
            return Ok(None);
        }
        Ok(Some(Complete {
            packet,
            attachments: Vec::new(),
        }))
    }

    /// Feeds a binary message.
    pub fn push_binary(&mut self, b: Bytes) -> Result<Option<Complete>, DecodeError> {
        if let Some((left, _)) = self.skipping.as_mut() {
            self.bytes += b.len();
            if self.bytes > self.max_bytes {
                self.skipping = None;
                return Err(DecodeError::AttachmentsTooLarge);
            }
            *left -= 1;
            if *left > 0 {
                return Ok(None);
            }
            let refused = self.skipping.take().map(|(_, e)| e);
            return Err(refused.unwrap_or(DecodeError::UnexpectedBinary));
        }
        let Some(p) = self.pending.as_mut() else {
            return Err(DecodeError::UnexpectedBinary);
        };
        self.bytes += b.len();
        if self.bytes > self.max_bytes {
            self.pending = None;
            return Err(DecodeError::AttachmentsTooLarge);
        }
        p.attachments.push(b);
        if p.attachments.len() < p.packet.attachments {
            return Ok(None);
        }
        let done = self.pending.take().ok_or(DecodeError::UnexpectedBinary)?;
        let valid = done
            .packet
            .data
            .as_ref()
            .is_none_or(|d| placeholders_valid(d, done.attachments.len()));
        if !valid {
            return Err(DecodeError::IllegalAttachments);
        }
        Ok(Some(done))
    }
}

/// Writes the packet header (`4` engine digit included) into `out`.
fn header(out: &mut BytesMut, kind: PacketKind, nsp: &str, id: Option<u64>, attachments: usize) {
    out.put_u8(eio::MESSAGE);
    let kind = match (kind, attachments > 0) {
        (PacketKind::Event, true) => PacketKind::BinaryEvent,
        (PacketKind::Ack, true) => PacketKind::BinaryAck,
        (k, _) => k,
    };
    out.put_u8(kind.digit());
    if kind.is_binary() {
        out.put_slice(attachments.to_string().as_bytes());
        out.put_u8(b'-');
    }
    if nsp != "/" {
        out.put_slice(nsp.as_bytes());
        out.put_u8(b',');
    }
    if let Some(id) = id {
        out.put_slice(id.to_string().as_bytes());
    }
}

/// Appends the JSON of `v` to `out`.
fn json_into(out: &mut BytesMut, v: &impl serde::Serialize) {
    let mut w = out.writer();
    // Serializing a `Value` or a string to memory cannot fail.
    let _ = serde_json::to_writer(&mut w, v);
}

/// Encodes an EVENT (or BINARY_EVENT when `attachments > 0`) as an Engine.IO text frame:
/// `[event, ...args, offset?]`.
pub fn encode_event(
    nsp: &str,
    event: &str,
    args: &[Value],
    id: Option<u64>,
    attachments: usize,
    offset: Option<&str>,
) -> Bytes {
    let mut out = BytesMut::with_capacity(32 + event.len() + args.len() * 16);
    header(&mut out, PacketKind::Event, nsp, id, attachments);
    out.put_u8(b'[');
    json_into(&mut out, &event);
    for a in args {
        out.put_u8(b',');
        json_into(&mut out, a);
    }
    if let Some(o) = offset {
        out.put_u8(b',');
        json_into(&mut out, &o);
    }
    out.put_u8(b']');
    out.freeze()
}

/// Encodes an ACK (or BINARY_ACK) as an Engine.IO text frame.
pub fn encode_ack(nsp: &str, id: u64, args: &[Value], attachments: usize) -> Bytes {
    let mut out = BytesMut::with_capacity(16 + args.len() * 16);
    header(&mut out, PacketKind::Ack, nsp, Some(id), attachments);
    json_into(&mut out, &args);
    out.freeze()
}

/// Encodes a CONNECT answer, a CONNECT_ERROR or a DISCONNECT as an Engine.IO text frame.
pub fn encode_control(kind: PacketKind, nsp: &str, data: Option<&Value>) -> Frame {
    let mut out = BytesMut::with_capacity(64);
    header(&mut out, kind, nsp, None, 0);
    if let Some(d) = data {
        json_into(&mut out, d);
    }
    Frame::text_raw(&out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    // Examples from the Socket.IO v5 protocol document.
    #[test]
    fn decodes_spec_examples() {
        let p = decode("0").unwrap();
        assert_eq!(
            (p.kind, p.nsp.as_str(), p.data),
            (PacketKind::Connect, "/", None)
        );

        let p = decode("0/admin,{\"token\":\"123\"}").unwrap();
        assert_eq!(p.nsp, "/admin");
        assert_eq!(p.data, Some(json!({"token":"123"})));

        let p = decode("1/admin,").unwrap();
        assert_eq!((p.kind, p.nsp.as_str()), (PacketKind::Disconnect, "/admin"));

        let p = decode("2[\"foo\"]").unwrap();
        assert_eq!((p.kind, p.id), (PacketKind::Event, None));

        let p = decode("2/admin,12[\"bar\"]").unwrap();
        assert_eq!((p.nsp.as_str(), p.id), ("/admin", Some(12)));

        let p = decode("3/admin,13[\"bar\"]").unwrap();
        assert_eq!((p.kind, p.id), (PacketKind::Ack, Some(13)));

        let p = decode("51-[\"baz\",{\"_placeholder\":true,\"num\":0}]").unwrap();
        assert_eq!((p.kind, p.attachments), (PacketKind::BinaryEvent, 1));

        let p = decode("61-/admin,15[{\"_placeholder\":true,\"num\":0}]").unwrap();
        assert_eq!(
            (p.kind, p.id, p.attachments),
            (PacketKind::BinaryAck, Some(15), 1)
        );

        let p = decode("4{\"message\":\"Not authorized\"}").unwrap();
        assert_eq!(p.kind, PacketKind::ConnectError);

        let p = decode("0/admin").unwrap();
        assert_eq!((p.nsp.as_str(), p.data), ("/admin", None));
    }

    #[test]
    fn rejects_bad_packets() {
        assert_eq!(decode(""), Err(DecodeError::Empty));
        assert_eq!(decode("7"), Err(DecodeError::UnknownSocketType('7')));
        assert!(matches!(decode("2[\"a\""), Err(DecodeError::Json(_))));
        assert_eq!(decode("2{}"), Err(DecodeError::InvalidPayload));
        assert_eq!(decode("2[]"), Err(DecodeError::InvalidPayload));
        assert_eq!(decode("2[\"connect\"]"), Err(DecodeError::InvalidPayload));
        assert_eq!(decode("2[null]"), Err(DecodeError::InvalidPayload));
        assert_eq!(decode("0[]"), Err(DecodeError::InvalidPayload));
        assert_eq!(decode("1{}"), Err(DecodeError::InvalidPayload));
        assert_eq!(decode("3{}"), Err(DecodeError::InvalidPayload));
        assert_eq!(decode("4"), Err(DecodeError::InvalidPayload));
        assert_eq!(decode("5x-[\"a\"]"), Err(DecodeError::IllegalAttachments));
        assert_eq!(decode("5[\"a\"]"), Err(DecodeError::IllegalAttachments));
        assert_eq!(
            decode("599999999-[\"a\"]"),
            Err(DecodeError::TooManyAttachments)
        );
        assert_eq!(
            decode("299999999999999999999999[\"a\"]"),
            Err(DecodeError::InvalidAckId)
        );
        // numbers are allowed as event names by the reference parser
        assert!(decode("2[1,2]").is_ok());
    }

    #[test]
    fn reassembles_binary() {
        let mut r = Reassembler::default();
        assert_eq!(
            r.push_text("52-[\"hello\",{\"_placeholder\":true,\"num\":0},{\"_placeholder\":true,\"num\":1}]"),
            Ok(None)
        );
        assert!(r.is_waiting());
        assert_eq!(r.push_binary(Bytes::from_static(b"a")), Ok(None));
        let c = r.push_binary(Bytes::from_static(b"b")).unwrap().unwrap();
        assert_eq!(c.attachments.len(), 2);
        assert!(!r.is_waiting());
        assert_eq!(
            r.push_binary(Bytes::from_static(b"c")),
            Err(DecodeError::UnexpectedBinary)
        );
        // placeholder pointing past the attachments
        r.push_text("51-[\"x\",{\"_placeholder\":true,\"num\":3}]")
            .unwrap();
        assert_eq!(
            r.push_binary(Bytes::from_static(b"a")),
            Err(DecodeError::IllegalAttachments)
        );
        // text while waiting for attachments
        r.push_text("51-[\"x\",{\"_placeholder\":true,\"num\":0}]")
            .unwrap();
        assert_eq!(
            r.push_text("2[\"y\"]"),
            Err(DecodeError::IllegalAttachments)
        );
    }

    #[test]
    fn numbers_survive_a_round_trip() {
        // found by fuzzing: without correctly rounded parsing a float could come back
        // different from what the client sent (Node's JSON.parse is correctly rounded)
        let text =
            "2[\"t\",77777777777777777777777777777777777777777777777,1.5e-7,9007199254740993]";
        let p = decode(text).unwrap();
        let Some(Value::Array(a)) = &p.data else {
            panic!("event array")
        };
        let enc = encode_event("/", "t", &a[1..], None, 0, None);
        let again = decode(std::str::from_utf8(&enc[1..]).unwrap()).unwrap();
        assert_eq!(again.data, p.data);
        assert_eq!(
            &enc[..],
            b"42[\"t\",7.777777777777778e+46,1.5e-7,9007199254740993]"
        );
    }

    #[test]
    fn encodes_packets() {
        let f = encode_event(
            "/",
            "hello",
            &[json!(1), json!({"b":2,"a":1})],
            None,
            0,
            None,
        );
        assert_eq!(&f[..], b"42[\"hello\",1,{\"b\":2,\"a\":1}]");
        let f = encode_event("/admin", "x", &[], Some(7), 0, Some("o1"));
        assert_eq!(&f[..], b"42/admin,7[\"x\",\"o1\"]");
        let f = encode_event("/", "bin", &[placeholder(0)], None, 1, None);
        assert_eq!(&f[..], b"451-[\"bin\",{\"_placeholder\":true,\"num\":0}]");
        assert_eq!(&encode_ack("/", 3, &[json!("ok")], 0)[..], b"433[\"ok\"]");
        assert_eq!(
            encode_control(PacketKind::Connect, "/", Some(&json!({"sid":"abc"}))),
            Frame::text_raw(b"40{\"sid\":\"abc\"}")
        );
        assert_eq!(
            encode_control(PacketKind::Disconnect, "/admin", None),
            Frame::text_raw(b"41/admin,")
        );
    }

    #[test]
    fn attachments_are_limited_in_count_and_bytes() {
        let ph = |n: usize| (0..n).map(|i| format!(r#"{{"_placeholder":true,"num":{i}}}"#));
        let packet = |n: usize| format!(r#"5{n}-["e",{}]"#, ph(n).collect::<Vec<_>>().join(","));
        let mut r = Reassembler::new(2, 10, MAX_DEPTH);
        assert_eq!(
            r.push_text(&packet(3)),
            Err(DecodeError::TooManyAttachments)
        );
        assert_eq!(r.push_text(&packet(2)), Ok(None));
        assert_eq!(r.waiting_nsp(), Some("/"));
        assert_eq!(r.push_binary(Bytes::from_static(&[0; 6])), Ok(None));
        assert_eq!(
            r.push_binary(Bytes::from_static(&[0; 6])),
            Err(DecodeError::AttachmentsTooLarge)
        );
        assert!(!r.is_waiting(), "the packet is dropped");
        assert_eq!(r.push_text(&packet(2)), Ok(None));
        assert_eq!(r.push_binary(Bytes::from_static(&[0; 5])), Ok(None));
        let done = r.push_binary(Bytes::from_static(&[0; 5])).expect("fits");
        assert_eq!(done.map(|c| c.attachments.len()), Some(2));
    }

    #[test]
    fn nesting_is_measured_outside_strings_and_limited() {
        assert_eq!(json_depth(r#"["a",{"b":[1,2]}]"#), 3);
        assert_eq!(json_depth(r#"["[[[{{{", "\"]]"]"#), 1);
        let deep = |n: usize| format!(r#"2["e",{}{}]"#, "[".repeat(n), "]".repeat(n));
        assert!(
            decode(&deep(64)).is_ok(),
            "64 levels of arguments are allowed"
        );
        assert_eq!(
            decode(&deep(65)),
            Err(DecodeError::TooDeep {
                kind: PacketKind::Event,
                nsp: "/".into(),
                id: None,
                attachments: 0
            })
        );
        assert_eq!(
            decode(&format!(
                r#"2/chat,7["e",{}{}]"#,
                "{\"a\":".repeat(200),
                "}".repeat(200)
            )),
            Err(DecodeError::TooDeep {
                kind: PacketKind::Event,
                nsp: "/chat".into(),
                id: Some(7),
                attachments: 0
            })
        );
    }

    #[test]
    fn a_too_deep_binary_event_is_refused_after_its_attachments() {
        let mut r = Reassembler::new(2, 10, MAX_DEPTH);
        let deep = format!(
            "452-/chat,3[\"e\",{}{{\"_placeholder\":true,\"num\":0}}{}]",
            "[".repeat(100),
            "]".repeat(100)
        );
        assert_eq!(
            r.push_text(&deep[1..]),
            Ok(None),
            "its attachments are awaited"
        );
        assert_eq!(r.waiting_nsp(), Some("/chat"));
        assert_eq!(r.push_binary(Bytes::from_static(b"abc")), Ok(None));
        assert_eq!(
            r.push_binary(Bytes::from_static(b"def")),
            Err(DecodeError::TooDeep {
                kind: PacketKind::BinaryEvent,
                nsp: "/chat".into(),
                id: Some(3),
                attachments: 2
            })
        );
        assert!(!r.is_waiting());
        // the next packet decodes as usual
        assert!(matches!(r.push_text("2/chat,[\"ok\"]"), Ok(Some(_))));
        // the skipped attachments are bounded like any others
        assert_eq!(r.push_text(&deep[1..]), Ok(None));
        assert_eq!(
            r.push_binary(Bytes::from_static(b"0123456789x")),
            Err(DecodeError::AttachmentsTooLarge)
        );
    }
}
