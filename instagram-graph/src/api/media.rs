//! Media: list, read, children, enable or disable comments.

use reqwest::Method;

use super::{fields_query, ListRequest};
use crate::client::{Body, Client, Response};
use crate::error::Error;
use crate::model::media::DEFAULT_MEDIA_FIELDS;
use crate::model::{Media, Success};

impl Client {
    /// Lists the media of an account (`GET /<IG_ID>/media`; `user` may be `me`), with the default
    /// fields unless [`ListRequest::fields`] is set.
    pub fn media_list(&self, user: &str) -> ListRequest<Media> {
        ListRequest::new(self, format!("{user}/media")).fields(DEFAULT_MEDIA_FIELDS)
    }

    /// Reads one media object (`GET /<MEDIA_ID>`). Empty `fields` reads the default fields.
    pub async fn media(&self, id: &str, fields: &[&str]) -> Result<Response<Media>, Error> {
        let fields = if fields.is_empty() {
            DEFAULT_MEDIA_FIELDS
        } else {
            fields
        };
        self.call(Method::GET, id, &fields_query(fields), Body::Empty)
            .await
    }

    /// Lists the children of a carousel (`GET /<MEDIA_ID>/children`).
    pub fn media_children(&self, id: &str) -> ListRequest<Media> {
        ListRequest::new(self, format!("{id}/children")).fields(&[
            "id",
            "media_type",
            "media_url",
            "permalink",
            "shortcode",
            "thumbnail_url",
            "timestamp",
        ])
    }

    /// Enables or disables comments on a media object (`POST /<MEDIA_ID>?comment_enabled=`).
    /// Not available for live media.
    pub async fn set_comments_enabled(
        &self,
        id: &str,
        enabled: bool,
    ) -> Result<Response<Success>, Error> {
        let query = [("comment_enabled", enabled.to_string())];
        self.call(Method::POST, id, &query, Body::Empty).await
    }
}
