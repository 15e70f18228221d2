//! `connect-events denylist …` and `connect-events number normalize`.

use std::path::PathBuf;
use std::process::ExitCode;

use chrono::{TimeZone, Utc};
use clap::{Subcommand, ValueEnum};
use connect_events_core::deny_list::import::{parse_import, parse_ttl, to_csv, ImportFormat};
use connect_events_core::deny_list::intake::typed;
use connect_events_core::deny_list::{DenyEntry, EntrySource, E164};
use serde_json::json;

use super::{settings, BackendArgs, CliResult, Failure};
use crate::backend::Backend;

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ListFormat {
    Text,
    Json,
    Csv,
}

#[derive(Debug, Subcommand)]
pub enum DenylistCommand {
    /// Add (or update) a number.
    Add {
        number: String,
        #[arg(long)]
        reason: Option<String>,
        /// Expiry, e.g. 8h or 7d (default: permanent).
        #[arg(long)]
        ttl: Option<String>,
        /// Who adds it (default: $USER).
        #[arg(long)]
        by: Option<String>,
        /// Refuse numbers libphonenumber's metadata does not know, instead of taking a
        /// well-formed E.164 number as written with a warning.
        #[arg(long)]
        strict: bool,
        #[command(flatten)]
        backend: BackendArgs,
    },
    /// Remove a number (exit 1 when it was not listed).
    Remove {
        number: String,
        #[command(flatten)]
        backend: BackendArgs,
    },
    /// Is a number listed? Prints {"listed", "number", "reason", "expiresAt"}.
    Check {
        number: String,
        #[command(flatten)]
        backend: BackendArgs,
    },
    /// List every entry.
    List {
        #[arg(long, value_enum, default_value_t = ListFormat::Text)]
        format: ListFormat,
        #[command(flatten)]
        backend: BackendArgs,
    },
    /// Import a CSV (number[,reason[,ttl]]) or JSON file; failing rows are reported with their line.
    Import {
        file: PathBuf,
        #[arg(long)]
        by: Option<String>,
        /// Refuse numbers libphonenumber's metadata does not know, instead of taking a
        /// well-formed E.164 number as written with a warning.
        #[arg(long)]
        strict: bool,
        #[command(flatten)]
        backend: BackendArgs,
    },
    /// Export every entry (JSON by default).
    Export {
        #[arg(long, value_enum, default_value_t = ListFormat::Json)]
        format: ListFormat,
        #[command(flatten)]
        backend: BackendArgs,
    },
}

#[derive(Debug, Subcommand)]
pub enum NumberCommand {
    /// Print the E.164 form of a number, or exit 2 with the reason.
    Normalize {
        input: String,
        /// ISO 3166 region for national formats, e.g. US, GB, DE.
        #[arg(long)]
        default_region: Option<String>,
        /// Refuse numbers libphonenumber's metadata does not know, instead of taking a
        /// well-formed E.164 number as written with a warning.
        #[arg(long)]
        strict: bool,
    },
}

pub fn run_number(cmd: NumberCommand) -> CliResult {
    let NumberCommand::Normalize {
        input,
        default_region,
        strict,
    } = cmd;
    let region = default_region.or_else(|| {
        std::env::var("DENYLIST_DEFAULT_REGION")
            .ok()
            .filter(|r| !r.is_empty())
    });
    match typed(&input, region.as_deref(), strict) {
        Ok(accepted) => {
            warn(&accepted.number, accepted.warning);
            println!("{}", accepted.number);
            Ok(ExitCode::SUCCESS)
        }
        Err(e) => Err(Failure::usage(format!("{} ({})", e, e.code()))),
    }
}

/// A typed number taken as written: say so on stderr (stdout stays the data).
fn warn(number: &E164, warning: Option<&str>) {
    if let Some(w) = warning {
        eprintln!("warning: {}: {w}", number.masked());
    }
}

fn operator(by: Option<String>) -> Option<String> {
    by.or_else(|| std::env::var("USER").ok())
        .filter(|s| !s.is_empty())
}

pub async fn run(cmd: DenylistCommand) -> CliResult {
    let settings = settings()?;
    let now = Utc::now();
    let open = |b: BackendArgs| {
        let settings = settings.clone();
        async move {
            Backend::build(b.backend, b.state_dir, &settings, Vec::new())
                .await
                .map_err(Failure::from)
        }
    };
    match cmd {
        DenylistCommand::Add {
            number,
            reason,
            ttl,
            by,
            strict,
            backend,
        } => {
            let ttl = ttl
                .as_deref()
                .map(parse_ttl)
                .transpose()
                .map_err(Failure::usage)?;
            let b = open(backend).await?;
            let (entry, warning) = b
                .caps
                .deny_list
                .add(
                    &number,
                    reason,
                    ttl,
                    operator(by),
                    EntrySource::Cli,
                    strict,
                    now,
                )
                .await?;
            warn(&entry.number, warning);
            println!("{}", entry_json(&entry));
            Ok(ExitCode::SUCCESS)
        }
        DenylistCommand::Remove { number, backend } => {
            let b = open(backend).await?;
            if b.caps.deny_list.remove(&number).await? {
                println!("removed");
                Ok(ExitCode::SUCCESS)
            } else {
                println!("not listed");
                Ok(ExitCode::from(1))
            }
        }
        DenylistCommand::Check { number, backend } => {
            let b = open(backend).await?;
            let result = b.caps.deny_list.check(&number, now).await?;
            let e164 = result
                .number
                .as_ref()
                .map_err(|e| Failure::usage(format!("{} ({})", e, e.code())))?;
            warn(e164, result.warning);
            let entry = result.entry.as_ref();
            println!(
                "{}",
                json!({
                    "listed": result.listed,
                    "number": e164.as_str(),
                    "reason": entry.and_then(|e| e.reason.clone()),
                    "expiresAt": entry.and_then(|e| e.expires_at),
                })
            );
            Ok(ExitCode::SUCCESS)
        }
        DenylistCommand::List { format, backend } | DenylistCommand::Export { format, backend } => {
            let b = open(backend).await?;
            let mut entries = b.caps.deny_list.store().list().await?;
            entries.sort_by(|a, b| a.number.cmp(&b.number));
            match format {
                ListFormat::Json => {
                    let all: Vec<_> = entries.iter().map(entry_json).collect();
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&all)
                            .map_err(|e| Failure::failed(e.to_string()))?
                    );
                }
                ListFormat::Csv => print!("{}", to_csv(&entries)),
                ListFormat::Text => {
                    for e in &entries {
                        let state = if e.is_active(now) {
                            "active"
                        } else {
                            "expired"
                        };
                        let expires = e
                            .expires_at
                            .and_then(|t| Utc.timestamp_opt(t, 0).single())
                            .map_or("never".into(), |t| t.to_rfc3339());
                        println!(
                            "{:<16} {state:<8} hits {:<5} expires {expires:<25} {}",
                            e.number,
                            e.hit_count,
                            e.reason.as_deref().unwrap_or("")
                        );
                    }
                    println!("{} entries", entries.len());
                }
            }
            Ok(ExitCode::SUCCESS)
        }
        DenylistCommand::Import {
            file,
            by,
            strict,
            backend,
        } => {
            let text = std::fs::read_to_string(&file)
                .map_err(|e| Failure::usage(format!("{}: {e}", file.display())))?;
            let region = settings.deny_list.default_region.as_deref();
            let parsed = parse_import(
                &text,
                ImportFormat::from_path(&file),
                region,
                operator(by).as_deref(),
                strict,
                now,
            );
            let (entries, errors) = (&parsed.entries, &parsed.errors);
            for e in errors {
                eprintln!("{}:{}: {}", file.display(), e.line, e.reason);
            }
            for w in &parsed.warnings {
                eprintln!("{}:{}: warning: {}", file.display(), w.line, w.reason);
            }
            let b = open(backend).await?;
            let outcome = b.caps.deny_list.store().put_batch(entries).await?;
            for (number, reason) in &outcome.failed {
                eprintln!("{}: not written: {reason}", number.masked());
            }
            println!(
                "imported {} of {} rows ({} rejected, {} not written, {} unknown to the metadata)",
                outcome.written,
                entries.len() + errors.len(),
                errors.len(),
                outcome.failed.len(),
                parsed.warnings.len()
            );
            Ok(if errors.is_empty() && outcome.failed.is_empty() {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}

fn entry_json(e: &DenyEntry) -> serde_json::Value {
    serde_json::to_value(e).unwrap_or_default()
}
