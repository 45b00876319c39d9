//! One event loop: the thread body that runs tasks, fires timers and waits on epoll.
//!
//! A loop is split in two. [`Shared`] is what other threads may touch: the
//! inbox, the mio waker, the heartbeat read by the watchdog. [`Local`] lives
//! on the loop's own thread only (behind an `Rc`): the ready queue, the
//! readiness slots of its sockets and the timer wheel.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io;
use std::rc::Rc;
use std::sync::atomic::{fence, AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_task::Runnable;
use mio::{Events, Poll, Token};

use crate::reactor::Reactor;
use crate::runtime::RuntimeShared;
use crate::time::Timers;

/// The token of the loop's `mio::Waker`; socket tokens are slab keys, far below it.
pub(crate) const WAKER_TOKEN: Token = Token(usize::MAX);

/// Tasks run per turn before the loop looks at I/O and timers again, so that
/// a storm of self-waking tasks cannot starve the sockets.
const TASK_BUDGET: usize = 256;

/// Counters of one loop, readable from any thread (for `/metrics`).
#[derive(Debug, Default)]
pub struct LoopStats {
    /// Stalls the watchdog has seen on this loop.
    pub stalls: AtomicU64,
    /// Total time spent stalled, in milliseconds (added when a stall ends).
    pub stall_ms: AtomicU64,
    /// Whether the loop is stalled right now (set by the watchdog, cleared by the loop).
    pub stalled: AtomicBool,
    /// Connections accepted by this loop since it started.
    pub accepted: AtomicU64,
    /// Tasks that panicked on this loop.
    pub panics: AtomicU64,
}

/// The part of a loop that other threads may touch.
#[derive(Debug)]
pub(crate) struct Shared {
    /// Position of this loop in the runtime (0-based); also its thread name suffix.
    pub(crate) index: usize,
    /// Runnables scheduled from other threads. INVARIANT: never pushed to once
    /// `closed` is set (checked under this lock), so a runnable of a local task is
    /// never dropped on a foreign thread.
    inbox: Mutex<Inbox>,
    /// Wakes the loop out of `epoll_wait`.
    waker: mio::Waker,
    /// True while the loop is (about to be) parked in `epoll_wait`; a remote
    /// scheduler calls `waker.wake()` only if it swaps this from true to false.
    parked: AtomicBool,
    /// Set to ask the loop to exit.
    pub(crate) shutdown: AtomicBool,
    /// Milliseconds (runtime clock) + 1 at which the current turn began, or 0
    /// while the loop waits in epoll. The watchdog reads it.
    pub(crate) busy_since: AtomicU64,
    /// The label of the work the loop is running now (see [`crate::Label`]).
    pub(crate) label: AtomicU32,
    /// Counters for metrics.
    pub(crate) stats: LoopStats,
    /// Tasks alive on this loop (spawned and not yet finished).
    pub(crate) tasks: AtomicUsize,
}

#[derive(Debug, Default)]
struct Inbox {
    /// Runnables waiting to be moved into the local queue.
    queue: Vec<Runnable>,
    /// Set by the loop when it exits; later arrivals are leaked rather than run or dropped.
    closed: bool,
}

thread_local! {
    /// The loop running on this thread, if any.
    static CURRENT: RefCell<Option<Rc<Local>>> = const { RefCell::new(None) };
    /// Address of the current loop's `Shared`, to tell "my loop" from another
    /// without touching `CURRENT` (compared, never dereferenced).
    static CURRENT_SHARED: Cell<usize> = const { Cell::new(0) };
}

impl Shared {
    pub(crate) fn new(index: usize, waker: mio::Waker) -> Self {
        Shared {
            index,
            inbox: Mutex::default(),
            waker,
            parked: AtomicBool::new(false),
            shutdown: AtomicBool::new(false),
            busy_since: AtomicU64::new(0),
            label: AtomicU32::new(0),
            stats: LoopStats::default(),
            tasks: AtomicUsize::new(0),
        }
    }

    /// Schedules a runnable of a task that belongs to this loop, from any thread.
    pub(crate) fn schedule(self: &Arc<Self>, runnable: Runnable) {
        if CURRENT_SHARED.with(Cell::get) == Arc::as_ptr(self) as usize {
            // On our own thread: straight into the ready queue, no atomics.
            CURRENT.with(|c| match &*c.borrow() {
                Some(local) => local.queue.borrow_mut().push_back(runnable),
                None => drop(runnable),
            });
            return;
        }
        {
            let mut inbox = self.inbox.lock().unwrap_or_else(|e| e.into_inner());
            if inbox.closed {
                // The loop is gone; dropping a local task's runnable here would
                // drop its future on the wrong thread, so leak it.
                std::mem::forget(runnable);
                return;
            }
            inbox.queue.push(runnable);
        }
        self.notify();
    }

    /// Wakes the loop if it is parked (or about to park). Pairs with the fence in [`Local::park`].
    pub(crate) fn notify(&self) {
        fence(Ordering::SeqCst);
        if self.parked.swap(false, Ordering::AcqRel) {
            let _ = self.waker.wake();
        }
    }

    fn inbox_is_empty(&self) -> bool {
        self.inbox
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .queue
            .is_empty()
    }

    /// Wakes the loop whether or not it looks parked (a manual clock moved).
    pub(crate) fn force_wake(&self) {
        self.parked.store(false, Ordering::SeqCst);
        let _ = self.waker.wake();
    }

    /// Asks the loop to exit at its next turn.
    pub(crate) fn request_shutdown(&self) {
        self.shutdown.store(true, Ordering::SeqCst);
        self.parked.store(false, Ordering::SeqCst);
        let _ = self.waker.wake();
    }
}

/// The part of a loop that only its own thread touches.
pub(crate) struct Local {
    /// The cross-thread half of this loop.
    pub(crate) shared: Arc<Shared>,
    /// The runtime this loop belongs to (clock, blocking pool, other loops).
    pub(crate) runtime: Arc<RuntimeShared>,
    /// Tasks ready to run, in FIFO order.
    pub(crate) queue: RefCell<VecDeque<Runnable>>,
    /// Readiness slots of this loop's sockets.
    pub(crate) reactor: Reactor,
    /// Pending timers.
    pub(crate) timers: Timers,
}

impl std::fmt::Debug for Local {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Local")
            .field("index", &self.shared.index)
            .finish_non_exhaustive()
    }
}

thread_local! {
    /// How many times this thread's loop has come back from epoll; 0 off a loop.
    static TURN: std::cell::Cell<u64> = const { std::cell::Cell::new(0) };
}

/// The current turn of this thread's loop (it changes every time the loop
/// comes back from epoll), or `None` off a loop. Values cached "for this
/// turn" stay as fresh as the turn is short: the clock for a `Date` field,
/// for example.
pub fn loop_turn() -> Option<u64> {
    match TURN.get() {
        0 => None,
        n => Some(n),
    }
}

/// Runs `f` with the loop of the current thread, or returns `None` off a loop.
pub(crate) fn try_with_current<R>(f: impl FnOnce(&Rc<Local>) -> R) -> Option<R> {
    CURRENT.with(|c| c.borrow().as_ref().map(f))
}

/// Runs `f` with the loop of the current thread; panics off a loop thread.
pub(crate) fn with_current<R>(f: impl FnOnce(&Rc<Local>) -> R) -> R {
    try_with_current(f).expect("this must be called on a gyre event loop thread")
}

/// The loop of the current thread.
pub(crate) fn current() -> Rc<Local> {
    with_current(Rc::clone)
}

/// Body of a loop thread: sets up the loop, runs it until shutdown, tears it down.
pub(crate) fn run(
    shared: Arc<Shared>,
    runtime: Arc<RuntimeShared>,
    mut poll: Poll,
) -> io::Result<()> {
    let reactor = Reactor::new(poll.registry().try_clone()?);
    let local = Rc::new(Local {
        timers: Timers::new(runtime.clock.clone()),
        shared: shared.clone(),
        runtime,
        queue: RefCell::new(VecDeque::with_capacity(1024)),
        reactor,
    });
    CURRENT.with(|c| *c.borrow_mut() = Some(local.clone()));
    CURRENT_SHARED.with(|c| c.set(Arc::as_ptr(&shared) as usize));
    let mut events = Events::with_capacity(1024);
    let mut fired = Vec::new();
    while !shared.shutdown.load(Ordering::Acquire) {
        local.run_tasks();
        local.drain_inbox();
        local.timers.fire(&mut fired);
        let timeout = if local.queue.borrow().is_empty() {
            local.timers.poll_timeout()
        } else {
            Some(Duration::ZERO)
        };
        local.park(&mut poll, &mut events, timeout)?;
        local.reactor.dispatch(&events);
    }
    local.teardown();
    CURRENT.with(|c| c.borrow_mut().take());
    CURRENT_SHARED.with(|c| c.set(0));
    Ok(())
}

impl Local {
    fn run_tasks(&self) {
        for _ in 0..TASK_BUDGET {
            let next = self.queue.borrow_mut().pop_front();
            match next {
                Some(runnable) => {
                    runnable.run();
                }
                None => return,
            }
        }
    }

    fn drain_inbox(&self) {
        let mut inbox = self.shared.inbox.lock().unwrap_or_else(|e| e.into_inner());
        if !inbox.queue.is_empty() {
            self.queue.borrow_mut().extend(inbox.queue.drain(..));
        }
    }

    /// Waits in epoll for at most `timeout`, maintaining the parked flag and the heartbeat.
    fn park(
        &self,
        poll: &mut Poll,
        events: &mut Events,
        mut timeout: Option<Duration>,
    ) -> io::Result<()> {
        let shared = &*self.shared;
        if timeout != Some(Duration::ZERO) {
            shared.parked.store(true, Ordering::SeqCst);
            // Dekker pair with `Shared::notify`: either the scheduler sees `parked`
            // and wakes us, or we see its runnable here and do not block.
            fence(Ordering::SeqCst);
            if !shared.inbox_is_empty() {
                timeout = Some(Duration::ZERO);
            }
        }
        self.end_turn();
        let result = poll.poll(events, timeout);
        TURN.set(TURN.get() + 1);
        shared.parked.store(false, Ordering::Relaxed);
        // One clock read a turn serves the heartbeat and the timers.
        let raw = crate::time::monotonic_ms();
        self.timers.start_turn(raw);
        let now = self.runtime.heartbeat_ms_at(raw);
        shared.busy_since.store(now + 1, Ordering::Relaxed);
        match result {
            Err(e) if e.kind() != io::ErrorKind::Interrupted => Err(e),
            _ => Ok(()),
        }
    }

    /// Marks the loop as back at its poll; closes a stall the watchdog opened.
    fn end_turn(&self) {
        let shared = &*self.shared;
        if shared.stats.stalled.load(Ordering::Relaxed) {
            let started = shared.busy_since.load(Ordering::Relaxed).saturating_sub(1);
            let stalled_ms = self.runtime.heartbeat_ms().saturating_sub(started);
            shared
                .stats
                .stall_ms
                .fetch_add(stalled_ms, Ordering::Relaxed);
            shared.stats.stalled.store(false, Ordering::Relaxed);
            tracing::warn!(
                target: "gyre::watchdog",
                "loop {} recovered after a stall of {} ms",
                shared.index,
                stalled_ms
            );
        }
        shared.busy_since.store(0, Ordering::Relaxed);
    }

    /// Drops every task of this loop on this thread, then closes the inbox.
    fn teardown(&self) {
        {
            let mut inbox = self.shared.inbox.lock().unwrap_or_else(|e| e.into_inner());
            inbox.closed = true;
            let pending: Vec<_> = inbox.queue.drain(..).collect();
            drop(inbox);
            self.queue.borrow_mut().extend(pending);
        }
        // Dropping sockets and timers drops wakers; a task losing its last
        // waker is scheduled once more so that its future is dropped here.
        let slots = self.reactor.take_all();
        drop(slots);
        let timers = self.timers.take_all();
        drop(timers);
        loop {
            let next = self.queue.borrow_mut().pop_front();
            match next {
                Some(runnable) => drop(runnable),
                None => break,
            }
        }
        self.shared.busy_since.store(0, Ordering::Relaxed);
    }
}
