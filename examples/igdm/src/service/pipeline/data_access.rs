//! P5: only the data the configured automations need is accessed.
//!
//! Each organization chooses how much its connections may read (`organizations.data_access`):
//!
//! - `full` (the default): comments and messages, for team inboxes, CRMs and AI responders,
//!   which show conversations whether or not an automation uses them.
//! - `automations`: only what the organization's automations need ([`Needs::of`]). Comment
//!   rules that answer with private or public replies need comments only; a rule listening to
//!   messages, postbacks, quick replies, story replies, referrals, opt-ins or reactions, a DM or
//!   AI reply action, a flow, or a rule listening to everything (no `on`) needs messages. An
//!   organization without automations yet is treated as comment-only.
//!
//! What follows from the needs:
//!
//! - the connect flow asks only their permissions ([`Needs::scopes`]: no
//!   `instagram_business_manage_messages` for a comment-only configuration; private replies need
//!   only `instagram_business_manage_comments`);
//! - a connected account subscribes only their webhook fields ([`Needs::webhook_fields`]: no
//!   `messages` field);
//! - Meta delivers to an app every field the app subscribes to, whatever an account chose ("account
//!   level webhooks customization is not supported"), so message events still arrive: for an
//!   account that needs no messages, the inbox worker does not read them. Such an event is kept
//!   only as its key (for deduplication: kind, no sender, no text), its items are removed from
//!   the raw notification at once, and no contact, decision or automation state is written.
//!   Echoes and read receipts still update the delivery status of what the service sent
//!   (delivery needs them), with the echo's text removed.
//!
//! The set of such accounts is cached ([`Cache`]) and rebuilt whenever the engine is (saving
//! automations, connecting an account, changing the setting).

use std::collections::HashSet;
use std::sync::{Arc, RwLock};

use automation_core::event::EventKind;
use automation_core::rule::{Action, Rule, TriggerKind};
use instagram_graph::oauth::Scope;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sqlx::Row;

use crate::service::db::privacy::{split_notification, Part, TOMBSTONE};
use crate::service::db::{Db, Tx};
use crate::service::error::{Error, ErrorKind, Result};

/// How much an organization's connections may read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DataAccess {
    /// Comments and messages (inboxes, CRMs).
    Full,
    /// Only what the automations need.
    Automations,
}

impl DataAccess {
    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::Automations => "automations",
        }
    }
}

/// What an organization's automations need to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Needs {
    /// Comments (and mentions).
    pub comments: bool,
    /// Private messages and the other messaging events.
    pub messages: bool,
}

impl Needs {
    /// Everything (`full` access).
    pub const ALL: Needs = Needs {
        comments: true,
        messages: true,
    };

    /// What `rules` and flows (`has_flows`) need (comments when there is nothing yet).
    pub fn of<'a>(rules: impl IntoIterator<Item = &'a Rule>, has_flows: bool) -> Needs {
        let mut needs = Needs {
            comments: false,
            messages: has_flows,
        };
        for rule in rules.into_iter().filter(|r| r.enabled) {
            let everything = rule.on.is_empty();
            needs.comments |= everything
                || rule
                    .on
                    .iter()
                    .any(|t| matches!(t, TriggerKind::Comment | TriggerKind::LiveComment));
            let listens = everything
                || rule
                    .on
                    .iter()
                    .any(|t| !matches!(t, TriggerKind::Comment | TriggerKind::LiveComment));
            let sends = rule.actions.iter().any(|a| {
                matches!(
                    a,
                    Action::SendDm { .. } | Action::StartFlow { .. } | Action::AiReply { .. }
                )
            });
            needs.messages |= listens || sends;
        }
        if !needs.messages {
            needs.comments = true;
        }
        needs
    }

    /// The Instagram Login permissions to ask for.
    pub fn scopes(&self) -> Vec<Scope> {
        let mut scopes = vec![Scope::BusinessBasic];
        if self.messages {
            scopes.push(Scope::BusinessManageMessages);
        }
        if self.comments {
            scopes.push(Scope::BusinessManageComments);
        }
        scopes
    }

    /// The webhook fields to subscribe an account to.
    pub fn webhook_fields(&self) -> Vec<&'static str> {
        let mut fields = Vec::new();
        if self.comments {
            fields.push("comments");
        }
        if self.messages {
            fields.extend([
                "messages",
                "messaging_postbacks",
                "message_reactions",
                "messaging_seen",
                "messaging_referral",
            ]);
        }
        fields
    }
}

/// The data access of organization `org` (`full` for an unknown one).
pub async fn mode_of(db: &Db, org: &str) -> Result<DataAccess> {
    let mode: Option<String> =
        sqlx::query_scalar("SELECT data_access FROM organizations WHERE id = $1")
            .bind(org)
            .fetch_optional(db.pool())
            .await?;
    Ok(match mode.as_deref() {
        Some("automations") => DataAccess::Automations,
        _ => DataAccess::Full,
    })
}

/// Sets the data access of organization `org`. `NotFound` for an unknown organization.
pub async fn set_mode(db: &Db, org: &str, mode: DataAccess) -> Result<()> {
    let done = sqlx::query("UPDATE organizations SET data_access = $1 WHERE id = $2")
        .bind(mode.as_str())
        .bind(org)
        .execute(db.pool())
        .await?;
    if done.rows_affected() == 0 {
        return Err(Error::new(ErrorKind::NotFound, "no such organization"));
    }
    Ok(())
}

/// What the automations of the accounts matched by `filter` (`org` or `account`) need.
async fn needs_where(db: &Db, column: &str, value: &str) -> Result<Needs> {
    let sql = format!(
        "SELECT a.kind, a.body FROM automations a JOIN accounts c ON c.id = a.account WHERE c.{column} = $1"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(value)
        .fetch_all(db.pool())
        .await?;
    let mut rules = Vec::new();
    let mut flows = false;
    for row in rows {
        let kind: String = row.try_get("kind")?;
        let body: String = row.try_get("body")?;
        if kind == "rule" {
            match serde_json::from_str::<Rule>(&body) {
                Ok(rule) => rules.push(rule),
                // an unreadable stored rule may use anything
                Err(_) => return Ok(Needs::ALL),
            }
        } else {
            flows = true;
        }
    }
    Ok(Needs::of(&rules, flows))
}

/// What organization `org` may read: everything with `full` access, else what its automations
/// need.
pub async fn needs_of_org(db: &Db, org: &str) -> Result<Needs> {
    match mode_of(db, org).await? {
        DataAccess::Full => Ok(Needs::ALL),
        _ => needs_where(db, "org_id", org).await,
    }
}

/// Runs `change` (saving automations, setting the data-access mode) for organization `org`,
/// then, if the webhook fields the organization needs changed, subscribes its active accounts
/// to the new ones (P5: an account subscribes only the fields its automations need, also after
/// they change). A failed subscription is logged; the account's next connect subscribes again.
pub async fn keeping_subscriptions<T>(
    shared: &super::Shared,
    org: &str,
    change: impl std::future::Future<Output = Result<T>>,
) -> Result<T> {
    let before = needs_of_org(&shared.db, org).await?.webhook_fields();
    let changed = change.await?;
    let after = needs_of_org(&shared.db, org).await?.webhook_fields();
    if after != before {
        let accounts: Vec<String> = sqlx::query_scalar(
            "SELECT id FROM accounts WHERE org_id = $1 AND status = 'active' ORDER BY id",
        )
        .bind(org)
        .fetch_all(shared.db.pool())
        .await?;
        for account in accounts {
            let subscribed = match shared.client_for(&account).await {
                Ok(client) => client
                    .subscribe_webhooks(&after)
                    .await
                    .map_err(|e| e.to_string()),
                Err(e) => Err(e.to_string()),
            };
            if let Err(error) = subscribed {
                tracing::warn!(%account, %error, "re-subscribing to the needed webhook fields failed");
            }
        }
    }
    Ok(changed)
}

/// The accounts whose messages are not read: those of organizations with `automations` access
/// whose automations need no messages.
pub async fn unread_accounts(db: &Db) -> Result<HashSet<String>> {
    let orgs: Vec<String> =
        sqlx::query_scalar("SELECT id FROM organizations WHERE data_access = 'automations'")
            .fetch_all(db.pool())
            .await?;
    let mut out = HashSet::new();
    for org in orgs {
        if !needs_where(db, "org_id", &org).await?.messages {
            let accounts: Vec<String> =
                sqlx::query_scalar("SELECT id FROM accounts WHERE org_id = $1")
                    .bind(&org)
                    .fetch_all(db.pool())
                    .await?;
            out.extend(accounts);
        }
    }
    Ok(out)
}

/// The accounts whose messages are not read, as last computed.
#[derive(Debug, Default)]
pub struct Cache(RwLock<Arc<HashSet<String>>>);

impl Cache {
    /// The current set.
    pub fn get(&self) -> Arc<HashSet<String>> {
        match self.0.read() {
            Ok(set) => set.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        }
    }

    /// Computes the set again from the database.
    pub async fn refresh(&self, db: &Db) -> Result<()> {
        let set = Arc::new(unread_accounts(db).await?);
        match self.0.write() {
            Ok(mut current) => *current = set,
            Err(poisoned) => *poisoned.into_inner() = set,
        }
        Ok(())
    }
}

/// Whether an event of `kind` is left unread for an account that needs no messages: every
/// messaging event except echoes and read receipts (the delivery status of what was sent).
pub fn is_unread(kind: &EventKind) -> bool {
    !matches!(
        kind,
        EventKind::Comment { .. }
            | EventKind::LiveComment { .. }
            | EventKind::Echo { .. }
            | EventKind::Read { .. }
    )
}

/// The message id an unread event's items mention, to remove them from the raw notification.
pub fn mid_of(kind: &EventKind) -> Option<&str> {
    match kind {
        EventKind::Message { mid, .. }
        | EventKind::StoryReply { mid, .. }
        | EventKind::StoryMention { mid, .. }
        | EventKind::QuickReply { mid, .. } => Some(mid),
        EventKind::Postback { mid, .. } => mid.as_deref(),
        _ => None,
    }
}

/// Removes from raw notification `hash` the items of `account` that mention any of `ids` (the
/// unread messages' ids); a notification with nothing left keeps the tombstone.
pub async fn forget_items(tx: &mut Tx, hash: &str, account: &str, ids: &[String]) -> Result<()> {
    let body: Option<Vec<u8>> = sqlx::query_scalar("SELECT body FROM inbox WHERE id = $1")
        .bind(hash)
        .fetch_optional(&mut **tx)
        .await?;
    let Some(mut body) = body else {
        return Ok(());
    };
    let mut changed = false;
    for id in ids {
        if let Some((_, rest)) = split_notification(&body, Part::Items { account, id }) {
            let rest = rest.to_string().into_bytes();
            changed |= rest != body;
            body = rest;
        }
    }
    if !changed {
        return Ok(());
    }
    let empty = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|v| v.get("entry").and_then(Value::as_array).map(Vec::is_empty))
        .unwrap_or(false);
    if empty {
        body = TOMBSTONE.as_bytes().to_vec();
    }
    sqlx::query("UPDATE inbox SET body = $1 WHERE id = $2")
        .bind(body)
        .bind(hash)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rule(value: serde_json::Value) -> Rule {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn comment_rules_with_replies_need_comments_only() {
        let rules = [
            rule(serde_json::json!({"id": "a", "on": ["comment"],
                "actions": [{"type": "private_reply", "text": "hi"}]})),
            rule(serde_json::json!({"id": "b", "on": ["live_comment"],
                "actions": [{"type": "public_reply", "variants": ["thanks"]}]})),
        ];
        let needs = Needs::of(&rules, false);
        assert_eq!(
            needs,
            Needs {
                comments: true,
                messages: false
            }
        );
        assert_eq!(needs.webhook_fields(), vec!["comments"]);
        assert!(!needs.scopes().contains(&Scope::BusinessManageMessages));
        // nothing configured yet: comment-only
        assert_eq!(Needs::of(&[], false), needs);
    }

    #[test]
    fn message_triggers_dm_actions_flows_and_catch_all_rules_need_messages() {
        let cases = [
            serde_json::json!({"id": "m", "on": ["message"], "actions": [{"type": "add_tag", "tag": "x"}]}),
            serde_json::json!({"id": "p", "on": ["postback"], "actions": []}),
            serde_json::json!({"id": "all", "actions": [{"type": "add_tag", "tag": "x"}]}),
            serde_json::json!({"id": "dm", "on": ["comment"],
                "actions": [{"type": "send_dm", "message": {"kind": "text", "text": "hi"}}]}),
        ];
        for case in cases {
            let needs = Needs::of(&[rule(case.clone())], false);
            assert!(needs.messages, "{case}");
            assert!(needs.scopes().contains(&Scope::BusinessManageMessages));
            assert!(needs.webhook_fields().contains(&"messages"));
        }
        assert!(Needs::of(&[], true).messages);
        // a messages-only configuration needs no comments
        let dm_only = Needs::of(
            &[rule(
                serde_json::json!({"id": "m", "on": ["message"], "actions": []}),
            )],
            false,
        );
        assert!(!dm_only.comments);
        assert!(!dm_only.webhook_fields().contains(&"comments"));
    }

    #[test]
    fn disabled_rules_need_nothing() {
        let off = rule(
            serde_json::json!({"id": "m", "enabled": false, "on": ["message"], "actions": []}),
        );
        assert!(!Needs::of(&[off], false).messages);
    }
}
