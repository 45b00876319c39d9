//! Timers on a manual clock: nothing here waits on the wall clock.

mod util;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use gyre_rt::time::{interval, sleep, timeout, Clock, Elapsed};
use gyre_rt::{spawn, Builder};

fn manual_runtime() -> (gyre_rt::Runtime, Arc<gyre_rt::time::ManualClock>) {
    let (clock, handle) = Clock::manual();
    let rt = Builder::new().workers(1).clock(clock).build().unwrap();
    (rt, handle)
}

#[test]
fn sleep_ends_when_the_clock_reaches_the_deadline() {
    let (rt, clock) = manual_runtime();
    let done = Arc::new(AtomicBool::new(false));
    let d = done.clone();
    let (armed, is_armed) = std::sync::mpsc::channel();
    let h = rt.handle().spawn_local_on(0, move || {
        // The deadline is fixed when the sleep is made: only then move the clock.
        let s = sleep(Duration::from_secs(30));
        armed.send(()).unwrap();
        async move {
            s.await;
            d.store(true, Ordering::SeqCst);
        }
    });
    is_armed.recv().unwrap();
    clock.advance(Duration::from_millis(29_999));
    // Give the loop every chance to (wrongly) finish the sleep early.
    std::thread::sleep(Duration::from_millis(50));
    assert!(
        !done.load(Ordering::SeqCst),
        "sleep ended before its deadline"
    );
    clock.advance(Duration::from_millis(1));
    gyre_rt::block_on(h).unwrap();
    assert!(done.load(Ordering::SeqCst));
}

#[test]
fn timeout_elapses_and_drops_the_inner_future() {
    let (rt, clock) = manual_runtime();
    let dropped = Arc::new(AtomicBool::new(false));
    let d = dropped.clone();
    struct Flag(Arc<AtomicBool>);
    impl Drop for Flag {
        fn drop(&mut self) {
            self.0.store(true, Ordering::SeqCst);
        }
    }
    let (armed, is_armed) = std::sync::mpsc::channel();
    let h = rt.handle().spawn_local_on(0, move || {
        let flag = Flag(d);
        let inner = async move {
            let _f = flag;
            std::future::pending::<()>().await
        };
        let t = timeout(Duration::from_secs(5), inner);
        armed.send(()).unwrap();
        t
    });
    is_armed.recv().unwrap();
    clock.advance(Duration::from_secs(5));
    assert_eq!(gyre_rt::block_on(h).unwrap(), Err(Elapsed));
    assert!(dropped.load(Ordering::SeqCst));
}

#[test]
fn timeout_returns_the_value_when_in_time() {
    let (rt, clock) = manual_runtime();
    let (armed, is_armed) = std::sync::mpsc::channel();
    let h = rt.handle().spawn_local_on(0, move || {
        let s = sleep(Duration::from_secs(1));
        let t = timeout(Duration::from_secs(5), async move {
            s.await;
            9
        });
        armed.send(()).unwrap();
        t
    });
    is_armed.recv().unwrap();
    clock.advance(Duration::from_secs(1));
    assert_eq!(gyre_rt::block_on(h).unwrap(), Ok(9));
}

#[test]
fn cancelled_sleep_never_fires() {
    let (rt, clock) = manual_runtime();
    let fired = Arc::new(AtomicBool::new(false));
    let f = fired.clone();
    let h = rt.handle().spawn_local_on(0, || async move {
        let t = spawn(async move {
            sleep(Duration::from_secs(10)).await;
            f.store(true, Ordering::SeqCst);
        });
        gyre_rt::yield_now().await;
        t.cancel().await
    });
    assert_eq!(gyre_rt::block_on(h).unwrap(), None);
    clock.advance(Duration::from_secs(60));
    let probe = rt.handle().spawn_on(0, async {});
    gyre_rt::block_on(probe).unwrap();
    assert!(!fired.load(Ordering::SeqCst));
}

#[test]
fn interval_ticks_once_per_period_and_skips_missed_ticks() {
    let (rt, clock) = manual_runtime();
    let ticks = Arc::new(AtomicU64::new(0));
    let t = ticks.clone();
    rt.handle()
        .spawn_local_on(0, || async move {
            let mut iv = interval(Duration::from_secs(1));
            loop {
                iv.tick().await;
                t.fetch_add(1, Ordering::SeqCst);
            }
        })
        .detach();
    assert!(util::wait_until(Duration::from_secs(10), || ticks
        .load(Ordering::SeqCst)
        == 1));
    for expected in 2..=5 {
        clock.advance(Duration::from_secs(1));
        assert!(util::wait_until(Duration::from_secs(10), || ticks
            .load(Ordering::SeqCst)
            == expected));
    }
    // Ten periods at once: one tick, not ten.
    clock.advance(Duration::from_secs(10));
    assert!(util::wait_until(Duration::from_secs(10), || ticks
        .load(Ordering::SeqCst)
        == 6));
    std::thread::sleep(Duration::from_millis(50));
    assert_eq!(ticks.load(Ordering::SeqCst), 6);
}

#[test]
fn many_timeouts_cost_little_and_all_fire() {
    let (rt, clock) = manual_runtime();
    let fired = Arc::new(AtomicU64::new(0));
    let f = fired.clone();
    let h = rt.handle().spawn_local_on(0, || async move {
        for i in 0..100_000u64 {
            let f = f.clone();
            // Made here, so every deadline is fixed before the clock moves.
            let s = sleep(Duration::from_millis(1 + i % 5000));
            spawn(async move {
                s.await;
                f.fetch_add(1, Ordering::Relaxed);
            })
            .detach();
        }
    });
    gyre_rt::block_on(h).unwrap();
    clock.advance(Duration::from_millis(2500));
    assert!(util::wait_until(Duration::from_secs(30), || fired
        .load(Ordering::SeqCst)
        == 50_000));
    clock.advance(Duration::from_millis(2500));
    assert!(util::wait_until(Duration::from_secs(30), || fired
        .load(Ordering::SeqCst)
        == 100_000));
}

#[test]
fn real_clock_sleep_completes() {
    let rt = Builder::new().workers(1).build().unwrap();
    let h = rt.handle().spawn_local_on(0, || async {
        let start = std::time::Instant::now();
        sleep(Duration::from_millis(20)).await;
        start.elapsed()
    });
    assert!(gyre_rt::block_on(h).unwrap() >= Duration::from_millis(20));
}

/// Waits until `deadline` is due; returns the manual clock's time then.
async fn expiry(deadline: &gyre_rt::time::Deadline, clock: &gyre_rt::time::ManualClock) -> u64 {
    std::future::poll_fn(|cx| deadline.poll_expired(cx)).await;
    clock.now_ms()
}

#[test]
fn deadline_moved_later_fires_at_the_new_time_only() {
    let (rt, clock) = manual_runtime();
    let c = clock.clone();
    let (step, stepped) = std::sync::mpsc::channel();
    let h = rt.handle().spawn_local_on(0, move || async move {
        let d = gyre_rt::time::Deadline::new();
        d.set_after(Duration::from_secs(10));
        // Arms the timer for 10 s.
        let first = std::future::poll_fn(|cx| std::task::Poll::Ready(d.poll_expired(cx))).await;
        assert!(first.is_pending());
        let five = sleep(Duration::from_secs(5));
        step.send(()).unwrap();
        // At 5 s, move the deadline to 15 s: the timer for 10 s stays.
        five.await;
        d.set_after(Duration::from_secs(10));
        step.send(()).unwrap();
        expiry(&d, &c).await
    });
    // Only once both timers are set does the clock move.
    stepped.recv().unwrap();
    clock.advance(Duration::from_secs(5));
    stepped.recv().unwrap();
    // The old timer fires at 10 s, finds the deadline not due, and waits on.
    clock.advance(Duration::from_secs(5));
    std::thread::sleep(Duration::from_millis(50));
    assert!(!h.is_finished(), "deadline expired at its old time");
    clock.advance(Duration::from_secs(5));
    assert_eq!(gyre_rt::block_on(h).unwrap(), 15_000);
}

#[test]
fn deadline_moved_earlier_fires_at_the_earlier_time() {
    let (rt, clock) = manual_runtime();
    let c = clock.clone();
    let (moved, was_moved) = std::sync::mpsc::channel();
    let h = rt.handle().spawn_local_on(0, move || async move {
        let d = gyre_rt::time::Deadline::new();
        d.set_after(Duration::from_secs(60));
        let first = std::future::poll_fn(|cx| std::task::Poll::Ready(d.poll_expired(cx))).await;
        assert!(first.is_pending());
        // Earlier than the timer in the wheel: that timer must go.
        d.set_after(Duration::from_secs(2));
        moved.send(()).unwrap();
        expiry(&d, &c).await
    });
    was_moved.recv().unwrap();
    clock.advance(Duration::from_secs(2));
    assert_eq!(gyre_rt::block_on(h).unwrap(), 2_000);
}
