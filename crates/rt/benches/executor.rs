//! Spawn and wake micro-benchmarks: gyre's loop beside tokio's current_thread
//! runtime, measured inside each runtime with `iter_custom`.

use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion};

fn gyre_rt() -> gyre_rt::Runtime {
    gyre_rt::Builder::new().workers(1).build().unwrap()
}

fn tokio_rt() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
}

/// Runs `body(iters)` on gyre's loop 0 and returns the time it measured there.
fn on_gyre<F, Fut>(rt: &gyre_rt::Runtime, iters: u64, body: F) -> Duration
where
    F: FnOnce(u64) -> Fut + Send + 'static,
    Fut: std::future::Future<Output = ()> + 'static,
{
    rt.block_on_local(move || async move {
        let start = Instant::now();
        body(iters).await;
        start.elapsed()
    })
}

fn spawn_one(c: &mut Criterion) {
    let mut g = c.benchmark_group("spawn_one");
    let rt = gyre_rt();
    g.bench_function("gyre", |b| {
        b.iter_custom(|iters| {
            on_gyre(&rt, iters, |n| async move {
                for _ in 0..n {
                    gyre_rt::spawn(async {}).await.unwrap();
                }
            })
        })
    });
    let trt = tokio_rt();
    g.bench_function("tokio", |b| {
        b.iter_custom(|iters| {
            trt.block_on(async move {
                let start = Instant::now();
                for _ in 0..iters {
                    tokio::spawn(async {}).await.unwrap();
                }
                start.elapsed()
            })
        })
    });
    g.finish();
}

fn spawn_many(c: &mut Criterion) {
    const N: usize = 1000;
    let mut g = c.benchmark_group("spawn_many_1000");
    let rt = gyre_rt();
    g.bench_function("gyre", |b| {
        b.iter_custom(|iters| {
            on_gyre(&rt, iters, |n| async move {
                for _ in 0..n {
                    let hs: Vec<_> = (0..N).map(|_| gyre_rt::spawn(async {})).collect();
                    for h in hs {
                        h.await.unwrap();
                    }
                }
            })
        })
    });
    let trt = tokio_rt();
    g.bench_function("tokio", |b| {
        b.iter_custom(|iters| {
            trt.block_on(async move {
                let start = Instant::now();
                for _ in 0..iters {
                    let hs: Vec<_> = (0..N).map(|_| tokio::spawn(async {})).collect();
                    for h in hs {
                        h.await.unwrap();
                    }
                }
                start.elapsed()
            })
        })
    });
    g.finish();
}

fn yield_many(c: &mut Criterion) {
    const TASKS: usize = 100;
    const YIELDS: usize = 100;
    let mut g = c.benchmark_group("wake_yield_100x100");
    let rt = gyre_rt();
    g.bench_function("gyre", |b| {
        b.iter_custom(|iters| {
            on_gyre(&rt, iters, |n| async move {
                for _ in 0..n {
                    let hs: Vec<_> = (0..TASKS)
                        .map(|_| {
                            gyre_rt::spawn(async {
                                for _ in 0..YIELDS {
                                    gyre_rt::yield_now().await;
                                }
                            })
                        })
                        .collect();
                    for h in hs {
                        h.await.unwrap();
                    }
                }
            })
        })
    });
    let trt = tokio_rt();
    g.bench_function("tokio", |b| {
        b.iter_custom(|iters| {
            trt.block_on(async move {
                let start = Instant::now();
                for _ in 0..iters {
                    let hs: Vec<_> = (0..TASKS)
                        .map(|_| {
                            tokio::spawn(async {
                                for _ in 0..YIELDS {
                                    tokio::task::yield_now().await;
                                }
                            })
                        })
                        .collect();
                    for h in hs {
                        h.await.unwrap();
                    }
                }
                start.elapsed()
            })
        })
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default().measurement_time(Duration::from_secs(3)).warm_up_time(Duration::from_secs(1));
    targets = spawn_one, spawn_many, yield_many
}
criterion_main!(benches);
