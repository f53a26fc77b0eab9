//! The messaging policy of the platform as pure functions.
//!
//! * After the person's last message we may send standard messages for **24 hours**, and messages
//!   tagged `HUMAN_AGENT` (sent by a human) for **7 days**. Windows are half-open: at exactly
//!   24 hours the standard window is closed; at exactly 7 days the human-agent window is closed.
//! * A comment allows **one** private reply, within **7 days** of the comment's creation (same
//!   half-open rule). Live comments allow it only during the broadcast, which this crate cannot
//!   see: the caller must not send once the live has ended. A private reply does not open the
//!   24-hour window.
//! * A timestamp in the future (clock skew) counts as "just now".
//!
//! ```
//! use automation_core::policy::{messaging_window, Window};
//! use chrono::{TimeDelta, TimeZone, Utc};
//! let last = Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap();
//! assert_eq!(messaging_window(Some(last), last + TimeDelta::hours(23)), Window::Standard);
//! assert_eq!(messaging_window(Some(last), last + TimeDelta::hours(24)), Window::HumanAgentOnly);
//! assert_eq!(messaging_window(Some(last), last + TimeDelta::days(7)), Window::Closed);
//! assert_eq!(messaging_window(None, last), Window::Closed);
//! ```

use chrono::{DateTime, TimeDelta, Utc};
use serde::{Deserialize, Serialize};

/// The standard messaging window.
pub const STANDARD_WINDOW: TimeDelta = TimeDelta::hours(24);
/// The human-agent window.
pub const HUMAN_AGENT_WINDOW: TimeDelta = TimeDelta::days(7);
/// How long after a comment a private reply is allowed.
pub const PRIVATE_REPLY_WINDOW: TimeDelta = TimeDelta::days(7);

/// What may be sent to a person now.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum Window {
    /// Any standard message (within 24 hours of their last message).
    Standard,
    /// Only a human's message with the `HUMAN_AGENT` tag (within 7 days).
    HumanAgentOnly,
    /// Nothing: they never wrote, or wrote 7 days ago or more.
    Closed,
}

impl Window {
    /// Whether an automated standard message may be sent.
    pub fn allows_standard(self) -> bool {
        self == Window::Standard
    }
}

/// The messaging window at `now`, given the person's last inbound message time.
pub fn messaging_window(last_inbound: Option<DateTime<Utc>>, now: DateTime<Utc>) -> Window {
    let Some(last) = last_inbound else {
        return Window::Closed;
    };
    let elapsed = (now - last).max(TimeDelta::zero());
    if elapsed < STANDARD_WINDOW {
        Window::Standard
    } else if elapsed < HUMAN_AGENT_WINDOW {
        Window::HumanAgentOnly
    } else {
        Window::Closed
    }
}

/// Whether a private reply to a comment may be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum PrivateReply {
    /// Allowed.
    Allowed,
    /// One was already sent (or attempted) for this comment.
    AlreadySent,
    /// The comment is 7 days old or older.
    Expired,
}

/// Whether a private reply may be sent for a comment created at `comment_created`, given whether
/// one was already sent or attempted.
pub fn private_reply(
    comment_created: DateTime<Utc>,
    already_sent: bool,
    now: DateTime<Utc>,
) -> PrivateReply {
    if already_sent {
        PrivateReply::AlreadySent
    } else if (now - comment_created).max(TimeDelta::zero()) < PRIVATE_REPLY_WINDOW {
        PrivateReply::Allowed
    } else {
        PrivateReply::Expired
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::TimeZone;
    use proptest::prelude::*;

    fn t0() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2024, 2, 28, 23, 30, 0).unwrap()
    }

    #[test]
    fn window_edges() {
        let last = t0();
        let at = |d: TimeDelta| messaging_window(Some(last), last + d);
        assert_eq!(at(TimeDelta::zero()), Window::Standard);
        assert_eq!(
            at(STANDARD_WINDOW - TimeDelta::nanoseconds(1)),
            Window::Standard
        );
        assert_eq!(at(STANDARD_WINDOW), Window::HumanAgentOnly);
        assert_eq!(
            at(HUMAN_AGENT_WINDOW - TimeDelta::seconds(1)),
            Window::HumanAgentOnly
        );
        assert_eq!(at(HUMAN_AGENT_WINDOW), Window::Closed);
        assert_eq!(at(-TimeDelta::hours(3)), Window::Standard);
        assert!(at(TimeDelta::hours(1)).allows_standard());
        assert!(!at(TimeDelta::hours(25)).allows_standard());
    }

    #[test]
    fn private_reply_edges() {
        let c = t0();
        assert_eq!(private_reply(c, false, c), PrivateReply::Allowed);
        assert_eq!(
            private_reply(c, false, c + TimeDelta::days(7) - TimeDelta::seconds(1)),
            PrivateReply::Allowed
        );
        assert_eq!(
            private_reply(c, false, c + TimeDelta::days(7)),
            PrivateReply::Expired
        );
        assert_eq!(private_reply(c, true, c), PrivateReply::AlreadySent);
        assert_eq!(
            private_reply(c, false, c - TimeDelta::days(1)),
            PrivateReply::Allowed
        );
    }

    proptest! {
        #[test]
        fn window_is_monotonic(a in 0i64..2_000_000, b in 0i64..2_000_000) {
            let (a, b) = (a.min(b), a.max(b));
            let rank = |w| match w { Window::Standard => 0, Window::HumanAgentOnly => 1, Window::Closed => 2 };
            let wa = messaging_window(Some(t0()), t0() + TimeDelta::seconds(a));
            let wb = messaging_window(Some(t0()), t0() + TimeDelta::seconds(b));
            prop_assert!(rank(wa) <= rank(wb));
        }
    }
}
