//! Error types shared by every capability.
//!
//! Each error says what went wrong and where, and is classified *retryable* (a later attempt can
//! succeed: throttling, an unavailable dependency, flow logs that have not settled yet) or not
//! (malformed input, configuration, a request the service rejects). Lambda binaries report
//! [`HandlerError::error_type`] as the `errorType` so alarms and dead-letter queues see stable names.

use crate::event::EventError;

/// A failure reported by a port (an AWS adapter or an embedded backend).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortError {
    /// The service throttled the call (HTTP 429, `ThrottlingException`, …). Retryable.
    #[error("{service} throttled the request: {message}")]
    Throttled {
        service: &'static str,
        message: String,
    },
    /// The service could not be reached or failed (5xx, timeout, I/O). Retryable.
    #[error("{service} unavailable: {message}")]
    Unavailable {
        service: &'static str,
        message: String,
    },
    /// The addressed resource does not exist.
    #[error("{service}: not found: {message}")]
    NotFound {
        service: &'static str,
        message: String,
    },
    /// A conditional write lost against a concurrent or newer writer.
    #[error("{service}: conflict: {message}")]
    Conflict {
        service: &'static str,
        message: String,
    },
    /// The service rejected the request (validation, access denied). Not retryable.
    #[error("{service} rejected the request: {message}")]
    Rejected {
        service: &'static str,
        message: String,
    },
}

impl PortError {
    /// Whether a later attempt of the same call can succeed.
    pub fn retryable(&self) -> bool {
        matches!(
            self,
            PortError::Throttled { .. } | PortError::Unavailable { .. }
        )
    }

    /// Shorthand for an I/O failure of an embedded backend.
    pub fn io(service: &'static str, context: impl std::fmt::Display, err: std::io::Error) -> Self {
        PortError::Unavailable {
            service,
            message: format!("{context}: {err}"),
        }
    }
}

/// Why one event could not be handled.
#[derive(Debug, thiserror::Error)]
pub enum HandlerError {
    /// The input is not a usable event. Never retryable.
    #[error(transparent)]
    MalformedEvent(#[from] EventError),
    /// A dependency failed; retryable when the port error is.
    #[error(transparent)]
    Port(#[from] PortError),
    /// The function is misconfigured (missing or invalid setting).
    #[error("configuration error: {0}")]
    Config(String),
    /// The archive bucket failed one of the runbook's safety checks; nothing was written.
    #[error("archive bucket `{bucket}` failed the safety check `{check}`: {detail}")]
    UnsafeBucket {
        bucket: String,
        check: &'static str,
        detail: String,
    },
    /// The contact's flow logs are still arriving; retry later.
    #[error("flow logs of contact {contact_id} have not settled yet: {detail}")]
    NotSettled { contact_id: String, detail: String },
    /// A valid event that this function cannot act on (e.g. a request missing a required parameter).
    #[error("invalid input: {0}")]
    InvalidInput(String),
}

impl HandlerError {
    /// Whether EventBridge / Lambda should deliver the event again.
    pub fn retryable(&self) -> bool {
        match self {
            HandlerError::Port(e) => e.retryable(),
            HandlerError::NotSettled { .. } => true,
            _ => false,
        }
    }

    /// Stable error name reported as the Lambda `errorType` and in replay reports.
    pub fn error_type(&self) -> &'static str {
        match self {
            HandlerError::MalformedEvent(_) => "MalformedEvent",
            HandlerError::Port(PortError::Throttled { .. }) => "Throttled",
            HandlerError::Port(PortError::Unavailable { .. }) => "DependencyUnavailable",
            HandlerError::Port(PortError::NotFound { .. }) => "NotFound",
            HandlerError::Port(PortError::Conflict { .. }) => "Conflict",
            HandlerError::Port(PortError::Rejected { .. }) => "Rejected",
            HandlerError::Config(_) => "Configuration",
            HandlerError::UnsafeBucket { .. } => "UnsafeBucket",
            HandlerError::NotSettled { .. } => "FlowLogsNotSettled",
            HandlerError::InvalidInput(_) => "InvalidInput",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classification() {
        let throttled = HandlerError::from(PortError::Throttled {
            service: "connect",
            message: "slow down".into(),
        });
        assert!(throttled.retryable());
        assert_eq!(throttled.error_type(), "Throttled");
        let rejected = HandlerError::from(PortError::Rejected {
            service: "s3",
            message: "denied".into(),
        });
        assert!(!rejected.retryable());
        assert!(HandlerError::NotSettled {
            contact_id: "c".into(),
            detail: "d".into()
        }
        .retryable());
        assert!(!HandlerError::Config("x".into()).retryable());
    }
}
