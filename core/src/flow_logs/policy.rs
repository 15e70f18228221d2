//! The flow-log archiver: collect a contact's flow-log entries, check the bucket like the
//! `AWSSupport-CollectAmazonConnectContactFlowLog` runbook, and store
//! `<prefix>/ContactFlowLog_<ContactId>_<AccountId>.gz` (gzip NDJSON).
//!
//! **Settling.** Flow logs arrive after the contact's events and at least once. An invocation polls
//! the source until the entry count is stable for one poll interval (bounded by `settle_polls`).
//! When nothing is found yet and the contact ended less than `no_logs_grace` ago, it fails with the
//! retryable [`HandlerError::NotSettled`] so Lambda's asynchronous retries come back later; after the
//! grace period it records `skipped_no_logs`. The Lambda's grace ([`LAMBDA_NO_LOGS_GRACE`]) is
//! shorter than the time to Lambda's last asynchronous retry ([`LAMBDA_LAST_RETRY_AFTER`]), so a
//! contact whose flow has no logging ends as `skipped_no_logs` on the last attempt instead of in the
//! dead-letter queue. A grace of zero (replay) never retries, even when the disconnect timestamp
//! (milliseconds) lies after the envelope's `time` (whole seconds). Archives are always merged with what is stored
//! (compare-and-swap on the ETag), so late lines and replays only ever add lines.

use std::collections::BTreeMap;

use chrono::{DateTime, Datelike, Duration, Utc};
use tokio::sync::OnceCell;

use super::archive::{ArchiveBuilder, ArchiveSummary};
use super::entry::BlockError;
use super::ports::{
    ArchiveLocation, ArchiveObject, ArchiveStore, BucketPosture, FlowLogQuery, FlowLogSource,
    PutCondition,
};
use crate::error::{HandlerError, PortError};
use crate::event::{ContactDetail, Event};

/// Lambda retries a failed asynchronous invocation twice: about one minute after the first attempt,
/// then about two minutes after the second (AWS Lambda, "Asynchronous invocation"). So the last
/// attempt comes at least this long after the first.
pub const LAMBDA_LAST_RETRY_AFTER: Duration = Duration::minutes(3);

/// The Lambda's default `no_logs_grace`: the first two attempts (contact age ≈ 0 and ≈ 1 min) wait
/// for late logs, the last (≥ 3 min) decides `skipped_no_logs`, with a minute of margin either way.
pub const LAMBDA_NO_LOGS_GRACE: Duration = Duration::minutes(2);

/// Settings of the archiver.
#[derive(Debug, Clone)]
pub struct FlowLogConfig {
    pub bucket: String,
    /// Key prefix; `None` = `connect-flow-logs/<instanceId>/<YYYY>/<MM>/<DD>` from the contact's
    /// initiation time (see [`archive_key`]).
    pub prefix: Option<String>,
    /// `/aws/connect/<alias>`; `None` = derived from `instance_alias`.
    pub log_group: Option<String>,
    pub instance_alias: Option<String>,
    /// The account that must own the bucket (the runbook's `S3BucketOwnerAccountId`).
    pub bucket_owner: Option<String>,
    /// Also archive entries of `initialContactId` / `previousContactId`.
    pub follow_related: bool,
    /// Search window margins around the contact's timestamps.
    pub window_before: Duration,
    pub window_after: Duration,
    /// Poll until the entry count is stable: at most this many reads…
    pub settle_polls: u32,
    /// …this far apart.
    pub settle_interval: std::time::Duration,
    /// A contact without entries younger than this is retried (logs may still arrive).
    pub no_logs_grace: Duration,
}

impl Default for FlowLogConfig {
    fn default() -> Self {
        FlowLogConfig {
            bucket: "connect-events-flow-logs".into(),
            prefix: None,
            log_group: None,
            instance_alias: None,
            bucket_owner: None,
            follow_related: false,
            window_before: Duration::minutes(5),
            window_after: Duration::minutes(15),
            settle_polls: 1,
            settle_interval: std::time::Duration::from_secs(5),
            no_logs_grace: Duration::zero(),
        }
    }
}

/// What one archive request did.
#[derive(Debug, Clone, PartialEq)]
pub enum ArchiveOutcome {
    /// Written (new object or a superset of the stored one).
    Archived {
        location: ArchiveLocation,
        key: String,
        summary: ArchiveSummary,
        new_entries: usize,
    },
    /// The stored archive already holds every entry.
    Unchanged {
        location: ArchiveLocation,
        key: String,
        summary: ArchiveSummary,
    },
    /// No flow-log entries exist for the contact.
    SkippedNoLogs { contact_id: String },
}

/// A request to archive one contact.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveRequest {
    pub instance_id: String,
    pub contact_id: String,
    pub account_id: String,
    pub related: Vec<String>,
    /// When the contact started and ended (event timestamps), when known.
    pub started: Option<DateTime<Utc>>,
    pub ended: Option<DateTime<Utc>>,
    /// Search exactly this window instead of one derived from `started` / `ended` (CLI collect).
    pub window: Option<(DateTime<Utc>, DateTime<Utc>)>,
}

impl ArchiveRequest {
    /// From a contact event. The account is the one of the contact's `instanceArn` (the event's
    /// `account` when the ARN has none), exactly as [`ArchiveRequest::for_contact`] finds it for the
    /// CLI, so both name the same object.
    pub fn from_event(event: &Event, contact: &ContactDetail) -> Result<Self, HandlerError> {
        let instance_id = contact.instance_id().ok_or_else(|| {
            HandlerError::InvalidInput(format!("contact {} has no instanceArn", contact.contact_id))
        })?;
        let related = [&contact.initial_contact_id, &contact.previous_contact_id]
            .into_iter()
            .flatten()
            .filter(|id| **id != contact.contact_id)
            .cloned()
            .collect();
        let account_id = contact
            .account_id()
            .or(event.envelope.account.as_deref())
            .unwrap_or("unknown")
            .to_string();
        Ok(ArchiveRequest {
            instance_id: instance_id.to_string(),
            contact_id: contact.contact_id.clone(),
            account_id,
            related,
            started: contact.initiation_timestamp,
            ended: contact.disconnect_timestamp.or(event.envelope.time),
            window: None,
        })
    }

    /// From what `DescribeContact` (or the local model) knows of a contact: the CLI's request.
    pub fn for_contact(
        instance_id: &str,
        contact_id: &str,
        account_id: &str,
        initiated: Option<DateTime<Utc>>,
        disconnected: Option<DateTime<Utc>>,
    ) -> Self {
        ArchiveRequest {
            instance_id: instance_id.to_string(),
            contact_id: contact_id.to_string(),
            account_id: account_id.to_string(),
            related: Vec::new(),
            started: initiated,
            ended: disconnected,
            window: None,
        }
    }
}

/// The object key of a contact's archive: the one function the Lambda and the CLI share.
///
/// `<prefix>/ContactFlowLog_<ContactId>_<AccountId>.gz`; the default prefix
/// `connect-flow-logs/<instanceId>/<YYYY>/<MM>/<DD>` is dated (UTC) by the contact's
/// `initiationTimestamp`: the one timestamp every contact event, `DescribeContact` and the contact
/// record carry with the same value, so an error event before the disconnect, the disconnect
/// itself and a later `flow-logs collect` all name one object, even for a contact that spans
/// midnight. Without it: the disconnect time, then the newest flow-log entry.
pub fn archive_key(
    prefix: Option<&str>,
    req: &ArchiveRequest,
    last_entry: Option<DateTime<Utc>>,
) -> String {
    let prefix = match prefix {
        Some(p) => p.trim_end_matches('/').to_string(),
        None => {
            let day = req
                .started
                .or(req.ended)
                .or(last_entry)
                .unwrap_or_else(Utc::now);
            format!(
                "connect-flow-logs/{}/{:04}/{:02}/{:02}",
                req.instance_id,
                day.year(),
                day.month(),
                day.day()
            )
        }
    };
    let file = format!("ContactFlowLog_{}_{}.gz", req.contact_id, req.account_id);
    if prefix.is_empty() {
        file
    } else {
        format!("{prefix}/{file}")
    }
}

/// The flow-log archive capability.
pub struct FlowLogArchiver {
    source: Box<dyn FlowLogSource>,
    store: Box<dyn ArchiveStore>,
    config: FlowLogConfig,
    bucket_checked: OnceCell<()>,
}

impl FlowLogArchiver {
    /// The window searched for `req`'s entries: its own, else the contact's lifetime widened by the
    /// configured margins (`now` standing in for a missing end).
    pub fn search_window(
        &self,
        req: &ArchiveRequest,
        now: DateTime<Utc>,
    ) -> (DateTime<Utc>, DateTime<Utc>) {
        req.window.unwrap_or_else(|| {
            let anchor_start = req.started.or(req.ended).unwrap_or(now);
            (
                anchor_start - self.config.window_before,
                req.ended.unwrap_or(now) + self.config.window_after,
            )
        })
    }

    pub fn new(
        source: Box<dyn FlowLogSource>,
        store: Box<dyn ArchiveStore>,
        config: FlowLogConfig,
    ) -> Self {
        FlowLogArchiver {
            source,
            store,
            config,
            bucket_checked: OnceCell::new(),
        }
    }

    pub fn config(&self) -> &FlowLogConfig {
        &self.config
    }

    /// The log group searched.
    pub fn log_group(&self) -> Result<String, HandlerError> {
        match (&self.config.log_group, &self.config.instance_alias) {
            (Some(g), _) => Ok(g.clone()),
            (None, Some(alias)) => Ok(format!("/aws/connect/{alias}")),
            (None, None) => Err(HandlerError::Config(
                "set the flow-log group or the instance alias".into(),
            )),
        }
    }

    /// The object key of a contact's archive ([`archive_key`] with this archiver's prefix).
    pub fn key(&self, req: &ArchiveRequest, last_entry: Option<DateTime<Utc>>) -> String {
        archive_key(self.config.prefix.as_deref(), req, last_entry)
    }

    /// Run the runbook's bucket checks once per container, before the first write.
    pub async fn verify_bucket(&self) -> Result<(), HandlerError> {
        self.bucket_checked
            .get_or_try_init(|| async {
                let posture = self.store.bucket_posture(&self.config.bucket).await?;
                check_posture(&self.config.bucket, &posture)
            })
            .await
            .map(|_| ())
    }

    /// Archive one contact.
    pub async fn archive(
        &self,
        req: &ArchiveRequest,
        now: DateTime<Utc>,
    ) -> Result<ArchiveOutcome, HandlerError> {
        let mut ids = vec![req.contact_id.clone()];
        if self.config.follow_related {
            ids.extend(req.related.iter().cloned());
        }
        let anchor_end = req.ended.unwrap_or(now);
        let (start, end) = self.search_window(req, now);
        let query = FlowLogQuery {
            log_group: self.log_group()?,
            contact_ids: ids.clone(),
            start,
            end,
        };
        let entries = self.settled_entries(&query).await?;
        if entries.is_empty() {
            let grace = self.config.no_logs_grace;
            if grace > Duration::zero() && now - anchor_end < grace {
                return Err(HandlerError::NotSettled {
                    contact_id: req.contact_id.clone(),
                    detail: "no flow-log entries yet".into(),
                });
            }
            return Ok(ArchiveOutcome::SkippedNoLogs {
                contact_id: req.contact_id.clone(),
            });
        }
        self.verify_bucket().await?;
        let key = self.key(req, entries.iter().map(|e| e.timestamp()).max());
        let location = self.store.locate(&self.config.bucket, &key);
        // Compare-and-swap: a concurrent archiver makes the write fail; merge again and retry.
        for _ in 0..5 {
            let existing = self.store.get(&self.config.bucket, &key).await?;
            let mut builder = match &existing {
                Some(obj) => ArchiveBuilder::from_gzip(obj.body.as_slice()).map_err(|e| {
                    HandlerError::Port(PortError::Rejected {
                        service: "archive",
                        message: format!("stored archive {key} is unreadable: {e}"),
                    })
                })?,
                None => ArchiveBuilder::new(),
            };
            let before = builder.len();
            for entry in &entries {
                builder.add(entry.clone());
            }
            let new_entries = builder.len() - before;
            let mut body = Vec::new();
            let summary = builder
                .write_gzip(&mut body)
                .map_err(|e| PortError::io("archive", "gzip", e))?;
            if existing.as_ref().is_some_and(|o| o.body == body) {
                return Ok(ArchiveOutcome::Unchanged {
                    location,
                    key,
                    summary,
                });
            }
            let condition = match existing.and_then(|o| o.etag) {
                Some(etag) => PutCondition::Matches(etag),
                None => PutCondition::Absent,
            };
            let object = ArchiveObject {
                bucket: self.config.bucket.clone(),
                key: key.clone(),
                body,
                metadata: metadata(&req.contact_id, &summary),
            };
            match self.store.put(&object, condition).await {
                Ok(()) => {
                    return Ok(ArchiveOutcome::Archived {
                        location,
                        key,
                        summary,
                        new_entries,
                    })
                }
                Err(PortError::Conflict { .. }) => continue,
                Err(e) => return Err(e.into()),
            }
        }
        Err(HandlerError::Port(PortError::Conflict {
            service: "archive",
            message: format!("{key} kept changing under concurrent writers"),
        }))
    }

    /// Read entries until their number is stable, keeping exact `ContactId` matches only.
    async fn settled_entries(
        &self,
        query: &FlowLogQuery,
    ) -> Result<Vec<super::entry::FlowLogEntry>, HandlerError> {
        let mut last: Option<usize> = None;
        let mut entries = Vec::new();
        for poll in 0..self.config.settle_polls.max(1) {
            if poll > 0 {
                tokio::time::sleep(self.config.settle_interval).await;
            }
            entries = self.source.entries(query).await?;
            entries.retain(|e| query.contact_ids.iter().any(|id| id == e.contact_id()));
            if last == Some(entries.len()) {
                break;
            }
            last = Some(entries.len());
        }
        Ok(entries)
    }
}

/// The runbook's checks: public access fully blocked, no public policy, no public ACL grant.
pub fn check_posture(bucket: &str, posture: &BucketPosture) -> Result<(), HandlerError> {
    let fail = |check: &'static str, detail: String| {
        Err(HandlerError::UnsafeBucket {
            bucket: bucket.to_string(),
            check,
            detail,
        })
    };
    if posture.public_access_block != Some(true) {
        return fail(
            "public-access-block",
            "all four S3 Block Public Access settings must be on for the bucket".into(),
        );
    }
    if posture.policy_is_public == Some(true) {
        return fail(
            "bucket-policy",
            "GetBucketPolicyStatus reports the bucket policy as public".into(),
        );
    }
    if !posture.public_acl_grants.is_empty() {
        return fail(
            "bucket-acl",
            format!(
                "the ACL grants access to {}",
                posture.public_acl_grants.join(", ")
            ),
        );
    }
    Ok(())
}

/// Object metadata: contact id, entry count, has-errors, failing blocks (bounded to S3's 2 KB).
fn metadata(contact_id: &str, summary: &ArchiveSummary) -> BTreeMap<String, String> {
    let mut m = BTreeMap::new();
    m.insert("contact-id".into(), contact_id.to_string());
    m.insert("entry-count".into(), summary.entries.to_string());
    m.insert("has-errors".into(), summary.has_errors.to_string());
    if summary.has_errors {
        let mut blocks = String::new();
        for e in &summary.errors {
            let name = block_name(e);
            if blocks.len() + name.len() + 1 > 1024 {
                blocks.push_str(",...");
                break;
            }
            if !blocks.is_empty() {
                blocks.push(',');
            }
            blocks.push_str(&name);
        }
        m.insert("error-blocks".into(), blocks);
    }
    m
}

fn block_name(e: &BlockError) -> String {
    let name = e.identifier.as_deref().unwrap_or(&e.module_type);
    // S3 user metadata must be US-ASCII.
    name.chars()
        .map(|c| {
            if c.is_ascii() && !c.is_ascii_control() {
                c
            } else {
                '?'
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn posture_checks_name_the_failing_check() {
        let ok = BucketPosture {
            public_access_block: Some(true),
            policy_is_public: Some(false),
            public_acl_grants: vec![],
        };
        assert!(check_posture("b", &ok).is_ok());
        let no_pab = BucketPosture {
            public_access_block: None,
            ..ok.clone()
        };
        assert!(matches!(
            check_posture("b", &no_pab),
            Err(HandlerError::UnsafeBucket {
                check: "public-access-block",
                ..
            })
        ));
        let public = BucketPosture {
            policy_is_public: Some(true),
            ..ok.clone()
        };
        assert!(matches!(
            check_posture("b", &public),
            Err(HandlerError::UnsafeBucket {
                check: "bucket-policy",
                ..
            })
        ));
        let acl = BucketPosture {
            public_acl_grants: vec!["AllUsers".into()],
            ..ok
        };
        let err = check_posture("b", &acl).unwrap_err();
        assert!(!err.retryable());
        assert_eq!(err.error_type(), "UnsafeBucket");
    }

    /// A flow whose contact has no logging: the source never has entries; nothing is stored.
    struct NoLogs;

    #[async_trait::async_trait]
    impl FlowLogSource for NoLogs {
        async fn entries(
            &self,
            _: &FlowLogQuery,
        ) -> Result<Vec<super::super::FlowLogEntry>, PortError> {
            Ok(Vec::new())
        }
    }

    #[async_trait::async_trait]
    impl ArchiveStore for NoLogs {
        async fn bucket_posture(&self, _: &str) -> Result<BucketPosture, PortError> {
            unreachable!("nothing to archive: the bucket is not read")
        }
        async fn get(
            &self,
            _: &str,
            _: &str,
        ) -> Result<Option<super::super::ports::StoredObject>, PortError> {
            unreachable!("nothing to archive")
        }
        async fn put(&self, _: &ArchiveObject, _: PutCondition) -> Result<(), PortError> {
            unreachable!("nothing to archive")
        }
        fn locate(&self, bucket: &str, key: &str) -> ArchiveLocation {
            ArchiveLocation {
                uri: format!("s3://{bucket}/{key}"),
                console_url: None,
                download_command: None,
            }
        }
    }

    fn no_logs_archiver(grace: Duration) -> FlowLogArchiver {
        FlowLogArchiver::new(
            Box::new(NoLogs),
            Box::new(NoLogs),
            FlowLogConfig {
                log_group: Some("/aws/connect/test".into()),
                no_logs_grace: grace,
                settle_interval: std::time::Duration::ZERO,
                ..FlowLogConfig::default()
            },
        )
    }

    fn ended_at(ended: DateTime<Utc>) -> ArchiveRequest {
        ArchiveRequest {
            instance_id: "i-1".into(),
            contact_id: "c-1".into(),
            account_id: "123456789012".into(),
            related: vec![],
            started: Some(ended - Duration::minutes(3)),
            ended: Some(ended),
            window: None,
        }
    }

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
    }

    /// Lambda's timeline for a contact without logs: the event arrives seconds after the
    /// disconnect; a failed attempt is retried after ~1 min, then after ~2 more minutes (delays
    /// vary: try the earliest and a late timeline). The first two attempts wait for late logs, the
    /// last one ends as `skipped_no_logs`: nothing reaches the dead-letter queue.
    #[tokio::test]
    async fn a_contact_without_logs_is_skipped_on_lambdas_last_retry_not_dead_lettered() {
        let archiver = no_logs_archiver(LAMBDA_NO_LOGS_GRACE);
        let ended = at("2025-06-10T14:05:00.250Z");
        let req = ended_at(ended);
        for (first, retry1, retry2) in [(2, 60, 120), (1, 62, 125), (20, 90, 240)] {
            let first_at = ended + Duration::seconds(first);
            let second_at = first_at + Duration::seconds(retry1);
            let third_at = second_at + Duration::seconds(retry2);
            assert!(third_at - first_at >= LAMBDA_LAST_RETRY_AFTER);
            for attempt in [first_at, second_at] {
                let err = archiver.archive(&req, attempt).await.unwrap_err();
                assert_eq!(err.error_type(), "FlowLogsNotSettled");
                assert!(err.retryable());
            }
            assert_eq!(
                archiver.archive(&req, third_at).await.ok(),
                Some(ArchiveOutcome::SkippedNoLogs {
                    contact_id: "c-1".into()
                }),
                "the last retry ({first}+{retry1}+{retry2} s) decides"
            );
        }
        assert!(
            LAMBDA_NO_LOGS_GRACE + Duration::minutes(1) <= LAMBDA_LAST_RETRY_AFTER,
            "a minute of margin before the last retry"
        );
    }

    /// Replay: grace 0 and "now" = the envelope's whole-second `time`, which can lie before the
    /// contact's millisecond disconnect timestamp (negative age). No retryable error.
    #[tokio::test]
    async fn grace_zero_never_retries_even_with_a_negative_age() {
        let archiver = no_logs_archiver(Duration::zero());
        let ended = at("2025-06-10T14:05:00.250Z");
        let outcome = archiver
            .archive(&ended_at(ended), at("2025-06-10T14:05:00Z"))
            .await;
        assert_eq!(
            outcome.ok(),
            Some(ArchiveOutcome::SkippedNoLogs {
                contact_id: "c-1".into()
            })
        );
    }
}
