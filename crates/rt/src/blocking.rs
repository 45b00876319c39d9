//! The blocking pool: a bounded set of threads with a bounded queue, for work
//! that would stall a loop (file system calls, CPU-heavy or blocking libraries).
//!
//! `run(f)` is a future: while the queue is full the calling task waits (it is
//! not an error, and nothing piles up), so backpressure reaches the clients.

use std::collections::VecDeque;
use std::future::poll_fn;
use std::panic::{catch_unwind, resume_unwind, AssertUnwindSafe};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::task::{Poll, Waker};
use std::time::Duration;

use async_task::Runnable;

/// Settings of a blocking pool.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// Most threads the pool starts. Default 64.
    pub max_threads: usize,
    /// Most jobs waiting for a thread. Default 1024.
    pub queue_capacity: usize,
    /// An idle thread exits after this long. Default 10 s.
    pub keep_alive: Duration,
    /// Thread name prefix.
    pub name: String,
}

impl Default for PoolConfig {
    fn default() -> Self {
        PoolConfig {
            max_threads: 64,
            queue_capacity: 1024,
            keep_alive: Duration::from_secs(10),
            name: "gyre-blocking".to_owned(),
        }
    }
}

/// A snapshot of the pool's numbers, for metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PoolStats {
    /// The configured maximum of threads.
    pub max_threads: usize,
    /// Threads alive now.
    pub threads: usize,
    /// Threads running a job now.
    pub busy: usize,
    /// Jobs waiting for a thread.
    pub queued: usize,
    /// The configured queue capacity.
    pub queue_capacity: usize,
    /// Tasks waiting for room in the queue.
    pub waiting: usize,
}

/// A bounded pool of threads for blocking work. Cheap to clone.
#[derive(Debug, Clone)]
pub struct BlockingPool {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    config: PoolConfig,
    /// All mutable state, under one lock (jobs are coarse; contention is low).
    state: Mutex<State>,
    /// Signals idle workers that a job arrived or the pool shuts down.
    work: Condvar,
}

#[derive(Debug, Default)]
struct State {
    /// Jobs waiting for a thread. INVARIANT: `queue.len() <= queue_capacity`.
    queue: VecDeque<Runnable>,
    /// Threads alive.
    threads: usize,
    /// Threads waiting on `work`.
    idle: usize,
    /// Wake-ups sent to idle threads and not yet taken.
    notified: usize,
    /// Threads running a job.
    busy: usize,
    /// Submitters waiting for room, FIFO, tagged with their id.
    waiters: VecDeque<(u64, Waker)>,
    /// Source of waiter ids.
    next_waiter: u64,
    /// Set when the pool is dropped: workers exit once the queue is empty.
    shutdown: bool,
}

impl BlockingPool {
    /// A pool with these settings; threads start on demand.
    pub fn new(config: PoolConfig) -> Self {
        assert!(config.max_threads > 0 && config.queue_capacity > 0);
        BlockingPool {
            inner: Arc::new(Inner {
                config,
                state: Mutex::default(),
                work: Condvar::new(),
            }),
        }
    }

    /// The pool's numbers now.
    pub fn stats(&self) -> PoolStats {
        let st = self.inner.lock();
        PoolStats {
            max_threads: self.inner.config.max_threads,
            threads: st.threads,
            busy: st.busy,
            queued: st.queue.len(),
            queue_capacity: self.inner.config.queue_capacity,
            waiting: st.waiters.len(),
        }
    }

    /// Runs `f` on a pool thread and returns its result. Waits while the queue
    /// is full. A panic in `f` is raised again in the caller.
    pub async fn run<F, T>(&self, f: F) -> T
    where
        F: FnOnce() -> T + Send + 'static,
        T: Send + 'static,
    {
        let job = async move { catch_unwind(AssertUnwindSafe(f)) };
        let mut job = Some(job);
        let mut waiter = WaiterGuard {
            inner: &self.inner,
            id: None,
        };
        let task = poll_fn(|cx| {
            let mut st = self.inner.lock();
            if st.queue.len() >= self.inner.config.queue_capacity {
                waiter.register(&mut st, cx.waker());
                return Poll::Pending;
            }
            waiter.forget(&mut st);
            let inner = self.inner.clone();
            // The job was not yet taken: this closure returns Ready right after.
            let job = job.take().expect("job submitted twice");
            let (runnable, task) = async_task::spawn(job, move |r| inner.push(r));
            st.queue.push_back(runnable);
            self.inner.wake_worker(&mut st);
            Poll::Ready(task)
        })
        .await;
        match task.await {
            Ok(v) => v,
            Err(payload) => resume_unwind(payload),
        }
    }
}

/// Keeps a waiting submitter's place in line; if it is dropped after being
/// woken but before it used the room, it passes the wake-up on.
struct WaiterGuard<'a> {
    inner: &'a Inner,
    id: Option<u64>,
}

impl WaiterGuard<'_> {
    fn register(&mut self, st: &mut State, waker: &Waker) {
        if let Some(id) = self.id {
            if let Some(entry) = st.waiters.iter_mut().find(|(i, _)| *i == id) {
                entry.1 = waker.clone();
                return;
            }
        }
        let id = st.next_waiter;
        st.next_waiter += 1;
        st.waiters.push_back((id, waker.clone()));
        self.id = Some(id);
    }

    fn forget(&mut self, st: &mut State) {
        if let Some(id) = self.id.take() {
            st.waiters.retain(|(i, _)| *i != id);
        }
    }
}

impl Drop for WaiterGuard<'_> {
    fn drop(&mut self) {
        let Some(id) = self.id else { return };
        let mut st = self.inner.lock();
        let before = st.waiters.len();
        st.waiters.retain(|(i, _)| *i != id);
        let was_woken = st.waiters.len() == before;
        if was_woken && st.queue.len() < self.inner.config.queue_capacity {
            if let Some((_, next)) = st.waiters.pop_front() {
                next.wake();
            }
        }
    }
}

impl Inner {
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Re-schedules a job (async-task calls this; jobs never yield, so only the first time matters).
    fn push(self: &Arc<Self>, runnable: Runnable) {
        let mut st = self.lock();
        st.queue.push_back(runnable);
        self.wake_worker(&mut st);
    }

    /// Makes sure a thread will take the job just queued.
    fn wake_worker(self: &Arc<Self>, st: &mut State) {
        if st.idle > st.notified {
            st.notified += 1;
            self.work.notify_one();
        } else if st.threads < self.config.max_threads {
            st.threads += 1;
            let inner = self.clone();
            let name = format!("{}-{}", self.config.name, st.threads);
            let spawned = std::thread::Builder::new()
                .name(name)
                .spawn(move || inner.worker());
            if let Err(e) = spawned {
                st.threads -= 1;
                tracing::error!("blocking pool: cannot start a thread: {e}");
            }
        }
    }

    fn worker(self: Arc<Self>) {
        let mut st = self.lock();
        loop {
            if let Some(runnable) = st.queue.pop_front() {
                st.busy += 1;
                // A place in the queue came free: let one waiting submitter in.
                if let Some((_, w)) = st.waiters.pop_front() {
                    w.wake();
                }
                drop(st);
                runnable.run();
                st = self.lock();
                st.busy -= 1;
                continue;
            }
            if st.shutdown {
                break;
            }
            st.idle += 1;
            let (guard, timeout) = self
                .work
                .wait_timeout(st, self.config.keep_alive)
                .unwrap_or_else(|e| e.into_inner());
            st = guard;
            st.idle -= 1;
            if st.notified > 0 {
                st.notified -= 1;
            } else if timeout.timed_out() && st.queue.is_empty() {
                break;
            }
        }
        st.threads -= 1;
    }
}

impl BlockingPool {
    /// Lets idle workers exit now instead of after `keep_alive`; queued jobs still run.
    pub fn shutdown(&self) {
        self.inner.lock().shutdown = true;
        self.inner.work.notify_all();
    }
}

/// Runs `f` on the current runtime's blocking pool; see [`BlockingPool::run`].
///
/// Must be called from a task on a loop thread.
pub async fn blocking<F, T>(f: F) -> T
where
    F: FnOnce() -> T + Send + 'static,
    T: Send + 'static,
{
    let pool = crate::event_loop::with_current(|l| l.runtime.blocking.clone());
    pool.run(f).await
}
