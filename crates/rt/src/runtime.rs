//! The runtime: N event loops on named threads, a blocking pool, a watchdog.

use std::future::Future;
use std::io;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::thread::JoinHandle as ThreadHandle;
use std::time::Duration;

use mio::{Poll, Waker};

use crate::blocking::{BlockingPool, PoolConfig, PoolStats};
use crate::event_loop::{self, Shared, WAKER_TOKEN};
use crate::task::{self, JoinError, JoinHandle};
use crate::time::{Clock, SystemClock};
use crate::watchdog::Watchdog;

/// Configures and starts a [`Runtime`].
#[derive(Debug, Clone)]
pub struct Builder {
    /// Number of loops. Default: the available parallelism.
    workers: usize,
    /// A turn longer than this is a stall. Default 100 ms.
    stall_threshold: Duration,
    /// Settings of the blocking pool.
    pool: PoolConfig,
    /// Time source of the timers.
    clock: Clock,
    /// Whether to start the watchdog thread. Default true.
    watchdog: bool,
}

impl Default for Builder {
    fn default() -> Self {
        Builder {
            workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
            stall_threshold: Duration::from_millis(100),
            pool: PoolConfig::default(),
            clock: Clock::default(),
            watchdog: true,
        }
    }
}

impl Builder {
    /// The defaults: one loop per available core.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the number of event loops (at least 1).
    pub fn workers(mut self, n: usize) -> Self {
        self.workers = n.max(1);
        self
    }

    /// Sets how long a loop may go without returning to its poll before the
    /// watchdog reports a stall.
    pub fn stall_threshold(mut self, threshold: Duration) -> Self {
        self.stall_threshold = threshold;
        self
    }

    /// Turns the stall watchdog on or off.
    pub fn watchdog(mut self, on: bool) -> Self {
        self.watchdog = on;
        self
    }

    /// Sets the blocking pool's settings.
    pub fn blocking_pool(mut self, config: PoolConfig) -> Self {
        self.pool = config;
        self
    }

    /// Sets the timers' clock (a manual clock makes timer tests independent of the wall clock).
    pub fn clock(mut self, clock: Clock) -> Self {
        self.clock = clock;
        self
    }

    /// Starts the loops.
    pub fn build(self) -> io::Result<Runtime> {
        let mut polls = Vec::with_capacity(self.workers);
        let mut loops = Vec::with_capacity(self.workers);
        for index in 0..self.workers {
            let poll = Poll::new()?;
            let waker = Waker::new(poll.registry(), WAKER_TOKEN)?;
            loops.push(Arc::new(Shared::new(index, waker)));
            polls.push(poll);
        }
        self.clock.attach(&loops);
        let shared = Arc::new(RuntimeShared {
            loops,
            clock: self.clock,
            blocking: BlockingPool::new(self.pool),
            epoch: SystemClock::new(),
        });
        let mut threads = Vec::with_capacity(self.workers);
        for (index, poll) in polls.into_iter().enumerate() {
            let loop_shared = shared.loops[index].clone();
            let rt = shared.clone();
            let thread = std::thread::Builder::new()
                .name(format!("gyre-loop-{index}"))
                .spawn(move || loop_thread(loop_shared, rt, poll))?;
            threads.push(thread);
        }
        let watchdog = if self.watchdog {
            Some(Watchdog::start(shared.clone(), self.stall_threshold)?)
        } else {
            None
        };
        Ok(Runtime {
            handle: Handle { shared },
            threads,
            watchdog,
        })
    }
}

fn loop_thread(shared: Arc<Shared>, rt: Arc<RuntimeShared>, poll: Poll) {
    let index = shared.index;
    match catch_unwind(AssertUnwindSafe(|| event_loop::run(shared, rt, poll))) {
        Ok(Ok(())) => tracing::debug!(target: "gyre::rt", "loop {index} stopped"),
        Ok(Err(e)) => tracing::error!(target: "gyre::rt", "loop {index} died: {e}"),
        Err(p) => tracing::error!(
            target: "gyre::rt",
            "loop {index} died: {}",
            task::panic_message(&p)
        ),
    }
}

/// What all loops of a runtime share.
#[derive(Debug)]
pub(crate) struct RuntimeShared {
    /// The loops, by index.
    pub(crate) loops: Vec<Arc<Shared>>,
    /// The timers' clock.
    pub(crate) clock: Clock,
    /// The pool behind [`crate::blocking`].
    pub(crate) blocking: BlockingPool,
    /// Origin of the heartbeat clock (always the wall clock, even when timers use a manual one).
    epoch: SystemClock,
}

impl RuntimeShared {
    /// Wall-clock milliseconds since the runtime started, for heartbeats.
    pub(crate) fn heartbeat_ms(&self) -> u64 {
        self.epoch.now_ms()
    }

    /// [`heartbeat_ms`](Self::heartbeat_ms) at the `monotonic_ms` reading `raw_ms`.
    pub(crate) fn heartbeat_ms_at(&self, raw_ms: u64) -> u64 {
        self.epoch.at(raw_ms)
    }
}

/// A running set of event loops. Dropping it shuts them down.
#[derive(Debug)]
pub struct Runtime {
    handle: Handle,
    threads: Vec<ThreadHandle<()>>,
    watchdog: Option<Watchdog>,
}

impl Runtime {
    /// A runtime with the default settings.
    pub fn new() -> io::Result<Runtime> {
        Builder::new().build()
    }

    /// A cloneable, `Send` handle to this runtime.
    pub fn handle(&self) -> &Handle {
        &self.handle
    }

    /// Runs `future` on loop 0 and blocks this thread until it completes.
    /// A panic in the future is raised again here. The future is moved to the
    /// loop before it first runs, so it must be `Send`; inside, it may spawn
    /// and await local (non-`Send`) work.
    pub fn block_on<F>(&self, future: F) -> F::Output
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        self.block_on_local(move || future)
    }

    /// Like [`block_on`](Self::block_on), but the future is made on loop 0 by
    /// `make`, so it need not be `Send`.
    pub fn block_on_local<M, Fut>(&self, make: M) -> Fut::Output
    where
        M: FnOnce() -> Fut + Send + 'static,
        Fut: Future + 'static,
        Fut::Output: Send + 'static,
    {
        match crate::block_on(self.handle.spawn_local_on(0, make)) {
            Ok(v) => v,
            Err(JoinError::Panicked(m)) => panic!("{m}"),
            Err(JoinError::Cancelled) => {
                panic!("the runtime shut down before the future completed")
            }
        }
    }

    /// Stops every loop (tasks still pending are dropped on their loop) and
    /// waits for the threads to exit.
    pub fn shutdown(mut self) {
        self.stop();
    }

    fn stop(&mut self) {
        for l in &self.handle.shared.loops {
            l.request_shutdown();
        }
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
        if let Some(mut w) = self.watchdog.take() {
            w.stop();
        }
        self.handle.shared.blocking.shutdown();
    }
}

impl Drop for Runtime {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A handle to a runtime, usable from any thread.
#[derive(Debug, Clone)]
pub struct Handle {
    pub(crate) shared: Arc<RuntimeShared>,
}

/// A snapshot of one loop's numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoopSnapshot {
    /// The loop's index.
    pub index: usize,
    /// Stalls seen by the watchdog.
    pub stalls: u64,
    /// Total stall time in milliseconds.
    pub stall_ms: u64,
    /// Whether the loop is stalled now.
    pub stalled: bool,
    /// Connections accepted by this loop.
    pub accepted: u64,
    /// Tasks alive on this loop.
    pub tasks: usize,
    /// Tasks that panicked on this loop.
    pub panics: u64,
}

impl Handle {
    /// The handle of the runtime whose loop runs the current thread.
    ///
    /// Panics off a loop thread.
    pub fn current() -> Handle {
        event_loop::with_current(|l| Handle {
            shared: l.runtime.clone(),
        })
    }

    /// Number of loops.
    pub fn loops(&self) -> usize {
        self.shared.loops.len()
    }

    /// Runs a `Send` future on loop `index` (modulo the number of loops).
    pub fn spawn_on<F>(&self, index: usize, future: F) -> JoinHandle<F::Output>
    where
        F: Future + Send + 'static,
        F::Output: Send + 'static,
    {
        let l = &self.shared.loops[index % self.shared.loops.len()];
        task::spawn_on(l, future)
    }

    /// Runs the future that `make` returns on loop `index` (modulo the number
    /// of loops). `make` is sent to the loop and called there, so the future
    /// itself need not be `Send`: it may hold sockets, timers and `Rc`s.
    pub fn spawn_local_on<M, Fut>(&self, index: usize, make: M) -> JoinHandle<Fut::Output>
    where
        M: FnOnce() -> Fut + Send + 'static,
        Fut: Future + 'static,
        Fut::Output: Send + 'static,
    {
        let l = &self.shared.loops[index % self.shared.loops.len()];
        task::spawn_local_on(l, make)
    }

    /// The numbers of every loop.
    pub fn loop_stats(&self) -> Vec<LoopSnapshot> {
        self.shared
            .loops
            .iter()
            .map(|l| LoopSnapshot {
                index: l.index,
                stalls: l.stats.stalls.load(Ordering::Relaxed),
                stall_ms: l.stats.stall_ms.load(Ordering::Relaxed),
                stalled: l.stats.stalled.load(Ordering::Relaxed),
                accepted: l.stats.accepted.load(Ordering::Relaxed),
                tasks: l.tasks.load(Ordering::Relaxed),
                panics: l.stats.panics.load(Ordering::Relaxed),
            })
            .collect()
    }

    /// The blocking pool's numbers.
    pub fn blocking_stats(&self) -> PoolStats {
        self.shared.blocking.stats()
    }

    /// The blocking pool itself.
    pub fn blocking_pool(&self) -> &BlockingPool {
        &self.shared.blocking
    }
}

/// Index of the loop running the current thread, if any.
pub fn current_loop() -> Option<usize> {
    event_loop::try_with_current(|l| l.shared.index)
}
