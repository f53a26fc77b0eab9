//! Insights metrics of media and accounts (`GET /<ID>/insights`).

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// One metric: its name, period and values.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Insight {
    /// The metric name, such as `reach`.
    #[serde(default)]
    pub name: String,
    /// The period, such as `day` or `lifetime`.
    #[serde(default)]
    pub period: Option<String>,
    /// The values, one per period end.
    #[serde(default)]
    pub values: Vec<InsightValue>,
    /// A human title.
    #[serde(default)]
    pub title: Option<String>,
    /// A human description.
    #[serde(default)]
    pub description: Option<String>,
    /// The metric id.
    #[serde(default)]
    pub id: Option<String>,
    /// The total value, for metrics that report one.
    #[serde(default)]
    pub total_value: Option<serde_json::Value>,
}

/// One value of a metric. Most values are numbers; some metrics break down into objects.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct InsightValue {
    /// The value as sent (a number or an object).
    #[serde(default)]
    pub value: serde_json::Value,
    /// The end of the period.
    #[serde(
        default,
        deserialize_with = "crate::model::de::lenient_time",
        skip_serializing_if = "Option::is_none"
    )]
    pub end_time: Option<DateTime<Utc>>,
}

impl InsightValue {
    /// The value as an integer, when it is one.
    pub fn as_i64(&self) -> Option<i64> {
        self.value.as_i64()
    }
}
