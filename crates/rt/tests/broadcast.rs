//! Broadcast topics: fan-out across loops (one hand-off per loop, not per
//! subscriber), order per publisher, and the slow-consumer policies.

mod util;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use gyre_rt::broadcast::{self, Overflow, RecvError, Topic, TopicConfig};
use util::wait_until;

/// Starts `per_loop` subscriber tasks on every loop; each receives `expect`
/// messages `(publisher, seq)` and checks that every publisher's sequence
/// arrives in order and complete. Returns (ready, done) counters.
fn subscribers(
    rt: &gyre_rt::Runtime,
    topic: &Topic<(u32, u32)>,
    per_loop: usize,
    publishers: u32,
    expect: u32,
) -> (Arc<AtomicUsize>, Arc<AtomicUsize>) {
    let ready = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicUsize::new(0));
    for l in 0..rt.handle().loops() {
        for _ in 0..per_loop {
            let (topic, ready, done) = (topic.clone(), ready.clone(), done.clone());
            rt.handle()
                .spawn_local_on(l, move || async move {
                    let mut sub = topic.subscribe();
                    ready.fetch_add(1, Ordering::SeqCst);
                    let mut next = vec![0u32; publishers as usize];
                    for _ in 0..expect * publishers {
                        let (p, seq) = sub.recv().await.expect("no loss with a large queue");
                        assert_eq!(seq, next[p as usize], "publisher {p} out of order");
                        next[p as usize] += 1;
                    }
                    done.fetch_add(1, Ordering::SeqCst);
                })
                .detach();
        }
    }
    (ready, done)
}

#[test]
fn every_subscriber_on_every_loop_gets_every_message_in_order() {
    let rt = gyre_rt::Builder::new().workers(3).build().unwrap();
    let topic = Topic::new(TopicConfig {
        capacity: 100_000,
        overflow: Overflow::DropOldest,
    });
    topic.bind(rt.handle());
    let (publishers, per_publisher) = (4u32, 5_000u32);
    let (ready, done) = subscribers(&rt, &topic, 50, publishers, per_publisher);
    assert!(wait_until(Duration::from_secs(30), || ready
        .load(Ordering::SeqCst)
        == 150));
    assert_eq!(topic.subscriber_count(), 150);
    // Publishers on plain threads, all at once: every wake-up must land.
    let threads: Vec<_> = (0..publishers)
        .map(|p| {
            let topic = topic.clone();
            std::thread::spawn(move || {
                for seq in 0..per_publisher {
                    topic.publish((p, seq));
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert!(
        wait_until(Duration::from_secs(60), || done.load(Ordering::SeqCst)
            == 150),
        "only {} of 150 subscribers got all {} messages",
        done.load(Ordering::SeqCst),
        publishers * per_publisher
    );
    assert!(wait_until(Duration::from_secs(30), || topic
        .subscriber_count()
        == 0));
}

#[test]
fn one_hand_off_per_loop_not_per_subscriber() {
    let rt = gyre_rt::Builder::new().workers(3).build().unwrap();
    let topic = Topic::new(TopicConfig::default());
    topic.bind(rt.handle());
    let (ready, done) = subscribers(&rt, &topic, 1_000, 1, 1);
    assert!(wait_until(Duration::from_secs(30), || ready
        .load(Ordering::SeqCst)
        == 3_000));
    let before = broadcast::stats();
    topic.publish((0, 0)); // from a thread that is no loop
    assert!(wait_until(Duration::from_secs(30), || done
        .load(Ordering::SeqCst)
        == 3_000));
    let after = broadcast::stats();
    assert_eq!(after.delivered - before.delivered, 3_000);
    assert_eq!(
        after.handoffs - before.handoffs,
        3,
        "one hand-off to each of 3 loops"
    );

    // Published on loop 0: its own subscribers get it in place, the other two loops by hand-off.
    let (ready, done) = subscribers(&rt, &topic, 1_000, 1, 1);
    assert!(wait_until(Duration::from_secs(30), || ready
        .load(Ordering::SeqCst)
        == 3_000));
    let before = broadcast::stats();
    let t = topic.clone();
    rt.handle()
        .spawn_on(0, async move { t.publish((0, 0)) })
        .detach();
    assert!(wait_until(Duration::from_secs(30), || done
        .load(Ordering::SeqCst)
        == 3_000));
    let after = broadcast::stats();
    assert_eq!(after.handoffs - before.handoffs, 2);
}

#[test]
fn a_full_queue_drops_the_oldest_and_says_how_many() {
    let rt = gyre_rt::Builder::new().workers(1).build().unwrap();
    let got = rt.block_on_local(|| async {
        let topic = Topic::new(TopicConfig {
            capacity: 4,
            overflow: Overflow::DropOldest,
        });
        let mut slow = topic.subscribe();
        let mut fast = topic.subscribe();
        let before = broadcast::stats();
        let mut fast_got = Vec::new();
        for i in 0..10 {
            topic.publish(i);
            fast_got.push(fast.recv().await.unwrap());
        }
        assert_eq!(fast_got, (0..10).collect::<Vec<_>>(), "a reader keeps up");
        assert_eq!(
            slow.queued(),
            4,
            "the queue never holds more than its capacity"
        );
        assert_eq!(broadcast::stats().dropped - before.dropped, 6);
        let mut got = vec![slow.recv().await];
        while let Some(r) = slow.try_recv() {
            got.push(r);
        }
        got
    });
    assert_eq!(
        got,
        vec![Err(RecvError::Lagged(6)), Ok(6), Ok(7), Ok(8), Ok(9)]
    );
}

#[test]
fn a_full_queue_can_close_the_subscriber_instead() {
    let rt = gyre_rt::Builder::new().workers(1).build().unwrap();
    rt.block_on_local(|| async {
        let topic = Topic::new(TopicConfig {
            capacity: 4,
            overflow: Overflow::Close,
        });
        let mut slow = topic.subscribe();
        let before = broadcast::stats();
        for i in 0..5 {
            topic.publish(i);
        }
        assert_eq!(broadcast::stats().closed_slow - before.closed_slow, 1);
        assert_eq!(slow.recv().await, Err(RecvError::Closed));
        assert_eq!(slow.recv().await, Err(RecvError::Closed), "closed for good");
        assert_eq!(slow.queued(), 0, "its queue is freed");
        // A new subscriber is unaffected.
        let mut fresh = topic.subscribe();
        topic.publish(99);
        assert_eq!(fresh.recv().await, Ok(99));
    });
}

#[test]
fn dropped_subscribers_are_forgotten() {
    let rt = gyre_rt::Builder::new().workers(2).build().unwrap();
    let topic: Topic<u8> = Topic::new(TopicConfig::default());
    let t = topic.clone();
    rt.block_on_local(move || async move {
        let subs: Vec<_> = (0..10).map(|_| t.subscribe()).collect();
        assert_eq!(t.subscriber_count(), 10);
        drop(subs);
        assert_eq!(t.subscriber_count(), 0);
        t.publish(1); // to nobody: fine
    });
    assert_eq!(topic.subscriber_count(), 0);
}

#[test]
fn try_next_drains_a_backlog_but_leaves_a_lag_for_recv() {
    let rt = gyre_rt::Builder::new().workers(1).build().unwrap();
    rt.block_on_local(|| async {
        let topic = Topic::new(TopicConfig {
            capacity: 3,
            overflow: Overflow::DropOldest,
        });
        let mut sub = topic.subscribe();
        topic.publish(1);
        topic.publish(2);
        assert_eq!(
            (sub.try_next(), sub.try_next(), sub.try_next()),
            (Some(1), Some(2), None)
        );
        for i in 3..=7 {
            topic.publish(i);
        }
        assert_eq!(sub.try_next(), None, "the lag is reported first");
        assert_eq!(sub.recv().await, Err(RecvError::Lagged(2)));
        assert_eq!(
            (sub.try_next(), sub.try_next(), sub.try_next()),
            (Some(5), Some(6), Some(7))
        );
    });
}
