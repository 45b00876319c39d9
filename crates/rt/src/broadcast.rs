//! Topics: publish from any thread, subscribe on any loop, fan out per loop.
//!
//! A message published to a [`Topic`] is handed **once** to each loop that has
//! subscribers (one push under a short lock, and one task that drains every
//! message queued meanwhile), and that loop copies it into its own
//! subscribers' queues. Publishing to 10,000 subscribers spread over 4 loops
//! is 4 cross-thread hand-offs, not 10,000; a message published on a loop
//! reaches that loop's own subscribers with no hand-off at all.
//!
//! Every subscriber has a bounded queue. When a slow subscriber's queue is
//! full, the topic's [`Overflow`] policy either drops its oldest message (the
//! subscriber then gets [`RecvError::Lagged`] with the number it missed) or
//! closes it ([`RecvError::Closed`]). Both are counted in [`stats`].
//!
//! ```
//! use gyre_rt::broadcast::{Topic, TopicConfig};
//! let rt = gyre_rt::Builder::new().workers(2).build().unwrap();
//! let topic: Topic<&'static str> = Topic::new(TopicConfig::default());
//! let got = rt.block_on_local(move || async move {
//!     let mut sub = topic.subscribe();
//!     topic.publish("hello");
//!     sub.recv().await
//! });
//! assert_eq!(got, Ok("hello"));
//! ```

use std::any::Any;
use std::cell::RefCell;
use std::collections::{HashMap, VecDeque};
use std::future::poll_fn;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Poll, Waker};

use slab::Slab;

use crate::runtime::Handle;

/// What a full subscriber queue does with one more message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Overflow {
    /// Drop the oldest queued message; the subscriber learns how many it missed.
    #[default]
    DropOldest,
    /// Close the subscriber: it gets [`RecvError::Closed`] and nothing more.
    Close,
}

/// How a topic treats its subscribers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TopicConfig {
    /// Messages a subscriber may have queued (at least 1).
    pub capacity: usize,
    /// What happens when a subscriber's queue is full.
    pub overflow: Overflow,
}

impl Default for TopicConfig {
    fn default() -> Self {
        TopicConfig {
            capacity: 256,
            overflow: Overflow::DropOldest,
        }
    }
}

/// Why [`Subscription::recv`] returned no message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RecvError {
    /// The queue overflowed and this many messages were dropped; the next
    /// call returns the oldest message still queued.
    Lagged(u64),
    /// The subscriber was closed because its queue overflowed
    /// ([`Overflow::Close`]).
    Closed,
}

impl std::fmt::Display for RecvError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RecvError::Lagged(n) => write!(f, "subscriber lagged behind and missed {n} message(s)"),
            RecvError::Closed => f.write_str("subscriber closed: its queue overflowed"),
        }
    }
}

impl std::error::Error for RecvError {}

/// Process-wide broadcast numbers, for `/metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BroadcastStats {
    /// Messages published, to any topic.
    pub published: u64,
    /// Messages placed in a subscriber's queue.
    pub delivered: u64,
    /// Messages dropped from full queues ([`Overflow::DropOldest`]).
    pub dropped: u64,
    /// Subscribers closed because their queue was full ([`Overflow::Close`]).
    pub closed_slow: u64,
    /// Subscribers alive now.
    pub subscribers: u64,
    /// Batches handed from one thread to another loop (one task each).
    pub handoffs: u64,
}

static PUBLISHED: AtomicU64 = AtomicU64::new(0);
static DELIVERED: AtomicU64 = AtomicU64::new(0);
static DROPPED: AtomicU64 = AtomicU64::new(0);
static CLOSED_SLOW: AtomicU64 = AtomicU64::new(0);
static SUBSCRIBERS: AtomicU64 = AtomicU64::new(0);
static HANDOFFS: AtomicU64 = AtomicU64::new(0);
static NEXT_TOPIC: AtomicU64 = AtomicU64::new(1);

/// The process-wide broadcast numbers.
pub fn stats() -> BroadcastStats {
    BroadcastStats {
        published: PUBLISHED.load(Ordering::Relaxed),
        delivered: DELIVERED.load(Ordering::Relaxed),
        dropped: DROPPED.load(Ordering::Relaxed),
        closed_slow: CLOSED_SLOW.load(Ordering::Relaxed),
        subscribers: SUBSCRIBERS.load(Ordering::Relaxed),
        handoffs: HANDOFFS.load(Ordering::Relaxed),
    }
}

/// A topic. Cheap to clone; every clone is the same topic. It binds to the
/// runtime of the first loop that subscribes or publishes.
pub struct Topic<T> {
    inner: Arc<Inner<T>>,
}

impl<T> Clone for Topic<T> {
    fn clone(&self) -> Self {
        Topic {
            inner: self.inner.clone(),
        }
    }
}

impl<T> std::fmt::Debug for Topic<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Topic")
            .field("id", &self.inner.id)
            .field("config", &self.inner.config)
            .finish()
    }
}

struct Inner<T> {
    id: u64,
    config: TopicConfig,
    /// The runtime and one shard per loop, set on first use.
    bound: OnceLock<Bound<T>>,
}

struct Bound<T> {
    handle: Handle,
    shards: Box<[Shard<T>]>,
}

/// One loop's share of a topic, as other threads see it.
struct Shard<T> {
    /// Subscribers on that loop; publishers skip loops with none.
    subscribers: AtomicUsize,
    /// Messages handed over and not yet fanned out.
    pending: Mutex<Vec<T>>,
    /// A drain task is queued on the loop.
    scheduled: AtomicBool,
}

impl<T: Clone + Send + 'static> Topic<T> {
    /// A new topic with no subscribers.
    pub fn new(config: TopicConfig) -> Self {
        Topic {
            inner: Arc::new(Inner {
                id: NEXT_TOPIC.fetch_add(1, Ordering::Relaxed),
                config: TopicConfig {
                    capacity: config.capacity.max(1),
                    ..config
                },
                bound: OnceLock::new(),
            }),
        }
    }

    /// Binds the topic to `handle`'s runtime now (otherwise the first loop
    /// that uses it does), so that threads off the loops can publish first.
    pub fn bind(&self, handle: &Handle) {
        self.inner.bound_to(|| handle.clone());
    }

    /// The topic's settings.
    pub fn config(&self) -> TopicConfig {
        self.inner.config
    }

    /// Subscribers alive on every loop.
    pub fn subscriber_count(&self) -> usize {
        self.inner.bound.get().map_or(0, |b| {
            b.shards
                .iter()
                .map(|s| s.subscribers.load(Ordering::Relaxed))
                .sum()
        })
    }

    /// Sends `message` to every subscriber. Never waits: a full subscriber
    /// queue follows the [`Overflow`] policy.
    ///
    /// Panics if the topic is not bound yet and this is not a loop thread.
    pub fn publish(&self, message: T) {
        PUBLISHED.fetch_add(1, Ordering::Relaxed);
        let bound = self.inner.bound_to(Handle::current);
        // Only a loop of this topic's runtime may fan out in place.
        let here = crate::event_loop::try_with_current(|l| {
            Arc::ptr_eq(&l.runtime, &bound.handle.shared).then_some(l.shared.index)
        })
        .flatten();
        let mut message = Some(message);
        let last = bound
            .shards
            .iter()
            .rposition(|s| s.subscribers.load(Ordering::Acquire) > 0);
        let Some(last) = last else { return };
        for (i, shard) in bound.shards.iter().enumerate().take(last + 1) {
            if shard.subscribers.load(Ordering::Acquire) == 0 {
                continue;
            }
            let m = if i == last {
                message.take().expect("taken once")
            } else {
                message.clone().expect("still here")
            };
            // In place on this loop, unless messages handed over earlier still
            // wait for their drain here: then behind them, to keep their order.
            if here == Some(i) && !shard.scheduled.load(Ordering::Acquire) {
                self.inner.fan_out(std::iter::once(m));
            } else {
                shard.pending.lock().expect("topic shard lock").push(m);
                if !shard.scheduled.swap(true, Ordering::AcqRel) {
                    HANDOFFS.fetch_add(1, Ordering::Relaxed);
                    let inner = self.inner.clone();
                    bound
                        .handle
                        .spawn_on(i, async move { inner.drain(i) })
                        .detach();
                }
            }
        }
    }

    /// A new subscriber on the current loop: it receives every message
    /// published from now on. Panics off a loop thread, or on a loop of
    /// another runtime than the one the topic is bound to.
    pub fn subscribe(&self) -> Subscription<T> {
        let bound = self.inner.bound_to(Handle::current);
        let index = crate::event_loop::try_with_current(|l| {
            Arc::ptr_eq(&l.runtime, &bound.handle.shared).then_some(l.shared.index)
        })
        .flatten()
        .expect("subscribe on a loop of the runtime the topic is bound to");
        let local = self.inner.local();
        let key = local.subs.borrow_mut().insert(Sub {
            queue: VecDeque::new(),
            missed: 0,
            closed: false,
            waker: None,
        });
        bound.shards[index]
            .subscribers
            .fetch_add(1, Ordering::AcqRel);
        SUBSCRIBERS.fetch_add(1, Ordering::Relaxed);
        Subscription {
            topic: self.inner.clone(),
            local,
            key,
            index,
        }
    }
}

impl<T: Clone + Send + 'static> Inner<T> {
    fn bound_to(&self, handle: impl FnOnce() -> Handle) -> &Bound<T> {
        self.bound.get_or_init(|| {
            let handle = handle();
            let shards = (0..handle.loops())
                .map(|_| Shard {
                    subscribers: AtomicUsize::new(0),
                    pending: Mutex::new(Vec::new()),
                    scheduled: AtomicBool::new(false),
                })
                .collect();
            Bound { handle, shards }
        })
    }

    /// This loop's subscribers of this topic.
    fn local(&self) -> Rc<LocalTopic<T>> {
        LOCAL_TOPICS.with(|m| {
            let mut m = m.borrow_mut();
            let entry = m.entry(self.id).or_insert_with(|| {
                Rc::new(LocalTopic::<T> {
                    subs: RefCell::new(Slab::new()),
                }) as Rc<dyn Any>
            });
            entry
                .clone()
                .downcast::<LocalTopic<T>>()
                .expect("one message type per topic id")
        })
    }

    /// Runs on loop `index`: fans out everything handed over so far.
    fn drain(&self, index: usize) {
        let shard = &self.bound.get().expect("bound before any hand-off").shards[index];
        // Clear the flag first: a publisher that pushes after the take below
        // schedules another drain, so no message is left behind.
        shard.scheduled.store(false, Ordering::Release);
        let batch = std::mem::take(&mut *shard.pending.lock().expect("topic shard lock"));
        self.fan_out(batch.into_iter());
    }

    /// Copies each message into every local subscriber's queue.
    fn fan_out(&self, messages: impl Iterator<Item = T>) {
        let id = self.id;
        let Some(local) = LOCAL_TOPICS.with(|m| m.borrow().get(&id).cloned()) else {
            return; // every subscriber here left meanwhile
        };
        let local = local
            .downcast::<LocalTopic<T>>()
            .expect("one message type per topic id");
        let mut subs = local.subs.borrow_mut();
        let (capacity, overflow) = (self.config.capacity, self.config.overflow);
        let (mut delivered, mut dropped, mut closed) = (0u64, 0u64, 0u64);
        for m in messages {
            for (_, sub) in subs.iter_mut() {
                if sub.closed {
                    continue;
                }
                if sub.queue.len() >= capacity {
                    match overflow {
                        Overflow::DropOldest => {
                            sub.queue.pop_front();
                            sub.missed += 1;
                            dropped += 1;
                        }
                        Overflow::Close => {
                            sub.closed = true;
                            sub.queue = VecDeque::new();
                            closed += 1;
                            if let Some(w) = sub.waker.take() {
                                w.wake();
                            }
                            continue;
                        }
                    }
                }
                sub.queue.push_back(m.clone());
                delivered += 1;
                if let Some(w) = sub.waker.take() {
                    w.wake();
                }
            }
        }
        DELIVERED.fetch_add(delivered, Ordering::Relaxed);
        if dropped > 0 {
            DROPPED.fetch_add(dropped, Ordering::Relaxed);
        }
        if closed > 0 {
            CLOSED_SLOW.fetch_add(closed, Ordering::Relaxed);
        }
    }
}

thread_local! {
    /// Each topic's subscribers on this loop, by topic id (`Rc<LocalTopic<T>>`).
    static LOCAL_TOPICS: RefCell<HashMap<u64, Rc<dyn Any>>> = RefCell::new(HashMap::new());
}

/// One topic's subscribers on one loop.
struct LocalTopic<T> {
    subs: RefCell<Slab<Sub<T>>>,
}

struct Sub<T> {
    /// INVARIANT: `queue.len() <= capacity`.
    queue: VecDeque<T>,
    /// Dropped since the last `recv`.
    missed: u64,
    closed: bool,
    waker: Option<Waker>,
}

/// A subscriber, bound to the loop that made it.
pub struct Subscription<T> {
    topic: Arc<Inner<T>>,
    local: Rc<LocalTopic<T>>,
    key: usize,
    index: usize,
}

impl<T> std::fmt::Debug for Subscription<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Subscription")
            .field("topic", &self.topic.id)
            .field("loop", &self.index)
            .finish()
    }
}

impl<T> Subscription<T> {
    /// The next message, waiting for one if none is queued.
    pub async fn recv(&mut self) -> Result<T, RecvError> {
        poll_fn(|cx| self.poll_recv(cx.waker())).await
    }

    /// The next message if one is queued now.
    pub fn try_recv(&mut self) -> Option<Result<T, RecvError>> {
        match self.poll_recv(std::task::Waker::noop()) {
            Poll::Ready(r) => Some(r),
            Poll::Pending => {
                self.local.subs.borrow_mut()[self.key].waker = None;
                None
            }
        }
    }

    /// The next queued message, without waiting, if nothing was missed
    /// before it (a lag or a close is left for [`recv`](Self::recv) to
    /// report). For draining a backlog in one go.
    pub fn try_next(&mut self) -> Option<T> {
        let mut subs = self.local.subs.borrow_mut();
        let sub = &mut subs[self.key];
        if sub.missed > 0 {
            return None;
        }
        sub.queue.pop_front()
    }

    fn poll_recv(&mut self, waker: &Waker) -> Poll<Result<T, RecvError>> {
        let mut subs = self.local.subs.borrow_mut();
        let sub = &mut subs[self.key];
        if sub.missed > 0 {
            return Poll::Ready(Err(RecvError::Lagged(std::mem::take(&mut sub.missed))));
        }
        if let Some(m) = sub.queue.pop_front() {
            if sub.queue.is_empty() && sub.queue.capacity() > 16 {
                // A burst is over: give its memory back.
                sub.queue = VecDeque::new();
            }
            return Poll::Ready(Ok(m));
        }
        if sub.closed {
            return Poll::Ready(Err(RecvError::Closed));
        }
        match &mut sub.waker {
            Some(w) if w.will_wake(waker) => {}
            slot => *slot = Some(waker.clone()),
        }
        Poll::Pending
    }

    /// Messages waiting in this subscriber's queue.
    pub fn queued(&self) -> usize {
        self.local.subs.borrow()[self.key].queue.len()
    }
}

impl<T> Drop for Subscription<T> {
    fn drop(&mut self) {
        self.local.subs.borrow_mut().remove(self.key);
        if let Some(b) = self.topic.bound.get() {
            b.shards[self.index]
                .subscribers
                .fetch_sub(1, Ordering::AcqRel);
        }
        SUBSCRIBERS.fetch_sub(1, Ordering::Relaxed);
        if self.local.subs.borrow().is_empty() {
            // The loop's last subscriber: forget the topic here (a later
            // subscriber or hand-off makes a new entry).
            let id = self.topic.id;
            let _ = LOCAL_TOPICS.try_with(|m| m.borrow_mut().remove(&id));
        }
    }
}
