//! Continuous-refill token bucket (original-system.md §3.9): one per connection for outbound
//! deliveries. `tokens = min(burst, tokens + elapsed_s * rate)`, starting full.

#[derive(Debug, Clone)]
pub struct TokenBucket {
    rate_per_sec: f64,
    burst: f64,
    tokens: f64,
    last_ms: f64,
}

/// Refill arithmetic leaves crumbs like 0.9999999999; a take that is short by less than this
/// still succeeds, so "rate 10/s, 100 ms later" reliably yields one token.
const EPSILON: f64 = 1e-9;

impl TokenBucket {
    pub fn new(rate_per_sec: f64, burst: f64, now_ms: f64) -> Self {
        let burst = burst.max(0.0);
        Self {
            rate_per_sec: rate_per_sec.max(0.0),
            burst,
            tokens: burst,
            last_ms: now_ms,
        }
    }

    /// A clock that steps backwards refills nothing and does not move `last_ms` back, so the
    /// same interval is never credited twice.
    fn refill(&mut self, now_ms: f64) {
        if now_ms > self.last_ms {
            // ms * rate / 1000 rather than (ms / 1000) * rate: exact for whole-token intervals.
            let add = (now_ms - self.last_ms) * self.rate_per_sec / 1000.0;
            self.tokens = (self.tokens + add).min(self.burst);
            self.last_ms = now_ms;
        }
    }

    /// Take `cost` tokens if available; a cost <= 0 always succeeds and takes nothing.
    pub fn try_take(&mut self, now_ms: f64, cost: f64) -> bool {
        if cost <= 0.0 {
            return true;
        }
        self.refill(now_ms);
        if self.tokens + EPSILON >= cost {
            self.tokens = (self.tokens - cost).max(0.0);
            true
        } else {
            false
        }
    }

    pub fn tokens(&mut self, now_ms: f64) -> f64 {
        self.refill(now_ms);
        self.tokens
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn delivered(b: &mut TokenBucket, n: usize, now: f64) -> usize {
        (0..n).filter(|_| b.try_take(now, 1.0)).count()
    }

    #[test]
    fn worked_example() {
        // §3.9 and §11 F39/F40: rate 10, burst 20.
        let mut b = TokenBucket::new(10.0, 20.0, 0.0);
        assert_eq!(delivered(&mut b, 10, 0.0), 10);
        let mut b = TokenBucket::new(10.0, 20.0, 0.0);
        assert_eq!(delivered(&mut b, 20, 0.0), 20);
        let mut b = TokenBucket::new(10.0, 20.0, 0.0);
        assert_eq!(delivered(&mut b, 30, 0.0), 20);
        assert_eq!(delivered(&mut b, 10, 1000.0), 10);
        assert_eq!(delivered(&mut b, 1, 1000.0), 0);
        assert_eq!(delivered(&mut b, 1, 1100.0), 1);
    }

    #[test]
    fn cost_and_caps() {
        let mut b = TokenBucket::new(10.0, 5.0, 0.0);
        assert!(b.try_take(0.0, 0.0));
        assert!(b.try_take(0.0, -5.0));
        assert_eq!(b.tokens(0.0), 5.0);
        assert!(!b.try_take(0.0, 6.0));
        assert_eq!(b.tokens(0.0), 5.0);
        assert!(b.try_take(0.0, 5.0));
        assert_eq!(b.tokens(60_000.0), 5.0);
        // Clock going backwards: no refill, no double credit later.
        assert!(b.try_take(60_000.0, 5.0));
        assert_eq!(b.tokens(59_000.0), 0.0);
        assert!((b.tokens(60_100.0) - 1.0).abs() < 1e-9);
    }

    /// Reference: refill computed in seconds from scratch each step.
    struct Model {
        rate: f64,
        burst: f64,
        tokens: f64,
        last: f64,
    }

    proptest! {
        #[test]
        fn bucket_matches_f64_model(
            rate in 0.0f64..2000.0,
            burst in 0.0f64..100.0,
            steps in prop::collection::vec((0.0f64..500.0, 0.0f64..5.0), 1..100),
        ) {
            let mut b = TokenBucket::new(rate, burst, 0.0);
            let mut m = Model { rate, burst, tokens: burst, last: 0.0 };
            let mut now = 0.0;
            for (dt, cost) in steps {
                now += dt;
                let elapsed_s = (now - m.last) / 1000.0;
                m.tokens = (m.tokens + elapsed_s * m.rate).min(m.burst);
                m.last = now;
                // Skip decisions on a knife edge, where rounding may legitimately differ.
                let near_tie = (m.tokens - cost).abs() < 1e-6;
                let want = m.tokens >= cost;
                let got = b.try_take(now, cost);
                if near_tie {
                    m.tokens = b.tokens(now);
                    continue;
                }
                prop_assert_eq!(got, want);
                if want {
                    m.tokens -= cost;
                }
                prop_assert!((b.tokens(now) - m.tokens).abs() < 1e-6);
            }
        }
    }
}
