//! Ambiguous or malformed framing is refused (400, or 501 for an unknown
//! transfer coding) with `connection: close`, and the connection then
//! closes without answering anything sent after it. Each request carries a
//! smuggled `GET /hello` after it, which must never be answered.

mod util;

use util::{assert_refused, config, TestServer};

/// A request that must not be answered if it follows a refused one.
const SMUGGLED: &str = "GET /hello HTTP/1.1\r\nHost: t\r\n\r\n";

/// `refused! { name: "request bytes" => status; }` sends the request followed
/// by [`SMUGGLED`] on a fresh connection and expects exactly one response
/// with `status`, then a close.
macro_rules! refused {
    ($($name:ident: $raw:expr => $status:expr;)*) => {$(
        #[test]
        fn $name() {
            let server = TestServer::start(config());
            let mut raw: Vec<u8> = $raw.as_bytes().to_vec();
            raw.extend_from_slice(SMUGGLED.as_bytes());
            assert_refused(&server, &raw, $status);
            assert_eq!(server.metrics().responses(200), 0, "the smuggled request was answered");
        }
    )*};
}

refused! {
    smuggling_content_length_with_transfer_encoding_400:
        "POST /collect HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" => 400;
    smuggling_transfer_encoding_with_content_length_400:
        "POST /collect HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n0\r\n\r\n" => 400;
    smuggling_two_different_content_lengths_400:
        "POST /collect HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!" => 400;
    smuggling_content_length_list_differing_400:
        "POST /collect HTTP/1.1\r\nHost: t\r\nContent-Length: 5, 6\r\n\r\nhello!" => 400;
    smuggling_content_length_plus_400:
        "POST /collect HTTP/1.1\r\nHost: t\r\nContent-Length: +5\r\n\r\nhello" => 400;
    smuggling_content_length_minus_400:
        "POST /collect HTTP/1.1\r\nHost: t\r\nContent-Length: -5\r\n\r\nhello" => 400;
    smuggling_content_length_inner_space_400:
        "POST /collect HTTP/1.1\r\nHost: t\r\nContent-Length:  5 5\r\n\r\nhello" => 400;
    smuggling_content_length_hex_400:
        "POST /collect HTTP/1.1\r\nHost: t\r\nContent-Length: 0x5\r\n\r\nhello" => 400;
    smuggling_content_length_overflow_400:
        "POST /collect HTTP/1.1\r\nHost: t\r\nContent-Length: 99999999999999999999999\r\n\r\nhello" => 400;
    smuggling_content_length_empty_400:
        "POST /collect HTTP/1.1\r\nHost: t\r\nContent-Length: \r\n\r\nhello" => 400;
    // RFC 9112 §6.3: chunked not final in a request is a MUST-400; the 501
    // for an unknown coding applies once chunked is last (next case).
    smuggling_transfer_encoding_gzip_alone_400:
        "POST /collect HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n\r\nhello" => 400;
    smuggling_transfer_encoding_gzip_then_chunked_501:
        "POST /collect HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n" => 501;
    smuggling_transfer_encoding_chunked_then_gzip_400:
        "POST /collect HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked, gzip\r\n\r\n0\r\n\r\n" => 400;
    smuggling_transfer_encoding_chunked_twice_400:
        "POST /collect HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" => 400;
    smuggling_transfer_encoding_in_http10_400:
        "POST /collect HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" => 400;
    smuggling_transfer_encoding_quoted_400:
        "POST /collect HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: \"chunked\"\r\n\r\n0\r\n\r\n" => 400;
    smuggling_chunk_size_plus_400:
        "POST /collect HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n+5\r\nhello\r\n0\r\n\r\n" => 400;
    smuggling_chunk_size_hex_prefix_400:
        "POST /collect HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n0x5\r\nhello\r\n0\r\n\r\n" => 400;
    smuggling_chunk_size_leading_space_400:
        "POST /collect HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n 5\r\nhello\r\n0\r\n\r\n" => 400;
    smuggling_chunk_size_overflow_400:
        "POST /collect HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffffff\r\nhello\r\n0\r\n\r\n" => 400;
    smuggling_chunk_size_bare_lf_400:
        "POST /collect HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n" => 400;
    smuggling_chunk_data_longer_than_size_400:
        "POST /collect HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nhello\r\n0\r\n\r\n" => 400;
    smuggling_space_before_colon_400:
        "GET /hello HTTP/1.1\r\nHost : t\r\n\r\n" => 400;
    smuggling_obs_fold_400:
        "GET /hello HTTP/1.1\r\nHost: t\r\nX-A: a\r\n b\r\n\r\n" => 400;
    smuggling_control_char_in_value_400:
        "GET /hello HTTP/1.1\r\nHost: t\r\nX-A: a\x01b\r\n\r\n" => 400;
    smuggling_bare_cr_in_value_400:
        "GET /hello HTTP/1.1\r\nHost: t\r\nX-A: a\rb\r\n\r\n" => 400;
    smuggling_invalid_header_name_400:
        "GET /hello HTTP/1.1\r\nHost: t\r\nBad[Name]: x\r\n\r\n" => 400;
    smuggling_bare_lf_line_endings_400:
        "GET /hello HTTP/1.1\nHost: t\n\n" => 400;
    smuggling_bare_lf_in_one_header_line_400:
        "GET /hello HTTP/1.1\r\nHost: t\nX-A: b\r\n\r\n" => 400;
    smuggling_missing_host_400:
        "GET /hello HTTP/1.1\r\nX-A: b\r\n\r\n" => 400;
    smuggling_two_hosts_400:
        "GET /hello HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n" => 400;
    smuggling_space_in_target_400:
        "GET /hel lo HTTP/1.1\r\nHost: t\r\n\r\n" => 400;
    smuggling_http2_version_505:
        "GET /hello HTTP/2.0\r\nHost: t\r\n\r\n" => 505;
}

#[test]
fn smuggling_identical_content_lengths_are_accepted() {
    // RFC 9112 §6.3: a list of identical values may be collapsed to one.
    let server = TestServer::start(config());
    let mut c = server.client();
    c.send(
        b"POST /collect HTTP/1.1\r\nHost: t\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
    );
    let resp = c.read_response();
    assert_eq!(resp.status, 200);
    assert_eq!(resp.text(), "hello");
}

#[test]
fn smuggling_refusals_are_counted() {
    let server = TestServer::start(config());
    assert_refused(
        &server,
        b"POST /collect HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
        400,
    );
    assert_refused(
        &server,
        b"POST /collect HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip, chunked\r\n\r\n",
        501,
    );
    assert_eq!(server.metrics().reason(gyre_server::Reason::BadRequest), 1);
    assert_eq!(
        server.metrics().reason(gyre_server::Reason::NotImplemented),
        1
    );
    assert_eq!(server.metrics().responses(400), 1);
    assert_eq!(server.metrics().responses(501), 1);
}

#[test]
fn smuggling_pipelined_requests_before_a_bad_one_are_answered() {
    let server = TestServer::start(config());
    let mut c = server.client();
    let mut all = util::get("/users/1");
    all.extend_from_slice(&util::get("/users/2"));
    all.extend_from_slice(b"GET /hello HTTP/1.1\r\nHost : t\r\n\r\n");
    all.extend_from_slice(&util::get("/users/3"));
    c.send(&all);
    assert_eq!(c.read_response().text(), "user 1\n");
    assert_eq!(c.read_response().text(), "user 2\n");
    let bad = c.read_response();
    assert_eq!(bad.status, 400, "{bad:?}");
    assert!(bad.says_close());
    c.expect_closed();
}
