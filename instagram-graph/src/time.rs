//! Meta timestamps in every form they arrive in.
//!
//! The platform writes times as:
//! - JSON numbers of Unix **seconds** (`"time": 1520622968`, comment webhooks),
//! - JSON numbers of Unix **milliseconds** (`"timestamp": 1569262485349`, messaging webhooks),
//! - the same numbers inside strings (`"timestamp": "1527459824"`, the App Dashboard test),
//! - ISO 8601 with a colon-less offset (`"2017-08-31T19:16:02+0000"`, Graph API fields),
//! - RFC 3339 (`"2024-01-01T00:00:00Z"`, `"2024-01-01T00:00:00.250+02:00"`).
//!
//! **Seconds or milliseconds** is decided by magnitude: a number whose absolute value is at least
//! [`MILLIS_THRESHOLD`] (10^11) is milliseconds, anything smaller is seconds. 10^11 seconds lies in
//! the year 5138 and 10^11 milliseconds in March 1973, so every real timestamp of either unit
//! after 1973 is read correctly. Fractions of a number are kept (to the nanosecond).
//!
//! ```
//! use instagram_graph::time::parse_timestamp;
//! use serde_json::json;
//!
//! let a = parse_timestamp(&json!(1569262485)).unwrap();
//! let b = parse_timestamp(&json!("1569262485000")).unwrap();
//! let c = parse_timestamp(&json!("2019-09-23T18:14:45+0000")).unwrap();
//! assert_eq!(a, b);
//! assert_eq!(b, c);
//! assert_eq!(a.to_rfc3339(), "2019-09-23T18:14:45+00:00");
//! ```

use std::fmt;

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};
use serde::de::{self, Deserializer, Visitor};

/// Numbers at or above this absolute value are Unix milliseconds, below it Unix seconds.
pub const MILLIS_THRESHOLD: i64 = 100_000_000_000;

/// Reads a Unix time given as an integer of seconds or milliseconds (see the module docs).
pub fn from_unix_number(n: i64) -> Option<DateTime<Utc>> {
    if n.unsigned_abs() >= MILLIS_THRESHOLD.unsigned_abs() {
        Utc.timestamp_millis_opt(n).single()
    } else {
        Utc.timestamp_opt(n, 0).single()
    }
}

/// Reads a Unix time given as a float of seconds or milliseconds (see the module docs).
pub fn from_unix_float(x: f64) -> Option<DateTime<Utc>> {
    if !x.is_finite() {
        return None;
    }
    let seconds = if x.abs() >= MILLIS_THRESHOLD as f64 {
        x / 1000.0
    } else {
        x
    };
    // Beyond ±2^62 seconds chrono cannot represent the time anyway; refuse before casting.
    if seconds.abs() > 4.0e18 {
        return None;
    }
    let whole = seconds.floor();
    let nanos = ((seconds - whole) * 1e9).round();
    let (whole, nanos) = if nanos >= 1e9 {
        (whole + 1.0, 0.0)
    } else {
        (whole, nanos)
    };
    Utc.timestamp_opt(whole as i64, nanos as u32).single()
}

/// Reads a timestamp written as text: a Unix number (integer or decimal, seconds or
/// milliseconds), `2024-01-01T00:00:00+0000`, or RFC 3339. Surrounding spaces are ignored.
pub fn parse_str(text: &str) -> Option<DateTime<Utc>> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let bytes = text.as_bytes();
    let numeric = bytes
        .iter()
        .enumerate()
        .all(|(i, b)| b.is_ascii_digit() || (i == 0 && (*b == b'-' || *b == b'+')) || *b == b'.');
    if numeric {
        if let Ok(n) = text.parse::<i64>() {
            return from_unix_number(n);
        }
        return text.parse::<f64>().ok().and_then(from_unix_float);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(text) {
        return Some(t.with_timezone(&Utc));
    }
    if let Ok(t) = DateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f%z") {
        return Some(t.with_timezone(&Utc));
    }
    // No offset at all: Meta times are UTC.
    NaiveDateTime::parse_from_str(text, "%Y-%m-%dT%H:%M:%S%.f")
        .ok()
        .map(|t| t.and_utc())
}

/// Reads a timestamp from any JSON value: a number or a string as described in the module docs.
/// Returns `None` for anything else (null, booleans, arrays, objects) and for times chrono cannot
/// represent.
pub fn parse_timestamp(value: &serde_json::Value) -> Option<DateTime<Utc>> {
    match value {
        serde_json::Value::Number(n) => {
            if let Some(i) = n.as_i64() {
                from_unix_number(i)
            } else if let Some(u) = n.as_u64() {
                i64::try_from(u).ok().and_then(from_unix_number)
            } else {
                n.as_f64().and_then(from_unix_float)
            }
        }
        serde_json::Value::String(s) => parse_str(s),
        _ => None,
    }
}

/// The serde visitor behind [`deserialize`].
struct TimestampVisitor;

impl TimestampVisitor {
    fn out_of_range<E: de::Error>(what: impl fmt::Display) -> E {
        E::custom(format_args!(
            "timestamp {what} is outside the range of representable times"
        ))
    }
}

impl Visitor<'_> for TimestampVisitor {
    type Value = DateTime<Utc>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(
            "a timestamp: Unix seconds or milliseconds as a number or string, or an ISO 8601 time",
        )
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
        from_unix_number(v).ok_or_else(|| Self::out_of_range(v))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
        i64::try_from(v)
            .ok()
            .and_then(from_unix_number)
            .ok_or_else(|| Self::out_of_range(v))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Self::Value, E> {
        from_unix_float(v).ok_or_else(|| Self::out_of_range(v))
    }

    fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
        parse_str(v).ok_or_else(|| {
            E::custom(format_args!(
                "{v:?} is not a timestamp (expected Unix seconds or milliseconds, \
                 `2024-01-01T00:00:00+0000` or RFC 3339)"
            ))
        })
    }
}

/// A serde `deserialize_with` helper for a required `DateTime<Utc>` in any Meta format.
///
/// ```
/// use chrono::{DateTime, Utc};
///
/// #[derive(serde::Deserialize)]
/// struct Entry {
///     #[serde(deserialize_with = "instagram_graph::time::deserialize")]
///     time: DateTime<Utc>,
/// }
///
/// let e: Entry = serde_json::from_str(r#"{"time": "1520622968"}"#).unwrap();
/// assert_eq!(e.time.timestamp(), 1520622968);
/// ```
pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<DateTime<Utc>, D::Error> {
    deserializer.deserialize_any(TimestampVisitor)
}

/// The serde visitor behind [`deserialize_option`].
struct OptionalTimestampVisitor;

impl<'de> Visitor<'de> for OptionalTimestampVisitor {
    type Value = Option<DateTime<Utc>>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a timestamp or null")
    }

    fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
        Ok(None)
    }

    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Self::Value, D::Error> {
        deserialize(d).map(Some)
    }
}

/// A serde `deserialize_with` helper for an optional timestamp: `null` gives `None`. Combine it
/// with `#[serde(default)]` so that a missing field also gives `None`.
///
/// ```
/// use chrono::{DateTime, Utc};
///
/// #[derive(serde::Deserialize)]
/// struct Event {
///     #[serde(default, deserialize_with = "instagram_graph::time::deserialize_option")]
///     timestamp: Option<DateTime<Utc>>,
/// }
///
/// let e: Event = serde_json::from_str(r#"{"timestamp": 1569262485349}"#).unwrap();
/// assert_eq!(e.timestamp.unwrap().timestamp_millis(), 1569262485349);
/// let none: Event = serde_json::from_str("{}").unwrap();
/// assert!(none.timestamp.is_none());
/// ```
pub fn deserialize_option<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<Option<DateTime<Utc>>, D::Error> {
    deserializer.deserialize_option(OptionalTimestampVisitor)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn utc(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    #[test]
    fn seconds_and_milliseconds_by_magnitude() {
        assert_eq!(
            parse_timestamp(&json!(1520622968)),
            Some(utc("2018-03-09T19:16:08Z"))
        );
        assert_eq!(
            parse_timestamp(&json!(1569262485349_i64)),
            Some(utc("2019-09-23T18:14:45.349Z"))
        );
        // Just below and at the threshold.
        assert_eq!(
            from_unix_number(MILLIS_THRESHOLD - 1).map(|t| t.timestamp()),
            Some(MILLIS_THRESHOLD - 1)
        );
        assert_eq!(
            from_unix_number(MILLIS_THRESHOLD).map(|t| t.timestamp_millis()),
            Some(MILLIS_THRESHOLD)
        );
        assert_eq!(
            parse_timestamp(&json!(0)),
            Some(utc("1970-01-01T00:00:00Z"))
        );
    }

    #[test]
    fn strings_of_every_documented_format() {
        assert_eq!(
            parse_timestamp(&json!("1527459824")),
            Some(utc("2018-05-27T22:23:44Z"))
        );
        assert_eq!(
            parse_timestamp(&json!("1527459824000")),
            Some(utc("2018-05-27T22:23:44Z"))
        );
        assert_eq!(
            parse_timestamp(&json!("2017-08-31T19:16:02+0000")),
            Some(utc("2017-08-31T19:16:02Z"))
        );
        assert_eq!(
            parse_timestamp(&json!("2024-01-01T02:00:00.250+02:00")),
            Some(utc("2024-01-01T00:00:00.250Z"))
        );
        assert_eq!(
            parse_timestamp(&json!("2024-01-01T00:00:00Z")),
            Some(utc("2024-01-01T00:00:00Z"))
        );
        assert_eq!(
            parse_timestamp(&json!("1520622968.5")),
            Some(utc("2018-03-09T19:16:08.5Z"))
        );
    }

    #[test]
    fn refuses_what_is_not_a_time() {
        for v in [
            json!(null),
            json!(true),
            json!("yesterday"),
            json!(""),
            json!("12-34"),
            json!([1]),
            json!(1e300),
            json!(u64::MAX),
        ] {
            assert_eq!(parse_timestamp(&v), None, "{v}");
        }
    }

    #[test]
    fn serde_helpers() {
        #[derive(serde::Deserialize)]
        struct T {
            #[serde(deserialize_with = "deserialize")]
            at: DateTime<Utc>,
            #[serde(default, deserialize_with = "deserialize_option")]
            maybe: Option<DateTime<Utc>>,
        }
        let t: T = serde_json::from_str(r#"{"at":"1520622968","maybe":null}"#).unwrap();
        assert_eq!(t.at, utc("2018-03-09T19:16:08Z"));
        assert!(t.maybe.is_none());
        let t: T = serde_json::from_str(r#"{"at":1.5e9,"maybe":1569262485349}"#).unwrap();
        assert_eq!(t.at.timestamp(), 1_500_000_000);
        assert_eq!(t.maybe.unwrap().timestamp_millis(), 1569262485349);
        let err = serde_json::from_str::<T>(r#"{"at":"soon"}"#).err().unwrap();
        assert!(err.to_string().contains("not a timestamp"), "{err}");
    }
}
