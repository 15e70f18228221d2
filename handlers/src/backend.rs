//! Choosing the backend of the CLI: the embedded local one, or AWS.

use std::path::PathBuf;

use connect_events_core::analytics::Analytics;
use connect_events_core::dispatch::Capabilities;
use connect_events_core::local::LocalBackend;
use connect_events_core::replay::Observer;
use connect_events_core::settings::Settings;
use connect_events_core::HandlerError;

/// Which implementation of the ports to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendKind {
    /// Embedded backend on the state directory (no AWS, no servers).
    Local,
    /// AWS services (credentials, Region and endpoints from the environment, e.g. `AWS_ENDPOINT_URL_S3`).
    Aws,
}

/// The wired capabilities and, for the local backend, its state.
pub struct Backend {
    pub caps: Capabilities,
    pub local: Option<LocalBackend>,
}

impl Backend {
    /// Build the backend. `flow_logs` are the flow-log files of the local backend.
    pub async fn build(
        kind: BackendKind,
        state_dir: PathBuf,
        settings: &Settings,
        flow_logs: Vec<PathBuf>,
    ) -> Result<Backend, HandlerError> {
        match kind {
            BackendKind::Local => {
                let wait = lock_wait()?;
                let shown = state_dir.display().to_string();
                // Waiting for another command's lock blocks: off the async workers.
                let local = tokio::task::spawn_blocking(move || {
                    LocalBackend::open_waiting(state_dir, wait, &mut |holder| {
                        eprintln!("connect-events: waiting for {shown}: in use by {holder}");
                    })
                })
                .await
                .map_err(|e| HandlerError::Config(format!("opening the state directory: {e}")))??;
                let caps = local.capabilities(settings, flow_logs);
                Ok(Backend {
                    caps,
                    local: Some(local),
                })
            }
            BackendKind::Aws => {
                let config =
                    crate::aws::config::load(crate::aws::config::CallProfile::BACKGROUND).await;
                let caps = crate::aws::capabilities(&config, settings)?;
                Ok(Backend { caps, local: None })
            }
        }
    }

    /// The observer that feeds the local contact-center model during a replay.
    pub fn observer(&self) -> Option<&dyn Observer> {
        self.local.as_ref().map(|l| l as &dyn Observer)
    }

    /// The analytics capability: the embedded store, or the OpenSearch indices.
    pub fn analytics(&self) -> Result<&Analytics, HandlerError> {
        self.caps.analytics.as_ref().ok_or_else(|| {
            HandlerError::Config(
                "OPENSEARCH_ENDPOINT is not set: analytics needs the OpenSearch domain".into(),
            )
        })
    }

    /// Persist local state (no-op on AWS).
    pub fn save(&self) -> Result<(), HandlerError> {
        if let Some(local) = &self.local {
            local.save()?;
        }
        Ok(())
    }
}

/// How long a command waits for another command's lock on the state directory
/// (`CONNECT_EVENTS_LOCK_WAIT`, seconds, default 300; 0 = fail at once).
fn lock_wait() -> Result<std::time::Duration, HandlerError> {
    match std::env::var("CONNECT_EVENTS_LOCK_WAIT") {
        Ok(v) if !v.trim().is_empty() => v
            .trim()
            .parse::<u64>()
            .map(std::time::Duration::from_secs)
            .map_err(|_| {
                HandlerError::Config(format!(
                    "CONNECT_EVENTS_LOCK_WAIT={v:?}: expected whole seconds, e.g. 300"
                ))
            }),
        _ => Ok(connect_events_core::local::DEFAULT_LOCK_WAIT),
    }
}
