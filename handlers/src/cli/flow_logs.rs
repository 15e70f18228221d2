//! `connect-events flow-logs collect`: the `AWSSupport-CollectAmazonConnectContactFlowLog` runbook as
//! a command.

use std::path::PathBuf;
use std::process::ExitCode;

use chrono::{DateTime, Duration, Utc};
use clap::Subcommand;
use connect_events_core::flow_logs::{ArchiveOutcome, ArchiveRequest};

use super::{settings, BackendArgs, CliResult, Failure};
use crate::backend::{Backend, BackendKind};

#[derive(Debug, Subcommand)]
pub enum FlowLogsCommand {
    /// Collect one contact's flow logs into the archive bucket.
    Collect {
        #[arg(long)]
        instance_id: String,
        #[arg(long)]
        contact_id: String,
        /// Flow-log group (default: FLOW_LOG_GROUP, or /aws/connect/$CONNECT_INSTANCE_ALIAS).
        #[arg(long)]
        log_group: Option<String>,
        /// Archive bucket (default: ARCHIVE_BUCKET).
        #[arg(long)]
        bucket: Option<String>,
        /// Key prefix (default: connect-flow-logs/<instanceId>/<YYYY>/<MM>/<DD>).
        #[arg(long)]
        prefix: Option<String>,
        /// Account that must own the bucket (the runbook's S3BucketOwnerAccountId); also names the object.
        #[arg(long)]
        bucket_owner: Option<String>,
        /// Search from (RFC 3339; default 24 h ago).
        #[arg(long)]
        start: Option<DateTime<Utc>>,
        /// Search until (RFC 3339; default now).
        #[arg(long)]
        end: Option<DateTime<Utc>>,
        /// Flow-log entries for the local backend (NDJSON file or directory).
        #[arg(long)]
        flow_logs: Vec<PathBuf>,
        #[command(flatten)]
        backend: BackendArgs,
    },
}

pub async fn run(cmd: FlowLogsCommand) -> CliResult {
    let FlowLogsCommand::Collect {
        instance_id,
        contact_id,
        log_group,
        bucket,
        prefix,
        bucket_owner,
        start,
        end,
        flow_logs,
        backend,
    } = cmd;
    let mut settings = settings()?;
    if log_group.is_some() {
        settings.flow_logs.log_group = log_group;
    }
    if let Some(b) = bucket {
        settings.flow_logs.bucket = b;
    }
    if prefix.is_some() {
        settings.flow_logs.prefix = prefix;
    }
    if bucket_owner.is_some() {
        settings.flow_logs.bucket_owner = bucket_owner;
    }
    let local = backend.backend == BackendKind::Local;
    let now = Utc::now();
    let (start, end) = match (start, end, local) {
        (s, e, false) => (s.unwrap_or(now - Duration::hours(24)), e.unwrap_or(now)),
        // Local files are complete: search them whole unless told otherwise.
        (s, e, true) => (
            s.unwrap_or(DateTime::UNIX_EPOCH + Duration::days(365 * 30)),
            e.unwrap_or(now),
        ),
    };
    let account_id = settings
        .flow_logs
        .bucket_owner
        .clone()
        .or_else(|| account_of(&instance_id));
    let account_id = match (account_id, local) {
        (Some(a), _) => a,
        (None, true) => "000000000000".into(),
        (None, false) => {
            return Err(Failure::usage(
                "pass --bucket-owner (the account id) or an instance ARN",
            ))
        }
    };
    let b = Backend::build(backend.backend, backend.state_dir, &settings, flow_logs).await?;
    let instance = instance_id
        .rsplit('/')
        .next()
        .unwrap_or(&instance_id)
        .to_string();
    let req = ArchiveRequest {
        instance_id: instance,
        contact_id,
        account_id,
        related: Vec::new(),
        started: None,
        ended: None,
        window: Some((start, end)),
    };
    let (location, summary, written) = match b.caps.flow_logs.archive(&req, now).await? {
        ArchiveOutcome::Archived {
            location, summary, ..
        } => (location, summary, true),
        ArchiveOutcome::Unchanged {
            location, summary, ..
        } => (location, summary, false),
        ArchiveOutcome::SkippedNoLogs { contact_id } => {
            eprintln!(
                "no flow-log entries found for contact {contact_id} between {start} and {end}"
            );
            return Ok(ExitCode::from(1));
        }
    };
    let state = if written {
        "archived"
    } else {
        "already archived"
    };
    println!(
        "{state}: {} entries ({} with errors)",
        summary.entries,
        summary.errors.len()
    );
    for e in &summary.errors {
        println!(
            "  error in {} {}: {}",
            e.module_type,
            e.identifier.as_deref().unwrap_or(""),
            e.result
        );
    }
    println!("{}", location.uri);
    if let Some(url) = &location.console_url {
        println!("console:  {url}");
    }
    if let Some(cmd) = &location.download_command {
        println!("download: {cmd}");
    }
    Ok(ExitCode::SUCCESS)
}

fn account_of(instance: &str) -> Option<String> {
    instance
        .strip_prefix("arn:")
        .and_then(|rest| rest.split(':').nth(3))
        .filter(|a| a.len() == 12)
        .map(str::to_string)
}
