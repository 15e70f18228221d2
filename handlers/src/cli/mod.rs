//! The `connect-events` command line: replay archived events, inspect and refresh the queue-depth
//! index, manage the deny list, normalize numbers, and collect a contact's flow logs.
//!
//! Exit codes: 0 success, 1 a run that handled some input but not all (malformed input, a failing
//! handler, a number not found), 2 usage or configuration errors.

mod analytics;
mod app;
mod denylist;
mod events;
mod flow_logs;
mod queue_depth;
mod replay;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use connect_events_core::rules::RuleSet;
use connect_events_core::settings::Settings;
use connect_events_core::HandlerError;

use crate::backend::BackendKind;

/// The template compiled into the binary, used when `--template` is not given and
/// `infra/template.yaml` is not in the working directory.
const EMBEDDED_TEMPLATE: &str = include_str!("../../../infra/template.yaml");

#[derive(Debug, Parser)]
#[command(
    name = "connect-events",
    version,
    about = "Amazon Connect contact events: replay, queue depth, deny list, flow-log archive"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Replay archived EventBridge events through the template's rules.
    Replay(replay::ReplayArgs),
    /// Queue-depth index: show or refresh.
    #[command(subcommand)]
    QueueDepth(queue_depth::QueueDepthCommand),
    /// OpenSearch: create the index template and indices (idempotent).
    #[command(subcommand)]
    Opensearch(queue_depth::OpensearchCommand),
    /// Manage the deny list.
    #[command(subcommand)]
    Denylist(denylist::DenylistCommand),
    /// Phone numbers.
    #[command(subcommand)]
    Number(denylist::NumberCommand),
    /// Flow logs: collect a contact's flow logs into the archive (the runbook as a command).
    #[command(subcommand)]
    FlowLogs(flow_logs::FlowLogsCommand),
    /// Captured events: export a window of what the deployed system saw as a replay archive.
    #[command(subcommand)]
    Events(events::EventsCommand),
    /// Contact-center analytics: contact records, agent events and the dashboard's seven metrics.
    #[command(subcommand)]
    Analytics(analytics::AnalyticsCommand),
    /// The agent-workspace app: serve it and its API locally.
    #[command(subcommand)]
    App(app::AppCommand),
}

/// Options every backend-using command shares.
#[derive(Debug, Clone, Args)]
pub struct BackendArgs {
    /// Where the ports live: the embedded local backend or AWS.
    #[arg(long, value_enum, default_value_t = BackendKind::Local)]
    pub backend: BackendKind,
    /// State directory of the local backend.
    #[arg(long, default_value = ".connect-events")]
    pub state_dir: PathBuf,
}

/// A command failure with its exit code.
#[derive(Debug)]
pub struct Failure {
    pub code: u8,
    pub message: String,
}

impl Failure {
    pub fn usage(message: impl Into<String>) -> Self {
        Failure {
            code: 2,
            message: message.into(),
        }
    }
    pub fn failed(message: impl Into<String>) -> Self {
        Failure {
            code: 1,
            message: message.into(),
        }
    }
}

impl From<HandlerError> for Failure {
    fn from(e: HandlerError) -> Self {
        let code = match e {
            HandlerError::Config(_) | HandlerError::InvalidInput(_) => 2,
            _ => 1,
        };
        Failure {
            code,
            message: format!(
                "{} ({}{})",
                e,
                e.error_type(),
                if e.retryable() { ", retryable" } else { "" }
            ),
        }
    }
}

impl From<connect_events_core::PortError> for Failure {
    fn from(e: connect_events_core::PortError) -> Self {
        HandlerError::from(e).into()
    }
}

pub type CliResult = Result<ExitCode, Failure>;

/// Settings from the environment; a bad variable is a usage error.
pub fn settings() -> Result<Settings, Failure> {
    Settings::from_env().map_err(Failure::from)
}

/// The rules: `--template`, else `infra/template.yaml` in the working directory, else the template
/// compiled into the binary.
pub fn load_rules(template: Option<&PathBuf>) -> Result<RuleSet, Failure> {
    let default = PathBuf::from("infra/template.yaml");
    match template {
        Some(path) => RuleSet::load(path).map_err(|e| Failure::usage(format!("template: {e}"))),
        None if default.is_file() => {
            RuleSet::load(&default).map_err(|e| Failure::usage(format!("template: {e}")))
        }
        None => RuleSet::from_yaml(EMBEDDED_TEMPLATE, &Default::default())
            .map_err(|e| Failure::usage(format!("embedded template: {e}"))),
    }
}

/// Run the CLI and return the process exit code.
pub async fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() { 2 } else { 0 });
        }
    };
    let result = match cli.command {
        Command::Replay(args) => replay::run(args).await,
        Command::QueueDepth(cmd) => queue_depth::run(cmd).await,
        Command::Opensearch(cmd) => queue_depth::run_opensearch(cmd).await,
        Command::Denylist(cmd) => denylist::run(cmd).await,
        Command::Number(cmd) => denylist::run_number(cmd),
        Command::FlowLogs(cmd) => flow_logs::run(cmd).await,
        Command::Events(cmd) => events::run(cmd).await,
        Command::Analytics(cmd) => analytics::run(cmd).await,
        Command::App(cmd) => app::run(cmd).await,
    };
    match result {
        Ok(code) => code,
        Err(f) => {
            eprintln!("connect-events: {}", f.message);
            ExitCode::from(f.code)
        }
    }
}
