//! Contacts as a CRM: profiles from the User Profile API, tags, custom fields, pipeline stages
//! and the history of stage moves (migration `0010_crm.sql`).
//!
//! The contact rows themselves are automation-core's (`contacts`, written by the inbox worker);
//! everything here hangs off a contact (`account`, `contact` = IGSID) or, for the field and
//! stage definitions, off an organization (`org_id`). Deleting a contact deletes its profile,
//! tags, field values, stage and history (declared in [`super::privacy`]).
//!
//! # Consent for profiles
//!
//! The User Profile API answers only for a person who messaged the account (or tapped an ice
//! breaker or a persistent-menu item); for a commenter who never messaged it answers "User
//! consent is required". [`has_messaged`] decides this before any call, from the `events`
//! table: the contact has an inbound event of a kind that opens a conversation (`message`,
//! `story_reply`, `quick_reply`, `postback`, `ice_breaker`). Comments, mentions, reactions and
//! referrals do not count. Since retention may delete old events, a profile the platform
//! already answered for (`contact_profiles.fetched_at` set) counts as consent too.
//!
//! # Expiring pictures
//!
//! `profile_pic` is a CDN URL that expires within days. Its expiry is the URL's `oe` parameter
//! (hexadecimal Unix seconds, as Meta's CDN writes it) when present, else
//! [`PROFILE_PIC_DEFAULT_TTL_MS`] after the fetch, never more than [`PROFILE_PIC_MAX_TTL_MS`]
//! after it. A picture is served only while fresh ([`Profile::picture`]).
//!
//! # Tags and fields seen by automations
//!
//! Tags and field values set here are also written into the contact's automation-core body
//! (`contacts.body` `tags`/`fields`, in the same transaction), so that rule conditions see
//! them. Tags and fields a rule sets stay in that body only (shown as `automation` by
//! `GET /api/crm/contacts/{account}/{contact}`); the CRM's search covers the CRM's own tags
//! and values. Deleting a field definition deletes its CRM values.

use std::collections::BTreeMap;

use serde::Serialize;
use serde_json::Value;
use sqlx::{AnyConnection, Row};

use super::{Result, Tx};
use crate::service::error::{Error, ErrorKind};

/// How long a picture URL without an `oe` expiry is served after its fetch (24 hours).
pub const PROFILE_PIC_DEFAULT_TTL_MS: i64 = 24 * 3_600_000;
/// The longest a picture URL is served after its fetch, whatever it says (3 days).
pub const PROFILE_PIC_MAX_TTL_MS: i64 = 3 * 24 * 3_600_000;

/// Event kinds that show the person messaged the account (the User Profile API's consent).
pub const CONSENTING_KINDS: [&str; 5] = [
    "message",
    "story_reply",
    "quick_reply",
    "postback",
    "ice_breaker",
];

/// The type of a custom field; values are validated against it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FieldType {
    /// Text, 1 to 1000 characters.
    Text,
    /// A finite number (JSON number, or a string holding one).
    Number,
    /// A calendar date, `YYYY-MM-DD`.
    Date,
    /// `true` or `false`.
    Bool,
}

impl FieldType {
    /// Every type, for messages.
    pub const ALL: [FieldType; 4] = [Self::Text, Self::Number, Self::Date, Self::Bool];

    /// The type named `s` (`text`, `number`, `date`, `bool`).
    pub fn parse(s: &str) -> Option<FieldType> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// The type's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Number => "number",
            Self::Date => "date",
            Self::Bool => "bool",
        }
    }

    /// The canonical stored text of `value`, or what is wrong with it.
    pub fn canonical(self, value: &Value) -> std::result::Result<String, String> {
        let shown = || {
            let s = value.to_string();
            if s.chars().count() > 60 {
                format!("{}...", s.chars().take(60).collect::<String>())
            } else {
                s
            }
        };
        match self {
            Self::Text => match value {
                Value::String(s) if !s.trim().is_empty() && s.chars().count() <= 1000 => {
                    Ok(s.clone())
                }
                Value::String(_) => Err("a text value must have 1 to 1000 characters".into()),
                _ => Err(format!("expected text (a JSON string), got {}", shown())),
            },
            Self::Number => {
                let n = match value {
                    Value::Number(n) => n.as_f64(),
                    Value::String(s) => s.trim().parse::<f64>().ok(),
                    _ => None,
                };
                match n {
                    Some(n) if n.is_finite() => Ok(format_number(n)),
                    _ => Err(format!(
                        "expected a number (e.g. 42 or 3.5), got {}",
                        shown()
                    )),
                }
            }
            Self::Date => match value {
                Value::String(s) => chrono::NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d")
                    .map(|d| d.format("%Y-%m-%d").to_string())
                    .map_err(|_| {
                        format!(
                            "expected a date as YYYY-MM-DD (e.g. 2026-01-31), got {}",
                            shown()
                        )
                    }),
                _ => Err(format!(
                    "expected a date as a string YYYY-MM-DD (e.g. \"2026-01-31\"), got {}",
                    shown()
                )),
            },
            Self::Bool => match value {
                Value::Bool(b) => Ok(b.to_string()),
                Value::String(s) if s == "true" || s == "false" => Ok(s.clone()),
                _ => Err(format!("expected true or false, got {}", shown())),
            },
        }
    }

    /// A stored canonical value as JSON (a number, a boolean or a string).
    pub fn to_json(self, stored: &str) -> Value {
        match self {
            Self::Number => stored
                .parse::<f64>()
                .ok()
                .and_then(|n| {
                    if n.fract() == 0.0 && n.abs() < 9.0e15 {
                        Some(Value::from(n as i64))
                    } else {
                        serde_json::Number::from_f64(n).map(Value::Number)
                    }
                })
                .unwrap_or_else(|| Value::from(stored)),
            Self::Bool => Value::Bool(stored == "true"),
            Self::Text | Self::Date => Value::from(stored),
        }
    }
}

fn format_number(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 9.0e15 {
        format!("{}", n as i64)
    } else {
        format!("{n}")
    }
}

/// A custom field definition of an organization.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct FieldDef {
    /// The key (`a-z`, `0-9`, `_`).
    pub key: String,
    /// A label for people.
    pub label: String,
    /// The type values are validated against.
    #[serde(rename = "type")]
    pub field_type: FieldType,
    /// Created (Unix ms).
    pub created_at: i64,
    /// Last changed (Unix ms).
    pub updated_at: i64,
}

/// A pipeline stage of an organization.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct Stage {
    /// The id (`a-z`, `0-9`, `_`, `-`).
    pub id: String,
    /// A name for people.
    pub name: String,
    /// Its place in the pipeline, from 0.
    pub position: i64,
}

/// Whether `s` is a key or stage id: 1 to 64 of `a-z`, `0-9`, `_`, `-`.
pub fn is_slug(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 64
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_' || c == '-')
}

/// A tag as stored (trimmed), or what is wrong with it.
pub fn valid_tag(tag: &str) -> std::result::Result<String, String> {
    let t = tag.trim();
    if t.is_empty() || t.chars().count() > 100 || t.chars().any(char::is_control) {
        return Err("a tag must have 1 to 100 characters and no control characters".into());
    }
    Ok(t.to_owned())
}

/// The stored User Profile API answer of a contact.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, Default)]
pub struct Profile {
    /// The name.
    pub name: Option<String>,
    /// The username.
    pub username: Option<String>,
    /// The picture URL as fetched (serve [`Profile::picture`] instead).
    #[serde(skip)]
    pub profile_pic: Option<String>,
    /// When the picture URL was fetched (Unix ms).
    pub profile_pic_fetched_at: Option<i64>,
    /// When the picture URL expires (Unix ms).
    pub profile_pic_expires_at: Option<i64>,
    /// Followers.
    pub follower_count: Option<i64>,
    /// Whether the person follows the account.
    pub is_user_follow_business: Option<bool>,
    /// Whether the account follows the person.
    pub is_business_follow_user: Option<bool>,
    /// Whether the person is verified.
    pub is_verified_user: Option<bool>,
    /// The last successful fetch (Unix ms).
    pub fetched_at: Option<i64>,
    /// The last attempt (Unix ms).
    pub attempted_at: i64,
    /// The last attempt's failure kind (`consent_required`, ...), `None` when it succeeded.
    pub error_kind: Option<String>,
    /// The last attempt's failure, in words.
    pub error_message: Option<String>,
}

impl Profile {
    /// The picture URL when it is still fresh at `now` (Unix ms); never a stale one.
    pub fn picture(&self, now: i64) -> Option<&str> {
        match (&self.profile_pic, self.profile_pic_expires_at) {
            (Some(url), Some(expires)) if expires > now => Some(url),
            _ => None,
        }
    }

    /// Whether a picture was fetched and has expired at `now`.
    pub fn picture_stale(&self, now: i64) -> bool {
        self.profile_pic.is_some() && self.picture(now).is_none()
    }
}

/// When a picture URL fetched at `fetched` (Unix ms) expires: its `oe` parameter (hexadecimal
/// Unix seconds) when present, else [`PROFILE_PIC_DEFAULT_TTL_MS`] later; never more than
/// [`PROFILE_PIC_MAX_TTL_MS`] later.
pub fn picture_expiry(url: &str, fetched: i64) -> i64 {
    let oe = url::Url::parse(url).ok().and_then(|u| {
        u.query_pairs()
            .find(|(k, _)| k == "oe")
            .and_then(|(_, v)| i64::from_str_radix(&v, 16).ok())
    });
    let expiry = oe.map_or(fetched.saturating_add(PROFILE_PIC_DEFAULT_TTL_MS), |s| {
        s.saturating_mul(1000)
    });
    expiry.min(fetched.saturating_add(PROFILE_PIC_MAX_TTL_MS))
}

fn opt_bool(v: Option<i64>) -> Option<bool> {
    v.map(|n| n != 0)
}

/// Whether the contact exists in the account.
pub async fn contact_exists(
    conn: &mut AnyConnection,
    account: &str,
    contact: &str,
) -> Result<bool> {
    let n: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM contacts WHERE account = $1 AND id = $2")
        .bind(account)
        .bind(contact)
        .fetch_one(conn)
        .await?;
    Ok(n > 0)
}

/// Whether the contact messaged the account (the User Profile API's consent; see the
/// [module docs](self)).
pub async fn has_messaged(conn: &mut AnyConnection, account: &str, contact: &str) -> Result<bool> {
    let n: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM events WHERE account = $1 AND contact = $2 \
         AND kind IN ('message', 'story_reply', 'quick_reply', 'postback', 'ice_breaker')",
    )
    .bind(account)
    .bind(contact)
    .fetch_one(&mut *conn)
    .await?;
    if n > 0 {
        return Ok(true);
    }
    let answered: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM contact_profiles WHERE account = $1 AND contact = $2 AND fetched_at IS NOT NULL",
    )
    .bind(account)
    .bind(contact)
    .fetch_one(conn)
    .await?;
    Ok(answered > 0)
}

/// The stored profile of a contact.
pub async fn profile(
    conn: &mut AnyConnection,
    account: &str,
    contact: &str,
) -> Result<Option<Profile>> {
    let row = sqlx::query(
        "SELECT name, username, profile_pic, profile_pic_fetched_at, profile_pic_expires_at, \
         follower_count, is_user_follow_business, is_business_follow_user, is_verified_user, \
         fetched_at, attempted_at, error_kind, error_message \
         FROM contact_profiles WHERE account = $1 AND contact = $2",
    )
    .bind(account)
    .bind(contact)
    .fetch_optional(conn)
    .await?;
    let Some(r) = row else { return Ok(None) };
    Ok(Some(Profile {
        name: r.try_get("name")?,
        username: r.try_get("username")?,
        profile_pic: r.try_get("profile_pic")?,
        profile_pic_fetched_at: r.try_get("profile_pic_fetched_at")?,
        profile_pic_expires_at: r.try_get("profile_pic_expires_at")?,
        follower_count: r.try_get("follower_count")?,
        is_user_follow_business: opt_bool(r.try_get("is_user_follow_business")?),
        is_business_follow_user: opt_bool(r.try_get("is_business_follow_user")?),
        is_verified_user: opt_bool(r.try_get("is_verified_user")?),
        fetched_at: r.try_get("fetched_at")?,
        attempted_at: r.try_get("attempted_at")?,
        error_kind: r.try_get("error_kind")?,
        error_message: r.try_get("error_message")?,
    }))
}

/// Stores a successful User Profile API answer fetched at `now`.
pub async fn record_profile(
    tx: &mut Tx,
    account: &str,
    contact: &str,
    p: &instagram_graph::model::UserProfile,
    now: i64,
) -> Result<()> {
    let expires = p.profile_pic.as_deref().map(|u| picture_expiry(u, now));
    let pic_fetched = p.profile_pic.as_ref().map(|_| now);
    let b = |v: Option<bool>| v.map(i64::from);
    sqlx::query(
        "INSERT INTO contact_profiles (account, contact, name, username, profile_pic, \
         profile_pic_fetched_at, profile_pic_expires_at, follower_count, is_user_follow_business, \
         is_business_follow_user, is_verified_user, fetched_at, attempted_at, error_kind, error_message) \
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $12, NULL, NULL) \
         ON CONFLICT (account, contact) DO UPDATE SET name = excluded.name, \
         username = excluded.username, profile_pic = excluded.profile_pic, \
         profile_pic_fetched_at = excluded.profile_pic_fetched_at, \
         profile_pic_expires_at = excluded.profile_pic_expires_at, \
         follower_count = excluded.follower_count, \
         is_user_follow_business = excluded.is_user_follow_business, \
         is_business_follow_user = excluded.is_business_follow_user, \
         is_verified_user = excluded.is_verified_user, fetched_at = excluded.fetched_at, \
         attempted_at = excluded.attempted_at, error_kind = NULL, error_message = NULL",
    )
    .bind(account)
    .bind(contact)
    .bind(&p.name)
    .bind(&p.username)
    .bind(&p.profile_pic)
    .bind(pic_fetched)
    .bind(expires)
    .bind(p.follower_count.map(|n| i64::try_from(n).unwrap_or(i64::MAX)))
    .bind(b(p.is_user_follow_business))
    .bind(b(p.is_business_follow_user))
    .bind(b(p.is_verified_user))
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// Records a refused or failed profile fetch (what was fetched before is kept; its picture is
/// served only while fresh).
pub async fn record_profile_error(
    tx: &mut Tx,
    account: &str,
    contact: &str,
    kind: &str,
    message: &str,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO contact_profiles (account, contact, attempted_at, error_kind, error_message) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (account, contact) DO UPDATE SET \
         attempted_at = excluded.attempted_at, error_kind = excluded.error_kind, \
         error_message = excluded.error_message",
    )
    .bind(account)
    .bind(contact)
    .bind(now)
    .bind(kind)
    .bind(message)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The custom fields of an organization, by key.
pub async fn fields(conn: &mut AnyConnection, org: &str) -> Result<Vec<FieldDef>> {
    let rows = sqlx::query(
        "SELECT key, label, type, created_at, updated_at FROM crm_fields WHERE org_id = $1 ORDER BY key",
    )
    .bind(org)
    .fetch_all(conn)
    .await?;
    let mut out = Vec::new();
    for r in &rows {
        let ty: String = r.try_get("type")?;
        out.push(FieldDef {
            key: r.try_get("key")?,
            label: r.try_get("label")?,
            field_type: FieldType::parse(&ty).unwrap_or(FieldType::Text),
            created_at: r.try_get("created_at")?,
            updated_at: r.try_get("updated_at")?,
        });
    }
    Ok(out)
}

/// The custom field `key` of an organization.
pub async fn field(conn: &mut AnyConnection, org: &str, key: &str) -> Result<Option<FieldDef>> {
    Ok(fields(conn, org).await?.into_iter().find(|f| f.key == key))
}

/// Defines (or renames) the custom field `key`. Changing the type of a field that has values is
/// a [`ErrorKind::Conflict`]: the values were validated against the old type.
pub async fn put_field(
    tx: &mut Tx,
    org: &str,
    key: &str,
    label: &str,
    ty: FieldType,
    now: i64,
) -> Result<FieldDef> {
    // definitions of one organization change one at a time, and not while a value is set
    super::teams::lock_org(tx, org).await?;
    if let Some(old) = field(tx, org, key).await? {
        if old.field_type != ty {
            let n: i64 = sqlx::query_scalar(
                "SELECT COUNT(*) FROM contact_field_values v JOIN accounts a ON a.id = v.account \
                 WHERE a.org_id = $1 AND v.field = $2",
            )
            .bind(org)
            .bind(key)
            .fetch_one(&mut **tx)
            .await?;
            if n > 0 {
                return Err(Error::new(
                    ErrorKind::Conflict,
                    format!(
                        "field `{key}` is of type {} and {n} contact(s) have a value; clear them \
                         or define a new field to change the type",
                        old.field_type.as_str()
                    ),
                ));
            }
        }
    }
    sqlx::query(
        "INSERT INTO crm_fields (org_id, key, label, type, created_at, updated_at) \
         VALUES ($1, $2, $3, $4, $5, $5) ON CONFLICT (org_id, key) DO UPDATE SET \
         label = excluded.label, type = excluded.type, updated_at = excluded.updated_at",
    )
    .bind(org)
    .bind(key)
    .bind(label)
    .bind(ty.as_str())
    .bind(now)
    .execute(&mut **tx)
    .await?;
    field(tx, org, key).await?.ok_or_else(|| {
        Error::new(
            ErrorKind::Database,
            "the field vanished after it was defined",
        )
    })
}

/// Inside a change of a contact: takes the organization's lock (so that definitions cannot
/// change until the transaction ends) and checks that field `key` still exists with type `ty`
/// (the value was validated against it before the transaction).
pub async fn check_field(tx: &mut Tx, org: &str, key: &str, ty: FieldType) -> Result<()> {
    super::teams::lock_org(tx, org).await?;
    match field(tx, org, key).await? {
        Some(def) if def.field_type == ty => Ok(()),
        Some(def) => Err(Error::new(
            ErrorKind::Conflict,
            format!(
                "field `{key}` became of type {} meanwhile; send a value of that type",
                def.field_type.as_str()
            ),
        )),
        None => Err(Error::new(
            ErrorKind::NotFound,
            format!("no custom field `{key}` (it was deleted meanwhile)"),
        )),
    }
}

/// Inside a change of a contact: takes the organization's lock and checks that stage `id`
/// still exists.
pub async fn check_stage(tx: &mut Tx, org: &str, id: &str) -> Result<()> {
    super::teams::lock_org(tx, org).await?;
    if stages(tx, org).await?.iter().any(|s| s.id == id) {
        Ok(())
    } else {
        Err(Error::new(
            ErrorKind::Conflict,
            format!("pipeline stage `{id}` was removed meanwhile; see GET /api/crm/stages"),
        ))
    }
}

/// Deletes the custom field `key` and its values in the organization's accounts; whether it
/// existed.
pub async fn delete_field(tx: &mut Tx, org: &str, key: &str) -> Result<bool> {
    super::teams::lock_org(tx, org).await?;
    sqlx::query(
        "DELETE FROM contact_field_values WHERE field = $1 AND account IN \
         (SELECT id FROM accounts WHERE org_id = $2)",
    )
    .bind(key)
    .bind(org)
    .execute(&mut **tx)
    .await?;
    let done = sqlx::query("DELETE FROM crm_fields WHERE org_id = $1 AND key = $2")
        .bind(org)
        .bind(key)
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected() > 0)
}

/// The pipeline stages of an organization, in order.
pub async fn stages(conn: &mut AnyConnection, org: &str) -> Result<Vec<Stage>> {
    let rows = sqlx::query(
        "SELECT id, name, position FROM crm_stages WHERE org_id = $1 ORDER BY position, id",
    )
    .bind(org)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Stage {
                id: r.try_get("id")?,
                name: r.try_get("name")?,
                position: r.try_get("position")?,
            })
        })
        .collect()
}

/// Replaces the pipeline of an organization with `stages` (id, name), in order. Removing a
/// stage that contacts are in is a [`ErrorKind::Conflict`]: move them first.
pub async fn put_stages(
    tx: &mut Tx,
    org: &str,
    new: &[(String, String)],
    now: i64,
) -> Result<Vec<Stage>> {
    // the pipeline of one organization changes one at a time, and not while a contact moves
    super::teams::lock_org(tx, org).await?;
    let old = stages(tx, org).await?;
    for s in old
        .iter()
        .filter(|s| !new.iter().any(|(id, _)| *id == s.id))
    {
        let n: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM contact_stages c JOIN accounts a ON a.id = c.account \
             WHERE a.org_id = $1 AND c.stage = $2",
        )
        .bind(org)
        .bind(&s.id)
        .fetch_one(&mut **tx)
        .await?;
        if n > 0 {
            return Err(Error::new(
                ErrorKind::Conflict,
                format!(
                    "stage `{}` still holds {n} contact(s); move them to another stage before removing it",
                    s.id
                ),
            ));
        }
    }
    for s in old
        .iter()
        .filter(|s| !new.iter().any(|(id, _)| *id == s.id))
    {
        sqlx::query("DELETE FROM crm_stages WHERE org_id = $1 AND id = $2")
            .bind(org)
            .bind(&s.id)
            .execute(&mut **tx)
            .await?;
    }
    // kept stages keep their creation time; names and order are the new ones
    for (i, (id, name)) in new.iter().enumerate() {
        sqlx::query(
            "INSERT INTO crm_stages (org_id, id, name, position, created_at) VALUES ($1, $2, $3, $4, $5) \
             ON CONFLICT (org_id, id) DO UPDATE SET name = excluded.name, position = excluded.position",
        )
        .bind(org)
        .bind(id)
        .bind(name)
        .bind(i64::try_from(i).unwrap_or(i64::MAX))
        .bind(now)
        .execute(&mut **tx)
        .await?;
    }
    stages(tx, org).await
}

/// Adds a tag; whether it was new.
pub async fn add_tag(
    tx: &mut Tx,
    account: &str,
    contact: &str,
    tag: &str,
    now: i64,
) -> Result<bool> {
    let done = sqlx::query(
        "INSERT INTO contact_tags (account, contact, tag, created_at) VALUES ($1, $2, $3, $4) \
         ON CONFLICT (account, contact, tag) DO NOTHING",
    )
    .bind(account)
    .bind(contact)
    .bind(tag)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    let added = done.rows_affected() > 0;
    mirror(tx, account, contact, |c| {
        c.tags.insert(tag.to_owned());
    })
    .await?;
    Ok(added)
}

/// Removes a tag; whether it was there.
pub async fn remove_tag(tx: &mut Tx, account: &str, contact: &str, tag: &str) -> Result<bool> {
    let done =
        sqlx::query("DELETE FROM contact_tags WHERE account = $1 AND contact = $2 AND tag = $3")
            .bind(account)
            .bind(contact)
            .bind(tag)
            .execute(&mut **tx)
            .await?;
    mirror(tx, account, contact, |c| {
        c.tags.remove(tag);
    })
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Sets a field value (already validated and canonical).
pub async fn set_value(
    tx: &mut Tx,
    account: &str,
    contact: &str,
    field: &str,
    value: &str,
    now: i64,
) -> Result<()> {
    sqlx::query(
        "INSERT INTO contact_field_values (account, contact, field, value, updated_at) \
         VALUES ($1, $2, $3, $4, $5) ON CONFLICT (account, contact, field) DO UPDATE SET \
         value = excluded.value, updated_at = excluded.updated_at",
    )
    .bind(account)
    .bind(contact)
    .bind(field)
    .bind(value)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    mirror(tx, account, contact, |c| {
        c.fields.insert(field.to_owned(), value.to_owned());
    })
    .await
}

/// Clears a field value; whether there was one.
pub async fn clear_value(tx: &mut Tx, account: &str, contact: &str, field: &str) -> Result<bool> {
    let done = sqlx::query(
        "DELETE FROM contact_field_values WHERE account = $1 AND contact = $2 AND field = $3",
    )
    .bind(account)
    .bind(contact)
    .bind(field)
    .execute(&mut **tx)
    .await?;
    mirror(tx, account, contact, |c| {
        c.fields.remove(field);
    })
    .await?;
    Ok(done.rows_affected() > 0)
}

/// Who moved a contact between stages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mover<'a> {
    /// The member (`users.id`), when a member acted.
    pub user: Option<&'a str>,
    /// How: `session`, `api_key` or `operator`.
    pub via: &'a str,
}

/// Moves a contact to `to` (`None`: out of the pipeline) and records the move; the stage it
/// was in. Nothing is recorded when it already is there.
pub async fn move_stage(
    tx: &mut Tx,
    account: &str,
    contact: &str,
    to: Option<&str>,
    by: &Mover<'_>,
    now: i64,
) -> Result<Option<String>> {
    let from: Option<String> =
        sqlx::query_scalar("SELECT stage FROM contact_stages WHERE account = $1 AND contact = $2")
            .bind(account)
            .bind(contact)
            .fetch_optional(&mut **tx)
            .await?;
    if from.as_deref() == to {
        return Ok(from);
    }
    match to {
        Some(stage) => {
            sqlx::query(
                "INSERT INTO contact_stages (account, contact, stage, updated_at) VALUES ($1, $2, $3, $4) \
                 ON CONFLICT (account, contact) DO UPDATE SET stage = excluded.stage, updated_at = excluded.updated_at",
            )
            .bind(account)
            .bind(contact)
            .bind(stage)
            .bind(now)
            .execute(&mut **tx)
            .await?;
        }
        None => {
            sqlx::query("DELETE FROM contact_stages WHERE account = $1 AND contact = $2")
                .bind(account)
                .bind(contact)
                .execute(&mut **tx)
                .await?;
        }
    }
    sqlx::query(
        "INSERT INTO contact_stage_history (account, contact, from_stage, to_stage, moved_by, moved_via, at) \
         VALUES ($1, $2, $3, $4, $5, $6, $7)",
    )
    .bind(account)
    .bind(contact)
    .bind(&from)
    .bind(to)
    .bind(by.user)
    .bind(by.via)
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(from)
}

/// Writes a change into the contact's automation-core body, so that rules see it (on
/// PostgreSQL under the contact's lock, like the inbox worker's decisions).
async fn mirror(
    tx: &mut Tx,
    account: &str,
    contact: &str,
    change: impl FnOnce(&mut automation_core::Contact),
) -> Result<()> {
    tx.lock_contact(account, contact).await?;
    let body: Option<String> =
        sqlx::query_scalar("SELECT body FROM contacts WHERE account = $1 AND id = $2")
            .bind(account)
            .bind(contact)
            .fetch_optional(&mut **tx)
            .await?;
    // a body automation-core cannot read is left alone (the CRM tables hold the change)
    let Some(mut c) = body.and_then(|b| serde_json::from_str::<automation_core::Contact>(&b).ok())
    else {
        return Ok(());
    };
    change(&mut c);
    let body = serde_json::to_string(&c)
        .map_err(|e| Error::new(ErrorKind::Database, format!("contact body: {e}")))?;
    sqlx::query("UPDATE contacts SET body = $1 WHERE account = $2 AND id = $3")
        .bind(body)
        .bind(account)
        .bind(contact)
        .execute(&mut **tx)
        .await?;
    Ok(())
}

/// A stage move as listed.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct StageMove {
    /// The stage left (`None`: none).
    pub from: Option<String>,
    /// The stage entered (`None`: out of the pipeline).
    pub to: Option<String>,
    /// The member who moved it (`users.id`), `None` for API keys and operators.
    pub moved_by: Option<String>,
    /// `session`, `api_key` or `operator`.
    pub moved_via: String,
    /// When (Unix ms).
    pub at: i64,
}

/// A contact as listed.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ContactSummary {
    /// The account.
    pub account: String,
    /// The IGSID.
    pub id: String,
    /// The username (from events or the profile).
    pub username: Option<String>,
    /// The name (from the profile).
    pub name: Option<String>,
    /// The CRM tags.
    pub tags: Vec<String>,
    /// The custom field values, typed.
    pub fields: BTreeMap<String, Value>,
    /// The pipeline stage.
    pub stage: Option<String>,
    /// The last event (Unix ms).
    pub last_interaction: i64,
}

/// What to list.
#[derive(Debug, Clone, Default)]
pub struct Filter {
    /// Only this account's contacts (one of the organization's).
    pub account: Option<String>,
    /// Only contacts with this tag.
    pub tag: Option<String>,
    /// Only contacts in this stage.
    pub stage: Option<String>,
    /// Only contacts whose field `.0` has the canonical value `.1`.
    pub field: Option<(String, String)>,
    /// Only contacts whose username or name contains this (case-insensitive).
    pub q: Option<String>,
    /// After this `ACCOUNT:IGSID` (the previous page's `next`).
    pub after: Option<(String, String)>,
    /// At most this many (1 to 200).
    pub limit: i64,
}

/// Contacts of organization `org` matching `f`, ordered by account then id, and the cursor of
/// the next page (`ACCOUNT:IGSID`) when there may be more.
pub async fn list(
    conn: &mut AnyConnection,
    org: &str,
    f: &Filter,
) -> Result<(Vec<ContactSummary>, Option<String>)> {
    let like = f.q.as_deref().map(|q| {
        let escaped: String = q
            .to_lowercase()
            .chars()
            .flat_map(|c| match c {
                '\\' | '%' | '_' => vec!['\\', c],
                c => vec![c],
            })
            .collect();
        format!("%{escaped}%")
    });
    let (field, value) = f.field.clone().unwrap_or_default();
    let (after_account, after_id) = f.after.clone().unwrap_or_default();
    let limit = f.limit.clamp(1, 200);
    let rows = sqlx::query(
        "SELECT c.account, c.id, c.username, c.last_interaction, p.name, p.username AS p_username, s.stage \
         FROM contacts c JOIN accounts a ON a.id = c.account AND a.org_id = $1 \
         LEFT JOIN contact_profiles p ON p.account = c.account AND p.contact = c.id \
         LEFT JOIN contact_stages s ON s.account = c.account AND s.contact = c.id \
         WHERE ($2 = '' OR c.account = $2) \
         AND ($3 = '' OR EXISTS (SELECT 1 FROM contact_tags t WHERE t.account = c.account AND t.contact = c.id AND t.tag = $3)) \
         AND ($4 = '' OR s.stage = $4) \
         AND ($5 = '' OR EXISTS (SELECT 1 FROM contact_field_values v WHERE v.account = c.account \
              AND v.contact = c.id AND v.field = $5 AND v.value = $6)) \
         AND ($7 = '' OR LOWER(COALESCE(c.username, '')) LIKE $7 ESCAPE '\\' \
              OR LOWER(COALESCE(p.username, '')) LIKE $7 ESCAPE '\\' \
              OR LOWER(COALESCE(p.name, '')) LIKE $7 ESCAPE '\\') \
         AND (c.account > $8 OR (c.account = $8 AND c.id > $9)) \
         ORDER BY c.account, c.id LIMIT $10",
    )
    .bind(org)
    .bind(f.account.clone().unwrap_or_default())
    .bind(f.tag.clone().unwrap_or_default())
    .bind(f.stage.clone().unwrap_or_default())
    .bind(field)
    .bind(value)
    .bind(like.unwrap_or_default())
    .bind(after_account)
    .bind(after_id)
    .bind(limit)
    .fetch_all(&mut *conn)
    .await?;
    let defs = fields(conn, org).await?;
    let mut out = Vec::new();
    for r in &rows {
        let account: String = r.try_get("account")?;
        let id: String = r.try_get("id")?;
        let username: Option<String> = r.try_get("username")?;
        let profile_username: Option<String> = r.try_get("p_username")?;
        out.push(ContactSummary {
            tags: Vec::new(),
            fields: BTreeMap::new(),
            username: profile_username.or(username),
            name: r.try_get("name")?,
            stage: r.try_get("stage")?,
            last_interaction: r.try_get("last_interaction")?,
            account,
            id,
        });
    }
    // tags and values of the page: one query each per account, over the page's id range
    let mut index: std::collections::HashMap<(String, String), usize> = Default::default();
    let mut ranges: BTreeMap<String, (String, String)> = BTreeMap::new();
    for (i, c) in out.iter().enumerate() {
        index.insert((c.account.clone(), c.id.clone()), i);
        let range = ranges
            .entry(c.account.clone())
            .or_insert_with(|| (c.id.clone(), c.id.clone()));
        if c.id < range.0 {
            range.0.clone_from(&c.id);
        }
        if c.id > range.1 {
            range.1.clone_from(&c.id);
        }
    }
    for (account, (first, last)) in &ranges {
        let rows = sqlx::query(
            "SELECT contact, tag FROM contact_tags WHERE account = $1 AND contact >= $2 \
             AND contact <= $3 ORDER BY contact, tag",
        )
        .bind(account)
        .bind(first)
        .bind(last)
        .fetch_all(&mut *conn)
        .await?;
        for r in &rows {
            let contact: String = r.try_get("contact")?;
            if let Some(&i) = index.get(&(account.clone(), contact)) {
                out[i].tags.push(r.try_get("tag")?);
            }
        }
        let rows = sqlx::query(
            "SELECT contact, field, value FROM contact_field_values WHERE account = $1 \
             AND contact >= $2 AND contact <= $3",
        )
        .bind(account)
        .bind(first)
        .bind(last)
        .fetch_all(&mut *conn)
        .await?;
        for r in &rows {
            let contact: String = r.try_get("contact")?;
            if let Some(&i) = index.get(&(account.clone(), contact)) {
                let field: String = r.try_get("field")?;
                let value: String = r.try_get("value")?;
                let ty = defs
                    .iter()
                    .find(|d| d.key == field)
                    .map_or(FieldType::Text, |d| d.field_type);
                out[i].fields.insert(field, ty.to_json(&value));
            }
        }
    }
    let next = if out.len() as i64 >= limit {
        out.last().map(|c| format!("{}:{}", c.account, c.id))
    } else {
        None
    };
    Ok((out, next))
}

/// The CRM tags of a contact.
pub async fn tags(conn: &mut AnyConnection, account: &str, contact: &str) -> Result<Vec<String>> {
    Ok(sqlx::query_scalar(
        "SELECT tag FROM contact_tags WHERE account = $1 AND contact = $2 ORDER BY tag",
    )
    .bind(account)
    .bind(contact)
    .fetch_all(conn)
    .await?)
}

/// The field values of a contact, typed by their definitions (`defs`).
pub async fn values(
    conn: &mut AnyConnection,
    account: &str,
    contact: &str,
    defs: &[FieldDef],
) -> Result<BTreeMap<String, Value>> {
    let rows = sqlx::query(
        "SELECT field, value FROM contact_field_values WHERE account = $1 AND contact = $2",
    )
    .bind(account)
    .bind(contact)
    .fetch_all(conn)
    .await?;
    let mut out = BTreeMap::new();
    for r in &rows {
        let field: String = r.try_get("field")?;
        let value: String = r.try_get("value")?;
        let ty = defs
            .iter()
            .find(|d| d.key == field)
            .map_or(FieldType::Text, |d| d.field_type);
        out.insert(field, ty.to_json(&value));
    }
    Ok(out)
}

/// The stage of a contact.
pub async fn stage(
    conn: &mut AnyConnection,
    account: &str,
    contact: &str,
) -> Result<Option<String>> {
    Ok(
        sqlx::query_scalar("SELECT stage FROM contact_stages WHERE account = $1 AND contact = $2")
            .bind(account)
            .bind(contact)
            .fetch_optional(conn)
            .await?,
    )
}

/// The stage moves of a contact, oldest first.
pub async fn history(
    conn: &mut AnyConnection,
    account: &str,
    contact: &str,
) -> Result<Vec<StageMove>> {
    let rows = sqlx::query(
        "SELECT from_stage, to_stage, moved_by, moved_via, at FROM contact_stage_history \
         WHERE account = $1 AND contact = $2 ORDER BY id",
    )
    .bind(account)
    .bind(contact)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(StageMove {
                from: r.try_get("from_stage")?,
                to: r.try_get("to_stage")?,
                moved_by: r.try_get("moved_by")?,
                moved_via: r.try_get("moved_via")?,
                at: r.try_get("at")?,
            })
        })
        .collect()
}

/// The contact's automation-core record (tags and fields rules set, hand-off).
pub async fn automation_contact(
    conn: &mut AnyConnection,
    account: &str,
    contact: &str,
) -> Result<Option<automation_core::Contact>> {
    let body: Option<String> =
        sqlx::query_scalar("SELECT body FROM contacts WHERE account = $1 AND id = $2")
            .bind(account)
            .bind(contact)
            .fetch_optional(conn)
            .await?;
    Ok(body.and_then(|b| serde_json::from_str(&b).ok()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn values_are_checked_against_their_type_and_stored_canonical() {
        assert_eq!(FieldType::Number.canonical(&json!(42)).unwrap(), "42");
        assert_eq!(FieldType::Number.canonical(&json!("3.50")).unwrap(), "3.5");
        assert_eq!(FieldType::Number.canonical(&json!(2.0)).unwrap(), "2");
        let e = FieldType::Number.canonical(&json!("lots")).unwrap_err();
        assert!(e.contains("expected a number") && e.contains("lots"), "{e}");
        assert_eq!(
            FieldType::Date.canonical(&json!("2026-02-28")).unwrap(),
            "2026-02-28"
        );
        assert!(FieldType::Date.canonical(&json!("2026-02-30")).is_err());
        assert!(FieldType::Date.canonical(&json!(20260228)).is_err());
        assert_eq!(FieldType::Bool.canonical(&json!(true)).unwrap(), "true");
        assert!(FieldType::Bool.canonical(&json!("yes")).is_err());
        assert!(FieldType::Text.canonical(&json!("")).is_err());
        assert!(FieldType::Text.canonical(&json!(5)).is_err());
        assert_eq!(FieldType::Number.to_json("42"), json!(42));
        assert_eq!(FieldType::Number.to_json("3.5"), json!(3.5));
        assert_eq!(FieldType::Bool.to_json("false"), json!(false));
        assert_eq!(FieldType::parse("date"), Some(FieldType::Date));
        assert_eq!(FieldType::parse("datetime"), None);
    }

    #[test]
    fn a_picture_expires_at_its_oe_parameter_within_the_bounds() {
        let fetched = 1_700_000_000_000;
        let in_an_hour = format!("https://cdn.example/p.jpg?_nc=1&oe={:X}", 1_700_003_600);
        assert_eq!(picture_expiry(&in_an_hour, fetched), 1_700_003_600_000);
        assert_eq!(
            picture_expiry("https://cdn.example/p.jpg", fetched),
            fetched + PROFILE_PIC_DEFAULT_TTL_MS
        );
        let far = format!("https://cdn.example/p.jpg?oe={:X}", 1_900_000_000);
        assert_eq!(
            picture_expiry(&far, fetched),
            fetched + PROFILE_PIC_MAX_TTL_MS
        );
        let p = Profile {
            profile_pic: Some("u".into()),
            profile_pic_expires_at: Some(10),
            ..Profile::default()
        };
        assert_eq!(p.picture(9), Some("u"));
        assert_eq!(p.picture(10), None);
        assert!(p.picture_stale(10) && !p.picture_stale(9));
    }

    #[tokio::test]
    async fn only_conversation_starting_events_count_as_consent() {
        let t = super::super::testing::temp_db().await;
        let mut conn = t.db.pool().acquire().await.unwrap();
        let event = |kind: &'static str, who: &'static str| {
            sqlx::query(
                "INSERT INTO events (account, key, inbox_id, kind, contact, occurred_at, processed_at, outcome, decision) \
                 VALUES ('A', $1, 'i', $2, $3, 1, 1, 'ignored', '{}')",
            )
            .bind(format!("{kind}:{who}"))
            .bind(kind)
            .bind(who)
        };
        for (kind, who) in [
            ("comment", "commenter"),
            ("live_comment", "commenter"),
            ("story_mention", "mentioner"),
            ("reaction", "mentioner"),
            ("referral", "mentioner"),
            ("postback", "menu_tapper"),
            ("ice_breaker", "ice_breaker"),
            ("story_reply", "story_replier"),
            ("message", "messager"),
        ] {
            event(kind, who).execute(&mut *conn).await.unwrap();
        }
        for (who, consented) in [
            ("commenter", false),
            ("mentioner", false),
            ("nobody", false),
            ("menu_tapper", true),
            ("ice_breaker", true),
            ("story_replier", true),
            ("messager", true),
        ] {
            assert_eq!(
                has_messaged(&mut conn, "A", who).await.unwrap(),
                consented,
                "{who}"
            );
            // another account's events say nothing about this one
            assert!(!has_messaged(&mut conn, "B", who).await.unwrap());
        }
        // every kind listed as consenting counts (the query and the list agree)
        for kind in CONSENTING_KINDS {
            let who = format!("by_{kind}");
            sqlx::query(
                "INSERT INTO events (account, key, inbox_id, kind, contact, occurred_at, processed_at, outcome, decision) \
                 VALUES ('A', $1, 'i', $2, $1, 1, 1, 'ignored', '{}')",
            )
            .bind(&who)
            .bind(kind)
            .execute(&mut *conn)
            .await
            .unwrap();
            assert!(has_messaged(&mut conn, "A", &who).await.unwrap(), "{kind}");
        }
        // a profile the platform gave counts too (events may be gone by retention)
        sqlx::query(
            "INSERT INTO contact_profiles (account, contact, fetched_at, attempted_at) VALUES ('A', 'commenter', 5, 5)",
        )
        .execute(&mut *conn)
        .await
        .unwrap();
        assert!(has_messaged(&mut conn, "A", "commenter").await.unwrap());
    }

    #[tokio::test]
    async fn values_and_moves_are_checked_again_against_the_definitions_in_their_transaction() {
        let t = super::super::testing::temp_db().await;
        let org = "bootstrap";
        let mut tx = t.db.begin().await.unwrap();
        put_field(&mut tx, org, "size", "Size", FieldType::Number, 1)
            .await
            .unwrap();
        put_stages(&mut tx, org, &[("lead".into(), "Lead".into())], 1)
            .await
            .unwrap();
        check_field(&mut tx, org, "size", FieldType::Number)
            .await
            .unwrap();
        check_stage(&mut tx, org, "lead").await.unwrap();
        tx.commit().await.unwrap();
        // a value validated as a number before the field became text is refused
        let mut tx = t.db.begin().await.unwrap();
        put_field(&mut tx, org, "size", "Size", FieldType::Text, 2)
            .await
            .unwrap();
        let e = check_field(&mut tx, org, "size", FieldType::Number)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Conflict);
        assert!(e.message().contains("text"), "{e:?}");
        assert!(delete_field(&mut tx, org, "size").await.unwrap());
        let e = check_field(&mut tx, org, "size", FieldType::Text)
            .await
            .unwrap_err();
        assert_eq!(e.kind(), ErrorKind::NotFound);
        // a move to a stage removed meanwhile is refused
        put_stages(&mut tx, org, &[("won".into(), "Won".into())], 2)
            .await
            .unwrap();
        let e = check_stage(&mut tx, org, "lead").await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Conflict);
        check_stage(&mut tx, org, "won").await.unwrap();
        tx.commit().await.unwrap();
    }

    #[test]
    fn slugs_and_tags_are_checked() {
        assert!(is_slug("lead_source") && is_slug("won-2"));
        assert!(!is_slug("") && !is_slug("Lead") && !is_slug("a b"));
        assert_eq!(valid_tag("  vip ").unwrap(), "vip");
        assert!(valid_tag(" ").is_err() && valid_tag("a\nb").is_err());
    }
}
