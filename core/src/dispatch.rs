//! Which capability handles a routed event, and the in-process invocation used by both the Lambda
//! binaries and `connect-events replay`.

use chrono::{DateTime, Utc};

use crate::deny_list::{DenyListService, EnforceOutcome};
use crate::error::HandlerError;
use crate::event::Event;
use crate::flow_logs::{ArchiveOutcome, ArchiveRequest, FlowLogArchiver};
use crate::queue_depth::{QueueDepthOutcome, QueueDepthService};

/// The Lambda functions of the project, named by their binary (the SAM template's
/// `Metadata.BuildProperties.Binary`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum HandlerKind {
    /// EventBridge: refresh the queue-depth index.
    QueueDepth,
    /// EventBridge: stop listed callers on `INITIATED`.
    DenyListEnforcer,
    /// EventBridge: archive flow logs on disconnect or error.
    FlowLogArchiver,
    /// Contact-flow invocation: deny-list check and agent flag (not routed by EventBridge rules).
    DenyListFlow,
    /// Kinesis: contact records and agent events into the analytics indices (template stream
    /// sources, not EventBridge rules).
    AnalyticsIndexer,
}

impl HandlerKind {
    pub const ALL: [HandlerKind; 5] = [
        HandlerKind::QueueDepth,
        HandlerKind::DenyListEnforcer,
        HandlerKind::FlowLogArchiver,
        HandlerKind::DenyListFlow,
        HandlerKind::AnalyticsIndexer,
    ];

    /// The binary name.
    pub fn binary(self) -> &'static str {
        match self {
            HandlerKind::QueueDepth => "queue-depth",
            HandlerKind::DenyListEnforcer => "deny-list-enforcer",
            HandlerKind::FlowLogArchiver => "flow-log-archiver",
            HandlerKind::DenyListFlow => "deny-list-flow",
            HandlerKind::AnalyticsIndexer => "analytics-indexer",
        }
    }

    pub fn from_binary(name: &str) -> Option<HandlerKind> {
        HandlerKind::ALL.into_iter().find(|k| k.binary() == name)
    }

    /// Whether EventBridge rules route to it (the contact-flow function is invoked by Connect).
    pub fn is_event_target(self) -> bool {
        !matches!(
            self,
            HandlerKind::DenyListFlow | HandlerKind::AnalyticsIndexer
        )
    }
}

/// How an event is being handled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InvocationContext {
    /// "Now" for the policies: the wall clock in Lambda, the event's time in a replay.
    pub now: DateTime<Utc>,
    /// Whether destructive actions (StopContact) may run.
    pub allow_side_effects: bool,
}

/// What a capability did with one event.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    QueueDepth(QueueDepthOutcome),
    DenyList(EnforceOutcome),
    FlowLogs(ArchiveOutcome),
}

/// The three event-driven capabilities, wired to their ports.
pub struct Capabilities {
    pub queue_depth: QueueDepthService,
    pub deny_list: DenyListService,
    pub flow_logs: FlowLogArchiver,
    /// The analytics store (`None` on AWS without `OPENSEARCH_ENDPOINT`).
    pub analytics: Option<crate::analytics::Analytics>,
}

impl Capabilities {
    /// Handle one routed event.
    pub async fn handle(
        &self,
        kind: HandlerKind,
        event: &Event,
        ctx: InvocationContext,
    ) -> Result<Outcome, HandlerError> {
        match kind {
            HandlerKind::QueueDepth => Ok(Outcome::QueueDepth(self.queue_depth.on_event(event, ctx.now).await?)),
            HandlerKind::DenyListEnforcer => {
                Ok(Outcome::DenyList(self.deny_list.enforce(event, ctx.now, ctx.allow_side_effects).await?))
            }
            HandlerKind::FlowLogArchiver => {
                let contact = event
                    .contact()
                    .ok_or_else(|| HandlerError::InvalidInput("the flow-log archiver needs a contact event".into()))?;
                let req = ArchiveRequest::from_event(event, contact)?;
                Ok(Outcome::FlowLogs(self.flow_logs.archive(&req, ctx.now).await?))
            }
            HandlerKind::DenyListFlow => Err(HandlerError::InvalidInput(
                "the deny-list contact-flow function is invoked by contact flows, not by EventBridge rules".into(),
            )),
            HandlerKind::AnalyticsIndexer => Err(HandlerError::InvalidInput(
                "the analytics indexer consumes Kinesis streams (contact records, agent events), not EventBridge events".into(),
            )),
        }
    }
}
