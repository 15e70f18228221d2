//! Lambda: refresh the queue-depth index on contact events and on the reconciliation schedule.

use connect_events_core::clock::SystemClock;
use connect_events_core::queue_depth::{QueueDepthOutcome, QueueDepthService};
use connect_events_core::settings::Settings;
use connect_events_handlers::aws::{self, config};
use connect_events_handlers::lambda::{
    emit_metrics, init_tracing, log_event, parse_event, report_failure, Failure,
};
use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::{json, Value};

const FUNCTION: &str = "queue-depth";

async fn handle(
    service: &QueueDepthService,
    settings: &Settings,
    event: LambdaEvent<Value>,
) -> Result<Value, Failure> {
    let result = async {
        let event = parse_event(event.payload)?;
        log_event("queue-depth event", &event);
        Ok::<_, Failure>(
            service
                .on_event_live(&event, &SystemClock, settings.queue_depth_max_wait)
                .await?,
        )
    }
    .await
    .map_err(|f| report_failure(FUNCTION, f))?;
    Ok(match result {
        QueueDepthOutcome::Refreshed {
            instance_id,
            api_calls,
            written,
            stale_skipped,
            snapshot_time,
        } => {
            emit_metrics(
                FUNCTION,
                &[
                    ("EventsHandled", 1),
                    ("Refreshes", 1),
                    ("MetricApiCalls", api_calls.into()),
                    ("StaleWritesSkipped", stale_skipped as u64),
                ],
            );
            json!({"outcome": "refreshed", "instanceId": instance_id, "metricApiCalls": api_calls, "written": written, "staleSkipped": stale_skipped, "snapshotTime": snapshot_time})
        }
        QueueDepthOutcome::Coalesced {
            instance_id,
            retry_at,
            ..
        } => {
            emit_metrics(FUNCTION, &[("EventsHandled", 1), ("Coalesced", 1)]);
            json!({"outcome": "coalesced", "instanceId": instance_id, "coveredFrom": retry_at})
        }
        QueueDepthOutcome::Ignored { reason } => {
            emit_metrics(FUNCTION, &[("EventsHandled", 1)]);
            json!({"outcome": "ignored", "reason": reason})
        }
    })
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_tracing();
    let settings = connect_events_handlers::lambda::settings_or_init_error().await?;
    let sdk = config::load(config::CallProfile::BACKGROUND).await;
    let service = aws::queue_depth_service(&sdk, &settings)?;
    let (service, settings) = (&service, &settings);
    lambda_runtime::run(service_fn(move |event| handle(service, settings, event))).await
}
