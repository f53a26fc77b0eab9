//! Content publishing: container creation and status, publishing quota.

use serde::{Deserialize, Serialize};

use crate::model::string_enum;

string_enum! {
    /// The state of a media container.
    ContainerStatusCode {
        /// Still processing.
        InProgress => "IN_PROGRESS",
        /// Ready to publish.
        Finished => "FINISHED",
        /// Already published.
        Published => "PUBLISHED",
        /// Failed; see `status`.
        Error => "ERROR",
        /// Not published within 24 hours.
        Expired => "EXPIRED",
    }
}

/// The status of a media container (`GET /<CONTAINER_ID>?fields=status_code,status`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ContainerStatus {
    /// The container id.
    #[serde(default, deserialize_with = "crate::model::de::opt_id_text")]
    pub id: Option<String>,
    /// The status text.
    #[serde(default)]
    pub status: Option<String>,
    /// The status code.
    #[serde(default)]
    pub status_code: Option<ContainerStatusCode>,
    /// The copyright check of videos.
    #[serde(default)]
    pub copyright_check_status: Option<CopyrightCheckStatus>,
}

/// The copyright check of a video container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct CopyrightCheckStatus {
    /// Whether matches were found.
    #[serde(default)]
    pub matches_found: Option<bool>,
    /// The state of the check.
    #[serde(default)]
    pub status: Option<String>,
}

/// The publishing quota of an account (`GET /<IG_ID>/content_publishing_limit`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PublishingLimit {
    /// Posts published in the current window.
    #[serde(default, deserialize_with = "crate::model::de::lenient_count")]
    pub quota_usage: Option<u64>,
    /// The quota.
    #[serde(default)]
    pub config: Option<PublishingQuota>,
}

/// The quota of [`PublishingLimit`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PublishingQuota {
    /// Posts allowed per window.
    #[serde(default, deserialize_with = "crate::model::de::lenient_count")]
    pub quota_total: Option<u64>,
    /// The window, in seconds.
    #[serde(default, deserialize_with = "crate::model::de::lenient_count")]
    pub quota_duration: Option<u64>,
}
