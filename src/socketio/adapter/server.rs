//! `ServerActor`: this node's registry of namespaces, sockets and rooms, the recovery
//! store, the routing of broadcasts to room actors and the cluster bus, the node's figures,
//! and graceful shutdown. It routes packets but never encodes or inspects one.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::{
    Actor, ActorFutureExt, Addr, AsyncContext, Context, Handler, Message, MessageResult,
    ResponseActFuture, ResponseFuture, WrapFuture,
};
use serde_json::Value;

use super::room::{
    AddMember, Fanout, Members, MembersOp, RemoveMember, RoomActor, StopRoom, ToMembers,
};
use super::watch::{Watched, Watchers};
use super::{Member, Nsp, Room, Shard, SocketId};
use crate::config::RecoveryConfig;
use crate::engine::Endpoint;
use crate::metrics::SizeCell;
use crate::protocol::{DisconnectReason, NodeId};
use crate::socketio::bus::{FromNode, KeptSession, NodeRelay, Relay};
use crate::socketio::client::{Deliver, ForSocket};
use crate::socketio::recovery::{PersistedSocket, RecoveryStore, Restored};
use crate::socketio::Outgoing;

/// How often the registry's map sizes are read into `rt_state_entries`.
const SIZES_EVERY: Duration = Duration::from_secs(1);

/// One room's actors, one per worker that has local members.
#[derive(Default)]
pub(super) struct RoomEntry {
    shards: Vec<ShardEntry>,
}

struct ShardEntry {
    worker: usize,
    addr: Addr<RoomActor>,
    members: usize,
}

impl RoomEntry {
    fn join(&mut self, nsp: &Nsp, room: &Room, shard: &Shard, member: Member) {
        let i = match self.shards.iter().position(|e| e.worker == shard.worker) {
            Some(i) => i,
            None => {
                let (nsp, room) = (nsp.clone(), room.clone());
                let addr =
                    RoomActor::start_in_arbiter(&shard.arbiter, move |_| RoomActor::new(nsp, room));
                self.shards.push(ShardEntry {
                    worker: shard.worker,
                    addr,
                    members: 0,
                });
                self.shards.len() - 1
            }
        };
        let e = &mut self.shards[i];
        e.members += 1;
        e.addr.do_send(AddMember(member));
    }

    /// Removes a member; true when the room has no members left anywhere.
    fn leave(&mut self, worker: usize, key: u64) -> bool {
        if let Some(i) = self.shards.iter().position(|e| e.worker == worker) {
            let e = &mut self.shards[i];
            e.addr.do_send(RemoveMember { key });
            e.members = e.members.saturating_sub(1);
            if e.members == 0 {
                e.addr.do_send(StopRoom);
                self.shards.swap_remove(i);
            }
        }
        self.shards.is_empty()
    }

    fn command_members(&self, op: &MembersOp) {
        for e in &self.shards {
            e.addr.do_send(ToMembers(op.clone()));
        }
    }

    /// Asks each of the room's actors for its members (at most `max` each).
    pub(super) fn members(&self, max: usize) -> Vec<actix::dev::Request<RoomActor, Members>> {
        self.shards
            .iter()
            .map(|e| e.addr.send(Members { max }))
            .collect()
    }

    fn fanout(&self, packet: &Arc<Outgoing>) {
        for e in &self.shards {
            e.addr.do_send(Fanout {
                packet: packet.clone(),
            });
        }
    }
}

pub(super) struct NsState {
    /// Every socket of the namespace.
    all: RoomEntry,
    pub(super) sockets: HashMap<SocketId, Member>,
    pub(super) rooms: HashMap<Room, RoomEntry>,
    recovery: RecoveryStore,
    /// Followers of rooms that are not sockets.
    pub(super) watchers: Watchers,
}

impl NsState {
    fn leave(&mut self, worker: usize, key: u64, rooms: &[Room]) {
        for r in rooms {
            if self.rooms.get_mut(r).is_some_and(|e| e.leave(worker, key)) {
                self.rooms.remove(r);
            }
        }
    }
}

/// The figures of one node (`admin:stats`, the cluster's node list).
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Stats {
    /// The node's id.
    pub node_id: String,
    /// Seconds since it started.
    pub uptime_s: u64,
    /// Engine.IO connections.
    pub sessions: usize,
    /// Live rooms.
    pub rooms: usize,
    /// Sockets per namespace.
    pub sockets: Value,
    /// Socket.IO events (EVENT and BINARY_EVENT packets) received since the node started.
    #[serde(default)]
    pub events_in: u64,
    /// Events written to sockets since the node started (a broadcast once per recipient;
    /// acks not counted).
    #[serde(default)]
    pub events_out: u64,
    /// Connections by transport and open SSE streams: `{polling, websocket, ws, sse}`.
    #[serde(default)]
    pub transports: Value,
}

/// This node's Socket.IO registry and router.
pub struct ServerActor {
    pub(super) node_id: NodeId,
    started: Instant,
    /// Relays to the other nodes; none on a single node.
    pub(super) bus: Option<Arc<dyn NodeRelay>>,
    /// The Engine.IO endpoints of the server (connection counts, shutdown).
    endpoints: Arc<Vec<Arc<dyn Endpoint>>>,
    pub(super) namespaces: HashMap<Nsp, NsState>,
    /// Fetches of this node waiting for other nodes' answers.
    pub(super) pending: super::fetch::Pending,
    recovery: RecoveryConfig,
    sizes: Sizes,
}

/// The sizes of the registry's maps, summed over namespaces, for `rt_state_entries`.
struct Sizes {
    sockets: SizeCell,
    rooms: SizeCell,
    kept_sockets: SizeCell,
    kept_packets: SizeCell,
    watched_rooms: SizeCell,
}

impl Sizes {
    fn new() -> Self {
        Sizes {
            sockets: SizeCell::new("sockets"),
            rooms: SizeCell::new("rooms"),
            kept_sockets: SizeCell::new("recovery_sockets"),
            kept_packets: SizeCell::new("recovery_packets"),
            watched_rooms: SizeCell::new("watched_rooms"),
        }
    }
}

impl ServerActor {
    /// The registry of node `node_id` serving `endpoints`.
    pub fn new(
        recovery: RecoveryConfig,
        node_id: NodeId,
        endpoints: Arc<Vec<Arc<dyn Endpoint>>>,
    ) -> Self {
        ServerActor {
            node_id,
            started: Instant::now(),
            bus: None,
            endpoints,
            namespaces: HashMap::new(),
            pending: Default::default(),
            recovery,
            sizes: Sizes::new(),
        }
    }

    /// Reads the maps' sizes into their cells.
    fn report_sizes(&self) {
        let sum = |f: fn(&NsState) -> usize| self.namespaces.values().map(f).sum::<usize>();
        let s = &self.sizes;
        s.sockets.set(sum(|n| n.sockets.len()));
        s.rooms.set(sum(|n| n.rooms.len()));
        s.kept_sockets.set(sum(|n| n.recovery.sockets()));
        s.kept_packets.set(sum(|n| n.recovery.packets()));
        s.watched_rooms.set(sum(|n| n.watchers.rooms()));
    }

    pub(super) fn ns(&mut self, nsp: &Nsp) -> &mut NsState {
        let recovery = &self.recovery;
        self.namespaces
            .entry(nsp.clone())
            .or_insert_with(|| NsState {
                all: RoomEntry::default(),
                sockets: HashMap::new(),
                rooms: HashMap::new(),
                recovery: RecoveryStore::new(recovery),
                watchers: Watchers::default(),
            })
    }

    pub(super) fn watchers(&mut self, nsp: &Nsp) -> &mut Watchers {
        &mut self.ns(nsp).watchers
    }

    fn set_socket_gauge(nsp: &str, n: usize) {
        crate::metrics::get()
            .sockets
            .with_label_values(&[nsp])
            .set(n as i64);
    }

    /// Delivers a relay to this node's members (and keeps a broadcast for recovery).
    fn apply(&mut self, relay: Relay) {
        match relay {
            Relay::Broadcast {
                rooms,
                packet,
                offset,
            } => {
                let recovery = self.recovery.enabled;
                let ns = self.ns(&packet.nsp);
                if let (true, Some(offset)) = (recovery, offset) {
                    ns.recovery
                        .keep_packet(offset, &rooms, &packet.except_rooms, &packet.frames);
                }
                if rooms.is_empty() {
                    return ns.all.fanout(&packet);
                }
                for r in &rooms {
                    if !packet.except_rooms.contains(r) {
                        ns.watchers.tell(r, || Watched::Packet(packet.clone()));
                    }
                    if let Some(e) = ns.rooms.get(r) {
                        e.fanout(&packet);
                    } else if let Some(m) = ns.sockets.get(r.as_str()) {
                        // every socket is implicitly in the room named by its own id
                        m.addr.do_send(Deliver {
                            key: m.key,
                            packet: packet.clone(),
                        });
                    }
                }
            }
            Relay::DisconnectSockets { nsp, rooms } => {
                let w = self.watchers(&nsp);
                for r in &rooms {
                    w.tell(r, || Watched::Disconnect);
                }
                self.command_sockets(&nsp, &rooms, MembersOp::Disconnect)
            }
            Relay::Command {
                nsp,
                rooms,
                name,
                args,
            } => {
                let w = self.watchers(&nsp);
                for r in &rooms {
                    w.tell(r, || Watched::Command {
                        name: name.clone(),
                        args: args.clone(),
                    });
                }
                self.command_sockets(&nsp, &rooms, MembersOp::Command { name, args })
            }
            Relay::Fetch {
                from,
                request,
                query,
            } => self.answer_fetch(from, request, query),
            Relay::Fetched {
                to,
                request,
                sockets,
            } => self.take_fetched(&to, request, sockets),
        }
    }

    /// Tells this node's sockets of `nsp` in any of `rooms` (all when empty) to do `op`.
    fn command_sockets(&mut self, nsp: &Nsp, rooms: &[Room], op: MembersOp) {
        let ns = self.ns(nsp);
        if rooms.is_empty() {
            return ns.all.command_members(&op);
        }
        for r in rooms {
            if let Some(e) = ns.rooms.get(r) {
                e.command_members(&op);
            } else if let Some(m) = ns.sockets.get(r.as_str()) {
                m.addr.do_send(ForSocket {
                    key: m.key,
                    cmd: op.for_socket(),
                });
            }
        }
    }

    fn local_stats(&self) -> Stats {
        let (events_in, events_out) = crate::metrics::event_totals();
        let sockets = self
            .namespaces
            .iter()
            .map(|(k, v)| (k.to_string(), Value::from(v.sockets.len())))
            .collect::<serde_json::Map<_, _>>();
        Stats {
            node_id: self.node_id.to_string(),
            uptime_s: self.started.elapsed().as_secs(),
            sessions: self.endpoints.iter().map(|e| e.len()).sum(),
            rooms: self.namespaces.values().map(|n| n.rooms.len()).sum(),
            sockets: Value::Object(sockets),
            events_in,
            events_out,
            transports: crate::metrics::transport_counts(),
        }
    }
}

impl Actor for ServerActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(1 << 16);
        if self.recovery.enabled {
            ctx.run_interval(Duration::from_secs(5), |act, _| {
                for ns in act.namespaces.values_mut() {
                    ns.recovery.prune();
                }
            });
        }
        ctx.run_interval(SIZES_EVERY, |act, _| act.report_sizes());
    }
}

/// A socket joined a namespace.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SocketConnected {
    /// Its namespace.
    pub nsp: Nsp,
    /// Its id.
    pub id: SocketId,
    /// The socket.
    pub member: Member,
    /// Its session's worker.
    pub shard: Shard,
}

impl Handler<SocketConnected> for ServerActor {
    type Result = ();
    fn handle(&mut self, msg: SocketConnected, _: &mut Self::Context) {
        let ns = self.ns(&msg.nsp);
        ns.all
            .join(&msg.nsp, &Room::from(""), &msg.shard, msg.member.clone());
        ns.sockets.insert(msg.id, msg.member);
        let n = ns.sockets.len();
        Self::set_socket_gauge(&msg.nsp, n);
    }
}

/// A socket left its namespace; `persist` keeps its state for connection state recovery.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SocketDisconnected {
    /// Its namespace.
    pub nsp: Nsp,
    /// Its id.
    pub id: SocketId,
    /// Its key.
    pub key: u64,
    /// Its session's worker.
    pub worker: usize,
    /// The rooms it was in.
    pub rooms: Vec<Room>,
    /// Kept for recovery, when the reason allows.
    pub persist: Option<PersistedSocket>,
}

impl Handler<SocketDisconnected> for ServerActor {
    type Result = ();
    fn handle(&mut self, msg: SocketDisconnected, _: &mut Self::Context) {
        let recovery = self.recovery.clone();
        let bus = self.bus.clone();
        let ns = self.ns(&msg.nsp);
        ns.all.leave(msg.worker, msg.key);
        if ns.sockets.get(&msg.id).is_some_and(|m| m.key == msg.key) {
            ns.sockets.remove(&msg.id);
        }
        ns.leave(msg.worker, msg.key, &msg.rooms);
        let n = ns.sockets.len();
        if let (true, Some(p)) = (recovery.enabled, msg.persist) {
            if let Some(bus) = bus {
                // kept in the cluster too, so the client may come back on another node
                bus.keep_session(
                    msg.nsp.clone(),
                    p.pid.clone(),
                    KeptSession {
                        id: p.id.clone(),
                        rooms: p.rooms.clone(),
                    },
                    recovery.max_disconnection_ms,
                );
            }
            ns.recovery.persist(p);
        }
        Self::set_socket_gauge(&msg.nsp, n);
    }
}

/// A socket joined rooms.
#[derive(Message)]
#[rtype(result = "()")]
pub struct JoinRooms {
    /// Its namespace.
    pub nsp: Nsp,
    /// The socket.
    pub member: Member,
    /// Its session's worker.
    pub shard: Shard,
    /// The rooms it joined (new ones only).
    pub rooms: Vec<Room>,
}

impl Handler<JoinRooms> for ServerActor {
    type Result = ();
    fn handle(&mut self, msg: JoinRooms, _: &mut Self::Context) {
        let ns = self.ns(&msg.nsp);
        for r in &msg.rooms {
            ns.rooms.entry(r.clone()).or_default().join(
                &msg.nsp,
                r,
                &msg.shard,
                msg.member.clone(),
            );
        }
    }
}

/// A socket left rooms.
#[derive(Message)]
#[rtype(result = "()")]
pub struct LeaveRooms {
    /// Its namespace.
    pub nsp: Nsp,
    /// Its key.
    pub key: u64,
    /// Its session's worker.
    pub worker: usize,
    /// The rooms it left.
    pub rooms: Vec<Room>,
}

impl Handler<LeaveRooms> for ServerActor {
    type Result = ();
    fn handle(&mut self, msg: LeaveRooms, _: &mut Self::Context) {
        self.ns(&msg.nsp).leave(msg.worker, msg.key, &msg.rooms);
    }
}

/// A broadcast or `disconnect_sockets` emitted on this node: delivered here and relayed to
/// the other nodes.
#[derive(Message)]
#[rtype(result = "()")]
pub struct Emit(pub Relay);

impl Handler<Emit> for ServerActor {
    type Result = ();
    fn handle(&mut self, msg: Emit, _: &mut Self::Context) {
        if let Some(bus) = &self.bus {
            bus.publish(msg.0.clone());
        }
        self.apply(msg.0);
    }
}

impl Handler<FromNode> for ServerActor {
    type Result = ();
    fn handle(&mut self, msg: FromNode, _: &mut Self::Context) {
        self.apply(msg.0);
    }
}

/// Looks up a persisted socket for a reconnecting client (`pid`, `offset` from its auth).
#[derive(Message)]
#[rtype(result = "Option<Restored>")]
pub struct RestoreSession {
    /// The namespace.
    pub nsp: Nsp,
    /// The private id the client presented.
    pub pid: String,
    /// The offset of the last packet it got.
    pub offset: String,
}

impl Handler<RestoreSession> for ServerActor {
    type Result = ResponseActFuture<Self, Option<Restored>>;
    fn handle(&mut self, msg: RestoreSession, _: &mut Self::Context) -> Self::Result {
        if !self.recovery.enabled {
            return Box::pin(actix::fut::ready(None));
        }
        let Some(bus) = self.bus.clone() else {
            let restored = self.ns(&msg.nsp).recovery.restore(&msg.pid, &msg.offset);
            return Box::pin(actix::fut::ready(restored));
        };
        // In a cluster the bus has the latest state (the client may have been on another
        // node since this one kept it); this node's copy only contributes the socket's data.
        let ask = bus.take_session(msg.nsp.clone(), Arc::from(msg.pid.as_str()));
        Box::pin(ask.into_actor(self).map(move |res, act, _| {
            let ns = act.ns(&msg.nsp);
            let Some(kept) = res else {
                // not in the cluster (or it is away): what this node kept, if anything
                return ns.recovery.restore(&msg.pid, &msg.offset);
            };
            let data = ns.recovery.take_data(&msg.pid, &kept.id);
            let missed = ns
                .recovery
                .missed_since(&msg.offset, &kept.id, &kept.rooms)?;
            Some(Restored {
                pid: Arc::from(msg.pid.as_str()),
                id: kept.id,
                rooms: kept.rooms,
                needs_middleware: data.is_none(),
                data: data.flatten(),
                missed,
            })
        }))
    }
}

/// Attaches the cluster bus.
#[derive(Message)]
#[rtype(result = "()")]
pub struct SetBus(pub Arc<dyn NodeRelay>);

impl Handler<SetBus> for ServerActor {
    type Result = ();
    fn handle(&mut self, msg: SetBus, _: &mut Self::Context) {
        self.bus = Some(msg.0);
    }
}

/// This node's figures.
#[derive(Message)]
#[rtype(result = "Stats")]
pub struct GetStats;

impl Handler<GetStats> for ServerActor {
    type Result = MessageResult<GetStats>;
    fn handle(&mut self, _: GetStats, _: &mut Self::Context) -> Self::Result {
        MessageResult(self.local_stats())
    }
}

/// The figures of every live node of the cluster (just this one without a bus).
#[derive(Message)]
#[rtype(result = "Vec<Stats>")]
pub struct ClusterStats;

impl Handler<ClusterStats> for ServerActor {
    type Result = ResponseFuture<Vec<Stats>>;
    fn handle(&mut self, _: ClusterStats, _: &mut Self::Context) -> Self::Result {
        let local = self.local_stats();
        let Some(bus) = self.bus.clone() else {
            return Box::pin(async move { vec![local] });
        };
        let ask = bus.nodes();
        Box::pin(async move {
            match ask.await {
                Some(all) if !all.is_empty() => all,
                _ => vec![local],
            }
        })
    }
}

/// Whether the cluster bus answers: `None` on a single node.
#[derive(Message)]
#[rtype(result = "Option<bool>")]
pub struct BusStatus;

impl Handler<BusStatus> for ServerActor {
    type Result = ResponseFuture<Option<bool>>;
    fn handle(&mut self, _: BusStatus, _: &mut Self::Context) -> Self::Result {
        let Some(bus) = self.bus.clone() else {
            return Box::pin(async { None });
        };
        let ask = bus.is_up();
        Box::pin(async move { Some(ask.await) })
    }
}

/// Leaves the cluster, then closes every connection at the Engine.IO level (`server
/// shutting down`: clients see `transport close` and reconnect, recoverable sessions stay
/// recoverable), spread over `spread`; answers how many connections will be closed.
#[derive(Message)]
#[rtype(result = "usize")]
pub struct Shutdown {
    /// The closes are spread evenly over this long (zero: all at once).
    pub spread: std::time::Duration,
}

impl Handler<Shutdown> for ServerActor {
    type Result = ResponseFuture<usize>;
    fn handle(&mut self, msg: Shutdown, _: &mut Self::Context) -> Self::Result {
        let leave = self.bus.as_ref().map(|b| b.leave());
        for ns in self.namespaces.values_mut() {
            ns.watchers.tell_all(|| Watched::Shutdown);
        }
        let endpoints = self.endpoints.clone();
        Box::pin(async move {
            if let Some(leave) = leave {
                leave.await;
            }
            endpoints
                .iter()
                .map(|e| e.close_spread(DisconnectReason::ServerShuttingDown, msg.spread))
                .sum()
        })
    }
}
