//! Capture export benchmark (harness = false): `events export` over a window of 100k and 1M captured
//! events, in bounded memory, side by side with what a script would do (collect the window, sort
//! by time, drop repeated ids, write), in one run.
//!
//! `cargo bench -p connect-events-core --bench capture_export` re-executes itself once per size and
//! variant so that each peak-RSS figure (`VmHWM`) is its own. The source is in process (pages of
//! 10,000 log events, as `FilterLogEvents` returns them, generated lazily: the input is never held
//! whole), so the figures are the exporter's own; the adapter's HTTP paging is tested against moto in
//! `tests/tests/capture_export.rs`. Events are ~1.2 KB EventBridge contact events over one hour,
//! delivered slightly out of order, 1% delivered twice. The exporter's memory is its reorder buffer
//! (5 minutes of events: here 1/12 of the window, as every size is squeezed into one hour) plus 16
//! bytes per distinct id; the script's is the whole window.

use std::process::{Command, ExitCode};
use std::sync::Mutex;
use std::time::Instant;

use async_trait::async_trait;
use chrono::{DateTime, TimeZone, Utc};
use connect_events_core::capture::{export, CapturePage, CapturedEvent, CapturedEvents};
use connect_events_core::PortError;

const SIZES: [usize; 2] = [100_000, 1_000_000];
const PAGE: usize = 10_000;

/// Generates the window's log events page by page.
struct Generated {
    total: usize,
    next: Mutex<usize>,
}

fn event(i: usize, start: DateTime<Utc>, total: usize) -> CapturedEvent {
    // Spread over an hour; every 100th event is a second delivery of the one before; neighbours
    // swap places every 7 events (delivery jitter of a second or so).
    let id_n = if i % 100 == 99 { i - 1 } else { i };
    let slot = if i % 7 == 3 {
        i + 1
    } else if i % 7 == 4 {
        i - 1
    } else {
        i
    };
    let at = start + chrono::Duration::milliseconds((slot as i64 * 3_600_000) / total as i64);
    let time = at.format("%Y-%m-%dT%H:%M:%SZ");
    let contact = format!("{:08x}-0000-4000-8000-{:012x}", id_n / 4, id_n);
    let message = format!(
        r#"{{"version":"0","id":"{id:036x}","detail-type":"Amazon Connect Contact Event","source":"aws.connect","account":"123456789012","time":"{time}","region":"us-east-1","resources":["arn:aws:connect:us-east-1:123456789012:instance/8f2c6d1e-4b7a-4e39-9c5d-2a1f0b3e7d64","arn:aws:connect:us-east-1:123456789012:instance/8f2c6d1e-4b7a-4e39-9c5d-2a1f0b3e7d64/contact/{contact}"],"detail":{{"eventType":"QUEUED","contactId":"{contact}","channel":"VOICE","instanceArn":"arn:aws:connect:us-east-1:123456789012:instance/8f2c6d1e-4b7a-4e39-9c5d-2a1f0b3e7d64","initiationMethod":"INBOUND","initiationTimestamp":"{time}","queueInfo":{{"queueArn":"arn:aws:connect:us-east-1:123456789012:instance/8f2c6d1e-4b7a-4e39-9c5d-2a1f0b3e7d64/queue/a743aa55-fa47-4bd5-9323-39d0f2c689e1","queueType":"STANDARD","enqueueTimestamp":"{time}"}},"tags":{{"aws:connect:instanceId":"8f2c6d1e-4b7a-4e39-9c5d-2a1f0b3e7d64","Dept":"billing","CostCenter":"cc-1234","Campaign":"spring-renewals"}},"systemEndpoint":{{"type":"TELEPHONE_NUMBER"}},"padding":"{pad}"}}}}"#,
        id = id_n,
        pad = "x".repeat(420),
    );
    CapturedEvent {
        timestamp_ms: at.timestamp_millis(),
        stream: "capture".into(),
        message,
    }
}

#[async_trait]
impl CapturedEvents for Generated {
    async fn page(
        &self,
        _: &str,
        start_ms: i64,
        _: i64,
        _: Option<String>,
    ) -> Result<CapturePage, PortError> {
        let start = Utc.timestamp_millis_opt(start_ms).unwrap();
        let mut next = self.next.lock().unwrap();
        let from = *next;
        let to = (from + PAGE).min(self.total);
        *next = to;
        Ok(CapturePage {
            events: (from..to).map(|i| event(i, start, self.total)).collect(),
            next: (to < self.total).then(|| to.to_string()),
        })
    }
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let (Some(variant), Some(n)) = (
        args.first(),
        args.get(1).and_then(|n| n.parse::<usize>().ok()),
    ) {
        run(variant, n);
        return ExitCode::SUCCESS;
    }
    println!("| events | exporter | time | events/s | written | peak RSS |");
    println!("| ---: | --- | ---: | ---: | ---: | ---: |");
    for n in SIZES {
        for variant in ["events-export", "collect-sort-dedup"] {
            let me = std::env::current_exe().expect("own path");
            let status = Command::new(me).args([variant, &n.to_string()]).status();
            if !status.is_ok_and(|s| s.success()) {
                eprintln!("the {variant} {n} run failed");
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}

fn run(variant: &str, n: usize) {
    let start = Utc.with_ymd_and_hms(2025, 6, 10, 14, 0, 0).unwrap();
    let end = start + chrono::Duration::hours(1);
    let source = Generated {
        total: n,
        next: Mutex::new(0),
    };
    let mut out = std::io::BufWriter::new(std::fs::File::create("/dev/null").unwrap());
    let started = Instant::now();
    let written = match variant {
        "events-export" => {
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            let summary = rt
                .block_on(export(
                    &source,
                    "capture",
                    start,
                    end,
                    &mut out,
                    &mut |_| {},
                ))
                .expect("export");
            summary.written
        }
        _ => {
            // The script: keep every event of the window, sort by (time, id), drop repeated ids.
            let rt = tokio::runtime::Builder::new_current_thread()
                .build()
                .unwrap();
            let mut all: Vec<(i64, String, String)> = Vec::new();
            let mut token = None;
            loop {
                let page = rt
                    .block_on(source.page(
                        "capture",
                        start.timestamp_millis(),
                        end.timestamp_millis(),
                        token.take(),
                    ))
                    .unwrap();
                for e in page.events {
                    let v: serde_json::Value = serde_json::from_str(&e.message).unwrap();
                    let time = v["time"]
                        .as_str()
                        .unwrap()
                        .parse::<DateTime<Utc>>()
                        .unwrap()
                        .timestamp_millis();
                    all.push((time, v["id"].as_str().unwrap().to_string(), e.message));
                }
                match page.next {
                    Some(t) => token = Some(t),
                    None => break,
                }
            }
            all.sort();
            let mut ids = std::collections::HashSet::new();
            all.retain(|(_, id, _)| ids.insert(id.clone()));
            for (_, _, line) in &all {
                use std::io::Write;
                out.write_all(line.as_bytes()).unwrap();
                out.write_all(b"\n").unwrap();
            }
            all.len()
        }
    };
    let secs = started.elapsed().as_secs_f64();
    let rss = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmHWM:")).map(|l| {
                l.split_whitespace()
                    .nth(1)
                    .unwrap_or("0")
                    .parse::<f64>()
                    .unwrap_or(0.0)
                    / 1024.0
            })
        })
        .unwrap_or(0.0);
    println!(
        "| {n} | {variant} | {secs:.2} s | {:.0} | {written} | {rss:.0} MB |",
        n as f64 / secs
    );
}
