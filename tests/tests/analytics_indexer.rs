//! The `analytics-indexer` Lambda under the Runtime API emulator, with OpenSearch (osmem-server)
//! and the dead-letter queue (SQS on moto) over the wire: Kinesis batches of contact records and
//! agent events, re-delivered and out of order, converge to one document per contact; an
//! unreadable record is dead-lettered with its coordinates and no content and does not stop the
//! batch; an OpenSearch outage reports the first unstored record (partial batch failure) and a
//! retry converges.

use std::time::Duration;

use base64::Engine;
use connect_events_core::analytics::input::read_records;
use connect_events_tests::fault_proxy::{Fault, FaultProxy, FaultRule};
use connect_events_tests::harness::{moto, osmem, unique};
use connect_events_tests::lambda_emulator::LambdaProcess;
use connect_events_tests::privacy::assert_no_number;
use connect_events_tests::seed::Endpoints;
use connect_events_tests::{fixture, target_bin};
use serde_json::{json, Value};

const TIMEOUT: Duration = Duration::from_secs(20);
const CALLER: &str = "+14255550100";

/// A Kinesis record event (Lambda's shape) of raw `data` payloads, sequence numbers from `first`.
fn kinesis_event(stream: &str, payloads: &[Vec<u8>], first: u64) -> Value {
    let records: Vec<Value> = payloads
        .iter()
        .enumerate()
        .map(|(i, data)| {
            let sequence = format!(
                "4959033827149025660855969253836157109592157598913658{:04}",
                first + i as u64
            );
            json!({
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": "pk",
                    "sequenceNumber": sequence,
                    "data": base64::engine::general_purpose::STANDARD.encode(data),
                    "approximateArrivalTimestamp": 1_749_598_800.0
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": format!("shardId-000000000000:{sequence}"),
                "eventName": "aws:kinesis:record",
                "invokeIdentityArn": "arn:aws:iam::123456789012:role/lambda-role",
                "awsRegion": "us-east-1",
                "eventSourceARN": format!("arn:aws:kinesis:us-east-1:123456789012:stream/{stream}")
            })
        })
        .collect();
    json!({ "Records": records })
}

fn fixture_payloads(rel: &str) -> Vec<Vec<u8>> {
    read_records(&[fixture(rel)])
        .into_iter()
        .map(|r| serde_json::to_vec(&r.record.expect("fixture record")).unwrap())
        .collect()
}

async fn count(pattern: &str) -> u64 {
    let response = osmem()
        .await
        .client()
        .count(::opensearch::CountParts::Index(&[pattern]))
        .send()
        .await
        .expect("count");
    let body: Value = response.json().await.expect("json");
    body["count"].as_u64().unwrap_or(0)
}

#[tokio::test]
async fn kinesis_batches_converge_bad_records_are_dead_lettered_and_outages_retry() {
    let moto = moto().await;
    let sqs = moto.sqs().await;
    let queue = sqs
        .create_queue()
        .queue_name(unique("analytics-dlq"))
        .send()
        .await
        .expect("create queue")
        .queue_url
        .expect("queue url");
    let proxy = FaultProxy::start(osmem().await.url());
    let base = unique("idx");
    let ctr_prefix = format!("{base}-ctr-");
    let events_prefix = format!("{base}-agent-events-");
    let endpoints = Endpoints {
        osmem: proxy.endpoint().to_string(),
        ..Endpoints::local(None).await
    };
    let env = endpoints.env(&[
        ("AWS_ENDPOINT_URL_SQS", moto.endpoint()),
        ("ANALYTICS_DLQ_URL", queue.as_str()),
        ("ANALYTICS_CTR_INDEX_PREFIX", ctr_prefix.as_str()),
        ("ANALYTICS_AGENT_EVENT_INDEX_PREFIX", events_prefix.as_str()),
        (
            "ANALYTICS_AGENT_STATE_INDEX",
            &format!("{base}-agent-state"),
        ),
        ("OPENSEARCH_SERVICE", "es"),
    ]);
    let lambda = LambdaProcess::spawn(&target_bin("analytics-indexer"), "analytics-indexer", &env);

    let ctrs = fixture_payloads("analytics/contact-records.ndjson");
    let events = fixture_payloads("analytics/agent-events.ndjson");
    let distinct_contacts = {
        let mut ids: Vec<String> = ctrs
            .iter()
            .map(|c| {
                serde_json::from_slice::<Value>(c).unwrap()["ContactId"]
                    .as_str()
                    .unwrap()
                    .to_string()
            })
            .collect();
        ids.sort();
        ids.dedup();
        ids.len() as u64
    };

    // Contact records, newest copies first (out of order), with three bad records inside.
    let mut batch: Vec<Vec<u8>> = ctrs.iter().rev().cloned().collect();
    batch.insert(
        2,
        format!("{{\"ContactId\": \"x\", \"CustomerEndpoint\": {{\"Address\": \"{CALLER}\"")
            .into_bytes(),
    );
    batch.insert(
        5,
        br#"{"neither": "a contact record nor an agent event"}"#.to_vec(),
    );
    // Readable, but the index refuses it (a mapped field of the wrong type): only that item of the
    // _bulk request fails, and only that record is dead-lettered.
    let mut refused: Value = serde_json::from_slice(&ctrs[0]).unwrap();
    refused["ContactId"] = json!("c-refused-by-the-mapping");
    refused["Queue"] = json!({ "Duration": "not a number" });
    batch.insert(7, serde_json::to_vec(&refused).unwrap());
    let response = lambda
        .invoke(&kinesis_event("ctr", &batch, 0), TIMEOUT)
        .expect_response();
    assert_eq!(response["batchItemFailures"], json!([]), "{response}");
    assert_eq!(
        count(&format!("{ctr_prefix}*")).await,
        distinct_contacts,
        "one document per contact"
    );

    let letters = sqs
        .receive_message()
        .queue_url(&queue)
        .max_number_of_messages(10)
        .wait_time_seconds(1)
        .send()
        .await
        .expect("receive")
        .messages
        .unwrap_or_default();
    assert_eq!(
        letters.len(),
        3,
        "the three bad records dead-lettered: {letters:?}"
    );
    let bodies: Vec<Value> = letters
        .iter()
        .map(|m| serde_json::from_str(m.body().unwrap_or("{}")).unwrap())
        .collect();
    for body in &bodies {
        assert!(
            body["record"]
                .as_str()
                .unwrap()
                .starts_with("shardId-000000000000:"),
            "{body}"
        );
        assert!(
            body["source"].as_str().unwrap().ends_with("stream/ctr"),
            "{body}"
        );
    }
    assert_no_number(
        "dead letters",
        &serde_json::to_string(&bodies).unwrap(),
        &[CALLER],
    );

    // The same batch again (at-least-once delivery): nothing changes, nothing is dead-lettered twice
    // beyond the re-delivered bad records themselves.
    let response = lambda
        .invoke(&kinesis_event("ctr", &batch, 0), TIMEOUT)
        .expect_response();
    assert_eq!(response["batchItemFailures"], json!([]), "{response}");
    assert_eq!(count(&format!("{ctr_prefix}*")).await, distinct_contacts);

    // OpenSearch is down (503 on the batch's one _bulk request): the batch reports its first record
    // (nothing of it was stored); Lambda's retry from there converges.
    proxy.add(FaultRule::always(
        None,
        Fault::Status(503, "ServiceUnavailable"),
    ));
    let event = kinesis_event("events", &events, 100);
    let response = lambda.invoke(&event, TIMEOUT).expect_response();
    let failures = response["batchItemFailures"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        failures.len(),
        1,
        "one failure reported: {response} {:?} {:?}",
        proxy.requests(),
        proxy.counts()
    );
    let sequences: Vec<&Value> = event["Records"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| &r["kinesis"]["sequenceNumber"])
        .collect();
    let at = sequences
        .iter()
        .position(|s| **s == failures[0]["itemIdentifier"])
        .expect("the failure names a record of the batch");
    assert_eq!(at, 0, "the first record: the batch was not stored");
    proxy.clear();
    let response = lambda
        .invoke(&kinesis_event("events", &events, 100), TIMEOUT)
        .expect_response();
    assert_eq!(response["batchItemFailures"], json!([]), "{response}");
    let stored_events = events
        .iter()
        .map(|e| serde_json::from_slice::<Value>(e).unwrap())
        .filter(|e| e["EventType"] != "HEART_BEAT")
        .map(|e| e["EventId"].to_string())
        .collect::<std::collections::BTreeSet<_>>()
        .len() as u64;
    assert_eq!(
        count(&format!("{events_prefix}*")).await,
        stored_events,
        "heartbeats are not stored"
    );

    let logs = lambda.logs().join("\n");
    assert!(logs.contains("analytics record dead-lettered"), "{logs}");
    assert_no_number("analytics-indexer", &logs, &[CALLER]);
}
