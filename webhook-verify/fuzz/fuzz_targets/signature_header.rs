//! The `X-Hub-Signature-256` parser and verifier, and the handshake query parser, on arbitrary
//! bytes: no panic, and whatever parses prints back to a value that parses to the same digest.

#![no_main]

use libfuzzer_sys::fuzz_target;
use webhook_verify::meta::{self, Signature, Subscription};

fuzz_target!(|data: &[u8]| {
    if let Ok(signature) = Signature::parse(data) {
        let printed = signature.to_string();
        assert_eq!(Signature::parse(&printed).ok(), Some(signature));
    }
    let _ = meta::verify(b"app-secret", data, data);
    let _ = meta::verify_with_any(&["a", "b"], data, data);
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = Subscription::from_query(text).verify("verify-token");
    }
});
