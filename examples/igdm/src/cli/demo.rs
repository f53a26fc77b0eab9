//! `igdm demo`: the whole service in one process, against the Instagram Platform simulator.
//!
//! It starts `instagram-sim` and the reference service on a temporary SQLite database, connects a
//! simulated account through the real OAuth flow (the authorize redirect and the callback are
//! followed over HTTP like a browser would), creates a comment-to-DM automation through the
//! management API, has three simulated people comment on the reel, waits until the pipeline
//! settles, and prints what happened. It exits 0 only if exactly the expected messages were sent.
//!
//! The automation: comment containing "link" on the reel -> a private reply with the link and a
//! public reply under the comment, once per person (`once_per_contact`). So:
//! - alice comments "LINK please" -> one private reply + one public reply;
//! - bob comments "Nice reel!" -> nothing;
//! - carol comments "LINK" then "link again?" -> one private reply + one public reply, to her
//!   FIRST comment only (the rule already fired for her).

use std::collections::HashMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use igdm::service::{Config, RunningService, Service};
use instagram_sim::{AccountSpec, MediaSpec, RunningSimulator, SentKind, SimConfig, Simulator};
use serde_json::Value;
use sqlx::Row;

use super::Failure;

/// The management API key the demo uses.
const API_KEY: &str = "demo-api-key";
/// The whole demo must finish within this.
const OVERALL: Duration = Duration::from_secs(30);
/// The pipeline must settle within this.
const SETTLE: Duration = Duration::from_secs(15);

/// A temporary data directory, removed on drop.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Result<Self, Failure> {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default();
        let path = std::env::temp_dir().join(format!("igdm-demo-{}-{nanos}", std::process::id()));
        std::fs::create_dir_all(&path).map_err(|e| {
            Failure::new(format!(
                "cannot create the temporary directory {}: {e}",
                path.display()
            ))
        })?;
        Ok(Self(path))
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Runs the demo.
pub fn run() -> Result<ExitCode, Failure> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Failure::new(format!("could not start the async runtime: {e}")))?;
    let dir = TempDir::new()?;
    let outcome = runtime.block_on(async {
        match tokio::time::timeout(OVERALL, demo(&dir)).await {
            Ok(outcome) => outcome,
            Err(_) => Err(format!("the demo did not finish within {OVERALL:?}")),
        }
    });
    runtime.shutdown_timeout(Duration::from_secs(2));
    drop(dir);
    match outcome {
        Ok(()) => {
            println!("\ndemo: ok, exactly the expected messages were sent");
            Ok(ExitCode::SUCCESS)
        }
        Err(why) => Err(Failure::new(format!("demo: {why}"))),
    }
}

fn step(title: &str) {
    println!("\n== {title}");
}

async fn demo(dir: &TempDir) -> Result<(), String> {
    println!("igdm demo: webhook in, DM out, on the Instagram Platform simulator");
    step("start the simulator and the service");
    let mut sim_config = SimConfig::default();
    sim_config.delivery.retry_delays = vec![
        Duration::from_millis(50),
        Duration::from_millis(100),
        Duration::from_millis(200),
    ];
    let sim = Simulator::start(sim_config)
        .await
        .map_err(|e| format!("the simulator did not start: {e}"))?;
    let mut config = Config::for_tests(&dir.0);
    config.app_id = sim.app_id();
    config.app_secret = sim.app_secret();
    config.verify_token = "demo-verify-token".into();
    config.graph_base_url = sim.base_url().to_owned();
    config.oauth_api_base_url = sim.base_url().to_owned();
    config.oauth_authorize_url = sim.authorize_url();
    config.api_keys = vec![API_KEY.into()];
    let service = Service::start(config)
        .await
        .map_err(|e| format!("the service did not start: {e}"))?;
    sim.set_webhook_url(Some(service.webhook_url()));
    println!("simulator  {}", sim.base_url());
    println!(
        "service    {} (SQLite in {})",
        service.base_url(),
        dir.0.display()
    );
    println!("webhooks   -> {}", service.webhook_url());

    let result = scenario(&sim, &service).await;
    service.shutdown().await;
    sim.shutdown().await;
    result
}

async fn scenario(sim: &RunningSimulator, service: &RunningService) -> Result<(), String> {
    let shop = sim
        .create_account(AccountSpec::new("demo_shop").name("Demo Shop"))
        .map_err(|e| format!("creating the simulated account failed: {e}"))?;
    let reel = sim
        .add_media(
            &shop.ig_user_id,
            MediaSpec::reel("New drop! Comment LINK and we DM you the link"),
        )
        .map_err(|e| format!("adding the reel failed: {e}"))?;
    println!("account    @demo_shop ({}), reel {reel}", shop.ig_user_id);

    step("connect @demo_shop through OAuth (like a browser)");
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(10))
        .build()
        .map_err(|e| format!("no HTTP client: {e}"))?;
    let start = format!("{}/connect/instagram", service.base_url());
    let authorize = redirect(&http, &start).await?;
    println!("GET {start}\n  -> 302 {}", shorten(&authorize));
    let callback = redirect(&http, &format!("{authorize}&account=demo_shop")).await?;
    println!(
        "GET the authorize page (consent)\n  -> 302 {}",
        shorten(&callback)
    );
    let done = http
        .get(&callback)
        .send()
        .await
        .map_err(|e| format!("GET the callback failed: {e}"))?;
    let status = done.status();
    let body = done.text().await.unwrap_or_default();
    if !status.is_success() {
        return Err(format!("the OAuth callback answered {status}: {body}"));
    }
    println!("GET the callback\n  -> {status} {body}");
    let account: Value = api(&http, service, "/api/accounts").await?;
    for a in account["accounts"].as_array().into_iter().flatten() {
        println!(
            "connected  {} @{} status {}",
            a["id"].as_str().unwrap_or("?"),
            a["username"].as_str().unwrap_or("?"),
            a["status"].as_str().unwrap_or("?")
        );
    }
    if !sim
        .requests()
        .iter()
        .any(|r| r.method == "POST" && r.path.ends_with("/me/subscribed_apps") && r.status == 200)
    {
        return Err("the service did not subscribe the account to webhooks".into());
    }

    step("create the automation through the management API");
    let rules = format!(
        r#"account = "{account}"

[[rules]]
id = "reel-link"
name = "Comment LINK on the reel, get the link by DM"
on = ["comment"]
scope = {{ kind = "media", ids = ["{reel}"] }}
match = {{ mode = "contains", keywords = ["link"] }}
limits = {{ once_per_contact = true }}
actions = [
  {{ type = "private_reply", text = "Hi {{{{username|there}}}}! Here is the link: https://example.com/drop" }},
  {{ type = "public_reply", variants = ["Sent you a DM!"] }},
]
"#,
        account = shop.ig_user_id
    );
    println!("{}", rules.trim_end());
    let saved = http
        .post(format!("{}/api/automations", service.base_url()))
        .bearer_auth(API_KEY)
        .header("content-type", "application/toml")
        .body(rules)
        .send()
        .await
        .map_err(|e| format!("POST /api/automations failed: {e}"))?;
    let status = saved.status();
    let body = saved.text().await.unwrap_or_default();
    if !status.is_success() {
        return Err(format!("POST /api/automations answered {status}: {body}"));
    }
    println!("POST /api/automations -> {status} {body}");

    step("three people comment on the reel");
    let mut comments: Vec<(&str, String, String)> = Vec::new();
    for (who, text) in [
        ("alice", "LINK please"),
        ("bob", "Nice reel!"),
        ("carol", "LINK"),
        ("carol", "link again?"),
    ] {
        let id = sim
            .person(who)
            .comment(&reel, text)
            .map_err(|e| format!("{who} could not comment: {e}"))?;
        println!("@{who:<6} comments {text:<14} (comment {id})");
        comments.push((who, text.to_owned(), id));
    }

    step("wait until the pipeline settles");
    let started = std::time::Instant::now();
    settle(sim, service).await?;
    println!("settled after {} ms", started.elapsed().as_millis());

    let names: HashMap<String, String> = ["alice", "bob", "carol"]
        .iter()
        .filter_map(|who| {
            sim.igsid(who, &shop.ig_user_id)
                .map(|id| (id, format!("@{who}")))
        })
        .collect();
    let name = |id: &str| names.get(id).cloned().unwrap_or_else(|| id.to_owned());

    step("webhooks the simulator delivered to the service");
    for d in sim.deliveries() {
        let last = d.attempts.last();
        let status = last
            .and_then(|a| a.status)
            .map(|s| s.to_string())
            .or_else(|| last.and_then(|a| a.error.clone()))
            .unwrap_or_else(|| "-".into());
        println!(
            "#{:<3} {:<28} -> {status} ({} attempt{})",
            d.id,
            describe(&d.json()),
            d.attempts.len(),
            if d.attempts.len() == 1 { "" } else { "s" }
        );
    }

    step("decisions of the service (events table)");
    let events = sqlx::query(
        "SELECT kind, contact, text, outcome, rule, decision FROM events ORDER BY occurred_at, processed_at",
    )
    .fetch_all(service.shared().db.pool())
    .await
    .map_err(|e| format!("reading the events failed: {e}"))?;
    for e in &events {
        let kind: String = e.try_get("kind").unwrap_or_default();
        let contact: String = e.try_get("contact").unwrap_or_default();
        let text: Option<String> = e.try_get("text").unwrap_or_default();
        let outcome: String = e.try_get("outcome").unwrap_or_default();
        let rule: Option<String> = e.try_get("rule").unwrap_or_default();
        let decision: String = e.try_get("decision").unwrap_or_default();
        let why = serde_json::from_str::<Value>(&decision)
            .ok()
            .and_then(|d| reason(&d))
            .unwrap_or_default();
        println!(
            "{kind:<8} from {:<8} {:<16} -> {outcome}{}{}",
            name(&contact),
            format!("{:?}", text.unwrap_or_default()),
            rule.map(|r| format!(" ({r})")).unwrap_or_default(),
            if why.is_empty() {
                String::new()
            } else {
                format!(": {why}")
            }
        );
    }

    step("what the simulator received from the service");
    let sent = sim.sent_messages();
    for m in &sent {
        println!(
            "{:?} to {} (comment {}): {:?}",
            m.kind,
            name(&m.recipient),
            m.comment_id.as_deref().unwrap_or("-"),
            m.text.as_deref().unwrap_or("")
        );
    }
    let public = sim.public_replies();
    for r in &public {
        println!("public reply under comment {}: {:?}", r.parent_id, r.text);
    }

    step("delivery log (GET /api/deliveries)");
    let log: Value = api(&http, service, "/api/deliveries").await?;
    for d in log["deliveries"].as_array().into_iter().flatten() {
        println!(
            "{:<14} attempt {} {:<9}{}{}",
            d["kind"].as_str().unwrap_or("?"),
            d["attempt"],
            d["status"].as_str().unwrap_or("?"),
            d["mid"]
                .as_str()
                .map(|m| format!(" mid {m}"))
                .unwrap_or_default(),
            d["error_kind"]
                .as_str()
                .map(|k| format!(" error {k}: {}", d["error_message"].as_str().unwrap_or("")))
                .unwrap_or_default()
        );
    }

    step("check");
    let comment_of = |who: &str, nth: usize| -> Option<String> {
        comments
            .iter()
            .filter(|(w, _, _)| *w == who)
            .nth(nth)
            .map(|(_, _, id)| id.clone())
    };
    let expected: Vec<String> = [comment_of("alice", 0), comment_of("carol", 0)]
        .into_iter()
        .flatten()
        .collect();
    let mut problems = Vec::new();
    let mut private: Vec<String> = sent
        .iter()
        .filter(|m| m.kind == SentKind::PrivateReply)
        .filter_map(|m| m.comment_id.clone())
        .collect();
    private.sort();
    let mut want = expected.clone();
    want.sort();
    if private != want {
        problems.push(format!(
            "private replies answered comments {private:?}, expected exactly {want:?} (alice's and carol's first)"
        ));
    }
    let others = sent
        .iter()
        .filter(|m| m.kind != SentKind::PrivateReply)
        .count();
    if others != 0 {
        problems.push(format!(
            "{others} other Send API call(s) were made, expected none"
        ));
    }
    let mut parents: Vec<String> = public.iter().map(|r| r.parent_id.clone()).collect();
    parents.sort();
    if parents != want {
        problems.push(format!(
            "public replies went under comments {parents:?}, expected exactly {want:?}"
        ));
    }
    if problems.is_empty() {
        println!("2 private replies (alice, carol's first comment), 2 public replies, nothing to bob, nothing for carol's second comment: as expected");
        Ok(())
    } else {
        for p in &problems {
            println!("MISMATCH: {p}");
        }
        Err(problems.join("; "))
    }
}

/// Follows one redirect: the `Location` of a 302/303.
async fn redirect(http: &reqwest::Client, url: &str) -> Result<String, String> {
    let response = http
        .get(url)
        .send()
        .await
        .map_err(|e| format!("GET {url} failed: {e}"))?;
    let status = response.status();
    if !status.is_redirection() {
        let body = response.text().await.unwrap_or_default();
        return Err(format!(
            "GET {} answered {status} instead of a redirect: {body}",
            shorten(url)
        ));
    }
    response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|l| l.to_str().ok())
        .map(str::to_owned)
        .ok_or_else(|| format!("GET {} redirected without a Location", shorten(url)))
}

/// GETs a management API path with the demo key.
async fn api(
    http: &reqwest::Client,
    service: &RunningService,
    path: &str,
) -> Result<Value, String> {
    let response = http
        .get(format!("{}{path}", service.base_url()))
        .bearer_auth(API_KEY)
        .send()
        .await
        .map_err(|e| format!("GET {path} failed: {e}"))?;
    let status = response.status();
    if !status.is_success() {
        return Err(format!("GET {path} answered {status}"));
    }
    response
        .json()
        .await
        .map_err(|e| format!("GET {path} answered no JSON: {e}"))
}

/// Waits until the simulator delivered every webhook, the service processed every notification
/// and every outbox row reached a final status, and the expected replies went out.
async fn settle(sim: &RunningSimulator, service: &RunningService) -> Result<(), String> {
    let deadline = tokio::time::Instant::now() + SETTLE;
    let mut quiet_rounds = 0;
    loop {
        let webhooks_idle = sim
            .wait_for_webhooks_idle(Duration::from_millis(1))
            .await
            .is_ok();
        let busy: i64 = sqlx::query_scalar(
            "SELECT (SELECT COUNT(*) FROM inbox WHERE status = 'pending') + \
             (SELECT COUNT(*) FROM outbox WHERE status IN ('queued', 'sending'))",
        )
        .fetch_one(service.shared().db.pool())
        .await
        .map_err(|e| format!("reading the queues failed: {e}"))?;
        let events: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM events WHERE kind = 'comment'")
            .fetch_one(service.shared().db.pool())
            .await
            .map_err(|e| format!("reading the events failed: {e}"))?;
        // Four comments decided, nothing queued anywhere: settled once it stays so for a few
        // polls (the echoes of the private replies come back as webhooks too).
        if webhooks_idle && busy == 0 && events >= 4 {
            quiet_rounds += 1;
            if quiet_rounds >= 5 {
                return Ok(());
            }
        } else {
            quiet_rounds = 0;
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(format!(
                "the pipeline did not settle within {SETTLE:?} ({events} comments decided, {busy} rows still queued, webhooks idle: {webhooks_idle})"
            ));
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One line about a notification body.
fn describe(body: &Value) -> String {
    let mut parts = Vec::new();
    for entry in body["entry"].as_array().into_iter().flatten() {
        for change in entry["changes"].as_array().into_iter().flatten() {
            parts.push(format!(
                "{} {:?}",
                change["field"].as_str().unwrap_or("?"),
                change["value"]["text"].as_str().unwrap_or("")
            ));
        }
        for m in entry["messaging"].as_array().into_iter().flatten() {
            let what = if m["message"]["is_echo"].as_bool() == Some(true) {
                "message echo"
            } else if m.get("message").is_some() {
                "message"
            } else if m.get("read").is_some() {
                "read"
            } else if m.get("postback").is_some() {
                "postback"
            } else if m.get("reaction").is_some() {
                "reaction"
            } else {
                "messaging"
            };
            parts.push(what.to_owned());
        }
    }
    if parts.is_empty() {
        "notification".into()
    } else {
        parts.join(", ")
    }
}

/// The reason in a stored decision, if any.
fn reason(decision: &Value) -> Option<String> {
    for key in ["reason", "why", "skipped"] {
        if let Some(s) = decision[key].as_str() {
            return Some(s.to_owned());
        }
    }
    decision["skipped"]
        .as_array()
        .map(|list| {
            list.iter()
                .filter_map(|s| s["reason"].as_str().or(s.as_str()))
                .collect::<Vec<_>>()
                .join("; ")
        })
        .filter(|s| !s.is_empty())
}

fn shorten(url: &str) -> String {
    if url.len() > 110 {
        format!(
            "{}...",
            &url[..url.char_indices().nth(107).map_or(url.len(), |(i, _)| i)]
        )
    } else {
        url.to_owned()
    }
}
