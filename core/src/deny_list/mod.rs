//! Deny list: E.164 numbers in a store (`DenylistingTable`, key `ContactNumber`), checked and flagged
//! from contact flows and enforced on contact events.

pub mod agent_app;
pub mod hits;
pub mod import;
pub mod intake;
pub mod model;
pub mod number;
pub mod policy;
pub mod ports;

pub use hits::{HitBacklog, PendingHit};
pub use intake::{Accepted, UNKNOWN_RANGE};
pub use model::{DenyEntry, EntrySource};
pub use number::{mask, normalize, NumberError, E164};
pub use policy::{
    AnonymousPolicy, CheckResult, DenyListConfig, DenyListService, EnforceOutcome, FailurePolicy,
    FlowAnswer, DEFAULT_FLOW_BUDGET,
};
pub use ports::{BatchOutcome, ContactControl, ContactInfo, DenyStore, StopOutcome};
