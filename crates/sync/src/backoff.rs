//! Jittered exponential backoff.

use rand::Rng;
use std::time::Duration;

/// Delays `base · 2^attempt`, capped at `max`, each scaled by a random
/// factor in [0.5, 1.0] so many clients do not retry in lockstep.
#[derive(Debug, Clone, Copy)]
pub struct Backoff {
    pub base: Duration,
    pub max: Duration,
}

impl Default for Backoff {
    fn default() -> Self {
        Self {
            base: Duration::from_millis(500),
            max: Duration::from_secs(60),
        }
    }
}

impl Backoff {
    /// The delay before retry number `attempt` (0 for the first retry).
    pub fn delay(&self, attempt: u32) -> Duration {
        let full = self
            .base
            .saturating_mul(2u32.saturating_pow(attempt.min(20)))
            .min(self.max);
        full.mul_f64(rand::rng().random_range(0.5..=1.0))
    }
}

#[cfg(test)]
mod tests {
    use super::Backoff;
    use std::time::Duration;

    #[test]
    fn delays_grow_stay_capped_and_jitter() {
        let b = Backoff {
            base: Duration::from_secs(1),
            max: Duration::from_secs(30),
        };
        for _ in 0..50 {
            let first = b.delay(0);
            assert!(first >= Duration::from_millis(500) && first <= Duration::from_secs(1));
            let late = b.delay(40);
            assert!(
                late >= Duration::from_secs(15) && late <= Duration::from_secs(30),
                "the cap bounds the delay however many attempts failed"
            );
        }
        let samples: std::collections::HashSet<_> = (0..20).map(|_| b.delay(3)).collect();
        assert!(samples.len() > 1, "jitter must spread retries");
    }
}
