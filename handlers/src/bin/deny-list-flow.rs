//! Lambda: the contact-flow deny-list check (`action=check`, default) and agent flag
//! (`action=flag`). Answers a flat string map (STRING_MAP) and never fails the block: a payload it
//! cannot read gets `{"Success": "false", "result": "bad_request"}`.
//!
//! The answer waits for one DynamoDB read; a listed caller's hit is counted after the response is
//! posted, before the runtime asks for the next event (`after_response`), with retryable failures
//! kept for the next invocation (`deny_list::hits`).

use aws_lambda_events::connect::ConnectResponse;
use chrono::Utc;
use connect_events_core::deny_list::{DenyListService, FlowAnswer, HitBacklog};
use connect_events_core::event::flow::FlowInvocation;
use connect_events_handlers::after_response::AfterResponseLayer;
use connect_events_handlers::aws::{self, config};
use connect_events_handlers::lambda::{emit_metrics, init_tracing};
use lambda_runtime::{layers::TracingLayer, service_fn, tracing, LambdaEvent, Runtime};
use serde_json::Value;

const FUNCTION: &str = "deny-list-flow";

/// Longest time spent counting hits after a response before starting another count (the flow
/// budget is 3 s and the function's timeout 5 s; one count is bounded to 2 s by the SDK).
const AFTER_RESPONSE_BUDGET: std::time::Duration = std::time::Duration::from_millis(500);

async fn handle(
    service: &DenyListService,
    hits: &HitBacklog,
    event: LambdaEvent<Value>,
) -> Result<ConnectResponse, lambda_runtime::Error> {
    let invocation = match FlowInvocation::from_value(&event.payload) {
        Ok(i) => i,
        Err(e) => {
            tracing::warn!(error = %e, "unreadable contact-flow payload");
            emit_metrics(FUNCTION, &[("Failures", 1)]);
            return Ok(ConnectResponse::from([
                ("Success".into(), "false".into()),
                ("result".into(), "bad_request".into()),
            ]));
        }
    };
    tracing::info!(
        contact_id = invocation.contact_id().unwrap_or("-"),
        action = invocation.parameter("action").as_deref().unwrap_or("check"),
        "deny-list flow request"
    );
    let FlowAnswer { answer, hit } = service.flow_answer(&invocation, Utc::now()).await;
    if let Some(hit) = hit {
        hits.push(hit);
    }
    let hit = answer.get("result").is_some_and(|r| r == "listed");
    emit_metrics(
        FUNCTION,
        &[("EventsHandled", 1), ("DenyListHits", u64::from(hit))],
    );
    Ok(answer.into_iter().collect())
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_tracing();
    let settings = connect_events_handlers::lambda::settings_or_init_error().await?;
    // No libphonenumber metadata at init: numbers Connect presents are E.164 keys as they are
    // (`deny_list::intake`), so the metadata is loaded only by the rare typed number that needs it.
    // Contact flows wait at most 8 s: every AWS call is bounded to 2 s.
    let sdk = config::load(config::CallProfile::INTERACTIVE).await;
    // Both live as long as the process: the after-response job outlives each invocation.
    let service: &'static DenyListService =
        Box::leak(Box::new(aws::deny_list_service(&sdk, &settings)));
    let hits: &'static HitBacklog = Box::leak(Box::default());
    let count_hits = move || async move {
        if hits.is_empty() {
            return;
        }
        // Bounded: the answer is out, but the invocation still has to end inside its timeout.
        let run = hits
            .count_within(service, Some(AFTER_RESPONSE_BUDGET))
            .await;
        tracing::debug!(
            counted = run.counted,
            waiting = run.waiting,
            dropped = run.dropped,
            "deny-list hits counted after the response"
        );
        if run.waiting + run.dropped > 0 {
            emit_metrics(
                FUNCTION,
                &[
                    ("HitsWaiting", run.waiting as u64),
                    ("HitsDropped", run.dropped as u64),
                ],
            );
        }
    };
    Runtime::new(service_fn(move |event| handle(service, hits, event)))
        .layer(TracingLayer::new())
        .layer(AfterResponseLayer::new(count_hits))
        .run()
        .await
}
