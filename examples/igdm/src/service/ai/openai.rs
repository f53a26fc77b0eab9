//! An OpenAI-compatible chat-completions client (OpenAI, Azure-style gateways, Ollama, vLLM,
//! LiteLLM, ...): `POST {base_url}/chat/completions` with the model, a system message from the
//! instructions and the conversation context; the answer is `choices[0].message.content`.

use std::time::Duration;

use async_trait::async_trait;
use serde::Deserialize;
use serde_json::json;

use super::{ReplyError, ReplyErrorKind, ReplyRequest, Responder, Role};
use crate::service::config::AiConfig;

/// A chat-completions [`Responder`]. The API key is sent as `Authorization: Bearer` and never
/// printed (its `Debug` hides it).
///
/// ```
/// use std::time::Duration;
/// use igdm::service::ai::ChatCompletions;
/// let client = ChatCompletions::new("http://127.0.0.1:11434/v1", "llama3.2")
///     .api_key("sk-...")
///     .timeout(Duration::from_secs(8));
/// assert!(!format!("{client:?}").contains("sk-..."));
/// ```
#[derive(Clone)]
pub struct ChatCompletions {
    http: reqwest::Client,
    endpoint: String,
    model: String,
    api_key: Option<String>,
    timeout: Duration,
}

impl std::fmt::Debug for ChatCompletions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ChatCompletions")
            .field("endpoint", &self.endpoint)
            .field("model", &self.model)
            .field("api_key", &self.api_key.as_ref().map(|_| "****"))
            .field("timeout", &self.timeout)
            .finish()
    }
}

impl ChatCompletions {
    /// A client of `{base_url}/chat/completions` asking `model`, without a key, with a 10 s
    /// timeout.
    pub fn new(base_url: impl Into<String>, model: impl Into<String>) -> Self {
        let base: String = base_url.into();
        Self {
            http: reqwest::Client::new(),
            endpoint: format!("{}/chat/completions", base.trim_end_matches('/')),
            model: model.into(),
            api_key: None,
            timeout: Duration::from_secs(10),
        }
    }

    /// From the service configuration.
    pub fn from_config(config: &AiConfig) -> Self {
        let mut client = Self::new(config.base_url.clone(), config.model.clone())
            .timeout(Duration::from_millis(config.timeout_ms.max(1)));
        if let Some(key) = config.api_key.as_deref().filter(|k| !k.is_empty()) {
            client = client.api_key(key);
        }
        client
    }

    /// Sets the API key.
    #[must_use]
    pub fn api_key(mut self, key: impl Into<String>) -> Self {
        self.api_key = Some(key.into());
        self
    }

    /// Sets the timeout of one request.
    #[must_use]
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The request body for `request`.
    pub fn body(&self, request: &ReplyRequest) -> serde_json::Value {
        let mut messages = vec![json!({ "role": "system", "content": request.instructions })];
        messages.extend(request.context.iter().map(|turn| {
            let role = match turn.role {
                Role::User => "user",
                Role::Assistant => "assistant",
            };
            json!({ "role": role, "content": turn.text })
        }));
        json!({ "model": self.model, "messages": messages })
    }
}

#[derive(Deserialize)]
struct Completion {
    #[serde(default)]
    choices: Vec<Choice>,
}

#[derive(Deserialize)]
struct Choice {
    message: Option<ChoiceMessage>,
}

#[derive(Deserialize)]
struct ChoiceMessage {
    #[serde(default)]
    content: Option<String>,
}

#[async_trait]
impl Responder for ChatCompletions {
    async fn reply(&self, request: &ReplyRequest) -> Result<String, ReplyError> {
        let mut call = self
            .http
            .post(&self.endpoint)
            .timeout(self.timeout)
            .json(&self.body(request));
        if let Some(key) = &self.api_key {
            call = call.bearer_auth(key);
        }
        let response = call.send().await.map_err(|e| transport(&e))?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| transport(&e))?;
        if !status.is_success() {
            let detail = serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| {
                    v.pointer("/error/message")
                        .and_then(|m| m.as_str())
                        .map(|m| m.chars().take(200).collect::<String>())
                })
                .unwrap_or_default();
            return Err(ReplyError::new(
                ReplyErrorKind::Status(status.as_u16()),
                format!("the model endpoint answered HTTP {status} {detail}")
                    .trim_end()
                    .to_string(),
            ));
        }
        let completion: Completion = serde_json::from_slice(&bytes).map_err(|e| {
            ReplyError::new(
                ReplyErrorKind::BadAnswer,
                format!("the model endpoint's answer is not a chat completion: {e}"),
            )
        })?;
        let text = completion
            .choices
            .into_iter()
            .next()
            .and_then(|c| c.message)
            .and_then(|m| m.content)
            .unwrap_or_default();
        let text = text.trim();
        if text.is_empty() {
            return Err(ReplyError::new(
                ReplyErrorKind::EmptyAnswer,
                "the model answered nothing",
            ));
        }
        Ok(text.to_string())
    }
}

fn transport(e: &reqwest::Error) -> ReplyError {
    if e.is_timeout() {
        return ReplyError::new(ReplyErrorKind::Timeout, "the model did not answer in time");
    }
    // without the URL: it may carry credentials
    let mut text = e.to_string();
    if let Some(url) = e.url() {
        text = text.replace(url.as_str(), "<endpoint>");
    }
    ReplyError::new(
        ReplyErrorKind::Unreachable,
        format!("the model endpoint could not be reached: {text}"),
    )
}
