//! Configuration of the capabilities from environment variables, shared by the Lambda functions and
//! the CLI. Every variable is optional; an invalid value is a [`HandlerError::Config`] naming it.
//!
//! | variable | default | meaning |
//! | --- | --- | --- |
//! | `CONNECT_INSTANCE_ID` | – | instance refreshed by the schedule and `queue-depth refresh` |
//! | `CONNECT_INSTANCE_ALIAS` | – | gives the flow-log group `/aws/connect/<alias>` |
//! | `OPENSEARCH_ENDPOINT` | – | URL of the OpenSearch domain / collection (AWS backend) |
//! | `OPENSEARCH_SERVICE` | `es` | SigV4 service: `es` (an OpenSearch Service domain; Serverless is not supported) |
//! | `QUEUE_DEPTH_INDEX` | `connect-queue-depth` | current-state index |
//! | `QUEUE_DEPTH_HISTORY_INDEX` | – | optional append-only history index (one document per snapshot) |
//! | `QUEUE_DEPTH_MIN_INTERVAL_MS` | `1000` | at most one metrics refresh per instance per interval |
//! | `QUEUE_DEPTH_CHANNELS` | `VOICE,CHAT,TASK` | channels asked for |
//! | `QUEUE_DEPTH_MAX_WAIT_MS` | `2000` (at least the interval) | longest wait for a trailing refresh in Lambda; ≥ the interval, ≤ 15000 |
//! | `DENYLIST_TABLE` | `DenylistingTable` | deny-list table |
//! | `DENYLIST_DEFAULT_REGION` | – | ISO region for national numbers (e.g. `US`) |
//! | `DENYLIST_ANONYMOUS` | `allow` | `allow` or `deny` withheld callers |
//! | `DENYLIST_ON_FAILURE` | `open` | contact-flow answer when the store fails: `open` or `closed` |
//! | `DENYLIST_ENFORCE_CHANNELS` | `VOICE` | channels stopped on `INITIATED` |
//! | `DENYLIST_FLOW_BUDGET_MS` | `3000` | longest contact-flow answer (the lookup; the hit is counted after the answer); a slower store gets the `DENYLIST_ON_FAILURE` answer; 100–4000 |
//! | `DENYLIST_STOP_REPLAYED` | `false` | let replayed events (`replay-name`) stop contacts (Lambda and `replay --allow-side-effects`) |
//! | `ARCHIVE_BUCKET` | `connect-events-flow-logs` | archive bucket |
//! | `ARCHIVE_PREFIX` | `connect-flow-logs/<instanceId>/<YYYY>/<MM>/<DD>` | key prefix |
//! | `ARCHIVE_BUCKET_OWNER` | – | expected bucket owner account (`ExpectedBucketOwner`) |
//! | `ARCHIVE_KMS_KEY_ID` | – | SSE-KMS key; SSE-S3 otherwise |
//! | `FLOW_LOG_GROUP` | `/aws/connect/<alias>` | flow-log group |
//! | `FLOW_LOGS_FOLLOW_RELATED` | `false` | also archive `initialContactId` / `previousContactId` |
//! | `FLOW_LOGS_SETTLE_POLLS` | `3` (Lambda) | reads until the entry count is stable |
//! | `FLOW_LOGS_SETTLE_INTERVAL_MS` | `5000` | time between those reads |
//! | `FLOW_LOGS_NO_LOGS_GRACE_S` | `300` (Lambda) | retry (instead of skipping) a contact without logs younger than this |
//! | `ANALYTICS_CTR_INDEX_PREFIX` | `ctr-` | daily contact-record indices `<prefix>YYYY.MM.DD` |
//! | `ANALYTICS_AGENT_EVENT_INDEX_PREFIX` | `agent-events-` | daily agent-event indices |
//! | `ANALYTICS_AGENT_STATE_INDEX` | `agent-state` | one document per agent: its latest event |
//! | `ANALYTICS_DLQ_URL` | – | SQS queue URL for streamed records that cannot be read (required by `analytics-indexer`) |
//! | `FLOW_LOGS_STRATEGY` | `filter` | `filter` (FilterLogEvents with the contact id as a term: cost per contact independent of traffic) or `insights` (Logs Insights, like the runbook: bills every byte of the window) |

use chrono::Duration;

use crate::analytics::queries::Indices;
use crate::deny_list::{AnonymousPolicy, DenyListConfig, FailurePolicy};
use crate::error::HandlerError;
use crate::event::Channel;
use crate::flow_logs::FlowLogConfig;
use crate::queue_depth::QueueDepthConfig;

/// Settings of every capability.
#[derive(Debug, Clone)]
pub struct Settings {
    pub queue_depth: QueueDepthConfig,
    pub queue_depth_index: String,
    pub queue_depth_history_index: Option<String>,
    pub queue_depth_max_wait: Duration,
    pub opensearch_endpoint: Option<String>,
    pub opensearch_service: String,
    pub deny_list: DenyListConfig,
    pub deny_list_table: String,
    pub flow_logs: FlowLogConfig,
    pub archive_kms_key: Option<String>,
    pub flow_logs_strategy: String,
    /// Analytics indices; `queue_depth` is [`Settings::queue_depth_index`].
    pub analytics: Indices,
    pub analytics_agent_state_index: String,
    /// SQS queue for analytics records that cannot be read (`ANALYTICS_DLQ_URL`).
    pub analytics_dlq_url: Option<String>,
}

impl Default for Settings {
    fn default() -> Self {
        Settings {
            queue_depth: QueueDepthConfig::default(),
            queue_depth_index: "connect-queue-depth".into(),
            queue_depth_history_index: None,
            queue_depth_max_wait: Duration::milliseconds(2000),
            opensearch_endpoint: None,
            opensearch_service: "es".into(),
            deny_list: DenyListConfig::default(),
            deny_list_table: "DenylistingTable".into(),
            flow_logs: FlowLogConfig::default(),
            archive_kms_key: None,
            flow_logs_strategy: "filter".into(),
            analytics: Indices {
                queue_depth: "connect-queue-depth".into(),
                ..Indices::default()
            },
            analytics_agent_state_index: "agent-state".into(),
            analytics_dlq_url: None,
        }
    }
}

impl Settings {
    /// Read from the process environment.
    pub fn from_env() -> Result<Settings, HandlerError> {
        Settings::from_lookup(|k| std::env::var(k).ok())
    }

    /// Read through a lookup function (tests pass a map).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Settings, HandlerError> {
        let get = |k: &str| {
            get(k)
                .map(|v| v.trim().to_string())
                .filter(|v| !v.is_empty())
        };
        let mut s = Settings::default();
        s.queue_depth.default_instance_id = get("CONNECT_INSTANCE_ID");
        s.flow_logs.instance_alias = get("CONNECT_INSTANCE_ALIAS");
        s.opensearch_endpoint = get("OPENSEARCH_ENDPOINT");
        if let Some(v) = get("OPENSEARCH_SERVICE") {
            let v = v.to_ascii_lowercase();
            if v == "aoss" {
                return Err(HandlerError::Config(
                    "OPENSEARCH_SERVICE=aoss: OpenSearch Serverless is not supported — queue depth \
                     relies on external document versions to drop out-of-order writes, which \
                     Serverless does not document; use an OpenSearch Service domain (es)"
                        .into(),
                ));
            }
            if v != "es" {
                return Err(invalid("OPENSEARCH_SERVICE", &v, "es"));
            }
            s.opensearch_service = v;
        }
        if let Some(v) = get("QUEUE_DEPTH_INDEX") {
            s.queue_depth_index = v;
        }
        s.queue_depth_history_index = get("QUEUE_DEPTH_HISTORY_INDEX");
        if let Some(ms) = number(&get, "QUEUE_DEPTH_MIN_INTERVAL_MS", 1, 3_600_000)? {
            s.queue_depth.min_interval = Duration::milliseconds(ms);
        }
        match number(&get, "QUEUE_DEPTH_MAX_WAIT_MS", 0, 15_000)? {
            // A trailing refresh waits up to one interval: the wait must allow it.
            Some(ms) if Duration::milliseconds(ms) < s.queue_depth.min_interval => {
                return Err(HandlerError::Config(format!(
                    "QUEUE_DEPTH_MAX_WAIT_MS={ms} is shorter than QUEUE_DEPTH_MIN_INTERVAL_MS={}: coalesced events would get no trailing refresh",
                    s.queue_depth.min_interval.num_milliseconds()
                )))
            }
            Some(ms) => s.queue_depth_max_wait = Duration::milliseconds(ms),
            None => s.queue_depth_max_wait = s.queue_depth_max_wait.max(s.queue_depth.min_interval),
        }
        if let Some(v) = get("QUEUE_DEPTH_CHANNELS") {
            s.queue_depth.channels = channels("QUEUE_DEPTH_CHANNELS", &v)?;
        }
        s.analytics.queue_depth = s.queue_depth_index.clone();
        for (name, field) in [
            ("ANALYTICS_CTR_INDEX_PREFIX", &mut s.analytics.ctr_prefix),
            (
                "ANALYTICS_AGENT_EVENT_INDEX_PREFIX",
                &mut s.analytics.agent_event_prefix,
            ),
            (
                "ANALYTICS_AGENT_STATE_INDEX",
                &mut s.analytics_agent_state_index,
            ),
        ] {
            if let Some(v) = get(name) {
                let ok = !v.is_empty()
                    && v.len() <= 200
                    && v.bytes().all(|b| {
                        b.is_ascii_lowercase() || b.is_ascii_digit() || b"-_.".contains(&b)
                    })
                    && !v.starts_with(['-', '_', '.']);
                if !ok {
                    return Err(invalid(
                        name,
                        &v,
                        "a lowercase OpenSearch index name (a-z, 0-9, '-', '_', '.')",
                    ));
                }
                *field = v;
            }
        }
        s.analytics_dlq_url = get("ANALYTICS_DLQ_URL");
        if let Some(v) = get("DENYLIST_TABLE") {
            s.deny_list_table = v;
        }
        s.deny_list.default_region = get("DENYLIST_DEFAULT_REGION").map(|r| r.to_ascii_uppercase());
        s.deny_list.anonymous = match get("DENYLIST_ANONYMOUS")
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("allow") => AnonymousPolicy::Allow,
            Some("deny") => AnonymousPolicy::Deny,
            Some(other) => return Err(invalid("DENYLIST_ANONYMOUS", other, "allow or deny")),
        };
        s.deny_list.on_failure = match get("DENYLIST_ON_FAILURE")
            .as_deref()
            .map(str::to_ascii_lowercase)
            .as_deref()
        {
            None | Some("open") => FailurePolicy::FailOpen,
            Some("closed") => FailurePolicy::FailClosed,
            Some(other) => return Err(invalid("DENYLIST_ON_FAILURE", other, "open or closed")),
        };
        if let Some(v) = get("DENYLIST_ENFORCE_CHANNELS") {
            s.deny_list.enforce_channels = channels("DENYLIST_ENFORCE_CHANNELS", &v)?;
        }
        // Below the flow function's 5 s timeout, with room for the answer and the runtime.
        if let Some(ms) = number(&get, "DENYLIST_FLOW_BUDGET_MS", 100, 4_000)? {
            s.deny_list.flow_budget = std::time::Duration::from_millis(ms as u64);
        }
        s.deny_list.stop_replayed = boolean(&get, "DENYLIST_STOP_REPLAYED")?;
        if let Some(v) = get("ARCHIVE_BUCKET") {
            s.flow_logs.bucket = v;
        }
        s.flow_logs.prefix = get("ARCHIVE_PREFIX");
        s.flow_logs.bucket_owner = get("ARCHIVE_BUCKET_OWNER");
        s.archive_kms_key = get("ARCHIVE_KMS_KEY_ID");
        s.flow_logs.log_group = get("FLOW_LOG_GROUP");
        s.flow_logs.follow_related = boolean(&get, "FLOW_LOGS_FOLLOW_RELATED")?;
        if let Some(n) = number(&get, "FLOW_LOGS_SETTLE_POLLS", 1, 20)? {
            s.flow_logs.settle_polls = n as u32;
        }
        if let Some(ms) = number(&get, "FLOW_LOGS_SETTLE_INTERVAL_MS", 0, 60_000)? {
            s.flow_logs.settle_interval = std::time::Duration::from_millis(ms as u64);
        }
        if let Some(secs) = number(&get, "FLOW_LOGS_NO_LOGS_GRACE_S", 0, 86_400)? {
            s.flow_logs.no_logs_grace = Duration::seconds(secs);
        }
        if let Some(v) = get("FLOW_LOGS_STRATEGY") {
            let v = v.to_ascii_lowercase();
            if v != "insights" && v != "filter" {
                return Err(invalid("FLOW_LOGS_STRATEGY", &v, "insights or filter"));
            }
            s.flow_logs_strategy = v;
        }
        Ok(s)
    }
}

fn invalid(var: &str, value: &str, expected: &str) -> HandlerError {
    HandlerError::Config(format!(
        "{var}={:?}: expected {expected}",
        crate::redact::redact_numbers(value)
    ))
}

/// `true`/`1` or `false`/`0` (any case); unset is `false`.
fn boolean(get: &impl Fn(&str) -> Option<String>, var: &str) -> Result<bool, HandlerError> {
    match get(var).as_deref().map(str::to_ascii_lowercase).as_deref() {
        None | Some("false") | Some("0") => Ok(false),
        Some("true") | Some("1") => Ok(true),
        Some(other) => Err(invalid(var, other, "true or false")),
    }
}

fn number(
    get: &impl Fn(&str) -> Option<String>,
    var: &str,
    min: i64,
    max: i64,
) -> Result<Option<i64>, HandlerError> {
    match get(var) {
        None => Ok(None),
        Some(v) => match v.parse::<i64>() {
            Ok(n) if (min..=max).contains(&n) => Ok(Some(n)),
            _ => Err(invalid(var, &v, &format!("an integer from {min} to {max}"))),
        },
    }
}

fn channels(var: &str, v: &str) -> Result<Vec<Channel>, HandlerError> {
    let list: Vec<Channel> = v
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(Channel::parse)
        .collect();
    if let Some(Channel::Other(bad)) = list.iter().find(|c| matches!(c, Channel::Other(_))) {
        return Err(invalid(
            var,
            bad,
            "a comma-separated list of VOICE, CHAT, TASK, EMAIL",
        ));
    }
    if list.is_empty() {
        return Err(invalid(var, v, "at least one channel"));
    }
    Ok(list)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn from(pairs: &[(&str, &str)]) -> Result<Settings, HandlerError> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        Settings::from_lookup(|k| map.get(k).cloned())
    }

    #[test]
    fn opensearch_serverless_is_refused_with_the_reason() {
        let e = from(&[("OPENSEARCH_SERVICE", "aoss")]).unwrap_err();
        assert!(matches!(e, HandlerError::Config(_)));
        assert!(e.to_string().contains("external document versions"), "{e}");
        assert_eq!(
            from(&[("OPENSEARCH_SERVICE", "ES")])
                .unwrap()
                .opensearch_service,
            "es"
        );
    }

    #[test]
    fn defaults_and_overrides() {
        let s = from(&[]).unwrap();
        assert_eq!(s.deny_list_table, "DenylistingTable");
        assert_eq!(s.queue_depth.min_interval, Duration::seconds(1));
        let s = from(&[
            ("QUEUE_DEPTH_CHANNELS", "voice, chat"),
            ("DENYLIST_ON_FAILURE", "closed"),
            ("DENYLIST_DEFAULT_REGION", "gb"),
        ])
        .unwrap();
        assert_eq!(s.queue_depth.channels, vec![Channel::Voice, Channel::Chat]);
        assert_eq!(s.deny_list.on_failure, FailurePolicy::FailClosed);
        assert_eq!(s.deny_list.default_region.as_deref(), Some("GB"));
    }

    #[test]
    fn invalid_values_name_the_variable() {
        let e = from(&[("QUEUE_DEPTH_MIN_INTERVAL_MS", "soon")]).unwrap_err();
        assert!(e.to_string().contains("QUEUE_DEPTH_MIN_INTERVAL_MS"), "{e}");
        assert!(from(&[("QUEUE_DEPTH_CHANNELS", "VOICE,FAX")]).is_err());
        assert!(from(&[("DENYLIST_ANONYMOUS", "maybe")]).is_err());
        let e = from(&[
            ("QUEUE_DEPTH_MIN_INTERVAL_MS", "5000"),
            ("QUEUE_DEPTH_MAX_WAIT_MS", "2000"),
        ])
        .unwrap_err();
        assert!(e.to_string().contains("QUEUE_DEPTH_MAX_WAIT_MS"), "{e}");
        let s = from(&[("QUEUE_DEPTH_MIN_INTERVAL_MS", "5000")]).unwrap();
        assert_eq!(s.queue_depth_max_wait, Duration::seconds(5));
    }
}
