//! An in-memory cluster: several servers in one process share a [`MemoryHub`]. Relays go
//! through the same wire encoding as Redis, so what one node emits reaches the others as
//! it would through Redis (once, never back to its origin). For tests and embedding.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard};

use futures_util::future::BoxFuture;
use futures_util::FutureExt;

use super::wire::BusMessage;
use crate::protocol::{now_ms, NodeId, Nsp, Room, SocketId, UserId};
use crate::socketio::adapter::{GetStats, Stats};
use crate::socketio::bus::{
    Arrival, BusNode, Cluster, ClusterState, FromNode, KeptSession, NodeRelay, PresenceChange,
    PresenceCount, PresenceOp, PresenceUpdate, Relay, StateKey, StateTable,
};

/// A presence entry: node, socket, user.
type Entry = (NodeId, SocketId, UserId);

#[derive(Default)]
struct HubState {
    nodes: Vec<BusNode>,
    presence: HashMap<(Nsp, Room), HashSet<Entry>>,
    sessions: HashMap<(Nsp, Arc<str>), KeptSession>,
    states: StateTable,
}

/// The shared state of an in-memory cluster.
#[derive(Clone, Default)]
pub struct MemoryHub {
    state: Arc<Mutex<HubState>>,
}

impl MemoryHub {
    /// An empty cluster.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a node; its relay reaches every other node of the hub, and its state is the
    /// hub's.
    pub fn join(&self, node: BusNode) -> Cluster {
        self.lock().nodes.push(node.clone());
        Cluster::of(Arc::new(MemoryBus {
            hub: self.clone(),
            me: node,
        }))
    }

    fn lock(&self) -> MutexGuard<'_, HubState> {
        // Every change under the lock is a single insert or remove: a poisoned lock still
        // holds consistent state.
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }
}

struct MemoryBus {
    hub: MemoryHub,
    me: BusNode,
}

impl NodeRelay for MemoryBus {
    fn publish(&self, relay: Relay) {
        let bytes = BusMessage::from_relay(&self.me.id, &relay, now_ms()).encode();
        let others: Vec<_> = self
            .hub
            .lock()
            .nodes
            .iter()
            .filter(|n| n.id != self.me.id)
            .map(|n| n.server.clone())
            .collect();
        for server in others {
            if let Ok(msg) = BusMessage::decode(&bytes) {
                server.do_send(FromNode(msg.into_relay()));
            }
        }
    }

    fn nodes(&self) -> BoxFuture<'static, Option<Vec<Stats>>> {
        let asks: Vec<_> = self
            .hub
            .lock()
            .nodes
            .iter()
            .map(|n| n.server.send(GetStats))
            .collect();
        async move {
            let mut all: Vec<Stats> = futures_util::future::join_all(asks)
                .await
                .into_iter()
                .filter_map(Result::ok)
                .collect();
            all.sort_by(|a, b| a.node_id.cmp(&b.node_id));
            Some(all)
        }
        .boxed()
    }

    fn keep_session(&self, nsp: Nsp, pid: Arc<str>, session: KeptSession, _ttl_ms: u64) {
        self.hub.lock().sessions.insert((nsp, pid), session);
    }

    fn take_session(&self, nsp: Nsp, pid: Arc<str>) -> BoxFuture<'static, Option<KeptSession>> {
        let kept = self.hub.lock().sessions.remove(&(nsp, pid));
        futures_util::future::ready(kept).boxed()
    }

    fn is_up(&self) -> BoxFuture<'static, bool> {
        futures_util::future::ready(true).boxed()
    }

    fn leave(&self) -> BoxFuture<'static, ()> {
        self.hub.lock().nodes.retain(|n| n.id != self.me.id);
        futures_util::future::ready(()).boxed()
    }
}

impl ClusterState for MemoryBus {
    fn presence(&self, u: PresenceUpdate) -> BoxFuture<'static, Option<PresenceCount>> {
        let mut hub = self.hub.lock();
        let live: HashSet<NodeId> = hub.nodes.iter().map(|n| n.id.clone()).collect();
        let set = hub
            .presence
            .entry((u.nsp.clone(), u.room.clone()))
            .or_default();
        set.retain(|(node, _, _)| live.contains(node));
        let me: Entry = (self.me.id.clone(), u.socket.clone(), u.user.clone());
        let moved = match u.op {
            PresenceOp::Join => set.insert(me),
            PresenceOp::Leave => set.remove(&me),
            PresenceOp::Count => false,
        };
        let others_of_user = set.iter().filter(|(_, _, user)| *user == u.user).count();
        let count = set
            .iter()
            .map(|(_, _, user)| user)
            .collect::<HashSet<_>>()
            .len();
        let change = match (moved, u.op) {
            (true, PresenceOp::Join) if others_of_user == 1 => PresenceChange::Arrived,
            (true, PresenceOp::Leave) if others_of_user == 0 => PresenceChange::Departed,
            _ => PresenceChange::Unchanged,
        };
        if set.is_empty() {
            // a room nobody is in holds nothing
            hub.presence.remove(&(u.nsp, u.room));
        }
        futures_util::future::ready(Some(PresenceCount { change, count })).boxed()
    }

    fn rooms(&self, nsp: Nsp, max: usize) -> BoxFuture<'static, Option<Vec<(Room, usize)>>> {
        let hub = self.hub.lock();
        let live: HashSet<NodeId> = hub.nodes.iter().map(|n| n.id.clone()).collect();
        let rooms = hub
            .presence
            .iter()
            .filter(|((n, _), _)| *n == nsp)
            .filter_map(|((_, room), set)| {
                let users: HashSet<_> = set
                    .iter()
                    .filter(|(node, _, _)| live.contains(node))
                    .map(|(_, _, user)| user)
                    .collect();
                (!users.is_empty()).then(|| (room.clone(), users.len()))
            })
            .take(max)
            .collect();
        futures_util::future::ready(Some(rooms)).boxed()
    }

    fn room_users(
        &self,
        nsp: Nsp,
        room: Room,
        max: usize,
    ) -> BoxFuture<'static, Option<Vec<UserId>>> {
        let hub = self.hub.lock();
        let live: HashSet<NodeId> = hub.nodes.iter().map(|n| n.id.clone()).collect();
        let users: HashSet<UserId> = hub
            .presence
            .get(&(nsp, room))
            .into_iter()
            .flatten()
            .filter(|(node, _, _)| live.contains(node))
            .map(|(_, _, user)| user.clone())
            .collect();
        futures_util::future::ready(Some(users.into_iter().take(max).collect())).boxed()
    }

    fn arrive(&self, key: StateKey) -> BoxFuture<'static, Option<Arrival>> {
        let a = self.hub.lock().states.arrive(key, now_ms());
        futures_util::future::ready(Some(a)).boxed()
    }

    fn generation(&self, key: StateKey) -> BoxFuture<'static, Option<i64>> {
        let g = self.hub.lock().states.generation(&key);
        futures_util::future::ready(Some(g)).boxed()
    }

    fn settle(&self, key: StateKey, gen: i64) -> BoxFuture<'static, Option<bool>> {
        let done = self.hub.lock().states.settle(&key, gen);
        futures_util::future::ready(Some(done)).boxed()
    }

    fn states(&self, keys: Vec<StateKey>) -> BoxFuture<'static, Option<Vec<bool>>> {
        let up = self.hub.lock().states.states(&keys);
        futures_util::future::ready(Some(up)).boxed()
    }

    fn lost_nodes(&self) -> u64 {
        // nodes leave a hub only on purpose (`leave`), never unseen
        0
    }

    fn orphans(&self, nsp: Nsp, max: usize) -> BoxFuture<'static, Option<Vec<Room>>> {
        let hub = self.hub.lock();
        let live: HashSet<NodeId> = hub.nodes.iter().map(|n| n.id.clone()).collect();
        let orphans = hub
            .states
            .up_in(&nsp)
            .into_iter()
            .filter(|room| {
                !hub.presence
                    .get(&(nsp.clone(), room.clone()))
                    .is_some_and(|set| set.iter().any(|(node, _, _)| live.contains(node)))
            })
            .take(max)
            .collect();
        futures_util::future::ready(Some(orphans)).boxed()
    }
}
