//! Serving one listener from every loop, so that a stalled loop takes no new
//! connections.
//!
//! Each loop registers its own duplicate of the listening socket with its own
//! epoll. A new connection wakes every loop that is waiting in epoll; the first
//! to call `accept` gets it. A loop stuck in a long turn is not in epoll and
//! does not call `accept`, so the healthy loops take every new client. (With
//! `SO_REUSEPORT` the kernel would hash some clients to the stuck loop's own
//! queue, where they would wait out the stall.) The price is a wake-up of the
//! idle loops per new connection, the same trade nginx makes with
//! `accept_mutex off`.

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::{TcpListener, TcpStream};
use crate::event_loop;
use crate::runtime::Handle;
use crate::task::{spawn, yield_now, JoinHandle};
use crate::time::sleep;

/// Connections accepted in a row before the accept task yields to the loop's other tasks.
const ACCEPT_BUDGET: usize = 64;

/// The accept tasks of one listener, one per loop. Dropping it (or calling
/// [`stop`](Self::stop)) stops accepting; connections already accepted go on.
#[derive(Debug)]
pub struct Acceptor {
    tasks: Vec<JoinHandle<()>>,
    local_addr: SocketAddr,
}

impl Acceptor {
    /// The address the listener is bound to.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting on every loop and closes the listening socket.
    pub fn stop(self) {
        drop(self);
    }
}

impl Drop for Acceptor {
    fn drop(&mut self) {
        for t in self.tasks.drain(..) {
            t.abort();
        }
    }
}

impl Handle {
    /// Serves `listener` from every loop: each accepted connection is handed
    /// to `handler`, whose future runs as a task on the accepting loop.
    pub fn serve<F, Fut>(&self, listener: std::net::TcpListener, handler: F) -> io::Result<Acceptor>
    where
        F: Fn(TcpStream, SocketAddr) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        let local_addr = listener.local_addr()?;
        let handler = Arc::new(handler);
        let mut tasks = Vec::with_capacity(self.loops());
        for index in 0..self.loops() {
            let dup = listener.try_clone()?;
            let handler = handler.clone();
            // The duplicate is registered with its loop's epoll there.
            tasks.push(self.spawn_local_on(index, move || accept_loop(dup, handler)));
        }
        Ok(Acceptor { tasks, local_addr })
    }
}

async fn accept_loop<F, Fut>(listener: std::net::TcpListener, handler: Arc<F>)
where
    F: Fn(TcpStream, SocketAddr) -> Fut + 'static,
    Fut: Future<Output = ()> + 'static,
{
    let listener = match TcpListener::from_std(listener) {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(target: "gyre::accept", "cannot register the listener: {e}");
            return;
        }
    };
    let shared = event_loop::with_current(|l| l.shared.clone());
    let mut in_a_row = 0;
    let mut out_of_fds = false;
    loop {
        match listener.accept().await {
            Ok((stream, addr)) => {
                out_of_fds = false;
                shared.stats.accepted.fetch_add(1, Ordering::Relaxed);
                spawn(handler(stream, addr)).detach();
                in_a_row += 1;
                if in_a_row == ACCEPT_BUDGET {
                    in_a_row = 0;
                    yield_now().await;
                }
            }
            Err(e) if is_transient(&e) => {}
            Err(e) if is_out_of_resources(&e) => {
                // Out of file descriptors or memory: back off instead of
                // spinning, and say so once per burst, not per attempt.
                if !out_of_fds {
                    tracing::warn!(target: "gyre::accept", "accept failed, backing off: {e}");
                    out_of_fds = true;
                }
                sleep(Duration::from_millis(50)).await;
            }
            Err(e) => {
                tracing::error!(target: "gyre::accept", "accept failed: {e}");
                sleep(Duration::from_millis(10)).await;
            }
        }
    }
}

/// Errors about one connection that died in the backlog: try the next.
fn is_transient(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::Interrupted
    )
}

/// EMFILE, ENFILE, ENOBUFS, ENOMEM.
fn is_out_of_resources(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(23 | 24 | 105 | 12))
}
