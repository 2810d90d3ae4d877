//! Engine.IO v4 packets and HTTP long-polling payloads.
//!
//! A text packet is one type digit followed by its data (`4hello`, `2probe`); a binary
//! message travels as a binary WebSocket frame, or inside a polling payload as `b` + base64.
//! Polling payloads join packets with the record separator `\x1e`.
//! Pure: no I/O, no actix.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use std::sync::Arc;

use bytes::{BufMut, Bytes, BytesMut};

use super::DecodeError;

/// Separator between packets of a polling payload.
pub const SEPARATOR: u8 = 0x1e;

/// Engine.IO packet type digits.
#[allow(missing_docs)] // the names are the protocol document's
pub mod kind {
    pub const OPEN: u8 = b'0';
    pub const CLOSE: u8 = b'1';
    pub const PING: u8 = b'2';
    pub const PONG: u8 = b'3';
    pub const MESSAGE: u8 = b'4';
    pub const UPGRADE: u8 = b'5';
    pub const NOOP: u8 = b'6';
}

/// A decoded packet received from a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Packet {
    /// `0` with its JSON (never sent by a client; ignored).
    Open(String),
    /// `1`: the client closes.
    Close,
    /// `2` and its data (`probe` during an upgrade).
    Ping(String),
    /// `3` and its data: the answer to the server's ping.
    Pong(String),
    /// A text message (the data after the `4`).
    Message(String),
    /// A binary message.
    Binary(Bytes),
    /// `5`: switch to the probed WebSocket.
    Upgrade,
    /// `6`.
    Noop,
}

/// An encoded frame ready to send: a text frame already carries its type digit (or is a
/// plain WebSocket envelope); a binary frame is the raw message. Cloning shares the bytes,
/// so a broadcast is encoded once, and a copy is 16 bytes: what a polling queue or the
/// recovery store pays per frame it holds (docs/architecture.md, "Memory").
#[derive(Clone, PartialEq, Eq)]
pub struct Frame {
    /// One tag byte ([`TEXT`] or [`BINARY`]), then the payload.
    buf: Arc<[u8]>,
}

const TEXT: u8 = 0;
const BINARY: u8 = 1;

impl Frame {
    /// A frame of `tag` and the payload `parts` joined: one allocation, one copy.
    fn assemble(tag: u8, parts: &[&[u8]]) -> Frame {
        let len = 1 + parts.iter().map(|p| p.len()).sum::<usize>();
        let mut buf: Arc<[u8]> = std::iter::repeat_n(tag, len).collect();
        if let Some(b) = Arc::get_mut(&mut buf) {
            let mut at = 1;
            for p in parts {
                b[at..at + p.len()].copy_from_slice(p);
                at += p.len();
            }
        }
        Frame { buf }
    }

    /// A text frame of the given packet type with `data` after the type digit.
    pub fn text(kind: u8, data: &[u8]) -> Frame {
        Frame::assemble(TEXT, &[&[kind], data])
    }

    /// A text frame sent as it is (its type digit already in it, or a plain WebSocket's
    /// envelope).
    pub fn text_raw(data: &[u8]) -> Frame {
        Frame::assemble(TEXT, &[data])
    }

    /// A frame that is only a type digit (`1`, `2`, `3`, `5`, `6`).
    pub fn bare(kind: u8) -> Frame {
        Frame::assemble(TEXT, &[&[kind]])
    }

    /// A binary message.
    pub fn binary(data: &[u8]) -> Frame {
        Frame::assemble(BINARY, &[data])
    }

    /// True for a binary message.
    pub fn is_binary(&self) -> bool {
        self.buf.first() == Some(&BINARY)
    }

    /// What goes on the wire: a text frame's text (type digit first), a binary message.
    pub fn payload(&self) -> &[u8] {
        self.buf.get(1..).unwrap_or_default()
    }

    /// Length on the wire of a WebSocket frame payload (used for queue accounting).
    pub fn len(&self) -> usize {
        self.payload().len()
    }

    /// True for an empty frame.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl std::fmt::Debug for Frame {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.is_binary() {
            write!(f, "Binary({} bytes)", self.len())
        } else {
            write!(f, "Text({:?})", String::from_utf8_lossy(self.payload()))
        }
    }
}

/// Decodes one text packet (a WebSocket text frame or one record of a polling payload).
pub fn decode_text(s: &str) -> Result<Packet, DecodeError> {
    let mut chars = s.chars();
    let first = chars.next().ok_or(DecodeError::Empty)?;
    let data = &s[first.len_utf8()..];
    Ok(match first {
        '0' => Packet::Open(data.to_owned()),
        '1' => Packet::Close,
        '2' => Packet::Ping(data.to_owned()),
        '3' => Packet::Pong(data.to_owned()),
        '4' => Packet::Message(data.to_owned()),
        '5' => Packet::Upgrade,
        '6' => Packet::Noop,
        other => return Err(DecodeError::UnknownEngineType(other)),
    })
}

/// Decodes a text WebSocket frame given as raw bytes.
pub fn decode_text_bytes(b: &[u8]) -> Result<Packet, DecodeError> {
    let s = std::str::from_utf8(b).map_err(|_| DecodeError::Utf8)?;
    decode_text(s)
}

/// Decodes a polling payload (a POST body): records separated by `\x1e`; a record starting
/// with `b` is a base64 binary message.
pub fn decode_payload(body: &[u8]) -> Result<Vec<Packet>, DecodeError> {
    let s = std::str::from_utf8(body).map_err(|_| DecodeError::Utf8)?;
    s.split(SEPARATOR as char)
        .map(|rec| {
            if let Some(b64) = rec.strip_prefix('b') {
                B64.decode(b64)
                    .map(|v| Packet::Binary(Bytes::from(v)))
                    .map_err(|_| DecodeError::Base64)
            } else {
                decode_text(rec)
            }
        })
        .collect()
}

/// Encodes frames as one polling payload (a GET response body).
pub fn encode_payload<'a>(frames: impl IntoIterator<Item = &'a Frame>) -> Bytes {
    let mut out = BytesMut::new();
    for (i, f) in frames.into_iter().enumerate() {
        if i > 0 {
            out.put_u8(SEPARATOR);
        }
        if f.is_binary() {
            out.put_u8(b'b');
            out.put_slice(B64.encode(f.payload()).as_bytes());
        } else {
            out.put_slice(f.payload());
        }
    }
    out.freeze()
}

/// The JSON of the handshake `open` packet, keys in the order Node sends them.
pub fn open_json(
    sid: &str,
    upgrades: &[&str],
    ping_interval_ms: u64,
    ping_timeout_ms: u64,
    max_payload: u64,
) -> String {
    #[derive(serde::Serialize)]
    #[serde(rename_all = "camelCase")]
    struct Open<'a> {
        sid: &'a str,
        upgrades: &'a [&'a str],
        ping_interval: u64,
        ping_timeout: u64,
        max_payload: u64,
    }
    serde_json::to_string(&Open {
        sid,
        upgrades,
        ping_interval: ping_interval_ms,
        ping_timeout: ping_timeout_ms,
        max_payload,
    })
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Examples from the Engine.IO v4 protocol document.
    #[test]
    fn decodes_spec_packets() {
        assert_eq!(
            decode_text("4hello").unwrap(),
            Packet::Message("hello".into())
        );
        assert_eq!(decode_text("2probe").unwrap(), Packet::Ping("probe".into()));
        assert_eq!(decode_text("3probe").unwrap(), Packet::Pong("probe".into()));
        assert_eq!(decode_text("2").unwrap(), Packet::Ping(String::new()));
        assert_eq!(decode_text("5").unwrap(), Packet::Upgrade);
        assert_eq!(decode_text("6").unwrap(), Packet::Noop);
        assert_eq!(decode_text("1").unwrap(), Packet::Close);
        assert_eq!(decode_text("4€").unwrap(), Packet::Message("€".into()));
        assert_eq!(decode_text(""), Err(DecodeError::Empty));
        assert_eq!(decode_text("9"), Err(DecodeError::UnknownEngineType('9')));
        assert_eq!(decode_text("é"), Err(DecodeError::UnknownEngineType('é')));
    }

    #[test]
    fn decodes_spec_payload() {
        // "4hello\x1e2\x1e4€" and a binary record "bAQIDBA==" (bytes 1,2,3,4)
        let p = decode_payload(b"4hello\x1e2\x1e4\xe2\x82\xac\x1ebAQIDBA==").unwrap();
        assert_eq!(
            p,
            vec![
                Packet::Message("hello".into()),
                Packet::Ping(String::new()),
                Packet::Message("€".into()),
                Packet::Binary(Bytes::from_static(&[1, 2, 3, 4])),
            ]
        );
        assert_eq!(decode_payload(b"bnot base64!"), Err(DecodeError::Base64));
        assert_eq!(decode_payload(b"4a\x1e"), Err(DecodeError::Empty));
        assert_eq!(decode_payload(b"\xff"), Err(DecodeError::Utf8));
    }

    #[test]
    fn a_frame_is_two_words_and_keeps_its_kind() {
        assert_eq!(std::mem::size_of::<Frame>(), 16);
        let t = Frame::text(kind::MESSAGE, b"2[\"x\"]");
        assert!(!t.is_binary());
        assert_eq!(t.payload(), b"42[\"x\"]");
        assert_eq!(t.len(), 7);
        let b = Frame::binary(&[0, 1, 255]);
        assert!(b.is_binary());
        assert_eq!(b.payload(), &[0, 1, 255]);
        assert!(Frame::binary(&[]).is_empty());
        assert_eq!(Frame::bare(kind::PING), Frame::text_raw(b"2"));
        assert_ne!(Frame::text_raw(&[0, 1]), Frame::binary(&[0, 1]));
    }

    #[test]
    fn encodes_spec_payload() {
        let frames = [
            Frame::text(kind::MESSAGE, b"hello"),
            Frame::bare(kind::PING),
            Frame::binary(&[1, 2, 3, 4]),
        ];
        assert_eq!(
            &encode_payload(frames.iter())[..],
            b"4hello\x1e2\x1ebAQIDBA=="
        );
    }

    #[test]
    fn open_packet_has_node_key_order() {
        assert_eq!(
            open_json(
                "lv_VI97HAXpY6yYWAAAC",
                &["websocket"],
                25000,
                20000,
                1000000
            ),
            r#"{"sid":"lv_VI97HAXpY6yYWAAAC","upgrades":["websocket"],"pingInterval":25000,"pingTimeout":20000,"maxPayload":1000000}"#
        );
    }
}
