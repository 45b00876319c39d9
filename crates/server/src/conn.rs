//! One connection: read → parse → route → handler → encode → write, with
//! keep-alive, pipelining, timeouts and limits.
//!
//! Pipelined requests already in the read buffer are all answered before the
//! connection writes: their responses go out in one write. The handler's
//! future is polled inline on the connection task; nothing is spawned per
//! request.

use std::future::Future;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::task::Poll;
use std::time::Instant;

use gyre_http::{
    encode_head_typed, encode_last_chunk, BodyLength, Framing, ParseError, RequestHead, Status,
};
use gyre_rt::{set_label, yield_now};
use http::header::{HeaderValue, ALLOW};
use http::{Method, StatusCode, Version};

use crate::io::{BodyEnd, ConnIo, ReadError};
use crate::metrics::{LoopMetrics, Reason};
use crate::request::{Body, Request};
use crate::response::{IntoResponse, Response, ResponseBody};
use crate::router::RouteError;
use crate::server::{LocalServer, ServerShared};

/// Responses buffered before the connection writes even if more pipelined
/// requests are waiting.
const FLUSH_AT: usize = 64 * 1024;
/// Full bodies up to this size are copied into the write buffer (one write
/// with the head); larger ones are written on their own.
const COPY_BODY_MAX: usize = 16 * 1024;
/// Requests answered in a row before the connection yields to its loop's other tasks.
const REQUEST_BUDGET: u32 = 64;

/// Serves one accepted connection until it closes. The connection's state
/// is built before the future, so the future holds it once (not also the
/// arguments it was made from): idle connections stay small.
pub(crate) fn serve(
    stream: gyre_rt::net::TcpStream,
    peer: std::net::SocketAddr,
    shared: std::sync::Arc<ServerShared>,
    local: Rc<LocalServer>,
) -> impl Future<Output = ()> {
    let loop_index = shared.metrics.local_index() as u32;
    let io = Rc::new(ConnIo::new(stream, shared.io_settings.clone()));
    let conn = Conn {
        io,
        shared,
        local,
        loop_index,
        peer_ip: peer.ip(),
        peer_port: peer.port(),
        served: std::cell::Cell::new(0),
        head_started: std::cell::Cell::new(None),
    };
    conn.metrics().open.fetch_add(1, Ordering::Relaxed);
    async move {
        if let Some(on_upgrade) = conn.run().await {
            // The new protocol takes buffers when it needs them: an idle
            // upgraded connection holds none. It still counts as open
            // (`conn` goes with it) until it ends.
            conn.io.release_buffers();
            let upgraded = crate::Upgraded::new(conn.io.clone(), conn.local.clone());
            gyre_rt::spawn(async move {
                (on_upgrade.0)(upgraded).await;
                if conn.io.flush().await.is_ok() {
                    Box::pin(linger(&conn.io)).await;
                }
            })
            .detach();
            return;
        }
        if conn.io.flush().await.is_ok() {
            Box::pin(linger(&conn.io)).await;
        }
    }
}

/// A moment in 8 bytes rather than an `Instant`'s 16 (every connection keeps
/// one): nanoseconds since a process-wide base.
#[derive(Clone, Copy)]
struct Since(std::num::NonZeroU64);

impl Since {
    fn base() -> Instant {
        static BASE: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
        *BASE.get_or_init(Instant::now)
    }

    fn now() -> Since {
        let nanos = Self::base().elapsed().as_nanos().min(u64::MAX as u128) as u64;
        Since(std::num::NonZeroU64::MIN.saturating_add(nanos))
    }

    fn instant(self) -> Instant {
        Self::base() + std::time::Duration::from_nanos(self.0.get() - 1)
    }
}

/// Longest a closing connection keeps reading what the client still sends.
const LINGER: std::time::Duration = std::time::Duration::from_secs(2);

/// Lingering close (RFC 9112 §9.6, nginx's `lingering_close`): closing a
/// socket with unread bytes makes the kernel send a reset, which can destroy
/// the end of the response still in flight. So half-close, then read and
/// discard until the client closes too, for at most [`LINGER`].
async fn linger(io: &ConnIo) {
    if io.stream.shutdown(std::net::Shutdown::Write).is_err() {
        return;
    }
    let deadline = Instant::now() + LINGER;
    loop {
        io.rbuf.borrow_mut().discard();
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || io.read_more(left, None).await.is_err() {
            break;
        }
    }
    io.release_buffers();
}

/// What the connection does after looking at its read buffer.
enum Next {
    /// A request is ready to answer.
    Answer,
    /// More bytes are needed.
    Read,
    /// The bytes are not a valid request: answer with an error and close.
    Refuse(ParseError),
}

struct Conn {
    io: Rc<ConnIo>,
    shared: std::sync::Arc<ServerShared>,
    local: Rc<LocalServer>,
    /// The loop whose counters this connection updates.
    loop_index: u32,
    /// The peer's address and port, kept apart: a `SocketAddr` is 32 bytes
    /// (IPv6 flow and scope included), these 20.
    peer_ip: std::net::IpAddr,
    peer_port: u16,
    /// Requests answered on this connection.
    served: std::cell::Cell<u32>,
    /// When the first byte of the head being read arrived.
    head_started: std::cell::Cell<Option<Since>>,
}

/// Counted out on drop, so that a panicking handler (which ends the task
/// without returning) does not leak the connection's slot.
impl Drop for Conn {
    fn drop(&mut self) {
        self.metrics().open.fetch_sub(1, Ordering::Relaxed);
        self.shared.connection_closed();
    }
}

impl Conn {
    fn metrics(&self) -> &LoopMetrics {
        self.shared.metrics.at(self.loop_index as usize)
    }

    /// Serves requests until the connection should close; returns the
    /// protocol to hand the connection to after a `101`, if one was sent.
    async fn run(&self) -> Option<crate::response::OnUpgrade> {
        let mut in_a_row = 0;
        loop {
            // Parsed in a block of its own so that the parse result (a large
            // value) is not kept in this future's state across the awaits
            // below: an idle connection's future stays small.
            let mut answer = None;
            let next = {
                let parsed = {
                    let rbuf = self.io.rbuf.borrow();
                    if rbuf.is_empty() {
                        Ok(Status::Partial)
                    } else {
                        // Made here rather than kept across the awaits below.
                        let limits = self.shared.config.limits();
                        gyre_http::parse_request(rbuf.bytes(), &limits)
                    }
                };
                match parsed {
                    Ok(Status::Complete(head)) => {
                        self.io.rbuf.borrow_mut().consume(head.head_len);
                        self.head_started.set(None);
                        // Boxed: the request's state is large (see above).
                        let exchange = Exchange {
                            io: self.io.clone(),
                            shared: &self.shared,
                            local: &self.local,
                            metrics: self.shared.metrics.at(self.loop_index as usize),
                            peer: std::net::SocketAddr::new(self.peer_ip, self.peer_port),
                        };
                        answer = Some(Box::pin(exchange.answer(head)));
                        Next::Answer
                    }
                    Ok(Status::Partial) => Next::Read,
                    Err(e) => Next::Refuse(e),
                }
            };
            match (next, answer) {
                (Next::Answer, Some(answer)) => {
                    match answer.await {
                        Verdict::Keep => {}
                        Verdict::Close => return None,
                        Verdict::Upgrade(on_upgrade) => return Some(on_upgrade),
                    }
                    self.served.set(self.served.get().saturating_add(1));
                    if self.io.wbuf.borrow().len() >= FLUSH_AT && self.flush().await.is_err() {
                        return None;
                    }
                    in_a_row += 1;
                    if in_a_row == REQUEST_BUDGET {
                        in_a_row = 0;
                        yield_now().await;
                    }
                }
                (Next::Refuse(e), _) => {
                    self.refuse(e);
                    return None;
                }
                _ => {
                    in_a_row = 0;
                    if self.flush().await.is_err() || !self.read_more().await {
                        return None;
                    }
                }
            }
        }
    }

    /// Writes what is buffered; counts a write timeout.
    async fn flush(&self) -> std::io::Result<()> {
        counted(self.metrics(), self.io.flush().await)
    }

    /// Waits for more request bytes within the right deadline. Returns false
    /// when the connection should close (after answering 408/431 if due).
    async fn read_more(&self) -> bool {
        let config = &self.shared.config;
        // A flag, not the count: this future is part of every idle connection.
        let idle = self.io.rbuf.borrow().is_empty();
        let wait = if idle {
            self.io.release_buffers();
            if self.local.shutting_down() {
                return false;
            }
            if self.served.get() == 0 {
                config.header_timeout
            } else {
                config.keep_alive_timeout
            }
        } else {
            let started = self.head_started.get().unwrap_or_else(Since::now);
            self.head_started.set(Some(started));
            let started = started.instant();
            config.header_timeout.saturating_sub(started.elapsed())
        };
        // Idle: also wake up for a graceful shutdown.
        let shutdown = idle.then_some(&*self.local);
        let result = self.io.read_more(wait, shutdown).await;
        match result {
            // The head's clock starts when it is first found incomplete
            // (above), not on every read: most heads arrive whole.
            Ok(_) => true,
            Err(ReadError::TimedOut) if idle && self.served.get() > 0 => {
                self.metrics().refuse(Reason::IdleTimeout);
                false
            }
            Err(ReadError::TimedOut) => {
                self.metrics().refuse(Reason::HeaderTimeout);
                self.error_response(StatusCode::REQUEST_TIMEOUT, "request head timed out");
                false
            }
            Err(ReadError::Full) => {
                self.metrics().refuse(Reason::HeadTooLarge);
                self.error_response(
                    StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                    "request head too large",
                );
                false
            }
            Err(ReadError::Closed | ReadError::Io | ReadError::Shutdown) => false,
        }
    }

    /// Answers a request that cannot be parsed, then the connection closes.
    fn refuse(&self, e: ParseError) {
        let status = e.status_code();
        let reason = match status.as_u16() {
            414 => Reason::UriTooLong,
            431 => Reason::HeadTooLarge,
            501 | 505 => Reason::NotImplemented,
            _ => Reason::BadRequest,
        };
        self.metrics().refuse(reason);
        self.error_response(status, e.reason());
    }

    /// Buffers a short error response with `connection: close`.
    fn error_response(&self, status: StatusCode, reason: &str) {
        self.metrics().response(status.as_u16());
        let body = format!("{reason}\n");
        let mut w = self.io.wbuf();
        gyre_http::with_date_for_turn(gyre_rt::loop_turn(), |date| {
            encode_head_typed(
                &mut w,
                status,
                Version::HTTP_11,
                &http::HeaderMap::new(),
                Some(b"text/plain; charset=utf-8"),
                BodyLength::Known(body.len() as u64),
                false,
                date,
            )
        });
        w.extend_from_slice(body.as_bytes());
    }
}

/// One request's view of its connection.
struct Exchange<'a> {
    io: Rc<ConnIo>,
    shared: &'a ServerShared,
    local: &'a Rc<LocalServer>,
    metrics: &'a LoopMetrics,
    peer: std::net::SocketAddr,
}

impl Exchange<'_> {
    /// Writes what is buffered; counts a write timeout.
    async fn flush(&self) -> std::io::Result<()> {
        counted(self.metrics, self.io.flush().await)
    }

    /// Writes a large body directly; counts a write timeout.
    async fn write_counted(&self, data: &[u8]) -> std::io::Result<()> {
        counted(self.metrics, self.io.write_bounded(data).await)
    }

    /// Routes and answers one request. Returns whether to keep the connection.
    async fn answer(self, head: Box<RequestHead>) -> Verdict {
        let config = &self.shared.config;
        let method = head.method.clone();
        let version = head.version;
        let is_head = method == Method::HEAD;
        let wants_keep_alive = head.keep_alive;
        let path_for_log = config.access_log.then(|| head.uri.to_string());
        let body = Body::new(self.io.clone(), head.body, head.expect_continue, config);
        let response = match self.shared.router.lookup(&method, head.uri.path()) {
            Ok(found) => {
                let route = found.handler;
                let params = found
                    .params
                    .iter()
                    .map(|(name, _)| {
                        let value = found.params.decoded(name).unwrap_or_default().into_owned();
                        (Box::from(name), value)
                    })
                    .collect();
                let request = Request {
                    head,
                    params,
                    route: route.pattern,
                    body,
                    state: self.shared.state.clone(),
                    peer: Some(self.peer),
                    local: Some(self.local.clone()),
                };
                let previous = set_label(route.label);
                let response = route.handler.call(request).await;
                set_label(previous);
                response
            }
            Err(RouteError::NotFound) => {
                drop(body);
                StatusCode::NOT_FOUND.into_response()
            }
            Err(RouteError::MethodNotAllowed { allow }) => {
                drop(body);
                let mut r = StatusCode::METHOD_NOT_ALLOWED.into_response();
                if let Ok(v) = HeaderValue::from_str(&allow) {
                    r.headers.insert(ALLOW, v);
                }
                r
            }
        };
        let body_end = self.io.body_end.get();
        match body_end {
            BodyEnd::Failed(reason) => self.metrics.refuse(reason),
            BodyEnd::Finished | BodyEnd::Unread => {}
        }
        // A streamed response may still be reading the body (an echo): it
        // decides at its end (see `send`).
        let streaming = matches!(response.body, ResponseBody::Stream(_));
        let keep_alive = wants_keep_alive
            && (body_end == BodyEnd::Finished || (streaming && body_end == BodyEnd::Unread))
            && !self.local.shutting_down();
        let status = response.status.as_u16();
        // The usual response is encoded without awaiting; only a large,
        // streamed or upgrading one needs a (boxed, so that this future stays
        // small and cheap to move) second step.
        let keep = match self.start_send(response, version, is_head, keep_alive) {
            Sent::Done(keep) => Verdict::keep_if(keep),
            Sent::More(rest) => Box::pin(self.finish_send(rest)).await,
        };
        if let Some(path) = path_for_log {
            tracing::info!(target: "gyre::access", "{} \"{method} {path} {version:?}\" {status}", self.peer);
        }
        keep
    }

    /// Encodes a response's head, and its body if it is small, into the
    /// write buffer.
    fn start_send(
        &self,
        response: Response,
        version: Version,
        is_head: bool,
        keep_alive: bool,
    ) -> Sent {
        self.metrics.response(response.status.as_u16());
        let length = match &response.body {
            ResponseBody::Empty => BodyLength::Known(0),
            ResponseBody::Full(b) => BodyLength::Known(b.len() as u64),
            ResponseBody::Stream(rx) => rx.length().map_or(BodyLength::Chunked, BodyLength::Known),
            ResponseBody::Upgrade(_) => BodyLength::None,
            ResponseBody::File { len, .. } => BodyLength::Known(*len),
        };
        if matches!(response.body, ResponseBody::Stream(_)) && self.io.continue_owed.get() {
            // The body may still be read while this response streams (an
            // echo), and the client waits for its `100 Continue`: it must
            // come before the final head (RFC 9110 §15.2).
            self.io.continue_owed.set(false);
            gyre_http::encode_continue(&mut self.io.wbuf());
        }
        let encoded = gyre_http::with_date_for_turn(gyre_rt::loop_turn(), |date| {
            encode_head_typed(
                &mut self.io.wbuf(),
                response.status,
                version,
                &response.headers,
                response.content_type.as_ref().map(HeaderValue::as_bytes),
                length,
                keep_alive,
                date,
            )
        });
        let writes_body = !is_head && !matches!(encoded.framing, Framing::None);
        let keep_alive = encoded.keep_alive;
        match response.body {
            ResponseBody::Full(bytes) if writes_body => {
                if bytes.len() <= COPY_BODY_MAX {
                    self.io.wbuf().extend_from_slice(&bytes);
                    Sent::Done(keep_alive)
                } else {
                    Sent::More(Rest::Large(bytes, keep_alive))
                }
            }
            ResponseBody::Stream(rx) if writes_body => Sent::More(Rest::Stream {
                chunked: matches!(encoded.framing, Framing::Chunked),
                length: match encoded.framing {
                    Framing::Length(n) => Some(n),
                    _ => None,
                },
                rx,
                keep_alive,
            }),
            ResponseBody::File { file, offset, len } if writes_body && len > 0 => {
                Sent::More(Rest::File {
                    file,
                    offset,
                    len,
                    keep_alive,
                })
            }
            ResponseBody::Upgrade(on_upgrade)
                if response.status == http::StatusCode::SWITCHING_PROTOCOLS =>
            {
                Sent::More(Rest::Upgrade(on_upgrade))
            }
            _ => Sent::Done(keep_alive),
        }
    }

    /// Sends what [`start_send`](Self::start_send) left. Returns whether to keep the connection.
    async fn finish_send(&self, rest: Rest) -> Verdict {
        if self.flush().await.is_err() {
            return Verdict::Close;
        }
        match rest {
            Rest::Large(bytes, keep_alive) => {
                Verdict::keep_if(self.write_counted(&bytes).await.is_ok() && keep_alive)
            }
            Rest::Stream {
                mut rx,
                chunked,
                length,
                keep_alive,
            } => {
                let mut sent = 0u64;
                let ends_on_shutdown = rx.ends_on_shutdown();
                let cut_by_shutdown;
                loop {
                    let next = if ends_on_shutdown {
                        // An endless stream (such as SSE) ends at shutdown.
                        race(rx.next(), self.local.shutdown_signal()).await
                    } else {
                        Some(rx.next().await)
                    };
                    let Some(Some(mut chunk)) = next else {
                        cut_by_shutdown = next.is_none();
                        break;
                    };
                    if let Some(length) = length {
                        // Never more than announced; short is caught below.
                        let room = length.saturating_sub(sent);
                        if chunk.len() as u64 > room {
                            chunk.truncate(room as usize);
                        }
                    }
                    sent += chunk.len() as u64;
                    if chunked {
                        gyre_http::encode_chunk(&mut self.io.wbuf(), &chunk);
                    } else {
                        self.io.wbuf().extend_from_slice(&chunk);
                    }
                    if self.flush().await.is_err() {
                        return Verdict::Close;
                    }
                }
                if chunked {
                    encode_last_chunk(&mut self.io.wbuf());
                }
                if length.is_some_and(|n| n != sent) {
                    // The producer ended short of the announced length.
                    return Verdict::Close;
                }
                // The body may have been read by a task of the handler's while
                // the response streamed; reuse the connection only if it is done.
                Verdict::keep_if(
                    keep_alive && !cut_by_shutdown && self.io.body_end.get() == BodyEnd::Finished,
                )
            }
            Rest::Upgrade(on_upgrade) => {
                // The connection task ends here and the new protocol runs in
                // a task of its own (see `serve`), so that a long-lived
                // upgraded connection does not keep this request's state.
                Verdict::Upgrade(on_upgrade)
            }
            Rest::File {
                file,
                offset,
                len,
                keep_alive,
            } => {
                let sent = counted(self.metrics, self.send_file(file, offset, len).await);
                Verdict::keep_if(sent.is_ok() && keep_alive)
            }
        }
    }

    /// Sends `len` bytes of `file` from `offset` with `sendfile`, each call on
    /// the blocking pool (a page-cache miss blocks that thread, not the loop),
    /// waiting on the loop for the socket to take more in between.
    async fn send_file(&self, file: std::fs::File, offset: u64, len: u64) -> std::io::Result<()> {
        use std::os::fd::AsFd;
        let stream = &self.io.stream;
        let mut socket = Some(stream.as_fd().try_clone_to_owned()?);
        let mut file = Some(file);
        let (mut offset, end) = (offset, offset + len);
        let wait = self.shared.config.write_timeout;
        while offset < end {
            gyre_rt::time::timeout(wait, stream.writable())
                .await
                .map_err(|_| {
                    std::io::Error::new(std::io::ErrorKind::TimedOut, "write stalled")
                })??;
            let (Some(s), Some(f)) = (socket.take(), file.take()) else {
                return Err(std::io::ErrorKind::Other.into());
            };
            let want = usize::try_from(end - offset).unwrap_or(usize::MAX);
            let mut at = offset;
            let (s, f, sent) = gyre_rt::blocking(move || {
                let r = rustix::fs::sendfile(&s, &f, Some(&mut at), want);
                (s, f, r)
            })
            .await;
            socket = Some(s);
            file = Some(f);
            match sent {
                Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => {
                    offset += n as u64;
                    if n < want {
                        stream.clear_writable();
                    }
                }
                Err(e) if e == rustix::io::Errno::AGAIN => stream.clear_writable(),
                Err(e) if e == rustix::io::Errno::INTR => {}
                Err(e) => return Err(e.into()),
            }
        }
        Ok(())
    }
}

/// What follows a request's answer.
enum Verdict {
    /// Read the next request.
    Keep,
    /// Close the connection.
    Close,
    /// A `101` went out: hand the connection to this protocol.
    Upgrade(crate::response::OnUpgrade),
}

impl Verdict {
    fn keep_if(keep: bool) -> Verdict {
        if keep {
            Verdict::Keep
        } else {
            Verdict::Close
        }
    }
}

/// How far [`Exchange::start_send`] got.
enum Sent {
    /// All of the response is in the write buffer; keep the connection or not.
    Done(bool),
    /// Part of the response still needs awaiting.
    More(Rest),
}

/// The part of a response that needs awaiting.
enum Rest {
    /// A body too large to copy into the write buffer.
    Large(bytes::Bytes, bool),
    /// A streamed body.
    Stream {
        rx: crate::response::BodyReceiver,
        chunked: bool,
        /// The announced Content-Length, for a stream of known length.
        length: Option<u64>,
        keep_alive: bool,
    },
    /// The connection goes to the upgrade function.
    Upgrade(crate::response::OnUpgrade),
    /// A file range, sent with `sendfile`.
    File {
        file: std::fs::File,
        offset: u64,
        len: u64,
        keep_alive: bool,
    },
}

/// Counts a write that failed for its deadline; passes the result on.
fn counted(metrics: &LoopMetrics, result: std::io::Result<()>) -> std::io::Result<()> {
    if let Err(e) = &result {
        if e.kind() == std::io::ErrorKind::TimedOut {
            metrics.refuse(Reason::WriteTimeout);
        }
    }
    result
}

pin_project_lite::pin_project! {
    /// Polls two futures; yields the first's output, or `None` if the second
    /// finished first. A struct rather than an `async fn`, which would hold
    /// both futures twice (as arguments and pinned locals).
    struct Race<A, B> {
        #[pin]
        a: A,
        #[pin]
        b: B,
    }
}

impl<A: Future, B: Future> Future for Race<A, B> {
    type Output = Option<A::Output>;

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(v) = this.a.poll(cx) {
            return Poll::Ready(Some(v));
        }
        if this.b.poll(cx).is_ready() {
            return Poll::Ready(None);
        }
        Poll::Pending
    }
}

fn race<A: Future, B: Future>(a: A, b: B) -> Race<A, B> {
    Race { a, b }
}

#[cfg(test)]
mod tests {
    /// An idle connection costs its task's future: keep it small (it was
    /// 1960 bytes before the request path was boxed and `race` flattened,
    /// 384 before the idle read wait was written by hand, 192 now).
    #[test]
    fn connection_future_stays_small() {
        let rt = gyre_rt::Builder::new().workers(1).build().unwrap();
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = l.local_addr().unwrap();
        let _c = std::net::TcpStream::connect(addr).unwrap();
        let (s, peer) = l.accept().unwrap();
        let n = rt.block_on_local(move || async move {
            let stream = gyre_rt::net::TcpStream::from_std(s).unwrap();
            let shared = std::sync::Arc::new(crate::server::ServerShared::for_test());
            let fut = super::serve(stream, peer, shared, std::rc::Rc::default());
            std::mem::size_of_val(&fut)
        });
        assert!(n <= 200, "connection future grew to {n} bytes");
    }
}
