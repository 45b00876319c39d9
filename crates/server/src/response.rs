//! Responses, their bodies, and `IntoResponse` for what handlers return.

use std::cell::RefCell;
use std::collections::VecDeque;
use std::future::{poll_fn, Future};
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Poll, Waker};

use bytes::Bytes;
use http::header::HeaderValue;
use http::StatusCode;

pub use crate::response_headers::Headers;

/// An HTTP response: status, fields and body. Framing fields (Content-Length,
/// Transfer-Encoding) are written by the server from the body.
#[derive(Debug)]
pub struct Response {
    /// The status code.
    pub status: StatusCode,
    /// Header fields.
    pub headers: Headers,
    /// The Content-Type, kept apart from `headers` so that the common
    /// response needs no header map (a field in `headers` wins over it).
    pub content_type: Option<HeaderValue>,
    /// The body.
    pub body: ResponseBody,
}

/// A response body.
#[derive(Debug, Default)]
pub enum ResponseBody {
    /// No body.
    #[default]
    Empty,
    /// A body known in full; sent with Content-Length.
    Full(Bytes),
    /// A body produced while it is sent, with chunked transfer-coding. The
    /// producer waits while the client reads slowly (backpressure).
    Stream(BodyReceiver),
    /// No body: after this (101) response the connection is handed to the
    /// function, which speaks the new protocol on it.
    Upgrade(OnUpgrade),
    /// `len` bytes of a file from `offset`, sent with `sendfile` (zero copy):
    /// on the loop for pages in the page cache, else from the blocking pool,
    /// so that a cold disk never stalls a loop.
    File {
        /// The open file, shared: `sendfile` reads at an offset of its own
        /// and leaves the file position alone, so one descriptor can serve
        /// many downloads at once (see the open-file cache of `files`).
        file: std::sync::Arc<std::fs::File>,
        /// Where the bytes to send begin.
        offset: u64,
        /// How many bytes to send (the Content-Length).
        len: u64,
    },
}

/// The protocol function of an upgrade, boxed.
type UpgradeFn = Box<dyn FnOnce(crate::Upgraded) -> Pin<Box<dyn Future<Output = ()>>>>;

/// What runs on a connection after a `101 Switching Protocols` response.
pub struct OnUpgrade(pub(crate) UpgradeFn);

impl std::fmt::Debug for OnUpgrade {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("OnUpgrade")
    }
}

impl Response {
    /// A response with this status and no body.
    pub fn new(status: StatusCode) -> Self {
        Response {
            status,
            headers: Headers::new(),
            content_type: None,
            body: ResponseBody::Empty,
        }
    }

    /// A 200 response with a full body and a content type.
    ///
    /// Inlined, so that the check of a literal `content_type` (a loop over
    /// its bytes in `HeaderValue::from_static`) is done by the compiler.
    #[inline]
    pub fn with_body(content_type: &'static str, body: impl Into<Bytes>) -> Self {
        Response {
            status: StatusCode::OK,
            headers: Headers::new(),
            content_type: Some(HeaderValue::from_static(content_type)),
            body: ResponseBody::Full(body.into()),
        }
    }

    /// A 200 streaming response and the sender that feeds it. At most
    /// `capacity` chunks wait unsent; `send` waits when that many do.
    pub fn stream(content_type: &'static str, capacity: usize) -> (Self, BodySender) {
        let (tx, rx) = body_channel(capacity);
        let mut r = Response::new(StatusCode::OK);
        r.content_type = Some(HeaderValue::from_static(content_type));
        r.body = ResponseBody::Stream(rx);
        (r, tx)
    }

    /// A `101 Switching Protocols` response to `protocol` (the `Upgrade`
    /// field); once it is written, `on_upgrade` gets the connection.
    pub fn upgrade<F, Fut>(protocol: &str, on_upgrade: F) -> Self
    where
        F: FnOnce(crate::Upgraded) -> Fut + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        let mut r = Response::new(StatusCode::SWITCHING_PROTOCOLS)
            .header(http::header::CONNECTION, "upgrade")
            .header(http::header::UPGRADE, protocol);
        r.body = ResponseBody::Upgrade(OnUpgrade(Box::new(move |u| Box::pin(on_upgrade(u)))));
        r
    }

    /// Like [`stream`](Self::stream), for a body whose length is known in
    /// advance: it is sent with Content-Length instead of chunked. If the
    /// producer ends short of `length`, the connection is closed (the client
    /// sees a truncated body rather than a wrong one).
    pub fn stream_with_length(
        content_type: &'static str,
        length: u64,
        capacity: usize,
    ) -> (Self, BodySender) {
        let (r, tx) = Response::stream(content_type, capacity);
        if let ResponseBody::Stream(rx) = &r.body {
            rx.chan.borrow_mut().length = Some(length);
        }
        (r, tx)
    }

    /// Makes a streaming body end (cleanly, with its last chunk) when the
    /// server's graceful shutdown begins: for endless streams such as
    /// Server-Sent Events. Other bodies are unchanged.
    pub fn end_on_shutdown(self) -> Self {
        if let ResponseBody::Stream(rx) = &self.body {
            rx.chan.borrow_mut().end_on_shutdown = true;
        }
        self
    }

    /// Sets the status.
    pub fn status(mut self, status: StatusCode) -> Self {
        self.status = status;
        self
    }

    /// Adds a header field. Panics on an invalid value (a programming error).
    pub fn header(mut self, name: http::header::HeaderName, value: &str) -> Self {
        let value = HeaderValue::from_str(value).expect("invalid header value");
        self.headers.append(name, value);
        self
    }
}

/// Turns what a handler returns into a response.
pub trait IntoResponse {
    /// Makes the response.
    fn into_response(self) -> Response;
}

impl IntoResponse for Response {
    fn into_response(self) -> Response {
        self
    }
}

impl IntoResponse for StatusCode {
    fn into_response(self) -> Response {
        let reason = self.canonical_reason().unwrap_or("");
        let mut r = Response::with_body("text/plain; charset=utf-8", format!("{reason}\n"));
        r.status = self;
        r
    }
}

impl IntoResponse for &'static str {
    fn into_response(self) -> Response {
        Response::with_body("text/plain; charset=utf-8", self)
    }
}

impl IntoResponse for String {
    fn into_response(self) -> Response {
        Response::with_body("text/plain; charset=utf-8", self)
    }
}

impl IntoResponse for Bytes {
    fn into_response(self) -> Response {
        Response::with_body("application/octet-stream", self)
    }
}

impl IntoResponse for Vec<u8> {
    fn into_response(self) -> Response {
        Bytes::from(self).into_response()
    }
}

impl IntoResponse for () {
    fn into_response(self) -> Response {
        Response::new(StatusCode::NO_CONTENT)
    }
}

impl<T: IntoResponse> IntoResponse for (StatusCode, T) {
    fn into_response(self) -> Response {
        let mut r = self.1.into_response();
        r.status = self.0;
        r
    }
}

impl<T: IntoResponse, E: IntoResponse> IntoResponse for Result<T, E> {
    fn into_response(self) -> Response {
        match self {
            Ok(v) => v.into_response(),
            Err(e) => e.into_response(),
        }
    }
}

/// A JSON body (`application/json`), serialised with serde.
#[derive(Debug, Clone)]
pub struct Json<T>(pub T);

impl<T: serde::Serialize> IntoResponse for Json<T> {
    fn into_response(self) -> Response {
        match serde_json::to_vec(&self.0) {
            Ok(v) => Response::with_body("application/json", v),
            Err(e) => {
                tracing::error!("cannot serialise a JSON response: {e}");
                StatusCode::INTERNAL_SERVER_ERROR.into_response()
            }
        }
    }
}

/// The producing end of a streaming body (single-threaded: it lives on the
/// connection's loop). Dropping it ends the body.
#[derive(Debug)]
pub struct BodySender {
    chan: Rc<RefCell<Chan>>,
}

/// The consuming end of a streaming body; the server holds it.
#[derive(Debug)]
pub struct BodyReceiver {
    chan: Rc<RefCell<Chan>>,
}

#[derive(Debug)]
struct Chan {
    /// Chunks produced and not yet taken. INVARIANT: `len() <= capacity`.
    queue: VecDeque<Bytes>,
    capacity: usize,
    /// The sender was dropped.
    closed: bool,
    /// The receiver was dropped (the client went away).
    gone: bool,
    /// The body's length when known in advance (sent with Content-Length).
    length: Option<u64>,
    /// The body ends when the server's graceful shutdown begins.
    end_on_shutdown: bool,
    /// Who waits for room (the sender) or for data (the receiver).
    sender: Option<Waker>,
    receiver: Option<Waker>,
}

fn body_channel(capacity: usize) -> (BodySender, BodyReceiver) {
    let chan = Rc::new(RefCell::new(Chan {
        queue: VecDeque::with_capacity(capacity.max(1)),
        capacity: capacity.max(1),
        closed: false,
        gone: false,
        length: None,
        end_on_shutdown: false,
        sender: None,
        receiver: None,
    }));
    (BodySender { chan: chan.clone() }, BodyReceiver { chan })
}

/// The client is gone: the streamed chunk could not be delivered.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ClientGone;

impl BodySender {
    /// Queues a chunk, waiting while the queue is full. Empty chunks are skipped.
    pub async fn send(&self, chunk: impl Into<Bytes>) -> Result<(), ClientGone> {
        let chunk = chunk.into();
        if chunk.is_empty() {
            return Ok(());
        }
        let mut chunk = Some(chunk);
        poll_fn(|cx| {
            let mut c = self.chan.borrow_mut();
            if c.gone {
                return Poll::Ready(Err(ClientGone));
            }
            if c.queue.len() >= c.capacity {
                c.sender = Some(cx.waker().clone());
                return Poll::Pending;
            }
            c.queue.extend(chunk.take());
            if let Some(w) = c.receiver.take() {
                w.wake();
            }
            Poll::Ready(Ok(()))
        })
        .await
    }
}

impl Drop for BodySender {
    fn drop(&mut self) {
        let mut c = self.chan.borrow_mut();
        c.closed = true;
        if let Some(w) = c.receiver.take() {
            w.wake();
        }
    }
}

impl BodyReceiver {
    /// The body's length, when it was given in advance.
    pub fn length(&self) -> Option<u64> {
        self.chan.borrow().length
    }

    /// Whether the body ends when the server shuts down.
    pub fn ends_on_shutdown(&self) -> bool {
        self.chan.borrow().end_on_shutdown
    }

    /// The next chunk, or `None` when the sender is done.
    pub async fn next(&mut self) -> Option<Bytes> {
        poll_fn(|cx| {
            let mut c = self.chan.borrow_mut();
            if let Some(b) = c.queue.pop_front() {
                if let Some(w) = c.sender.take() {
                    w.wake();
                }
                return Poll::Ready(Some(b));
            }
            if c.closed {
                return Poll::Ready(None);
            }
            c.receiver = Some(cx.waker().clone());
            Poll::Pending
        })
        .await
    }
}

impl Drop for BodyReceiver {
    fn drop(&mut self) {
        let mut c = self.chan.borrow_mut();
        c.gone = true;
        if let Some(w) = c.sender.take() {
            w.wake();
        }
    }
}
