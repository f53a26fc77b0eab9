//! `igdm demo`: a Meta webhook round trip with `webhook-verify`, step by step.
//!
//! It builds a sample Instagram comment notification, signs it the way Meta does, verifies it,
//! shows that a tampered body and a wrong secret are refused (with their reasons), answers the
//! subscription handshake, and decodes a data-deletion `signed_request`. It exits 0 only if every
//! step behaved as expected.

use std::process::ExitCode;
use std::time::Duration;

use serde_json::json;
use webhook_verify::meta::{self, Subscription};
use webhook_verify::signed_request::{self, SignedRequest};
use webhook_verify::ErrorKind;

use super::webhook::unix_now;
use super::Failure;

/// The app secret the demo signs with (a real one lives in App settings > Basic).
const DEMO_APP_SECRET: &str = "demo-app-secret-0f3c9a";
/// The previous app secret, still accepted while rotating.
const PREVIOUS_APP_SECRET: &str = "demo-app-secret-previous";
/// The verify token entered in the App Dashboard for the callback URL.
const DEMO_VERIFY_TOKEN: &str = "demo-verify-token";

/// One step's outcome: what to print under it, or why it did not behave as expected.
type Outcome = Result<String, String>;

struct Steps {
    number: usize,
    failed: usize,
}

impl Steps {
    fn run(&mut self, title: &str, step: impl FnOnce() -> Outcome) {
        self.number += 1;
        println!("[{}] {title}", self.number);
        match step() {
            Ok(detail) => {
                for line in detail.lines() {
                    println!("    {line}");
                }
                println!("    ok");
            }
            Err(why) => {
                self.failed += 1;
                println!("    FAILED: {why}");
            }
        }
        println!();
    }
}

/// Runs the demo.
pub fn run() -> Result<ExitCode, Failure> {
    let now = unix_now()?;
    let mut steps = Steps {
        number: 0,
        failed: 0,
    };
    println!("igdm demo: a Meta webhook round trip with webhook-verify\n");

    let notification = sample_comment_notification(now);
    let body = notification.as_bytes();
    steps.run("build a sample Instagram comment notification", || {
        Ok(format!("{notification}\n({} bytes)", body.len()))
    });

    let mut header = String::new();
    steps.run("sign it with the demo app secret, as Meta does", || {
        let signature = meta::sign(DEMO_APP_SECRET.as_bytes(), body).map_err(|e| e.to_string())?;
        header = signature.to_string();
        Ok(format!("X-Hub-Signature-256: {header}"))
    });

    steps.run("verify the delivery (raw bytes, constant time)", || {
        meta::verify(DEMO_APP_SECRET.as_bytes(), body, &header)
            .map(|()| "the signature matches: the body is Meta's, untouched".to_owned())
            .map_err(|e| format!("a genuine delivery was refused: {e}"))
    });

    steps.run("refuse a tampered body", || {
        let tampered = notification.replace("send me the link", "send me the link now");
        expect_refusal(
            meta::verify(DEMO_APP_SECRET.as_bytes(), tampered.as_bytes(), &header),
            ErrorKind::SignatureMismatch,
        )
    });

    steps.run("refuse a delivery checked with the wrong secret", || {
        expect_refusal(
            meta::verify(b"not-the-app-secret", body, &header),
            ErrorKind::SignatureMismatch,
        )
    });

    steps.run(
        "accept it during a secret rotation and say which secret matched",
        || {
            let secrets = [PREVIOUS_APP_SECRET, DEMO_APP_SECRET];
            match meta::verify_with_any(&secrets, body, &header) {
                Ok(1) => Ok("matched secret #2 of 2 (the current one)".to_owned()),
                Ok(other) => Err(format!("matched secret #{} instead of #2", other + 1)),
                Err(e) => Err(format!("refused: {e}")),
            }
        },
    );

    steps.run("answer the subscription handshake", || {
        let query = format!(
            "hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token={DEMO_VERIFY_TOKEN}"
        );
        let handshake = Subscription::from_query(&query);
        let challenge = handshake
            .verify(DEMO_VERIFY_TOKEN)
            .map_err(|e| format!("a genuine handshake was refused: {e}"))?;
        if challenge != "1158201444" {
            return Err(format!("echoed `{challenge}` instead of the challenge"));
        }
        let forged = "hub.mode=subscribe&hub.challenge=1158201444&hub.verify_token=guess";
        let forged = Subscription::from_query(forged);
        let refusal = expect_refusal(
            forged.verify(DEMO_VERIFY_TOKEN),
            ErrorKind::HandshakeTokenMismatch,
        )?;
        Ok(format!(
            "GET ?{query}\n-> 200, body `{challenge}`\nwith a wrong verify token -> 403\n{refusal}"
        ))
    });

    steps.run("decode a data-deletion signed_request", || {
        let mut request = SignedRequest::new("218471", now);
        request.expires = Some(now + 3600);
        let value = request
            .encode(DEMO_APP_SECRET.as_bytes())
            .map_err(|e| e.to_string())?;
        let decoded = signed_request::decode(&value, DEMO_APP_SECRET.as_bytes())
            .map_err(|e| format!("a genuine signed_request was refused: {e}"))?;
        decoded
            .ensure_fresh(Duration::from_secs(300), now)
            .map_err(|e| format!("a fresh signed_request was refused: {e}"))?;
        if decoded.user_id.as_deref() != Some("218471") {
            return Err(format!("decoded user_id {:?}", decoded.user_id));
        }
        let refusal = expect_refusal(
            signed_request::decode(&value, b"not-the-app-secret"),
            ErrorKind::SignatureMismatch,
        )?;
        Ok(format!(
            "signed_request={value}\n-> user_id {}, issued_at {}, algorithm {}\nwith the wrong secret:\n{refusal}",
            decoded.user_id.as_deref().unwrap_or("?"),
            decoded.issued_at.unwrap_or_default(),
            decoded.algorithm,
        ))
    });

    if steps.failed == 0 {
        println!("all {} steps behaved as expected", steps.number);
        Ok(ExitCode::SUCCESS)
    } else {
        Err(Failure::new(format!(
            "demo: {} of {} steps did not behave as expected",
            steps.failed, steps.number
        )))
    }
}

/// The bytes of an Instagram `comments` notification, as Meta would send them.
fn sample_comment_notification(now: i64) -> String {
    json!({
        "object": "instagram",
        "entry": [{
            "id": "17841400000000001",
            "time": now,
            "changes": [{
                "field": "comments",
                "value": {
                    "from": { "id": "1790000000000002", "username": "a_customer" },
                    "media": { "id": "17900000000000003", "media_product_type": "FEED" },
                    "id": "17860000000000004",
                    "text": "love it! price? send me the link"
                }
            }]
        }]
    })
    .to_string()
}

/// A step that must be refused with `kind`; its outcome shows the reason.
fn expect_refusal<T>(result: Result<T, webhook_verify::Error>, kind: ErrorKind) -> Outcome {
    match result {
        Ok(_) => Err("it was accepted".to_owned()),
        Err(e) if e.kind() == kind => Ok(format!("refused ({kind:?}): {e}")),
        Err(e) => Err(format!("refused for another reason ({:?}): {e}", e.kind())),
    }
}
