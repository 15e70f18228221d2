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

/// Crates whose TRACE lines print what goes over the wire: the runtime logs the raw event ("raw JSON
/// event received from Lambda"), the SDK's HTTP stack request and response bodies (a DynamoDB key is
/// the caller's number).
const WIRE_TARGETS: &[&str] = &[
    "lambda_runtime",
    "lambda_runtime_api_client",
    "aws_smithy_runtime",
    "aws_smithy_runtime_api",
    "aws_smithy_http_client",
    "aws_smithy_types",
    "aws_sigv4",
    "aws_config",
    "hyper",
    "hyper_util",
    "h2",
];

/// Opt-in to wire logging at TRACE (payloads and bodies in clear: for a test account only).
pub const LOG_BODIES_VAR: &str = "CONNECT_EVENTS_LOG_BODIES";

/// Initialise logging once per process: JSON lines when `AWS_LAMBDA_LOG_FORMAT=JSON`, level from
/// `AWS_LAMBDA_LOG_LEVEL` / `RUST_LOG` (default INFO), directives from `RUST_LOG`, as
/// `lambda_runtime`'s default subscriber. Phone numbers are only ever logged masked; so that stays
/// true at TRACE, the [`WIRE_TARGETS`] are held at DEBUG unless `CONNECT_EVENTS_LOG_BODIES=true`.
pub fn init_tracing() {
    init_tracing_to(std::io::stdout);
}

/// [`init_tracing`] writing to `writer` (the CLI's server logs to stderr: stdout is its output).
pub fn init_tracing_to<W>(writer: W)
where
    W: for<'w> lambda_runtime::tracing::subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    use lambda_runtime::tracing::subscriber;
    let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
    let bodies = var(LOG_BODIES_VAR).is_some_and(|v| v.eq_ignore_ascii_case("true"));
    let (filter, held) = log_filter(
        var("AWS_LAMBDA_LOG_LEVEL").as_deref(),
        var("RUST_LOG").as_deref(),
        bodies,
    );
    let collector = subscriber::fmt()
        .with_target(false)
        .without_time()
        .with_writer(writer)
        .with_env_filter(filter);
    if var("AWS_LAMBDA_LOG_FORMAT").is_some_and(|f| f.eq_ignore_ascii_case("json")) {
        collector.json().init();
    } else {
        collector.init();
    }
    if held {
        lambda_runtime::tracing::warn!(
            "TRACE wire logging of the Lambda runtime and the AWS SDK is held at DEBUG: it prints \
             event payloads and request bodies with callers' numbers; {LOG_BODIES_VAR}=true allows it"
        );
    }
}

/// The filter of [`init_tracing`] and whether it held wire targets back from TRACE.
fn log_filter(
    lambda_level: Option<&str>,
    rust_log: Option<&str>,
    bodies: bool,
) -> (lambda_runtime::tracing::subscriber::EnvFilter, bool) {
    use lambda_runtime::tracing::subscriber::filter::{EnvFilter, LevelFilter};
    use std::str::FromStr;
    let level = lambda_level
        .or(rust_log)
        .and_then(|l| LevelFilter::from_str(l).ok())
        .unwrap_or(LevelFilter::INFO);
    // `AWS_LAMBDA_LOG_LEVEL` (the function's ApplicationLogLevel) takes precedence over any other
    // setting, as AWS documents it: `RUST_LOG` directives apply only without it (otherwise the
    // template's `RUST_LOG: info` would silently cap a level raised in the console).
    let directives = if lambda_level.is_some() {
        ""
    } else {
        rust_log.unwrap_or_default()
    };
    let mut filter = EnvFilter::builder()
        .with_default_directive(level.into())
        .parse_lossy(directives);
    if bodies {
        return (filter, false);
    }
    // Never more verbose than the function's level (a wire target must not become louder than the
    // rest), never TRACE; replaces any RUST_LOG directive for the same crate.
    let cap = level.min(LevelFilter::DEBUG);
    for target in WIRE_TARGETS {
        if let Ok(d) = format!("{target}={cap}").parse() {
            filter = filter.add_directive(d);
        }
    }
    let asked_trace =
        level == LevelFilter::TRACE || directives.to_ascii_lowercase().contains("trace");
    (filter, asked_trace)
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
        Err(e) => Err(init_error(e).await),
    }
}

/// Reports a configuration error found at init to the Runtime API's `/runtime/init/error` and
/// returns it for `main` to exit with.
pub async fn init_error(e: connect_events_core::HandlerError) -> lambda_runtime::Error {
    tracing::error!(error = %e, "invalid configuration");
    if let Ok(api) = std::env::var("AWS_LAMBDA_RUNTIME_API") {
        if let Err(post) = post_init_error(&api, e.error_type(), &e.to_string()).await {
            tracing::error!(error = %post, "could not post /runtime/init/error");
        }
    }
    Box::new(e)
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
    fn wire_targets_never_log_at_trace_without_the_opt_in() {
        let (filter, held) = log_filter(Some("TRACE"), None, false);
        let text = filter.to_string();
        assert!(held);
        assert!(text.contains("aws_smithy_runtime=debug"), "{text}");
        assert!(text.contains("lambda_runtime=debug"), "{text}");
        // A RUST_LOG directive asking for the SDK's wire at TRACE is held too.
        let (filter, held) = log_filter(None, Some("info,aws_smithy_runtime=trace"), false);
        let text = filter.to_string();
        assert!(held);
        assert!(!text.contains("aws_smithy_runtime=trace"), "{text}");
        // At INFO the wire stays at INFO: holding back never makes a crate louder.
        let (filter, held) = log_filter(Some("INFO"), None, false);
        assert!(!held);
        assert!(filter.to_string().contains("aws_smithy_runtime=info"));
        // AWS_LAMBDA_LOG_LEVEL wins over the template's RUST_LOG.
        let (filter, _) = log_filter(Some("DEBUG"), Some("info"), false);
        assert!(filter.to_string().contains("debug"), "{filter}");
        assert!(!filter.to_string().contains("info"), "{filter}");
        // Opted in: exactly what was asked.
        let (filter, held) = log_filter(Some("TRACE"), None, true);
        assert!(!held);
        assert!(!filter.to_string().contains("aws_smithy_runtime"));
    }

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
