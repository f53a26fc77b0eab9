//! Property tests: no input makes the builders, the error classifier or the header parsers panic,
//! and the builders enforce their limits exactly.
#![allow(clippy::unwrap_used)]

use instagram_graph::error::Limit;
use instagram_graph::model::{QuickReply, SendRequest};
use instagram_graph::page::Page;
use instagram_graph::usage::Usage;
use instagram_graph::{Error, ErrorKind};
use proptest::prelude::*;

proptest! {
    #[test]
    fn text_builder_accepts_exactly_1_to_1000_bytes(text in "\\PC{0,400}") {
        let result = SendRequest::text("1", text.clone());
        let ok = !text.is_empty() && text.len() <= 1000;
        prop_assert_eq!(result.is_ok(), ok);
        if let Err(err) = result {
            let is_limit = matches!(err.kind(), ErrorKind::LimitExceeded { limit: Limit::TextBytes | Limit::TextEmpty, .. });
            prop_assert!(is_limit);
        } else {
            let body = SendRequest::text("1", text.clone()).unwrap().to_json();
            prop_assert_eq!(body["message"]["text"].as_str().unwrap(), text.as_str());
        }
    }

    #[test]
    fn quick_reply_title_counts_characters(title in "\\PC{1,30}") {
        let result = QuickReply::text(title.clone(), "P");
        prop_assert_eq!(result.is_ok(), title.chars().count() <= 20);
    }

    #[test]
    fn error_classification_never_panics(status in 0u16..1000, body in any::<String>()) {
        let err = Error::from_response(status, &body, None, None);
        let _ = err.to_string();
        let _ = err.advice();
        let _ = err.is_retryable();
    }

    #[test]
    fn error_envelope_with_any_codes_is_classified(code in any::<i64>(), sub in proptest::option::of(any::<i64>()), message in any::<String>()) {
        let body = serde_json::json!({"error": {"code": code, "error_subcode": sub, "message": message}}).to_string();
        let err = Error::from_response(400, &body, None, None);
        prop_assert_eq!(err.code(), Some(code));
        prop_assert_eq!(err.subcode(), sub);
        let decoded = matches!(err.kind(), ErrorKind::Decode { .. });
        prop_assert!(!decoded);
    }

    #[test]
    fn usage_headers_never_panic(app in any::<String>(), buc in any::<String>()) {
        let usage = Usage::from_headers(Some(&app), Some(&buc));
        let _ = usage.max_percent();
        let _ = usage.regain_access_after();
    }

    #[test]
    fn pages_of_arbitrary_json_decode_or_fail_cleanly(json in any::<String>()) {
        if let Ok(page) = serde_json::from_str::<Page<serde_json::Value>>(&json) {
            let _ = page.next_cursor();
        }
    }

    #[test]
    fn next_links_yield_their_after_cursor(cursor in "[A-Za-z0-9_-]{1,40}") {
        let body = serde_json::json!({"data": [], "paging": {"next": format!("https://graph.instagram.com/v25.0/1/comments?limit=2&after={cursor}")}});
        let page: Page<u8> = serde_json::from_value(body).unwrap();
        prop_assert_eq!(page.next_cursor(), Some(cursor));
    }
}
