//! The OpenSearch adapter of the queue-depth index (`connect_events_handlers::aws::opensearch`)
//! against a real HTTP server: osmem-server (in-memory OpenSearch API) for behaviour, and a tiny
//! canned-response server for whole-request failures osmem cannot produce (429, 503).
//!
//! Every test uses its own index names ([`unique`]), so tests run in parallel on the shared server.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use connect_events_core::queue_depth::{QueueDepthDoc, QueueDepthIndex, Trigger, WriteOutcome};
use connect_events_core::PortError;
use connect_events_handlers::aws::opensearch::{history_id, OpenSearchIndex, LEASE_SUFFIX};
use connect_events_tests::harness::{local_sdk_config, osmem, unique};
use opensearch::indices::{IndicesGetIndexTemplateParts, IndicesGetMappingParts};
use opensearch::params::Refresh;
use opensearch::{GetParts, IndexParts, OpenSearch, SearchParts};
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const INSTANCE: &str = "8f2c6d1e-4b7a-4e39-9c5d-2a1f0b3e7d64";

/// 2025-06-10T14:00:00.000Z in epoch milliseconds.
const BASE_MS: i64 = 1_749_564_000_000;

/// `2025-06-10T14:mm:ss.fffZ` for `offset_ms` (< 1 h) after [`BASE_MS`].
fn at(offset_ms: i64) -> String {
    assert!((0..3_600_000).contains(&offset_ms));
    format!(
        "2025-06-10T14:{:02}:{:02}.{:03}Z",
        offset_ms / 60_000,
        offset_ms / 1000 % 60,
        offset_ms % 1000
    )
}

/// A document of `queue`/`channel` for the snapshot `offset_ms` after [`BASE_MS`].
fn doc(queue: &str, channel: &str, offset_ms: i64, depth: u64) -> QueueDepthDoc {
    QueueDepthDoc {
        instance_id: INSTANCE.to_string(),
        queue_id: queue.to_string(),
        queue_arn: Some(format!(
            "arn:aws:connect:us-east-1:123456789012:instance/{INSTANCE}/queue/{queue}"
        )),
        queue_name: Some(format!("Queue {queue}")),
        channel: channel.to_string(),
        contacts_in_queue: depth,
        contacts_scheduled: 0,
        queue_depth: depth,
        oldest_contact_age_seconds: (depth > 0).then_some(12.5),
        agents_online: Some(3),
        agents_available: None,
        snapshot_time: at(offset_ms),
        refreshed_at: at(offset_ms + 150),
        trigger: Trigger::new("QUEUED", Some(format!("contact-{offset_ms}"))),
    }
}

/// One snapshot of `queues` × VOICE/CHAT, with depths derived from `seed`.
fn batch(queues: &[&str], offset_ms: i64, seed: u64) -> Vec<QueueDepthDoc> {
    queues
        .iter()
        .enumerate()
        .flat_map(|(i, q)| {
            ["VOICE", "CHAT"]
                .into_iter()
                .enumerate()
                .map(move |(j, ch)| doc(q, ch, offset_ms, seed + (i * 2 + j) as u64))
        })
        .collect()
}

/// Documents by id, for order-independent comparisons.
fn by_id(docs: Vec<QueueDepthDoc>) -> BTreeMap<String, QueueDepthDoc> {
    docs.into_iter().map(|d| (d.id(), d)).collect()
}

async fn index_named(prefix: &str) -> OpenSearchIndex {
    OpenSearchIndex::new(osmem().await.client(), unique(prefix))
}

fn ok<T>(result: Result<T, PortError>, what: &str) -> T {
    result.unwrap_or_else(|e| panic!("{what}: {e}"))
}

async fn json_of(response: opensearch::http::response::Response) -> (u16, Value) {
    let status = response.status_code().as_u16();
    let body = response.json::<Value>().await.unwrap_or(Value::Null);
    (status, body)
}

async fn mapping(client: &OpenSearch, index: &str) -> Value {
    let response = client
        .indices()
        .get_mapping(IndicesGetMappingParts::Index(&[index]))
        .send()
        .await
        .expect("GET _mapping");
    let (status, body) = json_of(response).await;
    assert_eq!(status, 200, "GET {index}/_mapping: {body}");
    body[index]["mappings"].clone()
}

/// `(_version, _source)` of a stored document.
async fn stored(client: &OpenSearch, index: &str, id: &str) -> (i64, Value) {
    let response = client
        .get(GetParts::IndexId(index, id))
        .send()
        .await
        .expect("GET _doc");
    let (status, body) = json_of(response).await;
    assert_eq!(status, 200, "GET {index}/_doc/{id}: {body}");
    (
        body["_version"].as_i64().expect("_version"),
        body["_source"].clone(),
    )
}

/// Ids of every document of `index`.
async fn ids_in(client: &OpenSearch, index: &str) -> Vec<String> {
    let response = client
        .search(SearchParts::Index(&[index]))
        .body(json!({ "size": 1000, "query": { "match_all": {} } }))
        .send()
        .await
        .expect("_search");
    let (status, body) = json_of(response).await;
    assert_eq!(status, 200, "{index}/_search: {body}");
    let mut ids: Vec<String> = body["hits"]["hits"]
        .as_array()
        .expect("hits")
        .iter()
        .filter_map(|h| h["_id"].as_str().map(str::to_string))
        .collect();
    ids.sort();
    ids
}

// ---------------------------------------------------------------------------------------------------
// ensure_ready
// ---------------------------------------------------------------------------------------------------

#[tokio::test]
async fn ensure_ready_is_idempotent_applies_templates_and_never_deletes() {
    let server = osmem().await;
    let client = server.client();
    let name = unique("os-ready");
    let history = format!("{name}-history");
    let index = OpenSearchIndex::new(client.clone(), &name).with_history(&history);
    assert_eq!(index.leases_index(), format!("{name}{LEASE_SUFFIX}"));

    ok(index.ensure_ready().await, "first ensure_ready");
    ok(index.ensure_ready().await, "cached ensure_ready");

    // The templates are named after the indices and match exactly them.
    for template in [name.as_str(), index.leases_index(), history.as_str()] {
        let response = client
            .indices()
            .get_index_template(IndicesGetIndexTemplateParts::Name(&[template]))
            .send()
            .await
            .expect("GET _index_template");
        let (status, body) = json_of(response).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(
            body["index_templates"][0]["index_template"]["index_patterns"],
            json!([template]),
            "{body}"
        );
    }

    // The mappings of the template are applied.
    let m = mapping(&client, &name).await;
    assert_eq!(m["dynamic"], "strict", "{m}");
    let p = &m["properties"];
    for (field, ty) in [
        ("instanceId", "keyword"),
        ("queueId", "keyword"),
        ("queueArn", "keyword"),
        ("queueName", "keyword"),
        ("channel", "keyword"),
        ("contactsInQueue", "integer"),
        ("contactsScheduled", "integer"),
        ("queueDepth", "integer"),
        ("oldestContactAgeSeconds", "float"),
        ("agentsOnline", "integer"),
        ("agentsAvailable", "integer"),
        ("snapshotTime", "date"),
        ("refreshedAt", "date"),
    ] {
        assert_eq!(p[field]["type"], ty, "{field} in {m}");
    }
    assert_eq!(p["queueName"]["fields"]["text"]["type"], "text", "{m}");
    assert_eq!(p["trigger"]["properties"]["kind"]["type"], "keyword", "{m}");
    assert_eq!(
        p["trigger"]["properties"]["contactId"]["type"], "keyword",
        "{m}"
    );
    let leases = mapping(&client, index.leases_index()).await;
    assert_eq!(leases["properties"]["slot"]["type"], "long", "{leases}");
    assert_eq!(
        mapping(&client, &history).await["properties"],
        m["properties"]
    );

    // Strict mapping: a field the template does not know is refused.
    let response = client
        .index(IndexParts::IndexId(&name, "stray"))
        .body(json!({ "instanceId": "x", "unexpected": 1 }))
        .send()
        .await
        .expect("index a stray document");
    let (status, body) = json_of(response).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["type"], "strict_dynamic_mapping_exception");

    // Documents survive ensure_ready from other "containers", even many at once.
    let docs = batch(&["q1", "q2"], 1_000, 5);
    let written = ok(index.write(&docs).await, "write");
    assert_eq!(written.written, docs.len());
    let mut others = tokio::task::JoinSet::new();
    for _ in 0..5 {
        let other = OpenSearchIndex::new(server.client(), &name).with_history(&history);
        others.spawn(async move { other.ensure_ready().await });
    }
    while let Some(result) = others.join_next().await {
        ok(
            result.expect("ensure_ready task"),
            "concurrent ensure_ready on existing indices",
        );
    }
    assert_eq!(
        by_id(ok(index.documents().await, "documents")),
        by_id(docs.clone())
    );
    assert_eq!(ids_in(&client, &history).await.len(), docs.len());
}

#[tokio::test]
async fn documents_of_a_missing_index_is_empty() {
    let index = index_named("os-missing").await;
    assert!(ok(index.documents().await, "documents").is_empty());
}

// ---------------------------------------------------------------------------------------------------
// write / documents
// ---------------------------------------------------------------------------------------------------

#[tokio::test]
async fn write_then_documents_round_trip() {
    let server = osmem().await;
    let index = index_named("os-roundtrip").await;
    ok(index.ensure_ready().await, "ensure_ready");
    assert_eq!(
        ok(index.write(&[]).await, "empty write"),
        WriteOutcome::default()
    );

    let docs = batch(&["billing", "support", "basic"], 30_412, 0);
    let outcome = ok(index.write(&docs).await, "write");
    assert_eq!(
        outcome,
        WriteOutcome {
            written: 6,
            stale_skipped: 0
        }
    );
    let read = ok(index.documents().await, "documents");
    assert_eq!(read.len(), 6);
    assert_eq!(by_id(read), by_id(docs.clone()));

    // Stored with id = doc.id() and external version = DataSnapshotTime in ms.
    let (version, source) = stored(&server.client(), index.index(), &docs[0].id()).await;
    assert_eq!(version, BASE_MS + 30_412);
    assert_eq!(version, docs[0].version());
    assert_eq!(source, serde_json::to_value(&docs[0]).unwrap());
}

#[tokio::test]
async fn stale_or_equal_snapshots_never_overwrite_newer_ones() {
    let index = index_named("os-stale").await;
    let queues = ["q1", "q2", "q3"];
    let newer = batch(&queues, 20_000, 100);
    let n = newer.len();
    assert_eq!(
        ok(index.write(&newer).await, "newer"),
        WriteOutcome {
            written: n,
            stale_skipped: 0
        }
    );

    // Lower version: skipped, content unchanged.
    let older = batch(&queues, 10_000, 7);
    assert_eq!(
        ok(index.write(&older).await, "older"),
        WriteOutcome {
            written: 0,
            stale_skipped: n
        }
    );
    assert_eq!(
        by_id(ok(index.documents().await, "documents")),
        by_id(newer.clone())
    );

    // Equal version with different content: stale as well.
    let mut same_time = batch(&queues, 20_000, 999);
    for d in &mut same_time {
        d.trigger = Trigger::new("schedule", None);
    }
    assert_eq!(
        ok(index.write(&same_time).await, "equal"),
        WriteOutcome {
            written: 0,
            stale_skipped: n
        }
    );
    assert_eq!(
        by_id(ok(index.documents().await, "documents")),
        by_id(newer)
    );

    // A newer snapshot replaces everything; a mixed batch counts each document.
    let newest = batch(&queues, 30_000, 1);
    let mut mixed = newest.clone();
    mixed.truncate(2);
    mixed.extend(batch(&queues, 5_000, 0).into_iter().skip(2));
    assert_eq!(
        ok(index.write(&mixed).await, "mixed"),
        WriteOutcome {
            written: 2,
            stale_skipped: n - 2
        }
    );
    let read = by_id(ok(index.documents().await, "documents"));
    for d in &newest[..2] {
        assert_eq!(read[&d.id()], *d);
    }
}

#[tokio::test]
async fn duplicated_and_out_of_order_batches_converge() {
    let queues = ["a", "b", "c", "d"];
    let b1 = batch(&queues, 1_000, 10);
    let b2 = batch(&queues[..3], 2_000, 20);
    let b3 = batch(&queues[1..], 3_000, 30);
    // Within one batch: the same document twice, newest first, plus a duplicate.
    let mut b4 = vec![doc("a", "VOICE", 4_000, 40), doc("a", "VOICE", 3_500, 35)];
    b4.push(b4[0].clone());

    let orders: [Vec<&Vec<QueueDepthDoc>>; 4] = [
        vec![&b1, &b2, &b3, &b4],
        vec![&b4, &b3, &b2, &b1],
        vec![&b2, &b4, &b1, &b3, &b3, &b1],
        vec![&b3, &b3, &b1, &b4, &b2, &b4, &b2],
    ];
    let mut results = Vec::new();
    for (i, order) in orders.iter().enumerate() {
        let index = index_named(&format!("os-converge-{i}")).await;
        for b in order {
            ok(index.write(b).await, "write");
        }
        results.push(by_id(ok(index.documents().await, "documents")));
    }

    // Expected: per id, the document with the highest snapshot.
    let mut expected: BTreeMap<String, QueueDepthDoc> = BTreeMap::new();
    for d in b1.iter().chain(&b2).chain(&b3).chain(&b4) {
        let keep = expected
            .get(&d.id())
            .is_some_and(|e| e.version() >= d.version());
        if !keep {
            expected.insert(d.id(), d.clone());
        }
    }
    assert_eq!(
        expected["a:VOICE".replace("a:", &format!("{INSTANCE}:a:")).as_str()].queue_depth,
        40
    );
    for r in &results {
        assert_eq!(*r, expected);
    }
}

#[tokio::test]
async fn five_hundred_documents_in_one_bulk_call() {
    let index = index_named("os-bulk500").await;
    let queues: Vec<String> = (0..250).map(|i| format!("queue-{i:03}")).collect();
    let refs: Vec<&str> = queues.iter().map(String::as_str).collect();
    let docs = batch(&refs, 42_000, 0);
    assert_eq!(docs.len(), 500);
    assert_eq!(
        ok(index.write(&docs).await, "write 500"),
        WriteOutcome {
            written: 500,
            stale_skipped: 0
        }
    );
    // Replaying the same batch is all stale.
    assert_eq!(
        ok(index.write(&docs).await, "replay 500"),
        WriteOutcome {
            written: 0,
            stale_skipped: 500
        }
    );
    assert_eq!(by_id(ok(index.documents().await, "documents")), by_id(docs));
}

#[tokio::test]
async fn documents_pages_through_more_than_one_search_page() {
    let index = index_named("os-paging").await;
    let queues: Vec<String> = (0..1_050).map(|i| format!("queue-{i:04}")).collect();
    let refs: Vec<&str> = queues.iter().map(String::as_str).collect();
    let docs = batch(&refs, 7_000, 0);
    assert_eq!(docs.len(), 2_100);
    assert_eq!(ok(index.write(&docs).await, "write").written, docs.len());
    let read = ok(index.documents().await, "documents");
    assert_eq!(read.len(), docs.len(), "no document lost or repeated");
    assert_eq!(by_id(read), by_id(docs));
}

#[tokio::test]
async fn documents_excludes_anything_that_is_not_a_queue_doc() {
    let server = osmem().await;
    let client = server.client();
    let index = OpenSearchIndex::new(client.clone(), unique("os-foreign"));
    let docs = batch(&["q1"], 1_000, 1);
    ok(index.write(&docs).await, "write");
    // A partial document, and a full one stored under an id its content does not imply.
    for (id, body) in [
        (
            "partial",
            json!({ "instanceId": INSTANCE, "queueId": "q9" }),
        ),
        (
            "wrong-id",
            serde_json::to_value(doc("q2", "VOICE", 1_000, 3)).unwrap(),
        ),
    ] {
        let response = client
            .index(IndexParts::IndexId(index.index(), id))
            .body(body)
            .refresh(Refresh::True)
            .send()
            .await
            .expect("index a foreign document");
        assert!(response.status_code().is_success());
    }
    assert_eq!(by_id(ok(index.documents().await, "documents")), by_id(docs));
}

#[tokio::test]
async fn history_index_keeps_each_snapshot_once() {
    let server = osmem().await;
    let client = server.client();
    let name = unique("os-hist");
    let history = format!("{name}-history");
    let index = OpenSearchIndex::new(client.clone(), &name).with_history(&history);
    let t1 = batch(&["q1"], 1_000, 1);
    let t2 = batch(&["q1"], 2_000, 2);
    assert_eq!(ok(index.write(&t2).await, "t2").written, 2);
    // Older (stale for the current index, still a new point of the time series) and a duplicate.
    assert_eq!(ok(index.write(&t1).await, "t1").stale_skipped, 2);
    assert_eq!(ok(index.write(&t2).await, "t2 again").stale_skipped, 2);

    let mut expected: Vec<String> = t1
        .iter()
        .chain(&t2)
        .map(|d| history_id(&d.id(), d.version()))
        .collect();
    expected.sort();
    assert_eq!(ids_in(&client, &history).await, expected);
    let (_, source) = stored(&client, &history, &expected[0]).await;
    let first: QueueDepthDoc = serde_json::from_value(source).unwrap();
    assert!(t1.contains(&first) || t2.contains(&first));
    // The current index holds the newest snapshot only.
    assert_eq!(by_id(ok(index.documents().await, "documents")), by_id(t2));
}

#[tokio::test]
async fn a_document_the_mapping_refuses_is_a_rejected_error_naming_it() {
    let index = index_named("os-refused").await;
    let mut good = batch(&["q1"], 1_000, 1);
    let mut bad = doc("q2", "VOICE", 1_000, 1);
    // Not a date: `version()` falls back to 0 and the date field refuses the value.
    bad.snapshot_time = "yesterday".to_string();
    good.push(bad.clone());
    let err = index.write(&good).await.expect_err("a refused document");
    assert!(matches!(err, PortError::Rejected { .. }), "{err:?}");
    assert!(!err.retryable());
    assert!(err.to_string().contains(&bad.id()), "{err}");
    // The valid documents of the batch were written.
    assert_eq!(ok(index.documents().await, "documents").len(), 2);
}

// ---------------------------------------------------------------------------------------------------
// try_claim
// ---------------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn one_winner_per_slot_across_concurrent_containers() {
    let server = osmem().await;
    let name = unique("os-lease");
    let slot = 1_749_564_270; // `floor(now / 1 s)`.

    // 20 "containers": separate clients and adapters, racing with no prior ensure_ready.
    let containers: Vec<Arc<OpenSearchIndex>> = (0..20)
        .map(|_| Arc::new(OpenSearchIndex::new(server.client(), &name)))
        .collect();
    let race = |slot: i64| {
        let winners = Arc::new(AtomicUsize::new(0));
        let tasks: Vec<_> = containers
            .iter()
            .cloned()
            .map(|c| {
                let winners = winners.clone();
                tokio::spawn(async move {
                    if c.try_claim(INSTANCE, slot).await.expect("try_claim") {
                        winners.fetch_add(1, Ordering::SeqCst);
                    }
                })
            })
            .collect();
        async move {
            for t in tasks {
                t.await.expect("claim task");
            }
            winners.load(Ordering::SeqCst)
        }
    };

    assert_eq!(race(slot).await, 1, "exactly one winner for slot {slot}");
    assert_eq!(race(slot).await, 0, "a won slot is never won again");
    assert_eq!(race(slot + 1).await, 1, "the next slot has one new winner");

    let c = &containers[0];
    assert!(!ok(c.try_claim(INSTANCE, slot).await, "older slot"));
    assert!(!ok(
        c.try_claim(INSTANCE, slot - 100).await,
        "much older slot"
    ));
    // Slots of another instance are independent.
    assert!(ok(
        c.try_claim("other-instance", slot).await,
        "other instance"
    ));
    assert!(ok(c.try_claim(INSTANCE, slot + 5).await, "a later slot"));

    // The lease document records the last won slot as its version.
    let (version, source) = stored(&server.client(), c.leases_index(), INSTANCE).await;
    assert_eq!(version, slot + 5);
    assert_eq!(source["slot"], slot + 5);
    assert_eq!(source["instanceId"], INSTANCE);

    assert!(matches!(
        c.try_claim(INSTANCE, -1).await,
        Err(PortError::Rejected { .. })
    ));
    assert!(matches!(
        c.try_claim("", slot + 6).await,
        Err(PortError::Rejected { .. })
    ));
}

// ---------------------------------------------------------------------------------------------------
// Clients
// ---------------------------------------------------------------------------------------------------

async fn full_cycle(index: &OpenSearchIndex) {
    ok(index.ensure_ready().await, "ensure_ready");
    let docs = batch(&["q1", "q2"], 9_000, 3);
    assert_eq!(ok(index.write(&docs).await, "write").written, 4);
    assert_eq!(by_id(ok(index.documents().await, "documents")), by_id(docs));
    assert!(ok(index.try_claim(INSTANCE, 42).await, "claim"));
    assert!(!ok(index.try_claim(INSTANCE, 42).await, "claim again"));
}

#[tokio::test]
async fn sigv4_signed_clients_work() {
    let server = osmem().await;
    let sdk_config = local_sdk_config(server.url(), 1).await;

    let harness_signed = OpenSearchIndex::new(server.client_sigv4(&sdk_config), unique("os-sigv4"));
    full_cycle(&harness_signed).await;

    let client = ok(
        OpenSearchIndex::client_for(server.url(), Some(&sdk_config), "es"),
        "client_for es",
    );
    full_cycle(&OpenSearchIndex::new(client, unique("os-sigv4-es"))).await;

    let client = ok(
        OpenSearchIndex::client_for(server.url(), None, "es"),
        "client_for unsigned",
    );
    full_cycle(&OpenSearchIndex::new(client, unique("os-unsigned"))).await;
}

// ---------------------------------------------------------------------------------------------------
// Whole-request failures (canned server)
// ---------------------------------------------------------------------------------------------------

/// An HTTP/1.1 server on 127.0.0.1 that answers `{"acknowledged":true}` to everything except
/// `_bulk` and `_doc` requests, which get `status` and `body`. One request per connection.
async fn canned_server(status: u16, body: &'static str) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = Vec::new();
                let mut chunk = [0u8; 8192];
                // Headers, then as many body bytes as Content-Length says.
                let (head_end, length) = loop {
                    let Ok(n) = stream.read(&mut chunk).await else {
                        return;
                    };
                    if n == 0 {
                        return;
                    }
                    buf.extend_from_slice(&chunk[..n]);
                    if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
                        let length = head
                            .lines()
                            .find_map(|l| l.strip_prefix("content-length:"))
                            .and_then(|v| v.trim().parse::<usize>().ok())
                            .unwrap_or(0);
                        break (end + 4, length);
                    }
                };
                while buf.len() < head_end + length {
                    match stream.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let request_line = String::from_utf8_lossy(&buf[..head_end]);
                let target = request_line.split_whitespace().nth(1).unwrap_or("/");
                let (code, text) = if target.contains("_bulk") || target.contains("_doc") {
                    (status, body)
                } else {
                    (200, r#"{"acknowledged":true}"#)
                };
                let response = format!(
                    "HTTP/1.1 {code} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{text}",
                    text.len()
                );
                let _ = stream.write_all(response.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    url
}

async fn canned_index(status: u16, body: &'static str) -> OpenSearchIndex {
    let url = canned_server(status, body).await;
    let client = ok(OpenSearchIndex::client_for(&url, None, "es"), "client_for");
    OpenSearchIndex::new(client, "canned")
}

#[tokio::test]
async fn whole_request_throttling_and_server_errors_are_retryable() {
    let docs = batch(&["q1"], 1_000, 1);

    let index = canned_index(
        429,
        r#"{"error":{"type":"es_rejected_execution_exception","reason":"rejected execution"},"status":429}"#,
    )
    .await;
    let err = index.write(&docs).await.expect_err("429");
    assert!(matches!(err, PortError::Throttled { .. }), "{err:?}");
    let err = index.try_claim(INSTANCE, 1).await.expect_err("429 claim");
    assert!(matches!(err, PortError::Throttled { .. }), "{err:?}");

    let index = canned_index(503, r#"{"message":"Service Unavailable"}"#).await;
    let err = index.write(&docs).await.expect_err("503");
    assert!(matches!(err, PortError::Unavailable { .. }), "{err:?}");
    assert!(err.retryable());

    // HTTP 200 with one throttled item.
    let index = canned_index(
        200,
        r#"{"errors":true,"items":[{"index":{"_id":"x","status":201}},{"index":{"_id":"y","status":429,"error":{"type":"es_rejected_execution_exception","reason":"queue full"}}}]}"#,
    )
    .await;
    let err = index.write(&docs).await.expect_err("item 429");
    assert!(matches!(err, PortError::Throttled { .. }), "{err:?}");
    assert!(err.to_string().contains(&docs[1].id()), "{err}");

    // Nobody listening: a transport failure.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    drop(listener);
    let client = ok(OpenSearchIndex::client_for(&url, None, "es"), "client_for");
    let err = OpenSearchIndex::new(client, "closed")
        .ensure_ready()
        .await
        .expect_err("connection refused");
    assert!(matches!(err, PortError::Unavailable { .. }), "{err:?}");
}
