//! Whether a file range is in the page cache, so that a loop may read it
//! (with `sendfile`, say) without waiting for a disk.
//!
//! One of the crate's three modules with `unsafe` (the others are
//! `net::sys` and `pooled`): Linux's `cachestat` system call (6.5+), which
//! neither `libc` nor `rustix` wraps yet. Where it is missing (an older
//! kernel, a sandbox that filters it, valgrind) the answer is "unknown", and
//! callers treat that as "not resident".

use std::os::fd::AsFd;

/// Whether the `len` bytes of `file` from `offset` were all in the page
/// cache when asked: `Some(true)` if so, `Some(false)` if some page was
/// not, `None` if the kernel cannot tell. The range must lie within the
/// file: pages past its end are never cached.
///
/// The answer is a snapshot: memory pressure may evict a page right after.
/// A read of it then waits for the disk once, as any read of a cold page;
/// use this to keep the common case off the blocking pool, not as a promise.
pub fn is_resident(file: &impl AsFd, offset: u64, len: u64) -> Option<bool> {
    if len == 0 {
        return Some(true);
    }
    let cached = cached_pages(file, offset, len)?;
    let page = PAGE;
    let pages = (offset + len).div_ceil(page) - offset / page;
    Some(cached >= pages)
}

/// Page size assumed for counting pages in a range: a smaller size than the
/// real one only makes [`is_resident`] answer `false` more often.
const PAGE: u64 = 4096;

#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn cached_pages(file: &impl AsFd, offset: u64, len: u64) -> Option<u64> {
    use std::os::fd::AsRawFd;

    /// `struct cachestat_range` of `<linux/mman.h>`.
    #[repr(C)]
    struct Range {
        off: u64,
        len: u64,
    }
    /// `struct cachestat` of `<linux/mman.h>`.
    #[repr(C)]
    #[derive(Default)]
    struct Stat {
        nr_cache: u64,
        nr_dirty: u64,
        nr_writeback: u64,
        nr_evicted: u64,
        nr_recently_evicted: u64,
    }
    /// The call's number: 451 on every architecture (it came after the
    /// tables were unified in Linux 5.1).
    const SYS_CACHESTAT: libc::c_long = 451;

    let range = Range { off: offset, len };
    let mut stat = Stat::default();
    let fd = file.as_fd();
    // SAFETY: `fd` is borrowed from a live descriptor for the whole call;
    // `range` and `stat` are live, properly aligned `repr(C)` values of the
    // kernel's layouts, the one read and the other written by the kernel
    // within their sizes; flags must be 0.
    let rc = unsafe {
        libc::syscall(
            SYS_CACHESTAT,
            fd.as_raw_fd(),
            &range as *const Range,
            &mut stat as *mut Stat,
            0 as libc::c_uint,
        )
    };
    (rc == 0).then_some(stat.nr_cache)
}

#[cfg(not(target_os = "linux"))]
fn cached_pages(_: &impl AsFd, _: u64, _: u64) -> Option<u64> {
    None
}
