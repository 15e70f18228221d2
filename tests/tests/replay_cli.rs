//! `connect-events replay` and friends, end to end through the built binary on the embedded backend.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use connect_events_core::event::input::read_paths;
use connect_events_core::flow_logs::FlowLogEntry;
use connect_events_core::rules::RuleSet;
use connect_events_tests::{fixture, harness::unique, target_bin, workspace_root};
use serde_json::Value;

fn temp_dir(prefix: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(unique(prefix));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The CLI started with `args`, its stdout and stderr captured.
fn spawn_cli(args: &[&str]) -> std::process::Child {
    Command::new(target_bin("connect-events"))
        .args(args)
        .current_dir(workspace_root())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("spawn connect-events")
}

/// Waits for a CLI started by [`spawn_cli`] and asserts it succeeded.
fn wait_ok(child: std::process::Child) {
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

fn cli(args: &[&str]) -> Output {
    Command::new(target_bin("connect-events"))
        .args(args)
        .current_dir(workspace_root())
        .output()
        .expect("run connect-events")
}

/// The queue-depth documents of a state directory (`queue-depth show --format json`).
fn queue_depth_docs(state: &Path) -> Value {
    let out = cli(&[
        "queue-depth",
        "show",
        "--format",
        "json",
        "--state-dir",
        state.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn replay_json(state: &Path, extra: &[&str], paths: &[&Path]) -> (Value, i32) {
    let mut args = vec![
        "replay",
        "--report",
        "json",
        "--state-dir",
        state.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let paths: Vec<String> = paths.iter().map(|p| p.display().to_string()).collect();
    args.extend(paths.iter().map(String::as_str));
    let out = cli(&args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    let report: Value = serde_json::from_str(stdout.trim()).unwrap_or_else(|e| {
        panic!(
            "one JSON object on stdout ({e}): {stdout}\nstderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
    });
    (report, out.status.code().unwrap_or(-1))
}

/// Every file below `dir`, in name order.
fn files_under(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

fn tree_digest(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    connect_events_tests::state_digest(dir)
}

/// A user replaying their archive without flow logs at hand: every disconnect finds no logs, which
/// is `skipped_no_logs` (grace 0 in replay), not a retryable error and not a failed replay.
#[test]
fn sample_archive_without_flow_logs_replays_cleanly() {
    let state = temp_dir("replay-no-flow-logs");
    let archive = fixture("events/sample-archive.ndjson");
    let (report, code) = replay_json(&state, &[], &[&archive]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(report["errors"], serde_json::json!([]), "{report}");
    assert_eq!(report["events"]["valid"], 40, "{report}");
}

#[test]
fn sample_archive_report_is_complete_and_consistent() {
    let state = temp_dir("replay-sample");
    let archive = fixture("events/sample-archive.ndjson");
    let (report, code) = replay_json(
        &state,
        &["--flow-logs", fixture("flow-logs").to_str().unwrap()],
        &[&archive],
    );
    assert_eq!(code, 0, "{report}");
    assert_eq!(
        report["events"],
        serde_json::json!({"read": 40, "valid": 40, "malformed": 0, "duplicates": 1})
    );
    assert_eq!(report["errors"], serde_json::json!([]));
    assert_eq!(report["by_event_type"]["DISCONNECTED"], 8);
    assert_eq!(report["by_event_type"]["QUEUED"], 8);

    // Rule counts equal an independent routing of the distinct events.
    let rules = RuleSet::load(&workspace_root().join("infra/template.yaml")).unwrap();
    let mut seen = BTreeSet::new();
    let mut expected: BTreeMap<String, u64> =
        rules.pattern_rules().map(|r| (r.name.clone(), 0)).collect();
    for item in read_paths(&[archive]) {
        let ev = item.event.unwrap();
        if !seen.insert(ev.id().unwrap().to_string()) {
            continue;
        }
        for r in rules.route(&ev.raw) {
            *expected.get_mut(&r.name).unwrap() += 1;
        }
    }
    let got: BTreeMap<String, u64> = report["rules"]
        .as_object()
        .unwrap()
        .iter()
        .map(|(k, v)| (k.clone(), v.as_u64().unwrap()))
        .collect();
    assert_eq!(got, expected);

    let fl = &report["actions"]["flow_logs"];
    assert_eq!(fl["archived"], 4, "{fl}");
    assert_eq!(fl["with_errors"], 2, "{fl}");
    assert_eq!(fl["skipped_no_logs"], 3, "{fl}");
    assert_eq!(report["actions"]["deny_list"]["no_number"], 6);
}

#[test]
fn broken_lines_are_reported_with_file_and_line_and_the_rest_is_processed() {
    let dir = temp_dir("replay-broken");
    let good: Vec<String> = std::fs::read_to_string(fixture("events/sample-archive.ndjson"))
        .unwrap()
        .lines()
        .take(3)
        .map(str::to_string)
        .collect();
    let file = dir.join("mixed.ndjson");
    let text = format!(
        "{}\n{{\"detail-type\": \"Amazon Connect Contact Event\", \"source\": \"aws.connect\"}}\n{}\nnot json at all\n\n{}\n{}\n",
        good[0],
        good[1],
        r#"{"detail-type":"Amazon Connect Contact Event","source":"aws.connect","id":"x","detail":{"eventType":"QUEUED","contactId":42}}"#,
        good[2]
    );
    std::fs::write(&file, text).unwrap();
    let (report, code) = replay_json(&dir.join("state"), &[], &[&file]);
    assert_eq!(code, 1);
    assert_eq!(report["events"]["malformed"], 3, "{report}");
    assert_eq!(report["events"]["valid"], 3, "{report}");
    let errors = report["errors"].as_array().unwrap();
    let sources: Vec<&str> = errors
        .iter()
        .map(|e| e["source"].as_str().unwrap())
        .collect();
    let name = file.display().to_string();
    assert_eq!(
        sources,
        vec![
            format!("{name}:2"),
            format!("{name}:4"),
            format!("{name}:6")
        ]
    );
    assert!(
        errors[0]["reason"].as_str().unwrap().contains("detail"),
        "{}",
        errors[0]
    );
    assert!(
        errors[2]["reason"]
            .as_str()
            .unwrap()
            .contains("detail.contactId"),
        "{}",
        errors[2]
    );
    assert!(errors.iter().all(|e| e["retryable"] == false));
}

#[test]
fn replaying_twice_leaves_identical_state() {
    let state = temp_dir("replay-twice");
    let flow_logs = fixture("flow-logs");
    let args = ["--flow-logs", flow_logs.to_str().unwrap()];
    let archive = fixture("events/sample-archive.ndjson");
    replay_json(&state, &args, &[&archive]);
    let first = tree_digest(&state);
    let (second_report, code) = replay_json(&state, &args, &[&archive]);
    assert_eq!(code, 0);
    assert_eq!(
        second_report["actions"]["queue_depth"]["documents_written"], 0,
        "{second_report}"
    );
    assert_eq!(second_report["actions"]["flow_logs"]["archived"], 0);
    assert_eq!(first, tree_digest(&state));
    // A shuffled copy of the same events converges to the same queue-depth documents.
    let shuffled_dir = temp_dir("replay-shuffled");
    let mut lines: Vec<String> = std::fs::read_to_string(&archive)
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect();
    lines.reverse();
    let shuffled = shuffled_dir.join("reversed.ndjson");
    std::fs::write(&shuffled, lines.join("\n")).unwrap();
    let other_state = shuffled_dir.join("state");
    replay_json(&other_state, &args, &[&shuffled]);
    let show = |s: &Path| -> Vec<(String, String, u64)> {
        let docs = queue_depth_docs(s);
        docs.as_array()
            .unwrap()
            .iter()
            .map(|d| {
                (
                    d["queueId"].as_str().unwrap().into(),
                    d["channel"].as_str().unwrap().into(),
                    d["queueDepth"].as_u64().unwrap(),
                )
            })
            .collect()
    };
    assert_eq!(show(&state), show(&other_state));
}

#[test]
fn queue_depth_show_reports_contacts_still_waiting() {
    let state = temp_dir("replay-depth");
    let archive = fixture("events/sample-archive.ndjson");
    replay_json(&state, &[], &[&archive]);
    // Independent expectation: QUEUED and never connected, disconnected or completed.
    let mut queued: BTreeMap<String, String> = BTreeMap::new();
    let mut done: BTreeSet<String> = BTreeSet::new();
    for item in read_paths(&[archive]) {
        let ev = item.event.unwrap();
        let c = ev.contact().unwrap();
        match c.event_type.as_str() {
            "QUEUED" => {
                queued.insert(c.contact_id.clone(), c.queue_id().unwrap().to_string());
            }
            "CONNECTED_TO_AGENT" | "DISCONNECTED" | "COMPLETED" => {
                done.insert(c.contact_id.clone());
            }
            _ => {}
        }
    }
    let mut expected: BTreeMap<String, u64> = queued.values().map(|q| (q.clone(), 0)).collect();
    for (contact, queue) in &queued {
        if !done.contains(contact) {
            *expected.get_mut(queue).unwrap() += 1;
        }
    }
    let docs = queue_depth_docs(&state);
    let mut got: BTreeMap<String, u64> = BTreeMap::new();
    for d in docs.as_array().unwrap() {
        *got.entry(d["queueId"].as_str().unwrap().to_string())
            .or_default() += d["queueDepth"].as_u64().unwrap();
        assert_eq!(
            d["queueDepth"],
            d["contactsInQueue"].as_u64().unwrap() + d["contactsScheduled"].as_u64().unwrap()
        );
    }
    assert_eq!(got, expected);
    assert_eq!(got.values().sum::<u64>(), 1, "only C8 is still waiting");
}

#[test]
fn archives_hold_exactly_each_contacts_distinct_entries() {
    let state = temp_dir("replay-archive");
    let (report, _) = replay_json(
        &state,
        &[
            "--flow-logs",
            fixture("flow-logs/all-contacts.ndjson").to_str().unwrap(),
        ],
        &[&fixture("events/sample-archive.ndjson")],
    );
    assert_eq!(report["actions"]["flow_logs"]["archived"], 4);
    let mut by_contact: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in std::fs::read_to_string(fixture("flow-logs/all-contacts.ndjson"))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
    {
        let e = FlowLogEntry::parse(line).unwrap();
        by_contact
            .entry(e.contact_id().to_string())
            .or_default()
            .insert(e.canonical_json().to_string());
    }
    let s3 = state.join("s3");
    let files = files_under(&s3);
    assert_eq!(files.len(), 4);
    for f in files {
        let mut text = String::new();
        flate2::read::GzDecoder::new(std::fs::File::open(&f).unwrap())
            .read_to_string(&mut text)
            .unwrap();
        let entries: Vec<FlowLogEntry> = text
            .lines()
            .map(|l| FlowLogEntry::parse(l).unwrap())
            .collect();
        let contact = entries[0].contact_id().to_string();
        assert!(f
            .file_name()
            .unwrap()
            .to_str()
            .unwrap()
            .starts_with(&format!("ContactFlowLog_{contact}_123456789012")));
        let got: BTreeSet<String> = entries
            .iter()
            .map(|e| e.canonical_json().to_string())
            .collect();
        assert_eq!(got.len(), entries.len(), "no duplicates in {}", f.display());
        assert_eq!(&got, &by_contact[&contact], "{}", f.display());
        assert!(
            entries
                .windows(2)
                .all(|w| w[0].timestamp() <= w[1].timestamp()),
            "ordered by Timestamp"
        );
    }
}

/// `replay --allow-side-effects` follows the Lambda's rule for events EventBridge replayed
/// (`replay-name`): a dry run unless `DENYLIST_STOP_REPLAYED=true`; a bad value is a usage error.
#[test]
fn replayed_events_stop_contacts_only_with_denylist_stop_replayed() {
    let dir = temp_dir("replay-stop-replayed");
    let mut event: Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("events/voice-inbound-initiated.json")).unwrap(),
    )
    .unwrap();
    event["detail"]["tags"]["customerNumber"] = "+14255550100".into();
    event["replay-name"] = "connect-archive-replay-20250611".into();
    let file = dir.join("replayed.json");
    std::fs::write(&file, event.to_string()).unwrap();
    let run = |state: &Path, stop_replayed: Option<&str>| {
        let add = cli(&[
            "denylist",
            "add",
            "+14255550100",
            "--state-dir",
            state.to_str().unwrap(),
        ]);
        assert!(
            add.status.success(),
            "{}",
            String::from_utf8_lossy(&add.stderr)
        );
        let mut cmd = Command::new(target_bin("connect-events"));
        cmd.args([
            "replay",
            "--report",
            "json",
            "--allow-side-effects",
            "--state-dir",
        ])
        .arg(state)
        .arg(&file)
        .current_dir(workspace_root())
        .env_remove("DENYLIST_STOP_REPLAYED");
        if let Some(v) = stop_replayed {
            cmd.env("DENYLIST_STOP_REPLAYED", v);
        }
        cmd.output().unwrap()
    };
    let out = run(&dir.join("default"), None);
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        report["actions"]["deny_list"]["dry_run_stops"], 1,
        "{report}"
    );
    assert_eq!(report["actions"]["deny_list"]["stopped"], 0, "{report}");
    let out = run(&dir.join("opt-in"), Some("true"));
    let report: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["actions"]["deny_list"]["stopped"], 1, "{report}");
    let out = run(&dir.join("bad"), Some("yes please"));
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("DENYLIST_STOP_REPLAYED"), "{stderr}");
}

#[test]
fn listed_caller_is_a_dry_run_unless_side_effects_are_allowed() {
    let dir = temp_dir("replay-deny");
    let state = dir.join("state");
    let mut event: Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("events/voice-inbound-initiated.json")).unwrap(),
    )
    .unwrap();
    event["detail"]["tags"]["customerNumber"] = "+1 (425) 555-0100".into();
    let file = dir.join("initiated.json");
    std::fs::write(&file, event.to_string()).unwrap();
    let add = cli(&[
        "denylist",
        "add",
        "+14255550100",
        "--reason",
        "abuse",
        "--state-dir",
        state.to_str().unwrap(),
    ]);
    assert!(
        add.status.success(),
        "{}",
        String::from_utf8_lossy(&add.stderr)
    );

    let (report, code) = replay_json(&state, &[], &[&file]);
    assert_eq!(code, 0, "{report}");
    assert_eq!(
        report["actions"]["deny_list"]["dry_run_stops"], 1,
        "{report}"
    );
    assert_eq!(report["actions"]["deny_list"]["stopped"], 0);

    let (report, _) = replay_json(&state, &["--allow-side-effects"], &[&file]);
    assert_eq!(report["actions"]["deny_list"]["stopped"], 1, "{report}");
    let (report, _) = replay_json(&state, &["--allow-side-effects"], &[&file]);
    assert_eq!(
        report["actions"]["deny_list"]["already_ended"], 1,
        "{report}"
    );

    let check = cli(&[
        "denylist",
        "check",
        "4255550100",
        "--state-dir",
        state.to_str().unwrap(),
    ]);
    assert_eq!(
        check.status.code(),
        Some(2),
        "a national number without a default region is a usage error"
    );
    let check = cli(&[
        "denylist",
        "check",
        "+1 425 555 0100",
        "--state-dir",
        state.to_str().unwrap(),
    ]);
    let v: Value = serde_json::from_slice(&check.stdout).unwrap();
    assert_eq!(v["listed"], true);
    assert_eq!(v["number"], "+14255550100");
    assert_eq!(v["reason"], "abuse");
    let list = cli(&[
        "denylist",
        "list",
        "--format",
        "json",
        "--state-dir",
        state.to_str().unwrap(),
    ]);
    let v: Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(v[0]["hitCount"], 1, "{v}");
}

#[test]
fn usage_errors_exit_2() {
    assert_eq!(cli(&["replay"]).status.code(), Some(2));
    assert_eq!(
        cli(&["replay", "--report", "xml", "x.ndjson"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(
        cli(&["number", "normalize", "not a number"]).status.code(),
        Some(2)
    );
    let ok = cli(&[
        "number",
        "normalize",
        "0049 1512 3456789",
        "--default-region",
        "US",
    ]);
    assert_eq!(String::from_utf8_lossy(&ok.stdout).trim(), "+4915123456789");
}

#[test]
fn flow_logs_collect_is_the_runbook_as_a_command() {
    let state = temp_dir("collect");
    let instance =
        "arn:aws:connect:us-east-1:123456789012:instance/8f2c6d1e-4b7a-4e39-9c5d-2a1f0b3e7d64";
    let contact = "dd5b1dcd-f03f-4425-9f47-f9fa62aeeee3";
    let logs = fixture("flow-logs");
    let (logs, state_arg) = (logs.to_str().unwrap(), state.to_str().unwrap());
    let args = [
        "flow-logs",
        "collect",
        "--instance-id",
        instance,
        "--contact-id",
        contact,
        "--flow-logs",
        logs,
        "--state-dir",
        state_arg,
    ];
    let out = cli(&args);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        stdout.contains("archived: 11 entries (1 with errors)"),
        "{stdout}"
    );
    let expected = state.join(format!("s3/connect-events-flow-logs/connect-flow-logs/8f2c6d1e-4b7a-4e39-9c5d-2a1f0b3e7d64/2025/06/10/ContactFlowLog_{contact}_123456789012.gz"));
    assert!(stdout.contains(&expected.display().to_string()), "{stdout}");
    assert!(expected.is_file());
    // Again: nothing new, the same object.
    let again = cli(&args);
    assert!(String::from_utf8_lossy(&again.stdout).contains("already archived"));
    // Unknown contact: exit 1 with a reason.
    let none = cli(&[
        "flow-logs",
        "collect",
        "--instance-id",
        instance,
        "--contact-id",
        "no-such-contact",
        "--flow-logs",
        logs,
        "--state-dir",
        state_arg,
    ]);
    assert_eq!(none.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&none.stderr).contains("no flow-log entries"));
}

/// One contact, one archive object: an outbound call that starts before midnight (UTC), hits an
/// answering-machine error at 23:59:50 and disconnects after midnight is archived by the error event,
/// again by the disconnect, and once more by `flow-logs collect`; all three write one key, dated by
/// the contact's `initiationTimestamp`, named for the instance's account.
#[test]
fn a_contact_spanning_midnight_has_one_archive_whichever_path_writes_it() {
    const INSTANCE: &str = "8f2c6d1e-4b7a-4e39-9c5d-2a1f0b3e7d64";
    const CONTACT: &str = "5b1d0c2e-7a44-4c1f-9d3e-6f0a1b2c3d4e";
    let dir = temp_dir("midnight");
    let instance_arn = format!("arn:aws:connect:us-east-1:123456789012:instance/{INSTANCE}");
    let event = |event_type: &str, time: &str, extra: Value| {
        let mut detail = serde_json::json!({
            "eventType": event_type,
            "contactId": CONTACT,
            "channel": "VOICE",
            "instanceArn": instance_arn,
            "initiationMethod": "OUTBOUND",
            "initiationTimestamp": "2025-06-10T23:59:30.000Z",
        });
        detail
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        serde_json::json!({
            "version": "0",
            "id": unique("evt"),
            "detail-type": "Amazon Connect Contact Event",
            "source": "aws.connect",
            "account": "123456789012",
            "time": time,
            "region": "us-east-1",
            "resources": [instance_arn],
            "detail": detail,
        })
        .to_string()
    };
    let amd = dir.join("amd.ndjson");
    std::fs::write(
        &amd,
        event(
            "CONNECTED_TO_SYSTEM",
            "2025-06-10T23:59:50Z",
            serde_json::json!({"answeringMachineDetectionStatus": "AMD_ERROR"}),
        ),
    )
    .unwrap();
    let disconnect = dir.join("disconnect.ndjson");
    std::fs::write(
        &disconnect,
        event(
            "DISCONNECTED",
            "2025-06-11T00:01:05Z",
            serde_json::json!({"disconnectTimestamp": "2025-06-11T00:01:04.000Z"}),
        ),
    )
    .unwrap();
    let logs = dir.join("flow-logs.ndjson");
    let entry = |module: &str, ts: &str| {
        serde_json::json!({
            "ContactId": CONTACT,
            "ContactFlowId": format!("{instance_arn}/contact-flow/0c7a6e1b-0000-4000-8000-000000000001"),
            "ContactFlowName": "Outbound campaign",
            "ContactFlowModuleType": module,
            "Identifier": unique("block"),
            "Timestamp": ts,
            "Parameters": {},
        })
        .to_string()
    };
    std::fs::write(
        &logs,
        [
            entry("SetLoggingBehavior", "2025-06-10T23:59:31.000Z"),
            entry("CheckAttribute", "2025-06-10T23:59:49.000Z"),
            entry("PlayPrompt", "2025-06-11T00:00:30.000Z"),
            entry("Disconnect", "2025-06-11T00:01:03.000Z"),
        ]
        .join("\n"),
    )
    .unwrap();
    let state = dir.join("state");
    let logs_arg = ["--flow-logs", logs.to_str().unwrap()];
    // The error event writes the archive; the disconnect finds the same object, already complete.
    for (events, outcome) in [(&amd, "archived"), (&disconnect, "unchanged")] {
        let (report, code) = replay_json(&state, &logs_arg, &[events]);
        assert_eq!(code, 0, "{report}");
        assert_eq!(report["actions"]["flow_logs"][outcome], 1, "{report}");
    }
    // The runbook as a command, given the bare instance id: the account comes from what the
    // backend knows of the contact.
    let out = cli(&[
        "flow-logs",
        "collect",
        "--instance-id",
        INSTANCE,
        "--contact-id",
        CONTACT,
        "--flow-logs",
        logs.to_str().unwrap(),
        "--state-dir",
        state.to_str().unwrap(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("already archived: 4 entries"),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let objects: Vec<String> = files_under(&state.join("s3"))
        .iter()
        .map(|p| p.strip_prefix(&state).unwrap().display().to_string())
        .collect();
    assert_eq!(
        objects,
        [format!(
            "s3/connect-events-flow-logs/connect-flow-logs/{INSTANCE}/2025/06/10/ContactFlowLog_{CONTACT}_123456789012.gz"
        )]
    );
}

/// What the CLI says about bad input never carries the number in clear, however it was written:
/// import rows of the wrong type (serde quotes them), unparseable formatted numbers, a number where
/// a region is needed, and an unreadable event of a replay.
#[test]
fn cli_errors_never_echo_a_number_in_any_format() {
    const NUMBERS: [&str; 3] = ["+14255550199", "+14255550188", "+14255550177"];
    let dir = temp_dir("cli-privacy");
    let state = dir.join("state");
    let state_arg = state.to_str().unwrap();
    let json_import = dir.join("numbers.json");
    std::fs::write(
        &json_import,
        r#"[14255550199, {"number": 14255550188}, {"number": "+1 (425) 555-0177 ext"},
            {"number": ["+1 (425) 555-0199"]}, {"number": "+1 425 555 0188", "ttl": "+1 (425) 555-0177"}]"#,
    )
    .unwrap();
    let csv_import = dir.join("numbers.csv");
    std::fs::write(
        &csv_import,
        "number,reason,ttl\n+1 (425) 555-0199-99999,fraud\n(425) 555-0188,fraud,(425) 555-0177\n",
    )
    .unwrap();
    let events = dir.join("events.ndjson");
    std::fs::write(
        &events,
        concat!(
            r#"{"version":"0","id":"1","detail-type":"Amazon Connect Contact Event","source":"aws.connect","account":"123456789012","time":"+1 (425) 555-0199","region":"us-east-1","resources":[],"detail":{}}"#,
            "\n",
            r#"{"version":"0","id":"2","detail-type":"Amazon Connect Contact Event","source":"aws.connect","account":"123456789012","time":"2025-06-10T00:00:00Z","region":"us-east-1","resources":[],"detail":{"eventType":"INITIATED","contactId":"c-1","channel":"+1 (425) 555-0188","instanceArn":"arn:aws:connect:us-east-1:123456789012:instance/i-1"}}"#,
            "\n",
        ),
    )
    .unwrap();
    let runs: Vec<Vec<&str>> = vec![
        vec!["denylist", "import", json_import.to_str().unwrap()],
        vec!["denylist", "import", csv_import.to_str().unwrap()],
        vec!["denylist", "add", "+1 (425) 555-0199-12345"],
        vec!["denylist", "add", "(425) 555-0188"],
        vec!["denylist", "check", "425.555.0177"],
        vec!["denylist", "remove", "+1 425 555 0177 77777"],
        vec![
            "denylist",
            "add",
            "+14255550199",
            "--ttl",
            "+1 (425) 555-0188",
        ],
        vec!["number", "normalize", "(425) 555-0177"],
        vec!["replay", events.to_str().unwrap()],
    ];
    for args in runs {
        let mut args = args.clone();
        if args[0] != "number" {
            args.extend(["--state-dir", state_arg]);
        }
        let out = cli(&args);
        let what = args.join(" ");
        assert!(!out.status.success(), "{what}: bad input must fail");
        // Errors go to stderr; replay reports them with the rest of its report on stdout.
        let said = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stderr),
            String::from_utf8_lossy(&out.stdout)
        );
        assert!(
            said.contains("invalid") || said.contains("error"),
            "{what}: says why: {said}"
        );
        connect_events_tests::privacy::assert_no_number(&what, &said, &NUMBERS);
    }
}

/// `count` queued voice contacts (`first`.. ids) in one NDJSON file.
fn queued_contacts(path: &Path, first: usize, count: usize) {
    let template = std::fs::read_to_string(fixture("events/voice-inbound-queued.json")).unwrap();
    let template: Value = serde_json::from_str(&template).unwrap();
    let lines: Vec<String> = (first..first + count)
        .map(|i| {
            let mut e = template.clone();
            let contact = format!("00000000-0000-4000-8000-{i:012}");
            e["id"] = format!("10000000-0000-4000-8000-{i:012}").into();
            e["detail"]["contactId"] = contact.clone().into();
            e["resources"][1] = format!(
                "arn:aws:connect:us-east-1:123456789012:instance/8f2c6d1e-4b7a-4e39-9c5d-2a1f0b3e7d64/contact/{contact}"
            )
            .into();
            e.to_string()
        })
        .collect();
    std::fs::write(path, lines.join("\n")).unwrap();
}

/// Two replays on one state directory at once keep every contact: the second waits for the
/// first's lock (and says so), then reads what it saved.
#[test]
fn concurrent_replays_on_one_state_directory_lose_nothing() {
    let dir = temp_dir("concurrent-replays");
    let (a, b) = (dir.join("a.ndjson"), dir.join("b.ndjson"));
    queued_contacts(&a, 0, 50);
    queued_contacts(&b, 50, 50);
    let state = dir.join("state");
    let state_arg = state.to_str().unwrap();
    let runs: Vec<_> = [&a, &b]
        .into_iter()
        .map(|file| {
            spawn_cli(&[
                "replay",
                "--report",
                "json",
                "--state-dir",
                state_arg,
                file.to_str().unwrap(),
            ])
        })
        .collect();
    runs.into_iter().for_each(wait_ok);
    let docs = queue_depth_docs(&state);
    let depth: u64 = docs
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["queueDepth"].as_u64().unwrap())
        .sum();
    assert_eq!(depth, 100, "{docs}");
}

/// Forty `denylist add` at once keep forty entries; with `CONNECT_EVENTS_LOCK_WAIT=0` a command
/// that finds the directory in use fails at once with exit 2, naming the holder.
#[test]
fn concurrent_denylist_writers_lose_nothing_and_a_busy_directory_is_named() {
    let state = temp_dir("concurrent-adds");
    let state_arg = state.to_str().unwrap().to_string();
    let children: Vec<_> = (0..40)
        .map(|i| {
            let number = format!("+1425555{:04}", 1000 + i);
            spawn_cli(&[
                "denylist",
                "add",
                &number,
                "--reason",
                "load",
                "--state-dir",
                &state_arg,
            ])
        })
        .collect();
    children.into_iter().for_each(wait_ok);
    let list = cli(&["denylist", "export", "--state-dir", &state_arg]);
    let entries: Value = serde_json::from_slice(&list.stdout).unwrap();
    assert_eq!(entries.as_array().unwrap().len(), 40, "{entries}");

    // Hold the directory with a slow replay (a FIFO-free way: a big archive), and knock.
    let big = state.join("big.ndjson");
    queued_contacts(&big, 0, 10_000);
    let holder = Command::new(target_bin("connect-events"))
        .args(["replay", "--report", "json", "--state-dir", &state_arg])
        .arg(&big)
        .current_dir(workspace_root())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn replay");
    let lock = state.join(".lock");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !std::fs::read_to_string(&lock).is_ok_and(|t| t.contains("replay")) {
        assert!(
            std::time::Instant::now() < deadline,
            "the replay never took the lock"
        );
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    let busy = Command::new(target_bin("connect-events"))
        .args(["denylist", "add", "+14255550100", "--state-dir", &state_arg])
        .env("CONNECT_EVENTS_LOCK_WAIT", "0")
        .current_dir(workspace_root())
        .output()
        .unwrap();
    let holder_out = holder.wait_with_output().unwrap();
    assert!(holder_out.status.success());
    assert_eq!(busy.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&busy.stderr);
    assert!(
        stderr.contains("in use by another connect-events command") && stderr.contains("replay"),
        "{stderr}"
    );
}

/// Make `dir` unwritable, even for root (immutable attribute), or writable again.
fn set_unwritable(dir: &Path, unwritable: bool) {
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    let ok = if root {
        let flag = if unwritable { "+i" } else { "-i" };
        Command::new("chattr")
            .arg(flag)
            .arg(dir)
            .status()
            .is_ok_and(|s| s.success())
    } else {
        use std::os::unix::fs::PermissionsExt;
        let mode = if unwritable { 0o555 } else { 0o755 };
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode)).is_ok()
    };
    assert!(ok, "cannot make {} (un)writable", dir.display());
}

/// A replay whose final save fails still prints its whole report, says on stderr that the state
/// was not saved, exits 3, and leaves no temporary file behind.
#[test]
fn a_failed_final_save_is_reported_with_its_own_exit_code() {
    let dir = temp_dir("save-fails");
    let archive = dir.join("queued.ndjson");
    queued_contacts(&archive, 0, 5);
    let state = dir.join("state");
    let connect = state.join("connect");
    std::fs::create_dir_all(&connect).unwrap();
    set_unwritable(&connect, true);
    let out = cli(&[
        "replay",
        "--report",
        "json",
        "--state-dir",
        state.to_str().unwrap(),
        archive.to_str().unwrap(),
    ]);
    set_unwritable(&connect, false);
    assert_eq!(out.status.code(), Some(3), "{out:?}");
    let report: Value = serde_json::from_slice(&out.stdout).expect("the report is printed");
    assert_eq!(report["events"]["valid"], 5, "{report}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("the state was NOT saved"), "{stderr}");
    assert!(
        std::fs::read_dir(&connect).unwrap().next().is_none(),
        "no temporary file is left in {}",
        connect.display()
    );
}

/// A replay killed with SIGKILL at any point leaves a state directory the next command reads, and
/// replaying again gives exactly the state of one clean run (several kill points, from start-up
/// to the final save).
#[test]
fn a_replay_killed_at_any_point_then_rerun_equals_a_clean_run() {
    // `CONNECT_EVENTS_KILL_EVENTS=1000000` runs it at 1M contacts (with
    // `CONNECT_EVENTS_BIN_PROFILE=release` binaries; minutes): the kill points are fractions of the
    // clean run's duration, so they span start-up, the replay and the final save at any size.
    let contacts: usize = std::env::var("CONNECT_EVENTS_KILL_EVENTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20_000);
    let dir = temp_dir("kill-9");
    let big = dir.join("busy.ndjson");
    queued_contacts(&big, 0, contacts);
    let sample = fixture("events/sample-archive.ndjson");
    let logs = fixture("flow-logs/all-contacts.ndjson");
    let args = |state: &Path| -> Vec<String> {
        vec![
            "replay".into(),
            "--report".into(),
            "json".into(),
            "--state-dir".into(),
            state.display().to_string(),
            "--flow-logs".into(),
            logs.display().to_string(),
            sample.display().to_string(),
            big.display().to_string(),
        ]
    };
    let clean = dir.join("clean");
    let started = std::time::Instant::now();
    let out = cli(&args(&clean).iter().map(String::as_str).collect::<Vec<_>>());
    let clean_ms = started.elapsed().as_millis() as u64;
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let expected = tree_digest(&clean);
    let delays: Vec<u64> = [0.005, 0.05, 0.25, 0.6, 0.9, 0.98]
        .iter()
        .map(|f| ((clean_ms as f64 * f) as u64).max(5))
        .collect();
    eprintln!("{contacts} contacts: clean run {clean_ms} ms, kills at {delays:?} ms");
    for (i, delay_ms) in delays.into_iter().enumerate() {
        let state = dir.join(format!("killed-{i}"));
        let mut child = Command::new(target_bin("connect-events"))
            .args(args(&state))
            .current_dir(workspace_root())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("spawn replay");
        std::thread::sleep(std::time::Duration::from_millis(delay_ms));
        let _ = child.kill(); // SIGKILL; the replay may also have finished already
        let _ = child.wait();
        // The next command reads the directory without error…
        let show = cli(&[
            "queue-depth",
            "show",
            "--state-dir",
            state.to_str().unwrap(),
        ]);
        assert!(
            show.status.success(),
            "after a kill at {delay_ms} ms: {}",
            String::from_utf8_lossy(&show.stderr)
        );
        // …and a rerun converges to the clean run, byte for byte.
        let out = cli(&args(&state).iter().map(String::as_str).collect::<Vec<_>>());
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let got = tree_digest(&state);
        let differing: Vec<&String> = expected
            .keys()
            .chain(got.keys())
            .filter(|k| expected.get(*k) != got.get(*k))
            .collect();
        assert!(
            differing.is_empty(),
            "kill at {delay_ms} ms: differs in {differing:?}"
        );
    }
}

/// Order independence: the same archive replayed in three orders leaves the same state, byte for
/// byte, but for the fields that say when and why a document was last refreshed. Those are
/// documented as order-dependent: `refreshedAt` and `trigger` (the last refresh), and the model's
/// clock (`latestMs`), which moves 1 ms forward for each state change that arrives out of order so
/// that external versioning accepts the corrected document — `_version`, `snapshotTime` and
/// `oldestContactAgeSeconds` follow it.
#[test]
fn replaying_in_another_order_leaves_the_same_state() {
    fn normalized(state: &Path) -> BTreeMap<String, Vec<u8>> {
        tree_digest(state)
            .into_iter()
            .map(|(path, bytes)| {
                if !path.ends_with(".json") || path.starts_with("s3") {
                    return (path, bytes);
                }
                let mut v: Value = serde_json::from_slice(&bytes).unwrap();
                strip_order_dependent(&mut v);
                (path, serde_json::to_vec_pretty(&v).unwrap())
            })
            .collect()
    }
    fn strip_order_dependent(v: &mut Value) {
        match v {
            Value::Object(map) => {
                for key in [
                    "latestMs",
                    "_version",
                    "snapshotTime",
                    "oldestContactAgeSeconds",
                    "refreshedAt",
                    "trigger",
                ] {
                    map.remove(key);
                }
                map.values_mut().for_each(strip_order_dependent);
            }
            Value::Array(items) => items.iter_mut().for_each(strip_order_dependent),
            _ => {}
        }
    }
    let dir = temp_dir("order");
    let lines: Vec<String> = std::fs::read_to_string(fixture("events/sample-archive.ndjson"))
        .unwrap()
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(str::to_string)
        .collect();
    let logs = fixture("flow-logs/all-contacts.ndjson");
    let mut states = Vec::new();
    for (i, order) in ["as archived", "reversed", "interleaved"]
        .into_iter()
        .enumerate()
    {
        let mut ordered = lines.clone();
        match order {
            "reversed" => ordered.reverse(),
            "interleaved" => {
                let (even, odd): (Vec<_>, Vec<_>) = ordered
                    .iter()
                    .cloned()
                    .enumerate()
                    .partition(|(j, _)| j % 2 == 0);
                ordered = odd.into_iter().chain(even).map(|(_, l)| l).collect();
            }
            _ => {}
        }
        let file = dir.join(format!("{i}.ndjson"));
        std::fs::write(&file, ordered.join("\n")).unwrap();
        let state = dir.join(format!("state-{i}"));
        let (report, code) =
            replay_json(&state, &["--flow-logs", logs.to_str().unwrap()], &[&file]);
        assert_eq!(code, 0, "{order}: {report}");
        states.push((order, normalized(&state)));
    }
    let (_, first) = &states[0];
    assert!(
        first.keys().any(|k| k.starts_with("s3/")),
        "archives are compared too"
    );
    for (order, state) in &states[1..] {
        let differing: Vec<&String> = first
            .keys()
            .chain(state.keys())
            .filter(|k| first.get(*k) != state.get(*k))
            .collect();
        assert!(differing.is_empty(), "{order}: differs in {differing:?}");
    }
}

/// Analytics on the embedded backend: contact records (re-delivered newer and older, in any
/// order) and agent events (heartbeats, a logged-out agent, a saved Kinesis event) ingested twice
/// give the seven metrics exactly; days follow the time zone; bad records are `FILE:LINE`.
#[test]
fn analytics_ingest_and_report_the_seven_metrics() {
    let state = temp_dir("analytics");
    let state_arg = state.to_str().unwrap();
    let ctrs = fixture("analytics/contact-records.ndjson");
    let events = fixture("analytics/agent-events.ndjson");
    let kinesis = fixture("analytics/kinesis-agent-event.json");
    let bad = state.join("bad.ndjson");
    std::fs::write(
        &bad,
        "{\"ContactId\": 14255550199}\n{\"neither\": true}\nnot json +1 (425) 555-0199\n",
    )
    .unwrap();
    for _ in 0..2 {
        let out = cli(&[
            "analytics",
            "ingest",
            ctrs.to_str().unwrap(),
            events.to_str().unwrap(),
            kinesis.to_str().unwrap(),
            "--state-dir",
            state_arg,
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = cli(&[
        "analytics",
        "ingest",
        bad.to_str().unwrap(),
        "--state-dir",
        state_arg,
    ]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    for line in 1..=3 {
        assert!(stderr.contains(&format!("bad.ndjson:{line}:")), "{stderr}");
    }
    connect_events_tests::privacy::assert_no_number("analytics ingest", &stderr, &["+14255550199"]);

    let report = |tz: &str| -> Value {
        let out = cli(&[
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
            "--state-dir",
            state_arg,
        ]);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let utc = report("UTC");
    let keys: BTreeSet<&str> = utc
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    assert_eq!(
        keys,
        BTreeSet::from([
            "calls",
            "calls_per_day",
            "avg_after_contact_work_s",
            "avg_agent_interaction_s",
            "agents",
            "agents_with_contacts",
            "calls_in_queue"
        ])
    );
    assert_eq!(utc["calls"], 6, "{utc}");
    assert_eq!(
        utc["calls_per_day"],
        serde_json::json!([{"date": "2025-06-10", "calls": 5}, {"date": "2025-06-11", "calls": 1}])
    );
    // Newest copies only, outbound excluded: (60 + 20 + 10) / 3 and (180 + 300 + 200) / 3.
    assert_eq!(utc["avg_after_contact_work_s"], 30.0);
    let interaction = utc["avg_agent_interaction_s"].as_f64().unwrap();
    assert!((interaction - 680.0 / 3.0).abs() < 1e-9, "{utc}");
    assert_eq!(
        utc["agents"], 3,
        "A, B and C were online; D only sent heartbeats and Offline"
    );
    assert_eq!(utc["agents_with_contacts"], 3);
    assert_eq!(
        utc["calls_in_queue"], 0,
        "nothing replayed into the queue-depth index"
    );
    let tokyo = report("Asia/Tokyo");
    assert_eq!(
        tokyo["calls_per_day"],
        serde_json::json!([{"date": "2025-06-10", "calls": 2}, {"date": "2025-06-11", "calls": 4}])
    );
    // An empty window: nulls, not zeros, for the averages.
    let out = cli(&[
        "analytics",
        "report",
        "--from",
        "2024-01-01T00:00:00Z",
        "--to",
        "2024-01-02T00:00:00Z",
        "--format",
        "json",
        "--state-dir",
        state_arg,
    ]);
    let empty: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(empty["avg_after_contact_work_s"], Value::Null);
    assert_eq!(empty["calls"], 0);
}

/// `replay` takes contact-record and agent-event archives beside EventBridge events and routes them
/// as Kinesis would, through the template's event sources (the streams the storage configs write);
/// the metrics then equal those of `analytics ingest` on the same files, and a second replay changes
/// nothing.
#[test]
fn replay_routes_streamed_records_through_the_templates_kinesis_sources() {
    let via_replay = temp_dir("analytics-replay");
    let via_ingest = temp_dir("analytics-ingest");
    let records = [
        fixture("analytics/contact-records.ndjson"),
        fixture("analytics/agent-events.ndjson"),
        fixture("analytics/kinesis-agent-event.json"),
    ];
    let records: Vec<&str> = records.iter().map(|p| p.to_str().unwrap()).collect();
    let events = fixture("events/voice-inbound-initiated.json");
    let mut replay = vec!["replay", "--report", "json"];
    replay.extend(records.iter().copied());
    replay.push(events.to_str().unwrap());
    replay.extend(["--state-dir", via_replay.to_str().unwrap()]);
    let first = cli(&replay);
    assert!(
        first.status.success(),
        "{}",
        String::from_utf8_lossy(&first.stderr)
    );
    let report: Value = serde_json::from_slice(&first.stdout).unwrap();
    assert_eq!(report["events"]["valid"], 1, "{report}");
    assert_eq!(report["records"]["malformed"], 0, "{report}");
    assert!(
        report["records"]["valid"].as_u64().unwrap() > 10,
        "{report}"
    );
    assert!(
        report["rules"]["AnalyticsIndexerFunction.ContactRecords"]
            .as_u64()
            .unwrap()
            > 5,
        "{report}"
    );
    assert!(
        report["rules"]["AnalyticsIndexerFunction.AgentEvents"]
            .as_u64()
            .unwrap()
            > 3,
        "{report}"
    );
    assert!(
        report["actions"]["analytics"]["contact_records_stored"]
            .as_u64()
            .unwrap()
            > 5,
        "{report}"
    );

    let again = cli(&replay);
    let report: Value = serde_json::from_slice(&again.stdout).unwrap();
    assert_eq!(
        report["actions"]["analytics"]["contact_records_stored"], 0,
        "{report}"
    );
    assert_eq!(
        report["actions"]["analytics"]["agent_events_stored"], 0,
        "{report}"
    );

    let mut ingest = vec!["analytics", "ingest"];
    ingest.extend(records.iter().copied());
    ingest.extend(["--state-dir", via_ingest.to_str().unwrap()]);
    assert!(cli(&ingest).status.success());
    let metrics = |state: &Path| -> Value {
        let out = cli(&[
            "analytics",
            "report",
            "--from",
            "2025-06-10T00:00:00Z",
            "--to",
            "2025-06-12T00:00:00Z",
            "--format",
            "json",
            "--state-dir",
            state.to_str().unwrap(),
        ]);
        serde_json::from_slice(&out.stdout).unwrap()
    };
    let (a, b) = (metrics(&via_replay), metrics(&via_ingest));
    for key in [
        "calls",
        "calls_per_day",
        "avg_after_contact_work_s",
        "avg_agent_interaction_s",
        "agents",
        "agents_with_contacts",
    ] {
        assert_eq!(a[key], b[key], "{key}");
    }
}
