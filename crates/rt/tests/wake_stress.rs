//! Many threads waking many tasks: no wake-up may be lost.
//!
//! Each task waits K times on its own signal; outside threads raise the
//! signals as fast as the tasks consume them. A lost wake-up leaves a raised
//! signal with a task that is never polled again, and the run never finishes.
//! `GYRE_STRESS_SCALE` (default 1.0) shrinks the run for valgrind.

mod util;

use std::future::poll_fn;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::task::Poll;
use std::time::Duration;

use atomic_waker::AtomicWaker;
use gyre_rt::Builder;

#[derive(Default)]
struct Signal {
    raised: AtomicBool,
    waker: AtomicWaker,
    /// Rounds the task has completed.
    rounds: AtomicUsize,
}

fn scale(n: usize) -> usize {
    let s: f64 = std::env::var("GYRE_STRESS_SCALE")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1.0);
    ((n as f64 * s) as usize).max(2)
}

#[test]
fn wake_from_many_threads_loses_nothing() {
    let tasks = scale(2000);
    let rounds = scale(100);
    let threads = 8;
    let rt = Builder::new().workers(2).build().unwrap();
    let signals: Arc<Vec<Signal>> = Arc::new((0..tasks).map(|_| Signal::default()).collect());
    let finished = Arc::new(AtomicUsize::new(0));
    for i in 0..tasks {
        let signals = signals.clone();
        let finished = finished.clone();
        rt.handle()
            .spawn_on(i, async move {
                let s = &signals[i];
                for _ in 0..rounds {
                    poll_fn(|cx| {
                        s.waker.register(cx.waker());
                        if s.raised.swap(false, Ordering::AcqRel) {
                            Poll::Ready(())
                        } else {
                            Poll::Pending
                        }
                    })
                    .await;
                    s.rounds.fetch_add(1, Ordering::AcqRel);
                }
                finished.fetch_add(1, Ordering::SeqCst);
            })
            .detach();
    }
    let stop = Arc::new(AtomicBool::new(false));
    let mut wakers = Vec::new();
    for t in 0..threads {
        let signals = signals.clone();
        let stop = stop.clone();
        wakers.push(std::thread::spawn(move || {
            let mut wakes = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let mut idle = true;
                for s in signals.iter().skip(t).step_by(threads) {
                    if s.rounds.load(Ordering::Acquire) < rounds
                        && !s.raised.load(Ordering::Acquire)
                    {
                        s.raised.store(true, Ordering::Release);
                        s.waker.wake();
                        wakes += 1;
                        idle = false;
                    }
                }
                if idle {
                    std::thread::yield_now();
                }
            }
            wakes
        }));
    }
    let all_done = util::wait_until(Duration::from_secs(120), || {
        finished.load(Ordering::SeqCst) == tasks
    });
    stop.store(true, Ordering::Relaxed);
    let wakes: u64 = wakers.into_iter().map(|w| w.join().unwrap()).sum();
    let stuck: Vec<_> = (0..tasks)
        .filter(|i| signals[*i].rounds.load(Ordering::SeqCst) < rounds)
        .take(5)
        .collect();
    assert!(all_done, "tasks stuck (lost wake-ups?), e.g. {stuck:?}");
    assert!(wakes >= (tasks * rounds) as u64);
}

#[test]
fn spawn_on_from_many_threads_runs_everything() {
    let per_thread = scale(5000);
    let rt = Builder::new().workers(2).build().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let mut threads = Vec::new();
    for t in 0..8 {
        let handle = rt.handle().clone();
        let count = count.clone();
        threads.push(std::thread::spawn(move || {
            for i in 0..per_thread {
                let count = count.clone();
                handle
                    .spawn_on(t + i, async move {
                        count.fetch_add(1, Ordering::SeqCst);
                    })
                    .detach();
            }
        }));
    }
    for t in threads {
        t.join().unwrap();
    }
    assert!(util::wait_until(Duration::from_secs(60), || count
        .load(Ordering::SeqCst)
        == 8 * per_thread));
}
