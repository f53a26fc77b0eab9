//! Benchmarks of the reference service (`igdm::service`) on SQLite in a temporary directory.
//!
//! - `webhook_ingest/{1,16,64}_senders`: signed Instagram notifications POSTed over HTTP by 1, 16
//!   and 64 concurrent senders; an element is one notification accepted (signature verified and
//!   the row committed, group commit) with its 200. The pipeline workers are off, so this is the
//!   ingest alone. The latency of each 200 (as seen by the sender, client included) is printed
//!   as p50/p99 per level.
//! - `event_to_dm/dm_reply`: a simulated person DMs the account in `instagram-sim`, the
//!   simulator delivers the signed webhook, the service stores, decides and sends the reply
//!   through the Graph API to the simulator; an element is one event answered (iterations are
//!   bursts of 1,000 DMs, so the pipeline's fill and drain are amortized). The DMs are spread over
//!   50 connected accounts; the simulator's and the service's per-account limits stay at the
//!   platform's (100 sends/s each), and the simulator delivers up to 64 webhooks at once, one
//!   event per request. The service claims 256 outbox rows per round and sends all of them
//!   concurrently (`sender_concurrency` = `outbox_batch`), so that a round's attempts share one
//!   commit: with fewer calls at once the attempts commit in waves, and each wave waits its turn
//!   at SQLite's single writer behind the inbox worker's transaction.
//! - `event_to_dm/dm_reply_batched`: the same, with the simulator merging up to 100 queued
//!   notifications into one request, as Meta batches webhook updates under load ("a batch with
//!   a maximum of 1000 updates"); it sends one at a time while nothing is queued.
//!
//!   The delay from the webhook received (inbox `received_at`) to the send call accepted by the
//!   simulator is printed as p50/p99, and the medians of its stages (simulator to webhook
//!   received, received to decided, decided to send recorded) show where it goes.
//!
//! Everything (senders, simulator, service, SQLite) shares the same machine.
//! Run: `cargo bench --bench service -- --warm-up-time 1 --measurement-time 3`
#![allow(clippy::unwrap_used, missing_docs)]

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, Criterion, SamplingMode, Throughput};
use igdm::service::{Config, Service};
use instagram_sim::{AccountSpec, SimConfig, Simulator};
use sqlx::Row;

const SECRET: &str = "bench-app-secret";

struct Dir(PathBuf);

impl Dir {
    fn new(name: &str) -> Dir {
        let path = std::env::temp_dir().join(format!(
            "igdm-bench-{name}-{}-{}",
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

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// p50 and p99 of durations in microseconds.
fn percentiles(mut samples: Vec<u64>) -> (f64, f64, usize) {
    samples.sort_unstable();
    let n = samples.len();
    if n == 0 {
        return (0.0, 0.0, 0);
    }
    let at = |q: f64| samples[((n as f64 * q).ceil() as usize).clamp(1, n) - 1] as f64 / 1000.0;
    (at(0.50), at(0.99), n)
}

fn comment_notification(n: u64) -> Vec<u8> {
    let now = chrono::Utc::now().timestamp();
    serde_json::json!({"object": "instagram", "entry": [{"id": "17841400000000001", "time": now,
        "changes": [{"field": "comments", "value": {
            "id": format!("178{n:014}"), "text": "LINK please, how much is it?",
            "from": {"id": format!("58{n:014}"), "username": format!("person{n}")},
            "media": {"id": "17900000000000001", "media_product_type": "REELS"}}}]}]})
    .to_string()
    .into_bytes()
}

fn webhook_ingest(c: &mut Criterion) {
    let rt = runtime();
    let dir = Dir::new("ingest");
    let mut config = Config::for_tests(&dir.0);
    config.app_secret = SECRET.into();
    config.workers = false;
    config.max_connections = 4;
    let service = rt.block_on(Service::start(config)).unwrap();
    let url = service.webhook_url();
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(256)
        .build()
        .unwrap();
    let counter = Arc::new(AtomicU64::new(0));
    let mut group = c.benchmark_group("webhook_ingest");
    group.throughput(Throughput::Elements(1));
    group.sample_size(10);
    let mut report = Vec::new();
    for senders in [1usize, 16, 64] {
        let latencies = Arc::new(Mutex::new(Vec::<u64>::new()));
        group.bench_function(format!("{senders}_senders"), |b| {
            b.iter_custom(|iters| {
                // signed bodies, prepared before the clock starts (Meta signs, not us)
                let mut chunks: Vec<Vec<(Vec<u8>, String)>> = vec![Vec::new(); senders];
                for i in 0..iters {
                    let body = comment_notification(counter.fetch_add(1, Ordering::Relaxed));
                    let signature = webhook_verify::meta::sign(SECRET.as_bytes(), &body)
                        .unwrap()
                        .to_string();
                    chunks[(i as usize) % senders].push((body, signature));
                }
                rt.block_on(async {
                    let start = Instant::now();
                    let mut tasks = Vec::new();
                    for chunk in chunks {
                        let client = client.clone();
                        let url = url.clone();
                        let latencies = latencies.clone();
                        tasks.push(tokio::spawn(async move {
                            let mut mine = Vec::with_capacity(chunk.len());
                            for (body, signature) in chunk {
                                let t0 = Instant::now();
                                let answer = client
                                    .post(&url)
                                    .header("X-Hub-Signature-256", signature)
                                    .header("content-type", "application/json")
                                    .body(body)
                                    .send()
                                    .await
                                    .unwrap();
                                assert_eq!(answer.status(), 200);
                                mine.push(t0.elapsed().as_micros() as u64);
                            }
                            latencies.lock().unwrap().extend(mine);
                        }));
                    }
                    for t in tasks {
                        t.await.unwrap();
                    }
                    start.elapsed()
                })
            })
        });
        let (p50, p99, n) = percentiles(std::mem::take(&mut *latencies.lock().unwrap()));
        report.push(format!(
            "webhook_ingest {senders:>2} senders: latency of the 200 p50 {p50:.2} ms, p99 {p99:.2} ms ({n} requests)"
        ));
    }
    group.finish();
    let stored: i64 = rt
        .block_on(
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM inbox")
                .fetch_one(service.shared().db.pool()),
        )
        .unwrap();
    let sent = counter.load(Ordering::Relaxed) as i64;
    assert_eq!(stored, sent, "every accepted notification is stored");
    for line in report {
        println!("{line}");
    }
    println!("webhook_ingest: {stored} notifications stored, one row each");
    rt.block_on(service.shutdown());
}

/// DMs per iteration of `event_to_dm`.
const EVENTS_PER_ITERATION: u64 = 1000;

const DM_REPLY: &str = r#"
account = "ACCOUNT"
[[rules]]
id = "hello-ACCOUNT"
on = ["message"]
actions = [{ type = "send_dm", message = { kind = "text", text = "Thanks, we got your message." } }]
"#;

/// Connected accounts in `event_to_dm`: DMs are spread over them, so the platform's per-account
/// send limit (100/s, kept at its default in the simulator and the service) allows 5,000/s.
const ACCOUNTS: usize = 50;

fn event_to_dm(c: &mut Criterion) {
    // Meta delivers concurrently under load: one event per request, then batched.
    pipeline(c, "dm_reply", 1);
    pipeline(c, "dm_reply_batched", 100);
}

/// One `event_to_dm` benchmark, with the simulator merging up to `max_batch` queued
/// notifications per request.
fn pipeline(c: &mut Criterion, name: &str, max_batch: usize) {
    let rt = runtime();
    let dir = Dir::new("pipeline");
    let mut sim_config = SimConfig::default();
    sim_config.max_records = 10_000_000;
    sim_config.delivery.concurrency = 64;
    sim_config.delivery.max_batch = max_batch;
    let sim = rt.block_on(Simulator::start(sim_config)).unwrap();
    let mut config = Config::for_tests(&dir.0);
    config.app_id = sim.app_id();
    config.app_secret = sim.app_secret();
    config.graph_base_url = sim.base_url().to_owned();
    config.poll_interval_ms = 5;
    config.inbox_batch = 256;
    config.inbox_linger_ms = 20; // the default
    config.outbox_batch = 256;
    // = outbox_batch: a round's attempts share one commit
    config.sender_concurrency = 256;
    let service = rt.block_on(Service::start(config)).unwrap();
    sim.set_webhook_url(Some(service.webhook_url()));
    let mut shops = Vec::new();
    for i in 0..ACCOUNTS {
        let shop = sim
            .create_account(AccountSpec::new(format!("shop{i}")))
            .unwrap();
        rt.block_on(async {
            service
                .connect_account(
                    &shop.ig_user_id,
                    Some(&format!("shop{i}")),
                    &shop.access_token,
                    Some(shop.expires_at),
                )
                .await
                .unwrap();
            service
                .put_automations(&DM_REPLY.replace("ACCOUNT", &shop.ig_user_id))
                .await
                .unwrap();
        });
        shops.push(shop.ig_user_id);
    }
    let people = AtomicU64::new(0);
    let mut group = c.benchmark_group("event_to_dm");
    // One iteration is a burst of EVENTS_PER_ITERATION DMs, timed until every reply was
    // accepted by the simulator: the pipeline's fill and drain are amortized over the burst.
    group.throughput(Throughput::Elements(EVENTS_PER_ITERATION));
    group.sample_size(10);
    group.sampling_mode(SamplingMode::Flat);
    group.bench_function(name, |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let before = sim.sent_count();
                let events = iters * EVENTS_PER_ITERATION;
                let start = Instant::now();
                for _ in 0..events {
                    let n = people.fetch_add(1, Ordering::Relaxed);
                    sim.person(&format!("p{n}"))
                        .dm(&shops[n as usize % ACCOUNTS], "hi")
                        .unwrap();
                }
                // counted, not copied: the wait takes no time of its own from the pipeline
                let target = before + events as usize;
                sim.wait_until(Duration::from_secs(300), |sim| sim.sent_count() >= target)
                    .await
                    .unwrap();
                start.elapsed()
            })
        })
    });
    group.finish();
    // delay from the webhook received to the send call accepted, per event
    let sent_at: HashMap<String, i64> = sim
        .sent_messages()
        .into_iter()
        .map(|m| (m.recipient, m.at.timestamp_micros()))
        .collect();
    let rows = rt
        .block_on(
            sqlx::query(
                "SELECT e.contact AS contact, i.received_at AS received_at FROM events e \
                 JOIN inbox i ON i.id = e.inbox_id WHERE e.kind = 'message'",
            )
            .fetch_all(service.shared().db.pool()),
        )
        .unwrap();
    let delays: Vec<u64> = rows
        .iter()
        .filter_map(|r| {
            let contact: String = r.try_get("contact").ok()?;
            let received: i64 = r.try_get("received_at").ok()?;
            let at = sent_at.get(&contact)?;
            u64::try_from(at - received * 1000).ok()
        })
        .collect();
    let (p50, p99, n) = percentiles(delays);
    println!(
        "event_to_dm/{name}: webhook received -> send call accepted p50 {p50:.1} ms, p99 {p99:.1} ms ({n} events; inbox times have ms resolution)"
    );
    // where the delay goes: the DM's time at the simulator -> webhook received -> decided ->
    // send recorded (medians, ms)
    let stages = rt
        .block_on(
            sqlx::query(
                "SELECT e.occurred_at AS occurred, i.received_at AS received, \
                 e.processed_at AS decided, o.sent_at AS sent FROM events e \
                 JOIN inbox i ON i.id = e.inbox_id \
                 JOIN outbox o ON o.account = e.account AND o.event_key = e.key \
                 WHERE e.kind = 'message' AND o.sent_at IS NOT NULL",
            )
            .fetch_all(service.shared().db.pool()),
        )
        .unwrap();
    let median = |mut v: Vec<i64>| {
        v.sort_unstable();
        v.get(v.len() / 2).copied().unwrap_or_default()
    };
    let stage = |a: &str, b: &str| {
        median(
            stages
                .iter()
                .filter_map(|r| Some(r.try_get::<i64, _>(b).ok()? - r.try_get::<i64, _>(a).ok()?))
                .collect(),
        )
    };
    println!(
        "event_to_dm/{name} stages (median ms): simulator -> webhook received {}, received -> decided {}, decided -> send recorded {}",
        stage("occurred", "received"),
        stage("received", "decided"),
        stage("decided", "sent"),
    );
    let replies = sim.sent_messages().len() as u64;
    assert_eq!(replies, people.load(Ordering::Relaxed), "one reply per DM");
    rt.block_on(service.shutdown());
    rt.block_on(sim.shutdown());
}

criterion_group!(benches, webhook_ingest, event_to_dm);
criterion_main!(benches);
