//! Timers: `sleep`, `timeout`, `interval`, on a per-loop hashed wheel with 1 ms ticks.

mod clock;
mod deadline;
pub mod wheel;

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
use std::time::Duration;

pub(crate) use clock::monotonic_ms;
pub use clock::{Clock, ManualClock, SystemClock};
pub use deadline::Deadline;
use wheel::{TimerKey, Wheel};

use crate::event_loop::{self, Local};

/// The timers of one loop.
#[derive(Debug)]
pub(crate) struct Timers {
    /// Where "now" comes from (the system clock, or a manual one in tests).
    clock: Clock,
    /// Pending timers; each holds the waker of the task that sleeps on it.
    wheel: RefCell<Wheel<Waker>>,
    /// The system clock's time when the loop's current turn began (it came
    /// back from epoll). INVARIANT: never later than the clock's time now.
    /// Unused with a manual clock, which is always read fresh.
    turn_now: Cell<u64>,
}

impl Timers {
    pub(crate) fn new(clock: Clock) -> Self {
        let now = clock.now_ms();
        Timers {
            clock,
            wheel: RefCell::new(Wheel::new(now)),
            turn_now: Cell::new(now),
        }
    }

    /// Starts a turn at the [`monotonic_ms`] reading `raw_ms`, so that the
    /// turn's timer work needs no clock read of its own.
    pub(crate) fn start_turn(&self, raw_ms: u64) {
        if let Clock::System(system) = &self.clock {
            self.turn_now.set(system.at(raw_ms));
        }
    }

    /// The time this turn's timer work counts from: the turn's start on the
    /// system clock; a manual clock's time now, since a test may move it in
    /// the middle of a turn and expects exact times.
    fn turn_time(&self) -> u64 {
        match &self.clock {
            Clock::System(_) => self.turn_now.get(),
            Clock::Manual(manual) => manual.now_ms(),
        }
    }

    /// The tick `duration` after the start of the current turn (see
    /// [`Deadline`]: up to one turn earlier than from now).
    pub(crate) fn turn_deadline_after(&self, duration: Duration) -> u64 {
        self.turn_time().saturating_add(clock::ceil_ms(duration))
    }

    /// Fires every timer that is due; `scratch` is reused between turns.
    /// Timers that came due while this turn's tasks ran fire next turn.
    pub(crate) fn fire(&self, scratch: &mut Vec<Waker>) {
        let now = self.turn_time();
        {
            let mut wheel = self.wheel.borrow_mut();
            if wheel.is_empty() || now <= wheel.now() {
                return;
            }
            wheel.advance(now, scratch);
        }
        // Woken outside the borrow: a woken task may insert or cancel timers.
        for waker in scratch.drain(..) {
            waker.wake();
        }
    }

    /// How long the loop may sleep before the next timer could be due.
    pub(crate) fn poll_timeout(&self) -> Option<Duration> {
        let next = self.wheel.borrow().next_expiration()?;
        if self.clock.is_manual() {
            // A manual clock moves only when the test says so, and that wakes the loop.
            return None;
        }
        let now = self.clock.now_ms();
        Some(Duration::from_millis(next.saturating_sub(now)))
    }

    /// Removes every timer, for teardown; the caller drops them outside the borrow.
    pub(crate) fn take_all(&self) -> Wheel<Waker> {
        let now = self.clock.now_ms();
        std::mem::replace(&mut *self.wheel.borrow_mut(), Wheel::new(now))
    }
}

/// A future that completes at a deadline. Made by [`sleep`]; belongs to its loop.
#[derive(Debug)]
pub struct Sleep {
    /// The loop whose wheel holds the timer.
    local: Rc<Local>,
    /// Deadline in runtime-clock milliseconds.
    deadline: u64,
    /// The wheel entry, once registered.
    key: Option<TimerKey>,
}

/// Completes after `duration` (rounded up to the next millisecond tick).
///
/// Must be called on a loop thread.
pub fn sleep(duration: Duration) -> Sleep {
    let local = event_loop::current();
    let deadline = local.timers.clock.deadline_after(duration);
    Sleep {
        local,
        deadline,
        key: None,
    }
}

impl Sleep {
    /// Moves the deadline to `duration` from now, keeping the allocation.
    pub fn reset(&mut self, duration: Duration) {
        self.cancel();
        self.deadline = self.local.timers.clock.deadline_after(duration);
    }

    fn cancel(&mut self) {
        if let Some(key) = self.key.take() {
            let removed = self.local.timers.wheel.borrow_mut().remove(key);
            drop(removed);
        }
    }
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        if this.local.timers.clock.now_ms() >= this.deadline {
            this.cancel();
            return Poll::Ready(());
        }
        let mut wheel = this.local.timers.wheel.borrow_mut();
        if let Some(key) = this.key {
            if let Some(waker) = wheel.get_mut(key) {
                if !waker.will_wake(cx.waker()) {
                    *waker = cx.waker().clone();
                }
                return Poll::Pending;
            }
        }
        // Not registered yet, or fired early because the tick rounding put it
        // one tick ahead of the clock: (re-)register.
        this.key = Some(wheel.insert(this.deadline, cx.waker().clone()));
        Poll::Pending
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        self.cancel();
    }
}

/// The error of [`timeout`] when the deadline passed first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Elapsed;

impl std::fmt::Display for Elapsed {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("deadline elapsed")
    }
}

impl std::error::Error for Elapsed {}

impl From<Elapsed> for std::io::Error {
    fn from(_: Elapsed) -> Self {
        std::io::Error::new(std::io::ErrorKind::TimedOut, Elapsed)
    }
}

/// Runs `future` for at most `duration`; the future is dropped if time runs out.
pub fn timeout<F: Future>(duration: Duration, future: F) -> Timeout<F> {
    Timeout {
        future,
        sleep: sleep(duration),
    }
}

pin_project_lite::pin_project! {
    /// The future of [`timeout`].
    #[derive(Debug)]
    pub struct Timeout<F> {
        #[pin]
        future: F,
        sleep: Sleep,
    }
}

impl<F: Future> Future for Timeout<F> {
    type Output = Result<F::Output, Elapsed>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(v) = this.future.poll(cx) {
            return Poll::Ready(Ok(v));
        }
        match Pin::new(this.sleep).poll(cx) {
            Poll::Ready(()) => Poll::Ready(Err(Elapsed)),
            Poll::Pending => Poll::Pending,
        }
    }
}

/// Ticks at a fixed period. Made by [`interval`].
#[derive(Debug)]
pub struct Interval {
    /// The timer for the next tick.
    sleep: Sleep,
    /// The period between ticks.
    period: Duration,
}

/// A stream of ticks every `period`; the first tick is immediate. Missed ticks
/// are skipped, not bunched: a loop that was busy gets one tick, then the
/// schedule resumes from that moment.
pub fn interval(period: Duration) -> Interval {
    let mut sleep = sleep(Duration::ZERO);
    sleep.deadline = sleep.local.timers.clock.now_ms();
    Interval { sleep, period }
}

impl Interval {
    /// Waits for the next tick.
    pub async fn tick(&mut self) {
        (&mut self.sleep).await;
        self.sleep.reset(self.period);
    }
}
