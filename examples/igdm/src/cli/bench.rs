//! `igdm bench ingest`: signed webhook notifications per second accepted (verified and committed
//! to the inbox) by the reference service on SQLite, and the p50/p99 latency of the 200, at
//! several numbers of concurrent senders.

use std::process::ExitCode;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::{Args, Subcommand};
use igdm::service::{Config, Service};

use super::Failure;

/// Benchmarks of the reference service.
#[derive(Debug, Subcommand)]
pub enum BenchCommand {
    /// Webhook ingest: notifications/s verified + committed, and p50/p99 latency of the 200.
    Ingest(IngestArgs),
    /// Event to DM: signed DM webhooks through the whole pipeline to a local stand-in of the
    /// Send API; events/s and the delay from webhook received to the send recorded.
    Pipeline(PipelineArgs),
}

/// `igdm bench pipeline` options.
#[derive(Debug, Args)]
pub struct PipelineArgs {
    /// Events to send.
    #[arg(long, default_value_t = 3000)]
    events: usize,
    /// Concurrent webhook senders.
    #[arg(long, default_value_t = 16)]
    concurrency: usize,
}

/// `igdm bench ingest` options.
#[derive(Debug, Args)]
pub struct IngestArgs {
    /// Concurrent senders, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    concurrency: Vec<usize>,
    /// Notifications sent per concurrency level.
    #[arg(long, default_value_t = 5000)]
    requests: usize,
}

const SECRET: &str = "bench-app-secret";

/// Runs a benchmark. Logs go to stderr when `RUST_LOG` asks for them (e.g.
/// `RUST_LOG=sqlx::query=debug` shows every statement).
pub fn run(command: BenchCommand) -> Result<ExitCode, Failure> {
    if let Ok(filter) = tracing_subscriber::EnvFilter::try_from_default_env() {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(filter)
            .with_writer(std::io::stderr)
            .try_init();
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::new(format!("cannot start the async runtime: {e}")))?;
    match command {
        BenchCommand::Ingest(args) => {
            if args.requests == 0 || args.concurrency.contains(&0) {
                return Err(Failure::new(
                    "--requests and every --concurrency must be above 0",
                ));
            }
            runtime.block_on(ingest(args))
        }
        BenchCommand::Pipeline(args) => {
            if args.events == 0 || args.concurrency == 0 {
                return Err(Failure::new("--events and --concurrency must be above 0"));
            }
            runtime.block_on(pipeline(args))
        }
    }
}

async fn ingest(args: IngestArgs) -> Result<ExitCode, Failure> {
    let dir = std::env::temp_dir().join(format!("igdm-bench-ingest-{}", std::process::id()));
    let mut config = Config::for_tests(&dir);
    config.app_secret = SECRET.into();
    config.workers = false;
    let service = Service::start(config)
        .await
        .map_err(|e| Failure::new(e.to_string()))?;
    let url = service.webhook_url();
    println!(
        "igdm bench ingest: SQLite (WAL, synchronous=FULL) in {}",
        dir.display()
    );
    println!(
        "{:>11} {:>9} {:>12} {:>10} {:>10}",
        "concurrency", "requests", "notif/s", "p50 ms", "p99 ms"
    );
    let mut failed = 0usize;
    for (round, &concurrency) in args.concurrency.iter().enumerate() {
        let bodies: Arc<Vec<(Vec<u8>, String)>> = Arc::new(
            (0..args.requests)
                .map(|i| {
                    let body = format!(
                        r#"{{"object":"instagram","entry":[{{"id":"17841400000000001","time":1700000000,"changes":[{{"field":"comments","value":{{"id":"c{round}-{i}","text":"LINK please","from":{{"id":"{i}","username":"u{i}"}},"media":{{"id":"m1","media_product_type":"REELS"}}}}}}]}}]}}"#
                    );
                    let sig = webhook_verify::meta::sign(SECRET.as_bytes(), body.as_bytes())
                        .map(|s| s.to_string())
                        .unwrap_or_default();
                    (body.into_bytes(), sig)
                })
                .collect(),
        );
        let next = Arc::new(AtomicUsize::new(0));
        let started = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..concurrency {
            let (bodies, next, url) = (bodies.clone(), next.clone(), url.clone());
            tasks.push(tokio::spawn(async move {
                let client = reqwest::Client::new();
                let mut latencies = Vec::new();
                let mut errors = 0usize;
                loop {
                    let i = next.fetch_add(1, Ordering::Relaxed);
                    let Some((body, sig)) = bodies.get(i) else {
                        break;
                    };
                    let t = Instant::now();
                    let ok = client
                        .post(&url)
                        .header("X-Hub-Signature-256", sig)
                        .header("content-type", "application/json")
                        .body(body.clone())
                        .send()
                        .await
                        .is_ok_and(|r| r.status().is_success());
                    latencies.push(t.elapsed());
                    errors += usize::from(!ok);
                }
                (latencies, errors)
            }));
        }
        let mut latencies: Vec<Duration> = Vec::new();
        for task in tasks {
            if let Ok((l, e)) = task.await {
                latencies.extend(l);
                failed += e;
            }
        }
        let elapsed = started.elapsed().as_secs_f64();
        latencies.sort();
        let pct = |p: f64| {
            let i = ((latencies.len() as f64 - 1.0) * p).round() as usize;
            latencies.get(i).map_or(0.0, |d| d.as_secs_f64() * 1000.0)
        };
        println!(
            "{concurrency:>11} {:>9} {:>12.0} {:>10.2} {:>10.2}",
            latencies.len(),
            latencies.len() as f64 / elapsed,
            pct(0.5),
            pct(0.99)
        );
    }
    service.shutdown().await;
    let _ = std::fs::remove_dir_all(&dir);
    if failed > 0 {
        return Err(Failure::new(format!(
            "{failed} requests were not answered 200"
        )));
    }
    Ok(ExitCode::SUCCESS)
}

/// A stand-in for the Send API: answers every send with a new message id.
async fn fake_graph() -> Result<(String, tokio::task::JoinHandle<()>), Failure> {
    use axum::routing::{get, post};
    let next = Arc::new(AtomicUsize::new(0));
    let app = axum::Router::new()
        .route(
            "/v1/me/messages",
            post(move || {
                let n = next.fetch_add(1, Ordering::Relaxed);
                async move {
                    axum::Json(
                        serde_json::json!({"recipient_id": "p", "message_id": format!("mid.{n}")}),
                    )
                }
            }),
        )
        .route(
            "/v1/me/subscribed_apps",
            post(|| async { axum::Json(serde_json::json!({"success": true})) }),
        )
        .route(
            "/v1/me/media",
            get(|| async { axum::Json(serde_json::json!({"data": []})) }),
        );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| Failure::new(format!("cannot bind the fake Graph API: {e}")))?;
    let addr = listener
        .local_addr()
        .map_err(|e| Failure::new(e.to_string()))?;
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    Ok((format!("http://{addr}"), task))
}

async fn pipeline(args: PipelineArgs) -> Result<ExitCode, Failure> {
    let fail = |e: igdm::service::Error| Failure::new(e.to_string());
    let (graph, graph_task) = fake_graph().await?;
    let dir = std::env::temp_dir().join(format!("igdm-bench-pipeline-{}", std::process::id()));
    let mut config = Config::for_tests(&dir);
    config.app_secret = SECRET.into();
    config.graph_base_url = graph;
    config.graph_version = "v1".into();
    config.poll_interval_ms = 5;
    config.inbox_batch = 256;
    config.outbox_batch = 256;
    // = outbox_batch: a round's attempts share one commit
    config.sender_concurrency = 256;
    // one account: lift the per-account platform limits so the pipeline itself is measured
    config.send_per_second = 1_000_000;
    let service = Service::start(config).await.map_err(fail)?;
    let account = "17841400000000001";
    service
        .connect_account(account, Some("bench"), "IGAA-bench", None)
        .await
        .map_err(fail)?;
    service
        .put_automations(&format!(
            "account = \"{account}\"\n[[rules]]\nid = \"price\"\non = [\"message\"]\n\
             match = {{ mode = \"contains\", keywords = [\"price\"] }}\n\
             actions = [{{ type = \"send_dm\", message = {{ kind = \"text\", text = \"Prices: https://example.com/p\" }} }}]\n"
        ))
        .await
        .map_err(fail)?;
    let now = chrono::Utc::now().timestamp_millis();
    let bodies: Arc<Vec<(Vec<u8>, String)>> = Arc::new(
        (0..args.events)
            .map(|i| {
                let body = format!(
                    r#"{{"object":"instagram","entry":[{{"id":"{account}","time":{now},"messaging":[{{"sender":{{"id":"p{i}"}},"recipient":{{"id":"{account}"}},"timestamp":{now},"message":{{"mid":"in.{i}","text":"what is the price?"}}}}]}}]}}"#
                );
                let sig = webhook_verify::meta::sign(SECRET.as_bytes(), body.as_bytes())
                    .map(|s| s.to_string())
                    .unwrap_or_default();
                (body.into_bytes(), sig)
            })
            .collect(),
    );
    let url = service.webhook_url();
    let next = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..args.concurrency {
        let (bodies, next, url) = (bodies.clone(), next.clone(), url.clone());
        tasks.push(tokio::spawn(async move {
            let client = reqwest::Client::new();
            while let Some((body, sig)) = bodies.get(next.fetch_add(1, Ordering::Relaxed)) {
                let _ = client
                    .post(&url)
                    .header("X-Hub-Signature-256", sig)
                    .body(body.clone())
                    .send()
                    .await;
            }
        }));
    }
    for task in tasks {
        let _ = task.await;
    }
    let pool = service.shared().db.pool().clone();
    let deadline = Instant::now() + Duration::from_secs(300);
    let target = i64::try_from(args.events).unwrap_or(i64::MAX);
    loop {
        let sent: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM outbox WHERE status = 'sent'")
            .fetch_one(&pool)
            .await
            .map_err(|e| Failure::new(e.to_string()))?;
        if sent >= target || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let mut delays: Vec<i64> = sqlx::query_scalar(
        "SELECT o.sent_at - i.received_at FROM outbox o JOIN events e ON e.account = o.account \
         AND e.key = o.event_key JOIN inbox i ON i.id = e.inbox_id WHERE o.status = 'sent'",
    )
    .fetch_all(&pool)
    .await
    .map_err(|e| Failure::new(e.to_string()))?;
    delays.sort_unstable();
    let pct = |p: f64| {
        let i = ((delays.len() as f64 - 1.0) * p).round() as usize;
        delays.get(i).copied().unwrap_or(0)
    };
    println!("igdm bench pipeline: SQLite (WAL, synchronous=FULL), local stand-in Send API");
    println!(
        "{} events, {} senders: {} sent in {elapsed:.2} s = {:.0} events/s; webhook received -> send recorded: p50 {} ms, p99 {} ms",
        args.events,
        args.concurrency,
        delays.len(),
        delays.len() as f64 / elapsed,
        pct(0.5),
        pct(0.99)
    );
    service.shutdown().await;
    graph_task.abort();
    let _ = std::fs::remove_dir_all(&dir);
    if delays.len() < args.events {
        return Err(Failure::new(format!(
            "only {} of {} events were sent",
            delays.len(),
            args.events
        )));
    }
    Ok(ExitCode::SUCCESS)
}
