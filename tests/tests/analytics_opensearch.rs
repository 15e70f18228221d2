//! The analytics store on OpenSearch (osmem-server, over HTTP): contact records converge to one
//! document per contact with the newest content whatever the order and repetition of deliveries,
//! and every metric's OpenSearch query gives the embedded evaluator's number on the same records.

use std::path::PathBuf;

use chrono::{DateTime, Utc};
use connect_events_core::analytics::input::read_records;
use connect_events_core::analytics::queries::{self, Indices, Metric, Target, Window};
use connect_events_core::analytics::{calls_in_queue, Analytics, AnalyticsReport, Incoming};
use connect_events_core::local::LocalAnalytics;
use connect_events_core::queue_depth::{QueueDepthDoc, QueueDepthIndex, Trigger};
use connect_events_handlers::aws::opensearch::OpenSearchIndex;
use connect_events_handlers::aws::opensearch_analytics::OpenSearchAnalytics;
use connect_events_tests::fixture;
use connect_events_tests::harness::{osmem, unique};
use serde_json::{json, Value};

fn fixtures() -> Vec<PathBuf> {
    vec![
        fixture("analytics/contact-records.ndjson"),
        fixture("analytics/agent-events.ndjson"),
        fixture("analytics/kinesis-agent-event.json"),
    ]
}

async fn opensearch_store(name: &str) -> (OpenSearchAnalytics, Indices) {
    let base = unique(name);
    let indices = Indices {
        ctr_prefix: format!("{base}-ctr-"),
        agent_event_prefix: format!("{base}-agent-events-"),
        queue_depth: format!("{base}-queue-depth"),
    };
    let store = OpenSearchAnalytics::new(
        osmem().await.client(),
        indices.clone(),
        format!("{base}-agent-state"),
    );
    (store, indices)
}

fn window(from: &str, to: &str, tz: chrono_tz::Tz) -> Window {
    Window {
        from: from.parse::<DateTime<Utc>>().unwrap(),
        to: to.parse::<DateTime<Utc>>().unwrap(),
        tz,
    }
}

/// Raw `_search` of every document of an index pattern.
async fn documents(pattern: &str) -> Vec<Value> {
    let response = osmem()
        .await
        .client()
        .search(::opensearch::SearchParts::Index(&[pattern]))
        .body(json!({ "size": 1000, "query": { "match_all": {} } }))
        .send()
        .await
        .expect("search");
    let body: Value = response.json().await.expect("json");
    body["hits"]["hits"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn every_metric_query_agrees_with_the_embedded_evaluator() {
    let (store, _) = opensearch_store("an-contract").await;
    let remote = Analytics::new(Box::new(store));
    let state = std::env::temp_dir().join(unique("an-contract-local"));
    let local = Analytics::new(Box::new(LocalAnalytics::new(state)));
    let a = remote.ingest_all(read_records(&fixtures())).await;
    let b = local.ingest_all(read_records(&fixtures())).await;
    assert_eq!(a, b, "both stores take the same records the same way");
    assert!(a.ctrs_stored > 5 && a.agent_events_stored > 3, "{a:?}");

    let windows = [
        window(
            "2025-06-10T00:00:00Z",
            "2025-06-12T00:00:00Z",
            chrono_tz::UTC,
        ),
        window(
            "2025-06-10T00:00:00Z",
            "2025-06-12T00:00:00Z",
            chrono_tz::Asia::Tokyo,
        ),
        window(
            "2025-06-10T00:00:00Z",
            "2025-06-12T00:00:00Z",
            chrono_tz::America::Los_Angeles,
        ),
        window(
            "2025-06-10T12:00:00Z",
            "2025-06-11T00:00:00Z",
            chrono_tz::Europe::Berlin,
        ),
        window(
            "2030-01-01T00:00:00Z",
            "2030-01-02T00:00:00Z",
            chrono_tz::UTC,
        ),
    ];
    for w in windows {
        let want = local
            .report(w.from, w.to, w.tz, &[])
            .await
            .expect("local report");
        let got = remote
            .report(w.from, w.to, w.tz, &[])
            .await
            .expect("opensearch report");
        // Means are summed in another order by the server: equal to 1e-9.
        let close = |a: Option<f64>, b: Option<f64>| match (a, b) {
            (Some(a), Some(b)) => (a - b).abs() <= 1e-9 * b.abs().max(1.0),
            (a, b) => a == b,
        };
        assert!(
            close(got.avg_after_contact_work_s, want.avg_after_contact_work_s)
                && close(got.avg_agent_interaction_s, want.avg_agent_interaction_s),
            "window {w:?}: {got:?} vs {want:?}"
        );
        let exact = |r: &AnalyticsReport| AnalyticsReport {
            avg_after_contact_work_s: None,
            avg_agent_interaction_s: None,
            ..r.clone()
        };
        assert_eq!(exact(&got), exact(&want), "window {w:?}");
    }
    let busy = local
        .report(windows[0].from, windows[0].to, windows[0].tz, &[])
        .await
        .unwrap();
    assert!(
        busy.calls > 0 && busy.agents > 0 && busy.avg_after_contact_work_s.is_some(),
        "{busy:?}"
    );
}

#[tokio::test]
async fn the_calls_in_queue_query_sums_voice_queue_depth() {
    let (_, indices) = opensearch_store("an-queue").await;
    let index = OpenSearchIndex::new(osmem().await.client(), &indices.queue_depth);
    let doc = |queue: &str, channel: &str, depth: u64| QueueDepthDoc {
        instance_id: "8f2c6d1e-4b7a-4e39-9c5d-2a1f0b3e7d64".into(),
        queue_id: queue.into(),
        queue_arn: None,
        queue_name: Some(format!("Queue {queue}")),
        channel: channel.into(),
        contacts_in_queue: depth,
        contacts_scheduled: 0,
        queue_depth: depth,
        oldest_contact_age_seconds: None,
        agents_online: None,
        agents_available: None,
        snapshot_time: "2025-06-10T12:00:00.000Z".into(),
        refreshed_at: "2025-06-10T12:00:00.150Z".into(),
        trigger: Trigger::new("QUEUED", None),
    };
    let docs = vec![
        doc("q1", "VOICE", 4),
        doc("q2", "VOICE", 3),
        doc("q1", "CHAT", 9),
    ];
    index.write(&docs).await.expect("write queue depth");
    let body = queries::search_body(
        Metric::CallsInQueue,
        &window(
            "2025-01-01T00:00:00Z",
            "2025-01-02T00:00:00Z",
            chrono_tz::UTC,
        ),
    );
    let response = osmem()
        .await
        .client()
        .search(::opensearch::SearchParts::Index(&[
            &indices.pattern(Target::QueueDepth)
        ]))
        .body(body)
        .send()
        .await
        .unwrap();
    let answer: Value = response.json().await.unwrap();
    let value = queries::read_answer(Metric::CallsInQueue, &answer).unwrap();
    let mut report = AnalyticsReport::default();
    queries::apply(&mut report, Metric::CallsInQueue, value);
    assert_eq!(report.calls_in_queue, calls_in_queue(&docs));
    assert!(
        report.calls_in_queue > 0,
        "the sample has voice contacts waiting"
    );
}

/// Re-delivered and out-of-order copies converge to one document per contact, the newest; the
/// caller's number is stored masked; replaying everything changes nothing.
#[tokio::test]
async fn redelivered_and_out_of_order_records_converge_to_the_newest_copy() {
    let records: Vec<Value> = read_records(&[fixture("analytics/contact-records.ndjson")])
        .into_iter()
        .map(|r| r.record.expect("fixture record"))
        .collect();
    let newest = |records: &[Value]| {
        let mut by_id: std::collections::BTreeMap<String, Value> = Default::default();
        for r in records {
            let Ok(Incoming::Ctr(c)) = Incoming::from_value(r.clone()) else {
                continue;
            };
            let keep = by_id.get(&c.contact_id).is_none_or(|old| {
                let Ok(Incoming::Ctr(o)) = Incoming::from_value(old.clone()) else {
                    return true;
                };
                c.version() > o.version()
            });
            if keep {
                by_id.insert(c.contact_id.clone(), r.clone());
            }
        }
        by_id
    };
    let expected = newest(&records);
    let mut orders = vec![records.clone()];
    let mut reversed = records.clone();
    reversed.reverse();
    orders.push(reversed);
    let mut doubled = records.clone();
    doubled.extend(records.iter().rev().cloned());
    orders.push(doubled);
    for (n, order) in orders.into_iter().enumerate() {
        let (store, indices) = opensearch_store(&format!("an-order-{n}")).await;
        let analytics = Analytics::new(Box::new(store));
        for record in &order {
            let incoming = Incoming::from_value(record.clone()).expect("record");
            analytics.ingest(&incoming).await.expect("ingest");
        }
        let docs = documents(&indices.pattern(Target::ContactRecords)).await;
        assert_eq!(
            docs.len(),
            expected.len(),
            "order {n}: one document per contact"
        );
        for doc in docs {
            let id = doc["_id"].as_str().unwrap();
            let mut want = expected[id].clone();
            if let Some(a) = want.pointer_mut("/CustomerEndpoint/Address") {
                *a = json!(connect_events_core::deny_list::mask(
                    a.as_str().unwrap_or("")
                ));
            }
            assert_eq!(
                doc["_source"], want,
                "order {n}: {id} holds its newest copy"
            );
        }
        let text = documents(&indices.pattern(Target::ContactRecords)).await;
        connect_events_tests::privacy::assert_no_number(
            "contact-record index",
            &serde_json::to_string(&text).unwrap(),
            &["+14255550100"],
        );
    }
}

/// `analytics ingest` and `analytics report --format json` on `--backend aws` (OpenSearch on
/// osmem-server) give the embedded backend's numbers for the same files; ingesting again changes
/// nothing.
#[tokio::test]
async fn the_cli_reports_the_same_metrics_on_both_backends() {
    let base = unique("an-cli");
    let state = std::env::temp_dir().join(unique("an-cli-local"));
    let aws_env: Vec<(String, String)> = [
        ("OPENSEARCH_ENDPOINT", osmem().await.url()),
        ("ANALYTICS_CTR_INDEX_PREFIX", &format!("{base}-ctr-")),
        (
            "ANALYTICS_AGENT_EVENT_INDEX_PREFIX",
            &format!("{base}-agent-events-"),
        ),
        (
            "ANALYTICS_AGENT_STATE_INDEX",
            &format!("{base}-agent-state"),
        ),
        ("QUEUE_DEPTH_INDEX", &format!("{base}-queue-depth")),
        ("AWS_ENDPOINT_URL", "http://127.0.0.1:9"),
    ]
    .iter()
    .chain(connect_events_tests::seed::CLI_CREDENTIALS.iter())
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let cli = |args: &[&str], aws: bool| {
        let mut cmd =
            std::process::Command::new(connect_events_tests::target_bin("connect-events"));
        cmd.args(args);
        if aws {
            cmd.args(["--backend", "aws"])
                .env_clear()
                .env("PATH", std::env::var_os("PATH").unwrap_or_default())
                .envs(aws_env.iter().cloned());
        } else {
            cmd.arg("--state-dir").arg(&state);
        }
        let out = cmd.output().expect("run connect-events");
        assert!(
            out.status.success(),
            "aws={aws} {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        out
    };
    let files: Vec<String> = fixtures().iter().map(|p| p.display().to_string()).collect();
    let mut ingest = vec!["analytics", "ingest"];
    ingest.extend(files.iter().map(String::as_str));
    for aws in [false, true] {
        cli(&ingest, aws);
        let again = cli(&ingest, aws);
        let text = String::from_utf8_lossy(&again.stdout);
        assert!(
            text.lines()
                .any(|l| l.starts_with("contact records stored") && l.ends_with(" 0")),
            "aws={aws}: a second ingest stores nothing new:\n{text}"
        );
    }
    for tz in ["UTC", "Asia/Tokyo"] {
        let report = |aws| -> Value {
            let out = cli(
                &[
                    "analytics",
                    "report",
                    "--from",
                    "2025-06-10T00:00:00Z",
                    "--to",
                    "2025-06-12T00:00:00Z",
                    "--time-zone",
                    tz,
                    "--format",
                    "json",
                ],
                aws,
            );
            serde_json::from_slice(&out.stdout).expect("report JSON")
        };
        let (local, remote) = (report(false), report(true));
        for key in [
            "calls",
            "calls_per_day",
            "agents",
            "agents_with_contacts",
            "calls_in_queue",
        ] {
            assert_eq!(remote[key], local[key], "{tz} {key}");
        }
        for key in ["avg_after_contact_work_s", "avg_agent_interaction_s"] {
            let (a, b) = (remote[key].as_f64().unwrap(), local[key].as_f64().unwrap());
            assert!((a - b).abs() < 1e-9, "{tz} {key}: {a} vs {b}");
        }
    }
}

/// Every dashboard visualization's request, with a window in place of the time picker, runs on
/// OpenSearch and shows the evaluator's number (read where its Vega spec reads it).
#[tokio::test]
async fn every_dashboard_visualization_shows_the_evaluators_number() {
    use connect_events_core::analytics::dashboards::{request_for_window, saved_objects};

    let (store, mut indices) = opensearch_store("an-dash").await;
    let remote = Analytics::new(Box::new(store));
    remote.ingest_all(read_records(&fixtures())).await;
    let state = std::env::temp_dir().join(unique("an-dash-local"));
    let local = Analytics::new(Box::new(LocalAnalytics::new(state)));
    local.ingest_all(read_records(&fixtures())).await;
    let w = window(
        "2025-06-10T00:00:00Z",
        "2025-06-12T00:00:00Z",
        chrono_tz::Asia::Tokyo,
    );
    let want = local.report(w.from, w.to, w.tz, &[]).await.unwrap();
    let want = serde_json::to_value(&want).unwrap();
    // A queue-depth index that does not exist: the sum is 0, as the evaluator's.
    indices.queue_depth = unique("an-dash-none");

    let objects = saved_objects(&indices, w.tz);
    let mut seen = 0;
    for object in objects.iter().filter(|o| o["type"] == "visualization") {
        let vis: Value =
            serde_json::from_str(object["attributes"]["visState"].as_str().unwrap()).unwrap();
        assert_eq!(vis["type"], "vega");
        let spec: Value = serde_json::from_str(vis["params"]["spec"].as_str().unwrap()).unwrap();
        let index = spec["data"]["url"]["index"].as_str().unwrap();
        let body = request_for_window(&spec["data"]["url"]["body"], &w);
        assert!(!body.to_string().contains('%'), "placeholders left: {body}");
        let response = osmem()
            .await
            .client()
            .search(::opensearch::SearchParts::Index(&[index]))
            .body(body)
            .send()
            .await
            .unwrap();
        let answer: Value = response.json().await.unwrap();
        let property = spec["data"]["format"]["property"].as_str().unwrap();
        let data = property.split('.').fold(&answer, |v, k| &v[k]);
        let key = object["id"]
            .as_str()
            .unwrap()
            .rsplit('.')
            .next()
            .unwrap()
            .replace('-', "_");
        let shown = if property.ends_with("buckets") {
            json!(data
                .as_array()
                .unwrap()
                .iter()
                .map(|b| json!({ "date": b["key_as_string"], "calls": b["doc_count"] }))
                .collect::<Vec<_>>())
        } else {
            data["value"].clone()
        };
        match (shown.as_f64(), want[&key].as_f64()) {
            (Some(a), Some(b)) if key.starts_with("avg") => {
                assert!((a - b).abs() < 1e-9, "{key}: {a} vs {b}")
            }
            _ if key == "calls_in_queue" => {
                assert_eq!(shown.as_f64().unwrap_or(0.0), 0.0, "{key}: {shown}")
            }
            _ => assert_eq!(
                shown
                    .as_f64()
                    .map(|f| json!(f as u64))
                    .unwrap_or(shown.clone()),
                want[&key],
                "{key}"
            ),
        }
        seen += 1;
    }
    assert_eq!(seen, 7);
}

/// A one-request HTTP server on loopback that records the request and answers `answer`.
fn fake_dashboards(answer: &'static str) -> (String, std::thread::JoinHandle<String>) {
    use std::io::{Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/_dashboards", listener.local_addr().unwrap());
    let handle = std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let mut request = Vec::new();
        let mut buf = [0u8; 65536];
        loop {
            let n = stream.read(&mut buf).unwrap();
            request.extend_from_slice(&buf[..n]);
            let text = String::from_utf8_lossy(&request).to_string();
            if let Some(end) = text.find("\r\n\r\n") {
                let length = text[..end]
                    .lines()
                    .find_map(|l| {
                        l.to_ascii_lowercase()
                            .strip_prefix("content-length:")
                            .map(|v| v.trim().parse::<usize>().unwrap())
                    })
                    .unwrap_or(0);
                if request.len() >= end + 4 + length {
                    break;
                }
            }
            if n == 0 {
                break;
            }
        }
        let response = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{answer}",
            answer.len()
        );
        stream.write_all(response.as_bytes()).unwrap();
        String::from_utf8_lossy(&request).to_string()
    });
    (url, handle)
}

/// `analytics dashboards --out FILE --import URL --tenant global` writes the NDJSON and posts it as
/// Dashboards' import API wants it; an answer with refused objects fails the command.
#[tokio::test]
async fn the_cli_writes_and_imports_the_saved_objects() {
    let out = std::env::temp_dir().join(format!("{}.ndjson", unique("dashboards")));
    let run = |url: &str| {
        std::process::Command::new(connect_events_tests::target_bin("connect-events"))
            .args([
                "analytics",
                "dashboards",
                "--time-zone",
                "Europe/Berlin",
                "--out",
            ])
            .arg(&out)
            .args(["--import", url, "--tenant", "global"])
            .env("AWS_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .output()
            .expect("run connect-events")
    };
    let (url, server) = fake_dashboards(r#"{"success":true,"successCount":11}"#);
    let result = run(&url);
    assert!(
        result.status.success(),
        "{}",
        String::from_utf8_lossy(&result.stderr)
    );
    let request = server.join().unwrap();
    let file = std::fs::read_to_string(&out).unwrap();
    assert_eq!(
        file.lines().count(),
        11,
        "3 index patterns, 7 visualizations, 1 dashboard"
    );
    let head = request
        .split("\r\n\r\n")
        .next()
        .unwrap()
        .to_ascii_lowercase();
    assert!(
        head.starts_with("post /_dashboards/api/saved_objects/_import?overwrite=true "),
        "{head}"
    );
    assert!(head.contains("osd-xsrf: true"), "{head}");
    assert!(head.contains("securitytenant: global"), "{head}");
    assert!(
        head.contains("content-type: multipart/form-data; boundary="),
        "{head}"
    );
    assert!(
        head.contains("authorization: aws4-hmac-sha256"),
        "signed: {head}"
    );
    assert!(request.contains("filename=\"connect-events-dashboards.ndjson\""));
    assert!(
        request.contains(file.trim_end()),
        "the file is the NDJSON written to --out"
    );

    let (url, server) = fake_dashboards(r#"{"success":false,"errors":[{"id":"x"}]}"#);
    let result = run(&url);
    server.join().unwrap();
    assert!(!result.status.success(), "refused objects fail the command");
}
