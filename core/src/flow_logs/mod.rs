//! Flow-log archive: a contact's flow-log entries → de-duplicated, ordered gzip NDJSON in S3, with
//! the safety checks of the `AWSSupport-CollectAmazonConnectContactFlowLog` runbook.

pub mod archive;
pub mod entry;
pub mod policy;
pub mod ports;

pub use archive::{ArchiveBuilder, ArchiveSummary};
pub use entry::{BlockError, FlowLogEntry};
pub use policy::{
    archive_key, check_posture, ArchiveOutcome, ArchiveRequest, FlowLogArchiver, FlowLogConfig,
    LAMBDA_LAST_RETRY_AFTER, LAMBDA_NO_LOGS_GRACE,
};
pub use ports::{
    ArchiveLocation, ArchiveObject, ArchiveStore, BucketPosture, FlowLogQuery, FlowLogSource,
    PutCondition, StoredObject,
};
