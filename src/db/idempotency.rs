//! `Idempotency-Key` on webhooks: the first call with a key (per endpoint path) is processed
//! and its answer kept; a repeat within the window gets that answer and is not processed
//! again. Kept in the database so every node of a cluster sees the same keys.

use diesel::prelude::*;

use super::schema::webhook_requests;
use super::{DbConnection, DbError};

/// What a call with a key may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// First call: process it, then `finish`.
    New,
    /// Seen and answered: replay this status and body.
    Done(u16, String),
    /// Seen and still being processed by another call.
    InProgress,
}

/// Claims (`path`, `key`) at `now`; entries older than `window_ms` are forgotten first.
pub fn claim(
    c: &mut DbConnection,
    path: &str,
    key: &str,
    now: i64,
    window_ms: i64,
) -> Result<Claim, DbError> {
    diesel::delete(
        webhook_requests::table.filter(webhook_requests::created_at.lt(now - window_ms)),
    )
    .execute(c)?;
    let inserted = diesel::insert_into(webhook_requests::table)
        .values((
            webhook_requests::path.eq(path),
            webhook_requests::idem_key.eq(key),
            webhook_requests::created_at.eq(now),
        ))
        .execute(c);
    match inserted {
        Ok(_) => Ok(Claim::New),
        Err(e) => {
            super::ignore_duplicate(e)?;
            let row: Option<(Option<i32>, Option<String>)> = webhook_requests::table
                .find((path, key))
                .select((webhook_requests::status, webhook_requests::response))
                .first(c)
                .optional()?;
            Ok(match row {
                Some((Some(status), Some(body))) => Claim::Done(status as u16, body),
                _ => Claim::InProgress,
            })
        }
    }
}

/// Records the answer of a claimed call.
pub fn finish(
    c: &mut DbConnection,
    path: &str,
    key: &str,
    status: u16,
    body: &str,
) -> Result<(), DbError> {
    diesel::update(webhook_requests::table.find((path, key)))
        .set((
            webhook_requests::status.eq(status as i32),
            webhook_requests::response.eq(body),
        ))
        .execute(c)?;
    Ok(())
}

/// Forgets a claim whose processing failed (the caller may retry with the same key).
pub fn release(c: &mut DbConnection, path: &str, key: &str) -> Result<(), DbError> {
    diesel::delete(webhook_requests::table.find((path, key))).execute(c)?;
    Ok(())
}
