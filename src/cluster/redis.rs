//! `RedisBridge`: relays broadcasts between nodes through Redis and keeps the cluster-wide
//! state (presence per room, the live nodes and their figures).
//!
//! - Every broadcast emitted on this node (rooms, exceptions, whole namespace, the encoded
//!   packet) is published once on one channel with this node's id; every node delivers what
//!   *other* nodes publish to its local members and never publishes it again. One channel for
//!   all rooms: a node with no members of a room still receives its traffic, but joins and
//!   leaves cost no SUBSCRIBE/UNSUBSCRIBE round trips and no message can fall between a join
//!   and its subscription; the filter is one hash look-up per message.
//! - Presence (the `memberCount` of a room) is a Redis set per room of `node|socket|user`
//!   entries; only entries of live nodes count, so a dead node's users drop out as soon as
//!   its heartbeat is stale (15 s).
//! - Every node writes its figures to the `rt:nodes` hash every 5 s (the heartbeat);
//!   `admin:stats` reads it.
//! - While Redis is unreachable, local delivery keeps working (local presence and figures
//!   stand in), and the bridge reconnects with backoff (100 ms doubling to 5 s).
//! - Everything a node reads back is authenticated with the cluster secret ([`super::seal`]):
//!   channel messages (forged, replayed or stale ones are dropped and counted in
//!   `rt_bridge_rejected_total`), node figures, presence members and kept sessions.
//! - Every key expires: `rt:nodes` and the presence sets a minute after the last heartbeat
//!   of a node that has something in them (a dead node's entries are pruned before that by
//!   the live ones), kept sessions when they can no longer be recovered.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use futures_util::future::BoxFuture;
use futures_util::{FutureExt, StreamExt};
use redis::aio::MultiplexedConnection;
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};

use super::seal::{Freshness, Sealer};
use super::wire::BusMessage;
use crate::protocol::{now_ms, NodeId, Nsp, Room, SocketId, UserId};
use crate::socketio::adapter::{GetStats, ServerActor, Stats};
use crate::socketio::bus::{
    Arrival, Bus, BusNode, FromNode, KeptSession, PresenceChange, PresenceCount, PresenceOp,
    PresenceUpdate, Relay, StateKey, GENERATIONS_PER_MS,
};

const CHANNEL: &str = "rt:broadcast";
const NODES: &str = "rt:nodes";
/// A node whose heartbeat is older than this is dead.
const NODE_TTL_MS: i64 = 15_000;
const HEARTBEAT: Duration = Duration::from_secs(5);
/// `rt:nodes` and the presence sets live this long after the last heartbeat that touched
/// them (milliseconds).
const KEY_TTL_MS: u64 = 60_000;
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Publishes waiting for Redis at most; beyond, broadcasts reach only this node's members
/// (counted as `rt_errors_total{kind="bridge_backlog"}`) instead of growing memory.
const MAX_IN_FLIGHT: usize = 10_000;

/// A node's figures as kept in `rt:nodes`.
#[derive(Serialize, Deserialize)]
struct NodeEntry {
    ts: i64,
    stats: Stats,
}

/// The actor that holds the Redis connections of this node.
pub struct RedisBridge {
    client: redis::Client,
    node_id: NodeId,
    server: Addr<ServerActor>,
    conn: Option<MultiplexedConnection>,
    /// Bumped at every (re)connect; a failure report of an older generation is ignored.
    generation: u64,
    backoff: Duration,
    connecting: bool,
    ever_connected: bool,
    /// Publishes sent and not yet answered.
    in_flight: usize,
    /// The cluster secret.
    sealer: Sealer,
    /// This process among the node's lives (random at start) and its messages so far.
    boot: u64,
    seq: u64,
    /// The messages heard, so none is taken twice (kept across reconnections).
    freshness: Arc<std::sync::Mutex<Freshness>>,
    /// Presence sets holding members of this node (which sockets), kept alive by the
    /// heartbeat. By socket, not by count: a socket counted in twice (two joins of one room)
    /// and out once leaves nothing behind.
    presence_keys: HashMap<String, HashSet<SocketId>>,
    /// Times this node dropped dead nodes from `rt:nodes` (see [`Bus::lost_nodes`]).
    lost: Arc<AtomicU64>,
    /// `presence_keys`' size, for `rt_state_entries`.
    sizes: crate::metrics::SizeCell,
}

impl RedisBridge {
    fn new(
        url: &str,
        node: BusNode,
        secret: &[u8],
        lost: Arc<AtomicU64>,
    ) -> redis::RedisResult<Self> {
        let freshness = Arc::default();
        crate::metrics::track_weak(
            "bridge_senders",
            &freshness,
            |f: &std::sync::Mutex<Freshness>| f.lock().unwrap_or_else(|e| e.into_inner()).len(),
        );
        Ok(RedisBridge {
            client: redis::Client::open(url)?,
            node_id: node.id,
            server: node.server,
            conn: None,
            generation: 0,
            backoff: Duration::from_millis(100),
            connecting: false,
            ever_connected: false,
            in_flight: 0,
            sealer: Sealer::new(secret),
            boot: rand::random(),
            seq: 0,
            freshness,
            presence_keys: HashMap::new(),
            sizes: crate::metrics::SizeCell::new("bridge_presence_keys"),
            lost,
        })
    }

    fn connect(&mut self, ctx: &mut Context<Self>) {
        if self.connecting {
            return;
        }
        self.connecting = true;
        let client = self.client.clone();
        let fut = async move {
            let conn = client.get_multiplexed_async_connection().await?;
            let mut pubsub = client.get_async_pubsub().await?;
            pubsub.subscribe(CHANNEL).await?;
            Ok::<_, redis::RedisError>((conn, pubsub))
        };
        ctx.spawn(fut.into_actor(self).map(|res, act, ctx| {
            act.connecting = false;
            match res {
                Ok((conn, pubsub)) => {
                    act.generation += 1;
                    act.conn = Some(conn);
                    act.backoff = Duration::from_millis(100);
                    if act.ever_connected {
                        crate::metrics::get().bridge_reconnects.inc();
                    }
                    act.ever_connected = true;
                    log::info!("redis bridge connected node={}", act.node_id);
                    let generation = act.generation;
                    let inbox = Inbox {
                        server: act.server.clone(),
                        me: act.node_id.clone(),
                        sealer: act.sealer.clone(),
                        freshness: act.freshness.clone(),
                    };
                    let addr = ctx.address();
                    actix_rt::spawn(async move {
                        let mut stream = pubsub.into_on_message();
                        while let Some(msg) = stream.next().await {
                            inbox.receive(msg.get_payload_bytes());
                        }
                        addr.do_send(Lost { generation });
                    });
                    act.heartbeat(ctx);
                }
                Err(e) => {
                    log::warn!(
                        "redis bridge cannot connect, retrying in {:?}: {e}",
                        act.backoff
                    );
                    act.retry(ctx);
                }
            }
        }));
    }

    fn retry(&mut self, ctx: &mut Context<Self>) {
        let wait = self.backoff;
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
        ctx.run_later(wait, |act, ctx| act.connect(ctx));
    }

    /// Redis went away (a command failed or the subscription ended).
    fn lost(&mut self, generation: u64, ctx: &mut Context<Self>) {
        if generation != self.generation || self.conn.is_none() {
            return;
        }
        log::warn!("redis bridge lost its connection; local delivery continues");
        self.conn = None;
        self.retry(ctx);
    }

    /// Writes this node's figures (and so its liveness) to `rt:nodes`, and keeps that hash
    /// and the presence sets with members of this node from expiring.
    fn heartbeat(&mut self, ctx: &mut Context<Self>) {
        let Some(mut conn) = self.conn.clone() else {
            return;
        };
        let (server, node, generation) =
            (self.server.clone(), self.node_id.clone(), self.generation);
        let sealer = self.sealer.clone();
        let lost = self.lost.clone();
        let keys: Vec<String> = self.presence_keys.keys().cloned().collect();
        ctx.spawn(
            async move {
                let Ok(stats) = server.send(GetStats).await else {
                    return Ok(());
                };
                let entry = serde_json::to_string(&NodeEntry {
                    ts: now_ms(),
                    stats,
                })
                .unwrap_or_default();
                let entry = sealer.seal_str(&node_context(&node), &entry);
                let mut pipe = redis::pipe();
                pipe.hset(NODES, &*node, entry).ignore();
                pipe.pexpire(NODES, KEY_TTL_MS as i64).ignore();
                for k in &keys {
                    pipe.pexpire(k, KEY_TTL_MS as i64).ignore();
                    // the announced state of a key with members here lives as long
                    if let Some(rest) = k.strip_prefix(PRESENCE_PREFIX) {
                        pipe.pexpire(format!("{STATE_PREFIX}{rest}"), KEY_TTL_MS as i64)
                            .ignore();
                    }
                }
                pipe.query_async::<()>(&mut conn).await?;
                // dead nodes are found (and dropped) even in a quiet cluster
                live_nodes(&mut conn, &sealer, &lost).await.map(drop)
            }
            .into_actor(self)
            .map(move |res, act, ctx| {
                if let Err(e) = res {
                    log::warn!("redis heartbeat failed: {e}");
                    act.lost(generation, ctx);
                }
            }),
        );
    }
}

impl Actor for RedisBridge {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(1 << 16);
        self.connect(ctx);
        ctx.run_interval(HEARTBEAT, |act, ctx| act.heartbeat(ctx));
    }
}

/// What the subscription task needs to take messages from other nodes.
struct Inbox {
    server: Addr<ServerActor>,
    me: NodeId,
    sealer: Sealer,
    freshness: Arc<std::sync::Mutex<Freshness>>,
}

impl Inbox {
    /// Hands a message from another node to the local registry; drops this node's own,
    /// and counts and drops what is forged, replayed, stale or garbage.
    fn receive(&self, payload: &[u8]) {
        let m = crate::metrics::get();
        let reject = |reason: &str, detail: &dyn std::fmt::Display| {
            let c = m.bridge_rejected.with_label_values(&[reason]);
            c.inc();
            // said the first time and then at every power of two, not once per message
            if c.get().is_power_of_two() {
                log::warn!(
                    "redis bridge dropped a {reason} message ({} so far): {detail}",
                    c.get()
                );
            }
        };
        let Some((boot, seq, json)) = self.sealer.open_message(payload) else {
            return reject(
                "unverified",
                &"no valid MAC (forged, or another CLUSTER_SECRET)",
            );
        };
        let msg = match BusMessage::decode(json) {
            Ok(m) => m,
            Err(e) => return reject("undecodable", &e),
        };
        if msg.origin() == &*self.me {
            return;
        }
        let now = now_ms();
        let fresh = match self.freshness.lock() {
            Ok(mut f) => f.accept(msg.origin(), boot, seq, msg.published_ms(), now),
            Err(_) => false,
        };
        if !fresh {
            let age = now - msg.published_ms();
            return if age.abs() > super::seal::WINDOW_MS {
                reject("stale", &format_args!("published {age} ms ago"))
            } else {
                reject("replayed", &format_args!("from {}", msg.origin()))
            };
        }
        m.bridge_messages.with_label_values(&["received"]).inc();
        m.bridge_lag
            .observe((now - msg.published_ms()).max(0) as f64 / 1000.0);
        self.server.do_send(FromNode(msg.into_relay()));
    }
}

/// The subscription or a command failed.
#[derive(Message)]
#[rtype(result = "()")]
struct Lost {
    generation: u64,
}

impl Handler<Lost> for RedisBridge {
    type Result = ();
    fn handle(&mut self, msg: Lost, ctx: &mut Self::Context) {
        self.lost(msg.generation, ctx);
    }
}

/// Publishes a local broadcast or disconnect to the other nodes.
#[derive(Message)]
#[rtype(result = "()")]
struct Publish(Relay);

impl RedisBridge {
    fn publish(&mut self, msg: BusMessage, ctx: &mut Context<Self>) {
        let Some(mut conn) = self.conn.clone() else {
            crate::metrics::get().error("bridge_down");
            return;
        };
        if self.in_flight >= MAX_IN_FLIGHT {
            crate::metrics::get().error("bridge_backlog");
            return;
        }
        self.in_flight += 1;
        self.seq += 1;
        let payload = self.sealer.seal_message(self.boot, self.seq, &msg.encode());
        crate::metrics::get()
            .bridge_messages
            .with_label_values(&["published"])
            .inc();
        let generation = self.generation;
        ctx.spawn(
            async move { conn.publish::<_, _, ()>(CHANNEL, payload).await }
                .into_actor(self)
                .map(move |res, act, ctx| {
                    act.in_flight -= 1;
                    if let Err(e) = res {
                        log::warn!("redis publish failed: {e}");
                        act.lost(generation, ctx);
                    }
                }),
        );
    }
}

impl Handler<Publish> for RedisBridge {
    type Result = ();
    fn handle(&mut self, msg: Publish, ctx: &mut Self::Context) {
        let m = BusMessage::from_relay(&self.node_id, &msg.0, now_ms());
        self.publish(m, ctx);
    }
}

/// What a node's `rt:nodes` entry is sealed for.
fn node_context(node: &str) -> String {
    format!("{NODES}:{node}")
}

/// The live nodes (`rt:nodes` entries younger than the TTL), from one HGETALL; entries of
/// dead nodes and unverifiable ones are deleted.
async fn live_nodes(
    conn: &mut MultiplexedConnection,
    sealer: &Sealer,
    lost: &AtomicU64,
) -> redis::RedisResult<HashMap<String, Stats>> {
    let all: HashMap<String, String> = conn.hgetall(NODES).await?;
    let now = now_ms();
    let mut live = HashMap::new();
    let mut gone = Vec::new();
    for (id, v) in all {
        let entry = sealer
            .open_str(&node_context(&id), &v)
            .and_then(|json| serde_json::from_str::<NodeEntry>(json).ok())
            .filter(|e| now - e.ts < NODE_TTL_MS);
        match entry {
            Some(e) => {
                live.insert(id, e.stats);
            }
            None => gone.push(id),
        }
    }
    if !gone.is_empty() {
        // HDEL answers how many it removed: one node learns that a node is gone
        let removed: i64 = conn.hdel(NODES, &gone).await.unwrap_or(0);
        if removed > 0 {
            lost.fetch_add(1, Ordering::Relaxed);
            log::warn!(
                "cluster node(s) {} stopped their heartbeat: dropped; their users and rooms are settled",
                gone.join(", ")
            );
        }
    }
    Ok(live)
}

/// Cluster-wide presence: counts socket `socket` of `user` in or out of a room and answers
/// from the live entries of every node. `None` when Redis did not answer.
#[derive(Message)]
#[rtype(result = "Option<PresenceCount>")]
struct ClusterPresence(PresenceUpdate);

impl Handler<ClusterPresence> for RedisBridge {
    type Result = ResponseFuture<Option<PresenceCount>>;
    fn handle(&mut self, msg: ClusterPresence, _: &mut Self::Context) -> Self::Result {
        let u = msg.0;
        let key = presence_key(&u.nsp, &u.room);
        // the heartbeat keeps the sets with members of this node alive
        match u.op {
            PresenceOp::Join => {
                self.presence_keys
                    .entry(key.clone())
                    .or_default()
                    .insert(u.socket.clone());
            }
            PresenceOp::Leave => {
                if let Some(sockets) = self.presence_keys.get_mut(&key) {
                    sockets.remove(&u.socket);
                    if sockets.is_empty() {
                        self.presence_keys.remove(&key);
                    }
                }
            }
            PresenceOp::Count => {}
        }
        self.sizes.set(self.presence_keys.len());
        let Some(mut conn) = self.conn.clone() else {
            return Box::pin(async { None });
        };
        let (node, sealer) = (self.node_id.clone(), self.sealer.clone());
        let lost = self.lost.clone();
        Box::pin(async move {
            let me = sealer.tag_member(&key, &format!("{node}|{}|{}", u.socket, u.user));
            // SADD/SREM answer whether the set changed: a socket counted in (or out) twice
            // changes nothing.
            let (moved, members): (bool, Vec<String>) = match u.op {
                PresenceOp::Count => (false, conn.smembers(&key).await.ok()?),
                op => {
                    let mut pipe = redis::pipe();
                    if op == PresenceOp::Join {
                        pipe.sadd(&key, &me);
                    } else {
                        pipe.srem(&key, &me);
                    }
                    pipe.pexpire(&key, KEY_TTL_MS as i64).ignore();
                    pipe.smembers(&key);
                    let (n, members): (i64, Vec<String>) =
                        pipe.query_async(&mut conn).await.ok()?;
                    (n > 0, members)
                }
            };
            let live = live_nodes(&mut conn, &sealer, &lost).await.ok()?;
            let mut users = HashSet::new();
            let mut mine = 0usize;
            let mut dead = Vec::new();
            for m in &members {
                // a member without a valid tag was not written by a node: dropped
                let Some(entry) = sealer.untag_member(&key, m) else {
                    dead.push(m.clone());
                    continue;
                };
                let mut parts = entry.splitn(3, '|');
                let (Some(n), Some(_), Some(user)) = (parts.next(), parts.next(), parts.next())
                else {
                    continue;
                };
                if n != &*node && !live.contains_key(n) {
                    dead.push(m.clone());
                    continue;
                }
                users.insert(user);
                if user == &*u.user && *m != me {
                    mine += 1;
                }
            }
            if !dead.is_empty() {
                let _: redis::RedisResult<()> = conn.srem(&key, dead).await;
            }
            let change = match (moved && mine == 0, u.op) {
                (true, PresenceOp::Join) => PresenceChange::Arrived,
                (true, PresenceOp::Leave) => PresenceChange::Departed,
                _ => PresenceChange::Unchanged,
            };
            Some(PresenceCount {
                change,
                count: users.len(),
            })
        })
    }
}

const PRESENCE_PREFIX: &str = "rt:presence:";
const STATE_PREFIX: &str = "rt:state:";
/// A key that went down is kept this long (its generation keeps growing if it comes back
/// meanwhile; past it, a new one starts from the clock, above the old).
const DOWN_TTL_MS: i64 = 25 * 3600 * 1000;

fn presence_key(nsp: &str, room: &str) -> String {
    format!("{PRESENCE_PREFIX}{nsp}:{room}")
}

fn state_key(k: &StateKey) -> String {
    format!("{STATE_PREFIX}{}:{}", k.nsp, k.room)
}

/// The distinct users of presence set `key` on live nodes (`live`, and this node `me`).
fn set_users<'a>(
    sealer: &Sealer,
    key: &str,
    members: &'a [String],
    me: &str,
    live: &HashMap<String, Stats>,
) -> HashSet<&'a str> {
    members
        .iter()
        .filter_map(|m| sealer.untag_member(key, m))
        .filter_map(|entry| {
            let mut parts = entry.splitn(3, '|');
            let (n, _, user) = (parts.next()?, parts.next()?, parts.next()?);
            (n == me || live.contains_key(n)).then_some(user)
        })
        .collect()
}

/// `arrive`: the generation grows (a key that was down starts from the clock); answers the
/// generation and 1 when the key was down. Atomic in Redis, so exactly one caller is told
/// to announce.
const ARRIVE: &str = r"
local g
if redis.call('HGET', KEYS[1], 'u') == '1' then
  g = redis.call('HINCRBY', KEYS[1], 'g', 1)
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return {g, 0}
end
if redis.call('HEXISTS', KEYS[1], 'g') == 1 then
  g = redis.call('HINCRBY', KEYS[1], 'g', 1)
else
  g = redis.call('HINCRBY', KEYS[1], 'g', ARGV[1])
end
redis.call('HSET', KEYS[1], 'u', '1')
redis.call('PEXPIRE', KEYS[1], ARGV[2])
return {g, 1}
";

/// `settle`: down when still up at generation ARGV[1]; 1 for the one caller that does.
const SETTLE: &str = r"
if redis.call('HGET', KEYS[1], 'u') == '1' and redis.call('HGET', KEYS[1], 'g') == ARGV[1] then
  redis.call('HSET', KEYS[1], 'u', '0')
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  return 1
end
return 0
";

/// An operation on announced states (see [`Bus::arrive`] and the others).
enum StateOp {
    Arrive(StateKey),
    Generation(StateKey),
    Settle(StateKey, i64),
    States(Vec<StateKey>),
    RoomUsers(Nsp, Room, usize),
    Orphans(Nsp, usize),
}

/// The answer to a [`StateOp`], in the same order.
enum StateAnswer {
    Arrival(Arrival),
    Generation(i64),
    Settled(bool),
    States(Vec<bool>),
    Users(Vec<UserId>),
    Rooms(Vec<Room>),
}

#[derive(Message)]
#[rtype(result = "Option<StateAnswer>")]
struct ClusterState(StateOp);

impl Handler<ClusterState> for RedisBridge {
    type Result = ResponseFuture<Option<StateAnswer>>;
    fn handle(&mut self, msg: ClusterState, _: &mut Self::Context) -> Self::Result {
        let Some(mut conn) = self.conn.clone() else {
            return Box::pin(async { None });
        };
        let (node, sealer) = (self.node_id.clone(), self.sealer.clone());
        let lost = self.lost.clone();
        Box::pin(async move {
            match msg.0 {
                StateOp::Arrive(k) => {
                    let (gen, announce): (i64, i64) = redis::Script::new(ARRIVE)
                        .key(state_key(&k))
                        .arg(now_ms() * GENERATIONS_PER_MS)
                        .arg(KEY_TTL_MS)
                        .invoke_async(&mut conn)
                        .await
                        .ok()?;
                    Some(StateAnswer::Arrival(Arrival {
                        gen,
                        announce: announce == 1,
                    }))
                }
                StateOp::Generation(k) => {
                    let (up, gen): (Option<String>, Option<i64>) = redis::cmd("HMGET")
                        .arg(state_key(&k))
                        .arg("u")
                        .arg("g")
                        .query_async(&mut conn)
                        .await
                        .ok()?;
                    let gen = if up.as_deref() == Some("1") {
                        gen
                    } else {
                        None
                    };
                    Some(StateAnswer::Generation(gen.unwrap_or(0)))
                }
                StateOp::Settle(k, gen) => {
                    let done: i64 = redis::Script::new(SETTLE)
                        .key(state_key(&k))
                        .arg(gen)
                        .arg(DOWN_TTL_MS)
                        .invoke_async(&mut conn)
                        .await
                        .ok()?;
                    Some(StateAnswer::Settled(done == 1))
                }
                StateOp::States(keys) => {
                    let mut up = Vec::with_capacity(keys.len());
                    for chunk in keys.chunks(500) {
                        let mut pipe = redis::pipe();
                        for k in chunk {
                            pipe.hget(state_key(k), "u");
                        }
                        let got: Vec<Option<String>> = pipe.query_async(&mut conn).await.ok()?;
                        up.extend(got.iter().map(|u| u.as_deref() == Some("1")));
                    }
                    Some(StateAnswer::States(up))
                }
                StateOp::Orphans(nsp, max) => {
                    let prefix = format!("{STATE_PREFIX}{nsp}:");
                    let keys = scan(&mut conn, &format!("{prefix}*")).await?;
                    let live = live_nodes(&mut conn, &sealer, &lost).await.ok()?;
                    let mut out = Vec::new();
                    for chunk in keys.chunks(500) {
                        let mut pipe = redis::pipe();
                        for k in chunk {
                            pipe.hget(k, "u");
                            pipe.smembers(presence_key(&nsp, &k[prefix.len()..]));
                        }
                        let got: Vec<redis::Value> = pipe.query_async(&mut conn).await.ok()?;
                        for (k, pair) in chunk.iter().zip(got.chunks(2)) {
                            let up = matches!(&pair[0], redis::Value::BulkString(b) if b == b"1");
                            let members: Vec<String> =
                                redis::from_redis_value(&pair[1]).unwrap_or_default();
                            let room = &k[prefix.len()..];
                            let pkey = presence_key(&nsp, room);
                            if up && set_users(&sealer, &pkey, &members, &node, &live).is_empty() {
                                out.push(Room::from(room));
                                if out.len() >= max {
                                    return Some(StateAnswer::Rooms(out));
                                }
                            }
                        }
                    }
                    Some(StateAnswer::Rooms(out))
                }
                StateOp::RoomUsers(nsp, room, max) => {
                    let key = presence_key(&nsp, &room);
                    let members: Vec<String> = conn.smembers(&key).await.ok()?;
                    let live = live_nodes(&mut conn, &sealer, &lost).await.ok()?;
                    let users = set_users(&sealer, &key, &members, &node, &live);
                    Some(StateAnswer::Users(
                        users.into_iter().take(max).map(UserId::from).collect(),
                    ))
                }
            }
        })
    }
}

impl RedisBus {
    /// Asks the bridge `op`; `pick` takes the answer it expects (`None`: Redis did not answer).
    fn state<T: Send + 'static>(
        &self,
        op: StateOp,
        pick: fn(StateAnswer) -> Option<T>,
    ) -> BoxFuture<'static, Option<T>> {
        let ask = self.bridge.send(ClusterState(op));
        async move { ask.await.ok().flatten().and_then(pick) }.boxed()
    }
}

/// The keys matching `pattern` (at most [`MAX_ROOM_KEYS`], each once).
async fn scan(conn: &mut MultiplexedConnection, pattern: &str) -> Option<Vec<String>> {
    let mut keys = Vec::new();
    let mut cursor: u64 = 0;
    loop {
        let (next, batch): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(1000)
            .query_async(conn)
            .await
            .ok()?;
        keys.extend(batch);
        cursor = next;
        if cursor == 0 || keys.len() >= MAX_ROOM_KEYS {
            break;
        }
    }
    // SCAN may name a key twice
    keys.sort();
    keys.dedup();
    Some(keys)
}

/// Most presence keys one `rooms` answer reads.
const MAX_ROOM_KEYS: usize = 100_000;

/// The rooms of a namespace with members on live nodes (distinct users each).
#[derive(Message)]
#[rtype(result = "Option<Vec<(Room, usize)>>")]
struct ClusterRooms {
    nsp: Nsp,
    max: usize,
}

impl Handler<ClusterRooms> for RedisBridge {
    type Result = ResponseFuture<Option<Vec<(Room, usize)>>>;
    fn handle(&mut self, msg: ClusterRooms, _: &mut Self::Context) -> Self::Result {
        let Some(mut conn) = self.conn.clone() else {
            return Box::pin(async { None });
        };
        let (node, sealer) = (self.node_id.clone(), self.sealer.clone());
        let lost = self.lost.clone();
        Box::pin(async move {
            let prefix = format!("{PRESENCE_PREFIX}{}:", msg.nsp);
            let keys = scan(&mut conn, &format!("{prefix}*")).await?;
            let live = live_nodes(&mut conn, &sealer, &lost).await.ok()?;
            let mut out = Vec::new();
            for chunk in keys.chunks(500) {
                let mut pipe = redis::pipe();
                for k in chunk {
                    pipe.smembers(k);
                }
                let sets: Vec<Vec<String>> = pipe.query_async(&mut conn).await.ok()?;
                for (key, members) in chunk.iter().zip(&sets) {
                    let users = set_users(&sealer, key, members, &node, &live);
                    if !users.is_empty() {
                        out.push((Room::from(&key[prefix.len()..]), users.len()));
                        if out.len() >= msg.max {
                            return Some(out);
                        }
                    }
                }
            }
            Some(out)
        })
    }
}

/// The figures of every live node; `None` when Redis did not answer.
#[derive(Message)]
#[rtype(result = "Option<Vec<Stats>>")]
struct ClusterStats;

impl Handler<ClusterStats> for RedisBridge {
    type Result = ResponseFuture<Option<Vec<Stats>>>;
    fn handle(&mut self, _: ClusterStats, _: &mut Self::Context) -> Self::Result {
        let Some(mut conn) = self.conn.clone() else {
            return Box::pin(async { None });
        };
        let (server, node) = (self.server.clone(), self.node_id.clone());
        let sealer = self.sealer.clone();
        let lost = self.lost.clone();
        Box::pin(async move {
            let mut live = live_nodes(&mut conn, &sealer, &lost).await.ok()?;
            // this node's own figures are read fresh
            if let Ok(mine) = server.send(GetStats).await {
                live.insert(node.to_string(), mine);
            }
            let mut all: Vec<Stats> = live.into_values().collect();
            all.sort_by(|a, b| a.node_id.cmp(&b.node_id));
            Some(all)
        })
    }
}

/// Whether Redis answers (for readiness).
#[derive(Message)]
#[rtype(result = "bool")]
struct BridgeUp;

impl Handler<BridgeUp> for RedisBridge {
    type Result = ResponseFuture<bool>;
    fn handle(&mut self, _: BridgeUp, _: &mut Self::Context) -> Self::Result {
        let Some(mut conn) = self.conn.clone() else {
            return Box::pin(async { false });
        };
        Box::pin(async move {
            matches!(
                tokio::time::timeout(
                    Duration::from_secs(2),
                    redis::cmd("PING").query_async::<String>(&mut conn)
                )
                .await,
                Ok(Ok(_))
            )
        })
    }
}

/// Leaves the cluster on a clean shutdown (so admin:stats drops this node at once).
#[derive(Message)]
#[rtype(result = "()")]
struct Leave;

impl Handler<Leave> for RedisBridge {
    type Result = ResponseFuture<()>;
    fn handle(&mut self, _: Leave, _: &mut Self::Context) -> Self::Result {
        let Some(mut conn) = self.conn.clone() else {
            return Box::pin(async {});
        };
        let node = self.node_id.clone();
        Box::pin(async move {
            let _: redis::RedisResult<()> = conn.hdel(NODES, &*node).await;
        })
    }
}

/// A recoverable session as kept in Redis (its data stays on its node).
#[derive(Serialize, Deserialize)]
struct SessionEntry {
    id: String,
    rooms: Vec<String>,
}

fn session_key(nsp: &str, pid: &str) -> String {
    format!("rt:session:{nsp}:{pid}")
}

/// Keeps a disconnected socket's recovery state for `ttl_ms`, for any node.
#[derive(Message)]
#[rtype(result = "()")]
struct StoreSession {
    nsp: Nsp,
    pid: Arc<str>,
    session: KeptSession,
    ttl_ms: u64,
}

impl Handler<StoreSession> for RedisBridge {
    type Result = ResponseFuture<()>;
    fn handle(&mut self, msg: StoreSession, _: &mut Self::Context) -> Self::Result {
        let Some(mut conn) = self.conn.clone() else {
            return Box::pin(async {});
        };
        let sealer = self.sealer.clone();
        Box::pin(async move {
            let entry = SessionEntry {
                id: msg.session.id.to_string(),
                rooms: msg.session.rooms.iter().map(|r| r.to_string()).collect(),
            };
            let Ok(v) = serde_json::to_string(&entry) else {
                return;
            };
            let key = session_key(&msg.nsp, &msg.pid);
            let set: redis::RedisResult<()> = redis::cmd("SET")
                .arg(&key)
                .arg(sealer.seal_str(&key, &v))
                .arg("PX")
                .arg(msg.ttl_ms.max(1))
                .query_async(&mut conn)
                .await;
            if let Err(e) = set {
                log::warn!("redis: session not kept for other nodes: {e}");
            }
        })
    }
}

/// Takes (reads and deletes) a session kept by any node: its id and rooms.
#[derive(Message)]
#[rtype(result = "Option<KeptSession>")]
struct TakeSession {
    nsp: Nsp,
    pid: Arc<str>,
}

impl Handler<TakeSession> for RedisBridge {
    type Result = ResponseFuture<Option<KeptSession>>;
    fn handle(&mut self, msg: TakeSession, _: &mut Self::Context) -> Self::Result {
        let Some(mut conn) = self.conn.clone() else {
            return Box::pin(async { None });
        };
        let sealer = self.sealer.clone();
        Box::pin(async move {
            let key = session_key(&msg.nsp, &msg.pid);
            let v: Option<String> = redis::cmd("GETDEL")
                .arg(&key)
                .query_async(&mut conn)
                .await
                .ok()?;
            let v = v?;
            let Some(json) = sealer.open_str(&key, &v) else {
                log::warn!("redis: a kept session with no valid MAC was ignored ({key})");
                crate::metrics::get()
                    .bridge_rejected
                    .with_label_values(&["unverified"])
                    .inc();
                return None;
            };
            let e: SessionEntry = serde_json::from_str(json).ok()?;
            Some(KeptSession {
                id: SocketId::from(e.id),
                rooms: e.rooms.into_iter().map(Room::from).collect(),
            })
        })
    }
}

/// The cluster through Redis: a [`Bus`] over this node's [`RedisBridge`].
pub struct RedisBus {
    bridge: Addr<RedisBridge>,
    lost: Arc<AtomicU64>,
}

impl RedisBus {
    /// Connects node `node` to the Redis at `url`, authenticating what it reads with
    /// `secret` (connecting and reconnecting happen in the background; an invalid URL is an
    /// error now).
    pub fn start(url: &str, node: BusNode, secret: &[u8]) -> redis::RedisResult<Arc<dyn Bus>> {
        let lost = Arc::new(AtomicU64::new(0));
        let bridge = RedisBridge::new(url, node, secret, lost.clone())?.start();
        Ok(Arc::new(RedisBus { bridge, lost }))
    }
}

impl Bus for RedisBus {
    fn publish(&self, relay: Relay) {
        self.bridge.do_send(Publish(relay));
    }

    fn presence(&self, update: PresenceUpdate) -> BoxFuture<'static, Option<PresenceCount>> {
        // queued now, so steps reach Redis in the order they were asked
        let ask = self.bridge.send(ClusterPresence(update));
        async move { ask.await.ok().flatten() }.boxed()
    }

    fn rooms(&self, nsp: Nsp, max: usize) -> BoxFuture<'static, Option<Vec<(Room, usize)>>> {
        let ask = self.bridge.send(ClusterRooms { nsp, max });
        async move { ask.await.ok().flatten() }.boxed()
    }

    fn room_users(
        &self,
        nsp: Nsp,
        room: Room,
        max: usize,
    ) -> BoxFuture<'static, Option<Vec<UserId>>> {
        self.state(StateOp::RoomUsers(nsp, room, max), |a| match a {
            StateAnswer::Users(v) => Some(v),
            _ => None,
        })
    }

    fn arrive(&self, key: StateKey) -> BoxFuture<'static, Option<Arrival>> {
        self.state(StateOp::Arrive(key), |a| match a {
            StateAnswer::Arrival(v) => Some(v),
            _ => None,
        })
    }

    fn generation(&self, key: StateKey) -> BoxFuture<'static, Option<i64>> {
        self.state(StateOp::Generation(key), |a| match a {
            StateAnswer::Generation(v) => Some(v),
            _ => None,
        })
    }

    fn settle(&self, key: StateKey, gen: i64) -> BoxFuture<'static, Option<bool>> {
        self.state(StateOp::Settle(key, gen), |a| match a {
            StateAnswer::Settled(v) => Some(v),
            _ => None,
        })
    }

    fn states(&self, keys: Vec<StateKey>) -> BoxFuture<'static, Option<Vec<bool>>> {
        self.state(StateOp::States(keys), |a| match a {
            StateAnswer::States(v) => Some(v),
            _ => None,
        })
    }

    fn lost_nodes(&self) -> u64 {
        self.lost.load(Ordering::Relaxed)
    }

    fn orphans(&self, nsp: Nsp, max: usize) -> BoxFuture<'static, Option<Vec<Room>>> {
        self.state(StateOp::Orphans(nsp, max), |a| match a {
            StateAnswer::Rooms(v) => Some(v),
            _ => None,
        })
    }

    fn nodes(&self) -> BoxFuture<'static, Option<Vec<Stats>>> {
        let ask = self.bridge.send(ClusterStats);
        async move { ask.await.ok().flatten() }.boxed()
    }

    fn keep_session(&self, nsp: Nsp, pid: Arc<str>, session: KeptSession, ttl_ms: u64) {
        self.bridge.do_send(StoreSession {
            nsp,
            pid,
            session,
            ttl_ms,
        });
    }

    fn take_session(&self, nsp: Nsp, pid: Arc<str>) -> BoxFuture<'static, Option<KeptSession>> {
        let ask = self.bridge.send(TakeSession { nsp, pid });
        async move { ask.await.ok().flatten() }.boxed()
    }

    fn is_up(&self) -> BoxFuture<'static, bool> {
        let ask = self.bridge.send(BridgeUp);
        async move { ask.await.unwrap_or(false) }.boxed()
    }

    fn leave(&self) -> BoxFuture<'static, ()> {
        let ask = self.bridge.send(Leave);
        async move {
            let _ = ask.await;
        }
        .boxed()
    }
}
