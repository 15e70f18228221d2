//! The event model: EventBridge envelope, Amazon Connect contact-event detail, contact-flow
//! invocations, and readers for archived events.
//!
//! Parsing is tolerant where AWS asks consumers to be (unknown fields ignored, unknown enum values
//! kept as `Other`, camelCase and PascalCase keys, optional timestamps) and strict where the input is
//! unusable: a missing `detail`, a `contactId` that is not a string or broken JSON is an
//! [`EventError`] naming the field and, when read from a file, the `file:line`.

mod contact;
mod envelope;
mod error;
pub mod flow;
pub mod input;
mod time;

pub use contact::{
    arn_account, AgentInfo, Channel, ContactDetail, DisconnectReason, EventType, InitiationMethod,
    QueueInfo, QueueType,
};
pub use envelope::{
    unsafe_id_reason, DetailType, Envelope, Event, CONNECT_SOURCE, CONTACT_EVENT_DETAIL_TYPE,
};
pub use error::{EventError, EventErrorKind, SourceLoc};
pub use time::{format_millis, parse_timestamp};
