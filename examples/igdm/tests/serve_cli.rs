//! `igdm serve` as a process: help, bad configuration, and a running server answering /healthz.
#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

fn igdm() -> Command {
    Command::new(env!("CARGO_BIN_EXE_igdm"))
}

#[test]
fn help_documents_every_setting_and_its_environment_variable() {
    let out = igdm().args(["serve", "--help"]).output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for env in [
        "IGDM_CONFIG",
        "IGDM_LISTEN",
        "IGDM_DATA_DIR",
        "IGDM_DATABASE_URL",
        "IGDM_APP_SECRET",
        "IGDM_VERIFY_TOKEN",
        "IGDM_GRAPH_BASE_URL",
        "IGDM_VAULT_KEY",
        "IGDM_API_KEYS",
    ] {
        assert!(help.contains(env), "{env} missing from:\n{help}");
    }
}

#[test]
fn a_bad_configuration_is_one_line_and_a_failure() {
    let dir = std::env::temp_dir().join(format!("igdm-serve-bad-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("igdm.toml");
    std::fs::write(
        &file,
        "listen = \"127.0.0.1:0\"\ngraph_base_url = \"nope\"\n",
    )
    .unwrap();
    let out = igdm()
        .args(["serve", "--config"])
        .arg(&file)
        .env_remove("IGDM_GRAPH_BASE_URL")
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!out.status.success());
    let err = String::from_utf8(out.stderr).unwrap();
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with("igdm: ") && err.contains("graph_base_url"),
        "{err}"
    );
}

#[test]
fn the_server_starts_on_a_fresh_data_dir_and_answers_health_checks() {
    let dir = std::env::temp_dir().join(format!("igdm-serve-run-{}", std::process::id()));
    let mut child = igdm()
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&dir)
        .env("IGDM_LOG", "warn")
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut line = String::new();
    BufReader::new(stderr).read_line(&mut line).unwrap();
    let base = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .map(|w| w.to_string());
    let health = base.as_ref().map(|base| {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        rt.block_on(async {
            let h = reqwest::get(format!("{base}/healthz")).await.unwrap();
            let r = reqwest::get(format!("{base}/readyz")).await.unwrap();
            (h.status().as_u16(), r.status().as_u16())
        })
    });
    let _ = child.kill();
    let _ = child.wait();
    let db_exists = dir.join("igdm.db").exists();
    let key_exists = dir.join("vault.key").exists();
    let _ = std::fs::remove_dir_all(&dir);
    assert_eq!(health, Some((200, 200)), "{line}");
    assert!(db_exists && key_exists);
}
