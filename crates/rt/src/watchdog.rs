//! The stall watchdog: a thread that watches every loop's heartbeat.
//!
//! A loop publishes when its current turn began (`busy_since`, 0 while it
//! waits in epoll). A turn longer than the threshold is a stall: the watchdog
//! logs it once, with the loop, the time so far and the label of the work, and
//! marks the loop stalled. The loop itself closes the stall when it comes back
//! to its poll, adding the exact stall time to its counters.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use crate::event_loop::Shared;
use crate::label::Label;
use crate::runtime::RuntimeShared;

/// Stops the watchdog thread when dropped or asked.
#[derive(Debug)]
pub(crate) struct Watchdog {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl Watchdog {
    /// Starts watching the loops of `runtime`.
    pub(crate) fn start(runtime: Arc<RuntimeShared>, threshold: Duration) -> std::io::Result<Self> {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let stop2 = stop.clone();
        // Look often enough to report a stall soon after the threshold.
        let period = (threshold / 4).clamp(Duration::from_millis(5), Duration::from_millis(100));
        let thread = std::thread::Builder::new()
            .name("gyre-watchdog".to_owned())
            .spawn(move || {
                let (lock, cond) = &*stop2;
                let mut stopped = lock.lock().unwrap_or_else(|e| e.into_inner());
                while !*stopped {
                    stopped = cond
                        .wait_timeout(stopped, period)
                        .unwrap_or_else(|e| e.into_inner())
                        .0;
                    for l in &runtime.loops {
                        check(l, &runtime, threshold);
                    }
                }
            })?;
        Ok(Watchdog {
            stop,
            thread: Some(thread),
        })
    }

    pub(crate) fn stop(&mut self) {
        *self.stop.0.lock().unwrap_or_else(|e| e.into_inner()) = true;
        self.stop.1.notify_all();
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

impl Drop for Watchdog {
    fn drop(&mut self) {
        self.stop();
    }
}

fn check(l: &Shared, runtime: &RuntimeShared, threshold: Duration) {
    let since = l.busy_since.load(Ordering::Relaxed);
    if since == 0 || l.stats.stalled.load(Ordering::Relaxed) {
        return;
    }
    let now = runtime.heartbeat_ms();
    let busy_ms = now.saturating_sub(since - 1);
    if busy_ms < threshold.as_millis() as u64 {
        return;
    }
    l.stats.stalled.store(true, Ordering::Relaxed);
    if l.busy_since.load(Ordering::Relaxed) != since {
        // The turn ended while we looked: no stall after all.
        l.stats.stalled.store(false, Ordering::Relaxed);
        return;
    }
    l.stats.stalls.fetch_add(1, Ordering::Relaxed);
    let label = Label::from_raw(l.label.load(Ordering::Relaxed)).name();
    let work = if label.is_empty() {
        "unlabelled work"
    } else {
        &label
    };
    tracing::warn!(
        target: "gyre::watchdog",
        "loop {} stalled: no return to its poll for {} ms, running {}",
        l.index,
        busy_ms,
        work
    );
}
