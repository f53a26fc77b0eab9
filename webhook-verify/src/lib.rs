//! Verification of inbound webhooks: Meta's `X-Hub-Signature-256`, the subscription handshake,
//! Meta's `signed_request`, and Standard Webhooks.
//!
//! Everything here works on the raw bytes exactly as received, compares in constant time, never
//! panics on input, and reports failures as one [`Error`] whose [`kind`](Error::kind) you can
//! match on. Messages never contain a secret.
//!
//! # Quick tour
//!
//! **Meta webhook deliveries** carry `X-Hub-Signature-256: sha256=<hex>`. Verify the raw body
//! before parsing it; pass several secrets while you rotate the app secret:
//!
//! ```
//! use webhook_verify::{meta, ErrorKind};
//!
//! let body = br#"{"object":"instagram","entry":[]}"#;
//! let header = meta::sign(b"current-secret", body)?.to_string();
//!
//! let which = meta::verify_with_any(&["previous-secret", "current-secret"], body, &header)?;
//! assert_eq!(which, 1);
//!
//! let tampered = br#"{"object":"instagram","entry":[{}]}"#;
//! let err = meta::verify(b"current-secret", tampered, &header).unwrap_err();
//! assert_eq!(err.kind(), ErrorKind::SignatureMismatch);
//! # Ok::<(), webhook_verify::Error>(())
//! ```
//!
//! **The subscription handshake** (`GET ?hub.mode=subscribe&hub.verify_token=..&hub.challenge=..`):
//!
//! ```
//! use webhook_verify::meta::Subscription;
//!
//! let handshake = Subscription::from_query("hub.mode=subscribe&hub.verify_token=tok&hub.challenge=1158201444");
//! assert_eq!(handshake.verify("tok")?, "1158201444");
//! # Ok::<(), webhook_verify::Error>(())
//! ```
//!
//! **`signed_request`** (deauthorize and data-deletion callbacks), with an age check against a
//! clock you pass in:
//!
//! ```
//! use std::time::Duration;
//! use webhook_verify::signed_request::{self, SignedRequest};
//!
//! let value = SignedRequest::new("218471", 1_291_836_800).encode(b"app-secret")?;
//! let request = signed_request::decode(&value, b"app-secret")?;
//! request.ensure_fresh(Duration::from_secs(3600), 1_291_836_900)?;
//! assert_eq!(request.user_id.as_deref(), Some("218471"));
//! # Ok::<(), webhook_verify::Error>(())
//! ```
//!
//! **Standard Webhooks** (`webhook-id`, `webhook-timestamp`, `webhook-signature`):
//!
//! ```
//! use webhook_verify::standard::{Headers, Secret, Webhook};
//!
//! let webhook = Webhook::new(Secret::from_key_bytes(&[42u8; 32])?);
//! let signature = webhook.sign("msg_1", 1_700_000_000, b"{}");
//! webhook.verify(&Headers::new("msg_1", "1700000000", &signature), b"{}", 1_700_000_010)?;
//! # Ok::<(), webhook_verify::Error>(())
//! ```
//!
//! # Cargo features
//!
//! - `sha1`: legacy `X-Hub-Signature: sha1=<hex>` in [`meta::sha1`].
//! - `axum`: an extractor that reads the body up to a limit and verifies it (`axum` module).
#![cfg_attr(docsrs, feature(doc_cfg))]

mod error;

#[cfg(feature = "axum")]
pub mod axum;
pub mod meta;
pub mod signed_request;
pub mod standard;

pub use error::{Error, ErrorKind};
