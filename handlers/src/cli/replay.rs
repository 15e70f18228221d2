//! `connect-events replay`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, ValueEnum};
use connect_events_core::analytics::input::{holds_stream_records, read_records};
use connect_events_core::event::input::{expand_paths, read_file_as, read_paths};
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
    /// Event files (.json, .ndjson, .jsonl, .gz = gzip NDJSON) or directories, or `s3://bucket/prefix`
    /// (every object under it, e.g. the Firehose capture; AWS credentials from the environment,
    /// whatever the backend).
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
    // `s3://` prefixes are fetched first (streamed to a temporary directory, removed afterwards);
    // their events are located by object URI and line.
    let (s3_uris, local): (Vec<PathBuf>, Vec<PathBuf>) = args
        .paths
        .iter()
        .cloned()
        .partition(|p| p.to_str().is_some_and(|s| s.starts_with("s3://")));
    let fetched_dir =
        std::env::temp_dir().join(format!("connect-events-s3-{}", std::process::id()));
    let mut fetched: Vec<(String, PathBuf)> = Vec::new();
    if !s3_uris.is_empty() {
        let config = crate::aws::config::load(crate::aws::config::CallProfile::BACKGROUND).await;
        for uri in &s3_uris {
            let dir = fetched_dir.join(fetched.len().to_string());
            let objects = crate::aws::s3::fetch_prefix(&config, &uri.to_string_lossy(), &dir).await;
            match objects {
                Ok(objects) => fetched.extend(objects),
                Err(e) => {
                    let _ = std::fs::remove_dir_all(&fetched_dir);
                    return Err(Failure::from(e));
                }
            }
        }
    }
    // Streamed records (contact records, agent events) go through the template's Kinesis event
    // sources; everything else is EventBridge events, through its rules.
    let (record_files, event_files): (Vec<PathBuf>, Vec<PathBuf>) = expand_paths(&local)
        .into_iter()
        .partition(|p| holds_stream_records(p));
    let replayer = Replayer::new(&rules, &backend.caps, backend.observer(), options);
    let s3_items = fetched
        .into_iter()
        .flat_map(|(uri, path)| read_file_as(path, uri));
    let mut report = replayer.run(read_paths(&event_files).chain(s3_items)).await;
    let _ = std::fs::remove_dir_all(&fetched_dir);
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
