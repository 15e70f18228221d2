use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::number::E164;

/// Who or what added an entry.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EntrySource {
    Agent,
    Cli,
    Import,
    /// Entries written by the reference design or by hand, without a `source` attribute.
    #[serde(other)]
    Unknown,
}

impl EntrySource {
    pub fn as_str(&self) -> &'static str {
        match self {
            EntrySource::Agent => "agent",
            EntrySource::Cli => "cli",
            EntrySource::Import => "import",
            EntrySource::Unknown => "unknown",
        }
    }
}

/// One deny-list entry (`DenylistingTable` item). Items holding only `ContactNumber` are permanent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DenyEntry {
    pub number: E164,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub added_by: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<EntrySource>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub added_at: Option<DateTime<Utc>>,
    /// Epoch seconds; the table's TTL attribute. `None` = permanent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<i64>,
    #[serde(default)]
    pub hit_count: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_hit_at: Option<DateTime<Utc>>,
}

impl DenyEntry {
    /// A new entry with no counters.
    pub fn new(number: E164) -> Self {
        DenyEntry {
            number,
            reason: None,
            added_by: None,
            source: None,
            added_at: None,
            expires_at: None,
            hit_count: 0,
            last_hit_at: None,
        }
    }

    /// An entry whose `expiresAt` has passed is not a match, even before DynamoDB's TTL deletes it.
    pub fn is_active(&self, now: DateTime<Utc>) -> bool {
        self.expires_at.is_none_or(|t| t > now.timestamp())
    }
}
