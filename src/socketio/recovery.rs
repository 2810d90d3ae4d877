//! Connection state recovery (Socket.IO 4.6+): the broadcasts kept for replay and the
//! sockets kept after a recoverable disconnect, per namespace. A plain structure owned by
//! the `ServerActor`; bounded by age (`max_disconnection_ms`) and count (`max_packets`).

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::{Room, SocketData};
use crate::config::RecoveryConfig;
use crate::protocol::engine::Frame;
use crate::protocol::SocketId;

/// A broadcast kept for replay to recovering sockets.
struct StoredPacket {
    offset: Arc<str>,
    at: Instant,
    rooms: Vec<Room>,
    except_rooms: Vec<Room>,
    frames: Vec<Frame>,
}

/// What recovery keeps of a disconnected socket.
pub struct PersistedSocket {
    /// The private id the client presents to come back.
    pub pid: Arc<str>,
    /// Its socket id (kept across the reconnect).
    pub id: SocketId,
    /// Its rooms.
    pub rooms: Vec<Room>,
    /// What the middleware attached.
    pub data: SocketData,
    /// When it went.
    pub at: Instant,
}

/// A recovered socket: its id, rooms, data and the packets it missed.
pub struct Restored {
    /// Its private id.
    pub pid: Arc<str>,
    /// Its socket id.
    pub id: SocketId,
    /// Its rooms.
    pub rooms: Vec<Room>,
    /// Its data (none when it was kept by another node).
    pub data: SocketData,
    /// The packets it missed, oldest first (each a text frame and its attachments).
    pub missed: Vec<Vec<Frame>>,
    /// Restored from another node: its data did not travel, the middleware rebuilds it.
    pub needs_middleware: bool,
}

/// One namespace's recovery state.
pub(crate) struct RecoveryStore {
    packets: VecDeque<StoredPacket>,
    persisted: HashMap<Arc<str>, PersistedSocket>,
    max_age: Duration,
    max_packets: usize,
}

impl RecoveryStore {
    pub(crate) fn new(cfg: &RecoveryConfig) -> Self {
        RecoveryStore {
            packets: VecDeque::new(),
            persisted: HashMap::new(),
            max_age: Duration::from_millis(cfg.max_disconnection_ms),
            max_packets: cfg.max_packets,
        }
    }

    /// Keeps a broadcast (to `rooms`, none: everyone) under `offset`.
    pub(crate) fn keep_packet(
        &mut self,
        offset: Arc<str>,
        rooms: &[Room],
        except_rooms: &[Room],
        frames: &[Frame],
    ) {
        self.packets.push_back(StoredPacket {
            offset,
            at: Instant::now(),
            rooms: rooms.to_vec(),
            except_rooms: except_rooms.to_vec(),
            frames: frames.to_vec(),
        });
        while self.packets.len() > self.max_packets {
            self.packets.pop_front();
        }
        self.prune();
    }

    /// Drops what is older than the recovery window.
    pub(crate) fn prune(&mut self) {
        let max_age = self.max_age;
        while self
            .packets
            .front()
            .is_some_and(|p| p.at.elapsed() > max_age)
        {
            self.packets.pop_front();
        }
        self.persisted.retain(|_, s| s.at.elapsed() <= max_age);
    }

    /// Sockets kept for recovery.
    pub(crate) fn sockets(&self) -> usize {
        self.persisted.len()
    }

    /// Broadcasts kept for replay.
    pub(crate) fn packets(&self) -> usize {
        self.packets.len()
    }

    pub(crate) fn persist(&mut self, s: PersistedSocket) {
        self.persisted.insert(s.pid.clone(), s);
    }

    /// Restores a socket kept here (`None`: not here, too old, or its offset is unknown, in
    /// which case it stays for a later try, as in Node).
    pub(crate) fn restore(&mut self, pid: &str, offset: &str) -> Option<Restored> {
        let session = self.persisted.remove(pid)?;
        if session.at.elapsed() > self.max_age {
            return None;
        }
        let Some(missed) = self.missed_since(offset, &session.id, &session.rooms) else {
            self.persisted.insert(session.pid.clone(), session);
            return None;
        };
        Some(Restored {
            pid: session.pid,
            id: session.id,
            rooms: session.rooms,
            data: session.data,
            missed,
            needs_middleware: false,
        })
    }

    /// The data this node kept for socket `id` under `pid`, taken (the cluster's copy of
    /// the socket won; this node only adds its data).
    pub(crate) fn take_data(&mut self, pid: &str, id: &str) -> Option<SocketData> {
        let max_age = self.max_age;
        self.persisted
            .remove(pid)
            .filter(|p| &*p.id == id && p.at.elapsed() <= max_age)
            .map(|p| p.data)
    }

    /// The kept broadcasts after `offset` that reached socket `id` in `rooms`; `None` when
    /// `offset` is not (or no longer) kept.
    pub(crate) fn missed_since(
        &self,
        offset: &str,
        id: &SocketId,
        rooms: &[Room],
    ) -> Option<Vec<Vec<Frame>>> {
        let index = self.packets.iter().position(|p| *p.offset == *offset)?;
        let in_rooms = |r: &Room| r.as_str() == id.as_str() || rooms.contains(r);
        Some(
            self.packets
                .iter()
                .skip(index + 1)
                .filter(|p| {
                    (p.rooms.is_empty() || p.rooms.iter().any(in_rooms))
                        && !p.except_rooms.iter().any(in_rooms)
                })
                .map(|p| p.frames.clone())
                .collect(),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn store(max_packets: usize) -> RecoveryStore {
        RecoveryStore::new(&RecoveryConfig {
            enabled: true,
            max_disconnection_ms: 60_000,
            max_packets,
        })
    }

    fn frames(t: &'static str) -> Vec<Frame> {
        vec![Frame::text_raw(t.as_bytes())]
    }

    fn r(s: &str) -> Room {
        Room::from(s)
    }

    fn o(s: &str) -> Arc<str> {
        Arc::from(s)
    }

    fn sock() -> SocketId {
        SocketId::from("sock")
    }

    #[test]
    fn replays_what_reached_the_socket_after_its_offset() {
        let mut st = store(100);
        st.keep_packet(o("o1"), &[], &[], &frames("a"));
        st.keep_packet(o("o2"), &[r("x")], &[], &frames("b"));
        st.keep_packet(o("o3"), &[r("y")], &[], &frames("c"));
        st.keep_packet(o("o4"), &[], &[r("sock")], &frames("d"));
        st.keep_packet(o("o5"), &[r("sock")], &[], &frames("e"));
        let missed = st.missed_since("o1", &sock(), &[r("x")]).expect("o1 kept");
        assert_eq!(missed, vec![frames("b"), frames("e")]);
        assert!(st.missed_since("nope", &sock(), &[]).is_none());
    }

    #[test]
    fn keeps_at_most_max_packets() {
        let mut st = store(2);
        for name in ["o1", "o2", "o3"] {
            st.keep_packet(o(name), &[], &[], &frames("a"));
        }
        assert!(st.missed_since("o1", &sock(), &[]).is_none(), "o1 dropped");
        assert_eq!(
            st.missed_since("o2", &sock(), &[]).map(|m| m.len()),
            Some(1)
        );
    }

    #[test]
    fn a_socket_is_restored_once_and_only_with_a_known_offset() {
        let mut st = store(10);
        st.keep_packet(o("o1"), &[], &[], &frames("a"));
        st.persist(PersistedSocket {
            pid: o("pid"),
            id: sock(),
            rooms: vec![r("x")],
            data: None,
            at: Instant::now(),
        });
        assert!(st.restore("pid", "unknown").is_none(), "unknown offset");
        let back = st.restore("pid", "o1").expect("kept after a failed try");
        assert_eq!(&*back.id, "sock");
        assert_eq!(back.rooms, vec![r("x")]);
        assert!(back.missed.is_empty());
        assert!(st.restore("pid", "o1").is_none(), "restored once");
    }
}
