//! Lambda plumbing shared by the binaries: logging and error reporting.

/// Initialise logging once per process: JSON lines when `AWS_LAMBDA_LOG_FORMAT=JSON`, level from
/// `AWS_LAMBDA_LOG_LEVEL` / `RUST_LOG` (default INFO).
pub fn init_tracing() {
    lambda_runtime::tracing::init_default_subscriber();
}
