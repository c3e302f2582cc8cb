//! Token bucket for the client message rate. Pure: the clock is passed in.

use std::time::Instant;

/// Allows `rate` messages per second on average and bursts of `burst`.
#[derive(Debug, Clone)]
pub(crate) struct TokenBucket {
    tokens: f32,
    rate: f32,
    burst: f32,
    last: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub(crate) fn new(rate_per_second: u32, burst: u32, now: Instant) -> Self {
        Self {
            tokens: burst as f32,
            rate: rate_per_second as f32,
            burst: burst as f32,
            last: now,
        }
    }

    /// Takes one token if there is one.
    pub(crate) fn try_take(&mut self, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.last).as_secs_f32();
        self.last = self.last.max(now);
        self.tokens = (self.tokens + elapsed * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::time::Duration;

    #[test]
    fn burst_then_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(10, 3, t0);
        assert!(b.try_take(t0) && b.try_take(t0) && b.try_take(t0));
        assert!(!b.try_take(t0));
        assert!(!b.try_take(t0 + Duration::from_millis(50)));
        assert!(b.try_take(t0 + Duration::from_millis(110)));
        // Refill is capped at the burst.
        let later = t0 + Duration::from_secs(100);
        assert_eq!((0..10).filter(|_| b.try_take(later)).count(), 3);
    }

    #[test]
    fn clock_going_backwards_is_harmless() {
        let t0 = Instant::now() + Duration::from_secs(10);
        let mut b = TokenBucket::new(1, 1, t0);
        assert!(b.try_take(t0));
        assert!(!b.try_take(t0 - Duration::from_secs(5)));
    }

    proptest! {
        /// Oracle: over any run, accepted <= burst + rate * elapsed (+1 for float rounding).
        #[test]
        fn never_exceeds_rate_plus_burst(
            rate in 1u32..100,
            burst in 1u32..50,
            gaps in proptest::collection::vec(0u64..200, 1..300),
        ) {
            let t0 = Instant::now();
            let mut b = TokenBucket::new(rate, burst, t0);
            let mut now = t0;
            let mut accepted = 0u64;
            for g in gaps {
                now += Duration::from_millis(g);
                if b.try_take(now) { accepted += 1; }
            }
            let elapsed = now.duration_since(t0).as_secs_f64();
            let bound = f64::from(burst) + f64::from(rate) * elapsed + 1.0;
            prop_assert!(accepted as f64 <= bound, "accepted {} > {}", accepted, bound);
        }
    }
}
