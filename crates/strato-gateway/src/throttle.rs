//! Token buckets: API Gateway's throttling model. A bucket holds up to
//! `burst` tokens and refills at `rate` tokens a second; a request takes one
//! token or is refused (429). Lock-free: the state is one atomic word.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

/// Tokens are kept in thousandths so fractional rates refill smoothly.
const SCALE: u64 = 1000;

/// The milli-tokens a full bucket holds: `burst` tokens, within the 32 bits
/// `state` keeps them in.
fn capacity_milli_tokens(burst: u32) -> u64 {
    (u64::from(burst) * SCALE).min(u64::from(u32::MAX))
}

/// A non-negative f64 as `u64`, rounding toward zero and saturating: NaN and
/// negative values are 0, values past `u64::MAX` are `u64::MAX`.
// The `as` conversion from f64 is exactly that saturation.
#[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
pub(crate) fn saturating_u64(value: f64) -> u64 {
    value as u64
}

/// One throttle: `rate` requests a second on average, `burst` at once.
pub struct TokenBucket {
    rate: f64,
    burst: u32,
    origin: Instant,
    /// High 32 bits: milli-tokens; low 32 bits: the refill time, in ms since
    /// `origin` (wraps after ~49 days; a wrapped clock only refills early).
    state: AtomicU64,
}

impl TokenBucket {
    /// A full bucket. A `burst` of 0 refuses everything (as AWS's limit 0).
    pub fn new(rate: f64, burst: u32) -> TokenBucket {
        let rate = if rate.is_finite() && rate > 0.0 {
            rate
        } else {
            0.0
        };
        let tokens = capacity_milli_tokens(burst);
        TokenBucket {
            rate,
            burst,
            origin: Instant::now(),
            state: AtomicU64::new(tokens << 32),
        }
    }

    pub fn rate(&self) -> f64 {
        self.rate
    }

    pub fn burst(&self) -> u32 {
        self.burst
    }

    /// Takes one token if there is one.
    pub fn try_take(&self) -> bool {
        self.try_take_at(Instant::now())
    }

    fn try_take_at(&self, now: Instant) -> bool {
        // The low 32 bits of the clock (see `state`); the mask makes them fit.
        let now_ms =
            u64::try_from(now.saturating_duration_since(self.origin).as_millis() & 0xFFFF_FFFF)
                .unwrap_or(0);
        let capacity = capacity_milli_tokens(self.burst);
        let mut current = self.state.load(Ordering::Acquire);
        loop {
            let tokens = current >> 32;
            let last_ms = current & 0xFFFF_FFFF;
            let elapsed_ms = now_ms.wrapping_sub(last_ms) & 0xFFFF_FFFF;
            let refill = saturating_u64(elapsed_ms as f64 * self.rate); // rate/s × ms = milli-tokens
            let available = tokens.saturating_add(refill).min(capacity);
            // Keep the refill clock where it was if nothing accrued, so
            // frequent calls do not lose fractional refills.
            let stamp = if refill > 0 { now_ms } else { last_ms };
            let (next, taken) = if available >= SCALE {
                (available - SCALE, true)
            } else {
                (available, false)
            };
            let new_state = (next << 32) | stamp;
            match self.state.compare_exchange_weak(
                current,
                new_state,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return taken,
                Err(actual) => current = actual,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn a_full_bucket_admits_its_burst_then_refuses() {
        let bucket = TokenBucket::new(1.0, 5);
        let t = bucket.origin;
        let taken = (0..10).filter(|_| bucket.try_take_at(t)).count();
        assert_eq!(taken, 5);
    }

    #[test]
    fn tokens_refill_at_the_rate_up_to_the_burst() {
        let bucket = TokenBucket::new(10.0, 2);
        let t = bucket.origin;
        assert!(bucket.try_take_at(t));
        assert!(bucket.try_take_at(t));
        assert!(!bucket.try_take_at(t));
        // 10 a second: one token after 100 ms, not before.
        assert!(!bucket.try_take_at(t + Duration::from_millis(50)));
        assert!(bucket.try_take_at(t + Duration::from_millis(100)));
        // A long pause refills only up to the burst.
        let later = t + Duration::from_secs(60);
        let taken = (0..10).filter(|_| bucket.try_take_at(later)).count();
        assert_eq!(taken, 2);
    }

    #[test]
    fn a_huge_rate_refills_to_the_burst_without_overflowing() {
        let bucket = TokenBucket::new(f64::MAX, 2);
        let t = bucket.origin;
        // One token left when the refill (u64::MAX milli-tokens) comes in.
        assert!(bucket.try_take_at(t));
        let later = t + Duration::from_millis(1);
        let taken = (0..10).filter(|_| bucket.try_take_at(later)).count();
        assert_eq!(taken, 2);
    }

    #[test]
    fn burst_zero_refuses_everything() {
        let bucket = TokenBucket::new(100.0, 0);
        assert!(!bucket.try_take());
    }
}
