//! Sending a response: the head and a small body go into the write buffer
//! without awaiting; a large, streamed, file or upgrading body is finished
//! by an awaited second step.

use std::future::Future;
use std::task::Poll;

use gyre_http::{encode_head_typed, encode_last_chunk, BodyLength, Framing};
use http::header::HeaderValue;
use http::Version;

use super::{Conn, Verdict};
use crate::io::BodyEnd;
use crate::metrics::{LoopMetrics, Reason};
use crate::response::{Response, ResponseBody};

/// Full bodies up to this size are copied into the write buffer (one write
/// with the head); larger ones are written on their own.
const COPY_BODY_MAX: usize = 16 * 1024;

impl Conn {
    /// Writes a large body directly; counts a write timeout.
    async fn write_counted(&self, data: &[u8]) -> std::io::Result<()> {
        counted(self.metrics(), self.io.write_bounded(data).await)
    }

    /// Encodes a response's head, and its body if it is small, into the
    /// write buffer.
    pub(super) fn start_send(
        &self,
        response: Response,
        version: Version,
        is_head: bool,
        keep_alive: bool,
    ) -> Sent {
        self.metrics().response(response.status.as_u16());
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
        // One borrow of the write buffer for the head and a small body.
        let mut w = self.io.wbuf();
        let encoded = gyre_http::with_date_for_turn(gyre_rt::loop_turn(), |date| {
            encode_head_typed(
                &mut w,
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
                    w.extend_from_slice(&bytes);
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
    pub(super) async fn finish_send(&self, rest: Rest) -> Verdict {
        // A file's head and first bytes go out together, in full segments
        // (nginx's `tcp_nopush`): the socket is corked until the file is sent.
        let cork = matches!(rest, Rest::File { .. }) && self.set_cork(true);
        let flushed = self.flush().await;
        let verdict = match flushed {
            Ok(()) => self.finish_rest(rest).await,
            Err(_) => Verdict::Close,
        };
        if cork {
            self.set_cork(false);
        }
        verdict
    }

    /// Sets `TCP_CORK`; returns whether it took.
    fn set_cork(&self, on: bool) -> bool {
        use std::os::fd::AsFd;
        rustix::net::sockopt::set_tcp_cork(self.io.stream.as_fd(), on).is_ok()
    }

    /// Sends the part of a response after its head.
    async fn finish_rest(&self, rest: Rest) -> Verdict {
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
                let sent = counted(self.metrics(), self.send_file(file, offset, len).await);
                Verdict::keep_if(sent.is_ok() && keep_alive)
            }
        }
    }

    /// Sends `len` bytes of `file` from `offset` with `sendfile`, waiting on
    /// the loop for the socket to take more in between. A step whose bytes
    /// are all in the page cache runs on the loop (it cannot wait for a
    /// disk); any other runs on the blocking pool, so that a page-cache miss
    /// blocks a pool thread, not the loop.
    async fn send_file(
        &self,
        file: std::sync::Arc<std::fs::File>,
        offset: u64,
        len: u64,
    ) -> std::io::Result<()> {
        use std::os::fd::AsFd;
        let stream = &self.io.stream;
        // The socket's descriptor as the pool needs it (owned), made on the
        // first step that goes there.
        let mut socket = None;
        let (mut offset, end) = (offset, offset + len);
        let wait = self.shared.config.write_timeout;
        while offset < end {
            gyre_rt::time::timeout(wait, stream.writable())
                .await
                .map_err(|_| {
                    std::io::Error::new(std::io::ErrorKind::TimedOut, "write stalled")
                })??;
            // What one call may send: bounded so that checking the page
            // cache stays cheap and one call does not hold the loop long.
            let want = (end - offset).min(SENDFILE_STEP);
            let mut at = offset;
            let on_loop = gyre_rt::is_resident(&*file, offset, want) == Some(true);
            self.metrics().sendfile(on_loop);
            let sent = if on_loop {
                rustix::fs::sendfile(stream.as_fd(), &*file, Some(&mut at), want as usize)
            } else {
                let s = match socket.take() {
                    Some(s) => s,
                    None => stream.as_fd().try_clone_to_owned()?,
                };
                let f = file.clone();
                let (s, sent) = gyre_rt::blocking(move || {
                    let sent = rustix::fs::sendfile(&s, &*f, Some(&mut at), want as usize);
                    (s, sent)
                })
                .await;
                socket = Some(s);
                sent
            };
            match sent {
                Ok(0) => return Err(std::io::ErrorKind::UnexpectedEof.into()),
                Ok(n) => {
                    offset += n as u64;
                    if (n as u64) < want {
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

/// The most one `sendfile` call is asked to send: it bounds how long one
/// download holds its loop (nginx's `sendfile_max_chunk` defaults to this).
const SENDFILE_STEP: u64 = 2 << 20;

/// How far [`Conn::start_send`] got.
pub(super) enum Sent {
    /// All of the response is in the write buffer; keep the connection or not.
    Done(bool),
    /// Part of the response still needs awaiting.
    More(Rest),
}

/// The part of a response that needs awaiting.
pub(super) enum Rest {
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
        file: std::sync::Arc<std::fs::File>,
        offset: u64,
        len: u64,
        keep_alive: bool,
    },
}

/// Counts a write that failed for its deadline; passes the result on.
pub(super) fn counted(metrics: &LoopMetrics, result: std::io::Result<()>) -> std::io::Result<()> {
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
