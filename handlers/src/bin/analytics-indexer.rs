//! Lambda: index the contact records and agent events Amazon Connect streams to Kinesis Data
//! Streams into OpenSearch (`core::analytics::stream` for the batch rules). Answers with
//! `ReportBatchItemFailures`: a retryable failure reports its record's sequence number (Lambda
//! re-delivers the shard from there); an unreadable record goes to the dead-letter queue
//! (`ANALYTICS_DLQ_URL`) and the batch goes on.

use aws_lambda_events::event::kinesis::KinesisEvent;
use aws_lambda_events::event::streams::{KinesisBatchItemFailure, KinesisEventResponse};
use connect_events_core::analytics::stream::{DeadLetters, StreamRecord};
use connect_events_core::analytics::Analytics;
use connect_events_core::HandlerError;
use connect_events_handlers::aws::{self, config, sqs::SqsDeadLetters};
use connect_events_handlers::lambda::{emit_metrics, init_tracing};
use lambda_runtime::{service_fn, tracing, LambdaEvent};

const FUNCTION: &str = "analytics-indexer";

async fn handle(
    analytics: &Analytics,
    dead_letters: &dyn DeadLetters,
    event: LambdaEvent<KinesisEvent>,
) -> Result<KinesisEventResponse, lambda_runtime::Error> {
    let records = &event.payload.records;
    let source = records
        .first()
        .and_then(|r| r.event_source_arn.clone())
        .unwrap_or_else(|| "kinesis".into());
    let batch: Vec<StreamRecord> = records
        .iter()
        .map(|r| StreamRecord {
            coordinates: r
                .event_id
                .clone()
                .unwrap_or_else(|| format!("?:{}", r.kinesis.sequence_number)),
            sequence_number: r.kinesis.sequence_number.clone(),
            data: r.kinesis.data.0.clone(),
        })
        .collect();
    let outcome = analytics
        .ingest_stream_batch(&source, &batch, dead_letters)
        .await;
    let s = &outcome.summary;
    tracing::info!(
        records = batch.len(),
        ctrs_stored = s.ctrs_stored,
        ctrs_stale = s.ctrs_stale,
        agent_events_stored = s.agent_events_stored,
        agent_events_duplicate = s.agent_events_duplicate,
        heartbeats = s.heartbeats,
        dead_lettered = outcome.dead_lettered,
        retry_from = outcome.retry_from.as_deref().unwrap_or("-"),
        "analytics batch"
    );
    if let Some(error) = &outcome.error {
        tracing::warn!(error = %error, "analytics batch stopped: the rest is re-delivered");
    }
    emit_metrics(
        FUNCTION,
        &[
            (
                "RecordsIndexed",
                (s.ctrs_stored + s.agent_events_stored) as u64,
            ),
            (
                "RecordsUnchanged",
                (s.ctrs_stale + s.agent_events_duplicate + s.heartbeats) as u64,
            ),
            ("RecordsDeadLettered", outcome.dead_lettered as u64),
            ("BatchesRetried", u64::from(outcome.retry_from.is_some())),
        ],
    );
    let mut response = KinesisEventResponse::default();
    if let Some(sequence) = outcome.retry_from {
        let mut failure = KinesisBatchItemFailure::default();
        failure.item_identifier = Some(sequence);
        response.batch_item_failures.push(failure);
    }
    Ok(response)
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_tracing();
    let settings = connect_events_handlers::lambda::settings_or_init_error().await?;
    let sdk = config::load(config::CallProfile::BACKGROUND).await;
    let analytics = aws::analytics(&sdk, &settings);
    let dead_letters = settings
        .analytics_dlq_url
        .as_deref()
        .map(|url| SqsDeadLetters::new(&sdk, url));
    let (analytics, dead_letters) = match (analytics, dead_letters) {
        (Ok(a), Some(d)) => (a, d),
        (Err(e), _) => return Err(connect_events_handlers::lambda::init_error(e).await),
        (_, None) => {
            return Err(
                connect_events_handlers::lambda::init_error(HandlerError::Config(
                    "ANALYTICS_DLQ_URL is not set: unreadable records need a dead-letter queue"
                        .into(),
                ))
                .await,
            )
        }
    };
    let (analytics, dead_letters) = (&analytics, &dead_letters);
    lambda_runtime::run(service_fn(move |event| {
        handle(analytics, dead_letters, event)
    }))
    .await
}
