//! Queue-depth documents on disk, with OpenSearch's external-versioning rule.

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Mutex;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use super::{read_optional, write_atomic};
use crate::error::PortError;
use crate::queue_depth::{QueueDepthDoc, QueueDepthIndex, WriteOutcome};

const SERVICE: &str = "local queue-depth index";

#[derive(Serialize, Deserialize)]
struct Stored {
    #[serde(rename = "_version")]
    version: i64,
    #[serde(rename = "_source")]
    source: QueueDepthDoc,
}

/// `opensearch/<index>/<docId>.json`. Slot leases are kept in memory: one replay process is the only
/// writer, and a lease is only about concurrent Lambda containers.
pub struct LocalIndex {
    dir: PathBuf,
    leases: Mutex<HashSet<(String, i64)>>,
}

impl LocalIndex {
    pub fn new(dir: PathBuf) -> Self {
        LocalIndex {
            dir,
            leases: Mutex::new(HashSet::new()),
        }
    }

    fn path(&self, id: &str) -> PathBuf {
        // Document ids are `<instance>:<queue>:<channel>`: safe file names on Linux and macOS.
        self.dir.join(format!("{}.json", id.replace('/', "_")))
    }

    fn read(&self, id: &str) -> Result<Option<Stored>, PortError> {
        let path = self.path(id);
        match read_optional(&path)? {
            None => Ok(None),
            Some(b) => serde_json::from_slice(&b)
                .map(Some)
                .map_err(|e| PortError::Rejected {
                    service: SERVICE,
                    message: format!("{}: {e}", path.display()),
                }),
        }
    }
}

#[async_trait]
impl QueueDepthIndex for LocalIndex {
    async fn ensure_ready(&self) -> Result<(), PortError> {
        std::fs::create_dir_all(&self.dir)
            .map_err(|e| PortError::io(SERVICE, self.dir.display(), e))
    }

    async fn write(&self, docs: &[QueueDepthDoc]) -> Result<WriteOutcome, PortError> {
        let mut out = WriteOutcome::default();
        for doc in docs {
            let id = doc.id();
            let version = doc.version();
            if self.read(&id)?.is_some_and(|s| s.version >= version) {
                out.stale_skipped += 1;
                continue;
            }
            let bytes = serde_json::to_vec_pretty(&Stored {
                version,
                source: doc.clone(),
            })
            .map_err(|e| PortError::Rejected {
                service: SERVICE,
                message: e.to_string(),
            })?;
            write_atomic(&self.path(&id), &bytes)?;
            out.written += 1;
        }
        Ok(out)
    }

    async fn documents(&self) -> Result<Vec<QueueDepthDoc>, PortError> {
        let mut files: Vec<PathBuf> = match std::fs::read_dir(&self.dir) {
            Ok(rd) => rd
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "json"))
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(PortError::io(SERVICE, self.dir.display(), e)),
        };
        files.sort();
        let mut docs = Vec::new();
        for f in files {
            let b = std::fs::read(&f).map_err(|e| PortError::io(SERVICE, f.display(), e))?;
            let s: Stored = serde_json::from_slice(&b).map_err(|e| PortError::Rejected {
                service: SERVICE,
                message: format!("{}: {e}", f.display()),
            })?;
            docs.push(s.source);
        }
        Ok(docs)
    }

    async fn try_claim(&self, instance_id: &str, slot: i64) -> Result<bool, PortError> {
        let mut leases = self.leases.lock().unwrap_or_else(|p| p.into_inner());
        Ok(leases.insert((instance_id.to_string(), slot)))
    }
}
