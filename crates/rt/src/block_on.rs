//! `block_on`: drive one future to completion on the calling (non-loop) thread.

use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::thread::{self, Thread};

/// Wakes a parked thread.
struct Unpark(Thread);

impl Wake for Unpark {
    fn wake(self: Arc<Self>) {
        self.0.unpark();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.0.unpark();
    }
}

/// Polls `future` on this thread, parking between wake-ups, and returns its
/// output. For the main thread and tests: the future cannot use sockets or
/// timers (those belong to loops); await a [`crate::JoinHandle`] of work
/// spawned on a loop instead.
///
/// Panics when called on a loop thread, which it would stall.
pub fn block_on<F: Future>(future: F) -> F::Output {
    assert!(
        crate::runtime::current_loop().is_none(),
        "block_on would stall this event loop; await the future instead"
    );
    let waker = Waker::from(Arc::new(Unpark(thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut future = pin!(future);
    loop {
        if let Poll::Ready(v) = future.as_mut().poll(&mut cx) {
            return v;
        }
        thread::park();
    }
}
