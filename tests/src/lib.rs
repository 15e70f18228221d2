//! Test support for the `connect-events` workspace.
//!
//! Everything here talks the real wire protocols against local servers:
//!
//! * [`harness`] starts (once per test process) a **moto** server for S3, DynamoDB and CloudWatch Logs and
//!   an **osmem-server** for OpenSearch, and builds SDK configurations that point at them;
//! * [`connect_fake`] is an in-process, wire-level fake of the Amazon Connect API (restJson1, `2017-08-08`)
//!   that the unmodified `aws-sdk-connect` client talks to;
//! * [`fault_proxy`] sits in front of any of them and injects latency, resets, error statuses and
//!   truncated bodies by request kind and rate;
//! * [`lambda_emulator`] is a Lambda Runtime API emulator that runs a built Lambda binary as a child
//!   process and invokes it with JSON events.
//!
//! Servers that live inside the test process run on dedicated threads with their own Tokio runtime, so
//! they outlive any single `#[tokio::test]` runtime and blocking calls from a test never deadlock them.

use std::path::{Path, PathBuf};

pub mod connect_fake;
pub mod eventbridge_fake;
pub mod fault_proxy;
pub mod harness;
pub mod lambda_emulator;
pub mod privacy;
/// Shared setup for tests and benches: buckets that pass the runbook's checks, flow-log groups seeded with
/// fixture lines, the flow-log fixtures shifted so that contact C1 ended an hour ago, the environment of
/// a Lambda process pointed at the local servers.
pub mod seed;

/// The workspace root (the parent of the `tests` crate's manifest directory).
pub fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the tests crate lives inside the workspace directory")
        .to_path_buf()
}

/// Path of a file under `tests/fixtures`, e.g. `fixture("api/describe-contact-voice.json")`.
pub fn fixture(rel: &str) -> PathBuf {
    workspace_root().join("tests").join("fixtures").join(rel)
}

/// Reads a JSON fixture under `tests/fixtures` and parses it; panics with the path on any error.
pub fn fixture_json(rel: &str) -> serde_json::Value {
    let path = fixture(rel);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("cannot read fixture {}: {e}", path.display()));
    serde_json::from_str(&text)
        .unwrap_or_else(|e| panic!("fixture {} is not valid JSON: {e}", path.display()))
}

/// The cargo target directory: `CARGO_TARGET_DIR` (relative values are taken from the workspace root)
/// or `<workspace>/target`.
pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) if !dir.is_empty() => {
            let dir = PathBuf::from(dir);
            if dir.is_absolute() {
                dir
            } else {
                workspace_root().join(dir)
            }
        }
        _ => workspace_root().join("target"),
    }
}

/// Path of the debug build of the workspace binary `name` (`<target>/debug/<name>`).
///
/// # Panics
///
/// If the binary does not exist, with a message that says how to build it. `cargo test` does not build
/// the binaries of other workspace members, so end-to-end tests need a prior `cargo build --workspace --bins`.
pub fn target_bin(name: &str) -> PathBuf {
    // `CONNECT_EVENTS_BIN_PROFILE=release` runs the tests against release binaries (long runs).
    let profile = std::env::var("CONNECT_EVENTS_BIN_PROFILE").unwrap_or_else(|_| "debug".into());
    let path = target_dir()
        .join(profile)
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.is_file(),
        "Lambda binary `{name}` not found at {}: run `cargo build --workspace --bins` first",
        path.display()
    );
    path
}

/// Relative path → content of every file below a state directory, but its lock file (which names
/// its last holder): two states are equal when their digests are.
pub fn state_digest(dir: &Path) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut out = std::collections::BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d)
            .expect("readable state directory")
            .flatten()
        {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.file_name().is_some_and(|n| n != ".lock") {
                let rel = path
                    .strip_prefix(dir)
                    .expect("below dir")
                    .display()
                    .to_string();
                out.insert(rel, std::fs::read(&path).expect("readable state file"));
            }
        }
    }
    out
}
