//! The contact-flow "Invoke AWS Lambda function" payload (`"Name": "ContactFlowEvent"`).
//!
//! `aws_lambda_events::connect::ConnectEvent` requires `CustomerEndpoint` and `SystemEndpoint`, but
//! chat and task payloads send them as JSON `null`; these structs make every member optional.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::time::null_default;

/// The whole invocation.
#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct FlowInvocation {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub details: FlowDetails,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct FlowDetails {
    #[serde(default, deserialize_with = "null_default")]
    pub contact_data: FlowContactData,
    /// The block's function input parameters (a flat string map).
    #[serde(default, deserialize_with = "null_default")]
    pub parameters: BTreeMap<String, serde_json::Value>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct FlowContactData {
    #[serde(default, deserialize_with = "null_default")]
    pub attributes: BTreeMap<String, serde_json::Value>,
    #[serde(default)]
    pub channel: Option<String>,
    #[serde(default)]
    pub contact_id: Option<String>,
    #[serde(default)]
    pub initial_contact_id: Option<String>,
    #[serde(default)]
    pub previous_contact_id: Option<String>,
    #[serde(default)]
    pub initiation_method: Option<String>,
    #[serde(default, rename = "InstanceARN", alias = "InstanceArn")]
    pub instance_arn: Option<String>,
    #[serde(default)]
    pub customer_endpoint: Option<FlowEndpoint>,
    #[serde(default)]
    pub system_endpoint: Option<FlowEndpoint>,
    #[serde(default)]
    pub queue: Option<FlowQueue>,
    #[serde(default)]
    pub customer_id: Option<String>,
    #[serde(default, deserialize_with = "null_default")]
    pub tags: BTreeMap<String, String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct FlowEndpoint {
    #[serde(default)]
    pub address: Option<String>,
    #[serde(default, rename = "Type")]
    pub kind: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Deserialize, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct FlowQueue {
    #[serde(default, rename = "ARN")]
    pub arn: Option<String>,
    #[serde(default)]
    pub name: Option<String>,
}

impl FlowInvocation {
    /// Parse from JSON, naming the offending field on error.
    pub fn from_value(v: &serde_json::Value) -> Result<Self, super::EventError> {
        serde_path_to_error::deserialize(v).map_err(|e| super::EventError::from_path_error("", e))
    }

    /// A function input parameter as a string (numbers and booleans are stringified).
    pub fn parameter(&self, name: &str) -> Option<String> {
        match self.details.parameters.get(name)? {
            serde_json::Value::String(s) => Some(s.clone()),
            serde_json::Value::Null => None,
            other => Some(other.to_string()),
        }
    }

    /// The contact's customer address (`CustomerEndpoint.Address`), when present and non-empty.
    pub fn customer_address(&self) -> Option<&str> {
        self.details
            .contact_data
            .customer_endpoint
            .as_ref()
            .and_then(|e| e.address.as_deref())
            .filter(|a| !a.trim().is_empty())
    }

    pub fn contact_id(&self) -> Option<&str> {
        self.details.contact_data.contact_id.as_deref()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixture(name: &str) -> FlowInvocation {
        let path = format!(
            "{}/../tests/fixtures/flow-invocation/{name}",
            env!("CARGO_MANIFEST_DIR")
        );
        let v: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
        FlowInvocation::from_value(&v).unwrap()
    }

    #[test]
    fn null_endpoints_are_none() {
        let chat = fixture("chat-null-endpoints.json");
        assert_eq!(chat.customer_address(), None);
        assert!(chat.details.contact_data.queue.is_none());
        assert_eq!(chat.details.contact_data.channel.as_deref(), Some("CHAT"));
    }

    #[test]
    fn voice_lookup_and_flag() {
        assert!(fixture("voice-inbound-lookup.json")
            .customer_address()
            .is_some());
        let flag = fixture("voice-agent-flag.json");
        assert_eq!(flag.parameter("action").as_deref(), Some("flag"));
    }
}
