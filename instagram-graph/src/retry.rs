//! A pure retry policy: given the attempt number and the error, wait or give up.
//!
//! The policy never sleeps and never draws random numbers itself: the caller passes a number in
//! `[0, 1)` for the jitter (from any source, fixed in tests) and does the waiting.
//!
//! ```
//! use std::time::Duration;
//! use instagram_graph::retry::{Operation, RetryDecision, RetryPolicy};
//! use instagram_graph::{Error, ErrorKind};
//!
//! let policy = RetryPolicy::default();
//! let transient = Error::new(ErrorKind::Transient);
//! match policy.decide(1, &transient, Operation::Read, 0.5) {
//!     RetryDecision::Retry { after } => assert!(after <= Duration::from_secs(1)),
//!     RetryDecision::GiveUp => unreachable!(),
//! }
//! ```

use std::time::Duration;

use crate::error::{Error, ErrorKind};

/// What kind of call failed, which decides whether an ambiguous failure may be retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Operation {
    /// A read or an idempotent update (hide a comment, set the menu): always safe to repeat.
    Read,
    /// A Send API message: repeating after an ambiguous failure (timeout, 5xx without a Graph
    /// error) may deliver it twice, so that is only done when the policy opts in.
    Send,
    /// A private reply: Meta allows exactly one per comment, so an ambiguous failure is never
    /// retried, whatever the policy says.
    PrivateReply,
}

/// The verdict of [`RetryPolicy::decide`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryDecision {
    /// Wait this long, then try again.
    Retry {
        /// The wait.
        after: Duration,
    },
    /// Do not try again; surface the error.
    GiveUp,
}

/// Exponential backoff with full jitter, bounded in attempts and in wait.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct RetryPolicy {
    /// The most attempts in total, the first one included.
    pub max_attempts: u32,
    /// The backoff of the first retry (doubled for each further one).
    pub base_delay: Duration,
    /// The longest backoff between two attempts.
    pub max_delay: Duration,
    /// The longest wait Meta may ask for (`retry_after`) before giving up instead.
    pub max_wait: Duration,
    /// Retry sends whose failure was ambiguous (they may have been delivered). Off by default.
    pub retry_ambiguous_sends: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            max_attempts: 4,
            base_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(60),
            max_wait: Duration::from_secs(15 * 60),
            retry_ambiguous_sends: false,
        }
    }
}

impl RetryPolicy {
    /// The default policy: 4 attempts, 1 s base, 60 s cap, waits up to 15 minutes.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets the most attempts in total.
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.max_attempts = attempts;
        self
    }

    /// Sets the first backoff and the cap.
    pub fn backoff(mut self, base: Duration, max: Duration) -> Self {
        self.base_delay = base;
        self.max_delay = max;
        self
    }

    /// Sets the longest acceptable `retry_after`.
    pub fn max_wait(mut self, wait: Duration) -> Self {
        self.max_wait = wait;
        self
    }

    /// Opts in to retrying sends whose failure was ambiguous (never private replies).
    pub fn retry_ambiguous_sends(mut self, yes: bool) -> Self {
        self.retry_ambiguous_sends = yes;
        self
    }

    /// Decides what to do after attempt number `attempt` (1 for the first call) failed with
    /// `error`. `jitter` is a number in `[0, 1)`; values outside are clamped.
    pub fn decide(
        &self,
        attempt: u32,
        error: &Error,
        operation: Operation,
        jitter: f64,
    ) -> RetryDecision {
        if !error.is_retryable() || attempt >= self.max_attempts {
            return RetryDecision::GiveUp;
        }
        if is_ambiguous(error) {
            let allowed = match operation {
                Operation::Read => true,
                Operation::Send => self.retry_ambiguous_sends,
                Operation::PrivateReply => false,
            };
            if !allowed {
                return RetryDecision::GiveUp;
            }
        }
        let backoff = self.backoff_for(attempt, jitter);
        match error.retry_after() {
            Some(wait) if wait > self.max_wait => RetryDecision::GiveUp,
            Some(wait) => RetryDecision::Retry {
                after: wait.max(backoff),
            },
            None => RetryDecision::Retry { after: backoff },
        }
    }

    /// The jittered backoff after attempt `attempt`: a uniform share (`jitter`) of
    /// `min(max_delay, base_delay * 2^(attempt-1))`.
    pub fn backoff_for(&self, attempt: u32, jitter: f64) -> Duration {
        let exp = attempt.saturating_sub(1).min(32);
        let ceiling = self
            .base_delay
            .checked_mul(1u32 << exp.min(31))
            .unwrap_or(self.max_delay)
            .min(self.max_delay);
        let jitter = if jitter.is_finite() {
            jitter.clamp(0.0, 1.0)
        } else {
            1.0
        };
        ceiling.mul_f64(jitter)
    }
}

/// Calls `call` until it succeeds or `policy` gives up, waiting with `sleep` in between.
///
/// `call` gets the attempt number (1 for the first). `sleep` is whatever timer the caller's
/// runtime offers (for tokio: `tokio::time::sleep`); `jitter` returns numbers in `[0, 1)`
/// (see [`random_jitter`] with the `client` feature). Returns the last error when giving up.
///
/// ```
/// use std::cell::Cell;
/// use std::time::Duration;
/// use instagram_graph::retry::{run, Operation, RetryPolicy};
/// use instagram_graph::{Error, ErrorKind};
///
/// let waited = Cell::new(Duration::ZERO);
/// let result = futures_executor_block_on(run(
///     &RetryPolicy::default(),
///     Operation::Read,
///     || 1.0,
///     |wait| { waited.set(waited.get() + wait); std::future::ready(()) },
///     |attempt| std::future::ready(if attempt < 3 { Err(Error::new(ErrorKind::Transient)) } else { Ok(attempt) }),
/// ));
/// assert_eq!(result.unwrap(), 3);
/// assert_eq!(waited.get(), Duration::from_secs(3)); // 1 s + 2 s
/// # fn futures_executor_block_on<F: std::future::Future>(f: F) -> F::Output {
/// #     let waker = std::task::Waker::noop();
/// #     let mut cx = std::task::Context::from_waker(&waker);
/// #     let mut f = std::pin::pin!(f);
/// #     loop { if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) { return v; } }
/// # }
/// ```
pub async fn run<T, Call, CallFut, Sleep, SleepFut>(
    policy: &RetryPolicy,
    operation: Operation,
    mut jitter: impl FnMut() -> f64,
    mut sleep: Sleep,
    mut call: Call,
) -> Result<T, Error>
where
    Call: FnMut(u32) -> CallFut,
    CallFut: std::future::Future<Output = Result<T, Error>>,
    Sleep: FnMut(Duration) -> SleepFut,
    SleepFut: std::future::Future<Output = ()>,
{
    let mut attempt = 1;
    loop {
        match call(attempt).await {
            Ok(value) => return Ok(value),
            Err(error) => match policy.decide(attempt, &error, operation, jitter()) {
                RetryDecision::Retry { after } => {
                    sleep(after).await;
                    attempt += 1;
                }
                RetryDecision::GiveUp => return Err(error),
            },
        }
    }
}

/// A uniform number in `[0, 1)` from the thread's random generator, for
/// [`RetryPolicy::decide`].
#[cfg(feature = "client")]
pub fn random_jitter() -> f64 {
    rand::random::<f64>()
}

/// Whether the request may have been processed although it failed: a timeout or other transport
/// failure after sending, or an HTTP 5xx without a Graph error body.
pub fn is_ambiguous(error: &Error) -> bool {
    match error.kind() {
        ErrorKind::Transport { before_send, .. } => !before_send,
        ErrorKind::Transient => error.graph().is_none(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn timeout() -> Error {
        Error::new(ErrorKind::Transport {
            before_send: false,
            timeout: true,
        })
    }

    #[cfg(feature = "client")]
    #[test]
    fn random_jitter_is_a_unit_fraction() {
        for _ in 0..100 {
            let j = random_jitter();
            assert!((0.0..1.0).contains(&j));
        }
    }

    #[test]
    fn backoff_grows_and_is_bounded() {
        let p = RetryPolicy::default().max_attempts(100);
        assert_eq!(p.backoff_for(1, 1.0), Duration::from_secs(1));
        assert_eq!(p.backoff_for(3, 1.0), Duration::from_secs(4));
        assert_eq!(p.backoff_for(3, 0.5), Duration::from_secs(2));
        assert_eq!(p.backoff_for(40, 1.0), Duration::from_secs(60));
        assert_eq!(p.backoff_for(2, f64::NAN), Duration::from_secs(2));
        assert_eq!(p.backoff_for(2, -3.0), Duration::ZERO);
    }

    #[test]
    fn gives_up_after_max_attempts_and_on_permanent_errors() {
        let p = RetryPolicy::default();
        let transient = Error::new(ErrorKind::Transient);
        assert!(matches!(
            p.decide(3, &transient, Operation::Read, 0.0),
            RetryDecision::Retry { .. }
        ));
        assert_eq!(
            p.decide(4, &transient, Operation::Read, 0.0),
            RetryDecision::GiveUp
        );
        let window = Error::new(ErrorKind::OutsideMessagingWindow);
        assert_eq!(
            p.decide(1, &window, Operation::Send, 0.0),
            RetryDecision::GiveUp
        );
    }

    #[test]
    fn honours_retry_after_and_bounds_it() {
        let p = RetryPolicy::default();
        let limited = Error::new(ErrorKind::RateLimited {
            retry_after: Some(Duration::from_secs(300)),
        });
        assert_eq!(
            p.decide(1, &limited, Operation::Send, 0.9),
            RetryDecision::Retry {
                after: Duration::from_secs(300)
            }
        );
        let long = Error::new(ErrorKind::RateLimited {
            retry_after: Some(Duration::from_secs(3600)),
        });
        assert_eq!(
            p.decide(1, &long, Operation::Read, 0.9),
            RetryDecision::GiveUp
        );
    }

    #[test]
    fn ambiguous_sends_need_opt_in_and_private_replies_never_retry() {
        let p = RetryPolicy::default();
        assert!(matches!(
            p.decide(1, &timeout(), Operation::Read, 0.5),
            RetryDecision::Retry { .. }
        ));
        assert_eq!(
            p.decide(1, &timeout(), Operation::Send, 0.5),
            RetryDecision::GiveUp
        );
        let opted = p.clone().retry_ambiguous_sends(true);
        assert!(matches!(
            opted.decide(1, &timeout(), Operation::Send, 0.5),
            RetryDecision::Retry { .. }
        ));
        assert_eq!(
            opted.decide(1, &timeout(), Operation::PrivateReply, 0.5),
            RetryDecision::GiveUp
        );
        let connect = Error::new(ErrorKind::Transport {
            before_send: true,
            timeout: false,
        });
        assert!(matches!(
            p.decide(1, &connect, Operation::PrivateReply, 0.5),
            RetryDecision::Retry { .. }
        ));
        let gateway = Error::from_response(502, "bad gateway", None, None);
        assert_eq!(
            p.decide(1, &gateway, Operation::Send, 0.5),
            RetryDecision::GiveUp
        );
        let graph_transient = Error::from_response(
            500,
            r#"{"error":{"message":"x","code":2,"is_transient":true}}"#,
            None,
            None,
        );
        assert!(matches!(
            p.decide(1, &graph_transient, Operation::Send, 0.5),
            RetryDecision::Retry { .. }
        ));
    }
}
