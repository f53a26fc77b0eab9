//! The team inbox's storage: conversations (one per account and contact), their messages, and
//! internal notes, plus the organizations' inbox settings (round-robin assignment).
//!
//! The inbox worker records what its batch saw with a [`Batch`]: inbound messages open (or
//! reopen, or wake from a snooze) their conversation, echoes become outbound messages (an
//! agent's reply is recognised by its outbox key, see [`REPLY_KEY_PREFIX`]), reactions and read
//! receipts update the messages they name, all in a few multi-row statements per batch. An
//! unsent message is deleted ([`unsend`]).

use std::collections::{BTreeMap, HashMap};

use automation_core::event::EventKind as Core;
use automation_core::InboundEvent;
use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{AnyConnection, Row};

use super::rows::{self, Param};
use super::{Result, Tx};

/// A conversation waiting for the team.
pub const OPEN: &str = "open";
/// A conversation waiting for the contact.
pub const PENDING: &str = "pending";
/// A finished conversation (a new message from the contact reopens it).
pub const CLOSED: &str = "closed";

/// The outbox key of an agent's reply starts with this: `reply:<id>:<user id>` (the user id is
/// empty when an API key replied).
pub const REPLY_KEY_PREFIX: &str = "reply:";

/// The outbox key of an agent's reply.
pub fn reply_key(id: &str, user: Option<&str>) -> String {
    format!("{REPLY_KEY_PREFIX}{id}:{}", user.unwrap_or_default())
}

/// Whether outbox `key` is an agent's reply from the inbox ([`reply_key`]).
pub fn is_reply_key(key: &str) -> bool {
    key.starts_with(REPLY_KEY_PREFIX)
}

/// The agent of an outbox key, when it is a reply's: `Some(None)` for a reply made with an API
/// key.
fn agent_of(key: &str) -> Option<Option<String>> {
    let rest = key.strip_prefix(REPLY_KEY_PREFIX)?;
    let user = rest.split_once(':').map(|(_, u)| u).unwrap_or_default();
    Some((!user.is_empty()).then(|| user.to_string()))
}

/// A conversation, as the management API shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Conversation {
    /// The account.
    pub account: String,
    /// The contact (IGSID).
    pub contact: String,
    /// `open`, `pending` or `closed`.
    pub status: String,
    /// Snoozed until then (Unix ms); a new message from the contact wakes it.
    pub snoozed_until: Option<i64>,
    /// The member it is assigned to.
    pub assignee: Option<String>,
    /// The contact's last message (Unix ms).
    pub last_inbound_at: Option<i64>,
    /// The account's last message (Unix ms).
    pub last_outbound_at: Option<i64>,
    /// The contact's first message no agent answered yet (Unix ms).
    pub waiting_since: Option<i64>,
    /// The contact's first message (Unix ms).
    pub first_inbound_at: Option<i64>,
    /// The first agent reply after it (Unix ms).
    pub first_response_at: Option<i64>,
    /// How long the first response took, in milliseconds.
    pub first_response_ms: Option<i64>,
    /// Automation is paused for the contact until then (a human handles it), unless closed
    /// earlier.
    pub human_until: Option<i64>,
    /// When it was created (Unix ms).
    pub created_at: i64,
    /// When it last changed (Unix ms).
    pub updated_at: i64,
}

impl Conversation {
    fn new(account: &str, contact: &str, status: &str, now: i64) -> Self {
        Self {
            account: account.to_string(),
            contact: contact.to_string(),
            status: status.to_string(),
            snoozed_until: None,
            assignee: None,
            last_inbound_at: None,
            last_outbound_at: None,
            waiting_since: None,
            first_inbound_at: None,
            first_response_at: None,
            first_response_ms: None,
            human_until: None,
            created_at: now,
            updated_at: now,
        }
    }

    fn from_row(r: &AnyRow) -> Result<Self> {
        Ok(Self {
            account: r.try_get("account")?,
            contact: r.try_get("contact")?,
            status: r.try_get("status")?,
            snoozed_until: r.try_get("snoozed_until")?,
            assignee: r.try_get("assignee")?,
            last_inbound_at: r.try_get("last_inbound_at")?,
            last_outbound_at: r.try_get("last_outbound_at")?,
            waiting_since: r.try_get("waiting_since")?,
            first_inbound_at: r.try_get("first_inbound_at")?,
            first_response_at: r.try_get("first_response_at")?,
            first_response_ms: r.try_get("first_response_ms")?,
            human_until: r.try_get("human_until")?,
            created_at: r.try_get("created_at")?,
            updated_at: r.try_get("updated_at")?,
        })
    }

    fn row(&self) -> Vec<Param> {
        vec![
            Param::from(&self.account),
            Param::from(&self.contact),
            Param::from(&self.status),
            Param::from(self.snoozed_until),
            Param::from(self.assignee.clone()),
            Param::from(self.last_inbound_at),
            Param::from(self.last_outbound_at),
            Param::from(self.waiting_since),
            Param::from(self.first_inbound_at),
            Param::from(self.first_response_at),
            Param::from(self.first_response_ms),
            Param::from(self.human_until),
            Param::from(self.created_at),
            Param::from(self.updated_at),
        ]
    }

    /// A message of the contact at `at`: open (reopened, woken from a snooze). A closed
    /// conversation that reopens starts its response time over: its first response is timed
    /// from this message (the earlier one's time is replaced).
    fn inbound(&mut self, at: i64) {
        if self.status == CLOSED {
            self.first_inbound_at = None;
            self.first_response_at = None;
            self.first_response_ms = None;
            self.waiting_since = None;
        }
        self.status = OPEN.to_string();
        self.snoozed_until = None;
        self.last_inbound_at = Some(self.last_inbound_at.map_or(at, |l| l.max(at)));
        self.waiting_since.get_or_insert(at);
        self.first_inbound_at.get_or_insert(at);
    }

    /// A message of the account at `at`, by an agent or not.
    fn outbound(&mut self, at: i64, by_agent: bool) {
        self.last_outbound_at = Some(self.last_outbound_at.map_or(at, |l| l.max(at)));
        if !by_agent {
            return;
        }
        self.waiting_since = None;
        if let (None, Some(first)) = (self.first_response_at, self.first_inbound_at) {
            if at >= first {
                self.first_response_at = Some(at);
                self.first_response_ms = Some(at - first);
            }
        }
    }
}

const COLUMNS: &str = "account, contact, status, snoozed_until, assignee, last_inbound_at, \
     last_outbound_at, waiting_since, first_inbound_at, first_response_at, first_response_ms, \
     human_until, created_at, updated_at";

/// Writes conversations whole (insert, or replace every column).
async fn upsert(tx: &mut Tx, list: &[&Conversation]) -> Result<()> {
    let rows: Vec<Vec<Param>> = list.iter().map(|c| c.row()).collect();
    rows::insert(
        tx,
        &format!("INSERT INTO conversations ({COLUMNS})"),
        14,
        &rows,
        "ON CONFLICT (account, contact) DO UPDATE SET status = excluded.status, \
         snoozed_until = excluded.snoozed_until, assignee = excluded.assignee, \
         last_inbound_at = excluded.last_inbound_at, last_outbound_at = excluded.last_outbound_at, \
         waiting_since = excluded.waiting_since, first_inbound_at = excluded.first_inbound_at, \
         first_response_at = excluded.first_response_at, first_response_ms = excluded.first_response_ms, \
         human_until = excluded.human_until, updated_at = excluded.updated_at",
    )
    .await?;
    Ok(())
}

/// A message the batch saw.
#[derive(Debug)]
struct NewMessage {
    account: String,
    mid: String,
    contact: String,
    inbound: bool,
    text: Option<String>,
    attachments: String,
    at: i64,
}

/// What an inbox batch saw of conversations, written at its end by [`Batch::write`].
#[derive(Debug, Default)]
pub struct Batch {
    messages: Vec<NewMessage>,
    /// (account, mid, who, emoji or `None` for an unreact)
    reactions: Vec<(String, String, String, Option<String>)>,
    /// (account, contact, mid, when)
    reads: Vec<(String, String, String, i64)>,
    /// The outbox rows that may have sent outbound messages, already looked up by the caller
    /// ([`super::outbox::echo_sources`]), by (account, mid).
    sources: HashMap<(String, String), Vec<String>>,
}

impl Batch {
    /// Adds outbound messages' sources the caller looked up in this transaction (the inbox
    /// worker does, for its echoes), so that writing the messages does not look them up again.
    pub fn know_sources(&mut self, sources: HashMap<(String, String), Vec<String>>) {
        self.sources.extend(sources);
    }

    /// Notes an event the worker is about to decide on (messages, echoes, reactions, reads;
    /// other kinds are not part of conversations).
    pub fn note(&mut self, event: &InboundEvent) {
        let at = event.occurred_at.timestamp_millis();
        let mut message = |mid: &str, inbound: bool, text: Option<&str>, attachments: String| {
            self.messages.push(NewMessage {
                account: event.account.clone(),
                mid: mid.to_string(),
                contact: event.sender.id.clone(),
                inbound,
                text: text.map(str::to_string),
                attachments,
                at,
            })
        };
        let empty = || "[]".to_string();
        match &event.kind {
            Core::Message {
                mid,
                text,
                attachments,
            } => message(
                mid,
                true,
                text.as_deref(),
                serde_json::to_string(attachments).unwrap_or_else(|_| empty()),
            ),
            Core::QuickReply { mid, text, .. } | Core::StoryReply { mid, text, .. } => {
                message(mid, true, Some(text), empty())
            }
            Core::StoryMention { mid, url } => message(
                mid,
                true,
                None,
                serde_json::json!([{ "type": "story_mention", "url": url }]).to_string(),
            ),
            Core::Echo { mid, text, .. } => {
                message(mid, false, (!text.is_empty()).then_some(text), empty())
            }
            Core::Reaction { mid, reaction } => self.reactions.push((
                event.account.clone(),
                mid.clone(),
                event.sender.id.clone(),
                reaction.clone(),
            )),
            Core::Read { mid } => self.reads.push((
                event.account.clone(),
                event.sender.id.clone(),
                mid.clone(),
                at,
            )),
            _ => {}
        }
    }

    /// Notes a reply an agent sent from the inbox (outbox `key`, see [`reply_key`]), once the
    /// Send API answered with its message id `mid` at `at`: it shows at once, whether or not
    /// its echo arrives (the echo then finds it recorded). Other sends show from their echoes.
    pub fn note_agent_reply(
        &mut self,
        key: &str,
        account: &str,
        contact: &str,
        mid: &str,
        action: &str,
        at: i64,
    ) {
        if !is_reply_key(key) {
            return;
        }
        let action: serde_json::Value = serde_json::from_str(action).unwrap_or_default();
        self.messages.push(NewMessage {
            account: account.to_string(),
            mid: mid.to_string(),
            contact: contact.to_string(),
            inbound: false,
            text: action["message"]["text"].as_str().map(str::to_string),
            attachments: "[]".to_string(),
            at,
        });
    }

    /// Whether nothing was noted.
    pub fn is_empty(&self) -> bool {
        self.messages.is_empty() && self.reactions.is_empty() && self.reads.is_empty()
    }

    /// Writes what was noted (and forgets it) in the batch's transaction: messages, their
    /// conversations (round-robin assignment of new and reopened ones), reactions, reads.
    pub async fn write(&mut self, tx: &mut Tx, now: i64) -> Result<()> {
        if self.is_empty() {
            return Ok(());
        }
        let messages = std::mem::take(&mut self.messages);
        let reactions = std::mem::take(&mut self.reactions);
        let reads = std::mem::take(&mut self.reads);
        let sources = std::mem::take(&mut self.sources);
        if !messages.is_empty() {
            write_messages(tx, &messages, sources, now).await?;
        }
        write_reactions(tx, &reactions).await?;
        for (account, contact, mid, at) in &reads {
            sqlx::query(
                "UPDATE messages SET read_at = $1 WHERE account = $2 AND contact = $3 \
                 AND direction = 'out' AND read_at IS NULL AND sent_at <= \
                 COALESCE((SELECT m.sent_at FROM messages m WHERE m.account = $2 AND m.mid = $4), $1)",
            )
            .bind(at)
            .bind(account)
            .bind(contact)
            .bind(mid)
            .execute(&mut **tx)
            .await?;
        }
        Ok(())
    }
}

/// The outbox row that sent each outbound message, by account and mid (`None`: not one of
/// this service's, or several sends to that person were in flight). `known`: the sources
/// already looked up; only the other messages are looked up.
async fn senders(
    tx: &mut Tx,
    messages: &[NewMessage],
    mut known: HashMap<(String, String), Vec<String>>,
) -> Result<HashMap<(String, String), Option<String>>> {
    let outbound: Vec<(&str, &str, &str)> = messages
        .iter()
        .filter(|m| !m.inbound && !known.contains_key(&(m.account.clone(), m.mid.clone())))
        .map(|m| (m.account.as_str(), m.contact.as_str(), m.mid.as_str()))
        .collect();
    if !outbound.is_empty() {
        known.extend(super::outbox::echo_sources(tx, &outbound).await?);
    }
    Ok(known
        .into_iter()
        .map(|(message, rows)| match rows.as_slice() {
            [key] => (message, Some(key.clone())),
            _ => (message, None),
        })
        .collect())
}

/// Who sent message `m` (`contact`, `agent` with the agent, `automation`, or `app`: Instagram's
/// app or another tool), from the outbox rows found by [`senders`].
fn sent_by(
    m: &NewMessage,
    keys: &HashMap<(String, String), Option<String>>,
) -> (&'static str, Option<String>) {
    if m.inbound {
        return ("contact", None);
    }
    match keys
        .get(&(m.account.clone(), m.mid.clone()))
        .and_then(|k| k.as_deref())
        .map(agent_of)
    {
        Some(Some(agent)) => ("agent", agent),
        Some(None) => ("automation", None),
        None => ("app", None),
    }
}

/// What a message did to its conversation: (from the contact, when, by an agent).
type Touch = (bool, i64, bool);

/// A reaction change: (who, emoji or `None` for an unreact).
type Reacted<'a> = (&'a str, Option<&'a str>);

async fn write_messages(
    tx: &mut Tx,
    messages: &[NewMessage],
    sources: HashMap<(String, String), Vec<String>>,
    now: i64,
) -> Result<()> {
    let keys = senders(tx, messages, sources).await?;
    let mut rows_out = Vec::with_capacity(messages.len());
    // per conversation, what happened in order: (inbound, at, by agent)
    let mut touches: BTreeMap<(String, String), Vec<Touch>> = BTreeMap::new();
    for m in messages {
        let (sent_by, agent) = sent_by(m, &keys);
        touches
            .entry((m.account.clone(), m.contact.clone()))
            .or_default()
            .push((m.inbound, m.at, sent_by == "agent"));
        rows_out.push(vec![
            Param::from(&m.account),
            Param::from(&m.mid),
            Param::from(&m.contact),
            Param::from(if m.inbound { "in" } else { "out" }),
            Param::from(m.text.clone()),
            Param::from(&m.attachments),
            Param::from(m.at),
            Param::from(sent_by),
            Param::from(agent),
        ]);
    }
    rows::insert(
        tx,
        "INSERT INTO messages (account, mid, contact, direction, text, attachments, sent_at, sent_by, agent)",
        9,
        &rows_out,
        "ON CONFLICT (account, mid) DO NOTHING",
    )
    .await?;
    // the conversations as they are, then as the batch leaves them
    let pairs: Vec<(&str, &str)> = touches
        .keys()
        .map(|(a, c)| (a.as_str(), c.as_str()))
        .collect();
    let columns = COLUMNS
        .split(',')
        .map(|c| format!("t.{}", c.trim()))
        .collect::<Vec<_>>()
        .join(", ");
    let mut current: HashMap<(String, String), Conversation> = HashMap::new();
    for r in rows::select_pairs(
        tx,
        "conversations",
        ("account", "contact"),
        &columns,
        &pairs,
    )
    .await?
    {
        let c = Conversation::from_row(&r)?;
        current.insert((c.account.clone(), c.contact.clone()), c);
    }
    let mut changed = Vec::new();
    let mut opened = Vec::new();
    // episodes first answered in this batch: (account, contact, opened, answered, ms)
    let mut answered = Vec::new();
    for ((account, contact), list) in touches {
        let key = (account.clone(), contact.clone());
        let existing = current.remove(&key);
        let was_open = existing.as_ref().map(|c| c.status != CLOSED);
        let mut c = existing.unwrap_or_else(|| Conversation::new(&account, &contact, PENDING, now));
        for (inbound, at, by_agent) in list {
            if inbound {
                c.inbound(at);
            } else {
                let before = c.first_response_at;
                c.outbound(at, by_agent);
                if let (None, Some(opened_at), Some(at), Some(ms)) = (
                    before,
                    c.first_inbound_at,
                    c.first_response_at,
                    c.first_response_ms,
                ) {
                    answered.push(vec![
                        Param::from(&account),
                        Param::from(&contact),
                        Param::from(opened_at),
                        Param::from(at),
                        Param::from(ms),
                    ]);
                }
            }
        }
        c.updated_at = now;
        // new or reopened by the contact
        if c.status == OPEN && was_open != Some(true) {
            opened.push(changed.len());
        }
        changed.push(c);
    }
    if !opened.is_empty() {
        round_robin(tx, &mut changed, &opened, now).await?;
    }
    let refs: Vec<&Conversation> = changed.iter().collect();
    upsert(tx, &refs).await?;
    rows::insert(
        tx,
        "INSERT INTO response_times (account, contact, opened_at, responded_at, response_ms)",
        5,
        &answered,
        "ON CONFLICT (account, contact, opened_at) DO NOTHING",
    )
    .await?;
    Ok(())
}

/// Gives the conversations at `opened` to the next Agent or Admin member in turn, in the
/// organizations that turned round-robin on.
async fn round_robin(
    tx: &mut Tx,
    list: &mut [Conversation],
    opened: &[usize],
    now: i64,
) -> Result<()> {
    let mut accounts: Vec<&str> = opened.iter().map(|&i| list[i].account.as_str()).collect();
    accounts.sort_unstable();
    accounts.dedup();
    let sql = format!(
        "SELECT a.id, a.org_id, s.last_assignee FROM accounts a JOIN inbox_settings s \
         ON s.org_id = a.org_id WHERE s.round_robin = 1 AND a.id IN ({})",
        rows::placeholders(1, accounts.len())
    );
    let mut q = sqlx::query(sqlx::AssertSqlSafe(sql));
    for a in &accounts {
        q = q.bind(*a);
    }
    let mut org_of: HashMap<String, String> = HashMap::new();
    let mut last: HashMap<String, Option<String>> = HashMap::new();
    for r in q.fetch_all(&mut **tx).await? {
        let org: String = r.try_get("org_id")?;
        org_of.insert(r.try_get("id")?, org.clone());
        last.insert(org, r.try_get("last_assignee")?);
    }
    if org_of.is_empty() {
        return Ok(());
    }
    let mut members: HashMap<String, Vec<String>> = HashMap::new();
    for org in last.keys() {
        members.insert(org.clone(), rotation(tx, org).await?);
    }
    for &i in opened {
        let Some(org) = org_of.get(&list[i].account) else {
            continue;
        };
        let Some(turn) = members.get(org).filter(|m| !m.is_empty()) else {
            continue;
        };
        let previous = last.get(org).cloned().flatten();
        let next = next_in_turn(turn, previous.as_deref());
        list[i].assignee = Some(next.clone());
        last.insert(org.clone(), Some(next));
    }
    for (org, assignee) in last {
        sqlx::query(
            "UPDATE inbox_settings SET last_assignee = $1, updated_at = $2 WHERE org_id = $3",
        )
        .bind(assignee)
        .bind(now)
        .bind(org)
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}

/// The members that round-robin assigns to, in turn: Agents and Admins, oldest first.
async fn rotation(conn: &mut AnyConnection, org: &str) -> Result<Vec<String>> {
    let ids = sqlx::query_scalar(
        "SELECT user_id FROM members WHERE org_id = $1 AND role IN ('agent', 'admin') \
         ORDER BY created_at, user_id",
    )
    .bind(org)
    .fetch_all(conn)
    .await?;
    Ok(ids)
}

/// The member after `previous` in `turn` (the first when `previous` is none or gone).
fn next_in_turn(turn: &[String], previous: Option<&str>) -> String {
    let at = previous.and_then(|p| turn.iter().position(|m| m == p));
    let index = at.map_or(0, |i| (i + 1) % turn.len());
    turn.get(index).cloned().unwrap_or_default()
}

async fn write_reactions(
    tx: &mut Tx,
    reactions: &[(String, String, String, Option<String>)],
) -> Result<()> {
    if reactions.is_empty() {
        return Ok(());
    }
    let mut by_message: BTreeMap<(&str, &str), Vec<Reacted<'_>>> = BTreeMap::new();
    for (account, mid, who, emoji) in reactions {
        by_message
            .entry((account, mid))
            .or_default()
            .push((who, emoji.as_deref()));
    }
    for ((account, mid), changes) in by_message {
        let stored: Option<String> =
            sqlx::query_scalar("SELECT reactions FROM messages WHERE account = $1 AND mid = $2")
                .bind(account)
                .bind(mid)
                .fetch_optional(&mut **tx)
                .await?;
        let Some(stored) = stored else {
            continue;
        };
        let mut map: BTreeMap<String, String> = serde_json::from_str(&stored).unwrap_or_default();
        for (who, emoji) in changes {
            match emoji {
                Some(e) => map.insert(who.to_string(), e.to_string()),
                None => map.remove(who),
            };
        }
        sqlx::query("UPDATE messages SET reactions = $1 WHERE account = $2 AND mid = $3")
            .bind(serde_json::to_string(&map).unwrap_or_else(|_| "{}".into()))
            .bind(account)
            .bind(mid)
            .execute(&mut **tx)
            .await?;
    }
    Ok(())
}

/// A message read from the Conversations API by a backfill.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Backfilled {
    /// The message id.
    pub mid: String,
    /// From the contact (else from the account).
    pub inbound: bool,
    /// The text.
    pub text: Option<String>,
    /// When it was sent (Unix ms).
    pub at: i64,
}

impl Backfilled {
    /// A message read from the Conversations API.
    pub fn new(mid: String, inbound: bool, text: Option<String>, at: i64) -> Self {
        Self {
            mid,
            inbound,
            text,
            at,
        }
    }
}

/// Records the messages a backfill read of the conversation with `contact` (those already
/// known are kept as they are); the conversation is created when there is none (`open` when
/// the contact wrote last, else `pending`), else only its last message times move. The number
/// of messages added.
pub async fn record_backfilled(
    tx: &mut Tx,
    account: &str,
    contact: &str,
    list: &[Backfilled],
    now: i64,
) -> Result<u64> {
    if list.is_empty() {
        return Ok(0);
    }
    let messages: Vec<NewMessage> = list
        .iter()
        .map(|m| NewMessage {
            account: account.to_string(),
            mid: m.mid.clone(),
            contact: contact.to_string(),
            inbound: m.inbound,
            text: m.text.clone(),
            attachments: "[]".into(),
            at: m.at,
        })
        .collect();
    let keys = senders(tx, &messages, HashMap::new()).await?;
    let rows_out: Vec<Vec<Param>> = messages
        .iter()
        .map(|m| {
            let (sent_by, agent) = sent_by(m, &keys);
            vec![
                Param::from(&m.account),
                Param::from(&m.mid),
                Param::from(&m.contact),
                Param::from(if m.inbound { "in" } else { "out" }),
                Param::from(m.text.clone()),
                Param::from(&m.attachments),
                Param::from(m.at),
                Param::from(sent_by),
                Param::from(agent),
            ]
        })
        .collect();
    let added = rows::insert(
        tx,
        "INSERT INTO messages (account, mid, contact, direction, text, attachments, sent_at, sent_by, agent)",
        9,
        &rows_out,
        "ON CONFLICT (account, mid) DO NOTHING",
    )
    .await?;
    let last_in = list.iter().filter(|m| m.inbound).map(|m| m.at).max();
    let last_out = list.iter().filter(|m| !m.inbound).map(|m| m.at).max();
    let later = |a: Option<i64>, b: Option<i64>| match (a, b) {
        (Some(x), Some(y)) => Some(x.max(y)),
        (x, y) => x.or(y),
    };
    let c = match get(tx, account, contact).await? {
        Some(mut c) => {
            c.last_inbound_at = later(c.last_inbound_at, last_in);
            c.last_outbound_at = later(c.last_outbound_at, last_out);
            c.updated_at = now;
            c
        }
        None => {
            let status = if last_in.unwrap_or(i64::MIN) >= last_out.unwrap_or(i64::MIN) {
                OPEN
            } else {
                PENDING
            };
            let mut c = Conversation::new(account, contact, status, now);
            c.last_inbound_at = last_in;
            c.last_outbound_at = last_out;
            c.first_inbound_at = list.iter().filter(|m| m.inbound).map(|m| m.at).min();
            c
        }
    };
    upsert(tx, &[&c]).await?;
    Ok(added)
}

/// P20: deletes an unsent message; the number of rows deleted.
pub async fn unsend(tx: &mut Tx, account: &str, mid: &str) -> Result<u64> {
    let done = sqlx::query("DELETE FROM messages WHERE account = $1 AND mid = $2")
        .bind(account)
        .bind(mid)
        .execute(&mut **tx)
        .await?;
    Ok(done.rows_affected())
}

// ---------------------------------------------------------------------------------------------
// The management API's reads and writes (the caller checked that the account is the
// organization's).

/// A message of a conversation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Message {
    /// The Instagram message id.
    pub mid: String,
    /// `in` (from the contact) or `out`.
    pub direction: String,
    /// The text.
    pub text: Option<String>,
    /// The attachments: `[{"type", "url"}]`.
    pub attachments: serde_json::Value,
    /// When it was sent (Unix ms).
    pub sent_at: i64,
    /// `contact`, `automation`, `agent`, or `app` (a person in Instagram's app).
    pub sent_by: String,
    /// The member who replied (agent replies made in a login session).
    pub agent: Option<String>,
    /// Reactions: who (IGSID) to emoji.
    pub reactions: serde_json::Value,
    /// When the contact read it (outbound messages).
    pub read_at: Option<i64>,
}

/// An internal note.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[non_exhaustive]
pub struct Note {
    /// The note's id.
    pub id: String,
    /// The member who wrote it.
    pub author: Option<String>,
    /// The text.
    pub text: String,
    /// When (Unix ms).
    pub created_at: i64,
}

/// Which conversations to list.
#[derive(Debug, Clone, Default, serde::Deserialize)]
#[non_exhaustive]
pub struct Filter {
    /// Only this account's.
    pub account: Option<String>,
    /// `open` (not snoozed), `pending`, `closed` or `snoozed` (snoozed now).
    pub status: Option<String>,
    /// Only those assigned to this member.
    pub assignee: Option<String>,
    /// Only unassigned ones (`true`).
    pub unassigned: Option<bool>,
    /// Page size (1 to 200, default 50).
    pub limit: Option<i64>,
    /// How many to skip (the previous answer's `next_offset`).
    pub offset: Option<i64>,
}

/// The organization's conversations matching `filter`, most recently active first, and whether
/// there are more.
pub async fn list(
    conn: &mut AnyConnection,
    org: &str,
    filter: &Filter,
    now: i64,
) -> Result<(Vec<Conversation>, bool)> {
    let limit = filter.limit.unwrap_or(50).clamp(1, 200);
    let offset = filter.offset.unwrap_or(0).max(0);
    let (status, snoozed) = match filter.status.as_deref() {
        Some("snoozed") => (None, Some(true)),
        Some(OPEN) => (Some(OPEN), Some(false)),
        Some(s) => (Some(s), None),
        None => (None, None),
    };
    let sql = format!(
        "SELECT {COLUMNS} FROM conversations WHERE account IN (SELECT id FROM accounts WHERE org_id = $1) \
         AND ($2 IS NULL OR account = $2) AND ($3 IS NULL OR status = $3) \
         AND ($4 IS NULL OR assignee = $4) AND ($5 = 0 OR assignee IS NULL) \
         AND ($6 = 0 OR (snoozed_until IS NOT NULL AND snoozed_until > $8)) \
         AND ($7 = 0 OR snoozed_until IS NULL OR snoozed_until <= $8) \
         ORDER BY COALESCE(last_inbound_at, created_at) DESC, account, contact LIMIT $9 OFFSET $10"
    );
    let rows = sqlx::query(sqlx::AssertSqlSafe(sql))
        .bind(org)
        .bind(&filter.account)
        .bind(status)
        .bind(&filter.assignee)
        .bind(i64::from(filter.unassigned == Some(true)))
        .bind(i64::from(snoozed == Some(true)))
        .bind(i64::from(snoozed == Some(false)))
        .bind(now)
        .bind(limit + 1)
        .bind(offset)
        .fetch_all(conn)
        .await?;
    let mut list = rows
        .iter()
        .map(Conversation::from_row)
        .collect::<Result<Vec<_>>>()?;
    let more = list.len() > usize::try_from(limit).unwrap_or(usize::MAX);
    list.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
    Ok((list, more))
}

/// One conversation.
pub async fn get(
    conn: &mut AnyConnection,
    account: &str,
    contact: &str,
) -> Result<Option<Conversation>> {
    let row = sqlx::query(sqlx::AssertSqlSafe(format!(
        "SELECT {COLUMNS} FROM conversations WHERE account = $1 AND contact = $2"
    )))
    .bind(account)
    .bind(contact)
    .fetch_optional(conn)
    .await?;
    row.as_ref().map(Conversation::from_row).transpose()
}

/// A conversation's latest messages (at most `limit`), oldest first.
pub async fn messages(
    conn: &mut AnyConnection,
    account: &str,
    contact: &str,
    limit: i64,
) -> Result<Vec<Message>> {
    let rows = sqlx::query(
        "SELECT mid, direction, text, attachments, sent_at, sent_by, agent, reactions, read_at \
         FROM messages WHERE account = $1 AND contact = $2 ORDER BY sent_at DESC, mid LIMIT $3",
    )
    .bind(account)
    .bind(contact)
    .bind(limit.clamp(1, 1000))
    .fetch_all(conn)
    .await?;
    let json = |s: String| serde_json::from_str(&s).unwrap_or(serde_json::Value::Null);
    let mut list = rows
        .iter()
        .map(|r| {
            Ok(Message {
                mid: r.try_get("mid")?,
                direction: r.try_get("direction")?,
                text: r.try_get("text")?,
                attachments: json(r.try_get("attachments")?),
                sent_at: r.try_get("sent_at")?,
                sent_by: r.try_get("sent_by")?,
                agent: r.try_get("agent")?,
                reactions: json(r.try_get("reactions")?),
                read_at: r.try_get("read_at")?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    list.reverse();
    Ok(list)
}

/// A conversation's notes, oldest first.
pub async fn notes(conn: &mut AnyConnection, account: &str, contact: &str) -> Result<Vec<Note>> {
    let rows = sqlx::query(
        "SELECT id, author, text, created_at FROM conversation_notes \
         WHERE account = $1 AND contact = $2 ORDER BY created_at, id",
    )
    .bind(account)
    .bind(contact)
    .fetch_all(conn)
    .await?;
    rows.iter()
        .map(|r| {
            Ok(Note {
                id: r.try_get("id")?,
                author: r.try_get("author")?,
                text: r.try_get("text")?,
                created_at: r.try_get("created_at")?,
            })
        })
        .collect()
}

/// Adds a note.
pub async fn add_note(tx: &mut Tx, note: &Note, account: &str, contact: &str) -> Result<()> {
    sqlx::query(
        "INSERT INTO conversation_notes (id, account, contact, author, text, created_at) \
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&note.id)
    .bind(account)
    .bind(contact)
    .bind(&note.author)
    .bind(&note.text)
    .bind(note.created_at)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The conversation, created (`open`) when there is none yet: for writes of the API.
pub async fn get_or_new(
    tx: &mut Tx,
    account: &str,
    contact: &str,
    now: i64,
) -> Result<Conversation> {
    Ok(match get(tx, account, contact).await? {
        Some(c) => c,
        None => Conversation::new(account, contact, OPEN, now),
    })
}

/// Writes a conversation the API changed.
pub async fn put(tx: &mut Tx, conversation: &Conversation) -> Result<()> {
    upsert(tx, &[conversation]).await
}

/// Whether the organization assigns new and reopened conversations round-robin.
pub async fn round_robin_enabled(conn: &mut AnyConnection, org: &str) -> Result<bool> {
    let on: Option<i64> =
        sqlx::query_scalar("SELECT round_robin FROM inbox_settings WHERE org_id = $1")
            .bind(org)
            .fetch_optional(conn)
            .await?;
    Ok(on == Some(1))
}

/// Turns round-robin assignment on or off for an organization.
pub async fn set_round_robin(tx: &mut Tx, org: &str, on: bool, now: i64) -> Result<()> {
    sqlx::query(
        "INSERT INTO inbox_settings (org_id, round_robin, updated_at) VALUES ($1, $2, $3) \
         ON CONFLICT (org_id) DO UPDATE SET round_robin = excluded.round_robin, updated_at = excluded.updated_at",
    )
    .bind(org)
    .bind(i64::from(on))
    .bind(now)
    .execute(&mut **tx)
    .await?;
    Ok(())
}

/// The first responses given in a period: one per episode of a conversation (a conversation
/// that was closed and reopened counts once per answer).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResponseTimes {
    /// The response times (ms), ascending.
    pub times: Vec<i64>,
    /// How many conversations they answered.
    pub conversations: usize,
}

/// First-response times of the organization's conversations answered in `[from, to)`.
pub async fn first_response_times(
    conn: &mut AnyConnection,
    org: &str,
    from: i64,
    to: i64,
) -> Result<ResponseTimes> {
    let rows: Vec<(String, String, i64)> = sqlx::query_as(
        "SELECT account, contact, response_ms FROM response_times WHERE account IN \
         (SELECT id FROM accounts WHERE org_id = $1) AND responded_at >= $2 \
         AND responded_at < $3 ORDER BY response_ms",
    )
    .bind(org)
    .bind(from)
    .bind(to)
    .fetch_all(conn)
    .await?;
    let conversations = rows
        .iter()
        .map(|(account, contact, _)| (account, contact))
        .collect::<std::collections::HashSet<_>>()
        .len();
    Ok(ResponseTimes {
        times: rows.into_iter().map(|(_, _, ms)| ms).collect(),
        conversations,
    })
}

/// The `p`-th percentile (0 to 100, nearest rank) of ascending `sorted` values.
pub fn percentile(sorted: &[i64], p: u32) -> Option<i64> {
    if sorted.is_empty() {
        return None;
    }
    let n = sorted.len();
    let rank = (usize::try_from(p.min(100)).unwrap_or(100) * n).div_ceil(100);
    sorted.get(rank.clamp(1, n) - 1).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reply_keys_name_their_agent() {
        assert_eq!(
            agent_of(&reply_key("r1", Some("usr_1"))),
            Some(Some("usr_1".into()))
        );
        assert_eq!(agent_of(&reply_key("r1", None)), Some(None));
        assert_eq!(agent_of("mid:1#0"), None);
    }

    #[test]
    fn round_robin_takes_turns_and_wraps() {
        let turn = vec!["a".to_string(), "b".to_string(), "c".to_string()];
        assert_eq!(next_in_turn(&turn, None), "a");
        assert_eq!(next_in_turn(&turn, Some("a")), "b");
        assert_eq!(next_in_turn(&turn, Some("c")), "a");
        assert_eq!(next_in_turn(&turn, Some("gone")), "a");
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let v: Vec<i64> = (1..=10).collect();
        assert_eq!(percentile(&v, 50), Some(5));
        assert_eq!(percentile(&v, 90), Some(9));
        assert_eq!(percentile(&[7], 90), Some(7));
        assert_eq!(percentile(&[], 50), None);
    }

    #[test]
    fn a_message_reopens_and_the_first_agent_reply_is_timed() {
        let mut c = Conversation::new("A", "P", CLOSED, 0);
        c.snoozed_until = Some(99);
        c.inbound(1_000);
        assert_eq!(c.status, OPEN);
        assert_eq!(c.snoozed_until, None);
        c.outbound(1_500, false);
        assert_eq!(c.first_response_at, None, "automation does not count");
        c.inbound(2_000);
        assert_eq!(c.waiting_since, Some(1_000));
        c.outbound(4_000, true);
        assert_eq!(c.first_response_ms, Some(3_000));
        assert_eq!(c.waiting_since, None);
        c.outbound(9_000, true);
        assert_eq!(c.first_response_ms, Some(3_000));
        // closed, then reopened by the contact: the response is timed again from the reopening
        c.status = CLOSED.to_string();
        c.inbound(20_000);
        assert_eq!(c.status, OPEN);
        assert_eq!(
            (c.first_inbound_at, c.first_response_ms),
            (Some(20_000), None)
        );
        assert_eq!(c.waiting_since, Some(20_000));
        c.outbound(20_500, true);
        assert_eq!(c.first_response_ms, Some(500));
        // a snooze is not a close: the measurement stands
        c.snoozed_until = Some(30_000);
        c.inbound(25_000);
        assert_eq!(c.first_response_ms, Some(500));
    }
}
