//! `ServerActor`: the registry and supervisor. It knows every session (for polling and
//! upgrade look-ups), every connected socket per namespace, every live room (starting and
//! stopping `RoomActor`s), keeps the connection-state-recovery store, and drives graceful
//! shutdown. It routes broadcasts to room actors but never encodes or inspects a packet.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use actix::{
    Actor, ActorFutureExt, Addr, AsyncContext, Context, Handler, MessageResult, ResponseActFuture,
    ResponseFuture, WrapFuture,
};
use serde_json::Value;

use super::bridge::{self, ClusterPresence, Publish, PublishDisconnect, RedisBridge};
use super::messages::*;
use super::room::RoomActor;
use super::session::{CloseSession, ForSocket, SocketCommand, WsSession};
use crate::config::RecoveryConfig;
use crate::protocol::engine::Frame;
use crate::socketio::reason;

/// One room's actors, one per worker that has local members.
#[derive(Default)]
struct RoomEntry {
    shards: Vec<ShardEntry>,
}

struct ShardEntry {
    worker: usize,
    addr: Addr<RoomActor>,
    members: usize,
}

impl RoomEntry {
    fn join(
        &mut self,
        nsp: &Arc<str>,
        room: &Room,
        shard: &Shard,
        key: u64,
        addr: Addr<WsSession>,
    ) {
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
        e.addr.do_send(AddMember { key, addr });
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

    fn disconnect_members(&self) {
        for e in &self.shards {
            e.addr.do_send(DisconnectMembers);
        }
    }

    fn fanout(&self, packet: &Arc<Outgoing>) {
        for e in &self.shards {
            e.addr.do_send(Fanout {
                packet: packet.clone(),
            });
        }
    }
}

/// A broadcast kept for replay to recovering sockets.
struct StoredPacket {
    offset: Arc<str>,
    at: Instant,
    rooms: Vec<Room>,
    except_rooms: Vec<Room>,
    frames: Vec<Frame>,
}

#[derive(Default)]
struct NsState {
    /// Every socket of the namespace.
    all: RoomEntry,
    sockets: HashMap<Arc<str>, (u64, Addr<WsSession>)>,
    rooms: HashMap<Room, RoomEntry>,
    packets: VecDeque<StoredPacket>,
    persisted: HashMap<Arc<str>, PersistedSocket>,
}

/// A room's users, each with the ids of its sockets in the room.
type RoomPresence = HashMap<Arc<str>, Vec<Arc<str>>>;

pub struct ServerActor {
    node_id: Arc<str>,
    /// Relays to the other nodes; none on a single node.
    bridge: Option<Addr<RedisBridge>>,
    started: Instant,
    sessions: HashMap<Arc<str>, (u32, Addr<WsSession>)>,
    /// (namespace, room) → user → sockets of that user in the room.
    presence: HashMap<(Arc<str>, Room), RoomPresence>,
    namespaces: HashMap<Arc<str>, NsState>,
    recovery: RecoveryConfig,
}

impl ServerActor {
    pub fn new(recovery: RecoveryConfig, node_id: Arc<str>) -> Self {
        ServerActor {
            node_id,
            bridge: None,
            started: Instant::now(),
            sessions: HashMap::new(),
            presence: HashMap::new(),
            namespaces: HashMap::new(),
            recovery,
        }
    }

    fn ns(&mut self, nsp: &Arc<str>) -> &mut NsState {
        self.namespaces.entry(nsp.clone()).or_default()
    }

    fn max_age(&self) -> Duration {
        Duration::from_millis(self.recovery.max_disconnection_ms)
    }

    fn prune(&mut self) {
        let max_age = self.max_age();
        for ns in self.namespaces.values_mut() {
            while ns.packets.front().is_some_and(|p| p.at.elapsed() > max_age) {
                ns.packets.pop_front();
            }
            ns.persisted.retain(|_, s| s.at.elapsed() <= max_age);
        }
    }

    fn leave(ns: &mut NsState, worker: usize, key: u64, rooms: &[Room]) {
        for r in rooms {
            if ns.rooms.get_mut(r).is_some_and(|e| e.leave(worker, key)) {
                ns.rooms.remove(r);
            }
        }
    }
}

impl Actor for ServerActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(1 << 16);
        if self.recovery.enabled {
            ctx.run_interval(Duration::from_secs(5), |act, _| act.prune());
        }
    }
}

impl Handler<RegisterSession> for ServerActor {
    type Result = ();
    fn handle(&mut self, msg: RegisterSession, _: &mut Self::Context) {
        self.sessions.insert(msg.sid, (msg.mount, msg.addr));
        crate::metrics::get()
            .connections
            .set(self.sessions.len() as i64);
    }
}

impl Handler<SessionClosed> for ServerActor {
    type Result = ();
    fn handle(&mut self, msg: SessionClosed, _: &mut Self::Context) {
        self.sessions.remove(&msg.sid);
        crate::metrics::get()
            .connections
            .set(self.sessions.len() as i64);
    }
}

impl Handler<LookupSession> for ServerActor {
    type Result = Option<Addr<WsSession>>;
    fn handle(&mut self, msg: LookupSession, _: &mut Self::Context) -> Self::Result {
        match self.sessions.get(msg.sid.as_str()) {
            Some((mount, addr)) if *mount == msg.mount => Some(addr.clone()),
            _ => None,
        }
    }
}

impl Handler<SocketConnected> for ServerActor {
    type Result = ();
    fn handle(&mut self, msg: SocketConnected, _: &mut Self::Context) {
        let nsp = msg.nsp.clone();
        let ns = self.ns(&msg.nsp);
        ns.all
            .join(&nsp, &Arc::from(""), &msg.shard, msg.key, msg.addr.clone());
        ns.sockets.insert(msg.id, (msg.key, msg.addr));
        let n = ns.sockets.len() as i64;
        crate::metrics::get()
            .sockets
            .with_label_values(&[&nsp])
            .set(n);
    }
}

impl Handler<SocketDisconnected> for ServerActor {
    type Result = ();
    fn handle(&mut self, msg: SocketDisconnected, _: &mut Self::Context) {
        let recovery = self.recovery.enabled;
        let ns = self.ns(&msg.nsp);
        ns.all.leave(msg.worker, msg.key);
        if ns.sockets.get(&msg.id).is_some_and(|(k, _)| *k == msg.key) {
            ns.sockets.remove(&msg.id);
        }
        Self::leave(ns, msg.worker, msg.key, &msg.rooms);
        let n = ns.sockets.len() as i64;
        if let (true, Some(p)) = (recovery, msg.persist) {
            if let Some(b) = &self.bridge {
                // kept in Redis too, so the client may come back on another node
                b.do_send(bridge::StoreSession {
                    nsp: msg.nsp.clone(),
                    pid: p.pid.clone(),
                    id: p.id.clone(),
                    rooms: p.rooms.clone(),
                    ttl_ms: self.recovery.max_disconnection_ms,
                });
            }
            let ns = self.ns(&msg.nsp);
            ns.persisted.insert(p.pid.clone(), p);
        }
        crate::metrics::get()
            .sockets
            .with_label_values(&[&msg.nsp])
            .set(n);
    }
}

impl Handler<JoinRooms> for ServerActor {
    type Result = ();
    fn handle(&mut self, msg: JoinRooms, _: &mut Self::Context) {
        let nsp = msg.nsp.clone();
        let ns = self.ns(&msg.nsp);
        for r in &msg.rooms {
            ns.rooms.entry(r.clone()).or_default().join(
                &nsp,
                r,
                &msg.shard,
                msg.key,
                msg.addr.clone(),
            );
        }
    }
}

impl Handler<LeaveRooms> for ServerActor {
    type Result = ();
    fn handle(&mut self, msg: LeaveRooms, _: &mut Self::Context) {
        let ns = self.ns(&msg.nsp);
        Self::leave(ns, msg.worker, msg.key, &msg.rooms);
    }
}

impl Handler<Broadcast> for ServerActor {
    type Result = ();
    fn handle(&mut self, msg: Broadcast, _: &mut Self::Context) {
        if let (false, Some(b)) = (msg.remote, &self.bridge) {
            b.do_send(Publish {
                rooms: msg.rooms.clone(),
                packet: msg.packet.clone(),
                offset: msg.offset.clone(),
            });
        }
        let max_packets = self.recovery.max_packets;
        let max_age = self.max_age();
        let ns = self.ns(&msg.packet.nsp);
        if let Some(offset) = msg.offset {
            ns.packets.push_back(StoredPacket {
                offset,
                at: Instant::now(),
                rooms: msg.rooms.clone(),
                except_rooms: msg.packet.except_rooms.clone(),
                frames: msg.packet.frames.clone(),
            });
            while ns.packets.len() > max_packets
                || ns.packets.front().is_some_and(|p| p.at.elapsed() > max_age)
            {
                ns.packets.pop_front();
            }
        }
        if msg.rooms.is_empty() {
            ns.all.fanout(&msg.packet);
            return;
        }
        for r in &msg.rooms {
            if let Some(e) = ns.rooms.get(r) {
                e.fanout(&msg.packet);
            } else if let Some((key, addr)) = ns.sockets.get(r) {
                // every socket is implicitly in the room named by its own id
                addr.do_send(Deliver {
                    key: *key,
                    packet: msg.packet.clone(),
                });
            }
        }
    }
}

impl Handler<DisconnectSockets> for ServerActor {
    type Result = ();
    fn handle(&mut self, msg: DisconnectSockets, _: &mut Self::Context) {
        if let (false, Some(b)) = (msg.remote, &self.bridge) {
            b.do_send(PublishDisconnect {
                nsp: msg.nsp.clone(),
                rooms: msg.rooms.clone(),
            });
        }
        let ns = self.ns(&msg.nsp);
        if msg.rooms.is_empty() {
            ns.all.disconnect_members();
            return;
        }
        for r in &msg.rooms {
            if let Some(e) = ns.rooms.get(r) {
                e.disconnect_members();
            } else if let Some((key, addr)) = ns.sockets.get(r) {
                addr.do_send(ForSocket {
                    key: *key,
                    cmd: SocketCommand::Disconnect,
                });
            }
        }
    }
}

impl ServerActor {
    /// Restores a session this node persisted (`None`: not here, too old, or its offset is
    /// unknown, in which case it stays for a later try as in Node).
    fn restore_local(&mut self, msg: &RestoreSession) -> Option<Restored> {
        let max_age = self.max_age();
        let ns = self.ns(&msg.nsp);
        let session = ns.persisted.remove(msg.pid.as_str())?;
        if session.at.elapsed() > max_age {
            return None;
        }
        let Some(missed) = Self::missed_since(ns, &msg.offset, &session.id, &session.rooms) else {
            ns.persisted.insert(session.pid.clone(), session);
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

    /// The kept broadcasts after `offset` that reached socket `id` in `rooms`; `None` when
    /// `offset` is not (or no longer) kept.
    fn missed_since(
        ns: &NsState,
        offset: &str,
        id: &Room,
        rooms: &[Room],
    ) -> Option<Vec<Vec<Frame>>> {
        let index = ns.packets.iter().position(|p| *p.offset == *offset)?;
        let in_rooms = |r: &Room| r == id || rooms.contains(r);
        Some(
            ns.packets
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

impl Handler<RestoreSession> for ServerActor {
    type Result = ResponseActFuture<Self, Option<Restored>>;
    fn handle(&mut self, msg: RestoreSession, _: &mut Self::Context) -> Self::Result {
        if !self.recovery.enabled {
            return Box::pin(actix::fut::ready(None));
        }
        let Some(b) = self.bridge.clone() else {
            return Box::pin(actix::fut::ready(self.restore_local(&msg)));
        };
        // In a cluster Redis has the latest state (the client may have been on another node
        // since this one kept it); this node's copy only contributes the socket's data.
        let ask = b.send(bridge::TakeSession {
            nsp: msg.nsp.clone(),
            pid: msg.pid.clone(),
        });
        Box::pin(ask.into_actor(self).map(move |res, act, _| {
            let Some((id, rooms)) = res.ok().flatten() else {
                // not in Redis (or Redis away): what this node kept, if anything
                return act.restore_local(&msg);
            };
            let max_age = act.max_age();
            let ns = act.ns(&msg.nsp);
            let data = ns
                .persisted
                .remove(msg.pid.as_str())
                .filter(|p| p.id == id && p.at.elapsed() <= max_age)
                .map(|p| p.data);
            let missed = Self::missed_since(ns, &msg.offset, &id, &rooms)?;
            Some(Restored {
                pid: Arc::from(msg.pid.as_str()),
                id,
                rooms,
                needs_middleware: data.is_none(),
                data: data.flatten(),
                missed,
            })
        }))
    }
}

impl ServerActor {
    /// This node's own presence count (also the fallback while Redis is away).
    fn local_presence(&mut self, msg: &UpdatePresence) -> PresenceChange {
        let key = (msg.nsp.clone(), msg.room.clone());
        let users = self.presence.entry(key.clone()).or_default();
        // Per socket, so counting one socket in twice (two joins in flight) or out twice
        // changes nothing.
        let changed = match msg.delta.signum() {
            1 => {
                let sockets = users.entry(msg.user.clone()).or_default();
                if sockets.contains(&msg.socket) {
                    false
                } else {
                    sockets.push(msg.socket.clone());
                    sockets.len() == 1
                }
            }
            -1 => match users.get_mut(&msg.user) {
                Some(sockets) => {
                    sockets.retain(|s| *s != msg.socket);
                    if sockets.is_empty() {
                        users.remove(&msg.user);
                        true
                    } else {
                        false
                    }
                }
                None => false,
            },
            _ => false,
        };
        let count = users.len();
        if count == 0 {
            self.presence.remove(&key);
        }
        PresenceChange { changed, count }
    }
}

impl Handler<UpdatePresence> for ServerActor {
    type Result = ResponseFuture<PresenceChange>;
    fn handle(&mut self, msg: UpdatePresence, _: &mut Self::Context) -> Self::Result {
        let local = self.local_presence(&msg);
        let Some(bridge) = self.bridge.clone() else {
            return Box::pin(async move { local });
        };
        Box::pin(async move {
            match bridge.send(ClusterPresence(msg)).await {
                Ok(Some(cluster)) => cluster,
                _ => local,
            }
        })
    }
}

impl Handler<SetBridge> for ServerActor {
    type Result = ();
    fn handle(&mut self, msg: SetBridge, _: &mut Self::Context) {
        self.bridge = Some(msg.0);
    }
}

impl ServerActor {
    fn local_stats(&self) -> Stats {
        let sockets = self
            .namespaces
            .iter()
            .map(|(k, v)| (k.to_string(), Value::from(v.sockets.len())))
            .collect::<serde_json::Map<_, _>>();
        Stats {
            node_id: self.node_id.to_string(),
            uptime_s: self.started.elapsed().as_secs(),
            sessions: self.sessions.len(),
            rooms: self.namespaces.values().map(|n| n.rooms.len()).sum(),
            sockets: Value::Object(sockets),
        }
    }
}

impl Handler<ClusterStats> for ServerActor {
    type Result = ResponseFuture<Vec<Stats>>;
    fn handle(&mut self, _: ClusterStats, _: &mut Self::Context) -> Self::Result {
        let local = self.local_stats();
        let Some(bridge) = self.bridge.clone() else {
            return Box::pin(async move { vec![local] });
        };
        Box::pin(async move {
            match bridge.send(bridge::ClusterStats).await {
                Ok(Some(all)) if !all.is_empty() => all,
                _ => vec![local],
            }
        })
    }
}

impl Handler<RedisStatus> for ServerActor {
    type Result = ResponseFuture<Option<bool>>;
    fn handle(&mut self, _: RedisStatus, _: &mut Self::Context) -> Self::Result {
        let Some(bridge) = self.bridge.clone() else {
            return Box::pin(async { None });
        };
        Box::pin(async move { Some(bridge.send(bridge::BridgeUp).await.unwrap_or(false)) })
    }
}

impl Handler<Shutdown> for ServerActor {
    type Result = usize;
    fn handle(&mut self, _: Shutdown, _: &mut Self::Context) -> usize {
        for (_, addr) in self.sessions.values() {
            addr.do_send(CloseSession {
                reason: reason::SERVER_SHUTTING_DOWN,
            });
        }
        self.sessions.len()
    }
}

impl Handler<GetStats> for ServerActor {
    type Result = MessageResult<GetStats>;
    fn handle(&mut self, _: GetStats, _: &mut Self::Context) -> Self::Result {
        MessageResult(self.local_stats())
    }
}
