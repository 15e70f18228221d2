use async_trait::async_trait;

use super::model::{MetricSnapshot, QueueDepthDoc, QueueRef};
use crate::error::PortError;
use crate::event::Channel;

/// Amazon Connect's real-time metrics (`ListQueues`, `GetCurrentMetricData`) or a local model.
#[async_trait]
pub trait MetricsSource: Send + Sync {
    /// The instance's STANDARD queues.
    async fn list_queues(&self, instance_id: &str) -> Result<Vec<QueueRef>, PortError>;

    /// Current metrics grouped by queue and channel for the given queues and channels. The source
    /// splits the queues in chunks of at most 100 and follows pagination.
    async fn current_metrics(
        &self,
        instance_id: &str,
        queues: &[QueueRef],
        channels: &[Channel],
    ) -> Result<MetricSnapshot, PortError>;
}

/// How a batch write went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteOutcome {
    pub written: usize,
    /// Documents not written because the index already holds a newer or equal snapshot.
    pub stale_skipped: usize,
}

/// The queue-depth index (OpenSearch, or documents on disk).
#[async_trait]
pub trait QueueDepthIndex: Send + Sync {
    /// Create the index template / index when missing. Idempotent; never deletes.
    async fn ensure_ready(&self) -> Result<(), PortError>;

    /// Write documents with external versioning ([`QueueDepthDoc::version`]): a document whose
    /// stored version is newer or equal is left alone and counted as `stale_skipped`.
    async fn write(&self, docs: &[QueueDepthDoc]) -> Result<WriteOutcome, PortError>;

    /// Every document of the index.
    async fn documents(&self) -> Result<Vec<QueueDepthDoc>, PortError>;

    /// Claim the refresh slot starting at `slot_start_ms` (epoch milliseconds) of an instance: the
    /// claim wins iff no claim of this or a later slot start was made, across all containers (a
    /// conditional write of a lease document, external version = `slot_start_ms`). Exactly one
    /// caller per slot wins; versions are instants, so claims made with different refresh
    /// intervals compare correctly.
    async fn try_claim(&self, instance_id: &str, slot_start_ms: i64) -> Result<bool, PortError>;
}
