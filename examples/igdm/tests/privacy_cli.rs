//! `igdm privacy`: presets and bundle verification, run through the built binary.
#![allow(clippy::unwrap_used)]

use std::io::{Cursor, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use privacy_kit::cascade::Subject;
use privacy_kit::clock::{Clock, SystemClock};
use privacy_kit::export::export_subject;
use privacy_kit::schema::Schema;
use privacy_kit::store::{MemoryStore, Record};

fn igdm(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_igdm"))
        .args(args)
        .output()
        .unwrap()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("igdm-privacy-cli-{}-{name}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A real bundle, made with the library.
fn bundle() -> Vec<u8> {
    let now = SystemClock.now();
    let store = MemoryStore::new();
    store.insert(Record::new("contact", "c1", now).field("username", "ana"));
    store.insert(Record::new("conversation", "cv1", now).link("contact_id", "c1"));
    for i in 0..5 {
        store.insert(
            Record::new("message", format!("m{i}"), now)
                .link("conversation_id", "cv1")
                .field("text", format!("hello {i}")),
        );
    }
    let schema = Schema::example();
    let rt = tokio::runtime::Builder::new_current_thread()
        .build()
        .unwrap();
    let export = rt
        .block_on(export_subject(
            &schema,
            &store,
            &Subject::contact("c1"),
            now,
            Cursor::new(Vec::new()),
            100,
            None,
        ))
        .unwrap();
    export.writer.into_inner()
}

/// The same bundle with `message.jsonl` altered by `edit`.
fn tampered(good: &[u8], edit: impl Fn(&mut Vec<u8>)) -> Vec<u8> {
    let mut archive = zip::ZipArchive::new(Cursor::new(good)).unwrap();
    let mut out = zip::ZipWriter::new(Cursor::new(Vec::new()));
    for i in 0..archive.len() {
        let mut f = archive.by_index(i).unwrap();
        let name = f.name().unwrap().into_owned();
        let mut content = Vec::new();
        f.read_to_end(&mut content).unwrap();
        if name == "message.jsonl" {
            edit(&mut content);
        }
        out.start_file(name.as_str(), zip::write::SimpleFileOptions::default())
            .unwrap();
        out.write_all(&content).unwrap();
    }
    out.finish().unwrap().into_inner()
}

fn write(path: &Path, bytes: &[u8]) -> String {
    std::fs::write(path, bytes).unwrap();
    path.to_str().unwrap().to_owned()
}

fn one_error_line(out: &Output) -> String {
    let stderr = String::from_utf8(out.stderr.clone()).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("igdm: "), "{stderr}");
    stderr
}

#[test]
fn presets_lists_every_shipped_policy() {
    let out = igdm(&["privacy", "presets"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for p in privacy_kit::retention::presets() {
        let line = text.lines().find(|l| l.starts_with(&p.name)).unwrap();
        assert!(line.contains(&p.keep_for.to_string()), "{line}");
        assert!(line.contains(&p.promise), "{line}");
    }
    assert!(text.contains("12 months") && text.contains("90 days") && text.contains("7 years"));

    let out = igdm(&["privacy", "presets", "--json"]);
    assert!(out.status.success());
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        json.as_array().unwrap().len(),
        privacy_kit::retention::presets().len()
    );
    assert_eq!(json[0]["name"], "dm-logs");
}

#[test]
fn verify_bundle_accepts_a_good_bundle_and_rejects_tampered_ones() {
    let dir = temp_dir("verify");
    let good = bundle();

    let path = write(&dir.join("good.zip"), &good);
    let out = igdm(&["privacy", "verify-bundle", &path]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(stdout.starts_with("valid"), "{stdout}");
    assert!(stdout.contains("7 records"), "{stdout}");

    // one changed character in a message
    let path = write(
        &dir.join("edited.zip"),
        &tampered(&good, |c| {
            let at = c.windows(5).position(|w| w == b"hello").unwrap();
            c[at] = b'j';
        }),
    );
    let out = igdm(&["privacy", "verify-bundle", &path]);
    assert_eq!(out.status.code(), Some(1));
    assert!(one_error_line(&out).contains("SHA-256"));

    // a message removed
    let path = write(
        &dir.join("cut.zip"),
        &tampered(&good, |c| {
            let end = c.iter().position(|b| *b == b'\n').unwrap() + 1;
            c.drain(..end);
        }),
    );
    let out = igdm(&["privacy", "verify-bundle", &path]);
    assert_eq!(out.status.code(), Some(1));
    assert!(one_error_line(&out).contains("message.jsonl"));

    // not a zip; missing file
    let path = write(&dir.join("junk.zip"), b"PK nothing here");
    let out = igdm(&["privacy", "verify-bundle", &path]);
    assert_eq!(out.status.code(), Some(1));
    assert!(one_error_line(&out).contains("zip"));
    let missing = dir.join("absent.zip");
    let out = igdm(&["privacy", "verify-bundle", missing.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    assert!(one_error_line(&out).contains("cannot open"));

    std::fs::remove_dir_all(&dir).unwrap();
}
