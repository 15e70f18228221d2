//! Contact-center analytics: contact records (CTRs) and agent events from Connect's data streaming,
//! stored one document per contact (newest copy wins) and per agent event, and the dashboard's seven
//! metrics computed from them ([`metrics`]).
//!
//! This is the embedded half: [`Analytics::ingest`] applies Connect's dedupe rule (a CTR copy
//! replaces the stored one only when its `LastUpdateTimestamp` is newer; agent events by
//! `EventId`, heartbeats not stored), whatever the order and however often records arrive, and
//! [`Analytics::report`] evaluates the metrics.

pub mod dashboards;
pub mod input;
pub mod metrics;
pub mod queries;
pub mod record;
pub mod stream;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

pub use metrics::{calls_in_queue, evaluate, AnalyticsReport, DayCalls};
pub use record::{AgentEvent, ContactRecord, Incoming};

use crate::error::{HandlerError, PortError};
use crate::queue_depth::QueueDepthDoc;

/// Where analytics documents live (the embedded backend; OpenSearch in AWS).
#[async_trait]
pub trait AnalyticsStore: Send + Sync {
    /// Store a CTR copy if its version is newer than the stored one's: `true` = written.
    async fn put_ctr(&self, ctr: &ContactRecord) -> Result<bool, PortError>;
    /// Store an agent event by `EventId`: `true` = new.
    async fn put_agent_event(&self, event: &AgentEvent) -> Result<bool, PortError>;
    /// Store many records (no heartbeats), one result per record in order, as
    /// [`AnalyticsStore::put_ctr`] / [`AnalyticsStore::put_agent_event`] would give. The default
    /// calls those one by one; OpenSearch sends one `_bulk` request.
    async fn put_many(&self, records: &[&Incoming]) -> Vec<Result<bool, PortError>> {
        let mut out = Vec::with_capacity(records.len());
        for record in records {
            out.push(match record {
                Incoming::Ctr(c) => self.put_ctr(c).await,
                Incoming::AgentEvent(e) => self.put_agent_event(e).await,
            });
        }
        out
    }
    /// Metrics 1–6 of the window ([`metrics`]: the embedded evaluator; OpenSearch: the
    /// [`queries`]); `calls_in_queue` is left 0 ([`Analytics::report`] reads the queue depth).
    async fn metrics(&self, window: &queries::Window) -> Result<AnalyticsReport, PortError>;
}

/// Records per store round trip of [`Analytics::ingest_all`].
pub const INGEST_CHUNK: usize = 500;

/// What one record did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IngestOutcome {
    /// A CTR stored (first or newer copy).
    CtrStored,
    /// A CTR copy not newer than the stored one.
    CtrStale,
    AgentEventStored,
    /// An agent event already stored.
    AgentEventDuplicate,
    /// A heartbeat: not stored (it carries no change).
    Heartbeat,
}

/// What ingesting a set of records did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IngestSummary {
    pub ctrs_stored: usize,
    pub ctrs_stale: usize,
    pub agent_events_stored: usize,
    pub agent_events_duplicate: usize,
    pub heartbeats: usize,
    /// `(location, reason)` of every record that could not be ingested.
    pub failed: Vec<(String, String)>,
}

impl IngestSummary {
    /// Count one record's outcome.
    pub fn count(&mut self, outcome: IngestOutcome) {
        match outcome {
            IngestOutcome::CtrStored => self.ctrs_stored += 1,
            IngestOutcome::CtrStale => self.ctrs_stale += 1,
            IngestOutcome::AgentEventStored => self.agent_events_stored += 1,
            IngestOutcome::AgentEventDuplicate => self.agent_events_duplicate += 1,
            IngestOutcome::Heartbeat => self.heartbeats += 1,
        }
    }
}

/// The analytics capability.
pub struct Analytics {
    store: Box<dyn AnalyticsStore>,
}

impl Analytics {
    pub fn new(store: Box<dyn AnalyticsStore>) -> Self {
        Analytics { store }
    }

    /// Ingest one record ([`Analytics::ingest_many`] of one).
    pub async fn ingest(&self, record: &Incoming) -> Result<IngestOutcome, HandlerError> {
        self.ingest_many(std::slice::from_ref(record))
            .await
            .pop()
            .unwrap_or_else(|| {
                Err(HandlerError::Port(PortError::Unavailable {
                    service: "analytics store",
                    message: "no result for the record".into(),
                }))
            })
    }

    /// Ingest many records, one result per record in order (one store round trip on OpenSearch).
    pub async fn ingest_many(
        &self,
        records: &[Incoming],
    ) -> Vec<Result<IngestOutcome, HandlerError>> {
        let is_heartbeat =
            |r: &Incoming| matches!(r, Incoming::AgentEvent(e) if e.event_type == "HEART_BEAT");
        let stored: Vec<&Incoming> = records.iter().filter(|r| !is_heartbeat(r)).collect();
        let mut results = self.store.put_many(&stored).await.into_iter();
        records
            .iter()
            .map(|record| {
                if is_heartbeat(record) {
                    return Ok(IngestOutcome::Heartbeat);
                }
                let written = results.next().unwrap_or_else(|| {
                    Err(PortError::Unavailable {
                        service: "analytics store",
                        message: "fewer results than records".into(),
                    })
                })?;
                Ok(match (record, written) {
                    (Incoming::Ctr(_), true) => IngestOutcome::CtrStored,
                    (Incoming::Ctr(_), false) => IngestOutcome::CtrStale,
                    (Incoming::AgentEvent(_), true) => IngestOutcome::AgentEventStored,
                    (Incoming::AgentEvent(_), false) => IngestOutcome::AgentEventDuplicate,
                })
            })
            .collect()
    }

    /// Ingest every record read by [`input::read_records`]; a bad record is reported with its
    /// location and the rest are ingested.
    pub async fn ingest_all(&self, items: Vec<input::RecordItem>) -> IngestSummary {
        let mut summary = IngestSummary::default();
        let mut chunk: Vec<(String, Incoming)> = Vec::new();
        let mut items = items.into_iter().peekable();
        while items.peek().is_some() || !chunk.is_empty() {
            for item in items.by_ref() {
                match item.record.and_then(Incoming::from_value) {
                    Ok(record) => chunk.push((item.location, record)),
                    Err(reason) => summary.failed.push((item.location, reason)),
                }
                if chunk.len() == INGEST_CHUNK {
                    break;
                }
            }
            let (locations, records): (Vec<String>, Vec<Incoming>) = chunk.drain(..).unzip();
            for (location, result) in locations.into_iter().zip(self.ingest_many(&records).await) {
                match result {
                    Ok(outcome) => summary.count(outcome),
                    Err(e) => summary.failed.push((location, e.to_string())),
                }
            }
        }
        summary
    }

    /// The seven metrics of `[from, to)` in `tz`; `queue_docs` are the current queue-depth documents.
    pub async fn report(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        tz: chrono_tz::Tz,
        queue_docs: &[QueueDepthDoc],
    ) -> Result<AnalyticsReport, HandlerError> {
        let mut report = self
            .store
            .metrics(&queries::Window { from, to, tz })
            .await?;
        report.calls_in_queue = metrics::calls_in_queue(queue_docs);
        Ok(report)
    }
}
