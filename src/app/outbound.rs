//! The application's outbound webhook events (docs/events.md, "Outbound webhooks"): which
//! types are sent (`webhooks.events`), the body every attempt POSTs, and the wake-up of the
//! sender once one is stored.

use std::sync::Arc;

use serde_json::{json, Value};

use crate::db::outbound::NewEvent;

/// Outbound events are on (`webhooks.outbound_url` is set).
pub struct Hooks {
    wake: Arc<tokio::sync::Notify>,
    kinds: Vec<String>,
}

impl Hooks {
    /// Sends the types in `kinds` (`webhooks.events`, checked against
    /// `config::WEBHOOK_EVENT_TYPES`); `wake` is the sender's.
    pub fn new(wake: Arc<tokio::sync::Notify>, kinds: &[String]) -> Arc<Hooks> {
        Arc::new(Hooks {
            wake,
            kinds: kinds.to_vec(),
        })
    }

    /// Whether events of type `kind` are sent.
    pub fn wants(&self, kind: &str) -> bool {
        self.kinds.iter().any(|k| k == kind)
    }

    /// The stored form of an event of type `kind` (`None` when that type is not sent):
    /// ordered by `seq` within `key` (`user:<id>`, `room:<id>`, `messages:<room id>`,
    /// `direct:<target id>`).
    pub fn event(
        &self,
        key: String,
        seq: i64,
        kind: &str,
        data: Value,
        at: i64,
    ) -> Option<NewEvent> {
        if !self.wants(kind) {
            return None;
        }
        let id = uuid::Uuid::now_v7().to_string();
        let body = json!({"id": id, "type": kind, "timestamp": at, "data": data}).to_string();
        Some(NewEvent {
            id,
            event_key: key,
            seq,
            body,
            created_at: at,
            next_at: crate::db::now_ms(),
        })
    }

    /// Stores `e` on its own (not within another write) and wakes the sender; a failure is
    /// counted and logged (`what` says which event).
    pub async fn store(self: Arc<Self>, db: crate::db::Db, e: NewEvent, what: String) {
        match db.run(move |c| crate::db::outbound::enqueue(c, &e)).await {
            Ok(()) => self.stored(),
            Err(err) => {
                crate::metrics::get().error("outbound_store");
                log::error!("cannot store an outbound webhook event ({what}): {err}");
            }
        }
    }

    /// An event was stored: the sender looks now.
    pub fn stored(&self) {
        self.wake.notify_one();
    }

    /// The event of a message change (`message.created|updated|deleted`; `message` in the
    /// history shape, with its `roomId`), ordered by time among its room's message events
    /// (a key of their own: `room:<id>` orders occupancy by generation).
    pub fn message_event(&self, kind: &str, message: &Value, at: i64) -> Option<NewEvent> {
        let room = message["roomId"].as_str().unwrap_or_default();
        self.event(format!("messages:{room}"), at, kind, message.clone(), at)
    }
}

/// `message.created`: a message was stored.
pub const MESSAGE_CREATED: &str = "message.created";
/// `message.updated`: a message was edited.
pub const MESSAGE_UPDATED: &str = "message.updated";
/// `message.deleted`: a message was deleted.
pub const MESSAGE_DELETED: &str = "message.deleted";
/// `direct.created`: a DM was stored (`delivered:false`: no socket of the target online).
pub const DIRECT_CREATED: &str = "direct.created";
