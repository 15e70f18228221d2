//! `connect-events events export`: the captured events of a window as a local replay archive.

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;

use chrono::{DateTime, Utc};
use clap::Subcommand;
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
    },
}

pub async fn run(cmd: EventsCommand) -> CliResult {
    let EventsCommand::Export {
        log_group,
        start,
        end,
        out,
        backend,
    } = cmd;
    if backend != BackendKind::Aws {
        return Err(Failure::usage(
            "events export reads the capture log group in CloudWatch Logs: use --backend aws",
        ));
    }
    if end < start {
        return Err(Failure::usage("--end is before --start"));
    }
    let log_group = log_group
        .or_else(|| {
            std::env::var("CAPTURE_LOG_GROUP")
                .ok()
                .filter(|g| !g.is_empty())
        })
        .ok_or_else(|| {
            Failure::usage(
                "pass --log-group (the stack output CaptureLogGroupName) or set CAPTURE_LOG_GROUP",
            )
        })?;
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
    let summary = export(&source, &log_group, start, end, &mut writer, &mut progress).await?;
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
        "exported {} events ({} read, {} duplicates, {} malformed)",
        summary.written, summary.read, summary.duplicates, summary.malformed
    );
    Ok(if summary.malformed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}
