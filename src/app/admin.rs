//! Namespace `/admin` (stored role admin only; others get `connect_error` `FORBIDDEN`):
//! `broadcast:all`, `admin:stats`, `admin:announce`, `admin:disconnect-user`.

use std::sync::Arc;

use serde_json::{json, Value};

use super::error::AppError;
use super::events;
use super::names::{self, user_room};
use super::payload;
use super::reply;
use crate::config::ChatConfig;
use crate::db::now_ms;
use crate::socketio::{Event, Namespace, SocketCtx};

/// Adds the admin handlers to `ns` (already authenticated as admin).
pub fn handlers(ns: Namespace, cfg: Arc<ChatConfig>) -> Namespace {
    ns.on(events::BROADCAST_ALL, broadcast_all)
        .on(events::ADMIN_STATS, stats)
        .on(events::ADMIN_ANNOUNCE, move |s, ev| announce(s, ev, &cfg))
        .on(events::ADMIN_DISCONNECT_USER, disconnect_user)
}

/// Relays the admin's argument unchanged (even `null`) to every `/admin` socket.
fn broadcast_all(s: &mut SocketCtx<'_>, ev: Event) {
    let arg = ev.args.first().cloned().unwrap_or(Value::Null);
    s.io().emit(events::ADMIN_ANNOUNCEMENT, &[arg]);
    reply::ok(s, ev.ack, Value::Null);
}

fn stats(s: &mut SocketCtx<'_>, ev: Event) {
    let Some(ack) = ev.ack else {
        return reply::fail(s, None, &AppError::invalid("admin:stats needs an ack"));
    };
    let (h, io) = (s.handle(), s.io_handle());
    actix_rt::spawn(async move {
        let all = io.cluster_stats().await;
        let mut namespaces = serde_json::Map::new();
        for n in names::ALL {
            let count: u64 = all
                .iter()
                .map(|st| st.sockets.get(n).and_then(Value::as_u64).unwrap_or(0))
                .sum();
            namespaces.insert(n.into(), json!(count));
        }
        let nodes: Vec<Value> = all
            .iter()
            .map(|st| {
                json!({
                    "id": st.node_id,
                    "connections": st.sessions,
                    "rooms": st.rooms,
                    "uptimeS": st.uptime_s,
                })
            })
            .collect();
        let connections: usize = all.iter().map(|st| st.sessions).sum();
        let events_in: u64 = all.iter().map(|st| st.events_in).sum();
        let events_out: u64 = all.iter().map(|st| st.events_out).sum();
        h.ack(
            ack,
            vec![json!({
                "success": true,
                "nodes": nodes,
                "connections": connections,
                "namespaces": namespaces,
                "eventsIn": events_in,
                "eventsOut": events_out,
            })],
        );
    });
}

/// `admin:announce {message}` → `system:announcement {message, timestamp}` to all of `/`.
fn announce(s: &mut SocketCtx<'_>, ev: Event, cfg: &ChatConfig) {
    let message =
        match payload::object(&ev).and_then(|o| payload::text(o, "message", cfg.max_chars)) {
            Ok(m) => m,
            Err(e) => return reply::fail(s, ev.ack, &e),
        };
    s.io_handle().of(names::CHAT).emit(
        events::SYSTEM_ANNOUNCEMENT,
        &[json!({"message": message, "timestamp": now_ms()})],
    );
    reply::ok(s, ev.ack, Value::Null);
}

/// `admin:disconnect-user {userId}`: that user's sockets in every namespace end as a
/// server-side disconnect (clients do not reconnect by themselves).
fn disconnect_user(s: &mut SocketCtx<'_>, ev: Event) {
    let user = match payload::object(&ev).and_then(|o| payload::id(o, "userId")) {
        Ok(u) => u.to_owned(),
        Err(e) => return reply::fail(s, ev.ack, &e),
    };
    let io = s.io_handle();
    for n in names::ALL {
        io.of(n).to(&user_room(&user)).disconnect_sockets();
    }
    log::info!("admin disconnected user={user} by={}", s.id());
    reply::ok(s, ev.ack, Value::Null);
}
