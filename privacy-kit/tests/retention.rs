//! Every retention preset at the edges of its deadline, under a fake clock.
#![allow(clippy::unwrap_used)]

mod common;

use chrono::{Duration, TimeZone, Utc};
use common::{block_on, t0};
use privacy_kit::clock::{Clock, ManualClock};
use privacy_kit::retention::{
    apply_retention, plan_retention, presets, run_retention, Anchor, Disposal, HoldScope,
    LegalHold, Period, RetentionPolicy,
};
use privacy_kit::schema::{DataClass, Pseudonymizer, Schema};
use privacy_kit::store::{MemoryStore, Record};
use privacy_kit::Secret;

fn pseudonymizer() -> Pseudonymizer {
    Pseudonymizer::new(Secret::new(vec![3; 32])).unwrap()
}

fn preset(name: &str) -> RetentionPolicy {
    presets().into_iter().find(|p| p.name == name).unwrap()
}

/// A record of the preset's data class whose anchor is `anchor_at`.
fn record_for(policy: &RetentionPolicy, anchor_at: chrono::DateTime<Utc>) -> Record {
    let created = anchor_at - Duration::days(3);
    let (entity, r) = match policy.data_class {
        DataClass::DeliveryLog => (
            "delivery_log",
            Record::new("delivery_log", "r", anchor_at).field("recipient_igsid", "ig-1"),
        ),
        DataClass::Conversation => ("conversation", Record::new("conversation", "r", created)),
        DataClass::Credential => (
            "access_token",
            Record::new("access_token", "r", created).field("token", "IGQ"),
        ),
        DataClass::Payment => (
            "payment",
            Record::new("payment", "r", anchor_at).field("payer_name", "P"),
        ),
        DataClass::SupportCorrespondence => (
            "support_ticket",
            Record::new("support_ticket", "r", created),
        ),
        DataClass::Account => ("organization", Record::new("organization", "r", created)),
        ref other => panic!("no fixture for {other}"),
    };
    let _ = entity;
    let mut r = r;
    for a in &policy.anchors {
        if *a != Anchor::Created {
            r = r.anchor(*a, anchor_at);
            break;
        }
    }
    r
}

#[test]
fn every_preset_at_its_edges() {
    let schema = Schema::example();
    let p = pseudonymizer();
    let anchor_at = Utc.with_ymd_and_hms(2025, 3, 31, 23, 59, 30).unwrap();
    let expected = [
        (
            "dm-logs",
            Utc.with_ymd_and_hms(2026, 3, 31, 23, 59, 30).unwrap(),
        ),
        ("conversations", anchor_at + Duration::days(90)),
        ("tokens", anchor_at + Duration::days(30)),
        (
            "payments",
            Utc.with_ymd_and_hms(2032, 3, 31, 23, 59, 30).unwrap(),
        ),
        (
            "support",
            Utc.with_ymd_and_hms(2027, 3, 31, 23, 59, 30).unwrap(),
        ),
        ("account-data", anchor_at + Duration::days(30)),
    ];
    assert_eq!(presets().len(), expected.len());
    for (name, deadline) in expected {
        let policy = preset(name);
        let record = record_for(&policy, anchor_at);
        assert_eq!(policy.deadline(&record), Some(deadline), "{name}");
        let clock = ManualClock::new(deadline - Duration::seconds(1));
        for (offset, due) in [(-1i64, false), (1, true)] {
            clock.set(deadline + Duration::seconds(offset));
            let store = MemoryStore::new();
            store.insert(record.clone());
            let policies = [policy.clone()];
            let batch = block_on(plan_retention(
                &schema,
                &policies,
                &[],
                &store,
                clock.now(),
                None,
                10,
            ))
            .unwrap();
            assert_eq!(batch.due.len(), usize::from(due), "{name} at {offset:+}s");
            let report = block_on(apply_retention(&schema, &store, &batch, &[], &p)).unwrap();
            let after = store.record(&record.entity, "r");
            match (due, policy.then) {
                (false, _) => assert_eq!(after.as_ref(), Some(&record), "{name} changed early"),
                (true, Disposal::Delete) => {
                    assert!(after.is_none(), "{name} not deleted");
                    assert_eq!(report.counts[&record.entity].deleted, 1);
                }
                (true, Disposal::Anonymize) => {
                    let after = after.unwrap();
                    assert!(after.anonymized_at.is_some());
                    assert_ne!(after.fields["recipient_igsid"], "ig-1");
                    assert_eq!(report.counts[&record.entity].anonymized, 1);
                }
                (true, _) => unreachable!(),
            }
        }
    }
}

#[test]
fn tokens_wait_for_disconnect() {
    let policy = preset("tokens");
    let r = Record::new("access_token", "t", t0());
    assert_eq!(policy.deadline(&r), None);
    assert!(!policy.is_due(&r, t0() + Duration::days(10_000)));
    // the earliest anchor counts
    let r = r
        .anchor(Anchor::AccountDeleted, t0() + Duration::days(5))
        .anchor(Anchor::Disconnected, t0() + Duration::days(2));
    assert_eq!(policy.deadline(&r), Some(t0() + Duration::days(32)));
}

#[test]
fn calendar_periods_clamp() {
    let leap = Utc.with_ymd_and_hms(2024, 2, 29, 12, 0, 0).unwrap();
    assert_eq!(
        Period::Years(1).after(leap),
        Some(Utc.with_ymd_and_hms(2025, 2, 28, 12, 0, 0).unwrap())
    );
    assert_eq!(
        Period::Months(1).after(Utc.with_ymd_and_hms(2025, 1, 31, 0, 0, 0).unwrap()),
        Some(Utc.with_ymd_and_hms(2025, 2, 28, 0, 0, 0).unwrap())
    );
}

fn conversations(store: &MemoryStore, n: usize) {
    for i in 0..n {
        store.insert(Record::new("conversation", format!("cv{i:03}"), t0()));
        store.insert(
            Record::new("message", format!("m{i:03}"), t0())
                .link("conversation_id", format!("cv{i:03}")),
        );
    }
}

#[test]
fn batches_are_bounded_deterministic_and_idempotent() {
    let schema = Schema::example();
    let p = pseudonymizer();
    let policies = [preset("conversations")];
    let store = MemoryStore::new();
    conversations(&store, 25);
    let now = t0() + Duration::days(91);
    // 25 conversations + 25 messages are due (same data class); batches of 10
    let first = block_on(plan_retention(
        &schema,
        &policies,
        &[],
        &store,
        now,
        None,
        10,
    ))
    .unwrap();
    assert_eq!(first.due.len(), 10);
    assert_eq!(
        first,
        block_on(plan_retention(
            &schema,
            &policies,
            &[],
            &store,
            now,
            None,
            10
        ))
        .unwrap()
    );
    let mut sizes = vec![first.due.len()];
    let mut cursor = first.next.clone();
    while let Some(c) = cursor {
        let b = block_on(plan_retention(
            &schema,
            &policies,
            &[],
            &store,
            now,
            Some(&c),
            10,
        ))
        .unwrap();
        sizes.push(b.due.len());
        cursor = b.next.clone();
    }
    assert_eq!(sizes.iter().sum::<usize>(), 50);
    assert!(sizes.iter().all(|s| *s <= 10));

    // apply the first batch twice: the second run changes nothing
    let once = block_on(apply_retention(&schema, &store, &first, &[], &p)).unwrap();
    let snapshot = store.snapshot();
    let changes = store.changes_applied();
    let twice = block_on(apply_retention(&schema, &store, &first, &[], &p)).unwrap();
    assert_eq!(store.snapshot(), snapshot);
    assert_eq!(store.changes_applied(), changes);
    assert_eq!(twice.skipped, 10);
    assert!(twice.counts.values().all(|c| c.deleted == 0));
    // the 10 conversations cascaded to their 10 messages
    assert_eq!(once.counts["conversation"].deleted, 10);
    assert_eq!(once.counts["message"].deleted, 10);

    let rest = block_on(run_retention(&schema, &policies, &[], &store, &p, now, 10)).unwrap();
    assert_eq!(rest.counts["conversation"].deleted, 15);
    assert_eq!(
        rest.audit_event(),
        privacy_kit::audit::AuditEvent::RetentionRun {
            deleted: 30,
            anonymized: 0,
            held: 0
        }
    );
    assert_eq!(store.count("conversation") + store.count("message"), 0);
}

#[test]
fn legal_holds_suspend_retention() {
    let schema = Schema::example();
    let p = pseudonymizer();
    let policies = [preset("conversations")];
    let store = MemoryStore::new();
    conversations(&store, 3);
    let now = t0() + Duration::days(365);
    let holds = [
        LegalHold::new(
            HoldScope::Record {
                entity: "conversation".into(),
                id: "cv001".into(),
            },
            "case 1",
        ),
        LegalHold::new(
            HoldScope::Parent {
                entity: "conversation".into(),
                id: "cv001".into(),
            },
            "case 1",
        ),
    ];
    let report = block_on(run_retention(
        &schema, &policies, &holds, &store, &p, now, 10,
    ))
    .unwrap();
    assert_eq!(report.held, 2);
    assert!(store.record("conversation", "cv001").is_some());
    assert!(store.record("message", "m001").is_some());
    assert_eq!(store.count("conversation"), 1);
    let class_hold = [LegalHold::new(
        HoldScope::DataClass {
            data_class: DataClass::Conversation,
        },
        "regulator inquiry",
    )];
    let report = block_on(run_retention(
        &schema,
        &policies,
        &class_hold,
        &store,
        &p,
        now,
        10,
    ))
    .unwrap();
    assert_eq!(report.held, 2);
    assert_eq!(store.count("conversation"), 1);
    // lifted: due again
    block_on(run_retention(&schema, &policies, &[], &store, &p, now, 10)).unwrap();
    assert_eq!(store.count("conversation"), 0);
}

#[test]
fn anonymized_records_are_not_due_again() {
    let schema = Schema::example();
    let p = pseudonymizer();
    let policies = [preset("dm-logs")];
    let store = MemoryStore::new();
    store.insert(Record::new("delivery_log", "l", t0()).field("recipient_igsid", "ig"));
    let now = t0() + Duration::days(400);
    let r1 = block_on(run_retention(&schema, &policies, &[], &store, &p, now, 10)).unwrap();
    assert_eq!(r1.counts["delivery_log"].anonymized, 1);
    let r2 = block_on(run_retention(&schema, &policies, &[], &store, &p, now, 10)).unwrap();
    assert!(r2.counts.is_empty());
    assert!(block_on(plan_retention(
        &schema,
        &policies,
        &[],
        &store,
        now,
        None,
        0
    ))
    .is_err());
    // a hold placed between planning and applying is honoured
    store.insert(Record::new("delivery_log", "l2", t0()).field("recipient_igsid", "ig2"));
    let batch = block_on(plan_retention(
        &schema,
        &policies,
        &[],
        &store,
        now,
        None,
        10,
    ))
    .unwrap();
    assert_eq!(batch.due.len(), 1);
    let hold = [LegalHold::new(
        HoldScope::Entity {
            entity: "delivery_log".into(),
        },
        "audit",
    )];
    let r = block_on(apply_retention(&schema, &store, &batch, &hold, &p)).unwrap();
    assert_eq!(r.held, 1);
    assert!(store
        .record("delivery_log", "l2")
        .unwrap()
        .anonymized_at
        .is_none());
    let custom = RetentionPolicy::new(
        "x",
        DataClass::DeliveryLog,
        Period::Days(1),
        vec![Anchor::Created],
        Disposal::Delete,
        "x",
    );
    block_on(run_retention(&schema, &[custom], &[], &store, &p, now, 10)).unwrap();
    assert_eq!(store.count("delivery_log"), 0);
}
