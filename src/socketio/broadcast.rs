//! Broadcasts: [`BroadcastOp`] builds one (rooms to reach, rooms to skip), encodes the
//! packet once into an [`Outgoing`], and hands it to the `ServerActor`, which routes the
//! shared bytes to every room actor (and, in a cluster, the bus).

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use serde_json::Value;

use super::adapter::{Emit, Nsp, Room};
use super::bus::Relay;
use super::IoShared;
use crate::protocol::engine::Frame;
use crate::protocol::socket;

/// An encoded packet shared by every recipient of one broadcast: encoded once, cloned as
/// reference-counted bytes.
#[derive(Debug)]
pub struct Outgoing {
    /// Unique per broadcast; lets a socket reached through several rooms get it once.
    pub id: u64,
    /// Its namespace.
    pub nsp: Nsp,
    /// The text frame, then its binary attachments.
    pub frames: Vec<Frame>,
    /// Sockets in any of these rooms (or with one of these ids) do not get it.
    pub except_rooms: Vec<Room>,
    /// True when it targets several rooms, so duplicates must be filtered.
    pub multi: bool,
    /// When it was emitted (delivery latency).
    pub created: Instant,
    /// Its plain WebSocket frame, made once for all `/ws` recipients on this node.
    pub plain: PlainFrame,
}

/// A broadcast's frame for plain WebSocket clients (`{type, payload}`), encoded the first
/// time a `/ws` socket is reached and then shared like the Socket.IO frames.
#[derive(Debug, Default)]
pub struct PlainFrame(std::sync::OnceLock<Option<Frame>>);

impl Outgoing {
    /// The event's name and arguments, decoded again from the shared text frame (for
    /// followers that are not sockets); `None` for a binary event. A recovery offset, when
    /// there is one, is the last argument.
    pub fn event(&self) -> Option<(String, Vec<Value>)> {
        let t = self.frames.first().filter(|f| !f.is_binary())?.payload();
        if self.frames.len() > 1 {
            return None;
        }
        let text = std::str::from_utf8(t.get(1..)?).ok()?;
        let p = socket::decode(text).ok()?;
        match p.data {
            Some(Value::Array(mut a)) if !a.is_empty() => {
                let name = a.remove(0);
                Some((name.as_str()?.to_owned(), a))
            }
            _ => None,
        }
    }

    /// The frame plain WebSocket clients get: `{type, payload}` with the event's first
    /// argument; `None` for a binary event (the plain protocol has no attachments).
    pub fn plain_frame(&self) -> Option<&Frame> {
        self.plain
            .0
            .get_or_init(|| {
                let (name, args) = self.event()?;
                Some(Frame::text_raw(&crate::protocol::plain::encode_event(
                    &name, &args, None,
                )))
            })
            .as_ref()
    }

    /// Bytes of its frames.
    pub fn byte_len(&self) -> usize {
        self.frames.iter().map(Frame::len).sum()
    }
}

/// Broadcast ids; also the counter part of recovery offsets.
static NEXT_BROADCAST: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// A fresh broadcast id (unique in this process).
pub fn next_broadcast_id() -> u64 {
    NEXT_BROADCAST.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

fn offset_prefix() -> &'static str {
    static PREFIX: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    PREFIX.get_or_init(|| {
        let ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis());
        format!("{ms:x}")
    })
}

/// Builds a broadcast: rooms to reach (none: the whole namespace) and rooms to skip.
#[derive(Clone)]
pub struct BroadcastOp {
    io: Arc<IoShared>,
    nsp: Nsp,
    rooms: Vec<Room>,
    except: Vec<Room>,
}

impl BroadcastOp {
    pub(crate) fn new(io: Arc<IoShared>, nsp: Nsp) -> Self {
        BroadcastOp {
            io,
            nsp,
            rooms: Vec::new(),
            except: Vec::new(),
        }
    }

    /// Adds a room to reach.
    pub fn to(mut self, room: &str) -> Self {
        if !self.rooms.iter().any(|r| &**r == room) {
            self.rooms.push(Room::from(room));
        }
        self
    }

    /// Adds a room (or socket id) to skip.
    pub fn except(mut self, room: &str) -> Self {
        if !room.is_empty() && !self.except.iter().any(|r| &**r == room) {
            self.except.push(Room::from(room));
        }
        self
    }

    /// Emits `event` with `args`.
    pub fn emit(self, event: &str, args: &[Value]) {
        self.emit_binary(event, args, Vec::new());
    }

    /// Disconnects the targeted sockets server side (Node's `disconnectSockets()`): the
    /// clients see `io server disconnect` and do not reconnect by themselves. Exceptions do
    /// not apply here.
    pub fn disconnect_sockets(self) {
        self.io.server.do_send(Emit(Relay::DisconnectSockets {
            nsp: self.nsp,
            rooms: self.rooms,
        }));
    }

    /// Has every targeted socket, on every node, run its namespace's command handler `name`
    /// (`Namespace::on_command`) with `args`. Nothing is sent to the clients; exceptions do
    /// not apply.
    pub fn command(self, name: &str, args: Value) {
        self.io.server.do_send(Emit(Relay::Command {
            nsp: self.nsp,
            rooms: self.rooms,
            name: Arc::from(name),
            args: Arc::new(args),
        }));
    }

    /// Encodes the packet once and hands it to the rooms' actors.
    pub fn emit_binary(self, event: &str, args: &[Value], binary: Vec<Bytes>) {
        let id = next_broadcast_id();
        let offset: Option<Arc<str>> = self
            .io
            .recovery
            .then(|| Arc::from(format!("{}-{id:x}", offset_prefix())));
        let text = socket::encode_event(
            &self.nsp,
            event,
            args,
            None,
            binary.len(),
            offset.as_deref(),
        );
        let mut frames = Vec::with_capacity(1 + binary.len());
        frames.push(Frame::text_raw(&text));
        frames.extend(binary.iter().map(|b| Frame::binary(b)));
        let packet = Arc::new(Outgoing {
            id,
            nsp: self.nsp,
            frames,
            except_rooms: self.except,
            multi: self.rooms.len() > 1,
            created: Instant::now(),
            plain: PlainFrame::default(),
        });
        crate::metrics::get()
            .broadcasts
            .with_label_values(&[&packet.nsp])
            .inc();
        self.io.server.do_send(Emit(Relay::Broadcast {
            rooms: self.rooms,
            packet,
            offset,
        }));
    }
}
