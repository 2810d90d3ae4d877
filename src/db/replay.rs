//! The replay cache of `X-Signature-256`: each `(t, v1)` that verified is kept until it
//! leaves the signature window, in the database so that every node of a cluster refuses a
//! signature any node has seen.

use diesel::prelude::*;

use super::schema::webhook_signatures;
use super::{DbConnection, DbError};

/// Records the signature `v1` made at `t` (unix seconds); false when it was seen before (a
/// replay). Entries older than `now - window_s` (out of the window anyway) are forgotten
/// first.
pub fn first_use(
    c: &mut DbConnection,
    t: i64,
    v1: &str,
    now: i64,
    window_s: i64,
) -> Result<bool, DbError> {
    diesel::delete(webhook_signatures::table.filter(webhook_signatures::t.lt(now - window_s)))
        .execute(c)?;
    // The MAC covers t, so the MAC alone identifies the pair.
    let inserted = diesel::insert_into(webhook_signatures::table)
        .values((webhook_signatures::mac.eq(v1), webhook_signatures::t.eq(t)))
        .execute(c);
    match inserted {
        Ok(_) => Ok(true),
        Err(e) => super::ignore_duplicate(e).map(|()| false),
    }
}
