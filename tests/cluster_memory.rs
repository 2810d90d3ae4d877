//! Two nodes in one process sharing an in-memory bus: what one node emits reaches the
//! other's sockets once and never comes back; `disconnect_sockets` crosses; presence and
//! node figures are cluster-wide. (The same behaviour through real Redis is checked by
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
use realtime_server::socketio::Namespace;
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
            .presence(step("alice", "s1", PresenceOp::Join))
            .await
            .expect("answers");
        assert_eq!((p.change, p.count), (PresenceChange::Arrived, 1));
        let p = b
            .presence(step("alice", "s2", PresenceOp::Join))
            .await
            .expect("answers");
        assert_eq!(
            (p.change, p.count),
            (PresenceChange::Unchanged, 1),
            "alice is there already"
        );
        let p = b
            .presence(step("bob", "s3", PresenceOp::Join))
            .await
            .expect("answers");
        assert_eq!((p.change, p.count), (PresenceChange::Arrived, 2));
        let p = a
            .presence(step("alice", "s1", PresenceOp::Leave))
            .await
            .expect("answers");
        assert_eq!(
            (p.change, p.count),
            (PresenceChange::Unchanged, 2),
            "her socket on b stays"
        );
        let nodes = a.nodes().await.expect("answers");
        let ids: Vec<&str> = nodes.iter().map(|n| n.node_id.as_str()).collect();
        assert_eq!(ids, ["node-a", "node-b"]);
        // A node that leaves drops out of the figures and takes its users with it.
        b.leave().await;
        let p = a
            .presence(step("", "", PresenceOp::Count))
            .await
            .expect("answers");
        assert_eq!(p.count, 0, "alice and bob were only on node-b now");
        assert_eq!(a.nodes().await.expect("answers").len(), 1);
    });
}
