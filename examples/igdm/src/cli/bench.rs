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

/// Runs a benchmark.
pub fn run(command: BenchCommand) -> Result<ExitCode, Failure> {
    let BenchCommand::Ingest(args) = command;
    if args.requests == 0 || args.concurrency.contains(&0) {
        return Err(Failure::new(
            "--requests and every --concurrency must be above 0",
        ));
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .map_err(|e| Failure::new(format!("cannot start the async runtime: {e}")))?;
    runtime.block_on(ingest(args))
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
