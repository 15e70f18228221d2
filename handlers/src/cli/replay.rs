//! `connect-events replay`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use connect_events_core::analytics::input::{holds_stream_records, read_records};
use connect_events_core::event::input::{expand_paths, read_paths};
use connect_events_core::replay::{ReplayOptions, Replayer};

use super::{load_rules, settings, BackendArgs, CliResult, Failure};
use crate::backend::Backend;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct ReplayArgs {
    #[command(flatten)]
    backend: BackendArgs,
    /// SAM template whose EventBridge rules route the events (default: infra/template.yaml, else the built-in copy).
    #[arg(long)]
    template: Option<PathBuf>,
    /// Flow-log entries (NDJSON file or directory) for the local backend's archiver.
    #[arg(long)]
    flow_logs: Vec<PathBuf>,
    /// Report format on stdout.
    #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
    report: ReportFormat,
    /// Execute destructive actions (StopContact) instead of reporting them as dry runs.
    #[arg(long)]
    allow_side_effects: bool,
    /// Event files (.json, .ndjson, .jsonl) or directories.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
}

pub async fn run(args: ReplayArgs) -> CliResult {
    let settings = settings()?;
    let rules = load_rules(args.template.as_ref())?;
    let backend = Backend::build(
        args.backend.backend,
        args.backend.state_dir.clone(),
        &settings,
        args.flow_logs.clone(),
    )
    .await?;
    let options = ReplayOptions {
        allow_side_effects: args.allow_side_effects,
        progress: true,
        wall_clock: args.backend.backend == crate::backend::BackendKind::Aws,
    };
    // Streamed records (contact records, agent events) go through the template's Kinesis event
    // sources; everything else is EventBridge events, through its rules.
    let (record_files, event_files): (Vec<PathBuf>, Vec<PathBuf>) = expand_paths(&args.paths)
        .into_iter()
        .partition(|p| holds_stream_records(p));
    let replayer = Replayer::new(&rules, &backend.caps, backend.observer(), options);
    let mut report = replayer.run(read_paths(&event_files)).await;
    if !record_files.is_empty() {
        replayer
            .run_records(read_records(&record_files), &mut report)
            .await;
    }
    // The report is printed whether or not the state could be saved: what happened to each event
    // is not lost with it.
    let saved = backend.save();
    match args.report {
        ReportFormat::Json => {
            let json = serde_json::to_string(&report)
                .map_err(|e| Failure::failed(format!("report: {e}")))?;
            println!("{json}");
        }
        ReportFormat::Text => print!("{}", report.to_text()),
    }
    if let Err(e) = saved {
        eprintln!("connect-events: the state was NOT saved: {e}");
        return Ok(ExitCode::from(STATE_NOT_SAVED));
    }
    Ok(if report.ok() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

/// Exit code of a replay whose final save failed (1: some events failed, 2: usage/configuration).
pub const STATE_NOT_SAVED: u8 = 3;
