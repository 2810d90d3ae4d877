//! Decode errors of the protocol layer.

use thiserror::Error;

/// Why a frame, payload or packet could not be decoded.
#[allow(missing_docs)] // each variant says what it is in its message
#[derive(Debug, Error, Clone, PartialEq, Eq)]
pub enum DecodeError {
    #[error("empty packet")]
    Empty,
    #[error("unknown engine.io packet type {0:?}")]
    UnknownEngineType(char),
    #[error("unknown socket.io packet type {0:?}")]
    UnknownSocketType(char),
    #[error("invalid base64 in binary packet")]
    Base64,
    #[error("packet is not valid UTF-8")]
    Utf8,
    #[error("illegal attachments")]
    IllegalAttachments,
    #[error("invalid namespace")]
    InvalidNamespace,
    #[error("invalid ack id")]
    InvalidAckId,
    #[error("invalid JSON payload: {0}")]
    Json(String),
    #[error("invalid payload for packet type")]
    InvalidPayload,
    #[error("unexpected binary attachment")]
    UnexpectedBinary,
    #[error("too many attachments")]
    TooManyAttachments,
    #[error("attachments larger than allowed")]
    AttachmentsTooLarge,
    /// The packet's JSON nests deeper than allowed; what is known of the packet comes along
    /// so an event can be refused without dropping the connection.
    #[error("JSON nested too deeply")]
    TooDeep {
        kind: crate::protocol::socket::PacketKind,
        nsp: String,
        id: Option<u64>,
        /// Binary attachments announced by the packet (they still follow it).
        attachments: usize,
    },
}
