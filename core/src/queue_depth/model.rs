use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::event::Channel;

/// A queue of an instance.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct QueueRef {
    pub id: String,
    pub arn: Option<String>,
    pub name: Option<String>,
}

/// The current metrics of one queue and channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueueMetrics {
    pub queue_id: String,
    pub queue_arn: Option<String>,
    pub channel: Channel,
    pub contacts_in_queue: u64,
    pub contacts_scheduled: u64,
    /// Always in seconds (the adapter corrects Connect's milliseconds quirk).
    pub oldest_contact_age_seconds: Option<f64>,
    pub agents_online: Option<u64>,
    pub agents_available: Option<u64>,
}

/// `Filters.Queues` of `GetCurrentMetricData` accepts 1–100 queues per request.
pub const MAX_QUEUES_PER_REQUEST: usize = 100;

/// `MaxResults` of `GetCurrentMetricData` (the API maximum).
pub const MAX_RESULTS_PER_PAGE: usize = 100;

/// The `GetCurrentMetricData` calls that fetch `queues` queues × `channels` channels (one row per
/// queue and channel): one request per chunk of [`MAX_QUEUES_PER_REQUEST`] queues, one page per
/// [`MAX_RESULTS_PER_PAGE`] rows of it (at least one). What the AWS adapter sends, so that a local
/// replay reports the calls a deployment would make.
pub fn metric_api_calls(queues: usize, channels: usize) -> u32 {
    let mut calls = 0usize;
    let mut left = queues;
    while left > 0 {
        let chunk = left.min(MAX_QUEUES_PER_REQUEST);
        calls += (chunk * channels).div_ceil(MAX_RESULTS_PER_PAGE).max(1);
        left -= chunk;
    }
    u32::try_from(calls).unwrap_or(u32::MAX)
}

/// One answer of the metrics source for a set of queues.
#[derive(Debug, Clone, PartialEq)]
pub struct MetricSnapshot {
    /// `DataSnapshotTime`: when Connect took the figures. Orders snapshots.
    pub snapshot_time: DateTime<Utc>,
    pub rows: Vec<QueueMetrics>,
    /// How many metric API calls produced this snapshot (chunks × pages).
    pub api_calls: u32,
}

/// What caused a refresh.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Trigger {
    /// `QUEUED`, `DISCONNECTED`, … or `schedule`, `trailing`, `manual`.
    pub kind: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub contact_id: Option<String>,
}

impl Trigger {
    pub fn new(kind: impl Into<String>, contact_id: Option<String>) -> Self {
        Trigger {
            kind: kind.into(),
            contact_id,
        }
    }
}

/// A document of the current-state index: one per instance, queue and channel.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueDepthDoc {
    pub instance_id: String,
    pub queue_id: String,
    pub queue_arn: Option<String>,
    pub queue_name: Option<String>,
    pub channel: String,
    pub contacts_in_queue: u64,
    pub contacts_scheduled: u64,
    /// `contactsInQueue + contactsScheduled`: the number the dashboard shows.
    pub queue_depth: u64,
    pub oldest_contact_age_seconds: Option<f64>,
    pub agents_online: Option<u64>,
    pub agents_available: Option<u64>,
    /// `DataSnapshotTime`, ISO-8601 with milliseconds.
    pub snapshot_time: String,
    pub refreshed_at: String,
    pub trigger: Trigger,
}

impl QueueDepthDoc {
    /// The deterministic document id: `<instanceId>:<queueId>:<CHANNEL>`.
    pub fn id(&self) -> String {
        doc_id(&self.instance_id, &self.queue_id, &self.channel)
    }

    /// The external version: `DataSnapshotTime` in epoch milliseconds.
    pub fn version(&self) -> i64 {
        crate::event::parse_timestamp(&self.snapshot_time)
            .ok()
            .flatten()
            .map_or(0, |t| t.timestamp_millis())
    }
}

pub fn doc_id(instance_id: &str, queue_id: &str, channel: &str) -> String {
    format!("{instance_id}:{queue_id}:{channel}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metric_api_calls_count_chunks_and_pages_as_the_adapter_sends_them() {
        for (queues, channels, calls) in [
            (0, 3, 0),
            (2, 3, 1),
            (33, 3, 1),
            (34, 3, 2),
            (100, 3, 3),
            (101, 3, 4),
            (250, 1, 3),
            (1000, 3, 30),
        ] {
            assert_eq!(
                metric_api_calls(queues, channels),
                calls,
                "{queues} × {channels}"
            );
        }
    }
}
