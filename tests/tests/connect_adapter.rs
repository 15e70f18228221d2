//! Integration tests of the Amazon Connect adapter (`connect_events_handlers::aws::connect`) against the
//! wire-level [`ConnectFake`]: the unmodified `aws-sdk-connect` client, the real restJson1 protocol and
//! the SDK's real retry behaviour.
//!
//! Covered: chunking (≤ 100 queues per `GetCurrentMetricData`) and paging (`MaxResults` 100,
//! `NextToken`), row values, `api_calls`, the snapshot time (oldest across chunks, rounded to the
//! millisecond), the `OLDEST_CONTACT_AGE` unit quirk, paginated `ListQueues` with the STANDARD filter,
//! error classification (throttling, 5xx, validation), `DescribeContact` and `StopContact`.

use chrono::DateTime;
use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use aws_sdk_connect::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_connect::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_connect::error::{BoxError, ProvideErrorMetadata};
use aws_sdk_connect::types::{
    Channel as SdkChannel, CurrentMetric, CurrentMetricName, Filters, Unit,
};
use connect_events_core::deny_list::{ContactControl, ContactInfo, StopOutcome};
use connect_events_core::event::Channel;
use connect_events_core::queue_depth::{MetricsSource, QueueMetrics, QueueRef};
use connect_events_core::PortError;
use connect_events_handlers::aws::connect::{
    oldest_age_seconds, ConnectAdapter, MAX_QUEUES_PER_REQUEST,
};
use connect_events_tests::connect_fake::{instance_arn, ConnectFake, FakeMetrics};
use connect_events_tests::fixture_json;
use connect_events_tests::seed::{queue_id, standard_queues};
use serde_json::{json, Value};

/// The fixtures' Connect instance.
const INSTANCE: &str = "8f2c6d1e-4b7a-4e39-9c5d-2a1f0b3e7d64";
/// `Contact.Id` of `api/describe-contact-voice.json` (ended: it has a `DisconnectTimestamp`).
const VOICE_CONTACT: &str = "248b1a9e-5c07-455b-8daf-f67b49e04cd4";
/// `CustomerEndpoint.Address` of that fixture.
const VOICE_CUSTOMER: &str = "+14255550100";
const METRICS_OP: &str = "GetCurrentMetricData";

async fn adapter(fake: &ConnectFake) -> ConnectAdapter {
    ConnectAdapter::new(&fake.sdk_config().await)
}

/// Adds `n` STANDARD queues `q-000`… and returns them as the port's queue references.
fn add_standard_queues(fake: &ConnectFake, n: usize) -> Vec<QueueRef> {
    standard_queues(fake, INSTANCE, n)
}

/// The row the adapter must produce for a queue/channel whose fake metrics are `m`.
fn expected_row(queue: &QueueRef, channel: &str, m: FakeMetrics) -> QueueMetrics {
    QueueMetrics {
        queue_id: queue.id.clone(),
        queue_arn: queue.arn.clone(),
        channel: Channel::parse(channel),
        contacts_in_queue: u64::from(m.contacts_in_queue),
        contacts_scheduled: u64::from(m.contacts_scheduled),
        oldest_contact_age_seconds: m.oldest_contact_age_secs,
        agents_online: Some(u64::from(m.agents_online)),
        agents_available: Some(u64::from(m.agents_available)),
    }
}

fn epoch_millis_now() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The active copy of the voice fixture: another id and no `DisconnectTimestamp`.
fn active_voice_contact(id: &str) -> Value {
    let mut contact = fixture_json("api/describe-contact-voice.json")["Contact"].clone();
    let map = contact.as_object_mut().expect("Contact is an object");
    map.remove("DisconnectTimestamp");
    map.remove("AgentInfo");
    map.insert("Id".into(), json!(id));
    contact
}

// ---------------------------------------------------------------------------------------------------
// GetCurrentMetricData: chunking, paging, values
// ---------------------------------------------------------------------------------------------------

#[tokio::test]
async fn metrics_of_230_queues_are_chunked_by_100_and_paged() {
    const QUEUES: usize = 230;
    const CHANNELS: [&str; 3] = ["VOICE", "CHAT", "TASK"];
    let fake = ConnectFake::start();
    let queues = add_standard_queues(&fake, QUEUES);

    // VOICE metrics for every queue, CHAT for every other queue, TASK left at the idle default.
    let mut set: HashMap<(String, &str), FakeMetrics> = HashMap::new();
    for i in 0..QUEUES {
        let n = u32::try_from(i).expect("small index");
        let voice = FakeMetrics {
            contacts_in_queue: n,
            contacts_scheduled: n % 3,
            oldest_contact_age_secs: (i % 10 != 0).then(|| f64::from(n) + 0.25),
            agents_online: n % 7,
            agents_available: n % 4,
        };
        set.insert((queue_id(i), "VOICE"), voice);
        if i % 2 == 0 {
            let chat = FakeMetrics {
                contacts_in_queue: 1000 + n,
                contacts_scheduled: 1,
                oldest_contact_age_secs: Some(2.5),
                agents_online: 3,
                agents_available: 1,
            };
            set.insert((queue_id(i), "CHAT"), chat);
        }
    }
    for ((queue, channel), metrics) in &set {
        fake.set_metrics(INSTANCE, queue, channel, *metrics);
    }

    // A duplicate queue reference must not cost a filter slot nor duplicate rows.
    let mut asked = queues.clone();
    asked.push(queues[0].clone());
    let channels = [Channel::Voice, Channel::Chat, Channel::Task];

    let before = epoch_millis_now();
    let snapshot = adapter(&fake)
        .await
        .current_metrics(INSTANCE, &asked, &channels)
        .await
        .expect("GetCurrentMetricData over 230 queues");
    let after = epoch_millis_now();

    // 3 chunks (100, 100, 30 queues); 300 rows per full chunk = 3 pages of 100, 90 rows = 1 page.
    let requests = fake.requests(METRICS_OP);
    assert_eq!(requests.len(), 7, "3 + 3 + 1 pages");
    assert_eq!(fake.calls(METRICS_OP), 7);
    assert_eq!(snapshot.api_calls, 7, "api_calls counts every page");
    assert_eq!(
        snapshot.api_calls,
        connect_events_core::queue_depth::model::metric_api_calls(230, channels.len()),
        "the embedded backend reports the calls this adapter makes"
    );

    let mut chunks: Vec<Vec<String>> = Vec::new();
    for request in &requests {
        let filter: Vec<String> = serde_json::from_value(request["Filters"]["Queues"].clone())
            .expect("Filters.Queues is a list of strings");
        assert!(!filter.is_empty() && filter.len() <= MAX_QUEUES_PER_REQUEST);
        if chunks.last() != Some(&filter) {
            chunks.push(filter);
        }
        assert_eq!(request["InstanceId"], INSTANCE);
        assert_eq!(request["Filters"]["Channels"], json!(CHANNELS));
        assert_eq!(request["Groupings"], json!(["QUEUE", "CHANNEL"]));
        assert_eq!(request["MaxResults"], 100);
        assert_eq!(
            request["CurrentMetrics"],
            json!([
                {"Name": "CONTACTS_IN_QUEUE", "Unit": "COUNT"},
                {"Name": "CONTACTS_SCHEDULED", "Unit": "COUNT"},
                {"Name": "OLDEST_CONTACT_AGE", "Unit": "SECONDS"},
                {"Name": "AGENTS_ONLINE", "Unit": "COUNT"},
                {"Name": "AGENTS_AVAILABLE", "Unit": "COUNT"},
            ])
        );
    }
    let sizes: Vec<usize> = chunks.iter().map(Vec::len).collect();
    assert_eq!(sizes, vec![100, 100, 30], "chunks in queue order");
    let all: Vec<String> = chunks.concat();
    assert_eq!(
        all,
        (0..QUEUES).map(queue_id).collect::<Vec<_>>(),
        "every queue exactly once"
    );
    // NextToken followed inside each chunk, never across chunks.
    let tokens: Vec<bool> = requests
        .iter()
        .map(|r| r.get("NextToken").is_some_and(|t| !t.is_null()))
        .collect();
    assert_eq!(tokens, vec![false, true, true, false, true, true, false]);

    // Every (queue, channel) row exactly once, with the fake's values.
    assert_eq!(snapshot.rows.len(), QUEUES * CHANNELS.len());
    let mut seen = HashSet::new();
    for row in &snapshot.rows {
        assert!(
            seen.insert((row.queue_id.clone(), row.channel.clone())),
            "duplicate row {}/{}",
            row.queue_id,
            row.channel
        );
    }
    let by_key: HashMap<(&str, &str), &QueueMetrics> = snapshot
        .rows
        .iter()
        .map(|r| ((r.queue_id.as_str(), r.channel.as_str()), r))
        .collect();
    for queue in &queues {
        for channel in CHANNELS {
            let metrics = set
                .get(&(queue.id.clone(), channel))
                .copied()
                .unwrap_or_default();
            let row = by_key
                .get(&(queue.id.as_str(), channel))
                .unwrap_or_else(|| panic!("no row for {}/{channel}", queue.id));
            assert_eq!(**row, expected_row(queue, channel, metrics));
        }
    }
    // A null OLDEST_CONTACT_AGE stays None; an idle queue reports 0 s.
    assert_eq!(by_key[&("q-010", "VOICE")].oldest_contact_age_seconds, None);
    assert_eq!(
        by_key[&("q-011", "VOICE")].oldest_contact_age_seconds,
        Some(11.25)
    );
    assert_eq!(
        by_key[&("q-011", "TASK")].oldest_contact_age_seconds,
        Some(0.0)
    );

    // Without a fixed DataSnapshotTime the fake reports the (millisecond-rounded) time of each request.
    let snap = snapshot.snapshot_time.timestamp_millis();
    assert!(
        before - 1 <= snap && snap <= after + 1,
        "snapshot {snap} outside [{before}, {after}]"
    );
}

#[tokio::test]
async fn no_queues_means_no_call() {
    let fake = ConnectFake::start();
    fake.add_instance(INSTANCE);
    let snapshot = adapter(&fake)
        .await
        .current_metrics(INSTANCE, &[], &[Channel::Voice])
        .await
        .expect("empty queue list");
    assert!(snapshot.rows.is_empty());
    assert_eq!(snapshot.api_calls, 0);
    assert_eq!(fake.calls(METRICS_OP), 0);
}

#[tokio::test]
async fn instance_arn_is_accepted_and_channels_filter_is_passed_through() {
    let fake = ConnectFake::start();
    let queues = add_standard_queues(&fake, 2);
    let busy = FakeMetrics {
        contacts_in_queue: 5,
        contacts_scheduled: 2,
        oldest_contact_age_secs: Some(93.5),
        agents_online: 4,
        agents_available: 0,
    };
    fake.set_metrics(INSTANCE, &queues[1].id, "CHAT", busy);
    fake.set_snapshot_time(1_749_564_270.0);
    let arn = instance_arn(INSTANCE);
    let snapshot = adapter(&fake)
        .await
        .current_metrics(&arn, &queues, &[Channel::Chat])
        .await
        .expect("GetCurrentMetricData by instance ARN");
    assert_eq!(
        snapshot.rows,
        vec![
            expected_row(&queues[0], "CHAT", FakeMetrics::default()),
            expected_row(&queues[1], "CHAT", busy),
        ]
    );
    let request = &fake.requests(METRICS_OP)[0];
    assert_eq!(
        request["InstanceId"],
        arn.as_str(),
        "the ARN is used as given"
    );
    assert_eq!(request["Filters"]["Channels"], json!(["CHAT"]));
    assert_eq!(snapshot.snapshot_time.timestamp_millis(), 1_749_564_270_000);
}

// ---------------------------------------------------------------------------------------------------
// Snapshot time and OLDEST_CONTACT_AGE
// ---------------------------------------------------------------------------------------------------

/// What [`BeforeEachAttempt`] does to the fake before an attempt (given the attempt's index).
type AttemptAction = Box<dyn Fn(usize, &ConnectFake) + Send + Sync>;

/// Runs an action on the fake before each attempt the SDK transmits (with the attempt's index), so a
/// test can change the fake's answers between the chunks and pages of one adapter call.
struct BeforeEachAttempt {
    fake: Arc<ConnectFake>,
    action: AttemptAction,
    attempts: AtomicUsize,
}

impl BeforeEachAttempt {
    fn client(
        fake: &Arc<ConnectFake>,
        config: &aws_config::SdkConfig,
        action: impl Fn(usize, &ConnectFake) + Send + Sync + 'static,
    ) -> aws_sdk_connect::Client {
        let interceptor = BeforeEachAttempt {
            fake: fake.clone(),
            action: Box::new(action),
            attempts: AtomicUsize::new(0),
        };
        let config = aws_sdk_connect::config::Builder::from(config)
            .interceptor(interceptor)
            .build();
        aws_sdk_connect::Client::from_conf(config)
    }
}

impl std::fmt::Debug for BeforeEachAttempt {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BeforeEachAttempt")
            .field("attempts", &self.attempts)
            .finish_non_exhaustive()
    }
}

impl Intercept for BeforeEachAttempt {
    fn name(&self) -> &'static str {
        "BeforeEachAttempt"
    }

    fn read_before_transmit(
        &self,
        _context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let attempt = self.attempts.fetch_add(1, Ordering::SeqCst);
        (self.action)(attempt, &self.fake);
        Ok(())
    }
}

#[tokio::test]
async fn snapshot_time_is_the_oldest_across_chunks_rounded_to_the_millisecond() {
    let fake = Arc::new(ConnectFake::start());
    let queues = add_standard_queues(&fake, 230);
    // 1.412 is not exact as a double: the SDK decodes …270.411999… and the adapter must round it.
    let oldest = 1_749_564_270.412;
    let times = [oldest + 2.0, oldest, oldest + 1.5];
    let client = BeforeEachAttempt::client(&fake, &fake.sdk_config().await, move |i, fake| {
        if let Some(t) = times.get(i) {
            fake.set_snapshot_time(*t);
        }
    });
    let adapter = ConnectAdapter::from_client(client);

    let snapshot = adapter
        .current_metrics(INSTANCE, &queues, &[Channel::Voice])
        .await
        .expect("GetCurrentMetricData");
    assert_eq!(
        snapshot.api_calls, 3,
        "one page per chunk of 100 × 1 channel"
    );
    assert_eq!(fake.calls(METRICS_OP), 3);
    assert_eq!(
        snapshot.snapshot_time.timestamp_millis(),
        1_749_564_270_412,
        "the oldest DataSnapshotTime (second chunk), rounded to ms"
    );
}

#[test]
fn oldest_age_conversion() {
    assert_eq!(oldest_age_seconds(37.0, true), 37.0);
    assert_eq!(oldest_age_seconds(24_113.0, false), 24.113);
    assert_eq!(oldest_age_seconds(0.0, true), 0.0);
}

#[tokio::test]
async fn oldest_contact_age_is_seconds_with_groupings_and_milliseconds_without() {
    let fake = ConnectFake::start();
    let queues = add_standard_queues(&fake, 1);
    let metrics = FakeMetrics {
        contacts_in_queue: 2,
        oldest_contact_age_secs: Some(24.113),
        ..FakeMetrics::default()
    };
    fake.set_metrics(INSTANCE, &queues[0].id, "VOICE", metrics);

    // The adapter always groups (QUEUE, CHANNEL): the value is seconds as reported.
    let snapshot = adapter(&fake)
        .await
        .current_metrics(INSTANCE, &queues, &[Channel::Voice])
        .await
        .expect("grouped metrics");
    let age = snapshot.rows[0].oldest_contact_age_seconds.expect("age");
    assert!((age - 24.113).abs() < 1e-9, "grouped age {age}");

    // Without groupings the service (and the fake) answers milliseconds under the unit SECONDS.
    let output = fake
        .client()
        .await
        .get_current_metric_data()
        .instance_id(INSTANCE)
        .filters(
            Filters::builder()
                .queues(queues[0].id.clone())
                .channels(SdkChannel::Voice)
                .build(),
        )
        .current_metrics(
            CurrentMetric::builder()
                .name(CurrentMetricName::OldestContactAge)
                .unit(Unit::Seconds)
                .build(),
        )
        .send()
        .await
        .expect("ungrouped metrics");
    let data = &output.metric_results()[0].collections()[0];
    assert_eq!(
        data.metric().and_then(CurrentMetric::unit),
        Some(&Unit::Seconds)
    );
    let raw = data.value().expect("value");
    assert!((raw - 24_113.0).abs() < 1e-6, "ungrouped raw value {raw}");
    assert!((oldest_age_seconds(raw, false) - 24.113).abs() < 1e-9);
}

// ---------------------------------------------------------------------------------------------------
// ListQueues
// ---------------------------------------------------------------------------------------------------

#[tokio::test]
async fn list_queues_follows_pages_and_excludes_agent_queues() {
    let fake = ConnectFake::start();
    // 1150 STANDARD queues (two pages of up to 1000) with 60 agent queues interleaved.
    let mut expected = Vec::new();
    for i in 0..1150 {
        let id = format!("std-{i:04}");
        let name = format!("Queue {i}");
        let arn = fake.add_queue(INSTANCE, &id, Some(&name), "STANDARD");
        expected.push(QueueRef {
            id,
            arn: Some(arn),
            name: Some(name),
        });
        if i % 20 == 0 {
            fake.add_queue(INSTANCE, &format!("agent-{i:04}"), None, "AGENT");
        }
    }
    let arn = instance_arn(INSTANCE);
    let queues = adapter(&fake)
        .await
        .list_queues(&arn)
        .await
        .expect("ListQueues");
    assert_eq!(
        queues, expected,
        "all STANDARD queues in order, no agent queue"
    );

    let requests = fake.requests("ListQueues");
    assert_eq!(requests.len(), 2, "two pages");
    for request in &requests {
        assert_eq!(request["InstanceId"], arn.as_str());
        assert_eq!(request["QueueTypes"], json!(["STANDARD"]));
        assert_eq!(request["MaxResults"], 1000);
    }
    assert!(requests[0].get("NextToken").is_none());
    assert!(requests[1].get("NextToken").is_some());
}

#[tokio::test]
async fn list_queues_of_unknown_instance_is_not_found() {
    let fake = ConnectFake::start();
    let err = adapter(&fake)
        .await
        .list_queues("no-such-instance")
        .await
        .expect_err("unknown instance");
    assert!(matches!(err, PortError::NotFound { .. }), "{err:?}");
    assert!(!err.retryable());
}

// ---------------------------------------------------------------------------------------------------
// Throttling and error classification
// ---------------------------------------------------------------------------------------------------

#[tokio::test]
async fn throttling_is_retried_by_the_sdk() {
    let fake = ConnectFake::start();
    let queues = add_standard_queues(&fake, 3);
    fake.inject(METRICS_OP, 429, "ThrottlingException", 2);
    let snapshot = ConnectAdapter::new(&fake.sdk_config_with_retries(3).await)
        .current_metrics(INSTANCE, &queues, &[Channel::Voice])
        .await
        .expect("third attempt succeeds");
    assert_eq!(
        fake.calls(METRICS_OP),
        3,
        "two throttled attempts and one success"
    );
    assert_eq!(snapshot.api_calls, 1, "one logical call");
    assert_eq!(snapshot.rows.len(), 3);
}

#[tokio::test]
async fn too_many_requests_is_retried_by_the_sdk() {
    let fake = ConnectFake::start();
    let expected = add_standard_queues(&fake, 2);
    fake.inject("ListQueues", 429, "TooManyRequestsException", 2);
    let queues = ConnectAdapter::new(&fake.sdk_config_with_retries(3).await)
        .list_queues(INSTANCE)
        .await
        .expect("third attempt succeeds");
    assert_eq!(queues, expected);
    assert_eq!(fake.calls("ListQueues"), 3);
}

#[tokio::test]
async fn persistent_throttling_is_a_retryable_throttled_error() {
    let fake = ConnectFake::start();
    let queues = add_standard_queues(&fake, 3);
    fake.inject(METRICS_OP, 429, "ThrottlingException", 10);
    let err = ConnectAdapter::new(&fake.sdk_config_with_retries(3).await)
        .current_metrics(INSTANCE, &queues, &[Channel::Voice])
        .await
        .expect_err("throttled on every attempt");
    assert!(matches!(err, PortError::Throttled { .. }), "{err:?}");
    assert!(err.retryable());
    assert_eq!(fake.calls(METRICS_OP), 3, "max_attempts");
}

/// Connect's `LimitExceededException` (HTTP 429) is a service quota: after the SDK's own
/// attempts it is a permanent rejection that names the quota, not retryable throttling.
#[tokio::test]
async fn limit_exceeded_is_a_permanent_quota_error() {
    let fake = ConnectFake::start();
    let queues = add_standard_queues(&fake, 3);
    fake.inject(METRICS_OP, 429, "LimitExceededException", 10);
    let err = ConnectAdapter::new(&fake.sdk_config_with_retries(3).await)
        .current_metrics(INSTANCE, &queues, &[Channel::Voice])
        .await
        .expect_err("quota on every attempt");
    assert!(matches!(err, PortError::Rejected { .. }), "{err:?}");
    assert!(!err.retryable());
    assert!(err.to_string().contains("quota"), "{err}");
}

#[tokio::test]
async fn server_error_is_a_retryable_unavailable_error() {
    let fake = ConnectFake::start();
    let queues = add_standard_queues(&fake, 3);
    fake.inject(METRICS_OP, 500, "InternalServiceException", 10);
    let err = adapter(&fake)
        .await
        .current_metrics(INSTANCE, &queues, &[Channel::Voice])
        .await
        .expect_err("500 on every attempt");
    assert!(matches!(err, PortError::Unavailable { .. }), "{err:?}");
    assert!(err.retryable());
    assert_eq!(fake.calls(METRICS_OP), 3, "5xx is retried");
}

#[tokio::test]
async fn invalid_parameter_is_rejected_and_not_retried() {
    let fake = ConnectFake::start();
    let queues = add_standard_queues(&fake, 3);
    fake.inject(METRICS_OP, 400, "InvalidParameterException", 1);
    let err = adapter(&fake)
        .await
        .current_metrics(INSTANCE, &queues, &[Channel::Voice])
        .await
        .expect_err("400");
    assert!(matches!(err, PortError::Rejected { .. }), "{err:?}");
    assert!(!err.retryable());
    assert_eq!(fake.calls(METRICS_OP), 1, "a client error is not retried");
}

#[tokio::test]
async fn failure_in_a_later_chunk_fails_the_whole_snapshot() {
    let fake = Arc::new(ConnectFake::start());
    let queues = add_standard_queues(&fake, 150);
    // The first chunk succeeds; the second chunk's only attempt (no SDK retries) is throttled.
    let client =
        BeforeEachAttempt::client(&fake, &fake.sdk_config_with_retries(1).await, |i, fake| {
            if i == 1 {
                fake.inject(METRICS_OP, 429, "ThrottlingException", 1);
            }
        });
    let err = ConnectAdapter::from_client(client)
        .current_metrics(INSTANCE, &queues, &[Channel::Voice])
        .await
        .expect_err("second chunk throttled");
    assert!(matches!(err, PortError::Throttled { .. }), "{err:?}");
    assert!(err.retryable());
    let requests = fake.requests(METRICS_OP);
    assert_eq!(requests.len(), 2, "stops at the failing chunk");
    assert_eq!(
        requests[1]["Filters"]["Queues"].as_array().map(Vec::len),
        Some(50)
    );
}

// ---------------------------------------------------------------------------------------------------
// DescribeContact / StopContact
// ---------------------------------------------------------------------------------------------------

#[tokio::test]
async fn describe_returns_customer_number_channel_and_state() {
    let fake = ConnectFake::start();
    fake.add_contact(INSTANCE, fixture_json("api/describe-contact-voice.json"));
    fake.add_contact(INSTANCE, active_voice_contact("active-1"));
    let adapter = adapter(&fake).await;

    let ended = adapter
        .describe(INSTANCE, VOICE_CONTACT)
        .await
        .expect("DescribeContact");
    assert_eq!(
        ended,
        Some(ContactInfo {
            customer_address: Some(VOICE_CUSTOMER.into()),
            channel: Some("VOICE".into()),
            initiation_method: Some("INBOUND".into()),
            ended: true,
            initiated: DateTime::from_timestamp_millis(1_749_564_005_214),
            disconnected: DateTime::from_timestamp_millis(1_749_564_340_551),
            account_id: Some("123456789012".into()),
            agent_id: Some("bc24a02b-5dbd-4f7c-a541-c01d4728f74a".into()),
            customer_endpoint_type: Some("TELEPHONE_NUMBER".into()),
        })
    );

    let active = adapter
        .describe(&instance_arn(INSTANCE), "active-1")
        .await
        .expect("DescribeContact by instance ARN")
        .expect("known contact");
    assert_eq!(active.customer_address.as_deref(), Some(VOICE_CUSTOMER));
    assert!(!active.ended);

    assert_eq!(
        adapter
            .describe(INSTANCE, "no-such-contact")
            .await
            .expect("unknown contact"),
        None
    );
    assert_eq!(fake.calls("DescribeContact"), 3);
}

#[tokio::test]
async fn describe_errors_are_classified() {
    let fake = ConnectFake::start();
    fake.add_contact(INSTANCE, fixture_json("api/describe-contact-voice.json"));
    fake.inject("DescribeContact", 429, "ThrottlingException", 10);
    let err = adapter(&fake)
        .await
        .describe(INSTANCE, VOICE_CONTACT)
        .await
        .expect_err("throttled");
    assert!(matches!(err, PortError::Throttled { .. }), "{err:?}");
    assert!(err.retryable());
}

#[tokio::test]
async fn stop_stops_an_active_contact_once() {
    let fake = ConnectFake::start();
    fake.add_contact(INSTANCE, active_voice_contact("active-1"));
    let adapter = adapter(&fake).await;

    let outcome = adapter
        .stop(INSTANCE, "active-1")
        .await
        .expect("StopContact");
    assert_eq!(outcome, StopOutcome::Stopped);
    assert_eq!(fake.stopped_contacts(), vec!["active-1".to_string()]);
    let request = &fake.requests("StopContact")[0];
    assert_eq!(request["InstanceId"], INSTANCE);
    assert_eq!(request["ContactId"], "active-1");

    // The contact has ended now: a second stop is done already.
    let again = adapter
        .stop(INSTANCE, "active-1")
        .await
        .expect("second stop");
    assert_eq!(again, StopOutcome::AlreadyEnded);
    assert_eq!(fake.stopped_contacts().len(), 1);
    let info = adapter
        .describe(INSTANCE, "active-1")
        .await
        .expect("describe")
        .expect("known");
    assert!(info.ended);
}

#[tokio::test]
async fn stop_of_an_ended_or_unknown_contact_is_already_ended() {
    let fake = ConnectFake::start();
    fake.add_contact(INSTANCE, fixture_json("api/describe-contact-voice.json"));
    let adapter = adapter(&fake).await;

    assert_eq!(
        adapter
            .stop(INSTANCE, VOICE_CONTACT)
            .await
            .expect("ended contact"),
        StopOutcome::AlreadyEnded
    );
    assert_eq!(
        adapter
            .stop(&instance_arn(INSTANCE), "no-such-contact")
            .await
            .expect("unknown contact"),
        StopOutcome::AlreadyEnded
    );
    assert!(fake.stopped_contacts().is_empty());

    // What the fake answers for an unknown contact, as the reference says: 410 ContactNotFoundException.
    let err = fake
        .client()
        .await
        .stop_contact()
        .instance_id(INSTANCE)
        .contact_id("no-such-contact")
        .send()
        .await
        .expect_err("unknown contact");
    assert_eq!(err.code(), Some("ContactNotFoundException"));
    assert_eq!(err.raw_response().map(|r| r.status().as_u16()), Some(410));
}

#[tokio::test]
async fn stop_errors_are_classified() {
    let fake = ConnectFake::start();
    fake.add_contact(INSTANCE, active_voice_contact("active-1"));
    let adapter = adapter(&fake).await;

    // An unknown instance is not "already ended".
    let err = adapter
        .stop("no-such-instance", "active-1")
        .await
        .expect_err("unknown instance");
    assert!(matches!(err, PortError::NotFound { .. }), "{err:?}");

    // A voice transfer cannot be stopped: InvalidRequestException, not retryable.
    let mut transfer = active_voice_contact("transfer-1");
    transfer["InitiationMethod"] = json!("TRANSFER");
    fake.add_contact(INSTANCE, transfer);
    let err = adapter
        .stop(INSTANCE, "transfer-1")
        .await
        .expect_err("unstoppable");
    assert!(matches!(err, PortError::Rejected { .. }), "{err:?}");
    assert!(!err.retryable());

    fake.inject("StopContact", 500, "InternalServiceException", 10);
    let err = adapter.stop(INSTANCE, "active-1").await.expect_err("500");
    assert!(matches!(err, PortError::Unavailable { .. }), "{err:?}");
    assert!(err.retryable());
    assert!(fake.stopped_contacts().is_empty());
}
