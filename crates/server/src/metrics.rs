//! Server counters, kept per loop (no shared cache line on the request path)
//! and rendered in the Prometheus text format at `/metrics`.

use std::fmt::Write;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

/// Why a request or connection was refused or cut short.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[repr(usize)]
pub enum Reason {
    /// The head did not arrive in time (408).
    HeaderTimeout,
    /// The body was too slow or stalled (408).
    BodyTimeout,
    /// The client read the response too slowly or not at all (closed).
    WriteTimeout,
    /// An idle keep-alive connection was closed.
    IdleTimeout,
    /// Malformed or ambiguous request (400).
    BadRequest,
    /// Request line too long (414).
    UriTooLong,
    /// Head too large or too many fields (431).
    HeadTooLarge,
    /// Body larger than the limit (413).
    BodyTooLarge,
    /// Unsupported transfer-coding (501) or version (505).
    NotImplemented,
    /// Over the connection limit (503).
    ConnectionLimit,
}

const REASONS: [(Reason, &str); 10] = [
    (Reason::HeaderTimeout, "header_timeout"),
    (Reason::BodyTimeout, "body_timeout"),
    (Reason::WriteTimeout, "write_timeout"),
    (Reason::IdleTimeout, "idle_timeout"),
    (Reason::BadRequest, "bad_request"),
    (Reason::UriTooLong, "uri_too_long"),
    (Reason::HeadTooLarge, "head_too_large"),
    (Reason::BodyTooLarge, "body_too_large"),
    (Reason::NotImplemented, "not_implemented"),
    (Reason::ConnectionLimit, "connection_limit"),
];

/// Counters of one loop, aligned to their own cache lines.
#[derive(Debug)]
#[repr(align(128))]
pub(crate) struct LoopMetrics {
    /// Responses by status code (index = code - 100). Written only by the
    /// loop these counters belong to (the connections it serves, the
    /// refusals it accepts), read by any thread.
    responses: [AtomicU64; 500],
    /// Open connections on this loop.
    pub(crate) open: AtomicI64,
    /// Refusals and timeouts by [`Reason`].
    reasons: [AtomicU64; REASONS.len()],
    /// `sendfile` calls made on the loop (pages in the page cache), then
    /// on the blocking pool.
    sendfile: [AtomicU64; 2],
}

/// Where a server's `sendfile` calls ran.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SendfileCalls {
    /// On a loop: the pages were in the page cache.
    pub on_loop: u64,
    /// On the blocking pool: some page was not, so the call could wait for a disk.
    pub on_pool: u64,
}

impl Default for LoopMetrics {
    fn default() -> Self {
        LoopMetrics {
            responses: std::array::from_fn(|_| AtomicU64::new(0)),
            open: AtomicI64::new(0),
            reasons: std::array::from_fn(|_| AtomicU64::new(0)),
            sendfile: std::array::from_fn(|_| AtomicU64::new(0)),
        }
    }
}

/// All counters of a server.
#[derive(Debug)]
pub struct Metrics {
    loops: Box<[LoopMetrics]>,
}

impl Metrics {
    pub(crate) fn new(loops: usize) -> Self {
        Metrics {
            loops: (0..loops.max(1)).map(|_| LoopMetrics::default()).collect(),
        }
    }

    /// The counters of the current loop (loop 0 off a loop).
    pub(crate) fn local(&self) -> &LoopMetrics {
        self.at(self.local_index())
    }

    /// Index of the current loop's counters.
    pub(crate) fn local_index(&self) -> usize {
        gyre_rt::current_loop().unwrap_or(0) % self.loops.len()
    }

    /// The counters of loop `index` (as given by `local_index`).
    pub(crate) fn at(&self, index: usize) -> &LoopMetrics {
        &self.loops[index % self.loops.len()]
    }

    /// Open connections in the whole server.
    pub fn open_connections(&self) -> i64 {
        self.loops
            .iter()
            .map(|l| l.open.load(Ordering::Relaxed))
            .sum()
    }

    /// Responses sent with `status`.
    pub fn responses(&self, status: u16) -> u64 {
        let i = usize::from(status.saturating_sub(100));
        self.loops
            .iter()
            .filter_map(|l| l.responses.get(i))
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }

    /// Refusals or timeouts for `reason`.
    pub fn reason(&self, reason: Reason) -> u64 {
        self.loops
            .iter()
            .map(|l| l.reasons[reason as usize].load(Ordering::Relaxed))
            .sum()
    }

    /// Where the `sendfile` calls of file responses ran.
    pub fn sendfile_calls(&self) -> SendfileCalls {
        let sum = |i: usize| {
            let n = self
                .loops
                .iter()
                .map(|l| l.sendfile[i].load(Ordering::Relaxed));
            n.sum()
        };
        SendfileCalls {
            on_loop: sum(0),
            on_pool: sum(1),
        }
    }

    /// Renders every counter, plus the runtime's, in the Prometheus text format.
    pub fn render(&self, rt: &gyre_rt::Handle) -> String {
        let mut out = String::with_capacity(4096);
        out.push_str("# TYPE gyre_responses_total counter\n");
        for code in 100..600u16 {
            let n = self.responses(code);
            if n > 0 {
                let _ = writeln!(out, "gyre_responses_total{{status=\"{code}\"}} {n}");
            }
        }
        out.push_str("# TYPE gyre_open_connections gauge\n");
        for (i, l) in self.loops.iter().enumerate() {
            let n = l.open.load(Ordering::Relaxed);
            let _ = writeln!(out, "gyre_open_connections{{loop=\"{i}\"}} {n}");
        }
        out.push_str("# TYPE gyre_refused_total counter\n");
        for (reason, name) in REASONS {
            let _ = writeln!(
                out,
                "gyre_refused_total{{reason=\"{name}\"}} {}",
                self.reason(reason)
            );
        }
        out.push_str("# TYPE gyre_sendfile_calls_total counter\n");
        let calls = self.sendfile_calls();
        let _ = writeln!(
            out,
            "gyre_sendfile_calls_total{{on=\"loop\"}} {}",
            calls.on_loop
        );
        let _ = writeln!(
            out,
            "gyre_sendfile_calls_total{{on=\"pool\"}} {}",
            calls.on_pool
        );
        out.push_str("# TYPE gyre_loop_stalls_total counter\n");
        let stats = rt.loop_stats();
        for s in &stats {
            let _ = writeln!(
                out,
                "gyre_loop_stalls_total{{loop=\"{}\"}} {}",
                s.index, s.stalls
            );
        }
        out.push_str("# TYPE gyre_loop_stall_seconds_total counter\n");
        for s in &stats {
            let secs = s.stall_ms as f64 / 1000.0;
            let _ = writeln!(
                out,
                "gyre_loop_stall_seconds_total{{loop=\"{}\"}} {secs}",
                s.index
            );
        }
        out.push_str("# TYPE gyre_loop_stalled gauge\n");
        for s in &stats {
            let _ = writeln!(
                out,
                "gyre_loop_stalled{{loop=\"{}\"}} {}",
                s.index,
                u8::from(s.stalled)
            );
        }
        let bc = gyre_rt::broadcast::stats();
        out.push_str("# TYPE gyre_broadcast_published_total counter\n");
        let _ = writeln!(out, "gyre_broadcast_published_total {}", bc.published);
        out.push_str("# TYPE gyre_broadcast_delivered_total counter\n");
        let _ = writeln!(out, "gyre_broadcast_delivered_total {}", bc.delivered);
        out.push_str("# TYPE gyre_broadcast_dropped_total counter\n");
        let _ = writeln!(out, "gyre_broadcast_dropped_total {}", bc.dropped);
        out.push_str("# TYPE gyre_broadcast_slow_closed_total counter\n");
        let _ = writeln!(out, "gyre_broadcast_slow_closed_total {}", bc.closed_slow);
        out.push_str("# TYPE gyre_broadcast_subscribers gauge\n");
        let _ = writeln!(out, "gyre_broadcast_subscribers {}", bc.subscribers);
        let b = rt.blocking_stats();
        out.push_str("# TYPE gyre_blocking_threads gauge\n");
        let _ = writeln!(out, "gyre_blocking_threads {}", b.threads);
        let _ = writeln!(out, "gyre_blocking_threads_max {}", b.max_threads);
        let _ = writeln!(out, "gyre_blocking_busy {}", b.busy);
        let _ = writeln!(out, "gyre_blocking_queued {}", b.queued);
        let _ = writeln!(out, "gyre_blocking_queue_capacity {}", b.queue_capacity);
        let _ = writeln!(out, "gyre_blocking_waiting {}", b.waiting);
        out
    }
}

impl LoopMetrics {
    /// Counts a response; called on the loop these counters belong to.
    pub(crate) fn response(&self, status: u16) {
        if let Some(c) = self.responses.get(usize::from(status.saturating_sub(100))) {
            // A load and a store, not a locked add: the loop is the one
            // writer, and readers only need a value that was true at some
            // point. Saves an atomic read-modify-write on every request.
            c.store(c.load(Ordering::Relaxed) + 1, Ordering::Relaxed);
        }
    }

    /// Counts a refusal or timeout.
    pub(crate) fn refuse(&self, reason: Reason) {
        self.reasons[reason as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a `sendfile` call, made on the loop or on the blocking pool.
    pub(crate) fn sendfile(&self, on_loop: bool) {
        self.sendfile[usize::from(!on_loop)].fetch_add(1, Ordering::Relaxed);
    }
}
