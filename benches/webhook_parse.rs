//! Parse + normalize webhook notifications with `instagram_graph::webhook::parse`, next to parsing
//! the same bytes into a `serde_json::Value` (which does less: no normalization, no typed ids or
//! times).
//!
//! Run: `cargo bench -p igdm-suite --bench webhook_parse -- --warm-up-time 1 --measurement-time 3`.
//!
//! Cases: one ~1.5 KB messaging notification; a 10-entry batch (messages, reactions, reads,
//! postbacks, comments); the same batch with one malformed entry, which takes the slower
//! part-by-part path that keeps the nine good events.
//! Criterion prints MB/s and elements (events) per second; ns per event = 1e9 / (events/s).
#![allow(clippy::unwrap_used, missing_docs)]

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use instagram_graph::webhook;

/// One messaging entry of roughly 1.5 KB: a message with text, attachments, a story reply, a
/// quick reply and an ad referral, as Instagram sends it.
fn messaging_entry(i: usize) -> String {
    format!(
        r#"{{"id":"17841405726653026","time":1569262486134,"messaging":[{{"sender":{{"id":"56148790452725{i:02}"}},"recipient":{{"id":"17841405726653026"}},"timestamp":1569262485349,"message":{{"mid":"aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQxNDA1NzI2NjUzMDI2OjM0MDI4MjM2Njg0MTcxMDMwMTI0NDI1OTk0OTk0NzE0MzYwNTc1NDozMDk2MjEyNzE1NDc5MjUwMjQzNTg1MTA0MDQwMDc2MTk4NAZDZD","text":"Hi! Is the blue jacket from your last reel still available in size M? Also, do you ship to Lisbon, and how long would it take? \u00c9 para um presente \ud83c\udf81","attachments":[{{"type":"image","payload":{{"url":"https:\/\/lookaside.fbsbx.com\/ig_messaging_cdn\/?asset_id=17891480018194744&signature=AbzK3mQ9Xl0vS8dJv2pW1rN5uTqYc7hE4fG6iB0oLxM"}}}},{{"type":"ig_reel","payload":{{"url":"https:\/\/lookaside.fbsbx.com\/ig_messaging_cdn\/?asset_id=18012345678901234&signature=Qw9Er8Ty7Ui6Op5As4Df3Gh2Jk1LzXcVbNm","title":"New arrivals: autumn jackets","reel_video_id":18012345678901234}}}}],"quick_reply":{{"payload":"SIZE_M"}},"reply_to":{{"story":{{"url":"https:\/\/lookaside.fbsbx.com\/ig_messaging_cdn\/?asset_id=17999999999999999&signature=ZxCvBnMaSdFgHjKlQwErTy","id":"17999999999999999"}}}},"referral":{{"ref":"autumn_campaign","ad_id":"120200000000000001","source":"ADS","type":"OPEN_THREAD","ads_context_data":{{"ad_title":"Autumn jackets, 20% off","photo_url":"https:\/\/scontent.cdninstagram.com\/v\/t51.2885-15\/ad_photo.jpg","video_url":"https:\/\/scontent.cdninstagram.com\/v\/t51.2885-15\/ad_thumb.jpg"}}}}}}}}]}}"#
    )
}

/// The other entries of the batch: reactions, reads, postbacks, comments.
fn batch_entry(i: usize) -> String {
    match i % 5 {
        0 => messaging_entry(i),
        1 => format!(
            r#"{{"id":"17841405726653026","time":1569262486134,"messaging":[{{"sender":{{"id":"56148790452725{i:02}"}},"recipient":{{"id":"17841405726653026"}},"timestamp":1569262485349,"reaction":{{"mid":"aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQxNDA1NzI2NjUzMDI2","action":"react","reaction":"love","emoji":"\u2764\ufe0f"}}}}]}}"#
        ),
        2 => format!(
            r#"{{"id":"17841405726653026","time":1569262486134,"messaging":[{{"sender":{{"id":"56148790452725{i:02}"}},"recipient":{{"id":"17841405726653026"}},"timestamp":1569262485349,"read":{{"mid":"aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQxNDA1NzI2NjUzMDI2"}}}}]}}"#
        ),
        3 => format!(
            r#"{{"id":"17841405726653026","time":1502905976963,"messaging":[{{"sender":{{"id":"56148790452725{i:02}"}},"recipient":{{"id":"17841405726653026"}},"timestamp":1502905976377,"postback":{{"mid":"aWdfZAG1faXRlbToxOklHTWVzc2FnZAUlEOjE3ODQxNDA1NzI2NjUzMDI3","title":"Track my order","payload":"TRACK_ORDER"}}}}]}}"#
        ),
        _ => format!(
            r#"{{"id":"17841405726653026","time":1520622968,"changes":[{{"field":"comments","value":{{"from":{{"id":"56148790452725{i:02}","username":"shopper_{i}"}},"comment_id":"1789422797218612{i}","parent_id":"17894227972186000","text":"How much is shipping to Porto?","media":{{"id":"17918195224117851","media_product_type":"REELS"}}}}}}]}}"#
        ),
    }
}

fn bench(c: &mut Criterion) {
    let single = format!(
        r#"{{"object":"instagram","entry":[{}]}}"#,
        messaging_entry(0)
    );
    let entries: Vec<String> = (0..10).map(batch_entry).collect();
    let batch = format!(
        r#"{{"object":"instagram","entry":[{}]}}"#,
        entries.join(",")
    );

    // The same batch with one entry's timestamp spoiled: the part-by-part path isolates it.
    let spoiled = batch.replacen("\"timestamp\":1502905976377", "\"timestamp\":\"soon\"", 1);

    for (name, body, bad_parts) in [
        ("single_1_5kb", &single, 0),
        ("batch_10_entries", &batch, 0),
        ("batch_10_entries_one_malformed", &spoiled, 1),
    ] {
        let bytes = body.as_bytes();
        let parsed = webhook::parse(bytes).unwrap();
        assert_eq!(parsed.errors().len(), bad_parts, "{:?}", parsed.errors());
        let events = parsed.events().len() as u64;

        let mut group = c.benchmark_group(format!("webhook_parse/{name}"));
        group.throughput(Throughput::ElementsAndBytes {
            elements: events,
            bytes: bytes.len() as u64,
        });
        group.bench_function("instagram_graph::webhook::parse", |b| {
            b.iter(|| webhook::parse(std::hint::black_box(bytes)).unwrap())
        });
        group.bench_function("serde_json::Value", |b| {
            b.iter(|| {
                serde_json::from_slice::<serde_json::Value>(std::hint::black_box(bytes)).unwrap()
            })
        });
        group.finish();
        println!(
            "webhook_parse/{name}: {} bytes, {events} events",
            bytes.len()
        );
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
