//! The relay through Redis ([`NodeRelay`]): publishing to the other nodes (the bridge's
//! [`Publish`]), the live nodes' figures, readiness, leaving, and the recoverable sessions
//! any node may take over.

use std::sync::Arc;
use std::time::Duration;

use actix::prelude::*;
use futures_util::future::BoxFuture;
use futures_util::FutureExt;
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};

use super::{live_nodes, Publish, RedisBridge, RedisBus, NODES};
use crate::protocol::{Nsp, Room, SocketId};
use crate::socketio::adapter::{GetStats, Stats};
use crate::socketio::bus::{KeptSession, NodeRelay, Relay};

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

impl NodeRelay for RedisBus {
    fn publish(&self, relay: Relay) {
        self.bridge.do_send(Publish(relay));
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
