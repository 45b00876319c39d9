//! Timeouts on everything a client controls: the head (408), an idle
//! keep-alive connection (close), the body (408, stalled or too slow), and
//! a client that does not read the response (close). Timeouts are short and
//! the waits generous: only outcomes are asserted, never how fast.

mod util;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use gyre_server::{Config, Reason};
use util::{config, get, wait_until, Client, End, TestServer, BIG};

fn short_timeouts() -> Config {
    let mut c = config();
    c.header_timeout = Duration::from_secs(1);
    c.keep_alive_timeout = Duration::from_secs(1);
    c.body_timeout = Duration::from_secs(1);
    c.min_rate_grace = Duration::from_secs(1);
    c.write_timeout = Duration::from_secs(1);
    c
}

#[test]
fn timeouts_partial_head_gets_408_and_close() {
    let server = TestServer::start(short_timeouts());
    let mut c = server.client();
    c.send(b"GET /hello HTTP/1.1\r\nHo");
    let resp = c.read_response();
    assert_eq!(resp.status, 408, "{resp:?}");
    assert!(resp.says_close());
    c.expect_closed();
    assert_eq!(server.metrics().reason(Reason::HeaderTimeout), 1);
    assert_eq!(server.metrics().responses(408), 1);
}

#[test]
fn timeouts_silent_new_connection_gets_408_and_close() {
    let server = TestServer::start(short_timeouts());
    let mut c = server.client();
    let resp = c.read_response();
    assert_eq!(resp.status, 408, "{resp:?}");
    c.expect_closed();
    assert_eq!(server.metrics().reason(Reason::HeaderTimeout), 1);
}

#[test]
fn timeouts_partial_second_head_gets_408() {
    // The head timeout also bounds a head on a reused connection.
    let server = TestServer::start(short_timeouts());
    let mut c = server.client();
    assert_eq!(c.request(&get("/hello")).status, 200);
    c.send(b"GET /hello HTTP/1.1\r\n");
    let resp = c.read_response();
    assert_eq!(resp.status, 408, "{resp:?}");
    c.expect_closed();
}

#[test]
fn timeouts_idle_keep_alive_connection_closed() {
    let server = TestServer::start(short_timeouts());
    let mut c = server.client();
    let resp = c.request(&get("/hello"));
    assert_eq!(resp.status, 200);
    assert!(!resp.says_close());
    // Nothing more is sent: the server closes without a response.
    c.expect_closed();
    assert!(wait_until(Duration::from_secs(10), || server
        .metrics()
        .reason(Reason::IdleTimeout)
        == 1));
    assert_eq!(server.metrics().reason(Reason::HeaderTimeout), 0);
    assert!(wait_until(Duration::from_secs(10), || server
        .metrics()
        .open_connections()
        == 0));
}

#[test]
fn timeouts_stalled_body_gets_408() {
    let server = TestServer::start(short_timeouts());
    let mut c = server.client();
    c.send(b"POST /collect HTTP/1.1\r\nHost: t\r\nContent-Length: 100\r\n\r\n0123456789");
    let resp = c.read_response();
    assert_eq!(resp.status, 408, "{resp:?}");
    assert!(resp.says_close());
    c.expect_closed();
    assert_eq!(server.metrics().reason(Reason::BodyTimeout), 1);
}

#[test]
fn timeouts_stalled_chunked_body_gets_408() {
    let server = TestServer::start(short_timeouts());
    let mut c = server.client();
    c.send(b"POST /collect HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel");
    let resp = c.read_response();
    assert_eq!(resp.status, 408, "{resp:?}");
    c.expect_closed();
    assert_eq!(server.metrics().reason(Reason::BodyTimeout), 1);
}

#[test]
fn timeouts_body_below_minimum_rate_gets_408() {
    // Bytes keep coming (one every 100 ms, well within the 30 s idle
    // timeout), but at ~10 B/s, far below the 240 B/s minimum.
    let mut cfg = short_timeouts();
    cfg.body_timeout = Duration::from_secs(30);
    cfg.min_body_rate = 240;
    let server = TestServer::start(cfg);
    let mut c = server.client();
    c.send(b"POST /collect HTTP/1.1\r\nHost: t\r\nContent-Length: 1000\r\n\r\n");
    let mut writer = c.stream.try_clone().unwrap();
    let stop = Arc::new(AtomicBool::new(false));
    let trickle = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            use std::io::Write;
            // At most 20 s of trickling.
            for _ in 0..200 {
                if stop.load(Ordering::Relaxed) || writer.write_all(b"x").is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };
    let resp = c.read_response();
    stop.store(true, Ordering::Relaxed);
    trickle.join().unwrap();
    assert_eq!(resp.status, 408, "{resp:?}");
    assert_eq!(server.metrics().reason(Reason::BodyTimeout), 1);
}

/// A client with a small receive buffer, so that a response that is not
/// read fills the socket buffers sooner.
fn small_window_client(server: &TestServer) -> Client {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket
        .connect_timeout(&server.addr.into(), util::IO_TIMEOUT)
        .unwrap();
    Client::from_stream(socket.into())
}

/// Waits until the server has accepted the connection, then until it has
/// closed it again.
fn wait_for_server_close(server: &TestServer) {
    assert!(
        wait_until(Duration::from_secs(10), || server
            .metrics()
            .open_connections()
            == 1),
        "the server did not take the connection"
    );
    assert!(
        wait_until(Duration::from_secs(30), || server
            .metrics()
            .open_connections()
            == 0),
        "the server did not close a connection whose client never reads"
    );
}

/// Sends `GET path` and never reads: the server must give up on the write
/// and close. Then reads what is left, to check the body was cut short.
fn unread_response_is_cut_off(server: &TestServer, path: &str) {
    let mut c = small_window_client(server);
    c.send(&get(path));
    wait_for_server_close(server);
    // The server closed: reading now ends with EOF (or a reset) well
    // before the whole body.
    let (read, end) = c.drain_to_end(BIG);
    assert!(read < BIG, "got the whole body: {read} bytes ({end:?})");
    assert!(matches!(end, End::Eof | End::Reset));
}

#[test]
fn timeouts_unread_streaming_response_cut_off() {
    let server = TestServer::start(short_timeouts());
    unread_response_is_cut_off(&server, "/big-stream");
    assert_eq!(server.metrics().reason(Reason::WriteTimeout), 1);
}

#[test]
fn timeouts_unread_full_response_cut_off() {
    let server = TestServer::start(short_timeouts());
    unread_response_is_cut_off(&server, "/big-full");
}

#[test]
fn timeouts_pipelined_responses_unread_cut_off() {
    // Many pipelined requests whose responses the client never reads.
    let server = TestServer::start(short_timeouts());
    let mut c = small_window_client(&server);
    // 1000 responses of 16 KiB: far more than the socket buffers hold.
    let all: Vec<u8> = (0..1000).flat_map(|_| get("/kib/16")).collect();
    c.send(&all);
    wait_for_server_close(&server);
    let (read, _) = c.drain_to_end(1000 * 17 * 1024);
    assert!(read < 1000 * 16 * 1024, "got every response: {read} bytes");
    assert_eq!(server.metrics().reason(Reason::WriteTimeout), 1);
}
