//! The gateway's Prometheus metrics (`GET /metrics`, and `--metrics-listen`): counters the
//! session stream, the API and the store writer move as they work, encoded by
//! `prometheus-client`. Labels carry target, rule and state names, never data.

use std::time::Duration;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::Registry;

type Labels = Vec<(&'static str, String)>;

pub struct Metrics {
    registry: Registry,
    sessions_open: Gauge,
    sessions_started: Family<Labels, Counter>,
    sessions_ended: Family<Labels, Counter>,
    bytes: Family<Labels, Counter>,
    masks: Family<Labels, Counter>,
    denials: Family<Labels, Counter>,
    reviews: Family<Labels, Counter>,
    refused: Family<Labels, Counter>,
    store_write: Histogram,
    relay: Histogram,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Metrics")
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    pub fn new() -> Metrics {
        let mut m = Metrics {
            registry: Registry::with_prefix("hoopx"),
            sessions_open: Gauge::default(),
            sessions_started: Family::default(),
            sessions_ended: Family::default(),
            bytes: Family::default(),
            masks: Family::default(),
            denials: Family::default(),
            reviews: Family::default(),
            refused: Family::default(),
            // 50 µs to ~1.6 s.
            store_write: Histogram::new(exponential_buckets(0.00005, 2.0, 16)),
            relay: Histogram::new(exponential_buckets(0.00005, 2.0, 16)),
        };
        let r = &mut m.registry;
        r.register(
            "sessions_open",
            "Session streams running on this replica",
            m.sessions_open.clone(),
        );
        r.register(
            "sessions_started",
            "Sessions opened, by target",
            m.sessions_started.clone(),
        );
        r.register(
            "sessions_ended",
            "Sessions ended, by target and outcome (exited, killed, aborted, denied, …)",
            m.sessions_ended.clone(),
        );
        r.register(
            "session_bytes",
            "Bytes relayed: in (caller to tool) and out (tool output, before masking)",
            m.bytes.clone(),
        );
        r.register("masks", "Values masked, by rule", m.masks.clone());
        r.register(
            "denials",
            "Commands, lines and requests withheld, by rule",
            m.denials.clone(),
        );
        r.register(
            "reviews",
            "Review transitions, by the state reached (pending, approved, rejected, expired, revoked, used)",
            m.reviews.clone(),
        );
        r.register(
            "requests_refused",
            "Requests refused by a limit, by reason",
            m.refused.clone(),
        );
        r.register(
            "store_write_seconds",
            "Time to commit one batch of a recording to the store",
            m.store_write.clone(),
        );
        r.register(
            "relay_seconds",
            "Time from a frame reaching the gateway to its answer leaving, recorded",
            m.relay.clone(),
        );
        m
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }

    pub(crate) fn session_opened(&self) {
        self.sessions_open.inc();
    }

    pub(crate) fn session_closed(&self) {
        self.sessions_open.dec();
    }

    pub(crate) fn started(&self, target: &str) {
        self.sessions_started
            .get_or_create(&vec![("target", target.to_string())])
            .inc();
    }

    pub(crate) fn ended(&self, target: &str, outcome: &str) {
        self.sessions_ended
            .get_or_create(&vec![
                ("target", target.to_string()),
                ("outcome", outcome.to_string()),
            ])
            .inc();
    }

    /// The byte counters of one target: (in, out), for a session to keep.
    pub(crate) fn bytes_of(&self, target: &str) -> (Counter, Counter) {
        let c = |dir: &str| {
            self.bytes
                .get_or_create(&vec![
                    ("target", target.to_string()),
                    ("direction", dir.to_string()),
                ])
                .clone()
        };
        (c("in"), c("out"))
    }

    pub(crate) fn masked(&self, rule: &str, n: u64) {
        self.masks
            .get_or_create(&vec![("rule", rule.to_string())])
            .inc_by(n);
    }

    pub(crate) fn denied(&self, rule: &str) {
        self.denials
            .get_or_create(&vec![("rule", rule.to_string())])
            .inc();
    }

    pub(crate) fn review(&self, state: &str) {
        self.reviews
            .get_or_create(&vec![("state", state.to_string())])
            .inc();
    }

    pub(crate) fn refused(&self, reason: &str) {
        self.refused
            .get_or_create(&vec![("reason", reason.to_string())])
            .inc();
    }

    pub(crate) fn store_write(&self) -> Histogram {
        self.store_write.clone()
    }

    pub(crate) fn relayed(&self, took: Duration) {
        self.relay.observe(took.as_secs_f64());
    }
}
