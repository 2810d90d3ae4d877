//! `rooms:list` on a large database: 10,000 rooms × 1,000 messages (10 million rows, 50
//! senders, 1 % deleted), then the list of a reader who is a member of 100 and of 1,000 of
//! them with a read marker in each, timed on the query the server runs
//! (`db::edits::rooms_of`). Prints one JSON line per case and a table.
//!
//!   DATABASE_URL=sqlite:///tmp/x.db cargo bench --bench rooms_list
//!   benches/rooms_list.sh            (SQLite, then a throwaway PostgreSQL)
//!
//! ROOMS and MESSAGES (per room) size the data; an existing filled database is reused.

use std::time::{Duration, Instant};

use diesel::connection::SimpleConnection;
use diesel::prelude::*;
use realtime_server::db::schema::{messages, read_markers, room_members};
use realtime_server::db::{edits, Backend, Db, DbConnection, DbError};

/// Rows per INSERT statement (within both backends' bound on bound parameters).
const CHUNK: usize = 2000;
const SENDERS: usize = 50;

fn env_num(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn room_id(r: usize) -> String {
    format!("room-{r:05}")
}

/// The id of message `j` of room `r`, shaped and ordered like the server's UUIDv7s (time
/// first; here the rest is fixed, so a read marker can name it again): time advances with
/// `j` across all rooms, as if every room were active at once.
fn message_id(r: usize, j: usize, rooms: usize) -> (String, i64) {
    let at_ms = 1_700_000_000_000_i64 + (j * rooms + r) as i64;
    (
        format!("{at_ms:012x}-7000-8000-{:012x}", r * 1_000_000 + j),
        at_ms,
    )
}

/// Runs `INSERT INTO {table} ({cols}) VALUES` with `rows` (each a parenthesised tuple of
/// literals this program made: no outside input), in statements of [`CHUNK`] rows.
fn insert(c: &mut DbConnection, table: &str, cols: &str, rows: &[String]) -> Result<(), DbError> {
    for chunk in rows.chunks(CHUNK) {
        c.batch_execute(&format!(
            "INSERT INTO {table} ({cols}) VALUES {}",
            chunk.join(",")
        ))?;
    }
    Ok(())
}

fn fill(c: &mut DbConnection, n_rooms: usize, per_room: usize) -> Result<(), DbError> {
    let have: i64 = messages::table.count().get_result(c)?;
    if have == (n_rooms * per_room) as i64 {
        eprintln!("reusing {have} messages");
        return Ok(());
    }
    if have != 0 {
        panic!(
            "the database holds {have} messages, not {}: use an empty one",
            n_rooms * per_room
        );
    }
    let started = Instant::now();
    let mut people: Vec<String> = (0..SENDERS)
        .map(|i| format!("('sender-{i:02}','Sender {i}','s{i}@example.com','user',true,1)"))
        .collect();
    people.push("('reader','Reader','reader@example.com','user',true,1)".into());
    insert(
        c,
        "users",
        "id, name, email, role, is_active, created_at",
        &people,
    )?;
    let room_rows: Vec<String> = (0..n_rooms)
        .map(|r| format!("('{}','Room {r}',true,1)", room_id(r)))
        .collect();
    insert(c, "rooms", "id, name, is_public, created_at", &room_rows)?;
    let cols = "id, room_id, sender_id, text, created_at, deleted_at";
    let mut batch = Vec::with_capacity(CHUNK);
    let mut written = 0usize;
    c.batch_execute("BEGIN")?;
    for j in 0..per_room {
        for r in 0..n_rooms {
            let (id, at) = message_id(r, j, n_rooms);
            let sender = if (r + j) % 97 == 0 {
                "reader".to_owned()
            } else {
                format!("sender-{:02}", (r * 7 + j) % SENDERS)
            };
            let deleted = (r * 31 + j) % 100 == 0;
            batch.push(if deleted {
                format!("('{id}','{}','{sender}','',{at},{})", room_id(r), at + 1)
            } else {
                format!(
                    "('{id}','{}','{sender}','message {j} of room {r}',{at},NULL)",
                    room_id(r)
                )
            });
            if batch.len() == CHUNK {
                insert(c, "messages", cols, &batch)?;
                written += batch.len();
                batch.clear();
                if written.is_multiple_of(200_000) {
                    c.batch_execute("COMMIT; BEGIN")?;
                    eprint!(
                        "\r{written} messages, {:.0} s",
                        started.elapsed().as_secs_f64()
                    );
                }
            }
        }
    }
    insert(c, "messages", cols, &batch)?;
    c.batch_execute("COMMIT")?;
    eprintln!("\nfilled in {:.0} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// Makes `reader` a member of rooms `0..n` with a read marker in each, spread so the unread
/// counts run from 0 to more than 999.
fn reader_in(
    c: &mut DbConnection,
    n: usize,
    n_rooms: usize,
    per_room: usize,
) -> Result<(), DbError> {
    diesel::delete(room_members::table.filter(room_members::user_id.eq("reader"))).execute(c)?;
    diesel::delete(read_markers::table.filter(read_markers::user_id.eq("reader"))).execute(c)?;
    let members: Vec<String> = (0..n)
        .map(|r| format!("('{}','reader',1)", room_id(r)))
        .collect();
    insert(c, "room_members", "room_id, user_id, joined_at", &members)?;
    // markers at message (r * 37) % per_room; every tenth room without one (all unread)
    let markers: Vec<String> = (0..n)
        .filter(|r| r % 10 != 0)
        .map(|r| {
            let (id, _) = message_id(r, (r * 37) % per_room, n_rooms);
            format!("('{}','reader','{id}',1)", room_id(r))
        })
        .collect();
    insert(
        c,
        "read_markers",
        "room_id, user_id, last_read_message_id, last_read_at",
        &markers,
    )?;
    Ok(())
}

fn percentile(sorted: &[Duration], p: f64) -> f64 {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i].as_secs_f64() * 1000.0
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let url = std::env::var("DATABASE_URL")
        .unwrap_or_else(|_| "sqlite://target/bench/rooms_list.db".into());
    let n_rooms = env_num("ROOMS", 10_000);
    let per_room = env_num("MESSAGES", 1_000);
    let db = Db::connect(&url, 2)?;
    db.migrate()?;
    let backend = match db.backend() {
        Backend::Sqlite => "sqlite",
        Backend::Postgres => "postgres",
    };
    db.run_blocking(|c| fill(c, n_rooms, per_room))?;
    // PostgreSQL: a bulk load leaves the visibility map unset, so an index-only scan would
    // visit the heap for every entry until autovacuum passes; VACUUM sets it, as a live
    // database's autovacuum does
    let settle = match db.backend() {
        Backend::Sqlite => "ANALYZE",
        Backend::Postgres => "VACUUM ANALYZE",
    };
    db.run_blocking(|c| {
        c.batch_execute(settle)?;
        Ok(())
    })?;
    println!("| backend | rooms × messages | reader's rooms | unread total | p50 ms | p90 ms | max ms | per room µs |");
    println!("|---|---|---|---|---|---|---|---|");
    for member_of in [100usize, 1000] {
        db.run_blocking(|c| reader_in(c, member_of.min(n_rooms), n_rooms, per_room))?;
        // one call to warm the caches, then 30 timed
        let first = db.run_blocking(|c| edits::rooms_of(c, "reader"))?;
        assert_eq!(first.len(), member_of.min(n_rooms));
        let unread: i64 = first.iter().map(|r| r.unread).sum();
        let mut times = Vec::new();
        for _ in 0..30 {
            let t = Instant::now();
            let list = db.run_blocking(|c| edits::rooms_of(c, "reader"))?;
            times.push(t.elapsed());
            assert_eq!(list.len(), first.len());
        }
        times.sort();
        let p50 = percentile(&times, 0.5);
        println!(
            "| {backend} | {n_rooms} × {per_room} | {member_of} | {unread} | {p50:.1} | {:.1} | {:.1} | {:.0} |",
            percentile(&times, 0.9),
            percentile(&times, 1.0),
            p50 * 1000.0 / member_of as f64
        );
        let line = serde_json::json!({"bench": "rooms_list", "backend": backend, "rooms": n_rooms,
            "perRoom": per_room, "memberOf": member_of, "unreadTotal": unread, "p50Ms": p50,
            "p90Ms": percentile(&times, 0.9), "maxMs": percentile(&times, 1.0)});
        if let Ok(path) = std::env::var("BENCH_JSONL") {
            use std::io::Write;
            let mut f = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)?;
            writeln!(f, "{line}")?;
        }
    }
    Ok(())
}
