//! The schema of personal data: entities, their data class and personal fields, the relations
//! between them with what happens on delete, and the subjects a deletion or export starts from.
//!
//! ```
//! use privacy_kit::schema::{DataClass, FieldKind, OnDelete, Schema, SubjectKey};
//! use privacy_kit::cascade::SubjectKind;
//!
//! let schema = Schema::builder()
//!     .entity("contact", DataClass::Contact, [("username", FieldKind::Personal)])
//!     .entity("message", DataClass::Conversation, [("text", FieldKind::Personal)])
//!     .relation("contact", "message", "contact_id", OnDelete::Cascade)
//!     .subject(SubjectKind::Contact, "contact", SubjectKey::Id)
//!     .build()?;
//! assert_eq!(schema.deletion_order(), ["message", "contact"]);
//! # Ok::<(), privacy_kit::Error>(())
//! ```

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;

use chrono::{DateTime, Utc};
use hmac::{KeyInit, Mac};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::cascade::SubjectKind;
use crate::error::{Error, Result, SchemaProblem};
use crate::secret::{Secret, REDACTED};
use crate::store::{Change, Record};

/// The kind of data an entity holds; retention policies are set per data class.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum DataClass {
    /// Organizations, members, connected accounts.
    Account,
    /// Access tokens and other credentials.
    Credential,
    /// Contact profiles (the people a business talks to).
    Contact,
    /// Conversations and messages.
    Conversation,
    /// Comments on media.
    Engagement,
    /// Logs of sent DMs (recipient, status, time, error).
    DeliveryLog,
    /// Automations, flows, configuration.
    Configuration,
    /// Payment records.
    Payment,
    /// Support correspondence.
    SupportCorrespondence,
    /// Audit and accountability records.
    Audit,
    /// Any other class, by name.
    #[serde(untagged)]
    Other(String),
}

impl fmt::Display for DataClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            Self::Account => "account",
            Self::Credential => "credential",
            Self::Contact => "contact",
            Self::Conversation => "conversation",
            Self::Engagement => "engagement",
            Self::DeliveryLog => "delivery_log",
            Self::Configuration => "configuration",
            Self::Payment => "payment",
            Self::SupportCorrespondence => "support_correspondence",
            Self::Audit => "audit",
            Self::Other(s) => s,
        };
        f.write_str(s)
    }
}

/// How a field is treated by anonymization and export.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[non_exhaustive]
pub enum FieldKind {
    /// Not personal (kept as is). Declare it when it is used as a subject key.
    Plain,
    /// Personal: blanked (set to null) on anonymization.
    Personal,
    /// A personal identifier replaced by a stable pseudonym on anonymization, so that counts of
    /// distinct values survive.
    Pseudonymized,
    /// A secret: blanked on anonymization and redacted in exports.
    Secret,
}

/// What happens to a child record when its parent is deleted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "action", rename_all = "snake_case")]
#[non_exhaustive]
pub enum OnDelete {
    /// Delete the child too (and what hangs below it).
    Cascade,
    /// Keep the child, anonymized (personal fields blanked, identifiers pseudonymized) and
    /// unlinked from the parent, so aggregates stay countable.
    Anonymize,
    /// Keep the child and remove its link to the parent.
    Detach,
    /// Keep the child unchanged because the law requires it; the receipt names the legal basis.
    Restrict {
        /// The legal basis for keeping the records.
        legal_basis: String,
    },
}

/// A declared entity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Entity {
    /// Its name (table name).
    pub name: String,
    /// Its data class.
    pub data_class: DataClass,
    /// Its declared fields.
    pub fields: BTreeMap<String, FieldKind>,
}

/// A parent-child relation: records of `child` link to records of `parent` through `link`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Relation {
    /// The parent entity.
    pub parent: String,
    /// The child entity.
    pub child: String,
    /// The link (foreign key) name on the child.
    pub link: String,
    /// What happens to children when the parent is deleted.
    pub on_delete: OnDelete,
}

/// How a subject id finds its records.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub enum SubjectKey {
    /// The subject id is the record id.
    Id,
    /// The subject id is the value of this field (for example `instagram_user_id`).
    Field(String),
}

/// Where subjects of one kind live.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct SubjectMapping {
    /// The kind of subject.
    pub kind: SubjectKind,
    /// The entity holding it.
    pub entity: String,
    /// How the id finds records.
    pub key: SubjectKey,
}

/// Builds and validates a [`Schema`].
#[derive(Debug, Default)]
pub struct SchemaBuilder {
    entities: Vec<Entity>,
    relations: Vec<Relation>,
    subjects: Vec<SubjectMapping>,
}

impl SchemaBuilder {
    /// Declares an entity with its data class and fields.
    #[must_use]
    pub fn entity<'a>(
        mut self,
        name: &str,
        data_class: DataClass,
        fields: impl IntoIterator<Item = (&'a str, FieldKind)>,
    ) -> Self {
        self.entities.push(Entity {
            name: name.to_owned(),
            data_class,
            fields: fields.into_iter().map(|(f, k)| (f.to_owned(), k)).collect(),
        });
        self
    }

    /// Declares that `child` records link to `parent` records through `link`.
    #[must_use]
    pub fn relation(mut self, parent: &str, child: &str, link: &str, on_delete: OnDelete) -> Self {
        self.relations.push(Relation {
            parent: parent.to_owned(),
            child: child.to_owned(),
            link: link.to_owned(),
            on_delete,
        });
        self
    }

    /// Declares where subjects of `kind` live.
    #[must_use]
    pub fn subject(mut self, kind: SubjectKind, entity: &str, key: SubjectKey) -> Self {
        self.subjects.push(SubjectMapping {
            kind,
            entity: entity.to_owned(),
            key,
        });
        self
    }

    /// Validates and builds the schema: no duplicate or unknown entities, no unknown key fields,
    /// no cycles, every entity reachable from a subject.
    pub fn build(self) -> Result<Schema> {
        let mut index = HashMap::new();
        for (i, e) in self.entities.iter().enumerate() {
            if index.insert(e.name.clone(), i).is_some() {
                return Err(Error::schema(SchemaProblem::DuplicateEntity {
                    entity: e.name.clone(),
                }));
            }
        }
        let known = |name: &str| -> Result<()> {
            if index.contains_key(name) {
                Ok(())
            } else {
                Err(Error::schema(SchemaProblem::UnknownEntity {
                    entity: name.to_owned(),
                }))
            }
        };
        for r in &self.relations {
            known(&r.parent)?;
            known(&r.child)?;
        }
        if self.subjects.is_empty() {
            return Err(Error::schema(SchemaProblem::NoSubject));
        }
        for s in &self.subjects {
            known(&s.entity)?;
            if let SubjectKey::Field(f) = &s.key {
                let declared = self
                    .entities
                    .iter()
                    .any(|e| e.name == s.entity && e.fields.contains_key(f));
                if !declared {
                    return Err(Error::schema(SchemaProblem::UnknownField {
                        entity: s.entity.clone(),
                        field: f.clone(),
                    }));
                }
            }
        }
        // children adjacency in declaration order
        let mut children: HashMap<&str, Vec<&str>> = HashMap::new();
        for r in &self.relations {
            children.entry(&r.parent).or_default().push(&r.child);
        }
        // cycle detection + topological order (DFS, post-order)
        let mut state: HashMap<&str, u8> = HashMap::new(); // 1 = on stack, 2 = done
        let mut post: Vec<String> = Vec::new();
        fn visit<'a>(
            node: &'a str,
            children: &HashMap<&'a str, Vec<&'a str>>,
            state: &mut HashMap<&'a str, u8>,
            stack: &mut Vec<&'a str>,
            post: &mut Vec<String>,
        ) -> Result<()> {
            match state.get(node) {
                Some(2) => return Ok(()),
                Some(_) => {
                    let start = stack.iter().position(|n| *n == node).unwrap_or(0);
                    let mut path: Vec<String> =
                        stack[start..].iter().map(|s| (*s).to_owned()).collect();
                    path.push(node.to_owned());
                    return Err(Error::schema(SchemaProblem::Cycle { path }));
                }
                None => {}
            }
            state.insert(node, 1);
            stack.push(node);
            for c in children.get(node).into_iter().flatten() {
                visit(c, children, state, stack, post)?;
            }
            stack.pop();
            state.insert(node, 2);
            post.push(node.to_owned());
            Ok(())
        }
        for e in &self.entities {
            let mut stack = Vec::new();
            visit(&e.name, &children, &mut state, &mut stack, &mut post)?;
        }
        let mut topo = post;
        topo.reverse();
        // reachability from subject entities
        let mut reached: BTreeSet<&str> = BTreeSet::new();
        let mut frontier: Vec<&str> = self.subjects.iter().map(|s| s.entity.as_str()).collect();
        while let Some(n) = frontier.pop() {
            if reached.insert(n) {
                frontier.extend(children.get(n).into_iter().flatten().copied());
            }
        }
        for e in &self.entities {
            if !reached.contains(e.name.as_str()) {
                return Err(Error::schema(SchemaProblem::Unreachable {
                    entity: e.name.clone(),
                }));
            }
        }
        Ok(Schema {
            entities: self.entities,
            index,
            relations: self.relations,
            subjects: self.subjects,
            topo,
        })
    }
}

/// A validated schema of personal data.
#[derive(Debug, Clone, Serialize)]
pub struct Schema {
    entities: Vec<Entity>,
    #[serde(skip)]
    index: HashMap<String, usize>,
    relations: Vec<Relation>,
    subjects: Vec<SubjectMapping>,
    #[serde(skip)]
    topo: Vec<String>,
}

impl Schema {
    /// A builder.
    pub fn builder() -> SchemaBuilder {
        SchemaBuilder::default()
    }

    /// The entities, in declaration order.
    pub fn entities(&self) -> &[Entity] {
        &self.entities
    }

    /// One entity by name.
    pub fn entity(&self, name: &str) -> Option<&Entity> {
        self.index.get(name).and_then(|i| self.entities.get(*i))
    }

    /// The relations.
    pub fn relations(&self) -> &[Relation] {
        &self.relations
    }

    /// Relations whose parent is `entity`.
    pub fn children_of<'a>(&'a self, entity: &'a str) -> impl Iterator<Item = &'a Relation> + 'a {
        self.relations.iter().filter(move |r| r.parent == entity)
    }

    /// Relations whose child is `entity`.
    pub fn parents_of<'a>(&'a self, entity: &'a str) -> impl Iterator<Item = &'a Relation> + 'a {
        self.relations.iter().filter(move |r| r.child == entity)
    }

    /// The subject mappings.
    pub fn subjects(&self) -> &[SubjectMapping] {
        &self.subjects
    }

    /// Entities with parents before children.
    pub fn topological_order(&self) -> &[String] {
        &self.topo
    }

    /// Entities with children before parents: the order deletions run in.
    pub fn deletion_order(&self) -> Vec<&str> {
        self.topo.iter().rev().map(String::as_str).collect()
    }

    /// The change that anonymizes `record`: personal and secret fields set to null, pseudonymized
    /// fields replaced by their pseudonym, `unlink` links removed.
    pub fn anonymization(
        &self,
        record: &Record,
        pseudonymizer: &Pseudonymizer,
        unlink: Vec<String>,
        at: DateTime<Utc>,
    ) -> Change {
        let mut set = Map::new();
        if let Some(entity) = self.entity(&record.entity) {
            for (name, kind) in &entity.fields {
                match kind {
                    FieldKind::Plain => {}
                    FieldKind::Personal | FieldKind::Secret => {
                        set.insert(name.clone(), Value::Null);
                    }
                    FieldKind::Pseudonymized => {
                        let v = match record.fields.get(name) {
                            None | Some(Value::Null) => Value::Null,
                            Some(v) => Value::String(pseudonymizer.pseudonym(v)),
                        };
                        set.insert(name.clone(), v);
                    }
                }
            }
        }
        Change::Anonymize {
            entity: record.entity.clone(),
            id: record.id.clone(),
            set,
            unlink,
            at,
        }
    }

    /// The record's fields as they may leave the system in an export: secret fields (and any
    /// value that looks like a sealed vault token) redacted.
    pub fn redacted_fields(&self, record: &Record) -> Map<String, Value> {
        let view = self.redacted_view(record);
        record
            .fields
            .iter()
            .map(|(k, v)| {
                let v = if view.is_redacted(k, v) {
                    Value::String(REDACTED.to_owned())
                } else {
                    v.clone()
                };
                (k.clone(), v)
            })
            .collect()
    }

    /// A serializable view of the record's fields, redacted like
    /// [`redacted_fields`](Self::redacted_fields), without copying them.
    pub fn redacted_view<'a>(&'a self, record: &'a Record) -> RedactedFields<'a> {
        RedactedFields {
            kinds: self.entity(&record.entity).map(|e| &e.fields),
            fields: &record.fields,
        }
    }

    /// The schema of the typical Instagram DM / comment automation product: 13 entities from
    /// organization down to messages, with payments kept under a legal restriction.
    pub fn example() -> Self {
        use FieldKind::{Personal, Plain, Pseudonymized};
        let kept = |basis: &str| OnDelete::Restrict {
            legal_basis: basis.to_owned(),
        };
        let built = Schema::builder()
            .entity(
                "organization",
                DataClass::Account,
                [("name", Personal), ("billing_email", Personal)],
            )
            .entity(
                "member",
                DataClass::Account,
                [("email", Personal), ("name", Personal), ("role", Plain)],
            )
            .entity(
                "instagram_connection",
                DataClass::Account,
                [("instagram_user_id", Plain), ("username", Personal)],
            )
            .entity(
                "access_token",
                DataClass::Credential,
                [("token", FieldKind::Secret), ("expires_at", Plain)],
            )
            .entity(
                "contact",
                DataClass::Contact,
                [
                    ("igsid", Pseudonymized),
                    ("username", Personal),
                    ("name", Personal),
                    ("profile_pic", Personal),
                ],
            )
            .entity("conversation", DataClass::Conversation, [("status", Plain)])
            .entity(
                "message",
                DataClass::Conversation,
                [("text", Personal), ("sender_igsid", Pseudonymized)],
            )
            .entity(
                "comment",
                DataClass::Engagement,
                [
                    ("text", Personal),
                    ("commenter_igsid", Pseudonymized),
                    ("commenter_username", Personal),
                ],
            )
            .entity(
                "delivery_log",
                DataClass::DeliveryLog,
                [
                    ("recipient_igsid", Pseudonymized),
                    ("status", Plain),
                    ("error", Plain),
                ],
            )
            .entity("automation", DataClass::Configuration, [("name", Plain)])
            .entity(
                "audit_entry",
                DataClass::Audit,
                [("action", Plain), ("actor_ip", Personal)],
            )
            .entity(
                "payment",
                DataClass::Payment,
                [("amount", Plain), ("payer_name", Personal)],
            )
            .entity(
                "support_ticket",
                DataClass::SupportCorrespondence,
                [("subject", Personal), ("body", Personal)],
            )
            .relation(
                "organization",
                "member",
                "organization_id",
                OnDelete::Cascade,
            )
            .relation(
                "organization",
                "instagram_connection",
                "organization_id",
                OnDelete::Cascade,
            )
            .relation(
                "instagram_connection",
                "access_token",
                "connection_id",
                OnDelete::Cascade,
            )
            .relation(
                "instagram_connection",
                "contact",
                "connection_id",
                OnDelete::Cascade,
            )
            .relation("contact", "conversation", "contact_id", OnDelete::Cascade)
            .relation(
                "conversation",
                "message",
                "conversation_id",
                OnDelete::Cascade,
            )
            .relation(
                "instagram_connection",
                "comment",
                "connection_id",
                OnDelete::Cascade,
            )
            .relation("contact", "comment", "contact_id", OnDelete::Anonymize)
            .relation(
                "instagram_connection",
                "delivery_log",
                "connection_id",
                OnDelete::Cascade,
            )
            .relation("contact", "delivery_log", "contact_id", OnDelete::Anonymize)
            .relation(
                "instagram_connection",
                "automation",
                "connection_id",
                OnDelete::Cascade,
            )
            .relation("member", "automation", "created_by", OnDelete::Detach)
            .relation(
                "organization",
                "audit_entry",
                "organization_id",
                OnDelete::Cascade,
            )
            .relation("member", "audit_entry", "actor_id", OnDelete::Anonymize)
            .relation(
                "organization",
                "payment",
                "organization_id",
                kept("tax and accounting law: payment records are kept 7 years"),
            )
            .relation(
                "organization",
                "support_ticket",
                "organization_id",
                OnDelete::Cascade,
            )
            .relation("member", "support_ticket", "member_id", OnDelete::Detach)
            .subject(SubjectKind::Organization, "organization", SubjectKey::Id)
            .subject(SubjectKind::Member, "member", SubjectKey::Id)
            .subject(
                SubjectKind::Connection,
                "instagram_connection",
                SubjectKey::Id,
            )
            .subject(
                SubjectKind::InstagramUser,
                "instagram_connection",
                SubjectKey::Field("instagram_user_id".to_owned()),
            )
            .subject(SubjectKind::Contact, "contact", SubjectKey::Id)
            .build();
        match built {
            Ok(schema) => schema,
            // The example is fixed and covered by tests; an error here is a bug in this crate.
            Err(e) => unreachable!("the example schema is valid: {e}"),
        }
    }
}

/// The fields of a record, serialized with secrets redacted. See [`Schema::redacted_view`].
#[derive(Debug, Clone, Copy)]
pub struct RedactedFields<'a> {
    kinds: Option<&'a BTreeMap<String, FieldKind>>,
    fields: &'a Map<String, Value>,
}

impl RedactedFields<'_> {
    fn is_redacted(&self, name: &str, value: &Value) -> bool {
        if value.is_null() {
            return false;
        }
        self.kinds
            .and_then(|k| k.get(name))
            .is_some_and(|kind| *kind == FieldKind::Secret)
            || value
                .as_str()
                .is_some_and(|s| s.starts_with(crate::vault::TEXT_PREFIX))
    }
}

impl Serialize for RedactedFields<'_> {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(self.fields.len()))?;
        for (k, v) in self.fields {
            if self.is_redacted(k, v) {
                map.serialize_entry(k, REDACTED)?;
            } else {
                map.serialize_entry(k, v)?;
            }
        }
        map.end()
    }
}

/// Replaces identifiers by stable pseudonyms: HMAC-SHA256 under a secret key, so the same value
/// always gets the same pseudonym (distinct counts survive) and nobody without the key can
/// recompute it.
#[derive(Clone)]
pub struct Pseudonymizer {
    key: Secret<Vec<u8>>,
}

impl fmt::Debug for Pseudonymizer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Pseudonymizer([redacted])")
    }
}

impl Pseudonymizer {
    /// A pseudonymizer with a key of at least 16 bytes.
    pub fn new(key: Secret<Vec<u8>>) -> Result<Self> {
        if key.expose().len() < 16 {
            return Err(Error::invalid(
                "a pseudonymization key needs at least 16 bytes; use 32 random bytes",
            ));
        }
        Ok(Self { key })
    }

    /// A pseudonymizer with a fresh random key from the operating system.
    pub fn random() -> Result<Self> {
        let mut key = Secret::new(vec![0u8; 32]);
        crate::random::fill(key.expose_mut())?;
        Ok(Self { key })
    }

    /// The pseudonym of a value: `psn_` and 32 hex digits.
    pub fn pseudonym(&self, value: &Value) -> String {
        let text = match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        let mac = <hmac::Hmac<sha2::Sha256> as KeyInit>::new_from_slice(self.key.expose());
        match mac {
            Ok(mut mac) => {
                mac.update(text.as_bytes());
                let out = mac.finalize().into_bytes();
                format!("psn_{}", hex::encode(&out[..16]))
            }
            // HMAC accepts keys of any length; keep a non-panicking fallback anyway.
            Err(_) => "psn_unavailable".to_owned(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    fn problem(b: SchemaBuilder) -> SchemaProblem {
        match b.build().unwrap_err().kind() {
            ErrorKind::Schema(p) => p.clone(),
            other => panic!("unexpected {other:?}"),
        }
    }

    fn base() -> SchemaBuilder {
        Schema::builder()
            .entity("a", DataClass::Account, [("k", FieldKind::Plain)])
            .entity("b", DataClass::Contact, [])
            .subject(SubjectKind::Organization, "a", SubjectKey::Id)
    }

    #[test]
    fn example_is_valid_and_large_enough() {
        let s = Schema::example();
        assert!(s.entities().len() >= 10);
        let order = s.deletion_order();
        let pos = |n: &str| order.iter().position(|x| *x == n).unwrap();
        for r in s.relations() {
            assert!(
                pos(&r.child) < pos(&r.parent),
                "{} before {}",
                r.child,
                r.parent
            );
        }
    }

    #[test]
    fn validation_errors_are_typed() {
        assert_eq!(
            problem(base().relation("a", "b", "a_id", OnDelete::Cascade).entity(
                "a",
                DataClass::Account,
                []
            )),
            SchemaProblem::DuplicateEntity { entity: "a".into() }
        );
        assert_eq!(
            problem(base().relation("a", "zzz", "a_id", OnDelete::Cascade)),
            SchemaProblem::UnknownEntity {
                entity: "zzz".into()
            }
        );
        assert_eq!(
            problem(base()),
            SchemaProblem::Unreachable { entity: "b".into() }
        );
        let cyc = problem(
            base()
                .relation("a", "b", "a_id", OnDelete::Cascade)
                .entity("c", DataClass::Contact, [])
                .relation("b", "c", "b_id", OnDelete::Cascade)
                .relation("c", "b", "c_id", OnDelete::Detach),
        );
        match cyc {
            SchemaProblem::Cycle { path } => {
                assert_eq!(path.first(), path.last());
                assert!(path.contains(&"b".to_owned()) && path.contains(&"c".to_owned()));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(
            problem(
                base()
                    .relation("a", "b", "a_id", OnDelete::Cascade)
                    .subject(
                        SubjectKind::InstagramUser,
                        "a",
                        SubjectKey::Field("nope".into())
                    )
            ),
            SchemaProblem::UnknownField {
                entity: "a".into(),
                field: "nope".into()
            }
        );
        assert_eq!(
            problem(Schema::builder().entity("a", DataClass::Account, [])),
            SchemaProblem::NoSubject
        );
        let msg = base().build().unwrap_err().to_string();
        assert!(msg.contains("`b`") && msg.contains("subject"), "{msg}");
    }

    #[test]
    fn pseudonyms_are_stable_and_keyed() {
        let p1 = Pseudonymizer::new(Secret::new(vec![7; 32])).unwrap();
        let p2 = Pseudonymizer::new(Secret::new(vec![8; 32])).unwrap();
        let v = Value::from("17841400000000001");
        assert_eq!(p1.pseudonym(&v), p1.pseudonym(&v));
        assert_ne!(p1.pseudonym(&v), p1.pseudonym(&Value::from("other")));
        assert_ne!(p1.pseudonym(&v), p2.pseudonym(&v));
        assert!(!p1.pseudonym(&v).contains("1784140"));
        assert!(Pseudonymizer::new(Secret::new(vec![1; 8])).is_err());
    }

    #[test]
    fn redaction_hides_secrets() {
        let s = Schema::example();
        let r = Record::new("access_token", "t1", Utc::now())
            .field("token", "IGQVJ-secret")
            .field("expires_at", 5)
            .field("note", "pkv1.AAAA");
        let f = s.redacted_fields(&r);
        assert_eq!(
            serde_json::to_value(s.redacted_view(&r)).unwrap(),
            Value::Object(f.clone())
        );
        assert_eq!(f["token"], REDACTED);
        assert_eq!(f["note"], REDACTED);
        assert_eq!(f["expires_at"], 5);
    }
}
