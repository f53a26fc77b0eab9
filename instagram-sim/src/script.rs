//! The scripting API: what simulated people do ([`Action`]) and what happens to accounts
//! (creation, media, revocation, expiry). Each action updates the state and queues the
//! webhook Meta would send.

use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::error::Error;
use crate::model::{AccountInfo, AccountSpec, MediaSpec, PersonSpec};
use crate::state::{all_scopes, to_time, Author, Comment, Media, State};
use crate::webhook::{changes_entry, messaging_entry, notify, Outgoing};

/// Something a simulated person does. Over HTTP: `POST /_sim/actions` with this JSON, e.g.
/// `{"action":"comment","person":"alice","media_id":"179...","text":"LINK"}`.
///
/// `account` fields take the account's IG user id or its username.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
#[non_exhaustive]
pub enum Action {
    /// Comments on a media object (`comments` webhook); `parent_id` makes it a reply.
    Comment {
        /// The person's username.
        person: String,
        /// The media commented on.
        media_id: String,
        /// The text.
        text: String,
        /// The comment replied to, if any.
        #[serde(default)]
        parent_id: Option<String>,
    },
    /// Mentions the account in a comment on the person's own post (`mentions` change).
    CommentMention {
        /// The person's username.
        person: String,
        /// The account mentioned.
        account: String,
    },
    /// Sends a direct message (opens the 24-hour window).
    Dm {
        /// The person's username.
        person: String,
        /// The account written to.
        account: String,
        /// The text.
        text: String,
    },
    /// Taps a quick reply: a message whose text is the title, with `quick_reply.payload`.
    QuickReply {
        /// The person's username.
        person: String,
        /// The account.
        account: String,
        /// The quick reply's title.
        title: String,
        /// The quick reply's payload.
        payload: String,
    },
    /// Replies to one of the account's stories (`reply_to.story`).
    StoryReply {
        /// The person's username.
        person: String,
        /// The account.
        account: String,
        /// The story (a media of kind story); a made-up id when absent.
        #[serde(default)]
        story_id: Option<String>,
        /// The text.
        text: String,
    },
    /// Mentions the account in the person's story (a `story_mention` attachment).
    StoryMention {
        /// The person's username.
        person: String,
        /// The account.
        account: String,
    },
    /// Taps a button, ice breaker or menu item (`messaging_postbacks`; opens the window).
    Postback {
        /// The person's username.
        person: String,
        /// The account.
        account: String,
        /// The button title.
        title: String,
        /// The button payload.
        payload: String,
    },
    /// Reacts to a message of the conversation (`message_reactions`).
    React {
        /// The person's username.
        person: String,
        /// The account.
        account: String,
        /// The message reacted to.
        mid: String,
        /// The reaction (default `love`).
        #[serde(default)]
        reaction: Option<String>,
    },
    /// Removes a reaction.
    Unreact {
        /// The person's username.
        person: String,
        /// The account.
        account: String,
        /// The message.
        mid: String,
    },
    /// Unsends one of the person's own messages (`message.is_deleted`).
    Unsend {
        /// The person's username.
        person: String,
        /// The account.
        account: String,
        /// The person's message.
        mid: String,
    },
    /// Reads the conversation (`messaging_seen`), up to `mid` (default: the latest message).
    Read {
        /// The person's username.
        person: String,
        /// The account.
        account: String,
        /// The message read.
        #[serde(default)]
        mid: Option<String>,
    },
}

/// What an action produced.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ActionOutcome {
    /// The id created: a comment id for comments, a message id for messages and postbacks,
    /// the message acted on for reactions, unsends and reads.
    pub id: String,
    /// The person's IGSID for the account.
    pub igsid: String,
}

fn account_of(state: &State, key: &str) -> Result<String, Error> {
    state
        .find_account(key)
        .ok_or_else(|| Error::not_found("account", key))
}

fn emoji(reaction: &str) -> &str {
    match reaction {
        "love" => "\u{2764}\u{fe0f}",
        "like" => "\u{1f44d}",
        "laugh" => "\u{1f606}",
        "wow" => "\u{1f62e}",
        "sad" => "\u{1f622}",
        "angry" => "\u{1f620}",
        other => other,
    }
}

fn inbound(state: &mut State, account: &str, igsid: &str, key: &str, value: Value) {
    let now = state.now();
    let event = json!({
        "sender": { "id": igsid },
        "recipient": { "id": account },
        "timestamp": now,
        key: value,
    });
    notify(state, account, messaging_entry(account, now, event));
}

/// A person's message into the conversation: stores it, opens the window, gives consent.
fn person_message(
    state: &mut State,
    account: &str,
    person: &str,
    text: Option<String>,
) -> (String, String) {
    let conv = state.conversation(account, person);
    let igsid = state.igsid(person, account);
    state
        .ensure_person(person)
        .consented
        .insert(account.to_owned());
    let mid = state.store_message(&conv, false, text);
    (mid, igsid)
}

fn message_in_conversation(
    state: &State,
    account: &str,
    igsid: &str,
    mid: &str,
) -> Result<bool, Error> {
    let conv = state
        .conversation_index
        .get(&(account.to_owned(), igsid.to_owned()));
    match state.messages.get(mid) {
        Some(m) if Some(&m.conversation) == conv && !m.deleted => Ok(m.from_account),
        _ => Err(Error::not_found("message in this conversation", mid)),
    }
}

pub(crate) fn apply(state: &mut State, action: Action) -> Result<ActionOutcome, Error> {
    match action {
        Action::Comment {
            person,
            media_id,
            text,
            parent_id,
        } => {
            let media = state
                .media
                .get(&media_id)
                .cloned()
                .ok_or_else(|| Error::not_found("media", &media_id))?;
            if media.child {
                return Err(Error::invalid(
                    "carousel children cannot be commented on; use the carousel id",
                ));
            }
            if !media.comments_enabled {
                return Err(Error::invalid(format!(
                    "comments are disabled on media {media_id}"
                )));
            }
            if let Some(parent) = &parent_id {
                match state.comments.get(parent) {
                    Some(c) if c.media == media_id && c.parent.is_none() => {}
                    _ => return Err(Error::not_found("top-level comment on this media", parent)),
                }
            }
            let account = media.owner.clone();
            let igsid = state.igsid(&person, &account);
            let id = state.new_comment_id();
            let now = state.now();
            state.comments.insert(
                id.clone(),
                Comment {
                    id: id.clone(),
                    media: media_id.clone(),
                    author: Author::Person(person.clone()),
                    text: text.clone(),
                    created_ms: now,
                    hidden: false,
                    deleted: false,
                    parent: parent_id.clone(),
                    private_replied: false,
                },
            );
            let mut value = json!({
                "id": id,
                "from": { "id": igsid, "username": person },
                "text": text,
                "media": { "id": media_id, "media_product_type": media.kind.product_type() },
            });
            if let Some(parent) = parent_id {
                value["parent_id"] = json!(parent);
            }
            notify(
                state,
                &account,
                changes_entry(&account, now, "comments", value),
            );
            Ok(ActionOutcome { id, igsid })
        }
        Action::CommentMention { person, account } => {
            let account = account_of(state, &account)?;
            let igsid = state.igsid(&person, &account);
            let comment_id = state.new_comment_id();
            let media_id = state.new_media_id();
            let now = state.now();
            let value = json!({ "comment_id": comment_id, "media_id": media_id });
            notify(
                state,
                &account,
                changes_entry(&account, now, "mentions", value),
            );
            Ok(ActionOutcome {
                id: comment_id,
                igsid,
            })
        }
        Action::Dm {
            person,
            account,
            text,
        } => {
            let account = account_of(state, &account)?;
            if text.is_empty() {
                return Err(Error::invalid("a DM needs text"));
            }
            let (mid, igsid) = person_message(state, &account, &person, Some(text.clone()));
            inbound(
                state,
                &account,
                &igsid,
                "message",
                json!({ "mid": mid, "text": text }),
            );
            Ok(ActionOutcome { id: mid, igsid })
        }
        Action::QuickReply {
            person,
            account,
            title,
            payload,
        } => {
            let account = account_of(state, &account)?;
            let (mid, igsid) = person_message(state, &account, &person, Some(title.clone()));
            let value = json!({ "mid": mid, "text": title, "quick_reply": { "payload": payload } });
            inbound(state, &account, &igsid, "message", value);
            Ok(ActionOutcome { id: mid, igsid })
        }
        Action::StoryReply {
            person,
            account,
            story_id,
            text,
        } => {
            let account = account_of(state, &account)?;
            let story = match story_id {
                Some(id) => match state.media.get(&id) {
                    Some(m) if m.owner == account => id,
                    _ => return Err(Error::not_found("story of this account", &id)),
                },
                None => state.new_media_id(),
            };
            let (mid, igsid) = person_message(state, &account, &person, Some(text.clone()));
            let value = json!({
                "mid": mid,
                "text": text,
                "reply_to": { "story": { "url": format!("https://lookaside.sim.invalid/story/{story}"), "id": story } },
            });
            inbound(state, &account, &igsid, "message", value);
            Ok(ActionOutcome { id: mid, igsid })
        }
        Action::StoryMention { person, account } => {
            let account = account_of(state, &account)?;
            let (mid, igsid) = person_message(state, &account, &person, None);
            let value = json!({
                "mid": mid,
                "attachments": [{ "type": "story_mention", "payload": { "url": format!("https://lookaside.sim.invalid/mention/{mid}") } }],
            });
            inbound(state, &account, &igsid, "message", value);
            Ok(ActionOutcome { id: mid, igsid })
        }
        Action::Postback {
            person,
            account,
            title,
            payload,
        } => {
            let account = account_of(state, &account)?;
            let conv = state.conversation(&account, &person);
            let igsid = state.igsid(&person, &account);
            state
                .ensure_person(&person)
                .consented
                .insert(account.clone());
            let mid = state.new_mid();
            let now = state.now();
            if let Some(c) = state.conversations.get_mut(&conv) {
                c.last_inbound_ms = Some(now);
                c.updated_ms = now;
            }
            inbound(
                state,
                &account,
                &igsid,
                "postback",
                json!({ "mid": mid, "title": title, "payload": payload }),
            );
            Ok(ActionOutcome { id: mid, igsid })
        }
        Action::React {
            person,
            account,
            mid,
            reaction,
        } => {
            let account = account_of(state, &account)?;
            let igsid = state.igsid(&person, &account);
            message_in_conversation(state, &account, &igsid, &mid)?;
            let reaction = reaction.unwrap_or_else(|| "love".to_owned());
            let value = json!({ "mid": mid, "action": "react", "reaction": reaction, "emoji": emoji(&reaction) });
            inbound(state, &account, &igsid, "reaction", value);
            Ok(ActionOutcome { id: mid, igsid })
        }
        Action::Unreact {
            person,
            account,
            mid,
        } => {
            let account = account_of(state, &account)?;
            let igsid = state.igsid(&person, &account);
            message_in_conversation(state, &account, &igsid, &mid)?;
            inbound(
                state,
                &account,
                &igsid,
                "reaction",
                json!({ "mid": mid, "action": "unreact" }),
            );
            Ok(ActionOutcome { id: mid, igsid })
        }
        Action::Unsend {
            person,
            account,
            mid,
        } => {
            let account = account_of(state, &account)?;
            let igsid = state.igsid(&person, &account);
            if message_in_conversation(state, &account, &igsid, &mid)? {
                return Err(Error::invalid(
                    "a person can only unsend their own messages",
                ));
            }
            if let Some(m) = state.messages.get_mut(&mid) {
                m.deleted = true;
            }
            inbound(
                state,
                &account,
                &igsid,
                "message",
                json!({ "mid": mid, "is_deleted": true }),
            );
            Ok(ActionOutcome { id: mid, igsid })
        }
        Action::Read {
            person,
            account,
            mid,
        } => {
            let account = account_of(state, &account)?;
            let igsid = state.igsid(&person, &account);
            let mid = match mid {
                Some(mid) => {
                    message_in_conversation(state, &account, &igsid, &mid)?;
                    mid
                }
                None => state
                    .conversation_index
                    .get(&(account.clone(), igsid.clone()))
                    .and_then(|c| state.conversations.get(c))
                    .and_then(|c| c.messages.last().cloned())
                    .ok_or_else(|| Error::invalid("the conversation has no message to read"))?,
            };
            inbound(state, &account, &igsid, "read", json!({ "mid": mid }));
            Ok(ActionOutcome { id: mid, igsid })
        }
    }
}

pub(crate) fn create_account(state: &mut State, spec: &AccountSpec) -> Result<AccountInfo, Error> {
    if spec.username.trim().is_empty() {
        return Err(Error::invalid("an account needs a username"));
    }
    if state.accounts.values().any(|a| a.username == spec.username) {
        return Err(Error::invalid(format!(
            "an account named `{}` exists already",
            spec.username
        )));
    }
    let id = state.create_account(&spec.username, spec.name.as_deref(), spec.subscribed);
    let scopes = spec.scopes.clone().unwrap_or_else(all_scopes);
    let (token, expires) = state.issue_token(&id, scopes, true);
    let app_scoped_id = state
        .accounts
        .get(&id)
        .map(|a| a.app_scoped_id.clone())
        .unwrap_or_default();
    Ok(AccountInfo {
        ig_user_id: id,
        app_scoped_id,
        username: spec.username.clone(),
        access_token: token,
        expires_at: to_time(expires),
        app_id: state.app_id.clone(),
        app_secret: state.app_secret.clone(),
    })
}

pub(crate) fn add_media(
    state: &mut State,
    account: &str,
    spec: &MediaSpec,
) -> Result<String, Error> {
    let account = account_of(state, account)?;
    let id = state.new_media_id();
    let now = state.now();
    let mut children = Vec::new();
    if spec.kind == crate::model::MediaKind::Carousel {
        for _ in 0..spec.children.unwrap_or(2).clamp(2, 10) {
            let child = state.new_media_id();
            state.media.insert(
                child.clone(),
                Media {
                    id: child.clone(),
                    owner: account.clone(),
                    kind: crate::model::MediaKind::Post,
                    caption: None,
                    created_ms: now,
                    comments_enabled: false,
                    children: Vec::new(),
                    child: true,
                    shortcode: format!("SiM{child}"),
                },
            );
            children.push(child);
        }
    }
    state.media.insert(
        id.clone(),
        Media {
            id: id.clone(),
            owner: account.clone(),
            kind: spec.kind,
            caption: spec.caption.clone(),
            created_ms: now,
            comments_enabled: true,
            children,
            child: false,
            shortcode: format!("SiM{id}"),
        },
    );
    if let Some(a) = state.accounts.get_mut(&account) {
        a.media.push(id.clone());
    }
    Ok(id)
}

pub(crate) fn add_person(state: &mut State, spec: &PersonSpec) -> Result<(), Error> {
    if spec.username.trim().is_empty() {
        return Err(Error::invalid("a person needs a username"));
    }
    let person = state.ensure_person(&spec.username);
    person.name = spec.name.clone();
    person.follower_count = spec.follower_count;
    person.follows_business = spec.follows_business;
    person.followed_by_business = spec.followed_by_business;
    person.verified = spec.verified;
    Ok(())
}

/// The person removes the app: every token answers 190/458, the webhook subscription ends,
/// and the deauthorize callback is queued.
pub(crate) fn revoke_app(state: &mut State, account: &str) -> Result<(), Error> {
    let account = account_of(state, account)?;
    for token in state.tokens.values_mut().filter(|t| t.account == account) {
        token.invalidated = Some(458);
    }
    let mut app_scoped = String::new();
    if let Some(a) = state.accounts.get_mut(&account) {
        a.authorized = false;
        a.subscribed = None;
        app_scoped = a.app_scoped_id.clone();
    }
    if state.deauthorize_url.is_some() {
        let issued = state.now() / 1000;
        let signed = webhook_verify::signed_request::SignedRequest::new(app_scoped, issued)
            .encode(state.app_secret.as_bytes())
            .map_err(|e| Error::invalid(format!("could not sign the deauthorize callback: {e}")))?;
        let form = url::form_urlencoded::Serializer::new(String::new())
            .append_pair("signed_request", &signed)
            .finish();
        state.enqueue(Outgoing::Deauthorize(form));
    }
    Ok(())
}

/// Every token of the account expires now (190/463).
pub(crate) fn expire_tokens(state: &mut State, account: &str) -> Result<(), Error> {
    let account = account_of(state, account)?;
    let now = state.now();
    for token in state.tokens.values_mut().filter(|t| t.account == account) {
        token.expires_ms = token.expires_ms.min(now);
    }
    Ok(())
}

/// The person changed their password: every token answers 190/460.
pub(crate) fn change_password(state: &mut State, account: &str) -> Result<(), Error> {
    let account = account_of(state, account)?;
    for token in state.tokens.values_mut().filter(|t| t.account == account) {
        token.invalidated = Some(460);
    }
    Ok(())
}

/// A new long-lived token for the account with these scopes.
pub(crate) fn issue_token(
    state: &mut State,
    account: &str,
    scopes: Vec<String>,
) -> Result<String, Error> {
    let account = account_of(state, account)?;
    Ok(state.issue_token(&account, scopes, true).0)
}
