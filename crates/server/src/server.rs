//! The `Server` builder, the running server, connection limits and graceful shutdown.

use std::any::Any;
use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::future::poll_fn;
use std::io::{self, Write};
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock, Weak};
use std::task::{Poll, Waker};
use std::time::{Duration, Instant};

use gyre_rt::net::{Acceptor, TcpStream};
use gyre_rt::{Handle, Label};
use http::Method;
use slab::Slab;

use crate::handler::Handler;
use crate::metrics::{Metrics, Reason};
use crate::router::Router;
use crate::Config;

/// A route's handler with its label for the stall watchdog.
pub(crate) struct Route {
    pub(crate) handler: Box<dyn Handler>,
    /// `METHOD /pattern`, interned once.
    pub(crate) label: Label,
    /// The pattern, leaked once per route so requests can borrow it freely.
    pub(crate) pattern: &'static str,
}

/// Builds a server: routes, state and settings.
pub struct Server {
    router: Router<Route>,
    config: Config,
    state: Option<Arc<dyn Any + Send + Sync>>,
    /// Filled at start, for routes that report on the server itself (`/metrics`).
    this: Arc<OnceLock<Weak<ServerShared>>>,
}

impl std::fmt::Debug for Server {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Server")
            .field("config", &self.config)
            .finish_non_exhaustive()
    }
}

impl Default for Server {
    fn default() -> Self {
        Self::new()
    }
}

impl Server {
    /// A server with no routes and the default settings.
    pub fn new() -> Self {
        Server {
            router: Router::new(),
            config: Config::default(),
            state: None,
            this: Arc::default(),
        }
    }

    /// Serves the metrics in the Prometheus text format at `path` (usually `/metrics`).
    pub fn metrics_route(self, path: &str) -> Self {
        let this = self.this.clone();
        self.get(path, move |_req: crate::Request| {
            let text = this
                .get()
                .and_then(Weak::upgrade)
                .map(|s| s.metrics.render(&s.rt))
                .unwrap_or_default();
            async move { crate::Response::with_body("text/plain; version=0.0.4", text) }
        })
    }

    /// Replaces the settings.
    pub fn config(mut self, config: Config) -> Self {
        self.config = config;
        self
    }

    /// Registers application state; handlers get it with `req.state::<T>()`.
    pub fn state<T: Send + Sync + 'static>(mut self, state: T) -> Self {
        self.state = Some(Arc::new(state));
        self
    }

    /// Adds a route (see [`Router::route`] for the pattern syntax).
    pub fn route(mut self, method: Method, pattern: &str, handler: impl Handler) -> Self {
        let label = Label::new(&format!("{method} {pattern}"));
        let pattern: &'static str = Box::leak(pattern.to_owned().into_boxed_str());
        self.router.route(
            method,
            pattern,
            Route {
                handler: Box::new(handler),
                label,
                pattern,
            },
        );
        self
    }

    /// Adds a GET route (HEAD is answered by it too).
    pub fn get(self, pattern: &str, handler: impl Handler) -> Self {
        self.route(Method::GET, pattern, handler)
    }

    /// Adds a POST route.
    pub fn post(self, pattern: &str, handler: impl Handler) -> Self {
        self.route(Method::POST, pattern, handler)
    }

    /// Adds a PUT route.
    pub fn put(self, pattern: &str, handler: impl Handler) -> Self {
        self.route(Method::PUT, pattern, handler)
    }

    /// Adds a DELETE route.
    pub fn delete(self, pattern: &str, handler: impl Handler) -> Self {
        self.route(Method::DELETE, pattern, handler)
    }

    /// Starts serving `listener` on every loop of `rt`.
    pub fn start(self, rt: &Handle, listener: std::net::TcpListener) -> io::Result<Running> {
        static IDS: AtomicU64 = AtomicU64::new(1);
        let shared = Arc::new(ServerShared {
            id: IDS.fetch_add(1, Ordering::Relaxed),
            metrics: Metrics::new(rt.loops()),
            router: self.router,
            io_settings: crate::io::IoSettings::new(&self.config),
            config: self.config,
            state: self.state,
            open: AtomicUsize::new(0),
            all_closed: std::sync::Condvar::new(),
            close_lock: std::sync::Mutex::new(()),
            refused_since_log: AtomicU64::new(0),
            last_limit_log: std::sync::Mutex::new(None),
            rt: rt.clone(),
        });
        let _ = self.this.set(Arc::downgrade(&shared));
        let s = shared.clone();
        let acceptor = rt.serve(listener, move |stream, peer| {
            // Admitted (or refused with 503) right away; the task then holds
            // only the connection's own future.
            let conn = s.admit(&stream).then(|| {
                let local = LocalServer::for_server(s.id, &s.state);
                crate::conn::serve(stream, peer, s.clone(), local)
            });
            MaybeServe { conn }
        })?;
        tracing::info!(target: "gyre::server", "listening on http://{}", acceptor.local_addr());
        Ok(Running {
            acceptor: Some(acceptor),
            shared,
        })
    }
}

pin_project_lite::pin_project! {
    /// A connection's future, or nothing for a refused one.
    struct MaybeServe<F> {
        #[pin]
        conn: Option<F>,
    }
}

impl<F: std::future::Future<Output = ()>> std::future::Future for MaybeServe<F> {
    type Output = ();

    fn poll(self: std::pin::Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> Poll<()> {
        match self.project().conn.as_pin_mut() {
            Some(f) => f.poll(cx),
            None => Poll::Ready(()),
        }
    }
}

/// What every connection of a server shares.
pub(crate) struct ServerShared {
    /// Tells this server's per-loop state apart from other servers' on the same loop.
    id: u64,
    pub(crate) router: Router<Route>,
    /// The settings every connection's I/O reads.
    pub(crate) io_settings: Arc<crate::io::IoSettings>,
    pub(crate) config: Config,
    pub(crate) state: Option<Arc<dyn Any + Send + Sync>>,
    pub(crate) metrics: Metrics,
    /// Open connections in the whole server (for the limit).
    pub(crate) open: AtomicUsize,
    /// Signalled when `open` drops to zero, for a shutdown that waits on it
    /// (with `close_lock`, so that no signal falls between its check and its wait).
    all_closed: std::sync::Condvar,
    close_lock: std::sync::Mutex<()>,
    /// Connections refused since the last log line about it.
    refused_since_log: AtomicU64,
    /// When the last "connection limit" line was logged.
    last_limit_log: std::sync::Mutex<Option<Instant>>,
    /// The runtime serving this server.
    rt: Handle,
}

impl ServerShared {
    #[cfg(test)]
    pub(crate) fn for_test() -> Self {
        let rt = gyre_rt::Builder::new().workers(1).build().unwrap();
        ServerShared {
            id: 0,
            router: Router::new(),
            io_settings: crate::io::IoSettings::new(&Config::default()),
            config: Config::default(),
            state: None,
            metrics: Metrics::new(1),
            open: AtomicUsize::new(0),
            all_closed: std::sync::Condvar::new(),
            close_lock: std::sync::Mutex::new(()),
            refused_since_log: AtomicU64::new(0),
            last_limit_log: std::sync::Mutex::new(None),
            rt: rt.handle().clone(),
        }
    }

    /// Counts a connection out; wakes a waiting shutdown when it was the last.
    pub(crate) fn connection_closed(&self) {
        if self.open.fetch_sub(1, Ordering::AcqRel) == 1 {
            let _held = self.close_lock.lock().unwrap_or_else(|e| e.into_inner());
            self.all_closed.notify_all();
        }
    }

    /// Counts a new connection, or refuses it with 503 when over the limit.
    fn admit(&self, stream: &TcpStream) -> bool {
        let open = self.open.fetch_add(1, Ordering::Relaxed);
        if open < self.config.max_connections {
            return true;
        }
        self.connection_closed();
        let metrics = self.metrics.local();
        metrics.refuse(Reason::ConnectionLimit);
        metrics.response(503);
        // One non-blocking write; a client that cannot take 120 bytes now gets a plain close.
        let mut msg = Vec::with_capacity(160);
        let _ = write!(
            msg,
            "HTTP/1.1 503 Service Unavailable\r\ncontent-length: 20\r\nconnection: close\r\nretry-after: 1\r\n\r\nserver at capacity\r\n"
        );
        let _ = stream.try_write(&msg);
        let refused = self.refused_since_log.fetch_add(1, Ordering::Relaxed) + 1;
        let mut last = self
            .last_limit_log
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        if last.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
            *last = Some(Instant::now());
            self.refused_since_log.fetch_sub(refused, Ordering::Relaxed);
            tracing::warn!(
                target: "gyre::server",
                "connection limit ({}) reached: refused {refused} connection(s) with 503",
                self.config.max_connections
            );
        }
        false
    }
}

/// This server's state on one loop: the shutdown flag and who to wake for
/// it, and the application state.
#[derive(Default)]
pub(crate) struct LocalServer {
    shutdown: Cell<bool>,
    /// Idle connections waiting for bytes, to be woken at shutdown.
    idle: RefCell<Slab<Waker>>,
    /// The server's application state, one reference per loop: requests
    /// reach it through their `Rc` of this, not an `Arc` clone each.
    pub(crate) state: Option<Arc<dyn Any + Send + Sync>>,
}

impl std::fmt::Debug for LocalServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LocalServer")
            .field("shutdown", &self.shutdown)
            .finish_non_exhaustive()
    }
}

thread_local! {
    static LOCAL_SERVERS: RefCell<HashMap<u64, Rc<LocalServer>>> = RefCell::new(HashMap::new());
}

impl LocalServer {
    /// Server `id`'s state on this loop, made on first use.
    fn for_server(id: u64, state: &Option<Arc<dyn Any + Send + Sync>>) -> Rc<LocalServer> {
        LOCAL_SERVERS.with(|m| {
            let mut servers = m.borrow_mut();
            let local = servers.entry(id).or_insert_with(|| {
                Rc::new(LocalServer {
                    state: state.clone(),
                    ..LocalServer::default()
                })
            });
            local.clone()
        })
    }

    pub(crate) fn shutting_down(&self) -> bool {
        self.shutdown.get()
    }

    /// Completes when graceful shutdown begins.
    pub(crate) async fn shutdown_signal(&self) {
        struct Registered<'a>(&'a LocalServer, Option<usize>);
        impl Drop for Registered<'_> {
            fn drop(&mut self) {
                if let Some(k) = self.1 {
                    self.0.forget_waiter(k);
                }
            }
        }
        let mut reg = Registered(self, None);
        poll_fn(|cx| self.poll_shutdown(cx, &mut reg.1)).await;
    }

    /// Ready once graceful shutdown has begun; until then keeps the task's
    /// waker in the waiter entry `key` (made on first use).
    pub(crate) fn poll_shutdown(
        &self,
        cx: &mut std::task::Context<'_>,
        key: &mut Option<usize>,
    ) -> Poll<()> {
        if self.shutdown.get() {
            return Poll::Ready(());
        }
        let mut idle = self.idle.borrow_mut();
        match *key {
            Some(k) if idle.contains(k) => {
                if !idle[k].will_wake(cx.waker()) {
                    idle[k] = cx.waker().clone();
                }
            }
            _ => *key = Some(idle.insert(cx.waker().clone())),
        }
        Poll::Pending
    }

    /// Drops a waiter entry made by [`poll_shutdown`](Self::poll_shutdown).
    pub(crate) fn forget_waiter(&self, key: usize) {
        self.idle.borrow_mut().try_remove(key);
    }

    fn begin_shutdown(&self) {
        self.shutdown.set(true);
        let wakers: Vec<Waker> = self.idle.borrow_mut().drain().collect();
        for w in wakers {
            w.wake();
        }
        // Idle keep-alive connections wait only for their socket: wake them
        // all to see the flag (see `io::ReadMore`).
        gyre_rt::net::wake_readers();
    }
}

/// A running server. Dropping it stops accepting (without waiting).
pub struct Running {
    acceptor: Option<Acceptor>,
    shared: Arc<ServerShared>,
}

impl std::fmt::Debug for Running {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Running")
            .field("addr", &self.local_addr())
            .finish()
    }
}

impl Running {
    /// The address the server listens on.
    pub fn local_addr(&self) -> Option<std::net::SocketAddr> {
        self.acceptor.as_ref().map(Acceptor::local_addr)
    }

    /// The server's counters.
    pub fn metrics(&self) -> &Metrics {
        &self.shared.metrics
    }

    /// The metrics in the Prometheus text format.
    pub fn render_metrics(&self) -> String {
        self.shared.metrics.render(&self.shared.rt)
    }

    /// Graceful shutdown: stop accepting, close idle connections, let
    /// in-flight requests finish (their connections close after the
    /// response), and wait until all are closed or the deadline passes.
    /// Returns whether every connection closed in time. Logs each step.
    ///
    /// Blocks the calling thread while it waits, so call it from the main
    /// thread (or any thread that is not a loop); it panics on a loop thread,
    /// whose connections it would otherwise wait for forever.
    pub fn shutdown(mut self) -> bool {
        assert!(
            gyre_rt::current_loop().is_none(),
            "Running::shutdown waits for the loops; call it off a loop thread"
        );
        let deadline = Instant::now() + self.shared.config.shutdown_timeout;
        if let Some(a) = self.acceptor.take() {
            a.stop();
        }
        tracing::info!(target: "gyre::server", "shutdown: stopped accepting new connections");
        let id = self.shared.id;
        for i in 0..self.shared.rt.loops() {
            let state = self.shared.state.clone();
            self.shared
                .rt
                .spawn_on(i, async move {
                    LocalServer::for_server(id, &state).begin_shutdown()
                })
                .detach();
        }
        let open = self.shared.open.load(Ordering::Relaxed);
        tracing::info!(
            target: "gyre::server",
            "shutdown: closing idle connections, {open} connection(s) open"
        );
        let shared = &*self.shared;
        let mut held = shared.close_lock.lock().unwrap_or_else(|e| e.into_inner());
        while shared.open.load(Ordering::Acquire) > 0 {
            let Some(left) = deadline.checked_duration_since(Instant::now()) else {
                break;
            };
            held = shared
                .all_closed
                .wait_timeout(held, left)
                .unwrap_or_else(|e| e.into_inner())
                .0;
        }
        drop(held);
        let left = self.shared.open.load(Ordering::Relaxed);
        if left == 0 {
            tracing::info!(target: "gyre::server", "shutdown: all connections closed");
            true
        } else {
            tracing::warn!(
                target: "gyre::server",
                "shutdown: deadline passed with {left} connection(s) still open"
            );
            false
        }
    }
}
