//! The `gyre` command line: `gyre serve`.

use std::net::SocketAddr;

use clap::{Parser, Subcommand};

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
    Serve {
        /// Address to listen on.
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
        /// Event loops (default: one per core).
        #[arg(long)]
        workers: Option<usize>,
    },
}

fn main() -> std::io::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .init();
    match Cli::parse().command {
        Command::Serve { listen, workers } => serve(listen, workers),
    }
}

/// Until the HTTP server lands: answer every request head with a fixed text.
fn serve(listen: SocketAddr, workers: Option<usize>) -> std::io::Result<()> {
    let mut builder = gyre::rt::Builder::new();
    if let Some(n) = workers {
        builder = builder.workers(n);
    }
    let rt = builder.build()?;
    let listener = gyre::rt::net::bind_std(listen, 1024)?;
    let acceptor = rt.handle().serve(listener, |stream, _| async move {
        let mut buf = vec![0u8; 4096];
        let mut filled = 0;
        loop {
            match stream.read(&mut buf[filled..]).await {
                Ok(0) | Err(_) => return,
                Ok(n) => filled += n,
            }
            while let Some(end) = buf[..filled].windows(4).position(|w| w == b"\r\n\r\n") {
                let body = "Hello from gyre\n";
                let resp = format!(
                    "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\r\n{body}",
                    body.len()
                );
                if stream.write_all(resp.as_bytes()).await.is_err() {
                    return;
                }
                buf.copy_within(end + 4..filled, 0);
                filled -= end + 4;
            }
            if filled == buf.len() {
                return;
            }
        }
    })?;
    tracing::info!("gyre serving on http://{}", acceptor.local_addr());
    loop {
        std::thread::park();
    }
}
