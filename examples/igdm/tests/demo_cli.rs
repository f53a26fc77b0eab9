//! `igdm demo` as a process: the simulator and the service in one process, exit 0 only when
//! exactly the expected messages were sent, and the temporary database removed at the end.
#![allow(clippy::unwrap_used)]

use std::process::Command;
use std::time::{Duration, Instant};

#[test]
fn demo_connects_comments_and_sends_exactly_the_expected_replies() {
    let started = Instant::now();
    let out = Command::new(env!("CARGO_BIN_EXE_igdm"))
        .arg("demo")
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "exit {:?}\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    // The demo bounds itself at 30 s; well under that even on a busy machine.
    assert!(started.elapsed() < Duration::from_secs(60));
    for line in [
        "-> 200 OK {\"connected\":\"",
        "POST /api/automations -> 201 Created",
        "comments \"LINK please\"",
        "comment  from @alice   \"LINK please\"    -> fired (reel-link)",
        "comment  from @bob     \"Nice reel!\"     -> no_match",
        "comment  from @carol   \"link again?\"    -> no_match",
        "PrivateReply to @alice",
        "PrivateReply to @carol",
        "public reply under comment",
        "demo: ok, exactly the expected messages were sent",
    ] {
        assert!(stdout.contains(line), "missing `{line}` in:\n{stdout}");
    }
    assert_eq!(stdout.matches("PrivateReply to").count(), 2, "{stdout}");
    assert_eq!(
        stdout.matches("public reply under comment").count(),
        2,
        "{stdout}"
    );
    assert!(!stdout.contains("PrivateReply to @bob"), "{stdout}");
    // the temporary data directory is gone
    let dir = stdout
        .lines()
        .find_map(|l| l.split("(SQLite in ").nth(1))
        .map(|rest| rest.trim_end_matches(')'))
        .unwrap();
    assert!(!std::path::Path::new(dir).exists(), "{dir} was left behind");
}
