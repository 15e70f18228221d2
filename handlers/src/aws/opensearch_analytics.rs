//! Amazon OpenSearch Service adapter of the analytics store ([`AnalyticsStore`]): contact records
//! and agent events in daily indices, the metrics as the queries of
//! [`connect_events_core::analytics::queries`]. Mappings and the index rules are in
//! `infra/opensearch/README.md` ("Analytics indices").
//!
//! Idempotence comes from OpenSearch itself, atomically per document on its primary shard: a
//! contact record is written with `version = LastUpdateTimestamp` (ms), `version_type=external`,
//! so a re-delivered or older copy gets 409 (counted as stale, not an error) and the newest copy
//! wins in any order; an agent event is created under its `EventId` (`op_type=create`: 409 =
//! already stored). The client and its error classification are the queue-depth adapter's
//! ([`super::opensearch`]).

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use connect_events_core::analytics::queries::{self, Indices, Metric, Target, Window};
use connect_events_core::analytics::{
    AgentEvent, AnalyticsReport, AnalyticsStore, ContactRecord, Incoming,
};
use connect_events_core::deny_list::mask;
use connect_events_core::PortError;
use serde_json::{json, Value};
use tokio::sync::OnceCell;

use ::opensearch::indices::IndicesPutIndexTemplateParts;
use ::opensearch::params::VersionType;
use ::opensearch::{BulkOperation, BulkOperations, BulkParts, OpenSearch, SearchParts};

use super::opensearch::{
    error_type, expect_success, read, rejected, response_error, template_for, transport_error,
    VERSION_CONFLICT,
};

/// Template of the contact-record indices.
pub const CTR_TEMPLATE: &str = include_str!("../../../infra/opensearch/ctr-index-template.json");
/// Template of the agent-event indices.
pub const AGENT_EVENT_TEMPLATE: &str =
    include_str!("../../../infra/opensearch/agent-event-index-template.json");
/// Template of the agent-state index.
pub const AGENT_STATE_TEMPLATE: &str =
    include_str!("../../../infra/opensearch/agent-state-index-template.json");

/// Default agent-state index.
pub const DEFAULT_AGENT_STATE_INDEX: &str = "agent-state";

/// The analytics indices on an OpenSearch domain.
#[derive(Debug)]
pub struct OpenSearchAnalytics {
    client: OpenSearch,
    indices: Indices,
    agent_state: String,
    ready: OnceCell<()>,
}

impl OpenSearchAnalytics {
    pub fn new(client: OpenSearch, indices: Indices, agent_state: impl Into<String>) -> Self {
        OpenSearchAnalytics {
            client,
            indices,
            agent_state: agent_state.into(),
            ready: OnceCell::new(),
        }
    }

    /// The indices (prefixes) written and queried.
    pub fn indices(&self) -> &Indices {
        &self.indices
    }

    /// Puts the three index templates (once per instance; a failure is not cached).
    pub async fn ensure_ready(&self) -> Result<(), PortError> {
        self.ready
            .get_or_try_init(|| async {
                for (name, pattern, source) in [
                    (
                        format!("{}records", self.indices.ctr_prefix),
                        format!("{}*", self.indices.ctr_prefix),
                        CTR_TEMPLATE,
                    ),
                    (
                        format!("{}records", self.indices.agent_event_prefix),
                        format!("{}*", self.indices.agent_event_prefix),
                        AGENT_EVENT_TEMPLATE,
                    ),
                    (
                        self.agent_state.clone(),
                        self.agent_state.clone(),
                        AGENT_STATE_TEMPLATE,
                    ),
                ] {
                    let template = template_for(source, &pattern)?;
                    let context = format!("PUT _index_template/{name}");
                    let response = self
                        .client
                        .indices()
                        .put_index_template(IndicesPutIndexTemplateParts::Name(&name))
                        .body(&template)
                        .send()
                        .await
                        .map_err(|e| transport_error(&context, &e))?;
                    expect_success(response, &context).await?;
                }
                Ok(())
            })
            .await
            .map(|_| ())
    }

    async fn search(
        &self,
        target: Target,
        body: &Value,
        context: &str,
    ) -> Result<Value, PortError> {
        let pattern = self.indices.pattern(target);
        let response = self
            .client
            .search(SearchParts::Index(&[&pattern]))
            .body(body)
            .send()
            .await
            .map_err(|e| transport_error(context, &e))?;
        let (status, answer) = read(response, context).await?;
        // No index yet (nothing ingested): every count is 0, every mean null.
        if status == 404 && error_type(&answer) == "index_not_found_exception" {
            return Ok(json!({ "hits": { "total": { "value": 0 } },
                              "aggregations": { "value": { "value": null, "buckets": [] } } }));
        }
        if !(200..300).contains(&status) {
            return Err(response_error(context, status, &answer));
        }
        Ok(answer)
    }
}

/// `<prefix>YYYY.MM.DD` of a UTC instant.
fn daily(prefix: &str, at: DateTime<Utc>) -> String {
    format!("{prefix}{}", at.format("%Y.%m.%d"))
}

/// The stored contact record: as delivered, the caller's number masked.
pub fn ctr_document(ctr: &ContactRecord) -> Value {
    let mut doc = ctr.raw.clone();
    if let Some(address) = doc.pointer_mut("/CustomerEndpoint/Address") {
        if let Some(text) = address.as_str() {
            *address = Value::String(mask(text));
        }
    }
    doc
}

/// The agent-state document of an event.
fn agent_state(event: &AgentEvent, at: DateTime<Utc>) -> Value {
    let status_of = |field: &str| {
        event
            .raw
            .pointer(&format!("/CurrentAgentSnapshot/AgentStatus/{field}"))
            .cloned()
            .unwrap_or(Value::Null)
    };
    json!({
        "AgentARN": event.agent_arn,
        "EventType": event.event_type,
        "EventTimestamp": at.to_rfc3339(),
        "Status": status_of("Name"),
        "StatusType": status_of("Type"),
    })
}

/// The result of a [`AnalyticsStore::put_many`] of one record.
fn only(mut results: Vec<Result<bool, PortError>>) -> Result<bool, PortError> {
    results.pop().unwrap_or_else(|| {
        Err(PortError::Unavailable {
            service: "opensearch",
            message: "_bulk: no result for the record".into(),
        })
    })
}

/// The agent id: the last segment of its ARN (`…/agent/<id>`).
fn agent_id(arn: &str) -> &str {
    arn.rsplit('/').next().unwrap_or(arn)
}

#[async_trait]
impl AnalyticsStore for OpenSearchAnalytics {
    // One write path: a single record is a `_bulk` of one.
    async fn put_ctr(&self, ctr: &ContactRecord) -> Result<bool, PortError> {
        only(self.put_many(&[&Incoming::Ctr(ctr.clone())]).await)
    }

    async fn put_agent_event(&self, event: &AgentEvent) -> Result<bool, PortError> {
        only(self.put_many(&[&Incoming::AgentEvent(event.clone())]).await)
    }

    async fn put_many(&self, records: &[&Incoming]) -> Vec<Result<bool, PortError>> {
        if records.is_empty() {
            return Vec::new();
        }
        if let Err(e) = self.ensure_ready().await {
            return records.iter().map(|_| Err(e.clone())).collect();
        }
        // Per record: its operation's position, or why it could not be sent.
        let mut ops = BulkOperations::new();
        let mut plan: Vec<Result<usize, PortError>> = Vec::with_capacity(records.len());
        let mut count = 0;
        for record in records {
            let planned = match record {
                Incoming::Ctr(ctr) => ctr
                    .attributed_at()
                    .ok_or_else(|| rejected(format!("contact record {}: no DisconnectTimestamp, InitiationTimestamp or LastUpdateTimestamp to date it", ctr.contact_id)))
                    .and_then(|at| {
                        ops.push(
                            BulkOperation::index(ctr_document(ctr))
                                .id(ctr.contact_id.as_str())
                                .index(daily(&self.indices.ctr_prefix, at))
                                .version(ctr.version())
                                .version_type(VersionType::External),
                        )
                        .map_err(|e| rejected(format!("contact record {}: {e}", ctr.contact_id)))
                    })
                    .map(|()| 1),
                Incoming::AgentEvent(event) => event
                    .event_timestamp
                    .ok_or_else(|| rejected(format!("agent event {}: no EventTimestamp", event.event_id)))
                    .and_then(|at| {
                        ops.push(
                            BulkOperation::create(event.event_id.as_str(), &event.raw)
                                .index(daily(&self.indices.agent_event_prefix, at)),
                        )
                        .and_then(|()| {
                            ops.push(
                                BulkOperation::index(agent_state(event, at))
                                    .id(agent_id(&event.agent_arn))
                                    .index(self.agent_state.as_str())
                                    .version(at.timestamp_millis())
                                    .version_type(VersionType::External),
                            )
                        })
                        .map_err(|e| rejected(format!("agent event {}: {e}", event.event_id)))
                    })
                    .map(|()| 2),
            };
            plan.push(planned.map(|n| {
                let first = count;
                count += n;
                first
            }));
        }
        if count == 0 {
            return plan.into_iter().map(|p| p.map(|_| false)).collect();
        }
        let context = "POST _bulk (analytics)";
        let sent = async {
            let response = self
                .client
                .bulk(BulkParts::None)
                .body(vec![ops])
                .send()
                .await
                .map_err(|e| transport_error(context, &e))?;
            let (status, body) = read(response, context).await?;
            if !(200..300).contains(&status) {
                return Err(response_error(context, status, &body));
            }
            body.get("items")
                .and_then(Value::as_array)
                .cloned()
                .filter(|items| items.len() == count)
                .ok_or_else(|| PortError::Unavailable {
                    service: "opensearch",
                    message: format!("{context}: the answer does not have one item per operation"),
                })
        }
        .await;
        let items = match sent {
            Ok(items) => items,
            Err(e) => return plan.into_iter().map(|p| p.and(Err(e.clone()))).collect(),
        };
        // An item's result: written, stale/duplicate (409 version conflict), or an error.
        let item = |n: usize| -> Result<bool, PortError> {
            let result = items[n]
                .as_object()
                .and_then(|o| o.values().next())
                .cloned()
                .unwrap_or(Value::Null);
            let status = result["status"].as_u64().unwrap_or(0) as u16;
            match status {
                200 | 201 => Ok(true),
                409 if result["error"]["type"] == VERSION_CONFLICT => Ok(false),
                _ => Err(response_error(
                    &format!("{context}: {}", result["_id"].as_str().unwrap_or("?")),
                    status,
                    &json!({ "error": result["error"] }),
                )),
            }
        };
        records
            .iter()
            .zip(plan)
            .map(|(record, planned)| {
                let first = planned?;
                let written = item(first)?;
                if matches!(record, Incoming::AgentEvent(_)) {
                    item(first + 1)?;
                }
                Ok(written)
            })
            .collect()
    }

    async fn metrics(&self, window: &Window) -> Result<AnalyticsReport, PortError> {
        let mut report = AnalyticsReport::default();
        for metric in Metric::ALL {
            if metric == Metric::CallsInQueue {
                continue;
            }
            let context = format!(
                "GET {}/_search ({})",
                self.indices.pattern(metric.target()),
                metric.key()
            );
            let answer = self
                .search(
                    metric.target(),
                    &queries::search_body(metric, window),
                    &context,
                )
                .await?;
            let value =
                queries::read_answer(metric, &answer).map_err(|e| PortError::Unavailable {
                    service: "opensearch",
                    message: format!("{context}: {e}"),
                })?;
            queries::apply(&mut report, metric, value);
        }
        Ok(report)
    }
}
