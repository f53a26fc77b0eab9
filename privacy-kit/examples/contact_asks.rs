//! A contact asks for their data, then for its deletion: an export bundle (zip of JSON Lines with a
//! manifest and checksums), then a deletion cascade with a receipt whose confirmation code looks
//! it up again, all on the in-memory store and the example schema.
//!
//! Run: `cargo run -p privacy-kit --example contact_asks`
//!
//! A backend does the same through its own `RecordStore`/`ReceiptStore` implementation over its
//! database (the reference service's is `examples/igdm/src/service/db/privacy.rs`).

use std::io::Cursor;

use privacy_kit::audit::RequestSource;
use privacy_kit::cascade::{self, DeletionOptions, DeletionStatus, Subject};
use privacy_kit::chrono::{Duration, TimeZone, Utc};
use privacy_kit::clock::ManualClock;
use privacy_kit::export;
use privacy_kit::schema::{Pseudonymizer, Schema};
use privacy_kit::store::{MemoryStore, Record};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let schema = Schema::example();
    let store = MemoryStore::new();
    let t = Utc
        .with_ymd_and_hms(2026, 3, 1, 12, 0, 0)
        .single()
        .ok_or("not a date")?;
    // Ana wrote twice in one conversation; Ben is another contact of the same account.
    store.insert(Record::new("contact", "ana", t).field("username", "ana.flowers"));
    store.insert(Record::new("contact", "ben", t).field("username", "ben"));
    store.insert(Record::new("conversation", "cv-ana", t).link("contact_id", "ana"));
    for (id, text) in [
        ("m1", "do you ship to Lyon?"),
        ("m2", "my address is 3 rue ..."),
    ] {
        store.insert(
            Record::new("message", id, t + Duration::minutes(1))
                .link("conversation_id", "cv-ana")
                .field("text", text),
        );
    }

    // 1. "Send me my data": every record reachable from her, with a manifest.
    let ana = Subject::contact("ana");
    let made = export::export_subject(&schema, &store, &ana, t, Cursor::new(Vec::new()), 100, None)
        .await?;
    let bundle = made.writer.into_inner();
    let manifest = export::verify_bundle(Cursor::new(&bundle))?;
    println!("export of {}: {} bytes", manifest.subject.id, bundle.len());
    for file in &manifest.files {
        let digest = file.sha256.get(..12).unwrap_or(&file.sha256);
        println!(
            "  {:<24} {} record(s), sha256 {digest}",
            file.name, file.records
        );
    }
    let messages = export::read_records(Cursor::new(&bundle), "message")?;
    assert_eq!(messages.len(), 2);

    // 2. "Delete my data": a receipt first (its code is what the person keeps), then the cascade.
    let later = t + Duration::days(2);
    let receipt = cascade::request_deletion(&store, None, ana, RequestSource::User, later).await?;
    println!("deletion requested: code {}", receipt.confirmation_code);
    let pseudonymizer = Pseudonymizer::random()?;
    let options = DeletionOptions::new(&pseudonymizer);
    let done = cascade::run_deletion(
        &schema,
        &store,
        &store,
        receipt,
        &options,
        &ManualClock::new(later),
    )
    .await?;
    assert_eq!(done.status, DeletionStatus::Done);
    for (entity, counts) in &done.counts {
        println!("  {entity:<24} {} deleted", counts.deleted);
    }
    // the status page looks the receipt up by its code
    let looked_up = cascade::deletion_status(&store, &done.confirmation_code).await?;
    assert_eq!(looked_up.status, DeletionStatus::Done);
    assert_eq!((store.count("message"), store.count("contact")), (0, 1));
    println!("Ana's data is gone; Ben's contact stays");
    Ok(())
}
