//! The `gyre` command line: `gyre serve`.

mod bench_routes;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use gyre_chat::ChatSettings;
use gyre_server::{Config, Server};

/// gyre: an event-driven HTTP server.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Serve HTTP.
    Serve(ServeArgs),
}

#[derive(Debug, Args)]
struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: SocketAddr,
    /// Event loops (default: one per core).
    #[arg(long)]
    workers: Option<usize>,
    /// A TOML file with a `[server]` table of limits and timeouts; flags override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Log one line per request.
    #[arg(long)]
    access_log: bool,
    /// Serve the files under this directory (at `/`) instead of the chat.
    #[arg(long)]
    root: Option<PathBuf>,
    /// Add the /bench/* routes for benchmarks and demonstrations.
    #[arg(long)]
    bench_routes: bool,
    /// Stall watchdog threshold in milliseconds.
    #[arg(long, default_value_t = 100)]
    stall_ms: u64,
    /// Head read timeout, seconds.
    #[arg(long)]
    header_timeout: Option<f64>,
    /// Idle keep-alive timeout, seconds.
    #[arg(long)]
    keep_alive_timeout: Option<f64>,
    /// Body read timeout, seconds.
    #[arg(long)]
    body_timeout: Option<f64>,
    /// Write timeout, seconds.
    #[arg(long)]
    write_timeout: Option<f64>,
    /// Largest request body, bytes.
    #[arg(long)]
    max_body: Option<u64>,
    /// Largest request head, bytes.
    #[arg(long)]
    max_head: Option<usize>,
    /// Most header fields.
    #[arg(long)]
    max_headers: Option<usize>,
    /// Longest request line, bytes.
    #[arg(long)]
    max_request_line: Option<usize>,
    /// Most open connections.
    #[arg(long)]
    max_connections: Option<usize>,
    /// Graceful shutdown deadline, seconds.
    #[arg(long)]
    shutdown_timeout: Option<f64>,
    /// Largest WebSocket message, bytes.
    #[arg(long)]
    ws_max_message: Option<usize>,
    /// Seconds of quiet before a WebSocket ping (0: none).
    #[arg(long)]
    ws_ping_interval: Option<f64>,
    /// Seconds without a frame before a WebSocket is closed (0: never).
    #[arg(long)]
    ws_idle_timeout: Option<f64>,
    /// Messages a broadcast subscriber may have queued.
    #[arg(long)]
    broadcast_queue: Option<usize>,
    /// What a full subscriber queue does: drop-oldest or close.
    #[arg(long)]
    slow_consumer: Option<gyre_server::SlowConsumer>,
    /// Chat: messages kept per room.
    #[arg(long)]
    chat_history: Option<usize>,
    /// Chat: most rooms.
    #[arg(long)]
    chat_max_rooms: Option<usize>,
    /// Chat: messages per second one connection may send on average.
    #[arg(long)]
    chat_rate: Option<f64>,
    /// Chat: messages one connection may send at once.
    #[arg(long)]
    chat_burst: Option<u32>,
}

/// The TOML file's shape.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    #[serde(default)]
    server: Config,
    #[serde(default)]
    chat: ChatFile,
}

/// The `[chat]` table of the TOML file.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ChatFile {
    history: Option<usize>,
    max_rooms: Option<usize>,
    rate: Option<f64>,
    burst: Option<u32>,
    max_text: Option<usize>,
}

/// Errors of the command line: reported and turned into exit code 1.
type Error = Box<dyn std::error::Error + Send + Sync>;

fn main() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    let result = match Cli::parse().command {
        Command::Serve(args) => serve(args),
    };
    if let Err(e) = result {
        eprintln!("gyre: {e}");
        std::process::exit(1);
    }
}

fn secs(v: f64) -> Result<Duration, Error> {
    Ok(Duration::try_from_secs_f64(v)?)
}

fn config(args: &ServeArgs) -> Result<(Config, ChatSettings), Error> {
    let file = match &args.config {
        Some(path) => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
            toml::from_str::<FileConfig>(&text).map_err(|e| format!("{}: {e}", path.display()))?
        }
        None => FileConfig::default(),
    };
    let mut c = file.server;
    if let Some(v) = args.header_timeout {
        c.header_timeout = secs(v)?;
    }
    if let Some(v) = args.keep_alive_timeout {
        c.keep_alive_timeout = secs(v)?;
    }
    if let Some(v) = args.body_timeout {
        c.body_timeout = secs(v)?;
    }
    if let Some(v) = args.write_timeout {
        c.write_timeout = secs(v)?;
    }
    if let Some(v) = args.shutdown_timeout {
        c.shutdown_timeout = secs(v)?;
    }
    c.max_body = args.max_body.unwrap_or(c.max_body);
    c.max_head = args.max_head.unwrap_or(c.max_head);
    c.max_headers = args.max_headers.unwrap_or(c.max_headers);
    c.max_request_line = args.max_request_line.unwrap_or(c.max_request_line);
    c.max_connections = args.max_connections.unwrap_or(c.max_connections);
    if let Some(v) = args.ws_ping_interval {
        c.ws_ping_interval = secs(v)?;
    }
    if let Some(v) = args.ws_idle_timeout {
        c.ws_idle_timeout = secs(v)?;
    }
    c.ws_max_message = args.ws_max_message.unwrap_or(c.ws_max_message);
    c.broadcast_queue = args.broadcast_queue.unwrap_or(c.broadcast_queue);
    c.slow_consumer = args.slow_consumer.unwrap_or(c.slow_consumer);
    c.access_log |= args.access_log;
    let mut chat = ChatSettings {
        ws: c.ws(),
        topic: c.topic(),
        ..ChatSettings::default()
    };
    // The chat's messages are small: its WebSocket limit is its own.
    chat.ws.max_frame = chat.ws.max_frame.min(64 * 1024);
    chat.ws.max_message = chat.ws.max_message.min(64 * 1024);
    let f = file.chat;
    chat.history = args.chat_history.or(f.history).unwrap_or(chat.history);
    chat.max_rooms = args
        .chat_max_rooms
        .or(f.max_rooms)
        .unwrap_or(chat.max_rooms);
    chat.rate = args.chat_rate.or(f.rate).unwrap_or(chat.rate);
    chat.burst = args.chat_burst.or(f.burst).unwrap_or(chat.burst);
    chat.max_text = f.max_text.unwrap_or(chat.max_text);
    if !chat.rate.is_finite() || chat.rate <= 0.0 || chat.burst == 0 || chat.history == 0 {
        return Err("chat rate, burst and history must be positive".into());
    }
    Ok((c, chat))
}

fn serve(args: ServeArgs) -> Result<(), Error> {
    let (config, chat) = config(&args)?;
    let mut builder = gyre_rt::Builder::new().stall_threshold(Duration::from_millis(args.stall_ms));
    if let Some(n) = args.workers {
        builder = builder.workers(n);
    }
    let rt = builder.build()?;
    let mut server = Server::new()
        .config(config.clone())
        .metrics_route("/metrics");
    server = match &args.root {
        Some(root) => {
            let files = gyre_server::files::ServeDir::new(root)
                .map_err(|e| format!("cannot serve {}: {e}", root.display()))?;
            server.get("/*path", files)
        }
        None => gyre_chat::Chat::in_process(chat).routes(server),
    };
    if args.bench_routes {
        server = bench_routes::add(server, &config);
    }
    let listener = gyre_rt::net::bind_std(args.listen, 4096)
        .map_err(|e| format!("cannot listen on {}: {e}", args.listen))?;
    let running = server.start(rt.handle(), listener)?;
    if let Some(addr) = running.local_addr() {
        tracing::info!(target: "gyre::server", "listening on http://{addr}/");
    }
    let mut signals = signal_hook::iterator::Signals::new([
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
    ])?;
    if let Some(sig) = signals.forever().next() {
        tracing::info!(target: "gyre::server", "signal {sig}: shutting down gracefully");
    }
    let clean = running.shutdown();
    rt.shutdown();
    tracing::info!(target: "gyre::server", "exit");
    if !clean {
        std::process::exit(2);
    }
    Ok(())
}
