//! A deadline that moves often and fires rarely.
//!
//! A keep-alive connection waits for its next request under a deadline that
//! moves with every request. With a [`Sleep`](super::Sleep) each wait inserts
//! a timer into the wheel and each request removes it again. A [`Deadline`]
//! only records when it is due: the timer already in the wheel stays there
//! when the deadline moves later, fires at its old time, finds the deadline
//! not yet due and is inserted again for the new time. That is one wheel
//! insertion per timeout period instead of one per request (the lazy timers
//! of nginx and libuv's users).
//!
//! A deadline is counted from the start of the loop's current turn, the
//! time the loop read when it came back from epoll, not from a clock read of
//! its own: it may come due up to one turn's length early. That is nothing
//! beside the seconds of a connection timeout, and it saves a clock read per
//! request. A [`Sleep`](super::Sleep), which promises never to end early,
//! reads the clock.

use std::cell::Cell;
use std::task::{Context, Poll};
use std::time::Duration;

use super::wheel::TimerKey;
use crate::event_loop;

/// A deadline on the current loop, polled with
/// [`poll_expired`](Self::poll_expired). Belongs to the loop it was first
/// set on.
#[derive(Debug)]
pub struct Deadline {
    /// The tick at which the deadline is due (`u64::MAX`: never). A timer
    /// in the wheel is never due later than this.
    due: Cell<u64>,
    /// The timer in the wheel, if one was inserted and may not have fired.
    key: Cell<Option<TimerKey>>,
}

impl Default for Deadline {
    fn default() -> Self {
        Self::new()
    }
}

impl Deadline {
    /// A deadline that is never due until [`set_after`](Self::set_after).
    pub const fn new() -> Self {
        Deadline {
            due: Cell::new(u64::MAX),
            key: Cell::new(None),
        }
    }

    /// Makes the deadline due `duration` from the start of the loop's
    /// current turn. Touches the wheel only when the deadline moves earlier
    /// than the timer already in it.
    pub fn set_after(&self, duration: Duration) {
        let due = event_loop::with_current(|local| local.timers.turn_deadline_after(duration));
        // A timer inserted for an earlier `due` is no later than the old
        // one; only a deadline moving earlier can leave it too late.
        if due < self.due.replace(due) {
            self.cancel();
        }
    }

    /// `Ready` once the deadline is due; otherwise `Pending`, with the task
    /// woken by then (or a little before, to look again).
    pub fn poll_expired(&self, cx: &mut Context<'_>) -> Poll<()> {
        event_loop::with_current(|local| {
            let mut wheel = local.timers.wheel.borrow_mut();
            if let Some(key) = self.key.get() {
                if let Some(waker) = wheel.get_mut(key) {
                    // Still in the wheel, so not yet at the tick it was
                    // inserted for, which is no later than `due`: not due.
                    if !waker.will_wake(cx.waker()) {
                        *waker = cx.waker().clone();
                    }
                    return Poll::Pending;
                }
                self.key.set(None);
            }
            let due = self.due.get();
            if local.timers.clock.now_ms() >= due {
                return Poll::Ready(());
            }
            self.key.set(Some(wheel.insert(due, cx.waker().clone())));
            Poll::Pending
        })
    }

    /// Takes the timer out of the wheel, if one is there; the deadline
    /// itself stays set.
    pub fn cancel(&self) {
        if let Some(key) = self.key.take() {
            // Off the loop (its teardown dropped the wheel already) there is
            // nothing to take out.
            let removed =
                event_loop::try_with_current(|local| local.timers.wheel.borrow_mut().remove(key));
            // The waker is dropped outside the wheel's borrow.
            drop(removed);
        }
    }
}

impl Drop for Deadline {
    fn drop(&mut self) {
        self.cancel();
    }
}
