//! Prometheus metrics (`/metrics`), on `prometheus-client`.

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

type Labels = Vec<(String, String)>;

/// The service's metrics.
#[derive(Debug)]
pub struct Metrics {
    registry: Registry,
    /// Webhook deliveries accepted (stored), by outcome `new` / `duplicate`.
    pub webhooks_received: Family<Labels, Counter>,
    /// Webhook deliveries refused, by reason.
    pub webhooks_rejected: Family<Labels, Counter>,
    /// Events processed, by outcome of the decision.
    pub events_processed: Family<Labels, Counter>,
    /// Send attempts, by action kind and outcome.
    pub sends: Family<Labels, Counter>,
    /// Pending inbox rows.
    pub inbox_depth: Gauge,
    /// Queued outbox rows.
    pub outbox_depth: Gauge,
    /// Seconds from request to committed 200.
    pub ingest_latency: Histogram,
    /// Seconds from webhook received to the Graph API call.
    pub event_to_send: Histogram,
    /// Seconds per Graph API send call.
    pub send_latency: Histogram,
}

fn labels(pairs: &[(&str, &str)]) -> Labels {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_string(), (*v).to_string()))
        .collect()
}

impl Metrics {
    /// A fresh registry with every metric registered.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("igdm");
        let m = Metrics {
            webhooks_received: Family::default(),
            webhooks_rejected: Family::default(),
            events_processed: Family::default(),
            sends: Family::default(),
            inbox_depth: Gauge::default(),
            outbox_depth: Gauge::default(),
            ingest_latency: Histogram::new(exponential_buckets(0.0005, 2.0, 14)),
            event_to_send: Histogram::new(exponential_buckets(0.001, 2.0, 16)),
            send_latency: Histogram::new(exponential_buckets(0.001, 2.0, 14)),
            registry: Registry::default(),
        };
        registry.register(
            "webhooks_received",
            "Webhook deliveries verified and stored",
            m.webhooks_received.clone(),
        );
        registry.register(
            "webhooks_rejected",
            "Webhook deliveries refused or stored as rejected",
            m.webhooks_rejected.clone(),
        );
        registry.register(
            "events_processed",
            "Webhook events decided",
            m.events_processed.clone(),
        );
        registry.register(
            "sends",
            "Graph API send attempts by outcome",
            m.sends.clone(),
        );
        registry.register("inbox_depth", "Pending inbox rows", m.inbox_depth.clone());
        registry.register("outbox_depth", "Queued outbox rows", m.outbox_depth.clone());
        registry.register(
            "ingest_latency_seconds",
            "Webhook request to committed 200",
            m.ingest_latency.clone(),
        );
        registry.register(
            "event_to_send_seconds",
            "Webhook received to Graph API call",
            m.event_to_send.clone(),
        );
        registry.register(
            "send_latency_seconds",
            "Graph API send call duration",
            m.send_latency.clone(),
        );
        Metrics { registry, ..m }
    }

    /// Counts a received webhook.
    pub fn received(&self, outcome: &str) {
        self.webhooks_received
            .get_or_create(&labels(&[("outcome", outcome)]))
            .inc();
    }

    /// Counts a rejected webhook.
    pub fn rejected(&self, reason: &str) {
        self.webhooks_rejected
            .get_or_create(&labels(&[("reason", reason)]))
            .inc();
    }

    /// Counts a processed event.
    pub fn processed(&self, outcome: &str) {
        self.events_processed
            .get_or_create(&labels(&[("outcome", outcome)]))
            .inc();
    }

    /// Counts a send attempt.
    pub fn send(&self, kind: &str, outcome: &str) {
        self.sends
            .get_or_create(&labels(&[("kind", kind), ("outcome", outcome)]))
            .inc();
    }

    /// The text exposition.
    pub fn render(&self) -> String {
        let mut out = String::new();
        if encode(&mut out, &self.registry).is_err() {
            out.clear();
        }
        out
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}
