use std::collections::BTreeMap;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use super::entry::FlowLogEntry;
use crate::error::PortError;

/// Which entries to fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlowLogQuery {
    /// `/aws/connect/<instance-alias>`.
    pub log_group: String,
    /// The contact and, optionally, its related contacts.
    pub contact_ids: Vec<String>,
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
}

/// Where flow logs come from (CloudWatch Logs, or NDJSON files). Implementations may return entries
/// of other contacts (a term filter or query engine is not trusted to match exactly): the policy
/// keeps only exact `ContactId` matches.
#[async_trait]
pub trait FlowLogSource: Send + Sync {
    async fn entries(&self, query: &FlowLogQuery) -> Result<Vec<FlowLogEntry>, PortError>;
}

/// The facts the runbook's bucket checks need.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BucketPosture {
    /// All four public-access-block flags are on (`None` = no configuration).
    pub public_access_block: Option<bool>,
    /// `GetBucketPolicyStatus.IsPublic` (`None` = the bucket has no policy).
    pub policy_is_public: Option<bool>,
    /// ACL grantees that make the bucket public (AllUsers / AuthenticatedUsers).
    pub public_acl_grants: Vec<String>,
}

/// An existing archive object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StoredObject {
    pub body: Vec<u8>,
    /// Entity tag used for the conditional replace.
    pub etag: Option<String>,
}

/// A write precondition, so concurrent archivers never lose each other's lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PutCondition {
    /// Create only (`If-None-Match: *`).
    Absent,
    /// Replace only the version read (`If-Match: <etag>`).
    Matches(String),
}

/// The object to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveObject {
    pub bucket: String,
    pub key: String,
    pub body: Vec<u8>,
    pub metadata: BTreeMap<String, String>,
}

/// Where an archive can be found, for people.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ArchiveLocation {
    /// `s3://bucket/key`, or the file path on the local backend.
    pub uri: String,
    pub console_url: Option<String>,
    pub download_command: Option<String>,
}

/// Archive storage (S3, or a directory).
#[async_trait]
pub trait ArchiveStore: Send + Sync {
    /// Gather the facts of the bucket checks (read-only calls).
    async fn bucket_posture(&self, bucket: &str) -> Result<BucketPosture, PortError>;
    async fn get(&self, bucket: &str, key: &str) -> Result<Option<StoredObject>, PortError>;
    /// Write under a precondition; a failed precondition is [`PortError::Conflict`].
    async fn put(&self, object: &ArchiveObject, condition: PutCondition) -> Result<(), PortError>;
    fn locate(&self, bucket: &str, key: &str) -> ArchiveLocation;
}
