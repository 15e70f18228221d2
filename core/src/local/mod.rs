//! Embedded backends: the ports implemented on the local file system, so `connect-events replay`
//! runs the same policies as the Lambda functions with no AWS and no servers.
//!
//! Layout of the state directory (default `.connect-events/`):
//!
//! | path | what |
//! | --- | --- |
//! | `connect/model.json` | contact-center model fed by the replayed events (answers the metrics port and DescribeContact; records contacts stopped with `--allow-side-effects`) |
//! | `connect/contacts/<contactId>.json` | optional DescribeContact answers (`{"Contact": {...}}`) giving callers' numbers |
//! | `opensearch/<index>/<docId>.json` | queue-depth documents with their external `_version` |
//! | `denylist.json` | deny-list entries |
//! | `s3/<bucket>/<key>` | archives (`s3-metadata/<bucket>/<key>.json` holds their metadata) |
//! | `analytics/contact-records.json`, `analytics/agent-events.json` | contact records (newest copy per ContactId) and agent events (per EventId) |
//! | `.lock` | held by the command using the directory; names it (see [`StateLock`]) |
//!
//! Queue-depth documents and the model are kept in memory while a command runs and written at its
//! end ([`LocalBackend::save`]); deny-list entries and archives are written as they change. Every
//! write replaces a whole file atomically (write to a temporary file, then rename), and
//! every structure is serialized in a stable order, so the same input leaves byte-identical state.

mod analytics;
mod archive_dir;
mod deny_file;
mod docs;
mod flow_files;
mod lock;
mod model;

use std::path::{Path, PathBuf};

pub use analytics::LocalAnalytics;
pub use archive_dir::LocalArchive;
pub use deny_file::LocalDenyStore;
pub use docs::LocalIndex;
pub use flow_files::LocalFlowLogs;
pub use lock::{LockError, StateLock};
pub use model::{ContactCenterModel, LocalContacts, LocalMetrics, SharedModel};

use crate::error::PortError;

/// Write a file atomically and durably: a temporary file in the same directory, written and
/// fsynced, renamed over the target, then the directory fsynced (so the rename survives a power
/// cut). A failed write removes its temporary file; the target is either the old or the new content.
pub(crate) fn write_atomic(path: &Path, bytes: &[u8]) -> Result<(), PortError> {
    use std::io::Write;
    let service = "local state";
    let dir = path.parent().filter(|d| !d.as_os_str().is_empty());
    if let Some(dir) = dir {
        std::fs::create_dir_all(dir).map_err(|e| PortError::io(service, dir.display(), e))?;
    }
    let tmp = temp_path(path);
    let written = std::fs::File::create(&tmp).and_then(|mut f| {
        f.write_all(bytes)?;
        f.sync_all()
    });
    if let Err(e) = written.and_then(|()| std::fs::rename(&tmp, path)) {
        let _ = std::fs::remove_file(&tmp);
        return Err(PortError::io(service, path.display(), e));
    }
    if let Some(dir) = dir {
        // Not every file system can fsync a directory; the rename is done either way.
        let _ = std::fs::File::open(dir).and_then(|d| d.sync_all());
    }
    Ok(())
}

/// The temporary file of a write to `path`: `.<name>.tmp-<pid>` beside it.
fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map_or_else(|| "state".into(), |n| n.to_string_lossy().into_owned());
    path.with_file_name(format!(".{name}{TEMP_MARK}{}", std::process::id()))
}

const TEMP_MARK: &str = ".tmp-";

/// Remove the temporary files a killed command left below `dir` (called with the lock held, so no
/// write is in progress).
fn remove_stale_temps(dir: &Path) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        let name = entry.file_name();
        let name = name.to_string_lossy();
        if kind.is_dir() {
            remove_stale_temps(&path);
        } else if kind.is_file() && name.starts_with('.') && name.contains(TEMP_MARK) {
            let _ = std::fs::remove_file(&path);
        }
    }
}

/// Read a file if it exists.
pub(crate) fn read_optional(path: &Path) -> Result<Option<Vec<u8>>, PortError> {
    match std::fs::read(path) {
        Ok(b) => Ok(Some(b)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(PortError::io("local state", path.display(), e)),
    }
}

/// Stable 64-bit FNV-1a hash (used as a local ETag).
pub(crate) fn fnv1a(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(*b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// The paths of a state directory.
#[derive(Debug, Clone)]
pub struct StateDir(pub PathBuf);

impl StateDir {
    pub fn new(path: impl Into<PathBuf>) -> Self {
        StateDir(path.into())
    }
    pub fn model(&self) -> PathBuf {
        self.0.join("connect").join("model.json")
    }
    pub fn contacts(&self) -> PathBuf {
        self.0.join("connect").join("contacts")
    }
    /// DescribeUser answers (`<id>.json`) of the local Connect users.
    pub fn users(&self) -> PathBuf {
        self.0.join("connect").join("users")
    }
    pub fn index(&self, name: &str) -> PathBuf {
        self.0.join("opensearch").join(name)
    }
    pub fn denylist(&self) -> PathBuf {
        self.0.join("denylist.json")
    }
    pub fn s3(&self) -> PathBuf {
        self.0.join("s3")
    }
    pub fn s3_metadata(&self) -> PathBuf {
        self.0.join("s3-metadata")
    }
}

/// The embedded backend: every port on the state directory, plus flow-log files.
pub struct LocalBackend {
    pub state: StateDir,
    pub model: SharedModel,
    /// Held while the backend lives: one command at a time on a state directory.
    _lock: StateLock,
    /// The queue-depth indices handed out by [`LocalBackend::capabilities`], flushed by
    /// [`LocalBackend::save`].
    indices: std::sync::Mutex<Vec<LocalIndex>>,
    /// The analytics store (`analytics/`), flushed by [`LocalBackend::save`].
    pub analytics: LocalAnalytics,
}

/// How long [`LocalBackend::open`] waits for another command's lock.
pub const DEFAULT_LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(300);

impl LocalBackend {
    /// Open (or start) a state directory, waiting (silently, up to [`DEFAULT_LOCK_WAIT`]) for a
    /// command that holds it.
    pub fn open(dir: impl Into<PathBuf>) -> Result<LocalBackend, crate::HandlerError> {
        Self::open_waiting(dir, DEFAULT_LOCK_WAIT, &mut |_| {})
    }

    /// Open a state directory: take its lock (waiting at most `wait`; `on_wait` hears once who
    /// holds it), then read the model, so that what the previous holder saved is what we see.
    /// A lock not taken in time is a configuration error.
    pub fn open_waiting(
        dir: impl Into<PathBuf>,
        wait: std::time::Duration,
        on_wait: &mut dyn FnMut(&str),
    ) -> Result<LocalBackend, crate::HandlerError> {
        let state = StateDir::new(dir);
        let lock = StateLock::acquire(&state.0, wait, on_wait)
            .map_err(|e| crate::HandlerError::Config(e.to_string()))?;
        remove_stale_temps(&state.0);
        let model = SharedModel::open(&state)?;
        let analytics = LocalAnalytics::new(state.0.join("analytics"));
        Ok(LocalBackend {
            state,
            model,
            _lock: lock,
            indices: std::sync::Mutex::new(Vec::new()),
            analytics,
        })
    }

    /// Wire the capabilities. Flow logs on disk are complete, so the archiver does not wait for
    /// them to settle.
    pub fn capabilities(
        &self,
        settings: &crate::settings::Settings,
        flow_logs: Vec<PathBuf>,
    ) -> crate::dispatch::Capabilities {
        use crate::deny_list::DenyListService;
        use crate::flow_logs::FlowLogArchiver;
        use crate::queue_depth::QueueDepthService;

        let mut flow_config = settings.flow_logs.clone();
        flow_config.settle_polls = 1;
        flow_config.no_logs_grace = chrono::Duration::zero();
        if flow_config.log_group.is_none() && flow_config.instance_alias.is_none() {
            flow_config.log_group = Some("/aws/connect/local".into());
        }
        let index = LocalIndex::new(self.state.index(&settings.queue_depth_index));
        self.indices
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(index.clone());
        crate::dispatch::Capabilities {
            queue_depth: QueueDepthService::new(
                Box::new(self.model.metrics()),
                Box::new(index),
                settings.queue_depth.clone(),
            ),
            deny_list: DenyListService::new(
                Box::new(LocalDenyStore::new(self.state.denylist())),
                Box::new(self.model.contacts()),
                settings.deny_list.clone(),
            ),
            flow_logs: FlowLogArchiver::new(
                Box::new(LocalFlowLogs::new(flow_logs)),
                Box::new(LocalArchive::new(&self.state)),
                flow_config,
            ),
            analytics: Some(crate::analytics::Analytics::new(Box::new(
                self.analytics.clone(),
            ))),
        }
    }

    /// Persist what is kept in memory while a command runs: the queue-depth documents, then the
    /// model.
    pub fn save(&self) -> Result<(), PortError> {
        for index in self
            .indices
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .iter()
        {
            index.flush()?;
        }
        self.analytics.flush()?;
        self.model.save()
    }
}

impl crate::replay::Observer for LocalBackend {
    fn observe(&self, event: &crate::event::Event) {
        self.model.observe(event);
    }
}
