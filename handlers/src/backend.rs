//! Choosing the backend of the CLI: the embedded local one, or AWS.

/// Which implementation of the ports to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum BackendKind {
    /// Embedded backend on the state directory (no AWS, no servers).
    Local,
    /// AWS services (credentials, Region and endpoints from the environment).
    Aws,
}
