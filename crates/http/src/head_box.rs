//! [`HeadBox`]: a parsed request head in a box that this thread reuses.
//!
//! Every request needs its head kept apart from the read buffer (the body
//! and the next pipelined request are read into that buffer while a handler
//! still looks at the head). A fresh box and a fresh copy of the head bytes
//! were two allocations and two frees per request: about 375 of a
//! keep-alive request's 4,500 user-space instructions under callgrind. A
//! dropped `HeadBox` goes back to a small per-thread pool with its byte
//! buffer, so a loop that serves request after request allocates nothing
//! for them.

use std::cell::RefCell;
use std::ops::Deref;

use crate::parse::RequestHead;

/// Heads kept per thread: what one loop turn can have in flight (a
/// pipelined batch, handlers that wait); more would only hold memory.
const POOL_MAX: usize = 64;

/// A pooled head keeps its byte buffer up to this capacity (a head larger
/// than that, allowed by the limits, frees its buffer when dropped).
const KEEP_BYTES: usize = 4096;

thread_local! {
    /// This thread's free heads, each reset: empty bytes, no `Uri`, no map.
    /// Boxes, not heads: the box itself is what is reused.
    #[allow(clippy::vec_box)]
    static POOL: RefCell<Vec<Box<RequestHead>>> = const { RefCell::new(Vec::new()) };
}

/// A parsed request head, boxed so that it moves as a pointer. Dropping it
/// returns the box and its byte buffer to this thread's pool.
pub struct HeadBox(
    /// `Some` until the drop. INVARIANT: `Some` whenever a `&self` exists.
    Option<Box<RequestHead>>,
);

impl HeadBox {
    /// A box from this thread's pool, or a new one, for `fill` to write a
    /// head into: a pooled box comes reset (empty bytes with their
    /// capacity kept, no `Uri`, no header map), so `fill` sets each field in
    /// place rather than building a whole head to move in.
    pub(crate) fn with(fill: impl FnOnce(&mut RequestHead)) -> HeadBox {
        let mut boxed = POOL
            .with(|p| p.borrow_mut().pop())
            .unwrap_or_else(|| Box::new(RequestHead::empty()));
        fill(&mut boxed);
        HeadBox(Some(boxed))
    }
}

impl Deref for HeadBox {
    type Target = RequestHead;

    fn deref(&self) -> &RequestHead {
        // Taken only in `drop`, after which no reference exists.
        self.0
            .as_deref()
            .expect("a HeadBox holds its head until dropped")
    }
}

impl Drop for HeadBox {
    fn drop(&mut self) {
        let Some(mut boxed) = self.0.take() else {
            return;
        };
        if boxed.raw_capacity() > KEEP_BYTES {
            return;
        }
        // Off a thread's end (its pool already gone) the box is just freed.
        let _ = POOL.try_with(|p| {
            let mut pool = p.borrow_mut();
            if pool.len() < POOL_MAX {
                // Reset only a box that is kept; the drops it makes (a
                // built `Uri` or header map) do not touch the pool.
                boxed.reset();
                pool.push(boxed);
            }
        });
    }
}

impl std::fmt::Debug for HeadBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        (**self).fmt(f)
    }
}

impl PartialEq for HeadBox {
    fn eq(&self, other: &HeadBox) -> bool {
        **self == **other
    }
}

impl Eq for HeadBox {}

#[cfg(test)]
mod tests {
    use crate::{parse_request, Limits, Status};

    fn head(buf: &[u8]) -> super::HeadBox {
        match parse_request(buf, &Limits::default()) {
            Ok(Status::Complete(head)) => head,
            other => panic!("{other:?}"),
        }
    }

    /// A reused box carries nothing of the request it held before: not its
    /// bytes, not its lazily built `Uri` or header map.
    #[test]
    fn head_box_reuse_forgets_the_previous_request() {
        let first = head(b"GET /first?x=1 HTTP/1.1\r\nHost: a\r\nX-Old: 1\r\n\r\n");
        assert_eq!(first.uri().query(), Some("x=1"));
        assert_eq!(first.headers().len(), 2);
        let address = &*first as *const _ as usize;
        drop(first);
        let second = head(b"GET /2 HTTP/1.1\r\nHost: b\r\n\r\n");
        assert_eq!(&*second as *const _ as usize, address, "the box was reused");
        assert_eq!(second.path(), "/2");
        assert_eq!(second.uri().query(), None);
        assert_eq!(second.headers().len(), 1);
        assert!(second.header("x-old").is_none());
        assert_eq!(second.header("host"), Some(&b"b"[..]));
        drop(second);
        // An absolute-form target, whose `Uri` is made while parsing, in
        // the same box; then an origin-form one again.
        let third = head(b"GET http://c.example/3?y HTTP/1.1\r\nHost: c.example\r\n\r\n");
        assert_eq!(&*third as *const _ as usize, address, "the box was reused");
        assert_eq!(third.uri().host(), Some("c.example"));
        assert_eq!((third.path(), third.query()), ("/3", Some("y")));
        drop(third);
        let fourth = head(b"GET /4 HTTP/1.1\r\nHost: d\r\n\r\n");
        assert_eq!(fourth.uri().host(), None);
        assert_eq!((fourth.path(), fourth.query()), ("/4", None));
    }

    /// The pool is bounded, and a head with a large buffer is not kept.
    #[test]
    fn head_box_pool_is_bounded() {
        let heads: Vec<_> = (0..super::POOL_MAX + 10)
            .map(|_| head(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"))
            .collect();
        drop(heads);
        assert_eq!(super::POOL.with(|p| p.borrow().len()), super::POOL_MAX);
        assert!(super::POOL.with(|p| p.borrow().iter().all(|h| h.raw().is_empty())));
        super::POOL.with(|p| p.borrow_mut().clear());
        let long = format!(
            "GET / HTTP/1.1\r\nHost: a\r\nX: {}\r\n\r\n",
            "y".repeat(8000)
        );
        drop(head(long.as_bytes()));
        assert_eq!(
            super::POOL.with(|p| p.borrow().len()),
            0,
            "a large buffer was kept"
        );
        drop(head(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"));
        assert_eq!(super::POOL.with(|p| p.borrow().len()), 1);
    }
}
