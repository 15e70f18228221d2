//! Replay benchmark (harness = false): the embedded backend against the parse floor, in one run.
//!
//! `cargo bench -p connect-events-core --bench replay` re-executes itself once per size (10k, 100k and
//! 1M events) so that each peak-RSS figure (`VmHWM`) belongs to one size. `replay --events N` runs one
//! size. Each run writes a busy-hour archive (NDJSON, four events per voice contact: INITIATED,
//! QUEUED, CONNECTED_TO_AGENT, DISCONNECTED, ~1.2 KB each, 20 queues, contacts interleaved over an
//! hour), then measures, on the same file:
//!
//! * **parse floor** — read the file and `serde_json::from_str::<Value>` every line (what any tool
//!   reading the archive must do at least);
//! * **replay** — what `connect-events replay` does: read the paths, route every event through the
//!   rules of `infra/template.yaml`, run the capabilities on the embedded backend, save the state.
//!
//! It prints both times, the ratio (goal ≤ 3 at 100k), events/s and peak RSS.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};
use std::time::Instant;

use connect_events_core::event::input::read_paths;
use connect_events_core::local::LocalBackend;
use connect_events_core::replay::{ReplayOptions, Replayer};
use connect_events_core::rules::RuleSet;
use connect_events_core::settings::Settings;
use serde_json::Value;

const SIZES: [usize; 3] = [10_000, 100_000, 1_000_000];
const RATIO_GOAL: f64 = 3.0;
const QUEUES: usize = 20;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().position(|a| a == "--events") {
        Some(i) => match args
            .get(i + 1)
            .and_then(|n| n.replace('_', "").parse().ok())
        {
            Some(n) => {
                run(n);
                ExitCode::SUCCESS
            }
            None => {
                eprintln!("usage: replay [--events N]");
                ExitCode::from(2)
            }
        },
        None => {
            println!(
                "{:>9}  {:>10}  {:>10}  {:>6}  {:>12}  {:>9}",
                "events", "parse s", "replay s", "ratio", "replay ev/s", "peak RSS"
            );
            for n in SIZES {
                let me = std::env::current_exe().expect("own path");
                let status = Command::new(me).args(["--events", &n.to_string()]).status();
                if !status.is_ok_and(|s| s.success()) {
                    eprintln!("the {n}-event run failed");
                    return ExitCode::FAILURE;
                }
            }
            println!("goal: ratio ≤ {RATIO_GOAL} at 100k; time and RSS grow linearly with events");
            ExitCode::SUCCESS
        }
    }
}

fn run(events: usize) {
    let dir = std::env::temp_dir().join(format!("replay-bench-{}-{events}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let archive = dir.join("busy-hour.ndjson");
    write_archive(&archive, events);

    // The floor: read and parse every line.
    let started = Instant::now();
    let mut parsed = 0usize;
    let reader = std::io::BufReader::new(std::fs::File::open(&archive).unwrap());
    for line in std::io::BufRead::lines(reader) {
        let v: Value = serde_json::from_str(&line.unwrap()).expect("valid JSON");
        parsed += usize::from(v.is_object());
    }
    let parse = started.elapsed().as_secs_f64();
    assert_eq!(parsed, events);

    // The replay, as the CLI runs it.
    let template = Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra/template.yaml");
    let rules = RuleSet::load(&template).expect("template rules");
    let settings = Settings::from_lookup(|_| None).expect("default settings");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let started = Instant::now();
    let backend = LocalBackend::open(dir.join("state")).expect("state dir");
    let caps = backend.capabilities(&settings, Vec::new());
    let replayer = Replayer::new(&rules, &caps, Some(&backend), ReplayOptions::default());
    let report = runtime.block_on(replayer.run(read_paths(std::slice::from_ref(&archive))));
    backend.save().expect("save");
    let replay = started.elapsed().as_secs_f64();
    assert_eq!(report.events.valid, events, "every event replayed");
    assert!(report.errors.is_empty(), "{:?}", report.errors.first());

    let ratio = replay / parse;
    let rss = peak_rss_mb().map_or("n/a".into(), |m| format!("{m:.0} MB"));
    println!(
        "{events:>9}  {parse:>10.3}  {replay:>10.3}  {ratio:>6.2}  {:>12.0}  {rss:>9}",
        events as f64 / replay
    );
    let _ = std::io::stdout().flush();
    let _ = std::fs::remove_dir_all(&dir);
}

/// Four events per contact, 20 s apart; contacts spread evenly over the hour.
fn write_archive(path: &PathBuf, events: usize) {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures/events/voice-inbound-connected-to-agent.json");
    let template: Value = serde_json::from_str(&std::fs::read_to_string(fixture).unwrap()).unwrap();
    let instance = template["detail"]["instanceArn"]
        .as_str()
        .unwrap()
        .to_string();
    let mut out = std::io::BufWriter::new(std::fs::File::create(path).unwrap());
    let contacts = events.div_ceil(4);
    let start = chrono::DateTime::parse_from_rfc3339("2025-06-10T13:00:00Z")
        .unwrap()
        .to_utc();
    let mut written = 0;
    // Row r holds step 0 of contact r, step 1 of contact r-1, …: roughly in time order, as an
    // archive is, with four contacts in flight at any point.
    'all: for row in 0..contacts + 3 {
        for step in 0..4 {
            let Some(c) = row.checked_sub(step).filter(|c| *c < contacts) else {
                continue;
            };
            if written == events {
                break 'all;
            }
            let begin =
                start + chrono::Duration::milliseconds((c as i64 * 3_600_000) / contacts as i64);
            let at = begin + chrono::Duration::seconds(20 * step as i64);
            let stamp = |t: chrono::DateTime<chrono::Utc>| {
                t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
            };
            let contact = format!("00000000-0000-4000-8000-{c:012}");
            let queue = format!(
                "{instance}/queue/00000000-0000-4000-9000-{:012}",
                c % QUEUES
            );
            let mut e = template.clone();
            e["id"] = format!("{step:08}-0000-4000-8000-{c:012}").into();
            e["time"] = at.to_rfc3339_opts(chrono::SecondsFormat::Secs, true).into();
            e["resources"][1] = format!("{instance}/contact/{contact}").into();
            let d = &mut e["detail"];
            d["contactId"] = contact.into();
            d["initiationTimestamp"] = stamp(begin).into();
            d["connectedToSystemTimestamp"] = stamp(begin).into();
            d["queueInfo"]["queueArn"] = queue.into();
            d["queueInfo"]["enqueueTimestamp"] =
                stamp(begin + chrono::Duration::seconds(20)).into();
            d["eventType"] =
                ["INITIATED", "QUEUED", "CONNECTED_TO_AGENT", "DISCONNECTED"][step].into();
            if step < 2 {
                d.as_object_mut().unwrap().remove("agentInfo");
            }
            if step < 1 {
                d.as_object_mut().unwrap().remove("queueInfo");
            }
            if step == 3 {
                d["disconnectTimestamp"] = stamp(at).into();
            }
            writeln!(out, "{e}").unwrap();
            written += 1;
        }
    }
    out.flush().unwrap();
}

/// `VmHWM` (peak resident set size) of this process, in MB.
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}
