//! `igdm sim`: the built binary serves the simulator; `igdm graph` talks to it.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const BIN: &str = env!("CARGO_BIN_EXE_igdm");

/// Kills the simulator process even when an assertion fails.
struct Running(std::process::Child);

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn sim_serves_a_seeded_account_until_killed() {
    let child = Command::new(BIN)
        .args([
            "sim",
            "--listen",
            "127.0.0.1:0",
            "--app-secret",
            "s3cret",
            "--account",
            "cli_shop",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut running = Running(child);
    let stdout = running.0.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let (mut base, mut token) = (None, None);
    let deadline = Instant::now() + Duration::from_secs(60);
    while base.is_none() || token.is_none() {
        assert!(
            Instant::now() < deadline,
            "the simulator did not print its address"
        );
        let line = lines.next().unwrap().unwrap();
        if let Some(url) = line.strip_prefix("instagram-sim listening on ") {
            base = Some(url.to_owned());
        }
        if let Some(t) = line.strip_prefix("access_token: ") {
            token = Some(t.to_owned());
        }
    }
    let output = Command::new(BIN)
        .args([
            "graph",
            "--api-base",
            &base.unwrap(),
            "--token",
            &token.unwrap(),
            "me",
        ])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let text = String::from_utf8_lossy(&output.stdout);
    assert!(text.contains("\"cli_shop\""), "{text}");
}

#[test]
fn bad_webhook_url_is_one_line() {
    let output = Command::new(BIN)
        .args([
            "sim",
            "--listen",
            "127.0.0.1:0",
            "--webhook-url",
            "not a url",
        ])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.starts_with("igdm: --webhook-url"), "{stderr}");
}
