//! Lambda: archive a contact's flow logs to S3 when it disconnects or signals an error.
//! Unsettled logs fail with the retryable `FlowLogsNotSettled`, so Lambda retries later; a contact
//! still without logs on Lambda's last retry is `skipped_no_logs` (see `flow_logs::LAMBDA_NO_LOGS_GRACE`).

use chrono::Utc;
use connect_events_core::flow_logs::{self, ArchiveOutcome, ArchiveRequest, FlowLogArchiver};
use connect_events_core::HandlerError;
use connect_events_handlers::aws::{self, config};
use connect_events_handlers::lambda::{
    emit_metrics, init_tracing, log_event, parse_event, report_failure, Failure,
};
use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::{json, Value};

const FUNCTION: &str = "flow-log-archiver";

async fn handle(archiver: &FlowLogArchiver, event: LambdaEvent<Value>) -> Result<Value, Failure> {
    let outcome = async {
        let event = parse_event(event.payload)?;
        let contact = event.contact().ok_or_else(|| {
            HandlerError::InvalidInput(format!(
                "expected a contact event, got {:?}",
                event.envelope.detail_type
            ))
        })?;
        log_event("archiving flow logs", &event);
        let request = ArchiveRequest::from_event(&event, contact)?;
        Ok::<_, Failure>(archiver.archive(&request, Utc::now()).await?)
    }
    .await
    .map_err(|f| report_failure(FUNCTION, f))?;
    Ok(match outcome {
        ArchiveOutcome::Archived {
            location,
            summary,
            new_entries,
            ..
        } => {
            emit_metrics(
                FUNCTION,
                &[
                    ("EventsHandled", 1),
                    ("Archives", 1),
                    ("ArchivedEntries", summary.entries as u64),
                    ("ArchivesWithErrors", u64::from(summary.has_errors)),
                ],
            );
            json!({"outcome": "archived", "location": location, "entries": summary.entries, "newEntries": new_entries, "hasErrors": summary.has_errors, "errors": summary.errors})
        }
        ArchiveOutcome::Unchanged {
            location, summary, ..
        } => {
            emit_metrics(FUNCTION, &[("EventsHandled", 1)]);
            json!({"outcome": "unchanged", "location": location, "entries": summary.entries, "hasErrors": summary.has_errors})
        }
        ArchiveOutcome::SkippedNoLogs { contact_id } => {
            emit_metrics(FUNCTION, &[("EventsHandled", 1), ("SkippedNoLogs", 1)]);
            json!({"outcome": "skipped_no_logs", "contactId": contact_id})
        }
    })
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_tracing();
    let mut settings = connect_events_handlers::lambda::settings_or_init_error().await?;
    // Live contacts: wait for the logs to settle unless configured otherwise.
    if std::env::var_os("FLOW_LOGS_SETTLE_POLLS").is_none() {
        settings.flow_logs.settle_polls = 3;
    }
    if std::env::var_os("FLOW_LOGS_NO_LOGS_GRACE_S").is_none() {
        settings.flow_logs.no_logs_grace = flow_logs::LAMBDA_NO_LOGS_GRACE;
    }
    let sdk = config::load(config::CallProfile::BACKGROUND).await;
    let archiver = aws::flow_log_archiver(&sdk, &settings);
    let archiver = &archiver;
    lambda_runtime::run(service_fn(move |event| handle(archiver, event))).await
}
