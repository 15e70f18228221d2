//! `connect-events flow-logs collect`: the `AWSSupport-CollectAmazonConnectContactFlowLog` runbook as
//! a command.

use std::path::PathBuf;
use std::process::ExitCode;

use chrono::{DateTime, Duration, Utc};
use clap::Subcommand;
use connect_events_core::event::arn_account;
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
        /// Account that must own the bucket (the runbook's S3BucketOwnerAccountId).
        #[arg(long)]
        bucket_owner: Option<String>,
        /// Account of the Connect instance, as named in the object key (default: the instance
        /// ARN's account, else DescribeContact's).
        #[arg(long)]
        account_id: Option<String>,
        /// Search from (RFC 3339; default: the contact's initiation minus the archiver's margin, or
        /// 24 h ago when DescribeContact does not know it).
        #[arg(long)]
        start: Option<DateTime<Utc>>,
        /// Search until (RFC 3339; default: the contact's disconnect plus the margin, at most now).
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
        account_id,
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
    let b = Backend::build(backend.backend, backend.state_dir, &settings, flow_logs).await?;
    let instance = instance_id
        .rsplit('/')
        .next()
        .unwrap_or(&instance_id)
        .to_string();
    // The contact's own timestamps date the key exactly as the Lambda does (one object per
    // contact, whichever path archived it first).
    let contact = b
        .caps
        .deny_list
        .contacts()
        .describe(&instance_id, &contact_id)
        .await?;
    if contact.is_none() {
        eprintln!(
            "warning: DescribeContact does not know contact {contact_id}; \
             the archive key is dated by its newest flow-log entry"
        );
    }
    let contact = contact.unwrap_or_default();
    let account_id = account_id
        .or_else(|| arn_account(&instance_id).map(str::to_string))
        .or(contact.account_id);
    let account_id = match (account_id, local) {
        (Some(a), _) => a,
        (None, true) => {
            eprintln!("warning: no account id known; the object is named for 000000000000");
            "000000000000".into()
        }
        (None, false) => {
            return Err(Failure::usage(
                "pass --account-id or an instance ARN: the account names the archive object",
            ))
        }
    };
    let mut req = ArchiveRequest::for_contact(
        &instance,
        &contact_id,
        &account_id,
        contact.initiated,
        contact.disconnected,
    );
    // The search window: what was asked; else the contact's lifetime with the archiver's margins
    // (the Lambda's window, up to now); else the last 24 hours (local files are complete: searched
    // whole).
    let derived = b.caps.flow_logs.search_window(&req, now);
    let start = start.unwrap_or_else(|| match (contact.initiated, local) {
        (Some(_), _) => derived.0,
        (None, false) => now - Duration::hours(24),
        (None, true) => DateTime::UNIX_EPOCH + Duration::days(365 * 30),
    });
    let end = end.unwrap_or(derived.1.min(now));
    req.window = Some((start, end));
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
