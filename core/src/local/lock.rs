//! One command at a time on a state directory.
//!
//! Every command that opens the embedded backend holds an exclusive advisory lock (`flock`) on
//! `<state>/.lock` until it exits: two replays, or forty `denylist add`, on one directory run one
//! after the other instead of overwriting each other's state. The lock file names its holder (pid,
//! command line with numbers masked, since when) so that the one who waits can be told who it waits
//! for. The kernel releases the lock when the holder exits, even on `kill -9`: a stale lock cannot
//! exist. A directory nobody may write to is read without a lock (nobody can change it).

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// How long to wait between attempts.
const POLL: Duration = Duration::from_millis(25);

/// The held lock; released on drop (or when the process ends).
#[derive(Debug)]
pub struct StateLock {
    _file: Option<File>,
}

/// Why the lock was not taken.
#[derive(Debug, thiserror::Error)]
pub enum LockError {
    /// Another command holds it and did not let go within the wait.
    #[error(
        "state directory {dir} is in use by another connect-events command ({holder}); \
         waited {waited_s} s. Wait for it to finish, or point --state-dir elsewhere"
    )]
    Held {
        dir: String,
        holder: String,
        waited_s: u64,
    },
    /// The lock file cannot be created or locked.
    #[error("state directory {dir}: cannot lock {path}: {source}")]
    Io {
        dir: String,
        path: String,
        #[source]
        source: std::io::Error,
    },
}

impl StateLock {
    /// Take the lock of `dir` (created if missing), waiting at most `wait`. `on_wait` is called
    /// once, with the holder's description, when the lock is busy.
    pub fn acquire(
        dir: &Path,
        wait: Duration,
        on_wait: &mut dyn FnMut(&str),
    ) -> Result<StateLock, LockError> {
        let path = dir.join(".lock");
        let io = |source: std::io::Error| LockError::Io {
            dir: dir.display().to_string(),
            path: path.display().to_string(),
            source,
        };
        if let Err(e) = std::fs::create_dir_all(dir) {
            return match e.kind() {
                // Nobody can write here: nothing to serialize.
                std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem => {
                    Ok(StateLock { _file: None })
                }
                _ => Err(io(e)),
            };
        }
        let mut file = match OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&path)
        {
            Ok(f) => f,
            Err(e)
                if matches!(
                    e.kind(),
                    std::io::ErrorKind::PermissionDenied | std::io::ErrorKind::ReadOnlyFilesystem
                ) =>
            {
                return Ok(StateLock { _file: None })
            }
            Err(e) => return Err(io(e)),
        };
        let started = Instant::now();
        let mut told = false;
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(TryLockError::WouldBlock) => {
                    let holder = holder_of(&path);
                    if !told {
                        on_wait(&holder);
                        told = true;
                    }
                    if started.elapsed() >= wait {
                        return Err(LockError::Held {
                            dir: dir.display().to_string(),
                            holder,
                            waited_s: started.elapsed().as_secs(),
                        });
                    }
                    std::thread::sleep(POLL);
                }
                Err(TryLockError::Error(e)) => return Err(io(e)),
            }
        }
        // Name the holder. Best effort: the lock is what counts.
        let me = describe_self();
        let _ = file
            .set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| file.write_all(me.as_bytes()));
        Ok(StateLock { _file: Some(file) })
    }
}

/// What the lock file says about its holder.
fn holder_of(path: &PathBuf) -> String {
    let mut text = String::new();
    let _ = File::open(path).and_then(|mut f| f.read_to_string(&mut text));
    let text = text.trim();
    if text.is_empty() {
        "a command starting up".into()
    } else {
        text.chars().take(300).collect()
    }
}

/// `pid 1234: connect-events replay day.ndjson, since 2026-12-04T18:00:00Z` (numbers masked).
fn describe_self() -> String {
    let args: Vec<String> = std::env::args()
        .enumerate()
        .map(|(i, a)| {
            if i == 0 {
                Path::new(&a)
                    .file_name()
                    .map_or(a.clone(), |n| n.to_string_lossy().into_owned())
            } else {
                a
            }
        })
        .collect();
    format!(
        "pid {}: {}, since {}",
        std::process::id(),
        crate::redact::redact_numbers(&args.join(" ")),
        chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_waits_and_is_told_who_holds_it() {
        let dir = std::env::temp_dir().join(format!("state-lock-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let first = StateLock::acquire(&dir, Duration::ZERO, &mut |_| panic!("free")).unwrap();
        let mut told = Vec::new();
        let err = StateLock::acquire(&dir, Duration::from_millis(60), &mut |h| {
            told.push(h.to_string())
        })
        .unwrap_err();
        assert_eq!(told.len(), 1);
        assert!(
            told[0].starts_with(&format!("pid {}:", std::process::id())),
            "{told:?}"
        );
        assert!(err.to_string().contains("in use by another"), "{err}");
        drop(first);
        StateLock::acquire(&dir, Duration::ZERO, &mut |_| panic!("released")).unwrap();
    }
}
