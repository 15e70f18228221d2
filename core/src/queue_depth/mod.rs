//! Queue depth: keep a current-state index of contacts waiting per queue and channel, refreshed
//! from Amazon Connect's `GetCurrentMetricData`, without exceeding the account-wide API quota.
//!
//! * [`model`] — queues, metric snapshots and the index documents;
//! * [`ports`] — what the policy needs: a metrics source and an index;
//! * [`policy`] — the coalescing refresh policy (one metrics call per slot per instance across all
//!   Lambda containers, trailing refresh for freshness).

pub mod model;
pub mod policy;
pub mod ports;

pub use model::{MetricSnapshot, QueueDepthDoc, QueueMetrics, QueueRef, Trigger};
pub use policy::{QueueDepthConfig, QueueDepthOutcome, QueueDepthService};
pub use ports::{MetricsSource, QueueDepthIndex, WriteOutcome};
