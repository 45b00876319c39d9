//! The runtime's clock: monotonic milliseconds since the runtime started, or a
//! manual clock that only moves when a test advances it.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::event_loop::Shared;

/// Where a runtime's timers get the time from.
#[derive(Debug, Clone)]
pub enum Clock {
    /// The monotonic system clock, counted from when this value was made.
    System(SystemClock),
    /// A clock that moves only through [`ManualClock::advance`].
    Manual(Arc<ManualClock>),
}

impl Default for Clock {
    fn default() -> Self {
        Clock::System(SystemClock::new())
    }
}

/// The monotonic system clock (`CLOCK_MONOTONIC`, the clock of
/// [`std::time::Instant`] on Linux) in milliseconds from an origin.
#[derive(Debug, Clone, Copy)]
pub struct SystemClock {
    /// The clock's reading, in milliseconds, that is millisecond 0.
    origin_ms: u64,
}

impl SystemClock {
    /// A clock whose millisecond 0 is now.
    pub fn new() -> Self {
        SystemClock {
            origin_ms: monotonic_ms(),
        }
    }

    /// Milliseconds since the origin.
    pub fn now_ms(&self) -> u64 {
        self.at(monotonic_ms())
    }

    /// Milliseconds since the origin at the [`monotonic_ms`] reading `raw_ms`.
    pub(crate) fn at(&self, raw_ms: u64) -> u64 {
        raw_ms.saturating_sub(self.origin_ms)
    }
}

impl Default for SystemClock {
    fn default() -> Self {
        Self::new()
    }
}

/// `CLOCK_MONOTONIC` in whole milliseconds.
pub(crate) fn monotonic_ms() -> u64 {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::Monotonic);
    // Both fields are non-negative for this clock.
    (t.tv_sec as u64) * 1000 + (t.tv_nsec as u64) / 1_000_000
}

impl Clock {
    /// A new manual clock at 0 ms; keep the returned handle to advance it.
    pub fn manual() -> (Clock, Arc<ManualClock>) {
        let m = Arc::new(ManualClock::default());
        (Clock::Manual(m.clone()), m)
    }

    /// Milliseconds since the clock's origin.
    pub fn now_ms(&self) -> u64 {
        match self {
            Clock::System(system) => system.now_ms(),
            Clock::Manual(m) => m.now.load(Ordering::Acquire),
        }
    }

    /// The tick at which a timer of `duration` from now is due, rounded up so
    /// that a sleep never ends early.
    pub(crate) fn deadline_after(&self, duration: Duration) -> u64 {
        self.now_ms().saturating_add(ceil_ms(duration))
    }

    pub(crate) fn is_manual(&self) -> bool {
        matches!(self, Clock::Manual(_))
    }

    /// Lets a manual clock wake these loops when it moves.
    pub(crate) fn attach(&self, loops: &[Arc<Shared>]) {
        if let Clock::Manual(m) = self {
            m.loops
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend(loops.iter().cloned());
        }
    }
}

/// `duration` in whole milliseconds, rounded up; without the 128-bit
/// division of `Duration::as_nanos`, which a deadline set per request paid.
pub(crate) fn ceil_ms(duration: Duration) -> u64 {
    let whole = duration.as_secs().saturating_mul(1000);
    whole.saturating_add(u64::from(duration.subsec_nanos().div_ceil(1_000_000)))
}

/// A clock for tests: time stands still until [`advance`](Self::advance).
#[derive(Debug, Default)]
pub struct ManualClock {
    /// The current time in milliseconds.
    now: AtomicU64,
    /// Loops to wake when the time moves, so they fire their due timers.
    loops: Mutex<Vec<Arc<Shared>>>,
}

impl ManualClock {
    /// Moves the clock forward and wakes every loop of the runtime using it.
    pub fn advance(&self, by: Duration) {
        self.now.fetch_add(by.as_millis() as u64, Ordering::AcqRel);
        for l in self.loops.lock().unwrap_or_else(|e| e.into_inner()).iter() {
            l.force_wake();
        }
    }

    /// The current time in milliseconds.
    pub fn now_ms(&self) -> u64 {
        self.now.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ceil_ms_rounds_up_and_saturates() {
        let table = [
            (Duration::ZERO, 0),
            (Duration::from_nanos(1), 1),
            (Duration::from_millis(1), 1),
            (Duration::from_nanos(1_000_001), 2),
            (Duration::new(75, 0), 75_000),
            (Duration::new(2, 999_999_999), 3_000),
            (Duration::MAX, u64::MAX),
        ];
        for (duration, ms) in table {
            assert_eq!(ceil_ms(duration), ms, "{duration:?}");
            if duration < Duration::from_secs(1 << 40) {
                // The 128-bit form it replaces.
                assert_eq!(u128::from(ms), duration.as_nanos().div_ceil(1_000_000));
            }
        }
    }
}
