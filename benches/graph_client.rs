//! The per-call overhead of `instagram-graph` outside the network: reading the usage headers and
//! classifying an error body (both run on responses), and building a Send API body. Each typed
//! path is measured next to parsing the same bytes into `serde_json::Value`.
#![allow(clippy::unwrap_used, missing_docs)]

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use instagram_graph::model::{QuickReply, SendRequest};
use instagram_graph::usage::Usage;
use instagram_graph::Error;
use std::hint::black_box;

const APP_USAGE: &str = r#"{"call_count":28,"total_time":25,"total_cputime":25}"#;
const BUC_USAGE: &str = r#"{"17841400000000001":[{"type":"instagram","call_count":91,"total_cputime":5,"total_time":7,"estimated_time_to_regain_access":0}]}"#;
const ERROR_BODY: &str = r#"{"error":{"message":"(#10) This message is sent outside of allowed window.","type":"OAuthException","code":10,"error_subcode":2534022,"is_transient":false,"fbtrace_id":"A_OWQTXoJ2E4Sl3hFwg9rlW"}}"#;

fn usage_headers(c: &mut Criterion) {
    let mut group = c.benchmark_group("usage_headers");
    group.throughput(Throughput::Bytes(
        (APP_USAGE.len() + BUC_USAGE.len()) as u64,
    ));
    group.bench_function("typed Usage::from_headers", |b| {
        b.iter(|| Usage::from_headers(Some(black_box(APP_USAGE)), Some(black_box(BUC_USAGE))))
    });
    group.bench_function("serde_json::Value", |b| {
        b.iter(|| {
            let a: serde_json::Value = serde_json::from_str(black_box(APP_USAGE)).unwrap();
            let u: serde_json::Value = serde_json::from_str(black_box(BUC_USAGE)).unwrap();
            (a, u)
        })
    });
    group.finish();
}

fn error_classification(c: &mut Criterion) {
    let mut group = c.benchmark_group("error_body");
    group.throughput(Throughput::Bytes(ERROR_BODY.len() as u64));
    group.bench_function("typed Error::from_response", |b| {
        b.iter(|| Error::from_response(400, black_box(ERROR_BODY), None, None))
    });
    group.bench_function("serde_json::Value", |b| {
        b.iter(|| serde_json::from_str::<serde_json::Value>(black_box(ERROR_BODY)).unwrap())
    });
    group.finish();
}

fn send_body(c: &mut Criterion) {
    let mut group = c.benchmark_group("send_body");
    group.bench_function("SendRequest quick replies (validated)", |b| {
        b.iter(|| {
            let replies = vec![
                QuickReply::text("Order status", "ORDER").unwrap(),
                QuickReply::text("Returns", "RETURNS").unwrap(),
                QuickReply::text("Talk to a person", "HUMAN").unwrap(),
            ];
            let request =
                SendRequest::quick_replies(black_box("1234"), "How can we help?", replies).unwrap();
            serde_json::to_string(&request).unwrap()
        })
    });
    group.bench_function("serde_json::json! (unvalidated)", |b| {
        b.iter(|| {
            let body = serde_json::json!({"recipient":{"id": black_box("1234")},"message":{"text":"How can we help?","quick_replies":[
                {"content_type":"text","title":"Order status","payload":"ORDER"},
                {"content_type":"text","title":"Returns","payload":"RETURNS"},
                {"content_type":"text","title":"Talk to a person","payload":"HUMAN"}]}});
            serde_json::to_string(&body).unwrap()
        })
    });
    group.finish();
}

criterion_group!(benches, usage_headers, error_classification, send_body);
criterion_main!(benches);
