//! Response encoding: the status line, header fields and chunk framing, written as bytes.

use bytes::{BufMut, BytesMut};
use http::header::{HeaderName, CONNECTION, CONTENT_LENGTH, CONTENT_TYPE, DATE, TRANSFER_ENCODING};
use http::{HeaderMap, StatusCode, Version};

use crate::framing::elements;

/// The length of the body a response is about to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyLength {
    /// Exactly this many bytes. For a response to HEAD, the length a GET
    /// would have sent (RFC 9110 §8.6).
    Known(u64),
    /// Unknown in advance: streamed with the chunked coding.
    Chunked,
    /// No framing field at all: for responses that carry no body by
    /// definition (a 2xx to CONNECT, a HEAD response of unknown length).
    None,
}

/// How the body of an encoded response is delimited on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// A Content-Length field was written: send exactly this many bytes.
    Length(u64),
    /// `transfer-encoding: chunked` was written: send the body through
    /// [`encode_chunk`] and end it with [`encode_last_chunk`].
    Chunked,
    /// The client speaks HTTP/1.0, which has no chunked coding: send the
    /// body as is and close the connection to end it (RFC 9112 §6.1).
    CloseDelimited,
    /// No framing field was written and no body may follow: a 1xx, 204 or
    /// 304 response (RFC 9110 §6.4.1), or [`BodyLength::None`].
    None,
}

/// What [`encode_head`] promised the client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EncodedHead {
    /// How the body must be sent.
    pub framing: Framing,
    /// The connection stays open after this response. False when the
    /// caller asked to close, the headers say `connection: close`, or the
    /// body is close-delimited.
    pub keep_alive: bool,
}

/// Appends a response head to `dst`.
///
/// The status line always says HTTP/1.1, the highest version we conform to
/// (RFC 9110 §2.5); `version` is the request's, and decides whether chunked
/// coding and persistent connections need spelling out. Field names are
/// written lowercase. `headers` are written in order, except Content-Length
/// and Transfer-Encoding, which are derived from `body` so that they cannot
/// disagree with it. A `date` field (IMF-fixdate, see
/// [`with_date`](crate::with_date)) is added unless `headers` has one.
///
/// No framing field is written for 1xx, 204 and 304 responses (RFC 9110
/// §8.6, §6.4.1); `connection: close` is added when the connection will
/// close, and `connection: keep-alive` for a persistent HTTP/1.0 one.
pub fn encode_head(
    dst: &mut BytesMut,
    status: StatusCode,
    version: Version,
    headers: &HeaderMap,
    body: BodyLength,
    keep_alive: bool,
    date: &[u8],
) -> EncodedHead {
    encode_head_typed(dst, status, version, headers, None, body, keep_alive, date)
}

/// Like [`encode_head`], with a Content-Type value given apart from
/// `headers` (written unless `headers` has its own): a response can carry its
/// type without allocating a header map.
#[allow(clippy::too_many_arguments)] // one per part of a head; a struct would only rename them
pub fn encode_head_typed(
    dst: &mut BytesMut,
    status: StatusCode,
    version: Version,
    headers: &HeaderMap,
    content_type: Option<&[u8]>,
    body: BodyLength,
    keep_alive: bool,
    date: &[u8],
) -> EncodedHead {
    let informational = status.is_informational();
    let bodiless =
        informational || status == StatusCode::NO_CONTENT || status == StatusCode::NOT_MODIFIED;
    let http10 = version <= Version::HTTP_10;
    dst.reserve(96 + 48 * headers.len());

    put_status_line(dst, status);
    // Most responses have no fields of their own: skip the map look-ups.
    // Names by reference, emptiness checked once: the closure taking a
    // `HeaderName` by value was called, not inlined, and dropped its
    // argument each time (~40 instructions a response).
    let no_fields = headers.is_empty();
    let has = |name: &HeaderName| !no_fields && headers.contains_key(name);
    if let Some(value) = content_type {
        if !has(&CONTENT_TYPE) {
            put_known_field(dst, b"\r\ncontent-type: ", value);
        }
    }
    let user = put_user_fields(dst, headers);
    let framing = match body {
        _ if bodiless => Framing::None,
        BodyLength::Chunked if http10 => Framing::CloseDelimited,
        BodyLength::Known(length) => Framing::Length(length),
        BodyLength::Chunked => Framing::Chunked,
        BodyLength::None => Framing::None,
    };
    put_framing(dst, framing);

    let keep_alive = keep_alive && !user.close && framing != Framing::CloseDelimited;
    if !informational && !keep_alive && !user.close {
        dst.put_slice(b"\r\nconnection: close");
    } else if !informational && keep_alive && http10 && !user.keep_alive {
        // RFC 9112 §9.3: an HTTP/1.0 client closes unless told otherwise.
        dst.put_slice(b"\r\nconnection: keep-alive");
    }
    if !has(&DATE) {
        put_known_field(dst, b"\r\ndate: ", date);
    }
    // The last field's line end, and the empty line.
    dst.put_slice(b"\r\n\r\n");
    EncodedHead {
        framing,
        keep_alive,
    }
}

/// The Connection options the caller set in its own header fields.
#[derive(Debug, Default)]
struct UserConnection {
    /// A Connection field holds `close`.
    close: bool,
    /// A Connection field holds `keep-alive`.
    keep_alive: bool,
}

/// Appends `HTTP/1.1 <code> <reason>`; the reason is empty for codes
/// without a canonical one (RFC 9112 §4 allows that).
///
/// Each line's CRLF is written at the start of the next field, and the
/// last one with the empty line: a known field is then two copies (its
/// `CRLF name: ` and its value) rather than three, about 45 instructions
/// fewer for a typical response head.
fn put_status_line(dst: &mut BytesMut, status: StatusCode) {
    if status == StatusCode::OK {
        dst.put_slice(b"HTTP/1.1 200 OK");
        return;
    }
    dst.put_slice(b"HTTP/1.1 ");
    dst.put_slice(status.as_str().as_bytes());
    dst.put_u8(b' ');
    dst.put_slice(status.canonical_reason().unwrap_or_default().as_bytes());
}

/// Appends the caller's fields but Content-Length and Transfer-Encoding,
/// noting the Connection options among them.
fn put_user_fields(dst: &mut BytesMut, headers: &HeaderMap) -> UserConnection {
    let mut user = UserConnection::default();
    for (name, value) in headers {
        if name == CONTENT_LENGTH || name == TRANSFER_ENCODING {
            continue;
        }
        if name == CONNECTION {
            for token in elements(value.as_bytes()) {
                user.close |= token.eq_ignore_ascii_case(b"close");
                user.keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        }
        put_field(dst, name.as_str().as_bytes(), value.as_bytes());
    }
    user
}

/// Appends the framing field `framing` calls for, if any.
fn put_framing(dst: &mut BytesMut, framing: Framing) {
    match framing {
        Framing::Length(length) => {
            let mut digits = itoa::Buffer::new();
            put_known_field(
                dst,
                b"\r\ncontent-length: ",
                digits.format(length).as_bytes(),
            );
        }
        Framing::Chunked => dst.put_slice(b"\r\ntransfer-encoding: chunked"),
        Framing::CloseDelimited | Framing::None => {}
    }
}

/// Appends `HTTP/1.1 100 Continue` and an empty line, the interim response
/// to `Expect: 100-continue` (RFC 9110 §15.2.1).
pub fn encode_continue(dst: &mut BytesMut) {
    dst.put_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
}

/// Appends `data` as one chunk: `hex-size CRLF data CRLF` (RFC 9112 §7.1).
///
/// Empty `data` writes nothing, since a zero-size chunk would end the body.
pub fn encode_chunk(dst: &mut BytesMut, data: &[u8]) {
    if data.is_empty() {
        return;
    }
    let mut hex = [0u8; 16];
    let mut start = hex.len();
    let mut size = data.len();
    while size > 0 {
        start -= 1;
        hex[start] = b"0123456789abcdef"[size & 0xf];
        size >>= 4;
    }
    dst.reserve(hex.len() - start + data.len() + 4);
    dst.put_slice(&hex[start..]);
    dst.put_slice(b"\r\n");
    dst.put_slice(data);
    dst.put_slice(b"\r\n");
}

/// Appends the last chunk and an empty trailer section: `0 CRLF CRLF`.
pub fn encode_last_chunk(dst: &mut BytesMut) {
    dst.put_slice(b"0\r\n\r\n");
}

/// Appends `CRLF name: value` for a name known here, given with the CRLF
/// before it and its `": "` after it (two copies fewer than [`put_field`]).
fn put_known_field(dst: &mut BytesMut, crlf_name_colon_sp: &[u8], value: &[u8]) {
    dst.put_slice(crlf_name_colon_sp);
    dst.put_slice(value);
}

/// Appends `CRLF name: value`.
fn put_field(dst: &mut BytesMut, name: &[u8], value: &[u8]) {
    dst.put_slice(b"\r\n");
    dst.put_slice(name);
    dst.put_slice(b": ");
    dst.put_slice(value);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunked::ChunkedDecoder;
    use http::header::{HeaderValue, CONTENT_TYPE};

    const DATE_VALUE: &[u8] = b"Thu, 01 Jan 1970 00:00:00 GMT";

    /// Encodes a head with `DATE_VALUE` and returns its bytes as a string.
    fn head(
        status: u16,
        version: Version,
        headers: &[(&str, &str)],
        body: BodyLength,
        keep_alive: bool,
    ) -> (String, EncodedHead) {
        let mut map = HeaderMap::new();
        for (name, value) in headers {
            let name = http::HeaderName::from_bytes(name.as_bytes()).unwrap();
            map.append(name, HeaderValue::from_str(value).unwrap());
        }
        let mut dst = BytesMut::new();
        let status = StatusCode::from_u16(status).unwrap();
        let sent = encode_head(
            &mut dst, status, version, &map, body, keep_alive, DATE_VALUE,
        );
        (String::from_utf8(dst.to_vec()).unwrap(), sent)
    }

    macro_rules! encodes {
        ($($name:ident: ($status:expr, $version:ident, $headers:expr, $body:expr, $keep_alive:expr)
            => $bytes:expr, $framing:expr, $alive:expr;)*) => {$(
            #[test]
            fn $name() {
                let (bytes, sent) = head($status, Version::$version, $headers, $body, $keep_alive);
                let expected = $bytes.replace("{date}", "Thu, 01 Jan 1970 00:00:00 GMT");
                assert_eq!(bytes, expected);
                assert_eq!(sent, EncodedHead { framing: $framing, keep_alive: $alive });
            }
        )*};
    }

    encodes! {
        encode_ok_with_length: (200, HTTP_11, &[], BodyLength::Known(5), true)
            => "HTTP/1.1 200 OK\r\ncontent-length: 5\r\ndate: {date}\r\n\r\n", Framing::Length(5), true;
        encode_zero_length: (200, HTTP_11, &[], BodyLength::Known(0), true)
            => "HTTP/1.1 200 OK\r\ncontent-length: 0\r\ndate: {date}\r\n\r\n", Framing::Length(0), true;
        encode_max_length: (200, HTTP_11, &[], BodyLength::Known(u64::MAX), true)
            => "HTTP/1.1 200 OK\r\ncontent-length: 18446744073709551615\r\ndate: {date}\r\n\r\n",
            Framing::Length(u64::MAX), true;
        encode_user_headers_in_order: (404, HTTP_11, &[("Content-Type", "text/plain"), ("x-b", "1"), ("X-A", "2")], BodyLength::Known(3), true)
            => "HTTP/1.1 404 Not Found\r\ncontent-type: text/plain\r\nx-b: 1\r\nx-a: 2\r\ncontent-length: 3\r\ndate: {date}\r\n\r\n",
            Framing::Length(3), true;
        encode_user_date_kept: (200, HTTP_11, &[("date", "Sun, 06 Nov 1994 08:49:37 GMT")], BodyLength::Known(0), true)
            => "HTTP/1.1 200 OK\r\ndate: Sun, 06 Nov 1994 08:49:37 GMT\r\ncontent-length: 0\r\n\r\n", Framing::Length(0), true;
        encode_user_framing_ignored: (200, HTTP_11, &[("content-length", "9"), ("transfer-encoding", "gzip")], BodyLength::Known(1), true)
            => "HTTP/1.1 200 OK\r\ncontent-length: 1\r\ndate: {date}\r\n\r\n", Framing::Length(1), true;
        encode_chunked: (200, HTTP_11, &[], BodyLength::Chunked, true)
            => "HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\ndate: {date}\r\n\r\n", Framing::Chunked, true;
        encode_chunked_http10_closes: (200, HTTP_10, &[], BodyLength::Chunked, true)
            => "HTTP/1.1 200 OK\r\nconnection: close\r\ndate: {date}\r\n\r\n", Framing::CloseDelimited, false;
        encode_http10_keep_alive: (200, HTTP_10, &[], BodyLength::Known(2), true)
            => "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: keep-alive\r\ndate: {date}\r\n\r\n", Framing::Length(2), true;
        encode_http10_close: (200, HTTP_10, &[], BodyLength::Known(2), false)
            => "HTTP/1.1 200 OK\r\ncontent-length: 2\r\nconnection: close\r\ndate: {date}\r\n\r\n", Framing::Length(2), false;
        encode_close: (500, HTTP_11, &[], BodyLength::Known(0), false)
            => "HTTP/1.1 500 Internal Server Error\r\ncontent-length: 0\r\nconnection: close\r\ndate: {date}\r\n\r\n",
            Framing::Length(0), false;
        encode_user_close_wins: (200, HTTP_11, &[("connection", "Close")], BodyLength::Known(0), true)
            => "HTTP/1.1 200 OK\r\nconnection: Close\r\ncontent-length: 0\r\ndate: {date}\r\n\r\n", Framing::Length(0), false;
        encode_user_keep_alive_not_doubled: (200, HTTP_10, &[("connection", "keep-alive")], BodyLength::Known(0), true)
            => "HTTP/1.1 200 OK\r\nconnection: keep-alive\r\ncontent-length: 0\r\ndate: {date}\r\n\r\n", Framing::Length(0), true;
        encode_no_content: (204, HTTP_11, &[], BodyLength::Known(5), true)
            => "HTTP/1.1 204 No Content\r\ndate: {date}\r\n\r\n", Framing::None, true;
        encode_not_modified: (304, HTTP_11, &[], BodyLength::Chunked, true)
            => "HTTP/1.1 304 Not Modified\r\ndate: {date}\r\n\r\n", Framing::None, true;
        encode_no_content_close: (204, HTTP_11, &[], BodyLength::Known(5), false)
            => "HTTP/1.1 204 No Content\r\nconnection: close\r\ndate: {date}\r\n\r\n", Framing::None, false;
        encode_switching_protocols: (101, HTTP_11, &[("connection", "upgrade"), ("upgrade", "websocket")], BodyLength::Known(0), true)
            => "HTTP/1.1 101 Switching Protocols\r\nconnection: upgrade\r\nupgrade: websocket\r\ndate: {date}\r\n\r\n",
            Framing::None, true;
        encode_early_hints_never_closes: (103, HTTP_11, &[], BodyLength::None, false)
            => "HTTP/1.1 103 Early Hints\r\ndate: {date}\r\n\r\n", Framing::None, false;
        encode_no_framing: (200, HTTP_11, &[], BodyLength::None, true)
            => "HTTP/1.1 200 OK\r\ndate: {date}\r\n\r\n", Framing::None, true;
        encode_unknown_status: (599, HTTP_11, &[], BodyLength::Known(0), true)
            => "HTTP/1.1 599 \r\ncontent-length: 0\r\ndate: {date}\r\n\r\n", Framing::Length(0), true;
    }

    #[test]
    fn encode_appends_to_existing_bytes() {
        let mut dst = BytesMut::from(&b"prev"[..]);
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("a/b"));
        encode_head(
            &mut dst,
            StatusCode::OK,
            Version::HTTP_11,
            &headers,
            BodyLength::Known(0),
            true,
            DATE_VALUE,
        );
        assert!(dst.starts_with(b"prevHTTP/1.1 200 OK\r\ncontent-type: a/b\r\n"));
    }

    #[test]
    fn encode_continue_bytes() {
        let mut dst = BytesMut::new();
        encode_continue(&mut dst);
        assert_eq!(&dst[..], b"HTTP/1.1 100 Continue\r\n\r\n");
    }

    #[test]
    fn encode_chunk_table() {
        let big = vec![b'x'; 0x1234];
        // Each data with its chunk-size line; empty data writes nothing.
        let table: &[(&[u8], &[u8])] = &[
            (b"a", b"1\r\n"),
            (b"hello", b"5\r\n"),
            (b"0123456789abcdef", b"10\r\n"),
            (&big[..255], b"ff\r\n"),
            (&big, b"1234\r\n"),
        ];
        for &(data, size_line) in table {
            let mut dst = BytesMut::new();
            encode_chunk(&mut dst, data);
            assert_eq!(dst, [size_line, data, b"\r\n"].concat(), "{size_line:?}");
        }
        let mut dst = BytesMut::new();
        encode_chunk(&mut dst, b"");
        assert!(dst.is_empty());
        encode_last_chunk(&mut dst);
        assert_eq!(&dst[..], b"0\r\n\r\n");
    }

    #[test]
    fn encode_chunks_round_trip() {
        let parts: [&[u8]; 5] = [b"hello", b"", b" ", &[0u8; 300], b"\r\n0\r\n\r\n"];
        let mut dst = BytesMut::new();
        for part in parts {
            encode_chunk(&mut dst, part);
        }
        encode_last_chunk(&mut dst);
        let (mut decoder, mut pos, mut data) = (ChunkedDecoder::new(), 0, Vec::new());
        while !decoder.is_finished() {
            let step = decoder.decode(&dst[pos..]).unwrap();
            if let Some(range) = step.data {
                data.extend_from_slice(&dst[pos..][range]);
            }
            pos += step.consumed;
        }
        assert_eq!(pos, dst.len());
        assert_eq!(data, parts.concat());
    }
}

#[cfg(test)]
mod typed_tests {
    use super::*;
    use http::header::HeaderValue;

    fn typed(headers: &HeaderMap, content_type: Option<&[u8]>) -> String {
        let mut dst = BytesMut::new();
        encode_head_typed(
            &mut dst,
            StatusCode::OK,
            Version::HTTP_11,
            headers,
            content_type,
            BodyLength::Known(2),
            true,
            b"Tue, 24 Nov 2026 21:00:00 GMT",
        );
        String::from_utf8(dst.to_vec()).unwrap()
    }

    #[test]
    fn encode_typed_writes_the_separate_content_type() {
        let head = typed(&HeaderMap::new(), Some(b"text/plain"));
        assert_eq!(
            head,
            "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: 2\r\ndate: Tue, 24 Nov 2026 21:00:00 GMT\r\n\r\n"
        );
    }

    #[test]
    fn encode_typed_header_map_content_type_wins() {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        let head = typed(&headers, Some(b"text/plain"));
        assert!(
            head.contains("content-type: application/json\r\n"),
            "{head}"
        );
        assert!(!head.contains("text/plain"), "{head}");
    }
}
