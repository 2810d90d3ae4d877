//! Product watchers (`product:watch` / `product:unwatch`).

use diesel::prelude::*;

use super::schema::product_watchers;
use super::{now_ms, DbConnection, DbError};

/// Adds a watcher; watching twice is one watcher.
pub fn watch(c: &mut DbConnection, user: &str, product: &str) -> Result<(), DbError> {
    diesel::insert_into(product_watchers::table)
        .values((
            product_watchers::user_id.eq(user),
            product_watchers::product_id.eq(product),
            product_watchers::created_at.eq(now_ms()),
        ))
        .execute(c)
        .map(drop)
        .or_else(super::ignore_duplicate)
}

/// `user` stops watching `product` (nothing happens when it did not).
pub fn unwatch(c: &mut DbConnection, user: &str, product: &str) -> Result<(), DbError> {
    diesel::delete(product_watchers::table.find((user, product))).execute(c)?;
    Ok(())
}
