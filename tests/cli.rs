//! `gyre serve` as a user runs it: a config file, real requests with curl,
//! and a graceful exit on SIGTERM.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

#[test]
fn serve_reads_config_answers_and_exits_gracefully_on_sigterm() {
    let dir = std::env::temp_dir().join(format!("gyre-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let config = dir.join("gyre.toml");
    std::fs::write(&config, "[server]\nmax_body = 10\nheader_timeout = 5.0\n").unwrap();
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_gyre"))
        .args(["serve", "--workers", "2", "--bench-routes", "--listen"])
        .arg(format!("127.0.0.1:{port}"))
        .arg("--config")
        .arg(&config)
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let out = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut log = Vec::new();
    let listening = loop {
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(line) => {
                let found = line.contains("listening on");
                log.push(line);
                if found {
                    break true;
                }
            }
            Err(_) => break false,
        }
    };
    assert!(listening, "no 'listening' line: {log:?}");
    let url = format!("http://127.0.0.1:{port}");
    let curl = |args: &[&str]| {
        let out = Command::new("curl")
            .args(args)
            .output()
            .expect("curl is required");
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    assert_eq!(
        curl(&["-s", &format!("{url}/bench/plaintext")]),
        "Hello, World!"
    );
    // The config file's max_body = 10 bytes applies: a short body is echoed
    // whole, a longer one is cut off (the echo streams, so its status was
    // already sent; the body stops at the limit).
    let echo = |body: &str| curl(&["-s", "--data-binary", body, &format!("{url}/bench/echo")]);
    assert_eq!(echo("short"), "short");
    let long = "more than ten bytes";
    assert_ne!(echo(long), long);
    // A handler that blocks its loop: the watchdog names the loop and the
    // route; a handler that offloads the same wait does not stall anything.
    assert!(curl(&["-s", &format!("{url}/bench/block?ms=400")]).starts_with("blocked the loop"));
    assert!(curl(&["-s", &format!("{url}/bench/offload?ms=200")])
        .starts_with("slept 200 ms on the blocking pool"));
    assert!(
        curl(&["-s", &format!("{url}/bench/sleep?ms=50")]).starts_with("slept 50 ms on a timer")
    );
    let stall_line = loop {
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(line) => {
                let found = line.contains("stalled") && line.contains("GET /bench/block");
                log.push(line.clone());
                if found {
                    break Some(line);
                }
            }
            Err(_) => break None,
        }
    };
    assert!(
        stall_line.is_some(),
        "no watchdog line naming the route: {log:?}"
    );
    let metrics = curl(&["-s", &format!("{url}/metrics")]);
    assert!(metrics.contains("gyre_loop_stalls_total"), "{metrics}");
    assert!(
        metrics.contains("gyre_responses_total{status=\"200\"}"),
        "{metrics}"
    );
    // SIGTERM: graceful shutdown, each step logged, exit status 0.
    let kill = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let status = child.wait().unwrap();
    while let Ok(line) = rx.recv_timeout(Duration::from_secs(5)) {
        log.push(line);
    }
    let log = log.join("\n");
    let _ = std::fs::remove_dir_all(&dir);
    assert!(status.success(), "exit {status:?}\n{log}");
    for step in [
        "shutting down gracefully",
        "stopped accepting",
        "all connections closed",
    ] {
        assert!(log.contains(step), "missing {step:?} in:\n{log}");
    }
}

/// Bad chat settings, on the command line or in the `[chat]` table, stop
/// `gyre serve` at once with a message saying what is wrong.
#[test]
fn serve_refuses_bad_chat_settings() {
    let dir = std::env::temp_dir().join(format!("gyre-cli-chat-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let unknown = dir.join("unknown.toml");
    std::fs::write(&unknown, "[chat]\nhistroy = 5\n").unwrap();
    let zero = dir.join("zero.toml");
    std::fs::write(&zero, "[chat]\nrate = 0.0\n").unwrap();
    let cases: [(&[&str], &str); 3] = [
        (&["--chat-burst", "0"], "must be positive"),
        (&["--config", unknown.to_str().unwrap()], "histroy"),
        (&["--config", zero.to_str().unwrap()], "must be positive"),
    ];
    for (args, said) in cases {
        let out = Command::new(env!("CARGO_BIN_EXE_gyre"))
            .args(["serve", "--listen", "127.0.0.1:0"])
            .args(args)
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert!(stderr.contains(said), "{args:?}: {stderr}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
