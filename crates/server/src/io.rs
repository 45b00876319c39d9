//! A connection's socket and buffers, shared by the connection task and the
//! request body it hands to a handler (both on the same loop).
//!
//! Buffers come from a per-loop pool when bytes arrive and go back when the
//! connection falls idle, so an idle keep-alive connection holds none.

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::BytesMut;
use gyre_rt::net::TcpStream;
use gyre_rt::time::{timeout, Deadline};

use crate::server::LocalServer;

/// Size of a pooled read buffer; the limit on the request head keeps heads within it.
const READ_BUF: usize = 16 * 1024;
/// Pooled buffers kept per loop: enough for the connections one loop turn
/// serves at once; more would hold memory after a burst (512 pooled read
/// buffers were 0.8 KiB per connection of 10,000 idle ones).
const POOL_MAX: usize = 32;

thread_local! {
    /// Free read buffers of this loop, each `READ_BUF` long and initialised.
    static READ_POOL: RefCell<Vec<Vec<u8>>> = const { RefCell::new(Vec::new()) };
    /// Free write buffers of this loop.
    static WRITE_POOL: RefCell<Vec<BytesMut>> = const { RefCell::new(Vec::new()) };
}

/// A read buffer: `data[start..end]` holds unread bytes.
/// INVARIANT: `start <= end <= data.len()`; `data` is initialised in full (no
/// zeroing per read, no unsafe).
#[derive(Debug, Default)]
pub(crate) struct ReadBuf {
    data: Vec<u8>,
    /// Offsets as `u32` (buffers stay far below 4 GiB): every connection
    /// holds a `ReadBuf`, so its size counts.
    start: u32,
    end: u32,
}

impl ReadBuf {
    /// The unread bytes.
    pub(crate) fn bytes(&self) -> &[u8] {
        &self.data[self.start as usize..self.end as usize]
    }

    /// Marks `n` bytes as read.
    pub(crate) fn consume(&mut self, n: usize) {
        self.start += n as u32;
        debug_assert!(self.start <= self.end);
        if self.start == self.end {
            self.start = 0;
            self.end = 0;
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.start == self.end
    }

    pub(crate) fn len(&self) -> usize {
        (self.end - self.start) as usize
    }

    /// Marks `n` more bytes, just read into [`spare`](Self::spare), as unread.
    pub(crate) fn filled(&mut self, n: usize) {
        self.end += n as u32;
        debug_assert!(self.end as usize <= self.data.len());
    }

    /// Drops every unread byte.
    pub(crate) fn discard(&mut self) {
        self.start = 0;
        self.end = 0;
    }

    /// Free space at the end, after moving unread bytes to the front, or
    /// growing up to `max` bytes, if needed. Empty when the buffer holds
    /// `max` unread bytes.
    pub(crate) fn spare(&mut self, max: usize) -> &mut [u8] {
        if self.data.is_empty() {
            self.data = READ_POOL
                .with(|p| p.borrow_mut().pop())
                .unwrap_or_else(|| vec![0; READ_BUF]);
        }
        if self.end as usize == self.data.len() && self.start > 0 {
            self.data
                .copy_within(self.start as usize..self.end as usize, 0);
            self.end -= self.start;
            self.start = 0;
        }
        if self.end as usize == self.data.len() && self.data.len() < max {
            // A head larger than the pooled size, allowed by the settings.
            let grown = (self.data.len() * 2).min(max).min(u32::MAX as usize);
            self.data.resize(grown, 0);
        }
        &mut self.data[self.end as usize..]
    }

    /// Returns the memory to the loop's pool if nothing is unread (a grown
    /// buffer is freed instead).
    pub(crate) fn release(&mut self) {
        if self.is_empty() && !self.data.is_empty() {
            let data = std::mem::take(&mut self.data);
            if data.len() == READ_BUF {
                READ_POOL.with(|p| {
                    let mut p = p.borrow_mut();
                    if p.len() < POOL_MAX {
                        p.push(data);
                    }
                });
            }
        }
    }
}

/// The future of [`ConnIo::read_more`]. Written by hand rather than made of
/// `timeout` and a race with the shutdown signal: it is what an idle
/// connection's task holds while it waits, so its size is paid per idle
/// connection (56 bytes here against 168 for the composed form). It keeps no
/// entry among the shutdown's waiters either: shutdown wakes every reader of
/// the loop ([`gyre_rt::net::wake_readers`]) and this future then sees the flag.
pub(crate) struct ReadMore<'a, D> {
    io: &'a ConnIo,
    shutdown: Option<&'a LocalServer>,
    /// A `Sleep` of its own, or the connection's [`Deadline`], which an
    /// idle connection keeps between requests (see `Conn::read_more`).
    deadline: D,
}

/// The deadline of a [`ReadMore`].
pub(crate) trait ReadDeadline {
    /// `Ready` once the deadline has passed.
    fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()>;
}

impl ReadDeadline for gyre_rt::time::Sleep {
    fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        Pin::new(self).poll(cx)
    }
}

impl ReadDeadline for &Deadline {
    fn poll_expired(&mut self, cx: &mut Context<'_>) -> Poll<()> {
        Deadline::poll_expired(self, cx)
    }
}

impl<D: ReadDeadline + Unpin> Future for ReadMore<'_, D> {
    type Output = Result<usize, ReadError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.get_mut();
        let io = this.io;
        loop {
            match io.stream.poll_readable(cx) {
                Poll::Ready(Err(_)) => return Poll::Ready(Err(ReadError::Io)),
                Poll::Pending => break,
                Poll::Ready(Ok(())) => {
                    // Readable: borrow a buffer only for the read itself.
                    let mut rbuf = io.rbuf.borrow_mut();
                    let spare = rbuf.spare(io.settings.max_read_buf);
                    if spare.is_empty() {
                        return Poll::Ready(Err(ReadError::Full));
                    }
                    match io.stream.try_read(spare) {
                        Ok(0) => return Poll::Ready(Err(ReadError::Closed)),
                        Ok(n) => {
                            rbuf.filled(n);
                            return Poll::Ready(Ok(n));
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => rbuf.release(),
                        Err(_) => return Poll::Ready(Err(ReadError::Io)),
                    }
                }
            }
        }
        if this.shutdown.is_some_and(LocalServer::shutting_down) {
            return Poll::Ready(Err(ReadError::Shutdown));
        }
        match this.deadline.poll_expired(cx) {
            Poll::Ready(()) => Poll::Ready(Err(ReadError::TimedOut)),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Why reading more of a request failed.
#[derive(Debug)]
pub(crate) enum ReadError {
    /// The peer closed the connection.
    Closed,
    /// No bytes within the deadline.
    TimedOut,
    /// The buffer is full: the head is too large.
    Full,
    /// The socket failed.
    Io,
    /// Graceful shutdown began while the connection waited.
    Shutdown,
}

/// How the handler left the request body (recorded when the body is dropped).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BodyEnd {
    /// Read to its end, or there was none.
    Finished,
    /// Not read to its end: the connection cannot be reused.
    Unread,
    /// Reading failed for this reason: the connection closes.
    Failed(crate::metrics::Reason),
}

/// What every connection's I/O needs of the settings, in one shared place
/// (kept out of [`ConnIo`] itself, which every idle connection holds).
#[derive(Debug)]
pub(crate) struct IoSettings {
    pub(crate) write_timeout: Duration,
    min_write_rate: u64,
    min_rate_grace: Duration,
    /// Largest the read buffer may grow to (the head limit, at least `READ_BUF`).
    max_read_buf: usize,
}

impl IoSettings {
    pub(crate) fn new(config: &crate::Config) -> std::sync::Arc<Self> {
        std::sync::Arc::new(IoSettings {
            write_timeout: config.write_timeout,
            min_write_rate: config.min_write_rate,
            min_rate_grace: config.min_rate_grace,
            max_read_buf: config.max_head.max(READ_BUF),
        })
    }
}

/// The socket and buffers of one connection.
#[derive(Debug)]
pub(crate) struct ConnIo {
    pub(crate) stream: TcpStream,
    /// Bytes read and not yet parsed or consumed by a body.
    pub(crate) rbuf: RefCell<ReadBuf>,
    /// Encoded responses not yet written.
    pub(crate) wbuf: RefCell<BytesMut>,
    /// Deadlines and sizes from the server's settings, shared by all its connections.
    pub(crate) settings: std::sync::Arc<IoSettings>,
    /// How the current request's body ended.
    pub(crate) body_end: Cell<BodyEnd>,
    /// The client asked for `100 Continue` and has not had it yet.
    pub(crate) continue_owed: Cell<bool>,
}

impl ConnIo {
    pub(crate) fn new(stream: TcpStream, settings: std::sync::Arc<IoSettings>) -> Self {
        ConnIo {
            stream,
            rbuf: RefCell::default(),
            wbuf: RefCell::default(),
            settings,
            body_end: Cell::new(BodyEnd::Finished),
            continue_owed: Cell::new(false),
        }
    }

    /// Reads once into the read buffer, waiting at most `limit`; with
    /// `shutdown`, the wait also ends when that server's graceful shutdown
    /// begins ([`ReadError::Shutdown`]).
    pub(crate) fn read_more<'a>(
        &'a self,
        limit: Duration,
        shutdown: Option<&'a LocalServer>,
    ) -> ReadMore<'a, gyre_rt::time::Sleep> {
        ReadMore {
            io: self,
            shutdown,
            deadline: gyre_rt::time::sleep(limit),
        }
    }

    /// Like [`read_more`](Self::read_more), under a deadline kept by the caller.
    pub(crate) fn read_more_until<'a>(
        &'a self,
        deadline: &'a Deadline,
        shutdown: Option<&'a LocalServer>,
    ) -> ReadMore<'a, &'a Deadline> {
        ReadMore {
            io: self,
            shutdown,
            deadline,
        }
    }

    /// Appends to the write buffer (taking one from the pool if needed).
    pub(crate) fn wbuf(&self) -> std::cell::RefMut<'_, BytesMut> {
        let mut w = self.wbuf.borrow_mut();
        if w.capacity() == 0 {
            if let Some(b) = WRITE_POOL.with(|p| p.borrow_mut().pop()) {
                *w = b;
            }
        }
        w
    }

    /// Writes all buffered output, bounded by the write timeout and the
    /// minimum write rate. Usually the socket takes it all at once; only
    /// then-unwritten output needs a (boxed, so that idle connections stay
    /// small) waiting future.
    pub(crate) async fn flush(&self) -> io::Result<()> {
        if self.try_flush()? {
            return Ok(());
        }
        Box::pin(self.flush_slow()).await
    }

    /// Writes what the socket takes now; true when nothing is left.
    pub(crate) fn try_flush(&self) -> io::Result<bool> {
        let mut w = self.wbuf.borrow_mut();
        while !w.is_empty() {
            match self.stream.try_write(&w) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                // All of it, the usual case: cleared without advancing, so
                // the buffer keeps its capacity from the start (an advance
                // made the next response's `reserve` reclaim the space: ~40
                // instructions a request).
                Ok(n) if n == w.len() => break,
                Ok(n) => {
                    bytes::Buf::advance(&mut *w, n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        w.clear();
        Ok(true)
    }

    /// Writes what [`try_flush`](Self::try_flush) left, waiting for the
    /// socket within the write timeout and minimum rate.
    pub(crate) async fn flush_slow(&self) -> io::Result<()> {
        let mut out = std::mem::take(&mut *self.wbuf.borrow_mut());
        if !out.is_empty() {
            let result = self.write_bounded(&out).await;
            out.clear();
            result?;
        }
        // Keep the (now empty) buffer for the next response.
        *self.wbuf.borrow_mut() = out;
        Ok(())
    }

    /// Writes `data` in full, within the write deadlines.
    pub(crate) async fn write_bounded(&self, mut data: &[u8]) -> io::Result<()> {
        let settings = &*self.settings;
        let total = settings.min_rate_grace
            + if settings.min_write_rate == 0 {
                Duration::from_secs(u32::MAX as u64)
            } else {
                Duration::from_secs_f64(data.len() as f64 / settings.min_write_rate as f64)
            };
        let all = async {
            while !data.is_empty() {
                let n = match timeout(settings.write_timeout, self.stream.write(data)).await {
                    Ok(r) => r?,
                    Err(_) => return Err(io::Error::new(io::ErrorKind::TimedOut, "write stalled")),
                };
                if n == 0 {
                    return Err(io::ErrorKind::WriteZero.into());
                }
                data = &data[n..];
            }
            Ok(())
        };
        match timeout(total, all).await {
            Ok(r) => r,
            Err(_) => Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "client reads below the minimum rate",
            )),
        }
    }

    /// Gives both buffers back to the loop's pool if they hold nothing.
    pub(crate) fn release_buffers(&self) {
        self.rbuf.borrow_mut().release();
        let mut w = self.wbuf.borrow_mut();
        if w.is_empty() && w.capacity() > 0 {
            let b = std::mem::take(&mut *w);
            WRITE_POOL.with(|p| {
                let mut p = p.borrow_mut();
                if p.len() < POOL_MAX {
                    p.push(b);
                }
            });
        }
    }
}
