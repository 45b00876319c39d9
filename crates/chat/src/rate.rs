//! A token bucket: `rate` messages per second on average, bursts of `burst`.

use std::time::Instant;

/// One sender's allowance.
#[derive(Debug, Clone)]
pub struct Bucket {
    tokens: f64,
    last: Instant,
}

impl Bucket {
    /// A full bucket.
    pub fn new(burst: u32) -> Self {
        Bucket {
            tokens: burst as f64,
            last: Instant::now(),
        }
    }

    /// Takes one token if there is one; otherwise says how many seconds until there is.
    pub fn take(&mut self, rate: f64, burst: u32, now: Instant) -> Result<(), f64> {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + elapsed * rate).min(burst as f64);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err((1.0 - self.tokens) / rate.max(f64::MIN_POSITIVE))
        }
    }

    /// Whether the bucket has refilled completely (it can be forgotten).
    pub fn is_full(&self, rate: f64, burst: u32, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f64();
        self.tokens + elapsed * rate >= burst as f64
    }
}

#[cfg(test)]
mod tests {
    use super::Bucket;
    use std::time::{Duration, Instant};

    #[test]
    fn bursts_then_refills_at_the_rate() {
        let t0 = Instant::now();
        let mut b = Bucket::new(3);
        for _ in 0..3 {
            assert!(b.take(2.0, 3, t0).is_ok());
        }
        let wait = b.take(2.0, 3, t0).unwrap_err();
        assert!((wait - 0.5).abs() < 1e-9, "{wait}");
        assert!(b.take(2.0, 3, t0 + Duration::from_millis(500)).is_ok());
        assert!(b.take(2.0, 3, t0 + Duration::from_millis(500)).is_err());
        assert!(b.is_full(2.0, 3, t0 + Duration::from_secs(10)));
    }
}
