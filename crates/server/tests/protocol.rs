//! HTTP/1.1 protocol behaviour over raw sockets: keep-alive, HTTP/1.0,
//! pipelining, HEAD, 404/405, request bodies, 100-continue, streaming
//! responses, Date, metrics.

mod util;

use std::time::Duration;

use util::{config, get, TestServer};

#[test]
fn protocol_keep_alive_serves_two_requests() {
    let server = TestServer::start(config());
    let mut c = server.client();
    let first = c.request(&get("/hello"));
    assert_eq!(first.status, 200);
    assert_eq!(first.text(), "hello\n");
    assert!(!first.says_close(), "{first:?}");
    let second = c.request(&get("/users/7"));
    assert_eq!(second.status, 200);
    assert_eq!(second.text(), "user 7\n");
    assert_eq!(server.metrics().responses(200), 2);
}

#[test]
fn protocol_http10_without_keep_alive_closes() {
    let server = TestServer::start(config());
    let mut c = server.client();
    let resp = c.request(b"GET /hello HTTP/1.0\r\n\r\n");
    assert_eq!(resp.status, 200);
    assert_eq!(resp.text(), "hello\n");
    assert!(resp.says_close(), "{resp:?}");
    c.expect_closed();
}

#[test]
fn protocol_http10_keep_alive_stays_open() {
    let server = TestServer::start(config());
    let mut c = server.client();
    let req = b"GET /hello HTTP/1.0\r\nConnection: keep-alive\r\n\r\n";
    let first = c.request(req);
    assert_eq!(first.status, 200);
    assert_eq!(
        first.header("connection").map(str::to_ascii_lowercase),
        Some("keep-alive".into())
    );
    let second = c.request(req);
    assert_eq!(second.status, 200);
    assert_eq!(second.text(), "hello\n");
}

#[test]
fn protocol_pipelining_answers_20_requests_in_order() {
    let server = TestServer::start(config());
    let mut c = server.client();
    let all: Vec<u8> = (1..=20).flat_map(|i| get(&format!("/users/{i}"))).collect();
    c.send(&all);
    for i in 1..=20 {
        let resp = c.read_response();
        assert_eq!(resp.status, 200, "response {i}");
        assert_eq!(resp.text(), format!("user {i}\n"), "response {i}");
    }
    // The connection is still usable afterwards.
    assert_eq!(c.request(&get("/hello")).text(), "hello\n");
}

#[test]
fn protocol_pipelining_mixes_bodies_and_gets() {
    let server = TestServer::start(config());
    let mut c = server.client();
    let mut all = b"POST /collect HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n\r\nabc".to_vec();
    all.extend_from_slice(&get("/users/x"));
    all.extend_from_slice(
        b"POST /collect HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nde\r\n0\r\n\r\n",
    );
    all.extend_from_slice(&get("/hello"));
    c.send(&all);
    assert_eq!(c.read_response().text(), "abc");
    assert_eq!(c.read_response().text(), "user x\n");
    assert_eq!(c.read_response().text(), "de");
    assert_eq!(c.read_response().text(), "hello\n");
}

#[test]
fn protocol_head_has_get_length_and_no_body() {
    let server = TestServer::start(config());
    let mut c = server.client();
    let get_resp = c.request(&get("/hello"));
    c.send(b"HEAD /hello HTTP/1.1\r\nHost: t\r\n\r\n");
    let head = c.read_head_response();
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-length"), Some("6"));
    assert_eq!(
        head.header("content-length"),
        get_resp.header("content-length")
    );
    // Had the HEAD response carried a body, it would prefix this response.
    let next = c.request(&get("/users/9"));
    assert_eq!(next.status, 200);
    assert_eq!(next.text(), "user 9\n");
}

#[test]
fn protocol_unknown_path_gets_404() {
    let server = TestServer::start(config());
    let mut c = server.client();
    let resp = c.request(&get("/nowhere"));
    assert_eq!(resp.status, 404);
    // The connection stays usable.
    assert_eq!(c.request(&get("/hello")).status, 200);
}

#[test]
fn protocol_wrong_method_gets_405_with_allow() {
    let server = TestServer::start(config());
    let mut c = server.client();
    let resp = c.request(b"DELETE /hello HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(resp.status, 405);
    assert_eq!(resp.header("allow"), Some("GET, HEAD"));
    let resp = c.request(b"GET /collect HTTP/1.1\r\nHost: t\r\n\r\n");
    assert_eq!(resp.status, 405);
    assert_eq!(resp.header("allow"), Some("POST"));
}

#[test]
fn protocol_post_content_length_body_collected() {
    let server = TestServer::start(config());
    let mut c = server.client();
    let body = "x".repeat(5000);
    let req = format!("POST /collect HTTP/1.1\r\nHost: t\r\nContent-Length: 5000\r\n\r\n{body}");
    let resp = c.request(req.as_bytes());
    assert_eq!(resp.status, 200);
    assert_eq!(resp.text(), body);
    // Read to its end, the body leaves the connection reusable.
    assert_eq!(c.request(&get("/hello")).status, 200);
}

#[test]
fn protocol_post_chunked_body_split_across_writes_collected() {
    let server = TestServer::start(config());
    let mut c = server.client();
    let pieces: [&[u8]; 7] = [
        b"POST /collect HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"5\r\nhel",
        b"lo\r\n",
        b"6;ext=1\r\n world\r",
        b"\n1",
        b"\r\n!\r\n0\r\n",
        b"X-Trailer: yes\r\n\r\n",
    ];
    for p in pieces {
        c.send(p);
        std::thread::sleep(Duration::from_millis(20));
    }
    let resp = c.read_response();
    assert_eq!(resp.status, 200);
    assert_eq!(resp.text(), "hello world!");
    assert_eq!(c.request(&get("/hello")).status, 200);
}

#[test]
fn protocol_expect_continue_sends_100_before_the_body() {
    let server = TestServer::start(config());
    let mut c = server.client();
    c.send(
        b"POST /collect HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 11\r\n\r\n",
    );
    let interim = c.read_response();
    assert_eq!(interim.status, 100, "{interim:?}");
    assert_eq!(interim.version, "HTTP/1.1");
    c.send(b"hello there");
    let resp = c.read_response();
    assert_eq!(resp.status, 200);
    assert_eq!(resp.text(), "hello there");
}

#[test]
fn protocol_expect_continue_not_sent_when_body_unread() {
    // The handler never reads the body: no 100 Continue, and since the body
    // was not read the connection closes after the response.
    let server = TestServer::start(config());
    let mut c = server.client();
    c.send(
        b"POST /ignore HTTP/1.1\r\nHost: t\r\nExpect: 100-continue\r\nContent-Length: 11\r\n\r\n",
    );
    let resp = c.read_response();
    assert_eq!(resp.status, 200, "{resp:?}");
    assert_eq!(resp.text(), "ignored\n");
    assert!(resp.says_close(), "{resp:?}");
    c.expect_closed();
}

#[test]
fn protocol_streaming_response_is_chunked_and_decodes() {
    let server = TestServer::start(config());
    let mut c = server.client();
    let resp = c.request(&get("/stream"));
    assert_eq!(resp.status, 200);
    assert!(resp.chunked, "{resp:?}");
    assert_eq!(resp.header("content-length"), None);
    let expected: String = (0..10).map(|i| format!("chunk {i}\n")).collect();
    assert_eq!(resp.text(), expected);
    // The connection is reusable after the last chunk.
    assert_eq!(c.request(&get("/hello")).status, 200);
}

#[test]
fn protocol_streaming_response_to_http10_is_close_delimited() {
    let server = TestServer::start(config());
    let mut c = server.client();
    let resp = c.request(b"GET /stream HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    assert_eq!(resp.status, 200);
    assert!(!resp.chunked);
    assert_eq!(resp.header("transfer-encoding"), None);
    assert!(resp.says_close(), "{resp:?}");
    let expected: String = (0..10).map(|i| format!("chunk {i}\n")).collect();
    assert_eq!(resp.text(), expected);
}

#[test]
fn protocol_date_header_present() {
    let server = TestServer::start(config());
    let resp = server.request(&get("/hello"));
    let date = resp.header("date").expect("no date header");
    // IMF-fixdate: "Sun, 06 Nov 1994 08:49:37 GMT".
    assert_eq!(date.len(), 29, "{date:?}");
    assert!(date.ends_with(" GMT"), "{date:?}");
    assert_eq!(&date[3..5], ", ", "{date:?}");
    let not_found = server.request(&get("/nowhere"));
    assert!(not_found.header("date").is_some());
}

#[test]
fn protocol_metrics_count_responses() {
    let server = TestServer::start(config());
    assert_eq!(server.request(&get("/hello")).status, 200);
    assert_eq!(server.request(&get("/nowhere")).status, 404);
    let metrics = server.request(&get("/metrics"));
    assert_eq!(metrics.status, 200);
    let text = metrics.text();
    assert!(
        text.contains("gyre_responses_total{status=\"200\"}"),
        "{text}"
    );
    assert!(
        text.contains("gyre_responses_total{status=\"404\"} 1"),
        "{text}"
    );
    assert_eq!(server.metrics().responses(404), 1);
    let rendered = server.running().render_metrics();
    assert!(rendered.contains("gyre_refused_total"), "{rendered}");
    assert!(
        rendered.contains("gyre_sendfile_calls_total{on=\"pool\"} 0"),
        "{rendered}"
    );
}

#[test]
fn protocol_percent_encoded_param_decoded() {
    let server = TestServer::start(config());
    let resp = server.request(&get("/users/a%20b"));
    assert_eq!(resp.status, 200);
    assert_eq!(resp.text(), "user a b\n");
}

#[test]
fn protocol_connection_close_request_closes_after_response() {
    let server = TestServer::start(config());
    let mut c = server.client();
    let resp = c.request(b"GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    assert_eq!(resp.status, 200);
    assert!(resp.says_close());
    c.expect_closed();
}

#[test]
fn protocol_pipelined_requests_after_close_are_ignored() {
    let server = TestServer::start(config());
    let mut c = server.client();
    let mut all = b"GET /hello HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n".to_vec();
    all.extend_from_slice(&get("/users/2"));
    c.send(&all);
    assert_eq!(c.read_response().status, 200);
    c.expect_closed();
}

/// Application state registered once reaches handlers on every loop as the
/// same value, and a handler asking for a type never registered is told so
/// by a panic that ends only its own request.
#[test]
fn protocol_state_is_shared_by_every_loop() {
    use std::sync::atomic::{AtomicU64, Ordering};
    struct Hits(AtomicU64);
    let server =
        TestServer::start_with(config(), |s| {
            s.state(Hits(AtomicU64::new(0)))
            .route(http::Method::GET, "/hit", |req: gyre_server::Request| async move {
                let n = req.state::<Hits>().0.fetch_add(1, Ordering::Relaxed) + 1;
                format!("{n}\n")
            })
            .route(http::Method::GET, "/wrong", |req: gyre_server::Request| async move {
                req.state::<String>().len().to_string()
            })
        });
    // Fresh connections land on both loops of the test runtime.
    for expected in 1..=8u64 {
        let mut c = server.client();
        let resp = c.request(&get("/hit"));
        assert_eq!(resp.status, 200);
        assert_eq!(resp.text(), format!("{expected}\n"));
    }
    let mut c = server.client();
    c.send(&get("/wrong"));
    c.expect_closed();
    let mut c = server.client();
    assert_eq!(c.request(&get("/hit")).text(), "9\n");
}
