//! The flow-log archive adapters of `connect-events-handlers` (`aws::logs::CloudWatchFlowLogs`,
//! `aws::s3::S3Archive`) wired into the core `FlowLogArchiver`, over real HTTP against moto.
//!
//! Each test seeds its own log group (`/aws/connect/<unique>`) with the flow-log fixtures spread over
//! several streams, and uses its own buckets. moto keeps log events of the last 14 days only, so the
//! fixture timestamps (June 2025) are shifted to end one hour ago; the `Timestamp` field of every line
//! is rewritten to match its event time.
//!
//! moto's Logs Insights ignores `filter`, so the Insights strategy gets every contact's lines back:
//! the tests prove that the core policy's exact `ContactId` matching removes them. moto ignores
//! `ExpectedBucketOwner`, so the owner check runs through a small proxy that enforces the header the
//! way S3 documents it (403 `AccessDenied` when the bucket belongs to another account).

use std::sync::{Arc, Mutex};

use aws_sdk_cloudwatchlogs::primitives::{DateTime as SmithyDateTime, DateTimeFormat};
use aws_sdk_s3::types::{BucketCannedAcl, ServerSideEncryption};
use connect_events_core::clock::{Clock, SystemClock};
use connect_events_core::flow_logs::archive::read_gzip_ndjson;
use connect_events_core::flow_logs::{
    ArchiveObject, ArchiveOutcome, ArchiveRequest, ArchiveStore, FlowLogArchiver, FlowLogConfig,
    FlowLogEntry, FlowLogQuery, FlowLogSource, PutCondition,
};
use connect_events_core::{HandlerError, PortError};
use connect_events_handlers::aws::logs::{
    filter_pattern, insights_query, CloudWatchFlowLogs, LogStrategy, QueryWindow, MAX_QUERY_ROWS,
};
use connect_events_handlers::aws::s3::{
    console_url, download_command, S3Archive, S3ArchiveOptions, ARCHIVE_CONTENT_TYPE,
};
use connect_events_tests::fixture;
use connect_events_tests::harness::{local_sdk_config, moto, unique};
use connect_events_tests::seed::{
    block_public_access, create_bucket, flow_log_group, now_millis, object_keys,
    public_policy_bucket, put_log_lines, safe_bucket,
};
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use serde_json::Value;

/// moto's account (it owns every bucket).
const ACCOUNT: &str = "123456789012";
const INSTANCE: &str = "8f2c6d1e-4b7a-4e39-9c5d-2a1f0b3e7d64";
/// C1: inbound voice, answered; its Lambda entry is delivered twice (11 distinct of 12 lines).
const C1: &str = "248b1a9e-5c07-455b-8daf-f67b49e04cd4";
/// C3: the deny-list Lambda block fails (`Identifier` "Deny list lookup").
const C3: &str = "dd5b1dcd-f03f-4425-9f47-f9fa62aeeee3";
/// The four contacts of `all-contacts.ndjson`.
const CONTACTS: [&str; 4] = [
    C1,
    C3,
    "90f42109-2467-4717-9bc6-777a49320b88",
    "a15ee2fb-5986-4fa3-8f9a-4359cdb43d71",
];
/// Log streams the fixture lines are spread over (Connect writes one group, several streams).
const STREAMS: [&str; 3] = ["stream-a", "stream-b", "stream-c"];

// ---------------------------------------------------------------------------------------------------
// helpers
// ---------------------------------------------------------------------------------------------------

/// A log group seeded with fixture lines.
struct Seeded {
    log_group: String,
    /// The seeded entries, in fixture order (duplicates included).
    entries: Vec<FlowLogEntry>,
}

impl Seeded {
    /// The contact's entries as seeded (duplicates included).
    fn of(&self, contact: &str) -> Vec<&FlowLogEntry> {
        self.entries
            .iter()
            .filter(|e| e.contact_id() == contact)
            .collect()
    }

    /// An archive request for `contact`, from its first to its last entry.
    fn request(&self, contact: &str) -> ArchiveRequest {
        let own = self.of(contact);
        ArchiveRequest {
            instance_id: INSTANCE.into(),
            contact_id: contact.into(),
            account_id: ACCOUNT.into(),
            related: Vec::new(),
            started: own.iter().map(|e| e.timestamp()).min(),
            ended: own.iter().map(|e| e.timestamp()).max(),
            window: None,
        }
    }

    /// The source query the archiver makes for `request` with the default windows.
    fn query(&self, request: &ArchiveRequest) -> FlowLogQuery {
        let config = FlowLogConfig::default();
        FlowLogQuery {
            log_group: self.log_group.clone(),
            contact_ids: vec![request.contact_id.clone()],
            start: request.started.expect("started") - config.window_before,
            end: request.ended.expect("ended") + config.window_after,
        }
    }
}

/// RFC 3339 UTC text of an epoch-millisecond time.
fn rfc3339(ms: i64) -> String {
    SmithyDateTime::from_millis(ms)
        .fmt(DateTimeFormat::DateTime)
        .expect("formattable time")
}

/// A fixture line with its `Timestamp` moved by `shift_ms`.
fn shifted(line: &str, shift_ms: i64) -> String {
    let entry = FlowLogEntry::parse(line).expect("fixture line is a flow-log entry");
    let mut value: Value = serde_json::from_str(line).expect("fixture line is JSON");
    value["Timestamp"] = Value::String(rfc3339(entry.timestamp().timestamp_millis() + shift_ms));
    value.to_string()
}

/// Creates `/aws/connect/<unique>` with the lines of `flow-logs/<file>` (timestamps shifted so the last
/// line is one hour old) spread round-robin over [`STREAMS`], each stream written in time order.
async fn seed(logs: &aws_sdk_cloudwatchlogs::Client, file: &str) -> Seeded {
    let text = std::fs::read_to_string(fixture(&format!("flow-logs/{file}")))
        .expect("reading the flow-log fixture");
    let raw: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let last = raw
        .iter()
        .map(|l| {
            FlowLogEntry::parse(l)
                .expect("fixture entry")
                .timestamp()
                .timestamp_millis()
        })
        .max()
        .expect("fixture has lines");
    let shift_ms = now_millis() - 3_600_000 - last;
    let lines: Vec<String> = raw.iter().map(|l| shifted(l, shift_ms)).collect();
    let entries: Vec<FlowLogEntry> = lines
        .iter()
        .map(|l| FlowLogEntry::parse(l).expect("shifted entry"))
        .collect();

    let log_group = flow_log_group(logs, "flow-logs").await;
    for (n, stream) in STREAMS.iter().enumerate() {
        let mut batch: Vec<(i64, String)> = lines
            .iter()
            .zip(&entries)
            .enumerate()
            .filter(|(i, _)| i % STREAMS.len() == n)
            .map(|(_, (line, entry))| (entry.timestamp().timestamp_millis(), line.clone()))
            .collect();
        batch.sort_by_key(|(ts, _)| *ts);
        put_log_lines(logs, &log_group, stream, &batch).await;
    }
    Seeded { log_group, entries }
}

/// Downloads, gunzips and parses an archive; returns its lines (canonical JSON) in file order.
async fn archive_lines(s3: &aws_sdk_s3::Client, bucket: &str, key: &str) -> Vec<String> {
    let object = s3
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .expect("GetObject of the archive");
    let body = object
        .body
        .collect()
        .await
        .expect("archive body")
        .into_bytes();
    read_gzip_ndjson(body.as_ref())
        .expect("archive is gzip NDJSON of flow-log entries")
        .iter()
        .map(|e| e.canonical_json().to_string())
        .collect()
}

/// The distinct entries, in archive order (Timestamp, then canonical JSON).
fn distinct_in_order<'a>(entries: impl IntoIterator<Item = &'a FlowLogEntry>) -> Vec<String> {
    let mut keyed: Vec<(i64, String)> = entries
        .into_iter()
        .map(|e| {
            (
                e.timestamp().timestamp_millis(),
                e.canonical_json().to_string(),
            )
        })
        .collect();
    keyed.sort();
    keyed.dedup();
    keyed.into_iter().map(|(_, line)| line).collect()
}

fn sorted_canonical(entries: &[FlowLogEntry]) -> Vec<String> {
    let mut lines: Vec<String> = entries
        .iter()
        .map(|e| e.canonical_json().to_string())
        .collect();
    lines.sort();
    lines
}

fn archiver(
    source: CloudWatchFlowLogs,
    store: S3Archive,
    bucket: &str,
    log_group: &str,
) -> FlowLogArchiver {
    FlowLogArchiver::new(
        Box::new(source),
        Box::new(store),
        FlowLogConfig {
            bucket: bucket.into(),
            log_group: Some(log_group.into()),
            bucket_owner: Some(ACCOUNT.into()),
            ..FlowLogConfig::default()
        },
    )
}

fn expect_archived(outcome: ArchiveOutcome) -> (String, usize, usize) {
    match outcome {
        ArchiveOutcome::Archived {
            key,
            summary,
            new_entries,
            ..
        } => (key, summary.entries, new_entries),
        other => panic!("expected Archived, got {other:?}"),
    }
}

// ---------------------------------------------------------------------------------------------------
// archive content, both strategies
// ---------------------------------------------------------------------------------------------------

/// Archives C1 from the four-contact log group with `strategy` and checks the object.
async fn archive_holds_the_contacts_distinct_entries(strategy: LogStrategy) {
    let moto = moto().await;
    let (logs, s3, config) = (moto.logs().await, moto.s3().await, moto.sdk_config().await);
    let seeded = seed(&logs, "all-contacts.ndjson").await;
    let bucket = safe_bucket(&s3, "flow-archive").await;
    let request = seeded.request(C1);

    // What the adapter itself returns: with Insights, moto ignores `filter` and every contact's lines
    // come back; with FilterLogEvents, the quoted-id term narrows them to C1 (duplicate included).
    let source = CloudWatchFlowLogs::new(&config, strategy);
    let raw = source
        .entries(&seeded.query(&request))
        .await
        .expect("reading flow logs");
    match strategy {
        LogStrategy::Insights => {
            assert_eq!(raw.len(), seeded.entries.len(), "moto returns every line");
            for contact in CONTACTS {
                assert!(
                    raw.iter().any(|e| e.contact_id() == contact),
                    "{contact} lines expected from moto's Insights"
                );
            }
        }
        LogStrategy::Filter => {
            assert!(raw.iter().all(|e| e.contact_id() == C1));
            assert_eq!(raw.len(), seeded.of(C1).len());
        }
    }

    let archiver = archiver(
        source,
        S3Archive::new(&config, S3ArchiveOptions::default()),
        &bucket,
        &seeded.log_group,
    );
    let outcome = archiver
        .archive(&request, SystemClock.now())
        .await
        .expect("archive C1");
    let ArchiveOutcome::Archived {
        location,
        key,
        summary,
        new_entries,
    } = outcome
    else {
        panic!("expected Archived, got {outcome:?}");
    };
    let expected = distinct_in_order(seeded.of(C1));
    assert_eq!(expected.len(), 11, "C1 has 12 lines, 11 distinct");
    assert_eq!((summary.entries, new_entries), (11, 11));
    assert!(summary.duplicates_removed >= 1, "{summary:?}");
    assert!(!summary.has_errors);

    let lines = archive_lines(&s3, &bucket, &key).await;
    assert_eq!(
        lines, expected,
        "the archive is C1's distinct entries in Timestamp order"
    );
    assert!(lines.iter().all(|l| l.contains(C1)));
    assert_eq!(object_keys(&s3, &bucket).await, vec![key.clone()]);

    assert_eq!(
        key,
        format!(
            "connect-flow-logs/{INSTANCE}/{}/ContactFlowLog_{C1}_{ACCOUNT}.gz",
            request.ended.expect("ended").format("%Y/%m/%d")
        )
    );
    assert_eq!(location.uri, format!("s3://{bucket}/{key}"));
    assert_eq!(
        location.console_url.as_deref(),
        Some(console_url("us-east-1", &bucket, &key).as_str())
    );
    assert_eq!(
        location.download_command.as_deref(),
        Some(format!("aws s3 cp s3://{bucket}/{key} ./ContactFlowLog_{C1}_{ACCOUNT}.gz").as_str())
    );

    let head = s3
        .head_object()
        .bucket(&bucket)
        .key(&key)
        .send()
        .await
        .expect("HeadObject");
    assert_eq!(head.content_type(), Some(ARCHIVE_CONTENT_TYPE));
    assert_eq!(
        head.content_encoding(),
        None,
        "no Content-Encoding: downloads stay gzip"
    );
    assert_eq!(
        head.server_side_encryption(),
        Some(&ServerSideEncryption::Aes256)
    );
}

#[tokio::test]
async fn insights_archive_holds_exactly_the_contacts_distinct_entries() {
    archive_holds_the_contacts_distinct_entries(LogStrategy::Insights).await;
}

#[tokio::test]
async fn filter_archive_holds_exactly_the_contacts_distinct_entries() {
    archive_holds_the_contacts_distinct_entries(LogStrategy::Filter).await;
}

#[tokio::test]
async fn insights_splits_capped_windows_without_losing_or_repeating_events() {
    let moto = moto().await;
    let (logs, s3, config) = (moto.logs().await, moto.s3().await, moto.sdk_config().await);
    let seeded = seed(&logs, "all-contacts.ndjson").await;
    let request = seeded.request(C1);
    let query = seeded.query(&request);

    let whole = CloudWatchFlowLogs::new(&config, LogStrategy::Insights)
        .entries(&query)
        .await
        .expect("uncapped read");
    assert_eq!(whole.len(), 39);

    assert_eq!(query_count(&logs, &seeded.log_group).await, 1);

    // 30 rows: capped results are halved until each part is below the cap; the union is exactly the
    // same multiset of events (nothing lost, nothing read twice).
    let halved = CloudWatchFlowLogs::new(&config, LogStrategy::Insights)
        .with_row_limit(30)
        .entries(&query)
        .await
        .expect("read with a 30-row cap");
    assert_eq!(sorted_canonical(&halved), sorted_canonical(&whole));
    let split_queries = query_count(&logs, &seeded.log_group).await - 1;
    assert!(
        split_queries >= 3,
        "{split_queries} queries: capped, then two halves at least"
    );

    // 5 rows: windows are halved down to two seconds, where up to six lines may fall into one window
    // (read with FilterLogEvents instead, C1 only). C1's entries are all there.
    let tiny = CloudWatchFlowLogs::new(&config, LogStrategy::Insights).with_row_limit(5);
    let entries = tiny.entries(&query).await.expect("read with a 5-row cap");
    assert_eq!(
        distinct_in_order(entries.iter().filter(|e| e.contact_id() == C1)),
        distinct_in_order(seeded.of(C1))
    );

    let bucket = safe_bucket(&s3, "flow-archive").await;
    let archiver = archiver(
        tiny,
        S3Archive::new(&config, S3ArchiveOptions::default()),
        &bucket,
        &seeded.log_group,
    );
    let (key, count, _) = expect_archived(
        archiver
            .archive(&request, SystemClock.now())
            .await
            .expect("archive with a 5-row cap"),
    );
    assert_eq!(count, 11);
    assert_eq!(
        archive_lines(&s3, &bucket, &key).await,
        distinct_in_order(seeded.of(C1))
    );
}

/// Logs Insights queries started on a log group so far (moto's DescribeQueries).
async fn query_count(logs: &aws_sdk_cloudwatchlogs::Client, log_group: &str) -> usize {
    logs.describe_queries()
        .log_group_name(log_group)
        .send()
        .await
        .expect("DescribeQueries")
        .queries()
        .len()
}

/// A one-block flow-log line of C1 at `ms`.
fn c1_line(ms: i64, identifier: &str) -> String {
    serde_json::json!({
        "ContactId": C1,
        "ContactFlowModuleType": "PlayPrompt",
        "Identifier": identifier,
        "Timestamp": rfc3339(ms),
    })
    .to_string()
}

#[tokio::test]
async fn insights_split_boundaries_are_exact_and_unsplittable_windows_fall_back_to_filter() {
    let moto = moto().await;
    let (logs, config) = (moto.logs().await, moto.sdk_config().await);
    // A whole second one hour ago; `at` turns epoch milliseconds into the query's time type.
    let s = (now_millis() / 1000 - 3600) * 1000;
    let at = |ms: i64| {
        FlowLogEntry::parse(&c1_line(ms, "t"))
            .expect("entry")
            .timestamp()
    };

    // Window [s, s+4]: four events, one exactly at the middle second s+2.000, which both halves see.
    let split_group = flow_log_group(&logs, "split-boundary").await;
    let lines = [
        (s + 500, c1_line(s + 500, "d")),
        (s + 1000, c1_line(s + 1000, "a")),
        (s + 2000, c1_line(s + 2000, "b-on-the-boundary")),
        (s + 3500, c1_line(s + 3500, "c")),
    ];
    put_log_lines(&logs, &split_group, "stream-a", &lines).await;
    let entries = CloudWatchFlowLogs::new(&config, LogStrategy::Insights)
        .with_row_limit(4)
        .entries(&FlowLogQuery {
            log_group: split_group.clone(),
            contact_ids: vec![C1.into()],
            start: at(s),
            end: at(s + 4000),
        })
        .await
        .expect("split read");
    // 4 rows (capped) -> [s, s+2] has 3, [s+2, s+4] has 2: the boundary event is kept once.
    assert_eq!(query_count(&logs, &split_group).await, 3);
    let mut identifiers: Vec<&str> = entries.iter().filter_map(|e| e.identifier()).collect();
    identifiers.sort_unstable();
    assert_eq!(identifiers, ["a", "b-on-the-boundary", "c", "d"]);

    // Window [s+1, s+2] cannot be split: three events in it reach a 2-row cap, so it is read with
    // FilterLogEvents, which has no cap.
    let dense_group = flow_log_group(&logs, "dense-second").await;
    let lines: Vec<(i64, String)> = (1..=3)
        .map(|n| {
            (
                s + 1000 + n * 100,
                c1_line(s + 1000 + n * 100, &format!("e{n}")),
            )
        })
        .collect();
    put_log_lines(&logs, &dense_group, "stream-a", &lines).await;
    let entries = CloudWatchFlowLogs::new(&config, LogStrategy::Insights)
        .with_row_limit(2)
        .entries(&FlowLogQuery {
            log_group: dense_group.clone(),
            contact_ids: vec![C1.into()],
            start: at(s + 1000),
            end: at(s + 2000),
        })
        .await
        .expect("dense read");
    assert_eq!(query_count(&logs, &dense_group).await, 1);
    assert_eq!(entries.len(), 3, "not truncated to the 2-row cap");
}

#[tokio::test]
async fn missing_log_group_is_not_found_and_not_retryable() {
    let moto = moto().await;
    let config = moto.sdk_config().await;
    let query = FlowLogQuery {
        log_group: format!("/aws/connect/{}", unique("no-such-group")),
        contact_ids: vec![C1.into()],
        start: SystemClock.now() - FlowLogConfig::default().window_after,
        end: SystemClock.now(),
    };
    for strategy in [LogStrategy::Insights, LogStrategy::Filter] {
        let err = CloudWatchFlowLogs::new(&config, strategy)
            .entries(&query)
            .await
            .expect_err("a missing log group is an error");
        assert!(
            matches!(err, PortError::NotFound { .. }),
            "{strategy}: {err}"
        );
        assert!(!err.retryable());
    }
}

// ---------------------------------------------------------------------------------------------------
// bucket posture
// ---------------------------------------------------------------------------------------------------

/// Archives C1 into `bucket` and expects the named safety check to refuse it with nothing written.
async fn expect_refused(bucket: &str, check: &str) {
    let moto = moto().await;
    let (logs, s3, config) = (moto.logs().await, moto.s3().await, moto.sdk_config().await);
    let seeded = seed(&logs, "voice-billing-answered.ndjson").await;
    let archiver = archiver(
        CloudWatchFlowLogs::new(&config, LogStrategy::Filter),
        S3Archive::new(&config, S3ArchiveOptions::default()),
        bucket,
        &seeded.log_group,
    );
    let err = archiver
        .archive(&seeded.request(C1), SystemClock.now())
        .await
        .expect_err("an unsafe bucket is refused");
    match &err {
        HandlerError::UnsafeBucket {
            bucket: b,
            check: c,
            ..
        } => {
            assert_eq!((b.as_str(), *c), (bucket, check), "{err}");
        }
        other => panic!("expected UnsafeBucket({check}), got {other:?}"),
    }
    assert!(!err.retryable());
    assert!(
        object_keys(&s3, bucket).await.is_empty(),
        "nothing may be written to an unsafe bucket"
    );
}

#[tokio::test]
async fn public_bucket_policy_is_refused_before_any_write() {
    let s3 = moto().await.s3().await;
    // Public read by policy, blocked afterwards: the block passes, the policy check must still fail.
    let bucket = public_policy_bucket(&s3, "public-policy").await;
    expect_refused(&bucket, "bucket-policy").await;
}

#[tokio::test]
async fn bucket_without_public_access_block_is_refused() {
    let s3 = moto().await.s3().await;
    let bucket = create_bucket(&s3, "no-pab").await;
    expect_refused(&bucket, "public-access-block").await;
}

#[tokio::test]
async fn bucket_with_a_public_access_flag_off_is_refused() {
    let s3 = moto().await.s3().await;
    let bucket = create_bucket(&s3, "partial-pab").await;
    block_public_access(&s3, &bucket, false).await;
    expect_refused(&bucket, "public-access-block").await;
}

#[tokio::test]
async fn public_acl_grant_is_refused() {
    let s3 = moto().await.s3().await;
    let bucket = unique("public-acl");
    s3.create_bucket()
        .bucket(&bucket)
        .acl(BucketCannedAcl::PublicRead)
        .send()
        .await
        .expect("CreateBucket public-read");
    block_public_access(&s3, &bucket, true).await;
    expect_refused(&bucket, "bucket-acl").await;
}

#[tokio::test]
async fn blocked_bucket_posture_is_accepted() {
    let moto = moto().await;
    let (s3, config) = (moto.s3().await, moto.sdk_config().await);
    let bucket = safe_bucket(&s3, "flow-archive").await;
    let posture = S3Archive::new(&config, S3ArchiveOptions::default())
        .bucket_posture(&bucket)
        .await
        .expect("posture");
    assert_eq!(posture.public_access_block, Some(true));
    assert_eq!(posture.policy_is_public, None);
    assert!(posture.public_acl_grants.is_empty(), "{posture:?}");
    connect_events_core::flow_logs::check_posture(&bucket, &posture).expect("a safe bucket");
}

// ---------------------------------------------------------------------------------------------------
// merge, conditional writes, metadata
// ---------------------------------------------------------------------------------------------------

#[tokio::test]
async fn late_line_merges_into_one_superset_object_and_a_repeat_is_unchanged() {
    let moto = moto().await;
    let (logs, s3, config) = (moto.logs().await, moto.s3().await, moto.sdk_config().await);
    let seeded = seed(&logs, "all-contacts.ndjson").await;
    let bucket = safe_bucket(&s3, "flow-archive").await;
    let request = seeded.request(C1);
    let archiver = archiver(
        CloudWatchFlowLogs::new(&config, LogStrategy::Insights),
        S3Archive::new(&config, S3ArchiveOptions::default()),
        &bucket,
        &seeded.log_group,
    );

    let (key, count, _) = expect_archived(
        archiver
            .archive(&request, SystemClock.now())
            .await
            .expect("first archive"),
    );
    assert_eq!(count, 11);
    let first = archive_lines(&s3, &bucket, &key).await;

    // A line delivered late, 30 s after the contact's last entry, into another stream.
    let late_ms = request.ended.expect("ended").timestamp_millis() + 30_000;
    let late = serde_json::json!({
        "ContactId": C1,
        "ContactFlowId": format!("arn:aws:connect:us-east-1:{ACCOUNT}:instance/{INSTANCE}/contact-flow/ca8c764e-fbe5-4a61-8994-4fc2ef420e5c"),
        "ContactFlowName": "Default customer queue",
        "ContactFlowModuleType": "Disconnect",
        "Identifier": "late-disconnect",
        "Timestamp": rfc3339(late_ms),
    })
    .to_string();
    put_log_lines(
        &logs,
        &seeded.log_group,
        "stream-late",
        &[(late_ms, late.clone())],
    )
    .await;

    let (second_key, count, new_entries) = expect_archived(
        archiver
            .archive(&request, SystemClock.now())
            .await
            .expect("second archive"),
    );
    assert_eq!(second_key, key);
    assert_eq!((count, new_entries), (12, 1));
    assert_eq!(
        object_keys(&s3, &bucket).await,
        vec![key.clone()],
        "one object"
    );
    let second = archive_lines(&s3, &bucket, &key).await;
    assert!(first.iter().all(|l| second.contains(l)), "a superset");
    let late_entry = FlowLogEntry::parse(&late).expect("late entry");
    assert_eq!(
        second.last().map(String::as_str),
        Some(late_entry.canonical_json())
    );

    match archiver
        .archive(&request, SystemClock.now())
        .await
        .expect("third archive")
    {
        ArchiveOutcome::Unchanged {
            key: k, summary, ..
        } => {
            assert_eq!((k, summary.entries), (key.clone(), 12));
        }
        other => panic!("expected Unchanged, got {other:?}"),
    }
    assert_eq!(archive_lines(&s3, &bucket, &key).await, second);
}

#[tokio::test]
async fn conditional_puts_map_failed_preconditions_to_conflict() {
    let moto = moto().await;
    let (s3, config) = (moto.s3().await, moto.sdk_config().await);
    let bucket = safe_bucket(&s3, "flow-archive").await;
    let store = S3Archive::new(&config, S3ArchiveOptions::default());
    let object = |body: &[u8]| ArchiveObject {
        bucket: bucket.clone(),
        key: "connect-flow-logs/cas/object.gz".into(),
        body: body.to_vec(),
        metadata: Default::default(),
    };

    assert_eq!(
        store.get(&bucket, "connect-flow-logs/cas/object.gz").await,
        Ok(None)
    );
    store
        .put(&object(b"one"), PutCondition::Absent)
        .await
        .expect("create");
    // If-None-Match: * on an existing object.
    let err = store
        .put(&object(b"two"), PutCondition::Absent)
        .await
        .expect_err("create over an existing object");
    assert!(matches!(err, PortError::Conflict { .. }), "{err}");

    let stored = store
        .get(&bucket, "connect-flow-logs/cas/object.gz")
        .await
        .expect("get")
        .expect("object exists");
    assert_eq!(stored.body, b"one");
    let etag = stored.etag.expect("ETag");
    // If-Match with a stale ETag.
    let err = store
        .put(
            &object(b"two"),
            PutCondition::Matches("\"0123456789abcdef\"".into()),
        )
        .await
        .expect_err("replace with a stale ETag");
    assert!(matches!(err, PortError::Conflict { .. }), "{err}");
    store
        .put(&object(b"two"), PutCondition::Matches(etag.clone()))
        .await
        .expect("replace with the current ETag");

    // If-Match on an object deleted since it was read: a conflict (re-read and merge), not NotFound.
    s3.delete_object()
        .bucket(&bucket)
        .key("connect-flow-logs/cas/object.gz")
        .send()
        .await
        .expect("DeleteObject");
    let err = store
        .put(&object(b"three"), PutCondition::Matches(etag))
        .await
        .expect_err("replace a deleted object");
    assert!(matches!(err, PortError::Conflict { .. }), "{err}");
    assert!(!err.retryable());
}

#[tokio::test]
async fn metadata_and_sse_kms_are_stored() {
    let moto = moto().await;
    let (logs, s3, config) = (moto.logs().await, moto.s3().await, moto.sdk_config().await);
    let seeded = seed(&logs, "voice-lambda-error-abandoned.ndjson").await;
    let bucket = safe_bucket(&s3, "flow-archive").await;
    let kms_key =
        format!("arn:aws:kms:us-east-1:{ACCOUNT}:key/1234abcd-12ab-34cd-56ef-1234567890ab");
    let archiver = archiver(
        CloudWatchFlowLogs::new(&config, LogStrategy::Insights),
        S3Archive::new(
            &config,
            S3ArchiveOptions {
                kms_key_id: Some(kms_key.clone()),
                expected_bucket_owner: Some(ACCOUNT.into()),
                ..S3ArchiveOptions::default()
            },
        ),
        &bucket,
        &seeded.log_group,
    );
    let (key, count, _) = expect_archived(
        archiver
            .archive(&seeded.request(C3), SystemClock.now())
            .await
            .expect("archive C3"),
    );
    let distinct = distinct_in_order(seeded.of(C3)).len();
    assert_eq!(count, distinct);

    let head = s3
        .head_object()
        .bucket(&bucket)
        .key(&key)
        .send()
        .await
        .expect("HeadObject");
    assert_eq!(
        head.server_side_encryption(),
        Some(&ServerSideEncryption::AwsKms)
    );
    assert_eq!(head.ssekms_key_id(), Some(kms_key.as_str()));
    assert_eq!(head.content_type(), Some(ARCHIVE_CONTENT_TYPE));
    let metadata = head.metadata().expect("user metadata");
    assert_eq!(metadata.get("contact-id").map(String::as_str), Some(C3));
    assert_eq!(
        metadata.get("entry-count"),
        Some(&distinct.to_string()),
        "{metadata:?}"
    );
    assert_eq!(metadata.get("has-errors").map(String::as_str), Some("true"));
    assert_eq!(
        metadata.get("error-blocks").map(String::as_str),
        Some("Deny list lookup")
    );
}

// ---------------------------------------------------------------------------------------------------
// ExpectedBucketOwner (moto ignores it: enforced by a proxy, as S3 does)
// ---------------------------------------------------------------------------------------------------

/// `(method and URI, x-amz-expected-bucket-owner)` of each request the proxy received.
type CallLog = Mutex<Vec<(String, Option<String>)>>;

/// An HTTP proxy in front of moto that records each request's `x-amz-expected-bucket-owner` and answers
/// 403 `AccessDenied` when it names an account other than moto's, like S3.
struct OwnerProxy {
    endpoint: String,
    seen: Arc<CallLog>,
    task: tokio::task::JoinHandle<()>,
}

impl Drop for OwnerProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl OwnerProxy {
    async fn start(upstream: &str) -> OwnerProxy {
        let upstream = upstream
            .strip_prefix("http://")
            .expect("moto endpoint is http://host:port")
            .to_string();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the proxy");
        let endpoint = format!("http://{}", listener.local_addr().expect("proxy address"));
        let seen: Arc<CallLog> = Arc::default();
        let log = seen.clone();
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let (upstream, log) = (upstream.clone(), log.clone());
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                        let (upstream, log) = (upstream.clone(), log.clone());
                        async move {
                            Ok::<_, std::convert::Infallible>(proxy(&upstream, &log, req).await)
                        }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        OwnerProxy {
            endpoint,
            seen,
            task,
        }
    }

    fn seen(&self) -> Vec<(String, Option<String>)> {
        self.seen.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

async fn proxy(upstream: &str, log: &CallLog, req: Request<Incoming>) -> Response<Full<Bytes>> {
    let owner = req
        .headers()
        .get("x-amz-expected-bucket-owner")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    log.lock()
        .unwrap_or_else(|p| p.into_inner())
        .push((format!("{} {}", req.method(), req.uri()), owner.clone()));
    if owner.as_deref().is_some_and(|o| o != ACCOUNT) {
        let body = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code>\
                    <Message>Access Denied</Message><RequestId>proxy</RequestId></Error>";
        return Response::builder()
            .status(403)
            .header("content-type", "application/xml")
            .body(Full::new(Bytes::from(body)))
            .expect("403 response");
    }
    match forward(upstream, req).await {
        Ok(response) => response,
        Err(e) => Response::builder()
            .status(502)
            .body(Full::new(Bytes::from(e)))
            .expect("502 response"),
    }
}

/// Forwards one request to moto as HTTP/1.0 (one connection per request, response ends at EOF, never
/// chunked) and relays the answer.
async fn forward(upstream: &str, req: Request<Incoming>) -> Result<Response<Full<Bytes>>, String> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    let (parts, body) = req.into_parts();
    let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
    let target = parts.uri.path_and_query().map_or("/", |p| p.as_str());
    let mut head = format!("{} {target} HTTP/1.0\r\n", parts.method);
    for (name, value) in &parts.headers {
        if matches!(
            name.as_str(),
            "connection" | "keep-alive" | "content-length" | "transfer-encoding"
        ) {
            continue;
        }
        let value = value.to_str().map_err(|e| e.to_string())?;
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!("content-length: {}\r\n\r\n", body.len()));

    let mut stream = tokio::net::TcpStream::connect(upstream)
        .await
        .map_err(|e| e.to_string())?;
    stream
        .write_all(head.as_bytes())
        .await
        .map_err(|e| e.to_string())?;
    stream.write_all(&body).await.map_err(|e| e.to_string())?;
    let mut raw = Vec::new();
    stream
        .read_to_end(&mut raw)
        .await
        .map_err(|e| e.to_string())?;

    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or("no end of response head")?;
    let head = std::str::from_utf8(&raw[..split]).map_err(|e| e.to_string())?;
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .ok_or("no status line")?;
    let mut response = Response::builder().status(status);
    for line in lines {
        if let Some((name, value)) = line.split_once(':') {
            let name = name.trim().to_ascii_lowercase();
            if !matches!(
                name.as_str(),
                "connection" | "keep-alive" | "content-length" | "transfer-encoding"
            ) {
                response = response.header(name, value.trim());
            }
        }
    }
    response
        .body(Full::new(Bytes::copy_from_slice(&raw[split + 4..])))
        .map_err(|e| e.to_string())
}

#[tokio::test]
async fn expected_bucket_owner_is_sent_on_every_call_and_a_mismatch_is_refused() {
    let moto = moto().await;
    let (logs, s3, config) = (moto.logs().await, moto.s3().await, moto.sdk_config().await);
    let seeded = seed(&logs, "voice-billing-answered.ndjson").await;
    let proxy = OwnerProxy::start(moto.endpoint()).await;
    let proxied = local_sdk_config(&proxy.endpoint, 1).await;
    let store = |owner: &str| {
        S3Archive::new(
            &proxied,
            S3ArchiveOptions {
                expected_bucket_owner: Some(owner.into()),
                ..S3ArchiveOptions::default()
            },
        )
    };

    // The right owner: the archive is written and every S3 call carried the header.
    let bucket = safe_bucket(&s3, "flow-archive").await;
    let owned = archiver(
        CloudWatchFlowLogs::new(&config, LogStrategy::Filter),
        store(ACCOUNT),
        &bucket,
        &seeded.log_group,
    );
    let (key, count, _) = expect_archived(
        owned
            .archive(&seeded.request(C1), SystemClock.now())
            .await
            .expect("archive through the proxy"),
    );
    assert_eq!(count, 11);
    let seen = proxy.seen();
    // GetPublicAccessBlock, GetBucketPolicyStatus, GetBucketAcl, GetObject, PutObject.
    assert!(seen.len() >= 5, "{seen:?}");
    assert!(
        seen.iter()
            .all(|(_, owner)| owner.as_deref() == Some(ACCOUNT)),
        "every call must carry ExpectedBucketOwner: {seen:?}"
    );
    assert!(seen
        .iter()
        .any(|(call, _)| call.starts_with("PUT") && call.contains(&key)));

    // Another owner: S3 answers 403 to the first (read-only) call; nothing is written.
    let other = safe_bucket(&s3, "flow-archive").await;
    let foreign = archiver(
        CloudWatchFlowLogs::new(&config, LogStrategy::Filter),
        store("111122223333"),
        &other,
        &seeded.log_group,
    );
    let err = foreign
        .archive(&seeded.request(C1), SystemClock.now())
        .await
        .expect_err("a bucket of another account is refused");
    match &err {
        HandlerError::Port(PortError::Rejected {
            service: "s3",
            message,
        }) => {
            assert!(message.contains("AccessDenied"), "{message}");
        }
        other => panic!("expected Rejected(AccessDenied), got {other:?}"),
    }
    assert!(!err.retryable());
    assert!(object_keys(&s3, &other).await.is_empty());
}

// ---------------------------------------------------------------------------------------------------
// pure logic
// ---------------------------------------------------------------------------------------------------

#[test]
fn insights_query_text() {
    assert_eq!(
        insights_query(&[C1], MAX_QUERY_ROWS).as_deref(),
        Some(
            "fields @timestamp, @message | filter ContactId = \"248b1a9e-5c07-455b-8daf-f67b49e04cd4\" \
             | sort @timestamp asc | limit 10000"
        )
    );
    assert_eq!(
        insights_query(&["a", "b"], 50).as_deref(),
        Some(
            "fields @timestamp, @message | filter ContactId = \"a\" or ContactId = \"b\" \
             | sort @timestamp asc | limit 50"
        )
    );
    // Quotes and backslashes cannot end the literal early.
    assert_eq!(
        insights_query(&[r#"x" or ContactId = "y\"#], 1).as_deref(),
        Some(
            r#"fields @timestamp, @message | filter ContactId = "x\" or ContactId = \"y\\" | sort @timestamp asc | limit 1"#
        )
    );
    // The row limit is the service's range.
    assert!(insights_query(&["a"], 0).is_some_and(|q| q.ends_with("limit 1")));
    assert!(insights_query(&["a"], 20_000).is_some_and(|q| q.ends_with("limit 10000")));
    assert_eq!(insights_query::<&str>(&[], 10), None);

    assert_eq!(filter_pattern(C1), Some(format!("\"{C1}\"")));
    assert_eq!(filter_pattern("a\"b"), None);
}

#[test]
fn query_windows_cover_and_split() {
    let now = SystemClock.now();
    let start = now - FlowLogConfig::default().window_before;
    let window = QueryWindow::covering(start, now);
    assert!(window.start <= start.timestamp() && window.end >= now.timestamp());
    assert!(
        window.end * 1000 >= now.timestamp_millis(),
        "end rounded up"
    );

    let w = QueryWindow {
        start: 100,
        end: 200,
    };
    let (a, b) = w.split().expect("splittable");
    assert_eq!(
        (a, b),
        (
            QueryWindow {
                start: 100,
                end: 150
            },
            QueryWindow {
                start: 150,
                end: 200
            }
        )
    );
    // Odd widths: both halves strictly smaller, sharing the middle second.
    let (a, b) = QueryWindow { start: 0, end: 5 }
        .split()
        .expect("splittable");
    assert_eq!(
        (a, b),
        (
            QueryWindow { start: 0, end: 2 },
            QueryWindow { start: 2, end: 5 }
        )
    );
    assert_eq!(
        QueryWindow { start: 0, end: 2 }.split().map(|(a, _)| a.end),
        Some(1)
    );
    // Two-second windows and narrower cannot be split.
    assert_eq!(QueryWindow { start: 7, end: 8 }.split(), None);
    assert_eq!(QueryWindow { start: 7, end: 7 }.split(), None);

    // Repeated halving of a 30-minute window reaches unsplittable windows that tile the range.
    let mut leaves = Vec::new();
    let mut stack = vec![QueryWindow {
        start: 0,
        end: 1800,
    }];
    let mut splits = 0;
    while let Some(w) = stack.pop() {
        match w.split() {
            Some((a, b)) => {
                splits += 1;
                assert!(a.end - a.start < w.end - w.start && b.end - b.start < w.end - w.start);
                stack.push(b);
                stack.push(a);
            }
            None => leaves.push(w),
        }
    }
    assert!(splits > 0);
    assert_eq!(leaves.first().map(|w| w.start), Some(0));
    assert_eq!(leaves.last().map(|w| w.end), Some(1800));
    assert!(
        leaves.windows(2).all(|p| p[0].end == p[1].start),
        "contiguous, sharing one second"
    );

    assert_eq!(
        QueryWindow { start: 10, end: 12 }.millis(),
        (10_000, 12_999)
    );
}

#[tokio::test]
async fn locations_name_the_object_for_people() {
    let config = moto().await.sdk_config().await;
    let store = S3Archive::new(
        &config,
        S3ArchiveOptions {
            region: Some("eu-west-2".into()),
            ..S3ArchiveOptions::default()
        },
    );
    let key = "connect-flow-logs/i-1/2025/06/10/ContactFlowLog_c-1_123456789012.gz";
    let location = store.locate("archive-bucket", key);
    assert_eq!(location.uri, format!("s3://archive-bucket/{key}"));
    assert_eq!(
        location.console_url.as_deref(),
        Some(
            "https://console.aws.amazon.com/s3/object/archive-bucket?region=eu-west-2&prefix=\
             connect-flow-logs%2Fi-1%2F2025%2F06%2F10%2FContactFlowLog_c-1_123456789012.gz"
        )
    );
    assert_eq!(
        location.download_command.as_deref(),
        Some(
            "aws s3 cp s3://archive-bucket/connect-flow-logs/i-1/2025/06/10/ContactFlowLog_c-1_123456789012.gz \
             ./ContactFlowLog_c-1_123456789012.gz"
        )
    );
    assert_eq!(
        download_command("b", "a dir/it's.gz"),
        r"aws s3 cp 's3://b/a dir/it'\''s.gz' './it'\''s.gz'"
    );
    // Region from the SDK configuration by default.
    let default = S3Archive::new(&config, S3ArchiveOptions::default());
    assert!(default
        .locate("b", "k")
        .console_url
        .is_some_and(|u| u.contains("region=us-east-1")));
}
