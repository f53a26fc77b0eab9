//! The webhook event model: [`parse`] a notification body into normalized [`Event`]s.
//!
//! Meta delivers the same kinds of events in several envelopes, and this module accepts all of
//! them:
//! - `{"object": "instagram" | "page", "entry": [...]}`, each entry holding `messaging[]`
//!   (direct messages and their reactions, reads, postbacks, referrals, opt-ins, edits, handover),
//!   `standby[]` (the same, while another app owns the conversation), `changes[]` of
//!   `{field, value}` (comments, live comments, mentions, story insights, and messaging events
//!   under fields such as `messages`), or an entry-level `field`/`value`;
//! - a top-level array of such notifications (or of bare entries);
//! - a bare `{field, value}` (the App Dashboard's "Test" payload) or a lone messaging event.
//!
//! Ids may be strings or numbers, timestamps numbers or strings in seconds or milliseconds (see
//! [`crate::time`]), every optional field may be missing, and kinds this version does not know
//! come out as [`EventKind::Unknown`] with their raw JSON. A malformed part (one entry, one
//! messaging event, one change) costs only that part: [`Notification::errors`] says where and
//! why, and every other event is still returned.
//!
//! No HTTP is involved: this module builds without the `client` feature.
//!
//! ```
//! use instagram_graph::webhook::{self, EventKind};
//!
//! let body = br#"{"object":"instagram","entry":[{"id":"17841405726653026","time":1569262486134,
//!   "messaging":[{"sender":{"id":"5614879045272581"},"recipient":{"id":"17841405726653026"},
//!   "timestamp":1569262485349,"message":{"mid":"aWdf","text":"price?"}}]}]}"#;
//! let notification = webhook::parse(body)?;
//! assert!(notification.is_complete());
//! for event in &notification {
//!     if let EventKind::Message(message) = &event.kind {
//!         assert_eq!(message.text.as_deref(), Some("price?"));
//!         assert_eq!(event.sender.as_ref().unwrap(), "5614879045272581");
//!         assert_eq!(event.time.unwrap().timestamp_millis(), 1569262485349);
//!     }
//! }
//! # Ok::<(), instagram_graph::Error>(())
//! ```

mod envelope;
mod events;
mod normalize;

pub use events::{
    AdsContext, Attachment, AttachmentKind, Comment, CommentAuthor, CommentMedia, Event, EventKind,
    Handover, HandoverAction, Mention, Message, MessageEdit, Object, OptIn, Postback, Reaction,
    ReactionAction, Read, Referral, ReplyTo, StoryInsights, UnknownEvent,
};

use crate::error::Error;

/// A parsed webhook notification: its events in document order, and the parts that could not
/// be read.
#[derive(Debug, Default)]
#[non_exhaustive]
pub struct Notification {
    events: Vec<Event>,
    errors: Vec<Error>,
}

impl Notification {
    /// The events, in the order they appear in the body.
    pub fn events(&self) -> &[Event] {
        &self.events
    }

    /// The parts that could not be read, each an [`ErrorKind::Decode`](crate::ErrorKind::Decode)
    /// whose `path` locates the part (e.g. `entry[1].messaging[0].timestamp`) and whose `body` is
    /// that part's raw JSON. Empty when the whole notification was read.
    pub fn errors(&self) -> &[Error] {
        &self.errors
    }

    /// `true` when every part was read.
    pub fn is_complete(&self) -> bool {
        self.errors.is_empty()
    }

    /// Iterates over the events.
    pub fn iter(&self) -> std::slice::Iter<'_, Event> {
        self.events.iter()
    }

    /// Splits into the events and the errors.
    pub fn into_parts(self) -> (Vec<Event>, Vec<Error>) {
        (self.events, self.errors)
    }
}

impl IntoIterator for Notification {
    type Item = Event;
    type IntoIter = std::vec::IntoIter<Event>;

    fn into_iter(self) -> Self::IntoIter {
        self.events.into_iter()
    }
}

impl<'a> IntoIterator for &'a Notification {
    type Item = &'a Event;
    type IntoIter = std::slice::Iter<'a, Event>;

    fn into_iter(self) -> Self::IntoIter {
        self.events.iter()
    }
}

/// Parses a webhook notification body (the raw request bytes) into normalized events.
///
/// Returns `Err` (an [`ErrorKind::Decode`](crate::ErrorKind::Decode)) only when the body is not
/// JSON or has no notification shape at all. A notification with malformed parts is `Ok`: its
/// good events plus one error per bad part in [`Notification::errors`]. Never panics.
///
/// Verify the signature on these same bytes before trusting them (crate `webhook-verify`).
pub fn parse(body: &[u8]) -> Result<Notification, Error> {
    let outcome = match normalize::fast(body) {
        Some(outcome) => outcome,
        None => normalize::isolating(body)?,
    };
    Ok(Notification {
        events: outcome.events,
        errors: outcome.errors,
    })
}
