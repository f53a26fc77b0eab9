//! `webhook-verify` against a bare HMAC-SHA256 of the same bytes.
//!
//! One group per body size (1 KiB, 64 KiB). `igdm_verify` is the full
//! `webhook_verify::meta::verify`: header parse, hex decode, HMAC, constant-time compare.
//! `bare_hmac_sha256` is `hmac` + `sha2` used directly: key setup, update, finalize, compare.
//! The target is `igdm_verify` within 1.10x of `bare_hmac_sha256` at 1 KiB. The group
//! `webhook_verify_overhead` measures the part that is ours alone: parsing the header.
//!
//! Run: `cargo bench --bench webhook_verify -- --warm-up-time 1 --measurement-time 3`

#![allow(clippy::unwrap_used, missing_docs)]

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;
use webhook_verify::meta;

const APP_SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

/// A deterministic body of `len` bytes that looks like JSON text.
fn body(len: usize) -> Vec<u8> {
    let pattern = br#"{"object":"instagram","entry":[{"id":"17841400000000001","changes":[]}]}"#;
    pattern.iter().copied().cycle().take(len).collect()
}

fn verify_vs_bare_hmac(c: &mut Criterion) {
    for (label, len) in [("1KiB", 1024), ("64KiB", 64 * 1024)] {
        let body = body(len);
        let signature = meta::sign(APP_SECRET, &body).unwrap();
        let header = signature.to_string();
        let digest = *signature.as_bytes();

        let mut group = c.benchmark_group(format!("webhook_verify_{label}"));
        group.throughput(Throughput::Bytes(len as u64));
        group.bench_function("igdm_verify", |b| {
            b.iter(|| {
                meta::verify(black_box(APP_SECRET), black_box(&body), black_box(&header)).is_ok()
            })
        });
        group.bench_function("bare_hmac_sha256", |b| {
            b.iter(|| {
                let mut mac =
                    <Hmac<Sha256> as KeyInit>::new_from_slice(black_box(APP_SECRET)).unwrap();
                mac.update(black_box(&body));
                mac.verify_slice(black_box(&digest)).is_ok()
            })
        });
        group.finish();
    }
}

/// What `igdm_verify` does beyond the HMAC: parsing the header and decoding its hex.
fn header_parse(c: &mut Criterion) {
    let header = meta::sign(APP_SECRET, &body(1024)).unwrap().to_string();
    let mut group = c.benchmark_group("webhook_verify_overhead");
    group.bench_function("parse_header", |b| {
        b.iter(|| meta::Signature::parse(black_box(&header)).is_ok())
    });
    group.finish();
}

criterion_group!(benches, verify_vs_bare_hmac, header_parse);
criterion_main!(benches);
