//! `igdm webhook parse` run as a process.
#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../../instagram-graph/tests/fixtures")
        .join(name)
}

fn igdm(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_igdm"))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = child.stdin.take().unwrap();
    if let Some(body) = stdin {
        pipe.write_all(body).unwrap();
    }
    drop(pipe);
    child.wait_with_output().unwrap()
}

fn lines(output: &Output) -> Vec<serde_json::Value> {
    String::from_utf8(output.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

#[test]
fn prints_one_json_line_per_event() {
    let path = fixture("messages_echo_deleted_unsupported.json");
    let out = igdm(&["webhook", "parse", path.to_str().unwrap()], None);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stderr.is_empty());
    let events = lines(&out);
    let mids: Vec<&str> = events.iter().map(|e| e["mid"].as_str().unwrap()).collect();
    assert_eq!(mids, ["m-echo", "m-self", "m-unsent", "m-unsupported"]);
    assert_eq!(events[0]["kind"], "message");
    assert_eq!(events[0]["is_echo"], true);
    assert_eq!(events[2]["is_deleted"], true);
    // ids as strings, times in RFC 3339 UTC.
    assert_eq!(events[0]["account_id"], "17841400000000001");
    assert_eq!(events[0]["time"], "2023-11-14T22:13:22.001Z");
}

#[test]
fn numeric_ids_come_out_as_strings() {
    let body = br#"{"object":"page","entry":[{"id":12345654332,"time":1457764198246,"messaging":[{"sender":{"id":987654321432},"recipient":{"id":12345654332},"timestamp":"1457764197","referral":{"ref":"r","source":"SHORTLINK","type":"OPEN_THREAD"}}]}]}"#;
    let out = igdm(&["webhook", "parse", "-"], Some(body));
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let events = lines(&out);
    assert_eq!(events.len(), 1);
    assert_eq!(events[0]["object"], "page");
    assert_eq!(events[0]["account_id"], "12345654332");
    assert_eq!(events[0]["sender"], "987654321432");
    assert_eq!(events[0]["time"], "2016-03-12T06:29:57Z");
    assert_eq!(events[0]["kind"], "referral");
    assert_eq!(events[0]["ref"], "r");
}

#[test]
fn reads_standard_input() {
    let body = std::fs::read(fixture("mentions.json")).unwrap();
    let out = igdm(&["webhook", "parse", "-"], Some(&body));
    assert!(out.status.success());
    let events = lines(&out);
    assert_eq!(events.len(), 2);
    assert!(events.iter().all(|e| e["kind"] == "mention"));
    assert_eq!(events[1]["media_id"], "18000000000000015");
}

fn one_line_failure(out: &Output) -> String {
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8(out.stderr.clone()).unwrap();
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("igdm: "), "{stderr}");
    stderr
}

#[test]
fn input_that_is_not_a_notification_fails_with_one_line() {
    let out = igdm(&["webhook", "parse", "-"], Some(b"{ not json"));
    assert!(out.stdout.is_empty());
    assert!(one_line_failure(&out).contains("not valid JSON"));

    let out = igdm(
        &["webhook", "parse", "-"],
        Some(br#"{"id":"17841405726653026"}"#),
    );
    assert!(out.stdout.is_empty());
    assert!(one_line_failure(&out).contains("not a webhook notification"));

    let out = igdm(&["webhook", "parse", "/nonexistent/body.json"], None);
    assert!(one_line_failure(&out).contains("cannot read /nonexistent/body.json"));
}

#[test]
fn partial_notifications_print_the_good_events_then_fail() {
    let path = fixture("partially_malformed.json");
    let out = igdm(&["webhook", "parse", path.to_str().unwrap()], None);
    let events = lines(&out);
    assert_eq!(events.len(), 3);
    let reason = one_line_failure(&out);
    assert!(
        reason.contains("4 parts of the notification could not be read"),
        "{reason}"
    );
    assert!(
        reason.contains("entry[1].messaging[0].timestamp"),
        "{reason}"
    );
}
