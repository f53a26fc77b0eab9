//! Mentions of the account (`GET /<IG_ID>?fields=mentioned_comment.comment_id(..)` and
//! `mentioned_media.media_id(..)`).

use serde::{Deserialize, Serialize};

use crate::model::{Comment, Media};

/// A comment that mentions the account, read through the account node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MentionedComment {
    /// The account id.
    #[serde(default, deserialize_with = "crate::model::de::opt_id_text")]
    pub id: Option<String>,
    /// The comment.
    #[serde(default)]
    pub mentioned_comment: Option<Comment>,
}

/// A media object whose caption mentions the account, read through the account node.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct MentionedMedia {
    /// The account id.
    #[serde(default, deserialize_with = "crate::model::de::opt_id_text")]
    pub id: Option<String>,
    /// The media.
    #[serde(default)]
    pub mentioned_media: Option<Media>,
}
