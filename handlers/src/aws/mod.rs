//! AWS adapters: one file per service, each implementing ports of `connect-events-core`.

pub mod config;
pub mod connect;
pub mod dashboards;
pub mod dynamodb;
pub mod eventbridge;
pub mod logs;
pub mod opensearch;
pub mod opensearch_analytics;
pub mod s3;
pub mod sqs;

use aws_config::SdkConfig;
use aws_sdk_connect::config::http::HttpResponse;
use aws_sdk_connect::error::{ProvideErrorMetadata, SdkError};
use connect_events_core::deny_list::DenyListService;
use connect_events_core::dispatch::Capabilities;
use connect_events_core::flow_logs::FlowLogArchiver;
use connect_events_core::queue_depth::{QueueDepthIndex, QueueDepthService, WriteOutcome};
use connect_events_core::settings::Settings;
use connect_events_core::HandlerError;
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

/// Services whose `LimitExceededException` is a quota (a resource limit that waiting does not
/// lift), not throttling. Connect documents it as "the allowed limit for the resource has been
/// exceeded" with HTTP 429, so it is checked before the status. Elsewhere (CloudWatch Logs'
/// concurrent Insights queries, Kinesis reads) it clears by itself and stays retryable.
const QUOTA_LIMIT_SERVICES: &[&str] = &["connect"];

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
    if code == "LimitExceededException" && QUOTA_LIMIT_SERVICES.contains(&service) {
        return PortError::Rejected {
            service,
            message: format!(
                "{message} (a service quota: raise it in Service Quotas; not retried)"
            ),
        };
    }
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
pub use aws_sdk_connect::error::DisplayErrorContext;

/// The queue-depth capability on Connect and OpenSearch. Without `OPENSEARCH_ENDPOINT` the index
/// port answers every call with an error naming the variable (other capabilities still work).
pub fn queue_depth_service(
    config: &SdkConfig,
    settings: &Settings,
) -> Result<QueueDepthService, HandlerError> {
    let index: Box<dyn QueueDepthIndex> = match &settings.opensearch_endpoint {
        Some(url) => {
            let client = opensearch::OpenSearchIndex::client_for(
                url,
                Some(config),
                &settings.opensearch_service,
            )?;
            let index =
                opensearch::OpenSearchIndex::new(client, settings.queue_depth_index.clone());
            match &settings.queue_depth_history_index {
                Some(history) => Box::new(index.with_history(history.clone())),
                None => Box::new(index),
            }
        }
        None => Box::new(Unconfigured("OPENSEARCH_ENDPOINT is not set")),
    };
    Ok(QueueDepthService::new(
        Box::new(connect::ConnectAdapter::new(config)),
        index,
        settings.queue_depth.clone(),
    ))
}

/// The analytics capability on OpenSearch (`OPENSEARCH_ENDPOINT` required).
pub fn analytics(
    config: &SdkConfig,
    settings: &Settings,
) -> Result<connect_events_core::analytics::Analytics, HandlerError> {
    let url = settings.opensearch_endpoint.as_deref().ok_or_else(|| {
        HandlerError::Config(
            "OPENSEARCH_ENDPOINT is not set: analytics needs the OpenSearch domain".into(),
        )
    })?;
    let client =
        opensearch::OpenSearchIndex::client_for(url, Some(config), &settings.opensearch_service)?;
    Ok(connect_events_core::analytics::Analytics::new(Box::new(
        opensearch_analytics::OpenSearchAnalytics::new(
            client,
            settings.analytics.clone(),
            settings.analytics_agent_state_index.clone(),
        ),
    )))
}

/// The deny-list capability on DynamoDB and Connect.
pub fn deny_list_service(config: &SdkConfig, settings: &Settings) -> DenyListService {
    DenyListService::new(
        Box::new(dynamodb::DynamoDenyStore::new(
            config,
            settings.deny_list_table.clone(),
        )),
        Box::new(connect::ConnectAdapter::new(config)),
        settings.deny_list.clone(),
    )
}

/// The flow-log archiver on CloudWatch Logs and S3.
pub fn flow_log_archiver(config: &SdkConfig, settings: &Settings) -> FlowLogArchiver {
    // `Settings` already rejected anything but `insights` / `filter`.
    let strategy: logs::LogStrategy = settings.flow_logs_strategy.parse().unwrap_or_default();
    let options = s3::S3ArchiveOptions {
        expected_bucket_owner: settings.flow_logs.bucket_owner.clone(),
        kms_key_id: settings.archive_kms_key.clone(),
        ..Default::default()
    };
    FlowLogArchiver::new(
        // Bounded so settle polls and window splits fit in the function's 120 s timeout.
        Box::new(
            logs::CloudWatchFlowLogs::new(config, strategy)
                .with_query_timeout(std::time::Duration::from_secs(20)),
        ),
        Box::new(s3::S3Archive::new(config, options)),
        settings.flow_logs.clone(),
    )
}

/// Wire every capability to the AWS adapters.
pub fn capabilities(config: &SdkConfig, settings: &Settings) -> Result<Capabilities, HandlerError> {
    Ok(Capabilities {
        queue_depth: queue_depth_service(config, settings)?,
        deny_list: deny_list_service(config, settings),
        flow_logs: flow_log_archiver(config, settings),
        analytics: match settings.opensearch_endpoint {
            Some(_) => Some(analytics(config, settings)?),
            None => None,
        },
    })
}

/// A queue-depth index that is not configured: every call fails with the reason.
struct Unconfigured(&'static str);

#[async_trait::async_trait]
impl QueueDepthIndex for Unconfigured {
    async fn ensure_ready(&self) -> Result<(), PortError> {
        Err(PortError::Rejected {
            service: "opensearch",
            message: self.0.into(),
        })
    }
    async fn write(
        &self,
        _: &[connect_events_core::queue_depth::QueueDepthDoc],
    ) -> Result<WriteOutcome, PortError> {
        self.ensure_ready().await.map(|_| WriteOutcome::default())
    }
    async fn documents(
        &self,
    ) -> Result<Vec<connect_events_core::queue_depth::QueueDepthDoc>, PortError> {
        self.ensure_ready().await.map(|_| Vec::new())
    }
    async fn try_claim(&self, _: &str, _: i64) -> Result<bool, PortError> {
        self.ensure_ready().await.map(|_| false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Connect's `LimitExceededException` (HTTP 429) is a quota: not retryable. The same code
    /// from CloudWatch Logs (concurrent Insights queries) clears by itself and is.
    #[test]
    fn connect_limit_exceeded_is_a_quota_not_throttling() {
        let e = classify_code("connect", "LimitExceededException", "m".into(), Some(429));
        assert!(matches!(e, PortError::Rejected { .. }), "{e:?}");
        assert!(!e.retryable());
        let e = classify_code(
            "cloudwatch-logs",
            "LimitExceededException",
            "m".into(),
            Some(400),
        );
        assert!(matches!(e, PortError::Throttled { .. }), "{e:?}");
        assert!(e.retryable());
    }

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
