//! The Send API: messages, reactions, sender actions, private replies.

use reqwest::Method;

use crate::client::{Body, Client, Response};
use crate::error::Error;
use crate::id::{CommentId, Igsid};
use crate::model::{SendRequest, SendResponse};

impl Client {
    /// Sends a message, reaction, sender action or private reply
    /// (`POST /<node>/messages`, `me` or the Page).
    ///
    /// A send is not idempotent: after an ambiguous failure (timeout) it may have been delivered.
    /// [`crate::retry::RetryPolicy`] does not retry those unless told to.
    pub async fn send(&self, request: &SendRequest) -> Result<Response<SendResponse>, Error> {
        let path = format!("{}/messages", self.messaging_node());
        self.call(Method::POST, &path, &[], Body::Json(request.to_json()))
            .await
    }

    /// Sends a text message (1 to 1,000 UTF-8 bytes) to a person.
    pub async fn send_text(
        &self,
        to: impl Into<Igsid>,
        text: impl Into<String>,
    ) -> Result<Response<SendResponse>, Error> {
        self.send(&SendRequest::text(to, text)?).await
    }

    /// Sends the one private reply a comment allows (within 7 days of the comment).
    pub async fn private_reply(
        &self,
        comment: impl Into<CommentId>,
        text: impl Into<String>,
    ) -> Result<Response<SendResponse>, Error> {
        self.send(&SendRequest::private_reply(comment, text)?).await
    }
}
