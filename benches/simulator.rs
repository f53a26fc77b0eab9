//! `instagram-sim` capacity: how many Graph calls per second the simulator accepts from the
//! real `instagram_graph::Client`, which bounds any end-to-end benchmark run through it.
//!
//! - `send_text_sequential`: one text DM at a time (request, checks, record, echo queued).
//! - `send_text_16_concurrent`: 16 DMs in flight at once, per iteration.
//! - `person_dm_action`: the scripting side alone (state update; the account is not subscribed,
//!   so no webhook is queued).
//!
//! Rate limits are lifted so that only the simulator's own cost is measured.
//!
//! Run: `cargo bench --bench simulator -- --warm-up-time 1 --measurement-time 3`

#![allow(clippy::unwrap_used, missing_docs)]

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use instagram_graph::Client;
use instagram_sim::{AccountSpec, RateLimits, SimConfig, Simulator};

fn simulator(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let mut limits = RateLimits::default();
    limits.send_per_second = u32::MAX;
    let mut config = SimConfig::for_tests().with_limits(limits);
    config.echoes = false;
    let (sim, client, igsid) = runtime.block_on(async {
        let sim = Simulator::start(config).await.unwrap();
        let shop = sim.create_account(AccountSpec::new("shop")).unwrap();
        sim.person("alice").dm("shop", "hi").unwrap();
        let igsid = sim.igsid("alice", "shop").unwrap();
        let client = Client::builder(shop.access_token)
            .base_url(sim.base_url())
            .build()
            .unwrap();
        (sim, client, igsid)
    });

    let mut group = c.benchmark_group("simulator");
    group.throughput(Throughput::Elements(1));
    group.bench_function("send_text_sequential", |b| {
        b.iter(|| {
            runtime
                .block_on(client.send_text(igsid.clone(), "hello"))
                .unwrap()
        })
    });
    group.throughput(Throughput::Elements(16));
    group.bench_function("send_text_16_concurrent", |b| {
        b.iter(|| {
            runtime.block_on(async {
                let calls = (0..16).map(|_| {
                    let client = client.clone();
                    let to = igsid.clone();
                    tokio::spawn(async move { client.send_text(to, "hello").await.unwrap() })
                });
                for call in calls.collect::<Vec<_>>() {
                    call.await.unwrap();
                }
            })
        })
    });
    group.throughput(Throughput::Elements(1));
    group.bench_function("person_dm_action", |b| {
        b.iter(|| sim.person("bob").dm("shop", "hello").unwrap())
    });
    group.finish();
    sim.clear_records();
    runtime.block_on(sim.shutdown());
}

criterion_group!(benches, simulator);
criterion_main!(benches);
