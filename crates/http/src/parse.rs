//! Request head parsing: bytes in, a validated [`RequestHead`] out (RFC 9112 §2–§6).

use std::mem::MaybeUninit;
use std::ops::Range;

use bytes::{Buf, Bytes, BytesMut};
use http::{HeaderMap, HeaderName, HeaderValue, Method, Uri, Version};

use crate::body::BodyKind;
use crate::charset::is_tchar;
use crate::error::ParseError;
use crate::framing::HeadFacts;
use crate::head_box::HeadBox;
use crate::limits::{Limits, MAX_HEADERS};
use crate::target;

/// The outcome of parsing input that may be incomplete.
///
/// Incomplete input is not an error: the caller reads more bytes and parses
/// the whole buffer again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status<T> {
    /// The input held a complete value.
    Complete(T),
    /// More input is needed.
    Partial,
}

impl<T> Status<T> {
    /// True for [`Status::Complete`].
    pub fn is_complete(&self) -> bool {
        matches!(self, Status::Complete(_))
    }
}

/// A parsed and validated request head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestHead {
    /// The request method.
    pub method: Method,
    /// Where the request-target is in [`raw`](Self::raw).
    target: Span,
    /// Where its path is, for an origin-form target read without a `Uri`
    /// (see `uri`); `None` when the `Uri` was built while parsing.
    path: Option<Span>,
    /// The request-target as a `Uri`: origin-form (`/path?query`),
    /// absolute-form (`http://host/path`), asterisk-form (`*`, OPTIONS
    /// only) or authority-form (`host:port`, CONNECT only) (RFC 9112 §3.2).
    /// Built on first use for an origin-form target, whose bytes were
    /// checked to be ones `Uri` accepts (see [`target::parse`]); built at
    /// once for the other forms.
    uri: std::cell::OnceCell<Uri>,
    /// [`Version::HTTP_10`] or [`Version::HTTP_11`].
    pub version: Version,
    /// The head as received (request-line and fields). The typed header map
    /// is built from it on first use (see [`headers`](Self::headers)). A
    /// buffer of this thread's [`HeadBox`] pool, reused from head to head.
    raw: Vec<u8>,
    /// The header map, built lazily: a handler that reads no field (or only
    /// [`header`](Self::header)) never pays for it. The fields were all
    /// validated while parsing.
    headers: std::cell::OnceCell<HeaderMap>,
    /// Bytes of input the head took, blank lines before the request-line
    /// and the final CRLF included. The body, or the next pipelined
    /// request, starts here.
    pub head_len: usize,
    /// How the body that follows is delimited.
    pub body: BodyKind,
    /// The connection may carry another request after this one
    /// (RFC 9112 §9.3).
    pub keep_alive: bool,
    /// The client sent `Expect: 100-continue` in HTTP/1.1 and waits for
    /// `100 Continue` before sending the body (RFC 9110 §10.1.1).
    pub expect_continue: bool,
    /// The client asks to switch protocols: Connection lists `upgrade` and
    /// an Upgrade field is present, in HTTP/1.1 (RFC 9110 §7.8).
    pub upgrade: bool,
}

impl RequestHead {
    /// A head of no request, for a new pooled box to be filled.
    pub(crate) fn empty() -> RequestHead {
        RequestHead {
            method: Method::GET,
            target: Span::ZERO,
            path: None,
            uri: std::cell::OnceCell::new(),
            version: Version::HTTP_11,
            raw: Vec::new(),
            headers: std::cell::OnceCell::new(),
            head_len: 0,
            body: BodyKind::Empty,
            keep_alive: false,
            expect_continue: false,
            upgrade: false,
        }
    }

    /// The capacity of the head's byte buffer, which the pool keeps.
    pub(crate) fn raw_capacity(&self) -> usize {
        self.raw.capacity()
    }

    /// Forgets the request: its bytes and what was built from them (the
    /// buffer keeps its capacity).
    pub(crate) fn reset(&mut self) {
        self.raw.clear();
        self.uri = std::cell::OnceCell::new();
        self.headers = std::cell::OnceCell::new();
    }

    /// The head as received: its first [`head_len`](Self::head_len) bytes
    /// of input, from any blank lines before the request-line to the empty
    /// line that ends it.
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    /// The request-target as a `Uri`.
    pub fn uri(&self) -> &Uri {
        self.uri.get_or_init(|| {
            Uri::from_maybe_shared(Bytes::copy_from_slice(&self.raw[self.target.range()]))
                .expect("an origin-form target of checked bytes is a valid Uri")
        })
    }

    /// The request-target as received.
    pub fn target(&self) -> &str {
        // Checked to be ASCII while parsing.
        std::str::from_utf8(&self.raw[self.target.range()]).unwrap_or_default()
    }

    /// The path of the request-target (`/a/b` of `/a/b?c`), found without
    /// building the `Uri` for an origin-form target.
    pub fn path(&self) -> &str {
        match self.path {
            // Checked to be ASCII while parsing.
            Some(path) => std::str::from_utf8(&self.raw[path.range()]).unwrap_or_default(),
            None => self.uri().path(),
        }
    }

    /// The bytes of [`path`](Self::path), without the UTF-8 check that
    /// making a `&str` costs (a router's exact match needs no more).
    pub fn path_bytes(&self) -> &[u8] {
        match self.path {
            Some(path) => &self.raw[path.range()],
            None => self.uri().path().as_bytes(),
        }
    }

    /// The query of the request-target (`c` of `/a/b?c`), if it has one.
    pub fn query(&self) -> Option<&str> {
        match self.path {
            Some(path) if path.end < self.target.end => {
                let query = &self.raw[path.end + 1..self.target.end];
                Some(std::str::from_utf8(query).unwrap_or_default())
            }
            Some(_) => None,
            None => self.uri().query(),
        }
    }

    /// The header fields in the order received, values with surrounding
    /// whitespace removed. Framing fields are kept as received even when a
    /// repeated Content-Length was collapsed into [`body`](Self::body).
    pub fn headers(&self) -> &HeaderMap {
        self.headers.get_or_init(|| header_map(&self.raw))
    }

    /// The value of the first field named `name` (ASCII case-insensitive),
    /// found without building the header map.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        if let Some(map) = self.headers.get() {
            return map.get(name).map(HeaderValue::as_bytes);
        }
        let mut slots = [MaybeUninit::<httparse::Header<'_>>::uninit(); MAX_HEADERS];
        let mut req = httparse::Request::new(&mut []);
        req.parse_with_uninit_headers(&self.raw, &mut slots).ok()?;
        req.headers
            .iter()
            .find(|h| h.name.eq_ignore_ascii_case(name))
            .map(|h| h.value)
    }
}

/// Builds the typed map of a head that [`parse_request`] already validated.
fn header_map(raw: &[u8]) -> HeaderMap {
    let mut slots = [MaybeUninit::<httparse::Header<'_>>::uninit(); MAX_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    if req.parse_with_uninit_headers(raw, &mut slots).is_err() {
        return HeaderMap::new();
    }
    let mut map = HeaderMap::with_capacity(req.headers.len());
    for h in req.headers.iter() {
        let name = HeaderName::from_bytes(h.name.as_bytes());
        let value = HeaderValue::from_bytes(h.value);
        // Validated while parsing; a field that still does not convert is skipped.
        if let (Ok(name), Ok(value)) = (name, value) {
            map.append(name, value);
        }
    }
    map
}

/// Byte offsets of a part of the head, so the head can be moved into a
/// `Bytes` and sliced without copying once httparse lets go of it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Span {
    /// Offset of the first byte.
    start: usize,
    /// Offset past the last byte. INVARIANT: `start <= end`.
    end: usize,
}

impl Span {
    /// The empty span at offset 0.
    const ZERO: Span = Span { start: 0, end: 0 };

    /// The span of `part`, a subslice of `buf`.
    fn of(buf: &[u8], part: &[u8]) -> Span {
        let start = part.as_ptr() as usize - buf.as_ptr() as usize;
        Span {
            start,
            end: start + part.len(),
        }
    }

    /// The span as a range.
    fn range(self) -> Range<usize> {
        self.start..self.end
    }
}

/// What httparse found, as offsets into the input.
#[derive(Debug)]
struct RawHead {
    /// The method token.
    method: Span,
    /// The request-target.
    target: Span,
    /// The protocol version.
    version: Version,
    /// Length of the head in bytes.
    len: usize,
    /// Number of field lines, whose spans are the first `count` of the
    /// caller's [`FieldSpans`].
    count: usize,
}

/// Name and value spans of each field line. The caller owns the array so
/// that `RawHead` stays small: returning it by value measured ~15% of
/// `parse_request` in memcpy.
type FieldSpans = [(Span, Span); MAX_HEADERS];

/// Parses a request head from the start of `buf`.
///
/// Returns `Partial` until the head is complete, unless the bytes so far
/// already break a rule or a [`Limits`] bound. On success the head is
/// copied once, into a [`HeadBox`] that this thread reuses once dropped.
pub fn parse_request(buf: &[u8], limits: &Limits) -> Result<Status<HeadBox>, ParseError> {
    with_fields(|fields| {
        let raw = match scan(buf, limits, fields)? {
            Status::Complete(raw) => raw,
            Status::Partial => return Ok(Status::Partial),
        };
        build(&buf[..raw.len], &raw, &fields[..raw.count]).map(Status::Complete)
    })
}

thread_local! {
    /// Field spans of this thread's parses: reused, so that a parse does not
    /// zero 3 KiB of stack (measured 2.5% of a pipelined benchmark).
    static FIELDS: std::cell::RefCell<FieldSpans> =
        const { std::cell::RefCell::new([(Span::ZERO, Span::ZERO); MAX_HEADERS]) };
}

/// Runs `f` with this thread's field-span scratch (a fresh array if it is in use).
fn with_fields<R>(f: impl FnOnce(&mut FieldSpans) -> R) -> R {
    FIELDS.with(|cell| match cell.try_borrow_mut() {
        Ok(mut fields) => f(&mut fields),
        Err(_) => f(&mut [(Span::ZERO, Span::ZERO); MAX_HEADERS]),
    })
}

/// Like [`parse_request`], but on success also takes the head off the
/// front of `buf`, leaving the body or next request there.
///
/// `buf` is left untouched on `Partial` and on every error.
pub fn parse_request_split(
    buf: &mut BytesMut,
    limits: &Limits,
) -> Result<Status<HeadBox>, ParseError> {
    let parsed = parse_request(buf, limits)?;
    if let Status::Complete(head) = &parsed {
        buf.advance(head.head_len);
    }
    Ok(parsed)
}

/// Runs httparse over `buf`, applies the byte-level checks, and records
/// where each field line is in `fields`.
fn scan(
    buf: &[u8],
    limits: &Limits,
    fields: &mut FieldSpans,
) -> Result<Status<RawHead>, ParseError> {
    // httparse writes each slot before reading it, so its array is left
    // uninitialised (hyper measured ~5% on pipelined benchmarks from not
    // zeroing it). `fields` is zeroed instead, as this crate has no unsafe.
    let mut slots = [MaybeUninit::<httparse::Header<'_>>::uninit(); MAX_HEADERS];
    let mut req = httparse::Request::new(&mut []);
    let len = match req.parse_with_uninit_headers(buf, &mut slots[..limits.header_slots()]) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => {
            return target::check_partial(buf, limits).map(|()| Status::Partial)
        }
        Err(error) => return Err(target::refine_error(error, buf)),
    };
    // httparse sets all three on Complete.
    let (Some(method), Some(path), Some(minor)) = (req.method, req.path, req.version) else {
        return Err(ParseError::MalformedHead);
    };
    // method SP request-target SP HTTP-version; httparse allows single SPs only.
    if method.len() + path.len() + 10 > limits.max_request_line {
        return Err(ParseError::UriTooLong);
    }
    if len > limits.max_head {
        return Err(ParseError::HeadTooLarge);
    }
    if has_bare_lf(&buf[..len]) {
        return Err(ParseError::BareLineFeed);
    }
    for (slot, header) in fields.iter_mut().zip(req.headers.iter()) {
        *slot = (
            Span::of(buf, header.name.as_bytes()),
            Span::of(buf, header.value),
        );
    }
    Ok(Status::Complete(RawHead {
        method: Span::of(buf, method.as_bytes()),
        target: Span::of(buf, path.as_bytes()),
        version: if minor == 0 {
            Version::HTTP_10
        } else {
            Version::HTTP_11
        },
        len,
        count: req.headers.len(),
    }))
}

/// Builds the typed head from `head`, the bytes `raw` and `fields`
/// describe, and applies the field-level checks.
fn build(head: &[u8], raw: &RawHead, fields: &[(Span, Span)]) -> Result<HeadBox, ParseError> {
    let method = match &head[raw.method.range()] {
        // Most requests are GETs: one comparison instead of `from_bytes`'s
        // match over every standard method (~25 instructions a request).
        b"GET" => Method::GET,
        other => Method::from_bytes(other).map_err(|_| ParseError::InvalidMethod)?,
    };
    let (uri, path_len) = target::parse(&method, head, raw.target.range())?;
    let path = path_len.map(|len| Span {
        start: raw.target.start,
        end: raw.target.start + len,
    });
    let mut facts = HeadFacts::default();
    for &(name, value) in fields {
        let name = &head[name.range()];
        let value = &head[value.range()];
        // httparse already holds names to tchar and values to field-vchar,
        // SP and HTAB: the rules of `HeaderName` and `HeaderValue`, so the
        // lazy map cannot fail (tests in this file and the server's
        // smuggling tests check the refusals).
        debug_assert!(valid_name(name) && valid_value(value));
        facts.observe(name, value)?;
    }
    let semantics = facts.finish(raw.version)?;
    // Boxed here, once: the head then moves as a pointer (moving the
    // 240-byte value through the callers measured ~3% of a pipelined run).
    // The box is a pooled one, filled field by field.
    Ok(HeadBox::with(|h| {
        h.raw.extend_from_slice(head);
        h.method = method;
        h.target = raw.target;
        h.path = path;
        // A new or pooled head's cell is empty (see `empty` and `reset`):
        // replaced only if the target was parsed into a `Uri` already.
        if let Some(uri) = uri.into_inner() {
            h.uri = std::cell::OnceCell::from(uri);
        }
        h.version = raw.version;
        h.head_len = raw.len;
        h.body = semantics.body;
        h.keep_alive = semantics.keep_alive;
        h.expect_continue = semantics.expect_continue;
        h.upgrade = semantics.upgrade;
    }))
}

/// A field name `HeaderName` accepts: 1 to 64 KiB of tchar.
fn valid_name(name: &[u8]) -> bool {
    !name.is_empty() && name.len() < 1 << 16 && name.iter().all(|&b| is_tchar(b))
}

/// A field value `HeaderValue` accepts: visible ASCII, obs-text, SP and HTAB.
/// Checked here rather than by `HeaderValue::from_bytes`, which copies the
/// bytes: a debug build would then allocate for every field.
fn valid_value(value: &[u8]) -> bool {
    value
        .iter()
        .all(|&b| (b >= b' ' && b != 0x7f) || b == b'\t')
}

/// True if a line of `head` ends in LF without CR.
///
/// RFC 9112 §2.2 lets a recipient accept a bare LF, but a proxy in front
/// of us may not, and a message two parsers split differently is the root
/// of request smuggling; so unlike httparse we refuse it.
fn has_bare_lf(head: &[u8]) -> bool {
    // A branch-free fold over byte pairs, which the compiler vectorises;
    // `windows(2).any(..)` measured 8x slower (80 ns against 10 ns) on a
    // 252-byte head.
    let pairs = head.iter().zip(head.iter().skip(1));
    let bare = pairs.fold(false, |bare, (&prev, &byte)| {
        bare | ((byte == b'\n') & (prev != b'\r'))
    });
    bare || head.first() == Some(&b'\n')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ParseError::*;
    use http::header;

    /// Parses `buf` with default limits through both entry points, checks
    /// they agree, and returns the result.
    fn parse(buf: &[u8]) -> Result<Status<HeadBox>, ParseError> {
        parse_with(buf, &Limits::default())
    }

    fn parse_with(buf: &[u8], limits: &Limits) -> Result<Status<HeadBox>, ParseError> {
        let copied = parse_request(buf, limits);
        let mut shared = BytesMut::from(buf);
        let split = parse_request_split(&mut shared, limits);
        assert_eq!(copied, split, "entry points disagree");
        if let Ok(Status::Complete(head)) = &split {
            assert_eq!(&shared[..], &buf[head.head_len..]);
        }
        split
    }

    fn complete(buf: &[u8]) -> HeadBox {
        match parse(buf) {
            Ok(Status::Complete(head)) => head,
            other => panic!("expected a complete head, got {other:?}"),
        }
    }

    /// `accept! { name: bytes, |head| checks; }`: the request parses, and
    /// every strict prefix of it is Partial.
    macro_rules! accept {
        ($($name:ident: $buf:expr, |$head:ident| $check:block)*) => {$(
            #[test]
            fn $name() {
                let buf: &[u8] = $buf;
                let $head = complete(buf);
                $check
                for end in 0..$head.head_len {
                    assert_eq!(parse(&buf[..end]), Ok(Status::Partial), "prefix {end}");
                }
            }
        )*};
    }

    /// `reject! { name: bytes => Error; }`: the request is refused.
    macro_rules! reject {
        ($($name:ident: $buf:expr => $error:ident;)*) => {$(
            #[test]
            fn $name() {
                assert_eq!(parse($buf).err(), Some($error));
            }
        )*};
    }

    accept! {
        parse_get_without_body: b"GET /index.html?q=1 HTTP/1.1\r\nHost: example.com\r\n\r\n", |head| {
            assert_eq!(head.method, Method::GET);
            assert_eq!(head.path(), "/index.html");
            assert_eq!(head.query(), Some("q=1"));
            assert_eq!(head.version, Version::HTTP_11);
            assert_eq!(head.headers()[header::HOST], "example.com");
            assert_eq!(head.head_len, 51);
            assert_eq!(head.body, BodyKind::Empty);
            assert!(head.keep_alive && !head.expect_continue && !head.upgrade);
        }
        parse_post_with_length: b"POST /f HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello", |head| {
            assert_eq!(head.body, BodyKind::Length(5));
            assert_eq!(head.head_len, 48);
        }
        parse_post_chunked: b"POST /f HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", |head| {
            assert_eq!(head.body, BodyKind::Chunked);
        }
        parse_transfer_encoding_case_and_lists: b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: ,CHUNKED\r\n\r\n", |head| {
            assert_eq!(head.body, BodyKind::Chunked);
        }
        parse_content_length_zero_is_empty: b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0\r\n\r\n", |head| {
            assert_eq!(head.body, BodyKind::Empty);
        }
        parse_identical_content_lengths_collapse: b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3, 003\r\n\r\n", |head| {
            assert_eq!(head.body, BodyKind::Length(3));
            assert_eq!(head.headers().get_all(header::CONTENT_LENGTH).iter().count(), 2);
        }
        parse_http11_close: b"GET / HTTP/1.1\r\nHost: a\r\nConnection: Keep-Alive, CLOSE\r\n\r\n", |head| {
            assert!(!head.keep_alive);
        }
        parse_http10_closes_by_default: b"GET / HTTP/1.0\r\n\r\n", |head| {
            assert_eq!(head.version, Version::HTTP_10);
            assert!(!head.keep_alive);
        }
        parse_http10_keep_alive: b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", |head| {
            assert!(head.keep_alive);
        }
        parse_expect_continue: b"PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n", |head| {
            assert!(head.expect_continue);
        }
        parse_expect_ignored_in_http10: b"PUT / HTTP/1.0\r\nExpect: 100-continue\r\n\r\n", |head| {
            assert!(!head.expect_continue);
        }
        parse_upgrade: b"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: keep-alive, Upgrade\r\nUpgrade: websocket\r\n\r\n", |head| {
            assert!(head.upgrade && head.keep_alive);
        }
        parse_upgrade_needs_connection_token: b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n", |head| {
            assert!(!head.upgrade);
        }
        parse_options_asterisk: b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", |head| {
            assert_eq!(head.uri(), "*");
        }
        parse_absolute_form: b"GET http://example.com:8080/p?x HTTP/1.1\r\nHost: other\r\n\r\n", |head| {
            assert_eq!(head.uri().host(), Some("example.com"));
            assert_eq!(head.path(), "/p");
        }
        parse_connect_authority_form: b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", |head| {
            assert_eq!(head.uri().authority().unwrap(), "example.com:443");
        }
        parse_extension_method: b"PURGE /x HTTP/1.1\r\nHost: a\r\n\r\n", |head| {
            assert_eq!(head.method.as_str(), "PURGE");
        }
        parse_leading_empty_line: b"\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", |head| {
            assert_eq!(head.head_len, 29);
        }
        parse_value_whitespace_trimmed: b"GET / HTTP/1.1\r\nHost: a\r\nX-A: \t v a \t\r\nX-Empty:\r\n\r\n", |head| {
            assert_eq!(head.headers()["x-a"], "v a");
            assert_eq!(head.headers()["x-empty"], "");
        }
        parse_obs_text_value: b"GET / HTTP/1.1\r\nHost: a\r\nX-Name: caf\xc3\xa9\r\n\r\n", |head| {
            assert_eq!(head.headers()["x-name"].as_bytes(), b"caf\xc3\xa9");
        }
        parse_empty_host_allowed: b"GET / HTTP/1.1\r\nHost:\r\n\r\n", |head| {
            assert_eq!(head.headers()[header::HOST], "");
        }
        parse_ipv6_host: b"GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n", |head| {
            assert_eq!(head.headers()[header::HOST], "[::1]:8080");
        }
    }

    reject! {
        // RFC 9112 §6.1 and §6.3: Content-Length and Transfer-Encoding.
        parse_content_length_with_chunked: b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n" => ContentLengthWithTransferEncoding;
        parse_chunked_with_content_length: b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 5\r\n\r\n" => ContentLengthWithTransferEncoding;
        parse_content_length_repeated_differing: b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n" => ConflictingContentLength;
        parse_content_length_list_differing: b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\n" => ConflictingContentLength;
        parse_content_length_plus: b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n" => InvalidContentLength;
        parse_content_length_minus: b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -5\r\n\r\n" => InvalidContentLength;
        parse_content_length_inner_space: b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1 0\r\n\r\n" => InvalidContentLength;
        parse_content_length_hex: b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x5\r\n\r\n" => InvalidContentLength;
        parse_content_length_empty: b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n" => InvalidContentLength;
        parse_content_length_empty_element: b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5,,5\r\n\r\n" => InvalidContentLength;
        parse_content_length_non_ascii: b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \xef\xbc\x95\r\n\r\n" => InvalidContentLength;
        parse_content_length_decimal_point: b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5.0\r\n\r\n" => InvalidContentLength;
        parse_content_length_overflow: b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 18446744073709551616\r\n\r\n" => InvalidContentLength;
        parse_chunked_not_final: b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\n" => ChunkedNotFinal;
        parse_transfer_encoding_without_chunked: b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n" => ChunkedNotFinal;
        parse_transfer_encoding_empty: b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n\r\n" => ChunkedNotFinal;
        parse_unknown_coding: b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n" => UnknownTransferCoding;
        parse_identity_coding: b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\nTransfer-Encoding: chunked\r\n\r\n" => UnknownTransferCoding;
        parse_chunked_twice: b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n" => RepeatedChunked;
        parse_chunked_twice_in_two_lines: b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n" => RepeatedChunked;
        parse_chunked_with_parameter: b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked;q=1\r\n\r\n" => InvalidTransferEncoding;
        parse_transfer_encoding_quoted: b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \"chunked\"\r\n\r\n" => InvalidTransferEncoding;
        parse_transfer_encoding_in_http10: b"POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n" => TransferEncodingHttp10;
        // RFC 9112 §5.1, §5.2 and RFC 9110 §5.5: field lines.
        parse_space_before_colon: b"GET / HTTP/1.1\r\nHost : a\r\n\r\n" => InvalidHeaderName;
        parse_tab_before_colon: b"GET / HTTP/1.1\r\nHost\t: a\r\n\r\n" => InvalidHeaderName;
        parse_space_before_colon_content_length: b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length : 5\r\n\r\n" => InvalidHeaderName;
        parse_obs_fold: b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n" => ObsoleteLineFolding;
        parse_obs_fold_tab: b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n\tc\r\n\r\n" => ObsoleteLineFolding;
        parse_space_before_first_field: b"GET / HTTP/1.1\r\n Host: a\r\n\r\n" => ObsoleteLineFolding;
        parse_value_control_char: b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x01c\r\n\r\n" => InvalidHeaderValue;
        parse_value_nul: b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x00c\r\n\r\n" => InvalidHeaderValue;
        parse_value_del: b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x7fc\r\n\r\n" => InvalidHeaderValue;
        parse_value_escape: b"GET / HTTP/1.1\r\nHost: a\r\nX-A: \x1b[31m\r\n\r\n" => InvalidHeaderValue;
        parse_value_bare_cr: b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\rc\r\n\r\n" => InvalidHeaderValue;
        parse_name_separator: b"GET / HTTP/1.1\r\nHost: a\r\nX(A): b\r\n\r\n" => InvalidHeaderName;
        parse_name_empty: b"GET / HTTP/1.1\r\nHost: a\r\n: b\r\n\r\n" => InvalidHeaderName;
        parse_name_non_ascii: b"GET / HTTP/1.1\r\nHost: a\r\nX-\xc3\xa9: b\r\n\r\n" => InvalidHeaderName;
        parse_line_without_colon: b"GET / HTTP/1.1\r\nHost: a\r\nX-A\r\n\r\n" => InvalidHeaderName;
        // RFC 9112 §2.2: line endings.
        parse_bare_lf: b"GET / HTTP/1.1\nHost: a\n\n" => BareLineFeed;
        parse_bare_lf_in_field: b"GET / HTTP/1.1\r\nHost: a\nX-A: b\r\n\r\n" => BareLineFeed;
        parse_bare_lf_at_end: b"GET / HTTP/1.1\r\nHost: a\r\n\n" => BareLineFeed;
        parse_bare_lf_leading_line: b"\nGET / HTTP/1.1\r\nHost: a\r\n\r\n" => BareLineFeed;
        parse_bare_cr_after_request_line: b"GET / HTTP/1.1\rHost: a\r\n\r\n" => MalformedHead;
        // RFC 9112 §3: the request-line.
        parse_target_space: b"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n" => InvalidRequestTarget;
        parse_target_tab: b"GET /a\tb HTTP/1.1\r\nHost: a\r\n\r\n" => InvalidRequestTarget;
        parse_target_control: b"GET /a\x01 HTTP/1.1\r\nHost: a\r\n\r\n" => InvalidRequestTarget;
        parse_target_del: b"GET /a\x7f HTTP/1.1\r\nHost: a\r\n\r\n" => InvalidRequestTarget;
        parse_target_non_ascii: b"GET /caf\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n" => InvalidRequestTarget;
        parse_target_fragment: b"GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n" => InvalidRequestTarget;
        parse_target_double_space: b"GET  / HTTP/1.1\r\nHost: a\r\n\r\n" => InvalidRequestTarget;
        parse_asterisk_needs_options: b"GET * HTTP/1.1\r\nHost: a\r\n\r\n" => InvalidRequestTarget;
        parse_authority_needs_connect: b"GET example.com:80 HTTP/1.1\r\nHost: a\r\n\r\n" => InvalidRequestTarget;
        parse_connect_needs_authority: b"CONNECT / HTTP/1.1\r\nHost: a\r\n\r\n" => InvalidRequestTarget;
        parse_connect_needs_port: b"CONNECT example.com HTTP/1.1\r\nHost: a\r\n\r\n" => InvalidRequestTarget;
        parse_absolute_form_userinfo: b"GET http://user@example.com/ HTTP/1.1\r\nHost: a\r\n\r\n" => InvalidRequestTarget;
        parse_relative_target: b"GET index.html HTTP/1.1\r\nHost: a\r\n\r\n" => InvalidRequestTarget;
        parse_http09_request: b"GET /\r\n\r\n" => InvalidRequestTarget;
        parse_method_separator: b"GE(T / HTTP/1.1\r\nHost: a\r\n\r\n" => InvalidMethod;
        parse_method_leading_space: b" GET / HTTP/1.1\r\nHost: a\r\n\r\n" => InvalidMethod;
        parse_version_2: b"GET / HTTP/2.0\r\nHost: a\r\n\r\n" => UnsupportedVersion;
        parse_version_1_2: b"GET / HTTP/1.2\r\nHost: a\r\n\r\n" => UnsupportedVersion;
        parse_version_0_9: b"GET / HTTP/0.9\r\n\r\n" => UnsupportedVersion;
        parse_version_lowercase: b"GET / http/1.1\r\nHost: a\r\n\r\n" => MalformedHead;
        parse_version_garbage: b"GET / HTTX/1.1\r\nHost: a\r\n\r\n" => MalformedHead;
        parse_version_two_digits: b"GET / HTTP/11.0\r\nHost: a\r\n\r\n" => MalformedHead;
        parse_version_trailing_space: b"GET / HTTP/1.1 \r\nHost: a\r\n\r\n" => MalformedHead;
        // RFC 9112 §3.2: Host.
        parse_missing_host: b"GET / HTTP/1.1\r\nX-A: b\r\n\r\n" => MissingHost;
        parse_missing_host_absolute_form: b"GET http://a/ HTTP/1.1\r\n\r\n" => MissingHost;
        parse_duplicate_host: b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n" => DuplicateHost;
        parse_duplicate_host_http10: b"GET / HTTP/1.0\r\nHost: a\r\nHost: b\r\n\r\n" => DuplicateHost;
        parse_host_with_space: b"GET / HTTP/1.1\r\nHost: a b\r\n\r\n" => InvalidHost;
        parse_host_with_path: b"GET / HTTP/1.1\r\nHost: a/b\r\n\r\n" => InvalidHost;
        parse_host_with_userinfo: b"GET / HTTP/1.1\r\nHost: u@a\r\n\r\n" => InvalidHost;
    }

    #[test]
    fn httparse_accepts_bare_lf() {
        // The reason `has_bare_lf` exists: httparse alone takes this.
        let mut headers = [httparse::EMPTY_HEADER; 4];
        let mut req = httparse::Request::new(&mut headers);
        let status = req.parse(b"GET / HTTP/1.1\nHost: a\n\n").unwrap();
        assert!(status.is_complete());
    }

    #[test]
    fn parse_pipelined_requests() {
        let buf = b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\nPOST /2 HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhiGET /3 HTTP/1.1\r\nHost: a\r\n\r\n";
        let first = complete(buf);
        assert_eq!(first.uri(), "/1");
        let rest = &buf[first.head_len..];
        let second = complete(rest);
        assert_eq!((second.path(), second.body), ("/2", BodyKind::Length(2)));
        let rest = &rest[second.head_len + 2..];
        let third = complete(rest);
        assert_eq!((third.path(), third.head_len), ("/3", rest.len()));
    }

    #[test]
    fn parse_split_leaves_body_in_buffer() {
        let mut buf =
            BytesMut::from(&b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi"[..]);
        let head = parse_request_split(&mut buf, &Limits::default()).unwrap();
        assert!(head.is_complete());
        assert_eq!(&buf[..], b"hi");
        let mut partial = BytesMut::from(&b"GET / HTTP/1.1\r\nHo"[..]);
        assert_eq!(
            parse_request_split(&mut partial, &Limits::default()),
            Ok(Status::Partial)
        );
        assert_eq!(&partial[..], b"GET / HTTP/1.1\r\nHo");
    }

    /// Small limits so that the tests stay readable.
    const SMALL: Limits = Limits {
        max_request_line: 32,
        max_head: 64,
        max_headers: 2,
    };

    #[test]
    fn parse_limits_table() {
        let table: &[(&[u8], Result<bool, ParseError>)] = &[
            // Request-lines of 32 bytes, at the limit, and of 33.
            (
                b"GET /234567890123456789 HTTP/1.1\r\nHost: a\r\n\r\n",
                Ok(true),
            ),
            (
                b"GET /2345678901234567890 HTTP/1.1\r\nHost: a\r\n\r\n",
                Err(UriTooLong),
            ),
            (b"GET /2345678901234567890 HTTP/1.1\r\nHo", Err(UriTooLong)),
            (b"GET /23456789012345678901234567890", Err(UriTooLong)),
            (b"GET /2345678901234567890123456789", Err(UriTooLong)),
            (b"GET /234567890123456789012345678", Ok(false)),
            (b"GET /234567890123456789 HTTP/1.1\r", Ok(false)),
            (b"GETGETGETGETGETGETGETGETGETGETGET", Err(InvalidMethod)),
            // Two field lines at most.
            (b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n\r\n", Ok(true)),
            (
                b"GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\nX-B: c\r\n\r\n",
                Err(TooManyHeaders),
            ),
            // Heads of 64 bytes, at the limit, and of 65.
            (
                b"GET / HTTP/1.1\r\nHost: a\r\nX-A: 345678901234567890123456789012\r\n\r\n",
                Ok(true),
            ),
            (
                b"GET / HTTP/1.1\r\nHost: a\r\nX-A: 3456789012345678901234567890123\r\n\r\n",
                Err(HeadTooLarge),
            ),
            (
                b"GET / HTTP/1.1\r\nHost: a\r\nX-A: 3456789012345678901234567890123456",
                Ok(false),
            ),
            (
                b"GET / HTTP/1.1\r\nHost: a\r\nX-A: 34567890123456789012345678901234567",
                Err(HeadTooLarge),
            ),
        ];
        for (buf, expected) in table {
            let got = parse_with(buf, &SMALL).map(|s| s.is_complete());
            assert_eq!(got, *expected, "{:?}", String::from_utf8_lossy(buf));
        }
    }

    #[test]
    fn parse_default_header_count() {
        let mut buf = b"GET / HTTP/1.1\r\nHost: a\r\n".to_vec();
        for i in 1..MAX_HEADERS {
            buf.extend_from_slice(format!("X-{i}: v\r\n").as_bytes());
        }
        buf.extend_from_slice(b"\r\n");
        assert_eq!(complete(&buf).headers().len(), MAX_HEADERS);
        let mut over = buf[..buf.len() - 2].to_vec();
        over.extend_from_slice(b"X-Last: v\r\n\r\n");
        assert_eq!(parse(&over), Err(TooManyHeaders));
    }

    #[test]
    fn parse_default_limits() {
        let mut line = b"GET /".to_vec();
        line.resize(8 * 1024 + 1, b'a');
        assert_eq!(parse(&line), Err(UriTooLong));
        let mut head = b"GET / HTTP/1.1\r\nHost: a\r\nX-A: ".to_vec();
        head.resize(16 * 1024 + 1, b'a');
        assert_eq!(parse(&head), Err(HeadTooLarge));
    }

    #[test]
    fn parse_partial_version_rejected_early() {
        assert_eq!(parse(b"GET / HTTP/2"), Err(UnsupportedVersion));
        assert_eq!(parse(b"GET / HTTP/1.1"), Ok(Status::Partial));
    }

    #[test]
    fn valid_value_is_header_values_rule() {
        for b in 0..=255u8 {
            let value = [b'a', b, b'z'];
            assert_eq!(
                valid_value(&value),
                HeaderValue::from_bytes(&value).is_ok(),
                "{b:#04x}"
            );
        }
    }

    #[test]
    fn has_bare_lf_agrees_with_a_byte_by_byte_scan() {
        let reference = |head: &[u8]| {
            head.iter()
                .enumerate()
                .any(|(i, &b)| b == b'\n' && (i == 0 || head[i - 1] != b'\r'))
        };
        for len in 1..=200 {
            for lf in 0..len {
                for cr_before in [false, true] {
                    let mut head = vec![b'a'; len];
                    head[lf] = b'\n';
                    if cr_before && lf > 0 {
                        head[lf - 1] = b'\r';
                    }
                    assert_eq!(
                        has_bare_lf(&head),
                        reference(&head),
                        "{len} {lf} {cr_before}"
                    );
                }
            }
        }
        assert!(!has_bare_lf(b""));
    }
}
