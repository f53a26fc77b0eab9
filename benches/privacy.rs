//! Benchmarks of `privacy-kit`: a streamed export of 1,000,000 message records, and a deletion
//! plan over a subject with 100,000 records.
//!
//! Run: `cargo bench --bench privacy -- --warm-up-time 1 --measurement-time 3`
//!
//! Peak memory of the export is printed before the measurements (from `VmHWM` in
//! `/proc/self/status`, reset through `/proc/self/clear_refs`, on Linux).
#![allow(clippy::unwrap_used, missing_docs)]

use std::future::Future;
use std::io::{Seek, SeekFrom, Write};
use std::pin::pin;
use std::sync::Arc;
use std::task::{Context, Poll, Wake, Waker};
use std::time::{Duration, Instant};

use criterion::{criterion_group, criterion_main, BatchSize, Criterion, Throughput};
use privacy_kit::cascade::{self, DeletionOptions};
use privacy_kit::chrono::{DateTime, TimeZone, Utc};
use privacy_kit::export::export_subject;
use privacy_kit::schema::{Pseudonymizer, Schema};
use privacy_kit::store::{async_trait, Change, MemoryStore, Page, Record, RecordStore};
use privacy_kit::{cascade::Subject, Secret};

/// Runs a future to completion on this thread (the stores here never wait).
fn block_on<F: Future>(f: F) -> F::Output {
    struct Unpark(std::thread::Thread);
    impl Wake for Unpark {
        fn wake(self: Arc<Self>) {
            self.0.unpark();
        }
    }
    let waker = Waker::from(Arc::new(Unpark(std::thread::current())));
    let mut cx = Context::from_waker(&waker);
    let mut f = pin!(f);
    loop {
        match f.as_mut().poll(&mut cx) {
            Poll::Ready(v) => return v,
            Poll::Pending => std::thread::park(),
        }
    }
}

fn t0() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap()
}

const CONTACTS: usize = 1_000;
const MESSAGES_PER_CONVERSATION: usize = 1_000;

/// A read-only store that generates one organization, one connection, 1,000 contacts with one
/// conversation each, and 1,000 messages per conversation, on the fly: 1,000,000 messages whose
/// records never all exist at once, so the export's own memory use is what is measured.
struct GeneratedStore;

fn message(conv: usize, n: usize) -> Record {
    Record::new("message", format!("m{conv:04}-{n:04}"), t0())
        .link("conversation_id", format!("cv{conv:04}"))
        .field(
            "text",
            format!("Hi! Is the blue jacket from your last reel still available in size M? #{n}"),
        )
        .field("sender_igsid", format!("1784140000{conv:06}"))
}

fn index(id: &str, prefix: &str) -> Option<usize> {
    id.strip_prefix(prefix)?
        .parse()
        .ok()
        .filter(|i| *i < CONTACTS)
}

#[async_trait]
impl RecordStore for GeneratedStore {
    async fn get(&self, entity: &str, id: &str) -> privacy_kit::Result<Option<Record>> {
        Ok(match entity {
            "organization" if id == "org" => Some(Record::new("organization", "org", t0())),
            _ => None,
        })
    }

    async fn find(&self, _: &str, _: &str, _: &str) -> privacy_kit::Result<Vec<String>> {
        Ok(Vec::new())
    }

    async fn linked(
        &self,
        entity: &str,
        link: &str,
        parent: &str,
        page: &Page,
    ) -> privacy_kit::Result<Vec<Record>> {
        let skip_to = |ids: Vec<Record>| -> Vec<Record> {
            ids.into_iter()
                .filter(|r| {
                    page.after
                        .as_ref()
                        .is_none_or(|a| r.id.as_str() > a.as_str())
                })
                .take(page.limit)
                .collect()
        };
        Ok(match (entity, link) {
            ("instagram_connection", "organization_id") if parent == "org" => {
                skip_to(vec![Record::new("instagram_connection", "conn", t0())
                    .link("organization_id", "org")])
            }
            ("contact", "connection_id") if parent == "conn" => {
                let start = page
                    .after
                    .as_deref()
                    .and_then(|a| index(a, "c"))
                    .map_or(0, |i| i + 1);
                (start..CONTACTS.min(start + page.limit))
                    .map(|i| {
                        Record::new("contact", format!("c{i:04}"), t0())
                            .link("connection_id", "conn")
                            .field("username", format!("buyer{i}"))
                    })
                    .collect()
            }
            ("conversation", "contact_id") => match index(parent, "c") {
                Some(i) => skip_to(vec![Record::new("conversation", format!("cv{i:04}"), t0())
                    .link("contact_id", parent)]),
                None => Vec::new(),
            },
            ("message", "conversation_id") => match index(parent, "cv") {
                Some(conv) => {
                    let start = page
                        .after
                        .as_deref()
                        .and_then(|a| a.rsplit('-').next())
                        .and_then(|n| n.parse::<usize>().ok())
                        .map_or(0, |n| n + 1);
                    (start..MESSAGES_PER_CONVERSATION.min(start + page.limit))
                        .map(|n| message(conv, n))
                        .collect()
                }
                None => Vec::new(),
            },
            _ => Vec::new(),
        })
    }

    async fn scan(&self, _: &str, _: &Page) -> privacy_kit::Result<Vec<Record>> {
        Ok(Vec::new())
    }

    async fn apply(&self, _: &[Change]) -> privacy_kit::Result<u64> {
        Ok(0)
    }
}

/// A `Write + Seek` sink that keeps no bytes, only the size.
#[derive(Default)]
struct Sink {
    pos: u64,
    len: u64,
}

impl Write for Sink {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.pos += buf.len() as u64;
        self.len = self.len.max(self.pos);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Seek for Sink {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        self.pos = match to {
            SeekFrom::Start(p) => p,
            SeekFrom::End(d) => self.len.saturating_add_signed(d),
            SeekFrom::Current(d) => self.pos.saturating_add_signed(d),
        };
        Ok(self.pos)
    }
}

fn export_million(schema: &Schema) -> (u64, u64) {
    let out = block_on(export_subject(
        schema,
        &GeneratedStore,
        &Subject::organization("org"),
        t0(),
        Sink::default(),
        1_000,
        None,
    ))
    .unwrap();
    (out.manifest.records(), out.writer.len)
}

fn status_kib(key: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn report_export_memory(schema: &Schema) {
    let before = status_kib("VmRSS:");
    let reset = std::fs::write("/proc/self/clear_refs", "5").is_ok();
    let start = Instant::now();
    let (records, bytes) = export_million(schema);
    let elapsed = start.elapsed();
    let peak = status_kib("VmHWM:");
    eprintln!(
        "export: {records} records, zip {:.1} MiB, one run {:.2} s ({:.0} records/s)",
        bytes as f64 / 1_048_576.0,
        elapsed.as_secs_f64(),
        records as f64 / elapsed.as_secs_f64()
    );
    match (before, peak, reset) {
        (Some(b), Some(p), true) => eprintln!(
            "export: RSS before {:.1} MiB, peak during export {:.1} MiB (+{:.1} MiB)",
            b as f64 / 1024.0,
            p as f64 / 1024.0,
            p.saturating_sub(b) as f64 / 1024.0
        ),
        _ => eprintln!("export: peak memory not available on this system"),
    }
}

fn bench_export(c: &mut Criterion) {
    let schema = Schema::example();
    report_export_memory(&schema);
    let mut group = c.benchmark_group("export");
    group.sample_size(10);
    group.throughput(Throughput::Elements(
        (CONTACTS * MESSAGES_PER_CONVERSATION) as u64,
    ));
    group.bench_function("1M messages to zip", |b| {
        b.iter(|| std::hint::black_box(export_million(&schema)))
    });
    group.finish();
}

/// One organization, one connection, 100 contacts with a conversation of 1,000 messages each:
/// 100,202 records under the subject.
fn populate_100k(store: &MemoryStore) {
    let t = t0();
    store.insert(Record::new("organization", "org", t));
    store.insert(Record::new("instagram_connection", "conn", t).link("organization_id", "org"));
    store.insert(Record::new("access_token", "tok", t).link("connection_id", "conn"));
    let mut records = Vec::with_capacity(100_200);
    for c in 0..100 {
        records.push(Record::new("contact", format!("c{c:03}"), t).link("connection_id", "conn"));
        records.push(
            Record::new("conversation", format!("cv{c:03}"), t)
                .link("contact_id", format!("c{c:03}")),
        );
        for m in 0..1_000 {
            records.push(
                Record::new("message", format!("m{c:03}-{m:04}"), t)
                    .link("conversation_id", format!("cv{c:03}"))
                    .field("text", "hello"),
            );
        }
    }
    store.insert_all(records);
}

fn bench_deletion(c: &mut Criterion) {
    let schema = Schema::example();
    let pseudonymizer = Pseudonymizer::new(Secret::new(vec![9; 32])).unwrap();
    let options = DeletionOptions::new(&pseudonymizer).batch_size(1_000);
    let store = MemoryStore::new();
    populate_100k(&store);
    let roots = vec![("organization".to_owned(), "org".to_owned())];
    let plan = block_on(cascade::plan_deletion(
        &schema,
        &store,
        &roots,
        &options,
        t0(),
    ))
    .unwrap();
    assert_eq!(plan.changes.len(), 100_203);

    let mut group = c.benchmark_group("deletion");
    group.sample_size(10);
    group.throughput(Throughput::Elements(plan.changes.len() as u64));
    group.bench_function("plan over 100k-record subject", |b| {
        b.iter(|| {
            block_on(cascade::plan_deletion(
                &schema,
                &store,
                &roots,
                &options,
                t0(),
            ))
            .unwrap()
        })
    });
    group.bench_function("plan + apply + verify 100k-record subject", |b| {
        b.iter_batched(
            || {
                let s = MemoryStore::new();
                populate_100k(&s);
                s
            },
            |s| {
                let plan =
                    block_on(cascade::plan_deletion(&schema, &s, &roots, &options, t0())).unwrap();
                let (_, err) = block_on(cascade::apply_plan(&s, &plan, 1_000));
                assert!(err.is_none());
                let v = block_on(cascade::verify_deletion(&schema, &s, &plan)).unwrap();
                assert!(v.leftovers.is_empty());
                s
            },
            BatchSize::PerIteration,
        )
    });
    group.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(10)
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3));
    targets = bench_export, bench_deletion
}
criterion_main!(benches);
