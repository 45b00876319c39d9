//! Sans-IO HTTP/1.1 server codec: request heads and bodies in, response bytes out.
//!
//! The crate never reads or writes a socket and depends on no runtime:
//! callers hand it the bytes they have and get back a parsed value,
//! [`Status::Partial`] when more input is needed, or a [`ParseError`] that
//! names the status to answer with before closing. It is strict where
//! RFC 9112 leaves a choice, because two parsers that read one message
//! differently are how requests get smuggled past a proxy.
//!
//! The hot path allocates only what `http`'s types need: the head is
//! shared between the URI and header values without copying each, and
//! the response head is written byte by byte, never through `format!`.
//!
//! Where RFC 9112 lets a server choose, this crate refuses:
//!
//! - a bare LF line ending in the head (§2.2), which httparse would accept;
//! - Content-Length together with Transfer-Encoding (§6.1), and any
//!   Transfer-Encoding in HTTP/1.0;
//! - Content-Length values that differ (identical repeats collapse, §6.3);
//! - transfer codings other than a single, final `chunked` (501 for
//!   unknown ones, §6.1);
//! - obsolete line folding (§5.2), and a missing or repeated Host (§3.2).
//!
//! # Layout
//!
//! - [`limits`]: [`Limits`] on request-line, head and header count.
//! - [`error`]: [`ParseError`], a `Copy` enum with a reason and a status.
//! - [`parse`]: [`parse_request`] and [`parse_request_split`] turn a head
//!   into a [`RequestHead`]; `framing` and `target` hold their rules.
//! - [`HeadBox`]: the box a head comes in, reused by its thread once dropped.
//! - [`body`]: [`BodyKind`], [`LengthDecoder`] and [`BodyDecoder`].
//! - [`chunked`]: [`ChunkedDecoder`], resumable at any byte.
//! - [`encode`]: [`encode_head`], [`encode_chunk`] and friends.
//! - [`date`]: [`with_date`], the per-thread `date` cache.
//!
//! # Examples
//!
//! ```
//! use bytes::BytesMut;
//! use gyre_http::{BodyDecoder, BodyLength, Framing, Limits, Status};
//! use http::{HeaderMap, StatusCode};
//!
//! let input = b"POST /echo HTTP/1.1\r\nHost: example.com\r\nContent-Length: 5\r\n\r\nhello";
//! let Status::Complete(head) = gyre_http::parse_request(input, &Limits::default())? else {
//!     unreachable!("the head is complete");
//! };
//! assert_eq!(head.path(), "/echo");
//!
//! let mut body = BodyDecoder::new(head.body);
//! let rest = &input[head.head_len..];
//! let step = body.decode(rest)?;
//! let data = &rest[step.data.unwrap()];
//! assert!(step.finished);
//!
//! let mut out = BytesMut::new();
//! let sent = gyre_http::with_date(|date| {
//!     gyre_http::encode_head(
//!         &mut out,
//!         StatusCode::OK,
//!         head.version,
//!         &HeaderMap::new(),
//!         BodyLength::Known(data.len() as u64),
//!         head.keep_alive,
//!         date,
//!     )
//! });
//! out.extend_from_slice(data);
//! assert_eq!(sent.framing, Framing::Length(5));
//! assert!(out.starts_with(b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\ndate: "));
//! assert!(out.ends_with(b" GMT\r\n\r\nhello"));
//! # Ok::<(), gyre_http::ParseError>(())
//! ```

#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod body;
mod charset;
pub mod chunked;
pub mod date;
pub mod encode;
pub mod error;
mod framing;
mod head_box;
pub mod limits;
pub mod parse;
mod target;

pub use body::{BodyDecoder, BodyKind, Decoded, LengthDecoder};
pub use chunked::ChunkedDecoder;
pub use date::{with_date, with_date_for_turn};
pub use encode::{
    encode_chunk, encode_continue, encode_head, encode_head_typed, encode_last_chunk, BodyLength,
    EncodedHead, Framing,
};
pub use error::ParseError;
pub use head_box::HeadBox;
pub use limits::Limits;
pub use parse::{parse_request, parse_request_split, RequestHead, Status};
