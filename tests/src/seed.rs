//! Setup shared by the integration tests and the benches: S3 buckets and CloudWatch Logs groups in moto,
//! fixtures moved into moto's retention window (it keeps recent log events only), and the environment
//! that points a Lambda process at the local servers.
//!
//! Everything here panics (with the name of the failed call) on any error: it is test setup.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use aws_sdk_s3::types::PublicAccessBlockConfiguration;
use connect_events_core::event::{format_millis, parse_timestamp};
use connect_events_core::flow_logs::FlowLogEntry;
use serde_json::{json, Value};

use crate::connect_fake::ConnectFake;
use crate::fixture;
use crate::harness::{moto, osmem, unique};

/// C1 of the sample archive: inbound voice, 12 flow-log lines of which 11 are distinct.
const C1: &str = "248b1a9e-5c07-455b-8daf-f67b49e04cd4";

/// Epoch milliseconds now.
pub fn now_millis() -> i64 {
    let since = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970");
    i64::try_from(since.as_millis()).expect("millis fit in i64")
}

/// An endpoint nothing listens on: connections are refused at once.
pub const REFUSED_ENDPOINT: &str = "http://127.0.0.1:9";

// ---------------------------------------------------------------------------------------------------
// Lambda processes
// ---------------------------------------------------------------------------------------------------

/// Endpoints of the servers a Lambda process is pointed at.
pub struct Endpoints {
    /// S3, DynamoDB and CloudWatch Logs.
    pub moto: String,
    /// OpenSearch.
    pub osmem: String,
    /// Amazon Connect.
    pub connect: String,
}

/// Static credentials and Region for a CLI process on the local servers (the Lambda emulator sets the
/// same for Lambda processes).
pub const CLI_CREDENTIALS: [(&str, &str); 4] = [
    ("AWS_REGION", "us-east-1"),
    ("AWS_ACCESS_KEY_ID", "test"),
    ("AWS_SECRET_ACCESS_KEY", "test"),
    ("AWS_EC2_METADATA_DISABLED", "true"),
];

impl Endpoints {
    /// [`Endpoints::env`] with [`CLI_CREDENTIALS`], then `extra`: a CLI process on the local servers.
    pub fn cli_env(&self, extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut env = self.env(&CLI_CREDENTIALS);
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        env
    }

    /// The local servers (started on first use): moto, osmem-server and `connect`, or for Connect
    /// [`REFUSED_ENDPOINT`] when there is no fake.
    pub async fn local(connect: Option<&ConnectFake>) -> Endpoints {
        Endpoints {
            moto: moto().await.endpoint().to_string(),
            osmem: osmem().await.url().to_string(),
            connect: connect.map_or_else(|| REFUSED_ENDPOINT.to_string(), ConnectFake::endpoint),
        }
    }

    /// [`REFUSED_ENDPOINT`] for every service: any network call fails at once.
    pub fn refused() -> Endpoints {
        Endpoints {
            moto: REFUSED_ENDPOINT.into(),
            osmem: REFUSED_ENDPOINT.into(),
            connect: REFUSED_ENDPOINT.into(),
        }
    }

    /// The environment of a Lambda process: every endpoint (`AWS_ENDPOINT_URL`, for any other AWS
    /// service, is refused), deterministic log settings, then `extra`.
    pub fn env(&self, extra: &[(&str, &str)]) -> Vec<(String, String)> {
        let mut env: Vec<(String, String)> = [
            ("AWS_ENDPOINT_URL", REFUSED_ENDPOINT),
            ("AWS_ENDPOINT_URL_S3", self.moto.as_str()),
            ("AWS_ENDPOINT_URL_DYNAMODB", self.moto.as_str()),
            ("AWS_ENDPOINT_URL_CLOUDWATCH_LOGS", self.moto.as_str()),
            ("AWS_ENDPOINT_URL_CONNECT", self.connect.as_str()),
            ("OPENSEARCH_ENDPOINT", self.osmem.as_str()),
            ("AWS_LAMBDA_LOG_FORMAT", "JSON"),
            ("AWS_LAMBDA_LOG_LEVEL", "INFO"),
            // The subscriber also reads RUST_LOG directives: pin them so a developer's setting cannot
            // change what the tests see.
            ("RUST_LOG", "info"),
        ]
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
        env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        env
    }
}

// ---------------------------------------------------------------------------------------------------
// S3
// ---------------------------------------------------------------------------------------------------

/// Creates the bucket `<unique(prefix)>`, with no Block Public Access configuration, and returns its
/// name.
pub async fn create_bucket(s3: &aws_sdk_s3::Client, prefix: &str) -> String {
    let bucket = unique(prefix);
    s3.create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("CreateBucket");
    bucket
}

/// Creates the bucket `<unique(prefix)>` with all four Block Public Access flags on, no policy and a
/// private ACL: the runbook's checks pass. Returns its name.
pub async fn safe_bucket(s3: &aws_sdk_s3::Client, prefix: &str) -> String {
    let bucket = create_bucket(s3, prefix).await;
    block_public_access(s3, &bucket, true).await;
    bucket
}

/// Creates the bucket `<unique(prefix)>` with a policy that grants public read, then turns all four
/// Block Public Access flags on (S3 refuses a public policy once `BlockPublicPolicy` is on): the block
/// check passes, the policy check must refuse the bucket. Returns its name.
pub async fn public_policy_bucket(s3: &aws_sdk_s3::Client, prefix: &str) -> String {
    let bucket = create_bucket(s3, prefix).await;
    let policy = json!({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "PublicRead",
            "Effect": "Allow",
            "Principal": "*",
            "Action": "s3:GetObject",
            "Resource": format!("arn:aws:s3:::{bucket}/*"),
        }],
    });
    s3.put_bucket_policy()
        .bucket(&bucket)
        .policy(policy.to_string())
        .send()
        .await
        .expect("PutBucketPolicy");
    block_public_access(s3, &bucket, true).await;
    bucket
}

/// PutPublicAccessBlock on `bucket`: `BlockPublicAcls`, `IgnorePublicAcls` and `BlockPublicPolicy` on,
/// `RestrictPublicBuckets` as given (`false` makes a block the runbook must refuse).
pub async fn block_public_access(
    s3: &aws_sdk_s3::Client,
    bucket: &str,
    restrict_public_buckets: bool,
) {
    s3.put_public_access_block()
        .bucket(bucket)
        .public_access_block_configuration(
            PublicAccessBlockConfiguration::builder()
                .block_public_acls(true)
                .ignore_public_acls(true)
                .block_public_policy(true)
                .restrict_public_buckets(restrict_public_buckets)
                .build(),
        )
        .send()
        .await
        .expect("PutPublicAccessBlock");
}

/// The keys of the objects in `bucket` (one ListObjectsV2 page).
pub async fn object_keys(s3: &aws_sdk_s3::Client, bucket: &str) -> Vec<String> {
    s3.list_objects_v2()
        .bucket(bucket)
        .send()
        .await
        .expect("ListObjectsV2")
        .contents()
        .iter()
        .filter_map(|o| o.key().map(str::to_owned))
        .collect()
}

// ---------------------------------------------------------------------------------------------------
// CloudWatch Logs
// ---------------------------------------------------------------------------------------------------

/// Creates the log group `/aws/connect/<unique(prefix)>` (where Connect writes flow logs) and returns
/// its name.
pub async fn flow_log_group(logs: &aws_sdk_cloudwatchlogs::Client, prefix: &str) -> String {
    let group = format!("/aws/connect/{}", unique(prefix));
    logs.create_log_group()
        .log_group_name(&group)
        .send()
        .await
        .expect("CreateLogGroup");
    group
}

/// Creates `stream` in `group` and writes `lines`, `(epoch milliseconds, message)` pairs that must be in
/// time order, with one PutLogEvents; fails the test if moto rejects any event.
pub async fn put_log_lines(
    logs: &aws_sdk_cloudwatchlogs::Client,
    group: &str,
    stream: &str,
    lines: &[(i64, String)],
) {
    logs.create_log_stream()
        .log_group_name(group)
        .log_stream_name(stream)
        .send()
        .await
        .expect("CreateLogStream");
    let events = lines
        .iter()
        .map(|(ts, message)| {
            InputLogEvent::builder()
                .timestamp(*ts)
                .message(message)
                .build()
                .expect("complete log event")
        })
        .collect::<Vec<_>>();
    let out = logs
        .put_log_events()
        .log_group_name(group)
        .log_stream_name(stream)
        .set_log_events(Some(events))
        .send()
        .await
        .expect("PutLogEvents");
    assert!(
        out.rejected_log_events_info().is_none(),
        "moto rejected log events: {:?}",
        out.rejected_log_events_info()
    );
}

// ---------------------------------------------------------------------------------------------------
// fixtures shifted in time
// ---------------------------------------------------------------------------------------------------

/// The flow-log fixtures and the C1 DISCONNECTED event, moved forward together so that C1 disconnected
/// one hour ago (moto keeps only recent log events). See [`c1_ended_an_hour_ago`].
pub struct ShiftedFlowLogs {
    /// The C1 DISCONNECTED event of `events/sample-archive.ndjson`, every timestamp shifted.
    pub disconnected: Value,
    /// Every line of `flow-logs/all-contacts.ndjson` with its `Timestamp` shifted, as
    /// `(epoch milliseconds, line)` in time order (lines with the same time in fixture order).
    pub lines: Vec<(i64, String)>,
    /// Every line of `events/sample-archive.ndjson` (duplicates included, in order), shifted by
    /// the same amount: the whole archive as if C1 had disconnected an hour ago.
    pub archive: Vec<Value>,
}

/// Shifts the C1 DISCONNECTED event and every line of `flow-logs/all-contacts.ndjson` by the same whole
/// number of seconds, so that C1 disconnected (about) one hour ago.
pub fn c1_ended_an_hour_ago() -> ShiftedFlowLogs {
    let event = c1_disconnected();
    let disconnect = parse_timestamp(
        event["detail"]["disconnectTimestamp"]
            .as_str()
            .expect("disconnectTimestamp string"),
    )
    .expect("valid disconnectTimestamp")
    .expect("set disconnectTimestamp")
    .timestamp_millis();
    let mut shift_ms = now_millis() - 3_600_000 - disconnect;
    shift_ms -= shift_ms % 1000;
    let disconnected = shift_event(event, shift_ms);

    let text = std::fs::read_to_string(fixture("flow-logs/all-contacts.ndjson"))
        .expect("reading the flow-log fixture");
    let mut lines: Vec<(i64, String)> = text
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|line| {
            let entry = FlowLogEntry::parse(line).expect("fixture line is a flow-log entry");
            let at = entry.timestamp() + Duration::from_millis(shift_ms.unsigned_abs());
            let mut value: Value = serde_json::from_str(line).expect("fixture line is JSON");
            value["Timestamp"] = json!(format_millis(&at));
            (at.timestamp_millis(), value.to_string())
        })
        .collect();
    lines.sort_by_key(|(ts, _)| *ts);
    let archive = std::fs::read_to_string(fixture("events/sample-archive.ndjson"))
        .expect("reading the sample archive")
        .lines()
        .map(|l| {
            shift_event(
                serde_json::from_str(l).expect("archive line is JSON"),
                shift_ms,
            )
        })
        .collect();
    ShiftedFlowLogs {
        disconnected,
        lines,
        archive,
    }
}

/// The C1 DISCONNECTED event of `events/sample-archive.ndjson`.
fn c1_disconnected() -> Value {
    let text = std::fs::read_to_string(fixture("events/sample-archive.ndjson"))
        .expect("reading the sample archive");
    text.lines()
        .map(|l| serde_json::from_str::<Value>(l).expect("archive line is JSON"))
        .find(|e| {
            e["detail"]["contactId"] == json!(C1)
                && e["detail"]["eventType"] == json!("DISCONNECTED")
        })
        .expect("C1 has a DISCONNECTED event")
}

/// Shifts every `*Timestamp` string of a contact event's `detail`, and its `time`, by `shift_ms`
/// (forward only: the fixtures are in the past).
fn shift_event(mut event: Value, shift_ms: i64) -> Value {
    fn shift(value: &mut Value, shift_ms: i64) {
        if let Some(text) = value.as_str() {
            if let Ok(Some(t)) = parse_timestamp(text) {
                let shifted = t + Duration::from_millis(shift_ms.unsigned_abs());
                *value = json!(format_millis(&shifted));
            }
        }
    }
    fn walk(value: &mut Value, shift_ms: i64) {
        match value {
            Value::Object(map) => {
                for (key, v) in map.iter_mut() {
                    if key.ends_with("Timestamp") {
                        shift(v, shift_ms);
                    } else {
                        walk(v, shift_ms);
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(|v| walk(v, shift_ms)),
            _ => {}
        }
    }
    assert!(shift_ms >= 0, "fixtures are in the past");
    shift(&mut event["time"], shift_ms);
    walk(&mut event["detail"], shift_ms);
    event
}

/// The id of the `i`-th queue made by [`standard_queues`]: `q-000`, `q-001`, …
pub fn queue_id(i: usize) -> String {
    format!("q-{i:03}")
}

/// Adds `n` STANDARD queues (`q-000`… named `Queue 000`…) to the fake's `instance` and returns
/// them as the metrics port's queue references.
pub fn standard_queues(
    fake: &ConnectFake,
    instance: &str,
    n: usize,
) -> Vec<connect_events_core::queue_depth::QueueRef> {
    (0..n)
        .map(|i| {
            let id = queue_id(i);
            let name = format!("Queue {i:03}");
            let arn = fake.add_queue(instance, &id, Some(&name), "STANDARD");
            connect_events_core::queue_depth::QueueRef {
                id,
                arn: Some(arn),
                name: Some(name),
            }
        })
        .collect()
}

/// A live voice contact as DescribeContact answers it (`api/describe-contact-voice.json` without
/// its end, agent and queue), with the given id and customer number.
pub fn live_voice_contact(instance: &str, account: &str, contact_id: &str, number: &str) -> Value {
    let mut contact = crate::fixture_json("api/describe-contact-voice.json")["Contact"].clone();
    let object = contact.as_object_mut().expect("Contact object");
    for ended in [
        "DisconnectTimestamp",
        "DisconnectReason",
        "AgentInfo",
        "QueueInfo",
    ] {
        object.remove(ended);
    }
    object.insert("Id".into(), json!(contact_id));
    object.insert(
        "Arn".into(),
        json!(format!(
            "arn:aws:connect:us-east-1:{account}:instance/{instance}/contact/{contact_id}"
        )),
    );
    object.insert(
        "CustomerEndpoint".into(),
        json!({"Type": "TELEPHONE_NUMBER", "Address": number}),
    );
    contact
}
