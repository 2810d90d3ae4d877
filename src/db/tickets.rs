//! Single-use tickets for `GET /events?ticket=` (docs/http.md): an `EventSource` cannot send a
//! Bearer header, so a client trades its token for a ticket first. Only the ticket's SHA-256
//! is stored; taking a ticket deletes its row, so one request on one node gets it.

use diesel::prelude::*;
use sha2::{Digest, Sha256};

use super::schema::sse_tickets;
use super::{DbConnection, DbError};

/// Who a ticket was issued to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ticket {
    /// The user.
    pub user_id: String,
    /// The expiry of the token it was issued for (seconds since the epoch).
    pub token_exp: Option<i64>,
}

fn hash(ticket: &str) -> String {
    hex::encode(Sha256::digest(ticket.as_bytes()))
}

/// Stores `ticket` for `user`, valid until `expires_at` (ms); forgets expired ones first.
pub fn issue(
    c: &mut DbConnection,
    ticket: &str,
    user: &Ticket,
    expires_at: i64,
    now: i64,
) -> Result<(), DbError> {
    diesel::delete(sse_tickets::table.filter(sse_tickets::expires_at.le(now))).execute(c)?;
    diesel::insert_into(sse_tickets::table)
        .values((
            sse_tickets::ticket_hash.eq(hash(ticket)),
            sse_tickets::user_id.eq(&user.user_id),
            sse_tickets::token_exp.eq(user.token_exp),
            sse_tickets::expires_at.eq(expires_at),
        ))
        .execute(c)?;
    Ok(())
}

/// Takes `ticket`: its user when it exists and has not expired at `now` (ms). Used or not,
/// it is gone afterwards.
pub fn take(c: &mut DbConnection, ticket: &str, now: i64) -> Result<Option<Ticket>, DbError> {
    let h = hash(ticket);
    super::write_transaction(c, |c| {
        let row: Option<(String, Option<i64>, i64)> = sse_tickets::table
            .find(&h)
            .select((
                sse_tickets::user_id,
                sse_tickets::token_exp,
                sse_tickets::expires_at,
            ))
            .first(c)
            .optional()?;
        let Some((user_id, token_exp, expires_at)) = row else {
            return Ok(None);
        };
        // the delete decides: two takers of one ticket cannot both remove its row
        let taken = diesel::delete(sse_tickets::table.find(&h)).execute(c)?;
        Ok((taken == 1 && expires_at > now).then_some(Ticket { user_id, token_exp }))
    })
}
