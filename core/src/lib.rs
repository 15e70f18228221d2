//! # connect-events-core
//!
//! What happens when an Amazon Connect contact event arrives, independent of AWS:
//!
//! * [`event`] — the EventBridge envelope, the contact-event detail, contact-flow invocations and the
//!   readers for archived events (JSON, NDJSON, directories) with `file:line` error locations;
//! * [`rules`] — the EventBridge pattern matcher and the routing rules read from the SAM template;
//! * [`queue_depth`], [`deny_list`], [`flow_logs`] — each capability's policy and the ports (traits)
//!   it needs;
//! * [`local`] — the embedded backends that implement those ports on the local file system, so a
//!   replay runs the same code as the Lambda functions without AWS;
//! * [`replay`] — routes a stream of events through the rules to the capabilities and reports.
//!
//! No AWS SDK is used here: the AWS adapters live in `connect-events-handlers`.

pub mod analytics;
pub mod capture;
pub mod clock;
pub mod deny_list;
pub mod dispatch;
pub mod error;
pub mod event;
pub mod flow_logs;
pub mod local;
pub mod queue_depth;
pub mod redact;
pub mod replay;
pub mod rules;
pub mod settings;

pub use error::{HandlerError, PortError};
