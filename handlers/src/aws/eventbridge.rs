//! Amazon EventBridge adapter of the archive-replay port ([`ArchiveReplays`]): `DescribeArchive`
//! (the bus an archive archives), `StartReplay` onto it with `Destination.FilterArns`, and
//! `DescribeReplay`.

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_eventbridge::primitives::DateTime as SmithyTime;
use aws_sdk_eventbridge::types::{ReplayDestination, ReplayState as SdkState};
use chrono::{DateTime, Utc};
use connect_events_core::capture::archive::{
    ArchiveReplays, ReplayProgress, ReplayRequest, ReplayState,
};
use connect_events_core::PortError;

use super::port_error;

const SERVICE: &str = "events";

/// EventBridge in the configured account and Region.
#[derive(Debug, Clone)]
pub struct EventBridgeReplays {
    client: aws_sdk_eventbridge::Client,
}

impl EventBridgeReplays {
    pub fn new(config: &SdkConfig) -> Self {
        EventBridgeReplays {
            client: aws_sdk_eventbridge::Client::new(config),
        }
    }
}

/// `NAME` of `arn:…:archive/NAME` (or a bare name).
fn archive_name(arn: &str) -> &str {
    arn.rsplit_once(":archive/").map_or(arn, |(_, name)| name)
}

fn smithy(t: DateTime<Utc>) -> SmithyTime {
    SmithyTime::from_millis(t.timestamp_millis())
}

fn chrono_time(t: &SmithyTime) -> Option<DateTime<Utc>> {
    DateTime::from_timestamp_millis(t.to_millis().ok()?)
}

#[async_trait]
impl ArchiveReplays for EventBridgeReplays {
    async fn source_bus(&self, archive_arn: &str) -> Result<String, PortError> {
        let out = self
            .client
            .describe_archive()
            .archive_name(archive_name(archive_arn))
            .send()
            .await
            .map_err(|e| port_error(SERVICE, "DescribeArchive", e))?;
        out.event_source_arn()
            .map(str::to_string)
            .ok_or_else(|| PortError::Rejected {
                service: SERVICE,
                message: format!("DescribeArchive: {archive_arn} names no event bus"),
            })
    }

    async fn start(&self, request: &ReplayRequest, bus_arn: &str) -> Result<(), PortError> {
        let destination = ReplayDestination::builder()
            .arn(bus_arn)
            .set_filter_arns(Some(request.rule_arns.clone()))
            .build()
            .map_err(|e| PortError::Rejected {
                service: SERVICE,
                message: format!("StartReplay: {e}"),
            })?;
        self.client
            .start_replay()
            .replay_name(&request.name)
            .description("connect-events events export --archive")
            .event_source_arn(&request.archive_arn)
            .event_start_time(smithy(request.start))
            .event_end_time(smithy(request.end))
            .destination(destination)
            .send()
            .await
            .map(|_| ())
            .map_err(|e| port_error(SERVICE, "StartReplay", e))
    }

    async fn progress(&self, name: &str) -> Result<ReplayProgress, PortError> {
        let out = self
            .client
            .describe_replay()
            .replay_name(name)
            .send()
            .await
            .map_err(|e| port_error(SERVICE, "DescribeReplay", e))?;
        let state = match out.state() {
            Some(SdkState::Completed) => ReplayState::Completed,
            Some(SdkState::Running) => ReplayState::Running,
            Some(SdkState::Cancelling) => ReplayState::Cancelling,
            Some(SdkState::Cancelled) => ReplayState::Cancelled,
            Some(SdkState::Failed) => ReplayState::Failed,
            // STARTING, or a state this SDK does not know yet: keep waiting.
            _ => ReplayState::Starting,
        };
        Ok(ReplayProgress {
            state,
            reason: out.state_reason().map(str::to_string),
            last_replayed: out.event_last_replayed_time().and_then(chrono_time),
            began: out.replay_start_time().and_then(chrono_time),
        })
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_archive_name_is_the_arns_last_part() {
        assert_eq!(
            super::archive_name("arn:aws:events:us-east-1:123456789012:archive/connect-events"),
            "connect-events"
        );
        assert_eq!(super::archive_name("plain"), "plain");
    }
}
