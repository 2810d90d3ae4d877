//! Storage on both backends from the same code: migrations (idempotent) and user queries,
//! against a SQLite file and a real throwaway PostgreSQL.

mod common;

use realtime_server::db::messages::{self, NewMessage, Refusal, Stored};
use realtime_server::db::{direct, rooms, users, Db};

fn exercise(db: &Db) {
    let first = db.migrate().expect("migrations apply");
    assert!(!first.is_empty());
    assert!(db.migrate().expect("second run").is_empty(), "idempotent");
    assert!(db.ping());

    let alice = users::UserUpdate {
        name: "Alice".into(),
        email: "alice@example.com".into(),
        avatar_url: None,
        role: "user".into(),
        is_active: true,
    };
    db.run_blocking(|c| users::upsert(c, "u-alice", &alice))
        .expect("insert");
    let got = db
        .run_blocking(|c| users::find(c, "u-alice"))
        .expect("select")
        .expect("alice exists");
    assert_eq!(
        (got.name.as_str(), got.role.as_str(), got.is_active),
        ("Alice", "user", true)
    );

    let changed = users::UserUpdate {
        role: "admin".into(),
        is_active: false,
        avatar_url: Some("https://example.com/a.png".into()),
        ..alice
    };
    db.run_blocking(|c| users::upsert(c, "u-alice", &changed))
        .expect("update");
    let again = db
        .run_blocking(|c| users::find(c, "u-alice"))
        .expect("select")
        .expect("alice exists");
    assert_eq!(again.role, "admin");
    assert!(!again.is_active);
    assert_eq!(
        again.avatar_url.as_deref(),
        Some("https://example.com/a.png")
    );
    assert_eq!(again.created_at, got.created_at, "created_at kept");

    assert_eq!(
        db.run_blocking(|c| users::find(c, "nobody"))
            .expect("select"),
        None
    );
    group_commit(db);
    direct_messages(db);
}

fn msg(
    room: &str,
    text: &str,
    cmid: Option<&str>,
    reply: Option<&str>,
    joined: bool,
) -> NewMessage {
    NewMessage {
        room_id: room.into(),
        sender_id: "u-alice".into(),
        text: text.into(),
        reply_to_id: reply.map(Into::into),
        client_msg_id: cmid.map(Into::into),
        joined,
    }
}

/// One batch, one transaction: new rows, duplicates inside the batch and across batches,
/// refusals in the contract's order, none of them costing the others.
fn group_commit(db: &Db) {
    db.run_blocking(|c| rooms::upsert(c, "r1", "Room 1", true, None))
        .expect("room");
    db.run_blocking(|c| rooms::upsert(c, "r2", "Room 2", true, None))
        .expect("room");
    let batch = vec![
        msg("r1", "one", Some("k1"), None, true),
        msg("r1", "one again", Some("k1"), None, true),
        msg("nowhere", "x", None, None, true),
        msg("r1", "x", None, Some("missing"), true),
        msg("r1", "x", None, None, false),
        msg("r2", "other room", None, None, true),
        msg("r1", "two", None, None, true),
    ];
    let out: Vec<Stored> = db
        .run_blocking(|c| Ok(messages::store_batch(c, &batch, &|_| None)))
        .expect("batch")
        .into_iter()
        .map(|r| r.expect("stored"))
        .collect();
    let Stored::New(first) = &out[0] else {
        panic!("first message stored: {:?}", out[0])
    };
    let first_id = first["id"].as_str().expect("id").to_owned();
    assert_eq!(out[1], Stored::Duplicate(first_id.clone()));
    assert_eq!(out[2], Stored::Refused(Refusal::UnknownRoom));
    assert_eq!(out[3], Stored::Refused(Refusal::UnknownMessage));
    assert_eq!(out[4], Stored::Refused(Refusal::NotJoined));
    let Stored::New(other) = &out[5] else {
        panic!("r2 message stored")
    };
    let Stored::New(two) = &out[6] else {
        panic!("second message stored")
    };
    assert!(
        two["id"].as_str() > first["id"].as_str(),
        "time-ordered ids"
    );
    assert_eq!(first["sender"]["name"], "Alice");
    // across batches: the stored clientMsgId wins; a reply from another room is refused
    let other_id = other["id"].as_str().expect("id").to_owned();
    let later = vec![
        msg("r1", "retry", Some("k1"), None, true),
        msg("r1", "reply", None, Some(&other_id), true),
        msg("r1", "reply", None, Some(&first_id), true),
    ];
    let out = db
        .run_blocking(|c| Ok(messages::store_batch(c, &later, &|_| None)))
        .expect("batch");
    assert_eq!(
        out[0].as_ref().expect("ok"),
        &Stored::Duplicate(first_id.clone())
    );
    assert_eq!(
        out[1].as_ref().expect("ok"),
        &Stored::Refused(Refusal::UnknownMessage)
    );
    let Ok(Stored::New(reply)) = &out[2] else {
        panic!("reply stored")
    };
    assert_eq!(reply["replyTo"]["id"], first_id.as_str());
    let (hist, more) = db
        .run_blocking(|c| messages::history(c, "r1", 50))
        .expect("history");
    assert!(!more);
    let texts: Vec<&str> = hist.iter().filter_map(|m| m["text"].as_str()).collect();
    assert_eq!(texts, ["one", "two", "reply"]);
    // read markers only move forward
    let two_id = two["id"].as_str().expect("id").to_owned();
    let mark = |id: &str| {
        db.run_blocking(|c| messages::mark_read(c, "r1", "u-alice", id, true, 1))
            .expect("mark")
    };
    assert_eq!(mark(&two_id), Ok(true));
    assert_eq!(mark(&first_id), Ok(false));
    assert_eq!(mark(&other_id), Err(Refusal::UnknownMessage));
}

/// Pending DMs are read in pages, oldest first, until they are marked delivered.
fn direct_messages(db: &Db) {
    for (i, at) in [(1, 5), (2, 5), (3, 4)] {
        let dm = direct::DirectMessage {
            id: format!("dm-{i}"),
            from_user_id: "u-alice".into(),
            to_user_id: "u-alice".into(),
            message: format!("hi {i}"),
            created_at: at,
            delivered_at: None,
        };
        db.run_blocking(|c| direct::store(c, &dm)).expect("store");
    }
    let ids = |page: Vec<direct::DirectMessage>| page.into_iter().map(|d| d.id).collect::<Vec<_>>();
    let page = |after: Option<direct::Cursor>, n| {
        db.run_blocking(move |c| direct::pending_page(c, "u-alice", after.as_ref(), n))
            .expect("page")
    };
    assert_eq!(ids(page(None, 2)), ["dm-3", "dm-1"], "oldest first");
    assert_eq!(
        ids(page(Some((5, "dm-1".into())), 2)),
        ["dm-2"],
        "after the cursor"
    );
    assert_eq!(
        db.run_blocking(|c| direct::pending_count(c, "u-alice"))
            .expect("count"),
        3
    );
    let marked = db
        .run_blocking(|c| direct::mark_delivered(c, &["dm-3".into(), "dm-1".into()], 9))
        .expect("mark");
    assert_eq!(marked, 2);
    let again = db
        .run_blocking(|c| direct::mark_delivered(c, &["dm-1".into()], 10))
        .expect("mark");
    assert_eq!(again, 0, "marked once");
    assert_eq!(ids(page(None, 10)), ["dm-2"]);
    assert_eq!(
        db.run_blocking(|c| direct::delivered(c, "dm-1"))
            .expect("q"),
        Some(true)
    );
}

#[test]
fn sqlite_file_with_wal() {
    let dir = std::env::temp_dir().join(format!("rt-sqlite-{}", std::process::id()));
    let path = dir.join("nested").join("realtime.db");
    let db = Db::connect(&format!("sqlite://{}", path.display()), 4).expect("open sqlite");
    exercise(&db);
    assert!(path.exists());
    drop(db);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn postgres_throwaway_cluster() {
    let pg = common::Postgres::start();
    let db = Db::connect(&pg.url(), 4).expect("connect to postgres");
    exercise(&db);
}

/// The migrations the read-markers migration finds applied, on a raw connection.
const EMBEDDED: diesel_migrations::EmbeddedMigrations = diesel_migrations::embed_migrations!();
const READ_MARKERS: &str = "20261202000001";

/// A database as the version before read markers left it: alice a member by the directory
/// who also read, bob only a reader (his row made by `chat:read`), carol a member who never
/// read.
const BEFORE_READ_MARKERS: &str = "
    INSERT INTO users (id, name, email, role, is_active, created_at) VALUES
        ('alice', 'Alice', 'a@example.com', 'user', true, 1),
        ('bob', 'Bob', 'b@example.com', 'user', true, 1),
        ('carol', 'Carol', 'c@example.com', 'user', true, 1);
    INSERT INTO rooms (id, name, is_public, created_at) VALUES ('lobby', 'Lobby', true, 1);
    INSERT INTO room_members (room_id, user_id, joined_at, last_read_message_id, last_read_at)
    VALUES ('lobby', 'alice', 100, 'm2', 300),
           ('lobby', 'bob', 200, 'm1', 200),
           ('lobby', 'carol', 150, NULL, NULL);
";

/// Applies the migrations before `version` on a raw connection, then runs `rows` (data as
/// that schema held it).
macro_rules! migrate_before {
    ($conn:expr, $version:expr, $rows:expr) => {{
        use diesel::connection::SimpleConnection;
        use diesel_migrations::MigrationHarness;
        let conn = $conn;
        for m in conn.pending_migrations(EMBEDDED).expect("migrations") {
            if m.name().version().to_string().as_str() < $version {
                conn.run_migration(&m)
                    .expect("an earlier migration applies");
            }
        }
        conn.batch_execute($rows)
            .expect("rows of the earlier schema");
    }};
}

/// After the migration: markers kept, the reader-only row is no membership any more.
fn check_read_markers_migration(url: &str) {
    use diesel::prelude::*;
    use realtime_server::db::schema::read_markers;
    let db = Db::connect(url, 2).expect("connect");
    let applied = db.migrate().expect("the rest applies");
    assert!(
        applied.iter().any(|m| m.starts_with(READ_MARKERS)),
        "{applied:?}"
    );
    let member = |u: &'static str| {
        db.run_blocking(move |c| rooms::is_member(c, "lobby", u))
            .expect("query")
    };
    assert!(member("alice"));
    assert!(!member("bob"), "reading made no membership");
    assert!(member("carol"));
    let mut markers: Vec<(String, String, i64)> = db
        .run_blocking(|c| {
            Ok(read_markers::table
                .select((
                    read_markers::user_id,
                    read_markers::last_read_message_id,
                    read_markers::last_read_at,
                ))
                .load(c)?)
        })
        .expect("markers");
    markers.sort();
    assert_eq!(
        markers,
        vec![
            ("alice".into(), "m2".into(), 300),
            ("bob".into(), "m1".into(), 200)
        ]
    );
}

#[test]
fn read_markers_migration_on_sqlite() {
    use diesel::Connection;
    let dir = std::env::temp_dir().join(format!("rt-migrate-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("old.db");
    let mut conn = diesel::SqliteConnection::establish(&path.display().to_string()).expect("open");
    migrate_before!(&mut conn, READ_MARKERS, BEFORE_READ_MARKERS);
    drop(conn);
    check_read_markers_migration(&format!("sqlite://{}", path.display()));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn read_markers_migration_on_postgres() {
    use diesel::Connection;
    let pg = common::Postgres::start();
    let mut conn = diesel::PgConnection::establish(&pg.url()).expect("connect");
    migrate_before!(&mut conn, READ_MARKERS, BEFORE_READ_MARKERS);
    drop(conn);
    check_read_markers_migration(&pg.url());
}

const CHAT_EDITS: &str = "20261208000001";

/// A database as the version before edits, deletes and reactions left it: two rooms with
/// messages (one a reply, one with a clientMsgId), a member and a read marker.
const BEFORE_CHAT_EDITS: &str = "
    INSERT INTO users (id, name, email, role, is_active, created_at) VALUES
        ('alice', 'Alice', 'a@example.com', 'user', true, 1),
        ('bob', 'Bob', 'b@example.com', 'admin', true, 1);
    INSERT INTO rooms (id, name, is_public, created_at) VALUES
        ('lobby', 'Lobby', true, 1), ('team', 'Team', false, 1);
    INSERT INTO room_members (room_id, user_id, joined_at) VALUES ('team', 'bob', 1);
    INSERT INTO messages (id, room_id, sender_id, text, reply_to_id, client_msg_id, created_at)
    VALUES ('m1', 'lobby', 'alice', 'first', NULL, 'c-1', 10),
           ('m2', 'lobby', 'alice', 'second', 'm1', NULL, 20),
           ('m3', 'lobby', 'alice', 'third', NULL, NULL, 30),
           ('m4', 'team', 'bob', 'team talk', NULL, NULL, 40);
    INSERT INTO read_markers (room_id, user_id, last_read_message_id, last_read_at)
    VALUES ('lobby', 'bob', 'm1', 50);
";

/// After the migration: every message kept as it was (not edited, not deleted, no
/// reactions), unread counted from the kept marker, and the new changes work on old rows.
fn check_chat_edits_migration(url: &str) {
    use realtime_server::db::edits;
    let db = Db::connect(url, 2).expect("connect");
    let applied = db.migrate().expect("the rest applies");
    assert!(
        applied.iter().any(|m| m.starts_with(CHAT_EDITS)),
        "{applied:?}"
    );
    let (hist, more) = db
        .run_blocking(|c| messages::history(c, "lobby", 50))
        .expect("history");
    assert!(!more);
    let texts: Vec<&str> = hist.iter().filter_map(|m| m["text"].as_str()).collect();
    assert_eq!(texts, ["first", "second", "third"]);
    assert!(hist.iter().all(|m| m.get("editedAt").is_none()
        && m.get("deletedAt").is_none()
        && m.get("reactions").is_none()));
    assert_eq!(hist[1]["replyTo"]["text"], "first");
    assert_eq!(hist[0]["clientMsgId"], "c-1");

    let listed = db
        .run_blocking(|c| edits::rooms_of(c, "bob"))
        .expect("rooms");
    let summary: Vec<(&str, i64, Option<&str>)> = listed
        .iter()
        .map(|r| {
            let last = r.last.as_ref().and_then(|m| m["id"].as_str());
            (r.id.as_str(), r.unread, last)
        })
        .collect();
    assert_eq!(
        summary,
        [("team", 0, Some("m4")), ("lobby", 2, Some("m3"))],
        "bob: member of team (his own message), marker at m1 in lobby"
    );

    let none = &|_: &serde_json::Value| None;
    let edited = db
        .run_blocking(|c| edits::edit(c, "m3", "alice", "third, edited", 60, none))
        .expect("edit")
        .expect("allowed");
    assert_eq!(edited.message["editedAt"], 60);
    let reacted = db
        .run_blocking(|c| edits::react(c, "m2", "bob", "👍", true, 61))
        .expect("react");
    assert_eq!(reacted, Ok(("lobby".to_owned(), true)));
    // bob's stored role is admin: he may delete alice's message
    let deleted = db
        .run_blocking(|c| edits::delete(c, "m1", "bob", 62, none))
        .expect("delete")
        .expect("allowed");
    assert_eq!(deleted.message["text"], "");
    let (hist, _) = db
        .run_blocking(|c| messages::history(c, "lobby", 50))
        .expect("history");
    assert_eq!(
        hist[1]["replyTo"]["text"], "",
        "a reply to a deleted message"
    );
    assert_eq!(hist[1]["reactions"][0]["userIds"][0], "bob");
    let listed = db
        .run_blocking(|c| edits::rooms_of(c, "bob"))
        .expect("rooms");
    assert_eq!(listed[1].unread, 2, "m2 and m3 after bob's marker");
}

#[test]
fn chat_edits_migration_on_sqlite() {
    use diesel::Connection;
    let dir = std::env::temp_dir().join(format!("rt-migrate-edits-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("old.db");
    let mut conn = diesel::SqliteConnection::establish(&path.display().to_string()).expect("open");
    migrate_before!(&mut conn, CHAT_EDITS, BEFORE_CHAT_EDITS);
    drop(conn);
    check_chat_edits_migration(&format!("sqlite://{}", path.display()));
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn chat_edits_migration_on_postgres() {
    use diesel::Connection;
    let pg = common::Postgres::start();
    let mut conn = diesel::PgConnection::establish(&pg.url()).expect("connect");
    migrate_before!(&mut conn, CHAT_EDITS, BEFORE_CHAT_EDITS);
    drop(conn);
    check_chat_edits_migration(&pg.url());
}
