//! Queue-depth documents of the embedded backend, with OpenSearch's external-versioning rule.

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

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

/// `opensearch/<index>/<docId>.json`, kept in memory while a command runs and written back by
/// [`LocalIndex::flush`] (at the end of the command: [`super::LocalBackend::save`]): a replay
/// refreshes every queue's documents once per second of event time, so writing each refresh
/// through its own file would cost a file write per document per refresh. Documents are derived
/// state (the model and the events give them back), so a command killed before the flush loses
/// nothing a rerun does not restore. Slot leases are kept in memory: one command is the only
/// writer (the state directory's lock), and a lease is only about concurrent Lambda containers.
#[derive(Clone)]
pub struct LocalIndex {
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    docs: Mutex<Option<Docs>>,
    leases: Mutex<HashSet<(String, i64)>>,
}

#[derive(Default)]
struct Docs {
    stored: BTreeMap<String, Stored>,
    dirty: BTreeSet<String>,
}

impl LocalIndex {
    pub fn new(dir: PathBuf) -> Self {
        LocalIndex {
            inner: Arc::new(Inner {
                dir,
                docs: Mutex::new(None),
                leases: Mutex::new(HashSet::new()),
            }),
        }
    }

    fn path(&self, id: &str) -> PathBuf {
        // Document ids are `<instance>:<queue>:<channel>`: safe file names on Linux and macOS.
        self.inner
            .dir
            .join(format!("{}.json", id.replace('/', "_")))
    }

    /// The documents, read from disk the first time.
    fn docs(&self) -> Result<std::sync::MutexGuard<'_, Option<Docs>>, PortError> {
        let mut guard = self.inner.docs.lock().unwrap_or_else(|p| p.into_inner());
        if guard.is_none() {
            *guard = Some(self.load()?);
        }
        Ok(guard)
    }

    fn load(&self) -> Result<Docs, PortError> {
        let dir = &self.inner.dir;
        let files: Vec<PathBuf> = match std::fs::read_dir(dir) {
            Ok(rd) => rd
                .flatten()
                .map(|e| e.path())
                .filter(|p| p.extension().is_some_and(|e| e == "json"))
                .collect(),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
            Err(e) => return Err(PortError::io(SERVICE, dir.display(), e)),
        };
        let mut docs = Docs::default();
        for f in files {
            let Some(bytes) = read_optional(&f)? else {
                continue;
            };
            let stored: Stored =
                serde_json::from_slice(&bytes).map_err(|e| PortError::Rejected {
                    service: SERVICE,
                    message: format!("{}: {e}", f.display()),
                })?;
            docs.stored.insert(stored.source.id(), stored);
        }
        Ok(docs)
    }

    /// Write the documents changed since the last flush (one atomic write each).
    pub fn flush(&self) -> Result<(), PortError> {
        let mut guard = self.inner.docs.lock().unwrap_or_else(|p| p.into_inner());
        let Some(docs) = guard.as_mut() else {
            return Ok(());
        };
        while let Some(id) = docs.dirty.pop_first() {
            let Some(stored) = docs.stored.get(&id) else {
                continue;
            };
            let written = serde_json::to_vec_pretty(stored)
                .map_err(|e| PortError::Rejected {
                    service: SERVICE,
                    message: e.to_string(),
                })
                .and_then(|bytes| write_atomic(&self.path(&id), &bytes));
            if let Err(e) = written {
                docs.dirty.insert(id);
                return Err(e);
            }
        }
        Ok(())
    }
}

#[async_trait]
impl QueueDepthIndex for LocalIndex {
    async fn ensure_ready(&self) -> Result<(), PortError> {
        std::fs::create_dir_all(&self.inner.dir)
            .map_err(|e| PortError::io(SERVICE, self.inner.dir.display(), e))
    }

    async fn write(&self, docs: &[QueueDepthDoc]) -> Result<WriteOutcome, PortError> {
        let mut out = WriteOutcome::default();
        let mut guard = self.docs()?;
        let state = guard.get_or_insert_with(Docs::default);
        for doc in docs {
            let id = doc.id();
            let version = doc.version();
            if state.stored.get(&id).is_some_and(|s| s.version >= version) {
                out.stale_skipped += 1;
                continue;
            }
            state.stored.insert(
                id.clone(),
                Stored {
                    version,
                    source: doc.clone(),
                },
            );
            state.dirty.insert(id);
            out.written += 1;
        }
        Ok(out)
    }

    async fn documents(&self) -> Result<Vec<QueueDepthDoc>, PortError> {
        let guard = self.docs()?;
        // In file-name order, as they were listed from disk.
        let mut docs: Vec<(PathBuf, QueueDepthDoc)> = guard
            .as_ref()
            .map(|d| {
                d.stored
                    .iter()
                    .map(|(id, s)| (self.path(id), s.source.clone()))
                    .collect()
            })
            .unwrap_or_default();
        docs.sort_by(|a, b| a.0.cmp(&b.0));
        Ok(docs.into_iter().map(|(_, d)| d).collect())
    }

    async fn try_claim(&self, instance_id: &str, slot: i64) -> Result<bool, PortError> {
        let mut leases = self.inner.leases.lock().unwrap_or_else(|p| p.into_inner());
        Ok(leases.insert((instance_id.to_string(), slot)))
    }
}
