//! `NotificationActor`: turns webhook calls into targeted notifications. Watchers and cart
//! holders are looked up and notifications stored on the database threads; then each target user
//! gets the live `notification` in `/` (room `user:{id}`) and in `/notifications` (room
//! `user:{id}:notifications`), and stock changes go to all of `/admin`.

use std::collections::BTreeSet;

use actix::{Actor, Context, Handler, Message, ResponseFuture};
use serde_json::{json, Value};

use super::events;
use super::names::{self, notifications_room, user_room};
use super::presence::Presence;
use crate::db::notifications::{self, NewNotification};
use crate::db::{now_ms, Db, DbError};
use crate::socketio::IoHandle;

/// Turns webhook calls into stored, delivered notifications.
pub struct NotificationActor {
    db: Db,
    io: IoHandle,
    presence: Presence,
    low_stock: u64,
}

impl NotificationActor {
    /// An actor storing in `db` and delivering through `io`; `isLowStock` below `low_stock`.
    pub fn new(db: Db, io: IoHandle, presence: Presence, low_stock: u64) -> Self {
        NotificationActor {
            db,
            io,
            presence,
            low_stock,
        }
    }
}

impl Actor for NotificationActor {
    type Context = Context<Self>;

    fn started(&mut self, ctx: &mut Self::Context) {
        ctx.set_mailbox_capacity(4096);
    }
}

/// A product's stock changed.
#[derive(Message)]
#[rtype(result = "Result<usize, DbError>")]
pub struct StockChanged {
    /// The product.
    pub product_id: String,
    /// Its new stock.
    pub stock: u64,
}

/// A product's price changed.
#[derive(Message)]
#[rtype(result = "Result<usize, DbError>")]
pub struct PriceChanged {
    /// The product.
    pub product_id: String,
    /// Its price before.
    pub old_price: f64,
    /// Its price now.
    pub new_price: f64,
}

/// A job of a user progressed.
#[derive(Message)]
#[rtype(result = "Result<usize, DbError>")]
pub struct JobProgress {
    /// Whose job.
    pub user_id: String,
    /// The job.
    pub job_id: String,
    /// Percent done.
    pub progress: f64,
    /// `processing`, `completed` or `failed`.
    pub status: String,
}

/// Sends `event` with `payload` to `user`'s sockets in `/` and `/notifications`.
fn to_user(io: &IoHandle, user: &str, event: &str, payload: Value) {
    let args = [payload];
    io.of(names::CHAT).to(&user_room(user)).emit(event, &args);
    io.of(names::NOTIFICATIONS)
        .to(&notifications_room(user))
        .emit(event, &args);
}

/// Stores `items` and then delivers each live; returns the distinct users.
async fn store_and_deliver(
    db: &Db,
    io: &IoHandle,
    items: Vec<NewNotification>,
) -> Result<usize, DbError> {
    let stored = items.clone();
    db.run(move |c| notifications::store_many(c, &stored))
        .await?;
    let mut users = BTreeSet::new();
    for n in &items {
        to_user(
            io,
            &n.user_id,
            events::NOTIFICATION,
            notifications::live(&n.id, &n.payload),
        );
        users.insert(n.user_id.as_str());
    }
    Ok(users.len())
}

fn notification(user: &str, kind: &str, payload: &Value, at: i64) -> NewNotification {
    NewNotification {
        id: uuid::Uuid::now_v7().to_string(),
        user_id: user.to_owned(),
        kind: kind.to_owned(),
        payload: payload.clone(),
        created_at: at,
    }
}

impl Handler<StockChanged> for NotificationActor {
    type Result = ResponseFuture<Result<usize, DbError>>;
    fn handle(&mut self, msg: StockChanged, _: &mut Self::Context) -> Self::Result {
        let (db, io, low) = (self.db.clone(), self.io.clone(), self.low_stock);
        Box::pin(async move {
            let now = now_ms();
            let update = json!({
                "type": "STOCK_UPDATE",
                "productId": msg.product_id,
                "stock": msg.stock,
                "isLowStock": msg.stock < low,
                "timestamp": now,
            });
            let sold_out = msg.stock == 0;
            let p = msg.product_id.clone();
            let (watchers, holders) = db
                .run(move |c| {
                    let w = notifications::watchers(c, &p)?;
                    let h = if sold_out {
                        notifications::cart_holders(c, &p)?
                    } else {
                        Vec::new()
                    };
                    Ok((w, h))
                })
                .await?;
            let mut items: Vec<NewNotification> = watchers
                .iter()
                .map(|u| notification(u, "STOCK_UPDATE", &update, now))
                .collect();
            if sold_out {
                let mut s = update.clone();
                s["type"] = json!("STOCK_SOLD_OUT");
                s["message"] = json!(format!("{} is sold out", msg.product_id));
                items.extend(
                    holders
                        .iter()
                        .map(|u| notification(u, "STOCK_SOLD_OUT", &s, now)),
                );
            }
            let notified = store_and_deliver(&db, &io, items).await?;
            io.of(names::ADMIN)
                .emit(events::ADMIN_STOCK_ALERT, &[update]);
            Ok(notified)
        })
    }
}

/// `changePercent`: the drop in percent of the old price, one decimal, halves rounded away
/// from zero (as JavaScript's `toFixed` does for exact halves).
pub fn change_percent(old: f64, new: f64) -> String {
    let pct = (old - new) / old * 100.0;
    format!("{:.1}", (pct * 10.0).round() / 10.0)
}

impl Handler<PriceChanged> for NotificationActor {
    type Result = ResponseFuture<Result<usize, DbError>>;
    fn handle(&mut self, msg: PriceChanged, _: &mut Self::Context) -> Self::Result {
        let (db, io) = (self.db.clone(), self.io.clone());
        Box::pin(async move {
            if msg.new_price >= msg.old_price {
                return Ok(0);
            }
            let now = now_ms();
            let payload = json!({
                "type": "PRICE_DROP",
                "productId": msg.product_id,
                "oldPrice": msg.old_price,
                "newPrice": msg.new_price,
                "changePercent": change_percent(msg.old_price, msg.new_price),
                "timestamp": now,
            });
            let p = msg.product_id.clone();
            let watchers = db.run(move |c| notifications::watchers(c, &p)).await?;
            let items = watchers
                .iter()
                .map(|u| notification(u, "PRICE_DROP", &payload, now))
                .collect();
            store_and_deliver(&db, &io, items).await
        })
    }
}

impl Handler<JobProgress> for NotificationActor {
    type Result = ResponseFuture<Result<usize, DbError>>;
    fn handle(&mut self, msg: JobProgress, _: &mut Self::Context) -> Self::Result {
        let (io, presence) = (self.io.clone(), self.presence.clone());
        Box::pin(async move {
            let user = msg.user_id;
            let online = super::direct::online(&presence, &io, &user).await
                || presence
                    .count(&io, names::NOTIFICATIONS, &notifications_room(&user))
                    .await
                    > 0;
            let payload = json!({
                "jobId": msg.job_id,
                "progress": msg.progress,
                "status": msg.status,
                "timestamp": now_ms(),
            });
            to_user(&io, &user, events::JOB_PROGRESS, payload);
            Ok(usize::from(online))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::change_percent;

    #[test]
    fn percent_has_one_decimal() {
        assert_eq!(change_percent(100.0, 80.0), "20.0");
        assert_eq!(change_percent(3.0, 2.0), "33.3");
        assert_eq!(change_percent(200.0, 199.5), "0.3");
        assert_eq!(change_percent(10.0, 0.0), "100.0");
    }
}
