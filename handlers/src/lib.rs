//! # connect-events-handlers
//!
//! How connect-events talks to AWS: one adapter per service in [`aws`] (each implements a port of
//! `connect-events-core`), the Lambda plumbing in [`lambda`], and the `connect-events` CLI in [`cli`].
//! The binaries in `src/bin/` are thin: parse, call the core capability, map the result.

pub mod after_response;
pub mod app;
pub mod aws;
pub mod backend;
pub mod cli;
pub mod lambda;
