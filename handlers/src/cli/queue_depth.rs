//! `connect-events queue-depth show|refresh` and `connect-events opensearch setup`.

use std::process::ExitCode;

use chrono::Utc;
use clap::{Subcommand, ValueEnum};
use connect_events_core::queue_depth::{QueueDepthDoc, QueueDepthOutcome, Trigger};

use super::{settings, BackendArgs, CliResult, Failure};
use crate::backend::Backend;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Format {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum QueueDepthCommand {
    /// Print the current documents of the queue-depth index.
    Show {
        #[command(flatten)]
        backend: BackendArgs,
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// Refresh every queue now (one-shot; bypasses the coalescing slot).
    Refresh {
        #[command(flatten)]
        backend: BackendArgs,
        /// Instance to refresh (default: CONNECT_INSTANCE_ID, or every instance of the local model).
        #[arg(long)]
        instance_id: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum OpensearchCommand {
    /// Apply the index template and create the indices (idempotent; never deletes).
    Setup {
        #[command(flatten)]
        backend: BackendArgs,
    },
}

pub async fn run(cmd: QueueDepthCommand) -> CliResult {
    let settings = settings()?;
    match cmd {
        QueueDepthCommand::Show { backend, format } => {
            let backend =
                Backend::build(backend.backend, backend.state_dir, &settings, Vec::new()).await?;
            let mut docs = backend.caps.queue_depth.index().documents().await?;
            docs.sort_by(|a, b| {
                (&a.instance_id, &a.queue_id, &a.channel).cmp(&(
                    &b.instance_id,
                    &b.queue_id,
                    &b.channel,
                ))
            });
            match format {
                Format::Json => println!(
                    "{}",
                    serde_json::to_string_pretty(&docs)
                        .map_err(|e| Failure::failed(e.to_string()))?
                ),
                Format::Text => print!("{}", table(&docs)),
            }
            Ok(ExitCode::SUCCESS)
        }
        QueueDepthCommand::Refresh {
            backend,
            instance_id,
        } => {
            let backend =
                Backend::build(backend.backend, backend.state_dir, &settings, Vec::new()).await?;
            let instances = match instance_id.or(settings.queue_depth.default_instance_id.clone()) {
                Some(id) => vec![id],
                None => backend
                    .local
                    .as_ref()
                    .map(|l| l.model.instances())
                    .unwrap_or_default(),
            };
            if instances.is_empty() {
                return Err(Failure::usage(
                    "no instance: pass --instance-id or set CONNECT_INSTANCE_ID",
                ));
            }
            for instance in instances {
                let outcome = backend
                    .caps
                    .queue_depth
                    .refresh(&instance, Trigger::new("manual", None), Utc::now())
                    .await?;
                if let QueueDepthOutcome::Refreshed {
                    api_calls,
                    written,
                    stale_skipped,
                    snapshot_time,
                    ..
                } = outcome
                {
                    println!("{instance}: snapshot {snapshot_time}, {written} documents written, {stale_skipped} stale skipped, {api_calls} metric API calls");
                }
            }
            backend.save()?;
            Ok(ExitCode::SUCCESS)
        }
    }
}

pub async fn run_opensearch(cmd: OpensearchCommand) -> CliResult {
    let settings = settings()?;
    let OpensearchCommand::Setup { backend } = cmd;
    let backend = Backend::build(backend.backend, backend.state_dir, &settings, Vec::new()).await?;
    backend.caps.queue_depth.index().ensure_ready().await?;
    println!("index {} ready", settings.queue_depth_index);
    Ok(ExitCode::SUCCESS)
}

fn table(docs: &[QueueDepthDoc]) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    let _ = writeln!(
        s,
        "{:<38} {:<8} {:>7} {:>9} {:>5} {:>10}  snapshot",
        "queue", "channel", "queued", "scheduled", "depth", "oldest(s)"
    );
    for d in docs {
        let name = d.queue_name.clone().unwrap_or_else(|| d.queue_id.clone());
        let oldest = d
            .oldest_contact_age_seconds
            .map_or("-".to_string(), |v| format!("{v:.0}"));
        let _ = writeln!(
            s,
            "{name:<38} {:<8} {:>7} {:>9} {:>5} {oldest:>10}  {}",
            d.channel, d.contacts_in_queue, d.contacts_scheduled, d.queue_depth, d.snapshot_time
        );
    }
    s
}
