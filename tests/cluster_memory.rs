//! Two nodes in one process sharing an in-memory bus: what one node emits reaches the
//! other's sockets once and never comes back; `disconnect_sockets` crosses; presence,
//! node figures and `fetch_sockets` are cluster-wide. (The same behaviour through real Redis is checked by
//! `tests/clients/cluster.test.mjs`.)

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::live::{self, block_on, WsClient};
use realtime_server::cluster::MemoryHub;
use realtime_server::config::RecoveryConfig;
use realtime_server::protocol::{NodeId, Nsp, Room, SocketId, UserId};
use realtime_server::socketio::adapter::ServerActor;
use realtime_server::socketio::bus::{BusNode, PresenceChange, PresenceOp, PresenceUpdate};
use realtime_server::socketio::{FetchQuery, Namespace};
use realtime_server::{Config, Server, SocketIo};
use serde_json::{json, Value};

const WAIT: Duration = Duration::from_secs(5);

/// A node: `join` (room, ack), `to-room` (room, payload) → `room-message` to the whole
/// room (sender included), `kick-room` (room) → `disconnect_sockets` of the room.
fn node(hub: &MemoryHub, id: &str) -> live::Running {
    let (hub, id) = (hub.clone(), id.to_owned());
    live::start(move || {
        let mut config = Config::default();
        config.server.workers = 1;
        config.server.node_id = id;
        let ns = Namespace::new()
            .on("join", |s, ev| {
                if let Some(room) = ev.args.first().and_then(Value::as_str).map(str::to_owned) {
                    s.join(&room);
                    if let Some(ack) = ev.ack {
                        s.ack(ack, &[json!(room)]);
                    }
                }
            })
            .on("to-room", |s, ev| {
                if let (Some(Value::String(room)), Some(p)) = (ev.args.first(), ev.args.get(1)) {
                    s.io()
                        .to(room)
                        .emit("room-message", std::slice::from_ref(p));
                }
            })
            .on("kick-room", |s, ev| {
                if let Some(room) = ev.args.first().and_then(Value::as_str) {
                    s.io().to(room).disconnect_sockets();
                }
            })
            // (room or "", socket id or "", disconnect) → the sockets found, as
            // `[[id, node, rooms]]`
            .on("fetch", |s, ev| {
                let arg = |i: usize| {
                    ev.args
                        .get(i)
                        .and_then(Value::as_str)
                        .filter(|a| !a.is_empty())
                        .map(str::to_owned)
                };
                let query = FetchQuery {
                    rooms: arg(0).into_iter().collect(),
                    ids: arg(1).into_iter().collect(),
                    disconnect: ev.args.get(2) == Some(&json!(true)),
                    limit: 100,
                    ..FetchQuery::default()
                };
                let (io, h, ack) = (s.io_handle(), s.handle(), ev.ack);
                actix_rt::spawn(async move {
                    let found: Vec<Value> = io
                        .fetch_sockets(query)
                        .await
                        .into_iter()
                        .map(|f| json!([f.id, f.node, f.rooms]))
                        .collect();
                    if let Some(ack) = ack {
                        h.ack(ack, vec![Value::from(found)]);
                    }
                });
            });
        Server::new(config)
            .socket_io("/socket.io/", SocketIo::new().namespace("/", ns))
            .bus(move |node| hub.join(node))
    })
}

async fn join(c: &mut WsClient, room: &str) {
    c.send(&format!(r#"421["join","{room}"]"#)).await;
    c.until("the join ack", WAIT, |t| t.starts_with("431["))
        .await;
}

fn room_messages(seen: &[String]) -> Vec<&String> {
    seen.iter().filter(|t| t.contains("room-message")).collect()
}

#[test]
fn a_broadcast_crosses_once_and_never_comes_back() {
    let hub = MemoryHub::new();
    let (a, b) = (node(&hub, "node-a"), node(&hub, "node-b"));
    block_on(async {
        let (mut a1, _) = WsClient::socket_io(a.addr).await;
        let (mut b1, _) = WsClient::socket_io(b.addr).await;
        let (mut b2, _) = WsClient::socket_io(b.addr).await;
        join(&mut a1, "r").await;
        join(&mut b1, "r").await;
        a1.send(r#"42["to-room","r","from a"]"#).await;
        b1.send(r#"42["to-room","r","from b"]"#).await;
        let quiet = Duration::from_millis(400);
        let (sa, sb1, sb2) = (
            a1.drain(quiet).await,
            b1.drain(quiet).await,
            b2.drain(quiet).await,
        );
        for (who, seen) in [("a1", &sa), ("b1", &sb1)] {
            let got = room_messages(seen);
            assert_eq!(got.len(), 2, "{who} gets each broadcast once: {seen:?}");
            assert!(
                got.iter().any(|t| t.contains("from a"))
                    && got.iter().any(|t| t.contains("from b"))
            );
        }
        assert!(room_messages(&sb2).is_empty(), "not in the room: {sb2:?}");
    });
}

#[test]
fn disconnect_sockets_reaches_the_other_node() {
    let hub = MemoryHub::new();
    let (a, b) = (node(&hub, "node-a"), node(&hub, "node-b"));
    block_on(async {
        let (mut a1, _) = WsClient::socket_io(a.addr).await;
        let (mut b1, _) = WsClient::socket_io(b.addr).await;
        let (mut b2, _) = WsClient::socket_io(b.addr).await;
        join(&mut b1, "kick").await;
        a1.send(r#"42["kick-room","kick"]"#).await;
        b1.until("a server-side disconnect", WAIT, |t| t == "41")
            .await;
        let others = b2.drain(Duration::from_millis(300)).await;
        assert!(
            !others.iter().any(|t| t == "41"),
            "only the room's sockets go: {others:?}"
        );
    });
}

/// The ack of a `fetch`, as (id, node, rooms) sorted by id.
async fn fetch(c: &mut WsClient, args: &str) -> Vec<(String, String, Vec<String>)> {
    c.send(&format!(r#"427["fetch",{args}]"#)).await;
    let ack = c
        .until("the fetch ack", WAIT, |t| t.starts_with("437["))
        .await;
    let v: Value = serde_json::from_str(&ack[3..]).expect("json");
    let mut found: Vec<(String, String, Vec<String>)> =
        serde_json::from_value(v[0].clone()).expect("[[id, node, rooms]]");
    found.sort();
    found
}

#[test]
fn fetch_sockets_answers_from_every_node_and_disconnects_one_anywhere() {
    let hub = MemoryHub::new();
    let (a, b) = (node(&hub, "node-a"), node(&hub, "node-b"));
    block_on(async {
        let (mut a1, a1_id) = WsClient::socket_io(a.addr).await;
        let (mut b1, b1_id) = WsClient::socket_io(b.addr).await;
        let (mut b2, b2_id) = WsClient::socket_io(b.addr).await;
        join(&mut b1, "r").await;
        let mut all = vec![
            (a1_id.clone(), "node-a".to_owned(), vec![]),
            (b1_id.clone(), "node-b".to_owned(), vec!["r".to_owned()]),
            (b2_id.clone(), "node-b".to_owned(), vec![]),
        ];
        all.sort();
        assert_eq!(fetch(&mut a1, r#""", "", false"#).await, all);
        assert_eq!(
            fetch(&mut a1, r#""r", "", false"#).await,
            vec![(b1_id.clone(), "node-b".to_owned(), vec!["r".to_owned()])]
        );
        // one socket by id, on the other node, disconnected
        let gone = fetch(&mut a1, &format!(r#""", "{b2_id}", true"#)).await;
        assert_eq!(gone, vec![(b2_id.clone(), "node-b".to_owned(), vec![])]);
        b2.until("a server-side disconnect", WAIT, |t| t == "41")
            .await;
        assert!(fetch(&mut a1, &format!(r#""", "{b2_id}", false"#))
            .await
            .is_empty());
        let quiet = b1.drain(Duration::from_millis(300)).await;
        assert!(!quiet.iter().any(|t| t == "41"), "b1 stays: {quiet:?}");
    });
}

#[test]
fn presence_and_figures_are_cluster_wide() {
    actix_web::rt::System::new().block_on(async {
        let hub = MemoryHub::new();
        let registry = |id: &str| BusNode {
            id: NodeId::from(id),
            server: actix::Actor::start(ServerActor::new(
                RecoveryConfig::default(),
                NodeId::from(id),
                Arc::new(Vec::new()),
            )),
        };
        let (a, b) = (hub.join(registry("node-a")), hub.join(registry("node-b")));
        let step = |user: &str, socket: &str, op| PresenceUpdate {
            nsp: Nsp::from("/"),
            room: Room::from("lobby"),
            user: UserId::from(user),
            socket: SocketId::from(socket),
            op,
        };
        let p = a
            .state
            .presence(step("alice", "s1", PresenceOp::Join))
            .await
            .expect("answers");
        assert_eq!((p.change, p.count), (PresenceChange::Arrived, 1));
        let p = b
            .state
            .presence(step("alice", "s2", PresenceOp::Join))
            .await
            .expect("answers");
        assert_eq!(
            (p.change, p.count),
            (PresenceChange::Unchanged, 1),
            "alice is there already"
        );
        let p = b
            .state
            .presence(step("bob", "s3", PresenceOp::Join))
            .await
            .expect("answers");
        assert_eq!((p.change, p.count), (PresenceChange::Arrived, 2));
        let p = a
            .state
            .presence(step("alice", "s1", PresenceOp::Leave))
            .await
            .expect("answers");
        assert_eq!(
            (p.change, p.count),
            (PresenceChange::Unchanged, 2),
            "her socket on b stays"
        );
        let nodes = a.relay.nodes().await.expect("answers");
        let ids: Vec<&str> = nodes.iter().map(|n| n.node_id.as_str()).collect();
        assert_eq!(ids, ["node-a", "node-b"]);
        // A node that leaves drops out of the figures and takes its users with it.
        b.relay.leave().await;
        let p = a
            .state
            .presence(step("", "", PresenceOp::Count))
            .await
            .expect("answers");
        assert_eq!(p.count, 0, "alice and bob were only on node-b now");
        assert_eq!(a.relay.nodes().await.expect("answers").len(), 1);
    });
}
