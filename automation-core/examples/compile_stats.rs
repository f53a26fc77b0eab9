//! Compiles 100,000 generated keyword rules and prints the time of each phase and the index size.
//!
//! Measure peak memory with: `/usr/bin/time -v cargo run --release -p automation-core --example
//! compile_stats` (look at "Maximum resident set size").
#![allow(clippy::unwrap_used)]

use std::time::Instant;

use automation_core::normalize::normalize;
use automation_core::{Match, Rule, RuleSet, TriggerKind};

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
    "precio",
    "envío",
    "talla",
    "oferta",
    "preço",
    "prix",
    "livraison",
    "preis",
    "größe",
    "цена",
    "доставка",
    "скидка",
    "ссылка",
    "سعر",
    "توصيل",
    "رابط",
    "fiyat",
    "価格",
    "送料",
    "价格",
    "链接",
    "가격",
    "ราคา",
    "कीमत",
    "🔥",
    "🔗",
    "harga",
    "giá",
    "giảm giá",
];

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(100_000);
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let rules: Vec<Rule> = (0..n)
        .map(|i| {
            let k = (0..1 + next() % 3)
                .map(|_| {
                    format!(
                        "{} {}",
                        WORDS[(next() % WORDS.len() as u64) as usize],
                        next() % 5000
                    )
                })
                .collect::<Vec<_>>();
            Rule::new(format!("rule-{i}"), "acc")
                .on(TriggerKind::Comment)
                .matching(Match::contains(k))
        })
        .collect();
    let t = Instant::now();
    let mut chars = 0;
    let mut all = Vec::new();
    for r in &rules {
        for k in &r.matcher.keywords {
            let n = normalize(k);
            chars += n.len();
            all.push(n);
        }
    }
    println!("normalize keywords: {:?} ({chars} bytes)", t.elapsed());
    if std::env::var_os("AC_KINDS").is_some() {
        for kind in [
            aho_corasick::AhoCorasickKind::NoncontiguousNFA,
            aho_corasick::AhoCorasickKind::ContiguousNFA,
        ] {
            let t = Instant::now();
            let ac = aho_corasick::AhoCorasick::builder()
                .kind(Some(kind))
                .build(&all)
                .unwrap();
            println!("{kind:?}: {:?}, {} bytes", t.elapsed(), ac.memory_usage());
        }
    }
    let t = Instant::now();
    let set = RuleSet::compile(rules, []).unwrap();
    println!(
        "compile {n} rules: {:?}; index {:.1} MiB",
        t.elapsed(),
        set.index_memory() as f64 / 1_048_576.0
    );
}
