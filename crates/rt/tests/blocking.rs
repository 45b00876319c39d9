//! The blocking pool: results, panics, and backpressure when the queue is full.

mod util;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::time::Duration;

use gyre_rt::{blocking, spawn, Builder, PoolConfig};

/// A gate that blocking jobs wait on until the test opens it.
#[derive(Default)]
struct Gate {
    open: Mutex<bool>,
    cond: Condvar,
}

impl Gate {
    fn wait(&self) {
        let mut open = self.open.lock().unwrap();
        while !*open {
            open = self.cond.wait(open).unwrap();
        }
    }
    fn open(&self) {
        *self.open.lock().unwrap() = true;
        self.cond.notify_all();
    }
}

#[test]
fn blocking_returns_the_result_off_the_loop() {
    let rt = Builder::new().workers(1).build().unwrap();
    let (v, name) = rt.block_on(async {
        blocking(|| (6 * 7, std::thread::current().name().map(str::to_owned))).await
    });
    assert_eq!(v, 42);
    assert!(name.unwrap().starts_with("gyre-blocking"));
}

#[test]
fn blocking_panic_reaches_the_caller_task_only() {
    let rt = Builder::new().workers(1).build().unwrap();
    let r = rt.block_on(async {
        spawn(async { blocking(|| -> u32 { panic!("disk on fire") }).await }).await
    });
    assert_eq!(r, Err(gyre_rt::JoinError::Panicked("disk on fire".into())));
    assert_eq!(rt.block_on(async { blocking(|| 1).await }), 1);
}

#[test]
fn blocking_queue_full_makes_callers_wait() {
    let config = PoolConfig {
        max_threads: 2,
        queue_capacity: 3,
        ..PoolConfig::default()
    };
    let rt = Builder::new()
        .workers(1)
        .blocking_pool(config)
        .build()
        .unwrap();
    let gate = Arc::new(Gate::default());
    let completed = Arc::new(AtomicUsize::new(0));
    const JOBS: usize = 20;
    for _ in 0..JOBS {
        let gate = gate.clone();
        let completed = completed.clone();
        rt.handle()
            .spawn_on(0, async move {
                blocking(move || gate.wait()).await;
                completed.fetch_add(1, Ordering::SeqCst);
            })
            .detach();
    }
    // 2 running + 3 queued; the other 15 callers wait for room.
    let h = rt.handle().clone();
    assert!(util::wait_until(Duration::from_secs(30), || {
        let s = h.blocking_stats();
        s.busy == 2 && s.queued == 3 && s.waiting == JOBS - 5
    }));
    let s = h.blocking_stats();
    assert_eq!(s.threads, 2);
    assert_eq!(completed.load(Ordering::SeqCst), 0);
    gate.open();
    assert!(util::wait_until(Duration::from_secs(30), || completed
        .load(Ordering::SeqCst)
        == JOBS));
    let s = h.blocking_stats();
    assert_eq!((s.queued, s.waiting), (0, 0));
    assert!(s.threads <= 2);
}

#[test]
fn blocking_waiter_cancelled_passes_its_turn_on() {
    let config = PoolConfig {
        max_threads: 1,
        queue_capacity: 1,
        ..PoolConfig::default()
    };
    let rt = Builder::new()
        .workers(1)
        .blocking_pool(config)
        .build()
        .unwrap();
    let gate = Arc::new(Gate::default());
    let g = gate.clone();
    let done = Arc::new(AtomicUsize::new(0));
    let d = done.clone();
    rt.block_on(async move {
        // Occupy the thread and the queue slot.
        let g1 = g.clone();
        spawn(async move { blocking(move || g1.wait()).await }).detach();
        let g2 = g.clone();
        spawn(async move { blocking(move || g2.wait()).await }).detach();
        gyre_rt::yield_now().await;
        // Two waiters; the first is cancelled while waiting.
        let first = spawn(async { blocking(|| ()).await });
        let d2 = d.clone();
        spawn(async move {
            blocking(|| ()).await;
            d2.fetch_add(1, Ordering::SeqCst);
        })
        .detach();
        gyre_rt::yield_now().await;
        first.abort();
    });
    gate.open();
    assert!(util::wait_until(Duration::from_secs(30), || done
        .load(Ordering::SeqCst)
        == 1));
}
