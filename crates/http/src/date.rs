//! A per-thread cache of the current HTTP-date, re-rendered at most once a second.

use std::cell::Cell;
use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Length of an IMF-fixdate such as `Sun, 06 Nov 1994 08:49:37 GMT`.
pub const DATE_LEN: usize = 29;

/// The last second httpdate can format: 9999-12-31T23:59:59Z.
const MAX_SECOND: u64 = 253_402_300_799;

/// The rendered date and the second it stands for.
#[derive(Debug, Clone, Copy)]
struct CachedDate {
    /// Seconds since the Unix epoch that `bytes` renders; `u64::MAX` before
    /// the first render.
    second: u64,
    /// The IMF-fixdate for `second`.
    bytes: [u8; DATE_LEN],
}

impl CachedDate {
    /// A cache that renders on first use.
    const EMPTY: CachedDate = CachedDate {
        second: u64::MAX,
        bytes: [b' '; DATE_LEN],
    };

    /// Brings the cache to `now`; returns true if it had to re-render.
    fn update(&mut self, now: SystemTime) -> bool {
        // httpdate panics outside 1970..=9999, so a wild clock is clamped.
        let second = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
        let second = second.min(MAX_SECOND);
        if second == self.second {
            return false;
        }
        self.second = second;
        self.bytes = render(second);
        true
    }
}

thread_local! {
    /// This thread's cache. Each event loop thread keeps its own, so no
    /// synchronisation is needed (hyper:src/common/date.rs does the same).
    static CACHE: Cell<CachedDate> = const { Cell::new(CachedDate::EMPTY) };
}

/// Calls `f` with the current time as an IMF-fixdate (RFC 9110 §5.6.7),
/// ready for a `date` field.
///
/// The date is formatted at most once per second per thread; other calls
/// cost one clock read and a 29-byte copy.
///
/// # Examples
///
/// ```
/// gyre_http::with_date(|date| {
///     assert_eq!(date.len(), 29);
///     assert!(date.ends_with(b" GMT"));
/// });
/// ```
pub fn with_date<R>(f: impl FnOnce(&[u8]) -> R) -> R {
    let bytes = CACHE.with(|cache| {
        let mut cached = cache.get();
        if cached.update(SystemTime::now()) {
            cache.set(cached);
        }
        cached.bytes
    });
    // `f` gets a copy, so it may call `with_date` again.
    f(&bytes)
}

thread_local! {
    /// The event-loop turn at which this thread last read the clock.
    static CHECKED_AT: Cell<u64> = const { Cell::new(0) };
}

/// Like [`with_date`], reading the clock at most once per `turn` of the
/// caller's event loop (`None`: every time). Many responses made in one turn
/// share one clock read; the date is then at most one turn old.
pub fn with_date_for_turn<R>(turn: Option<u64>, f: impl FnOnce(&[u8]) -> R) -> R {
    if let Some(turn) = turn {
        if CHECKED_AT.get() == turn {
            let cached = CACHE.with(Cell::get);
            if cached.second != u64::MAX {
                return f(&cached.bytes);
            }
        }
        CHECKED_AT.set(turn);
    }
    with_date(f)
}

/// Formats `second`, at most `MAX_SECOND`, as an IMF-fixdate.
fn render(second: u64) -> [u8; DATE_LEN] {
    let time = UNIX_EPOCH + Duration::from_secs(second);
    let mut bytes = [b' '; DATE_LEN];
    // An IMF-fixdate for years 1970..=9999, the range httpdate accepts,
    // is exactly DATE_LEN bytes, so the write cannot run short.
    let written = write!(&mut bytes[..], "{}", httpdate::HttpDate::from(time));
    debug_assert!(written.is_ok());
    bytes
}

#[cfg(test)]
mod tests {

    #[test]
    fn one_clock_read_per_turn() {
        // An old date cached at turn 7: turn 7 keeps it, turn 8 reads the clock.
        let mut old = CachedDate::EMPTY;
        old.update(UNIX_EPOCH);
        CACHE.with(|c| c.set(old));
        CHECKED_AT.with(|c| c.set(7));
        with_date_for_turn(Some(7), |d| assert_eq!(d, b"Thu, 01 Jan 1970 00:00:00 GMT"));
        with_date_for_turn(Some(8), |d| assert_ne!(d, b"Thu, 01 Jan 1970 00:00:00 GMT"));
        // Off a loop, every call reads the clock.
        CACHE.with(|c| c.set(old));
        with_date_for_turn(None, |d| assert_ne!(d, b"Thu, 01 Jan 1970 00:00:00 GMT"));
    }

    use super::*;

    #[test]
    fn date_renders_imf_fixdate() {
        let table: &[(u64, &[u8])] = &[
            (0, b"Thu, 01 Jan 1970 00:00:00 GMT"),
            (784_111_777, b"Sun, 06 Nov 1994 08:49:37 GMT"),
            (1_700_000_000, b"Tue, 14 Nov 2023 22:13:20 GMT"),
            (MAX_SECOND, b"Fri, 31 Dec 9999 23:59:59 GMT"),
        ];
        for &(secs, expected) in table {
            assert_eq!(&render(secs)[..], expected);
        }
    }

    #[test]
    fn date_shape() {
        with_date(|date| {
            assert_eq!(date.len(), DATE_LEN);
            assert!(date.ends_with(b" GMT"));
            assert_eq!(date[3], b',');
            let parsed = httpdate::parse_http_date(std::str::from_utf8(date).unwrap()).unwrap();
            let age = SystemTime::now().duration_since(parsed).unwrap();
            assert!(age < Duration::from_secs(5));
        });
    }

    #[test]
    fn date_cache_renders_once_per_second() {
        let start = UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let mut cache = CachedDate::EMPTY;
        assert!(cache.update(start));
        assert!(!cache.update(start + Duration::from_millis(999)));
        assert!(cache.update(start + Duration::from_secs(1)));
        assert_eq!(&cache.bytes[..], b"Tue, 14 Nov 2023 22:13:21 GMT");
    }

    #[test]
    fn date_clamps_wild_clocks() {
        let mut cache = CachedDate::EMPTY;
        cache.update(UNIX_EPOCH - Duration::from_secs(10));
        assert_eq!(&cache.bytes[..], b"Thu, 01 Jan 1970 00:00:00 GMT");
        cache.update(UNIX_EPOCH + Duration::from_secs(MAX_SECOND * 2));
        assert_eq!(&cache.bytes[..], b"Fri, 31 Dec 9999 23:59:59 GMT");
    }

    #[test]
    fn date_reentrant() {
        with_date(|outer| with_date(|inner| assert_eq!(outer.len(), inner.len())));
    }
}
