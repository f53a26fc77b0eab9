//! `GET /me` and the webhook subscription of the account.

use reqwest::Method;

use super::fields_query;
use crate::client::{Body, Client, Response};
use crate::error::Error;
use crate::model::{Account, Success};

/// The fields read by [`Client::me`] when none are given.
pub const DEFAULT_ACCOUNT_FIELDS: &[&str] = &[
    "id",
    "user_id",
    "username",
    "name",
    "account_type",
    "profile_picture_url",
    "followers_count",
    "follows_count",
    "media_count",
];

impl Client {
    /// Reads the account behind the token (`GET /me`). Empty `fields` reads the default fields.
    pub async fn me(&self, fields: &[&str]) -> Result<Response<Account>, Error> {
        self.account("me", fields).await
    }

    /// Reads an account by id (`GET /<IG_ID>`). Empty `fields` reads the default fields.
    pub async fn account(&self, id: &str, fields: &[&str]) -> Result<Response<Account>, Error> {
        let fields = if fields.is_empty() {
            DEFAULT_ACCOUNT_FIELDS
        } else {
            fields
        };
        self.call(Method::GET, id, &fields_query(fields), Body::Empty)
            .await
    }

    /// Subscribes the account (or, with Facebook Login, the Page) to webhook fields such as
    /// `comments` and `messages` (`POST /<node>/subscribed_apps`).
    pub async fn subscribe_webhooks(&self, fields: &[&str]) -> Result<Response<Success>, Error> {
        if fields.is_empty() {
            return Err(Error::validation(
                "name at least one webhook field to subscribe to, such as `messages`",
            ));
        }
        let path = format!("{}/subscribed_apps", self.messaging_node());
        let query = [("subscribed_fields", fields.join(","))];
        self.call(Method::POST, &path, &query, Body::Empty).await
    }

    /// Removes the app's webhook subscription for the account (`DELETE /<node>/subscribed_apps`).
    pub async fn unsubscribe_webhooks(&self) -> Result<Response<Success>, Error> {
        let path = format!("{}/subscribed_apps", self.messaging_node());
        self.call(Method::DELETE, &path, &[], Body::Empty).await
    }
}
