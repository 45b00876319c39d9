//! Async TCP sockets over the loop's edge-triggered readiness slots.

use std::future::poll_fn;
use std::io::{self, IoSlice, Write};
use std::net::{Shutdown, SocketAddr};
use std::pin::Pin;
use std::task::{Context, Poll};

use futures_io::{AsyncRead, AsyncWrite};

use super::sys;
use crate::reactor::{Direction, Registration};

/// A TCP connection registered with the current loop.
///
/// Methods take `&self`, so one task may read while another writes (both on
/// this loop: the stream is not `Send`).
#[derive(Debug)]
pub struct TcpStream {
    /// Declared before `io` so the slot is freed before the fd closes.
    reg: Registration,
    io: mio::net::TcpStream,
}

impl TcpStream {
    /// Connects to `addr` without blocking the loop.
    pub async fn connect(addr: SocketAddr) -> io::Result<TcpStream> {
        let stream = TcpStream::wrap(mio::net::TcpStream::connect(addr)?)?;
        // A fresh slot claims "writable"; forget that, and wait for the real edge.
        stream.reg.clear(Direction::Write);
        poll_fn(|cx| stream.reg.poll_ready(cx, Direction::Write)).await;
        if let Some(e) = stream.io.take_error()? {
            return Err(e);
        }
        stream.io.peer_addr()?;
        Ok(stream)
    }

    /// Takes over a connected std socket (made non-blocking here).
    pub fn from_std(stream: std::net::TcpStream) -> io::Result<TcpStream> {
        stream.set_nonblocking(true)?;
        TcpStream::wrap(mio::net::TcpStream::from_std(stream))
    }

    fn wrap(mut io: mio::net::TcpStream) -> io::Result<TcpStream> {
        let reg = Registration::new(&mut io)?;
        Ok(TcpStream { reg, io })
    }

    /// Reads some bytes; `Ok(0)` means the peer closed its side.
    pub async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        poll_fn(|cx| self.poll_read_priv(cx, buf)).await
    }

    /// Writes some bytes; returns how many were taken.
    pub async fn write(&self, buf: &[u8]) -> io::Result<usize> {
        poll_fn(|cx| self.poll_write_priv(cx, buf)).await
    }

    /// Writes all of `buf`.
    pub async fn write_all(&self, mut buf: &[u8]) -> io::Result<()> {
        while !buf.is_empty() {
            let n = self.write(buf).await?;
            if n == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
            buf = &buf[n..];
        }
        Ok(())
    }

    /// Writes from several buffers in one system call (`writev`).
    pub async fn write_vectored(&self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        poll_fn(|cx| self.poll_write_vectored_priv(cx, bufs)).await
    }

    /// Waits until the socket is readable, without a buffer: an idle
    /// connection can wait here holding no memory for a read.
    pub async fn readable(&self) -> io::Result<()> {
        poll_fn(|cx| self.reg.poll_ready(cx, Direction::Read)).await;
        Ok(())
    }

    /// Polls for read readiness: the primitive under [`readable`](Self::readable),
    /// for hand-written futures.
    pub fn poll_readable(&self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        self.reg.poll_ready(cx, Direction::Read).map(Ok)
    }

    /// Waits until the socket may take more bytes, for writes made outside
    /// this type (such as `sendfile` on a duplicate of its descriptor).
    pub async fn writable(&self) -> io::Result<()> {
        poll_fn(|cx| self.reg.poll_ready(cx, Direction::Write)).await;
        Ok(())
    }

    /// Records that an outside write found the socket full (`WouldBlock` or a
    /// short write), so that [`writable`](Self::writable) waits for the next edge.
    pub fn clear_writable(&self) {
        self.reg.clear(Direction::Write);
    }

    /// Reads what is there now, without waiting: `WouldBlock` if nothing is.
    pub fn try_read(&self, buf: &mut [u8]) -> io::Result<usize> {
        let result = sys::recv(&self.io, buf);
        self.after_read(&result, buf.len());
        result
    }

    /// Writes what fits now, without waiting: `WouldBlock` if nothing does.
    pub fn try_write(&self, buf: &[u8]) -> io::Result<usize> {
        let result = sys::send(&self.io, buf);
        match &result {
            Ok(n) if *n < buf.len() => self.reg.clear(Direction::Write),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.reg.clear(Direction::Write),
            _ => {}
        }
        result
    }

    /// Polls a read (the primitive under [`read`](Self::read) and `AsyncRead`).
    pub fn poll_read_priv(&self, cx: &mut Context<'_>, buf: &mut [u8]) -> Poll<io::Result<usize>> {
        let len = buf.len();
        let result = self
            .reg
            .poll_io(cx, Direction::Read, || sys::recv(&self.io, buf));
        if let Poll::Ready(r) = &result {
            self.after_read(r, len);
        }
        result
    }

    fn after_read(&self, result: &io::Result<usize>, asked: usize) {
        match result {
            // A short read drained the socket: the next read would hit
            // `WouldBlock`. Skip that system call and wait for the next edge.
            Ok(n) if *n > 0 && *n < asked => self.reg.clear(Direction::Read),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => self.reg.clear(Direction::Read),
            _ => {}
        }
    }

    /// Polls a write.
    pub fn poll_write_priv(&self, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let result = self
            .reg
            .poll_io(cx, Direction::Write, || sys::send(&self.io, buf));
        if let Poll::Ready(Ok(n)) = result {
            if n < buf.len() {
                self.reg.clear(Direction::Write);
            }
        }
        result
    }

    /// Polls a vectored write.
    pub fn poll_write_vectored_priv(
        &self,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let total: usize = bufs.iter().map(|b| b.len()).sum();
        let result = self
            .reg
            .poll_io(cx, Direction::Write, || (&self.io).write_vectored(bufs));
        if let Poll::Ready(Ok(n)) = result {
            if n < total {
                self.reg.clear(Direction::Write);
            }
        }
        result
    }

    /// Shuts down the read half, the write half or both.
    pub fn shutdown(&self, how: Shutdown) -> io::Result<()> {
        self.io.shutdown(how)
    }

    /// Sets `TCP_NODELAY` (no Nagle delay for small writes).
    pub fn set_nodelay(&self, on: bool) -> io::Result<()> {
        self.io.set_nodelay(on)
    }

    /// Whether `TCP_NODELAY` is set.
    pub fn nodelay(&self) -> io::Result<bool> {
        self.io.nodelay()
    }

    /// The peer's address.
    pub fn peer_addr(&self) -> io::Result<SocketAddr> {
        self.io.peer_addr()
    }

    /// This end's address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.local_addr()
    }

    /// Sets `SO_LINGER` (`Some(0)` makes close send a reset).
    pub fn set_linger(&self, linger: Option<std::time::Duration>) -> io::Result<()> {
        socket2::SockRef::from(&self.io).set_linger(linger)
    }
}

impl std::os::fd::AsFd for TcpStream {
    fn as_fd(&self) -> std::os::fd::BorrowedFd<'_> {
        self.io.as_fd()
    }
}

impl AsyncRead for &TcpStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_read_priv(cx, buf)
    }
}

impl AsyncWrite for &TcpStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_priv(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_vectored_priv(cx, bufs)
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        // Writes go straight to the kernel; there is nothing to flush.
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.shutdown(Shutdown::Write))
    }
}

impl AsyncRead for TcpStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_read_priv(cx, buf)
    }
}

impl AsyncWrite for TcpStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_priv(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        self.poll_write_vectored_priv(cx, bufs)
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_close(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(self.shutdown(Shutdown::Write))
    }
}

/// A listening TCP socket registered with the current loop.
#[derive(Debug)]
pub struct TcpListener {
    reg: Registration,
    io: mio::net::TcpListener,
}

impl TcpListener {
    /// Binds `addr` with `SO_REUSEADDR` and a backlog of 1024.
    pub fn bind(addr: SocketAddr) -> io::Result<TcpListener> {
        TcpListener::from_std(bind_std(addr, 1024)?)
    }

    /// Takes over a bound std listener (made non-blocking here). The listener
    /// may be a duplicate (`try_clone`) of one that other loops also serve.
    pub fn from_std(listener: std::net::TcpListener) -> io::Result<TcpListener> {
        listener.set_nonblocking(true)?;
        let mut io = mio::net::TcpListener::from_std(listener);
        let reg = Registration::new(&mut io)?;
        Ok(TcpListener { reg, io })
    }

    /// Accepts a connection; the stream is registered with this loop and has `TCP_NODELAY` set.
    pub async fn accept(&self) -> io::Result<(TcpStream, SocketAddr)> {
        let (io, addr) =
            poll_fn(|cx| self.reg.poll_io(cx, Direction::Read, || self.io.accept())).await?;
        io.set_nodelay(true)?;
        Ok((TcpStream::wrap(io)?, addr))
    }

    /// The bound address.
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.io.local_addr()
    }
}

impl Drop for TcpListener {
    fn drop(&mut self) {
        // The fd may be a duplicate: closing it would not remove the socket
        // from this loop's epoll, so deregister explicitly.
        let _ = self.reg.deregister(&mut self.io);
    }
}

/// Binds a blocking std listener with `SO_REUSEADDR` and the given backlog;
/// serve it on every loop with [`crate::Handle::serve`].
pub fn bind_std(addr: SocketAddr, backlog: i32) -> io::Result<std::net::TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    socket.set_reuse_address(true)?;
    socket.bind(&addr.into())?;
    socket.listen(backlog)?;
    Ok(socket.into())
}
