//! WebSocket framing under a `WsSession`: the inbound side turns the request payload into
//! whole messages ([`WsIn`]); the outbound side turns a bounded queue of [`OutMsg`] into the
//! response body, writing every frame that is already queued in one chunk.
//!
//! The session owns these ends rather than an actix-web-actors `WebsocketContext` so that one
//! session can move from polling to WebSocket (the upgrade) and live on whichever thread it
//! started on.

use actix_http::ws::{CloseCode, CloseReason, OpCode, Parser};
use actix_web::web::{Bytes, BytesMut};
use decoder::decode_frames;
use futures_util::{Stream, StreamExt};
use tokio::sync::mpsc;

use crate::protocol::engine::Frame;

/// A whole inbound WebSocket message, or the end of the stream.
#[derive(Debug)]
pub enum WsIn {
    Text(Bytes),
    Binary(Bytes),
    Ping(Bytes),
    Close,
    /// A framing error; `too_big` when the message exceeded the size limit.
    Error {
        too_big: bool,
    },
}

/// What a session queues for its WebSocket.
#[derive(Debug)]
pub enum OutMsg {
    Frame(Frame),
    Pong(Bytes),
    /// A close frame; with no code (1005 at the client) as Node sends it, or a code such
    /// as 1009 for an oversize message.
    Close(Option<CloseCode>),
}

/// Largest chunk the writer assembles from queued frames before yielding it.
const COALESCE_BYTES: usize = 64 * 1024;

/// Decodes the request payload into messages, joining continuation frames.
pub fn inbound<S, E>(payload: S, max_size: usize) -> impl Stream<Item = WsIn>
where
    S: Stream<Item = Result<Bytes, E>> + Unpin,
{
    decode_frames(payload, max_size)
}

/// The response body: drains the queue, encoding frames; ends after a close frame or when
/// the session dropped its sender.
pub fn outbound(rx: mpsc::Receiver<OutMsg>) -> impl Stream<Item = Result<Bytes, actix_web::Error>> {
    futures_util::stream::unfold((rx, false), |(mut rx, done)| async move {
        if done {
            return None;
        }
        let first = rx.recv().await?;
        let mut buf = BytesMut::new();
        let mut closed = encode(&mut buf, first);
        while !closed && buf.len() < COALESCE_BYTES {
            match rx.try_recv() {
                Ok(m) => closed = encode(&mut buf, m),
                Err(_) => break,
            }
        }
        Some((Ok(buf.freeze()), (rx, closed)))
    })
}

/// Encodes one message; true when it was a close frame.
fn encode(buf: &mut BytesMut, m: OutMsg) -> bool {
    match m {
        OutMsg::Frame(Frame::Text(b)) => Parser::write_message(buf, &b, OpCode::Text, true, false),
        OutMsg::Frame(Frame::Binary(b)) => {
            Parser::write_message(buf, &b, OpCode::Binary, true, false)
        }
        OutMsg::Pong(b) => Parser::write_message(buf, &b, OpCode::Pong, true, false),
        OutMsg::Close(code) => {
            Parser::write_close(buf, code.map(CloseReason::from), false);
            return true;
        }
    }
    false
}

mod decoder {
    //! The frame decoder loop: parse what is buffered, read more when a frame is incomplete.
    use super::*;

    struct State<S> {
        payload: S,
        buf: BytesMut,
        max: usize,
        /// A fragmented message being assembled: its opcode and bytes so far.
        partial: Option<(bool, BytesMut)>,
        ended: bool,
    }

    pub fn decode_frames<S, E>(payload: S, max: usize) -> impl Stream<Item = WsIn>
    where
        S: Stream<Item = Result<Bytes, E>> + Unpin,
    {
        let st = State {
            payload,
            buf: BytesMut::new(),
            max,
            partial: None,
            ended: false,
        };
        futures_util::stream::unfold(st, |mut st| async move {
            loop {
                if st.ended {
                    return None;
                }
                match Parser::parse(&mut st.buf, true, st.max) {
                    Ok(Some((fin, op, data))) => {
                        let data = data.map(BytesMut::freeze).unwrap_or_default();
                        if let Some(item) = on_frame(&mut st, fin, op, data) {
                            if matches!(item, WsIn::Close | WsIn::Error { .. }) {
                                st.ended = true;
                            }
                            return Some((item, st));
                        }
                        continue;
                    }
                    Ok(None) => {}
                    Err(e) => {
                        st.ended = true;
                        let too_big = matches!(e, actix_http::ws::ProtocolError::Overflow);
                        return Some((WsIn::Error { too_big }, st));
                    }
                }
                match st.payload.next().await {
                    Some(Ok(chunk)) => st.buf.extend_from_slice(&chunk),
                    Some(Err(_)) | None => {
                        st.ended = true;
                        return Some((WsIn::Close, st));
                    }
                }
            }
        })
    }

    fn on_frame<S>(st: &mut State<S>, fin: bool, op: OpCode, data: Bytes) -> Option<WsIn> {
        match op {
            OpCode::Text | OpCode::Binary => {
                if st.partial.is_some() {
                    return Some(WsIn::Error { too_big: false });
                }
                let text = op == OpCode::Text;
                if fin {
                    return Some(if text {
                        WsIn::Text(data)
                    } else {
                        WsIn::Binary(data)
                    });
                }
                st.partial = Some((text, BytesMut::from(&data[..])));
                None
            }
            OpCode::Continue => {
                let Some((text, mut acc)) = st.partial.take() else {
                    return Some(WsIn::Error { too_big: false });
                };
                acc.extend_from_slice(&data);
                if acc.len() > st.max {
                    return Some(WsIn::Error { too_big: true });
                }
                if !fin {
                    st.partial = Some((text, acc));
                    return None;
                }
                let data = acc.freeze();
                Some(if text {
                    WsIn::Text(data)
                } else {
                    WsIn::Binary(data)
                })
            }
            OpCode::Ping => Some(WsIn::Ping(data)),
            OpCode::Pong => None,
            OpCode::Close => Some(WsIn::Close),
            OpCode::Bad => Some(WsIn::Error { too_big: false }),
        }
    }
}
