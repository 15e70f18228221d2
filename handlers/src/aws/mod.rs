//! AWS adapters: one file per service, each implementing ports of `connect-events-core`.

pub mod config;
pub mod connect;
pub mod dynamodb;
pub mod logs;
pub mod opensearch;
pub mod s3;

use aws_sdk_connect::config::http::HttpResponse;
use aws_sdk_connect::error::{ProvideErrorMetadata, SdkError};
use connect_events_core::PortError;

/// Error codes that mean "slow down" (retryable), as the SDKs classify them.
const THROTTLING_CODES: &[&str] = &[
    "Throttling",
    "ThrottlingException",
    "ThrottledException",
    "TooManyRequestsException",
    "ProvisionedThroughputExceededException",
    "RequestLimitExceeded",
    "RequestThrottled",
    "RequestThrottledException",
    "SlowDown",
    "LimitExceededException",
];

/// Classify an SDK failure as a [`PortError`]: throttling and server/transport failures are
/// retryable; not-found, conditional failures and other client errors are not.
/// (`HttpResponse` is the same smithy type in every SDK crate.)
pub fn port_error<E>(
    service: &'static str,
    operation: &str,
    err: SdkError<E, HttpResponse>,
) -> PortError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let message = |detail: String| format!("{operation}: {detail}");
    match &err {
        SdkError::ServiceError(ctx) => {
            let e = ctx.err();
            let code = e.code().unwrap_or("Unknown");
            let text = message(format!("{code}: {}", e.message().unwrap_or("no message")));
            classify_code(service, code, text, Some(ctx.raw().status().as_u16()))
        }
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            PortError::Unavailable {
                service,
                message: message(format!("{}", DisplayErrorContext(&err))),
            }
        }
        _ => PortError::Rejected {
            service,
            message: message(format!("{}", DisplayErrorContext(&err))),
        },
    }
}

/// Classify by error code and HTTP status (shared with the OpenSearch adapter).
pub fn classify_code(
    service: &'static str,
    code: &str,
    message: String,
    status: Option<u16>,
) -> PortError {
    if THROTTLING_CODES.contains(&code) || status == Some(429) {
        return PortError::Throttled { service, message };
    }
    if code.ends_with("NotFoundException")
        || code.starts_with("NoSuch")
        || code == "NotFound"
        || status == Some(404)
    {
        return PortError::NotFound { service, message };
    }
    if code == "ConditionalCheckFailedException"
        || code == "PreconditionFailed"
        || code == "ConditionalRequestConflict"
        || status == Some(409)
        || status == Some(412)
    {
        return PortError::Conflict { service, message };
    }
    if status.is_some_and(|s| s >= 500)
        || code.starts_with("InternalServ")
        || code == "ServiceUnavailable"
    {
        return PortError::Unavailable { service, message };
    }
    PortError::Rejected { service, message }
}

/// Full error chain for messages (the SDK's `Display` only prints the top level).
pub struct DisplayErrorContext<'a, E>(pub &'a E);

impl<E: std::error::Error> std::fmt::Display for DisplayErrorContext<'_, E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(s) = source {
            write!(f, ": {s}")?;
            source = s.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification_by_code_and_status() {
        assert!(matches!(
            classify_code("connect", "ThrottlingException", "m".into(), Some(429)),
            PortError::Throttled { .. }
        ));
        assert!(matches!(
            classify_code("connect", "TooManyRequestsException", "m".into(), Some(400)),
            PortError::Throttled { .. }
        ));
        assert!(matches!(
            classify_code("s3", "NoSuchKey", "m".into(), Some(404)),
            PortError::NotFound { .. }
        ));
        assert!(matches!(
            classify_code(
                "dynamodb",
                "ConditionalCheckFailedException",
                "m".into(),
                Some(400)
            ),
            PortError::Conflict { .. }
        ));
        assert!(matches!(
            classify_code("connect", "InternalServiceException", "m".into(), Some(500)),
            PortError::Unavailable { .. }
        ));
        assert!(matches!(
            classify_code(
                "connect",
                "InvalidParameterException",
                "m".into(),
                Some(400)
            ),
            PortError::Rejected { .. }
        ));
    }
}

/// Wire every capability to the AWS adapters.
pub fn capabilities(
    config: &aws_config::SdkConfig,
    settings: &connect_events_core::settings::Settings,
) -> Result<connect_events_core::dispatch::Capabilities, connect_events_core::HandlerError> {
    Err(connect_events_core::HandlerError::Config(format!(
        "the AWS backend is not wired yet (region {:?})",
        config.region().map(|r| r.to_string()).unwrap_or_default()
    )))
    .map(|c: connect_events_core::dispatch::Capabilities| {
        let _ = settings;
        c
    })
}
