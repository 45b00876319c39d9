//! Heap allocations per request on the loop that serves it, counted by a
//! global allocator that counts only on threads that opted in.
//!
//! Once the loop is warm (its pools of heads, buffers and handler futures
//! filled by the first requests), a keep-alive request to a handler that
//! never awaits allocates nothing: it costs its call, as a plain function's
//! would. A handler that allocates is counted too, to show the counter
//! sees the loop's allocations.

mod util;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::sync::atomic::{AtomicU64, Ordering};

use gyre_server::Request;
use util::{config, get, TestServer};

/// The system allocator, counting the allocations of threads that set
/// [`COUNTED`].
struct Counting;

static ALLOCATIONS: AtomicU64 = AtomicU64::new(0);

thread_local! {
    /// Set on the loop's thread by the first request it serves.
    static COUNTED: Cell<bool> = const { Cell::new(false) };
}

fn count() {
    if COUNTED.try_with(Cell::get).unwrap_or(false) {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
    }
}

// SAFETY: every method forwards to `System` with the caller's arguments;
// counting touches only an atomic and a const-initialised thread local,
// neither of which allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: forwarded under the caller's guarantees.
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count();
        // SAFETY: forwarded under the caller's guarantees.
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        // SAFETY: forwarded under the caller's guarantees.
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: forwarded under the caller's guarantees.
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations on the serving loop during `n` keep-alive requests for
/// `path`, after as many to warm the loop up; checks every response.
fn allocations_per_requests(server: &TestServer, path: &str, body: &str, n: u64) -> u64 {
    let mut client = server.client();
    let request = get(path);
    let mut round = |n| {
        for _ in 0..n {
            let resp = client.request(&request);
            assert_eq!((resp.status, resp.text().as_str()), (200, body));
        }
    };
    round(n);
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    round(n);
    ALLOCATIONS.load(Ordering::Relaxed) - before
}

#[test]
fn a_handler_that_never_awaits_allocates_nothing_per_request() {
    let server = TestServer::start_with(config(), |s| {
        s.get("/plain", |_req: Request| async {
            COUNTED.with(|c| c.set(true));
            "plain\n"
        })
        .get("/owned", |_req: Request| async {
            COUNTED.with(|c| c.set(true));
            String::from("owned\n")
        })
    });
    // The counter works: a handler that makes a `String` is seen, once a request.
    let owned = allocations_per_requests(&server, "/owned", "owned\n", 500);
    assert!(
        owned >= 500,
        "{owned} allocations for 500 requests that each make a String"
    );
    let plain = allocations_per_requests(&server, "/plain", "plain\n", 500);
    assert_eq!(
        plain, 0,
        "allocations for 500 requests to a handler that never awaits"
    );
}
