//! A per-account rate limiter matching the platform's limits: token buckets per account and
//! class (sends per second, private replies per hour).

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The limited classes of calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    /// Send API calls (DMs and private replies): 100 per second per account.
    Send,
    /// Private replies: 750 per hour per account.
    PrivateReply,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

/// Token buckets per account and class.
#[derive(Debug)]
pub struct RateLimiter {
    limits: HashMap<Class, (f64, Duration)>,
    buckets: Mutex<HashMap<(String, Class), Bucket>>,
}

impl RateLimiter {
    /// `send_per_second` sends per second and `private_replies_per_hour` private replies per hour,
    /// per account. A bucket starts full (its capacity is the count of one period).
    pub fn new(send_per_second: u32, private_replies_per_hour: u32) -> Self {
        let mut limits = HashMap::new();
        limits.insert(
            Class::Send,
            (f64::from(send_per_second.max(1)), Duration::from_secs(1)),
        );
        limits.insert(
            Class::PrivateReply,
            (
                f64::from(private_replies_per_hour.max(1)),
                Duration::from_secs(3600),
            ),
        );
        Self {
            limits,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token of each class for `account` at `now`, or returns how long to wait until
    /// all are available (then nothing is taken).
    pub fn try_acquire(
        &self,
        account: &str,
        classes: &[Class],
        now: Instant,
    ) -> Result<(), Duration> {
        let mut buckets = match self.buckets.lock() {
            Ok(b) => b,
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut wait = Duration::ZERO;
        for class in classes {
            let (capacity, period) = self.limits[class];
            let rate = capacity / period.as_secs_f64();
            let bucket = buckets
                .entry((account.to_string(), *class))
                .or_insert(Bucket {
                    tokens: capacity,
                    at: now,
                });
            let elapsed = now.saturating_duration_since(bucket.at).as_secs_f64();
            bucket.tokens = (bucket.tokens + elapsed * rate).min(capacity);
            bucket.at = now;
            if bucket.tokens < 1.0 {
                wait = wait.max(Duration::from_secs_f64((1.0 - bucket.tokens) / rate));
            }
        }
        if wait > Duration::ZERO {
            return Err(wait);
        }
        for class in classes {
            if let Some(bucket) = buckets.get_mut(&(account.to_string(), *class)) {
                bucket.tokens -= 1.0;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sends_are_capped_per_second_per_account() {
        let limiter = RateLimiter::new(100, 750);
        let t0 = Instant::now();
        for _ in 0..100 {
            limiter.try_acquire("a", &[Class::Send], t0).unwrap();
        }
        let wait = limiter.try_acquire("a", &[Class::Send], t0).unwrap_err();
        assert!(wait <= Duration::from_millis(10) && wait > Duration::ZERO);
        // another account has its own bucket
        limiter.try_acquire("b", &[Class::Send], t0).unwrap();
        // refilled after 10 ms
        limiter
            .try_acquire("a", &[Class::Send], t0 + Duration::from_millis(10))
            .unwrap();
    }

    #[test]
    fn private_replies_are_capped_per_hour_and_take_both_tokens() {
        let limiter = RateLimiter::new(100, 3);
        let t0 = Instant::now();
        for i in 0..3 {
            let t = t0 + Duration::from_secs(i);
            limiter
                .try_acquire("a", &[Class::Send, Class::PrivateReply], t)
                .unwrap();
        }
        let wait = limiter
            .try_acquire(
                "a",
                &[Class::Send, Class::PrivateReply],
                t0 + Duration::from_secs(3),
            )
            .unwrap_err();
        assert!(wait > Duration::from_secs(1000), "{wait:?}");
        // the refused call took no send token
        for _ in 0..100 {
            limiter
                .try_acquire("a", &[Class::Send], t0 + Duration::from_secs(4))
                .unwrap();
        }
    }
}
