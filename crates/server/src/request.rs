//! Requests as handlers see them, and their streaming bodies.

use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use gyre_http::{BodyDecoder, BodyKind, HeadBox};
use http::{HeaderMap, Method, StatusCode, Uri, Version};

use crate::io::{ConnIo, ReadError};
use crate::response::{IntoResponse, Response};

/// An HTTP request: the parsed head, the route's parameters, and the body.
#[derive(Debug)]
pub struct Request {
    /// Boxed, so that moving a request (into the handler and its future) copies a pointer.
    pub(crate) head: HeadBox,
    /// Path parameters of the matched route, in order.
    pub(crate) params: Vec<(Box<str>, String)>,
    /// The route pattern that matched (`/users/:id`), if any.
    pub(crate) route: &'static str,
    /// The body (empty when the request has none).
    pub body: Body,
    /// The peer's address.
    pub(crate) peer: Option<std::net::SocketAddr>,
    /// The server's state on this loop: its shutdown signal, and the
    /// application state (reached through it, so that a request costs no
    /// atomic reference count of its own).
    pub(crate) local: Option<Rc<crate::server::LocalServer>>,
}

impl Request {
    /// The method.
    pub fn method(&self) -> &Method {
        &self.head.method
    }

    /// The request target.
    pub fn uri(&self) -> &Uri {
        self.head.uri()
    }

    /// The path of the target (without the query).
    pub fn path(&self) -> &str {
        self.head.path()
    }

    /// The query string, if any.
    pub fn query(&self) -> Option<&str> {
        self.head.query()
    }

    /// The value of query parameter `name` (first occurrence, percent-decoded, `+` as space).
    pub fn query_param(&self, name: &str) -> Option<String> {
        let q = self.query()?;
        q.split('&').find_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (k == name).then(|| {
                let v = v.replace('+', " ");
                percent_encoding::percent_decode_str(&v)
                    .decode_utf8_lossy()
                    .into_owned()
            })
        })
    }

    /// The HTTP version.
    pub fn version(&self) -> Version {
        self.head.version
    }

    /// The header fields.
    pub fn headers(&self) -> &HeaderMap {
        self.head.headers()
    }

    /// The value of the first field named `name`, without building the
    /// header map (cheaper when a handler needs one or two fields).
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.head.header(name)
    }

    /// A path parameter of the route (`:id` → `param("id")`), percent-decoded.
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| &**n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The route pattern that matched.
    pub fn route(&self) -> &str {
        self.route
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> Option<std::net::SocketAddr> {
        self.peer
    }

    /// Whether the server's graceful shutdown has begun.
    pub fn shutting_down(&self) -> bool {
        self.local.as_ref().is_some_and(|l| l.shutting_down())
    }

    /// Completes when the server's graceful shutdown begins. A handler that
    /// waits long (a long poll) races its wait with this and answers at
    /// once, so that shutdown need not wait for it.
    pub async fn shutdown_signal(&self) {
        match &self.local {
            Some(l) => l.shutdown_signal().await,
            None => std::future::pending().await,
        }
    }

    /// The application state of type `T` registered with
    /// [`Server::state`](crate::Server::state).
    ///
    /// Panics if none of that type was registered (a programming error).
    pub fn state<T: Send + Sync + 'static>(&self) -> Arc<T> {
        self.local
            .as_ref()
            .and_then(|l| l.state.clone())
            .and_then(|s| s.downcast::<T>().ok())
            .unwrap_or_else(|| panic!("no state of type {}", std::any::type_name::<T>()))
    }
}

/// Why a request body could not be read. Maps to the right status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyError {
    /// Larger than the server's body limit: 413.
    TooLarge,
    /// Too slow, or stalled: 408.
    TimedOut,
    /// Bad framing (chunk sizes and the like): 400.
    Malformed,
    /// The client closed the connection mid-body.
    Closed,
}

impl BodyError {
    /// The status that answers this error.
    pub fn status(self) -> StatusCode {
        match self {
            BodyError::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            BodyError::TimedOut => StatusCode::REQUEST_TIMEOUT,
            BodyError::Malformed | BodyError::Closed => StatusCode::BAD_REQUEST,
        }
    }
}

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            BodyError::TooLarge => "request body too large",
            BodyError::TimedOut => "request body timed out",
            BodyError::Malformed => "malformed request body",
            BodyError::Closed => "connection closed during the request body",
        })
    }
}

impl std::error::Error for BodyError {}

impl IntoResponse for BodyError {
    fn into_response(self) -> Response {
        self.status().into_response()
    }
}

/// A request body, read as it arrives.
#[derive(Debug)]
pub struct Body {
    /// Boxed: most requests have no body, and a small `Request` is cheaper to move.
    inner: Option<Box<BodyState>>,
}

#[derive(Debug)]
struct BodyState {
    io: Rc<ConnIo>,
    decoder: BodyDecoder,
    /// Bytes of body data delivered so far.
    read: u64,
    /// Most bytes of body data allowed.
    limit: u64,
    /// The first error, repeated to later reads.
    failed: Option<BodyError>,
    /// Deadline settings.
    idle_timeout: Duration,
    min_rate: u64,
    grace: Duration,
    /// When reading began (runtime clock), for the minimum rate.
    started: Option<std::time::Instant>,
}

impl Body {
    /// A body with no bytes.
    pub fn empty() -> Body {
        Body { inner: None }
    }

    pub(crate) fn new(
        io: Rc<ConnIo>,
        kind: BodyKind,
        expect: bool,
        config: &crate::Config,
    ) -> Body {
        if matches!(kind, BodyKind::Empty) {
            io.body_end.set(crate::io::BodyEnd::Finished);
            return Body::empty();
        }
        io.body_end.set(crate::io::BodyEnd::Unread);
        io.continue_owed.set(expect);
        Body {
            inner: Some(Box::new(BodyState {
                io,
                decoder: BodyDecoder::new(kind),
                read: 0,
                limit: config.max_body,
                failed: None,
                idle_timeout: config.body_timeout,
                min_rate: config.min_body_rate,
                grace: config.min_rate_grace,
                started: None,
            })),
        }
    }

    /// Whether all of the body has been read (or there is none).
    pub fn is_finished(&self) -> bool {
        self.inner.as_ref().is_none_or(|s| s.decoder.is_finished())
    }

    /// Bytes of a Content-Length body not read yet (the declared length
    /// before the first read); `None` for a chunked body or none.
    pub fn content_length(&self) -> Option<u64> {
        match &self.inner.as_ref()?.decoder {
            BodyDecoder::Length(l) => Some(l.remaining()),
            BodyDecoder::Chunked(_) => None,
        }
    }

    /// The next piece of the body, or `None` at its end.
    pub async fn chunk(&mut self) -> Result<Option<Bytes>, BodyError> {
        let Some(s) = self.inner.as_mut() else {
            return Ok(None);
        };
        if let Some(e) = s.failed {
            return Err(e);
        }
        let result = s.next().await;
        if let Err(e) = result {
            s.failed = Some(e);
        }
        result
    }

    /// The whole body, up to the server's body limit (else [`BodyError::TooLarge`]).
    pub async fn collect(&mut self) -> Result<Bytes, BodyError> {
        let mut all = BytesMut::new();
        while let Some(chunk) = self.chunk().await? {
            all.extend_from_slice(&chunk);
        }
        Ok(all.freeze())
    }
}

impl Drop for Body {
    fn drop(&mut self) {
        use crate::io::BodyEnd;
        use crate::metrics::Reason;
        let Some(s) = &self.inner else { return };
        let end = match s.failed {
            Some(BodyError::TooLarge) => BodyEnd::Failed(Reason::BodyTooLarge),
            Some(BodyError::TimedOut) => BodyEnd::Failed(Reason::BodyTimeout),
            Some(BodyError::Malformed) => BodyEnd::Failed(Reason::BadRequest),
            Some(BodyError::Closed) => BodyEnd::Unread,
            None if s.decoder.is_finished() => BodyEnd::Finished,
            None => BodyEnd::Unread,
        };
        s.io.body_end.set(end);
    }
}

impl BodyState {
    async fn next(&mut self) -> Result<Option<Bytes>, BodyError> {
        if self.decoder.is_finished() {
            return Ok(None);
        }
        if self.io.continue_owed.get() {
            self.io.continue_owed.set(false);
            if let BodyDecoder::Length(l) = &self.decoder {
                if l.remaining() > self.limit {
                    return Err(BodyError::TooLarge);
                }
            }
            gyre_http::encode_continue(&mut self.io.wbuf());
            self.io.flush().await.map_err(|_| BodyError::Closed)?;
        }
        let started = *self.started.get_or_insert_with(std::time::Instant::now);
        loop {
            {
                let mut rbuf = self.io.rbuf.borrow_mut();
                if !rbuf.is_empty() {
                    let decoded = self
                        .decoder
                        .decode(rbuf.bytes())
                        .map_err(|_| BodyError::Malformed)?;
                    let data = decoded
                        .data
                        .map(|r| Bytes::copy_from_slice(&rbuf.bytes()[r]));
                    rbuf.consume(decoded.consumed);
                    if let Some(data) = data {
                        self.read += data.len() as u64;
                        if self.read > self.limit {
                            return Err(BodyError::TooLarge);
                        }
                        return Ok(Some(data));
                    }
                    if decoded.finished {
                        return Ok(None);
                    }
                }
            }
            // Need more bytes: flush pending responses first, then wait,
            // bounded by the idle timeout and the minimum data rate.
            self.io.flush().await.map_err(|_| BodyError::Closed)?;
            let rate_deadline = self.grace
                + Duration::from_secs_f64(self.read as f64 / self.min_rate.max(1) as f64);
            let left = rate_deadline.saturating_sub(started.elapsed());
            let wait = if self.min_rate == 0 {
                self.idle_timeout
            } else {
                self.idle_timeout.min(left)
            };
            match self.io.read_more(wait, None).await {
                Ok(_) => {}
                Err(ReadError::TimedOut) => return Err(BodyError::TimedOut),
                // The decoder always takes what it can; a full buffer it cannot
                // use is an over-long chunk line or trailer section.
                Err(ReadError::Full) => return Err(BodyError::Malformed),
                Err(_) => return Err(BodyError::Closed),
            }
        }
    }
}
