//! Privacy operations on SQL: the service's tables declared as a `privacy-kit`
//! [`Schema`], and [`SqlStore`], which implements privacy-kit's
//! [`RecordStore`], [`ReceiptStore`] and [`AuditLog`] on the database. Deletion cascades,
//! exports, retention and Meta's callbacks are privacy-kit's; this module says where the rows are.
//!
//! # Entities
//!
//! Every table is an entity of the same name; a record id is the table's key columns joined with
//! `:` (a contact is `ACCOUNT:IGSID`, an event `ACCOUNT:KEY`). Two entities are views:
//!
//! - `account_token`: the sealed token of an account (`accounts.token_sealed`), a credential
//!   whose deletion blanks the column. Deleted at once on disconnect (P7).
//! - `inbox`: raw notifications. A notification can hold several people's events, so the inbox
//!   is seen *per part*: `HASH#ACCOUNT` is the part of notification `HASH` about an account (its
//!   entries), `HASH#ACCOUNT:IGSID` the part about a contact (the items of the account's entries
//!   that mention the contact). Deleting a part rewrites the body without it; a notification with
//!   nothing left becomes a tombstone (`{"object":"instagram","entry":[],"redacted":true}`), kept
//!   under its id (the SHA-256 of the original body) so that Meta's retries of the original stay
//!   deduplicated and cannot bring the data back. A whole notification (`HASH`) is deleted by
//!   retention.
//!
//! # Subjects
//!
//! `connection` = an account id; `contact` = `ACCOUNT:IGSID`; `instagram_user` (Meta's
//! callbacks) = an app-scoped id, matched against `accounts.app_user_id`, `accounts.id` and
//! contact ids; `organization` = an `organizations` id (parent of `accounts` through `org_id`,
//! of members, invitations, sessions, API keys and webhook subscriptions); `member` = a `users`
//! id. A user is a child of an organization only while it is a member of that one alone.
//!
//! # Personal data kept elsewhere
//!
//! Deletion receipts and the audit register hold ids only as pseudonyms (HMAC-SHA256 under a key
//! derived from the vault key), so they survive a deletion without keeping the subject.

use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use privacy_kit::audit::{AuditEntry, AuditEvent, Disclosed};
use privacy_kit::cascade::{DeletionReceipt, DeletionStatus, Subject, SubjectKind};
use privacy_kit::retention::Anchor;
use privacy_kit::schema::{DataClass, FieldKind, OnDelete, Pseudonymizer, Schema, SubjectKey};
use privacy_kit::store::{AuditLog, Change, Page, ReceiptStore, Record, RecordStore};
use serde_json::{Map, Value};
use sqlx::any::AnyRow;
use sqlx::{Column, Row};

use super::{to_time, Backend, Db};

/// The body a fully redacted notification keeps.
pub const TOMBSTONE: &str = r#"{"object":"instagram","entry":[],"redacted":true}"#;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ty {
    Text,
    Int,
}

#[derive(Debug, Clone, Copy)]
enum Class {
    Account,
    Credential,
    Contact,
    Conversation,
    DeliveryLog,
    Configuration,
    Audit,
    AutomationState,
    Consent,
    Export,
    WebhookDelivery,
    OrgRecord,
    AccessLog,
}

impl Class {
    fn data_class(self) -> DataClass {
        match self {
            Self::Account => DataClass::Account,
            Self::Credential => DataClass::Credential,
            Self::Contact => DataClass::Contact,
            Self::Conversation => DataClass::Conversation,
            Self::DeliveryLog => DataClass::DeliveryLog,
            Self::Configuration => DataClass::Configuration,
            Self::Audit => DataClass::Audit,
            Self::AutomationState => DataClass::Other("automation_state".into()),
            Self::Consent => DataClass::Other("consent".into()),
            Self::Export => DataClass::Other("export".into()),
            Self::WebhookDelivery => DataClass::Other("webhook_delivery".into()),
            Self::OrgRecord => DataClass::Other("organization_record".into()),
            Self::AccessLog => DataClass::Other("access_log".into()),
        }
    }
}

/// What a blanked field becomes (columns declared `NOT NULL` cannot become NULL).
#[derive(Debug, Clone, Copy)]
enum Blank {
    Null,
    EmptyJson,
}

#[derive(Debug, Clone, Copy)]
enum Rule {
    Cascade,
    Anonymize,
    /// Keep the row, with the link's columns set to NULL.
    Detach,
}

#[derive(Debug)]
struct LinkDef {
    name: &'static str,
    parent: &'static str,
    /// SQL expressions over the child row (alias `t`) whose values, joined with `:`, are the
    /// parent's id. `{contact_json}` stands for the `contact` of a JSON `body`.
    exprs: &'static [&'static str],
    rule: Rule,
}

#[derive(Debug)]
struct Table {
    entity: &'static str,
    table: &'static str,
    class: Class,
    key: &'static [(&'static str, Ty)],
    /// The account the row belongs to (for per-account retention).
    account: &'static str,
    /// Extra condition a row must meet to be a record of this entity.
    filter: &'static str,
    /// Columns read (besides the computed ones).
    columns: &'static str,
    created: &'static str,
    last_activity: &'static str,
    disconnected: &'static str,
    anonymizable: bool,
    fields: &'static [(&'static str, FieldKind, Blank)],
    links: &'static [LinkDef],
}

use Blank::{EmptyJson, Null};
use FieldKind::{Personal, Plain, Pseudonymized, Secret};
use Ty::{Int, Text};

const fn cascade(
    name: &'static str,
    parent: &'static str,
    exprs: &'static [&'static str],
) -> LinkDef {
    LinkDef {
        name,
        parent,
        exprs,
        rule: Rule::Cascade,
    }
}

const TO_ACCOUNT: LinkDef = cascade("account", "accounts", &["t.account"]);
const TO_CONTACT: LinkDef = cascade("contact", "contacts", &["t.account", "t.contact"]);
const TO_ORG: LinkDef = cascade("organization", "organizations", &["t.org_id"]);
const TO_USER: LinkDef = cascade("user", "users", &["t.user_id"]);

const fn detach(
    name: &'static str,
    parent: &'static str,
    exprs: &'static [&'static str],
) -> LinkDef {
    LinkDef {
        name,
        parent,
        exprs,
        rule: Rule::Detach,
    }
}

static TABLES: &[Table] = &[
    Table {
        entity: "accounts",
        table: "accounts",
        class: Class::Account,
        key: &[("id", Text)],
        account: "t.id",
        filter: "",
        columns: "t.*",
        created: "t.connected_at",
        last_activity: "t.updated_at",
        disconnected: "t.disconnected_at",
        anonymizable: false,
        fields: &[
            ("username", Personal, Null),
            ("token_sealed", Secret, Null),
            ("app_user_id", Plain, Null),
        ],
        links: &[TO_ORG],
    },
    Table {
        entity: "account_token",
        table: "accounts",
        class: Class::Credential,
        key: &[("id", Text)],
        account: "t.id",
        filter: "t.token_sealed <> ''",
        columns: "t.token_sealed, t.token_expires_at",
        created: "t.connected_at",
        last_activity: "",
        disconnected: "t.disconnected_at",
        anonymizable: false,
        fields: &[("token_sealed", Secret, Null)],
        links: &[cascade("account", "accounts", &["t.id"])],
    },
    Table {
        entity: "contacts",
        table: "contacts",
        class: Class::Contact,
        key: &[("account", Text), ("id", Text)],
        account: "t.account",
        filter: "",
        columns: "t.*",
        created: "t.last_interaction",
        last_activity: "t.last_interaction",
        disconnected: "",
        anonymizable: false,
        fields: &[
            ("id", Plain, Null),
            ("username", Personal, Null),
            ("body", Personal, EmptyJson),
        ],
        links: &[TO_ACCOUNT],
    },
    Table {
        entity: "events",
        table: "events",
        class: Class::Conversation,
        key: &[("account", Text), ("key", Text)],
        account: "t.account",
        filter: "",
        columns: "t.*",
        created: "t.occurred_at",
        last_activity: "",
        disconnected: "",
        anonymizable: false,
        fields: &[("text", Personal, Null), ("decision", Personal, EmptyJson)],
        links: &[TO_ACCOUNT, TO_CONTACT],
    },
    Table {
        entity: "dedup_keys",
        table: "dedup_keys",
        class: Class::Conversation,
        key: &[("account", Text), ("key", Text)],
        account: "t.account",
        filter: "",
        columns: "t.*",
        created: "t.at",
        last_activity: "",
        disconnected: "",
        anonymizable: false,
        fields: &[],
        links: &[
            TO_ACCOUNT,
            cascade(
                "event",
                "events",
                &[
                    "t.account",
                    "CASE WHEN t.key LIKE 'event:%' THEN substr(t.key, 7) \
                     WHEN t.key LIKE 'private_reply:%' THEN 'comment:' || substr(t.key, 15) END",
                ],
            ),
        ],
    },
    Table {
        entity: "outbox",
        table: "outbox",
        class: Class::DeliveryLog,
        key: &[("key", Text)],
        account: "t.account",
        filter: "",
        columns: "t.*",
        created: "t.created_at",
        last_activity: "",
        disconnected: "",
        anonymizable: true,
        fields: &[
            ("key", Pseudonymized, Null),
            ("recipient", Pseudonymized, Null),
            ("event_key", Pseudonymized, Null),
            ("action", Personal, EmptyJson),
            ("error_message", Personal, Null),
        ],
        links: &[
            TO_ACCOUNT,
            cascade("contact", "contacts", &["t.account", "t.recipient"]),
        ],
    },
    Table {
        entity: "delivery_log",
        table: "delivery_log",
        class: Class::DeliveryLog,
        key: &[("id", Int)],
        account: "t.account",
        filter: "",
        columns: "t.*",
        created: "t.at",
        last_activity: "",
        disconnected: "",
        anonymizable: true,
        fields: &[
            ("outbox_key", Pseudonymized, Null),
            ("error_message", Personal, Null),
        ],
        links: &[TO_ACCOUNT, cascade("outbox", "outbox", &["t.outbox_key"])],
    },
    Table {
        entity: "firings",
        table: "firings",
        class: Class::AutomationState,
        key: &[("account", Text), ("contact", Text), ("rule", Text)],
        account: "t.account",
        filter: "",
        columns: "t.*",
        created: "t.at",
        last_activity: "",
        disconnected: "",
        anonymizable: false,
        fields: &[],
        links: &[TO_ACCOUNT, TO_CONTACT],
    },
    Table {
        entity: "counters",
        table: "counters",
        class: Class::Configuration,
        key: &[("account", Text), ("window_start", Int), ("key", Text)],
        account: "t.account",
        filter: "",
        columns: "t.*",
        created: "t.window_start",
        last_activity: "",
        disconnected: "",
        anonymizable: false,
        fields: &[],
        links: &[TO_ACCOUNT],
    },
    Table {
        entity: "flow_states",
        table: "flow_states",
        class: Class::AutomationState,
        key: &[("account", Text), ("contact", Text)],
        account: "t.account",
        filter: "",
        columns: "t.*",
        created: "CAST(0 AS BIGINT)",
        last_activity: "",
        disconnected: "",
        anonymizable: false,
        fields: &[("body", Personal, EmptyJson)],
        links: &[TO_ACCOUNT, TO_CONTACT],
    },
    Table {
        entity: "flow_events",
        table: "flow_events",
        class: Class::DeliveryLog,
        key: &[("id", Int)],
        account: "t.account",
        filter: "",
        columns: "t.*",
        created: "t.at",
        last_activity: "",
        disconnected: "",
        anonymizable: true,
        fields: &[("body", Personal, EmptyJson)],
        links: &[
            TO_ACCOUNT,
            cascade("contact", "contacts", &["t.account", "{contact_json}"]),
        ],
    },
    Table {
        entity: "wakes",
        table: "wakes",
        class: Class::AutomationState,
        key: &[("account", Text), ("contact", Text)],
        account: "t.account",
        filter: "",
        columns: "t.*",
        created: "t.due_at",
        last_activity: "",
        disconnected: "",
        anonymizable: false,
        fields: &[],
        links: &[TO_ACCOUNT, TO_CONTACT],
    },
    Table {
        // the team inbox (db/conversations.rs)
        entity: "conversations",
        table: "conversations",
        class: Class::Conversation,
        key: &[("account", Text), ("contact", Text)],
        account: "t.account",
        filter: "",
        columns: "t.*",
        created: "t.created_at",
        last_activity: "t.updated_at",
        disconnected: "",
        anonymizable: false,
        fields: &[("assignee", Pseudonymized, Null)],
        links: &[
            TO_ACCOUNT,
            TO_CONTACT,
            detach("assignee", "users", &["t.assignee"]),
        ],
    },
    Table {
        entity: "messages",
        table: "messages",
        class: Class::Conversation,
        key: &[("account", Text), ("mid", Text)],
        account: "t.account",
        filter: "",
        columns: "t.*",
        created: "t.sent_at",
        last_activity: "",
        disconnected: "",
        anonymizable: false,
        fields: &[
            ("text", Personal, Null),
            ("attachments", Personal, EmptyJson),
            ("reactions", Personal, EmptyJson),
            ("agent", Pseudonymized, Null),
        ],
        links: &[
            TO_ACCOUNT,
            TO_CONTACT,
            detach("agent", "users", &["t.agent"]),
        ],
    },
    Table {
        entity: "conversation_notes",
        table: "conversation_notes",
        class: Class::Conversation,
        key: &[("id", Text)],
        account: "t.account",
        filter: "",
        columns: "t.*",
        created: "t.created_at",
        last_activity: "",
        disconnected: "",
        anonymizable: false,
        fields: &[("text", Personal, Null), ("author", Pseudonymized, Null)],
        links: &[
            TO_ACCOUNT,
            TO_CONTACT,
            detach("author", "users", &["t.author"]),
        ],
    },
    Table {
        // the team inbox's first-response times, one per answered episode
        entity: "response_times",
        table: "response_times",
        class: Class::Conversation,
        key: &[("account", Text), ("contact", Text), ("opened_at", Int)],
        account: "t.account",
        filter: "",
        columns: "t.*",
        created: "t.responded_at",
        last_activity: "",
        disconnected: "",
        anonymizable: false,
        fields: &[],
        links: &[TO_ACCOUNT, TO_CONTACT],
    },
    Table {
        entity: "inbox_backfills",
        table: "inbox_backfills",
        class: Class::Configuration,
        key: &[("account", Text)],
        account: "t.account",
        filter: "",
        columns: "t.*",
        created: "t.started_at",
        last_activity: "t.updated_at",
        disconnected: "",
        anonymizable: false,
        fields: &[("error", Personal, Null)],
        links: &[TO_ACCOUNT],
    },
    Table {
        entity: "inbox_settings",
        table: "inbox_settings",
        class: Class::Configuration,
        key: &[("org_id", Text)],
        account: "NULL",
        filter: "",
        columns: "t.*",
        created: "t.updated_at",
        last_activity: "",
        disconnected: "",
        anonymizable: false,
        fields: &[("last_assignee", Pseudonymized, Null)],
        links: &[TO_ORG, detach("last_assignee", "users", &["t.last_assignee"])],
    },
    Table {
        // which service instance sends for the account (several instances on PostgreSQL)
        entity: "account_leases",
        table: "account_leases",
        class: Class::Configuration,
        key: &[("account", Text)],
        account: "t.account",
        filter: "",
        columns: "t.*",
        created: "t.acquired_at",
        last_activity: "",
        disconnected: "",
        anonymizable: false,
        fields: &[],
        links: &[TO_ACCOUNT],
    },
    Table {
        entity: "media",
        table: "media",
        class: Class::Configuration,
        key: &[("account", Text), ("id", Text)],
        account: "t.account",
        filter: "",
        columns: "t.*",
        created: "t.synced_at",
        last_activity: "",
        disconnected: "",
        anonymizable: false,
        fields: &[],
        links: &[TO_ACCOUNT],
    },
    Table {
        entity: "automations",
        table: "automations",
        class: Class::Configuration,
        key: &[("account", Text), ("kind", Text), ("id", Text)],
        account: "t.account",
        filter: "",
        columns: "t.*",
        created: "t.updated_at",
        last_activity: "",
        disconnected: "",
        anonymizable: false,
        fields: &[],
        links: &[TO_ACCOUNT],
    },
    Table {
        entity: "consents",
        table: "consents",
        class: Class::Consent,
        key: &[("account", Text), ("event", Text)],
        account: "t.account",
        filter: "",
        columns: "t.*",
        created: "t.at",
        last_activity: "",
        disconnected: "",
        anonymizable: false,
        fields: &[("payload", Personal, Null)],
        links: &[TO_ACCOUNT, TO_CONTACT],
    },
    Table {
        entity: "export_links",
        table: "export_links",
        class: Class::Export,
        key: &[("token_hash", Text)],
        account: "t.account",
        filter: "",
        columns: "t.token_hash, t.account, t.contact, t.org_id, t.user_id, t.subject_kind, t.records, t.created_at, t.expires_at",
        created: "t.created_at",
        last_activity: "",
        disconnected: "",
        anonymizable: false,
        fields: &[],
        links: &[TO_ACCOUNT, TO_CONTACT, TO_ORG, TO_USER],
    },
    Table {
        entity: "retention_settings",
        table: "retention_settings",
        class: Class::Configuration,
        key: &[("account", Text)],
        account: "t.account",
        filter: "",
        columns: "t.*",
        created: "t.updated_at",
        last_activity: "",
        disconnected: "",
        anonymizable: false,
        fields: &[],
        links: &[TO_ACCOUNT],
    },
    Table {
        entity: "retention_reports",
        table: "retention_reports",
        class: Class::Audit,
        key: &[("id", Int)],
        account: "t.account",
        filter: "",
        columns: "t.*",
        created: "t.at",
        last_activity: "",
        disconnected: "",
        anonymizable: false,
        fields: &[],
        links: &[TO_ACCOUNT],
    },
    Table {
        entity: "organizations",
        table: "organizations",
        class: Class::Account,
        key: &[("id", Text)],
        account: "NULL",
        filter: "",
        columns: "t.*",
        created: "t.created_at",
        last_activity: "",
        disconnected: "",
        anonymizable: false,
        fields: &[("name", Personal, Null)],
        links: &[],
    },
    Table {
        entity: "users",
        table: "users",
        class: Class::Account,
        key: &[("id", Text)],
        account: "NULL",
        filter: "",
        columns: "t.*",
        created: "t.created_at",
        last_activity: "",
        disconnected: "",
        anonymizable: false,
        fields: &[("email", Personal, Null), ("password_hash", Secret, Null)],
        // A user belongs to the organization it is the member of when it is a member of only
        // one: deleting that organization deletes the user; a member of several keeps its
        // profile (its membership in the deleted organization goes).
        links: &[cascade(
            "organization",
            "organizations",
            &["(SELECT MIN(m.org_id) FROM members m WHERE m.user_id = t.id \
               GROUP BY m.user_id HAVING COUNT(*) = 1)"],
        )],
    },
    Table {
        entity: "members",
        table: "members",
        class: Class::Account,
        key: &[("org_id", Text), ("user_id", Text)],
        account: "NULL",
        filter: "",
        columns: "t.*",
        created: "t.created_at",
        last_activity: "",
        disconnected: "",
        anonymizable: false,
        fields: &[],
        links: &[TO_ORG, TO_USER],
    },
    Table {
        entity: "invitations",
        table: "invitations",
        class: Class::Account,
        key: &[("id", Text)],
        account: "NULL",
        filter: "",
        columns: "t.*",
        created: "t.created_at",
        last_activity: "",
        disconnected: "",
        anonymizable: false,
        fields: &[
            ("email", Personal, Null),
            ("token_hash", Secret, Null),
            ("invited_by", Pseudonymized, Null),
        ],
        links: &[
            TO_ORG,
            detach("inviter", "users", &["t.invited_by"]),
            // the person invited, once they are a user
            cascade(
                "invitee",
                "users",
                &["(SELECT u.id FROM users u WHERE u.email = t.email)"],
            ),
        ],
    },
    Table {
        entity: "sessions",
        table: "sessions",
        class: Class::Credential,
        // Keyed by who and when, so that neither exports nor ids show the token's hash.
        key: &[("user_id", Text), ("org_id", Text), ("created_at", Int)],
        account: "NULL",
        filter: "",
        columns: "t.user_id, t.org_id, t.created_at, t.expires_at",
        created: "t.created_at",
        last_activity: "",
        disconnected: "",
        anonymizable: false,
        fields: &[],
        links: &[TO_USER, TO_ORG],
    },
    Table {
        entity: "api_keys",
        table: "api_keys",
        class: Class::Credential,
        key: &[("id", Text)],
        account: "NULL",
        filter: "",
        columns: "t.*",
        created: "t.created_at",
        last_activity: "t.last_used_at",
        disconnected: "",
        anonymizable: false,
        fields: &[
            ("key_hash", Secret, Null),
            ("created_by", Pseudonymized, Null),
        ],
        links: &[TO_ORG, detach("creator", "users", &["t.created_by"])],
    },
    Table {
        entity: "webhook_subscriptions",
        table: "webhook_subscriptions",
        class: Class::Configuration,
        key: &[("id", Text)],
        account: "t.account",
        filter: "",
        columns: "t.*",
        created: "t.created_at",
        last_activity: "",
        disconnected: "",
        anonymizable: false,
        fields: &[
            ("url", Personal, Null),
            ("description", Personal, Null),
            ("secret_sealed", Secret, Null),
        ],
        links: &[TO_ORG, TO_ACCOUNT],
    },
    Table {
        entity: "outbound_deliveries",
        table: "outbound_deliveries",
        class: Class::WebhookDelivery,
        key: &[("id", Text)],
        account: "t.account",
        filter: "",
        columns: "t.*",
        created: "t.created_at",
        last_activity: "",
        disconnected: "",
        anonymizable: false,
        fields: &[
            ("contact", Personal, Null),
            ("payload", Personal, EmptyJson),
            ("last_error", Personal, Null),
        ],
        links: &[
            cascade("subscription", "webhook_subscriptions", &["t.subscription_id"]),
            TO_ORG,
            TO_ACCOUNT,
            TO_CONTACT,
        ],
    },
    Table {
        entity: "outbound_attempts",
        table: "outbound_attempts",
        class: Class::WebhookDelivery,
        key: &[("id", Int)],
        account: "t.account",
        filter: "",
        columns: "t.*",
        created: "t.at",
        last_activity: "",
        disconnected: "",
        anonymizable: false,
        fields: &[("error", Personal, Null)],
        links: &[
            cascade("delivery", "outbound_deliveries", &["t.delivery_id"]),
            cascade("subscription", "webhook_subscriptions", &["t.subscription_id"]),
            TO_ORG,
            TO_ACCOUNT,
        ],
    },
    // CRM (0010_crm.sql): profiles, tags, custom fields and pipeline stages of contacts, and
    // the organization's field and stage definitions.
    Table {
        entity: "contact_profiles",
        table: "contact_profiles",
        class: Class::Contact,
        key: &[("account", Text), ("contact", Text)],
        account: "t.account",
        filter: "",
        columns: "t.*",
        created: "t.attempted_at",
        last_activity: "t.fetched_at",
        disconnected: "",
        anonymizable: false,
        fields: &[
            ("name", Personal, Null),
            ("username", Personal, Null),
            ("profile_pic", Personal, Null),
            ("error_message", Personal, Null),
        ],
        links: &[TO_ACCOUNT, TO_CONTACT],
    },
    Table {
        entity: "contact_tags",
        table: "contact_tags",
        class: Class::Contact,
        key: &[("account", Text), ("contact", Text), ("tag", Text)],
        account: "t.account",
        filter: "",
        columns: "t.*",
        created: "t.created_at",
        last_activity: "",
        disconnected: "",
        anonymizable: false,
        fields: &[],
        links: &[TO_ACCOUNT, TO_CONTACT],
    },
    Table {
        entity: "crm_fields",
        table: "crm_fields",
        class: Class::Configuration,
        key: &[("org_id", Text), ("key", Text)],
        account: "NULL",
        filter: "",
        columns: "t.*",
        created: "t.created_at",
        last_activity: "",
        disconnected: "",
        anonymizable: false,
        fields: &[],
        links: &[TO_ORG],
    },
    Table {
        entity: "contact_field_values",
        table: "contact_field_values",
        class: Class::Contact,
        key: &[("account", Text), ("contact", Text), ("field", Text)],
        account: "t.account",
        filter: "",
        columns: "t.*",
        created: "t.updated_at",
        last_activity: "",
        disconnected: "",
        anonymizable: false,
        fields: &[],
        links: &[TO_ACCOUNT, TO_CONTACT],
    },
    Table {
        entity: "crm_stages",
        table: "crm_stages",
        class: Class::Configuration,
        key: &[("org_id", Text), ("id", Text)],
        account: "NULL",
        filter: "",
        columns: "t.*",
        created: "t.created_at",
        last_activity: "",
        disconnected: "",
        anonymizable: false,
        fields: &[],
        links: &[TO_ORG],
    },
    Table {
        entity: "contact_stages",
        table: "contact_stages",
        class: Class::Contact,
        key: &[("account", Text), ("contact", Text)],
        account: "t.account",
        filter: "",
        columns: "t.*",
        created: "t.updated_at",
        last_activity: "",
        disconnected: "",
        anonymizable: false,
        fields: &[],
        links: &[TO_ACCOUNT, TO_CONTACT],
    },
    Table {
        entity: "contact_stage_history",
        table: "contact_stage_history",
        class: Class::Contact,
        key: &[("id", Int)],
        account: "t.account",
        filter: "",
        columns: "t.*",
        created: "t.at",
        last_activity: "",
        disconnected: "",
        anonymizable: false,
        fields: &[("moved_by", Pseudonymized, Null)],
        links: &[
            TO_ACCOUNT,
            TO_CONTACT,
            detach("mover", "users", &["t.moved_by"]),
        ],
    },
    Table {
        entity: "legal_requests",
        table: "legal_requests",
        class: Class::Audit,
        key: &[("id", Text)],
        account: "t.account",
        filter: "",
        columns: "t.*",
        created: "t.received_at",
        last_activity: "",
        disconnected: "",
        anonymizable: true,
        // `contact` holds the pseudonym of the contact, never its id: the register survives the
        // contact's deletion, and the contact's own export does not reveal the request.
        fields: &[
            ("account", Pseudonymized, Null),
            ("org_id", Pseudonymized, Null),
            ("disclosed", Personal, Null),
        ],
        links: &[
            LinkDef {
                name: "account",
                parent: "accounts",
                exprs: &["t.account"],
                rule: Rule::Anonymize,
            },
            LinkDef {
                name: "organization",
                parent: "organizations",
                exprs: &["t.org_id"],
                rule: Rule::Anonymize,
            },
        ],
    },
    Table {
        // P8: an organization's own data classes and their periods
        entity: "retention_classes",
        table: "retention_classes",
        class: Class::Configuration,
        key: &[("org_id", Text), ("name", Text)],
        account: "NULL",
        filter: "",
        columns: "t.*",
        created: "t.updated_at",
        last_activity: "",
        disconnected: "",
        anonymizable: false,
        fields: &[],
        links: &[TO_ORG],
    },
    Table {
        // P8: records an organization keeps in its own data classes (payments, support)
        entity: "org_records",
        table: "org_records",
        class: Class::OrgRecord,
        key: &[("id", Text)],
        account: "NULL",
        filter: "",
        columns: "t.*",
        created: "t.created_at",
        last_activity: "t.last_activity_at",
        disconnected: "",
        anonymizable: true,
        fields: &[("reference", Personal, Null), ("body", Personal, EmptyJson)],
        links: &[TO_ORG],
    },
    Table {
        // P17: the management API's access log; members appear only as pseudonyms (a
        // deleted member's entries stay without their id), a deleted key's without its id
        entity: "access_log",
        table: "access_log",
        class: Class::AccessLog,
        key: &[("id", Int)],
        account: "NULL",
        filter: "",
        columns: "t.*",
        created: "t.at",
        last_activity: "",
        disconnected: "",
        anonymizable: false,
        fields: &[("user_ref", Pseudonymized, Null)],
        links: &[TO_ORG, detach("api_key", "api_keys", &["t.api_key_id"])],
    },
];

/// The entity name of raw notifications (seen per part, see the module docs).
pub const INBOX: &str = "inbox";

/// The data class of raw webhook notifications (the `inbox` entity).
pub fn raw_notification() -> DataClass {
    DataClass::Other("raw_notification".into())
}

/// A table of the schema and its key columns, in the order they form a record id. For tests
/// that check a deletion or an export against the whole database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableKey {
    /// The entity (and, except for `account_token`, the table) name.
    pub entity: &'static str,
    /// The table.
    pub table: &'static str,
    /// The key columns.
    pub key: Vec<&'static str>,
}

/// Every entity, with its table and key columns (the inbox: `id`).
pub fn tables() -> Vec<TableKey> {
    let mut v: Vec<TableKey> = TABLES
        .iter()
        .map(|t| TableKey {
            entity: t.entity,
            table: t.table,
            key: t.key.iter().map(|(c, _)| *c).collect(),
        })
        .collect();
    v.push(TableKey {
        entity: INBOX,
        table: "inbox",
        key: vec!["id"],
    });
    v
}

/// The privacy-kit schema of the service's database.
///
/// Subjects: `organization` (an `organizations` id: everything in it, its accounts and all their
/// data, members, invitations, sessions, API keys, webhook subscriptions and deliveries, and the
/// users who belong to no other organization), `member` (a `users` id: the profile, memberships
/// and sessions), `connection`, `contact` and `instagram_user` (see the module docs).
pub fn schema() -> Schema {
    let mut b = Schema::builder();
    for t in TABLES {
        b = b.entity(
            t.entity,
            t.class.data_class(),
            t.fields.iter().map(|(f, k, _)| (*f, *k)),
        );
    }
    b = b.entity(INBOX, raw_notification(), [("body", Personal)]);
    for t in TABLES {
        for l in t.links {
            let on_delete = match l.rule {
                Rule::Cascade => OnDelete::Cascade,
                Rule::Anonymize => OnDelete::Anonymize,
                Rule::Detach => OnDelete::Detach,
            };
            b = b.relation(l.parent, t.entity, l.name, on_delete);
        }
    }
    b = b
        .relation("accounts", INBOX, "account", OnDelete::Cascade)
        .relation("contacts", INBOX, "contact", OnDelete::Cascade)
        .subject(SubjectKind::Organization, "organizations", SubjectKey::Id)
        .subject(SubjectKind::Member, "users", SubjectKey::Id)
        .subject(SubjectKind::Connection, "accounts", SubjectKey::Id)
        .subject(SubjectKind::Contact, "contacts", SubjectKey::Id)
        .subject(
            SubjectKind::InstagramUser,
            "accounts",
            SubjectKey::Field("app_user_id".into()),
        )
        .subject(SubjectKind::InstagramUser, "accounts", SubjectKey::Id)
        .subject(
            SubjectKind::InstagramUser,
            "contacts",
            SubjectKey::Field("id".into()),
        );
    match b.build() {
        Ok(s) => s,
        // The declaration above is fixed and covered by tests.
        Err(e) => unreachable!("the service's privacy schema is valid: {e}"),
    }
}

/// The contact subject id of a contact: `ACCOUNT:IGSID`.
pub fn contact_id(account: &str, contact: &str) -> String {
    format!("{account}:{contact}")
}

fn table(entity: &str) -> Option<&'static Table> {
    TABLES.iter().find(|t| t.entity == entity)
}

fn store_err(e: impl std::fmt::Display) -> privacy_kit::Error {
    privacy_kit::Error::store(format!("database: {e}"))
}

type KitResult<T> = privacy_kit::Result<T>;

/// Which rows a [`SqlStore`] sees when it scans (reads by id and by link are never limited).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Scope {
    /// Every row.
    All,
    /// The rows of one account (retention per account).
    Account(String),
    /// Only whole raw notifications (retention of notifications no account claims).
    InboxOnly,
}

/// privacy-kit's store traits on the service's database.
#[derive(Debug, Clone)]
pub struct SqlStore {
    db: Db,
    scope: Scope,
    /// The organization receipts and audit entries written through this store belong to.
    org: Option<String>,
    pseudonymizer: Pseudonymizer,
    actor: String,
}

impl SqlStore {
    /// A store over every row; `actor` names who acts in audit entries (`api`, `meta`,
    /// `retention`).
    pub fn new(db: Db, pseudonymizer: Pseudonymizer, actor: &str) -> Self {
        Self {
            db,
            scope: Scope::All,
            org: None,
            pseudonymizer,
            actor: actor.to_owned(),
        }
    }

    /// The same store, scanning only `scope`.
    #[must_use]
    pub fn scoped(mut self, scope: Scope) -> Self {
        self.scope = scope;
        self
    }

    /// The same store, writing receipts and audit entries as `org`'s (`None`: no
    /// organization's, as for Meta's callbacks and an organization's own deletion).
    #[must_use]
    pub fn in_org(mut self, org: Option<&str>) -> Self {
        self.org = org.map(str::to_owned);
        self
    }

    /// The organization receipts and audit entries are written as.
    pub fn org(&self) -> Option<&str> {
        self.org.as_deref()
    }

    /// The pseudonymizer (for ids kept in receipts and the audit register).
    pub fn pseudonymizer(&self) -> &Pseudonymizer {
        &self.pseudonymizer
    }

    /// The pseudonym of an id.
    pub fn pseudonym(&self, id: &str) -> String {
        self.pseudonymizer.pseudonym(&Value::from(id))
    }

    fn expr(&self, e: &str) -> String {
        let json = match self.db.backend() {
            Backend::Sqlite => "json_extract(t.body, '$.contact')",
            Backend::Postgres => "(CAST(t.body AS json) ->> 'contact')",
        };
        e.replace("{contact_json}", json)
    }

    fn id_expr(t: &Table) -> String {
        t.key
            .iter()
            .map(|(c, _)| format!("CAST(t.{c} AS TEXT)"))
            .collect::<Vec<_>>()
            .join(" || ':' || ")
    }

    fn select(&self, t: &Table) -> String {
        let mut cols = vec![
            t.columns.to_owned(),
            format!("{} AS x__id", Self::id_expr(t)),
            format!("{} AS x__created", t.created),
        ];
        if !t.last_activity.is_empty() {
            cols.push(format!("{} AS x__activity", t.last_activity));
        }
        if !t.disconnected.is_empty() {
            cols.push(format!("{} AS x__disconnected", t.disconnected));
        }
        if t.anonymizable {
            cols.push("t.anonymized_at AS x__anonymized".to_owned());
        }
        for (i, l) in t.links.iter().enumerate() {
            for (j, e) in l.exprs.iter().enumerate() {
                cols.push(format!("CAST({} AS TEXT) AS x__l{i}_{j}", self.expr(e)));
            }
        }
        let filter = if t.filter.is_empty() {
            "1 = 1".to_owned()
        } else {
            t.filter.to_owned()
        };
        format!(
            "SELECT {} FROM {} t WHERE {filter}",
            cols.join(", "),
            t.table
        )
    }

    fn record(t: &Table, row: &AnyRow) -> KitResult<Record> {
        let id: String = row.try_get("x__id").map_err(store_err)?;
        let created: i64 = row.try_get("x__created").map_err(store_err)?;
        let mut record = Record::new(t.entity, id, to_time(created));
        if !t.last_activity.is_empty() {
            if let Some(at) = row
                .try_get::<Option<i64>, _>("x__activity")
                .map_err(store_err)?
            {
                record.anchors.set(Anchor::LastActivity, to_time(at));
            }
        }
        if !t.disconnected.is_empty() {
            if let Some(at) = row
                .try_get::<Option<i64>, _>("x__disconnected")
                .map_err(store_err)?
            {
                record.anchors.set(Anchor::Disconnected, to_time(at));
                record.anchors.set(Anchor::AccountDeleted, to_time(at));
            }
        }
        if t.anonymizable {
            record.anonymized_at = row
                .try_get::<Option<i64>, _>("x__anonymized")
                .map_err(store_err)?
                .map(to_time);
        }
        if record.anonymized_at.is_none() {
            for (i, l) in t.links.iter().enumerate() {
                let mut parts = Vec::new();
                for j in 0..l.exprs.len() {
                    let v: Option<String> = row
                        .try_get(format!("x__l{i}_{j}").as_str())
                        .map_err(store_err)?;
                    parts.extend(v);
                }
                if parts.len() == l.exprs.len() && parts.iter().all(|p| !p.is_empty()) {
                    record = record.link(l.name, parts.join(":"));
                }
            }
        }
        for (i, column) in row.columns().iter().enumerate() {
            let name = column.name();
            if name.starts_with("x__") {
                continue;
            }
            record.fields.insert(name.to_owned(), column_value(row, i));
        }
        Ok(record)
    }

    /// Splits a record id into `n` parts (the last one keeps any further `:`).
    fn split(id: &str, n: usize) -> Vec<&str> {
        if n <= 1 {
            return vec![id];
        }
        id.splitn(n, ':').collect()
    }

    fn key_where(t: &Table, first: usize) -> String {
        t.key
            .iter()
            .enumerate()
            .map(|(i, (c, _))| format!("t.{c} = ${}", first + i))
            .collect::<Vec<_>>()
            .join(" AND ")
    }

    fn bind_key<'q>(
        t: &Table,
        id: &'q str,
        mut q: sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>,
    ) -> Option<sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments>> {
        let parts = Self::split(id, t.key.len());
        if parts.len() != t.key.len() {
            return None;
        }
        for ((_, ty), part) in t.key.iter().zip(parts) {
            q = match ty {
                Ty::Text => q.bind(part),
                Ty::Int => q.bind(part.parse::<i64>().ok()?),
            };
        }
        Some(q)
    }

    async fn fetch(&self, sql: String, binds: Vec<Bind>) -> KitResult<Vec<AnyRow>> {
        let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
        for b in binds {
            q = match b {
                Bind::Text(s) => q.bind(s),
                Bind::Int(n) => q.bind(n),
            };
        }
        q.fetch_all(self.db.pool()).await.map_err(store_err)
    }

    fn scope_account(&self) -> Option<&str> {
        match &self.scope {
            Scope::Account(a) => Some(a),
            _ => None,
        }
    }
}

enum Bind {
    Text(String),
    Int(i64),
}

/// A column's value as JSON: integer, text, bytes (as UTF-8 text, or JSON when they hold JSON),
/// real, or null.
fn column_value(row: &AnyRow, i: usize) -> Value {
    if let Ok(v) = row.try_get::<Option<i64>, _>(i) {
        return v.map_or(Value::Null, Value::from);
    }
    if let Ok(v) = row.try_get::<Option<String>, _>(i) {
        return v.map_or(Value::Null, Value::from);
    }
    if let Ok(v) = row.try_get::<Option<Vec<u8>>, _>(i) {
        return v.map_or(Value::Null, |b| {
            serde_json::from_slice(&b)
                .unwrap_or_else(|_| Value::from(String::from_utf8_lossy(&b).into_owned()))
        });
    }
    if let Ok(v) = row.try_get::<Option<f64>, _>(i) {
        return v.map_or(Value::Null, Value::from);
    }
    Value::Null
}

// ---------------------------------------------------------------------------------------------
// Raw notifications, per part.

/// Whether `v` holds `id` as a string value or a number anywhere.
pub fn mentions(v: &Value, id: &str) -> bool {
    match v {
        Value::String(s) => s == id,
        Value::Number(n) => n.to_string() == id,
        Value::Array(a) => a.iter().any(|x| mentions(x, id)),
        Value::Object(o) => o.values().any(|x| mentions(x, id)),
        _ => false,
    }
}

fn entry_account(entry: &Value) -> Option<String> {
    match entry.get("id") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }
}

/// Which part of a notification: an account's entries, or the items of an account's entries that
/// mention an id (a contact's IGSID, a message id).
#[derive(Debug, Clone, Copy)]
pub enum Part<'a> {
    /// Every entry of the account.
    Account(&'a str),
    /// The items of the account's entries that mention `id`.
    Items {
        /// The account.
        account: &'a str,
        /// The id the items mention.
        id: &'a str,
    },
}

/// Splits a notification into the part about `part` and the rest. `None` when the body is not
/// a JSON notification.
pub fn split_notification(body: &[u8], part: Part<'_>) -> Option<(Value, Value)> {
    let mut rest: Value = serde_json::from_slice(body).ok()?;
    let entries = rest.get_mut("entry")?.as_array_mut()?;
    let mut taken = Vec::new();
    let mut kept = Vec::new();
    for mut entry in entries.drain(..) {
        let account = entry_account(&entry);
        match part {
            Part::Account(a) => {
                if account.as_deref() == Some(a) {
                    taken.push(entry);
                } else {
                    kept.push(entry);
                }
            }
            Part::Items { account: a, id } => {
                if account.as_deref() != Some(a) || !mentions(&entry, id) {
                    kept.push(entry);
                    continue;
                }
                let mut mine = Map::new();
                let mut any_left = false;
                if let Some(obj) = entry.as_object_mut() {
                    for (k, v) in obj.iter_mut() {
                        if let Value::Array(items) = v {
                            let (m, o): (Vec<Value>, Vec<Value>) =
                                items.drain(..).partition(|i| mentions(i, id));
                            if !m.is_empty() {
                                mine.insert(k.clone(), Value::Array(m));
                            }
                            any_left |= !o.is_empty();
                            *items = o;
                        } else if k != "id" && k != "time" && mentions(v, id) {
                            mine.insert(k.clone(), v.take());
                        }
                    }
                    for k in ["id", "time"] {
                        if let Some(v) = obj.get(k) {
                            mine.insert(k.to_owned(), v.clone());
                        }
                    }
                }
                if !mine.is_empty() {
                    taken.push(Value::Object(mine));
                }
                if any_left {
                    kept.push(entry);
                }
            }
        }
    }
    *entries = kept;
    let object = rest.get("object").cloned().unwrap_or(Value::Null);
    let part = serde_json::json!({ "object": object, "entry": taken });
    Some((part, rest))
}

fn part_is_empty(part: &Value) -> bool {
    part.get("entry")
        .and_then(Value::as_array)
        .is_none_or(Vec::is_empty)
}

fn rest_is_empty(rest: &Value) -> bool {
    part_is_empty(rest)
}

/// The part of an inbox record id: `HASH#ACCOUNT` or `HASH#ACCOUNT:IGSID`.
fn parse_inbox_id(id: &str) -> (&str, Option<(&str, Option<&str>)>) {
    match id.split_once('#') {
        None => (id, None),
        Some((hash, rest)) => match rest.split_once(':') {
            None => (hash, Some((rest, None))),
            Some((a, c)) => (hash, Some((a, Some(c)))),
        },
    }
}

impl SqlStore {
    fn body_contains(&self) -> &'static str {
        match self.db.backend() {
            Backend::Sqlite => "instr(CAST(body AS TEXT), $1) > 0",
            Backend::Postgres => "position(convert_to($1, 'UTF8') in body) > 0",
        }
    }

    fn inbox_record(id: String, row: &AnyRow, body: Value) -> KitResult<Record> {
        let received: i64 = row.try_get("received_at").map_err(store_err)?;
        let status: String = row.try_get("status").map_err(store_err)?;
        let link = match parse_inbox_id(&id).1 {
            Some((account, None)) => Some(("account", account.to_owned())),
            Some((account, Some(c))) => Some(("contact", contact_id(account, c))),
            None => None,
        };
        let mut r = Record::new(INBOX, id, to_time(received))
            .field("body", body)
            .field("status", status)
            .field("received_at", received);
        if let Some((name, parent)) = link {
            r = r.link(name, parent);
        }
        Ok(r)
    }

    fn inbox_part(
        hash: &str,
        row: &AnyRow,
        account: &str,
        contact: Option<&str>,
    ) -> KitResult<Option<Record>> {
        let body: Vec<u8> = row.try_get("body").map_err(store_err)?;
        let part = match contact {
            None => Part::Account(account),
            Some(c) => Part::Items { account, id: c },
        };
        let Some((part, _)) = split_notification(&body, part) else {
            return Ok(None);
        };
        if part_is_empty(&part) {
            return Ok(None);
        }
        let id = match contact {
            None => format!("{hash}#{account}"),
            Some(c) => format!("{hash}#{account}:{c}"),
        };
        Self::inbox_record(id, row, part).map(Some)
    }

    async fn inbox_get(&self, id: &str) -> KitResult<Option<Record>> {
        let (hash, part) = parse_inbox_id(id);
        let row = sqlx::query("SELECT id, body, received_at, status FROM inbox WHERE id = $1")
            .bind(hash)
            .fetch_optional(self.db.pool())
            .await
            .map_err(store_err)?;
        let Some(row) = row else { return Ok(None) };
        match part {
            None => {
                let body: Vec<u8> = row.try_get("body").map_err(store_err)?;
                let body = serde_json::from_slice(&body)
                    .unwrap_or_else(|_| Value::from(String::from_utf8_lossy(&body).into_owned()));
                Self::inbox_record(hash.to_owned(), &row, body).map(Some)
            }
            Some((account, contact)) => Self::inbox_part(hash, &row, account, contact),
        }
    }

    /// Parts of notifications mentioning `account` (and `contact`), after `page.after`.
    async fn inbox_parts(
        &self,
        account: &str,
        contact: Option<&str>,
        page: &Page,
    ) -> KitResult<Vec<Record>> {
        let needle = contact.unwrap_or(account);
        let after = page
            .after
            .as_deref()
            .map(|a| parse_inbox_id(a).0.to_owned())
            .unwrap_or_default();
        let mut out = Vec::new();
        let mut cursor = after;
        // Candidates by text search, confirmed by parsing; keep reading until the page is full.
        loop {
            let sql = format!(
                "SELECT id, body, received_at, status FROM inbox WHERE {} AND id > $2 ORDER BY id LIMIT $3",
                self.body_contains()
            );
            let limit = i64::try_from(page.limit.max(1)).unwrap_or(500);
            let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
                .bind(needle)
                .bind(&cursor)
                .bind(limit)
                .fetch_all(self.db.pool())
                .await
                .map_err(store_err)?;
            let full = rows.len() as i64 >= limit;
            for row in &rows {
                let hash: String = row.try_get("id").map_err(store_err)?;
                cursor.clone_from(&hash);
                if let Some(r) = Self::inbox_part(&hash, row, account, contact)? {
                    out.push(r);
                    if out.len() >= page.limit {
                        return Ok(out);
                    }
                }
            }
            if !full {
                return Ok(out);
            }
        }
    }

    async fn inbox_scan(&self, page: &Page) -> KitResult<Vec<Record>> {
        match &self.scope {
            Scope::Account(a) => self.inbox_parts(&a.clone(), None, page).await,
            Scope::All | Scope::InboxOnly => {
                let limit = i64::try_from(page.limit.max(1)).unwrap_or(500);
                let rows = sqlx::query(
                    "SELECT id, body, received_at, status FROM inbox WHERE id > $1 ORDER BY id LIMIT $2",
                )
                .bind(page.after.clone().unwrap_or_default())
                .bind(limit)
                .fetch_all(self.db.pool())
                .await
                .map_err(store_err)?;
                let mut out = Vec::new();
                for row in &rows {
                    let hash: String = row.try_get("id").map_err(store_err)?;
                    let body: Vec<u8> = row.try_get("body").map_err(store_err)?;
                    let body = serde_json::from_slice(&body).unwrap_or(Value::Null);
                    out.push(Self::inbox_record(hash, row, body)?);
                }
                Ok(out)
            }
        }
    }

    /// Deletes a notification or a part of it, in `tx`; whether anything was found.
    async fn inbox_delete(tx: &mut super::Tx, id: &str) -> KitResult<bool> {
        let (hash, part) = parse_inbox_id(id);
        let Some((account, contact)) = part else {
            let done = sqlx::query("DELETE FROM inbox WHERE id = $1")
                .bind(hash)
                .execute(&mut **tx)
                .await
                .map_err(store_err)?;
            return Ok(done.rows_affected() > 0);
        };
        let part = match contact {
            None => Part::Account(account),
            Some(c) => Part::Items { account, id: c },
        };
        redact_notification(tx, hash, part).await.map_err(store_err)
    }
}

/// Removes `part` from notification `hash` in `tx`: the body is rewritten without it, or replaced
/// by [`TOMBSTONE`] when nothing is left (a pending notification is then marked done). Whether
/// the part was there.
pub async fn redact_notification(
    tx: &mut super::Tx,
    hash: &str,
    part: Part<'_>,
) -> super::Result<bool> {
    let row = sqlx::query("SELECT body, status FROM inbox WHERE id = $1")
        .bind(hash)
        .fetch_optional(&mut **tx)
        .await?;
    let Some(row) = row else { return Ok(false) };
    let body: Vec<u8> = row.try_get("body")?;
    let Some((taken, rest)) = split_notification(&body, part) else {
        return Ok(false);
    };
    if part_is_empty(&taken) {
        return Ok(false);
    }
    if rest_is_empty(&rest) {
        // A pending notification nobody holds is done; one a worker holds (it is being
        // processed) is finished by that worker.
        sqlx::query(
            "UPDATE inbox SET body = $1, status = CASE WHEN status = 'pending' AND lease_owner IS NULL \
             THEN 'done' ELSE status END, reason = COALESCE(reason, 'redacted') WHERE id = $2",
        )
        .bind(TOMBSTONE.as_bytes().to_vec())
        .bind(hash)
        .execute(&mut **tx)
        .await?;
    } else {
        sqlx::query("UPDATE inbox SET body = $1 WHERE id = $2")
            .bind(rest.to_string().into_bytes())
            .bind(hash)
            .execute(&mut **tx)
            .await?;
    }
    Ok(true)
}

/// Removes the items mentioning `id` from the notifications of `account` that hold them, except
/// notification `except`; how many notifications changed.
///
/// Mentions of a message (its copies, reactions, reads, its unsend) arrive after it, and the
/// inbox is processed oldest first, so only part of the inbox is searched: the notifications
/// received since the first one that carried the message (its `mid:` event's) or since
/// `except`, whichever is older, less [`MENTION_SLACK_MS`]; and every notification not
/// processed yet. Both go through `inbox_pending` (see [`mentions_sql`]). With neither
/// known, the whole inbox is searched.
pub async fn redact_mentions(
    tx: &mut super::Tx,
    account: &str,
    id: &str,
    except: &str,
) -> super::Result<u64> {
    // the older of the message's first carrier and notification `except`
    let first: Option<i64> = sqlx::query_scalar(
        "SELECT MIN(received_at) FROM inbox WHERE id = $3 OR id IN \
         (SELECT inbox_id FROM events WHERE account = $1 AND key = $2)",
    )
    .bind(account)
    .bind(format!("mid:{id}"))
    .bind(except)
    .fetch_one(&mut **tx)
    .await?;
    let since = first.map_or(i64::MIN, |at| at.saturating_sub(MENTION_SLACK_MS));
    let sql = mentions_sql(tx.backend());
    let ids: Vec<String> = sqlx::query_scalar(sqlx::AssertSqlSafe(sql))
        .bind(id)
        .bind(except)
        .bind(since)
        .fetch_all(&mut **tx)
        .await?;
    let mut changed = 0;
    for hash in ids {
        if redact_notification(tx, &hash, Part::Items { account, id }).await? {
            changed += 1;
        }
    }
    Ok(changed)
}

/// How much earlier than the first notification that carried a message another one may have
/// been received and still mention it (copies delivered out of order): one hour.
pub const MENTION_SLACK_MS: i64 = 3_600_000;

/// The search of [`redact_mentions`]: the ids of the notifications other than `$2` whose body
/// holds `$1`, among those received since `$3` and those still pending. Every status is named,
/// so that both halves are ranges of the `inbox_pending (status, received_at)` index.
pub fn mentions_sql(backend: super::Backend) -> String {
    let contains = match backend {
        super::Backend::Sqlite => "instr(CAST(body AS TEXT), $1) > 0",
        super::Backend::Postgres => "position(convert_to($1, 'UTF8') in body) > 0",
    };
    let statuses = super::inbox::STATUSES
        .iter()
        .map(|s| format!("'{s}'"))
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "SELECT id FROM inbox WHERE status IN ({statuses}) AND received_at >= $3 AND id <> $2 \
         AND {contains} UNION SELECT id FROM inbox WHERE status = '{pending}' AND id <> $2 \
         AND {contains}",
        pending = super::inbox::PENDING
    )
}

/// P20: a message the person unsent is no longer shown or kept. Removes it from the raw
/// notifications that carried it (except `inbox_id`, the notification of the unsend itself,
/// which holds no text), then deletes its event (text and decision) and its message. How many
/// rows changed.
pub async fn unsend(
    tx: &mut super::Tx,
    account: &str,
    mid: &str,
    inbox_id: &str,
) -> super::Result<u64> {
    // first: the event names the notification that carried the message (where to search)
    let bodies = redact_mentions(tx, account, mid, inbox_id).await?;
    let events = sqlx::query("DELETE FROM events WHERE account = $1 AND key = $2")
        .bind(account)
        .bind(format!("mid:{mid}"))
        .execute(&mut **tx)
        .await?
        .rows_affected();
    let messages = super::conversations::unsend(tx, account, mid).await?;
    Ok(events + bodies + messages)
}

/// Whether the person unsent message `mid` of `account` (its unsend was processed).
pub async fn was_unsent(tx: &mut super::Tx, account: &str, mid: &str) -> super::Result<bool> {
    let row = sqlx::query("SELECT 1 AS one FROM events WHERE account = $1 AND key = $2")
        .bind(account)
        .bind(format!("deleted:{mid}"))
        .fetch_optional(&mut **tx)
        .await?;
    Ok(row.is_some())
}

/// P19: records an opt-in of `contact` (the event key makes it idempotent).
pub async fn record_consent(
    tx: &mut super::Tx,
    account: &str,
    contact: &str,
    event: &str,
    payload: Option<&str>,
    at: i64,
) -> super::Result<()> {
    sqlx::query(
        "INSERT INTO consents (account, contact, event, kind, payload, at) VALUES ($1, $2, $3, 'opt_in', $4, $5) \
         ON CONFLICT (account, event) DO NOTHING",
    )
    .bind(account)
    .bind(contact)
    .bind(event)
    .bind(payload)
    .bind(at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// RecordStore

#[async_trait]
impl RecordStore for SqlStore {
    fn transactional(&self) -> bool {
        true
    }

    async fn get(&self, entity: &str, id: &str) -> KitResult<Option<Record>> {
        if entity == INBOX {
            return self.inbox_get(id).await;
        }
        let Some(t) = table(entity) else {
            return Ok(None);
        };
        let sql = format!("{} AND {}", self.select(t), Self::key_where(t, 1));
        let q = sqlx::query(sqlx::AssertSqlSafe(sql));
        let Some(q) = Self::bind_key(t, id, q) else {
            return Ok(None);
        };
        let row = q.fetch_optional(self.db.pool()).await.map_err(store_err)?;
        row.map(|r| Self::record(t, &r)).transpose()
    }

    async fn find(&self, entity: &str, field: &str, value: &str) -> KitResult<Vec<String>> {
        let Some(t) = table(entity) else {
            return Ok(Vec::new());
        };
        if !t.fields.iter().any(|(f, _, _)| *f == field) {
            return Err(privacy_kit::Error::store(format!(
                "`{entity}.{field}` is not a declared field"
            )));
        }
        let sql = format!(
            "SELECT {} AS x__id FROM {} t WHERE CAST(t.{field} AS TEXT) = $1{}",
            Self::id_expr(t),
            t.table,
            if t.filter.is_empty() {
                String::new()
            } else {
                format!(" AND {}", t.filter)
            }
        );
        let rows = self.fetch(sql, vec![Bind::Text(value.to_owned())]).await?;
        rows.iter()
            .map(|r| r.try_get::<String, _>("x__id").map_err(store_err))
            .collect()
    }

    async fn linked(
        &self,
        entity: &str,
        link: &str,
        parent_id: &str,
        page: &Page,
    ) -> KitResult<Vec<Record>> {
        if entity == INBOX {
            return match link {
                "account" => self.inbox_parts(parent_id, None, page).await,
                "contact" => match parent_id.split_once(':') {
                    Some((a, c)) => self.inbox_parts(a, Some(c), page).await,
                    None => Ok(Vec::new()),
                },
                _ => Ok(Vec::new()),
            };
        }
        let Some(t) = table(entity) else {
            return Ok(Vec::new());
        };
        let Some(l) = t.links.iter().find(|l| l.name == link) else {
            return Ok(Vec::new());
        };
        let parts = Self::split(parent_id, l.exprs.len());
        if parts.len() != l.exprs.len() {
            return Ok(Vec::new());
        }
        let mut sql = self.select(t);
        let mut binds = Vec::new();
        for (e, p) in l.exprs.iter().zip(parts) {
            binds.push(Bind::Text(p.to_owned()));
            // A plain (text) column is compared as is, so that its index serves the lookup.
            let plain = e
                .strip_prefix("t.")
                .is_some_and(|c| c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_'));
            let lhs = if plain {
                (*e).to_owned()
            } else {
                format!("CAST({} AS TEXT)", self.expr(e))
            };
            sql.push_str(&format!(" AND {lhs} = ${}", binds.len()));
        }
        if t.anonymizable {
            sql.push_str(" AND t.anonymized_at IS NULL");
        }
        self.page(t, sql, binds, page).await
    }

    async fn scan(&self, entity: &str, page: &Page) -> KitResult<Vec<Record>> {
        if entity == INBOX {
            return self.inbox_scan(page).await;
        }
        if self.scope == Scope::InboxOnly {
            return Ok(Vec::new());
        }
        let Some(t) = table(entity) else {
            return Ok(Vec::new());
        };
        let mut sql = self.select(t);
        let mut binds = Vec::new();
        if let Some(a) = self.scope_account() {
            binds.push(Bind::Text(a.to_owned()));
            sql.push_str(&format!(" AND {} = $1", t.account));
        }
        self.page(t, sql, binds, page).await
    }

    async fn apply(&self, changes: &[Change]) -> KitResult<u64> {
        let mut tx = self.db.begin().await.map_err(store_err)?;
        let mut found = 0;
        for change in changes {
            if apply_one(&mut tx, change).await? {
                found += 1;
            }
        }
        tx.commit().await.map_err(store_err)?;
        Ok(found)
    }
}

impl SqlStore {
    async fn page(
        &self,
        t: &Table,
        mut sql: String,
        mut binds: Vec<Bind>,
        page: &Page,
    ) -> KitResult<Vec<Record>> {
        // Keyset paging on the key columns (their index serves it), in key order.
        let cols: Vec<String> = t.key.iter().map(|(c, _)| format!("t.{c}")).collect();
        if let Some(after) = &page.after {
            let parts = Self::split(after, t.key.len());
            if parts.len() != t.key.len() {
                return Ok(Vec::new());
            }
            let mut marks = Vec::new();
            for ((_, ty), part) in t.key.iter().zip(parts) {
                binds.push(match ty {
                    Ty::Text => Bind::Text(part.to_owned()),
                    Ty::Int => match part.parse::<i64>() {
                        Ok(n) => Bind::Int(n),
                        Err(_) => return Ok(Vec::new()),
                    },
                });
                marks.push(format!("${}", binds.len()));
            }
            if cols.len() == 1 {
                sql.push_str(&format!(" AND {} > {}", cols.join(""), marks.join("")));
            } else {
                sql.push_str(&format!(
                    " AND ({}) > ({})",
                    cols.join(", "),
                    marks.join(", ")
                ));
            }
        }
        binds.push(Bind::Int(i64::try_from(page.limit.max(1)).unwrap_or(500)));
        sql.push_str(&format!(
            " ORDER BY {} LIMIT ${}",
            cols.join(", "),
            binds.len()
        ));
        let rows = self.fetch(sql, binds).await?;
        rows.iter().map(|r| Self::record(t, r)).collect()
    }
}

fn blank_value(t: &Table, field: &str, v: &Value) -> Option<Bind> {
    let (_, _, blank) = t.fields.iter().find(|(f, _, _)| *f == field)?;
    Some(match (v, blank) {
        (Value::Null, Blank::Null) => return None,
        (Value::Null, Blank::EmptyJson) => Bind::Text("{}".into()),
        (Value::String(s), _) => Bind::Text(s.clone()),
        (other, _) => Bind::Text(other.to_string()),
    })
}

async fn apply_one(tx: &mut super::Tx, change: &Change) -> KitResult<bool> {
    let (entity, id) = change.target();
    if entity == INBOX {
        return match change {
            Change::Delete { .. } => SqlStore::inbox_delete(tx, id).await,
            _ => Ok(false),
        };
    }
    let Some(t) = table(entity) else {
        return Ok(false);
    };
    let key_where = SqlStore::key_where(t, 1).replace("t.", "");
    let nkeys = t.key.len();
    let (sql, extra): (String, Vec<Bind>) = match change {
        Change::Delete { .. } if t.entity == "account_token" => (
            format!("UPDATE accounts SET token_sealed = '', token_expires_at = NULL WHERE {key_where} AND token_sealed <> ''"),
            Vec::new(),
        ),
        Change::Delete { .. } => (format!("DELETE FROM {} WHERE {key_where}", t.table), Vec::new()),
        Change::Anonymize { set, at, .. } if t.anonymizable => {
            let mut sets = Vec::new();
            let mut binds = Vec::new();
            for (field, value) in set {
                match blank_value(t, field, value) {
                    Some(b) => {
                        binds.push(b);
                        sets.push(format!("{field} = ${}", nkeys + binds.len()));
                    }
                    None => sets.push(format!("{field} = NULL")),
                }
            }
            binds.push(Bind::Int(at.timestamp_millis()));
            sets.push(format!("anonymized_at = ${}", nkeys + binds.len()));
            (
                format!("UPDATE {} SET {} WHERE {key_where}", t.table, sets.join(", ")),
                binds,
            )
        }
        Change::Unlink { links, .. } => {
            // A detached link's columns become NULL (only links over plain columns detach).
            let mut sets = Vec::new();
            for name in links {
                let Some(l) = t.links.iter().find(|l| l.name == name.as_str()) else {
                    continue;
                };
                for e in l.exprs {
                    match e.strip_prefix("t.") {
                        Some(c) if c.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') => {
                            sets.push(format!("{c} = NULL"));
                        }
                        _ => {}
                    }
                }
            }
            if sets.is_empty() {
                return Ok(false);
            }
            (
                format!("UPDATE {} SET {} WHERE {key_where}", t.table, sets.join(", ")),
                Vec::new(),
            )
        }
        Change::SetAnchor { anchor, at, .. }
            if t.table == "accounts"
                && matches!(anchor, Anchor::Disconnected | Anchor::AccountDeleted) =>
        {
            (
                format!(
                    "UPDATE accounts SET disconnected_at = COALESCE(disconnected_at, ${}), status = 'disconnected', \
                     status_reason = 'the connection was removed' WHERE {key_where}",
                    nkeys + 1
                ),
                vec![Bind::Int(at.timestamp_millis())],
            )
        }
        _ => return Ok(false),
    };
    let q = sqlx::query(sqlx::AssertSqlSafe(sql));
    let Some(mut q) = SqlStore::bind_key(t, id, q) else {
        return Ok(false);
    };
    for b in extra {
        q = match b {
            Bind::Text(s) => q.bind(s),
            Bind::Int(n) => q.bind(n),
        };
    }
    let done = q.execute(&mut **tx).await.map_err(store_err)?;
    Ok(done.rows_affected() > 0)
}

// ---------------------------------------------------------------------------------------------
// ReceiptStore

impl SqlStore {
    fn pseudonymous_subject(&self, subject: &Subject) -> Subject {
        Subject::new(subject.kind.clone(), self.pseudonym(&subject.id))
    }
}

fn status_name(status: &DeletionStatus) -> &'static str {
    match status {
        DeletionStatus::Pending => "pending",
        DeletionStatus::Running => "running",
        DeletionStatus::Done => "done",
        DeletionStatus::Failed { .. } => "failed",
        _ => "other",
    }
}

#[async_trait]
impl ReceiptStore for SqlStore {
    async fn save_receipt(&self, receipt: &DeletionReceipt) -> KitResult<()> {
        let mut stored = receipt.clone();
        stored.subject = self.pseudonymous_subject(&receipt.subject);
        let body = serde_json::to_string(&stored).map_err(store_err)?;
        let pending = (receipt.status != DeletionStatus::Done).then(|| receipt.subject.id.clone());
        let now = Utc::now().timestamp_millis();
        sqlx::query(
            "INSERT INTO deletion_receipts (code, subject_kind, subject_ref, pending_subject, status, body, requested_at, updated_at, org_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) ON CONFLICT (code) DO UPDATE SET \
             pending_subject = excluded.pending_subject, status = excluded.status, body = excluded.body, \
             updated_at = excluded.updated_at",
        )
        .bind(&receipt.confirmation_code)
        .bind(receipt.subject.kind.to_string())
        .bind(&stored.subject.id)
        .bind(pending)
        .bind(status_name(&receipt.status))
        .bind(body)
        .bind(receipt.requested_at.timestamp_millis())
        .bind(now)
        .bind(self.org.as_deref())
        .execute(self.db.pool())
        .await
        .map_err(store_err)?;
        Ok(())
    }

    async fn receipt(&self, confirmation_code: &str) -> KitResult<Option<DeletionReceipt>> {
        let row =
            sqlx::query("SELECT body, pending_subject FROM deletion_receipts WHERE code = $1")
                .bind(confirmation_code)
                .fetch_optional(self.db.pool())
                .await
                .map_err(store_err)?;
        let Some(row) = row else { return Ok(None) };
        let body: String = row.try_get("body").map_err(store_err)?;
        let pending: Option<String> = row.try_get("pending_subject").map_err(store_err)?;
        let mut receipt: DeletionReceipt = serde_json::from_str(&body).map_err(store_err)?;
        if let Some(id) = pending {
            receipt.subject = Subject::new(receipt.subject.kind.clone(), id);
        }
        Ok(Some(receipt))
    }
}

/// Receipts not done (pending, running or failed) requested before `before` (Unix ms): the
/// deletions to resume.
pub async fn unfinished_receipts(db: &Db, before: i64) -> super::Result<Vec<String>> {
    let codes = sqlx::query_scalar(
        "SELECT code FROM deletion_receipts WHERE status <> 'done' AND requested_at < $1 ORDER BY requested_at LIMIT 100",
    )
    .bind(before)
    .fetch_all(db.pool())
    .await?;
    Ok(codes)
}

// ---------------------------------------------------------------------------------------------
// AuditLog

impl SqlStore {
    /// The event with every person's or account's id replaced by its pseudonym, and the
    /// pseudonym of the account it concerns.
    fn pseudonymous_event(&self, event: AuditEvent) -> (AuditEvent, Option<String>) {
        let account_of = |s: &Subject| -> String {
            match s.kind {
                SubjectKind::Contact => {
                    self.pseudonym(s.id.split_once(':').map_or(s.id.as_str(), |(a, _)| a))
                }
                _ => self.pseudonym(&s.id),
            }
        };
        match event {
            AuditEvent::ExportMade {
                subject,
                records,
                manifest_sha256,
            } => (
                AuditEvent::ExportMade {
                    subject: self.pseudonymous_subject(&subject),
                    records,
                    manifest_sha256,
                },
                Some(account_of(&subject)),
            ),
            AuditEvent::DeletionRequested {
                confirmation_code,
                subject,
                source,
            } => (
                AuditEvent::DeletionRequested {
                    confirmation_code,
                    subject: self.pseudonymous_subject(&subject),
                    source,
                },
                Some(account_of(&subject)),
            ),
            AuditEvent::Disconnected {
                connections,
                credentials_deleted,
            } => {
                let connections: Vec<String> =
                    connections.iter().map(|c| self.pseudonym(c)).collect();
                let account = connections.first().cloned();
                (
                    AuditEvent::Disconnected {
                        connections,
                        credentials_deleted,
                    },
                    account,
                )
            }
            AuditEvent::LegalRequestReceived {
                request_id,
                authority,
                legal_basis,
                subjects,
            } => (
                AuditEvent::LegalRequestReceived {
                    request_id,
                    authority,
                    legal_basis,
                    subjects: subjects
                        .iter()
                        .map(|s| self.pseudonymous_subject(s))
                        .collect(),
                },
                subjects.first().map(account_of),
            ),
            AuditEvent::LegalRequestAnswered {
                request_id,
                response,
                legal_basis,
                disclosed,
            } => (
                AuditEvent::LegalRequestAnswered {
                    request_id,
                    response,
                    legal_basis,
                    disclosed: disclosed
                        .iter()
                        .map(|d| {
                            Disclosed::new(
                                d.entity.clone(),
                                d.record_ids.iter().map(|i| self.pseudonym(i)).collect(),
                            )
                        })
                        .collect(),
                },
                None,
            ),
            other => (other, None),
        }
    }

    /// Appends an event with an account reference given by the caller (already a pseudonym).
    async fn append_entry(
        &self,
        at: DateTime<Utc>,
        event: AuditEvent,
        account_ref: Option<String>,
        org: Option<&str>,
    ) -> KitResult<AuditEntry> {
        let mut tx = self.db.begin().await.map_err(store_err)?;
        // One writer at a time extends the chain (SQLite: the write transaction already is).
        if self.db.backend() == Backend::Postgres {
            sqlx::query("LOCK TABLE privacy_audit IN SHARE ROW EXCLUSIVE MODE")
                .execute(&mut *tx)
                .await
                .map_err(store_err)?;
        }
        let last: Option<String> =
            sqlx::query_scalar("SELECT body FROM privacy_audit ORDER BY seq DESC LIMIT 1")
                .fetch_optional(&mut *tx)
                .await
                .map_err(store_err)?;
        let prev: Option<AuditEntry> = last
            .map(|b| serde_json::from_str(&b))
            .transpose()
            .map_err(store_err)?;
        let entry = AuditEntry::next(prev.as_ref(), at, event)?;
        sqlx::query(
            "INSERT INTO privacy_audit (seq, at, account_ref, actor, body, org_id) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(i64::try_from(entry.seq).unwrap_or(i64::MAX))
        .bind(at.timestamp_millis())
        .bind(account_ref)
        .bind(&self.actor)
        .bind(serde_json::to_string(&entry).map_err(store_err)?)
        .bind(org)
        .execute(&mut *tx)
        .await
        .map_err(store_err)?;
        tx.commit().await.map_err(store_err)?;
        Ok(entry)
    }

    /// Appends a retention run of `account` to the register.
    pub async fn append_for_account(
        &self,
        at: DateTime<Utc>,
        event: AuditEvent,
        account: &str,
    ) -> KitResult<AuditEntry> {
        let account_ref = self.pseudonym(account);
        let (event, _) = self.pseudonymous_event(event);
        let org: Option<String> = match &self.org {
            Some(o) => Some(o.clone()),
            None => sqlx::query_scalar("SELECT org_id FROM accounts WHERE id = $1")
                .bind(account)
                .fetch_optional(self.db.pool())
                .await
                .map_err(store_err)?,
        };
        self.append_entry(at, event, Some(account_ref), org.as_deref())
            .await
    }
}

#[async_trait]
impl AuditLog for SqlStore {
    async fn append(&self, at: DateTime<Utc>, event: AuditEvent) -> KitResult<AuditEntry> {
        let (event, account_ref) = self.pseudonymous_event(event);
        let org = self.org.clone();
        self.append_entry(at, event, account_ref, org.as_deref())
            .await
    }

    async fn entries(&self, after: Option<u64>, limit: usize) -> KitResult<Vec<AuditEntry>> {
        let rows: Vec<String> = sqlx::query_scalar(
            "SELECT body FROM privacy_audit WHERE seq > $1 ORDER BY seq LIMIT $2",
        )
        .bind(i64::try_from(after.unwrap_or(0)).unwrap_or(i64::MAX))
        .bind(i64::try_from(limit.max(1)).unwrap_or(1000))
        .fetch_all(self.db.pool())
        .await
        .map_err(store_err)?;
        rows.iter()
            .map(|b| serde_json::from_str(b).map_err(store_err))
            .collect()
    }
}

/// One audit register row as the API lists it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct AuditRow {
    /// The privacy-kit entry (hash-chained).
    pub entry: AuditEntry,
    /// Who acted (`api`, `meta`, `retention`).
    pub actor: String,
    /// For a finished deletion: records changed per table, from its receipt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub counts: Option<BTreeMap<String, privacy_kit::cascade::Counts>>,
}

/// Audit entries of organization `org` after `after`, with actor and (for deletions) the
/// counts per table; only those of `account` when given. The entries are read on `conn` (e.g.
/// a [`super::Db::read_as`] transaction, so that row-level security stands behind the query);
/// the counts come from the receipts those entries name.
pub async fn audit_rows(
    conn: &mut sqlx::AnyConnection,
    store: &SqlStore,
    org: &str,
    account: Option<&str>,
    after: i64,
    limit: i64,
) -> super::Result<Vec<AuditRow>> {
    let account_ref = account.map(|a| store.pseudonym(a));
    let rows = sqlx::query(
        "SELECT actor, body FROM privacy_audit \
         WHERE seq > $1 AND ($2 = '' OR account_ref = $2) AND org_id = $4 ORDER BY seq LIMIT $3",
    )
    .bind(after)
    .bind(account_ref.unwrap_or_default())
    .bind(limit.clamp(1, 1000))
    .bind(org)
    .fetch_all(&mut *conn)
    .await?;
    let mut out = Vec::new();
    for r in rows {
        let body: String = r.try_get("body")?;
        let entry: AuditEntry = serde_json::from_str(&body).map_err(|e| {
            super::Error::new(super::ErrorKind::Database, format!("audit entry: {e}"))
        })?;
        let counts = match &entry.event {
            AuditEvent::DeletionFinished {
                confirmation_code, ..
            } => store
                .receipt(confirmation_code)
                .await
                .ok()
                .flatten()
                .map(|r| r.counts),
            _ => None,
        };
        out.push(AuditRow {
            entry,
            actor: r.try_get("actor")?,
            counts,
        });
    }
    Ok(out)
}

/// The organization an account belongs to (`None` for an unknown account).
pub async fn org_of_account(db: &Db, account: &str) -> super::Result<Option<String>> {
    Ok(
        sqlx::query_scalar("SELECT org_id FROM accounts WHERE id = $1")
            .bind(account)
            .fetch_optional(db.pool())
            .await?,
    )
}

/// Records a (re)connection: the app-scoped id Meta's callbacks use, and the connection is no
/// longer removed (its data no longer counts down to deletion).
pub async fn connected(db: &Db, account: &str, app_user_id: Option<&str>) -> super::Result<()> {
    sqlx::query(
        "UPDATE accounts SET app_user_id = COALESCE($1, app_user_id), disconnected_at = NULL WHERE id = $2",
    )
    .bind(app_user_id)
    .bind(account)
    .execute(db.pool())
    .await?;
    Ok(())
}

/// Makes sure a `contacts` row exists in every account (or only `account`) where `contact` left
/// data (events, outbox rows to it, consents, automation state) without one, so that a deletion
/// or an export starting from the contact reaches that data too. The accounts concerned.
pub async fn ensure_contact_rows(
    db: &Db,
    account: Option<&str>,
    contact: &str,
    now: DateTime<Utc>,
) -> super::Result<Vec<String>> {
    let accounts: Vec<String> = sqlx::query_scalar(
        "SELECT DISTINCT account FROM ( \
           SELECT account FROM events WHERE contact = $1 \
           UNION SELECT account FROM outbox WHERE recipient = $1 \
           UNION SELECT account FROM consents WHERE contact = $1 \
           UNION SELECT account FROM firings WHERE contact = $1 \
           UNION SELECT account FROM flow_states WHERE contact = $1 \
           UNION SELECT account FROM wakes WHERE contact = $1) x \
         WHERE ($2 = '' OR account = $2) AND NOT EXISTS \
           (SELECT 1 FROM contacts c WHERE c.account = x.account AND c.id = $1)",
    )
    .bind(contact)
    .bind(account.unwrap_or_default())
    .fetch_all(db.pool())
    .await?;
    for a in &accounts {
        let body = serde_json::to_string(&automation_core::Contact::new(a.as_str(), contact, now))
            .map_err(|e| super::Error::new(super::ErrorKind::Database, format!("contact: {e}")))?;
        sqlx::query(
            "INSERT INTO contacts (account, id, username, body, last_interaction) VALUES ($1, $2, NULL, $3, $4) \
             ON CONFLICT (account, id) DO NOTHING",
        )
        .bind(a)
        .bind(contact)
        .bind(body)
        .bind(now.timestamp_millis())
        .execute(db.pool())
        .await?;
    }
    Ok(accounts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[tokio::test]
    async fn the_search_for_an_unsent_messages_mentions_reads_no_whole_inbox() {
        let t = super::super::testing::temp_db().await;
        let sql = mentions_sql(t.db.backend());
        let plan: Vec<String> =
            sqlx::query(sqlx::AssertSqlSafe(format!("EXPLAIN QUERY PLAN {sql}")))
                .bind("mid.1")
                .bind("except")
                .bind(0_i64)
                .fetch_all(t.db.pool())
                .await
                .unwrap()
                .iter()
                .map(|r| r.try_get::<String, _>("detail").unwrap())
                .collect();
        let inbox: Vec<&String> = plan.iter().filter(|d| d.contains("inbox")).collect();
        assert_eq!(inbox.len(), 2, "{plan:?}");
        for step in inbox {
            assert!(step.contains("USING INDEX inbox_pending"), "{plan:?}");
        }
    }

    fn body(v: &Value) -> Vec<u8> {
        v.to_string().into_bytes()
    }

    #[test]
    fn the_schema_is_valid_and_every_table_is_reachable() {
        let s = schema();
        assert_eq!(s.entities().len(), TABLES.len() + 1);
        let order = s.deletion_order();
        let pos = |n: &str| order.iter().position(|x| *x == n).unwrap();
        assert!(pos("delivery_log") < pos("outbox") && pos("outbox") < pos("contacts"));
        assert!(pos("contacts") < pos("accounts") && pos(INBOX) < pos("contacts"));
    }

    #[test]
    fn a_notification_is_split_per_person_and_per_account() {
        let n = json!({"object": "instagram", "entry": [
            {"id": "A", "time": 1, "changes": [
                {"field": "comments", "value": {"id": "c1", "from": {"id": "X"}, "text": "x says"}},
                {"field": "comments", "value": {"id": "c2", "from": {"id": "Y"}, "text": "y says"}}]},
            {"id": "B", "time": 1, "messaging": [{"sender": {"id": "X"}, "message": {"mid": "m"}}]}]});
        let (part, rest) = split_notification(
            &body(&n),
            Part::Items {
                account: "A",
                id: "X",
            },
        )
        .unwrap();
        assert_eq!(part["entry"][0]["changes"][0]["value"]["id"], "c1");
        assert_eq!(part["entry"][0]["id"], "A");
        assert_eq!(part["entry"].as_array().unwrap().len(), 1);
        // the rest keeps Y's comment and account B's entry (X there belongs to B's contact)
        let text = rest.to_string();
        assert!(!text.contains("x says") && text.contains("y says"));
        assert_eq!(rest["entry"].as_array().unwrap().len(), 2);
        let (part, rest) = split_notification(&body(&n), Part::Account("B")).unwrap();
        assert_eq!(part["entry"][0]["id"], "B");
        assert_eq!(rest["entry"].as_array().unwrap().len(), 1);
        // numbers are ids too; nothing mentioned: empty part
        let numeric = json!({"entry": [{"id": 7, "messaging": [{"sender": {"id": 42}}]}]});
        let (part, rest) = split_notification(
            &body(&numeric),
            Part::Items {
                account: "7",
                id: "42",
            },
        )
        .unwrap();
        assert!(!part_is_empty(&part) && rest_is_empty(&rest));
        let (part, _) = split_notification(
            &body(&numeric),
            Part::Items {
                account: "7",
                id: "4",
            },
        )
        .unwrap();
        assert!(part_is_empty(&part));
        assert!(split_notification(b"not json", Part::Account("A")).is_none());
    }

    #[test]
    fn inbox_record_ids_name_their_part() {
        assert_eq!(parse_inbox_id("h"), ("h", None));
        assert_eq!(parse_inbox_id("h#A"), ("h", Some(("A", None))));
        assert_eq!(parse_inbox_id("h#A:X"), ("h", Some(("A", Some("X")))));
        assert_eq!(SqlStore::split("A:mid:x", 2), ["A", "mid:x"]);
        assert_eq!(SqlStore::split("k:1#0", 1), ["k:1#0"]);
    }
}
