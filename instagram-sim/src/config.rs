//! Configuration of a simulator: app credentials, webhook delivery, rate limits and faults.

use std::net::SocketAddr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// How a [`crate::Simulator`] behaves. Start from [`SimConfig::default`] (or
/// [`SimConfig::for_tests`]) and adjust with the `with_*` methods or the public fields.
///
/// ```
/// use std::time::Duration;
/// use instagram_sim::SimConfig;
///
/// let config = SimConfig::for_tests()
///     .with_webhook_url("http://127.0.0.1:9/webhooks")
///     .with_app_secret("s3cret")
///     .with_seed(7);
/// assert_eq!(config.app_secret, "s3cret");
/// assert!(config.delivery.retry_delays.iter().all(|d| *d < Duration::from_secs(1)));
/// ```
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct SimConfig {
    /// The address to listen on. Default `127.0.0.1:0` (a random free port).
    pub listen: SocketAddr,
    /// The Instagram app id returned with every account and checked at the code exchange.
    pub app_id: String,
    /// The app secret: checked at the code exchange and the long-lived exchange, and used to
    /// sign webhook deliveries (`X-Hub-Signature-256`) and `signed_request` callbacks.
    pub app_secret: String,
    /// Where webhook notifications are POSTed. `None`: notifications are recorded but not sent.
    pub webhook_url: Option<String>,
    /// Where the deauthorize callback (`signed_request` form) is POSTed when an account
    /// revokes the app. `None`: no callback.
    pub deauthorize_url: Option<String>,
    /// The redirect URIs the app accepts at `/oauth/authorize`. Empty: any URI is accepted.
    pub redirect_uris: Vec<String>,
    /// When `true` (the default), an account receives webhooks only after it called
    /// `POST /me/subscribed_apps` (or was created with [`crate::AccountSpec::subscribed`]).
    pub require_subscription: bool,
    /// When `true` (the default), every message the account sends is echoed as a webhook
    /// (`message.is_echo: true`), as Meta does for the `messages` field.
    pub echoes: bool,
    /// The seed of the random generator behind fault injection (same seed, same faults).
    pub seed: u64,
    /// `Some(t)`: the simulated clock is frozen at `t` and moves only with
    /// [`crate::RunningSimulator::advance_clock`]. `None` (default): it follows the system
    /// clock (plus any advance).
    pub start_time: Option<DateTime<Utc>>,
    /// Webhook delivery: retries, timeout, batching.
    pub delivery: DeliveryConfig,
    /// Per-account rate limits of the platform.
    pub limits: RateLimits,
    /// Faults injected from the start (can be changed at runtime).
    pub faults: Faults,
    /// How many recorded requests and sent messages are kept; past it, the oldest half is
    /// forgotten (a long-running `igdm sim` stays small). Default 100,000.
    pub max_records: usize,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 0)),
            app_id: "990602627938098".to_owned(),
            app_secret: "sim-app-secret".to_owned(),
            webhook_url: None,
            deauthorize_url: None,
            redirect_uris: Vec::new(),
            require_subscription: true,
            echoes: true,
            seed: 0x5EED,
            start_time: None,
            delivery: DeliveryConfig::default(),
            limits: RateLimits::default(),
            faults: Faults::default(),
            max_records: 100_000,
        }
    }
}

impl SimConfig {
    /// Defaults suited to tests: a frozen clock (2026-01-01T00:00:00Z, so rate-limit windows do
    /// not depend on machine speed) and webhook retries after 20, 40 and 80 ms with a 5 s timeout.
    pub fn for_tests() -> Self {
        Self {
            start_time: DateTime::from_timestamp(1_767_225_600, 0),
            delivery: DeliveryConfig {
                retry_delays: vec![
                    Duration::from_millis(20),
                    Duration::from_millis(40),
                    Duration::from_millis(80),
                ],
                ..DeliveryConfig::default()
            },
            ..Self::default()
        }
    }

    /// Sets the listen address.
    pub fn with_listen(mut self, addr: SocketAddr) -> Self {
        self.listen = addr;
        self
    }

    /// Sets the app id.
    pub fn with_app_id(mut self, app_id: impl Into<String>) -> Self {
        self.app_id = app_id.into();
        self
    }

    /// Sets the app secret.
    pub fn with_app_secret(mut self, secret: impl Into<String>) -> Self {
        self.app_secret = secret.into();
        self
    }

    /// Sets the webhook callback URL.
    pub fn with_webhook_url(mut self, url: impl Into<String>) -> Self {
        self.webhook_url = Some(url.into());
        self
    }

    /// Sets the deauthorize callback URL.
    pub fn with_deauthorize_url(mut self, url: impl Into<String>) -> Self {
        self.deauthorize_url = Some(url.into());
        self
    }

    /// Sets the random seed.
    pub fn with_seed(mut self, seed: u64) -> Self {
        self.seed = seed;
        self
    }

    /// Freezes the clock at `time`.
    pub fn with_start_time(mut self, time: DateTime<Utc>) -> Self {
        self.start_time = Some(time);
        self
    }

    /// Sets the faults injected from the start.
    pub fn with_faults(mut self, faults: Faults) -> Self {
        self.faults = faults;
        self
    }

    /// Sets the webhook delivery settings.
    pub fn with_delivery(mut self, delivery: DeliveryConfig) -> Self {
        self.delivery = delivery;
        self
    }

    /// Sets the rate limits.
    pub fn with_limits(mut self, limits: RateLimits) -> Self {
        self.limits = limits;
        self
    }
}

/// How webhook notifications are delivered.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeliveryConfig {
    /// The waits before each retry after a failed attempt (non-2xx answer, timeout or
    /// connection error); one retry per entry, then the delivery is given up. Default, like
    /// Meta's "immediately, then with decreasing frequency": 0 s, 5 s, 30 s, 2 min, 10 min.
    pub retry_delays: Vec<Duration>,
    /// How long one attempt may take before it counts as failed. Default 5 s (Meta's budget).
    pub timeout: Duration,
    /// Up to this many queued notifications are merged into one body (several `entry` items).
    /// Default 1 (one notification per request).
    pub max_batch: usize,
    /// How many first attempts may be in flight at once. Default 1: one at a time, in queue
    /// order. Meta delivers concurrently under load; above 1, notifications may arrive in any
    /// order (as they may from Meta).
    pub concurrency: usize,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        Self {
            retry_delays: vec![
                Duration::ZERO,
                Duration::from_secs(5),
                Duration::from_secs(30),
                Duration::from_secs(120),
                Duration::from_secs(600),
            ],
            timeout: Duration::from_secs(5),
            max_batch: 1,
            concurrency: 1,
        }
    }
}

/// Per-account rate limits (calls per window). Defaults are the platform's documented limits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RateLimits {
    /// Send API calls (messages, reactions, sender actions) per second. Default 100.
    pub send_per_second: u32,
    /// Private replies per hour. Default 750.
    pub private_replies_per_hour: u32,
    /// Conversations API calls per second. Default 2.
    pub conversations_per_second: u32,
}

impl Default for RateLimits {
    fn default() -> Self {
        Self {
            send_per_second: 100,
            private_replies_per_hour: 750,
            conversations_per_second: 2,
        }
    }
}

/// Faults to inject. All rates are probabilities from 0.0 to 1.0, drawn from the seeded
/// generator. Graph faults apply to every call except the `/_sim` scripting API.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
#[non_exhaustive]
pub struct Faults {
    /// Extra latency added to every Graph and OAuth call, in milliseconds.
    pub latency_ms: u64,
    /// Share of Graph calls answered `500` with a transient error (code 2) before doing anything.
    pub error_rate: f64,
    /// Share of Graph calls whose connection is cut after the call took effect (the caller
    /// cannot tell whether it succeeded: the ambiguous failure).
    pub drop_rate: f64,
    /// Share of webhook notifications delivered twice.
    pub duplicate_rate: f64,
    /// When 2 or more, notifications are held until this many are queued (or
    /// [`Faults::reorder_flush_ms`] passed) and delivered in a shuffled order.
    pub reorder_window: usize,
    /// How long a partial reorder window waits for more notifications, in milliseconds
    /// (default when 0: 50 ms).
    pub reorder_flush_ms: u64,
}

impl Faults {
    /// No faults.
    pub fn none() -> Self {
        Self::default()
    }

    /// Adds latency to every call.
    pub fn latency(mut self, latency: Duration) -> Self {
        self.latency_ms = u64::try_from(latency.as_millis()).unwrap_or(u64::MAX);
        self
    }

    /// Answers this share of Graph calls with a 500.
    pub fn error_rate(mut self, rate: f64) -> Self {
        self.error_rate = rate;
        self
    }

    /// Cuts the connection of this share of Graph calls after they took effect.
    pub fn drop_rate(mut self, rate: f64) -> Self {
        self.drop_rate = rate;
        self
    }

    /// Delivers this share of notifications twice.
    pub fn duplicate_rate(mut self, rate: f64) -> Self {
        self.duplicate_rate = rate;
        self
    }

    /// Shuffles notifications in windows of `window`.
    pub fn reorder(mut self, window: usize) -> Self {
        self.reorder_window = window;
        self
    }
}
