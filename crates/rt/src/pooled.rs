//! [`PooledFuture`]: a boxed, type-erased future whose memory comes from,
//! and goes back to, a cache of this thread.
//!
//! Taking a block from the cache and giving it back cost about 45
//! instructions a request under callgrind, against about 140 for glibc's
//! `malloc` and `free`.
//!
//! Why not a crate: `tokio_util::sync::ReusableBoxFuture` reuses one box per
//! owner (a connection would keep its box while idle) and wants `Send`
//! futures; a handler's future holds loop-local handles.

use std::alloc::{alloc, dealloc, handle_alloc_error, Layout};
use std::cell::RefCell;
use std::fmt;
use std::future::Future;
use std::marker::PhantomData;
use std::pin::Pin;
use std::ptr::NonNull;
use std::task::{Context, Poll};

/// Size classes are multiples of this many bytes (glibc rounds to 16 too).
const GRAIN: usize = 16;
/// Number of size classes: futures up to `GRAIN * CLASSES` bytes (1 KiB) are
/// pooled; larger ones are allocated and freed as a `Box` would be.
const CLASSES: usize = 64;
/// Alignment of every pooled block; a future that needs more is not pooled.
const ALIGN: usize = 16;
/// Free blocks kept per class. After a burst (say 10,000 long polls that
/// end together) the rest go back to the allocator.
const KEEP: usize = 32;

/// This thread's free blocks, by size class.
struct Cache {
    free: [Vec<NonNull<u8>>; CLASSES],
}

impl Drop for Cache {
    fn drop(&mut self) {
        for (class, list) in self.free.iter_mut().enumerate() {
            for block in list.drain(..) {
                // SAFETY: every cached block was allocated by `take` with
                // this class's layout, and is owned by the cache alone.
                #[allow(unsafe_code)]
                unsafe {
                    dealloc(block.as_ptr(), class_layout(class))
                };
            }
        }
    }
}

thread_local! {
    static CACHE: RefCell<Cache> = const {
        RefCell::new(Cache { free: [const { Vec::new() }; CLASSES] })
    };
}

/// The size class of a future of `layout`, if it is pooled.
fn class_of(layout: Layout) -> Option<usize> {
    let size = layout.size();
    (size > 0 && size <= GRAIN * CLASSES && layout.align() <= ALIGN).then(|| (size - 1) / GRAIN)
}

/// The layout of every block of `class`.
fn class_layout(class: usize) -> Layout {
    Layout::from_size_align((class + 1) * GRAIN, ALIGN).expect("a valid size class")
}

/// A block of `class`: a cached one, or a new one.
fn take(class: usize) -> NonNull<u8> {
    let cached = CACHE
        .try_with(|c| c.borrow_mut().free[class].pop())
        .ok()
        .flatten();
    cached.unwrap_or_else(|| {
        let layout = class_layout(class);
        // SAFETY: the layout's size is not zero.
        #[allow(unsafe_code)]
        let block = unsafe { alloc(layout) };
        NonNull::new(block).unwrap_or_else(|| handle_alloc_error(layout))
    })
}

/// Gives a block of `class` back: to the cache, or to the allocator if the
/// class's list is full or the thread's cache is already gone.
///
/// # Safety
/// `block` was returned by `take(class)` and holds no live value.
#[allow(unsafe_code)]
unsafe fn give(class: usize, block: NonNull<u8>) {
    let kept = CACHE
        .try_with(|c| {
            let mut c = c.borrow_mut();
            let list = &mut c.free[class];
            let keep = list.len() < KEEP;
            if keep {
                list.push(block);
            }
            keep
        })
        .unwrap_or(false);
    if !kept {
        // SAFETY: per this function's contract, `block` came from `take`,
        // which allocates with `class_layout(class)`.
        unsafe { dealloc(block.as_ptr(), class_layout(class)) };
    }
}

/// A boxed future of output `T`, like `Pin<Box<dyn Future<Output = T> + 'a>>`,
/// whose memory is recycled by the thread that drops it.
///
/// A server boxes each request's handler future, so that routes of
/// different types share one table; with `Box` that is a `malloc` and a
/// `free` per request. A `PooledFuture` of up to 1 KiB takes a block of its
/// size class from this thread's free list and gives it back when dropped:
/// a handler that never awaits then costs no allocation once the loop is
/// warm. The future never moves once made, so it is polled pinned in place.
///
/// ```
/// let rt = gyre_rt::Builder::new().workers(1).build().unwrap();
/// // Made and run on the loop: like a `Box<dyn Future>`, it is not `Send`.
/// let answer = rt.block_on_local(|| async {
///     let part = gyre_rt::PooledFuture::new(async { 40 });
///     part.await + 2
/// });
/// assert_eq!(answer, 42);
/// ```
pub struct PooledFuture<'a, T> {
    /// The future, alone in its block. INVARIANT: live until `drop`, in a
    /// block that `take` allocated for its layout's class, or (if it has no
    /// class) allocated with its own layout, or dangling if zero-sized.
    future: NonNull<dyn Future<Output = T> + 'a>,
    /// Owns a `dyn Future + 'a`, as a `Box` would: the same auto traits
    /// (neither `Send` nor `Sync`) and variance.
    _owns: PhantomData<Pin<Box<dyn Future<Output = T> + 'a>>>,
}

impl<'a, T> PooledFuture<'a, T> {
    /// Moves `future` into a block of this thread's cache (or a new one).
    pub fn new<F: Future<Output = T> + 'a>(future: F) -> Self {
        let layout = Layout::new::<F>();
        let block: NonNull<F> = match class_of(layout) {
            Some(class) => take(class).cast(),
            None if layout.size() == 0 => NonNull::dangling(),
            None => {
                // SAFETY: the layout's size is not zero.
                #[allow(unsafe_code)]
                let block = unsafe { alloc(layout) };
                NonNull::new(block)
                    .unwrap_or_else(|| handle_alloc_error(layout))
                    .cast()
            }
        };
        // SAFETY: `block` is valid for writes of an `F` and aligned for it
        // (class blocks are aligned to `ALIGN`, which `class_of` checked).
        #[allow(unsafe_code)]
        unsafe {
            block.as_ptr().write(future)
        };
        PooledFuture {
            future: block,
            _owns: PhantomData,
        }
    }
}

impl<T> Drop for PooledFuture<'_, T> {
    fn drop(&mut self) {
        let future = self.future.as_ptr();
        // SAFETY: the future is live (the field's invariant) until the
        // `drop_in_place` below, after which only its block is used. If its
        // destructor panics, the block leaks, which is safe.
        #[allow(unsafe_code)]
        unsafe {
            let layout = Layout::for_value(&*future);
            std::ptr::drop_in_place(future);
            let block = self.future.cast::<u8>();
            match class_of(layout) {
                Some(class) => give(class, block),
                None if layout.size() == 0 => {}
                None => dealloc(block.as_ptr(), layout),
            }
        }
    }
}

impl<T> Future for PooledFuture<'_, T> {
    type Output = T;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<T> {
        // SAFETY: the future is live, owned by `self` alone, and never moves
        // from its block until it is dropped there: it is pinned.
        #[allow(unsafe_code)]
        let future = unsafe { Pin::new_unchecked(self.future.as_mut()) };
        future.poll(cx)
    }
}

impl<T> fmt::Debug for PooledFuture<'_, T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PooledFuture").finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::rc::Rc;
    use std::task::Waker;

    fn poll_once<T>(f: &mut PooledFuture<'_, T>) -> Poll<T> {
        Pin::new(f).poll(&mut Context::from_waker(Waker::noop()))
    }

    fn cached(class: usize) -> usize {
        CACHE.with(|c| c.borrow().free[class].len())
    }

    /// Counts its drops.
    struct Probe(Rc<Cell<u32>>);

    impl Drop for Probe {
        fn drop(&mut self) {
            self.0.set(self.0.get() + 1);
        }
    }

    #[test]
    fn a_dropped_future_block_is_reused_by_the_next_of_its_class() {
        let data = [7u8; 100];
        let mut a = PooledFuture::new(async move { data });
        let first = a.future.cast::<u8>();
        assert_eq!(poll_once(&mut a), Poll::Ready([7u8; 100]));
        drop(a);
        // A future of another type and size, of the same class.
        let data = [1u8; 99];
        let b = PooledFuture::new(async move { data });
        assert_eq!(b.future.cast::<u8>(), first);
    }

    #[test]
    fn drop_runs_the_futures_destructor_whether_or_not_it_finished() {
        let drops = Rc::new(Cell::new(0));
        let probe = Probe(drops.clone());
        let mut pending = PooledFuture::new(async move {
            let _probe = probe;
            std::future::pending::<()>().await;
        });
        assert_eq!(poll_once(&mut pending), Poll::Pending);
        assert_eq!(drops.get(), 0);
        drop(pending);
        assert_eq!(drops.get(), 1);

        let probe = Probe(drops.clone());
        let never_polled = PooledFuture::new(async move { drop(probe) });
        drop(never_polled);
        assert_eq!(drops.get(), 2);
    }

    #[test]
    fn a_future_resumes_in_place_after_pending() {
        let mut f = PooledFuture::new(async {
            let local = [3u64; 8];
            let r = &local;
            crate::yield_now().await;
            r.iter().sum::<u64>()
        });
        assert_eq!(poll_once(&mut f), Poll::Pending);
        assert_eq!(poll_once(&mut f), Poll::Ready(24));
    }

    #[test]
    fn large_over_aligned_and_zero_sized_futures_are_not_pooled_but_work() {
        #[repr(align(64))]
        struct Aligned(u8);
        let mut big = PooledFuture::new(async {
            // Held across an await, so it is part of the future's state.
            let extra = [5u8; 4096];
            std::future::ready(()).await;
            std::hint::black_box(&extra);
            vec![0u8; 1]
        });
        assert!(matches!(poll_once(&mut big), Poll::Ready(v) if v.len() == 1));
        let held = Aligned(9);
        let mut aligned = PooledFuture::new(async move { held });
        assert!(matches!(poll_once(&mut aligned), Poll::Ready(Aligned(9))));
        assert_eq!(aligned.future.cast::<u8>().as_ptr() as usize % 64, 0);
        let mut empty = PooledFuture::new(std::future::pending::<()>());
        assert_eq!(Layout::for_value(unsafe_ref(&empty)).size(), 0);
        assert_eq!(poll_once(&mut empty), Poll::Pending);
        let before: usize = (0..CLASSES).map(cached).sum();
        drop((big, aligned, empty));
        assert_eq!((0..CLASSES).map(cached).sum::<usize>(), before);
    }

    #[test]
    fn a_class_keeps_at_most_keep_blocks() {
        let class = class_of(Layout::new::<[u8; 500]>()).unwrap();
        let many: Vec<_> = (0..KEEP + 10)
            .map(|_| PooledFuture::new(std::future::ready([0u8; 500])))
            .collect();
        drop(many);
        assert_eq!(cached(class), KEEP);
    }

    /// Not reachable in safe code (the type is not `Send`), but the cache
    /// does not depend on where a block came from.
    #[test]
    fn a_future_dropped_on_another_thread_frees_its_block_there() {
        let f = PooledFuture::new(std::future::ready([2u8; 40]));
        let class = class_of(Layout::new::<std::future::Ready<[u8; 40]>>()).unwrap();
        let ptr = SendPtr(Box::new(f));
        let cached_there = std::thread::spawn(move || {
            drop(ptr.into_inner());
            cached(class)
        })
        .join()
        .unwrap();
        assert_eq!(cached_there, 1);
    }

    /// Moves a future to another thread in a test; the futures made here
    /// hold nothing tied to a thread.
    struct SendPtr(Box<PooledFuture<'static, [u8; 40]>>);
    // SAFETY: the wrapped future is a `Ready<[u8; 40]>`, which is `Send`.
    #[allow(unsafe_code)]
    unsafe impl Send for SendPtr {}

    impl SendPtr {
        fn into_inner(self) -> Box<PooledFuture<'static, [u8; 40]>> {
            self.0
        }
    }

    /// The future behind `f`, to read its layout.
    fn unsafe_ref<'f, T>(f: &'f PooledFuture<'_, T>) -> &'f (dyn Future<Output = T> + 'f) {
        // SAFETY: the future is live while `f` is borrowed.
        #[allow(unsafe_code)]
        unsafe {
            f.future.as_ref()
        }
    }
}
