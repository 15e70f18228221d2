//! The shared AWS configuration: credentials and Region from the environment (Lambda sets them),
//! endpoints from `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_<SERVICE>` (local servers), and timeouts
//! short enough for the callers: a contact flow waits at most 8 s for its Lambda.

use std::time::Duration;

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, SdkConfig};

/// Timeouts and retries for one kind of caller.
#[derive(Debug, Clone, Copy)]
pub struct CallProfile {
    pub connect_timeout: Duration,
    pub attempt_timeout: Duration,
    pub operation_timeout: Duration,
    pub max_attempts: u32,
}

impl CallProfile {
    /// Contact-flow functions: every call well inside Connect's 8-second limit (≤ 2 s per operation).
    pub const INTERACTIVE: CallProfile = CallProfile {
        connect_timeout: Duration::from_millis(500),
        attempt_timeout: Duration::from_millis(900),
        operation_timeout: Duration::from_secs(2),
        max_attempts: 2,
    };
    /// Event-driven functions and the CLI: standard retries with back-off.
    pub const BACKGROUND: CallProfile = CallProfile {
        connect_timeout: Duration::from_secs(2),
        attempt_timeout: Duration::from_secs(5),
        operation_timeout: Duration::from_secs(20),
        max_attempts: 3,
    };
}

/// Load the configuration once per process (Lambda: at start, outside the handler).
pub async fn load(profile: CallProfile) -> SdkConfig {
    aws_config::defaults(BehaviorVersion::latest())
        .retry_config(RetryConfig::standard().with_max_attempts(profile.max_attempts))
        .timeout_config(
            TimeoutConfig::builder()
                .connect_timeout(profile.connect_timeout)
                .operation_attempt_timeout(profile.attempt_timeout)
                .operation_timeout(profile.operation_timeout)
                .build(),
        )
        .load()
        .await
}
