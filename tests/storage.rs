//! Storage on both backends from the same code: migrations (idempotent) and user queries,
//! against a SQLite file and a real throwaway PostgreSQL.

mod common;

use realtime_server::db::{users, Db};

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
