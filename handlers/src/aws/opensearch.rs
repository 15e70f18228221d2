//! Amazon OpenSearch Service adapter of the queue-depth index ([`QueueDepthIndex`]).
//!
//! # Indices
//!
//! [`OpenSearchIndex`] manages up to three indices, each created from a composable index template
//! kept in `infra/opensearch/` (embedded at compile time; the template's `index_patterns` is
//! replaced by the exact index name, and the template is named after the index):
//!
//! | Index | Template file | Content |
//! |---|---|---|
//! | `<index>` | `queue-depth-index-template.json` | current state: one [`QueueDepthDoc`] per instance, queue and channel, id [`QueueDepthDoc::id`] |
//! | `<index>-leases` | `queue-depth-lease-index-template.json` | one slot lease per Amazon Connect instance, id = instance id |
//! | history (optional, [`OpenSearchIndex::with_history`]) | `queue-depth-history-index-template.json` | append-only time series, id `<docId>@<snapshotMs>` ([`history_id`]) |
//!
//! [`QueueDepthIndex::ensure_ready`] puts the templates, creates the missing indices and extends the
//! mappings of existing ones (additive only: OpenSearch rejects a conflicting type change, which
//! surfaces as [`PortError::Rejected`]). It never deletes anything, tolerates concurrent runs in
//! other containers, and succeeds once per process ([`tokio::sync::OnceCell`]); a failure is not
//! cached. `write` and `try_claim` call it first, so the templates exist before any write could
//! auto-create an index with dynamic mappings.
//!
//! # Versioning
//!
//! Every current-state document is written with `version = DataSnapshotTime` in epoch milliseconds
//! ([`QueueDepthDoc::version`]) and `version_type = external`. OpenSearch applies such a write only
//! if the provided version is **strictly higher** than the stored one, atomically on the primary
//! shard; otherwise the item fails with 409 `version_conflict_engine_exception`. That 409 is the
//! expected outcome for a stale, replayed or duplicated snapshot and is counted as
//! [`WriteOutcome::stale_skipped`], not as an error. Hence writes commute: whatever the order and
//! duplication of batches, every document converges to its newest snapshot.
//!
//! # Bulk
//!
//! `write` sends **one** `_bulk` request (an `index` operation per document, plus a `create`
//! operation per document into the history index when configured, addressed with an explicit
//! `_index`). Items are matched to operations by position:
//!
//! * 200/201 → written; 409 on the current index → stale; 409 on the history index → that point
//!   already exists (idempotent);
//! * any other item status fails the call with a [`PortError`] classified by
//!   [`crate::aws::classify_code`] (429 → [`PortError::Throttled`]) naming the failed document ids.
//!   A non-retryable item failure takes precedence over a retryable one (retrying cannot fix it).
//!   Items that succeeded stay written; retrying the whole batch is safe because the rewrites are
//!   stale;
//! * a whole-request failure (429, 5xx, transport error, timeout) is retryable.
//!
//! Writes do not force a refresh: [`QueueDepthIndex::documents`] sees them after the index's
//! `refresh_interval` (1 s).
//!
//! # Slot lease
//!
//! `try_claim(instance, slot_start_ms)` indexes the lease document `<index>-leases/_doc/<instance>`
//! with `version = slot_start_ms` (the start of the refresh slot in epoch milliseconds, aligned on
//! the caller's `QUEUE_DEPTH_MIN_INTERVAL_MS`), `version_type = external`. Because an
//! external-version write succeeds only when its version is higher than the stored one, and
//! OpenSearch serialises writes to one document id on its primary shard, among any number of
//! concurrent claims of the same slot exactly one stores it (201/200 → won) and all others see
//! `start >= start` (409 → lost). A later slot has a single new winner; a claim of an older slot than
//! the stored one always loses. So every slot of an instance is won at most once across all Lambda
//! containers.
//!
//! The version is an instant, not a slot number, so claims made with different intervals compare
//! as times do: after raising the interval from 1 s to 5 s, the first 5 s slot that starts after
//! the last 1 s claim wins (at most 5 s later) and refreshes continue every 5 s; after lowering it,
//! the next 1 s slot after the last 5 s claim wins. (A version that counted slots, `now / interval`,
//! made every claim after a raise lose for years.) Leases written by older releases hold slot
//! numbers, far below any epoch-ms version, so the first claim after an upgrade wins. The lease
//! document keeps its `slot` field (now the slot start in ms), so indices created by older releases
//! (strict mapping) accept it.
//!
//! Limits: each container derives the slot from its own clock, so clock skew only shifts *which*
//! container wins a slot and when (a container running ahead can claim a slot early, and the others
//! lose until their clocks pass it); it never produces two winners for one slot. A claim whose
//! response is lost (timeout) may have been applied: the caller sees a retryable error and, on
//! retry, a lost claim, and the policy's trailing refresh covers the event. Leases are never
//! deleted: after a delete OpenSearch forgets the version once `index.gc_deletes` (60 s) has passed.

use std::time::Duration;

use async_trait::async_trait;
use aws_config::SdkConfig;
use chrono::{SecondsFormat, Utc};
use connect_events_core::queue_depth::{QueueDepthDoc, QueueDepthIndex, WriteOutcome};
use connect_events_core::PortError;
use serde_json::{json, Value};
use tokio::sync::OnceCell;

use ::opensearch::auth::Credentials;
use ::opensearch::http::response::Response;
use ::opensearch::http::transport::{SingleNodeConnectionPool, TransportBuilder};
use ::opensearch::http::Url;
use ::opensearch::indices::{
    IndicesCreateParts, IndicesExistsParts, IndicesPutIndexTemplateParts, IndicesPutMappingParts,
};
use ::opensearch::params::VersionType;
use ::opensearch::{BulkOperation, BulkOperations, BulkParts, IndexParts, OpenSearch, SearchParts};

use crate::aws::{classify_code, DisplayErrorContext};

/// Service name in [`PortError`]s.
const SERVICE: &str = "opensearch";

/// Template of the current-state index (`index_patterns` is replaced by the index name).
pub const INDEX_TEMPLATE: &str =
    include_str!("../../../infra/opensearch/queue-depth-index-template.json");
/// Template of the lease index.
pub const LEASE_TEMPLATE: &str =
    include_str!("../../../infra/opensearch/queue-depth-lease-index-template.json");
/// Template of the optional history index.
pub const HISTORY_TEMPLATE: &str =
    include_str!("../../../infra/opensearch/queue-depth-history-index-template.json");

/// Suffix of the lease index: `<index>-leases`.
pub const LEASE_SUFFIX: &str = "-leases";

/// Request timeout of clients built by [`OpenSearchIndex::client_for`].
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Documents per `_search` page of [`QueueDepthIndex::documents`] (below `max_result_window`).
const PAGE_SIZE: usize = 1000;

/// The error type of a failed external-version check.
pub(crate) const VERSION_CONFLICT: &str = "version_conflict_engine_exception";

/// At most this many failed items are named in a bulk error message.
const NAMED_FAILURES: usize = 5;

/// At most this many characters of a server's error reason are kept in a message.
const MAX_REASON: usize = 500;

/// The queue-depth index on Amazon OpenSearch Service (or any OpenSearch-compatible server).
///
/// Build one per Lambda container and reuse it: the client pools connections and
/// [`QueueDepthIndex::ensure_ready`] runs once per instance.
#[derive(Debug)]
pub struct OpenSearchIndex {
    client: OpenSearch,
    index: String,
    leases: String,
    history: Option<String>,
    ready: OnceCell<()>,
}

impl OpenSearchIndex {
    /// The current-state index `index`, with its lease index `<index>-leases`.
    pub fn new(client: OpenSearch, index: impl Into<String>) -> Self {
        let index = index.into();
        OpenSearchIndex {
            client,
            leases: format!("{index}{LEASE_SUFFIX}"),
            index,
            history: None,
            ready: OnceCell::new(),
        }
    }

    /// Also append every written snapshot to the history index `name` (ids [`history_id`]).
    pub fn with_history(mut self, name: impl Into<String>) -> Self {
        self.history = Some(name.into());
        self
    }

    /// The current-state index.
    pub fn index(&self) -> &str {
        &self.index
    }

    /// The lease index (`<index>-leases`).
    pub fn leases_index(&self) -> &str {
        &self.leases
    }

    /// The history index, when configured.
    pub fn history_index(&self) -> Option<&str> {
        self.history.as_deref()
    }

    /// A client for the endpoint `url` (`https://search-…es.amazonaws.com`), with a
    /// [`DEFAULT_TIMEOUT`] per request.
    ///
    /// With `sdk_config`, every request is signed with SigV4 using its credentials provider and
    /// Region; `service` is `es` (OpenSearch Service domains; Serverless, `aoss`, is not supported:
    /// it does not document the external versioning the queue-depth writes rely on).
    /// Without it, requests are unsigned (local servers, or a domain behind another auth layer).
    /// Configuration problems are [`PortError::Rejected`].
    pub fn client_for(
        url: &str,
        sdk_config: Option<&SdkConfig>,
        service: &str,
    ) -> Result<OpenSearch, PortError> {
        if service != "es" {
            return Err(rejected(format!(
                "unsupported SigV4 service name `{service}` (expected `es`: an OpenSearch Service \
                 domain; Serverless collections do not document external versioning)"
            )));
        }
        let endpoint = base_url(url, "OpenSearch endpoint")?;
        let mut builder =
            TransportBuilder::new(SingleNodeConnectionPool::new(endpoint)).timeout(DEFAULT_TIMEOUT);
        if let Some(config) = sdk_config {
            let credentials = Credentials::try_from(config)
                .map_err(|e| rejected(format!("SigV4 signing for OpenSearch: {e}")))?;
            builder = builder.auth(credentials).service_name(service);
        }
        let transport = builder
            .build()
            .map_err(|e| rejected(format!("building the OpenSearch transport: {e}")))?;
        Ok(OpenSearch::new(transport))
    }

    /// Puts the template of `index`, then creates the index or extends its mappings.
    async fn prepare(&self, index: &str, template_source: &str) -> Result<(), PortError> {
        let template = template_for(template_source, index)?;
        let mappings = template
            .pointer("/template/mappings")
            .cloned()
            .ok_or_else(|| rejected(format!("the template of `{index}` has no mappings")))?;

        let context = format!("PUT _index_template/{index}");
        let response = self
            .client
            .indices()
            .put_index_template(IndicesPutIndexTemplateParts::Name(index))
            .body(&template)
            .send()
            .await
            .map_err(|e| transport_error(&context, &e))?;
        expect_success(response, &context).await?;

        let context = format!("HEAD {index}");
        let response = self
            .client
            .indices()
            .exists(IndicesExistsParts::Index(&[index]))
            .send()
            .await
            .map_err(|e| transport_error(&context, &e))?;
        match response.status_code().as_u16() {
            404 => self.create_index(index).await,
            // An index or an alias: bring its mappings up to date (additive only).
            200 => self.put_mapping(index, &mappings).await,
            _ => expect_success(response, &context).await,
        }
    }

    /// Creates `index` (settings and mappings come from its template); an index created meanwhile by
    /// another container is a success.
    async fn create_index(&self, index: &str) -> Result<(), PortError> {
        let context = format!("PUT {index}");
        let response = self
            .client
            .indices()
            .create(IndicesCreateParts::Index(index))
            .send()
            .await
            .map_err(|e| transport_error(&context, &e))?;
        let (status, body) = read(response, &context).await?;
        if is_success(status) || error_type(&body) == "resource_already_exists_exception" {
            Ok(())
        } else {
            Err(response_error(&context, status, &body))
        }
    }

    async fn put_mapping(&self, index: &str, mappings: &Value) -> Result<(), PortError> {
        let context = format!("PUT {index}/_mapping");
        let response = self
            .client
            .indices()
            .put_mapping(IndicesPutMappingParts::Index(&[index]))
            .body(mappings)
            .send()
            .await
            .map_err(|e| transport_error(&context, &e))?;
        expect_success(response, &context).await
    }

    /// The `_bulk` body and, in the same order, what each operation is.
    fn bulk_operations(
        &self,
        docs: &[QueueDepthDoc],
    ) -> Result<(BulkOperations, Vec<BulkTarget>), PortError> {
        let per_doc = if self.history.is_some() { 2 } else { 1 };
        let mut ops = BulkOperations::new();
        let mut targets = Vec::with_capacity(docs.len() * per_doc);
        for doc in docs {
            let id = doc.id();
            let version = doc.version();
            if version < 0 {
                return Err(rejected(format!(
                    "document {id}: snapshotTime {:?} gives the negative external version {version}",
                    doc.snapshot_time
                )));
            }
            ops.push(
                BulkOperation::index(doc)
                    .id(id.as_str())
                    .version(version)
                    .version_type(VersionType::External),
            )
            .map_err(|e| rejected(format!("serializing document {id}: {e}")))?;
            targets.push(BulkTarget::Current(id.clone()));
            if let Some(history) = self.history.as_deref() {
                let history_id = history_id(&id, version);
                ops.push(BulkOperation::create(history_id.as_str(), doc).index(history))
                    .map_err(|e| rejected(format!("serializing document {history_id}: {e}")))?;
                targets.push(BulkTarget::History(history_id));
            }
        }
        Ok((ops, targets))
    }
}

/// The id of a history document: `<docId>@<snapshotMs>`, so each snapshot of a queue and channel
/// is stored once however often it is written.
pub fn history_id(doc_id: &str, snapshot_ms: i64) -> String {
    format!("{doc_id}@{snapshot_ms}")
}

#[async_trait]
impl QueueDepthIndex for OpenSearchIndex {
    async fn ensure_ready(&self) -> Result<(), PortError> {
        self.ready
            .get_or_try_init(|| async {
                let history = async {
                    match self.history.as_deref() {
                        Some(history) => self.prepare(history, HISTORY_TEMPLATE).await,
                        None => Ok(()),
                    }
                };
                tokio::try_join!(
                    self.prepare(&self.index, INDEX_TEMPLATE),
                    self.prepare(&self.leases, LEASE_TEMPLATE),
                    history,
                )?;
                Ok(())
            })
            .await
            .map(|_| ())
    }

    async fn write(&self, docs: &[QueueDepthDoc]) -> Result<WriteOutcome, PortError> {
        if docs.is_empty() {
            return Ok(WriteOutcome::default());
        }
        self.ensure_ready().await?;
        let (ops, targets) = self.bulk_operations(docs)?;
        let context = format!("POST {}/_bulk", self.index);
        let response = self
            .client
            .bulk(BulkParts::Index(&self.index))
            .body(vec![ops])
            .send()
            .await
            .map_err(|e| transport_error(&context, &e))?;
        let (status, body) = read(response, &context).await?;
        if !is_success(status) {
            return Err(response_error(&context, status, &body));
        }
        let items = body
            .get("items")
            .and_then(Value::as_array)
            .ok_or_else(|| unavailable(format!("{context}: the response has no `items`")))?;
        bulk_outcome(&context, &targets, items)
    }

    async fn documents(&self) -> Result<Vec<QueueDepthDoc>, PortError> {
        let context = format!("POST {}/_search", self.index);
        let mut docs = Vec::new();
        let mut search_after: Option<Value> = None;
        loop {
            let mut query = json!({
                "size": PAGE_SIZE,
                "track_total_hits": false,
                "sort": [{ "instanceId": "asc" }, { "queueId": "asc" }, { "channel": "asc" }],
                "query": { "bool": { "filter": [
                    { "exists": { "field": "instanceId" } },
                    { "exists": { "field": "queueId" } },
                    { "exists": { "field": "channel" } },
                    { "exists": { "field": "snapshotTime" } },
                ] } },
            });
            if let Some(after) = search_after.take() {
                query["search_after"] = after;
            }
            let response = self
                .client
                .search(SearchParts::Index(&[&self.index]))
                .body(query)
                .send()
                .await
                .map_err(|e| transport_error(&context, &e))?;
            let (status, body) = read(response, &context).await?;
            if status == 404 && error_type(&body) == "index_not_found_exception" {
                return Ok(docs);
            }
            if !is_success(status) {
                return Err(response_error(&context, status, &body));
            }
            let hits = body
                .pointer("/hits/hits")
                .and_then(Value::as_array)
                .ok_or_else(|| unavailable(format!("{context}: the response has no hits")))?;
            docs.extend(hits.iter().filter_map(queue_doc));
            if hits.len() < PAGE_SIZE {
                return Ok(docs);
            }
            search_after = hits.last().and_then(|hit| hit.get("sort")).cloned();
            if search_after.is_none() {
                return Err(unavailable(format!(
                    "{context}: a full page without sort values"
                )));
            }
        }
    }

    async fn try_claim(&self, instance_id: &str, slot: i64) -> Result<bool, PortError> {
        if instance_id.is_empty() {
            return Err(rejected("try_claim: empty instance id".to_string()));
        }
        if slot < 0 {
            return Err(rejected(format!(
                "try_claim {instance_id}: slot start {slot} ms is negative (external versions are >= 0)"
            )));
        }
        self.ensure_ready().await?;
        let context = format!(
            "PUT {}/_doc/{instance_id} (slot start {slot} ms)",
            self.leases
        );
        let lease = json!({
            "instanceId": instance_id,
            "slot": slot,
            "claimedAt": Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
        });
        let response = self
            .client
            .index(IndexParts::IndexId(&self.leases, instance_id))
            .version(slot)
            .version_type(VersionType::External)
            .body(lease)
            .send()
            .await
            .map_err(|e| transport_error(&context, &e))?;
        let (status, body) = read(response, &context).await?;
        match status {
            200 | 201 => Ok(true),
            409 => Ok(false),
            _ => Err(response_error(&context, status, &body)),
        }
    }
}

/// What one `_bulk` operation wrote (its document id).
#[derive(Debug, Clone, PartialEq, Eq)]
enum BulkTarget {
    Current(String),
    History(String),
}

/// A failed `_bulk` item.
#[derive(Debug)]
struct ItemFailure {
    id: String,
    status: u16,
    code: String,
    reason: String,
}

impl ItemFailure {
    fn classify(&self, message: String) -> PortError {
        classify_code(SERVICE, &self.code, message, Some(self.status))
    }
}

/// Interprets the per-item results of a `_bulk` response (see the module documentation).
fn bulk_outcome(
    context: &str,
    targets: &[BulkTarget],
    items: &[Value],
) -> Result<WriteOutcome, PortError> {
    if items.len() != targets.len() {
        return Err(unavailable(format!(
            "{context}: {} items answered for {} operations",
            items.len(),
            targets.len()
        )));
    }
    let mut outcome = WriteOutcome::default();
    let mut failures = Vec::new();
    for (target, item) in targets.iter().zip(items) {
        // Each item is `{"<op>": {"status": …, "error": {…}, …}}`.
        let result = item.as_object().and_then(|op| op.values().next());
        let status = result
            .and_then(|r| r.get("status"))
            .and_then(Value::as_u64)
            .and_then(|s| u16::try_from(s).ok())
            .unwrap_or(0);
        let (code, reason) = result.map(error_parts).unwrap_or_default();
        match (target, status) {
            (BulkTarget::Current(_), 200 | 201) => outcome.written += 1,
            (BulkTarget::Current(_), 409) if code == VERSION_CONFLICT || code.is_empty() => {
                outcome.stale_skipped += 1;
            }
            // A history point is created once; writing it again is a no-op.
            (BulkTarget::History(_), 200 | 201 | 409) => {}
            (BulkTarget::Current(id) | BulkTarget::History(id), _) => failures.push(ItemFailure {
                id: id.clone(),
                status,
                code,
                reason,
            }),
        }
    }
    // Retrying cannot fix a non-retryable failure, so it decides the error kind.
    let Some(decisive) = failures
        .iter()
        .find(|f| !f.classify(String::new()).retryable())
        .or_else(|| failures.first())
    else {
        return Ok(outcome);
    };
    let mut named: Vec<String> = failures
        .iter()
        .take(NAMED_FAILURES)
        .map(|f| format!("{}: HTTP {} {}: {}", f.id, f.status, f.code, f.reason))
        .collect();
    if failures.len() > NAMED_FAILURES {
        named.push(format!("and {} more", failures.len() - NAMED_FAILURES));
    }
    Err(decisive.classify(format!(
        "{context}: {} of {} operations failed ({} written, {} stale): {}",
        failures.len(),
        targets.len(),
        outcome.written,
        outcome.stale_skipped,
        named.join("; ")
    )))
}

/// A search hit as a queue-depth document; `None` for anything else (a document that does not
/// deserialize, or whose `_id` is not the id its content implies).
fn queue_doc(hit: &Value) -> Option<QueueDepthDoc> {
    let source = hit.get("_source")?;
    let doc: QueueDepthDoc = serde_json::from_value(source.clone()).ok()?;
    (hit.get("_id").and_then(Value::as_str) == Some(doc.id().as_str())).then_some(doc)
}

/// The template `source` for exactly the index `index`.
/// `url` as a base for request paths: http(s) only, ending in `/` so that a path prefix (a proxy,
/// Dashboards' `/_dashboards`) is kept when paths are joined to it. `what` names it in errors.
pub(crate) fn base_url(url: &str, what: &str) -> Result<Url, PortError> {
    let mut endpoint =
        Url::parse(url).map_err(|e| rejected(format!("invalid {what} {url:?}: {e}")))?;
    if !matches!(endpoint.scheme(), "http" | "https") {
        return Err(rejected(format!(
            "invalid {what} {url:?}: the scheme must be http or https"
        )));
    }
    if !endpoint.path().ends_with('/') {
        let path = format!("{}/", endpoint.path());
        endpoint.set_path(&path);
    }
    Ok(endpoint)
}

pub(crate) fn template_for(source: &str, index: &str) -> Result<Value, PortError> {
    let mut template: Value = serde_json::from_str(source)
        .map_err(|e| rejected(format!("the index template of `{index}` is not JSON: {e}")))?;
    let fields = template.as_object_mut().ok_or_else(|| {
        rejected(format!(
            "the index template of `{index}` is not a JSON object"
        ))
    })?;
    fields.insert("index_patterns".to_string(), json!([index]));
    Ok(template)
}

pub(crate) fn is_success(status: u16) -> bool {
    (200..300).contains(&status)
}

/// Status and body of a response: JSON, else the text as a JSON string (`Null` when empty).
pub(crate) async fn read(response: Response, context: &str) -> Result<(u16, Value), PortError> {
    let status = response.status_code().as_u16();
    let text = response
        .text()
        .await
        .map_err(|e| transport_error(context, &e))?;
    let body = if text.trim().is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    Ok((status, body))
}

/// `Ok` for a 2xx response, else the classified error.
pub(crate) async fn expect_success(response: Response, context: &str) -> Result<(), PortError> {
    if is_success(response.status_code().as_u16()) {
        return Ok(());
    }
    let (status, body) = read(response, context).await?;
    Err(response_error(context, status, &body))
}

/// The error of a non-2xx response, classified by its OpenSearch error type and HTTP status.
pub(crate) fn response_error(context: &str, status: u16, body: &Value) -> PortError {
    let (code, reason) = error_parts(body);
    classify_code(
        SERVICE,
        &code,
        format!("{context}: HTTP {status} {code}: {reason}"),
        Some(status),
    )
}

/// The OpenSearch error type of a response body (empty when there is none).
pub(crate) fn error_type(body: &Value) -> String {
    error_parts(body).0
}

/// `(type, reason)` of an error body: OpenSearch's `{"error": {"type", "reason"}}`, an older
/// `{"error": "text"}`, or an AWS front-end `{"message": "…"}` / `{"Message": "…"}`.
fn error_parts(body: &Value) -> (String, String) {
    let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or_default().to_string();
    let (code, reason) = match body.get("error") {
        Some(Value::Object(error)) => (text(error.get("type")), text(error.get("reason"))),
        Some(Value::String(reason)) => (String::new(), reason.clone()),
        _ => match body {
            Value::String(reason) => (String::new(), reason.clone()),
            _ => (
                String::new(),
                text(body.get("message").or_else(|| body.get("Message"))),
            ),
        },
    };
    (code, truncate(reason, MAX_REASON))
}

fn truncate(mut s: String, max_chars: usize) -> String {
    if let Some((at, _)) = s.char_indices().nth(max_chars) {
        s.truncate(at);
        s.push('…');
    }
    s
}

/// A transport failure: retryable unless the request itself could not be serialized.
pub(crate) fn transport_error(context: &str, err: &::opensearch::Error) -> PortError {
    let message = format!("{context}: {}", DisplayErrorContext(err));
    if err.is_json() {
        rejected(message)
    } else {
        unavailable(message)
    }
}

pub(crate) fn rejected(message: String) -> PortError {
    PortError::Rejected {
        service: SERVICE,
        message,
    }
}

fn unavailable(message: String) -> PortError {
    PortError::Unavailable {
        service: SERVICE,
        message,
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use connect_events_core::queue_depth::Trigger;

    use super::*;

    fn sample_doc() -> QueueDepthDoc {
        QueueDepthDoc {
            instance_id: "i".into(),
            queue_id: "q".into(),
            queue_arn: Some("arn".into()),
            queue_name: Some("Billing".into()),
            channel: "VOICE".into(),
            contacts_in_queue: 1,
            contacts_scheduled: 2,
            queue_depth: 3,
            oldest_contact_age_seconds: Some(1.5),
            agents_online: Some(4),
            agents_available: Some(5),
            snapshot_time: "2025-06-10T14:04:30.412Z".into(),
            refreshed_at: "2025-06-10T14:04:31.000Z".into(),
            trigger: Trigger::new("QUEUED", Some("c".into())),
        }
    }

    /// Every field path of a serialized document (`trigger.kind`, …).
    fn field_paths(value: &Value, prefix: &str, out: &mut BTreeSet<String>) {
        if let Some(map) = value.as_object() {
            for (k, v) in map {
                let path = format!("{prefix}{k}");
                if v.is_object() {
                    field_paths(v, &format!("{path}."), out);
                } else {
                    out.insert(path);
                }
            }
        }
    }

    /// Every field path of a mapping's `properties`.
    fn mapped_paths(properties: &Value, prefix: &str, out: &mut BTreeSet<String>) {
        if let Some(map) = properties.as_object() {
            for (k, v) in map {
                let path = format!("{prefix}{k}");
                match v.get("properties") {
                    Some(inner) => mapped_paths(inner, &format!("{path}."), out),
                    None => {
                        out.insert(path);
                    }
                }
            }
        }
    }

    fn properties(source: &str) -> Value {
        template_for(source, "x").unwrap()["template"]["mappings"]["properties"].clone()
    }

    #[test]
    fn templates_map_every_document_field() {
        let mut fields = BTreeSet::new();
        field_paths(
            &serde_json::to_value(sample_doc()).unwrap(),
            "",
            &mut fields,
        );
        let mut mapped = BTreeSet::new();
        mapped_paths(&properties(INDEX_TEMPLATE), "", &mut mapped);
        assert_eq!(
            fields, mapped,
            "the index template must map exactly the QueueDepthDoc fields"
        );
        assert_eq!(
            properties(INDEX_TEMPLATE),
            properties(HISTORY_TEMPLATE),
            "current and history documents share one mapping"
        );
        let lease = properties(LEASE_TEMPLATE);
        assert_eq!(lease["slot"]["type"], "long");
    }

    #[test]
    fn template_pattern_is_the_index_name() {
        for source in [INDEX_TEMPLATE, LEASE_TEMPLATE, HISTORY_TEMPLATE] {
            let t = template_for(source, "my-index").unwrap();
            assert_eq!(t["index_patterns"], json!(["my-index"]));
            assert_eq!(t["template"]["mappings"]["dynamic"], "strict");
            assert_eq!(t["template"]["settings"]["index"]["number_of_shards"], 1);
        }
    }

    #[test]
    fn history_ids() {
        let doc = sample_doc();
        assert_eq!(
            history_id(&doc.id(), doc.version()),
            "i:q:VOICE@1749564270412"
        );
    }

    fn item(op: &str, status: u16, error: Option<(&str, &str)>) -> Value {
        let mut result = json!({ "status": status });
        if let Some((t, r)) = error {
            result["error"] = json!({ "type": t, "reason": r });
        }
        json!({ op: result })
    }

    #[test]
    fn bulk_items_written_stale_and_history_duplicates() {
        let targets = [
            BulkTarget::Current("a".into()),
            BulkTarget::History("a@1".into()),
            BulkTarget::Current("b".into()),
            BulkTarget::History("b@1".into()),
        ];
        let items = [
            item("index", 201, None),
            item("create", 201, None),
            item(
                "index",
                409,
                Some((VERSION_CONFLICT, "current version [2] is higher")),
            ),
            item(
                "create",
                409,
                Some((VERSION_CONFLICT, "document already exists")),
            ),
        ];
        let outcome = bulk_outcome("ctx", &targets, &items).unwrap();
        assert_eq!(
            outcome,
            WriteOutcome {
                written: 1,
                stale_skipped: 1
            }
        );
    }

    #[test]
    fn bulk_item_failures_are_classified_and_named() {
        let targets = [
            BulkTarget::Current("a".into()),
            BulkTarget::Current("b".into()),
            BulkTarget::Current("c".into()),
        ];
        let throttled = [
            item("index", 201, None),
            item(
                "index",
                429,
                Some(("es_rejected_execution_exception", "queue full")),
            ),
            item("index", 200, None),
        ];
        let err = bulk_outcome("ctx", &targets, &throttled).unwrap_err();
        assert!(matches!(err, PortError::Throttled { .. }), "{err:?}");
        assert!(err.to_string().contains("b: HTTP 429"), "{err}");

        let mixed = [
            item(
                "index",
                429,
                Some(("es_rejected_execution_exception", "queue full")),
            ),
            item("index", 400, Some(("mapper_parsing_exception", "bad date"))),
            item("index", 201, None),
        ];
        let err = bulk_outcome("ctx", &targets, &mixed).unwrap_err();
        assert!(matches!(err, PortError::Rejected { .. }), "{err:?}");
        let text = err.to_string();
        assert!(text.contains("2 of 3 operations failed"), "{text}");
        assert!(
            text.contains("a: HTTP 429") && text.contains("b: HTTP 400"),
            "{text}"
        );

        let short = [item("index", 201, None)];
        assert!(matches!(
            bulk_outcome("ctx", &targets, &short),
            Err(PortError::Unavailable { .. })
        ));
    }

    #[test]
    fn whole_request_errors() {
        let body = json!({ "error": { "type": "es_rejected_execution_exception", "reason": "r" } });
        assert!(matches!(
            response_error("ctx", 429, &body),
            PortError::Throttled { .. }
        ));
        let body = json!({ "message": "Service Unavailable" });
        let err = response_error("ctx", 503, &body);
        assert!(matches!(err, PortError::Unavailable { .. }));
        assert!(err.retryable());
        assert!(err.to_string().contains("Service Unavailable"));
        let body = json!({ "Message": "User: x is not authorized" });
        assert!(matches!(
            response_error("ctx", 403, &body),
            PortError::Rejected { .. }
        ));
        assert_eq!(
            error_type(&json!({ "error": { "type": "index_not_found_exception" } })),
            "index_not_found_exception"
        );
    }

    #[test]
    fn hits_that_are_not_queue_docs_are_skipped() {
        let doc = sample_doc();
        let good = json!({ "_id": doc.id(), "_source": doc });
        assert_eq!(queue_doc(&good), Some(sample_doc()));
        let wrong_id = json!({ "_id": "other", "_source": sample_doc() });
        assert_eq!(queue_doc(&wrong_id), None);
        let partial = json!({ "_id": "i:q:VOICE", "_source": { "instanceId": "i" } });
        assert_eq!(queue_doc(&partial), None);
    }

    #[test]
    fn client_configuration_errors_are_rejected() {
        for (url, service) in [
            ("not a url", "es"),
            ("localhost:9200", "es"),
            ("https://x.example", "s3"),
        ] {
            assert!(matches!(
                OpenSearchIndex::client_for(url, None, service),
                Err(PortError::Rejected { .. })
            ));
        }
        assert!(OpenSearchIndex::client_for("https://x.example/prefix", None, "es").is_ok());
        assert!(matches!(
            OpenSearchIndex::client_for("https://x.example", None, "aoss"),
            Err(PortError::Rejected { .. })
        ));
    }

    #[test]
    fn long_reasons_are_truncated() {
        assert_eq!(truncate("abcdef".into(), 3), "abc…");
        assert_eq!(truncate("abc".into(), 3), "abc");
    }
}
