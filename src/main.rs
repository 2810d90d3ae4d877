//! `realtime-server`: the command line. `serve` (default) runs the server.

use std::net::TcpListener;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use realtime_server::socketio::Namespace;
use realtime_server::{Config, Server, SocketIo};

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
    },
}

fn main() -> std::io::Result<()> {
    env_logger::Builder::from_env(env_logger::Env::default().default_filter_or("info")).init();
    let cli = Cli::parse();
    let config = match Config::load(&cli.config_dir) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("invalid configuration: {e}");
            std::process::exit(2);
        }
    };
    match cli.command.unwrap_or(Command::Serve { addr: None }) {
        Command::Serve { addr } => serve(config, addr),
    }
}

fn serve(mut config: Config, addr: Option<String>) -> std::io::Result<()> {
    let addr = addr.unwrap_or_else(|| format!("{}:{}", config.server.host, config.server.port));
    let listener = TcpListener::bind(&addr)?;
    let files = realtime_server::raise_fd_limit();
    log::info!(
        "listening on http://{} max_open_files={files}",
        listener.local_addr()?
    );
    // The chat application turns connection state recovery on.
    config.recovery.enabled = true;
    let io = SocketIo::new()
        .recovery(true)
        .namespace("/", Namespace::new());
    let path = config.engine.path.clone();
    actix_web::rt::System::new().block_on(async move {
        Server::new(config)
            .socket_io(&path, io)
            .run(listener, shutdown_signal())
            .await
    })
}

async fn shutdown_signal() {
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
