//! Published test vectors: GitHub's `X-Hub-Signature-256` example, Meta's `signed_request`
//! example, the Standard Webhooks reference vector, and the shared Meta fixtures (read at run
//! time from `<workspace>/../shared/fixtures/meta`, skipped when absent).

#![allow(clippy::unwrap_used)]

use std::path::PathBuf;

use serde_json::Value;
use webhook_verify::standard::{Headers, Secret, Webhook};
use webhook_verify::{meta, signed_request, ErrorKind};

fn fixtures_dir() -> Option<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..");
    let dir = root.join("..").join("shared").join("fixtures").join("meta");
    if dir.is_dir() {
        Some(dir)
    } else {
        println!("skipping: shared fixtures not found at {}", dir.display());
        None
    }
}

fn signature_vectors() -> Option<Value> {
    let path = fixtures_dir()?.join("signature_vectors.json");
    let text = std::fs::read_to_string(&path).unwrap();
    Some(serde_json::from_str(&text).unwrap())
}

fn hex_decode(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

#[test]
fn github_published_vector_signs_and_verifies() {
    let secret = b"It's a Secret to Everybody";
    let header = "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17";
    assert_eq!(
        meta::sign(secret, b"Hello, World!").unwrap().to_string(),
        header
    );
    meta::verify(secret, b"Hello, World!", header).unwrap();
    meta::verify(secret, b"Hello, World!", header.to_uppercase()).unwrap();
    meta::verify(secret, b"Hello, World!", format!("\t {header} \r\n")).unwrap();
}

#[test]
fn shared_x_hub_signature_256_vectors_verify() {
    let Some(vectors) = signature_vectors() else {
        return;
    };
    let list = vectors["x_hub_signature_256"].as_array().unwrap();
    assert!(!list.is_empty());
    for v in list {
        let secret = v["secret"].as_str().unwrap().as_bytes();
        let body = hex_decode(v["body_hex"].as_str().unwrap());
        let header = v["header"].as_str().unwrap();
        assert_eq!(meta::sign(secret, &body).unwrap().to_string(), header);
        meta::verify(secret, &body, header).unwrap();
        let err = meta::verify(b"not the secret", &body, header).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::SignatureMismatch);
    }
}

#[test]
fn shared_body_file_matches_the_github_vector() {
    let Some(dir) = fixtures_dir() else {
        return;
    };
    let body = std::fs::read(dir.join("x_hub_signature_256_body_1.bin")).unwrap();
    meta::verify(
        b"It's a Secret to Everybody",
        &body,
        "sha256=757107ea0eb2509fc211221cce984b8a37570b6d7586c22c46f4379c8b043e17",
    )
    .unwrap();
}

#[cfg(feature = "sha1")]
#[test]
fn shared_sha1_vectors_verify() {
    let Some(vectors) = signature_vectors() else {
        return;
    };
    for v in vectors["x_hub_signature_sha1"].as_array().unwrap() {
        let secret = v["secret"].as_str().unwrap().as_bytes();
        let body = hex_decode(v["body_hex"].as_str().unwrap());
        let header = v["header"].as_str().unwrap();
        assert_eq!(meta::sha1::sign(secret, &body).unwrap(), header);
        meta::sha1::verify(secret, &body, header).unwrap();
        let err = meta::sha1::verify(b"other", &body, header).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::SignatureMismatch);
    }
}

#[test]
fn meta_documented_signed_request_decodes() {
    let value = "vlXgu64BQGFSQrY0ZcJBZASMvYvTHu9GQ0YM9rjPSso.eyJhbGdvcml0aG0iOiJITUFDLVNIQTI1NiIsIjAiOiJwYXlsb2FkIn0";
    let request = signed_request::decode(value, b"secret").unwrap();
    assert_eq!(request.algorithm, "HMAC-SHA256");
    assert_eq!(request.user_id, None);
    assert_eq!(request.extra["0"], "payload");
    let err = signed_request::decode(value, b"Secret").unwrap_err();
    assert_eq!(err.kind(), ErrorKind::SignatureMismatch);
}

#[test]
fn shared_signed_request_vectors_decode_to_their_payloads() {
    let Some(vectors) = signature_vectors() else {
        return;
    };
    for v in vectors["signed_request"].as_array().unwrap() {
        let secret = v["app_secret"].as_str().unwrap().as_bytes();
        let value = v["signed_request"].as_str().unwrap();
        let expected: Value =
            serde_json::from_str(v["decoded_payload_json"].as_str().unwrap()).unwrap();
        let request = signed_request::decode(value, secret).unwrap();
        assert_eq!(request.to_json(), expected);
        // With the padding Meta leaves out, the value still decodes (the signature covers the
        // payload as sent, so only the signature part may be re-padded).
        let (sig, payload) = value.split_once('.').unwrap();
        let padded = format!("{sig}=.{payload}");
        assert_eq!(signed_request::decode(&padded, secret).unwrap(), request);
    }
}

#[test]
fn shared_data_deletion_payload_round_trips_through_a_signed_request() {
    let Some(dir) = fixtures_dir() else {
        return;
    };
    let json = std::fs::read(dir.join("data_deletion_payload_1.json")).unwrap();
    let value = signed_request::sign_json(&json, b"app-secret").unwrap();
    let request = signed_request::decode(&value, b"app-secret").unwrap();
    let expected: Value = serde_json::from_slice(&json).unwrap();
    assert_eq!(request.user_id.as_deref(), expected["user_id"].as_str());
    assert_eq!(request.issued_at, expected["issued_at"].as_i64());
    assert_eq!(request.expires, expected["expires"].as_i64());
    assert_eq!(request.to_json(), expected);
    let issued_at = request.issued_at.unwrap();
    request
        .ensure_fresh(std::time::Duration::from_secs(600), issued_at + 60)
        .unwrap();
    let expires = request.expires.unwrap();
    let err = request
        .ensure_fresh(std::time::Duration::from_secs(1 << 20), expires)
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Expired);
}

#[test]
fn standard_webhooks_reference_vector() {
    let secret = Secret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
    let webhook = Webhook::new(secret);
    let id = "msg_p5jXN8AQM9LWM0D4loKWxJek";
    let body = br#"{"test": 2432232314}"#;
    let expected = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=";
    assert_eq!(webhook.sign(id, 1_614_265_330, body), expected);
    webhook
        .verify(
            &Headers::new(id, "1614265330", expected),
            body,
            1_614_265_330,
        )
        .unwrap();
    // Several signatures, one of them right, and an unknown version: still valid.
    let several = format!("v1,bm9wZQ== v2,abc {expected}");
    webhook
        .verify(
            &Headers::new(id, "1614265330", &several),
            body,
            1_614_265_330,
        )
        .unwrap();
    // The same secret without the prefix is the same key.
    let bare = Webhook::new(Secret::parse("MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap());
    assert_eq!(bare.sign(id, 1_614_265_330, body), expected);
}
