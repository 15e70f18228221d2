//! `connect-events analytics ingest|report`: contact records and agent events, and the dashboard's
//! seven metrics, on the embedded backend or on OpenSearch (`--backend aws`: the indices the
//! `analytics-indexer` Lambda writes, the metrics as OpenSearch queries).

use std::path::PathBuf;
use std::process::ExitCode;

use chrono::{DateTime, Utc};
use clap::{Subcommand, ValueEnum};
use connect_events_core::analytics::dashboards;
use connect_events_core::analytics::input::read_records;
use serde_json::json;

use super::{settings, BackendArgs, CliResult, Failure};
use crate::backend::Backend;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Text,
    Json,
}

#[derive(Debug, Subcommand)]
pub enum AnalyticsCommand {
    /// Ingest contact records and agent events (NDJSON, JSON arrays, saved Lambda Kinesis events;
    /// files or directories). Kind detected per record; malformed records reported as FILE:LINE;
    /// idempotent (newest copy of a contact record wins).
    Ingest {
        #[arg(required = true)]
        paths: Vec<PathBuf>,
        #[command(flatten)]
        backend: BackendArgs,
    },
    /// The seven metrics of a window.
    Report {
        /// Window start (RFC 3339, inclusive).
        #[arg(long)]
        from: DateTime<Utc>,
        /// Window end (RFC 3339, exclusive).
        #[arg(long)]
        to: DateTime<Utc>,
        /// IANA time zone of the days (default UTC).
        #[arg(long, default_value = "UTC")]
        time_zone: String,
        #[arg(long, value_enum, default_value_t = ReportFormat::Text)]
        format: ReportFormat,
        #[command(flatten)]
        backend: BackendArgs,
    },
    /// The OpenSearch Dashboards saved objects (NDJSON) of the seven metrics: index patterns, one
    /// Vega visualization per metric running the metric's query, one dashboard. Import the file in
    /// Dashboards (Management > Saved objects > Import, overwrite) or with `--import`.
    Dashboards {
        /// Write the NDJSON here (default: standard output).
        #[arg(long)]
        out: Option<PathBuf>,
        /// IANA time zone of the "calls per day" days (default UTC).
        #[arg(long, default_value = "UTC")]
        time_zone: String,
        /// Import into this Dashboards URL (e.g. `https://…/_dashboards`): POST
        /// `api/saved_objects/_import?overwrite=true` with `osd-xsrf: true`.
        #[arg(long)]
        import: Option<String>,
        /// Tenant for the import (`securitytenant` header), e.g. `global`.
        #[arg(long, requires = "import")]
        tenant: Option<String>,
    },
}

fn parse_time_zone(name: &str) -> Result<chrono_tz::Tz, Failure> {
    name.parse().map_err(|_| {
        Failure::usage(format!(
            "--time-zone {name:?}: expected an IANA time zone such as Europe/Berlin"
        ))
    })
}

pub async fn run(cmd: AnalyticsCommand) -> CliResult {
    let settings = settings()?;
    match cmd {
        AnalyticsCommand::Ingest { paths, backend } => {
            let b =
                Backend::build(backend.backend, backend.state_dir, &settings, Vec::new()).await?;
            let analytics = b.analytics()?;
            let summary = analytics.ingest_all(read_records(&paths)).await;
            for (location, reason) in &summary.failed {
                eprintln!("{location}: {reason}");
            }
            b.save()?;
            for (what, n) in [
                ("contact records stored", summary.ctrs_stored),
                ("contact records older than stored", summary.ctrs_stale),
                ("agent events stored", summary.agent_events_stored),
                (
                    "agent events already stored",
                    summary.agent_events_duplicate,
                ),
                ("heartbeats (not stored)", summary.heartbeats),
                ("malformed", summary.failed.len()),
            ] {
                println!("{what:<36} {n}");
            }
            Ok(if summary.failed.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
        AnalyticsCommand::Report {
            from,
            to,
            time_zone,
            format,
            backend,
        } => {
            let tz = parse_time_zone(&time_zone)?;
            if to <= from {
                return Err(Failure::usage("--to must be after --from"));
            }
            let b =
                Backend::build(backend.backend, backend.state_dir, &settings, Vec::new()).await?;
            let analytics = b.analytics()?;
            let docs = b.caps.queue_depth.index().documents().await?;
            let report = analytics.report(from, to, tz, &docs).await?;
            match format {
                ReportFormat::Json => println!("{}", json!(report)),
                ReportFormat::Text => {
                    let secs = |v: Option<f64>| v.map_or("–".into(), |s| format!("{s:.1} s"));
                    println!("calls                                  {}", report.calls);
                    println!(
                        "average after-contact work (no outbound) {}",
                        secs(report.avg_after_contact_work_s)
                    );
                    println!(
                        "average agent interaction (no outbound)  {}",
                        secs(report.avg_agent_interaction_s)
                    );
                    println!("agents online in the period             {}", report.agents);
                    println!(
                        "agents who handled a call                {}",
                        report.agents_with_contacts
                    );
                    println!(
                        "calls in queue now                       {}",
                        report.calls_in_queue
                    );
                    println!("calls per day ({time_zone}):");
                    for d in &report.calls_per_day {
                        println!("  {}  {}", d.date, d.calls);
                    }
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        AnalyticsCommand::Dashboards {
            out,
            time_zone: zone,
            import,
            tenant,
        } => {
            let tz = parse_time_zone(&zone)?;
            let ndjson = dashboards::ndjson(&settings.analytics, tz);
            match &out {
                Some(path) => std::fs::write(path, &ndjson).map_err(|e| {
                    Failure::from(connect_events_core::HandlerError::Config(format!(
                        "{}: {e}",
                        path.display()
                    )))
                })?,
                None if import.is_none() => print!("{ndjson}"),
                None => {}
            }
            if let Some(url) = import {
                let answer = crate::aws::dashboards::import(&url, tenant.as_deref(), &ndjson)
                    .await
                    .map_err(Failure::from)?;
                eprintln!("imported into {url}: {answer}");
            }
            Ok(ExitCode::SUCCESS)
        }
    }
}
