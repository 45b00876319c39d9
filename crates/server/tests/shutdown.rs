//! Graceful shutdown: in-flight requests finish, idle connections close,
//! new connections are refused, and `shutdown()` reports whether every
//! connection closed before the deadline.

mod util;

use std::io::ErrorKind;
use std::net::TcpStream;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use gyre_server::{Config, Request};
use util::{app, config, get, wait_until, Client, TestServer, IO_TIMEOUT};

/// A server whose `GET /inflight` counts its calls, then sleeps 500 ms.
fn server_with_inflight(cfg: Config) -> (TestServer, Arc<AtomicUsize>) {
    let entered = Arc::new(AtomicUsize::new(0));
    let e = entered.clone();
    let server = TestServer::start_with(cfg, move |s| {
        app(s).get("/inflight", move |_req: Request| {
            e.fetch_add(1, Ordering::SeqCst);
            async {
                gyre_rt::time::sleep(Duration::from_millis(500)).await;
                "finished\n"
            }
        })
    });
    (server, entered)
}

/// Calls `shutdown()` on another thread.
fn shutdown_in_background(server: &mut TestServer) -> std::thread::JoinHandle<bool> {
    let running = server.take_running();
    std::thread::spawn(move || running.shutdown())
}

#[test]
fn shutdown_lets_in_flight_request_finish() {
    let (mut server, entered) = server_with_inflight(config());
    let mut c = server.client();
    c.send(&get("/inflight"));
    assert!(wait_until(Duration::from_secs(10), || entered
        .load(Ordering::SeqCst)
        == 1));
    let shutdown = shutdown_in_background(&mut server);
    let resp = c.read_response();
    assert_eq!(resp.status, 200);
    assert_eq!(resp.text(), "finished\n");
    assert!(
        resp.says_close(),
        "a response during shutdown must close: {resp:?}"
    );
    c.expect_closed();
    assert!(
        shutdown.join().unwrap(),
        "shutdown did not complete in time"
    );
}

#[test]
fn shutdown_closes_idle_keep_alive_connection() {
    let mut server = TestServer::start(config());
    let mut idle = server.client();
    assert_eq!(idle.request(&get("/hello")).status, 200);
    assert_eq!(server.metrics().open_connections(), 1);
    let shutdown = shutdown_in_background(&mut server);
    idle.expect_closed();
    assert!(shutdown.join().unwrap());
}

#[test]
fn shutdown_closes_connection_that_sent_nothing() {
    let mut server = TestServer::start(config());
    let mut silent = server.client();
    assert!(wait_until(Duration::from_secs(10), || server
        .metrics()
        .open_connections()
        == 1));
    let shutdown = shutdown_in_background(&mut server);
    silent.expect_closed();
    assert!(shutdown.join().unwrap());
}

#[test]
fn shutdown_with_in_flight_and_idle_connections() {
    let (mut server, entered) = server_with_inflight(config());
    let mut idle: Vec<Client> = (0..5)
        .map(|_| {
            let mut c = server.client();
            assert_eq!(c.request(&get("/hello")).status, 200);
            c
        })
        .collect();
    let mut busy = server.client();
    busy.send(&get("/inflight"));
    assert!(wait_until(Duration::from_secs(10), || entered
        .load(Ordering::SeqCst)
        == 1));
    let shutdown = shutdown_in_background(&mut server);
    for c in &mut idle {
        c.expect_closed();
    }
    let resp = busy.read_response();
    assert_eq!(resp.status, 200);
    busy.expect_closed();
    assert!(shutdown.join().unwrap());
}

#[test]
fn shutdown_refuses_new_connections() {
    let mut server = TestServer::start(config());
    let addr = server.addr;
    assert!(server.take_running().shutdown());
    // The listener closes once every loop has dropped its accept task; any
    // connection that still gets in before that must not be served. One that
    // sat in the backlog when the listener closed is reset, not refused.
    let refused = wait_until(
        Duration::from_secs(10),
        || match TcpStream::connect_timeout(&addr, IO_TIMEOUT) {
            Err(e) => {
                assert!(
                    matches!(
                        e.kind(),
                        ErrorKind::ConnectionRefused | ErrorKind::ConnectionReset
                    ),
                    "{e}"
                );
                true
            }
            Ok(stream) => {
                let mut c = Client::from_stream(stream);
                if c.try_send(&get("/hello")).is_ok() {
                    if let Some(r) = c.try_read_response() {
                        panic!("a connection after shutdown was served: {r:?}");
                    }
                }
                false
            }
        },
    );
    assert!(refused, "connections are still accepted after shutdown");
}

#[test]
fn shutdown_without_connections_returns_true() {
    let mut server = TestServer::start(config());
    assert_eq!(server.request(&get("/hello")).status, 200);
    // The request's connection is closed by the client first.
    assert!(wait_until(Duration::from_secs(10), || server
        .metrics()
        .open_connections()
        == 0));
    assert!(server.take_running().shutdown());
}

#[test]
fn shutdown_reports_connection_past_deadline() {
    // A connection in the middle of a request head is not idle: shutdown
    // waits for it, gives up at the deadline and says so.
    let mut cfg = config();
    cfg.shutdown_timeout = Duration::from_secs(1);
    cfg.header_timeout = Duration::from_secs(30);
    let mut server = TestServer::start(cfg);
    let mut partial = server.client();
    partial.send(b"GET /hello HTTP/1.1\r\nHo");
    assert!(wait_until(Duration::from_secs(10), || server
        .metrics()
        .open_connections()
        == 1));
    assert!(
        !server.take_running().shutdown(),
        "shutdown claimed every connection closed"
    );
    drop(partial);
}
