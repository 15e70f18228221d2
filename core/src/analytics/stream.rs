//! A batch of streamed records (Kinesis Data Streams: Connect's contact records and agent events),
//! ingested in order with Lambda's partial-batch semantics (`ReportBatchItemFailures`).
//!
//! * A record that cannot be read (not JSON, neither a contact record nor an agent event, no
//!   timestamp to date it, refused by the index) is **dead-lettered** ([`DeadLetters`]: its
//!   coordinates `shard:sequence` and the reason, never its content) and the batch goes on: a bad
//!   record never blocks its shard.
//! * The readable records are stored in one store round trip (OpenSearch `_bulk`), then settled in
//!   order: the first retryable failure (the index or the dead-letter queue throttled or
//!   unreachable) ends the batch and reports its sequence number, and Lambda re-delivers the shard
//!   from there. Records after it that were stored anyway come again and change nothing.
//! * Every write is idempotent (external versions, create-by-id), so re-delivered records change
//!   nothing: the batch can be retried whole or in part, in any order.

use async_trait::async_trait;
use serde::Serialize;

use super::record::Incoming;
use super::{Analytics, IngestSummary};
use crate::error::{HandlerError, PortError};

/// One streamed record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamRecord {
    /// `shardId:sequenceNumber` (Lambda's `eventID`), or a file location in a replay.
    pub coordinates: String,
    /// The Kinesis sequence number (what a partial-batch failure reports).
    pub sequence_number: String,
    /// The record's data (Connect writes one JSON object per record).
    pub data: Vec<u8>,
}

/// A record set aside: where it was and why, without its content (it may hold personal data).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DeadLetter {
    /// The stream (its ARN) or the archive the record came from.
    pub source: String,
    /// `shardId:sequenceNumber`.
    pub record: String,
    /// Why it was set aside (fixed texts and field names, no values).
    pub reason: String,
}

/// Where dead letters go (SQS in AWS).
#[async_trait]
pub trait DeadLetters: Send + Sync {
    async fn send(&self, letter: &DeadLetter) -> Result<(), PortError>;
}

/// What a batch did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamBatchOutcome {
    pub summary: IngestSummary,
    /// Records dead-lettered.
    pub dead_lettered: usize,
    /// The sequence number to report as the batch's failure (Lambda retries from it), if any.
    pub retry_from: Option<String>,
    /// The retryable error that stopped the batch.
    pub error: Option<String>,
}

impl Analytics {
    /// Ingest a batch in order (see the module docs); `source` names the stream in dead letters.
    pub async fn ingest_stream_batch(
        &self,
        source: &str,
        records: &[StreamRecord],
        dead_letters: &dyn DeadLetters,
    ) -> StreamBatchOutcome {
        // Read every record, store the readable ones in one round trip, then settle in order.
        let parsed: Vec<Result<Incoming, String>> = records
            .iter()
            .map(|record| {
                serde_json::from_slice(&record.data)
                    .map_err(|e| {
                        format!("not JSON: {}", crate::redact::serde_reason(&e.to_string()))
                    })
                    .and_then(Incoming::from_value)
            })
            .collect();
        let readable: Vec<Incoming> = parsed
            .iter()
            .filter_map(|p| p.as_ref().ok().cloned())
            .collect();
        let mut stored = self.ingest_many(&readable).await.into_iter();
        let mut out = StreamBatchOutcome::default();
        for (record, parsed) in records.iter().zip(parsed) {
            let result = match parsed {
                Ok(_) => stored.next().map_or_else(
                    || Err(Failure::Malformed("no store result".into())),
                    |r| r.map_err(Failure::Port),
                ),
                Err(reason) => Err(Failure::Malformed(reason)),
            };
            let reason = match result {
                Ok(outcome) => {
                    out.summary.count(outcome);
                    continue;
                }
                Err(Failure::Port(e)) if e.retryable() => {
                    out.retry_from = Some(record.sequence_number.clone());
                    out.error = Some(e.to_string());
                    return out;
                }
                // Server messages may quote the document: numbers are starred.
                Err(Failure::Port(e)) => crate::redact::redact_numbers(&e.to_string()),
                Err(Failure::Malformed(reason)) => reason,
            };
            let letter = DeadLetter {
                source: source.to_owned(),
                record: record.coordinates.clone(),
                reason,
            };
            match dead_letters.send(&letter).await {
                Ok(()) => {
                    tracing::error!(record = %letter.record, reason = %letter.reason, "analytics record dead-lettered");
                    out.summary.failed.push((letter.record, letter.reason));
                    out.dead_lettered += 1;
                }
                Err(e) => {
                    // Nothing is lost: without the dead letter, the record is retried.
                    out.retry_from = Some(record.sequence_number.clone());
                    out.error = Some(format!("dead-letter queue: {e}"));
                    return out;
                }
            }
        }
        out
    }
}

enum Failure {
    Port(HandlerError),
    Malformed(String),
}
