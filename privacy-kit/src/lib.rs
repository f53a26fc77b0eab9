//! Retention policies, deletion cascades, export bundles and an encrypted token vault: the
//! privacy promises of an Instagram messaging backend, as primitives a backend calls and a test
//! can prove.
//!
//! - [`secret`] and [`vault`]: tokens encrypted at rest (AES-256-GCM envelope encryption, bound
//!   to tenant and account, key rotation) and never shown in plain text.
//! - [`schema`]: which entities hold personal data, and what happens to children on delete.
//! - [`cascade`]: deletion of a subject's data, with a receipt and a verification.
//! - [`retention`]: keep-for periods per data class, with presets for the usual promises.
//! - [`export`]: machine-readable export bundles (zip of JSON Lines + manifest with checksums).
//! - [`callback`]: Meta's deauthorize and data-deletion callbacks.
//! - [`audit`]: an append-only register of privacy events.
//! - [`store`]: the small traits all of this works through, and an in-memory store.
//!
//! The crate depends on no database and reads no clock on its own: time is passed in, or a
//! [`clock::Clock`] is.
//!
//! ```
//! use privacy_kit::chrono::{Duration, TimeZone, Utc};
//! use privacy_kit::retention::{presets, run_retention, Anchor};
//! use privacy_kit::schema::{Pseudonymizer, Schema};
//! use privacy_kit::store::{MemoryStore, Record};
//!
//! # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
//! let schema = Schema::example();
//! let store = MemoryStore::new();
//! let disconnected = Utc.with_ymd_and_hms(2026, 2, 1, 0, 0, 0).unwrap();
//! store.insert(
//!     Record::new("access_token", "tok_1", disconnected - Duration::days(200))
//!         .field("token", "pkv1.sealed-token")
//!         .anchor(Anchor::Disconnected, disconnected),
//! );
//! let pseudonymizer = Pseudonymizer::random()?;
//! // "Tokens are deleted within 30 days of Instagram disconnect":
//! let day_29 = disconnected + Duration::days(29);
//! run_retention(&schema, &presets(), &[], &store, &pseudonymizer, day_29, 100).await?;
//! assert_eq!(store.count("access_token"), 1);
//! let day_30 = disconnected + Duration::days(30);
//! let report = run_retention(&schema, &presets(), &[], &store, &pseudonymizer, day_30, 100).await?;
//! assert_eq!(report.counts["access_token"].deleted, 1);
//! assert_eq!(store.count("access_token"), 0);
//! # Ok::<(), privacy_kit::Error>(())
//! # })?;
//! # Ok::<(), privacy_kit::Error>(())
//! ```

pub mod audit;
pub mod callback;
pub mod cascade;
pub mod clock;
mod error;
pub mod export;
mod random;
pub mod retention;
pub mod schema;
pub mod secret;
pub mod store;
pub mod vault;

/// The `chrono` crate, whose `DateTime<Utc>` this crate's API uses.
pub use chrono;
pub use error::{Error, ErrorKind, Result, SchemaProblem};
pub use secret::Secret;
