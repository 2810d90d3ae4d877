//! Watchers: followers of one room of a namespace that are not sockets (an SSE stream, for
//! one). A watcher gets what the room's sockets get on this node — broadcasts targeted at
//! the room, socket commands, `disconnect_sockets` — whichever node emitted them; it does
//! not get namespace-wide broadcasts. It is called on the `ServerActor`'s thread, so it
//! must only hand things over (a channel), never work.

use std::collections::HashMap;
use std::sync::Arc;

use actix::{Addr, Handler, Message};
use serde_json::Value;

use super::fetch::SocketInfo;
use super::server::ServerActor;
use super::{Nsp, Room};
use crate::socketio::Outgoing;

/// What a watcher is handed.
pub enum Watched {
    /// A broadcast to the room (encoded once, shared).
    Packet(Arc<Outgoing>),
    /// A socket command to the room's sockets (`BroadcastOp::command`).
    Command {
        /// The command's name.
        name: Arc<str>,
        /// Its argument.
        args: Arc<Value>,
    },
    /// `disconnect_sockets` aimed at the room: the watcher should end too.
    Disconnect,
    /// The node is shutting down.
    Shutdown,
}

/// A follower of one room.
pub trait Watcher: Send + Sync + 'static {
    /// Takes one thing; false when the watcher wants nothing more (it is then dropped).
    fn watched(&self, what: Watched) -> bool;

    /// How `fetch_sockets` lists it (its `node` is filled in); not at all when `None`.
    fn describe(&self) -> Option<SocketInfo> {
        None
    }
}

/// The watchers of one room, each with its key.
type RoomWatchers = Vec<(u64, Arc<dyn Watcher>)>;

/// The watchers of one namespace, by room.
#[derive(Default)]
pub(super) struct Watchers {
    rooms: HashMap<Room, RoomWatchers>,
}

impl Watchers {
    /// Hands `what` (built per watcher) to each watcher of `room`, dropping those done.
    pub(super) fn tell(&mut self, room: &Room, what: impl Fn() -> Watched) {
        let Some(list) = self.rooms.get_mut(room) else {
            return;
        };
        list.retain(|(_, w)| w.watched(what()));
        if list.is_empty() {
            self.rooms.remove(room);
        }
    }

    /// Hands `what` to every watcher of the namespace.
    pub(super) fn tell_all(&mut self, what: impl Fn() -> Watched) {
        for list in self.rooms.values_mut() {
            list.retain(|(_, w)| w.watched(what()));
        }
        self.rooms.retain(|_, l| !l.is_empty());
    }

    /// The watchers that describe themselves, of `room` (all rooms when `None`), with
    /// one of `ids` when given; when `end`, each one found is told [`Watched::Disconnect`]
    /// and dropped.
    pub(super) fn describe(
        &mut self,
        room: Option<&Room>,
        ids: Option<&[String]>,
        end: bool,
    ) -> Vec<SocketInfo> {
        let mut found = Vec::new();
        for (r, list) in self.rooms.iter_mut() {
            if room.is_some_and(|want| want != r) {
                continue;
            }
            list.retain(|(_, w)| {
                let Some(info) = w.describe() else {
                    return true;
                };
                if ids.is_some_and(|ids| !ids.contains(&info.id)) {
                    return true;
                }
                found.push(info);
                if end {
                    w.watched(Watched::Disconnect);
                }
                !end
            });
        }
        self.rooms.retain(|_, l| !l.is_empty());
        found
    }

    /// Rooms with at least one watcher.
    pub(super) fn rooms(&self) -> usize {
        self.rooms.len()
    }

    fn add(&mut self, room: Room, key: u64, w: Arc<dyn Watcher>) {
        self.rooms.entry(room).or_default().push((key, w));
    }

    fn remove(&mut self, room: &Room, key: u64) {
        if let Some(list) = self.rooms.get_mut(room) {
            list.retain(|(k, _)| *k != key);
            if list.is_empty() {
                self.rooms.remove(room);
            }
        }
    }
}

/// Starts watching `room` of `nsp`.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Watch {
    pub(crate) nsp: Nsp,
    pub(crate) room: Room,
    pub(crate) key: u64,
    pub(crate) watcher: Arc<dyn Watcher>,
}

/// Stops watching.
#[derive(Message)]
#[rtype(result = "()")]
pub(crate) struct Unwatch {
    pub(crate) nsp: Nsp,
    pub(crate) room: Room,
    pub(crate) key: u64,
}

impl Handler<Watch> for ServerActor {
    type Result = ();
    fn handle(&mut self, msg: Watch, _: &mut Self::Context) {
        self.watchers(&msg.nsp).add(msg.room, msg.key, msg.watcher);
    }
}

impl Handler<Unwatch> for ServerActor {
    type Result = ();
    fn handle(&mut self, msg: Unwatch, _: &mut Self::Context) {
        self.watchers(&msg.nsp).remove(&msg.room, msg.key);
    }
}

static NEXT_WATCH: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// A watch in place; dropping it ends the watch.
pub struct Watching {
    server: Addr<ServerActor>,
    nsp: Nsp,
    room: Room,
    key: u64,
}

impl Watching {
    pub(crate) fn start(
        server: Addr<ServerActor>,
        nsp: Nsp,
        room: Room,
        watcher: Arc<dyn Watcher>,
    ) -> Self {
        let key = NEXT_WATCH.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        server.do_send(Watch {
            nsp: nsp.clone(),
            room: room.clone(),
            key,
            watcher,
        });
        Watching {
            server,
            nsp,
            room,
            key,
        }
    }
}

impl Drop for Watching {
    fn drop(&mut self) {
        self.server.do_send(Unwatch {
            nsp: self.nsp.clone(),
            room: self.room.clone(),
            key: self.key,
        });
    }
}
