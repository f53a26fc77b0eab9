//! Cursor pagination: [`Page`] and, with the `client` feature, a stream over all pages.
//!
//! Meta's rule is to stop when the `next` link no longer appears: a page may be empty and still
//! have a `next` link, and a short page does not mean the end.

use serde::{Deserialize, Serialize};

/// One page of a list edge: the items and the paging cursors.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound(deserialize = "T: Deserialize<'de>"))]
#[non_exhaustive]
pub struct Page<T> {
    /// The items of this page (`null` or missing reads as empty).
    #[serde(default = "Vec::new", deserialize_with = "null_as_empty")]
    pub data: Vec<T>,
    /// The cursors and links to the neighbouring pages, when there are any.
    #[serde(default)]
    pub paging: Option<Paging>,
}

fn null_as_empty<'de, D, T>(deserializer: D) -> Result<Vec<T>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Ok(Option::<Vec<T>>::deserialize(deserializer)?.unwrap_or_default())
}

impl<T> Default for Page<T> {
    fn default() -> Self {
        Self {
            data: Vec::new(),
            paging: None,
        }
    }
}

impl<T> Page<T> {
    /// A page holding `data` and no paging information.
    pub fn new(data: Vec<T>) -> Self {
        Self { data, paging: None }
    }

    /// Whether Meta announced a next page (the `next` link is present).
    pub fn has_next(&self) -> bool {
        self.paging.as_ref().is_some_and(|p| p.next.is_some())
    }

    /// The cursor to request the next page with (`after`), when there is a next page.
    ///
    /// Taken from `paging.cursors.after`, or from the `after` parameter of the `next` link when
    /// the cursors are missing.
    pub fn next_cursor(&self) -> Option<String> {
        let paging = self.paging.as_ref()?;
        let next = paging.next.as_deref()?;
        if let Some(after) = paging.cursors.as_ref().and_then(|c| c.after.clone()) {
            return Some(after);
        }
        query_param(next, "after")
    }

    /// The items of the page.
    pub fn into_items(self) -> Vec<T> {
        self.data
    }
}

/// The `paging` object of a list response.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Paging {
    /// The `before`/`after` cursors.
    #[serde(default)]
    pub cursors: Option<Cursors>,
    /// The link to the next page; absent on the last page.
    #[serde(default)]
    pub next: Option<String>,
    /// The link to the previous page.
    #[serde(default)]
    pub previous: Option<String>,
}

/// The `before` and `after` cursors of a page. Do not store them: they expire quickly.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Cursors {
    /// The cursor pointing at the start of this page.
    #[serde(default)]
    pub before: Option<String>,
    /// The cursor pointing at the end of this page.
    #[serde(default)]
    pub after: Option<String>,
}

/// Reads one query parameter from a URL without a URL parser (values are percent-decoded only
/// for `%XX` sequences; cursors are base64-like and rarely need it).
fn query_param(url: &str, name: &str) -> Option<String> {
    let query = url.split_once('?')?.1;
    let query = query.split('#').next().unwrap_or(query);
    query.split('&').find_map(|pair| {
        let (key, value) = pair.split_once('=')?;
        (key == name).then(|| percent_decode(value))
    })
}

fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            let hex = std::str::from_utf8(&bytes[i + 1..i + 3]).ok();
            if let Some(byte) = hex.and_then(|h| u8::from_str_radix(h, 16).ok()) {
                out.push(byte);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn next_cursor_prefers_cursors_then_link() {
        let page: Page<u8> = serde_json::from_str(
            r#"{"data":[],"paging":{"cursors":{"after":"A"},"next":"https://x/y?after=B"}}"#,
        )
        .unwrap();
        assert_eq!(page.next_cursor().as_deref(), Some("A"));
        let page: Page<u8> = serde_json::from_str(
            r#"{"data":[1],"paging":{"next":"https://x/y?limit=2&after=B%3D"}}"#,
        )
        .unwrap();
        assert_eq!(page.next_cursor().as_deref(), Some("B="));
        let last: Page<u8> =
            serde_json::from_str(r#"{"data":[1],"paging":{"cursors":{"after":"A"}}}"#).unwrap();
        assert!(!last.has_next());
        assert_eq!(last.next_cursor(), None);
    }

    #[test]
    fn null_or_missing_data_is_empty() {
        let page: Page<u8> = serde_json::from_str(r#"{"data":null,"paging":null}"#).unwrap();
        assert!(page.data.is_empty() && page.paging.is_none());
        let page: Page<u8> = serde_json::from_str("{}").unwrap();
        assert!(page.data.is_empty());
    }

    #[test]
    fn percent_decode_keeps_broken_sequences() {
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("%zz%41"), "%zzA");
    }
}
