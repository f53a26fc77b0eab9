//! Comments on media (`GET /<MEDIA_ID>/comments`, `GET /<COMMENT_ID>`, replies).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::id::CommentId;
use crate::model::common::Owner;
use crate::model::media::MediaProductType;
use crate::page::Page;

/// A comment or a reply. Only the requested fields are present.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Comment {
    /// The comment id.
    pub id: CommentId,
    /// The text.
    #[serde(default)]
    pub text: Option<String>,
    /// When the comment was made.
    #[serde(
        default,
        deserialize_with = "crate::model::de::lenient_time",
        skip_serializing_if = "Option::is_none"
    )]
    pub timestamp: Option<DateTime<Utc>>,
    /// The author's username (needs the manage-comments permission).
    #[serde(default)]
    pub username: Option<String>,
    /// The author.
    #[serde(default)]
    pub from: Option<CommentAuthor>,
    /// Whether the comment is hidden.
    #[serde(default, deserialize_with = "crate::model::de::lenient_bool")]
    pub hidden: Option<bool>,
    /// Number of likes.
    #[serde(default, deserialize_with = "crate::model::de::lenient_count")]
    pub like_count: Option<u64>,
    /// The media the comment is on.
    #[serde(default)]
    pub media: Option<CommentMedia>,
    /// The parent comment, for replies.
    #[serde(default)]
    pub parent_id: Option<CommentId>,
    /// The replies, when requested with `fields=replies{...}`.
    #[serde(default)]
    pub replies: Option<Page<Comment>>,
    /// The author, only when the app user wrote the comment.
    #[serde(default)]
    pub user: Option<Owner>,
}

/// The `from` object of a comment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CommentAuthor {
    /// The author's Instagram-scoped id.
    #[serde(default, deserialize_with = "crate::model::de::opt_id_text")]
    pub id: Option<String>,
    /// The author's username.
    #[serde(default)]
    pub username: Option<String>,
}

/// The `media` object of a comment.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CommentMedia {
    /// The media id.
    #[serde(default, deserialize_with = "crate::model::de::opt_id_text")]
    pub id: Option<String>,
    /// Feed, story, reels or ad.
    #[serde(default)]
    pub media_product_type: Option<MediaProductType>,
}

/// The fields requested by default when listing or reading comments.
pub const DEFAULT_COMMENT_FIELDS: &[&str] = &[
    "id",
    "text",
    "timestamp",
    "username",
    "from",
    "hidden",
    "like_count",
    "parent_id",
];
