//! Deletion cascades over the example schema, with a property test.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::{BTreeMap, BTreeSet, HashSet};

use common::{block_on, populate, t0};
use privacy_kit::audit::RequestSource;
use privacy_kit::cascade::{
    self, resolve_subject, DeletionOptions, DeletionReceipt, DeletionStatus, Subject,
};
use privacy_kit::clock::ManualClock;
use privacy_kit::retention::{HoldScope, LegalHold};
use privacy_kit::schema::{Pseudonymizer, Schema};
use privacy_kit::store::{MemoryStore, Record};
use privacy_kit::{ErrorKind, Secret};
use proptest::prelude::*;

fn pseudonymizer() -> Pseudonymizer {
    Pseudonymizer::new(Secret::new(vec![42; 32])).unwrap()
}

type Snapshot = BTreeMap<(String, String), Record>;

/// Every record reachable from `roots` over any relation (an over-approximation of what a
/// deletion may touch).
fn reachable(
    schema: &Schema,
    snap: &Snapshot,
    roots: &[(String, String)],
) -> BTreeSet<(String, String)> {
    let mut seen: BTreeSet<(String, String)> = roots.iter().cloned().collect();
    let mut frontier: Vec<(String, String)> = roots.to_vec();
    while let Some((entity, id)) = frontier.pop() {
        for rel in schema.children_of(&entity) {
            for ((e, cid), r) in snap {
                if *e == rel.child
                    && r.links.get(&rel.link) == Some(&id)
                    && seen.insert((e.clone(), cid.clone()))
                {
                    frontier.push((e.clone(), cid.clone()));
                }
            }
        }
    }
    seen
}

async fn delete(
    schema: &Schema,
    store: &MemoryStore,
    subject: Subject,
    holds: &[LegalHold],
) -> DeletionReceipt {
    let p = pseudonymizer();
    let receipt = cascade::request_deletion(store, Some(store), subject, RequestSource::User, t0())
        .await
        .unwrap();
    let options = DeletionOptions::new(&p)
        .holds(holds)
        .batch_size(7)
        .audit(store);
    let clock = ManualClock::new(t0());
    cascade::run_deletion(schema, store, store, receipt, &options, &clock)
        .await
        .unwrap()
}

fn check_deletion(seed: u64, pick: usize, transactional: bool) {
    let schema = Schema::example();
    let store = if transactional {
        MemoryStore::new()
    } else {
        MemoryStore::non_transactional()
    };
    let subjects = populate(&store, seed);
    let subject = subjects[pick % subjects.len()].clone();
    let before = store.snapshot();
    let roots = block_on(resolve_subject(&schema, &store, &subject)).unwrap();
    assert!(!roots.is_empty());
    let receipt = block_on(delete(&schema, &store, subject.clone(), &[]));
    assert_eq!(
        receipt.status,
        DeletionStatus::Done,
        "{subject}: {receipt:?}"
    );
    let after = store.snapshot();

    // 1. nothing outside the reach of the subject was touched
    let reach = reachable(&schema, &before, &roots);
    for (key, record) in &before {
        if !reach.contains(key) {
            assert_eq!(
                after.get(key),
                Some(record),
                "{key:?} is unreachable but changed"
            );
        }
    }
    // 2. no remaining record links to a record that was deleted, unless the schema keeps it
    //    under a restriction
    let deleted: HashSet<&(String, String)> =
        before.keys().filter(|k| !after.contains_key(*k)).collect();
    for r in after.values() {
        for rel in schema.parents_of(&r.entity) {
            if let Some(parent) = r.links.get(&rel.link) {
                let target = (rel.parent.clone(), parent.clone());
                if deleted.contains(&target) {
                    assert!(
                        matches!(
                            rel.on_delete,
                            privacy_kit::schema::OnDelete::Restrict { .. }
                        ),
                        "{} {} still links to deleted {:?}",
                        r.entity,
                        r.id,
                        target
                    );
                }
            }
        }
    }
    // 3. the subject's records are gone, and the store re-resolves the subject to nothing
    for root in &roots {
        assert!(!after.contains_key(root));
    }
    assert!(block_on(resolve_subject(&schema, &store, &subject))
        .unwrap()
        .is_empty());
    // 4. the receipt counts what happened
    let total = cascade::total(&receipt.counts);
    assert_eq!(total.deleted as usize, deleted.len());
    let anonymized = after.values().filter(|r| r.anonymized_at.is_some()).count();
    assert_eq!(total.anonymized as usize, anonymized);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn after_any_deletion_nothing_reachable_remains(seed in any::<u64>(), pick in 0usize..64, tx in any::<bool>()) {
        check_deletion(seed, pick, tx);
    }
}

#[test]
fn organization_deletion_keeps_payments_under_legal_basis() {
    let schema = Schema::example();
    let store = MemoryStore::new();
    // find a seed whose org0 has payments
    let seed = (0..200u64)
        .find(|s| {
            let probe = MemoryStore::new();
            populate(&probe, *s);
            probe.count("payment") > 0 && probe.count("message") > 0
        })
        .unwrap();
    populate(&store, seed);
    let org_payments: Vec<_> = store
        .snapshot()
        .into_values()
        .filter(|r| r.entity == "payment")
        .collect();
    let receipt = block_on(delete(&schema, &store, Subject::organization("org0"), &[]));
    assert_eq!(receipt.status, DeletionStatus::Done);
    for p in &org_payments {
        assert!(store.record("payment", &p.id).is_some());
    }
    let kept: u64 = receipt
        .retained
        .iter()
        .filter(|n| n.entity == "payment")
        .map(|n| n.records)
        .sum();
    let org0_payments = org_payments
        .iter()
        .filter(|p| p.links["organization_id"] == "org0")
        .count();
    assert_eq!(kept as usize, org0_payments);
    if org0_payments > 0 {
        assert!(
            receipt.status_text().contains("7 years"),
            "{}",
            receipt.status_text()
        );
    }
    assert!(store
        .snapshot()
        .values()
        .all(|r| !r.links.values().any(|v| v == "org0") || r.entity == "payment"));
    // status lookup by code
    let looked = block_on(cascade::deletion_status(&store, &receipt.confirmation_code)).unwrap();
    assert_eq!(looked, receipt);
    // the register holds the request and the outcome, with ids and counts only
    let log = block_on(privacy_kit::store::AuditLog::entries(&store, None, 10)).unwrap();
    assert_eq!(log.len(), 2);
    privacy_kit::audit::verify_chain(&log).unwrap();
    match &log[1].event {
        privacy_kit::audit::AuditEvent::DeletionFinished {
            confirmation_code,
            completed,
            deleted,
            ..
        } => {
            assert_eq!(confirmation_code, &receipt.confirmation_code);
            assert!(*completed);
            assert_eq!(*deleted, cascade::total(&receipt.counts).deleted);
        }
        other => panic!("{other:?}"),
    }
    let text = serde_json::to_string(&log).unwrap();
    assert!(!text.contains("billing0@example.com") && !text.contains("Shop 0"));
    let missing = block_on(cascade::deletion_status(&store, "NOPE")).unwrap_err();
    assert_eq!(missing.kind(), &ErrorKind::NotFound);
}

#[test]
fn contact_deletion_anonymizes_logs_and_keeps_aggregates_countable() {
    let schema = Schema::example();
    let store = MemoryStore::new();
    let t = t0();
    store.insert(Record::new("instagram_connection", "conn", t).field("instagram_user_id", "1784"));
    for c in ["ana", "bob"] {
        store.insert(
            Record::new("contact", c, t)
                .link("connection_id", "conn")
                .field("igsid", format!("ig-{c}")),
        );
        store.insert(Record::new("conversation", format!("{c}-cv"), t).link("contact_id", c));
        store.insert(
            Record::new("message", format!("{c}-m"), t)
                .link("conversation_id", format!("{c}-cv"))
                .field("text", "hi"),
        );
    }
    for (i, c) in ["ana", "ana", "bob", "ana"].iter().enumerate() {
        store.insert(
            Record::new("delivery_log", format!("log{i}"), t)
                .link("connection_id", "conn")
                .link("contact_id", *c)
                .field("recipient_igsid", format!("ig-{c}"))
                .field("status", "sent"),
        );
    }
    let distinct = |store: &MemoryStore| -> usize {
        store
            .snapshot()
            .values()
            .filter(|r| r.entity == "delivery_log")
            .map(|r| r.fields["recipient_igsid"].to_string())
            .collect::<HashSet<_>>()
            .len()
    };
    let (logs_before, distinct_before) = (store.count("delivery_log"), distinct(&store));

    let receipt = block_on(delete(&schema, &store, Subject::contact("ana"), &[]));
    assert_eq!(receipt.status, DeletionStatus::Done);
    assert_eq!(receipt.counts["delivery_log"].anonymized, 3);
    assert_eq!(receipt.counts["message"].deleted, 1);
    // the aggregate survives: as many logs, as many distinct recipients, per connection
    assert_eq!(store.count("delivery_log"), logs_before);
    assert_eq!(distinct(&store), distinct_before);
    for i in [0, 1, 3] {
        let log = store.record("delivery_log", &format!("log{i}")).unwrap();
        assert!(log.anonymized_at.is_some());
        assert!(!log.links.contains_key("contact_id"));
        assert_eq!(log.links["connection_id"], "conn");
        let p = log.fields["recipient_igsid"].as_str().unwrap();
        assert!(p.starts_with("psn_") && !p.contains("ana"));
        assert_eq!(log.fields["status"], "sent");
    }
    // bob is untouched
    assert!(store
        .record("delivery_log", "log2")
        .unwrap()
        .anonymized_at
        .is_none());
    assert!(store.record("message", "bob-m").is_some());
}

#[test]
fn member_deletion_detaches_automations() {
    let schema = Schema::example();
    let store = MemoryStore::new();
    let t = t0();
    store.insert(Record::new("organization", "o", t));
    store.insert(
        Record::new("member", "m", t)
            .link("organization_id", "o")
            .field("email", "m@x"),
    );
    store.insert(Record::new("instagram_connection", "c", t).link("organization_id", "o"));
    store.insert(
        Record::new("automation", "a", t)
            .link("connection_id", "c")
            .link("created_by", "m"),
    );
    let receipt = block_on(delete(&schema, &store, Subject::member("m"), &[]));
    assert_eq!(receipt.status, DeletionStatus::Done);
    assert_eq!(receipt.counts["automation"].detached, 1);
    let a = store.record("automation", "a").unwrap();
    assert!(!a.links.contains_key("created_by"));
    assert_eq!(a.links["connection_id"], "c");
    assert!(store.record("organization", "o").is_some());
}

#[test]
fn instagram_user_from_meta_resolves_to_connection_and_legal_hold_is_respected() {
    let schema = Schema::example();
    let store = MemoryStore::new();
    let t = t0();
    store.insert(
        Record::new("instagram_connection", "conn", t).field("instagram_user_id", "178414"),
    );
    store.insert(
        Record::new("access_token", "tok", t)
            .link("connection_id", "conn")
            .field("token", "IGQ"),
    );
    store.insert(Record::new("contact", "ct", t).link("connection_id", "conn"));
    store.insert(Record::new("conversation", "held", t).link("contact_id", "ct"));
    store.insert(Record::new("message", "hm", t).link("conversation_id", "held"));
    store.insert(Record::new("conversation", "free", t).link("contact_id", "ct"));
    store.insert(Record::new("message", "fm", t).link("conversation_id", "free"));
    let holds = [LegalHold::new(
        HoldScope::Record {
            entity: "conversation".into(),
            id: "held".into(),
        },
        "litigation hold 2026-7",
    )];
    let receipt = block_on(delete(
        &schema,
        &store,
        Subject::instagram_user("178414"),
        &holds,
    ));
    assert_eq!(receipt.status, DeletionStatus::Done);
    assert!(store.record("access_token", "tok").is_none());
    assert!(store.record("instagram_connection", "conn").is_none());
    assert!(store.record("message", "fm").is_none());
    assert!(store.record("conversation", "held").is_some());
    assert!(
        store.record("message", "hm").is_some(),
        "children of a held record stay with it"
    );
    assert_eq!(receipt.retained[0].legal_basis, "litigation hold 2026-7");
    // an id Meta sends that we never stored: done, nothing changed
    let before = store.snapshot();
    let r = block_on(delete(&schema, &store, Subject::instagram_user("999"), &[]));
    assert_eq!(r.status, DeletionStatus::Done);
    assert_eq!(store.snapshot(), before);
}

#[test]
fn failed_deletion_is_reported_and_resumes() {
    let schema = Schema::example();
    let p = pseudonymizer();
    let clock = ManualClock::new(t0());
    for transactional in [false, true] {
        let store = if transactional {
            MemoryStore::new()
        } else {
            MemoryStore::non_transactional()
        };
        let seed = (0..200u64)
            .find(|s| {
                let probe = MemoryStore::new();
                populate(&probe, *s);
                probe.count("message") > 20
            })
            .unwrap();
        populate(&store, seed);
        let before = store.snapshot();
        let receipt = block_on(cascade::request_deletion(
            &store,
            None,
            Subject::organization("org0"),
            RequestSource::Operator,
            t0(),
        ))
        .unwrap();
        assert_eq!(receipt.status, DeletionStatus::Pending);
        assert_eq!(receipt.confirmation_code.len(), 20);
        let options = DeletionOptions::new(&p).batch_size(5);
        store.fail_next_apply_after(3);
        let failed = block_on(cascade::run_deletion(
            &schema, &store, &store, receipt, &options, &clock,
        ))
        .unwrap();
        match &failed.status {
            DeletionStatus::Failed { reason } => assert!(reason.contains("injected")),
            other => panic!("{other:?}"),
        }
        let stored = block_on(cascade::deletion_status(&store, &failed.confirmation_code)).unwrap();
        assert_eq!(stored.status, failed.status);
        let after_failure = store.snapshot();
        if transactional {
            assert_eq!(
                after_failure, before,
                "a transactional store applies all or nothing"
            );
        } else {
            assert_eq!(
                before.len() - after_failure.len(),
                3,
                "three deletions went through"
            );
        }
        let done = block_on(cascade::run_deletion(
            &schema, &store, &store, failed, &options, &clock,
        ))
        .unwrap();
        assert_eq!(done.status, DeletionStatus::Done);
        assert_eq!(done.runs, 2);
        assert!(store
            .snapshot()
            .keys()
            .all(|(e, id)| e == "payment" || !id.starts_with("org0")));
    }
}

#[test]
fn verification_finds_leftovers() {
    let schema = Schema::example();
    let store = MemoryStore::new();
    let p = pseudonymizer();
    let t = t0();
    store.insert(Record::new("contact", "c", t));
    store.insert(Record::new("conversation", "cv", t).link("contact_id", "c"));
    let roots = vec![("contact".to_owned(), "c".to_owned())];
    let options = DeletionOptions::new(&p);
    let plan = block_on(cascade::plan_deletion(&schema, &store, &roots, &options, t)).unwrap();
    assert_eq!(plan.changes.len(), 2);
    // before applying, everything is a leftover
    let v = block_on(cascade::verify_deletion(&schema, &store, &plan)).unwrap();
    assert!(!v.leftovers.is_empty());
    let (_, err) = block_on(cascade::apply_plan(&store, &plan, 10));
    assert!(err.is_none());
    // a message written concurrently under the deleted conversation is caught
    store.insert(Record::new("message", "late", t).link("conversation_id", "cv"));
    let v = block_on(cascade::verify_deletion(&schema, &store, &plan)).unwrap();
    assert_eq!(v.leftovers, vec![("message".to_owned(), "late".to_owned())]);
}
