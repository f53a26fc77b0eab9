//! `igdm webhook ...`, run as the built binary. Expected signatures are computed
//! here with `hmac` and `sha2` directly, independently of `webhook-verify`.

#![allow(clippy::unwrap_used)]

use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::Value;
use sha2::Sha256;

const SECRET: &str = "cli-test-app-secret-77";

fn hmac_sha256(key: &[u8], data: &[u8]) -> Vec<u8> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).unwrap();
    mac.update(data);
    mac.finalize().into_bytes().to_vec()
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn igdm(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = Command::new(env!("CARGO_BIN_EXE_igdm"))
        .args(args)
        .env_remove("IGDM_APP_SECRET")
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        // The command may exit before reading (e.g. a usage error): a broken pipe is fine.
        let _ = child.stdin.take().unwrap().write_all(input);
    }
    child.wait_with_output().unwrap()
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

/// Asserts exit code 1 and exactly one `igdm: ...` line on stderr containing `needle`.
fn assert_refused(output: &Output, needle: &str) {
    let err = stderr(output);
    assert_eq!(output.status.code(), Some(1), "stderr: {err}");
    assert!(stdout(output).is_empty(), "stdout: {}", stdout(output));
    assert_eq!(err.lines().count(), 1, "{err:?}");
    assert!(err.starts_with("igdm: "), "{err:?}");
    assert!(err.contains(needle), "{err:?} lacks {needle:?}");
    assert!(!err.contains(SECRET), "{err:?} echoes the secret");
}

struct TempFile(PathBuf);

impl TempFile {
    fn new(name: &str, bytes: &[u8]) -> Self {
        let path =
            std::env::temp_dir().join(format!("igdm-webhook-cli-{}-{name}", std::process::id()));
        std::fs::write(&path, bytes).unwrap();
        Self(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

const BODY: &[u8] =
    "{\"object\":\"instagram\",\"entry\":[{\"id\":\"1\",\"text\":\"caf\u{e9} \u{1f600}\"}]}\n"
        .as_bytes();

#[test]
fn sign_prints_the_independently_computed_header() {
    let file = TempFile::new("sign.json", BODY);
    let output = igdm(&["webhook", "sign", "--secret", SECRET, file.path()], None);
    assert!(output.status.success(), "{}", stderr(&output));
    let expected = format!("sha256={}\n", hex(&hmac_sha256(SECRET.as_bytes(), BODY)));
    assert_eq!(stdout(&output), expected);
}

#[test]
fn the_secret_can_come_from_the_environment() {
    let output = Command::new(env!("CARGO_BIN_EXE_igdm"))
        .args(["webhook", "sign", "/dev/null"])
        .env("IGDM_APP_SECRET", SECRET)
        .output()
        .unwrap();
    let expected = format!("sha256={}\n", hex(&hmac_sha256(SECRET.as_bytes(), b"")));
    assert_eq!(stdout(&output), expected, "{}", stderr(&output));
}

#[test]
fn sign_reads_standard_input_and_matches_the_github_vector() {
    let output = igdm(
        &[
            "webhook",
            "sign",
            "--secret",
            "It's a Secret to Everybody",
            "-",
        ],
        Some(b"Hello, World!"),
    );
    assert_eq!(
        stdout(&output),
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17\n"
    );
}

#[test]
fn verify_accepts_a_genuine_signature_in_any_case() {
    let file = TempFile::new("verify.json", BODY);
    let header = format!("sha256={}", hex(&hmac_sha256(SECRET.as_bytes(), BODY)));
    for value in [
        header.clone(),
        header.to_uppercase(),
        format!("  {header}\n"),
    ] {
        let output = igdm(
            &[
                "webhook",
                "verify",
                "--secret",
                SECRET,
                "--signature",
                &value,
                file.path(),
            ],
            None,
        );
        assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
        assert_eq!(stdout(&output), "valid\n");
    }
}

#[test]
fn verify_accepts_any_of_several_secrets_and_reads_stdin() {
    let header = format!("sha256={}", hex(&hmac_sha256(b"second-secret", BODY)));
    let output = igdm(
        &[
            "webhook",
            "verify",
            "--secret",
            SECRET,
            "--secret",
            "second-secret",
            "--signature",
            &header,
            "-",
        ],
        Some(BODY),
    );
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert_eq!(stdout(&output), "valid\n");
}

#[test]
fn verify_refuses_a_tampered_body_or_wrong_secret() {
    let header = format!("sha256={}", hex(&hmac_sha256(SECRET.as_bytes(), BODY)));
    let mut tampered = BODY.to_vec();
    tampered[5] ^= 1;
    let output = igdm(
        &[
            "webhook",
            "verify",
            "--secret",
            SECRET,
            "--signature",
            &header,
            "-",
        ],
        Some(&tampered),
    );
    assert_refused(&output, "does not match");
    let output = igdm(
        &[
            "webhook",
            "verify",
            "--secret",
            "other",
            "--signature",
            &header,
            "-",
        ],
        Some(BODY),
    );
    assert_refused(&output, "does not match");
}

#[test]
fn verify_checks_a_legacy_sha1_header() {
    // Published vector (HMAC-SHA1 of "value" under "key").
    let header = "sha1=57443a4c052350a44638835d64fd66822f813319";
    let output = igdm(
        &[
            "webhook",
            "verify",
            "--secret",
            "key",
            "--signature",
            header,
            "-",
        ],
        Some(b"value"),
    );
    assert_eq!(stdout(&output), "valid\n", "{}", stderr(&output));
    let output = igdm(
        &[
            "webhook",
            "verify",
            "--secret",
            "key",
            "--signature",
            header,
            "-",
        ],
        Some(b"values"),
    );
    assert_refused(&output, "does not match");
    let output = igdm(
        &[
            "webhook",
            "verify",
            "--secret",
            "key",
            "--signature",
            "sha1=abc",
            "-",
        ],
        Some(b"value"),
    );
    assert_refused(&output, "40 hex digits");
}

#[test]
fn verify_explains_malformed_headers() {
    let digest = hex(&hmac_sha256(SECRET.as_bytes(), BODY));
    let cases = [
        (digest.clone(), "sha256="),
        (format!("sha256={}", &digest[..60]), "found 60"),
        (format!("sha256=zz{}", &digest[2..]), "not a hex digit"),
        (String::from(" "), "missing"),
    ];
    for (header, needle) in cases {
        let output = igdm(
            &[
                "webhook",
                "verify",
                "--secret",
                SECRET,
                "--signature",
                &header,
                "-",
            ],
            Some(BODY),
        );
        assert_refused(&output, needle);
    }
}

#[test]
fn verify_reports_an_unreadable_file_and_an_empty_secret() {
    let output = igdm(
        &[
            "webhook",
            "verify",
            "--secret",
            SECRET,
            "--signature",
            "sha256=00",
            "/nonexistent/body.json",
        ],
        None,
    );
    assert_refused(&output, "cannot read `/nonexistent/body.json`");
    let output = igdm(&["webhook", "sign", "--secret", "", "-"], Some(BODY));
    assert_refused(&output, "secret");
}

#[test]
fn missing_arguments_are_usage_errors() {
    let output = igdm(&["webhook", "verify", "--secret", SECRET, "-"], Some(BODY));
    assert_eq!(output.status.code(), Some(2));
    let output = igdm(&["webhook", "sign", "-"], Some(BODY));
    assert_eq!(output.status.code(), Some(2));
}

/// A signed_request built here, without webhook-verify.
fn signed_request(secret: &[u8], payload: &Value) -> String {
    let encoded = URL_SAFE_NO_PAD.encode(payload.to_string());
    let sig = URL_SAFE_NO_PAD.encode(hmac_sha256(secret, encoded.as_bytes()));
    format!("{sig}.{encoded}")
}

#[test]
fn signed_request_prints_the_payload_as_json() {
    let payload = serde_json::json!({
        "algorithm": "HMAC-SHA256",
        "expires": 1_291_840_400,
        "issued_at": 1_291_836_800,
        "user_id": "218471",
        "profile_id": "17841400000000001"
    });
    let value = signed_request(SECRET.as_bytes(), &payload);
    let output = igdm(
        &["webhook", "signed-request", "--secret", SECRET, &value],
        None,
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let printed: Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(printed, payload);

    // From standard input, as the form field Meta posts.
    let form = format!("signed_request={value}\n");
    let output = igdm(
        &[
            "webhook",
            "signed-request",
            "--secret",
            "old",
            "--secret",
            SECRET,
            "-",
        ],
        Some(form.as_bytes()),
    );
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        serde_json::from_str::<Value>(&stdout(&output)).unwrap(),
        payload
    );
}

#[test]
fn signed_request_refusals() {
    let good = serde_json::json!({"algorithm": "HMAC-SHA256", "user_id": "1", "issued_at": 1_000});
    let value = signed_request(SECRET.as_bytes(), &good);
    let output = igdm(
        &["webhook", "signed-request", "--secret", "wrong", &value],
        None,
    );
    assert_refused(&output, "does not match");

    let output = igdm(
        &[
            "webhook",
            "signed-request",
            "--secret",
            SECRET,
            "--max-age",
            "60",
            &value,
        ],
        None,
    );
    assert_refused(&output, "s old");

    let sha1 = serde_json::json!({"algorithm": "HMAC-SHA1", "user_id": "1"});
    let output = igdm(
        &[
            "webhook",
            "signed-request",
            "--secret",
            SECRET,
            &signed_request(SECRET.as_bytes(), &sha1),
        ],
        None,
    );
    assert_refused(&output, "HMAC-SHA1");

    let output = igdm(
        &["webhook", "signed-request", "--secret", SECRET, "garbage"],
        None,
    );
    assert_refused(&output, "malformed");
}

#[test]
fn signed_request_decodes_the_shared_published_vectors() {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join("../shared/fixtures/meta");
    let Ok(text) = std::fs::read_to_string(dir.join("signature_vectors.json")) else {
        println!("skipping: shared fixtures not found at {}", dir.display());
        return;
    };
    let vectors: Value = serde_json::from_str(&text).unwrap();
    for v in vectors["signed_request"].as_array().unwrap() {
        let output = igdm(
            &[
                "webhook",
                "signed-request",
                "--secret",
                v["app_secret"].as_str().unwrap(),
                v["signed_request"].as_str().unwrap(),
            ],
            None,
        );
        assert!(output.status.success(), "{}", stderr(&output));
        let printed: Value = serde_json::from_str(&stdout(&output)).unwrap();
        let expected: Value =
            serde_json::from_str(v["decoded_payload_json"].as_str().unwrap()).unwrap();
        assert_eq!(printed, expected);
    }
    for v in vectors["x_hub_signature_256"].as_array().unwrap() {
        let body = v["body_utf8"].as_str().unwrap();
        let output = igdm(
            &[
                "webhook",
                "verify",
                "--secret",
                v["secret"].as_str().unwrap(),
                "--signature",
                v["header"].as_str().unwrap(),
                "-",
            ],
            Some(body.as_bytes()),
        );
        assert_eq!(stdout(&output), "valid\n", "{}", stderr(&output));
    }
}
