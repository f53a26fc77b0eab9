//! Small bodies shared by several endpoints.

use serde::{Deserialize, Serialize};

/// `{"success": true}`, the answer of most update and delete calls.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Success {
    /// Whether Meta applied the change.
    #[serde(default, deserialize_with = "crate::model::de::lenient_bool")]
    pub success: Option<bool>,
}

impl Success {
    /// `true` when Meta said `"success": true`.
    pub fn is_success(&self) -> bool {
        self.success == Some(true)
    }
}

/// `{"id": "..."}`, the answer of calls that create an object (a comment reply, for example).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Created {
    /// The id of the new object.
    #[serde(deserialize_with = "crate::id::deserialize_id_text")]
    pub id: String,
}

/// A reference to an object by id, such as a media `owner` or a comment `user`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Owner {
    /// The object's id.
    #[serde(default, deserialize_with = "crate::model::de::opt_id_text")]
    pub id: Option<String>,
    /// The username, when the API included it.
    #[serde(default)]
    pub username: Option<String>,
}
