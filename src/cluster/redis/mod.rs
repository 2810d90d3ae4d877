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
use futures_util::StreamExt;
use redis::aio::MultiplexedConnection;
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};

use super::seal::{Freshness, Sealer};
use super::wire::BusMessage;
use crate::protocol::{now_ms, NodeId, SocketId};
use crate::socketio::adapter::{GetStats, ServerActor, Stats};
use crate::socketio::bus::{BusNode, Cluster, FromNode, Relay};
use presence::{PRESENCE_PREFIX, STATE_PREFIX};

mod presence;
mod relay;

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
    /// Times this node dropped dead nodes from `rt:nodes` (see [`ClusterState::lost_nodes`](crate::socketio::ClusterState::lost_nodes)).
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
                    // one channel for every relay (rt:broadcast)
                    crate::metrics::get().bus_subscriptions.set(1);
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
        crate::metrics::get().bus_subscriptions.set(0);
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
        m.bus_received.inc();
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

/// The cluster through Redis: the relay ([`relay`]) and the shared state ([`presence`])
/// over this node's [`RedisBridge`].
pub struct RedisBus {
    bridge: Addr<RedisBridge>,
    lost: Arc<AtomicU64>,
}

impl RedisBus {
    /// Connects node `node` to the Redis at `url`, authenticating what it reads with
    /// `secret` (connecting and reconnecting happen in the background; an invalid URL is an
    /// error now).
    pub fn start(url: &str, node: BusNode, secret: &[u8]) -> redis::RedisResult<Cluster> {
        let lost = Arc::new(AtomicU64::new(0));
        let bridge = RedisBridge::new(url, node, secret, lost.clone())?.start();
        Ok(Cluster::of(Arc::new(RedisBus { bridge, lost })))
    }
}
