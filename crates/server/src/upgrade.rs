//! The connection after `101 Switching Protocols`, for WebSocket and the like.

use std::io;
use std::rc::Rc;

use gyre_rt::net::TcpStream;

use crate::io::ConnIo;
use crate::server::LocalServer;

/// A connection handed over by an upgrade. Bytes the client sent after its
/// request head (already buffered by the server) are read first.
#[derive(Debug)]
pub struct Upgraded {
    pub(crate) io: Rc<ConnIo>,
    local: Rc<LocalServer>,
}

impl Upgraded {
    pub(crate) fn new(io: Rc<ConnIo>, local: Rc<LocalServer>) -> Self {
        Upgraded { io, local }
    }

    /// Whether the server's graceful shutdown has begun.
    pub fn shutting_down(&self) -> bool {
        self.local.shutting_down()
    }

    /// Completes when the server's graceful shutdown begins: a long-lived
    /// protocol should then say goodbye and end within the shutdown deadline.
    pub async fn shutdown_signal(&self) {
        self.local.shutdown_signal().await
    }

    /// The server's write timeout (how long a write may make no progress).
    pub fn write_timeout(&self) -> std::time::Duration {
        self.io.settings.write_timeout
    }

    /// Reads some bytes; `Ok(0)` means the peer closed.
    pub async fn read(&self, buf: &mut [u8]) -> io::Result<usize> {
        {
            let mut rbuf = self.io.rbuf.borrow_mut();
            if !rbuf.is_empty() {
                let n = rbuf.len().min(buf.len());
                buf[..n].copy_from_slice(&rbuf.bytes()[..n]);
                rbuf.consume(n);
                return Ok(n);
            }
        }
        self.io.stream.read(buf).await
    }

    /// Writes all of `data`, bounded by the server's write timeout and minimum rate.
    pub async fn write_all(&self, data: &[u8]) -> io::Result<()> {
        self.io.write_bounded(data).await
    }

    /// Waits until bytes can be read (without holding a buffer meanwhile).
    pub async fn readable(&self) -> io::Result<()> {
        if !self.io.rbuf.borrow().is_empty() {
            return Ok(());
        }
        self.io.stream.readable().await
    }

    /// The socket itself (buffered bytes are not visible through it).
    pub fn stream(&self) -> &TcpStream {
        &self.io.stream
    }
}
