//! What `webhook::parse` refuses, and how.
#![allow(clippy::unwrap_used)]

use instagram_graph::webhook;
use instagram_graph::ErrorKind;

fn refusal(body: &[u8]) -> String {
    let err = webhook::parse(body).unwrap_err();
    let ErrorKind::Decode { path, .. } = err.kind() else {
        panic!("{err:?}")
    };
    assert!(!path.is_empty());
    err.to_string()
}

#[test]
fn bodies_that_are_not_json() {
    assert!(refusal(b"").contains("not valid JSON"));
    assert!(refusal(b"{\"object\":\"instagram\",").contains("not valid JSON"));
    assert!(refusal(b"{\"a\":1} trailing").contains("not valid JSON"));
    assert!(refusal(b"\xff\xfe{}").contains("not UTF-8"));
}

#[test]
fn json_that_is_not_a_notification() {
    for body in [
        &b"{}"[..],
        b"42",
        b"\"instagram\"",
        b"null",
        b"true",
        b"[1, 2, 3]",
        b"[{}]",
        // Graph API responses are not notifications.
        br#"{"id":"17841405726653026"}"#,
        br#"{"recipient_id":"1","message_id":"m"}"#,
        br#"{"data":[{"id":"1"}],"paging":{}}"#,
        // A deciding key given twice leaves the shape ambiguous.
        br#"{"object":"instagram","entry":[],"entry":[]}"#,
    ] {
        let reason = refusal(body);
        assert!(
            reason.contains("not a webhook notification"),
            "{}: {reason}",
            String::from_utf8_lossy(body)
        );
    }
}

#[test]
fn empty_but_well_formed_notifications_are_accepted() {
    for body in [
        &br#"{"object":"instagram","entry":[]}"#[..],
        br#"{"object":"instagram"}"#,
        br#"{"object":"instagram","entry":null}"#,
        b"[]",
        br#"{"object":"page","entry":[{"id":"1"},{"id":2,"messaging":[]}]}"#,
    ] {
        let n = webhook::parse(body).unwrap();
        assert!(n.events().is_empty(), "{}", String::from_utf8_lossy(body));
        assert!(n.is_complete(), "{}", String::from_utf8_lossy(body));
    }
}

#[test]
fn malformed_shapes_inside_a_notification_become_errors_not_refusals() {
    let n = webhook::parse(br#"{"object":"instagram","entry":{"id":"1"}}"#).unwrap();
    assert_eq!(n.errors().len(), 1);
    assert!(matches!(n.errors()[0].kind(), ErrorKind::Decode { path, .. } if path == "entry"));

    let n = webhook::parse(br#"{"object":7,"entry":[{"id":"1","time":1,"changes":[{"field":"mentions","value":{"media_id":"5"}}]}]}"#).unwrap();
    assert_eq!(n.events().len(), 1);
    assert!(n.events()[0].object.is_none());
    assert!(matches!(n.errors()[0].kind(), ErrorKind::Decode { path, .. } if path == "object"));

    // In a batch, an element that is no notification is reported with its index.
    let n = webhook::parse(
        br#"[{"object":"instagram","entry":[{"id":"1","changes":[{"field":"mentions","value":{"media_id":"5"}}]}]}, 17]"#,
    )
    .unwrap();
    assert_eq!(n.events().len(), 1);
    assert!(matches!(n.errors()[0].kind(), ErrorKind::Decode { path, .. } if path == "[1]"));

    // An attachment payload of the wrong shape costs that message only.
    let n = webhook::parse(
        br#"{"object":"instagram","entry":[{"id":"1","messaging":[
            {"sender":{"id":"2"},"timestamp":1,"message":{"mid":"a","attachments":[{"type":"image","payload":{"url":5}}]}},
            {"sender":{"id":"2"},"timestamp":2,"message":{"mid":"b"}}]}]}"#,
    )
    .unwrap();
    assert_eq!(n.events().len(), 1);
    assert!(matches!(
        n.errors()[0].kind(),
        ErrorKind::Decode { path, .. } if path == "entry[0].messaging[0].message.attachments[0].payload.url"
    ));
}

#[test]
fn null_optional_fields_are_tolerated() {
    // null for every optional field.
    let n = webhook::parse(
        br#"{"object":"instagram","entry":[{"id":"1","time":null,"messaging":[{"sender":null,"recipient":{"id":null},"timestamp":null,"message":{"mid":null,"text":null,"attachments":null,"is_echo":null,"quick_reply":null,"reply_to":null,"referral":null}}]}]}"#,
    )
    .unwrap();
    assert!(n.is_complete(), "{:?}", n.errors());
    assert_eq!(n.events().len(), 1);
    assert!(n.events()[0].time.is_none());
}

#[test]
fn deep_nesting_is_reported_never_a_crash_nor_a_silent_null() {
    let deep = |n: usize| format!("{}{}", "[".repeat(n), "]".repeat(n));
    // As the whole body.
    assert!(webhook::parse(deep(100_000).as_bytes()).is_err());
    // Inside an unknown messaging key and an unknown change value.
    let body = format!(
        r#"{{"object":"instagram","entry":[{{"id":"1","messaging":[{{"sender":{{"id":"2"}},"timestamp":1,"mystery":{d}}}],"changes":[{{"field":"x","value":{d}}}]}}]}}"#,
        d = deep(100_000)
    );
    let n = webhook::parse(body.as_bytes()).unwrap();
    assert!(n.events().is_empty());
    let paths: Vec<String> = n
        .errors()
        .iter()
        .map(|e| match e.kind() {
            ErrorKind::Decode { path, .. } => path.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(paths, ["entry[0].messaging[0]", "entry[0].changes[0]"]);
    // Moderately deep unknown values are kept as they are.
    let body = format!(
        r#"{{"object":"instagram","entry":[{{"id":"1","changes":[{{"field":"x","value":{d}}}]}}]}}"#,
        d = deep(20)
    );
    let n = webhook::parse(body.as_bytes()).unwrap();
    assert!(n.is_complete());
    let webhook::EventKind::Unknown(u) = &n.events()[0].kind else {
        panic!()
    };
    assert_eq!(u.value.to_string(), deep(20));
}
