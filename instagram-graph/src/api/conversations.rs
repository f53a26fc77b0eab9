//! Conversations API: list, find by person, messages, message details.

use reqwest::Method;

use super::{fields_query, ListRequest};
use crate::client::{Body, Client, Response};
use crate::error::{Error, Limit};
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

    /// Reads the `count` most recent messages of a conversation in detail (1 to 20: Meta only
    /// returns details of the 20 most recent). Lists the ids first, then reads each message, so
    /// it makes `1 + count` calls (the Conversations API allows 2 per second per account).
    /// Returns the messages newest first, with the usage of the last call.
    pub async fn recent_messages(
        &self,
        conversation: &str,
        count: usize,
    ) -> Result<Response<Vec<Message>>, Error> {
        Limit::RecentMessages.check(count)?;
        let listed = self.conversation_messages(conversation).await?;
        let mut usage = listed.usage;
        let mut status = listed.status;
        let mut messages = Vec::with_capacity(count);
        for summary in listed.data.data.into_iter().take(count) {
            let detail = self.message(summary.id.as_str(), &[]).await?;
            usage = detail.usage;
            status = detail.status;
            messages.push(detail.data);
        }
        Ok(Response {
            data: messages,
            usage,
            status,
        })
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
