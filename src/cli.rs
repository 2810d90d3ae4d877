//! The administrative subcommands (README.md): `user add/disable/list`, `room add`,
//! `config check`. They write the database directly, as directory sync does, but reach no
//! open socket (live effects come from directory calls). Each returns the exit code: 0, or
//! 1 with the reason on stderr.

use std::path::Path;

use realtime_server::config::{masked_url, Config};
use realtime_server::db::{rooms, users, Db, DbError};

/// `user add ID [--name N] [--email E] [--admin]`: creates the user, or updates the given
/// fields of an existing one; either way the user is active afterwards.
pub struct UserAdd {
    pub id: String,
    pub name: Option<String>,
    pub email: Option<String>,
    pub admin: bool,
}

/// `room add ID [--name N] [--private] [--member ID]...`.
pub struct RoomAdd {
    pub id: String,
    pub name: Option<String>,
    pub private: bool,
    pub members: Vec<String>,
}

fn fail(msg: impl std::fmt::Display) -> i32 {
    eprintln!("error: {msg}");
    1
}

/// Runs `f` on a connection of the configured database (migrated first).
fn with_db<T>(
    config: &Config,
    f: impl FnOnce(&mut realtime_server::db::DbConnection) -> Result<T, DbError>,
) -> Result<T, String> {
    let db = Db::connect(&config.database.url, 1).map_err(|e| format!("database: {e}"))?;
    db.migrate().map_err(|e| format!("database: {e}"))?;
    db.run_blocking(f).map_err(|e| format!("database: {e}"))
}

fn valid_id(kind: &str, id: &str) -> Result<(), String> {
    if id.trim().is_empty() || id.len() > 200 {
        return Err(format!("{kind} id must be 1 to 200 characters"));
    }
    Ok(())
}

pub fn user_add(config: &Config, a: UserAdd) -> i32 {
    if let Err(e) = valid_id("user", &a.id) {
        return fail(e);
    }
    let id = a.id.clone();
    let done = with_db(config, move |c| {
        let old = users::find(c, &a.id)?;
        let update = users::UserUpdate {
            name: a
                .name
                .or_else(|| old.as_ref().map(|u| u.name.clone()))
                .unwrap_or_else(|| a.id.clone()),
            email: a
                .email
                .or_else(|| old.as_ref().map(|u| u.email.clone()))
                .unwrap_or_default(),
            avatar_url: old.as_ref().and_then(|u| u.avatar_url.clone()),
            role: if a.admin {
                "admin".into()
            } else {
                old.as_ref()
                    .map_or_else(|| "user".into(), |u| u.role.clone())
            },
            is_active: true,
        };
        users::upsert(c, &a.id, &update)?;
        Ok((old.is_some(), update.role))
    });
    match done {
        Ok((existed, role)) => {
            let what = if existed { "updated" } else { "added" };
            println!("{what} user {id} (role {role})");
            0
        }
        Err(e) => fail(e),
    }
}

pub fn user_disable(config: &Config, id: &str) -> i32 {
    let owned = id.to_owned();
    let done = with_db(config, move |c| {
        let Some(u) = users::find(c, &owned)? else {
            return Ok(false);
        };
        let update = users::UserUpdate {
            name: u.name,
            email: u.email,
            avatar_url: u.avatar_url,
            role: u.role,
            is_active: false,
        };
        users::upsert(c, &owned, &update)?;
        Ok(true)
    });
    match done {
        Ok(true) => {
            println!("disabled user {id} (open sockets stay until a directory call or their token expires)");
            0
        }
        Ok(false) => fail(format!("unknown user {id}")),
        Err(e) => fail(e),
    }
}

pub fn user_list(config: &Config) -> i32 {
    match with_db(config, users::list) {
        Ok(all) => {
            for u in all {
                println!(
                    "{}\t{}\t{}\t{}\t{}",
                    u.id, u.role, u.is_active, u.name, u.email
                );
            }
            0
        }
        Err(e) => fail(e),
    }
}

pub fn room_add(config: &Config, a: RoomAdd) -> i32 {
    if let Err(e) = valid_id("room", &a.id) {
        return fail(e);
    }
    let id = a.id.clone();
    let done = with_db(config, move |c| {
        for m in &a.members {
            if users::find(c, m)?.is_none() {
                return Ok(Err(format!(
                    "unknown user {m} (add it with `user add {m}`)"
                )));
            }
        }
        let old = rooms::find(c, &a.id)?;
        let name = a
            .name
            .or_else(|| old.as_ref().map(|r| r.name.clone()))
            .unwrap_or_else(|| a.id.clone());
        let public = !a.private && old.as_ref().is_none_or(|r| r.is_public);
        rooms::upsert(c, &a.id, &name, public, None)?;
        for m in &a.members {
            rooms::add_member(c, &a.id, m)?;
        }
        Ok(Ok((old.is_some(), public)))
    });
    match done {
        Ok(Ok((existed, public))) => {
            let what = if existed { "updated" } else { "added" };
            let kind = if public { "public" } else { "private" };
            println!("{what} room {id} ({kind})");
            0
        }
        Ok(Err(e)) | Err(e) => fail(e),
    }
}

/// Problems of a loaded configuration that would stop or cripple `serve`.
pub fn problems(config: &Config) -> Vec<String> {
    const MIN: usize = 32;
    let mut out = Vec::new();
    let short = |v: &Option<String>| v.as_deref().is_some_and(|s| !s.is_empty() && s.len() < MIN);
    if short(&config.internal.webhook_secret) {
        out.push(format!(
            "internal.webhook_secret (WEBHOOK_SECRET) must be at least {MIN} bytes"
        ));
    }
    if config.redis.url.as_deref().is_some_and(|u| !u.is_empty()) {
        if let Err(e) = realtime_server::server::cluster_secret(config) {
            out.push(e.to_string());
        }
    }
    if let Err(e) = realtime_server::db::parse_url(&config.database.url) {
        out.push(format!("database.url: {e}"));
    }
    if let Some(a) = config.internal.addr.as_deref().filter(|a| !a.is_empty()) {
        if a.parse::<std::net::SocketAddr>().is_err() {
            out.push(format!("internal.addr: {a:?} is not host:port"));
        }
    }
    // Without a configured key the verifier would generate one: not while checking.
    let keyed = config
        .auth
        .jwt_secret
        .as_deref()
        .is_some_and(|s| !s.is_empty())
        || config.auth.public_key_path.is_some();
    if keyed {
        if let Err(e) = realtime_server::auth::Verifier::from_config(&config.auth) {
            out.push(format!("auth: {e}"));
        }
    }
    out
}

/// `config check`: loads the configuration, reports what is wrong, prints the effective
/// settings (TOML) with secrets masked.
pub fn config_check(dir: &Path) -> i32 {
    let config = match Config::load(dir) {
        Ok(c) => c,
        Err(e) => return fail(format!("invalid configuration: {e}")),
    };
    let mut shown = config.clone();
    for s in [
        &mut shown.auth.jwt_secret,
        &mut shown.internal.webhook_secret,
        &mut shown.redis.cluster_secret,
        &mut shown.webhooks.outbound_secret,
    ] {
        if s.as_deref().is_some_and(|v| !v.is_empty()) {
            *s = Some("***".into());
        }
    }
    shown.database.url = masked_url(&shown.database.url);
    shown.redis.url = shown.redis.url.as_deref().map(masked_url);
    match toml::to_string_pretty(&shown) {
        Ok(text) => print!("{text}"),
        Err(e) => return fail(format!("cannot print the configuration: {e}")),
    }
    let problems = problems(&config);
    for p in &problems {
        eprintln!("error: {p}");
    }
    if problems.is_empty() {
        eprintln!("configuration OK");
        0
    } else {
        1
    }
}
