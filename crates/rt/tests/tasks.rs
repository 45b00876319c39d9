//! Spawning, joining, detaching, cancelling, panics, and cross-loop spawns.

mod util;

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use gyre_rt::time::sleep;
use gyre_rt::{current_loop, spawn, yield_now, Builder, Handle, JoinError};

/// Sets its flag when dropped.
struct DropFlag(Arc<AtomicBool>);
impl Drop for DropFlag {
    fn drop(&mut self) {
        self.0.store(true, Ordering::SeqCst);
    }
}

#[test]
fn task_join_returns_output() {
    let rt = Builder::new().workers(2).build().unwrap();
    let v = rt.block_on(async {
        let a = spawn(async { 20 });
        let b = spawn(async {
            yield_now().await;
            22
        });
        a.await.unwrap() + b.await.unwrap()
    });
    assert_eq!(v, 42);
}

#[test]
fn task_spawn_on_runs_on_the_named_loop() {
    let rt = Builder::new().workers(3).build().unwrap();
    for i in 0..3 {
        let h = rt.handle().spawn_on(i, async { current_loop() });
        assert_eq!(gyre_rt::block_on(h).unwrap(), Some(i));
    }
    // Spawning from one loop onto another, and awaiting across loops.
    let v = rt.block_on(async {
        let h = Handle::current().spawn_on(2, async { current_loop().unwrap() * 10 });
        h.await.unwrap()
    });
    assert_eq!(v, 20);
}

#[test]
fn task_cancel_drops_the_future_on_its_loop() {
    let rt = Builder::new().workers(2).build().unwrap();
    let dropped = Arc::new(AtomicBool::new(false));
    let d = dropped.clone();
    let result = rt.block_on(async move {
        let h = spawn(async move {
            let _flag = DropFlag(d);
            sleep(Duration::from_secs(3600)).await;
            1
        });
        yield_now().await;
        h.cancel().await
    });
    assert_eq!(result, None);
    assert!(dropped.load(Ordering::SeqCst));
}

#[test]
fn task_abort_from_another_thread() {
    let rt = Builder::new().workers(2).build().unwrap();
    let dropped = Arc::new(AtomicBool::new(false));
    // Owned by the future from the start, so dropping it unpolled counts too.
    let flag = DropFlag(dropped.clone());
    let (started_tx, started) = std::sync::mpsc::channel();
    let h = rt.handle().spawn_on(1, async move {
        let _flag = flag;
        started_tx.send(()).unwrap();
        std::future::pending::<()>().await;
    });
    // Abort a task that is parked (not scheduled), which takes a wake-up
    // across threads to drop its future on its loop.
    started.recv().unwrap();
    std::thread::sleep(Duration::from_millis(20));
    assert!(!dropped.load(Ordering::SeqCst));
    h.abort();
    assert!(util::wait_until(Duration::from_secs(10), || dropped.load(Ordering::SeqCst)));
}

#[test]
fn task_detached_runs_to_completion() {
    let rt = Builder::new().workers(1).build().unwrap();
    let ran = Arc::new(AtomicUsize::new(0));
    let r = ran.clone();
    rt.block_on(async move {
        for _ in 0..100 {
            let r = r.clone();
            spawn(async move {
                sleep(Duration::from_millis(1)).await;
                r.fetch_add(1, Ordering::SeqCst);
            })
            .detach();
        }
    });
    assert!(util::wait_until(Duration::from_secs(10), || ran
        .load(Ordering::SeqCst)
        == 100));
}

#[test]
fn task_panic_ends_only_that_task() {
    let rt = Builder::new().workers(1).build().unwrap();
    let (panicked, after) = rt.block_on(async {
        let bad = spawn(async {
            yield_now().await;
            panic!("boom in a handler");
        });
        let good = spawn(async {
            sleep(Duration::from_millis(5)).await;
            7
        });
        (bad.await, good.await)
    });
    assert_eq!(
        panicked,
        Err(JoinError::Panicked("boom in a handler".into()))
    );
    assert_eq!(after, Ok(7));
    // The loop still serves new work.
    assert_eq!(rt.block_on(async { spawn(async { 1 }).await.unwrap() }), 1);
    assert_eq!(rt.handle().loop_stats()[0].panics, 1);
}

#[test]
fn runtime_shutdown_drops_pending_tasks() {
    let rt = Builder::new().workers(2).build().unwrap();
    let flags: Vec<_> = (0..10).map(|_| Arc::new(AtomicBool::new(false))).collect();
    for (i, f) in flags.iter().enumerate() {
        let f = f.clone();
        let started = rt.handle().spawn_on(i, async move {
            spawn(async move {
                let _flag = DropFlag(f);
                sleep(Duration::from_secs(3600)).await;
            })
            .detach();
        });
        gyre_rt::block_on(started).unwrap();
    }
    rt.shutdown();
    assert!(flags.iter().all(|f| f.load(Ordering::SeqCst)));
}

#[test]
fn yield_now_lets_other_tasks_run() {
    let rt = Builder::new().workers(1).build().unwrap();
    let order = rt.block_on_local(|| async {
        let log = std::rc::Rc::new(std::cell::RefCell::new(Vec::new()));
        let mut hs = Vec::new();
        for id in 0..3 {
            let log = log.clone();
            hs.push(spawn(async move {
                for step in 0..3 {
                    log.borrow_mut().push((id, step));
                    yield_now().await;
                }
            }));
        }
        for h in hs {
            h.await.unwrap();
        }
        let v = log.borrow().clone();
        v
    });
    // Round robin: every task's step 0 before any step 1.
    let firsts: Vec<_> = order.iter().take(3).map(|(_, s)| *s).collect();
    assert_eq!(firsts, vec![0, 0, 0]);
    assert_eq!(order.len(), 9);
}
