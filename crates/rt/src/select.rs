//! Waiting for the first of two futures.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Which of two futures finished first, with its output.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Either<A, B> {
    /// The first future finished first.
    Left(A),
    /// The second future finished first.
    Right(B),
}

pin_project_lite::pin_project! {
    /// The future of [`select`].
    #[derive(Debug)]
    #[must_use = "futures do nothing unless awaited"]
    pub struct Select<A, B> {
        #[pin]
        a: A,
        #[pin]
        b: B,
    }
}

/// Waits for whichever of `a` and `b` finishes first (`a` is polled first
/// when both are ready) and drops the other. Use it with futures that lose
/// nothing when dropped before they finish, such as a WebSocket's `recv`
/// and a broadcast subscription's `recv`.
///
/// ```
/// use std::time::Duration;
/// use gyre_rt::{select, Either};
/// let rt = gyre_rt::Builder::new().workers(1).build().unwrap();
/// let first = rt.block_on_local(|| async {
///     let slow = gyre_rt::time::sleep(Duration::from_secs(60));
///     let fast = async { 7 };
///     select(slow, fast).await
/// });
/// assert_eq!(first, Either::Right(7));
/// ```
pub fn select<A: Future, B: Future>(a: A, b: B) -> Select<A, B> {
    Select { a, b }
}

impl<A: Future, B: Future> Future for Select<A, B> {
    type Output = Either<A::Output, B::Output>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(v) = this.a.poll(cx) {
            return Poll::Ready(Either::Left(v));
        }
        if let Poll::Ready(v) = this.b.poll(cx) {
            return Poll::Ready(Either::Right(v));
        }
        Poll::Pending
    }
}
