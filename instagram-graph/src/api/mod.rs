//! The endpoints, as methods on [`crate::client::Client`], one file per resource.
//!
//! List endpoints return a [`ListRequest`]: set fields and page size, then fetch one page with
//! [`ListRequest::send`] or every page with [`ListRequest::pages`].

mod account;
mod comments;
mod conversations;
mod media;
mod messaging;
mod messenger_profile;
mod profile;

pub use account::DEFAULT_ACCOUNT_FIELDS;
pub use conversations::DEFAULT_MESSAGE_FIELDS;

use std::marker::PhantomData;

use futures_core::Stream;
use reqwest::Method;
use serde::de::DeserializeOwned;

use crate::client::{Body, Client, Response};
use crate::error::{Error, Limit};
use crate::page::Page;

/// A request for a list edge (media, comments, conversations, ...), one page at a time.
#[derive(Debug, Clone)]
#[must_use = "a ListRequest does nothing until `send` or `pages` is called"]
pub struct ListRequest<T> {
    client: Client,
    path: String,
    query: Vec<(&'static str, String)>,
    limit_rule: Option<Limit>,
    _item: PhantomData<fn() -> T>,
}

impl<T: DeserializeOwned> ListRequest<T> {
    pub(crate) fn new(client: &Client, path: String) -> Self {
        Self {
            client: client.clone(),
            path,
            query: Vec::new(),
            limit_rule: None,
            _item: PhantomData,
        }
    }

    pub(crate) fn limit_rule(mut self, rule: Limit) -> Self {
        self.limit_rule = Some(rule);
        self
    }

    fn set(mut self, key: &'static str, value: String) -> Self {
        self.query.retain(|(k, _)| *k != key);
        self.query.push((key, value));
        self
    }

    /// Sets the fields to return (`fields=a,b,c`).
    pub fn fields(self, fields: &[&str]) -> Self {
        self.set("fields", fields.join(","))
    }

    /// Sets the page size (`limit`).
    pub fn limit(self, limit: usize) -> Self {
        self.set("limit", limit.to_string())
    }

    /// Starts after this cursor.
    pub fn after(self, cursor: impl Into<String>) -> Self {
        self.set("after", cursor.into())
    }

    /// Starts before this cursor.
    pub fn before(self, cursor: impl Into<String>) -> Self {
        self.set("before", cursor.into())
    }

    /// Adds any other query parameter.
    pub fn param(self, key: &'static str, value: impl Into<String>) -> Self {
        self.set(key, value.into())
    }

    fn check(&self) -> Result<(), Error> {
        if let Some(rule) = self.limit_rule {
            if let Some((_, limit)) = self.query.iter().find(|(k, _)| *k == "limit") {
                let n = limit.parse::<usize>().unwrap_or(usize::MAX);
                rule.check(n)?;
            }
        }
        Ok(())
    }

    /// Fetches one page.
    pub async fn send(&self) -> Result<Response<Page<T>>, Error> {
        self.check()?;
        self.client
            .call(Method::GET, &self.path, &self.query, Body::Empty)
            .await
    }

    /// Fetches every page, following the `after` cursor while Meta announces a `next` page.
    /// The stream ends after the first error.
    pub fn pages(self) -> impl Stream<Item = Result<Response<Page<T>>, Error>> {
        futures_util::stream::unfold(Some(self), |state| async move {
            let request = state?;
            let result = request.send().await;
            match result {
                Ok(response) => {
                    let current = request
                        .query
                        .iter()
                        .find(|(k, _)| *k == "after")
                        .map(|(_, v)| v.clone());
                    let next = response
                        .data
                        .next_cursor()
                        // A cursor that does not move would loop forever: stop there.
                        .filter(|cursor| Some(cursor) != current.as_ref())
                        .map(|cursor| request.after(cursor));
                    Some((Ok(response), next))
                }
                Err(error) => Some((Err(error), None)),
            }
        })
    }
}

impl<T: DeserializeOwned + 'static> ListRequest<T> {
    /// Every item of every page, in order. The stream ends after the first error.
    pub fn items(self) -> impl Stream<Item = Result<T, Error>> {
        use futures_util::StreamExt;
        self.pages().flat_map(|page| {
            let items: Vec<Result<T, Error>> = match page {
                Ok(page) => page.data.data.into_iter().map(Ok).collect(),
                Err(error) => vec![Err(error)],
            };
            futures_util::stream::iter(items)
        })
    }
}

pub(crate) fn fields_query(fields: &[&str]) -> Vec<(&'static str, String)> {
    if fields.is_empty() {
        Vec::new()
    } else {
        vec![("fields", fields.join(","))]
    }
}
