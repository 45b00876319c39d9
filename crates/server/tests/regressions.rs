//! Regression tests for server bugs found while writing the integration
//! tests (all fixed): each states the correct behaviour, and the comment
//! above it says what went wrong before.

mod util;

use std::io::{Read, Write};
use std::time::Duration;

use bytes::Bytes;
use gyre_server::{Reason, Request, Response};
use util::{app, config, find, get, preview, wait_until, Client, TestServer, IO_TIMEOUT};

/// Was: a stalled write of a full (non-streamed) body larger than 16 KiB is
/// cut off, but not counted as `Reason::WriteTimeout`.
///
/// `Conn::send` writes such bodies with `ConnIo::write_bounded` directly
/// instead of through `Conn::flush`, the only place that counts the reason.
/// Streamed bodies and buffered responses are counted (see `timeouts.rs`).
#[test]
fn regression_full_body_write_timeout_not_counted() {
    use socket2::{Domain, Protocol, Socket, Type};
    let mut cfg = config();
    cfg.write_timeout = Duration::from_secs(1);
    cfg.min_rate_grace = Duration::from_secs(1);
    let server = TestServer::start(cfg);
    let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket
        .connect_timeout(&server.addr.into(), IO_TIMEOUT)
        .unwrap();
    let mut c = Client::from_stream(socket.into());
    // A 64 MiB full body, never read.
    c.send(&get("/big-full"));
    assert!(wait_until(Duration::from_secs(10), || server
        .metrics()
        .open_connections()
        == 1));
    assert!(
        wait_until(Duration::from_secs(30), || server
            .metrics()
            .open_connections()
            == 0),
        "the server did not cut the stalled write off"
    );
    assert_eq!(
        server.metrics().reason(Reason::WriteTimeout),
        1,
        "a stalled write of a full body was not counted as write_timeout"
    );
}

/// Was: a handler that panics leaks its connection's slot for good.
///
/// The runtime catches the panic and drops the connection task, but
/// `conn::serve` decrements `ServerShared::open` and the per-loop gauge
/// only after `Conn::run` returns, which it never does. With
/// `max_connections = 2`, two panicking requests leave the server refusing
/// every connection with 503 while none is open; `gyre_open_connections`
/// stays at 2, and `Running::shutdown` waits out its deadline and returns
/// false.
#[test]
fn regression_handler_panic_leaks_connection_slot() {
    let mut cfg = config();
    cfg.max_connections = 2;
    cfg.shutdown_timeout = Duration::from_secs(2);
    let mut server = TestServer::start_with(cfg, |s| {
        app(s).get("/panic", |_req: Request| async {
            if true {
                panic!("handler panic (expected by the test)");
            }
            "unreachable"
        })
    });
    for _ in 0..2 {
        let mut c = server.client();
        c.send(&get("/panic"));
        // The connection is dropped without a response.
        assert!(c.try_read_response().is_none());
    }
    // Give the server every chance to notice the closed connections.
    let freed = wait_until(Duration::from_secs(5), || {
        server.metrics().open_connections() == 0
    });
    let resp = server.request(&get("/hello"));
    assert_eq!(
        resp.status,
        200,
        "GET /hello after two panicking requests: {} {} (open connections: {}, freed: {freed})",
        resp.status,
        resp.reason,
        server.metrics().open_connections()
    );
    assert!(
        server.take_running().shutdown(),
        "shutdown waited for connections that no longer exist"
    );
}

/// Was: with `Expect: 100-continue`, a streamed response that echoes the
/// request body from a task (which `Conn::answer` explicitly supports) gets
/// `HTTP/1.1 100 Continue` written after the final `200` head, inside the
/// chunked body.
///
/// The 100 is queued by the body's first read (`BodyState::next`), which
/// runs in the handler's task only after the connection has flushed the
/// 200 head. A 1xx must not follow the final response (RFC 9110 §15.2); a
/// client decoding the chunked body fails on the chunk-size line
/// `HTTP/1.1 100 Continue`. curl sends `Expect: 100-continue` for any body
/// over 1 KiB.
#[test]
fn regression_expect_continue_written_inside_streamed_response() {
    let server = TestServer::start_with(config(), |s| {
        s.post("/echo", |mut req: Request| async move {
            let (resp, tx) = Response::stream("text/plain", 4);
            gyre_rt::spawn(async move {
                while let Ok(Some(chunk)) = req.body.chunk().await {
                    if tx.send(chunk).await.is_err() {
                        return;
                    }
                }
            })
            .detach();
            resp
        })
    });
    let mut c = server.client();
    c.send(b"POST /echo HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
    // Like curl, wait a moment for the 100, then send the body anyway.
    std::thread::sleep(Duration::from_millis(300));
    c.send(b"hello");
    // Read the raw bytes up to the end of the chunked body.
    let mut raw = Vec::new();
    let mut buf = [0u8; 4096];
    while !raw.ends_with(b"0\r\n\r\n") {
        match c.stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) => panic!("no complete response ({e}): {}", preview(&raw)),
        }
    }
    let final_at = find(&raw, b"HTTP/1.1 200").expect("no 200 response");
    if let Some(interim_at) = find(&raw, b"HTTP/1.1 100 Continue") {
        assert!(
            interim_at < final_at,
            "100 Continue written after the 200 head: {}",
            preview(&raw)
        );
    }
    assert!(
        find(&raw, b"5\r\nhello\r\n0\r\n\r\n").is_some(),
        "{}",
        preview(&raw)
    );
}

/// Was: `Config::max_head` above 16 KiB is not honoured.
///
/// A connection's read buffer is a fixed 16 KiB (`io.rs`, `READ_BUF`), and a
/// head that fills it gets 431 (`ReadError::Full`) whatever the limit says.
/// Nothing rejects or clamps the larger setting (unlike `max_headers`,
/// documented as at most 100). Here `max_head = 65536` and a 20,521-byte
/// head gets 431.
#[test]
fn regression_max_head_above_16_kib_not_honoured() {
    let mut cfg = config();
    cfg.max_head = 64 * 1024;
    let server = TestServer::start(cfg);
    let req = format!(
        "GET /hello HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n",
        "b".repeat(20 * 1024)
    );
    assert!(req.len() < 64 * 1024);
    let resp = server.request(req.as_bytes());
    assert_eq!(
        resp.status,
        200,
        "a {}-byte head under max_head = 65536 got {} {}",
        req.len(),
        resp.status,
        resp.reason
    );
}

/// Was: no lingering close. When the server closes a connection whose
/// request body it did not read (the handler ignored it, or it was refused
/// with 413), it closes the socket at once with bytes still unread in the
/// kernel. The kernel then sends RST, which throws away the part of the
/// response still in the server's send buffer: the client gets a
/// truncated response and `ECONNRESET`.
///
/// RFC 9112 §9.6 describes the fix: half-close (shutdown the write side),
/// keep reading and discarding for a bounded time, then close (nginx's
/// `lingering_close`). Here the handler answers an 8 MiB body without
/// reading a 1 MiB upload, and the client reads about 5 MiB before the reset.
#[test]
fn regression_close_with_unread_body_resets_and_truncates_response() {
    const RESPONSE: usize = 8 * 1024 * 1024;
    let server = TestServer::start_with(config(), |s| {
        s.post("/big-ignore", |_req: Request| async {
            Bytes::from(vec![b'z'; RESPONSE])
        })
    });
    let mut c = server.client();
    c.send(b"POST /big-ignore HTTP/1.1\r\nHost: t\r\nContent-Length: 1048576\r\n\r\n");
    let mut upload = c.stream.try_clone().unwrap();
    let writer = std::thread::spawn(move || {
        // Fails once the server resets the connection: expected.
        let _ = upload.write_all(&vec![b'u'; 1024 * 1024]);
    });
    // Read the head, then the body by hand to report how much arrived.
    let mut raw = Vec::new();
    let mut buf = vec![0u8; 256 * 1024];
    let mut outcome = "EOF".to_owned();
    loop {
        match c.stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => raw.extend_from_slice(&buf[..n]),
            Err(e) => {
                outcome = e.to_string();
                break;
            }
        }
    }
    writer.join().unwrap();
    let head_end = find(&raw, b"\r\n\r\n").expect("no response head") + 4;
    assert!(raw.starts_with(b"HTTP/1.1 200"), "{}", preview(&raw));
    let body = raw.len() - head_end;
    assert_eq!(
        body, RESPONSE,
        "response body truncated to {body} of {RESPONSE} bytes (read ended with: {outcome})"
    );
}
