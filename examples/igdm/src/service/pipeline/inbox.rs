//! The inbox worker: claims stored notifications with a lease, parses them with
//! `instagram-graph`, dedups each event on its key, decides with `automation-core` (its stores on
//! SQL, in the same transaction), and writes one outbox row per action before committing.

use std::collections::{HashMap, HashSet};
use std::hash::{Hash, Hasher};

use automation_core::event::EventKind as Core;
use automation_core::store::ContactStore;
use automation_core::{Decision, InboundEvent, Outcome};

use super::convert::{self, Converted};
use super::Shared;
use crate::service::db::automation_store::TxStore;
use crate::service::db::rows::{self, Param};
use crate::service::db::{self, conversations, delivery_log, inbox, outbound, outbox, Tx};
use crate::service::error::Result;

/// A notification whose processing failed this many times is set aside as `failed`.
const MAX_INBOX_ATTEMPTS: i64 = 5;

/// Takes and processes one batch; the number of notifications finished.
///
/// On PostgreSQL the batch is claimed with a lease (several instances share the inbox). On
/// SQLite this worker is the database's only inbox worker: it reads the pending rows and marks
/// them finished in the transaction that processes them, which saves the claim's commit.
pub async fn run_once(shared: &Shared) -> Result<usize> {
    let now = db::now_ms();
    let (rows, owner) = match shared.db.backend() {
        db::Backend::Sqlite => (
            inbox::pending(&shared.db, now, shared.config.inbox_batch).await?,
            None,
        ),
        db::Backend::Postgres => {
            let owner = super::lease_owner("inbox");
            let lease = i64::try_from(shared.config.lease().as_millis()).unwrap_or(60_000);
            let rows = inbox::claim(
                &shared.db,
                &owner,
                now,
                now + lease,
                shared.config.inbox_batch,
            )
            .await?;
            (rows, Some(owner))
        }
    };
    let owner = owner.as_deref();
    if rows.len() > 1 {
        match process_batch(shared, owner, &rows).await {
            Ok(n) => return Ok(n),
            Err(e) => {
                tracing::debug!(error = %e, "batch failed; processing its notifications one by one")
            }
        }
    }
    let mut done = 0;
    for row in rows {
        match process(shared, owner, &row).await {
            Ok(true) => done += 1,
            Ok(false) => {}
            Err(e) => {
                tracing::warn!(inbox = %row.id, error = %e, "processing a notification failed; it will be retried");
                if row.attempts >= MAX_INBOX_ATTEMPTS {
                    let mut tx = shared.db.begin().await?;
                    let reason = format!("gave up after {} attempts: {e}", row.attempts);
                    inbox::finish(
                        &mut tx,
                        &row.id,
                        owner,
                        inbox::FAILED,
                        Some(&reason),
                        db::now_ms(),
                    )
                    .await?;
                    tx.commit().await?;
                } else if owner.is_none() {
                    // read without a claim: the failure is counted here
                    let mut tx = shared.db.begin().await?;
                    inbox::count_failure(&mut tx, &row.id).await?;
                    tx.commit().await?;
                }
            }
        }
    }
    Ok(done)
}

/// Processes one notification in its own transaction; `false` when another worker took it over
/// or finished it.
async fn process(shared: &Shared, owner: Option<&str>, row: &inbox::Claimed) -> Result<bool> {
    let engine = shared.engine();
    let store = TxStore::new(shared.db.begin().await?);
    let mut writes = Writes {
        unread: shared.data_access.get(),
        ..Writes::default()
    };
    let parsed = [parse(row)];
    let known = Known::look_up(&store, &parsed, &mut writes.conversations).await?;
    let [parsed] = parsed;
    let outcomes = process_in(&engine, &store, &mut writes, &known, parsed).await?;
    let mut tx = store.finish().await?;
    if !writes.flush(&mut tx, owner).await? {
        tx.rollback().await?;
        return Ok(false);
    }
    tx.commit().await?;
    count(shared, &outcomes);
    Ok(true)
}

/// Processes notifications together in one transaction (one commit for the batch). Fails as a
/// whole (nothing kept) if any of them fails or was taken over or finished by another worker;
/// the caller then processes them one by one.
async fn process_batch(
    shared: &Shared,
    owner: Option<&str>,
    rows: &[inbox::Claimed],
) -> Result<usize> {
    let engine = shared.engine();
    let parsed: Vec<Parsed> = rows.iter().map(parse).collect();
    let store = TxStore::new(shared.db.begin().await?);
    let mut writes = Writes {
        unread: shared.data_access.get(),
        ..Writes::default()
    };
    let known = Known::look_up(&store, &parsed, &mut writes.conversations).await?;
    let mut all = Vec::new();
    for notification in parsed {
        all.extend(process_in(&engine, &store, &mut writes, &known, notification).await?);
    }
    let mut tx = store.finish().await?;
    if !writes.flush(&mut tx, owner).await? {
        return Err(crate::service::error::Error::new(
            crate::service::error::ErrorKind::Database,
            "a notification of the batch was taken over or finished by another worker",
        ));
    }
    tx.commit().await?;
    count(shared, &all);
    Ok(rows.len())
}

fn count(shared: &Shared, outcomes: &[&str]) {
    for outcome in outcomes {
        if *outcome == "unparseable" {
            shared.metrics.rejected("unparseable");
        } else {
            shared.metrics.processed(outcome);
        }
    }
}

/// Rows a batch writes at its end, in multi-row statements, and what it decided so far.
#[derive(Default)]
struct Writes {
    /// Events recorded in this batch: (account, key).
    seen: HashSet<(String, String)>,
    /// `events` rows.
    events: Vec<Vec<Param>>,
    /// Outbox rows.
    actions: Vec<outbox::NewAction>,
    /// Delivery-log rows of status changes (delivered, read).
    log: Vec<Vec<Param>>,
    /// Echoes of our messages not yet marked delivered: (account, mid).
    delivered: Vec<(String, String)>,
    /// Accounts that received a webhook, and when.
    touched: HashMap<String, i64>,
    /// Notifications finished: (id, status, reason).
    finished: Vec<(String, &'static str, Option<String>)>,
    /// When the batch started (Unix ms).
    now: i64,
    /// Messages, reactions and reads for the team inbox.
    conversations: conversations::Batch,
    /// P5: accounts whose messages are not read.
    unread: std::sync::Arc<HashSet<String>>,
    /// P5: items to remove from raw notifications: (inbox id, account) -> message ids.
    forget: HashMap<(String, String), Vec<String>>,
}

impl Writes {
    /// Writes everything collected, in the caller's transaction; `false` when a notification
    /// was taken over or finished by another worker: the caller must roll back.
    async fn flush(mut self, tx: &mut Tx, owner: Option<&str>) -> Result<bool> {
        let now = self.now;
        self.write_rows(tx).await?;
        for ((hash, account), ids) in &self.forget {
            super::data_access::forget_items(tx, hash, account, ids).await?;
        }
        let touched: Vec<(&str, i64)> = self
            .touched
            .iter()
            .map(|(a, at)| (a.as_str(), *at))
            .collect();
        db::accounts::touch_webhooks(tx, &touched).await?;
        let mut groups: HashMap<(&str, Option<&str>), Vec<&str>> = HashMap::new();
        for (id, status, reason) in &self.finished {
            groups
                .entry((status, reason.as_deref()))
                .or_default()
                .push(id);
        }
        for ((status, reason), ids) in groups {
            if inbox::finish_many(tx, &ids, owner, status, reason, now).await? != ids.len() {
                return Ok(false);
            }
        }
        Ok(true)
    }

    /// Writes the events, outbox rows and delivery-log rows collected so far (and forgets
    /// them; what was seen stays known).
    async fn write_rows(&mut self, tx: &mut Tx) -> Result<()> {
        let now = self.now;
        self.mark_delivered(tx).await?;
        let events = std::mem::take(&mut self.events);
        rows::insert(
            tx,
            "INSERT INTO events (account, key, inbox_id, kind, contact, text, occurred_at, \
             processed_at, outcome, rule, decision)",
            11,
            &events,
            "ON CONFLICT (account, key) DO NOTHING",
        )
        .await?;
        let actions = std::mem::take(&mut self.actions);
        let inserted: HashSet<String> = outbox::insert_many(tx, &actions, now)
            .await?
            .into_iter()
            .collect();
        let mut log = std::mem::take(&mut self.log);
        for action in actions.iter().filter(|a| inserted.contains(&a.key)) {
            log.push(
                delivery_log::Entry {
                    outbox_key: &action.key,
                    account: &action.account,
                    rule: action.rule.as_deref(),
                    kind: &action.kind,
                    attempt: 0,
                    status: "queued",
                    ..Default::default()
                }
                .row(now),
            );
        }
        delivery_log::append_many(tx, &log).await?;
        self.conversations.write(tx, now).await
    }
}

impl Writes {
    /// Marks the messages echoed so far delivered (one statement), logging each change.
    async fn mark_delivered(&mut self, tx: &mut Tx) -> Result<()> {
        if self.delivered.is_empty() {
            return Ok(());
        }
        let echoes = std::mem::take(&mut self.delivered);
        let pairs: Vec<(&str, &str)> = echoes
            .iter()
            .map(|(a, m)| (a.as_str(), m.as_str()))
            .collect();
        for (account, mid, row) in outbox::mark_delivered_many(tx, &pairs, self.now).await? {
            self.log.push(status_entry(
                &row,
                &account,
                "delivered",
                Some(&mid),
                self.now,
            ));
        }
        Ok(())
    }
}

/// A claimed notification, parsed and converted (no I/O).
struct Parsed<'a> {
    row: &'a inbox::Claimed,
    /// The converted events and, for an incomplete notification, why; `Err`: the body is no
    /// notification.
    events: std::result::Result<(Vec<Converted>, Option<String>), String>,
}

fn parse(row: &inbox::Claimed) -> Parsed<'_> {
    let events = match instagram_graph::webhook::parse(&row.body) {
        Ok(notification) => {
            let received = db::to_time(row.received_at);
            let events = notification
                .events()
                .iter()
                .map(|event| convert::inbound(event, received))
                .collect();
            let reason = (!notification.is_complete()).then(|| {
                notification
                    .errors()
                    .iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join("; ")
            });
            Ok((events, reason))
        }
        Err(e) => Err(format!("not a webhook notification: {e}")),
    };
    Parsed { row, events }
}

/// The id of a message the person can unsend (messages, quick replies, story replies and
/// mentions).
fn unsendable_mid(kind: &Core) -> Option<&str> {
    match kind {
        Core::Message { mid, .. }
        | Core::QuickReply { mid, .. }
        | Core::StoryReply { mid, .. }
        | Core::StoryMention { mid, .. } => Some(mid),
        _ => None,
    }
}

/// The event key an unsend of message `mid` is recorded under.
fn unsent_key(mid: &str) -> String {
    format!("deleted:{mid}")
}

/// What a batch's decisions need from the database, read up front in a few statements (after
/// taking the contacts' locks on PostgreSQL): which of its events (and unsends) are already
/// recorded, and the accounts' outbound subscribers. The engine's contacts, flow states and
/// dedup keys go into the store's cache ([`TxStore::prefetch`]).
struct Known {
    /// Recorded events: (account, key), for the batch's event keys and `deleted:<mid>` keys.
    events: HashSet<(String, String)>,
    /// Outbound subscribers by account.
    subscribers: HashMap<String, outbound::Subscribers>,
    /// The batch's echoes that are messages this service sent: (account, mid).
    ours: HashSet<(String, String)>,
}

impl Known {
    /// Also hands the outbox rows found for the batch's echoes to `conversations`, whose
    /// writes would otherwise look them up again.
    async fn look_up(
        store: &TxStore,
        parsed: &[Parsed<'_>],
        conversations: &mut conversations::Batch,
    ) -> Result<Known> {
        let mut contacts: Vec<(&str, &str)> = Vec::new();
        let mut event_keys: Vec<(&str, String)> = Vec::new();
        let mut dedup: Vec<(&str, String)> = Vec::new();
        let mut accounts: Vec<&str> = Vec::new();
        let mut echoes: Vec<(&str, &str, &str)> = Vec::new();
        // event ids, which the engine claims as `event:<id>`
        let mut claims: Vec<(&str, &str)> = Vec::new();
        for p in parsed {
            let Ok((events, _)) = &p.events else {
                continue;
            };
            for converted in events {
                let Converted::Decide(event) = converted else {
                    continue;
                };
                let account = event.account.as_str();
                contacts.push((account, event.sender.id.as_str()));
                accounts.push(account);
                event_keys.push((account, event.id.clone()));
                if let Some(mid) = unsendable_mid(&event.kind) {
                    event_keys.push((account, unsent_key(mid)));
                }
                if !event.id.is_empty() {
                    claims.push((account, event.id.as_str()));
                }
                if let Some(comment) = event.comment_id() {
                    dedup.push((account, format!("private_reply:{comment}")));
                }
                if let Core::Echo { mid, .. } = &event.kind {
                    echoes.push((account, event.sender.id.as_str(), mid));
                }
            }
        }
        contacts.sort_unstable();
        contacts.dedup();
        accounts.sort_unstable();
        accounts.dedup();
        let mut known = Known {
            events: HashSet::new(),
            subscribers: HashMap::new(),
            ours: HashSet::new(),
        };
        if contacts.is_empty() {
            return Ok(known);
        }
        {
            let mut tx = store.tx().await;
            // Several instances: one decision at a time per contact (this batch then sees the
            // others' decisions, and they see this one's).
            tx.lock_contacts(&contacts).await?;
            let pairs: Vec<(&str, &str)> =
                event_keys.iter().map(|(a, k)| (*a, k.as_str())).collect();
            for row in rows::select_pairs(
                &mut tx,
                "events",
                ("account", "key"),
                "t.account, t.key",
                &pairs,
            )
            .await?
            {
                use sqlx::Row;
                known
                    .events
                    .insert((row.try_get("account")?, row.try_get("key")?));
            }
            known.subscribers = outbound::subscribers(&mut tx, &accounts).await?;
            let sources = outbox::echo_sources(&mut tx, &echoes).await?;
            known.ours = sources
                .iter()
                .filter(|(_, rows)| !rows.is_empty())
                .map(|(message, _)| message.clone())
                .collect();
            conversations.know_sources(sources);
        }
        let dedup: Vec<(&str, &str)> = dedup.iter().map(|(a, k)| (*a, k.as_str())).collect();
        store.prefetch(&contacts, &dedup).await?;
        // The engine's event claims are the batch's `events` rows (written at the commit).
        let keys: Vec<(&str, String)> = claims
            .iter()
            .map(|(a, id)| (*a, format!("event:{id}")))
            .collect();
        let recorded: Vec<(&str, &str, bool)> = claims
            .iter()
            .zip(&keys)
            .map(|((a, id), (_, k))| (*a, k.as_str(), known.recorded(a, id)))
            .collect();
        store.claims_recorded_elsewhere(&recorded);
        Ok(known)
    }

    fn recorded(&self, account: &str, key: &str) -> bool {
        self.events.contains(&(account.to_owned(), key.to_owned()))
    }

    /// Whether the echoed message `mid` was sent by this service.
    fn ours(&self, account: &str, mid: &str) -> bool {
        self.ours.contains(&(account.to_owned(), mid.to_owned()))
    }
}

/// Does the work of one notification inside `store`'s transaction, collecting its rows in
/// `writes`: the outcome of each event (`unparseable` for a body that is no notification).
async fn process_in(
    engine: &automation_core::Engine,
    store: &TxStore,
    writes: &mut Writes,
    known: &Known,
    parsed: Parsed<'_>,
) -> Result<Vec<&'static str>> {
    let row = parsed.row;
    let now = db::now_ms();
    if writes.now == 0 {
        writes.now = now;
    }
    let (events, incomplete) = match parsed.events {
        Ok(parsed) => parsed,
        Err(reason) => {
            writes
                .finished
                .push((row.id.clone(), inbox::REJECTED, Some(reason)));
            return Ok(vec!["unparseable"]);
        }
    };
    let mut outcomes = Vec::new();
    for converted in events {
        match converted {
            Converted::Skip {
                account,
                key,
                kind,
                reason,
            } => {
                let account = account.unwrap_or_default();
                let decision = serde_json::json!({ "outcome": "skipped", "reason": reason });
                writes.record_event(
                    &account,
                    &key,
                    &row.id,
                    kind,
                    "",
                    None,
                    now,
                    now,
                    "skipped",
                    None,
                    decision.to_string(),
                );
                // P20: an unsent message is no longer shown or kept (the rows this batch
                // collected so far are written first, so that the unsend sees them).
                if let Some(mid) = key.strip_prefix("deleted:") {
                    let mut tx = store.tx().await;
                    writes.write_rows(&mut tx).await?;
                    db::privacy::unsend(&mut tx, &account, mid, &row.id).await?;
                }
                outcomes.push("skipped");
            }
            // P5: an account whose automations need no messages does not read them: only the
            // key is kept (deduplication), and the items leave the raw notification.
            Converted::Decide(event)
                if writes.unread.contains(&event.account)
                    && super::data_access::is_unread(&event.kind) =>
            {
                let decision = serde_json::json!({ "outcome": "not_read",
                    "reason": "the organization's automations need no messages (P5)" });
                if let Some(mid) = super::data_access::mid_of(&event.kind) {
                    writes
                        .forget
                        .entry((row.id.clone(), event.account.clone()))
                        .or_default()
                        .push(mid.to_owned());
                }
                writes.record_event(
                    &event.account,
                    &event.id,
                    &row.id,
                    kind_name(&event.kind),
                    "",
                    None,
                    event.occurred_at.timestamp_millis(),
                    now,
                    "not_read",
                    None,
                    decision.to_string(),
                );
                outcomes.push("not_read");
            }
            Converted::Decide(mut event) => {
                if writes.unread.contains(&event.account) {
                    // delivery status only: not the text of the echoed message
                    if let Core::Echo { text, .. } = &mut event.kind {
                        text.clear();
                    }
                }
                let outcome = decide(engine, store, writes, known, &row.id, event, now).await?;
                outcomes.push(outcome);
            }
        }
    }
    writes
        .finished
        .push((row.id.clone(), inbox::DONE, incomplete));
    Ok(outcomes)
}

impl Writes {
    /// Records an event (kept once per account and key).
    #[allow(clippy::too_many_arguments)]
    fn record_event(
        &mut self,
        account: &str,
        key: &str,
        inbox_id: &str,
        kind: &str,
        contact: &str,
        text: Option<&str>,
        occurred_at: i64,
        now: i64,
        outcome: &str,
        rule: Option<&str>,
        decision: String,
    ) {
        if !self.seen.insert((account.to_owned(), key.to_owned())) {
            return;
        }
        self.events.push(vec![
            account.into(),
            key.into(),
            inbox_id.into(),
            kind.into(),
            contact.into(),
            text.into(),
            occurred_at.into(),
            now.into(),
            outcome.into(),
            rule.into(),
            decision.into(),
        ]);
    }
}

impl Writes {
    /// Records a decided event with its outcome, rule and decision (JSON).
    fn record_decided(
        &mut self,
        event: &InboundEvent,
        inbox_id: &str,
        now: i64,
        outcome: &str,
        rule: Option<&str>,
        decision: String,
    ) {
        self.record_event(
            &event.account,
            &event.id,
            inbox_id,
            kind_name(&event.kind),
            &event.sender.id,
            event.text(),
            event.occurred_at.timestamp_millis(),
            now,
            outcome,
            rule,
            decision,
        );
    }
}

fn kind_name(kind: &Core) -> &'static str {
    match kind {
        Core::Comment { .. } => "comment",
        Core::LiveComment { .. } => "live_comment",
        Core::Message { .. } => "message",
        Core::StoryReply { .. } => "story_reply",
        Core::StoryMention { .. } => "story_mention",
        Core::Postback { .. } => "postback",
        Core::QuickReply { .. } => "quick_reply",
        Core::IceBreaker { .. } => "ice_breaker",
        Core::Referral { .. } => "referral",
        Core::OptIn { .. } => "opt_in",
        Core::Reaction { .. } => "reaction",
        Core::Read { .. } => "read",
        Core::Echo { .. } => "echo",
        _ => "other",
    }
}

fn outcome_name(outcome: Outcome) -> &'static str {
    match outcome {
        Outcome::Fired => "fired",
        Outcome::Flow => "flow",
        Outcome::NoMatch => "no_match",
        Outcome::Duplicate => "duplicate",
        Outcome::Paused => "paused",
        Outcome::Ignored => "ignored",
        _ => "other",
    }
}

/// Decides one event inside the transaction; its outcome name.
async fn decide(
    engine: &automation_core::Engine,
    store: &TxStore,
    writes: &mut Writes,
    known: &Known,
    inbox_id: &str,
    mut event: InboundEvent,
    now: i64,
) -> Result<&'static str> {
    if writes
        .seen
        .contains(&(event.account.clone(), event.id.clone()))
    {
        return Ok("duplicate");
    }
    if known.recorded(&event.account, &event.id) {
        return Ok("duplicate");
    }
    {
        let mut tx = store.tx().await;
        // P20: a message unsent before it was processed (a late delivery) is not kept.
        if let Some(mid) = unsendable_mid(&event.kind) {
            let deleted = unsent_key(mid);
            let unsent_here = writes
                .seen
                .contains(&(event.account.clone(), deleted.clone()));
            if unsent_here || known.recorded(&event.account, &deleted) {
                // the other notifications that carry it now; this one's item at the batch's
                // end, which also finishes it (redacting it here would mark it done under
                // the worker, and finishing it would then fail)
                db::privacy::redact_mentions(&mut tx, &event.account, mid, inbox_id).await?;
                writes
                    .forget
                    .entry((inbox_id.to_owned(), event.account.clone()))
                    .or_default()
                    .push(mid.to_owned());
                return Ok("unsent");
            }
        }
        writes.touched.insert(event.account.clone(), now);
        // Delivery status from echoes and read receipts.
        match &mut event.kind {
            Core::Echo { mid, from_app, .. } => {
                *from_app = known.ours(&event.account, mid);
                writes.delivered.push((event.account.clone(), mid.clone()));
                if *from_app {
                    // The echo of a message this service sent: it marks the send delivered
                    // and shows the message; there is nothing for the engine to decide (echoes
                    // never trigger rules, and only a human's reply pauses automation).
                    writes.conversations.note(&event);
                    record_own_echo(writes, &event, inbox_id, now);
                    return Ok("ignored");
                }
            }
            Core::Read { mid } => {
                // the echoes before it are delivered first (read comes after delivered)
                writes.mark_delivered(&mut tx).await?;
                let until = match outbox::sent_at_of(&mut tx, &event.account, mid).await? {
                    Some(at) => at,
                    None => event.occurred_at.timestamp_millis(),
                };
                for row in
                    outbox::mark_read(&mut tx, &event.account, &event.sender.id, until, now).await?
                {
                    writes
                        .log
                        .push(status_entry(&row, &event.account, "read", None, now));
                }
            }
            // P19: opt-in consent is recorded per contact.
            Core::OptIn { payload } => {
                db::privacy::record_consent(
                    &mut tx,
                    &event.account,
                    &event.sender.id,
                    &event.id,
                    payload.as_deref(),
                    event.occurred_at.timestamp_millis(),
                )
                .await?;
            }
            _ => {}
        }
        writes.conversations.note(&event);
    }
    let seed = {
        let mut h = std::collections::hash_map::DefaultHasher::new();
        event.id.hash(&mut h);
        h.finish()
    };
    let decision: Decision = engine.decide(store, &event, db::to_time(now), seed).await?;
    // The contact as the engine left it (written back at commit): for `contact.updated`.
    let contact = store.contact(&event.account, &event.sender.id).await?;
    {
        let mut tx = store.tx().await;
        write_wakes(&mut tx, &decision).await?;
        let none = outbound::Subscribers::default();
        let subs = known.subscribers.get(&event.account).unwrap_or(&none);
        super::outbound::publish_decision(&mut tx, subs, &event, &decision, contact.as_ref(), now)
            .await?;
    }
    writes.actions.extend(outbox_rows(&event.id, &decision));
    let outcome = outcome_name(decision.outcome);
    let json = serde_json::to_string(&decision).unwrap_or_default();
    writes.record_decided(
        &event,
        inbox_id,
        now,
        outcome,
        decision.rule.as_deref(),
        json,
    );
    tracing::debug!(event = %event.id, outcome, rule = ?decision.rule, reason = %decision.reason, "decided");
    Ok(outcome)
}

/// Records the echo of a message this service sent, with the decision the engine makes for
/// every echo of ours (ignored; the contact is not touched), without asking it.
fn record_own_echo(writes: &mut Writes, event: &InboundEvent, inbox_id: &str, now: i64) {
    const REASON: &str = "message echoes never trigger rules (this service sent it)";
    let decision = serde_json::json!({
        "event": event.id,
        "account": event.account,
        "contact": event.sender.id,
        "outcome": "ignored",
        "reason": REASON,
        "actions": [],
    });
    writes.record_decided(event, inbox_id, now, "ignored", None, decision.to_string());
}

/// Writes a decision's outbox rows (key = event key + `#` + action index, each logged as
/// `queued`) and schedules its flow wake-ups, in the caller's transaction.
pub(crate) async fn write_actions(
    tx: &mut Tx,
    event_key: &str,
    decision: &Decision,
    now: i64,
) -> Result<()> {
    write_wakes(tx, decision).await?;
    let actions = outbox_rows(event_key, decision);
    let inserted: HashSet<String> = outbox::insert_many(tx, &actions, now)
        .await?
        .into_iter()
        .collect();
    let log: Vec<Vec<Param>> = actions
        .iter()
        .filter(|a| inserted.contains(&a.key))
        .map(|a| {
            delivery_log::Entry {
                outbox_key: &a.key,
                account: &a.account,
                rule: a.rule.as_deref(),
                kind: &a.kind,
                attempt: 0,
                status: "queued",
                ..Default::default()
            }
            .row(now)
        })
        .collect();
    delivery_log::append_many(tx, &log).await
}

/// Schedules a decision's flow wake-ups.
async fn write_wakes(tx: &mut Tx, decision: &Decision) -> Result<()> {
    for action in &decision.actions {
        if let automation_core::PlannedAction::Wake { at } = action {
            sqlx::query(
                "INSERT INTO wakes (account, contact, due_at) VALUES ($1, $2, $3) \
                 ON CONFLICT (account, contact) DO UPDATE SET due_at = excluded.due_at, \
                 lease_owner = NULL, lease_until = NULL",
            )
            .bind(&decision.account)
            .bind(&decision.contact)
            .bind(at.timestamp_millis())
            .execute(&mut **tx)
            .await?;
        }
    }
    Ok(())
}

/// A decision's outbox rows: one per action that calls out.
fn outbox_rows(event_key: &str, decision: &Decision) -> Vec<outbox::NewAction> {
    let account = &decision.account;
    let mut rows = Vec::new();
    for (index, action) in decision.actions.iter().enumerate() {
        let Some((kind, recipient)) = convert::outbox_kind(action, &decision.contact) else {
            continue;
        };
        rows.push(outbox::NewAction {
            key: format!("{event_key}#{index}"),
            account: account.clone(),
            event_key: event_key.to_string(),
            action_index: i64::try_from(index).unwrap_or(i64::MAX),
            rule: decision.rule.clone(),
            kind: kind.to_string(),
            recipient,
            action: serde_json::to_string(action).unwrap_or_default(),
        });
    }
    rows
}

/// A delivery-log row for a status change of `row`.
fn status_entry(
    row: &outbox::Changed,
    account: &str,
    status: &str,
    mid: Option<&str>,
    now: i64,
) -> Vec<Param> {
    delivery_log::Entry {
        outbox_key: &row.key,
        account,
        rule: row.rule.as_deref(),
        kind: &row.kind,
        status,
        mid,
        ..Default::default()
    }
    .row(now)
}
