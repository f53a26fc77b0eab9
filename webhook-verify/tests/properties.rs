//! Property tests: a signature made by `sign` always verifies, and any single-bit change of the
//! body, the secret or the signature makes verification fail. Arbitrary input never panics.

#![allow(clippy::unwrap_used)]

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine as _;
use proptest::prelude::*;
use webhook_verify::meta::{self, Signature, Subscription};
use webhook_verify::signed_request::{self, SignedRequest};
use webhook_verify::standard::{Headers, Secret, Webhook};
use webhook_verify::ErrorKind;

fn flip(bytes: &[u8], bit: usize) -> Vec<u8> {
    let mut out = bytes.to_vec();
    let bit = bit % (out.len() * 8);
    out[bit / 8] ^= 1 << (bit % 8);
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

proptest! {
    #[test]
    fn meta_sign_then_verify_passes(
        secret in proptest::collection::vec(any::<u8>(), 1..80),
        body in proptest::collection::vec(any::<u8>(), 0..2048),
    ) {
        let header = meta::sign(&secret, &body).unwrap().to_string();
        meta::verify(&secret, &body, &header).unwrap();
        meta::verify(&secret, &body, header.to_uppercase()).unwrap();
        prop_assert_eq!(Signature::parse(&header).unwrap(), meta::sign(&secret, &body).unwrap());
    }

    #[test]
    fn meta_any_bit_flip_fails(
        secret in proptest::collection::vec(any::<u8>(), 1..80),
        body in proptest::collection::vec(any::<u8>(), 1..1024),
        bit in any::<usize>(),
    ) {
        let signature = meta::sign(&secret, &body).unwrap();
        let header = signature.to_string();
        let kind = |r: Result<(), webhook_verify::Error>| r.unwrap_err().kind();

        prop_assert_eq!(kind(meta::verify(&secret, &flip(&body, bit), &header)), ErrorKind::SignatureMismatch);
        prop_assert_eq!(kind(meta::verify(&flip(&secret, bit), &body, &header)), ErrorKind::SignatureMismatch);
        let forged = format!("sha256={}", hex(&flip(signature.as_bytes(), bit)));
        prop_assert_eq!(kind(meta::verify(&secret, &body, &forged)), ErrorKind::SignatureMismatch);
    }

    #[test]
    fn meta_header_bit_flip_never_passes_unless_it_only_changes_case(
        body in proptest::collection::vec(any::<u8>(), 0..256),
        bit in 0usize..(71 * 8),
    ) {
        let header = meta::sign(b"secret", &body).unwrap().to_string();
        let flipped = flip(header.as_bytes(), bit);
        let same_ignoring_case = flipped.eq_ignore_ascii_case(header.as_bytes());
        let outcome = meta::verify(b"secret", &body, &flipped);
        prop_assert_eq!(outcome.is_ok(), same_ignoring_case);
    }

    #[test]
    fn rotation_reports_the_matching_secret(
        secrets in proptest::collection::vec(proptest::collection::vec(any::<u8>(), 1..40), 1..5),
        pick in any::<prop::sample::Index>(),
        body in proptest::collection::vec(any::<u8>(), 0..256),
    ) {
        let index = pick.index(secrets.len());
        let header = meta::sign(&secrets[index], &body).unwrap().to_string();
        let found = meta::verify_with_any(&secrets, &body, &header).unwrap();
        // Duplicated secrets match at their first position.
        prop_assert_eq!(&secrets[found], &secrets[index]);
        prop_assert!(found <= index);
    }

    #[test]
    fn signed_request_round_trips_and_bit_flips_fail(
        secret in proptest::collection::vec(any::<u8>(), 1..64),
        user_id in "[0-9]{1,20}",
        issued_at in 0i64..4_000_000_000,
        bit in any::<usize>(),
    ) {
        let request = SignedRequest::new(user_id.clone(), issued_at);
        let value = request.encode(&secret).unwrap();
        let decoded = signed_request::decode(&value, &secret).unwrap();
        prop_assert_eq!(decoded.user_id.as_deref(), Some(user_id.as_str()));
        prop_assert_eq!(decoded.issued_at, Some(issued_at));

        let (sig_part, payload_part) = value.split_once('.').unwrap();
        let sig = URL_SAFE_NO_PAD.decode(sig_part).unwrap();
        let payload = URL_SAFE_NO_PAD.decode(payload_part).unwrap();

        let forged_sig = format!("{}.{payload_part}", URL_SAFE_NO_PAD.encode(flip(&sig, bit)));
        prop_assert_eq!(signed_request::decode(&forged_sig, &secret).unwrap_err().kind(), ErrorKind::SignatureMismatch);
        let forged_body = format!("{sig_part}.{}", URL_SAFE_NO_PAD.encode(flip(&payload, bit)));
        prop_assert_eq!(signed_request::decode(&forged_body, &secret).unwrap_err().kind(), ErrorKind::SignatureMismatch);
        prop_assert_eq!(signed_request::decode(&value, &flip(&secret, bit)).unwrap_err().kind(), ErrorKind::SignatureMismatch);
    }

    #[test]
    fn standard_sign_then_verify_and_bit_flips_fail(
        key in proptest::collection::vec(any::<u8>(), 24..=64),
        id in "msg_[A-Za-z0-9]{1,24}",
        timestamp in 0i64..4_000_000_000,
        skew in -300i64..=300,
        body in proptest::collection::vec(any::<u8>(), 1..1024),
        bit in any::<usize>(),
    ) {
        let webhook = Webhook::new(Secret::from_key_bytes(&key).unwrap());
        let signature = webhook.sign(&id, timestamp, &body);
        let ts = timestamp.to_string();
        let now = timestamp + skew;
        webhook.verify(&Headers::new(&id, &ts, &signature), &body, now).unwrap();

        let mismatch = |w: &Webhook, sig: &str, body: &[u8]| {
            w.verify(&Headers::new(&id, &ts, sig), body, now).unwrap_err().kind()
        };
        prop_assert_eq!(mismatch(&webhook, &signature, &flip(&body, bit)), ErrorKind::SignatureMismatch);
        let other = Webhook::new(Secret::from_key_bytes(&flip(&key, bit)).unwrap());
        prop_assert_eq!(mismatch(&other, &signature, &body), ErrorKind::SignatureMismatch);
        let raw = STANDARD.decode(&signature[3..]).unwrap();
        let forged = format!("v1,{}", STANDARD.encode(flip(&raw, bit)));
        prop_assert_eq!(mismatch(&webhook, &forged, &body), ErrorKind::SignatureMismatch);

        let text = webhook_verify::standard::Secret::from_key_bytes(&key).unwrap().to_whsec();
        prop_assert_eq!(Secret::parse(&text).unwrap(), Secret::from_key_bytes(&key).unwrap());
    }

    #[test]
    fn signed_request_payload_fields_round_trip(
        issued_at in any::<i64>(),
        expires in proptest::option::of(any::<i64>()),
        user_id in prop_oneof![any::<u64>().prop_map(serde_json::Value::from), "[a-z0-9]{0,12}".prop_map(serde_json::Value::from)],
        extra in proptest::collection::btree_map("[a-z_]{1,8}", any::<i32>(), 0..4),
    ) {
        let mut payload = serde_json::json!({
            "algorithm": "HMAC-SHA256",
            "issued_at": issued_at,
            "user_id": user_id,
        });
        if let Some(expires) = expires {
            payload["expires"] = expires.into();
        }
        for (key, value) in &extra {
            payload.as_object_mut().unwrap().entry(key.clone()).or_insert((*value).into());
        }
        let value = signed_request::sign_json(payload.to_string().as_bytes(), b"k").unwrap();
        let first = signed_request::decode(&value, b"k").unwrap();
        let second = signed_request::decode(&first.encode(b"k").unwrap(), b"k").unwrap();
        prop_assert_eq!(&first, &second);
        let user_text = match &user_id {
            serde_json::Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        prop_assert_eq!(first.user_id.as_deref(), Some(user_text.as_str()));
        let _ = first.ensure_fresh(std::time::Duration::from_secs(60), issued_at);
    }

    #[test]
    fn arbitrary_input_never_panics(
        text in ".{0,200}",
        bytes in proptest::collection::vec(any::<u8>(), 0..200),
    ) {
        let _ = Signature::parse(&text);
        let _ = Signature::parse(&bytes);
        let _ = meta::verify(b"k", &bytes, &text);
        let _ = signed_request::decode(&text, b"k");
        let _ = Subscription::from_query(&text).verify("token");
        let _ = Secret::parse(&text);
        let webhook = Webhook::new(Secret::from_key_bytes(&[1; 32]).unwrap());
        let _ = webhook.verify(&Headers::new(&text, &text, &text), &bytes, 0);
    }
}
