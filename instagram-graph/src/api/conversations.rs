//! Conversations API: list, find by person, messages, message details.

use reqwest::Method;

use super::{fields_query, ListRequest};
use crate::client::{Body, Client, Response};
use crate::error::Error;
use crate::model::{Conversation, Message};
use crate::page::Page;

/// The fields read by [`Client::message`] when none are given.
pub const DEFAULT_MESSAGE_FIELDS: &[&str] = &["id", "created_time", "from", "to", "message"];

impl Client {
    /// Lists the account's Instagram conversations (`GET /<node>/conversations?platform=instagram`).
    /// Rate: 2 calls per second per account.
    pub fn conversations(&self) -> ListRequest<Conversation> {
        ListRequest::new(self, format!("{}/conversations", self.messaging_node()))
            .param("platform", "instagram")
    }

    /// Finds the conversation with a person (`GET /<node>/conversations?user_id=<IGSID>`).
    pub async fn find_conversation(
        &self,
        user: &str,
    ) -> Result<Response<Option<Conversation>>, Error> {
        let path = format!("{}/conversations", self.messaging_node());
        let query = [
            ("platform", "instagram".to_owned()),
            ("user_id", user.to_owned()),
        ];
        let page: Response<Page<Conversation>> =
            self.call(Method::GET, &path, &query, Body::Empty).await?;
        Ok(page.map(|p| p.data.into_iter().next()))
    }

    /// Lists the messages of a conversation, newest first (`GET /<CONV_ID>?fields=messages`):
    /// ids and times. Only the 20 most recent can be read with [`Client::message`]; older ones
    /// answer as if deleted.
    pub async fn conversation_messages(
        &self,
        conversation: &str,
    ) -> Result<Response<Page<Message>>, Error> {
        let query = [("fields", "messages{id,created_time}".to_owned())];
        let conv: Response<Conversation> = self
            .call(Method::GET, conversation, &query, Body::Empty)
            .await?;
        Ok(conv.map(|c| c.messages.unwrap_or_default()))
    }

    /// Reads one message (`GET /<MESSAGE_ID>?fields=id,created_time,from,to,message`). Works for
    /// the 20 most recent messages of a conversation only.
    pub async fn message(&self, id: &str, fields: &[&str]) -> Result<Response<Message>, Error> {
        let fields = if fields.is_empty() {
            DEFAULT_MESSAGE_FIELDS
        } else {
            fields
        };
        self.call(Method::GET, id, &fields_query(fields), Body::Empty)
            .await
    }
}
