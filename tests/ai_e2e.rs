//! AI replies end to end: a DM goes into the Instagram Platform simulator, the service decides
//! with an `ai_reply` rule, asks a wiremock chat-completions endpoint with the conversation's
//! latest messages, and the answer (or the fallback) comes out of the simulator's Send API.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::time::Duration;

use igdm::service::config::AiConfig;
use igdm::service::{testing, Config, RunningService, Service};
use instagram_sim::{
    AccountInfo, AccountSpec, RunningSimulator, SentMessage, SimConfig, Simulator,
};
use serde_json::json;
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const WAIT: Duration = Duration::from_secs(60);

struct Dir(PathBuf);

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

struct World {
    sim: RunningSimulator,
    service: RunningService,
    shop: AccountInfo,
    _dir: Dir,
}

const RULES: &str = r#"
account = "ACCOUNT"
[[rules]]
id = "assistant"
on = ["message"]
match = { mode = "contains", keywords = ["question"] }
actions = [{ type = "ai_reply", instructions = "You answer for Example Shop. Be brief.", fallback = "Thanks {{first_name|there}}! A person will answer soon.", context_messages = 2 }]
"#;

impl World {
    async fn start(name: &str, llm: &MockServer, timeout_ms: u64) -> World {
        let dir = Dir(std::env::temp_dir().join(format!(
            "igdm-ai-e2e-{name}-{}-{}",
            std::process::id(),
            chrono::Utc::now().timestamp_nanos_opt().unwrap_or_default()
        )));
        std::fs::create_dir_all(&dir.0).unwrap();
        let mut sim_config = SimConfig::default();
        sim_config.delivery.retry_delays = vec![Duration::from_millis(50)];
        let sim = Simulator::start(sim_config).await.unwrap();
        let mut config = Config::for_tests(&dir.0);
        config.database = testing::fresh_database().await;
        config.app_id = sim.app_id();
        config.app_secret = sim.app_secret();
        config.graph_base_url = sim.base_url().to_owned();
        config.oauth_api_base_url = sim.base_url().to_owned();
        let mut ai = AiConfig::default();
        ai.base_url = format!("{}/v1", llm.uri());
        ai.model = "shop-model".into();
        ai.api_key = Some("sk-e2e".into());
        ai.timeout_ms = timeout_ms;
        config.ai = Some(ai);
        let service = Service::start(config).await.unwrap();
        sim.set_webhook_url(Some(service.webhook_url()));
        let shop = sim.create_account(AccountSpec::new("shop")).unwrap();
        service
            .connect_account(
                &shop.ig_user_id,
                Some("shop"),
                &shop.access_token,
                Some(shop.expires_at),
            )
            .await
            .unwrap();
        service
            .put_automations(&RULES.replace("ACCOUNT", &shop.ig_user_id))
            .await
            .unwrap();
        World {
            sim,
            service,
            shop,
            _dir: dir,
        }
    }

    async fn sent(&self, count: usize) -> Vec<SentMessage> {
        match self.sim.wait_for_sent(count, WAIT).await {
            Ok(sent) => sent,
            Err(e) => panic!(
                "waited for {count} sends: {e}; got {:?}",
                self.sim.sent_messages()
            ),
        }
    }

    async fn scalar(&self, sql: &'static str) -> i64 {
        sqlx::query_scalar::<_, i64>(sql)
            .fetch_one(self.service.shared().db.pool())
            .await
            .unwrap()
    }

    /// Waits until the service recorded `n` events (every DM so far is stored).
    async fn events(&self, n: i64) {
        let deadline = tokio::time::Instant::now() + WAIT;
        while self.scalar("SELECT COUNT(*) FROM events").await < n {
            assert!(
                tokio::time::Instant::now() < deadline,
                "waited for {n} events"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    async fn stop(self) {
        self.service.shutdown().await;
        self.sim.shutdown().await;
    }
}

fn completion(text: &str) -> serde_json::Value {
    json!({ "choices": [{ "index": 0, "message": { "role": "assistant", "content": text } }] })
}

async fn llm_bodies(llm: &MockServer) -> Vec<serde_json::Value> {
    llm.received_requests()
        .await
        .unwrap()
        .iter()
        .map(|r| serde_json::from_slice(&r.body).unwrap())
        .collect()
}

#[tokio::test]
async fn p18_ai_providers_receive_only_the_conversation_context_needed() {
    testing::on_each_backend(p18_ai_providers_receive_only_the_conversation_context_needed_on)
        .await;
}

async fn p18_ai_providers_receive_only_the_conversation_context_needed_on() {
    let llm = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(completion("Yes, we ship to Lisbon in 3 days.")),
        )
        .mount(&llm)
        .await;
    let w = World::start("p18", &llm, 5_000).await;
    let account = w.shop.ig_user_id.clone();
    // older messages of alice, and another contact's private message, before the question
    w.sim
        .person("alice")
        .dm(&account, "hello, my order is 111")
        .unwrap();
    w.events(1).await;
    w.sim
        .person("alice")
        .dm(&account, "I live in Lisbon")
        .unwrap();
    w.events(2).await;
    w.sim
        .person("bob")
        .dm(&account, "bob's card ends 4242")
        .unwrap();
    w.events(3).await;
    w.sim
        .person("alice")
        .dm(&account, "question: do you ship here?")
        .unwrap();
    let sent = w.sent(1).await;
    assert_eq!(sent[0].recipient_username, "alice");
    assert_eq!(
        sent[0].text.as_deref(),
        Some("Yes, we ship to Lisbon in 3 days.")
    );
    let bodies = llm_bodies(&llm).await;
    assert_eq!(bodies.len(), 1);
    // exactly the model, the instructions and the last two messages of this conversation:
    // no other contact's words, no older messages, no ids, names or profile data
    assert_eq!(
        bodies[0],
        json!({
            "model": "shop-model",
            "messages": [
                { "role": "system", "content": "You answer for Example Shop. Be brief." },
                { "role": "user", "content": "I live in Lisbon" },
                { "role": "user", "content": "question: do you ship here?" },
            ]
        })
    );
    let raw = bodies[0].to_string();
    for private in ["4242", "bob", "111", "alice", &account] {
        assert!(
            !raw.contains(private),
            "`{private}` reached the model: {raw}"
        );
    }
    // the next question sees our answer as the assistant's turn
    w.sim
        .person("alice")
        .dm(&account, "question: and to Porto?")
        .unwrap();
    w.sent(2).await;
    let bodies = llm_bodies(&llm).await;
    assert_eq!(
        bodies[1]["messages"],
        json!([
            { "role": "system", "content": "You answer for Example Shop. Be brief." },
            { "role": "assistant", "content": "Yes, we ship to Lisbon in 3 days." },
            { "role": "user", "content": "question: and to Porto?" },
        ])
    );
    assert_eq!(
        w.scalar("SELECT COUNT(*) FROM delivery_log WHERE status = 'ai_answered'")
            .await,
        2
    );
    w.stop().await;
}

#[tokio::test]
async fn an_ai_reply_falls_back_when_the_model_times_out() {
    testing::on_each_backend(an_ai_reply_falls_back_when_the_model_times_out_on).await;
}

async fn an_ai_reply_falls_back_when_the_model_times_out_on() {
    let llm = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/v1/chat/completions"))
        .respond_with(
            ResponseTemplate::new(200)
                .set_body_json(completion("too late"))
                .set_delay(Duration::from_secs(5)),
        )
        .mount(&llm)
        .await;
    let w = World::start("timeout", &llm, 300).await;
    w.sim
        .person("carol")
        .dm(&w.shop.ig_user_id, "question: are you open on Sunday?")
        .unwrap();
    let sent = w.sent(1).await;
    assert_eq!(sent[0].recipient_username, "carol");
    assert_eq!(
        sent[0].text.as_deref(),
        Some("Thanks there! A person will answer soon.")
    );
    assert_eq!(
        w.scalar(
            "SELECT COUNT(*) FROM delivery_log WHERE status = 'ai_fallback' AND error_kind = 'ai_timeout'"
        )
        .await,
        1
    );
    // the fallback that was sent is kept in the outbox row: a retry would send the same text
    let action: String = sqlx::query_scalar("SELECT action FROM outbox WHERE kind = 'ai_reply'")
        .fetch_one(w.service.shared().db.pool())
        .await
        .unwrap();
    assert!(action.contains("A person will answer soon"), "{action}");
    w.stop().await;
}
