//! `igdm rules check` and `igdm rules test` on the documented example files.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::process::{Command, Output};

fn examples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../automation-core/examples")
}

fn igdm(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_igdm"))
        .args(args)
        .output()
        .unwrap()
}

fn path(name: &str) -> String {
    examples().join(name).to_string_lossy().into_owned()
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn check_accepts_the_example_files() {
    for f in ["rules.toml", "rules.json"] {
        let o = igdm(&["rules", "check", &path(f)]);
        assert!(o.status.success(), "{f}: {}", stderr(&o));
        assert!(
            stdout(&o).contains("ok (6 rules, 1 flows)"),
            "{}",
            stdout(&o)
        );
    }
}

#[test]
fn check_reports_every_error_with_location() {
    let o = igdm(&["rules", "check", &path("bad-rules.toml")]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    assert!(out.contains("bad-rules.toml:5: `bad-template`, actions[0].text, template line 1, column 6: unknown variable `frist_name`"), "{out}");
    assert!(
        out.contains("bad-rules.toml:9: `bad-keyword`, match.keywords[1]"),
        "{out}"
    );
    let err = stderr(&o);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("igdm: ") && err.contains("and 1 more errors"),
        "{err}"
    );
}

#[test]
fn check_reports_syntax_errors_with_line_and_column() {
    let dir = std::env::temp_dir().join(format!("igdm-rules-cli-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let f = dir.join("broken.json");
    std::fs::write(
        &f,
        "{\n  \"rules\": [\n    {\"id\": \"x\", \"on\": [\"tweet\"]}\n  ]\n}\n",
    )
    .unwrap();
    let o = igdm(&["rules", "check", f.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    let err = stderr(&o);
    assert!(err.contains("line 3, column"), "{err}");
    assert!(err.contains("tweet"), "{err}");
    let missing = igdm(&["rules", "check", dir.join("nope.toml").to_str().unwrap()]);
    assert!(stderr(&missing).starts_with("igdm: cannot read"));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn test_prints_the_decision_for_a_comment() {
    let o = igdm(&[
        "rules",
        "test",
        "--rules",
        &path("rules.toml"),
        "--event",
        &path("events/comment-link.json"),
        "--seed",
        "3",
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let d: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(d["outcome"], "fired");
    assert_eq!(d["rule"], "reel-link");
    assert_eq!(d["matched"]["keyword"], "link");
    assert_eq!(d["actions"][0]["type"], "private_reply");
    let text = d["actions"][0]["text"].as_str().unwrap();
    assert!(
        text.ends_with(" Ana! Here is the link: https://example.com/reel"),
        "{text}"
    );
    assert_eq!(d["actions"][1]["type"], "public_reply");
    assert_eq!(
        d["actions"][2],
        serde_json::json!({"type": "add_tag", "tag": "lead"})
    );
}

#[test]
fn test_decides_dms_and_postbacks_from_json_rules() {
    let o = igdm(&[
        "rules",
        "test",
        "--rules",
        &path("rules.json"),
        "--event",
        &path("events/dm-price.json"),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let d: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(d["rule"], "price-dm");
    assert_eq!(
        d["actions"][0]["message"]["text"],
        "Hi Иван, here are our prices."
    );
    assert_eq!(d["actions"][1]["value"], "цена");

    let o = igdm(&[
        "rules",
        "test",
        "--rules",
        &path("rules.toml"),
        "--event",
        &path("events/postback-human.json"),
    ]);
    let d: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(d["rule"], "human");
    assert_eq!(d["actions"][0]["type"], "hand_off");
    assert_eq!(d["actions"][0]["until"], "2024-05-02T00:05:00Z");
}

#[test]
fn test_honours_now_and_rejects_bad_input() {
    // 8 days later the private reply is no longer allowed
    let o = igdm(&[
        "rules",
        "test",
        "--rules",
        &path("rules.toml"),
        "--event",
        &path("events/comment-link.json"),
        "--now",
        "2024-05-09T12:00:00Z",
    ]);
    let d: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(d["skipped"][0]["reason"]
        .as_str()
        .unwrap()
        .contains("7 days"));

    let o = igdm(&[
        "rules",
        "test",
        "--rules",
        &path("rules.toml"),
        "--event",
        &path("rules.json"),
    ]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).starts_with("igdm: ") && stderr(&o).contains("not a valid event"));
    let o = igdm(&[
        "rules",
        "test",
        "--rules",
        &path("rules.toml"),
        "--event",
        &path("events/dm-price.json"),
        "--now",
        "yesterday",
    ]);
    assert!(stderr(&o).contains("RFC 3339"));
    let o = igdm(&[
        "rules",
        "test",
        "--rules",
        &path("bad-rules.toml"),
        "--event",
        &path("events/dm-price.json"),
    ]);
    assert!(stderr(&o).contains("bad-rules.toml:5:"), "{}", stderr(&o));
}
