//! The outbound webhook queue (`outbound_events`, docs/events.md): events are stored before
//! they are sent, sent in order per key, by one node at a time (a lease), and deleted
//! once the receiver accepted them.

use diesel::prelude::*;

use super::schema::outbound_events as ev;
use super::{DbConnection, DbError};

/// An event to store.
#[derive(Debug, Clone, Insertable)]
#[diesel(table_name = ev)]
pub struct NewEvent {
    /// Its id (the receiver dedupes by it).
    pub id: String,
    /// Its order key: `user:<id>`, `room:<id>`, `messages:<room id>` or `direct:<user id>`.
    pub event_key: String,
    /// Its place within the key.
    pub seq: i64,
    /// The exact JSON body of every attempt.
    pub body: String,
    /// The time of the change (ms).
    pub created_at: i64,
    /// Not sent before (ms): the time it was stored.
    pub next_at: i64,
}

/// A stored event a node may send.
#[derive(Debug, Clone, Queryable, Selectable)]
#[diesel(table_name = ev)]
pub struct Event {
    /// Its id.
    pub id: String,
    /// Its order key.
    pub event_key: String,
    /// The body.
    pub body: String,
    /// When the change happened (ms).
    pub created_at: i64,
    /// Attempts so far.
    pub attempts: i32,
}

/// Stores an event.
pub fn enqueue(conn: &mut DbConnection, e: &NewEvent) -> Result<(), DbError> {
    diesel::insert_into(ev::table).values(e).execute(conn)?;
    Ok(())
}

/// Up to `limit` events that `owner` may send now, oldest first: each the first pending
/// event of its key, due, and not leased to another node; then leased to `owner` until
/// `lease_until`. Only the events this call leased are answered, so two nodes asking at
/// once never both get one.
pub fn lease_due(
    conn: &mut DbConnection,
    owner: &str,
    now: i64,
    lease_until: i64,
    skip: &[String],
    limit: i64,
) -> Result<Vec<Event>, DbError> {
    let earlier = diesel::alias!(ev as earlier);
    let heads: Vec<String> = ev::table
        .filter(ev::next_at.le(now))
        .filter(ev::lease_until.lt(now).or(ev::owner.eq(owner)))
        .filter(ev::id.ne_all(skip))
        .filter(diesel::dsl::not(diesel::dsl::exists(
            earlier
                .filter(earlier.field(ev::event_key).eq(ev::event_key))
                .filter(
                    earlier.field(ev::seq).lt(ev::seq).or(earlier
                        .field(ev::seq)
                        .eq(ev::seq)
                        .and(earlier.field(ev::id).lt(ev::id))),
                ),
        )))
        .order((ev::created_at, ev::id))
        .limit(limit)
        .select(ev::id)
        .load(conn)?;
    if heads.is_empty() {
        return Ok(Vec::new());
    }
    diesel::update(
        ev::table
            .filter(ev::id.eq_any(&heads))
            .filter(ev::lease_until.lt(now).or(ev::owner.eq(owner))),
    )
    .set((ev::owner.eq(owner), ev::lease_until.eq(lease_until)))
    .execute(conn)?;
    Ok(ev::table
        .filter(ev::id.eq_any(&heads))
        .filter(ev::owner.eq(owner))
        .filter(ev::lease_until.eq(lease_until))
        .order((ev::created_at, ev::id))
        .select(Event::as_select())
        .load(conn)?)
}

/// The receiver accepted event `id` (or it was dropped): gone.
pub fn remove(conn: &mut DbConnection, id: &str) -> Result<(), DbError> {
    diesel::delete(ev::table.find(id)).execute(conn)?;
    Ok(())
}

/// An attempt of `owner` failed: the next one is not before `next_at`, and `owner` keeps
/// the lease until then plus `lease_ms` (another node takes it over only if `owner` dies).
pub fn retry_later(
    conn: &mut DbConnection,
    id: &str,
    owner: &str,
    next_at: i64,
    lease_ms: i64,
    error: &str,
) -> Result<(), DbError> {
    diesel::update(ev::table.find(id).filter(ev::owner.eq(owner)))
        .set((
            ev::attempts.eq(ev::attempts + 1),
            ev::next_at.eq(next_at),
            ev::lease_until.eq(next_at + lease_ms),
            ev::last_error.eq(error),
        ))
        .execute(conn)?;
    Ok(())
}

/// Deletes the events stored before `before`; answers their keys and ids.
pub fn drop_older(conn: &mut DbConnection, before: i64) -> Result<Vec<(String, String)>, DbError> {
    let old: Vec<(String, String)> = ev::table
        .filter(ev::created_at.lt(before))
        .select((ev::event_key, ev::id))
        .limit(10_000)
        .load(conn)?;
    let ids: Vec<&str> = old.iter().map(|(_, id)| id.as_str()).collect();
    for chunk in ids.chunks(500) {
        diesel::delete(ev::table.filter(ev::id.eq_any(chunk))).execute(conn)?;
    }
    Ok(old)
}

/// Events waiting (every node's).
pub fn pending(conn: &mut DbConnection) -> Result<i64, DbError> {
    Ok(ev::table.count().get_result(conn)?)
}
