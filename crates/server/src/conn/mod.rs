//! One connection: read → parse → route → handler → encode → write, with
//! keep-alive, pipelining, timeouts and limits.
//!
//! Pipelined requests already in the read buffer are all answered before the
//! connection writes: their responses go out in one write. The handler's
//! future is polled inline on the connection task; nothing is spawned per
//! request.

mod send;

use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::Ordering;
use std::task::{Context, Poll};
use std::time::Instant;

use gyre_http::{encode_head_typed, BodyLength, HeadBox, ParseError, Status};
use gyre_rt::time::Deadline;
use gyre_rt::{set_label, yield_now, Label};
use http::header::{HeaderValue, ALLOW};
use http::{Method, StatusCode, Version};

use crate::handler::BoxFuture;
use crate::io::{BodyEnd, ConnIo, ReadError};
use crate::metrics::{LoopMetrics, Reason};
use crate::request::{Body, Request};
use crate::response::{IntoResponse, Response, ResponseBody};
use crate::router::RouteError;
use crate::server::{LocalServer, ServerShared};
use send::{counted, Sent};

/// Responses buffered before the connection writes even if more pipelined
/// requests are waiting.
const FLUSH_AT: usize = 64 * 1024;
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
    let loop_index = u16::try_from(shared.metrics.local_index()).expect("at most 65,536 loops");
    let io = Rc::new(ConnIo::new(stream, shared.io_settings.clone()));
    let conn = Conn {
        io,
        shared,
        local,
        loop_index,
        peer_ip: peer.ip(),
        peer_port: peer.port(),
        served_any: std::cell::Cell::new(false),
        reading_head: std::cell::Cell::new(false),
        deadline: Deadline::new(),
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
    Answer(HeadBox),
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
    loop_index: u16,
    /// The peer's address and port, kept apart: a `SocketAddr` is 32 bytes
    /// (IPv6 flow and scope included), these 20.
    peer_ip: std::net::IpAddr,
    peer_port: u16,
    /// A request was answered on this connection (a flag, not a count:
    /// every idle connection holds it).
    served_any: std::cell::Cell<bool>,
    /// Part of a head has arrived: its time runs from then (a flag, the
    /// time being in `deadline`).
    reading_head: std::cell::Cell<bool>,
    /// The deadline of the current wait for request bytes: set anew for
    /// every idle wait and at the start of every head, while its timer
    /// stays in the wheel from one request to the next (see [`Deadline`]).
    deadline: Deadline,
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
                        self.reading_head.set(false);
                        Next::Answer(head)
                    }
                    Ok(Status::Partial) => Next::Read,
                    Err(e) => Next::Refuse(e),
                }
            };
            match next {
                Next::Answer(head) => {
                    match self.answer(head).await {
                        Verdict::Keep => {}
                        Verdict::Close => return None,
                        Verdict::Upgrade(on_upgrade) => return Some(on_upgrade),
                    }
                    self.served_any.set(true);
                    if self.io.wbuf.borrow().len() >= FLUSH_AT && self.flush().await.is_err() {
                        return None;
                    }
                    in_a_row += 1;
                    if in_a_row == REQUEST_BUDGET {
                        in_a_row = 0;
                        yield_now().await;
                    }
                }
                Next::Refuse(e) => {
                    self.refuse(e);
                    return None;
                }
                Next::Read => {
                    in_a_row = 0;
                    // The socket usually takes every buffered response at
                    // once: written here, with no flush future made.
                    let written = match self.io.try_flush() {
                        Ok(true) => true,
                        Ok(false) => self.flush_rest().await.is_ok(),
                        Err(_) => false,
                    };
                    if !written || !self.read_more().await {
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

    /// Writes what `try_flush` left (boxed: the connection's future stays
    /// small); counts a write timeout.
    async fn flush_rest(&self) -> std::io::Result<()> {
        counted(self.metrics(), Box::pin(self.io.flush_slow()).await)
    }

    /// Waits for more request bytes within the right deadline. Returns false
    /// when the connection should close (after answering 408/431 if due).
    async fn read_more(&self) -> bool {
        let config = &self.shared.config;
        // A flag, not the count: this future is part of every idle connection.
        let idle = self.io.rbuf.borrow().is_empty();
        if idle {
            self.io.release_buffers();
            if self.local.shutting_down() {
                return false;
            }
            self.deadline.set_after(if !self.served_any.get() {
                config.header_timeout
            } else {
                config.keep_alive_timeout
            });
        } else if !self.reading_head.replace(true) {
            // The head's clock starts when it is first found incomplete,
            // not on every read: most heads arrive whole.
            self.deadline.set_after(config.header_timeout);
        }
        // Idle: also wake up for a graceful shutdown.
        let shutdown = idle.then_some(&*self.local);
        let result = self.io.read_more_until(&self.deadline, shutdown).await;
        match result {
            Ok(_) => true,
            Err(ReadError::TimedOut) if idle && self.served_any.get() => {
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

/// The part of an answer that awaits more than the handler.
type BoxedVerdict<'a> = Pin<Box<dyn Future<Output = Verdict> + 'a>>;

/// What a request's answer still needs once its handler has run.
struct Meta {
    version: Version,
    is_head: bool,
    /// The client asked to keep the connection.
    keep_alive: bool,
    /// Method and target for the access log, when it is on.
    log: Option<Box<(Method, String)>>,
}

impl Conn {
    /// Routes and answers one request. Returns what to do with the connection.
    ///
    /// Nothing is boxed here but the handler's own future: the route is
    /// found and the handler called before the one await, and a response in
    /// the write buffer needs no second step.
    async fn answer(&self, head: HeadBox) -> Verdict {
        let (meta, handler) = self.begin(head);
        // Only the handler's future and `meta` are held across this await,
        // and only a box across the next: the connection's future stays small.
        match self.end(handler.await, meta) {
            Ok(verdict) => verdict,
            Err(rest) => rest.await,
        }
    }

    /// Buffers the response; returns the verdict, or the boxed rest of a
    /// large, streamed, file or upgrading response.
    fn end(&self, response: Response, meta: Meta) -> Result<Verdict, BoxedVerdict<'_>> {
        let body_end = self.io.body_end.get();
        if let BodyEnd::Failed(reason) = body_end {
            self.metrics().refuse(reason);
        }
        // A streamed response may still be reading the body (an echo): it
        // decides at its end (see `finish_send`).
        let streaming = matches!(response.body, ResponseBody::Stream(_));
        let keep_alive = meta.keep_alive
            && (body_end == BodyEnd::Finished || (streaming && body_end == BodyEnd::Unread))
            && !self.local.shutting_down();
        let status = response.status.as_u16();
        match self.start_send(response, meta.version, meta.is_head, keep_alive) {
            Sent::Done(keep) => {
                self.access_log(meta, status);
                Ok(Verdict::keep_if(keep))
            }
            Sent::More(rest) => Err(Box::pin(async move {
                let verdict = self.finish_send(rest).await;
                self.access_log(meta, status);
                verdict
            })),
        }
    }

    /// Logs an answered request if the access log is on.
    fn access_log(&self, meta: Meta, status: u16) {
        if let Some(log) = meta.log {
            let (method, path) = *log;
            let (peer, version) = (self.peer(), meta.version);
            tracing::info!(target: "gyre::access", "{peer} \"{method} {path} {version:?}\" {status}");
        }
    }

    /// Finds the route of `head` and calls its handler.
    fn begin(&self, head: HeadBox) -> (Meta, Labeled<'_>) {
        let config = &self.shared.config;
        let meta = Meta {
            version: head.version,
            is_head: head.method == Method::HEAD,
            keep_alive: head.keep_alive,
            log: config
                .access_log
                .then(|| Box::new((head.method.clone(), head.target().to_owned()))),
        };
        let body = Body::new(self.io.clone(), head.body, head.expect_continue, config);
        let (response, label) = match self
            .shared
            .router
            .lookup_bytes(&head.method, head.path_bytes())
        {
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
                    peer: Some(self.peer()),
                    local: Some(self.local.clone()),
                };
                let previous = set_label(route.label);
                let response = route.handler.call(request);
                set_label(previous);
                (response, route.label)
            }
            Err(error) => {
                drop(body);
                let mut response = StatusCode::NOT_FOUND.into_response();
                if let RouteError::MethodNotAllowed { allow } = error {
                    response.status = StatusCode::METHOD_NOT_ALLOWED;
                    if let Ok(v) = HeaderValue::from_str(&allow) {
                        response.headers.insert(ALLOW, v);
                    }
                }
                let ready = BoxFuture::new(std::future::ready(response));
                (ready, Label::NONE)
            }
        };
        (meta, Labeled { response, label })
    }

    fn peer(&self) -> std::net::SocketAddr {
        std::net::SocketAddr::new(self.peer_ip, self.peer_port)
    }
}

/// A handler's future, run under its route's label for the stall watchdog:
/// the label is set for each poll only, so that other tasks the loop runs
/// while the handler waits are not blamed on its route.
struct Labeled<'a> {
    response: BoxFuture<'a>,
    label: Label,
}

impl Future for Labeled<'_> {
    type Output = Response;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Response> {
        let previous = set_label(self.label);
        let poll = Pin::new(&mut self.response).poll(cx);
        set_label(previous);
        poll
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
