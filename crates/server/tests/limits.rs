//! Limits on what a client controls: request line (414), header count and
//! head size (431), body size (413), open connections (503).

mod util;

use std::time::Duration;

use gyre_server::{Config, Reason};
use util::{assert_refused, config, get, wait_until, Client, TestServer};

fn small_limits() -> Config {
    let mut c = config();
    c.max_request_line = 256;
    c.max_headers = 10;
    c.max_head = 1024;
    c.max_body = 1024;
    c
}

#[test]
fn limits_long_request_line_gets_414() {
    let server = TestServer::start(small_limits());
    let path = format!("/users/{}", "a".repeat(300));
    assert_refused(&server, &get(&path), 414);
    assert_eq!(server.metrics().reason(Reason::UriTooLong), 1);
}

#[test]
fn limits_long_request_line_refused_before_it_ends() {
    // No CRLF yet: the line is already too long, so the server need not wait.
    let server = TestServer::start(small_limits());
    let partial = format!("GET /users/{}", "a".repeat(300));
    assert_refused(&server, partial.as_bytes(), 414);
}

#[test]
fn limits_request_line_at_limit_is_served() {
    let server = TestServer::start(small_limits());
    // "GET " + path + " HTTP/1.1" is exactly 256 bytes.
    let path = format!("/users/{}", "a".repeat(256 - 13 - 7));
    let line = format!("GET {path} HTTP/1.1");
    assert_eq!(line.len(), 256);
    let resp = server.request(&get(&path));
    assert_eq!(resp.status, 200);
}

#[test]
fn limits_too_many_headers_get_431() {
    let server = TestServer::start(small_limits());
    let mut req = String::from("GET /hello HTTP/1.1\r\nHost: t\r\n");
    for i in 0..10 {
        req.push_str(&format!("X-{i}: v\r\n"));
    }
    req.push_str("\r\n");
    assert_refused(&server, req.as_bytes(), 431);
    assert_eq!(server.metrics().reason(Reason::HeadTooLarge), 1);
}

#[test]
fn limits_headers_at_limit_are_served() {
    let server = TestServer::start(small_limits());
    let mut req = String::from("GET /hello HTTP/1.1\r\nHost: t\r\n");
    for i in 0..9 {
        req.push_str(&format!("X-{i}: v\r\n"));
    }
    req.push_str("\r\n");
    assert_eq!(server.request(req.as_bytes()).status, 200);
}

#[test]
fn limits_large_head_gets_431() {
    let server = TestServer::start(small_limits());
    let req = format!(
        "GET /hello HTTP/1.1\r\nHost: t\r\nX-Big: {}\r\n\r\n",
        "b".repeat(2000)
    );
    assert_refused(&server, req.as_bytes(), 431);
    assert_eq!(server.metrics().reason(Reason::HeadTooLarge), 1);
}

#[test]
fn limits_large_head_refused_before_it_ends() {
    let server = TestServer::start(small_limits());
    let partial = format!(
        "GET /hello HTTP/1.1\r\nHost: t\r\nX-Big: {}",
        "b".repeat(2000)
    );
    assert_refused(&server, partial.as_bytes(), 431);
}

#[test]
fn limits_head_at_limit_is_served() {
    let server = TestServer::start(small_limits());
    let prefix = "GET /hello HTTP/1.1\r\nHost: t\r\nX-Big: ";
    let fill = 1024 - prefix.len() - 4;
    let req = format!("{prefix}{}\r\n\r\n", "b".repeat(fill));
    assert_eq!(req.len(), 1024);
    assert_eq!(server.request(req.as_bytes()).status, 200);
}

#[test]
fn limits_body_over_max_with_content_length_gets_413() {
    let server = TestServer::start(small_limits());
    let req = format!(
        "POST /collect HTTP/1.1\r\nHost: t\r\nContent-Length: 2048\r\n\r\n{}",
        "x".repeat(2048)
    );
    assert_refused(&server, req.as_bytes(), 413);
    assert_eq!(server.metrics().reason(Reason::BodyTooLarge), 1);
}

#[test]
fn limits_body_at_max_is_collected() {
    let server = TestServer::start(small_limits());
    let body = "x".repeat(1024);
    let req = format!("POST /collect HTTP/1.1\r\nHost: t\r\nContent-Length: 1024\r\n\r\n{body}");
    let resp = server.request(req.as_bytes());
    assert_eq!(resp.status, 200);
    assert_eq!(resp.text(), body);
}

#[test]
fn limits_chunked_body_over_max_gets_413() {
    let server = TestServer::start(small_limits());
    let mut req =
        String::from("POST /collect HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n");
    for _ in 0..3 {
        req.push_str(&format!("200\r\n{}\r\n", "y".repeat(512)));
    }
    req.push_str("0\r\n\r\n");
    assert_refused(&server, req.as_bytes(), 413);
    assert_eq!(server.metrics().reason(Reason::BodyTooLarge), 1);
}

#[test]
fn limits_expect_continue_over_max_gets_413_without_100() {
    let server = TestServer::start(small_limits());
    let mut c = server.client();
    c.send(b"POST /collect HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 4096\r\n\r\n");
    let resp = c.read_response();
    assert_eq!(resp.status, 413, "{resp:?}");
    assert!(resp.says_close());
    c.expect_closed();
}

/// Connects and reads what an over-the-limit connection gets: a 503 if the
/// server managed to write it, else just a close.
fn refused_connection(server: &TestServer) {
    let mut c = server.client();
    if let Some(resp) = c.try_read_response() {
        assert_eq!(resp.status, 503, "{resp:?}");
        assert!(resp.says_close(), "{resp:?}");
        assert_eq!(resp.header("retry-after"), Some("1"));
        c.expect_closed();
    }
}

#[test]
fn limits_connection_limit_refuses_with_503_then_recovers() {
    let mut cfg = config();
    cfg.max_connections = 3;
    let server = TestServer::start(cfg);
    let mut held: Vec<Client> = (0..3)
        .map(|_| {
            let mut c = server.client();
            assert_eq!(c.request(&get("/hello")).status, 200);
            c
        })
        .collect();
    assert_eq!(server.metrics().open_connections(), 3);

    refused_connection(&server);
    assert!(
        wait_until(Duration::from_secs(10), || server
            .metrics()
            .reason(Reason::ConnectionLimit)
            >= 1),
        "the refusal was not counted"
    );
    assert_eq!(server.metrics().responses(503), 1);
    // The held connections are still served.
    assert_eq!(held[0].request(&get("/users/1")).status, 200);

    // Closing one makes room for a new connection.
    drop(held.pop());
    assert!(
        wait_until(Duration::from_secs(10), || server
            .metrics()
            .open_connections()
            == 2),
        "the closed connection is still counted as open"
    );
    let served = wait_until(Duration::from_secs(10), || {
        let mut c = server.client();
        c.send(&get("/hello"));
        matches!(c.try_read_response(), Some(r) if r.status == 200)
    });
    assert!(served, "no new connection was served after one closed");
}

#[test]
fn limits_connection_limit_counts_each_refusal() {
    let mut cfg = config();
    cfg.max_connections = 1;
    let server = TestServer::start(cfg);
    let mut held = server.client();
    assert_eq!(held.request(&get("/hello")).status, 200);
    for _ in 0..5 {
        refused_connection(&server);
    }
    assert!(wait_until(Duration::from_secs(10), || server
        .metrics()
        .reason(Reason::ConnectionLimit)
        == 5));
    assert_eq!(held.request(&get("/hello")).status, 200);
}
