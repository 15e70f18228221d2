//! Lambda plumbing shared by the binaries: logging, metrics, payload parsing and error reporting.
//!
//! Errors reach Lambda as `{"errorType": "<Name>", "errorMessage": "retryable: …"}` with stable
//! names (`MalformedEvent`, `Throttled`, `DependencyUnavailable`, `UnsafeBucket`,
//! `FlowLogsNotSettled`, …) instead of Rust type paths, so alarms and dead-letter consumers can
//! match on them.

use std::fmt;

use connect_events_core::event::Event;
use connect_events_core::HandlerError;
use lambda_runtime::Diagnostic;
use serde_json::{json, Value};

/// CloudWatch namespace of the embedded-metric-format lines.
pub const METRICS_NAMESPACE: &str = "ConnectEvents";

/// Initialise logging once per process: JSON lines when `AWS_LAMBDA_LOG_FORMAT=JSON`, level from
/// `AWS_LAMBDA_LOG_LEVEL` / `RUST_LOG` (default INFO). Phone numbers are only ever logged masked.
pub fn init_tracing() {
    lambda_runtime::tracing::init_default_subscriber();
}

/// A failed invocation, as Lambda reports it.
pub struct Failure {
    pub error_type: &'static str,
    pub message: String,
    pub retryable: bool,
}

impl From<HandlerError> for Failure {
    fn from(e: HandlerError) -> Self {
        Failure {
            error_type: e.error_type(),
            message: e.to_string(),
            retryable: e.retryable(),
        }
    }
}

/// The runtime also logs handler errors with `{:?}`: keep that line readable.
impl fmt::Debug for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {self}", self.error_type)
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let class = if self.retryable {
            "retryable"
        } else {
            "not retryable"
        };
        write!(f, "{class}: {}", self.message)
    }
}

impl From<Failure> for Diagnostic {
    fn from(f: Failure) -> Self {
        Diagnostic {
            error_type: f.error_type.to_string(),
            error_message: f.to_string(),
        }
    }
}

/// Parse the EventBridge payload; unusable input is a non-retryable `MalformedEvent`.
pub fn parse_event(payload: Value) -> Result<Event, Failure> {
    Event::from_value(payload).map_err(|e| Failure::from(HandlerError::MalformedEvent(e)))
}

/// Log a received event: its id, contact id, event type and whether it is a replay (never the
/// payload, which may hold personal data).
pub fn log_event(what: &str, event: &Event) {
    let contact = event.contact();
    lambda_runtime::tracing::info!(
        event_id = event.id().unwrap_or("-"),
        contact_id = contact.map(|c| c.contact_id.as_str()),
        event_type = contact.map(|c| c.event_type.as_str()),
        replay = event.is_replay(),
        "{what}"
    );
}

/// Print one CloudWatch embedded-metric-format line (counts) on stdout, dimension `Function`.
pub fn emit_metrics(function: &str, counts: &[(&str, u64)]) {
    if counts.is_empty() {
        return;
    }
    let metrics: Vec<Value> = counts
        .iter()
        .map(|(name, _)| json!({"Name": name, "Unit": "Count"}))
        .collect();
    let mut line = json!({
        "_aws": {
            "Timestamp": chrono::Utc::now().timestamp_millis(),
            "CloudWatchMetrics": [{"Namespace": METRICS_NAMESPACE, "Dimensions": [["Function"]], "Metrics": metrics}],
        },
        "Function": function,
    });
    for (name, value) in counts {
        line[*name] = json!(value);
    }
    println!("{line}");
}

/// Log and count a failure before returning it to the runtime.
pub fn report_failure(function: &str, failure: Failure) -> Failure {
    lambda_runtime::tracing::error!(error_type = failure.error_type, retryable = failure.retryable, error = %failure.message, "invocation failed");
    emit_metrics(function, &[("Failures", 1)]);
    failure
}

/// The settings from the environment; a bad variable is posted to the Runtime API's
/// `/runtime/init/error` (so Lambda reports `Runtime.InitError` with the reason, not a bare exit)
/// and returned.
pub async fn settings_or_init_error(
) -> Result<connect_events_core::settings::Settings, lambda_runtime::Error> {
    match connect_events_core::settings::Settings::from_env() {
        Ok(settings) => Ok(settings),
        Err(e) => {
            tracing::error!(error = %e, "invalid configuration");
            if let Ok(api) = std::env::var("AWS_LAMBDA_RUNTIME_API") {
                if let Err(post) = post_init_error(&api, e.error_type(), &e.to_string()).await {
                    tracing::error!(error = %post, "could not post /runtime/init/error");
                }
            }
            Err(Box::new(e))
        }
    }
}

/// `POST /2018-06-01/runtime/init/error` over a plain HTTP/1.1 connection (the Runtime API is
/// local HTTP; no client crate needed for one request).
async fn post_init_error(api: &str, error_type: &str, message: &str) -> std::io::Result<()> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let body = json!({"errorType": error_type, "errorMessage": message}).to_string();
    let request = format!(
        "POST /2018-06-01/runtime/init/error HTTP/1.1\r\nHost: {api}\r\n\
         Lambda-Runtime-Function-Error-Type: {error_type}\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
        body.len()
    );
    let mut stream = tokio::net::TcpStream::connect(api).await?;
    stream.write_all(request.as_bytes()).await?;
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use connect_events_core::PortError;

    #[test]
    fn diagnostics_have_stable_names_and_say_retryable() {
        let d: Diagnostic = Failure::from(HandlerError::from(PortError::Throttled {
            service: "connect",
            message: "429".into(),
        }))
        .into();
        assert_eq!(d.error_type, "Throttled");
        assert!(d.error_message.starts_with("retryable: "));
        let d: Diagnostic = parse_event(json!({"source": "aws.connect"}))
            .unwrap_err()
            .into();
        assert_eq!(d.error_type, "MalformedEvent");
        assert!(
            d.error_message.starts_with("not retryable: "),
            "{}",
            d.error_message
        );
    }
}
