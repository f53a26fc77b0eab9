//! Benchmarks of `automation-core`, each next to its rival in the same group:
//!
//! * `decide/N`: match one 200-character comment against N keyword rules with the compiled
//!   [`RuleSet`] (`automation-core`) and with a naive loop doing normalized `contains` over every
//!   keyword of every rule (`naive-contains`).
//! * `compile/100000`: compile 100,000 keyword rules; `update/100000`: insert and remove one rule
//!   in a 100,000-rule set (delta rebuild) and a full compaction (the rebuild cost).
//! * `render`: a 100-character template with 3 variables, `automation-core` next to `minijinja`.
//!
//! Peak memory of compiling 100,000 rules is printed once (peak RSS growth, Linux only) with the
//! size of the automaton and its index.
//!
//! Run: `cargo bench --bench automation -- --warm-up-time 1 --measurement-time 3`
#![allow(clippy::unwrap_used, missing_docs)]

use std::hint::black_box;

use automation_core::event::{EventKind, MediaKind};
use automation_core::normalize::normalize;
use automation_core::template::Vars;
use automation_core::{InboundEvent, Match, Rule, RuleSet, Sender, Template, TriggerKind};
use chrono::{TimeZone, Utc};
use criterion::{criterion_group, criterion_main, BatchSize, Criterion};

const ACCOUNT: &str = "17841400000000000";

/// Words of several languages and scripts that people really comment.
const WORDS: &[&str] = &[
    "link",
    "price",
    "info",
    "size",
    "shipping",
    "discount",
    "code",
    "promo",
    "sale",
    "free",
    "giveaway",
    "order",
    "color",
    "stock",
    "delivery",
    "coupon",
    "menu",
    "recipe",
    "guide",
    "ebook",
    "course",
    "webinar",
    "ticket",
    "booking",
    "demo",
    "trial",
    "catalog",
    "wholesale",
    "collab",
    "sponsor",
    "precio",
    "envío",
    "talla",
    "oferta",
    "descuento",
    "enlace",
    "información",
    "preço",
    "frete",
    "tamanho",
    "cupom",
    "prix",
    "livraison",
    "taille",
    "réduction",
    "lien",
    "preis",
    "versand",
    "größe",
    "rabatt",
    "gutschein",
    "prezzo",
    "spedizione",
    "sconto",
    "цена",
    "доставка",
    "размер",
    "скидка",
    "ссылка",
    "промокод",
    "заказ",
    "наличие",
    "سعر",
    "توصيل",
    "مقاس",
    "خصم",
    "رابط",
    "طلب",
    "fiyat",
    "kargo",
    "beden",
    "indirim",
    "価格",
    "送料",
    "サイズ",
    "割引",
    "リンク",
    "注文",
    "价格",
    "运费",
    "尺码",
    "折扣",
    "链接",
    "订单",
    "가격",
    "배송",
    "사이즈",
    "할인",
    "링크",
    "ราคา",
    "ส่งฟรี",
    "ลดราคา",
    "कीमत",
    "डिलीवरी",
    "छूट",
    "🔥",
    "🔗",
    "💸",
    "🎁",
    "❤",
    "harga",
    "ongkir",
    "diskon",
    "giá",
    "giao hàng",
    "giảm giá",
];

const QUALIFIERS: &[&str] = &[
    "new",
    "summer",
    "winter",
    "black friday",
    "vip",
    "kids",
    "men",
    "women",
    "pro",
    "mini",
    "max",
    "gold",
    "silver",
    "early",
    "last",
    "2024",
    "xl",
    "red",
    "blue",
    "green",
    "bio",
    "vegan",
    "летняя",
    "новый",
    "nuevo",
    "nouveau",
    "neu",
    "新",
    "限定",
    "جديد",
    "特价",
    "yeni",
];

/// A deterministic generator (xorshift).
struct Gen(u64);

impl Gen {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn pick<'a>(&mut self, from: &[&'a str]) -> &'a str {
        from[(self.next() % from.len() as u64) as usize]
    }
}

/// `n` keyword rules with 1 to 3 realistic keywords each ("summer sale", "цена 42", "价格新"...).
fn rules(n: usize) -> Vec<Rule> {
    let mut g = Gen(0x9E37_79B9_7F4A_7C15);
    (0..n)
        .map(|i| {
            let count = 1 + (g.next() % 3) as usize;
            let keywords: Vec<String> = (0..count)
                .map(|_| match g.next() % 4 {
                    0 => format!("{} {}", g.pick(QUALIFIERS), g.pick(WORDS)),
                    1 => format!("{} {}", g.pick(WORDS), g.next() % 1000),
                    2 => format!(
                        "{} {} {}",
                        g.pick(WORDS),
                        g.pick(QUALIFIERS),
                        g.next() % 100
                    ),
                    _ => format!("{}{}", g.pick(WORDS), g.next() % 10_000),
                })
                .collect();
            Rule::new(format!("rule-{i}"), ACCOUNT)
                .on(TriggerKind::Comment)
                .on(TriggerKind::Message)
                .matching(Match::contains(keywords))
                .priority((i % 7) as i32)
        })
        .collect()
}

/// A 200-character comment mixing languages and emoji.
fn comment_text() -> String {
    let text = "Omg this reel is amazing 😍🔥 can you send me the LINK? ¿Cuál es el precio y el envío a \
                Madrid? Скидка есть? Summer sale 42!!! 价格多少 送料は？ ขอราคาหน่อยครับ and the promo code pls \
                thanks so much ❤️ love from Berlin and Istanbul";
    text.chars().take(200).collect()
}

fn event(text: &str) -> InboundEvent {
    InboundEvent::new(
        "17900000000000001",
        ACCOUNT,
        Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap(),
        Sender::new("17841455555555555"),
        EventKind::Comment {
            comment_id: "17900000000000001".into(),
            media_id: "18000000000000001".into(),
            media_kind: MediaKind::Reel,
            text: text.into(),
            parent_comment_id: None,
        },
    )
}

/// The naive rival: normalize the comment once, then `contains` over every keyword of every rule
/// (keywords normalized up front).
struct Naive {
    rules: Vec<(String, Vec<String>)>,
}

impl Naive {
    fn new(rules: &[Rule]) -> Self {
        Naive {
            rules: rules
                .iter()
                .map(|r| {
                    (
                        r.id.clone(),
                        r.matcher.keywords.iter().map(|k| normalize(k)).collect(),
                    )
                })
                .collect(),
        }
    }

    fn decide<'a>(&'a self, text: &str) -> Vec<&'a str> {
        let t = normalize(text);
        self.rules
            .iter()
            .filter(|(_, kws)| kws.iter().any(|k| t.contains(k.as_str())))
            .map(|(id, _)| id.as_str())
            .collect()
    }
}

fn bench_decide(c: &mut Criterion) {
    let text = comment_text();
    assert_eq!(text.chars().count(), 200);
    let ev = event(&text);
    let now = ev.occurred_at;
    let mut group = c.benchmark_group("decide");
    for n in [10usize, 1_000, 10_000, 100_000] {
        let rules = rules(n);
        let set = RuleSet::compile(rules.clone(), []).unwrap();
        let naive = Naive::new(&rules);
        let found = set.candidates(&ev, now).len();
        eprintln!(
            "decide/{n}: {found} candidate rules match the comment (naive: {})",
            naive.decide(&text).len()
        );
        let mut buf = String::new();
        let ours = on_cpu_ns(20_000, || {
            black_box(set.candidates_with(black_box(&ev), now, &mut buf).len());
        });
        // enough runs for tens of milliseconds of CPU (schedstat advances in scheduler ticks)
        let runs = match n {
            0..=100 => 50_000,
            101..=1_000 => 2_000,
            1_001..=10_000 => 200,
            _ => 20,
        };
        let theirs = on_cpu_ns(runs, || {
            black_box(naive.decide(black_box(&text)).len());
        });
        if let (Some(o), Some(t)) = (ours, theirs) {
            eprintln!(
                "decide/{n}: on-CPU {o:.0} ns per event (naive {t:.0} ns, {:.0}x)",
                t / o
            );
        }
        group.bench_function(format!("automation-core/{n}"), |b| {
            b.iter(|| black_box(set.candidates_with(black_box(&ev), now, &mut buf).len()))
        });
        group.bench_function(format!("naive-contains/{n}"), |b| {
            b.iter(|| black_box(naive.decide(black_box(&text)).len()))
        });
    }
    group.finish();
}

/// Nanoseconds this thread has spent on a CPU (Linux `schedstat`), to report figures that do
/// not include time spent waiting for a core on a busy machine.
fn cpu_ns() -> Option<u64> {
    let s = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    s.split_whitespace().next()?.parse().ok()
}

/// Average on-CPU nanoseconds of `f` over `n` runs.
fn on_cpu_ns(n: u32, mut f: impl FnMut()) -> Option<f64> {
    let start = cpu_ns()?;
    for _ in 0..n {
        f();
    }
    Some((cpu_ns()? - start) as f64 / f64::from(n))
}

/// Peak RSS (VmHWM) and current RSS in KiB, after resetting the peak (Linux only).
fn rss_kib(field: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(field))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn bench_compile(c: &mut Criterion) {
    let rules = rules(100_000);
    let keywords: usize = rules.iter().map(|r| r.matcher.keywords.len()).sum();
    // peak memory of one compilation
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    let before = rss_kib("VmRSS:");
    let input = rules.clone();
    let start = std::time::Instant::now();
    let cpu_start = cpu_ns();
    let set = RuleSet::compile(input, []).unwrap();
    let took = start.elapsed();
    let cpu = cpu_start
        .zip(cpu_ns())
        .map(|(a, b)| format!("{:.0} ms on-CPU", (b - a) as f64 / 1e6));
    let peak = rss_kib("VmHWM:");
    eprintln!(
        "compile/100000: {keywords} keywords, one run {took:?} wall ({}); index {:.1} MiB; peak RSS growth {}",
        cpu.unwrap_or_default(),
        set.index_memory() as f64 / 1_048_576.0,
        match (before, peak) {
            (Some(b), Some(p)) => format!("{:.1} MiB", p.saturating_sub(b) as f64 / 1024.0),
            _ => "unknown (no /proc)".into(),
        }
    );
    drop(set);

    let mut group = c.benchmark_group("compile");
    group.sample_size(10);
    group.bench_function("automation-core/100000", |b| {
        b.iter_batched(
            || rules.clone(),
            |r| RuleSet::compile(r, []).unwrap(),
            BatchSize::PerIteration,
        )
    });
    group.finish();

    let mut set = RuleSet::compile(rules.clone(), []).unwrap();
    let extra = Rule::new("extra", ACCOUNT)
        .on(TriggerKind::Comment)
        .matching(Match::contains(["brand new keyword", "новое слово"]));
    let cpu = on_cpu_ns(20_000, || {
        set.insert(extra.clone()).unwrap();
        black_box(set.remove("extra"));
    });
    let rebuild = on_cpu_ns(3, || set.compact());
    eprintln!(
        "update/100000: insert+remove one rule {:.1} µs on-CPU; full rebuild {:.0} ms on-CPU",
        cpu.unwrap_or(0.0) / 1e3,
        rebuild.unwrap_or(0.0) / 1e6
    );
    let mut group = c.benchmark_group("update");
    group.bench_function("insert+remove-one/100000", |b| {
        b.iter(|| {
            set.insert(extra.clone()).unwrap();
            black_box(set.remove("extra"))
        })
    });
    group.sample_size(10);
    group.bench_function("full-rebuild(compact)/100000", |b| b.iter(|| set.compact()));
    group.finish();
}

fn bench_render(c: &mut Criterion) {
    // ~100 characters once rendered, 3 variables
    let ours = Template::parse(
        "Hi {{first_name}}! Thanks for commenting on our reel. Your code is {{field.code}}, see you soon {{username}}!",
    )
    .unwrap();
    let fields = [("code".to_string(), "SUMMER24".to_string())]
        .into_iter()
        .collect();
    let vars = Vars {
        first_name: Some("Ana"),
        username: Some("ana.costa"),
        fields: Some(&fields),
        ..Vars::default()
    };
    let mut env = minijinja::Environment::new();
    env.add_template(
        "t",
        "Hi {{ first_name }}! Thanks for commenting on our reel. Your code is {{ code }}, see you soon {{ username }}!",
    )
    .unwrap();
    let tmpl = env.get_template("t").unwrap();
    let ctx =
        minijinja::context! { first_name => "Ana", code => "SUMMER24", username => "ana.costa" };
    let a = ours.render(&vars, 0);
    assert_eq!(a, tmpl.render(&ctx).unwrap());
    eprintln!("render: {} characters", a.chars().count());

    let o = on_cpu_ns(200_000, || {
        black_box(ours.render(black_box(&vars), 0));
    });
    let m = on_cpu_ns(200_000, || {
        black_box(tmpl.render(black_box(&ctx)).unwrap());
    });
    if let (Some(o), Some(m)) = (o, m) {
        eprintln!(
            "render: on-CPU {o:.0} ns (minijinja {m:.0} ns, {:.1}x)",
            m / o
        );
    }
    let mut group = c.benchmark_group("render");
    group.bench_function("automation-core", |b| {
        b.iter(|| black_box(ours.render(black_box(&vars), 0)))
    });
    group.bench_function("minijinja", |b| {
        b.iter(|| black_box(tmpl.render(black_box(&ctx)).unwrap()))
    });
    group.finish();
}

/// Polls a future that never waits (the in-memory store) to completion.
fn block_on<F: std::future::Future>(f: F) -> F::Output {
    let mut f = std::pin::pin!(f);
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    loop {
        if let std::task::Poll::Ready(v) = f.as_mut().poll(&mut cx) {
            return v;
        }
    }
}

/// The whole engine (idempotency claim, contact, candidates, conditions, limits, rendering)
/// over the in-memory store, for 100,000 rules, one new event id per iteration.
fn bench_engine(c: &mut Criterion) {
    let mut rules = rules(100_000);
    for r in rules.iter_mut().step_by(3) {
        *r = r.clone().action(automation_core::Action::PrivateReply {
            text: "Hi {{first_name|there}}, here is the link: https://example.com".into(),
        });
    }
    let engine = automation_core::Engine::new(RuleSet::compile(rules, []).unwrap());
    let store = automation_core::MemoryStore::new();
    let text = comment_text();
    let base = event(&text);
    let now = base.occurred_at;
    let d = block_on(engine.decide(&store, &base, now, 1)).unwrap();
    eprintln!(
        "engine/100000: {:?} by {:?}, {} actions",
        d.outcome,
        d.rule,
        d.actions.len()
    );
    let counter = std::cell::Cell::new(0u64);
    let mut group = c.benchmark_group("engine");
    group.bench_function("decide-with-memory-store/100000", |b| {
        b.iter_batched(
            || {
                counter.set(counter.get() + 1);
                let mut e = base.clone();
                e.id = format!("c-{}", counter.get());
                e
            },
            |e| black_box(block_on(engine.decide(&store, &e, now, 7)).unwrap()),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(
    benches,
    bench_decide,
    bench_engine,
    bench_compile,
    bench_render
);
criterion_main!(benches);
