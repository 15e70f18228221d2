//! The `connect-events` command line.
