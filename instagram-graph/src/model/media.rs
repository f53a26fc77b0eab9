//! Media objects: posts, carousels, reels, stories (`GET /<IG_ID>/media`, `GET /<MEDIA_ID>`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::id::MediaId;
use crate::model::common::Owner;
use crate::model::string_enum;
use crate::page::Page;

string_enum! {
    /// The type of a media object.
    MediaType {
        /// A single image.
        Image => "IMAGE",
        /// A single video.
        Video => "VIDEO",
        /// A carousel of images and videos.
        CarouselAlbum => "CAROUSEL_ALBUM",
    }
}

string_enum! {
    /// Where a media object was published.
    MediaProductType {
        /// An ad.
        Ad => "AD",
        /// A feed post.
        Feed => "FEED",
        /// A story.
        Story => "STORY",
        /// A reel.
        Reels => "REELS",
    }
}

/// A media object. Only the requested fields are present; all but `id` are optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Media {
    /// The media id.
    pub id: MediaId,
    /// The caption (not on carousel children).
    #[serde(default)]
    pub caption: Option<String>,
    /// Image, video or carousel.
    #[serde(default)]
    pub media_type: Option<MediaType>,
    /// Feed, story, reels or ad.
    #[serde(default)]
    pub media_product_type: Option<MediaProductType>,
    /// The media URL (omitted for copyrighted content).
    #[serde(default)]
    pub media_url: Option<String>,
    /// The permanent link to the post.
    #[serde(default)]
    pub permalink: Option<String>,
    /// The shortcode.
    #[serde(default)]
    pub shortcode: Option<String>,
    /// The thumbnail (videos only).
    #[serde(default)]
    pub thumbnail_url: Option<String>,
    /// When the media was published.
    #[serde(
        default,
        deserialize_with = "crate::model::de::lenient_time",
        skip_serializing_if = "Option::is_none"
    )]
    pub timestamp: Option<DateTime<Utc>>,
    /// The owner's username.
    #[serde(default)]
    pub username: Option<String>,
    /// The owner (only returned to the owner).
    #[serde(default)]
    pub owner: Option<Owner>,
    /// Number of likes (omitted when the owner hid them).
    #[serde(default, deserialize_with = "crate::model::de::lenient_count")]
    pub like_count: Option<u64>,
    /// Number of comments, replies included.
    #[serde(default, deserialize_with = "crate::model::de::lenient_count")]
    pub comments_count: Option<u64>,
    /// Whether comments are enabled.
    #[serde(default, deserialize_with = "crate::model::de::lenient_bool")]
    pub is_comment_enabled: Option<bool>,
    /// Whether a reel is also shown in the feed.
    #[serde(default, deserialize_with = "crate::model::de::lenient_bool")]
    pub is_shared_to_feed: Option<bool>,
    /// The alternative text.
    #[serde(default)]
    pub alt_text: Option<String>,
    /// The children of a carousel, when requested with `fields=children{...}`.
    #[serde(default)]
    pub children: Option<Page<Media>>,
}

/// The fields requested by default when listing or reading media.
pub const DEFAULT_MEDIA_FIELDS: &[&str] = &[
    "id",
    "caption",
    "media_type",
    "media_product_type",
    "media_url",
    "permalink",
    "timestamp",
    "username",
    "like_count",
    "comments_count",
    "is_comment_enabled",
];
