//! Flow logs read from NDJSON files (one flow-log entry per line), e.g. exported from CloudWatch Logs.

use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;

use async_trait::async_trait;
use tokio::sync::OnceCell;

use crate::error::PortError;
use crate::event::input::expand_paths;
use crate::flow_logs::{FlowLogEntry, FlowLogQuery, FlowLogSource};

const SERVICE: &str = "local flow logs";

/// Entries of a file or a directory of `.ndjson` / `.jsonl` / `.json` files, indexed by contact id
/// on first use. Lines that are not flow-log entries are skipped with a warning (line numbers
/// logged), as CloudWatch would never return them for a contact.
pub struct LocalFlowLogs {
    paths: Vec<PathBuf>,
    by_contact: OnceCell<HashMap<String, Vec<FlowLogEntry>>>,
}

impl LocalFlowLogs {
    pub fn new(paths: Vec<PathBuf>) -> Self {
        LocalFlowLogs {
            paths,
            by_contact: OnceCell::new(),
        }
    }

    fn load(&self) -> Result<HashMap<String, Vec<FlowLogEntry>>, PortError> {
        let mut map: HashMap<String, Vec<FlowLogEntry>> = HashMap::new();
        for path in expand_paths(&self.paths) {
            let file = std::fs::File::open(&path)
                .map_err(|e| PortError::io(SERVICE, path.display(), e))?;
            for (i, line) in BufReader::new(file).lines().enumerate() {
                let line = line.map_err(|e| PortError::io(SERVICE, path.display(), e))?;
                if line.trim().is_empty() {
                    continue;
                }
                match FlowLogEntry::parse(&line) {
                    Ok(entry) => map
                        .entry(entry.contact_id().to_string())
                        .or_default()
                        .push(entry),
                    Err(e) => {
                        tracing::warn!(file = %path.display(), line = i + 1, error = %e, "skipping a line that is not a flow-log entry")
                    }
                }
            }
        }
        Ok(map)
    }
}

#[async_trait]
impl FlowLogSource for LocalFlowLogs {
    async fn entries(&self, query: &FlowLogQuery) -> Result<Vec<FlowLogEntry>, PortError> {
        let index = self
            .by_contact
            .get_or_try_init(|| async { self.load() })
            .await?;
        Ok(query
            .contact_ids
            .iter()
            .filter_map(|id| index.get(id))
            .flatten()
            .filter(|e| e.timestamp() >= query.start && e.timestamp() <= query.end)
            .cloned()
            .collect())
    }
}
