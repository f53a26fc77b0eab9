//! The `signed_request` decoder on arbitrary text: no panic, and a request that decodes encodes
//! again to a value that decodes to the same fields.

#![no_main]

use libfuzzer_sys::fuzz_target;
use webhook_verify::signed_request;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let _ = signed_request::decode(text, b"secret");
    // Signed inputs reach the JSON and field parsing behind the signature check.
    if let Ok(value) = signed_request::sign_json(data, b"secret") {
        if let Ok(request) = signed_request::decode(&value, b"secret") {
            let again = request.encode(b"secret").ok();
            let decoded = again.and_then(|v| signed_request::decode(&v, b"secret").ok());
            let Some(decoded) = decoded else {
                panic!("a decoded request does not decode after encoding");
            };
            // The typed fields survive exactly; unknown fields keep their keys (serde_json may
            // print a float in `extra` with a last-digit difference, which is not ours to fix).
            assert_eq!(decoded.user_id, request.user_id);
            assert_eq!(decoded.algorithm, request.algorithm);
            assert_eq!(decoded.issued_at, request.issued_at);
            assert_eq!(decoded.expires, request.expires);
            assert_eq!(decoded.oauth_token, request.oauth_token);
            assert!(decoded.extra.keys().eq(request.extra.keys()));
            let _ = request.ensure_fresh(std::time::Duration::from_secs(60), 0);
        }
    }
});
