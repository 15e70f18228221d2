//! Contact records (CTRs) and agent events as Connect's data streaming delivers them: only the
//! fields the metrics read are typed, every one optional (Connect sends `null` or leaves them out by
//! kind of contact); the record itself is kept whole.

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::Value;

/// What a streamed record is.
#[derive(Debug, Clone, PartialEq)]
pub enum Incoming {
    Ctr(ContactRecord),
    AgentEvent(AgentEvent),
}

impl Incoming {
    /// Detect the kind by its fields (`ContactId` + `AWSContactTraceRecordFormatVersion` or
    /// `DisconnectTimestamp` for a CTR, `EventType` + `AgentARN` for an agent event) and type it.
    pub fn from_value(value: Value) -> Result<Incoming, String> {
        let has = |k: &str| value.get(k).is_some();
        if has("AgentARN") && has("EventType") {
            let typed = AgentEvent::deserialize(&value).map_err(|e| reason(&e))?;
            if typed.event_id.is_empty() {
                return Err("agent event without EventId".into());
            }
            return Ok(Incoming::AgentEvent(AgentEvent {
                raw: value,
                ..typed
            }));
        }
        if has("ContactId") {
            let typed = ContactRecord::deserialize(&value).map_err(|e| reason(&e))?;
            if typed.contact_id.is_empty() {
                return Err("contact record without ContactId".into());
            }
            return Ok(Incoming::Ctr(ContactRecord {
                raw: value,
                ..typed
            }));
        }
        Err("neither a contact record (ContactId) nor an agent event (AgentARN, EventType)".into())
    }
}

fn reason(e: &serde_json::Error) -> String {
    crate::redact::serde_reason(&e.to_string())
}

/// The CTR fields the metrics need.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ContactRecord {
    pub contact_id: String,
    #[serde(default)]
    pub initial_contact_id: Option<String>,
    #[serde(default)]
    pub channel: Option<String>,
    #[serde(default)]
    pub initiation_method: Option<String>,
    #[serde(default)]
    pub initiation_timestamp: Option<DateTime<Utc>>,
    #[serde(default)]
    pub disconnect_timestamp: Option<DateTime<Utc>>,
    #[serde(default)]
    pub last_update_timestamp: Option<DateTime<Utc>>,
    #[serde(default)]
    pub agent: Option<CtrAgent>,
    #[serde(default)]
    pub queue: Option<CtrQueue>,
    /// The record as delivered.
    #[serde(skip)]
    pub raw: Value,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CtrAgent {
    #[serde(default, rename = "ARN")]
    pub arn: Option<String>,
    #[serde(default)]
    pub after_contact_work_duration: Option<i64>,
    #[serde(default)]
    pub agent_interaction_duration: Option<i64>,
    #[serde(default)]
    pub connected_to_agent_timestamp: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct CtrQueue {
    #[serde(default, rename = "ARN")]
    pub arn: Option<String>,
    #[serde(default)]
    pub enqueue_timestamp: Option<DateTime<Utc>>,
}

impl ContactRecord {
    /// The version of this copy: `LastUpdateTimestamp` in ms (Connect's own rule: a copy with a
    /// newer one carries new data), else the disconnect, else 0.
    pub fn version(&self) -> i64 {
        self.last_update_timestamp
            .or(self.disconnect_timestamp)
            .map_or(0, |t| t.timestamp_millis())
    }

    /// The time the record is attributed to: disconnect, then initiation, then last update.
    pub fn attributed_at(&self) -> Option<DateTime<Utc>> {
        self.disconnect_timestamp
            .or(self.initiation_timestamp)
            .or(self.last_update_timestamp)
    }
}

/// The agent-event fields the metrics need.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AgentEvent {
    #[serde(rename = "AgentARN")]
    pub agent_arn: String,
    #[serde(default)]
    pub event_id: String,
    pub event_type: String,
    #[serde(default)]
    pub event_timestamp: Option<DateTime<Utc>>,
    #[serde(default)]
    pub current_agent_snapshot: Option<Snapshot>,
    #[serde(skip)]
    pub raw: Value,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Snapshot {
    #[serde(default)]
    pub agent_status: Option<AgentStatus>,
}

#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct AgentStatus {
    #[serde(default, rename = "Type")]
    pub kind: Option<String>,
}

impl AgentEvent {
    /// Shows the agent online: a LOGIN, or a snapshot whose status is not OFFLINE (heartbeats are
    /// kept out of the event store, so a logged-out agent's heartbeats never count).
    pub fn shows_online(&self) -> bool {
        self.event_type == "LOGIN"
            || self
                .current_agent_snapshot
                .as_ref()
                .and_then(|s| s.agent_status.as_ref())
                .and_then(|s| s.kind.as_deref())
                .is_some_and(|k| k != "OFFLINE")
    }
}
