//! Lambda: stop the contacts of listed callers on `INITIATED` contact events.
//!
//! Replayed events (`replay-name`) never stop a contact unless `DENYLIST_STOP_REPLAYED=true`
//! (the rule lives in `DenyListService::enforce`, shared with `replay --allow-side-effects`).

use chrono::Utc;
use connect_events_core::deny_list::{DenyListService, EnforceOutcome};
use connect_events_handlers::aws::{self, config};
use connect_events_handlers::lambda::{
    emit_metrics, init_tracing, log_event, parse_event, report_failure, Failure,
};
use lambda_runtime::{service_fn, LambdaEvent};
use serde_json::{json, Value};

const FUNCTION: &str = "deny-list-enforcer";

async fn handle(service: &DenyListService, event: LambdaEvent<Value>) -> Result<Value, Failure> {
    let outcome = async {
        let event = parse_event(event.payload)?;
        log_event("deny-list enforcement", &event);
        Ok::<_, Failure>(service.enforce(&event, Utc::now(), true).await?)
    }
    .await
    .map_err(|f| report_failure(FUNCTION, f))?;
    let (name, counts): (&str, &[(&str, u64)]) = match &outcome {
        EnforceOutcome::Stopped => ("stopped", &[("DenyListHits", 1), ("StoppedContacts", 1)]),
        EnforceOutcome::AlreadyEnded => ("already_ended", &[("DenyListHits", 1)]),
        EnforceOutcome::DryRun => ("dry_run", &[("DenyListHits", 1)]),
        EnforceOutcome::NotListed => ("not_listed", &[]),
        EnforceOutcome::NoNumber(_) => ("no_number", &[]),
        EnforceOutcome::Skipped(_) => ("skipped", &[]),
    };
    emit_metrics(FUNCTION, &[&[("EventsHandled", 1)], counts].concat());
    let reason = match &outcome {
        EnforceOutcome::NoNumber(r) | EnforceOutcome::Skipped(r) => Some(*r),
        _ => None,
    };
    Ok(json!({"outcome": name, "reason": reason}))
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_tracing();
    let settings = connect_events_handlers::lambda::settings_or_init_error().await?;
    // No libphonenumber metadata at init: numbers Connect presents are E.164 keys as they are
    // (`deny_list::intake`), so the metadata is loaded only by the rare typed number that needs it.
    let sdk = config::load(config::CallProfile::BACKGROUND).await;
    let service = aws::deny_list_service(&sdk, &settings);
    let service = &service;
    lambda_runtime::run(service_fn(move |event| handle(service, event))).await
}
