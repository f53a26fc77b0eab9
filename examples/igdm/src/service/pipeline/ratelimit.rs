//! A per-account rate limiter matching the platform's limits: per account and class (sends per
//! second, private replies per hour), never more than the limit in any trailing window.
//!
//! The platform counts calls over a sliding window, so a token bucket (which admits a full burst
//! and then the refill, up to twice the limit within one window) would provoke its 613 errors.
//! The limiter keeps the times of the admitted calls instead (a sliding-window log) and counts
//! them over the period plus a guard interval, which absorbs the skew between admitting a call
//! here and its arrival at the platform.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Extra time added to every window: calls admitted together may reach the platform a little
/// apart, and the platform's window must still see at most the limit.
const GUARD: Duration = Duration::from_millis(250);

/// The limited classes of calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    /// Send API calls (DMs and private replies): 100 per second per account.
    Send,
    /// Private replies: 750 per hour per account.
    PrivateReply,
}

/// Sliding-window logs per account and class.
#[derive(Debug)]
pub struct RateLimiter {
    limits: HashMap<Class, (usize, Duration)>,
    admitted: Mutex<HashMap<(String, Class), VecDeque<Instant>>>,
    /// Accounts the platform throttled (usage headers, `Retry-After`): no call until then.
    held: Mutex<HashMap<String, Instant>>,
}

impl RateLimiter {
    /// At most `send_per_second` sends per second and `private_replies_per_hour` private replies
    /// per hour, per account, in any window of that length (plus a 250 ms guard).
    pub fn new(send_per_second: u32, private_replies_per_hour: u32) -> Self {
        let as_count = |n: u32| usize::try_from(n.max(1)).unwrap_or(usize::MAX);
        let mut limits = HashMap::new();
        limits.insert(
            Class::Send,
            (as_count(send_per_second), Duration::from_secs(1) + GUARD),
        );
        limits.insert(
            Class::PrivateReply,
            (
                as_count(private_replies_per_hour),
                Duration::from_secs(3600) + GUARD,
            ),
        );
        Self {
            limits,
            admitted: Mutex::new(HashMap::new()),
            held: Mutex::new(HashMap::new()),
        }
    }

    /// Holds every call of `account` until `until` (a later hold wins): the platform said so,
    /// through `X-Business-Use-Case-Usage`'s `estimated_time_to_regain_access` or a
    /// `Retry-After`.
    pub fn hold(&self, account: &str, until: Instant) {
        let mut held = match self.held.lock() {
            Ok(h) => h,
            Err(poisoned) => poisoned.into_inner(),
        };
        let entry = held.entry(account.to_string()).or_insert(until);
        *entry = (*entry).max(until);
    }

    /// How long `account` is still held at `now`, if it is.
    pub fn held_for(&self, account: &str, now: Instant) -> Option<Duration> {
        let mut held = match self.held.lock() {
            Ok(h) => h,
            Err(poisoned) => poisoned.into_inner(),
        };
        match held.get(account) {
            Some(&until) if until > now => Some(until - now),
            Some(_) => {
                held.remove(account);
                None
            }
            None => None,
        }
    }

    /// Records calls of `class` for `account` made at `times` (by another instance, before this
    /// one took the account over), so that they count against the window.
    pub fn seed(&self, account: &str, class: Class, times: impl IntoIterator<Item = Instant>) {
        let mut admitted = match self.admitted.lock() {
            Ok(a) => a,
            Err(poisoned) => poisoned.into_inner(),
        };
        let log = admitted.entry((account.to_string(), class)).or_default();
        log.extend(times);
        log.make_contiguous().sort();
    }

    /// Admits one call of each class for `account` at `now`, or returns how long to wait until
    /// all classes have room (then nothing is recorded).
    pub fn try_acquire(
        &self,
        account: &str,
        classes: &[Class],
        now: Instant,
    ) -> Result<(), Duration> {
        if classes.is_empty() {
            return Ok(());
        }
        if let Some(wait) = self.held_for(account, now) {
            return Err(wait);
        }
        let mut admitted = match self.admitted.lock() {
            Ok(a) => a,
            Err(poisoned) => poisoned.into_inner(),
        };
        let mut wait = Duration::ZERO;
        for class in classes {
            let Some(&(limit, window)) = self.limits.get(class) else {
                continue;
            };
            let log = admitted.entry((account.to_string(), *class)).or_default();
            while log
                .front()
                .is_some_and(|&t| now.saturating_duration_since(t) >= window)
            {
                log.pop_front();
            }
            if log.len() >= limit {
                // room comes back when the call `limit` places from the end leaves the window
                if let Some(&oldest) = log.get(log.len() - limit) {
                    let leaves = (oldest + window).saturating_duration_since(now);
                    wait = wait.max(leaves.max(Duration::from_millis(1)));
                }
            }
        }
        if wait > Duration::ZERO {
            return Err(wait);
        }
        for class in classes {
            if let Some(log) = admitted.get_mut(&(account.to_string(), *class)) {
                log.push_back(now);
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_held_account_waits_until_the_hold_ends() {
        let limiter = RateLimiter::new(100, 750);
        let t0 = Instant::now();
        limiter.hold("a", t0 + Duration::from_secs(90));
        limiter.hold("a", t0 + Duration::from_secs(30)); // an earlier end does not shorten it
        assert_eq!(
            limiter.try_acquire("a", &[Class::Send], t0),
            Err(Duration::from_secs(90))
        );
        // other accounts and calls outside the limited classes are not held
        assert_eq!(limiter.try_acquire("b", &[Class::Send], t0), Ok(()));
        assert_eq!(limiter.try_acquire("a", &[], t0), Ok(()));
        let later = t0 + Duration::from_secs(91);
        assert_eq!(limiter.try_acquire("a", &[Class::Send], later), Ok(()));
        assert_eq!(limiter.held_for("a", later), None);
    }

    #[test]
    fn sends_are_capped_per_second_per_account() {
        let limiter = RateLimiter::new(100, 750);
        let t0 = Instant::now();
        for _ in 0..100 {
            limiter.try_acquire("a", &[Class::Send], t0).unwrap();
        }
        let wait = limiter.try_acquire("a", &[Class::Send], t0).unwrap_err();
        assert_eq!(wait, Duration::from_secs(1) + GUARD);
        // another account has its own log
        limiter.try_acquire("b", &[Class::Send], t0).unwrap();
        // no refill inside the window: a token bucket would admit more here
        let wait = limiter
            .try_acquire("a", &[Class::Send], t0 + Duration::from_millis(500))
            .unwrap_err();
        assert_eq!(wait, Duration::from_millis(750));
        // once the window has passed, the next 100 are admitted
        let later = t0 + Duration::from_secs(1) + GUARD;
        for _ in 0..100 {
            limiter.try_acquire("a", &[Class::Send], later).unwrap();
        }
        assert!(limiter.try_acquire("a", &[Class::Send], later).is_err());
    }

    #[test]
    fn no_window_ever_holds_more_than_the_limit() {
        // Callers that retry as soon as they are told: count admissions per sliding window.
        let limiter = RateLimiter::new(10, 750);
        let t0 = Instant::now();
        let mut now = t0;
        let mut admitted = Vec::new();
        while now < t0 + Duration::from_secs(10) {
            match limiter.try_acquire("a", &[Class::Send], now) {
                Ok(()) => admitted.push(now),
                Err(wait) => now += wait,
            }
        }
        assert!(admitted.len() >= 70, "the limiter still lets calls through");
        for (i, &start) in admitted.iter().enumerate() {
            let in_window = admitted[i..]
                .iter()
                .take_while(|&&t| t.duration_since(start) < Duration::from_secs(1) + GUARD)
                .count();
            assert!(in_window <= 10, "{in_window} calls within one window");
        }
    }

    #[test]
    fn seeded_calls_count_against_the_window() {
        let limiter = RateLimiter::new(100, 3);
        let t0 = Instant::now() + Duration::from_secs(7200);
        limiter.seed(
            "a",
            Class::PrivateReply,
            [t0 - Duration::from_secs(60), t0 - Duration::from_secs(4000)],
        );
        limiter.seed("a", Class::PrivateReply, [t0 - Duration::from_secs(30)]);
        // the call 4,000 s ago left the hour: one more fits, then the budget is spent
        limiter
            .try_acquire("a", &[Class::Send, Class::PrivateReply], t0)
            .unwrap();
        let wait = limiter
            .try_acquire("a", &[Class::Send, Class::PrivateReply], t0)
            .unwrap_err();
        // room comes back when the seeded call of 60 s ago leaves the hour
        assert_eq!(wait, Duration::from_secs(3540) + GUARD);
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
