//! End-to-end tests: the reference service (`igdm::service`) against the Instagram Platform
//! simulator (`instagram-sim`), no mocks. The simulator delivers signed webhooks to the service;
//! the service answers through the real `instagram-graph` client to the simulator, which records
//! and enforces the platform's rules. Every wait is on a condition with a generous deadline.
#![allow(clippy::unwrap_used)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::time::Duration;

use igdm::service::{testing, Config, RunningService, Service};
use instagram_sim::{
    AccountInfo, AccountSpec, Faults, MediaSpec, RunningSimulator, SentKind, SentMessage,
    SimConfig, Simulator,
};

/// Deadline of every wait: generous, for a busy 2-core machine.
const WAIT: Duration = Duration::from_secs(60);

struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let path = std::env::temp_dir().join(format!(
            "igdm-e2e-{name}-{}-{}",
            std::process::id(),
            chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()
        ));
        std::fs::create_dir_all(&path).unwrap();
        Dir(path)
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A simulator, a service pointed at it, and one connected account with a reel.
struct World {
    sim: RunningSimulator,
    service: Option<RunningService>,
    config: Config,
    shop: AccountInfo,
    reel: String,
    _dir: Dir,
}

fn sim_config() -> SimConfig {
    let mut c = SimConfig::default();
    c.delivery.retry_delays = vec![
        Duration::from_millis(50),
        Duration::from_millis(100),
        Duration::from_millis(200),
    ];
    c
}

impl World {
    async fn start(name: &str, rules: &str) -> World {
        World::start_with(name, sim_config(), |_| {}, rules).await
    }

    async fn start_with(
        name: &str,
        sim_config: SimConfig,
        tune: impl FnOnce(&mut Config),
        rules: &str,
    ) -> World {
        let dir = Dir::new(name);
        let sim = Simulator::start(sim_config).await.unwrap();
        let mut config = Config::for_tests(&dir.0);
        config.database = testing::fresh_database().await;
        config.app_id = sim.app_id();
        config.app_secret = sim.app_secret();
        config.verify_token = "e2e-verify".into();
        config.graph_base_url = sim.base_url().to_owned();
        config.oauth_api_base_url = sim.base_url().to_owned();
        config.oauth_authorize_url = sim.authorize_url();
        config.api_keys = vec!["e2e-key".into()];
        tune(&mut config);
        let service = Service::start(config.clone()).await.unwrap();
        sim.set_webhook_url(Some(service.webhook_url()));
        let shop = sim.create_account(AccountSpec::new("shop")).unwrap();
        let reel = sim
            .add_media(&shop.ig_user_id, MediaSpec::reel("Comment LINK"))
            .unwrap();
        service
            .connect_account(
                &shop.ig_user_id,
                Some("shop"),
                &shop.access_token,
                Some(shop.expires_at),
            )
            .await
            .unwrap();
        let rules = rules
            .replace("ACCOUNT", &shop.ig_user_id)
            .replace("REEL", &reel);
        service.put_automations(&rules).await.unwrap();
        World {
            sim,
            service: Some(service),
            config,
            shop,
            reel,
            _dir: dir,
        }
    }

    fn service(&self) -> &RunningService {
        self.service.as_ref().unwrap()
    }

    fn account(&self) -> &str {
        &self.shop.ig_user_id
    }

    async fn scalar(&self, sql: &'static str) -> i64 {
        sqlx::query_scalar::<_, i64>(sql)
            .fetch_one(self.service().shared().db.pool())
            .await
            .unwrap()
    }

    /// Waits until `count` Send API calls were accepted.
    async fn sent(&self, count: usize) -> Vec<SentMessage> {
        match self.sim.wait_for_sent(count, WAIT).await {
            Ok(sent) => sent,
            Err(e) => panic!(
                "waited for {count} sends: {e}; got {:?}",
                self.sim.sent_messages()
            ),
        }
    }

    /// Waits until the simulator delivered every webhook and the service finished every inbox
    /// and outbox row (the state holds over a few consecutive checks).
    async fn settled(&self) {
        let deadline = tokio::time::Instant::now() + WAIT;
        let mut quiet = 0;
        loop {
            let idle = self
                .sim
                .wait_for_webhooks_idle(Duration::from_millis(1))
                .await
                .is_ok();
            let busy = self
                .scalar(
                    "SELECT (SELECT COUNT(*) FROM inbox WHERE status = 'pending') + \
                     (SELECT COUNT(*) FROM outbox WHERE status IN ('queued', 'sending'))",
                )
                .await;
            quiet = if idle && busy == 0 { quiet + 1 } else { 0 };
            if quiet >= 5 {
                return;
            }
            assert!(
                tokio::time::Instant::now() < deadline,
                "the pipeline did not settle: webhooks idle {idle}, {busy} rows busy"
            );
            tokio::time::sleep(Duration::from_millis(40)).await;
        }
    }

    /// The outbox, the inbox's counts and the accounts, one line each: what a test that timed
    /// out was waiting on.
    async fn pipeline_state(&self) -> String {
        use sqlx::Row;
        let Some(service) = self.service.as_ref() else {
            return "no service running".into();
        };
        let mut lines = Vec::new();
        for sql in [
            "SELECT 'outbox ' || key || ' ' || kind || ' ' || status || ' attempts=' || attempts \
             || ' next=' || next_attempt_at || ' lease=' || COALESCE(lease_owner, '-') || '/' \
             || COALESCE(lease_until, 0) || ' error=' || COALESCE(error_kind, '-') AS s FROM outbox",
            "SELECT 'inbox ' || status || ' ' || CAST(COUNT(*) AS TEXT) AS s FROM inbox GROUP BY status",
            "SELECT 'account ' || id || ' ' || status AS s FROM accounts",
        ] {
            match sqlx::query(sql).fetch_all(service.shared().db.pool()).await {
                Ok(rows) => lines.extend(
                    rows.iter()
                        .map(|r| r.try_get::<String, _>("s").unwrap_or_default()),
                ),
                Err(e) => lines.push(format!("cannot read the state: {e}")),
            }
        }
        lines.push(format!("now={}", db_now()));
        lines.join("\n")
    }

    async fn stop(mut self) {
        if let Some(service) = self.service.take() {
            service.shutdown().await;
        }
        self.sim.shutdown().await;
    }
}

/// Polls `check` until it holds (generous deadline); on a timeout, the panic shows the state
/// of `w`'s pipeline (see [`World::pipeline_state`]).
async fn eventually(w: &World, what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while tokio::time::Instant::now() < deadline {
        if check().await {
            return;
        }
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
    panic!(
        "timed out waiting for: {what}\n{}",
        w.pipeline_state().await
    );
}

const COMMENT_TO_DM: &str = r#"
account = "ACCOUNT"
[[rules]]
id = "reel-link"
on = ["comment"]
scope = { kind = "media", ids = ["REEL"] }
match = { mode = "contains", keywords = ["link"] }
limits = { once_per_contact = true }
actions = [
  { type = "private_reply", text = "Here is the link: https://example.com" },
  { type = "public_reply", variants = ["Sent you a DM!"] },
]
"#;

fn private_replies_to(sent: &[SentMessage], comment: &str) -> usize {
    sent.iter()
        .filter(|m| m.kind == SentKind::PrivateReply && m.comment_id.as_deref() == Some(comment))
        .count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn comment_to_dm_sends_one_private_reply_and_one_public_reply() {
    testing::on_each_backend(comment_to_dm_sends_one_private_reply_and_one_public_reply_on).await;
}

async fn comment_to_dm_sends_one_private_reply_and_one_public_reply_on() {
    let w = World::start("comment", COMMENT_TO_DM).await;
    let hit = w
        .sim
        .person("alice")
        .comment(&w.reel, "LINK please")
        .unwrap();
    let miss = w.sim.person("bob").comment(&w.reel, "nice").unwrap();
    let sent = w.sent(1).await;
    w.sim
        .wait_until(WAIT, |s| s.public_replies().len() == 1)
        .await
        .unwrap();
    w.settled().await;
    let sent_now = w.sim.sent_messages();
    assert_eq!(sent_now.len(), 1, "{sent_now:?}");
    assert_eq!(private_replies_to(&sent, &hit), 1);
    assert_eq!(private_replies_to(&sent_now, &miss), 0);
    assert_eq!(
        sent[0].text.as_deref(),
        Some("Here is the link: https://example.com")
    );
    let public = w.sim.public_replies();
    assert_eq!(public.len(), 1);
    assert_eq!(public[0].parent_id, hit);
    assert_eq!(public[0].text, "Sent you a DM!");
    assert!(w.sim.comment(&hit).unwrap().private_replied);
    // the delivery log shows both sends; the echo marks the private reply delivered
    eventually(&w, "the private reply is marked delivered", async || {
        w.scalar(
            "SELECT COUNT(*) FROM outbox WHERE kind = 'private_reply' AND status = 'delivered'",
        )
        .await
            == 1
    })
    .await;
    assert_eq!(
        w.scalar("SELECT COUNT(*) FROM delivery_log WHERE status = 'sent'")
            .await,
        2
    );
    // the echo of the service's own DM is recorded (it triggers nothing) and shows the DM in
    // the conversation as the automation's
    assert_eq!(
        w.scalar("SELECT COUNT(*) FROM events WHERE kind = 'echo' AND outcome = 'ignored'")
            .await,
        1
    );
    assert_eq!(
        w.scalar(
            "SELECT COUNT(*) FROM messages WHERE direction = 'out' AND sent_by = 'automation'"
        )
        .await,
        1
    );
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dm_keyword_gets_a_reply() {
    testing::on_each_backend(a_dm_keyword_gets_a_reply_on).await;
}

async fn a_dm_keyword_gets_a_reply_on() {
    let rules = r#"
account = "ACCOUNT"
[[rules]]
id = "price"
on = ["message"]
match = { mode = "contains", keywords = ["price"] }
actions = [{ type = "send_dm", message = { kind = "text", text = "Prices: https://example.com/p" } }]
"#;
    let w = World::start("dm", rules).await;
    w.sim
        .person("alice")
        .dm(w.account(), "what's the price?")
        .unwrap();
    w.sim.person("bob").dm(w.account(), "hello").unwrap();
    let sent = w.sent(1).await;
    w.settled().await;
    let sent_now = w.sim.sent_messages();
    assert_eq!(sent_now.len(), 1, "{sent_now:?}");
    assert_eq!(sent[0].kind, SentKind::Message);
    assert_eq!(sent[0].recipient_username, "alice");
    assert_eq!(
        sent[0].text.as_deref(),
        Some("Prices: https://example.com/p")
    );
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_story_reply_gets_a_reply() {
    testing::on_each_backend(a_story_reply_gets_a_reply_on).await;
}

async fn a_story_reply_gets_a_reply_on() {
    let rules = r#"
account = "ACCOUNT"
[[rules]]
id = "story"
on = ["story_reply"]
actions = [{ type = "send_dm", message = { kind = "text", text = "Thanks for replying to our story!" } }]
"#;
    let w = World::start("story", rules).await;
    let story = w.sim.add_media(w.account(), MediaSpec::story()).unwrap();
    w.sim
        .person("alice")
        .story_reply(w.account(), Some(&story), "wow 😍")
        .unwrap();
    // a plain DM is not a story reply
    w.sim.person("bob").dm(w.account(), "wow").unwrap();
    let sent = w.sent(1).await;
    w.settled().await;
    assert_eq!(w.sim.sent_messages().len(), 1);
    assert_eq!(sent[0].recipient_username, "alice");
    assert_eq!(
        sent[0].text.as_deref(),
        Some("Thanks for replying to our story!")
    );
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_button_tap_continues_the_conversation() {
    testing::on_each_backend(a_button_tap_continues_the_conversation_on).await;
}

async fn a_button_tap_continues_the_conversation_on() {
    let rules = r#"
account = "ACCOUNT"
[[rules]]
id = "menu"
on = ["message"]
match = { mode = "contains", keywords = ["menu"] }
actions = [{ type = "send_dm", message = { kind = "buttons", text = "What are you after?", buttons = [
  { type = "postback", title = "See prices", payload = "PRICES" },
] } }]

[[rules]]
id = "prices"
on = ["postback"]
match = { mode = "exact", keywords = ["PRICES"] }
actions = [{ type = "send_dm", message = { kind = "text", text = "Prices: https://example.com/p" } }]
"#;
    let w = World::start("postback", rules).await;
    let alice = w.sim.person("alice");
    alice.dm(w.account(), "menu please").unwrap();
    let sent = w.sent(1).await;
    let buttons = &sent[0];
    assert_eq!(buttons.recipient_username, "alice");
    let body = buttons.body.to_string();
    assert!(body.contains("PRICES"), "{body}");
    alice
        .tap_button(w.account(), "See prices", "PRICES")
        .unwrap();
    let sent = w.sent(2).await;
    w.settled().await;
    assert_eq!(w.sim.sent_messages().len(), 2);
    assert_eq!(sent[1].recipient_username, "alice");
    assert_eq!(
        sent[1].text.as_deref(),
        Some("Prices: https://example.com/p")
    );
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_and_out_of_order_deliveries_send_exactly_one_dm_each() {
    testing::on_each_backend(duplicate_and_out_of_order_deliveries_send_exactly_one_dm_each_on)
        .await;
}

async fn duplicate_and_out_of_order_deliveries_send_exactly_one_dm_each_on() {
    let mut faults = Faults::none().duplicate_rate(1.0).reorder(4);
    faults.reorder_flush_ms = 30;
    let w = World::start_with(
        "duplicates",
        sim_config().with_faults(faults),
        |_| {},
        COMMENT_TO_DM,
    )
    .await;
    let mut comments = Vec::new();
    for who in ["alice", "bob", "carol", "dave", "erin", "frank"] {
        comments.push(w.sim.person(who).comment(&w.reel, "LINK").unwrap());
    }
    w.sent(comments.len()).await;
    w.sim
        .wait_until(WAIT, |s| s.public_replies().len() >= comments.len())
        .await
        .unwrap();
    w.settled().await;
    let deliveries = w.sim.deliveries();
    assert!(
        deliveries.iter().filter(|d| d.duplicate).count() >= comments.len(),
        "the simulator delivered duplicates"
    );
    // a redelivery of the same body, long after, is also ignored
    let first = deliveries.iter().find(|d| !d.duplicate).unwrap();
    let again = reqwest::Client::new()
        .post(w.service().webhook_url())
        .header("X-Hub-Signature-256", &first.signature)
        .header("content-type", "application/json")
        .body(first.body.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 200);
    w.settled().await;
    let sent = w.sim.sent_messages();
    assert_eq!(sent.len(), comments.len(), "{sent:?}");
    for c in &comments {
        assert_eq!(private_replies_to(&sent, c), 1, "comment {c}");
    }
    let mut parents: Vec<_> = w
        .sim
        .public_replies()
        .into_iter()
        .map(|r| r.parent_id)
        .collect();
    parents.sort();
    let mut want = comments.clone();
    want.sort();
    assert_eq!(parents, want);
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn error_190_flags_the_connection_and_nothing_is_sent_after() {
    testing::on_each_backend(error_190_flags_the_connection_and_nothing_is_sent_after_on).await;
}

async fn error_190_flags_the_connection_and_nothing_is_sent_after_on() {
    let rules = r#"
account = "ACCOUNT"
[[rules]]
id = "price"
on = ["message"]
match = { mode = "contains", keywords = ["price"] }
actions = [{ type = "send_dm", message = { kind = "text", text = "Prices: https://example.com/p" } }]
"#;
    let w = World::start("token", rules).await;
    w.sim.person("alice").dm(w.account(), "price?").unwrap();
    w.sent(1).await;
    w.settled().await;
    // the token dies (e.g. the password changed): the next send answers 190
    w.sim.change_password(w.account()).unwrap();
    w.sim.person("bob").dm(w.account(), "price?").unwrap();
    eventually(&w, "the account needs a reconnect", async || {
        let status: String = sqlx::query_scalar("SELECT status FROM accounts WHERE id = $1")
            .bind(w.account())
            .fetch_one(w.service().shared().db.pool())
            .await
            .unwrap();
        status == "needs_reconnect"
    })
    .await;
    let calls_at_flag = send_calls(&w.sim);
    // more events for the account: decided, but nothing is sent any more
    for who in ["carol", "dave", "erin"] {
        w.sim.person(who).dm(w.account(), "price?").unwrap();
    }
    // Their replies are held (queued) until the account reconnects: wait until all five
    // replies are planned and none is being sent.
    eventually(
        &w,
        "the later DMs are decided and their replies held",
        async || {
            w.sim
                .wait_for_webhooks_idle(Duration::from_millis(1))
                .await
                .is_ok()
                && w.scalar("SELECT COUNT(*) FROM inbox WHERE status = 'pending'")
                    .await
                    == 0
                && w.scalar("SELECT COUNT(*) FROM outbox").await == 5
                && w.scalar("SELECT COUNT(*) FROM outbox WHERE status = 'sending'")
                    .await
                    == 0
        },
    )
    .await;
    assert_eq!(
        w.scalar("SELECT COUNT(*) FROM outbox WHERE status = 'queued'")
            .await,
        4,
        "bob's reply and the three later ones are held"
    );
    assert_eq!(
        w.sim.sent_messages().len(),
        1,
        "only alice's reply went out"
    );
    let failed_190 = w
        .sim
        .requests()
        .iter()
        .filter(|r| r.path.ends_with("/me/messages") && r.status != 200)
        .count();
    assert_eq!(failed_190, 1, "exactly one call met the dead token");
    assert_eq!(
        send_calls(&w.sim),
        calls_at_flag,
        "no Send API call after the flag"
    );
    assert_eq!(
        w.scalar("SELECT COUNT(*) FROM outbox WHERE status IN ('sent', 'delivered', 'read')")
            .await,
        1
    );
    w.stop().await;
}

fn send_calls(sim: &RunningSimulator) -> usize {
    sim.requests()
        .iter()
        .filter(|r| r.path.ends_with("/me/messages"))
        .count()
}

const DM_REPLY: &str = r#"
account = "ACCOUNT"
[[rules]]
id = "hello"
on = ["message"]
actions = [{ type = "send_dm", message = { kind = "text", text = "Thanks, we got your message." } }]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_thousand_queued_sends_provoke_no_rate_limit_error() {
    testing::on_each_backend(one_thousand_queued_sends_provoke_no_rate_limit_error_on).await;
}

async fn one_thousand_queued_sends_provoke_no_rate_limit_error_on() {
    let n = 1_000;
    // The simulator enforces Meta's 100 sends per second per account over a sliding second; the
    // service runs at its defaults (100 per second, batches of 64): its sliding-window limiter
    // and the pacing of each call must keep every window at the platform under the limit.
    let w = World::start_with("ratelimit", sim_config(), |_| {}, DM_REPLY).await;
    for i in 0..n {
        w.sim
            .person(&format!("p{i:04}"))
            .dm(w.account(), "hi")
            .unwrap();
    }
    w.sent(n).await;
    w.settled().await;
    let sent = w.sim.sent_messages();
    assert_eq!(sent.len(), n);
    let mut per_person: HashMap<&str, usize> = HashMap::new();
    for m in &sent {
        *per_person.entry(m.recipient_username.as_str()).or_default() += 1;
    }
    assert!(per_person.values().all(|&c| c == 1), "one reply each");
    let refused: Vec<_> = w
        .sim
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/me/messages") && r.status != 200)
        .collect();
    assert!(refused.is_empty(), "refused sends: {:?}", refused.first());
    assert_eq!(
        w.scalar("SELECT COUNT(*) FROM delivery_log WHERE error_kind IS NOT NULL")
            .await,
        0
    );
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_throttled_account_is_held_instead_of_refused_again() {
    testing::on_each_backend(a_throttled_account_is_held_instead_of_refused_again_on).await;
}

async fn a_throttled_account_is_held_instead_of_refused_again_on() {
    // The platform allows this account 3 private replies an hour; the service believes 750. The
    // platform's usage headers report the account at its limit (`estimated_time_to_regain_access`)
    // with the 3rd reply, and a 4th would be refused with 613 and a Retry-After: either way the
    // service must hold the account's calls instead of making (and losing) more.
    let mut sim = sim_config();
    sim.limits.private_replies_per_hour = 3;
    let w = World::start_with(
        "throttled",
        sim,
        |c| {
            c.sender_concurrency = 1;
        },
        COMMENT_TO_DM,
    )
    .await;
    let n = 6;
    for i in 0..n {
        w.sim
            .person(&format!("p{i}"))
            .comment(&w.reel, "LINK please")
            .unwrap();
    }
    w.sim.wait_for_webhooks_idle(WAIT).await.unwrap();
    eventually(&w, "every row is settled", async || {
        w.scalar("SELECT COUNT(*) FROM outbox").await == 2 * n
            && w.scalar("SELECT COUNT(*) FROM outbox WHERE status = 'sending'")
                .await
                == 0
            && w.scalar(
                "SELECT COUNT(*) FROM outbox WHERE kind = 'private_reply' \
                 AND status IN ('sent', 'delivered')",
            )
            .await
                == 3
            && w.scalar(
                "SELECT COUNT(*) FROM outbox WHERE kind = 'private_reply' AND status = 'queued'",
            )
            .await
                == 3
    })
    .await;
    // rows stay queued by design: give the sender a few more rounds to (wrongly) call again
    tokio::time::sleep(Duration::from_millis(500)).await;
    let refused: Vec<_> = w
        .sim
        .requests()
        .into_iter()
        .filter(|r| r.path.ends_with("/messages") && r.status != 200)
        .collect();
    assert!(
        refused.len() <= 1,
        "at most one refusal, then the account is held: {refused:?}"
    );
    assert_eq!(w.sim.private_replies().len(), 3);
    // the rows not sent wait for the hold to end (about an hour), none failed
    let soon = db_now() + 30 * 60 * 1000;
    let waiting: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM outbox WHERE kind = 'private_reply' AND status = 'queued' \
         AND next_attempt_at > $1",
    )
    .bind(soon)
    .fetch_one(w.service().shared().db.pool())
    .await
    .unwrap();
    assert_eq!(waiting, 3, "held until the platform's wait is over");
    assert_eq!(
        w.scalar("SELECT COUNT(*) FROM outbox WHERE status = 'failed'")
            .await,
        0
    );
    w.stop().await;
}

fn db_now() -> i64 {
    chrono::Utc::now().timestamp_millis()
}

/// Outbox rows the sender claims per round in the crash test.
const OUTBOX_BATCH: i64 = 16;
/// Calls the sender makes at once in the crash test, per loop.
const SENDER_CONCURRENCY: i64 = 4;
/// Sender loops in the crash test.
const SENDER_LOOPS: i64 = 2;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crash_mid_batch_loses_nothing_and_sends_nothing_twice() {
    testing::on_each_backend(a_crash_mid_batch_loses_nothing_and_sends_nothing_twice_on).await;
}

async fn a_crash_mid_batch_loses_nothing_and_sends_nothing_twice_on() {
    let n = 200;
    // 20 sends per second: the batch takes about 10 s, so the crash (after the 200 webhooks are
    // committed) comes while most replies are still queued.
    let mut w = World::start_with(
        "restart",
        sim_config().with_faults(Faults::none().latency(Duration::from_millis(20))),
        |c| {
            c.lease_secs = 1;
            c.sender_concurrency = SENDER_CONCURRENCY as usize;
            c.sender_loops = SENDER_LOOPS as usize;
            c.send_per_second = 20;
            c.outbox_batch = OUTBOX_BATCH;
        },
        DM_REPLY,
    )
    .await;
    for i in 0..n {
        w.sim
            .person(&format!("p{i:03}"))
            .dm(w.account(), "hi")
            .unwrap();
    }
    // every notification is committed (the 200 came back), some replies went out: crash
    w.sim.wait_for_webhooks_idle(WAIT).await.unwrap();
    w.sent(20).await;
    let service = w.service.take().unwrap();
    service.abort().await;
    let at_crash = w.sim.sent_messages().len();
    assert!(
        at_crash < n,
        "the crash came mid-batch ({at_crash} of {n} sent)"
    );

    let second = Service::start(w.config.clone()).await.unwrap();
    w.sim.set_webhook_url(Some(second.webhook_url()));
    w.service = Some(second);
    eventually(&w, "every event is resolved", async || {
        w.scalar("SELECT COUNT(*) FROM inbox WHERE status = 'pending'")
            .await
            == 0
            && w.scalar("SELECT COUNT(*) FROM outbox").await == n as i64
            && w.scalar("SELECT COUNT(*) FROM outbox WHERE status IN ('queued', 'sending')")
                .await
                == 0
    })
    .await;
    w.settled().await;
    let sent = w.sim.sent_messages();
    let mut per_person: HashMap<String, usize> = HashMap::new();
    for m in &sent {
        *per_person.entry(m.recipient_username.clone()).or_default() += 1;
    }
    // nothing doubled
    assert!(
        per_person.values().all(|&c| c == 1),
        "someone got two replies: {:?}",
        per_person
            .iter()
            .filter(|(_, &c)| c > 1)
            .collect::<Vec<_>>()
    );
    // nothing lost: every person got the reply, except those whose attempt was in flight at the
    // crash. Each attempt is committed just before its call and each outcome as soon as the
    // call returns, and a call's slot (SENDER_CONCURRENCY per loop) is only freed then: at most
    // that many rows were `sending` at the crash. The platform may or may not have taken those
    // calls, so their rows are failed as ambiguous and never re-sent; some of their people got
    // the reply. Rows claimed but not yet attempted (the rest of the round) are sent after the
    // restart.
    let ambiguous = w
        .scalar("SELECT COUNT(*) FROM outbox WHERE status = 'failed' AND error_kind = 'ambiguous'")
        .await;
    let unanswered = n as i64 - per_person.len() as i64;
    assert!(
        unanswered <= ambiguous,
        "{unanswered} people got no reply but only {ambiguous} rows are marked ambiguous"
    );
    assert!(
        ambiguous <= SENDER_CONCURRENCY * SENDER_LOOPS,
        "only the attempts in flight at the crash ({}) are ambiguous, not the rounds: {ambiguous}",
        SENDER_CONCURRENCY * SENDER_LOOPS
    );
    assert!(sent.len() > at_crash, "the second service sent the rest");
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn p3_a_webhook_with_a_bad_signature_is_refused_and_nothing_is_stored() {
    testing::on_each_backend(p3_a_webhook_with_a_bad_signature_is_refused_and_nothing_is_stored_on)
        .await;
}

async fn p3_a_webhook_with_a_bad_signature_is_refused_and_nothing_is_stored_on() {
    // P3: every incoming webhook is verified with HMAC-SHA256 before use. The service is
    // configured with another app secret than the simulator signs with: every attempt is
    // refused, nothing is stored, decided or sent.
    let w = World::start_with(
        "signature",
        sim_config(),
        |c| c.app_secret = "not-the-simulator-secret".into(),
        COMMENT_TO_DM,
    )
    .await;
    w.sim.person("alice").comment(&w.reel, "LINK").unwrap();
    let deliveries = w.sim.wait_for_deliveries(1, WAIT).await.unwrap();
    let attempts = &deliveries[0].attempts;
    assert!(!attempts.is_empty());
    assert!(
        attempts.iter().all(|a| a.status == Some(401)),
        "{attempts:?}"
    );
    assert_eq!(w.scalar("SELECT COUNT(*) FROM inbox").await, 0);
    assert_eq!(w.scalar("SELECT COUNT(*) FROM events").await, 0);
    assert!(w.sim.sent_messages().is_empty());
    let metrics = w.service().shared().metrics.render();
    assert!(
        metrics.contains("igdm_webhooks_rejected_total"),
        "{metrics}"
    );
    w.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_json_with_a_valid_signature_is_stored_as_rejected() {
    testing::on_each_backend(malformed_json_with_a_valid_signature_is_stored_as_rejected_on).await;
}

async fn malformed_json_with_a_valid_signature_is_stored_as_rejected_on() {
    let w = World::start("malformed", COMMENT_TO_DM).await;
    let body = b"{\"object\": \"instagram\", \"entry\": [".to_vec();
    let signature = webhook_verify::meta::sign(w.sim.app_secret().as_bytes(), &body).unwrap();
    let answer = reqwest::Client::new()
        .post(w.service().webhook_url())
        .header("X-Hub-Signature-256", signature.to_string())
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    eventually(
        &w,
        "the notification is set aside as rejected",
        async || {
            w.scalar("SELECT COUNT(*) FROM inbox WHERE status = 'rejected'")
                .await
                == 1
        },
    )
    .await;
    // reported: the metric and the stored reason
    let metrics = reqwest::get(format!("{}/metrics", w.service().base_url()))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"igdm_webhooks_rejected_total{reason="malformed_json"} 1"#),
        "{metrics}"
    );
    let reason: String = sqlx::query_scalar("SELECT reason FROM inbox WHERE status = 'rejected'")
        .fetch_one(w.service().shared().db.pool())
        .await
        .unwrap();
    assert!(!reason.is_empty());
    // the pipeline goes on: a genuine comment afterwards is answered
    let c = w.sim.person("alice").comment(&w.reel, "LINK").unwrap();
    let sent = w.sent(1).await;
    assert_eq!(private_replies_to(&sent, &c), 1);
    w.stop().await;
}
