//! The simulator's in-memory state, its clock, its random generator and its rules.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::time::{SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::config::{Faults, RateLimits, SimConfig};
use crate::error::GraphFailure;
use crate::model::{CommentInfo, Delivery, PublicReply, RecordedRequest, SentMessage, ALL_SCOPES};

pub(crate) const HOUR_MS: i64 = 3_600_000;
pub(crate) const DAY_MS: i64 = 24 * HOUR_MS;
pub(crate) const LONG_LIVED_MS: i64 = 60 * DAY_MS;

/// A small deterministic generator (SplitMix64): same seed, same faults.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// `true` with probability `rate` (0 never draws).
    pub fn chance(&mut self, rate: f64) -> bool {
        if rate <= 0.0 {
            return false;
        }
        if rate >= 1.0 {
            return true;
        }
        let unit = (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64;
        unit < rate
    }

    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            let j = (self.next_u64() % (i as u64 + 1)) as usize;
            items.swap(i, j);
        }
    }
}

/// The simulated clock: the system clock plus an offset, or frozen.
#[derive(Debug, Clone)]
pub(crate) struct Clock {
    frozen: Option<i64>,
    offset_ms: i64,
}

impl Clock {
    pub fn new(start: Option<DateTime<Utc>>) -> Self {
        Self {
            frozen: start.map(|t| t.timestamp_millis()),
            offset_ms: 0,
        }
    }

    pub fn now_ms(&self) -> i64 {
        match self.frozen {
            Some(t) => t,
            None => system_ms().saturating_add(self.offset_ms),
        }
    }

    pub fn advance(&mut self, ms: i64) {
        match &mut self.frozen {
            Some(t) => *t = t.saturating_add(ms),
            None => self.offset_ms = self.offset_ms.saturating_add(ms),
        }
    }
}

pub(crate) fn system_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

pub(crate) fn to_time(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(ms).unwrap_or_default()
}

/// Meta's timestamp format: `2024-01-01T00:00:00+0000`.
pub(crate) fn iso(ms: i64) -> String {
    to_time(ms).format("%Y-%m-%dT%H:%M:%S%z").to_string()
}

#[derive(Debug, Clone)]
pub(crate) struct Account {
    pub ig_id: String,
    pub app_scoped_id: String,
    pub username: String,
    pub name: String,
    /// The app is installed (not revoked).
    pub authorized: bool,
    pub subscribed: Option<Vec<String>>,
    pub ice_breakers: Vec<Value>,
    pub persistent_menu: Vec<Value>,
    pub media: Vec<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct Token {
    pub account: String,
    pub issued_ms: i64,
    pub expires_ms: i64,
    pub long_lived: bool,
    pub scopes: Vec<String>,
    /// `Some(subcode)` once invalidated (458 revoked, 460 password changed).
    pub invalidated: Option<i64>,
}

#[derive(Debug, Clone)]
pub(crate) struct AuthCode {
    pub account: String,
    pub redirect_uri: String,
    pub scopes: Vec<String>,
    pub expires_ms: i64,
}

#[derive(Debug, Clone)]
pub(crate) struct Person {
    pub username: String,
    pub name: Option<String>,
    pub follower_count: u64,
    pub follows_business: bool,
    pub followed_by_business: bool,
    pub verified: bool,
    /// IGSID per account.
    pub igsids: HashMap<String, String>,
    /// Accounts the person messaged (User Profile API consent).
    pub consented: HashSet<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct Media {
    pub id: String,
    pub owner: String,
    pub kind: crate::model::MediaKind,
    pub caption: Option<String>,
    pub created_ms: i64,
    pub comments_enabled: bool,
    pub children: Vec<String>,
    pub child: bool,
    pub shortcode: String,
}

#[derive(Debug, Clone)]
pub(crate) enum Author {
    Person(String),
    Account(String),
}

#[derive(Debug, Clone)]
pub(crate) struct Comment {
    pub id: String,
    pub media: String,
    pub author: Author,
    pub text: String,
    pub created_ms: i64,
    pub hidden: bool,
    pub deleted: bool,
    pub parent: Option<String>,
    pub private_replied: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct Conversation {
    pub id: String,
    pub account: String,
    pub person: String,
    pub igsid: String,
    pub last_inbound_ms: Option<i64>,
    pub updated_ms: i64,
    /// Message ids, oldest first.
    pub messages: Vec<String>,
}

#[derive(Debug, Clone)]
pub(crate) struct StoredMessage {
    pub mid: String,
    pub conversation: String,
    pub from_account: bool,
    pub text: Option<String>,
    pub created_ms: i64,
    pub deleted: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Bucket {
    Send,
    PrivateReply,
    Conversations,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub account: u64,
    pub person: u64,
    pub media: u64,
    pub comment: u64,
    pub message: u64,
    pub conversation: u64,
    pub code: u64,
    pub token: u64,
    pub trace: u64,
    pub delivery: u64,
    pub request: u64,
}

/// Everything the simulator knows. Guarded by one mutex, never held across an await.
#[derive(Debug)]
pub(crate) struct State {
    pub app_id: String,
    pub app_secret: String,
    pub redirect_uris: Vec<String>,
    pub require_subscription: bool,
    pub echoes: bool,
    pub limits: RateLimits,
    pub faults: Faults,
    pub webhook_url: Option<String>,
    pub max_records: usize,
    pub deauthorize_url: Option<String>,
    pub base_url: String,
    pub clock: Clock,
    pub rng: Rng,
    pub ids: Counters,
    pub accounts: BTreeMap<String, Account>,
    pub tokens: HashMap<String, Token>,
    pub codes: HashMap<String, AuthCode>,
    pub people: BTreeMap<String, Person>,
    /// IGSID -> (username, account).
    pub igsids: HashMap<String, (String, String)>,
    pub media: BTreeMap<String, Media>,
    pub comments: BTreeMap<String, Comment>,
    pub conversations: BTreeMap<String, Conversation>,
    /// (account, igsid) -> conversation id.
    pub conversation_index: HashMap<(String, String), String>,
    pub messages: HashMap<String, StoredMessage>,
    pub rate: HashMap<(String, Bucket), VecDeque<i64>>,
    pub sent: Vec<SentMessage>,
    pub public_replies: Vec<PublicReply>,
    pub requests: Vec<RecordedRequest>,
    pub deliveries: Vec<Delivery>,
    pub outbox: Option<tokio::sync::mpsc::UnboundedSender<crate::webhook::Outgoing>>,
    /// Items queued for delivery and not yet finished.
    pub pending: usize,
}

/// The token of a call, resolved and checked.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    pub account: String,
    pub scopes: Vec<String>,
}

impl State {
    pub fn new(config: &SimConfig) -> Self {
        Self {
            app_id: config.app_id.clone(),
            app_secret: config.app_secret.clone(),
            redirect_uris: config.redirect_uris.clone(),
            require_subscription: config.require_subscription,
            echoes: config.echoes,
            limits: config.limits,
            faults: config.faults.clone(),
            webhook_url: config.webhook_url.clone(),
            max_records: config.max_records.max(2),
            deauthorize_url: config.deauthorize_url.clone(),
            base_url: String::new(),
            clock: Clock::new(config.start_time),
            rng: Rng::new(config.seed),
            ids: Counters::default(),
            accounts: BTreeMap::new(),
            tokens: HashMap::new(),
            codes: HashMap::new(),
            people: BTreeMap::new(),
            igsids: HashMap::new(),
            media: BTreeMap::new(),
            comments: BTreeMap::new(),
            conversations: BTreeMap::new(),
            conversation_index: HashMap::new(),
            messages: HashMap::new(),
            rate: HashMap::new(),
            sent: Vec::new(),
            public_replies: Vec::new(),
            requests: Vec::new(),
            deliveries: Vec::new(),
            outbox: None,
            pending: 0,
        }
    }

    /// Forgets the oldest half of the requests and sent messages once over `max_records`.
    pub fn trim_records(&mut self) {
        if self.requests.len() > self.max_records {
            let drop = self.requests.len() / 2;
            self.requests.drain(..drop);
        }
        if self.sent.len() > self.max_records {
            let drop = self.sent.len() / 2;
            self.sent.drain(..drop);
        }
    }

    pub fn now(&self) -> i64 {
        self.clock.now_ms()
    }

    pub fn trace_id(&mut self) -> String {
        self.ids.trace += 1;
        format!("ASim{:08}Trace", self.ids.trace)
    }

    // ----- ids -------------------------------------------------------------------------------

    pub fn new_mid(&mut self) -> String {
        self.ids.message += 1;
        format!("aWdfU2ltTWVzc2FnZT{:010}", self.ids.message)
    }

    pub fn new_comment_id(&mut self) -> String {
        self.ids.comment += 1;
        format!("178{:014}", self.ids.comment)
    }

    pub fn new_media_id(&mut self) -> String {
        self.ids.media += 1;
        format!("179{:014}", self.ids.media)
    }

    pub fn new_token(&mut self, long_lived: bool) -> String {
        self.ids.token += 1;
        let prefix = if long_lived { "IGAAsimLL" } else { "IGAAsimSL" };
        let salt = self.rng.next_u64();
        format!("{prefix}{:06}x{salt:016x}", self.ids.token)
    }

    // ----- accounts and tokens ---------------------------------------------------------------

    pub fn create_account(
        &mut self,
        username: &str,
        name: Option<&str>,
        subscribed: bool,
    ) -> String {
        self.ids.account += 1;
        let n = self.ids.account;
        let ig_id = format!("178414{:011}", n);
        let account = Account {
            ig_id: ig_id.clone(),
            app_scoped_id: format!("26{:014}", n),
            username: username.to_owned(),
            name: name.unwrap_or(username).to_owned(),
            authorized: true,
            subscribed: subscribed.then(|| vec!["comments".to_owned(), "messages".to_owned()]),
            ice_breakers: Vec::new(),
            persistent_menu: Vec::new(),
            media: Vec::new(),
        };
        self.accounts.insert(ig_id.clone(), account);
        ig_id
    }

    pub fn issue_token(
        &mut self,
        account: &str,
        scopes: Vec<String>,
        long_lived: bool,
    ) -> (String, i64) {
        let now = self.now();
        let expires = now.saturating_add(if long_lived { LONG_LIVED_MS } else { HOUR_MS });
        let token = self.new_token(long_lived);
        self.tokens.insert(
            token.clone(),
            Token {
                account: account.to_owned(),
                issued_ms: now,
                expires_ms: expires,
                long_lived,
                scopes,
                invalidated: None,
            },
        );
        (token, expires)
    }

    pub fn find_account(&self, key: &str) -> Option<String> {
        if self.accounts.contains_key(key) {
            return Some(key.to_owned());
        }
        self.accounts
            .values()
            .find(|a| a.username == key || a.app_scoped_id == key)
            .map(|a| a.ig_id.clone())
    }

    /// Checks a token: known, not invalidated, not expired, app still installed.
    pub fn check_token(&self, token: Option<&str>) -> Result<Caller, GraphFailure> {
        let Some(token) = token.filter(|t| !t.is_empty()) else {
            let mut failure = GraphFailure::new(
                2500,
                None,
                "An active access token must be used to query information about the current user.",
            );
            failure.error_type = "IGApiException";
            return Err(failure);
        };
        let Some(info) = self.tokens.get(token) else {
            return Err(GraphFailure::new(
                190,
                None,
                "Invalid OAuth access token - Cannot parse access token",
            ));
        };
        if let Some(sub) = info.invalidated {
            let message = if sub == 458 {
                format!(
                    "Error validating access token: The user has not authorized application {}.",
                    self.app_id
                )
            } else {
                "Error validating access token: The session has been invalidated because the user changed their password or Facebook has changed the session for security reasons.".to_owned()
            };
            return Err(GraphFailure::new(190, Some(sub), message));
        }
        let now = self.now();
        if now >= info.expires_ms {
            return Err(GraphFailure::new(
                190,
                Some(463),
                format!(
                    "Error validating access token: Session has expired on {}. The current time is {}.",
                    to_time(info.expires_ms).to_rfc2822(),
                    to_time(now).to_rfc2822()
                ),
            ));
        }
        let authorized = self
            .accounts
            .get(&info.account)
            .is_some_and(|a| a.authorized);
        if !authorized {
            return Err(GraphFailure::new(
                190,
                Some(458),
                format!(
                    "Error validating access token: The user has not authorized application {}.",
                    self.app_id
                ),
            ));
        }
        Ok(Caller {
            account: info.account.clone(),
            scopes: info.scopes.clone(),
        })
    }

    // ----- people ----------------------------------------------------------------------------

    pub fn ensure_person(&mut self, username: &str) -> &mut Person {
        self.people
            .entry(username.to_owned())
            .or_insert_with(|| Person {
                username: username.to_owned(),
                name: None,
                follower_count: 0,
                follows_business: false,
                followed_by_business: false,
                verified: false,
                igsids: HashMap::new(),
                consented: HashSet::new(),
            })
    }

    /// The person's IGSID for the account, created on first contact.
    pub fn igsid(&mut self, username: &str, account: &str) -> String {
        if let Some(id) = self
            .people
            .get(username)
            .and_then(|p| p.igsids.get(account))
        {
            return id.clone();
        }
        self.ids.person += 1;
        let id = format!("58{:014}", self.ids.person);
        self.ensure_person(username)
            .igsids
            .insert(account.to_owned(), id.clone());
        self.igsids
            .insert(id.clone(), (username.to_owned(), account.to_owned()));
        id
    }

    pub fn conversation(&mut self, account: &str, username: &str) -> String {
        let igsid = self.igsid(username, account);
        let key = (account.to_owned(), igsid.clone());
        if let Some(id) = self.conversation_index.get(&key) {
            return id.clone();
        }
        self.ids.conversation += 1;
        let id = format!("aWdfY29udmVyc2F0aW9u{:08}", self.ids.conversation);
        let now = self.now();
        self.conversations.insert(
            id.clone(),
            Conversation {
                id: id.clone(),
                account: account.to_owned(),
                person: username.to_owned(),
                igsid,
                last_inbound_ms: None,
                updated_ms: now,
                messages: Vec::new(),
            },
        );
        self.conversation_index.insert(key, id.clone());
        id
    }

    /// Stores a message in a conversation and returns its id.
    pub fn store_message(
        &mut self,
        conversation: &str,
        from_account: bool,
        text: Option<String>,
    ) -> String {
        let mid = self.new_mid();
        let now = self.now();
        self.messages.insert(
            mid.clone(),
            StoredMessage {
                mid: mid.clone(),
                conversation: conversation.to_owned(),
                from_account,
                text,
                created_ms: now,
                deleted: false,
            },
        );
        if let Some(conv) = self.conversations.get_mut(conversation) {
            conv.messages.push(mid.clone());
            conv.updated_ms = now;
            if !from_account {
                conv.last_inbound_ms = Some(now);
            }
        }
        mid
    }

    pub fn comment_info(&self, id: &str) -> Option<CommentInfo> {
        let c = self.comments.get(id)?;
        Some(CommentInfo {
            id: c.id.clone(),
            media_id: c.media.clone(),
            username: self.author_username(&c.author),
            text: c.text.clone(),
            hidden: c.hidden,
            deleted: c.deleted,
            private_replied: c.private_replied,
        })
    }

    pub fn author_username(&self, author: &Author) -> String {
        match author {
            Author::Person(name) => name.clone(),
            Author::Account(id) => self
                .accounts
                .get(id)
                .map(|a| a.username.clone())
                .unwrap_or_default(),
        }
    }

    // ----- rate limits -----------------------------------------------------------------------

    fn bucket_rule(&self, bucket: Bucket) -> (u32, i64) {
        match bucket {
            Bucket::Send => (self.limits.send_per_second, 1000),
            Bucket::PrivateReply => (self.limits.private_replies_per_hour, HOUR_MS),
            Bucket::Conversations => (self.limits.conversations_per_second, 1000),
        }
    }

    /// Counts one call in the bucket, or refuses it with 613/2534040 (Send API) or 4
    /// (Conversations API) and the wait until a slot frees up.
    pub fn take_rate(&mut self, account: &str, bucket: Bucket) -> Result<(), GraphFailure> {
        let (limit, window) = self.bucket_rule(bucket);
        let now = self.now();
        let log = self.rate.entry((account.to_owned(), bucket)).or_default();
        while log
            .front()
            .is_some_and(|t| *t <= now.saturating_sub(window))
        {
            log.pop_front();
        }
        if log.len() >= limit as usize {
            let oldest = log.front().copied().unwrap_or(now);
            let wait_ms = oldest.saturating_add(window).saturating_sub(now).max(1);
            let mut failure = match bucket {
                Bucket::Conversations => GraphFailure::new(
                    4,
                    None,
                    "(#4) Application request limit reached: the Conversations API allows 2 calls per second per account",
                ),
                _ => GraphFailure::new(613, Some(2534040), "Calls to this api have exceeded the rate limit."),
            };
            failure.transient = true;
            failure.retry_after = Some(u64::try_from((wait_ms + 999) / 1000).unwrap_or(1));
            return Err(failure);
        }
        log.push_back(now);
        Ok(())
    }

    /// `X-App-Usage` and `X-Business-Use-Case-Usage` for the account: the fullest bucket in
    /// percent, and the minutes until access returns.
    pub fn usage_headers(&mut self, account: &str) -> (String, String) {
        let now = self.now();
        let mut percent = 0u64;
        let mut regain_ms = 0i64;
        for bucket in [Bucket::Send, Bucket::PrivateReply, Bucket::Conversations] {
            let (limit, window) = self.bucket_rule(bucket);
            if let Some(log) = self.rate.get_mut(&(account.to_owned(), bucket)) {
                while log
                    .front()
                    .is_some_and(|t| *t <= now.saturating_sub(window))
                {
                    log.pop_front();
                }
                let used = (log.len() as u64 * 100) / u64::from(limit.max(1));
                percent = percent.max(used.min(100));
                if log.len() >= limit as usize {
                    if let Some(oldest) = log.front() {
                        regain_ms =
                            regain_ms.max(oldest.saturating_add(window).saturating_sub(now));
                    }
                }
            }
        }
        let app = json!({ "call_count": percent, "total_time": percent / 2, "total_cputime": percent / 2 });
        let minutes = regain_ms / 60_000;
        let buc = json!({ account: [{
            "type": "instagram",
            "call_count": percent,
            "total_cputime": percent / 2,
            "total_time": percent / 2,
            "estimated_time_to_regain_access": minutes,
        }]});
        (app.to_string(), buc.to_string())
    }
}

/// The default scopes as owned strings.
pub(crate) fn all_scopes() -> Vec<String> {
    ALL_SCOPES.iter().map(|s| (*s).to_owned()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rng_is_deterministic_and_rates_hold() {
        let mut a = Rng::new(1);
        let mut b = Rng::new(1);
        assert_eq!(a.next_u64(), b.next_u64());
        assert!(!a.chance(0.0));
        assert!(a.chance(1.0));
        let hits = (0..10_000).filter(|_| a.chance(0.25)).count();
        assert!((2_000..3_000).contains(&hits), "{hits}");
        let mut items: Vec<u32> = (0..20).collect();
        a.shuffle(&mut items);
        let mut sorted = items.clone();
        sorted.sort_unstable();
        assert_eq!(sorted, (0..20).collect::<Vec<_>>());
        assert_ne!(items, sorted);
    }

    #[test]
    fn iso_is_meta_format() {
        assert_eq!(iso(1_704_067_200_000), "2024-01-01T00:00:00+0000");
    }

    #[test]
    fn frozen_clock_moves_only_on_advance() {
        let mut clock = Clock::new(DateTime::from_timestamp(100, 0));
        assert_eq!(clock.now_ms(), 100_000);
        clock.advance(5);
        assert_eq!(clock.now_ms(), 100_005);
    }

    #[test]
    fn records_are_trimmed_past_the_cap() {
        let mut config = SimConfig::for_tests();
        config.max_records = 4;
        let mut state = State::new(&config);
        for seq in 1..=5 {
            state.requests.push(RecordedRequest {
                seq,
                method: "GET".into(),
                path: "/".into(),
                query: Vec::new(),
                headers: Vec::new(),
                body: String::new(),
                account: None,
                status: 200,
            });
            state.trim_records();
        }
        let kept: Vec<u64> = state.requests.iter().map(|r| r.seq).collect();
        assert_eq!(kept, vec![3, 4, 5]);
    }

    #[test]
    fn rate_window_slides() {
        let mut config = SimConfig::for_tests();
        config.limits.conversations_per_second = 2;
        let mut state = State::new(&config);
        assert!(state.take_rate("a", Bucket::Conversations).is_ok());
        assert!(state.take_rate("a", Bucket::Conversations).is_ok());
        let refused = state.take_rate("a", Bucket::Conversations).unwrap_err();
        assert_eq!((refused.code, refused.retry_after), (4, Some(1)));
        assert!(state.take_rate("b", Bucket::Conversations).is_ok());
        let (app, _) = state.usage_headers("a");
        assert!(app.contains("\"call_count\":100"));
        state.clock.advance(1000);
        assert!(state.take_rate("a", Bucket::Conversations).is_ok());
    }
}
