//! The EventBridge envelope.
//!
//! `aws_lambda_events::eventbridge::EventBridgeEvent` drops the top-level `replay-name` that replayed
//! events carry, so the envelope is modelled here.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::contact::ContactDetail;
use super::error::{EventError, EventErrorKind};
use super::time::opt_timestamp;

/// `source` of every Amazon Connect event.
pub const CONNECT_SOURCE: &str = "aws.connect";
/// `detail-type` of contact events.
pub const CONTACT_EVENT_DETAIL_TYPE: &str = "Amazon Connect Contact Event";

/// The `aws.connect` detail-types (EventBridge events reference), recognised by name.
const CONNECT_DETAIL_TYPES: &[&str] = &[
    CONTACT_EVENT_DETAIL_TYPE,
    "Contact Lens Analysis State Change",
    "Rule for Contact Lens Post Call Matched",
    "Rule for Contact Lens Realtime Matched",
    "Contact Lens Realtime Rules Matched",
    "Contact Lens Post Call Rules Matched",
    "Amazon Connect Rules Action Execution Failed",
    "Contact Lens Post Chat Rules Matched",
    "Contact Lens After Chat Work Rules Matched",
    "Contact Lens After Call Work Rules Matched",
    "Contact Lens Email Rules Matched",
    "Contact Lens Evaluation Rules Matched",
    "Contact Lens Realtime Chat Rules Matched",
    "Metrics Rules Matched",
    "Contact Lens Automated Evaluation Submission Failed",
    "Contact Lens Evaluation Export Failed",
    "AWS API Call via CloudTrail",
];

/// What kind of event an envelope carries.
#[derive(Debug, Clone, PartialEq)]
pub enum DetailType {
    /// An Amazon Connect contact event, with its parsed detail.
    Contact(Box<ContactDetail>),
    /// Another known `aws.connect` detail-type; passed through to the rules untouched.
    ConnectOther(String),
    /// Any other event (e.g. `Scheduled Event` from `aws.events`).
    Other(String),
}

/// The envelope fields.
#[derive(Debug, Clone, PartialEq, Deserialize, Serialize)]
pub struct Envelope {
    #[serde(default)]
    pub version: Option<String>,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(rename = "detail-type")]
    pub detail_type: String,
    pub source: String,
    #[serde(default)]
    pub account: Option<String>,
    #[serde(default, deserialize_with = "opt_timestamp")]
    pub time: Option<DateTime<Utc>>,
    #[serde(default)]
    pub region: Option<String>,
    #[serde(default)]
    pub resources: Option<Vec<String>>,
    /// Set by EventBridge on replayed events.
    #[serde(
        rename = "replay-name",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub replay_name: Option<String>,
}

/// Why `id` cannot be a contact id, or `None` when it can: at most 256 of `A-Z a-z 0-9 - _ . :`,
/// not starting with `.` (so never `.`, `..` or a hidden name), never a path separator. Connect's
/// contact ids are UUIDs; this keeps an id from becoming `../` or an absolute path in a file name
/// or object key. The id itself is not echoed (it is untrusted input).
pub fn unsafe_id_reason(id: &str) -> Option<&'static str> {
    if id.is_empty() {
        Some("must not be empty")
    } else if id.len() > 256 {
        Some("is longer than 256 characters")
    } else if id.starts_with('.') {
        Some("must not start with `.`")
    } else if !id
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':'))
    {
        Some("may hold only letters, digits, `-`, `_`, `.` and `:` (no path separators)")
    } else {
        None
    }
}

/// One parsed event: the raw JSON (what rules match against) plus the typed view.
#[derive(Debug, Clone, PartialEq)]
pub struct Event {
    pub raw: Value,
    pub envelope: Envelope,
    pub detail: DetailType,
}

impl Event {
    /// Parse an event from JSON text.
    pub fn from_json_str(text: &str) -> Result<Event, EventError> {
        let value: Value = serde_json::from_str(text).map_err(|e| {
            EventError::new(
                EventErrorKind::InvalidJson,
                None,
                format!(
                    "invalid JSON: {}",
                    crate::redact::redact_numbers(&e.to_string())
                ),
            )
        })?;
        Event::from_value(value)
    }

    /// Validate and type a JSON value.
    pub fn from_value(raw: Value) -> Result<Event, EventError> {
        if !raw.is_object() {
            return Err(EventError::new(
                EventErrorKind::InvalidField,
                None,
                format!("an event must be a JSON object, found {}", json_kind(&raw)),
            ));
        }
        let envelope: Envelope = typed(&raw, "")?;
        let detail_value = match raw.get("detail") {
            None => return Err(EventError::missing("detail")),
            Some(v) => v,
        };
        let detail = if envelope.source == CONNECT_SOURCE
            && envelope.detail_type == CONTACT_EVENT_DETAIL_TYPE
        {
            if !detail_value.is_object() {
                return Err(EventError::invalid(
                    "detail",
                    format!("expected an object, found {}", json_kind(detail_value)),
                ));
            }
            let contact: ContactDetail = typed(detail_value, "detail")?;
            if contact.contact_id.trim().is_empty() {
                return Err(EventError::invalid("detail.contactId", "must not be empty"));
            }
            // Contact ids name files and object keys (archives, the local model): plain ids only.
            for (field, id) in [
                ("detail.contactId", Some(&contact.contact_id)),
                (
                    "detail.initialContactId",
                    contact.initial_contact_id.as_ref(),
                ),
                (
                    "detail.previousContactId",
                    contact.previous_contact_id.as_ref(),
                ),
                (
                    "detail.relatedContactId",
                    contact.related_contact_id.as_ref(),
                ),
            ] {
                if let Some(reason) = id.and_then(|id| unsafe_id_reason(id)) {
                    return Err(EventError::invalid(field, reason));
                }
            }
            DetailType::Contact(Box::new(contact))
        } else if envelope.source == CONNECT_SOURCE
            && CONNECT_DETAIL_TYPES.contains(&envelope.detail_type.as_str())
        {
            DetailType::ConnectOther(envelope.detail_type.clone())
        } else {
            DetailType::Other(envelope.detail_type.clone())
        };
        Ok(Event {
            raw,
            envelope,
            detail,
        })
    }

    /// The contact detail, when this is a contact event.
    pub fn contact(&self) -> Option<&ContactDetail> {
        match &self.detail {
            DetailType::Contact(c) => Some(c),
            _ => None,
        }
    }

    /// The envelope id, when present.
    pub fn id(&self) -> Option<&str> {
        self.envelope.id.as_deref()
    }

    /// Whether EventBridge delivered this event through a replay.
    ///
    /// The key's presence decides, whatever its value, exactly as the router judges it: a rule's
    /// `{"replay-name": [{"exists": false}]}` does not match `"replay-name": null` (`exists`
    /// matches any leaf, `null` included), so `null` is a replay here too.
    pub fn is_replay(&self) -> bool {
        self.raw.get("replay-name").is_some()
    }
}

pub(crate) fn json_kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// Deserialize `value` at `prefix`; the path to a bad field is tracked only when there is one
/// (the fast, untracked pass succeeds for every valid event).
fn typed<T: serde::de::DeserializeOwned>(value: &Value, prefix: &str) -> Result<T, EventError> {
    T::deserialize(value).or_else(|_| {
        serde_path_to_error::deserialize(value).map_err(|e| EventError::from_path_error(prefix, e))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::{Channel, EventType, InitiationMethod, QueueType};
    use serde_json::json;

    const QUEUED: &str = include_str!("../../../tests/fixtures/events/voice-inbound-queued.json");

    #[test]
    fn parses_real_fixture() {
        let ev = Event::from_json_str(QUEUED).unwrap();
        let c = ev.contact().unwrap();
        assert_eq!(c.event_type, EventType::Queued);
        assert_eq!(c.channel, Some(Channel::Voice));
        assert_eq!(c.initiation_method, Some(InitiationMethod::Inbound));
        assert_eq!(
            c.queue_info.as_ref().unwrap().queue_type,
            Some(QueueType::Standard)
        );
        assert!(c.queue_id().is_some());
        assert!(c.instance_id().is_some());
        assert!(!ev.is_replay());
    }

    #[test]
    fn every_fixture_parses() {
        let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../tests/fixtures/events");
        for entry in std::fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.extension().is_some_and(|e| e == "json") {
                let text = std::fs::read_to_string(&path).unwrap();
                let ev = Event::from_json_str(&text)
                    .unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                assert!(ev.contact().is_some(), "{}", path.display());
            }
        }
    }

    fn contact_event(detail: Value) -> Value {
        json!({"version":"0","id":"e-1","detail-type":CONTACT_EVENT_DETAIL_TYPE,"source":"aws.connect",
               "account":"123456789012","time":"2025-06-10T14:00:00Z","region":"us-east-1","resources":[],
               "detail": detail})
    }

    #[test]
    fn pascal_case_sample_and_unknowns() {
        let ev = Event::from_value(contact_event(json!({
            "EventType": "QUEUED", "ContactId": "c-1", "Channel": "Voice",
            "QueueInfo": {"QueueArn": "arn:aws:connect:us-east-1:1:instance/i/queue/q-1", "QueueType": "type"},
            "AgentInfo": {"AgentArn": "a", "connectedToAgentTimestamp": "1970-01-01T00:00:00.001Z"},
            "RoutingCriteria": [{"Index": 0}],
            "brandNewField": {"x": 1}
        })))
        .unwrap();
        let c = ev.contact().unwrap();
        assert_eq!(c.channel, Some(Channel::Voice));
        assert_eq!(c.queue_id(), Some("q-1"));
        assert_eq!(
            c.queue_info.as_ref().unwrap().queue_type,
            Some(QueueType::Other("type".into()))
        );
        assert_eq!(
            c.agent_info.as_ref().unwrap().connected_to_agent_timestamp,
            None
        );
        assert_eq!(c.routing_criteria.len(), 1);
    }

    #[test]
    fn routing_criteria_object_form() {
        let ev = Event::from_value(contact_event(json!({
            "eventType": "CONNECTED_TO_AGENT", "contactId": "c-1", "routingCriteria": {"index": 1, "steps": []}
        })))
        .unwrap();
        assert_eq!(ev.contact().unwrap().routing_criteria.len(), 1);
    }

    #[test]
    fn replay_name_is_kept() {
        let mut v = contact_event(json!({"eventType": "DISCONNECTED", "contactId": "c"}));
        v["replay-name"] = json!("r1");
        let ev = Event::from_value(v).unwrap();
        assert!(ev.is_replay());
    }

    /// `is_replay` and the router's `exists: false` on `replay-name` agree for every form.
    #[test]
    fn replay_name_null_means_the_same_to_router_and_is_replay() {
        let live_only =
            crate::rules::Pattern::from_json_str(r#"{"replay-name": [{"exists": false}]}"#)
                .unwrap();
        for (form, replayed) in [
            (None, false),
            (Some(json!(null)), true),
            (Some(json!("r")), true),
        ] {
            let mut v = contact_event(json!({"eventType": "DISCONNECTED", "contactId": "c"}));
            if let Some(f) = form.clone() {
                v["replay-name"] = f;
            }
            let ev = Event::from_value(v).unwrap();
            assert_eq!(ev.is_replay(), replayed, "{form:?}");
            assert_eq!(live_only.matches(&ev.raw), !replayed, "{form:?}");
        }
    }

    /// Contact ids become file names and object keys: `../`, absolute paths and separators are
    /// refused with the field named and the id not echoed.
    #[test]
    fn contact_ids_that_would_be_paths_are_refused() {
        for (field, bad) in [
            ("contactId", "../../etc/passwd"),
            ("contactId", "/abs"),
            ("contactId", ".."),
            ("contactId", "a\\b"),
            ("previousContactId", "../x"),
            ("initialContactId", "a/b"),
        ] {
            let mut detail = json!({"eventType": "DISCONNECTED", "contactId": "c-1"});
            detail[field] = json!(bad);
            let e = Event::from_value(contact_event(detail)).unwrap_err();
            assert_eq!(
                e.field.as_deref(),
                Some(format!("detail.{field}").as_str()),
                "{bad}"
            );
            assert!(!e.to_string().contains(bad), "{e}");
        }
        let ok = json!({"eventType": "DISCONNECTED", "contactId": "248b1a9e-5c07-455b-8daf-f67b49e04cd4"});
        assert!(Event::from_value(contact_event(ok)).is_ok());
    }

    #[test]
    fn errors_name_the_field() {
        let e = Event::from_value(
            json!({"detail-type": CONTACT_EVENT_DETAIL_TYPE, "source": "aws.connect"}),
        )
        .unwrap_err();
        assert_eq!(e.field.as_deref(), Some("detail"));
        assert_eq!(e.kind, EventErrorKind::MissingField);

        let e = Event::from_value(contact_event(
            json!({"eventType": "QUEUED", "contactId": 5}),
        ))
        .unwrap_err();
        assert_eq!(e.field.as_deref(), Some("detail.contactId"), "{e}");
        assert_eq!(e.kind, EventErrorKind::InvalidField);

        let e = Event::from_value(contact_event(json!({"eventType": "QUEUED"}))).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("detail.contactId"), "{e}");
        assert_eq!(e.kind, EventErrorKind::MissingField);

        let e = Event::from_value(contact_event(json!({"eventType": "QUEUED", "contactId": "c", "queueInfo": {"enqueueTimestamp": "noon"}}))).unwrap_err();
        assert_eq!(
            e.field.as_deref(),
            Some("detail.queueInfo.enqueueTimestamp"),
            "{e}"
        );

        let e = Event::from_value(json!({"source": "aws.connect", "detail": {}})).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("detail-type"), "{e}");

        let e = Event::from_json_str("{\"detail\": ").unwrap_err();
        assert_eq!(e.kind, EventErrorKind::InvalidJson);
        assert!(Event::from_value(json!([1, 2])).is_err());
    }

    #[test]
    fn other_detail_types_pass_through() {
        let ev = Event::from_value(json!({"detail-type": "Contact Lens Post Call Rules Matched", "source": "aws.connect", "detail": {"ruleName": "r"}})).unwrap();
        assert_eq!(
            ev.detail,
            DetailType::ConnectOther("Contact Lens Post Call Rules Matched".into())
        );
        let ev = Event::from_value(
            json!({"detail-type": "Scheduled Event", "source": "aws.events", "detail": {}}),
        )
        .unwrap();
        assert_eq!(ev.detail, DetailType::Other("Scheduled Event".into()));
    }
}
