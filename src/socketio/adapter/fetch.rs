//! `fetch_sockets` across the cluster: which sockets (and room followers that describe
//! themselves, like event streams) match a query, on every node, optionally disconnecting
//! them on the way (docs/events.md, `admin:sockets` and `admin:disconnect-socket`).
//!
//! The node asked answers from its own registry: each matching session describes its
//! socket ([`Describe`]). With a bus, it publishes the query ([`Relay::Fetch`]) and every
//! other live node publishes its answer back ([`Relay::Fetched`]); the asker waits for as
//! many answers as there are other live nodes, or [`FETCH_TIMEOUT`], and answers with what
//! it has then.

use std::collections::{HashMap, HashSet};
use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use actix::{Handler, Message, ResponseFuture};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use tokio::sync::mpsc;

use super::server::ServerActor;
use super::{Member, Nsp, Room};
use crate::protocol::NodeId;
use crate::socketio::bus::Relay;
use crate::socketio::client::Describe;

/// How long the asking node waits for the other nodes' answers.
pub const FETCH_TIMEOUT: Duration = Duration::from_millis(1500);
/// Sockets one answer holds at most, whatever the query asks.
pub const MAX_FETCH: usize = 10_000;

/// Which sockets a fetch is about.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchQuery {
    /// One namespace; every namespace when `None`.
    #[serde(default)]
    pub nsp: Option<String>,
    /// Sockets in any of these rooms (a socket id names its own socket); all when empty.
    #[serde(default)]
    pub rooms: Vec<String>,
    /// These socket ids only (then `rooms` is not looked at).
    #[serde(default)]
    pub ids: Vec<String>,
    /// At most this many sockets (capped at [`MAX_FETCH`]).
    pub limit: usize,
    /// Include the handshake's headers and query (credentials redacted).
    #[serde(default)]
    pub handshake: bool,
    /// Disconnect every socket found (`io server disconnect`; a plain one closes 4403).
    #[serde(default)]
    pub disconnect: bool,
}

/// One socket (or room follower) as a fetch describes it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SocketInfo {
    /// The socket id.
    pub id: String,
    /// Its namespace.
    pub nsp: String,
    /// The Engine.IO connection's id (empty for a follower).
    #[serde(default)]
    pub client_id: String,
    /// `websocket`, `polling`, `ws` (plain WebSocket) or the follower's kind (`sse`).
    pub transport: String,
    /// The client's address, when known.
    #[serde(default)]
    pub address: Option<String>,
    /// When it connected (ms since the epoch).
    pub connected_at: i64,
    /// Its rooms (not its own id).
    #[serde(default)]
    pub rooms: Vec<String>,
    /// What the namespace says of it (`Namespace::welcome`).
    #[serde(default)]
    pub data: Value,
    /// The node it lives on.
    #[serde(default)]
    pub node: String,
    /// The handshake, when the query asked for it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handshake: Option<HandshakeInfo>,
}

/// A socket's handshake request, with credentials redacted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HandshakeInfo {
    /// Its headers (lower-case names).
    pub headers: Vec<(String, String)>,
    /// Its query.
    pub query: Vec<(String, String)>,
}

/// What stands in for a credential in a described handshake.
pub const REDACTED: &str = "[redacted]";

impl HandshakeInfo {
    /// The handshake of `request`, with `authorization`, `cookie` and a `token` or `ticket`
    /// query parameter redacted.
    pub fn of(request: &crate::engine::RequestInfo) -> Self {
        let secret_header = |k: &str| {
            matches!(
                k.to_ascii_lowercase().as_str(),
                "authorization" | "cookie" | "proxy-authorization"
            )
        };
        let headers = request
            .headers
            .iter()
            .map(|(k, v)| {
                let v = if secret_header(k) { REDACTED } else { v };
                (k.clone(), v.to_owned())
            })
            .collect();
        let query = request
            .query
            .iter()
            .map(|(k, v)| {
                let v = if k == "token" || k == "ticket" {
                    REDACTED
                } else {
                    v
                };
                (k.clone(), v.to_owned())
            })
            .collect();
        HandshakeInfo { headers, query }
    }
}

/// Answers of other nodes still awaited, by request.
pub(super) type Pending = Arc<Mutex<HashMap<u64, mpsc::UnboundedSender<Vec<SocketInfo>>>>>;

static NEXT_REQUEST: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);

/// The sockets matching a query on every live node (this one alone without a bus).
#[derive(Message)]
#[rtype(result = "Vec<SocketInfo>")]
pub struct FetchSockets(pub FetchQuery);

impl Handler<FetchSockets> for ServerActor {
    type Result = ResponseFuture<Vec<SocketInfo>>;
    fn handle(&mut self, msg: FetchSockets, _: &mut Self::Context) -> Self::Result {
        let mut q = msg.0;
        q.limit = q.limit.min(MAX_FETCH);
        let local = self.local_fetch(&q);
        let bus = self.bus.clone();
        let pending = self.pending.clone();
        let me = self.node_id.clone();
        Box::pin(async move {
            let mut all = local.await;
            if let Some(bus) = bus {
                all.extend(ask_others(&*bus, &pending, me, &q).await);
            }
            all.sort_by(|a, b| a.connected_at.cmp(&b.connected_at).then(a.id.cmp(&b.id)));
            all.truncate(q.limit);
            all
        })
    }
}

/// The other live nodes' answers to `q` (those in within [`FETCH_TIMEOUT`]).
async fn ask_others(
    bus: &dyn crate::socketio::NodeRelay,
    pending: &Pending,
    me: NodeId,
    q: &FetchQuery,
) -> Vec<SocketInfo> {
    let mut all = Vec::new();
    let others = match bus.nodes().await {
        Some(nodes) => nodes.iter().filter(|n| *n.node_id != *me).count(),
        None => 0,
    };
    if others == 0 {
        return all;
    }
    let request = NEXT_REQUEST.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let (tx, mut rx) = mpsc::unbounded_channel();
    lock(pending).insert(request, tx);
    bus.publish(Relay::Fetch {
        from: me,
        request,
        query: q.clone(),
    });
    let gather = async {
        for _ in 0..others {
            match rx.recv().await {
                Some(answer) => all.extend(answer),
                None => break,
            }
        }
    };
    if tokio::time::timeout(FETCH_TIMEOUT, gather).await.is_err() {
        log::warn!("fetch_sockets: not every node answered within {FETCH_TIMEOUT:?}");
    }
    lock(pending).remove(&request);
    all
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // every change under the lock is one insert or remove
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl ServerActor {
    /// This node's part of a fetch: the matching sockets describe themselves (and are
    /// disconnected when the query says so); followers that describe themselves count too.
    pub(super) fn local_fetch(
        &mut self,
        q: &FetchQuery,
    ) -> impl Future<Output = Vec<SocketInfo>> + 'static {
        let node = self.node_id.to_string();
        let mut direct: Vec<Member> = Vec::new();
        let mut asks = Vec::new();
        let mut followers = Vec::new();
        let rooms: Vec<Room> = q.rooms.iter().map(|r| Room::from(r.as_str())).collect();
        let names: Vec<Nsp> = self
            .namespaces
            .keys()
            .filter(|n| q.nsp.as_deref().is_none_or(|want| want == &***n))
            .cloned()
            .collect();
        for nsp in names {
            let ns = self.ns(&nsp);
            if !q.ids.is_empty() {
                direct.extend(
                    q.ids
                        .iter()
                        .filter_map(|id| ns.sockets.get(id.as_str()))
                        .cloned(),
                );
                followers.extend(ns.watchers.describe(None, Some(&q.ids), q.disconnect));
            } else if rooms.is_empty() {
                direct.extend(ns.sockets.values().take(q.limit).cloned());
                followers.extend(ns.watchers.describe(None, None, q.disconnect));
            } else {
                for r in &rooms {
                    if let Some(m) = ns.sockets.get(r.as_str()) {
                        direct.push(m.clone());
                    }
                    if let Some(e) = ns.rooms.get(r) {
                        asks.extend(e.members(q.limit));
                    }
                    followers.extend(ns.watchers.describe(Some(r), None, q.disconnect));
                }
            }
        }
        let (limit, handshake, disconnect) = (q.limit, q.handshake, q.disconnect);
        async move {
            for ask in futures_util::future::join_all(asks).await {
                direct.extend(ask.unwrap_or_default());
            }
            let mut seen = HashSet::new();
            direct.retain(|m| seen.insert(m.key));
            direct.truncate(limit);
            let described = futures_util::future::join_all(direct.into_iter().map(|m| {
                m.addr.send(Describe {
                    key: m.key,
                    handshake,
                    disconnect,
                })
            }))
            .await;
            let mut all: Vec<SocketInfo> = described
                .into_iter()
                .filter_map(|r| r.ok().flatten())
                .chain(followers)
                .collect();
            all.truncate(limit);
            for s in &mut all {
                s.node.clone_from(&node);
            }
            all
        }
    }

    /// Another node's fetch: answers it with this node's part.
    pub(super) fn answer_fetch(&mut self, from: NodeId, request: u64, query: FetchQuery) {
        let Some(bus) = self.bus.clone() else {
            return;
        };
        let mut query = query;
        query.limit = query.limit.min(MAX_FETCH);
        let local = self.local_fetch(&query);
        actix_rt::spawn(async move {
            let sockets = local.await;
            bus.publish(Relay::Fetched {
                to: from,
                request,
                sockets,
            });
        });
    }

    /// Another node's answer to a fetch: handed to the waiting request, if it is this
    /// node's and still waiting.
    pub(super) fn take_fetched(&mut self, to: &NodeId, request: u64, sockets: Vec<SocketInfo>) {
        if *to != self.node_id {
            return;
        }
        if let Some(tx) = lock(&self.pending).get(&request) {
            let _ = tx.send(sockets);
        }
    }
}
