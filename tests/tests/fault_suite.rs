//! The fault-injection suite (#10.9): `connect-events replay --backend aws` of the sample archive
//! with every dependency (moto for DynamoDB, S3 and CloudWatch Logs; osmem-server for OpenSearch;
//! the Connect fake) behind a [`FaultProxy`] that injects latency, connection resets, 503s and
//! truncated bodies at fixed rates on every kind of request.
//!
//! Invariants:
//!
//! * nothing is dropped: every event is read and accounted, the command exits 0 or 1 (never a
//!   crash or a usage error), and every reported error is **retryable** and names its
//!   `file:line`: a fault is never mistaken for bad input;
//! * after the faults stop, a rerun exits 0 and converges to the state of a clean run of the same
//!   archive on its own resources: the same queue-depth documents, deny list (entries and hit
//!   counts), stopped contacts and flow-log archives.
//!
//! The faults injected of each kind are printed (`cargo test -- --nocapture` shows them) and
//! written to `target/fault-suite.txt`, which `tests/run.sh` prints after the tests.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use connect_events_core::deny_list::{DenyEntry, DenyStore, E164};
use connect_events_core::flow_logs::archive::read_gzip_ndjson;
use connect_events_core::rules::RuleSet;
use connect_events_handlers::aws::dynamodb::DynamoDenyStore;
use connect_events_tests::connect_fake::{ConnectFake, FakeMetrics};
use connect_events_tests::fault_proxy::{Fault, FaultProxy, FaultRule};
use connect_events_tests::harness::{moto, osmem, unique};
use connect_events_tests::lambda_emulator::{LambdaProcess, Outcome};
use connect_events_tests::seed::{
    c1_ended_an_hour_ago, flow_log_group, live_voice_contact, object_keys, put_log_lines,
    safe_bucket, Endpoints, ShiftedFlowLogs,
};
use connect_events_tests::{fixture_json, target_bin, target_dir, workspace_root};
use serde_json::{json, Value};

const INSTANCE: &str = "8f2c6d1e-4b7a-4e39-9c5d-2a1f0b3e7d64";
const ACCOUNT: &str = "123456789012";
const QUEUES: [&str; 2] = [
    "7b6038b4-1b68-40ff-abd0-7bc9d9b153bf",
    "a743aa55-fa47-4bd5-9323-39d0f2c689e1",
];
/// The listed caller: the customer of the archive's first INBOUND voice contact.
const LISTED: &str = "+14255550100";

/// One deployment's resources: its own Connect fake, table, index and bucket.
struct World {
    fake: ConnectFake,
    table: String,
    index: String,
    bucket: String,
}

async fn world(archive: &[Value]) -> World {
    let moto = moto().await;
    let fake = ConnectFake::start();
    for (i, queue) in QUEUES.iter().enumerate() {
        fake.add_queue(INSTANCE, queue, Some(&format!("Queue {i}")), "STANDARD");
        fake.set_metrics(
            INSTANCE,
            queue,
            "VOICE",
            FakeMetrics {
                contacts_in_queue: 3 + i as u32,
                contacts_scheduled: 1,
                ..FakeMetrics::default()
            },
        );
    }
    let inbound_voice = archive.iter().filter(|e| {
        e["detail"]["eventType"] == "INITIATED"
            && e["detail"]["channel"] == "VOICE"
            && e["detail"]["initiationMethod"] == "INBOUND"
    });
    for (i, event) in inbound_voice.enumerate() {
        let contact_id = event["detail"]["contactId"].as_str().expect("contactId");
        let number = if i == 0 {
            LISTED.to_string()
        } else {
            format!("+1425555{:04}", 200 + i)
        };
        fake.add_contact(
            INSTANCE,
            live_voice_contact(INSTANCE, ACCOUNT, contact_id, &number),
        );
    }
    let table = unique("fault-denylist");
    let store = DynamoDenyStore::from_client(moto.dynamodb().await, table.clone());
    store.ensure_table().await.expect("ensure_table");
    let mut entry = DenyEntry::new(LISTED.parse::<E164>().expect("E.164"));
    entry.reason = Some("spam".into());
    store.put(&entry).await.expect("listed caller");
    World {
        fake,
        table,
        index: unique("fault-queue-depth"),
        bucket: safe_bucket(&moto.s3().await, "fault-archive").await,
    }
}

/// Runs `replay --backend aws --allow-side-effects` of `archive` against `endpoints`.
fn replay(world: &World, endpoints: &Endpoints, log_group: &str, archive: &Path) -> (Value, i32) {
    let extra = [
        ("QUEUE_DEPTH_INDEX", world.index.as_str()),
        ("DENYLIST_TABLE", world.table.as_str()),
        ("ARCHIVE_BUCKET", world.bucket.as_str()),
        ("FLOW_LOG_GROUP", log_group),
        ("FLOW_LOGS_SETTLE_POLLS", "1"),
        ("RUST_LOG", "warn"),
    ];
    let out = Command::new(target_bin("connect-events"))
        .args([
            "replay",
            "--backend",
            "aws",
            "--allow-side-effects",
            "--report",
            "json",
        ])
        .arg(archive)
        .current_dir(workspace_root())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(endpoints.cli_env(&extra))
        .output()
        .expect("run connect-events replay");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "one JSON report on stdout ({e}): {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (report, out.status.code().unwrap_or(-1))
}

/// What a run leaves behind, without the fields that only say when it ran.
async fn state(world: &World) -> BTreeMap<&'static str, Value> {
    let moto = moto().await;
    let mut out = BTreeMap::new();

    let response = osmem()
        .await
        .client()
        .search(opensearch::SearchParts::Index(&[world.index.as_str()]))
        .body(json!({"size": 100, "query": {"match_all": {}}}))
        .send()
        .await
        .expect("search the queue-depth index");
    let body: Value = response.json().await.expect("search answer");
    let mut docs: BTreeMap<String, Value> = BTreeMap::new();
    for hit in body["hits"]["hits"].as_array().cloned().unwrap_or_default() {
        let mut doc = hit["_source"].clone();
        let object = doc.as_object_mut().expect("document object");
        for when in ["snapshotTime", "refreshedAt", "trigger"] {
            object.remove(when);
        }
        docs.insert(hit["_id"].as_str().unwrap_or("").to_string(), doc);
    }
    out.insert("queue_depth", json!(docs));

    let store = DynamoDenyStore::from_client(moto.dynamodb().await, world.table.clone());
    let mut entries: Vec<Value> = store
        .list()
        .await
        .expect("list the deny list")
        .into_iter()
        .map(|e| {
            json!([
                e.number.as_str(),
                e.reason,
                e.hit_count,
                e.last_hit_at.is_some()
            ])
        })
        .collect();
    entries.sort_by_key(|v| v.to_string());
    out.insert("deny_list", json!(entries));

    let mut stopped = world.fake.stopped_contacts();
    stopped.sort();
    out.insert("stopped", json!(stopped));

    let s3 = moto.s3().await;
    let mut archives = BTreeMap::new();
    for key in object_keys(&s3, &world.bucket).await {
        let body = s3
            .get_object()
            .bucket(&world.bucket)
            .key(&key)
            .send()
            .await
            .expect("GetObject")
            .body
            .collect()
            .await
            .expect("archive body")
            .into_bytes();
        let mut entries: Vec<String> = read_gzip_ndjson(body.as_ref())
            .expect("gzip NDJSON")
            .iter()
            .map(|e| e.canonical_json().to_string())
            .collect();
        entries.sort();
        archives.insert(key, entries);
    }
    out.insert("archives", json!(archives));
    out
}

/// Prints `line` and writes it to `target/fault-suite-<test>.txt` (`tests/run.sh` prints them).
fn report_line(line: &str) {
    println!("{line}");
    let test = std::thread::current()
        .name()
        .unwrap_or("fault-suite")
        .replace("::", "-");
    let _ = std::fs::write(
        target_dir().join(format!("fault-suite-{test}.txt")),
        format!("{line}\n"),
    );
}

fn write_archive(events: &[Value]) -> PathBuf {
    let dir = std::env::temp_dir().join(unique("fault-suite"));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let path = dir.join("archive.ndjson");
    let text: String = events.iter().map(|e| format!("{e}\n")).collect();
    std::fs::write(&path, text).expect("write archive");
    path
}

/// Every `n`-th request of every kind gets a fault; the rates overlap so that retries meet
/// faults too.
fn add_faults(proxy: &FaultProxy) {
    proxy.add(FaultRule::every(
        None,
        4,
        Fault::Delay(std::time::Duration::from_millis(150)),
    ));
    proxy.add(FaultRule::every(
        None,
        5,
        Fault::Status(503, "ServiceUnavailable"),
    ));
    proxy.add(FaultRule::every(None, 7, Fault::Reset));
    proxy.add(FaultRule::every(None, 9, Fault::Truncate));
}

/// The shifted sample archive, written to a file, with C1's flow logs in a fresh log group of
/// moto, and a clean replay of it on its own resources straight to the servers: its report and
/// the state it left.
struct CleanRun {
    shifted: ShiftedFlowLogs,
    archive: PathBuf,
    log_group: String,
    report: Value,
    expected: BTreeMap<&'static str, Value>,
}

async fn clean_run(log_group_prefix: &str) -> CleanRun {
    let moto = moto().await;
    let shifted = c1_ended_an_hour_ago();
    let archive = write_archive(&shifted.archive);
    let logs = moto.logs().await;
    let log_group = flow_log_group(&logs, log_group_prefix).await;
    put_log_lines(&logs, &log_group, "contact-flow-logs", &shifted.lines).await;
    let clean = world(&shifted.archive).await;
    let direct = Endpoints {
        moto: moto.endpoint().to_string(),
        osmem: osmem().await.url().to_string(),
        connect: clean.fake.endpoint(),
    };
    let (report, code) = replay(&clean, &direct, &log_group, &archive);
    assert_eq!(code, 0, "clean run: {report}");
    let expected = state(&clean).await;
    CleanRun {
        shifted,
        archive,
        log_group,
        report,
        expected,
    }
}

/// The names of the proxied servers, in the order of [`proxies`].
const PROXIED: [&str; 3] = ["moto", "osmem", "connect"];

/// A fault proxy in front of moto, osmem-server and `world`'s Connect fake (no rules yet), and
/// the endpoints through them.
async fn proxies(world: &World) -> ([FaultProxy; 3], Endpoints) {
    let proxies = [
        FaultProxy::start(moto().await.endpoint()),
        FaultProxy::start(osmem().await.url()),
        FaultProxy::start(&world.fake.endpoint()),
    ];
    let through = Endpoints {
        moto: proxies[0].endpoint().to_string(),
        osmem: proxies[1].endpoint().to_string(),
        connect: proxies[2].endpoint().to_string(),
    };
    (proxies, through)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replay_through_faults_loses_nothing_and_converges_to_a_clean_run() {
    let CleanRun {
        shifted,
        archive,
        log_group,
        report,
        expected,
    } = clean_run("fault-flow-logs").await;
    assert_eq!(report["actions"]["flow_logs"]["archived"], 4, "{report}");
    assert_eq!(report["actions"]["deny_list"]["stopped"], 1, "{report}");

    // The same archive through the faults, on fresh resources.
    let faulty = world(&shifted.archive).await;
    let (proxies, through) = proxies(&faulty).await;
    for proxy in &proxies {
        add_faults(proxy);
    }
    let (report, code) = replay(&faulty, &through, &log_group, &archive);
    let mut injected: BTreeMap<String, u64> = BTreeMap::new();
    for (name, proxy) in PROXIED.iter().zip(&proxies) {
        for (kind, n) in proxy.counts() {
            *injected.entry(kind.clone()).or_default() += n;
            println!("fault suite (replay): {name}: {n} × {kind}");
        }
    }
    let errors = report["errors"].as_array().map_or(0, Vec::len);
    report_line(&format!(
        "fault suite (replay): injected {injected:?}; {errors} events reported retryable"
    ));
    assert!(
        injected.len() == 4 && injected.values().all(|n| *n > 0),
        "every kind of fault was injected: {injected:?}"
    );
    assert!(matches!(code, 0 | 1), "exit {code}: {report}");
    assert_eq!(report["events"]["read"], 40, "{report}");
    assert_eq!(report["events"]["valid"], 40, "{report}");
    for error in report["errors"].as_array().expect("errors array") {
        assert_eq!(
            error["retryable"], true,
            "a fault reported as permanent: {error}"
        );
        // An event's error names its file:line; the refresh after the last event names itself.
        let source = error["source"].as_str().unwrap_or("");
        assert!(
            source.starts_with("trailing refresh of ")
                || source.rsplit_once(':').is_some_and(|(file, line)| {
                    file.ends_with("archive.ndjson") && line.parse::<u32>().is_ok()
                }),
            "error without file:line: {error}"
        );
    }

    // Faults stop: a rerun converges to the clean run's state.
    for proxy in &proxies {
        proxy.clear();
    }
    let (report, code) = replay(&faulty, &through, &log_group, &archive);
    assert_eq!(code, 0, "rerun without faults: {report}");
    assert_eq!(state(&faulty).await, expected);
}

/// Each Lambda's end-to-end path through the same faults, delivered the way EventBridge and
/// Lambda deliver (the template's rules pick the function; a failed invocation is invoked again,
/// as the async retries do): every failure is a typed **retryable** error (`errorMessage` starts
/// with `retryable:`), never a crash or a permanent error; the contact-flow function always
/// answers its string map. After the faults stop, one more delivery of every event converges to
/// the state a clean `replay` of the same archive leaves: Lambda and replay run the same code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_lambda_through_faults_fails_only_retryably_and_converges() {
    let CleanRun {
        shifted,
        log_group,
        expected,
        ..
    } = clean_run("fault-lambda-logs").await;
    let faulty = world(&shifted.archive).await;
    let (proxies, through) = proxies(&faulty).await;
    let env = through.env(&[
        ("QUEUE_DEPTH_INDEX", faulty.index.as_str()),
        ("QUEUE_DEPTH_MIN_INTERVAL_MS", "200"),
        ("QUEUE_DEPTH_MAX_WAIT_MS", "200"),
        ("DENYLIST_TABLE", faulty.table.as_str()),
        ("ARCHIVE_BUCKET", faulty.bucket.as_str()),
        ("FLOW_LOG_GROUP", log_group.as_str()),
        ("FLOW_LOGS_SETTLE_POLLS", "1"),
    ]);
    let rules = RuleSet::load(&workspace_root().join("infra/template.yaml")).expect("template");
    let lambdas: BTreeMap<&str, LambdaProcess> = [
        "queue-depth",
        "deny-list-enforcer",
        "flow-log-archiver",
        "deny-list-flow",
    ]
    .into_iter()
    .map(|name| (name, LambdaProcess::spawn(&target_bin(name), name, &env)))
    .collect();
    let timeout = std::time::Duration::from_secs(60);
    let deliveries: Vec<(&str, &Value)> = shifted
        .archive
        .iter()
        .flat_map(|event| {
            rules
                .route(event)
                .filter_map(|rule| rule.handler)
                .map(move |kind| (kind.binary(), event))
        })
        .collect();
    assert!(deliveries.len() > 30, "{}", deliveries.len());

    for proxy in &proxies {
        add_faults(proxy);
    }
    let (mut failures, mut attempts) = (0, 0);
    for (binary, event) in &deliveries {
        // One invocation and Lambda's two async retries.
        for _ in 0..3 {
            attempts += 1;
            match lambdas[binary].invoke(event, timeout).outcome {
                Outcome::Response(_) => break,
                Outcome::Error {
                    error_type,
                    error_message: message,
                } => {
                    failures += 1;
                    assert!(
                        message.starts_with("retryable: "),
                        "{binary}: a fault reported as permanent: {error_type}: {message}"
                    );
                }
            }
        }
    }
    for name in ["voice-inbound-lookup.json", "voice-agent-flag.json"] {
        let invocation = fixture_json(&format!("flow-invocation/{name}"));
        for _ in 0..5 {
            let answer = lambdas["deny-list-flow"]
                .invoke(&invocation, timeout)
                .expect_response();
            assert!(answer["Success"].is_string(), "{name}: {answer}");
        }
    }
    let mut injected: BTreeMap<String, u64> = BTreeMap::new();
    for proxy in &proxies {
        for (kind, n) in proxy.counts() {
            *injected.entry(kind).or_default() += n;
        }
    }
    report_line(&format!(
        "fault suite (lambdas): injected {injected:?}; {failures} retryable failures in {attempts} invocations"
    ));
    assert!(
        injected.len() == 4,
        "every kind of fault was injected: {injected:?}"
    );

    for proxy in &proxies {
        proxy.clear();
    }
    for (binary, event) in &deliveries {
        let response = lambdas[binary].invoke(event, timeout).expect_response();
        assert!(response.is_object(), "{binary}: {response}");
    }
    // The flag fixture wrote an entry the clean world does not have: compare without it.
    let mut got = state(&faulty).await;
    let mut want = expected.clone();
    for s in [&mut got, &mut want] {
        if let Some(entries) = s.get_mut("deny_list").and_then(Value::as_array_mut) {
            entries.retain(|e| e[0] == LISTED);
        }
    }
    assert_eq!(got, want);
}
