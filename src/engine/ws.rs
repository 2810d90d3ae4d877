//! WebSocket I/O owned by a [`Session`](super::Session), below actix-http's dispatcher.
//!
//! At the upgrade the HTTP layer hands over the raw TCP stream (see [`super::upgrade`]);
//! from then on the session reads and writes it itself:
//! - [`inbound`]: a stream of whole messages. It waits for readiness without a buffer and
//!   allocates one only while bytes are being decoded, so an idle connection holds none.
//! - [`WsWriter`]: frames are encoded into one buffer and written with non-blocking writes
//!   when the session's current batch of work is done (one syscall for everything queued);
//!   the buffer is released once drained.
//!
//! This replaces the per-connection 8 KiB read and write buffers of the HTTP dispatcher and
//! the channel + body stream an actix-web-actors context would put between the session and
//! the socket.

use std::io;
use std::sync::Arc;

use actix_http::ws::{CloseCode, CloseReason, OpCode, Parser};
use bytes::{Bytes, BytesMut};
use futures_util::Stream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};

use crate::protocol::engine::Frame;

/// A whole inbound WebSocket message, or the end of the stream.
#[derive(Debug)]
pub enum WsIn {
    /// A text message.
    Text(Bytes),
    /// A binary message.
    Binary(Bytes),
    /// A WebSocket ping (answered with a pong).
    Ping(Bytes),
    /// A WebSocket pong (the answer to a ping of the plain protocol's heartbeat).
    Pong,
    /// The client closed, or the stream ended.
    Close,
    /// A framing error.
    Error {
        /// The message exceeded the size limit.
        too_big: bool,
    },
}

/// Bytes read per readiness event at most.
const READ_CHUNK: usize = 4096;

struct ReadState {
    rd: OwnedReadHalf,
    buf: BytesMut,
    max: usize,
    /// A fragmented message being assembled: text?, bytes so far.
    partial: Option<(bool, BytesMut)>,
    ended: bool,
}

/// Decodes the client's frames into whole messages. `leftover` holds bytes the HTTP layer
/// had already read past the upgrade request.
pub fn inbound(rd: OwnedReadHalf, leftover: BytesMut, max: usize) -> impl Stream<Item = WsIn> {
    let st = ReadState {
        rd,
        buf: leftover,
        max,
        partial: None,
        ended: false,
    };
    futures_util::stream::unfold(st, |mut st| async move {
        loop {
            if st.ended {
                return None;
            }
            if !st.buf.is_empty() {
                match Parser::parse(&mut st.buf, true, st.max) {
                    Ok(Some((fin, op, data))) => {
                        let data = data.map(BytesMut::freeze).unwrap_or_default();
                        if st.buf.is_empty() {
                            // release the read buffer between messages
                            st.buf = BytesMut::new();
                        }
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
            }
            if st.buf.is_empty() && st.buf.capacity() > 0 {
                // nothing buffered: wait without holding memory
                st.buf = BytesMut::new();
            }
            if st.rd.readable().await.is_err() {
                st.ended = true;
                return Some((WsIn::Close, st));
            }
            st.buf.reserve(READ_CHUNK);
            match st.rd.try_read_buf(&mut st.buf) {
                Ok(0) => {
                    st.ended = true;
                    return Some((WsIn::Close, st));
                }
                Ok(_) => {}
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => {
                    st.ended = true;
                    return Some((WsIn::Close, st));
                }
            }
        }
    })
}

fn on_frame(st: &mut ReadState, fin: bool, op: OpCode, data: Bytes) -> Option<WsIn> {
    let whole = |text: bool, data: Bytes| {
        if text {
            WsIn::Text(data)
        } else {
            WsIn::Binary(data)
        }
    };
    match op {
        OpCode::Text | OpCode::Binary => {
            if st.partial.is_some() {
                return Some(WsIn::Error { too_big: false });
            }
            let text = op == OpCode::Text;
            if fin {
                return Some(whole(text, data));
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
            Some(whole(text, acc.freeze()))
        }
        OpCode::Ping => Some(WsIn::Ping(data)),
        OpCode::Pong => Some(WsIn::Pong),
        OpCode::Close => Some(WsIn::Close),
        OpCode::Bad => Some(WsIn::Error { too_big: false }),
    }
}

/// A drained write buffer up to this size is kept for the next batch (less allocator
/// churn); a larger one is freed so idle connections stay small.
const KEEP_CAPACITY: usize = 512;

/// The writing end of a session's WebSocket.
pub struct WsWriter {
    half: Arc<OwnedWriteHalf>,
    buf: BytesMut,
    /// Bytes of `buf` already written.
    written: usize,
    /// Bytes not yet written (`buf.len() - written`) are what the byte budget counts.
    /// A close frame was queued: nothing more is accepted.
    closing: bool,
    /// The socket failed; everything is dropped.
    broken: bool,
    /// Which WebSocket of the session this is (0: the first; upgrades count up).
    pub gen: u32,
}

/// What a flush achieved.
#[derive(Debug, PartialEq, Eq)]
pub enum Flushed {
    /// Everything was written.
    Done,
    /// The socket is full: wait for it to become writable, then flush again.
    Blocked,
    /// The socket failed.
    Broken,
}

impl WsWriter {
    /// A writer over the write half of a socket.
    pub fn new(half: OwnedWriteHalf, gen: u32) -> Self {
        WsWriter {
            half: Arc::new(half),
            buf: BytesMut::new(),
            written: 0,
            closing: false,
            broken: false,
            gen,
        }
    }

    /// Bytes queued (encoded frames, pongs, a close) but not yet written.
    pub fn queued_bytes(&self) -> usize {
        self.buf.len() - self.written
    }

    /// Bytes wait to be written.
    pub fn has_pending(&self) -> bool {
        self.written < self.buf.len()
    }

    /// Encodes a frame into the buffer.
    pub fn frame(&mut self, f: &Frame) {
        if self.closing || self.broken {
            return;
        }
        let op = if f.is_binary() {
            OpCode::Binary
        } else {
            OpCode::Text
        };
        Parser::write_message(&mut self.buf, f.payload(), op, true, false);
    }

    /// Encodes a pong answering a client's ping.
    pub fn pong(&mut self, payload: &[u8]) {
        if !self.closing && !self.broken {
            Parser::write_message(&mut self.buf, payload, OpCode::Pong, true, false);
        }
    }

    /// Encodes a ping (the plain protocol's heartbeat; browsers answer by themselves).
    pub fn ping(&mut self) {
        if !self.closing && !self.broken {
            Parser::write_message(&mut self.buf, &b""[..], OpCode::Ping, true, false);
        }
    }

    /// Queues a close frame with a code and its reason text (the plain protocol's closes).
    pub fn close_with(&mut self, code: u16, reason: &str) {
        if !self.closing && !self.broken {
            let reason = CloseReason {
                code: CloseCode::from(code),
                description: Some(reason.to_owned()),
            };
            Parser::write_close(&mut self.buf, Some(reason), false);
            self.closing = true;
        }
    }

    /// Queues a close frame: without a code (the client sees 1005) as Node sends it, or
    /// with one such as 1009 for an oversize message.
    pub fn close(&mut self, code: Option<CloseCode>) {
        if !self.closing && !self.broken {
            Parser::write_close(&mut self.buf, code.map(CloseReason::from), false);
            self.closing = true;
        }
    }

    /// Writes as much as the socket takes without blocking.
    pub fn flush(&mut self) -> Flushed {
        if self.broken {
            return Flushed::Broken;
        }
        while self.written < self.buf.len() {
            match self.half.try_write(&self.buf[self.written..]) {
                Ok(0) => {
                    self.broken = true;
                    return Flushed::Broken;
                }
                Ok(n) => self.written += n,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Flushed::Blocked,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(_) => {
                    self.broken = true;
                    self.buf = BytesMut::new();
                    self.written = 0;
                    return Flushed::Broken;
                }
            }
        }
        self.written = 0;
        if self.buf.capacity() > KEEP_CAPACITY {
            // a burst grew it: let an idle connection hold only a small buffer
            self.buf = BytesMut::new();
        } else {
            self.buf.clear();
        }
        Flushed::Done
    }

    /// A handle to wait for writability on (outside the session's borrow).
    pub fn socket(&self) -> Arc<OwnedWriteHalf> {
        self.half.clone()
    }

    /// Hands the unwritten bytes to a background task that writes them (bounded in time),
    /// for a session that stops with data still queued.
    pub fn finish_in_background(mut self) {
        if self.broken || !self.has_pending() {
            return;
        }
        actix_rt::spawn(async move {
            let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(5);
            loop {
                match self.flush() {
                    Flushed::Done | Flushed::Broken => break,
                    Flushed::Blocked => {
                        let ready = tokio::time::timeout_at(deadline, self.half.writable()).await;
                        if !matches!(ready, Ok(Ok(()))) {
                            break;
                        }
                    }
                }
            }
        });
    }
}
