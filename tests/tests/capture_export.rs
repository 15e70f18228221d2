//! Capture → replay over the wire: events captured in a CloudWatch Logs group (moto) are exported
//! by `connect-events events export --backend aws` and replayed locally.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use connect_events_tests::harness::{moto, unique};
use connect_events_tests::seed::{put_log_lines, Endpoints};
use connect_events_tests::{fixture, state_digest, target_bin, workspace_root};
use serde_json::Value;

fn temp_dir(prefix: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(unique(prefix));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn replay(state: &Path, archive: &Path) -> Output {
    Command::new(target_bin("connect-events"))
        .args(["replay", "--report", "json", "--state-dir"])
        .arg(state)
        .arg(archive)
        .current_dir(workspace_root())
        .output()
        .expect("replay")
}

/// Creates the capture-like log group `/aws/events/<unique(prefix)>` on moto.
async fn create_group(logs: &aws_sdk_cloudwatchlogs::Client, prefix: &str) -> String {
    let group = format!("/aws/events/{}", unique(prefix));
    logs.create_log_group()
        .log_group_name(&group)
        .send()
        .await
        .expect("CreateLogGroup");
    group
}

/// The non-blank lines of the sample archive that `keep` keeps.
fn sample_lines(keep: impl Fn(&str) -> bool) -> Vec<String> {
    std::fs::read_to_string(fixture("events/sample-archive.ndjson"))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty() && keep(l))
        .map(str::to_string)
        .collect()
}

/// The `time` of each event line.
fn times_of(lines: &[String]) -> Vec<String> {
    lines
        .iter()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["time"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

/// The exported file holds each distinct event of `lines` once, each line as it stands there,
/// ordered by time.
fn assert_exported(exported: &Path, lines: &[String], context: &str) -> Vec<String> {
    let got: Vec<String> = std::fs::read_to_string(exported)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    let mut ids: Vec<String> = lines
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["id"].to_string())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(got.len(), ids.len(), "each distinct event once: {context}");
    for line in &got {
        assert!(lines.contains(line), "exported unchanged: {line}");
    }
    let times = times_of(&got);
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "ordered by time");
    got
}

/// Replaying `exported` leaves the state replaying `original` leaves.
fn assert_replays_alike(dir: &Path, original: &Path, exported: &Path) {
    let (a, b) = (dir.join("from-original"), dir.join("from-export"));
    let ra = replay(&a, original);
    let rb = replay(&b, exported);
    assert_eq!(ra.status.code(), rb.status.code());
    assert_eq!(
        state_digest(&a),
        state_digest(&b),
        "the export replays like the original"
    );
}

/// The sample archive captured as EventBridge writes it (one event per log event, in two streams,
/// every event delivered twice in the second, plus a record that is not an event), exported for
/// its window: exactly the distinct events, unchanged, in time order; replaying the export equals
/// replaying the original archive.
#[tokio::test]
async fn exported_capture_replays_like_the_original_archive() {
    let moto = moto().await;
    let logs = moto.logs().await;
    let group = create_group(&logs, "capture").await;
    let original = fixture("events/sample-archive.ndjson");
    let lines = sample_lines(|_| true);
    // Captured timestamps: the events' own times, moved into the last day (CloudWatch Logs
    // refuses events older than 14 days); the messages stay as they were.
    let shift = {
        let first: Value = serde_json::from_str(&lines[0]).unwrap();
        let t = chrono::DateTime::parse_from_rfc3339(first["time"].as_str().unwrap()).unwrap();
        chrono::Utc::now().timestamp_millis() - 3_600_000 - t.timestamp_millis()
    };
    let mut timed: Vec<(i64, String)> = lines
        .iter()
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            let t = chrono::DateTime::parse_from_rfc3339(v["time"].as_str().unwrap()).unwrap();
            (t.timestamp_millis() + shift, l.clone())
        })
        .collect();
    timed.sort();
    let (from, to) = (timed[0].0, timed[timed.len() - 1].0);
    let mut streams: Vec<(&str, Vec<(i64, String)>)> =
        vec![("a", timed.clone()), ("b", timed.clone())];
    streams[1]
        .1
        .push((to, "not an event: +1 (425) 555-0199".into()));
    for (stream, events) in &streams {
        put_log_lines(&logs, &group, stream, events).await;
    }

    let dir = temp_dir("export");
    let exported = dir.join("export.ndjson");
    let endpoints = Endpoints::local(None).await;
    let iso = |ms: i64| {
        chrono::DateTime::from_timestamp_millis(ms)
            .unwrap()
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
    };
    let out = Command::new(target_bin("connect-events"))
        .args([
            "events",
            "export",
            "--backend",
            "aws",
            "--log-group",
            &group,
        ])
        .args(["--start", &iso(from), "--end", &iso(to), "--out"])
        .arg(&exported)
        .current_dir(workspace_root())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(endpoints.cli_env(&[]))
        .output()
        .expect("events export");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "one malformed record: {stderr}");
    let got = assert_exported(&exported, &lines, &stderr);
    assert!(
        stderr.contains(&format!("exported {} events", got.len())),
        "{stderr}"
    );
    assert!(
        stderr.contains("1 malformed") && stderr.contains(&group),
        "{stderr}"
    );
    connect_events_tests::privacy::assert_no_number("events export", &stderr, &["+14255550199"]);
    assert_replays_alike(&dir, &original, &exported);
}

/// `replay s3://bucket/prefix` reads the Firehose capture (gzip NDJSON objects, named without an
/// extension as Firehose names them, events split across objects) from S3 on moto and leaves the
/// state a replay of the same events from a local file leaves; locations name the objects.
#[tokio::test]
async fn replay_reads_the_firehose_capture_from_s3() {
    use std::io::Write as _;

    let moto = moto().await;
    let s3 = moto.s3().await;
    let bucket = connect_events_tests::seed::create_bucket(&s3, "capture").await;
    let original = fixture("events/sample-archive.ndjson");
    let text = std::fs::read_to_string(&original).unwrap();
    let lines: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    let half = lines.len() / 2;
    for (n, part) in [&lines[..half], &lines[half..]].into_iter().enumerate() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        for line in part {
            writeln!(gz, "{line}").unwrap();
        }
        s3.put_object()
            .bucket(&bucket)
            .key(format!(
                "capture/2025/06/10/14/connect-events-capture-1-2025-06-10-14-00-0{n}-abc"
            ))
            .body(gz.finish().unwrap().into())
            .send()
            .await
            .expect("put capture object");
    }
    // An object outside the prefix is not read.
    s3.put_object()
        .bucket(&bucket)
        .key("elsewhere/x.json")
        .body(b"not an event".to_vec().into())
        .send()
        .await
        .unwrap();

    let dir = temp_dir("replay-s3");
    let (a, b) = (dir.join("from-file"), dir.join("from-s3"));
    let ra = replay(&a, &original);
    let endpoints = Endpoints::local(None).await;
    let rb = Command::new(target_bin("connect-events"))
        .args(["replay", "--report", "json", "--state-dir"])
        .arg(&b)
        .arg(format!("s3://{bucket}/capture/"))
        .current_dir(workspace_root())
        .envs(endpoints.cli_env(&[]))
        .output()
        .expect("replay s3");
    assert_eq!(
        ra.status.code(),
        rb.status.code(),
        "{}",
        String::from_utf8_lossy(&rb.stderr)
    );
    let (reports_a, reports_b): (Value, Value) = (
        serde_json::from_slice(&ra.stdout).unwrap(),
        serde_json::from_slice(&rb.stdout).unwrap(),
    );
    assert_eq!(reports_a["events"], reports_b["events"], "{reports_b}");
    assert_eq!(
        state_digest(&a),
        state_digest(&b),
        "S3 capture replays like the file"
    );
    for error in reports_b["errors"].as_array().unwrap() {
        assert!(
            error["source"]
                .as_str()
                .unwrap()
                .starts_with(&format!("s3://{bucket}/capture/")),
            "{error}"
        );
    }
}

/// `events export --archive` with `how` = `["--capture-rule", ARN]` or `["--replay-name", NAME]`.
fn export_archive(
    endpoints: &Endpoints,
    eventbridge: &str,
    group: &str,
    archive: &str,
    how: [&str; 2],
    window: (&str, &str),
    out: &Path,
) -> Output {
    Command::new(target_bin("connect-events"))
        .args(["events", "export", "--backend", "aws", "--log-group", group])
        .args(["--archive", archive])
        .args(how)
        .args(["--start", window.0, "--end", window.1])
        .args(["--settle", "0", "--poll", "1", "--out"])
        .arg(out)
        .current_dir(workspace_root())
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .envs(endpoints.cli_env(&[("AWS_ENDPOINT_URL_EVENTBRIDGE", eventbridge)]))
        .output()
        .expect("events export --archive")
}

/// `events export --archive`: the archive's window is replayed onto the archive's own bus to the
/// capture rule alone (no other rule gets a copy), and the copies of that replay — not the live
/// captures, not another replay's copies, each once although delivered twice — are written without
/// their `replay-name`, byte for byte as archived; exporting that replay again by name writes the
/// same file; replaying the export equals replaying the archive's events. A replay that fails is
/// an error with EventBridge's reason.
#[tokio::test]
async fn the_archive_becomes_a_local_file_through_a_replay_to_the_capture_rule_alone() {
    use connect_events_tests::eventbridge_fake::EventBridgeFake;

    let moto = moto().await;
    let logs = moto.logs().await;
    let group = create_group(&logs, "capture").await;
    let other_group = create_group(&logs, "enforcer").await;
    // The archive holds the live events of the sample archive (not its replayed copy).
    let lines = sample_lines(|l| !l.contains("\"replay-name\""));
    let dir = temp_dir("export-archive");
    let original = dir.join("archived.ndjson");
    std::fs::write(&original, lines.join("\n") + "\n").unwrap();
    // What the capture group already holds around now: live captures and another replay's copies.
    let now = chrono::Utc::now().timestamp_millis();
    let stamped = |at: i64, lines: &[String]| -> Vec<(i64, String)> {
        lines.iter().map(|l| (at, l.clone())).collect()
    };
    put_log_lines(&logs, &group, "live", &stamped(now - 10_000, &lines[..3])).await;
    let other_replay: Vec<String> = lines[3..5]
        .iter()
        .map(|l| {
            format!(
                "{},\"replay-name\":\"an-earlier-replay\"}}",
                &l[..l.len() - 1]
            )
        })
        .collect();
    put_log_lines(
        &logs,
        &group,
        "older-replay",
        &stamped(now - 5_000, &other_replay),
    )
    .await;

    let fake = EventBridgeFake::start(logs.clone());
    let archive = fake.add_archive("connect-events", "default", lines.clone());
    let capture_rule = fake.add_rule("stack-connect-events-capture", "default", &group);
    let enforcer_rule = fake.add_rule("stack-enforcer", "default", &other_group);
    let times = times_of(&lines);
    let start = times.iter().min().unwrap().clone();
    let end = chrono::DateTime::parse_from_rfc3339(times.iter().max().unwrap()).unwrap()
        + chrono::Duration::seconds(1);
    let end = end.to_rfc3339();

    let endpoints = Endpoints::local(None).await;
    let eventbridge = fake.endpoint();
    let export = |how: [&str; 2], out: &Path| {
        export_archive(
            &endpoints,
            &eventbridge,
            &group,
            &archive,
            how,
            (&start, &end),
            out,
        )
    };
    let exported = dir.join("archive.ndjson");
    let out = export(["--capture-rule", &capture_rule], &exported);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert_eq!(
        fake.delivered(&enforcer_rule),
        0,
        "FilterArns: the capture rule alone"
    );
    assert_eq!(
        fake.delivered(&capture_rule),
        lines.len() + 1,
        "one copy twice"
    );

    assert_exported(&exported, &lines, &stderr);
    assert!(
        stderr.contains("5 left out"),
        "3 live + 2 of another replay: {stderr}"
    );

    // Exporting the same replay again (as after a wait that ran out) writes the same file.
    let name = stderr
        .split_whitespace()
        .skip_while(|w| *w != "replay")
        .nth(1)
        .expect("the replay's name")
        .trim_end_matches(':')
        .to_string();
    let again = dir.join("again.ndjson");
    let out = export(["--replay-name", &name], &again);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(
        std::fs::read(&again).unwrap(),
        std::fs::read(&exported).unwrap()
    );
    assert_eq!(
        fake.delivered(&capture_rule),
        lines.len() + 1,
        "no second replay"
    );

    assert_replays_alike(&dir, &original, &exported);

    // A replay that fails: reported with EventBridge's reason, nothing exported as if it worked.
    fake.fail_replays();
    let out = export(
        ["--capture-rule", &capture_rule],
        &dir.join("failed.ndjson"),
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("The archive could not be read"), "{stderr}");
}
