//! Smoke tests of the test harness itself: every local server answers the real SDK clients over the
//! wire, and the Connect fake reproduces the captured Connect API responses in `tests/fixtures/api/`.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use aws_sdk_connect::error::ProvideErrorMetadata;
use aws_sdk_connect::types::{
    Channel, CurrentMetric, CurrentMetricName, Filters, Grouping, QueueType, Unit,
};
use connect_events_tests::connect_fake::{instance_arn, ConnectFake, FakeMetrics};
use connect_events_tests::fixture_json;
use connect_events_tests::harness::{local_sdk_config, moto, osmem, unique};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The fixtures' Connect instance.
const INSTANCE: &str = "8f2c6d1e-4b7a-4e39-9c5d-2a1f0b3e7d64";
const BILLING_QUEUE: &str = "a743aa55-fa47-4bd5-9323-39d0f2c689e1";
const SUPPORT_QUEUE: &str = "7b6038b4-1b68-40ff-abd0-7bc9d9b153bf";
const BASIC_QUEUE: &str = "3c17d095-fbf6-4c6c-8764-4cad76b4a226";
/// `DataSnapshotTime` of the metric fixtures.
const SNAPSHOT: f64 = 1_749_564_270.412;

/// gzip (mtime 0) of `{"contactId":"248b1a9e"}\n`.
const GZIP_JSON: [u8; 45] = [
    0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x02, 0x03, 0xab, 0x56, 0x4a, 0xce, 0xcf, 0x2b,
    0x49, 0x4c, 0x2e, 0xf1, 0x4c, 0x51, 0xb2, 0x52, 0x32, 0x32, 0xb1, 0x48, 0x32, 0x4c, 0xb4, 0x4c,
    0x55, 0xaa, 0xe5, 0x02, 0x00, 0x4e, 0x30, 0xa7, 0x18, 0x19, 0x00, 0x00, 0x00,
];

// ---------------------------------------------------------------------------------------------------
// moto
// ---------------------------------------------------------------------------------------------------

#[tokio::test]
async fn s3_put_and_get_gzip_object() {
    let s3 = moto().await.s3().await;
    let bucket = unique("smoke-bucket");
    s3.create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("CreateBucket on moto");
    s3.put_object()
        .bucket(&bucket)
        .key("contacts/2025/06/10/c1.json.gz")
        .content_type("application/json")
        .content_encoding("gzip")
        .body(GZIP_JSON.to_vec().into())
        .send()
        .await
        .expect("PutObject on moto");

    let object = s3
        .get_object()
        .bucket(&bucket)
        .key("contacts/2025/06/10/c1.json.gz")
        .send()
        .await
        .expect("GetObject on moto");
    assert_eq!(object.content_encoding(), Some("gzip"));
    let bytes = object
        .body
        .collect()
        .await
        .expect("reading the object body")
        .into_bytes();
    assert_eq!(
        bytes.as_ref(),
        GZIP_JSON.as_slice(),
        "gzip bytes must round-trip unchanged"
    );
}

#[tokio::test]
async fn dynamodb_create_put_get() {
    use aws_sdk_dynamodb::types::{
        AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType,
        ScalarAttributeType,
    };
    let ddb = moto().await.dynamodb().await;
    let table = unique("smoke-table");
    ddb.create_table()
        .table_name(&table)
        .billing_mode(BillingMode::PayPerRequest)
        .attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name("pk")
                .attribute_type(ScalarAttributeType::S)
                .build()
                .expect("attribute definition"),
        )
        .key_schema(
            KeySchemaElement::builder()
                .attribute_name("pk")
                .key_type(KeyType::Hash)
                .build()
                .expect("key schema"),
        )
        .send()
        .await
        .expect("CreateTable on moto");
    ddb.put_item()
        .table_name(&table)
        .item("pk", AttributeValue::S("contact#248b1a9e".into()))
        .item("events", AttributeValue::N("5".into()))
        .condition_expression("attribute_not_exists(pk)")
        .send()
        .await
        .expect("PutItem on moto");
    let item = ddb
        .get_item()
        .table_name(&table)
        .key("pk", AttributeValue::S("contact#248b1a9e".into()))
        .consistent_read(true)
        .send()
        .await
        .expect("GetItem on moto")
        .item
        .expect("the item exists");
    assert_eq!(item.get("events"), Some(&AttributeValue::N("5".into())));
}

#[tokio::test]
async fn cloudwatch_logs_put_and_get_events() {
    use aws_sdk_cloudwatchlogs::types::InputLogEvent;
    let logs = moto().await.logs().await;
    let group = format!("/aws/connect/{}", unique("smoke"));
    let stream = "contact-flow-logs";
    logs.create_log_group()
        .log_group_name(&group)
        .send()
        .await
        .expect("CreateLogGroup on moto");
    logs.create_log_stream()
        .log_group_name(&group)
        .log_stream_name(stream)
        .send()
        .await
        .expect("CreateLogStream on moto");
    let now_ms = i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .as_millis(),
    )
    .expect("epoch millis fit in i64");
    let messages = [
        r#"{"ContactId":"c1","Results":"Error"}"#,
        r#"{"ContactId":"c2"}"#,
    ];
    let mut put = logs
        .put_log_events()
        .log_group_name(&group)
        .log_stream_name(stream);
    for (i, message) in (0_i64..).zip(messages) {
        put = put.log_events(
            InputLogEvent::builder()
                .timestamp(now_ms + i)
                .message(message)
                .build()
                .expect("log event"),
        );
    }
    put.send().await.expect("PutLogEvents on moto");

    let got = logs
        .get_log_events()
        .log_group_name(&group)
        .log_stream_name(stream)
        .start_from_head(true)
        .send()
        .await
        .expect("GetLogEvents on moto");
    let got: Vec<&str> = got.events().iter().filter_map(|e| e.message()).collect();
    assert_eq!(got, messages);
}

#[tokio::test]
async fn dedicated_servers_are_killed_on_drop() {
    use connect_events_tests::harness::{Moto, Osmem};
    let (moto, osmem) = tokio::join!(Moto::start_dedicated(), Osmem::start_dedicated());
    assert_ne!(
        moto.endpoint(),
        connect_events_tests::harness::moto().await.endpoint()
    );

    let s3 = moto.s3().await;
    let bucket = unique("dedicated");
    s3.create_bucket()
        .bucket(&bucket)
        .send()
        .await
        .expect("CreateBucket on the dedicated moto");
    let response = osmem
        .client()
        .cat()
        .indices(opensearch::cat::CatIndicesParts::None)
        .send()
        .await
        .expect("_cat/indices on the dedicated osmem-server");
    assert_eq!(response.status_code().as_u16(), 200);

    let pids = [moto.pid(), osmem.pid()];
    moto.stop();
    drop(osmem);
    for pid in pids {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists(),
            "server pid {pid} still exists after drop"
        );
    }
}

// ---------------------------------------------------------------------------------------------------
// osmem-server
// ---------------------------------------------------------------------------------------------------

#[tokio::test]
async fn opensearch_index_and_get_plain_and_sigv4() {
    use opensearch::params::Refresh;
    use opensearch::{GetParts, IndexParts};

    let server = osmem().await;
    let index = unique("smoke-contacts");
    let sdk_config = local_sdk_config(server.url(), 1).await;
    let clients = [
        ("plain", server.client()),
        ("sigv4", server.client_sigv4(&sdk_config)),
    ];
    for (kind, client) in clients {
        let id = format!("doc-{kind}");
        let doc = json!({"contactId": id, "channel": "VOICE", "queue": "BillingQueue"});
        let response = client
            .index(IndexParts::IndexId(&index, &id))
            .body(doc.clone())
            .refresh(Refresh::True)
            .send()
            .await
            .unwrap_or_else(|e| panic!("{kind}: index request failed: {e}"));
        let status = response.status_code().as_u16();
        assert!(
            status == 200 || status == 201,
            "{kind}: index answered {status}: {:?}",
            response.text().await
        );

        let response = client
            .get(GetParts::IndexId(&index, &id))
            .send()
            .await
            .unwrap_or_else(|e| panic!("{kind}: get request failed: {e}"));
        assert_eq!(response.status_code().as_u16(), 200, "{kind}: get status");
        let body: Value = response.json().await.expect("get response is JSON");
        assert_eq!(body["found"], json!(true), "{kind}: {body}");
        assert_eq!(body["_source"], doc, "{kind}: {body}");
    }
}

// ---------------------------------------------------------------------------------------------------
// Connect fake
// ---------------------------------------------------------------------------------------------------

/// Sends one raw HTTP/1.1 request to the fake and returns status, headers (lower-case names) and the
/// body parsed as JSON, to compare the fake's wire output with the fixtures.
async fn raw_http(
    endpoint: &str,
    method: &str,
    path: &str,
    body: Option<&Value>,
) -> (u16, Vec<(String, String)>, Value) {
    let addr = endpoint.trim_start_matches("http://");
    let body = body.map(Value::to_string).unwrap_or_default();
    let exchange = async {
        let mut stream = tokio::net::TcpStream::connect(addr).await?;
        let request = format!(
            "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await?;
        let mut response = Vec::new();
        stream.read_to_end(&mut response).await?;
        Ok::<_, std::io::Error>(response)
    };
    let response = tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .expect("raw request to the fake timed out")
        .expect("raw request to the fake failed");
    let text = String::from_utf8(response).expect("response is UTF-8");
    let (head, body) = text.split_once("\r\n\r\n").expect("HTTP response head");
    let mut lines = head.lines();
    let status = lines
        .next()
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|s| s.parse().ok())
        .expect("status line");
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string()))
        .collect();
    let body =
        serde_json::from_str(body).unwrap_or_else(|e| panic!("body {body:?} is not JSON: {e}"));
    (status, headers, body)
}

/// The fixtures' metric snapshot: one voice contact waiting in each of BillingQueue (100 s) and
/// SupportQueue (11 s), nothing on chat.
fn fake_with_fixture_metrics() -> ConnectFake {
    let fake = ConnectFake::start();
    fake.add_queue(INSTANCE, BILLING_QUEUE, Some("BillingQueue"), "STANDARD");
    fake.add_queue(INSTANCE, SUPPORT_QUEUE, Some("SupportQueue"), "STANDARD");
    let waiting = |age| FakeMetrics {
        contacts_in_queue: 1,
        oldest_contact_age_secs: Some(age),
        ..FakeMetrics::default()
    };
    fake.set_metrics(INSTANCE, BILLING_QUEUE, "VOICE", waiting(100.0));
    fake.set_metrics(INSTANCE, SUPPORT_QUEUE, "VOICE", waiting(11.0));
    fake.set_snapshot_time(SNAPSHOT);
    fake
}

fn without(mut value: Value, key: &str) -> Value {
    if let Some(map) = value.as_object_mut() {
        map.remove(key);
    }
    value
}

#[tokio::test]
async fn connect_describe_contact_fixture_and_unknown_contact() {
    let fake = ConnectFake::start();
    fake.add_contact(INSTANCE, fixture_json("api/describe-contact-voice.json"));
    let client = fake.client().await;

    // By instance ARN (percent-encoded in the path by the SDK).
    let contact = client
        .describe_contact()
        .instance_id(instance_arn(INSTANCE))
        .contact_id("248b1a9e-5c07-455b-8daf-f67b49e04cd4")
        .send()
        .await
        .expect("DescribeContact on the fake")
        .contact
        .expect("Contact member");
    assert_eq!(contact.channel(), Some(&Channel::Voice));
    assert_eq!(
        contact.customer_endpoint().and_then(|e| e.address()),
        Some("+14255550100")
    );
    assert_eq!(
        contact.initiation_timestamp().map(|t| t.secs()),
        Some(1_749_564_005)
    );
    assert_eq!(
        contact
            .agent_info()
            .and_then(|a| a.after_contact_work_duration()),
        Some(30)
    );
    assert_eq!(contact.disconnect_reason(), Some("CUSTOMER_DISCONNECT"));
    assert_eq!(
        fake.requests("DescribeContact"),
        vec![
            json!({"InstanceId": instance_arn(INSTANCE), "ContactId": "248b1a9e-5c07-455b-8daf-f67b49e04cd4"})
        ]
    );

    let err = client
        .describe_contact()
        .instance_id(INSTANCE)
        .contact_id("00000000-0000-0000-0000-000000000000")
        .send()
        .await
        .expect_err("unknown contact");
    assert_eq!(err.code(), Some("ResourceNotFoundException"));
    assert!(err
        .as_service_error()
        .is_some_and(|e| e.is_resource_not_found_exception()));
    assert_eq!(fake.calls("DescribeContact"), 2, "not retried");
}

#[tokio::test]
async fn connect_get_current_metric_data_two_pages_match_fixtures() {
    let fake = fake_with_fixture_metrics();
    let client = fake.client().await;
    let request = || {
        client
            .get_current_metric_data()
            .instance_id(INSTANCE)
            .filters(
                Filters::builder()
                    .queues(BILLING_QUEUE)
                    .queues(SUPPORT_QUEUE)
                    .channels(Channel::Voice)
                    .channels(Channel::Chat)
                    .build(),
            )
            .groupings(Grouping::Queue)
            .groupings(Grouping::Channel)
            .current_metrics(
                CurrentMetric::builder()
                    .name(CurrentMetricName::ContactsInQueue)
                    .unit(Unit::Count)
                    .build(),
            )
            .current_metrics(
                CurrentMetric::builder()
                    .name(CurrentMetricName::ContactsScheduled)
                    .unit(Unit::Count)
                    .build(),
            )
            .current_metrics(
                CurrentMetric::builder()
                    .name(CurrentMetricName::OldestContactAge)
                    .unit(Unit::Seconds)
                    .build(),
            )
            .max_results(2)
    };

    let page1 = request().send().await.expect("page 1");
    let token = page1
        .next_token()
        .expect("page 1 has a NextToken")
        .to_string();
    let page2 = request().next_token(&token).send().await.expect("page 2");
    assert_eq!(page2.next_token(), None);
    assert_eq!(page1.approximate_total_count(), Some(4));
    let snapshot = page1
        .data_snapshot_time()
        .expect("DataSnapshotTime")
        .as_secs_f64();
    assert!((snapshot - SNAPSHOT).abs() < 1e-3, "snapshot {snapshot}");
    let rows: Vec<(String, String, Vec<Option<f64>>)> = page1
        .metric_results()
        .iter()
        .chain(page2.metric_results())
        .map(|r| {
            let dims = r.dimensions().expect("dimensions");
            (
                dims.queue()
                    .and_then(|q| q.id())
                    .unwrap_or_default()
                    .to_string(),
                dims.channel()
                    .map(|c| c.as_str().to_string())
                    .unwrap_or_default(),
                r.collections().iter().map(|c| c.value()).collect(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        vec![
            (
                BILLING_QUEUE.into(),
                "VOICE".into(),
                vec![Some(1.0), Some(0.0), Some(100.0)]
            ),
            (
                BILLING_QUEUE.into(),
                "CHAT".into(),
                vec![Some(0.0), Some(0.0), Some(0.0)]
            ),
            (
                SUPPORT_QUEUE.into(),
                "VOICE".into(),
                vec![Some(1.0), Some(0.0), Some(11.0)]
            ),
            (
                SUPPORT_QUEUE.into(),
                "CHAT".into(),
                vec![Some(0.0), Some(0.0), Some(0.0)]
            ),
        ]
    );

    // The SDK's request body is the fixture's; the path label is recorded as InstanceId.
    let sent = fake.requests("GetCurrentMetricData");
    assert_eq!(sent.len(), 2);
    assert_eq!(
        without(sent[0].clone(), "InstanceId"),
        fixture_json("api/get-current-metric-data.request.json")
    );
    assert_eq!(sent[1]["NextToken"], json!(token));

    // On the wire, both pages equal the captured responses (NextToken is opaque).
    let body = fixture_json("api/get-current-metric-data.request.json");
    let path = format!("/metrics/current/{INSTANCE}");
    let (status, _, raw1) = raw_http(&fake.endpoint(), "POST", &path, Some(&body)).await;
    assert_eq!(status, 200);
    assert_eq!(
        without(raw1.clone(), "NextToken"),
        without(
            fixture_json("api/get-current-metric-data-queue-channel.page1.json"),
            "NextToken"
        )
    );
    let mut body2 = body.clone();
    body2["NextToken"] = raw1["NextToken"].clone();
    let (_, _, raw2) = raw_http(&fake.endpoint(), "POST", &path, Some(&body2)).await;
    assert_eq!(
        raw2,
        fixture_json("api/get-current-metric-data-queue-channel.page2.json")
    );
}

#[tokio::test]
async fn connect_get_current_metric_data_without_groupings_reports_age_in_ms() {
    let fake = fake_with_fixture_metrics();
    // The no-grouping fixture was captured when the oldest contact had waited 100.482 s.
    fake.set_metrics(
        INSTANCE,
        BILLING_QUEUE,
        "VOICE",
        FakeMetrics {
            contacts_in_queue: 1,
            oldest_contact_age_secs: Some(100.482),
            ..FakeMetrics::default()
        },
    );
    let mut body = fixture_json("api/get-current-metric-data.request.json");
    body.as_object_mut().expect("object").remove("Groupings");
    body.as_object_mut().expect("object").remove("MaxResults");
    let (status, _, raw) = raw_http(
        &fake.endpoint(),
        "POST",
        &format!("/metrics/current/{INSTANCE}"),
        Some(&body),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(
        raw,
        fixture_json("api/get-current-metric-data-no-grouping.json")
    );
}

#[tokio::test]
async fn connect_get_current_metric_data_validates_queue_count() {
    let fake = fake_with_fixture_metrics();
    let client = fake.sdk_config_with_retries(1).await;
    let client = aws_sdk_connect::Client::new(&client);
    let too_many: Vec<String> = (0..101).map(|i| format!("queue-{i}")).collect();
    let err = client
        .get_current_metric_data()
        .instance_id(INSTANCE)
        .filters(Filters::builder().set_queues(Some(too_many)).build())
        .current_metrics(
            CurrentMetric::builder()
                .name(CurrentMetricName::ContactsInQueue)
                .unit(Unit::Count)
                .build(),
        )
        .send()
        .await
        .expect_err("101 queues");
    assert_eq!(err.code(), Some("InvalidParameterException"));
}

#[tokio::test]
async fn connect_list_queues_paginator() {
    let fake = ConnectFake::start();
    let page1 = fixture_json("api/list-queues.page1.json");
    let page2 = fixture_json("api/list-queues.page2.json");
    for queue in page1["QueueSummaryList"]
        .as_array()
        .into_iter()
        .chain(page2["QueueSummaryList"].as_array())
        .flatten()
    {
        fake.add_queue(
            INSTANCE,
            queue["Id"].as_str().expect("Id"),
            queue["Name"].as_str(),
            queue["QueueType"].as_str().expect("QueueType"),
        );
    }
    let client = fake.client().await;

    let pages: Vec<_> = client
        .list_queues()
        .instance_id(INSTANCE)
        .max_results(3)
        .into_paginator()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .expect("ListQueues pages");
    assert_eq!(pages.len(), 3, "8 queues in pages of 3");
    let queues: Vec<_> = pages.iter().flat_map(|p| p.queue_summary_list()).collect();
    assert_eq!(queues.len(), 8);
    let names: Vec<Option<&str>> = queues.iter().map(|q| q.name()).collect();
    assert_eq!(
        names[..3],
        [
            Some("BasicQueue"),
            Some("BillingQueue"),
            Some("SupportQueue")
        ]
    );
    assert!(queues[3..]
        .iter()
        .all(|q| q.queue_type() == Some(&QueueType::Agent) && q.name().is_none()));
    assert_eq!(queues[0].id(), Some(BASIC_QUEUE));

    let standard: Vec<_> = client
        .list_queues()
        .instance_id(INSTANCE)
        .queue_types(QueueType::Standard)
        .into_paginator()
        .items()
        .send()
        .collect::<Result<Vec<_>, _>>()
        .await
        .expect("ListQueues STANDARD");
    assert_eq!(standard.len(), 3);
    let last = fake.requests("ListQueues").pop().expect("recorded");
    assert_eq!(last["QueueTypes"], json!(["STANDARD"]));

    // Wire format equals the captured pages.
    let (status, _, raw) = raw_http(
        &fake.endpoint(),
        "GET",
        &format!("/queues-summary/{INSTANCE}?maxResults=3"),
        None,
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(without(raw, "NextToken"), without(page1, "NextToken"));
    let (_, _, raw) = raw_http(
        &fake.endpoint(),
        "GET",
        &format!("/queues-summary/{INSTANCE}?queueTypes=AGENT"),
        None,
    )
    .await;
    assert_eq!(raw, page2);
}

#[tokio::test]
async fn connect_stop_contact() {
    let fake = ConnectFake::start();
    let waiting = "be9e29f5-e76a-4220-91c7-351a6cb40cbf";
    fake.add_contact(
        INSTANCE,
        json!({"Id": waiting, "Channel": "VOICE", "InitiationMethod": "INBOUND",
               "InitiationTimestamp": 1_749_564_900.5}),
    );
    let client = fake.client().await;
    client
        .stop_contact()
        .instance_id(INSTANCE)
        .contact_id(waiting)
        .send()
        .await
        .expect("StopContact on the fake");
    assert_eq!(fake.stopped_contacts(), vec![waiting.to_string()]);
    assert_eq!(
        fake.requests("StopContact"),
        vec![fixture_json("api/stop-contact.request.json")]
    );
    assert!(fake
        .contact(INSTANCE, waiting)
        .is_some_and(|c| c.get("DisconnectTimestamp").is_some()));

    let err = client
        .stop_contact()
        .instance_id(INSTANCE)
        .contact_id(waiting)
        .send()
        .await
        .expect_err("stopping an ended contact");
    assert_eq!(err.code(), Some("ContactNotFoundException"));
    assert!(err
        .as_service_error()
        .is_some_and(|e| e.is_contact_not_found_exception()));
}

#[tokio::test]
async fn connect_throttling_is_retried_and_faults_are_counted() {
    let fake = ConnectFake::start();
    fake.add_contact(
        INSTANCE,
        fixture_json("api/describe-contact-abandoned.json"),
    );
    let client = fake.client().await;
    let contact_id = "dd5b1dcd-f03f-4425-9f47-f9fa62aeeee3";

    fake.inject("DescribeContact", 429, "ThrottlingException", 1);
    let out = client
        .describe_contact()
        .instance_id(INSTANCE)
        .contact_id(contact_id)
        .send()
        .await
        .expect("the SDK retries a throttled call");
    assert!(out.contact.is_some_and(|c| c.agent_info().is_none()));
    assert_eq!(fake.calls("DescribeContact"), 2);

    // Without retries the injected 500 reaches the caller.
    fake.reset_counters();
    fake.inject("DescribeContact", 500, "InternalServiceException", 1);
    let no_retry = aws_sdk_connect::Client::new(&fake.sdk_config_with_retries(1).await);
    let err = no_retry
        .describe_contact()
        .instance_id(INSTANCE)
        .contact_id(contact_id)
        .send()
        .await
        .expect_err("injected 500");
    assert_eq!(err.code(), Some("InternalServiceException"));
    assert_eq!(fake.calls("DescribeContact"), 1);
}

#[tokio::test]
async fn connect_unknown_route_and_instance() {
    let fake = ConnectFake::start();
    let (status, headers, body) = raw_http(&fake.endpoint(), "GET", "/users-summary/x", None).await;
    assert_eq!(status, 404);
    assert!(headers
        .iter()
        .any(|(k, v)| k == "x-amzn-errortype" && v == "UnknownOperationException"));
    assert!(body["Message"].is_string());

    let client = aws_sdk_connect::Client::new(&fake.sdk_config_with_retries(1).await);
    let err = client
        .list_queues()
        .instance_id("no-such-instance")
        .send()
        .await
        .expect_err("unknown instance");
    assert_eq!(err.code(), Some("ResourceNotFoundException"));
}

// ---------------------------------------------------------------------------------------------------
// Lambda Runtime API emulator
// ---------------------------------------------------------------------------------------------------

/// A minimal Runtime API client in Python (the venv's interpreter is a harness requirement anyway), so
/// the emulator is exercised without depending on the workspace's Lambda binaries being built.
const PYTHON_RUNTIME_CLIENT: &str = r#"
import json, os, sys, time, urllib.request

opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
base = "http://%s/2018-06-01/runtime" % os.environ["AWS_LAMBDA_RUNTIME_API"]
print(json.dumps({"level": "INFO", "message": "init", "function": os.environ["AWS_LAMBDA_FUNCTION_NAME"],
                  "extra": os.environ.get("SMOKE_EXTRA")}), flush=True)
while True:
    with opener.open(base + "/invocation/next") as r:
        rid = r.headers["Lambda-Runtime-Aws-Request-Id"]
        headers = {k: r.headers[k] for k in ("Lambda-Runtime-Deadline-Ms", "Lambda-Runtime-Invoked-Function-Arn",
                                             "Lambda-Runtime-Trace-Id")}
        event = json.loads(r.read())
    print(json.dumps({"level": "INFO", "message": "invoked", "requestId": rid}), flush=True)
    if "exit" in event:
        sys.exit(event["exit"])
    time.sleep(event.get("sleep", 0))
    if event.get("fail"):
        path, body = "/error", {"errorType": "EchoFailure", "errorMessage": "asked to fail"}
        extra = {"Lambda-Runtime-Function-Error-Type": "unhandled"}
    else:
        path, body, extra = "/response", {"echo": event, "headers": headers}, {}
    extra["Content-Type"] = "application/json"
    request = urllib.request.Request(base + "/invocation/" + rid + path, data=json.dumps(body).encode(),
                                     headers=extra, method="POST")
    with opener.open(request) as r:
        assert r.status == 202, r.status
"#;

/// Writes the Python client as an executable script under cargo's per-target temporary directory.
fn python_runtime_client() -> std::path::PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let python = connect_events_tests::harness::venv_dir()
        .join("bin")
        .join("python");
    assert!(
        python.exists(),
        "venv python missing at {}",
        python.display()
    );
    let path = std::path::Path::new(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("runtime-client-{}.py", std::process::id()));
    let script = format!("#!{}\n{PYTHON_RUNTIME_CLIENT}", python.display());
    std::fs::write(&path, script).expect("writing the runtime client script");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755))
        .expect("making the runtime client executable");
    path
}

#[tokio::test]
async fn lambda_emulator_serves_the_runtime_api() {
    use connect_events_tests::lambda_emulator::{InvokeError, LambdaProcess, Outcome};
    let script = python_runtime_client();
    let lambda = LambdaProcess::spawn(
        &script,
        "smoke-echo",
        &[("SMOKE_EXTRA".to_string(), "yes".to_string())],
    );
    let timeout = Duration::from_secs(30);

    let event = json!({"hello": "world", "n": 1});
    let ok = lambda.invoke(&event, timeout);
    assert!(lambda.time_to_first_next().is_some());
    let request_id = ok.request_id.clone();
    let response = ok.expect_response();
    assert_eq!(response["echo"], event);
    let headers = &response["headers"];
    assert_eq!(
        headers["Lambda-Runtime-Invoked-Function-Arn"],
        json!("arn:aws:lambda:us-east-1:123456789012:function:smoke-echo")
    );
    let deadline: u64 = headers["Lambda-Runtime-Deadline-Ms"]
        .as_str()
        .and_then(|s| s.parse().ok())
        .expect("numeric deadline");
    let now_ms = u64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .as_millis(),
    )
    .expect("millis fit in u64");
    assert!(
        deadline > now_ms && deadline <= now_ms + 31_000,
        "deadline {deadline}"
    );
    assert!(headers["Lambda-Runtime-Trace-Id"]
        .as_str()
        .is_some_and(|t| t.starts_with("Root=1-")));

    let failed = lambda.invoke(&json!({"fail": true}), timeout);
    assert_eq!(failed.function_error_type.as_deref(), Some("unhandled"));
    assert_ne!(failed.request_id, request_id);
    assert_eq!(
        failed.outcome,
        Outcome::Error {
            error_type: "EchoFailure".into(),
            error_message: "asked to fail".into()
        }
    );

    // No answer in time: reported, not hung. The late answer is accepted and dropped.
    match lambda.try_invoke(&json!({"sleep": 1}), Duration::from_millis(300)) {
        Err(InvokeError::Timeout { delivered, .. }) => assert!(delivered),
        other => panic!("expected a timeout, got {other:?}"),
    }

    let logs = lambda.json_logs();
    assert!(logs
        .iter()
        .any(|l| l["message"] == "init" && l["extra"] == "yes" && l["function"] == "smoke-echo"));
    assert!(lambda
        .wait_for_log(|l| l.contains(&request_id), Duration::from_secs(5))
        .is_some());
    assert!(lambda.init_error().is_none());

    // The process exits while handling an event: reported with its exit status.
    match lambda.try_invoke(&json!({"exit": 3}), timeout) {
        Err(InvokeError::Exited { status, .. }) => assert!(status.contains('3'), "{status}"),
        other => panic!("expected the process to exit, got {other:?}"),
    }
    assert!(lambda.exit_status().is_some());
}
