//! The `detail` of an "Amazon Connect Contact Event".
//!
//! Real events use camelCase keys; several AWS samples use PascalCase. Both are accepted through
//! serde aliases. Enumerations keep values this code does not know as `Other(String)`, because AWS
//! adds event types and channels over time and consumers must keep working.

use std::collections::BTreeMap;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::time::{null_default, opt_timestamp};

/// Declares a string enumeration with an `Other(String)` fallback.
macro_rules! string_enum {
    ($(#[$meta:meta])* $name:ident { $($variant:ident = $text:literal),+ $(,)? } $(case_insensitive = $ci:literal)?) => {
        $(#[$meta])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum $name {
            $($variant,)+
            /// A value this version does not know (kept as received).
            Other(String),
        }

        impl $name {
            /// The value as AWS writes it.
            pub fn as_str(&self) -> &str {
                match self {
                    $($name::$variant => $text,)+
                    $name::Other(s) => s,
                }
            }

            /// Parse, keeping unknown values as `Other`.
            pub fn parse(s: &str) -> Self {
                #[allow(unused_mut, unused_assignments)]
                let mut ci = false;
                $(ci = $ci;)?
                let key = if ci { s.to_ascii_uppercase() } else { s.to_string() };
                match key.as_str() {
                    $($text => $name::$variant,)+
                    _ => $name::Other(s.to_string()),
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl Serialize for $name {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let s = String::deserialize(d)?;
                Ok($name::parse(&s))
            }
        }
    };
}

string_enum!(
    /// `eventType` of a contact event.
    EventType {
        Initiated = "INITIATED",
        ConnectedToSystem = "CONNECTED_TO_SYSTEM",
        ContactDataUpdated = "CONTACT_DATA_UPDATED",
        Queued = "QUEUED",
        ConnectedToAgent = "CONNECTED_TO_AGENT",
        Disconnected = "DISCONNECTED",
        Completed = "COMPLETED",
        Paused = "PAUSED",
        Resumed = "RESUMED",
    }
);

string_enum!(
    /// Contact channel; parsed case-insensitively (an AWS sample writes `"Voice"`).
    Channel {
        Voice = "VOICE",
        Chat = "CHAT",
        Task = "TASK",
        Email = "EMAIL",
    } case_insensitive = true
);

string_enum!(
    /// How the contact was initiated.
    InitiationMethod {
        Inbound = "INBOUND",
        Outbound = "OUTBOUND",
        Transfer = "TRANSFER",
        Callback = "CALLBACK",
        Api = "API",
        QueueTransfer = "QUEUE_TRANSFER",
        ExternalOutbound = "EXTERNAL_OUTBOUND",
        Monitor = "MONITOR",
        Disconnect = "DISCONNECT",
        AgentReply = "AGENT_REPLY",
        Flow = "FLOW",
        WebrtcApi = "WEBRTC_API",
    }
);

string_enum!(
    /// Queue type in `queueInfo`.
    QueueType {
        Standard = "STANDARD",
        Agent = "AGENT",
    }
);

/// `queueInfo`: present from QUEUED on, absent for outbound contacts.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct QueueInfo {
    #[serde(alias = "QueueArn", default)]
    pub queue_arn: Option<String>,
    #[serde(alias = "QueueType", default)]
    pub queue_type: Option<QueueType>,
    #[serde(
        alias = "EnqueueTimestamp",
        default,
        deserialize_with = "opt_timestamp"
    )]
    pub enqueue_timestamp: Option<DateTime<Utc>>,
}

impl QueueInfo {
    /// The queue id: the last path segment of the queue ARN.
    pub fn queue_id(&self) -> Option<&str> {
        self.queue_arn
            .as_deref()
            .and_then(|arn| arn.rsplit('/').next())
            .filter(|s| !s.is_empty())
    }
}

/// `agentInfo`: present from CONNECTED_TO_AGENT on.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AgentInfo {
    #[serde(alias = "AgentArn", default)]
    pub agent_arn: Option<String>,
    #[serde(
        alias = "ConnectedToAgentTimestamp",
        default,
        deserialize_with = "opt_timestamp"
    )]
    pub connected_to_agent_timestamp: Option<DateTime<Utc>>,
    #[serde(
        alias = "AfterContactWorkStartTimestamp",
        default,
        deserialize_with = "opt_timestamp"
    )]
    pub after_contact_work_start_timestamp: Option<DateTime<Utc>>,
    #[serde(
        alias = "AfterContactWorkEndTimestamp",
        default,
        deserialize_with = "opt_timestamp"
    )]
    pub after_contact_work_end_timestamp: Option<DateTime<Utc>>,
    #[serde(
        alias = "AcceptedByAgentTimestamp",
        default,
        deserialize_with = "opt_timestamp"
    )]
    pub accepted_by_agent_timestamp: Option<DateTime<Utc>>,
}

/// `disconnectReason`: a plain string in the data model; an object `{"code": …}` is accepted too
/// because no sample settles the shape.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(transparent)]
pub struct DisconnectReason(pub String);

impl<'de> Deserialize<'de> for DisconnectReason {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged)]
        enum Shape {
            Text(String),
            Object {
                #[serde(alias = "Code")]
                code: String,
            },
        }
        match Shape::deserialize(d) {
            Ok(Shape::Text(s)) | Ok(Shape::Object { code: s }) => Ok(DisconnectReason(s)),
            Err(_) => Err(serde::de::Error::custom(
                "expected a string or an object with `code`",
            )),
        }
    }
}

/// The contact-event detail. Only `eventType` and `contactId` are required.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ContactDetail {
    #[serde(alias = "EventType")]
    pub event_type: EventType,
    #[serde(alias = "ContactId")]
    pub contact_id: String,
    #[serde(alias = "InitialContactId", default)]
    pub initial_contact_id: Option<String>,
    #[serde(alias = "PreviousContactId", default)]
    pub previous_contact_id: Option<String>,
    #[serde(alias = "RelatedContactId", default)]
    pub related_contact_id: Option<String>,
    #[serde(alias = "Channel", default)]
    pub channel: Option<Channel>,
    #[serde(alias = "InstanceArn", alias = "InstanceARN", default)]
    pub instance_arn: Option<String>,
    #[serde(alias = "InitiationMethod", default)]
    pub initiation_method: Option<InitiationMethod>,
    #[serde(
        alias = "InitiationTimestamp",
        default,
        deserialize_with = "opt_timestamp"
    )]
    pub initiation_timestamp: Option<DateTime<Utc>>,
    #[serde(
        alias = "ConnectedToSystemTimestamp",
        default,
        deserialize_with = "opt_timestamp"
    )]
    pub connected_to_system_timestamp: Option<DateTime<Utc>>,
    #[serde(
        alias = "DisconnectTimestamp",
        default,
        deserialize_with = "opt_timestamp"
    )]
    pub disconnect_timestamp: Option<DateTime<Utc>>,
    #[serde(
        alias = "ScheduledTimestamp",
        default,
        deserialize_with = "opt_timestamp"
    )]
    pub scheduled_timestamp: Option<DateTime<Utc>>,
    #[serde(alias = "QueueInfo", default)]
    pub queue_info: Option<QueueInfo>,
    #[serde(alias = "AgentInfo", default)]
    pub agent_info: Option<AgentInfo>,
    #[serde(alias = "Tags", default, deserialize_with = "null_default")]
    pub tags: BTreeMap<String, String>,
    #[serde(
        alias = "UpdatedProperties",
        default,
        deserialize_with = "null_default"
    )]
    pub updated_properties: Vec<String>,
    #[serde(alias = "DisconnectReason", default)]
    pub disconnect_reason: Option<DisconnectReason>,
    #[serde(alias = "AnsweringMachineDetectionStatus", default)]
    pub answering_machine_detection_status: Option<String>,
    /// `routingCriteria` as an object (one AWS sample) or a list (another); always a list here.
    #[serde(alias = "RoutingCriteria", default, deserialize_with = "one_or_many")]
    pub routing_criteria: Vec<serde_json::Value>,
}

fn one_or_many<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<serde_json::Value>, D::Error> {
    Ok(match serde_json::Value::deserialize(d)? {
        serde_json::Value::Null => Vec::new(),
        serde_json::Value::Array(items) => items,
        other => vec![other],
    })
}

/// The account of an ARN (`arn:PARTITION:SERVICE:REGION:ACCOUNT:RESOURCE`), when it is 12 digits.
pub fn arn_account(arn: &str) -> Option<&str> {
    arn.strip_prefix("arn:")
        .and_then(|rest| rest.split(':').nth(3))
        .filter(|a| a.len() == 12 && a.bytes().all(|b| b.is_ascii_digit()))
}

impl ContactDetail {
    /// The instance id: the last segment of `instanceArn`.
    pub fn instance_id(&self) -> Option<&str> {
        self.instance_arn
            .as_deref()
            .and_then(|arn| arn.rsplit('/').next())
            .filter(|s| !s.is_empty())
    }

    /// The account that owns the contact: the one in `instanceArn`.
    pub fn account_id(&self) -> Option<&str> {
        self.instance_arn.as_deref().and_then(arn_account)
    }

    /// The queue id from `queueInfo`.
    pub fn queue_id(&self) -> Option<&str> {
        self.queue_info.as_ref().and_then(QueueInfo::queue_id)
    }

    /// When the step this event reports happened, from the detail timestamps (not arrival order).
    pub fn step_time(&self) -> Option<DateTime<Utc>> {
        let agent = self.agent_info.as_ref();
        let step = match self.event_type {
            EventType::Queued => self.queue_info.as_ref().and_then(|q| q.enqueue_timestamp),
            EventType::ConnectedToAgent => agent.and_then(|a| a.connected_to_agent_timestamp),
            EventType::Disconnected => self.disconnect_timestamp,
            EventType::Completed => agent
                .and_then(|a| a.after_contact_work_end_timestamp)
                .or(self.disconnect_timestamp),
            EventType::ConnectedToSystem => self.connected_to_system_timestamp,
            _ => None,
        };
        step.or(self.initiation_timestamp)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_values_are_kept() {
        assert_eq!(
            EventType::parse("CONTACT_TELEPORTED"),
            EventType::Other("CONTACT_TELEPORTED".into())
        );
        assert_eq!(
            EventType::parse("CONTACT_TELEPORTED").as_str(),
            "CONTACT_TELEPORTED"
        );
        assert_eq!(Channel::parse("Voice"), Channel::Voice);
        assert_eq!(Channel::parse("sms"), Channel::Other("sms".into()));
        assert_eq!(
            InitiationMethod::parse("inbound"),
            InitiationMethod::Other("inbound".into())
        );
    }

    #[test]
    fn disconnect_reason_shapes() {
        let s: DisconnectReason = serde_json::from_str(r#""OUTBOUND_ATTEMPT_FAILED""#).unwrap();
        let o: DisconnectReason =
            serde_json::from_str(r#"{"Code":"OUTBOUND_ATTEMPT_FAILED"}"#).unwrap();
        assert_eq!(s, o);
        assert!(serde_json::from_str::<DisconnectReason>("5").is_err());
    }
}
