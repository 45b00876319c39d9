//! gyre's WebSocket server against a client it did not write: Python's
//! `websockets` library (its legacy asyncio client, 10.x or later). Each test
//! starts a server on a port of its own and runs one script of `tests/py/`,
//! which prints what it observes and exits non-zero on any mismatch.
//!
//! The interpreter is `$GYRE_PYTHON` if set, else `/usr/bin/python3` if it
//! has `websockets`, else `python3`. Without `websockets` the tests fail (they
//! never skip): `scripts/test.sh` installs `python3-websockets`.

mod util;

use std::io::Read;
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use bytes::Bytes;
use gyre_server::ws::{self, CloseFrame, Message, WebSocket, WsConfig};
use gyre_server::{Request, Server};
use util::{config, wait_until, TestServer};
use wait_timeout::ChildExt;

/// A script still running after this is killed (the scripts give up by
/// themselves after 30 s).
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(60);

/// How long the server side gets to notice what a script did.
const DEADLINE: Duration = Duration::from_secs(20);

const KIB: usize = 1024;

// ---------------------------------------------------------------------------
// Python

/// Imports what the scripts use; prints the library's version.
const PROBE: &str = "import websockets, websockets.legacy.client, \
    websockets.legacy.protocol as p; \
    assert hasattr(p.WebSocketCommonProtocol, 'write_frame'), 'no write_frame'; \
    print(websockets.__version__)";

/// The interpreter to run the scripts with; panics (failing the test) if no
/// candidate has `websockets`.
fn python() -> &'static str {
    static PYTHON: OnceLock<Result<String, String>> = OnceLock::new();
    match PYTHON.get_or_init(find_python) {
        Ok(p) => p,
        Err(e) => panic!("{e}"),
    }
}

fn find_python() -> Result<String, String> {
    if let Ok(p) = std::env::var("GYRE_PYTHON") {
        return probe(&p)
            .map(|_| p.clone())
            .map_err(|e| format!("GYRE_PYTHON={p} cannot run the WebSocket client scripts: {e}"));
    }
    let mut tried = Vec::new();
    for p in ["/usr/bin/python3", "python3"] {
        match probe(p) {
            Ok(_) => return Ok(p.to_owned()),
            Err(e) => tried.push(format!("  {p}: {e}")),
        }
    }
    Err(format!(
        "no Python interpreter with the `websockets` library (10.x or later) was found, \
         so gyre's WebSocket server cannot be tested against it. Install it \
         (`apt-get install python3-websockets`, as scripts/test.sh does) or point \
         GYRE_PYTHON at an interpreter that has it. Tried:\n{}",
        tried.join("\n")
    ))
}

/// Whether `python` can import what the scripts need: its `websockets`
/// version, or why not.
fn probe(python: &str) -> Result<String, String> {
    let mut cmd = Command::new(python);
    cmd.args(["-c", PROBE]);
    let out = Run::start(cmd, "the websockets probe")
        .map_err(|e| format!("cannot run it: {e}"))?
        .wait();
    if out.ok() {
        Ok(out.stdout.trim().to_owned())
    } else {
        Err(format!("{} {}", out.describe_status(), out.stderr.trim()))
    }
}

/// The path of a client script.
fn script(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests/py")
        .join(name)
}

/// A child process whose output is collected by two threads, killed (by its
/// PID) if it outlives [`SCRIPT_TIMEOUT`] or the test.
struct Run {
    what: String,
    child: Option<Child>,
    stdout: Option<JoinHandle<String>>,
    stderr: Option<JoinHandle<String>>,
}

/// How a [`Run`] ended.
struct Finished {
    what: String,
    status: ExitStatus,
    timed_out: bool,
    stdout: String,
    stderr: String,
}

fn collect(mut pipe: impl Read + Send + 'static) -> JoinHandle<String> {
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        String::from_utf8_lossy(&bytes).into_owned()
    })
}

impl Run {
    fn start(mut cmd: Command, what: &str) -> std::io::Result<Run> {
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let stdout = child.stdout.take().map(collect);
        let stderr = child.stderr.take().map(collect);
        Ok(Run {
            what: what.to_owned(),
            child: Some(child),
            stdout,
            stderr,
        })
    }

    /// Starts client script `name` with `args`.
    fn script(name: &str, args: &[String]) -> Run {
        let mut cmd = Command::new(python());
        cmd.arg(script(name))
            .args(args)
            .env("PYTHONDONTWRITEBYTECODE", "1")
            .env("PYTHONUNBUFFERED", "1")
            .env("PYTHONIOENCODING", "utf-8");
        let what = format!("{name} {}", args.join(" "));
        Run::start(cmd, &what).unwrap_or_else(|e| panic!("cannot start `{} {what}`: {e}", python()))
    }

    /// Kills the process (by its PID), if it still runs.
    fn kill(&mut self) {
        if let Some(child) = self.child.as_mut() {
            if matches!(child.try_wait(), Ok(None)) {
                let _ = child.kill();
            }
        }
    }

    /// Waits for the process to exit, killing it after [`SCRIPT_TIMEOUT`].
    fn wait(mut self) -> Finished {
        let mut child = self.child.take().expect("waited twice");
        let waited = child.wait_timeout(SCRIPT_TIMEOUT);
        let waited = waited.unwrap_or_else(|e| panic!("cannot wait for {}: {e}", self.what));
        let timed_out = waited.is_none();
        let status = waited.unwrap_or_else(|| {
            let _ = child.kill();
            child.wait().expect("cannot wait for a killed child")
        });
        let join = |h: Option<JoinHandle<String>>| {
            h.map(|h| h.join().unwrap_or_default()).unwrap_or_default()
        };
        Finished {
            what: std::mem::take(&mut self.what),
            status,
            timed_out,
            stdout: join(self.stdout.take()),
            stderr: join(self.stderr.take()),
        }
    }
}

impl Drop for Run {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            if matches!(child.try_wait(), Ok(None)) {
                let _ = child.kill();
            }
            let _ = child.wait();
        }
    }
}

impl Finished {
    fn ok(&self) -> bool {
        self.status.success() && !self.timed_out
    }

    fn describe_status(&self) -> String {
        if self.timed_out {
            format!("killed after {SCRIPT_TIMEOUT:?}")
        } else {
            format!("exited with {}", self.status)
        }
    }

    /// Everything about the run, for messages.
    fn report(&self) -> String {
        format!(
            "`{}` {}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.what,
            self.describe_status(),
            self.stdout.trim_end(),
            self.stderr.trim_end()
        )
    }

    fn assert_success(&self) {
        assert!(self.ok(), "the Python client failed: {}", self.report());
        println!("{}", self.report());
    }
}

/// Runs client script `name` with `args` and asserts it succeeds.
fn run_ok(name: &str, args: &[String]) -> Finished {
    let done = Run::script(name, args).wait();
    done.assert_success();
    done
}

// ---------------------------------------------------------------------------
// Server side

/// What the handlers of a route saw, shared with the test thread.
#[derive(Clone, Default)]
struct Probe {
    /// Handlers started (one per upgraded connection).
    opened: Arc<AtomicUsize>,
    /// Messages echoed.
    echoed: Arc<AtomicUsize>,
    /// Times `recv` returned `None`.
    ended: Arc<AtomicUsize>,
    /// Failed sends.
    send_failed: Arc<AtomicUsize>,
    /// Every message that was not text or binary, in order.
    controls: Arc<Mutex<Vec<Message>>>,
}

impl Probe {
    fn count(counter: &AtomicUsize) -> usize {
        counter.load(Ordering::SeqCst)
    }

    fn controls(&self) -> Vec<Message> {
        self.controls.lock().unwrap().clone()
    }

    fn closes(&self) -> Vec<Option<CloseFrame>> {
        self.controls()
            .into_iter()
            .filter_map(|m| match m {
                Message::Close(f) => Some(f),
                _ => None,
            })
            .collect()
    }

    fn summary(&self) -> String {
        format!(
            "opened {}, echoed {}, recv ended {}, sends failed {}, control messages {:?}",
            Self::count(&self.opened),
            Self::count(&self.echoed),
            Self::count(&self.ended),
            Self::count(&self.send_failed),
            self.controls()
        )
    }

    /// Waits until `ended` reaches `n`.
    fn wait_ended(&self, n: usize) {
        assert!(
            wait_until(DEADLINE, || Self::count(&self.ended) >= n),
            "the handler's recv did not return None {n} time(s) within {DEADLINE:?}: {}",
            self.summary()
        );
    }
}

/// Echoes text and binary messages until `recv` returns `None`, recording
/// everything in `probe`.
async fn echo(mut socket: WebSocket, probe: Probe) {
    probe.opened.fetch_add(1, Ordering::SeqCst);
    loop {
        match socket.recv().await {
            None => {
                probe.ended.fetch_add(1, Ordering::SeqCst);
                return;
            }
            Some(m @ (Message::Text(_) | Message::Binary(_))) => {
                if socket.send(m).await.is_err() {
                    probe.send_failed.fetch_add(1, Ordering::SeqCst);
                    return;
                }
                probe.echoed.fetch_add(1, Ordering::SeqCst);
            }
            Some(other) => probe.controls.lock().unwrap().push(other),
        }
    }
}

/// Adds an echo WebSocket route at `path`.
fn echo_route(server: Server, path: &str, cfg: WsConfig, probe: &Probe) -> Server {
    let probe = probe.clone();
    server.get(path, move |req: Request| {
        let probe = probe.clone();
        let cfg = cfg.clone();
        async move { ws::upgrade(&req, cfg, move |socket| echo(socket, probe)) }
    })
}

/// A server with one echo route, `/echo`, configured by `cfg`.
fn echo_server(cfg: WsConfig) -> (TestServer, Probe) {
    let probe = Probe::default();
    let server = TestServer::start_with(config(), |s| echo_route(s, "/echo", cfg, &probe));
    (server, probe)
}

fn url(server: &TestServer, path: &str) -> String {
    format!("ws://{}{}", server.addr, path)
}

/// Waits until the server has no connection open.
fn assert_connections_close(server: &TestServer) {
    assert!(
        wait_until(DEADLINE, || server.metrics().open_connections() == 0),
        "{} connection(s) still open after {DEADLINE:?}",
        server.metrics().open_connections()
    );
}

// ---------------------------------------------------------------------------
// Tests

#[test]
fn echo_round_trips_every_kind_of_message() {
    let (server, probe) = echo_server(WsConfig::default());
    run_ok("echo.py", &[url(&server, "/echo")]);
    probe.wait_ended(1);
    let controls = probe.controls();
    for payload in [&b"are you there"[..], b"mid-message"] {
        assert!(
            controls.contains(&Message::Ping(Bytes::copy_from_slice(payload))),
            "the handler did not see the ping {:?}: {}",
            String::from_utf8_lossy(payload),
            probe.summary()
        );
    }
    assert_eq!(
        probe.closes(),
        vec![Some(CloseFrame {
            code: 1000,
            reason: String::new()
        })],
        "{}",
        probe.summary()
    );
    assert_eq!(Probe::count(&probe.send_failed), 0, "{}", probe.summary());
    assert_connections_close(&server);
}

#[test]
fn invalid_utf8_closes_with_1007_and_split_characters_are_fine() {
    let (server, probe) = echo_server(WsConfig::default());
    run_ok("utf8.py", &[url(&server, "/echo")]);
    // One connection that worked, then one per invalid case.
    probe.wait_ended(9);
    assert_connections_close(&server);
}

#[test]
fn oversize_messages_and_frames_close_with_1009() {
    let probe = Probe::default();
    let small = WsConfig {
        max_message: 64 * KIB,
        ..WsConfig::default()
    };
    let frames = WsConfig {
        max_frame: 16 * KIB,
        max_message: 1024 * KIB,
        ..WsConfig::default()
    };
    let server = TestServer::start_with(config(), |s| {
        let s = echo_route(s, "/small", small, &probe);
        echo_route(s, "/frames", frames, &probe)
    });
    run_ok(
        "oversize.py",
        &[url(&server, "/small"), url(&server, "/frames")],
    );
    probe.wait_ended(7);
    assert_connections_close(&server);
}

#[test]
fn client_that_vanishes_ends_recv() {
    let (server, probe) = echo_server(WsConfig::default());
    run_ok("vanish.py", &[url(&server, "/echo")]);
    probe.wait_ended(1);
    assert!(
        probe.closes().is_empty(),
        "no close frame was sent, yet the handler saw one: {}",
        probe.summary()
    );
    assert_connections_close(&server);
}

#[test]
fn client_killed_mid_connection_ends_recv() {
    let (server, probe) = echo_server(WsConfig::default());
    let mut client = Run::script("hold.py", &[url(&server, "/echo")]);
    if !wait_until(DEADLINE, || Probe::count(&probe.echoed) >= 1) {
        client.kill();
        panic!(
            "the client's first message was not echoed: {}\n{}",
            probe.summary(),
            client.wait().report()
        );
    }
    client.kill();
    let done = client.wait();
    assert!(
        wait_until(DEADLINE, || Probe::count(&probe.ended) >= 1),
        "the handler's recv did not return None after the client was killed: {}\n{}",
        probe.summary(),
        done.report()
    );
    assert!(probe.closes().is_empty(), "{}", probe.summary());
    assert_connections_close(&server);
}

#[test]
fn close_handshake_started_by_the_client() {
    let (server, probe) = echo_server(WsConfig::default());
    run_ok("client_close.py", &[url(&server, "/echo")]);
    probe.wait_ended(1);
    assert_eq!(
        probe.closes(),
        vec![Some(CloseFrame {
            code: 4000,
            reason: "bye".to_owned()
        })],
        "{}",
        probe.summary()
    );
    assert_connections_close(&server);
}

#[test]
fn close_handshake_started_by_the_server() {
    let sent: Arc<Mutex<Vec<Result<(), ws::SendError>>>> = Arc::default();
    let closed = Arc::new(AtomicUsize::new(0));
    let (s, c) = (sent.clone(), closed.clone());
    let server = TestServer::start_with(config(), move |server| {
        server.get("/bye", move |req: Request| {
            let (sent, closed) = (s.clone(), c.clone());
            async move {
                ws::upgrade(&req, WsConfig::default(), move |socket| async move {
                    let r = socket.send("hi").await;
                    sent.lock().unwrap().push(r);
                    socket.close(4001, "done").await;
                    closed.fetch_add(1, Ordering::SeqCst);
                })
            }
        })
    });
    run_ok("server_close.py", &[url(&server, "/bye")]);
    assert!(
        wait_until(DEADLINE, || closed.load(Ordering::SeqCst) == 1),
        "the handler's close did not return"
    );
    assert_eq!(*sent.lock().unwrap(), vec![Ok(())]);
    assert_connections_close(&server);
}

#[test]
fn graceful_shutdown_closes_with_1001() {
    let (mut server, probe) = echo_server(WsConfig::default());
    let client = Run::script("shutdown.py", &[url(&server, "/echo")]);
    if !wait_until(DEADLINE, || Probe::count(&probe.echoed) >= 1) {
        panic!(
            "the client's first message was not echoed: {}\n{}",
            probe.summary(),
            client.wait().report()
        );
    }
    let running = server.take_running();
    let shutdown = std::thread::spawn(move || running.shutdown());
    let done = client.wait();
    done.assert_success();
    assert!(
        shutdown.join().expect("shutdown panicked"),
        "shutdown did not finish in time: {}",
        probe.summary()
    );
    probe.wait_ended(1);
    assert!(probe.closes().is_empty(), "{}", probe.summary());
}

#[test]
fn protocol_errors_close_with_1002() {
    let (server, probe) = echo_server(WsConfig::default());
    run_ok("protocol.py", &[url(&server, "/echo")]);
    probe.wait_ended(13);
    assert_connections_close(&server);
}

#[test]
fn server_pings_keep_a_quiet_client_alive() {
    let idle = Duration::from_secs(5);
    let (server, probe) = echo_server(WsConfig {
        ping_interval: Some(Duration::from_millis(200)),
        idle_timeout: Some(idle),
        ..WsConfig::default()
    });
    run_ok(
        "keepalive.py",
        &[url(&server, "/echo"), idle.as_secs().to_string()],
    );
    probe.wait_ended(1);
    assert!(
        probe
            .controls()
            .iter()
            .any(|m| matches!(m, Message::Pong(_))),
        "the client answered no ping: {}",
        probe.summary()
    );
    assert_eq!(Probe::count(&probe.echoed), 2, "{}", probe.summary());
}

#[test]
fn subprotocol_is_negotiated() {
    let (server, probe) = echo_server(WsConfig {
        protocols: vec!["gyre.v2".to_owned(), "gyre.v1".to_owned()],
        ..WsConfig::default()
    });
    run_ok("subprotocol.py", &[url(&server, "/echo")]);
    probe.wait_ended(3);
}
