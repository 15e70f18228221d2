//! Amazon Connect adapter: [`MetricsSource`] (`ListQueues`, `GetCurrentMetricData`) and
//! [`ContactControl`] (`DescribeContact`, `StopContact`) over `aws-sdk-connect`.
//!
//! # Real-time metrics: chunking, paging, snapshot time
//!
//! `GetCurrentMetricData` accepts **at most 100 queues** in `Filters.Queues` and returns at most
//! `MaxResults` (≤ 100) rows per page. [`ConnectAdapter::current_metrics`] therefore
//!
//! 1. de-duplicates the queue ids (keeping their order) and splits them into chunks of
//!    [`MAX_QUEUES_PER_REQUEST`];
//! 2. sends one request per chunk, grouped by `QUEUE` and `CHANNEL` (one row per queue and channel),
//!    with `MaxResults` [`MAX_RESULTS_PER_PAGE`], and follows `NextToken` until the chunk is exhausted
//!    (through the SDK's generated paginator, which repeats the same parameters on every page as the
//!    API requires and stops if the service ever repeats a token);
//! 3. counts every page in [`MetricSnapshot::api_calls`] (logical calls; the SDK's internal retry
//!    attempts are not included).
//!
//! Chunks are fetched **sequentially**: the metrics quota is about 5 requests/s per account and Region,
//! shared with every other caller, so fanning out would only buy throttling.
//!
//! Every page carries a `DataSnapshotTime` (when Connect took the figures). The snapshot time reported
//! is the **oldest** of them, rounded to the millisecond: the index uses it as an external version, and
//! claiming the oldest time means a snapshot can never pretend to be newer than any of its parts. The
//! wire format is epoch seconds as a JSON double, so e.g. `1749564270.412` decodes as
//! `…270.411999…`; rounding (not truncating) gives back the intended `.412`. Should the service ever
//! omit the field, the time just before the first request is used, which is a lower bound of the real
//! snapshot time and so equally conservative.
//!
//! Values are doubles: counts become `u64` (`null` → 0 for the contact counts, `None` for agent
//! counts); `OLDEST_CONTACT_AGE` stays `None` when `null`.
//!
//! # The `OLDEST_CONTACT_AGE` quirk
//!
//! The metric is declared with unit `SECONDS`, but the API reference says that **without** groupings
//! the value is in milliseconds (its example: `24113.0` for 24 s), while with groupings it is in
//! seconds. This adapter always groups by queue and channel, so values are seconds;
//! [`oldest_age_seconds`] keeps the rule in one pure, tested place, keyed on whether the request had
//! groupings. (Older revisions of the reference stated the opposite; if Connect's behaviour ever
//! changes, this function is the single place to adapt.)
//!
//! # Throttling and errors
//!
//! The SDK's standard retry strategy (exponential backoff with jitter, attempts from the shared
//! configuration, see [`crate::aws::config`]) already retries `ThrottlingException` /
//! `TooManyRequestsException`, 5xx and transient I/O. An error that survives those retries is
//! classified by [`crate::aws::port_error`]: persistent throttling → [`PortError::Throttled`] and
//! 5xx / timeouts → [`PortError::Unavailable`] (both retryable), validation errors and
//! `LimitExceededException` (a Connect service quota, HTTP 429 but not throttling) →
//! [`PortError::Rejected`], unknown instance → [`PortError::NotFound`]. Timeouts also come from the
//! shared configuration: build the adapter from [`crate::aws::config::load`] with
//! [`CallProfile::BACKGROUND`](crate::aws::config::CallProfile::BACKGROUND) for the queue-depth refresh
//! and [`CallProfile::INTERACTIVE`](crate::aws::config::CallProfile::INTERACTIVE) inside contact flows.
//! A failing page fails the whole snapshot: partial metrics are never returned.
//!
//! # Contacts
//!
//! `DescribeContact` answering `ResourceNotFoundException` gives `Ok(None)`. Note that Connect uses the
//! same error for an unknown **instance**, so a misconfigured instance id also reads as "no such
//! contact". `StopContact` answering `ContactNotFoundException` (the contact does not exist or has
//! already ended) gives [`StopOutcome::AlreadyEnded`]; this also makes a stop idempotent when the SDK
//! retries an attempt whose response was lost.
//!
//! Instance ids may be given as an id or as an instance ARN: both are passed through unchanged (the
//! API accepts either; the SDK percent-encodes the path label). Customer phone numbers are only ever
//! logged masked ([`mask`]).

use std::collections::HashSet;

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_connect::operation::describe_contact::DescribeContactError;
use aws_sdk_connect::operation::get_current_metric_data::GetCurrentMetricDataOutput;
use aws_sdk_connect::operation::stop_contact::StopContactError;
use aws_sdk_connect::primitives::DateTime as SdkDateTime;
use aws_sdk_connect::types::{
    Channel as SdkChannel, Contact, CurrentMetric, CurrentMetricName, CurrentMetricResult, Filters,
    Grouping, QueueSummary, QueueType, Unit,
};
use aws_sdk_connect::Client;
use chrono::{DateTime, Utc};
use connect_events_core::deny_list::{mask, ContactControl, ContactInfo, StopOutcome};
use connect_events_core::event::Channel;
use connect_events_core::queue_depth::{MetricSnapshot, MetricsSource, QueueMetrics, QueueRef};
use connect_events_core::PortError;
use lambda_runtime::tracing::{debug, warn};

use super::port_error;

/// Service name used in [`PortError`]s.
const SERVICE: &str = "connect";

pub use connect_events_core::queue_depth::model::{MAX_QUEUES_PER_REQUEST, MAX_RESULTS_PER_PAGE};

/// `MaxResults` of `ListQueues` (the API maximum: fewest calls).
pub const LIST_QUEUES_PAGE_SIZE: i32 = 1000;

/// The groupings of every metrics request: one row per queue and channel.
const GROUPINGS: [Grouping; 2] = [Grouping::Queue, Grouping::Channel];

/// The `OLDEST_CONTACT_AGE` value of a `GetCurrentMetricData` row, in seconds.
///
/// Connect declares the unit as `SECONDS` in both cases, but per the API reference the value is in
/// seconds only when the request has groupings; without groupings it is in **milliseconds** (the
/// reference's example: `24113.0` means 24.113 s). `grouped` says whether the request that produced
/// `value` had at least one grouping.
pub fn oldest_age_seconds(value: f64, grouped: bool) -> f64 {
    if grouped {
        value
    } else {
        value / 1000.0
    }
}

/// The Amazon Connect adapter. Cheap to clone (the SDK client is reference-counted).
#[derive(Debug, Clone)]
pub struct ConnectAdapter {
    client: Client,
}

impl ConnectAdapter {
    /// An adapter with a client built from the shared configuration (endpoint, retries, timeouts).
    pub fn new(config: &SdkConfig) -> Self {
        Self::from_client(Client::new(config))
    }

    /// An adapter around an existing client.
    pub fn from_client(client: Client) -> Self {
        ConnectAdapter { client }
    }

    /// The underlying SDK client.
    pub fn client(&self) -> &Client {
        &self.client
    }
}

impl From<Client> for ConnectAdapter {
    fn from(client: Client) -> Self {
        Self::from_client(client)
    }
}

#[async_trait]
impl MetricsSource for ConnectAdapter {
    async fn list_queues(&self, instance_id: &str) -> Result<Vec<QueueRef>, PortError> {
        let summaries: Vec<QueueSummary> = self
            .client
            .list_queues()
            .instance_id(instance_id)
            .queue_types(QueueType::Standard)
            .max_results(LIST_QUEUES_PAGE_SIZE)
            .into_paginator()
            .items()
            .send()
            .try_collect()
            .await
            .map_err(|e| port_error(SERVICE, "ListQueues", e))?;
        let queues: Vec<QueueRef> = summaries
            .iter()
            // The STANDARD filter already excludes agent queues; this guards against a summary
            // that says otherwise (or carries no id).
            .filter(|q| q.queue_type().is_none_or(|t| *t == QueueType::Standard))
            .filter_map(|q| {
                Some(QueueRef {
                    id: q.id()?.to_string(),
                    arn: q.arn().map(str::to_string),
                    name: q.name().map(str::to_string),
                })
            })
            .collect();
        debug!(instance_id, queues = queues.len(), "ListQueues");
        Ok(queues)
    }

    async fn current_metrics(
        &self,
        instance_id: &str,
        queues: &[QueueRef],
        channels: &[Channel],
    ) -> Result<MetricSnapshot, PortError> {
        let requested_at = Utc::now();
        let ids = unique_queue_ids(queues);
        let channels: Vec<SdkChannel> = channels
            .iter()
            .map(|c| SdkChannel::from(c.as_str()))
            .collect();
        let grouped = !GROUPINGS.is_empty();

        let mut rows = Vec::new();
        let mut api_calls = 0u32;
        let mut oldest_snapshot: Option<DateTime<Utc>> = None;
        let mut skipped = 0usize;
        for chunk in ids.chunks(MAX_QUEUES_PER_REQUEST) {
            let filters = Filters::builder()
                .set_queues(Some(chunk.to_vec()))
                .set_channels((!channels.is_empty()).then(|| channels.clone()))
                .build();
            let mut pages = self
                .client
                .get_current_metric_data()
                .instance_id(instance_id)
                .filters(filters)
                .set_groupings(Some(GROUPINGS.to_vec()))
                .set_current_metrics(Some(requested_metrics()))
                .max_results(MAX_RESULTS_PER_PAGE as i32)
                .into_paginator()
                .send();
            while let Some(page) = pages.next().await {
                let page: GetCurrentMetricDataOutput =
                    page.map_err(|e| port_error(SERVICE, "GetCurrentMetricData", e))?;
                api_calls = api_calls.saturating_add(1);
                if let Some(at) = page.data_snapshot_time().and_then(round_to_millis) {
                    oldest_snapshot = Some(oldest_snapshot.map_or(at, |old| old.min(at)));
                }
                for result in page.metric_results() {
                    match queue_metrics(result, grouped) {
                        Some(row) => rows.push(row),
                        None => skipped += 1,
                    }
                }
            }
        }
        if skipped > 0 {
            warn!(
                instance_id,
                skipped, "GetCurrentMetricData rows without queue or channel dimension ignored"
            );
        }
        let snapshot_time = oldest_snapshot.unwrap_or_else(|| floor_to_millis(requested_at));
        debug!(
            instance_id,
            queues = ids.len(),
            rows = rows.len(),
            api_calls,
            snapshot_time = %snapshot_time,
            "GetCurrentMetricData"
        );
        Ok(MetricSnapshot {
            snapshot_time,
            rows,
            api_calls,
        })
    }
}

#[async_trait]
impl ContactControl for ConnectAdapter {
    async fn describe(
        &self,
        instance_id: &str,
        contact_id: &str,
    ) -> Result<Option<ContactInfo>, PortError> {
        let result = self
            .client
            .describe_contact()
            .instance_id(instance_id)
            .contact_id(contact_id)
            .send()
            .await;
        match result {
            Ok(output) => {
                let info = output.contact().map(contact_info);
                if let Some(info) = &info {
                    debug!(
                        contact_id,
                        customer = %info.customer_address.as_deref().map(mask).unwrap_or_default(),
                        channel = info.channel.as_deref().unwrap_or_default(),
                        ended = info.ended,
                        "DescribeContact"
                    );
                }
                Ok(info)
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(DescribeContactError::is_resource_not_found_exception) =>
            {
                debug!(contact_id, "DescribeContact: contact not found");
                Ok(None)
            }
            Err(e) => Err(port_error(SERVICE, "DescribeContact", e)),
        }
    }

    async fn agent_username(
        &self,
        instance_id: &str,
        user_id: &str,
    ) -> Result<Option<String>, PortError> {
        let result = self
            .client
            .describe_user()
            .instance_id(instance_id)
            .user_id(user_id)
            .send()
            .await;
        match result {
            Ok(output) => Ok(output.user().and_then(|u| u.username()).map(str::to_string)),
            Err(e)
                if e.as_service_error()
                    .is_some_and(|s| s.is_resource_not_found_exception()) =>
            {
                Ok(None)
            }
            Err(e) => Err(port_error(SERVICE, "DescribeUser", e)),
        }
    }

    async fn stop(&self, instance_id: &str, contact_id: &str) -> Result<StopOutcome, PortError> {
        let result = self
            .client
            .stop_contact()
            .instance_id(instance_id)
            .contact_id(contact_id)
            .send()
            .await;
        match result {
            Ok(_) => {
                debug!(contact_id, "StopContact: stopped");
                Ok(StopOutcome::Stopped)
            }
            Err(e)
                if e.as_service_error()
                    .is_some_and(StopContactError::is_contact_not_found_exception) =>
            {
                debug!(contact_id, "StopContact: contact already ended");
                Ok(StopOutcome::AlreadyEnded)
            }
            Err(e) => Err(port_error(SERVICE, "StopContact", e)),
        }
    }
}

/// The metrics every request asks for, with their documented units.
fn requested_metrics() -> Vec<CurrentMetric> {
    [
        (CurrentMetricName::ContactsInQueue, Unit::Count),
        (CurrentMetricName::ContactsScheduled, Unit::Count),
        (CurrentMetricName::OldestContactAge, Unit::Seconds),
        (CurrentMetricName::AgentsOnline, Unit::Count),
        (CurrentMetricName::AgentsAvailable, Unit::Count),
    ]
    .into_iter()
    .map(|(name, unit)| CurrentMetric::builder().name(name).unit(unit).build())
    .collect()
}

/// Queue ids in first-seen order without duplicates (a duplicate would waste filter slots and could
/// split one queue's rows over two chunks).
fn unique_queue_ids(queues: &[QueueRef]) -> Vec<String> {
    let mut seen = HashSet::with_capacity(queues.len());
    queues
        .iter()
        .filter(|q| seen.insert(q.id.as_str()))
        .map(|q| q.id.clone())
        .collect()
}

/// One row of a `QUEUE` × `CHANNEL` grouped answer; `None` without a queue id or channel.
fn queue_metrics(result: &CurrentMetricResult, grouped: bool) -> Option<QueueMetrics> {
    let dimensions = result.dimensions()?;
    let queue = dimensions.queue()?;
    let mut row = QueueMetrics {
        queue_id: queue.id()?.to_string(),
        queue_arn: queue.arn().map(str::to_string),
        channel: Channel::parse(dimensions.channel()?.as_str()),
        contacts_in_queue: 0,
        contacts_scheduled: 0,
        oldest_contact_age_seconds: None,
        agents_online: None,
        agents_available: None,
    };
    for data in result.collections() {
        let Some(name) = data.metric().and_then(CurrentMetric::name) else {
            continue;
        };
        let value = data.value();
        match name {
            CurrentMetricName::ContactsInQueue => row.contacts_in_queue = value.map_or(0, count),
            CurrentMetricName::ContactsScheduled => {
                row.contacts_scheduled = value.map_or(0, count);
            }
            CurrentMetricName::OldestContactAge => {
                row.oldest_contact_age_seconds = value.map(|v| oldest_age_seconds(v, grouped));
            }
            CurrentMetricName::AgentsOnline => row.agents_online = value.map(count),
            CurrentMetricName::AgentsAvailable => row.agents_available = value.map(count),
            _ => {}
        }
    }
    Some(row)
}

/// A metric double as a count: rounded, negative / NaN / infinite → 0.
fn count(value: f64) -> u64 {
    if value.is_finite() && value > 0.0 {
        // In range: a saturating float-to-int cast.
        value.round() as u64
    } else {
        0
    }
}

/// An SDK timestamp rounded to the nearest millisecond (epoch-second doubles are inexact).
fn round_to_millis(t: &SdkDateTime) -> Option<DateTime<Utc>> {
    // subsec_nanos < 1e9, so the rounded milliseconds are at most 1000.
    let millis = i64::from((t.subsec_nanos() + 500_000) / 1_000_000);
    let epoch_millis = t.secs().checked_mul(1000)?.checked_add(millis)?;
    DateTime::from_timestamp_millis(epoch_millis)
}

/// A time truncated to the millisecond.
fn floor_to_millis(t: DateTime<Utc>) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
}

/// What the enforcer needs from a `DescribeContact` answer.
fn contact_info(contact: &Contact) -> ContactInfo {
    ContactInfo {
        customer_address: contact
            .customer_endpoint()
            .and_then(|e| e.address())
            .map(str::to_string),
        channel: contact.channel().map(|c| c.as_str().to_string()),
        initiation_method: contact.initiation_method().map(|m| m.as_str().to_string()),
        ended: contact.disconnect_timestamp().is_some(),
        initiated: contact.initiation_timestamp().and_then(round_to_millis),
        disconnected: contact.disconnect_timestamp().and_then(round_to_millis),
        account_id: contact
            .arn()
            .and_then(connect_events_core::event::arn_account)
            .map(str::to_string),
        agent_id: contact
            .agent_info()
            .and_then(|a| a.id())
            .map(str::to_string),
        customer_endpoint_type: contact
            .customer_endpoint()
            .and_then(|e| e.r#type())
            .map(|t| t.as_str().to_string()),
    }
}

#[cfg(test)]
mod tests {
    use aws_sdk_connect::types::{CurrentMetricData, Dimensions, QueueReference};

    use super::*;

    #[test]
    fn oldest_age_is_seconds_with_groupings_and_milliseconds_without() {
        assert_eq!(oldest_age_seconds(42.0, true), 42.0);
        assert_eq!(oldest_age_seconds(24_113.0, false), 24.113);
        assert_eq!(oldest_age_seconds(0.0, false), 0.0);
    }

    #[test]
    fn counts_round_and_clamp() {
        assert_eq!(count(3.0), 3);
        assert_eq!(count(2.6), 3);
        assert_eq!(count(-1.0), 0);
        assert_eq!(count(f64::NAN), 0);
        assert_eq!(count(f64::INFINITY), 0);
    }

    #[test]
    fn snapshot_time_rounds_to_the_nearest_millisecond() {
        let t = SdkDateTime::from_secs_f64(1_749_564_270.412);
        assert!(t.subsec_nanos() < 412_000_000, "the double is inexact");
        let rounded = round_to_millis(&t).map(|t| t.timestamp_millis());
        assert_eq!(rounded, Some(1_749_564_270_412));
        let up = SdkDateTime::from_fractional_secs(10, 0.9996);
        assert_eq!(
            round_to_millis(&up).map(|t| t.timestamp_millis()),
            Some(11_000)
        );
    }

    #[test]
    fn queue_ids_are_deduplicated_in_order() {
        let q = |id: &str| QueueRef {
            id: id.into(),
            arn: None,
            name: None,
        };
        assert_eq!(
            unique_queue_ids(&[q("b"), q("a"), q("b"), q("c")]),
            vec!["b", "a", "c"]
        );
    }

    #[test]
    fn row_conversion() {
        let metric = |name: CurrentMetricName, value: Option<f64>| {
            CurrentMetricData::builder()
                .metric(CurrentMetric::builder().name(name).build())
                .set_value(value)
                .build()
        };
        let result = CurrentMetricResult::builder()
            .dimensions(
                Dimensions::builder()
                    .queue(QueueReference::builder().id("q1").arn("arn:q1").build())
                    .channel(SdkChannel::Chat)
                    .build(),
            )
            .collections(metric(CurrentMetricName::ContactsInQueue, Some(4.0)))
            .collections(metric(CurrentMetricName::ContactsScheduled, None))
            .collections(metric(CurrentMetricName::OldestContactAge, Some(24_113.0)))
            .collections(metric(CurrentMetricName::AgentsOnline, Some(2.0)))
            .collections(metric(CurrentMetricName::AgentsAvailable, None))
            .build();
        let row = queue_metrics(&result, false).expect("row with dimensions");
        assert_eq!(row.queue_id, "q1");
        assert_eq!(row.queue_arn.as_deref(), Some("arn:q1"));
        assert_eq!(row.channel, Channel::Chat);
        assert_eq!(row.contacts_in_queue, 4);
        assert_eq!(row.contacts_scheduled, 0);
        assert_eq!(row.oldest_contact_age_seconds, Some(24.113));
        assert_eq!(row.agents_online, Some(2));
        assert_eq!(row.agents_available, None);

        let no_queue = CurrentMetricResult::builder()
            .dimensions(Dimensions::builder().channel(SdkChannel::Voice).build())
            .build();
        assert!(queue_metrics(&no_queue, true).is_none());
    }
}
