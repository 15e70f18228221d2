use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::model::DenyEntry;
use super::number::E164;
use crate::error::PortError;

/// How a batch import went.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BatchOutcome {
    pub written: usize,
    /// Entries still unprocessed after the retries (with the reason).
    pub failed: Vec<(E164, String)>,
}

/// The deny-list store (`DenylistingTable` in DynamoDB, or a local file).
#[async_trait]
pub trait DenyStore: Send + Sync {
    /// Strongly consistent lookup; expired entries are returned (the policy decides).
    async fn get(&self, number: &E164) -> Result<Option<DenyEntry>, PortError>;
    /// Create or replace an entry's descriptive attributes, keeping its hit counters.
    async fn put(&self, entry: &DenyEntry) -> Result<(), PortError>;
    /// Remove; `true` when an entry existed.
    async fn remove(&self, number: &E164) -> Result<bool, PortError>;
    /// Count a hit by a contact, atomically and at most once per contact id (deliveries repeat).
    /// Returns `false` when that contact's hit was already counted or the entry is gone.
    async fn record_hit(
        &self,
        number: &E164,
        contact_id: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, PortError>;
    /// Every entry (expired ones included).
    async fn list(&self) -> Result<Vec<DenyEntry>, PortError>;
    /// Write many entries (import), retrying unprocessed items. Each entry REPLACES the stored one,
    /// counters included (DynamoDB's BatchWriteItem has no partial updates): re-importing an export
    /// keeps the counts it holds; a plain CSV row starts from zero. Duplicate numbers: last one wins.
    async fn put_batch(&self, entries: &[DenyEntry]) -> Result<BatchOutcome, PortError>;
}

/// What `DescribeContact` tells the enforcer.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ContactInfo {
    /// `CustomerEndpoint.Address`.
    pub customer_address: Option<String>,
    pub channel: Option<String>,
    pub initiation_method: Option<String>,
    /// The contact already ended (`DisconnectTimestamp` set).
    pub ended: bool,
    /// `InitiationTimestamp` and `DisconnectTimestamp`: they date the contact's flow-log archive.
    pub initiated: Option<DateTime<Utc>>,
    pub disconnected: Option<DateTime<Utc>>,
    /// The account of the contact's ARN (it names the flow-log archive).
    pub account_id: Option<String>,
    /// `AgentInfo.Id`: the Connect user handling the contact.
    pub agent_id: Option<String>,
    /// `CustomerEndpoint.Type` (`TELEPHONE_NUMBER`, …).
    pub customer_endpoint_type: Option<String>,
}

/// Result of a stop request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StopOutcome {
    Stopped,
    /// The contact had already ended (`ContactNotFoundException`): counts as done.
    AlreadyEnded,
}

/// Amazon Connect contact control (`DescribeContact`, `StopContact`), or the local model.
#[async_trait]
pub trait ContactControl: Send + Sync {
    async fn describe(
        &self,
        instance_id: &str,
        contact_id: &str,
    ) -> Result<Option<ContactInfo>, PortError>;
    async fn stop(&self, instance_id: &str, contact_id: &str) -> Result<StopOutcome, PortError>;
    /// The username of a Connect user (`DescribeUser`), `None` when there is no such user.
    async fn agent_username(
        &self,
        _instance_id: &str,
        _user_id: &str,
    ) -> Result<Option<String>, PortError> {
        Ok(None)
    }
}
