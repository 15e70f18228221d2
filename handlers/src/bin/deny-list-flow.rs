//! Lambda: the contact-flow deny-list check (`action=check`, default) and agent flag
//! (`action=flag`). Answers a flat string map (STRING_MAP) and never fails the block: a payload it
//! cannot read gets `{"Success": "false", "result": "bad_request"}`.

use aws_lambda_events::connect::ConnectResponse;
use chrono::Utc;
use connect_events_core::deny_list::DenyListService;
use connect_events_core::event::flow::FlowInvocation;
use connect_events_handlers::aws::{self, config};
use connect_events_handlers::lambda::{emit_metrics, init_tracing};
use lambda_runtime::{service_fn, tracing, LambdaEvent};
use serde_json::Value;

const FUNCTION: &str = "deny-list-flow";

async fn handle(
    service: &DenyListService,
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
    let answer = service.flow(&invocation, Utc::now()).await;
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
    let service = aws::deny_list_service(&sdk, &settings);
    let service = &service;
    lambda_runtime::run(service_fn(move |event| handle(service, event))).await
}
