//! Comments: list (50 per page at most), read, replies, public reply, hide, delete.

use reqwest::Method;
use serde_json::json;

use super::{fields_query, ListRequest};
use crate::client::{Body, Client, Response};
use crate::error::{Error, Limit};
use crate::model::comment::DEFAULT_COMMENT_FIELDS;
use crate::model::{Comment, Created, Success};

impl Client {
    /// Lists the top-level comments of a media object, newest first (`GET /<MEDIA_ID>/comments`).
    /// Meta returns at most 50 per page; a larger [`ListRequest::limit`] is refused before sending.
    pub fn comments(&self, media_id: &str) -> ListRequest<Comment> {
        ListRequest::new(self, format!("{media_id}/comments"))
            .limit_rule(Limit::CommentsPerPage)
            .fields(DEFAULT_COMMENT_FIELDS)
    }

    /// Reads one comment (`GET /<COMMENT_ID>`). Empty `fields` reads the default fields.
    pub async fn comment(&self, id: &str, fields: &[&str]) -> Result<Response<Comment>, Error> {
        let fields = if fields.is_empty() {
            DEFAULT_COMMENT_FIELDS
        } else {
            fields
        };
        self.call(Method::GET, id, &fields_query(fields), Body::Empty)
            .await
    }

    /// Lists the replies to a comment (`GET /<COMMENT_ID>/replies`).
    pub fn replies(&self, comment_id: &str) -> ListRequest<Comment> {
        ListRequest::new(self, format!("{comment_id}/replies"))
            .limit_rule(Limit::CommentsPerPage)
            .fields(DEFAULT_COMMENT_FIELDS)
    }

    /// Replies publicly to a comment (`POST /<COMMENT_ID>/replies`); returns the new comment id.
    pub async fn reply_to_comment(
        &self,
        comment_id: &str,
        message: &str,
    ) -> Result<Response<Created>, Error> {
        Limit::TextEmpty.check(message.len())?;
        let path = format!("{comment_id}/replies");
        let body = Body::Json(json!({ "message": message }));
        self.call(Method::POST, &path, &[], body).await
    }

    /// Hides or shows a comment (`POST /<COMMENT_ID>?hide=`).
    pub async fn set_comment_hidden(
        &self,
        id: &str,
        hidden: bool,
    ) -> Result<Response<Success>, Error> {
        let query = [("hide", hidden.to_string())];
        self.call(Method::POST, id, &query, Body::Empty).await
    }

    /// Deletes a comment on the account's media (`DELETE /<COMMENT_ID>`).
    pub async fn delete_comment(&self, id: &str) -> Result<Response<Success>, Error> {
        self.call(Method::DELETE, id, &[], Body::Empty).await
    }
}
