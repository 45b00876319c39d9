//! The chat page in a real browser: `gyre serve` on a free port, then
//! `node tests/browser/chat.mjs URL` drives headless Chromium (through
//! playwright-core) against it: two people talking over WebSocket, SSE and
//! long polling, reloads, fallbacks, a lossy connection and a phone-sized
//! window.
//!
//! Needs `node` and Chromium (`/usr/bin/chromium`, or `$CHROMIUM`); when
//! either is missing the test fails and says so. `tests/browser/node_modules`
//! is installed with `npm ci` when it is not there.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use wait_timeout::ChildExt;

const SERVER_START: Duration = Duration::from_secs(30);
const NODE_TIMEOUT: Duration = Duration::from_secs(180);
const NPM_TIMEOUT: Duration = Duration::from_secs(300);

/// Kills a child process (by its PID) when dropped, so that a failing
/// assertion does not leave the server or the browser behind.
struct Killed {
    child: Child,
    what: &'static str,
}

impl Drop for Killed {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            if let Err(e) = self.child.kill() {
                eprintln!(
                    "could not kill {} (pid {}): {e}",
                    self.what,
                    self.child.id()
                );
            }
        }
        let _ = self.child.wait();
    }
}

/// Sends every line of `r` to `tx`, prefixed, until the stream ends.
fn forward(r: impl Read + Send + 'static, tag: &'static str, tx: mpsc::Sender<String>) {
    std::thread::spawn(move || {
        for line in BufReader::new(r).lines().map_while(Result::ok) {
            if tx.send(format!("{tag}{line}")).is_err() {
                break;
            }
        }
    });
}

/// Without terminal colour codes (`\x1b[...m`).
fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\x1b' {
            for c in chars.by_ref() {
                if c.is_ascii_alphabetic() {
                    break;
                }
            }
        } else {
            out.push(c);
        }
    }
    out
}

/// The URL of a `listening on http://127.0.0.1:PORT/` line.
fn listening_url(line: &str) -> Option<String> {
    let line = strip_ansi(line);
    let at = line.find("listening on http://")?;
    let url: String = line[at + "listening on ".len()..]
        .chars()
        .take_while(|c| !c.is_whitespace())
        .collect();
    let url = url.trim_end_matches('/');
    (url.len() > "http://".len()).then(|| format!("{url}/"))
}

/// Runs `cmd` to the end or until `limit`, killing it then; returns its
/// status (None when it timed out) and its output, stdout and stderr
/// interleaved as they came.
fn run_with_timeout(
    mut cmd: Command,
    what: &'static str,
    limit: Duration,
) -> (Option<ExitStatus>, String) {
    let mut child = cmd
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    let (tx, rx) = mpsc::channel();
    forward(child.stdout.take().unwrap(), "", tx.clone());
    forward(child.stderr.take().unwrap(), "", tx);
    let mut guard = Killed { child, what };
    // None when it outlived `limit`: the guard kills it.
    let status = guard
        .child
        .wait_timeout(limit)
        .unwrap_or_else(|e| panic!("waiting for {what}: {e}"));
    drop(guard);
    // The pipes close when the process (and whatever it started) is gone.
    let mut output = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(5);
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        match rx.recv_timeout(left) {
            Ok(line) => output.push(line),
            Err(_) => break,
        }
    }
    (status, output.join("\n"))
}

fn require_tools(root: &Path) -> PathBuf {
    let node = Command::new("node").arg("--version").output();
    match node {
        Ok(out) if out.status.success() => {}
        Ok(out) => panic!(
            "`node --version` failed ({}): the browser test needs Node.js (20 or later) on PATH",
            out.status
        ),
        Err(e) => {
            panic!("cannot run `node` ({e}): the browser test needs Node.js (20 or later) on PATH")
        }
    }
    let chromium = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    assert!(
        chromium.is_file(),
        "no Chromium at {}: the browser test needs it (install the `chromium` package, \
         or point $CHROMIUM at a Chromium or Chrome binary)",
        chromium.display()
    );
    let dir = root.join("tests/browser");
    if !dir.join("node_modules/playwright-core").is_dir() {
        eprintln!("tests/browser/node_modules is missing: running npm ci");
        let mut npm = Command::new("npm");
        npm.args(["ci", "--no-audit", "--no-fund"])
            .current_dir(&dir);
        let (status, output) = run_with_timeout(npm, "npm ci", NPM_TIMEOUT);
        assert!(
            status.is_some_and(|s| s.success()),
            "`npm ci` in {} failed ({status:?}); the browser test needs playwright-core:\n{output}",
            dir.display()
        );
    }
    chromium
}

#[test]
fn chat_works_in_a_real_browser() {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let chromium = require_tools(&root);

    let mut server = Command::new(env!("CARGO_BIN_EXE_gyre"))
        .args(["serve", "--listen", "127.0.0.1:0", "--workers", "2"])
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("cannot start gyre serve");
    let (tx, rx) = mpsc::channel();
    forward(server.stdout.take().unwrap(), "", tx.clone());
    forward(server.stderr.take().unwrap(), "", tx);
    let mut server = Killed {
        child: server,
        what: "gyre serve",
    };

    let mut log = Vec::new();
    let deadline = Instant::now() + SERVER_START;
    let url = loop {
        let Some(left) = deadline.checked_duration_since(Instant::now()) else {
            panic!(
                "gyre serve did not say `listening on http://` within {SERVER_START:?}:\n{}",
                log.join("\n")
            );
        };
        match rx.recv_timeout(left) {
            Ok(line) => {
                let url = listening_url(&line);
                log.push(line);
                if let Some(url) = url {
                    break url;
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => continue,
            Err(mpsc::RecvTimeoutError::Disconnected) => panic!(
                "gyre serve exited ({:?}) before listening:\n{}",
                server.child.try_wait(),
                log.join("\n")
            ),
        }
    };
    // Keep reading the server's output (so that it never blocks on a full
    // pipe), to show it if the browser test fails.
    let server_log = std::thread::spawn(move || {
        let mut rest = Vec::new();
        while let Ok(line) = rx.recv() {
            rest.push(line);
        }
        rest
    });

    let mut node = Command::new("node");
    node.arg("tests/browser/chat.mjs")
        .arg(&url)
        .current_dir(&root)
        .env("CHROMIUM", &chromium)
        .stdin(Stdio::null());
    let started = Instant::now();
    let (status, output) = run_with_timeout(node, "node tests/browser/chat.mjs", NODE_TIMEOUT);
    println!(
        "node tests/browser/chat.mjs {url} ({:.1} s):\n{output}",
        started.elapsed().as_secs_f64()
    );

    let server_alive = matches!(server.child.try_wait(), Ok(None));
    drop(server); // kills it, which ends its output
    let server_output = server_log.join().unwrap_or_default();
    let failure = match status {
        None => Some(format!("timed out after {NODE_TIMEOUT:?} and was killed")),
        Some(s) if !s.success() => Some(format!("failed ({s})")),
        Some(_) => None,
    };
    if let Some(why) = failure {
        panic!(
            "the browser test {why}:\n{output}\n\n--- gyre serve ({}) ---\n{}\n{}",
            if server_alive {
                "was running"
            } else {
                "had exited"
            },
            log.join("\n"),
            server_output.join("\n")
        );
    }
    assert!(
        server_alive,
        "gyre serve exited during the browser test:\n{}",
        server_output.join("\n")
    );
}

#[test]
fn listening_lines_give_the_url() {
    assert_eq!(
        listening_url("\x1b[2m2026-11-24T23:27:54Z\x1b[0m \x1b[32m INFO\x1b[0m \x1b[2mgyre::server\x1b[0m\x1b[2m:\x1b[0m listening on http://127.0.0.1:38215/").as_deref(),
        Some("http://127.0.0.1:38215/")
    );
    assert_eq!(
        listening_url("INFO gyre::server: listening on http://127.0.0.1:80").as_deref(),
        Some("http://127.0.0.1:80/")
    );
    assert_eq!(listening_url("INFO starting"), None);
}
