//! Rate-limit usage reported by Meta in response headers.
//!
//! `X-App-Usage` carries the app's usage in percent; `X-Business-Use-Case-Usage` carries, per
//! business object (the Instagram account), the usage of each use case type and the estimated
//! minutes until access is regained. Calls are throttled when any percentage reaches 100, so
//! callers can slow down before that with [`Usage::max_percent`].
//!
//! ```
//! use instagram_graph::usage::Usage;
//!
//! let usage = Usage::from_headers(
//!     Some(r#"{"call_count":28,"total_time":25,"total_cputime":25}"#),
//!     Some(r#"{"1784":[{"type":"instagram","call_count":91,"total_cputime":5,"total_time":7,"estimated_time_to_regain_access":0}]}"#),
//! );
//! assert_eq!(usage.max_percent(), Some(91));
//! ```

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// The app-level usage of `X-App-Usage`, in percent of the limit.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct AppUsage {
    /// Share of the call count used.
    #[serde(default)]
    pub call_count: u32,
    /// Share of the total time used.
    #[serde(default)]
    pub total_time: u32,
    /// Share of the CPU time used.
    #[serde(default)]
    pub total_cputime: u32,
}

impl AppUsage {
    /// The highest of the three percentages.
    pub fn max_percent(&self) -> u32 {
        self.call_count.max(self.total_time).max(self.total_cputime)
    }
}

/// One entry of `X-Business-Use-Case-Usage` for a business object.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct BusinessUseCaseUsage {
    /// The use case type: `instagram`, `messenger`, `pages`, ...
    #[serde(default, rename = "type")]
    pub use_case: String,
    /// Share of the call count used, in percent.
    #[serde(default)]
    pub call_count: u32,
    /// Share of the total time used, in percent.
    #[serde(default)]
    pub total_time: u32,
    /// Share of the CPU time used, in percent.
    #[serde(default)]
    pub total_cputime: u32,
    /// Minutes until access is regained when throttled (0 when not throttled).
    #[serde(default)]
    pub estimated_time_to_regain_access: u64,
}

impl BusinessUseCaseUsage {
    /// The highest of the three percentages.
    pub fn max_percent(&self) -> u32 {
        self.call_count.max(self.total_time).max(self.total_cputime)
    }

    /// The wait until access is regained, when Meta gave one.
    pub fn regain_access_after(&self) -> Option<Duration> {
        (self.estimated_time_to_regain_access > 0)
            .then(|| Duration::from_secs(self.estimated_time_to_regain_access.saturating_mul(60)))
    }
}

/// The rate-limit usage reported with a response. Headers that are absent or malformed leave
/// their part empty: usage is advisory and never fails a call.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Usage {
    /// `X-App-Usage`, when present.
    pub app: Option<AppUsage>,
    /// `X-Business-Use-Case-Usage`, by business object id.
    pub business: BTreeMap<String, Vec<BusinessUseCaseUsage>>,
}

impl Usage {
    /// Parses the values of the `X-App-Usage` and `X-Business-Use-Case-Usage` headers.
    pub fn from_headers(app_usage: Option<&str>, business_usage: Option<&str>) -> Self {
        let app = app_usage.and_then(|v| serde_json::from_str::<AppUsage>(v).ok());
        let business = business_usage
            .and_then(|v| {
                serde_json::from_str::<BTreeMap<String, Vec<BusinessUseCaseUsage>>>(v).ok()
            })
            .unwrap_or_default();
        Self { app, business }
    }

    /// Whether any usage was reported.
    pub fn is_empty(&self) -> bool {
        self.app.is_none() && self.business.is_empty()
    }

    /// The highest percentage over all reported usages; throttling starts at 100.
    pub fn max_percent(&self) -> Option<u32> {
        let app = self.app.map(|a| a.max_percent());
        let buc = self
            .business
            .values()
            .flatten()
            .map(BusinessUseCaseUsage::max_percent)
            .max();
        app.into_iter().chain(buc).max()
    }

    /// The longest `estimated_time_to_regain_access` reported, when any object is throttled.
    pub fn regain_access_after(&self) -> Option<Duration> {
        self.business
            .values()
            .flatten()
            .filter_map(BusinessUseCaseUsage::regain_access_after)
            .max()
    }

    /// The business use case entries of type `instagram`.
    pub fn instagram(&self) -> impl Iterator<Item = (&str, &BusinessUseCaseUsage)> {
        self.business.iter().flat_map(|(id, entries)| {
            entries
                .iter()
                .filter(|e| e.use_case == "instagram")
                .map(move |e| (id.as_str(), e))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_both_headers() {
        let usage = Usage::from_headers(
            Some(r#"{"call_count":28,"total_time":25,"total_cputime":25}"#),
            Some(
                r#"{"111":[{"type":"instagram","call_count":100,"total_cputime":25,"total_time":25,"estimated_time_to_regain_access":7}],"222":[{"type":"pages","call_count":3}]}"#,
            ),
        );
        assert_eq!(usage.app.unwrap().call_count, 28);
        assert_eq!(usage.max_percent(), Some(100));
        assert_eq!(usage.regain_access_after(), Some(Duration::from_secs(420)));
        let ig: Vec<_> = usage.instagram().collect();
        assert_eq!(ig.len(), 1);
        assert_eq!(ig[0].0, "111");
    }

    #[test]
    fn malformed_headers_are_ignored() {
        let usage = Usage::from_headers(Some("nope"), Some("[1,2]"));
        assert!(usage.is_empty());
        assert_eq!(usage.max_percent(), None);
    }
}
