//! The messenger profile of the account: ice breakers and the persistent menu.

use serde::{Deserialize, Serialize};

use crate::error::{Error, Limit};
use crate::model::message::Button;

/// One ice breaker question and the payload of its postback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct IceBreaker {
    /// The question shown to the person.
    #[serde(default)]
    pub question: String,
    /// The payload of the `messaging_postbacks` webhook sent when it is tapped.
    #[serde(default)]
    pub payload: String,
}

impl IceBreaker {
    /// A question and its payload.
    pub fn new(question: impl Into<String>, payload: impl Into<String>) -> Self {
        Self {
            question: question.into(),
            payload: payload.into(),
        }
    }
}

/// The ice breakers of one locale (1 to 4 questions).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct IceBreakers {
    /// The questions.
    #[serde(default)]
    pub call_to_actions: Vec<IceBreaker>,
    /// The locale, such as `zh_CN`; `None` for the default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub locale: Option<String>,
}

impl IceBreakers {
    /// Checks the limit (1 to 4 questions) and builds the set for `locale` (`None` = default).
    pub fn new(questions: Vec<IceBreaker>, locale: Option<String>) -> Result<Self, Error> {
        Limit::IceBreakers.check(questions.len())?;
        Ok(Self {
            call_to_actions: questions,
            locale,
        })
    }
}

/// One item of the persistent menu: a `postback` or `web_url` button.
pub type MenuItem = Button;

/// The persistent menu of one locale.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct PersistentMenu {
    /// The locale, `default` for all others.
    #[serde(default = "default_locale")]
    pub locale: String,
    /// The items (Meta recommends at most 5).
    #[serde(default)]
    pub call_to_actions: Vec<MenuItem>,
}

fn default_locale() -> String {
    "default".to_owned()
}

impl PersistentMenu {
    /// A menu for `locale` (use `"default"` for the fallback).
    pub fn new(locale: impl Into<String>, items: Vec<MenuItem>) -> Result<Self, Error> {
        if items.is_empty() {
            return Err(Error::validation(
                "a persistent menu needs at least one item; delete the menu to remove it",
            ));
        }
        Ok(Self {
            locale: locale.into(),
            call_to_actions: items,
        })
    }
}
