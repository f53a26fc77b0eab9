//! One test per error kind: the kind is right and the message says what went wrong without
//! echoing the secret.

#![allow(clippy::unwrap_used)]

use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use webhook_verify::meta::{self, Subscription};
use webhook_verify::signed_request::{self, SignedRequest};
use webhook_verify::standard::{Headers, Secret, Webhook};
use webhook_verify::{Error, ErrorKind};

const SECRET: &str = "s3cr3t-app-secret-value-0123";

fn assert_kind(result: Result<impl std::fmt::Debug, Error>, kind: ErrorKind, needle: &str) {
    let err = result.unwrap_err();
    assert_eq!(err.kind(), kind, "{err}");
    let message = err.to_string();
    assert!(message.contains(needle), "{message:?} lacks {needle:?}");
    assert!(!message.contains(SECRET), "{message:?} echoes the secret");
    assert!(!format!("{err:?}").contains(SECRET));
}

fn header_for(body: &[u8]) -> String {
    meta::sign(SECRET.as_bytes(), body).unwrap().to_string()
}

#[test]
fn missing_header() {
    assert_kind(
        meta::verify(SECRET.as_bytes(), b"{}", "  "),
        ErrorKind::MissingHeader,
        "missing",
    );
}

#[test]
fn missing_prefix() {
    let header = header_for(b"{}");
    let bare = header.trim_start_matches("sha256=");
    assert_kind(
        meta::verify(SECRET.as_bytes(), b"{}", bare),
        ErrorKind::MissingPrefix,
        "sha256=",
    );
    assert_kind(
        meta::verify(SECRET.as_bytes(), b"{}", header.replace("sha256=", "sha1=")),
        ErrorKind::MissingPrefix,
        "sha256=",
    );
}

#[test]
fn wrong_length() {
    let header = header_for(b"{}");
    assert_kind(
        meta::verify(SECRET.as_bytes(), b"{}", &header[..header.len() - 1]),
        ErrorKind::WrongLength,
        "found 63",
    );
    assert_kind(
        meta::verify(SECRET.as_bytes(), b"{}", format!("{header}00")),
        ErrorKind::WrongLength,
        "found 66",
    );
}

#[test]
fn not_hex() {
    let header = header_for(b"{}");
    let broken = format!("sha256=x{}", &header[8..]);
    assert_kind(
        meta::verify(SECRET.as_bytes(), b"{}", broken),
        ErrorKind::NotHex,
        "position 0",
    );
}

#[test]
fn empty_secret() {
    let header = header_for(b"{}");
    assert_kind(
        meta::verify(b"", b"{}", &header),
        ErrorKind::EmptySecret,
        "secret",
    );
    assert_kind(meta::sign(b"", b"{}"), ErrorKind::EmptySecret, "secret");
    let none: [&str; 0] = [];
    assert_kind(
        meta::verify_with_any(&none, b"{}", &header),
        ErrorKind::EmptySecret,
        "secret",
    );
    assert_kind(
        meta::verify_with_any(&[SECRET, ""], b"{}", &header),
        ErrorKind::EmptySecret,
        "secret",
    );
    assert_kind(
        signed_request::decode("a.b", b""),
        ErrorKind::EmptySecret,
        "secret",
    );
    assert_kind(
        Subscription::new(Some("subscribe"), Some(""), Some("1")).verify(""),
        ErrorKind::EmptySecret,
        "secret",
    );
}

#[test]
fn signature_mismatch_names_the_number_of_secrets() {
    let header = header_for(b"{}");
    assert_kind(
        meta::verify(SECRET.as_bytes(), b"{ }", &header),
        ErrorKind::SignatureMismatch,
        "raw body",
    );
    assert_kind(
        meta::verify_with_any(&["a", "b", "c"], b"{}", &header),
        ErrorKind::SignatureMismatch,
        "none of the 3 secrets",
    );
}

#[test]
fn handshake_refusals() {
    let token = SECRET;
    assert_kind(
        Subscription::new(None, Some(token), Some("1")).verify(token),
        ErrorKind::HandshakeMissingParameter,
        "hub.mode",
    );
    assert_kind(
        Subscription::new(Some("subscribe"), None, Some("1")).verify(token),
        ErrorKind::HandshakeMissingParameter,
        "hub.verify_token",
    );
    assert_kind(
        Subscription::from_query("hub.mode=subscribe&hub.verify_token=x").verify("x"),
        ErrorKind::HandshakeMissingParameter,
        "hub.challenge",
    );
    assert_kind(
        Subscription::new(Some("unsubscribe"), Some(token), Some("1")).verify(token),
        ErrorKind::HandshakeWrongMode,
        "subscribe",
    );
    assert_kind(
        Subscription::new(Some("subscribe"), Some("guess"), Some("1")).verify(token),
        ErrorKind::HandshakeTokenMismatch,
        "verify token",
    );
    for challenge in ["", "<script>", "a b", &"9".repeat(257)] {
        assert_kind(
            Subscription::new(Some("subscribe"), Some(token), Some(challenge)).verify(token),
            ErrorKind::HandshakeInvalidChallenge,
            "challenge",
        );
    }
}

#[test]
fn handshake_from_raw_query_accepts_meta_request() {
    let query =
        format!("?hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token={SECRET}&x=1");
    assert_eq!(
        Subscription::from_query(&query).verify(SECRET).unwrap(),
        "1158201444"
    );
    let debug = format!("{:?}", Subscription::from_query(&query));
    assert!(!debug.contains(SECRET), "{debug}");
}

#[test]
fn malformed_signed_request() {
    let s = SECRET.as_bytes();
    assert_kind(
        signed_request::decode("no-dot", s),
        ErrorKind::MalformedSignedRequest,
        "`.`",
    );
    assert_kind(
        signed_request::decode(".payload", s),
        ErrorKind::MalformedSignedRequest,
        "empty",
    );
    assert_kind(
        signed_request::decode("!!!.eyJ9", s),
        ErrorKind::MalformedSignedRequest,
        "base64url",
    );
    assert_kind(
        signed_request::decode("AAAA.eyJ9", s),
        ErrorKind::MalformedSignedRequest,
        "32 bytes",
    );
    let not_json = signed_request::sign_json(b"[1,2]", s).unwrap();
    assert_kind(
        signed_request::decode(&not_json, s),
        ErrorKind::MalformedSignedRequest,
        "JSON",
    );
    let no_alg = signed_request::sign_json(br#"{"user_id":"1"}"#, s).unwrap();
    assert_kind(
        signed_request::decode(&no_alg, s),
        ErrorKind::MalformedSignedRequest,
        "algorithm",
    );
    let bad_user =
        signed_request::sign_json(br#"{"algorithm":"HMAC-SHA256","user_id":[1]}"#, s).unwrap();
    assert_kind(
        signed_request::decode(&bad_user, s),
        ErrorKind::MalformedSignedRequest,
        "user_id",
    );
    let bad_time =
        signed_request::sign_json(br#"{"algorithm":"HMAC-SHA256","issued_at":"soon"}"#, s).unwrap();
    assert_kind(
        signed_request::decode(&bad_time, s),
        ErrorKind::MalformedSignedRequest,
        "issued_at",
    );
    // A payload part that is not base64url, correctly signed as sent.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(s).unwrap();
    mac.update(b"@@@");
    let sig = URL_SAFE_NO_PAD.encode(mac.finalize().into_bytes());
    assert_kind(
        signed_request::decode(&format!("{sig}.@@@"), s),
        ErrorKind::MalformedSignedRequest,
        "payload part is not base64url",
    );
    let no_issued = signed_request::decode(
        &signed_request::sign_json(br#"{"algorithm":"HMAC-SHA256"}"#, s).unwrap(),
        s,
    )
    .unwrap();
    assert_kind(
        no_issued.ensure_fresh(Duration::from_secs(60), 0),
        ErrorKind::MalformedSignedRequest,
        "issued_at",
    );
}

#[test]
fn signed_request_fields_are_typed_and_the_rest_is_kept() {
    let s = SECRET.as_bytes();
    let json = br#"{"algorithm":"hmac-sha256","user_id":218471,"issued_at":"1291836800","expires":0,"oauth_token":"EAAB-token","profile_id":"7"}"#;
    let request = signed_request::decode(&signed_request::sign_json(json, s).unwrap(), s).unwrap();
    assert_eq!(request.user_id.as_deref(), Some("218471"));
    assert_eq!(request.issued_at, Some(1_291_836_800));
    assert_eq!(request.expires, Some(0));
    assert_eq!(request.oauth_token.as_deref(), Some("EAAB-token"));
    assert_eq!(request.extra.len(), 1);
    assert_eq!(request.extra["profile_id"], "7");
    let debug = format!("{request:?}");
    assert!(!debug.contains("EAAB-token"), "{debug}");
    assert!(debug.contains("218471"));
    // `expires: 0` means no expiry.
    request
        .ensure_fresh(Duration::from_secs(60), 1_291_836_830)
        .unwrap();
}

#[test]
fn unsupported_algorithm() {
    let s = SECRET.as_bytes();
    let value =
        signed_request::sign_json(br#"{"algorithm":"HMAC-SHA1","user_id":"1"}"#, s).unwrap();
    assert_kind(
        signed_request::decode(&value, s),
        ErrorKind::UnsupportedAlgorithm,
        "HMAC-SHA1",
    );
}

#[test]
fn expired_signed_request() {
    let mut request = SignedRequest::new("1", 1_000);
    assert_kind(
        request.ensure_fresh(Duration::from_secs(60), 1_061),
        ErrorKind::Expired,
        "61 s old",
    );
    assert_kind(
        request.ensure_fresh(Duration::from_secs(60), 900),
        ErrorKind::Expired,
        "future",
    );
    request.expires = Some(1_010);
    request
        .ensure_fresh(Duration::from_secs(60), 1_009)
        .unwrap();
    assert_kind(
        request.ensure_fresh(Duration::from_secs(60), 1_010),
        ErrorKind::Expired,
        "expires",
    );
    // Extreme clocks do not overflow.
    assert_kind(
        request.ensure_fresh(Duration::MAX, i64::MAX),
        ErrorKind::Expired,
        "expires",
    );
    let mut old = SignedRequest::new("1", i64::MIN);
    old.expires = None;
    assert_kind(
        old.ensure_fresh(Duration::from_secs(1), i64::MAX),
        ErrorKind::Expired,
        "old",
    );
}

#[test]
fn invalid_standard_secret() {
    assert_kind(
        Secret::parse("whsec_%%%"),
        ErrorKind::InvalidSecret,
        "base64",
    );
    assert_kind(Secret::parse("whsec_"), ErrorKind::InvalidSecret, "empty");
    assert_kind(
        Secret::from_key_bytes(&[0; 23]),
        ErrorKind::InvalidSecret,
        "24 to 64",
    );
    assert_kind(
        Secret::from_key_bytes(&[0; 65]),
        ErrorKind::InvalidSecret,
        "24 to 64",
    );
}

fn standard() -> (Webhook, String) {
    let webhook = Webhook::new(Secret::from_key_bytes(SECRET.as_bytes()).unwrap());
    let sig = webhook.sign("msg_1", 1_000_000, b"{}");
    (webhook, sig)
}

#[test]
fn standard_missing_headers() {
    let (webhook, sig) = standard();
    assert_kind(
        webhook.verify(&Headers::new("", "1000000", &sig), b"{}", 1_000_000),
        ErrorKind::MissingHeader,
        "webhook-id",
    );
    assert_kind(
        webhook.verify(&Headers::new("msg_1", " ", &sig), b"{}", 1_000_000),
        ErrorKind::MissingHeader,
        "webhook-timestamp",
    );
    assert_kind(
        webhook.verify(&Headers::new("msg_1", "1000000", ""), b"{}", 1_000_000),
        ErrorKind::MissingHeader,
        "webhook-signature",
    );
}

#[test]
fn standard_invalid_timestamp() {
    let (webhook, sig) = standard();
    assert_kind(
        webhook.verify(&Headers::new("msg_1", "1e6", &sig), b"{}", 1_000_000),
        ErrorKind::InvalidTimestamp,
        "integer",
    );
}

#[test]
fn standard_timestamp_too_old_and_too_new() {
    let (webhook, sig) = standard();
    let headers = Headers::new("msg_1", "1000000", &sig);
    webhook.verify(&headers, b"{}", 1_000_300).unwrap();
    webhook.verify(&headers, b"{}", 999_700).unwrap();
    assert_kind(
        webhook.verify(&headers, b"{}", 1_000_301),
        ErrorKind::TimestampTooOld,
        "301 s in the past",
    );
    assert_kind(
        webhook.verify(&headers, b"{}", 999_699),
        ErrorKind::TimestampTooNew,
        "301 s in the future",
    );
    assert_kind(
        webhook.verify(&headers, b"{}", i64::MAX),
        ErrorKind::TimestampTooOld,
        "past",
    );
    assert_kind(
        webhook.verify(&headers, b"{}", i64::MIN),
        ErrorKind::TimestampTooNew,
        "future",
    );
    let strict = webhook.clone().with_tolerance(Duration::from_secs(10));
    assert_kind(
        strict.verify(&headers, b"{}", 1_000_011),
        ErrorKind::TimestampTooOld,
        "10 s tolerance",
    );
}

#[test]
fn standard_no_supported_signature_and_mismatch() {
    let (webhook, sig) = standard();
    let v2 = sig.replace("v1,", "v2,");
    assert_kind(
        webhook.verify(&Headers::new("msg_1", "1000000", &v2), b"{}", 1_000_000),
        ErrorKind::NoSupportedSignature,
        "v1,",
    );
    assert_kind(
        webhook.verify(&Headers::new("msg_2", "1000000", &sig), b"{}", 1_000_000),
        ErrorKind::SignatureMismatch,
        "does not match",
    );
    assert_kind(
        webhook.verify(&Headers::new("msg_1", "1000001", &sig), b"{}", 1_000_000),
        ErrorKind::SignatureMismatch,
        "does not match",
    );
    assert_kind(
        webhook.verify(
            &Headers::new("msg_1", "1000000", "v1,****"),
            b"{}",
            1_000_000,
        ),
        ErrorKind::SignatureMismatch,
        "does not match",
    );
    let long = format!("v1,{}", "A".repeat(400));
    assert_kind(
        webhook.verify(&Headers::new("msg_1", "1000000", &long), b"{}", 1_000_000),
        ErrorKind::SignatureMismatch,
        "does not match",
    );
}

#[test]
fn standard_secret_debug_is_redacted() {
    let (webhook, _) = standard();
    assert!(!format!("{webhook:?}").contains(SECRET));
}

#[test]
fn signed_request_with_padding_on_both_parts_decodes() {
    // Some senders pad; the signature covers the payload part exactly as sent, padding included.
    let s = SECRET.as_bytes();
    let payload = base64::engine::general_purpose::URL_SAFE
        .encode(br#"{"algorithm":"HMAC-SHA256","user_id":"7"}"#);
    assert!(payload.ends_with('='), "{payload}");
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(s).unwrap();
    mac.update(payload.as_bytes());
    let sig = base64::engine::general_purpose::URL_SAFE.encode(mac.finalize().into_bytes());
    let request = signed_request::decode(&format!("{sig}.{payload}"), s).unwrap();
    assert_eq!(request.user_id.as_deref(), Some("7"));
}
