//! Analytics ingest throughput, one run, the same records: the embedded store, our OpenSearch
//! store (external versions, `_bulk` of 500) on osmem-server, and what a user would otherwise do —
//! Firehose-style appends (`_bulk` index without ids or versions, the AWS blog's design: duplicates
//! and re-deliveries become extra documents) — on the same server; parsing alone is the floor.
//!
//! `cargo bench -p connect-events-tests --bench analytics_ingest [-- RECORDS]` (default 20,000;
//! needs the venv of `tests/run.sh` for osmem-server). Prints a Markdown table.

use std::time::Instant;

use connect_events_core::analytics::input::read_records;
use connect_events_core::analytics::queries::{Indices, Target};
use connect_events_core::analytics::{Analytics, Incoming, INGEST_CHUNK};
use connect_events_core::local::LocalAnalytics;
use connect_events_handlers::aws::opensearch_analytics::OpenSearchAnalytics;
use connect_events_tests::fixture;
use connect_events_tests::harness::{osmem, unique};
use serde_json::{json, Value};

/// `n` records shaped like the fixtures: CTRs (10% of them re-delivered with a newer
/// `LastUpdateTimestamp`) and agent events.
fn records(n: usize) -> Vec<Value> {
    let samples: Vec<Value> = read_records(&[
        fixture("analytics/contact-records.ndjson"),
        fixture("analytics/agent-events.ndjson"),
    ])
    .into_iter()
    .filter_map(|r| r.record.ok())
    .collect();
    (0..n)
        .map(|i| {
            let mut r = samples[i % samples.len()].clone();
            // Every 10th record re-delivers the record 9 before it (a newer copy of that contact).
            let contact = if i % 10 == 9 { i - 9 } else { i };
            if r.get("ContactId").is_some() {
                r["ContactId"] = json!(format!("c-{contact:08}"));
                r["LastUpdateTimestamp"] = json!(format!(
                    "2025-06-10T{:02}:{:02}:{:02}Z",
                    (i / 3600) % 24,
                    (i / 60) % 60,
                    i % 60
                ));
            } else {
                r["EventId"] = json!(format!("e-{i:08}"));
            }
            r
        })
        .collect()
}

fn rate(n: usize, secs: f64) -> String {
    format!("{:.0} records/s ({secs:.2} s)", n as f64 / secs)
}

#[tokio::main]
async fn main() {
    let n: usize = std::env::args()
        .skip(1)
        .find_map(|a| a.parse().ok())
        .unwrap_or(20_000);
    let input = records(n);
    let bytes: Vec<Vec<u8>> = input
        .iter()
        .map(|r| serde_json::to_vec(r).unwrap())
        .collect();
    let mb = bytes.iter().map(Vec::len).sum::<usize>() as f64 / 1e6;
    let mut rows = Vec::new();

    // Floor: parsing and typing every record.
    let t = Instant::now();
    let typed: Vec<Incoming> = bytes
        .iter()
        .map(|b| Incoming::from_value(serde_json::from_slice(b).unwrap()).unwrap())
        .collect();
    rows.push((
        "parse + type only (floor)",
        rate(n, t.elapsed().as_secs_f64()),
    ));

    // Embedded store.
    let dir = std::env::temp_dir().join(unique("bench-analytics"));
    let local = LocalAnalytics::new(dir.clone());
    let analytics = Analytics::new(Box::new(local.clone()));
    let t = Instant::now();
    for chunk in typed.chunks(INGEST_CHUNK) {
        analytics.ingest_many(chunk).await;
    }
    local.flush().expect("flush");
    rows.push((
        "embedded store (+ one flush)",
        rate(n, t.elapsed().as_secs_f64()),
    ));
    let _ = std::fs::remove_dir_all(&dir);

    // Our OpenSearch store.
    let server = osmem().await;
    let base = unique("bench");
    let indices = Indices {
        ctr_prefix: format!("{base}-ctr-"),
        agent_event_prefix: format!("{base}-agent-events-"),
        queue_depth: format!("{base}-queue-depth"),
    };
    let store = OpenSearchAnalytics::new(
        server.client(),
        indices.clone(),
        format!("{base}-agent-state"),
    );
    store.ensure_ready().await.expect("templates");
    let analytics = Analytics::new(Box::new(store));
    let t = Instant::now();
    for chunk in typed.chunks(INGEST_CHUNK) {
        for r in analytics.ingest_many(chunk).await {
            r.expect("ingest");
        }
    }
    let ours = t.elapsed().as_secs_f64();
    rows.push((
        "OpenSearch, connect-events (external versions, _bulk of 500)",
        rate(n, ours),
    ));
    let count = |pattern: String| async move {
        let r = osmem()
            .await
            .client()
            .count(::opensearch::CountParts::Index(&[&pattern]))
            .send()
            .await
            .unwrap();
        r.json::<Value>().await.unwrap()["count"]
            .as_u64()
            .unwrap_or(0)
    };
    let ours_docs = count(indices.pattern(Target::ContactRecords)).await;

    // Firehose-style appends.
    let index = format!("{base}-firehose");
    let t = Instant::now();
    for chunk in input.chunks(INGEST_CHUNK) {
        let mut ops = ::opensearch::BulkOperations::new();
        for r in chunk {
            ops.push(::opensearch::BulkOperation::index(r)).unwrap();
        }
        let response = server
            .client()
            .bulk(::opensearch::BulkParts::Index(&index))
            .body(vec![ops])
            .send()
            .await
            .unwrap();
        assert!(response.status_code().is_success());
    }
    let appends = t.elapsed().as_secs_f64();
    rows.push((
        "OpenSearch, Firehose-style appends (no ids: duplicates kept)",
        rate(n, appends),
    ));
    let appended = count(index).await;

    println!(
        "Analytics ingest, {n} records ({mb:.1} MB of JSON), one run on {} CPUs:\n",
        std::thread::available_parallelism().map_or(1, |p| p.get())
    );
    println!("| path | throughput |\n| --- | ---: |");
    for (what, figure) in rows {
        println!("| {what} | {figure} |");
    }
    println!("\nContact-record documents: connect-events {ours_docs} (one per contact), appends {appended} documents in all (every copy, agent events mixed in).");
}
