//! A generator of product data over `Schema::example()`.
#![allow(dead_code, clippy::unwrap_used)]

use chrono::{DateTime, Duration, TimeZone, Utc};
use privacy_kit::cascade::Subject;
use privacy_kit::retention::Anchor;
use privacy_kit::store::{MemoryStore, Record};

pub fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 15, 9, 30, 0).unwrap()
}

pub fn block_on<F: std::future::Future>(f: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap()
        .block_on(f)
}

/// splitmix64: a small deterministic generator for test data.
pub struct Gen(u64);

impl Gen {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next() % n
        }
    }
}

/// Fills `store` with 1 to 3 organizations of random shape; returns the subjects one can delete.
pub fn populate(store: &MemoryStore, seed: u64) -> Vec<Subject> {
    let mut g = Gen::new(seed);
    let t = t0();
    let mut subjects = Vec::new();
    let orgs = 1 + g.below(3);
    for o in 0..orgs {
        let org = format!("org{o}");
        store.insert(
            Record::new("organization", &org, t)
                .field("name", format!("Shop {o}"))
                .field("billing_email", format!("billing{o}@example.com")),
        );
        subjects.push(Subject::organization(&org));
        let members: Vec<String> = (0..g.below(3)).map(|m| format!("{org}-mem{m}")).collect();
        for m in &members {
            store.insert(
                Record::new("member", m, t)
                    .link("organization_id", &org)
                    .field("email", format!("{m}@example.com"))
                    .field("role", "admin"),
            );
            subjects.push(Subject::member(m));
        }
        for p in 0..g.below(2) {
            store.insert(
                Record::new("payment", format!("{org}-pay{p}"), t)
                    .link("organization_id", &org)
                    .field("amount", 49)
                    .field("payer_name", "A. Payer"),
            );
        }
        for s in 0..g.below(2) {
            let mut r = Record::new("support_ticket", format!("{org}-tkt{s}"), t)
                .link("organization_id", &org)
                .field("subject", "help");
            if let Some(m) = members.get(g.below(members.len() as u64 + 1) as usize) {
                r = r.link("member_id", m);
            }
            store.insert(r);
        }
        for a in 0..g.below(3) {
            let mut r = Record::new("audit_entry", format!("{org}-aud{a}"), t)
                .link("organization_id", &org)
                .field("action", "login")
                .field("actor_ip", "192.0.2.1");
            if let Some(m) = members.get(g.below(members.len() as u64 + 1) as usize) {
                r = r.link("actor_id", m);
            }
            store.insert(r);
        }
        for c in 0..g.below(3) {
            let conn = format!("{org}-conn{c}");
            let ig_user = format!("1784{o}{c}");
            store.insert(
                Record::new("instagram_connection", &conn, t)
                    .link("organization_id", &org)
                    .field("instagram_user_id", ig_user.as_str())
                    .field("username", format!("shop{o}{c}")),
            );
            subjects.push(Subject::connection(&conn));
            subjects.push(Subject::instagram_user(&ig_user));
            store.insert(
                Record::new("access_token", format!("{conn}-tok"), t)
                    .link("connection_id", &conn)
                    .field("token", format!("IGQVJ-secret-{conn}")),
            );
            let contacts: Vec<String> = (0..g.below(4)).map(|k| format!("{conn}-ct{k}")).collect();
            for ct in &contacts {
                store.insert(
                    Record::new("contact", ct, t)
                        .link("connection_id", &conn)
                        .field("igsid", format!("igsid-{ct}"))
                        .field("username", format!("user-{ct}")),
                );
                subjects.push(Subject::contact(ct));
                for v in 0..g.below(3) {
                    let conv = format!("{ct}-conv{v}");
                    store.insert(
                        Record::new("conversation", &conv, t)
                            .link("contact_id", ct)
                            .anchor(Anchor::LastActivity, t + Duration::hours(1)),
                    );
                    for m in 0..g.below(4) {
                        store.insert(
                            Record::new("message", format!("{conv}-msg{m}"), t)
                                .link("conversation_id", &conv)
                                .field("text", format!("hello {m}"))
                                .field("sender_igsid", format!("igsid-{ct}")),
                        );
                    }
                }
            }
            let pick = |g: &mut Gen| -> Option<String> {
                contacts
                    .get(g.below(contacts.len() as u64 + 1) as usize)
                    .cloned()
            };
            for k in 0..g.below(4) {
                let mut r = Record::new("comment", format!("{conn}-cm{k}"), t)
                    .link("connection_id", &conn)
                    .field("text", "price?")
                    .field("commenter_igsid", format!("igsid-x{k}"));
                if let Some(ct) = pick(&mut g) {
                    r = r
                        .link("contact_id", &ct)
                        .field("commenter_igsid", format!("igsid-{ct}"));
                }
                store.insert(r);
            }
            for k in 0..g.below(4) {
                let mut r = Record::new("delivery_log", format!("{conn}-log{k}"), t)
                    .link("connection_id", &conn)
                    .field("status", "sent")
                    .field("recipient_igsid", format!("igsid-y{k}"));
                if let Some(ct) = pick(&mut g) {
                    r = r
                        .link("contact_id", &ct)
                        .field("recipient_igsid", format!("igsid-{ct}"));
                }
                store.insert(r);
            }
            for k in 0..g.below(2) {
                let mut r = Record::new("automation", format!("{conn}-auto{k}"), t)
                    .link("connection_id", &conn)
                    .field("name", "price reply");
                if let Some(m) = members.get(g.below(members.len() as u64 + 1) as usize) {
                    r = r.link("created_by", m);
                }
                store.insert(r);
            }
        }
    }
    subjects
}
