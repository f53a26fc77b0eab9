//! Export bundles: checksums verify, counts match the store, secrets never leave, tampering is
//! rejected.
#![allow(clippy::unwrap_used)]

mod common;

use std::collections::BTreeMap;
use std::io::{Cursor, Read, Write};

use common::{block_on, populate, t0};
use privacy_kit::cascade::Subject;
use privacy_kit::export::{export_subject, read_records, verify_bundle, MANIFEST_NAME};
use privacy_kit::schema::Schema;
use privacy_kit::store::{AuditLog, MemoryStore, Record};
use privacy_kit::ErrorKind;
use zip::write::SimpleFileOptions;
use zip::{ZipArchive, ZipWriter};

fn bundle(store: &MemoryStore, subject: &Subject) -> Vec<u8> {
    let schema = Schema::example();
    let out = block_on(export_subject(
        &schema,
        store,
        subject,
        t0(),
        Cursor::new(Vec::new()),
        3,
        Some(store),
    ))
    .unwrap();
    out.writer.into_inner()
}

fn entries(bytes: &[u8]) -> BTreeMap<String, Vec<u8>> {
    let mut a = ZipArchive::new(Cursor::new(bytes)).unwrap();
    let names: Vec<String> = a
        .file_names_raw()
        .map(|n| String::from_utf8(n.to_vec()).unwrap())
        .collect();
    names
        .into_iter()
        .map(|n| {
            let mut v = Vec::new();
            a.by_name(&n).unwrap().read_to_end(&mut v).unwrap();
            (n, v)
        })
        .collect()
}

fn rezip(files: &BTreeMap<String, Vec<u8>>) -> Vec<u8> {
    let mut z = ZipWriter::new(Cursor::new(Vec::new()));
    for (n, v) in files {
        z.start_file(n.as_str(), SimpleFileOptions::default())
            .unwrap();
        z.write_all(v).unwrap();
    }
    z.finish().unwrap().into_inner()
}

/// Records of org0, computed independently from the snapshot: every record linked (transitively)
/// to org0 over any relation.
fn expected_counts(store: &MemoryStore, org: &str) -> BTreeMap<String, u64> {
    let schema = Schema::example();
    let snap = store.snapshot();
    let mut reached = vec![("organization".to_owned(), org.to_owned())];
    let mut i = 0;
    while i < reached.len() {
        let (e, id) = reached[i].clone();
        for rel in schema.children_of(&e) {
            for r in snap.values() {
                let key = (r.entity.clone(), r.id.clone());
                if r.entity == rel.child
                    && r.links.get(&rel.link) == Some(&id)
                    && !reached.contains(&key)
                {
                    reached.push(key);
                }
            }
        }
        i += 1;
    }
    let mut counts = BTreeMap::new();
    for (e, _) in reached {
        *counts.entry(e).or_default() += 1;
    }
    counts
}

#[test]
fn bundle_verifies_and_counts_match_the_store() {
    for seed in 0..20u64 {
        let store = MemoryStore::new();
        populate(&store, seed);
        let bytes = bundle(&store, &Subject::organization("org0"));
        let manifest = verify_bundle(Cursor::new(&bytes)).unwrap();
        assert_eq!(manifest.subject, Subject::organization("org0"));
        assert_eq!(manifest.generated_at, t0());
        let expected = expected_counts(&store, "org0");
        for f in &manifest.files {
            assert_eq!(
                f.records,
                expected.get(&f.entity).copied().unwrap_or(0),
                "seed {seed}: {}",
                f.entity
            );
        }
        assert_eq!(manifest.files.len(), Schema::example().entities().len());
        // secrets never leave
        for (name, content) in entries(&bytes) {
            let text = String::from_utf8(content).unwrap();
            assert!(!text.contains("IGQVJ-secret"), "{name} leaks a token");
        }
        if manifest
            .files
            .iter()
            .any(|f| f.entity == "access_token" && f.records > 0)
        {
            let tokens = read_records(Cursor::new(&bytes), "access_token").unwrap();
            assert_eq!(tokens[0]["fields"]["token"], "[redacted]");
        }
    }
    // the export was recorded
    let store = MemoryStore::new();
    populate(&store, 1);
    bundle(&store, &Subject::organization("org0"));
    let log = block_on(store.entries(None, 10)).unwrap();
    assert_eq!(log.len(), 1);
}

#[test]
fn contact_bundle_includes_comments_once() {
    let store = MemoryStore::new();
    let t = t0();
    store.insert(Record::new("contact", "c", t).field("username", "ana"));
    store.insert(
        Record::new("comment", "k", t)
            .link("contact_id", "c")
            .field("text", "hi"),
    );
    store.insert(Record::new("conversation", "cv", t).link("contact_id", "c"));
    store.insert(
        Record::new("message", "m", t)
            .link("conversation_id", "cv")
            .field("text", "yo"),
    );
    let bytes = bundle(&store, &Subject::contact("c"));
    let m = verify_bundle(Cursor::new(&bytes)).unwrap();
    let by: BTreeMap<_, _> = m
        .files
        .iter()
        .map(|f| (f.entity.as_str(), f.records))
        .collect();
    assert_eq!(by["contact"], 1);
    assert_eq!(by["comment"], 1);
    assert_eq!(by["message"], 1);
    let msgs = read_records(Cursor::new(&bytes), "message").unwrap();
    assert_eq!(msgs[0]["fields"]["text"], "yo");
    assert_eq!(msgs[0]["links"]["conversation_id"], "cv");
}

#[test]
fn tampered_bundles_are_rejected() {
    let store = MemoryStore::new();
    let seed = (0..100)
        .find(|s| {
            let p = MemoryStore::new();
            populate(&p, *s);
            p.count("message") > 3
        })
        .unwrap();
    populate(&store, seed);
    let subject = Subject::organization("org0");
    let good = bundle(&store, &subject);
    let files = entries(&good);
    verify_bundle(Cursor::new(rezip(&files))).unwrap();

    let reject = |bytes: Vec<u8>, needle: &str| {
        let err = verify_bundle(Cursor::new(bytes)).unwrap_err();
        assert_eq!(err.kind(), &ErrorKind::Bundle);
        assert!(err.to_string().contains(needle), "{err}");
    };
    let name = files
        .iter()
        .find(|(n, v)| *n != MANIFEST_NAME && !v.is_empty())
        .unwrap()
        .0
        .clone();

    // a record altered
    let mut f = files.clone();
    let v = f.get_mut(&name).unwrap();
    v[2] ^= 0x20;
    reject(rezip(&f), "SHA-256");
    // a record removed
    let mut f = files.clone();
    let v = f.get_mut(&name).unwrap();
    let cut = v.iter().position(|b| *b == b'\n').unwrap() + 1;
    v.drain(..cut);
    reject(rezip(&f), "SHA-256");
    // a file added
    let mut f = files.clone();
    f.insert("extra.jsonl".into(), b"{}\n".to_vec());
    reject(rezip(&f), "does not list");
    // a file removed
    let mut f = files.clone();
    f.remove(&name);
    reject(rezip(&f), "missing");
    // the manifest edited to match an edited file's hash but not its count
    let mut f = files.clone();
    let mut manifest: serde_json::Value = serde_json::from_slice(&f[MANIFEST_NAME]).unwrap();
    for file in manifest["files"].as_array_mut().unwrap() {
        if file["name"] == name.as_str() {
            let n = file["records"].as_u64().unwrap();
            file["records"] = (n + 1).into();
        }
    }
    f.insert(MANIFEST_NAME.into(), serde_json::to_vec(&manifest).unwrap());
    reject(rezip(&f), "records");
    // unsupported version, missing manifest, not a zip
    let mut f = files.clone();
    let mut manifest: serde_json::Value = serde_json::from_slice(&f[MANIFEST_NAME]).unwrap();
    manifest["format_version"] = 99.into();
    f.insert(MANIFEST_NAME.into(), serde_json::to_vec(&manifest).unwrap());
    reject(rezip(&f), "version");
    let mut f = files.clone();
    f.remove(MANIFEST_NAME);
    reject(rezip(&f), "manifest");
    reject(b"not a zip".to_vec(), "zip");
    // any flipped byte of the raw archive is caught (or makes it unreadable)
    for i in (0..good.len()).step_by(7) {
        let mut bad = good.clone();
        bad[i] ^= 0x55;
        if let Ok(m) = verify_bundle(Cursor::new(&bad)) {
            // flips in unused header bytes (timestamps, version-made-by) do not alter data
            let again = verify_bundle(Cursor::new(&good)).unwrap();
            assert_eq!(m, again, "flip at {i} changed the verified content");
        }
    }
}
