//! `connect-events events export`: the captured events of a window as a local replay archive —
//! from the capture log group, or (`--archive`) from the EventBridge archive through a replay to
//! the capture rule alone (`core::capture::archive`).

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use std::time::Duration;

use chrono::{DateTime, Utc};
use clap::Subcommand;
use connect_events_core::capture::archive::{self, ArchiveExport, Polling, Replay, ReplayProgress};
use connect_events_core::capture::{export, ExportSummary};

use super::{CliResult, Failure};
use crate::backend::BackendKind;

#[derive(Debug, Subcommand)]
pub enum EventsCommand {
    /// Write the events the template's capture rule stored in CloudWatch Logs, in a window, as
    /// NDJSON: one EventBridge event per line, unchanged, each `id` once, ordered by time.
    Export {
        /// The capture log group (default: CAPTURE_LOG_GROUP; the stack output CaptureLogGroupName).
        #[arg(long)]
        log_group: Option<String>,
        /// Window start (RFC 3339).
        #[arg(long)]
        start: DateTime<Utc>,
        /// Window end (RFC 3339).
        #[arg(long)]
        end: DateTime<Utc>,
        /// Output file (default: stdout).
        #[arg(long)]
        out: Option<PathBuf>,
        /// The capture lives in CloudWatch Logs: only `aws`.
        #[arg(long, value_enum, default_value_t = BackendKind::Aws)]
        backend: BackendKind,
        /// Export the window from this EventBridge archive (the stack output
        /// ConnectEventArchiveArn): replay it onto its bus to the capture rule only, wait for the
        /// replay, then export the copies it delivered, as they were archived.
        #[arg(long)]
        archive: Option<String>,
        /// With --archive: the capture rule (default CAPTURE_RULE_ARN; the stack output
        /// CaptureRuleArn).
        #[arg(long, requires = "archive")]
        capture_rule: Option<String>,
        /// With --archive: export replay NAME, started earlier, instead of starting one.
        #[arg(long, requires = "archive")]
        replay_name: Option<String>,
        /// With --archive: seconds to let the last deliveries reach the log group after the
        /// replay completed.
        #[arg(long, default_value_t = 30)]
        settle: u64,
        /// With --archive: minutes to wait for the replay at most (EventBridge replays a window
        /// minute by minute, in about the window's length).
        #[arg(long, default_value_t = 240)]
        wait_minutes: u64,
        /// With --archive: seconds between DescribeReplay calls.
        #[arg(long, default_value_t = 10)]
        poll: u64,
    },
}

fn env_or(value: Option<String>, name: &str) -> Option<String> {
    value.or_else(|| std::env::var(name).ok().filter(|v| !v.is_empty()))
}

pub async fn run(cmd: EventsCommand) -> CliResult {
    let EventsCommand::Export {
        log_group,
        start,
        end,
        out,
        backend,
        archive,
        capture_rule,
        replay_name,
        settle,
        wait_minutes,
        poll,
    } = cmd;
    if backend != BackendKind::Aws {
        return Err(Failure::usage(
            "events export reads the capture log group in CloudWatch Logs: use --backend aws",
        ));
    }
    if end < start {
        return Err(Failure::usage("--end is before --start"));
    }
    let log_group = env_or(log_group, "CAPTURE_LOG_GROUP").ok_or_else(|| {
        Failure::usage(
            "pass --log-group (the stack output CaptureLogGroupName) or set CAPTURE_LOG_GROUP",
        )
    })?;
    let replay = match (&archive, replay_name) {
        (None, _) => None,
        (Some(_), Some(name)) => Some(Replay::Resume(name)),
        (Some(_), None) => Some(Replay::Start {
            capture_rule: env_or(capture_rule, "CAPTURE_RULE_ARN").ok_or_else(|| {
                Failure::usage(
                    "--archive needs --capture-rule (the stack output CaptureRuleArn) or CAPTURE_RULE_ARN",
                )
            })?,
        }),
    };
    let config = crate::aws::config::load(crate::aws::config::CallProfile::BACKGROUND).await;
    let source = crate::aws::logs::CloudWatchCapture::new(&config);
    let mut writer: Box<dyn Write> = match &out {
        Some(path) => Box::new(std::io::BufWriter::new(
            std::fs::File::create(path)
                .map_err(|e| Failure::usage(format!("{}: {e}", path.display())))?,
        )),
        None => Box::new(std::io::BufWriter::new(std::io::stdout().lock())),
    };
    let tty = std::io::stderr().is_terminal();
    let mut progress = |s: &ExportSummary| {
        if tty {
            eprint!(
                "\rread {} events, wrote {} ({} pages)",
                s.read, s.written, s.pages
            );
        }
    };
    let summary = match archive.zip(replay) {
        Some((archive_arn, replay)) => {
            let job = ArchiveExport {
                archive_arn,
                start,
                end,
                replay,
                polling: Polling {
                    every: Duration::from_secs(poll.max(1)),
                    at_most: Duration::from_secs(wait_minutes.saturating_mul(60)),
                },
                settle: Duration::from_secs(settle),
            };
            let replays = crate::aws::eventbridge::EventBridgeReplays::new(&config);
            let mut on_replay = |name: &str, p: Option<&ReplayProgress>| match p {
                None => eprintln!("replay {name}: replaying {start} .. {end} to the capture rule"),
                Some(p) if tty => {
                    let at = p.last_replayed.map(|t| t.to_rfc3339()).unwrap_or_default();
                    eprint!("\rreplay {name}: {:?} {at}   ", p.state);
                }
                Some(_) => {}
            };
            archive::export_archive(
                &replays,
                &source,
                &log_group,
                &job,
                &mut writer,
                &mut on_replay,
                &mut progress,
            )
            .await?
        }
        None => export(&source, &log_group, start, end, &mut writer, &mut progress).await?,
    };
    drop(writer);
    if tty {
        eprintln!();
    }
    for bad in &summary.bad {
        eprintln!(
            "{log_group}:{}@{}: {}",
            bad.stream, bad.timestamp_ms, bad.reason
        );
    }
    if summary.malformed > summary.bad.len() {
        eprintln!("… and {} more", summary.malformed - summary.bad.len());
    }
    eprintln!(
        "exported {} events ({} read, {} duplicates, {} left out, {} malformed)",
        summary.written, summary.read, summary.duplicates, summary.skipped, summary.malformed
    );
    Ok(if summary.malformed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
