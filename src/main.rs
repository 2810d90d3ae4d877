//! `realtime-server`: the command line. `serve` (default) runs the server; `token` mints a
//! JWT for local use with the configured secret; `user`, `room` and `config check` are the
//! operator's tools (`cli`).

/// mimalloc: many small, short-lived allocations across worker threads (JSON payloads,
/// packets) cost less than with the system allocator (measured in docs/benchmarks.md).
/// The `heap-profile` feature keeps the system allocator, so that a heap profiler that
/// hooks `malloc` (heaptrack, valgrind's massif) sees every allocation (docs/benchmarks.md).
#[cfg(not(feature = "heap-profile"))]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

mod cli;
mod logging;

/// No transparent huge pages for this process: on a kernel set to `always`, khugepaged folds
/// partly used 2 MiB ranges of the heap into whole huge pages after some minutes, a lasting
/// step in RSS for no gain at this heap size (docs/benchmarks.md, "Memory under churn").
/// mimalloc is built not to ask for them (`no_thp`); this covers the kernel's own choice.
fn no_huge_pages() {
    // SAFETY: PR_SET_THP_DISABLE takes plain integers and only sets a flag of this process.
    let res = unsafe { libc::prctl(libc::PR_SET_THP_DISABLE, 1, 0, 0, 0) };
    if res != 0 {
        // an old kernel without it: nothing else depends on it
        eprintln!(
            "cannot disable transparent huge pages: {}",
            std::io::Error::last_os_error()
        );
    }
}

use std::net::TcpListener;
use std::path::PathBuf;

use std::sync::Arc;

use actix::Actor;
use clap::{Parser, Subcommand, ValueEnum};
use realtime_server::app::notify::NotificationActor;
use realtime_server::app::presence::Presence;
use realtime_server::auth::{Role, Verifier};
use realtime_server::db::Db;
use realtime_server::{Config, Server};

#[derive(Parser)]
#[command(
    name = "realtime-server",
    version,
    about = "A Socket.IO v4-compatible realtime server"
)]
struct Cli {
    /// Directory with default.toml / local.toml.
    #[arg(long, default_value = "config", global = true)]
    config_dir: PathBuf,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve {
        /// Listen address, overriding HOST/PORT (e.g. 127.0.0.1:0).
        #[arg(long)]
        addr: Option<String>,
        /// Demo mode: seeded users (alice, bob, carol, admin) and room (lobby), the chat
        /// page at /demo/ and tokens for the demo users at POST /demo/token. Not for
        /// production.
        #[arg(long)]
        demo: bool,
    },
    /// Create or update the database schema, then exit.
    Migrate,
    /// Mint a JWT with the configured secret (for local use and tests).
    Token {
        #[arg(long)]
        user: String,
        #[arg(long, value_enum, default_value = "user")]
        role: RoleArg,
        /// Lifetime, e.g. 30m, 1h, 7d.
        #[arg(long, default_value = "1h")]
        ttl: humantime::Duration,
        #[arg(long)]
        email: Option<String>,
    },
    /// Users in the database: add (or update), disable, list.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
    /// Rooms in the database: add (or update).
    Room {
        #[command(subcommand)]
        command: RoomCommand,
    },
    /// The configuration.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
}

#[derive(Subcommand)]
enum UserCommand {
    /// Add a user, or update the given fields of an existing one (it is active afterwards).
    Add {
        id: String,
        #[arg(long)]
        name: Option<String>,
        #[arg(long)]
        email: Option<String>,
        /// Make the user an admin.
        #[arg(long)]
        admin: bool,
    },
    /// Disable a user: new connections get ACCOUNT_DISABLED.
    Disable { id: String },
    /// One line per user: id, role, active (true|false), name, email (tab-separated).
    List,
}

#[derive(Subcommand)]
enum RoomCommand {
    /// Add a room, or update the given fields of an existing one; --member adds members.
    Add {
        id: String,
        #[arg(long)]
        name: Option<String>,
        /// Only members may join.
        #[arg(long)]
        private: bool,
        /// A member to add (repeatable); never removes one.
        #[arg(long = "member")]
        members: Vec<String>,
    },
}

#[derive(Subcommand)]
enum ConfigCommand {
    /// Load the configuration, report unknown keys and bad values, print the effective
    /// settings with secrets masked; exit 1 on an error.
    Check,
}

#[derive(Clone, Copy, ValueEnum)]
enum RoleArg {
    User,
    Admin,
}

fn main() -> std::io::Result<()> {
    no_huge_pages();
    #[cfg(not(feature = "heap-profile"))]
    realtime_server::purge_freed_memory_at_once();
    let cli = Cli::parse();
    if let Some(Command::Config {
        command: ConfigCommand::Check,
    }) = cli.command
    {
        logging::init(realtime_server::config::LogFormat::Text);
        std::process::exit(cli::config_check(&cli.config_dir));
    }
    let config = match Config::load(&cli.config_dir) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("invalid configuration: {e}");
            std::process::exit(2);
        }
    };
    logging::init(config.log.format);
    let exit = |code: i32| -> std::io::Result<()> { std::process::exit(code) };
    match cli.command.unwrap_or(Command::Serve {
        addr: None,
        demo: false,
    }) {
        Command::Config { .. } => Ok(()),
        Command::User { command } => exit(match command {
            UserCommand::Add {
                id,
                name,
                email,
                admin,
            } => cli::user_add(
                &config,
                cli::UserAdd {
                    id,
                    name,
                    email,
                    admin,
                },
            ),
            UserCommand::Disable { id } => cli::user_disable(&config, &id),
            UserCommand::List => cli::user_list(&config),
        }),
        Command::Room {
            command:
                RoomCommand::Add {
                    id,
                    name,
                    private,
                    members,
                },
        } => exit(cli::room_add(
            &config,
            cli::RoomAdd {
                id,
                name,
                private,
                members,
            },
        )),
        Command::Serve { addr, demo } => {
            let mut config = config;
            config.server.demo |= demo;
            serve(config, addr)
        }
        Command::Migrate => match open_db(&config) {
            Ok(_) => Ok(()),
            Err(e) => {
                eprintln!("{e}");
                std::process::exit(2);
            }
        },
        Command::Token {
            user,
            role,
            ttl,
            email,
        } => {
            let role = match role {
                RoleArg::User => Role::User,
                RoleArg::Admin => Role::Admin,
            };
            warn_unknown_user(&config, &user);
            let token = Verifier::from_config(&config.auth)
                .and_then(|v| v.mint(&user, role, email, ttl.into()));
            match token {
                Ok(t) => {
                    println!("{t}");
                    Ok(())
                }
                Err(e) => {
                    eprintln!("cannot mint a token: {e}");
                    std::process::exit(2);
                }
            }
        }
    }
}

/// `token` for a user the database does not know still prints the token, with a warning:
/// connecting with it would get TOKEN_INVALID.
fn warn_unknown_user(config: &Config, user: &str) {
    let owned = user.to_owned();
    let found = open_db(config).and_then(|db| {
        db.run_blocking(move |c| realtime_server::db::users::find(c, &owned))
            .map_err(|e| e.to_string())
    });
    match found {
        Ok(Some(_)) => {}
        Ok(None) => eprintln!(
            "warning: user {user} is not in the database: a client connecting with this token gets TOKEN_INVALID (add it with `realtime-server user add {user}`)"
        ),
        Err(e) => eprintln!("warning: cannot check that user {user} exists: {e}"),
    }
}

/// Opens the database and applies pending migrations.
fn open_db(config: &Config) -> Result<Db, String> {
    let db = Db::connect_with(
        &config.database.url,
        config.database.pool_size,
        config.database.sqlite_cache_kib,
    )
    .map_err(|e| format!("cannot open the database: {e}"))?;
    let applied = db
        .migrate()
        .map_err(|e| format!("cannot migrate the database: {e}"))?;
    log::info!(
        "database ready backend={:?} url={} migrations_applied={}",
        db.backend(),
        realtime_server::config::masked_url(&config.database.url),
        applied.len()
    );
    Ok(db)
}

fn serve(mut config: Config, addr: Option<String>) -> std::io::Result<()> {
    if config.redis.url.as_deref().is_some_and(|u| !u.is_empty()) {
        if let Err(e) = realtime_server::server::cluster_secret(&config) {
            log::error!("{e}");
            std::process::exit(2);
        }
    }
    let addr = addr.unwrap_or_else(|| format!("{}:{}", config.server.host, config.server.port));
    let listener = TcpListener::bind(&addr)?;
    let internal = match config.internal.addr.as_deref().filter(|a| !a.is_empty()) {
        Some(a) => Some(
            TcpListener::bind(a)
                .map_err(|e| std::io::Error::new(e.kind(), format!("internal.addr {a}: {e}")))?,
        ),
        None => None,
    };
    let files = realtime_server::raise_fd_limit();
    // The schema is created or updated before anything is served.
    let db = match open_db(&config) {
        Ok(db) => db,
        Err(e) => {
            log::error!("{e}");
            std::process::exit(2);
        }
    };
    let verifier = match Verifier::from_config(&config.auth) {
        Ok(v) => Arc::new(v.with_max_lifetime(config.limits.max_token_lifetime_s)),
        Err(e) => {
            log::error!("authentication set-up failed: {e}");
            std::process::exit(2);
        }
    };
    let webhook_secret = config
        .internal
        .webhook_secret
        .clone()
        .filter(|s| !s.is_empty())
        .map(String::into_bytes);
    match &webhook_secret {
        None => {
            log::warn!("no internal.webhook_secret (WEBHOOK_SECRET): /internal/ calls are refused")
        }
        Some(s) if s.len() < realtime_server::auth::MIN_SECRET => {
            log::error!(
                "internal.webhook_secret (WEBHOOK_SECRET) must be at least {} bytes long",
                realtime_server::auth::MIN_SECRET
            );
            std::process::exit(2);
        }
        Some(_) => {}
    }
    let demo = config.server.demo.then(|| demo_setup(&db, &verifier));
    // Said once the schema is in place: from here on requests are served.
    log::info!(
        "listening on http://{} max_open_files={files}",
        listener.local_addr()?
    );
    if demo.is_some() {
        demo_links(&verifier, &listener.local_addr()?);
    }
    let pages = realtime_server::http::pages::configure(demo);
    config.recovery.enabled = true;
    let outbound_wake = Arc::new(tokio::sync::Notify::new());
    let outbound_on = config
        .webhooks
        .outbound_url
        .as_deref()
        .is_some_and(|u| !u.is_empty());
    let hooks = outbound_on.then(|| {
        realtime_server::app::outbound::Hooks::new(outbound_wake.clone(), &config.webhooks.events)
    });
    let presence = Presence::with_status(realtime_server::app::presence::StatusHooks {
        db: db.clone(),
        grace: std::time::Duration::from_millis(config.presence.grace_ms),
        outbound: hooks.clone(),
    });
    let (proxy_link, proxy_calls) = realtime_server::http::proxy::link(&config.proxy).unzip();
    let (io, drain, api) = realtime_server::app::socket_io(
        &config,
        verifier,
        db.clone(),
        presence.clone(),
        proxy_link,
        hooks,
    );
    // accepted chat:sends get this long to be stored and acked before connections close
    let drain_max = std::time::Duration::from_millis(config.server.drain_ms.max(5000));
    let path = config.engine.path.clone();
    let low_stock = config.notifications.low_stock_threshold;
    let webhooks = config.webhooks.clone();
    let proxy = config.proxy.clone();
    actix_web::rt::System::new().block_on(async move {
        // on a thread of its own, so a slow receiver never slows the realtime path
        let _sender = realtime_server::http::outbound::start(db.clone(), &webhooks, outbound_wake);
        let _proxy = proxy_calls.and_then(|rx| realtime_server::http::proxy::start(&proxy, rx));
        let server = match internal {
            Some(l) => Server::new(config).internal_listener(l),
            None => Server::new(config),
        };
        server
            .socket_io(&path, io)
            .plain_websocket("/ws")
            .routes(pages)
            .routes_with_io({
                let api = api.clone();
                move |io| realtime_server::http::rest::configure(api, io)
            })
            .routes_with_io(move |io| {
                let notifier =
                    NotificationActor::new(db.clone(), io.clone(), presence, low_stock).start();
                realtime_server::http::configure(realtime_server::http::InternalState {
                    db,
                    webhook_secret,
                    notifier,
                    io,
                    api,
                })
            })
            .on_drain(move || drain.run(drain_max))
            .run(listener, shutdown_signal())
            .await
    })
}

/// Demo mode: the demo users and room are added when absent (existing ones are left as
/// they are); exits when the database refuses or tokens cannot be minted.
fn demo_setup(db: &Db, verifier: &Arc<Verifier>) -> realtime_server::http::pages::Demo {
    use realtime_server::db::{rooms, users};
    use realtime_server::http::pages::{DEMO_ROOMS, DEMO_USERS};
    log::warn!(
        "DEMO MODE: anyone can get a token for the demo users (POST /demo/token); never run a server that matters with --demo"
    );
    if let Err(e) = verifier.mint(
        "demo-check",
        Role::User,
        None,
        std::time::Duration::from_secs(60),
    ) {
        log::error!("demo mode needs a JWT secret to mint tokens with: {e}");
        std::process::exit(2);
    }
    let seeded = db.run_blocking(|c| {
        for (id, name, role) in DEMO_USERS {
            if users::find(c, id)?.is_none() {
                let u = users::UserUpdate {
                    name: name.into(),
                    email: format!("{id}@demo.invalid"),
                    avatar_url: None,
                    role: if role == Role::Admin { "admin" } else { "user" }.into(),
                    is_active: true,
                };
                users::upsert(c, id, &u)?;
            }
        }
        let members: Vec<String> = DEMO_USERS
            .iter()
            .map(|(id, _, _)| (*id).to_owned())
            .collect();
        for (id, name) in DEMO_ROOMS {
            if rooms::find(c, id)?.is_none() {
                rooms::upsert(c, id, name, true, Some(&members))?;
            }
        }
        Ok(())
    });
    if let Err(e) = seeded {
        log::error!("cannot seed the demo users: {e}");
        std::process::exit(2);
    }
    realtime_server::http::pages::Demo {
        verifier: verifier.clone(),
    }
}

/// Prints where to go in demo mode: the chat page and the dashboard with an admin token.
fn demo_links(verifier: &Verifier, addr: &std::net::SocketAddr) {
    let host = if addr.ip().is_unspecified() {
        "127.0.0.1".to_owned()
    } else {
        addr.ip().to_string()
    };
    let base = format!("http://{host}:{}", addr.port());
    println!("demo chat:       {base}/demo/  (open it in two windows, sign in as two users)");
    match verifier.mint(
        "admin",
        Role::Admin,
        None,
        std::time::Duration::from_secs(3600),
    ) {
        Ok(t) => println!("admin dashboard: {base}/admin/#token={t}  (valid 1 h)"),
        Err(e) => log::error!("cannot mint the admin link's token: {e}"),
    }
}

/// Resolves on the first SIGTERM or SIGINT (the drain starts); a second one exits at once.
async fn shutdown_signal() {
    signal().await;
    log::info!("signal received: draining (a second signal exits at once)");
    actix_web::rt::spawn(async {
        signal().await;
        log::warn!("second signal: exiting without draining");
        std::process::exit(1);
    });
}

async fn signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        let mut term =
            match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
                Ok(s) => s,
                Err(_) => {
                    let _ = ctrl_c.await;
                    return;
                }
            };
        tokio::select! {
            _ = ctrl_c => {},
            _ = term.recv() => {},
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
}
