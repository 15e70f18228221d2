//! CloudWatch Logs adapter of the [`FlowLogSource`] port: reads a contact's Amazon Connect flow-log
//! entries from the instance's log group (`/aws/connect/<instance-alias>`).
//!
//! A busy instance writes flow logs into several streams and a transferred contact may log into a
//! different stream, so the whole group is searched. Two strategies ([`LogStrategy`]):
//!
//! * **Insights** (what the `AWSSupport-CollectAmazonConnectContactFlowLog` runbook does; it bills
//!   every byte of the window of the whole group, so its cost per contact grows with traffic): one Logs Insights query per time window, built by [`insights_query`]
//!   (`fields @timestamp, @message | filter ContactId = "<id>" or … | sort @timestamp asc | limit 10000`),
//!   started with `StartQuery` and polled with `GetQueryResults` under a bounded exponential backoff
//!   until `Complete`. `Failed` is [`PortError::Rejected`]; `Cancelled`, `Timeout` and a query still
//!   running after [`CloudWatchFlowLogs::with_query_timeout`] (stopped with `StopQuery`) are the
//!   retryable [`PortError::Unavailable`].
//! * **Filter** (the default: one call and the contact's own events per archive, whatever the
//!   traffic; `cargo bench --bench flow_log_cost`): `FilterLogEvents` with the quoted contact id as
//!   the filter pattern, one paginated call series per id. A quoted phrase is the only pattern form that CloudWatch and the local test
//!   server (moto) evaluate the same way; the alternative `?"id1" ?"id2"` would save a few calls for
//!   related contacts (at most three ids) but is answered with *every* event by moto. An id that
//!   cannot be written as a quoted phrase (it contains `"` or `\`) is searched without a pattern.
//!
//! **The 10,000-row cap.** An Insights query returns at most 10,000 rows. A result that reaches the
//! cap may be truncated, so the window is split into two halves ([`QueryWindow::split`]) that are
//! queried in turn, recursively up to [`MAX_SPLIT_DEPTH`] levels. The halves share their middle
//! second (Insights takes whole seconds and whether the end second is fully included is not
//! specified), and rows already seen are recognised by their `@ptr`, which identifies one log event.
//! A window that still reaches the cap and cannot be split any more is read with `FilterLogEvents`,
//! which paginates without a cap — an archive is never silently truncated.
//!
//! **Exactness.** Neither strategy is trusted to match exactly: Insights `filter` clauses are
//! ignored by moto, and a term filter also matches entries that merely mention the id. The adapter
//! returns what the service returned; the core policy keeps exact `ContactId` matches. Messages that
//! are not flow-log entries ([`FlowLogEntry::parse`] fails) are skipped with a warning.
//!
//! A missing log group is [`PortError::NotFound`] (not retryable): Connect does not recreate a
//! deleted flow-log group.

use std::collections::HashSet;
use std::fmt;
use std::str::FromStr;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_cloudwatchlogs::operation::filter_log_events::FilterLogEventsOutput;
use aws_sdk_cloudwatchlogs::types::{QueryStatus, ResultField};
use chrono::{DateTime, Utc};
use connect_events_core::capture::{CapturePage, CapturedEvent, CapturedEvents};
use connect_events_core::flow_logs::{FlowLogEntry, FlowLogQuery, FlowLogSource};
use connect_events_core::PortError;
use lambda_runtime::tracing;

use super::port_error;

/// Service name in [`PortError`]s.
const SERVICE: &str = "cloudwatch-logs";

/// Most rows one Logs Insights query returns (the service's cap and the largest `limit`).
pub const MAX_QUERY_ROWS: u32 = 10_000;

/// How many times a capped window is halved before it is read with `FilterLogEvents`.
/// Eleven halvings take a 30-minute window down to windows of one or two seconds.
pub const MAX_SPLIT_DEPTH: u32 = 12;

/// Default bound on the wait for one Insights query (the archiver Lambda runs for at most 120 s).
pub const DEFAULT_QUERY_TIMEOUT: Duration = Duration::from_secs(60);

/// First delay between `GetQueryResults` polls; doubled after each poll up to [`POLL_MAX`].
const POLL_INITIAL: Duration = Duration::from_millis(100);
/// Longest delay between `GetQueryResults` polls.
const POLL_MAX: Duration = Duration::from_secs(2);

/// How flow-log entries are searched (see the module docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LogStrategy {
    /// Logs Insights `StartQuery` / `GetQueryResults`, the runbook's method.
    #[default]
    Insights,
    /// `FilterLogEvents` with a term pattern per contact id.
    Filter,
}

impl LogStrategy {
    /// `insights` or `filter`.
    pub fn as_str(self) -> &'static str {
        match self {
            LogStrategy::Insights => "insights",
            LogStrategy::Filter => "filter",
        }
    }
}

impl fmt::Display for LogStrategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for LogStrategy {
    type Err = String;

    /// Parses `insights` or `filter` (ASCII case ignored), e.g. the `FLOW_LOGS_STRATEGY` setting.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "insights" => Ok(LogStrategy::Insights),
            "filter" => Ok(LogStrategy::Filter),
            other => Err(format!(
                "unknown flow-log strategy `{other}`: expected `insights` or `filter`"
            )),
        }
    }
}

/// A Logs Insights time range in epoch seconds; both ends are inclusive (as `StartQuery` takes them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QueryWindow {
    pub start: i64,
    pub end: i64,
}

impl QueryWindow {
    /// The smallest whole-second window that covers `start..=end` (start rounded down, end up).
    pub fn covering(start: DateTime<Utc>, end: DateTime<Utc>) -> Self {
        let end_secs = end.timestamp() + i64::from(end.timestamp_subsec_nanos() > 0);
        QueryWindow {
            start: start.timestamp(),
            end: end_secs,
        }
    }

    /// Two halves that together cover this window and share its middle second, or `None` when the
    /// window is at most two seconds wide (a split would not make it smaller).
    ///
    /// The shared second is deliberate: Insights takes whole seconds, and an event in the last
    /// fraction of the end second is not included by every implementation (moto keeps only events
    /// up to `end * 1000` ms). Rows returned by both halves are recognised by their `@ptr`.
    pub fn split(self) -> Option<(QueryWindow, QueryWindow)> {
        if self.end - self.start < 2 {
            return None;
        }
        let mid = self.start + (self.end - self.start) / 2;
        Some((
            QueryWindow {
                start: self.start,
                end: mid,
            },
            QueryWindow {
                start: mid,
                end: self.end,
            },
        ))
    }

    /// The same range in epoch milliseconds for `FilterLogEvents` (whole end second included).
    pub fn millis(self) -> (i64, i64) {
        (
            self.start.saturating_mul(1000),
            self.end.saturating_mul(1000).saturating_add(999),
        )
    }
}

/// The Logs Insights query for the given contacts, or `None` when there are none:
/// `fields @timestamp, @message | filter ContactId = "<id>" or ContactId = "<id2>" | sort @timestamp asc | limit <rows>`.
///
/// Ids are written as double-quoted string literals with `\` and `"` escaped by a backslash.
/// `rows` is clamped to `1..=10000`.
pub fn insights_query<S: AsRef<str>>(contact_ids: &[S], rows: u32) -> Option<String> {
    if contact_ids.is_empty() {
        return None;
    }
    let filter = contact_ids
        .iter()
        .map(|id| format!("ContactId = {}", quote(id.as_ref())))
        .collect::<Vec<_>>()
        .join(" or ");
    Some(format!(
        "fields @timestamp, @message | filter {filter} | sort @timestamp asc | limit {}",
        rows.clamp(1, MAX_QUERY_ROWS)
    ))
}

/// The `FilterLogEvents` pattern of one contact id: the id as a quoted phrase, or `None` when the
/// id cannot be written as one (it contains `"` or `\`); the caller then searches without a pattern.
pub fn filter_pattern(contact_id: &str) -> Option<String> {
    (!contact_id.contains(['"', '\\'])).then(|| format!("\"{contact_id}\""))
}

/// A double-quoted Insights string literal.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        if matches!(c, '"' | '\\') {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Reads flow logs from CloudWatch Logs (see the module docs).
#[derive(Debug, Clone)]
pub struct CloudWatchFlowLogs {
    client: aws_sdk_cloudwatchlogs::Client,
    strategy: LogStrategy,
    row_limit: u32,
    max_split_depth: u32,
    query_timeout: Duration,
}

impl CloudWatchFlowLogs {
    /// A reader using `strategy`, with the 10,000-row cap, [`MAX_SPLIT_DEPTH`] and
    /// [`DEFAULT_QUERY_TIMEOUT`].
    pub fn new(config: &SdkConfig, strategy: LogStrategy) -> Self {
        CloudWatchFlowLogs {
            client: aws_sdk_cloudwatchlogs::Client::new(config),
            strategy,
            row_limit: MAX_QUERY_ROWS,
            max_split_depth: MAX_SPLIT_DEPTH,
            query_timeout: DEFAULT_QUERY_TIMEOUT,
        }
    }

    /// Rows asked of one Insights query (clamped to `1..=10000`); a result that reaches it is split.
    /// Lower values keep each query small and let tests exercise the splitting.
    pub fn with_row_limit(mut self, rows: u32) -> Self {
        self.row_limit = rows.clamp(1, MAX_QUERY_ROWS);
        self
    }

    /// How often a capped window may be halved before `FilterLogEvents` reads it.
    pub fn with_max_split_depth(mut self, depth: u32) -> Self {
        self.max_split_depth = depth;
        self
    }

    /// How long one Insights query may run before it is stopped and the read fails as retryable.
    pub fn with_query_timeout(mut self, timeout: Duration) -> Self {
        self.query_timeout = timeout;
        self
    }

    pub fn strategy(&self) -> LogStrategy {
        self.strategy
    }

    /// Insights: query the window, halving it while results reach the row cap.
    async fn insights_entries(
        &self,
        log_group: &str,
        contact_ids: &[String],
        window: QueryWindow,
    ) -> Result<Vec<FlowLogEntry>, PortError> {
        let Some(query) = insights_query(contact_ids, self.row_limit) else {
            return Ok(Vec::new());
        };
        let mut entries = Vec::new();
        let mut seen = HashSet::new();
        // Depth-first with an explicit stack, earlier half first.
        let mut pending = vec![(window, 0u32)];
        while let Some((window, depth)) = pending.pop() {
            let rows = self.run_query(log_group, &query, window).await?;
            if rows.len() < self.row_limit as usize {
                for row in rows {
                    if row
                        .ptr
                        .as_ref()
                        .is_some_and(|ptr| !seen.insert(ptr.clone()))
                    {
                        continue; // the same log event, returned by both halves of a split
                    }
                    parse_into(log_group, &row.message, &mut entries);
                }
                continue;
            }
            match window.split().filter(|_| depth < self.max_split_depth) {
                Some((first, second)) => {
                    pending.push((second, depth + 1));
                    pending.push((first, depth + 1));
                }
                None => {
                    tracing::warn!(
                        log_group,
                        start = window.start,
                        end = window.end,
                        rows = rows.len(),
                        "Insights result reached the row cap and the window cannot be split further; reading it with FilterLogEvents"
                    );
                    let (start_ms, end_ms) = window.millis();
                    entries.extend(
                        self.filter_entries(log_group, contact_ids, start_ms, end_ms)
                            .await?,
                    );
                }
            }
        }
        Ok(entries)
    }

    /// One Insights query: start it, poll until it completes, return its rows.
    async fn run_query(
        &self,
        log_group: &str,
        query: &str,
        window: QueryWindow,
    ) -> Result<Vec<Row>, PortError> {
        let started = self
            .client
            .start_query()
            .log_group_name(log_group)
            .start_time(window.start)
            .end_time(window.end)
            .query_string(query)
            .send()
            .await
            .map_err(|e| port_error(SERVICE, "StartQuery", e))?;
        let query_id = started.query_id().ok_or_else(|| PortError::Unavailable {
            service: SERVICE,
            message: "StartQuery: the response has no queryId".into(),
        })?;
        let deadline = Instant::now() + self.query_timeout;
        let mut delay = POLL_INITIAL;
        loop {
            let results = self
                .client
                .get_query_results()
                .query_id(query_id)
                .send()
                .await
                .map_err(|e| port_error(SERVICE, "GetQueryResults", e))?;
            match results.status() {
                Some(QueryStatus::Complete) => {
                    return Ok(results
                        .results()
                        .iter()
                        .filter_map(|r| Row::new(r))
                        .collect())
                }
                Some(QueryStatus::Failed) => {
                    return Err(PortError::Rejected {
                        service: SERVICE,
                        message: format!("Logs Insights query {query_id} on {log_group} failed"),
                    })
                }
                Some(status @ (QueryStatus::Cancelled | QueryStatus::Timeout)) => {
                    return Err(PortError::Unavailable {
                        service: SERVICE,
                        message: format!(
                            "Logs Insights query {query_id} on {log_group} ended as {}",
                            status.as_str()
                        ),
                    })
                }
                // Scheduled, Running, Unknown, or a status this SDK does not know: keep polling.
                _ => {}
            }
            if Instant::now() + delay > deadline {
                self.stop_query(query_id).await;
                return Err(PortError::Unavailable {
                    service: SERVICE,
                    message: format!(
                        "Logs Insights query {query_id} on {log_group} still running after {:?}; stopped it",
                        self.query_timeout
                    ),
                });
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(POLL_MAX);
        }
    }

    /// Best-effort `StopQuery` of an abandoned query (it would keep scanning, and costing, otherwise).
    async fn stop_query(&self, query_id: &str) {
        if let Err(e) = self.client.stop_query().query_id(query_id).send().await {
            let e = port_error(SERVICE, "StopQuery", e);
            tracing::warn!(query_id, error = %e, "cannot stop an abandoned Logs Insights query");
        }
    }

    /// `FilterLogEvents`: one paginated call series per contact id, `start_ms..=end_ms`.
    async fn filter_entries(
        &self,
        log_group: &str,
        contact_ids: &[String],
        start_ms: i64,
        end_ms: i64,
    ) -> Result<Vec<FlowLogEntry>, PortError> {
        let mut entries = Vec::new();
        for id in contact_ids {
            let pattern = filter_pattern(id);
            if pattern.is_none() {
                tracing::warn!(
                    log_group,
                    "contact id cannot be a filter term; reading every event of the window"
                );
            }
            let mut token: Option<String> = None;
            loop {
                let page = filter_page(
                    &self.client,
                    log_group,
                    pattern.clone(),
                    (start_ms, end_ms),
                    token.clone(),
                )
                .await?;
                for event in page.events() {
                    if let Some(message) = event.message() {
                        parse_into(log_group, message, &mut entries);
                    }
                }
                match next_token(&page, token.as_deref()) {
                    Some(next) => token = Some(next),
                    None => break,
                }
            }
        }
        Ok(entries)
    }
}

#[async_trait]
impl FlowLogSource for CloudWatchFlowLogs {
    async fn entries(&self, query: &FlowLogQuery) -> Result<Vec<FlowLogEntry>, PortError> {
        if query.contact_ids.is_empty() || query.end < query.start {
            return Ok(Vec::new());
        }
        if let Some(bad) = query
            .contact_ids
            .iter()
            .find(|id| id.is_empty() || id.chars().any(char::is_control))
        {
            return Err(PortError::Rejected {
                service: SERVICE,
                message: format!("not a contact id: {bad:?}"),
            });
        }
        let window = QueryWindow::covering(query.start, query.end);
        match self.strategy {
            LogStrategy::Insights => {
                self.insights_entries(&query.log_group, &query.contact_ids, window)
                    .await
            }
            LogStrategy::Filter => {
                let start_ms = query.start.timestamp_millis();
                let end_ms = query.end.timestamp_millis()
                    + i64::from(!query.end.timestamp_subsec_nanos().is_multiple_of(1_000_000));
                self.filter_entries(&query.log_group, &query.contact_ids, start_ms, end_ms)
                    .await
            }
        }
    }
}

/// Reads the capture log group (every `aws.connect` event, one per log event) with
/// `FilterLogEvents`, page by page, for `connect-events events export`.
#[derive(Debug, Clone)]
pub struct CloudWatchCapture {
    client: aws_sdk_cloudwatchlogs::Client,
}

impl CloudWatchCapture {
    pub fn new(config: &SdkConfig) -> Self {
        CloudWatchCapture {
            client: aws_sdk_cloudwatchlogs::Client::new(config),
        }
    }
}

#[async_trait]
impl CapturedEvents for CloudWatchCapture {
    async fn page(
        &self,
        log_group: &str,
        start_ms: i64,
        end_ms: i64,
        token: Option<String>,
    ) -> Result<CapturePage, PortError> {
        let page = filter_page(
            &self.client,
            log_group,
            None,
            (start_ms, end_ms),
            token.clone(),
        )
        .await?;
        let events = page
            .events()
            .iter()
            .filter_map(|e| {
                Some(CapturedEvent {
                    timestamp_ms: e.timestamp().unwrap_or_default(),
                    stream: e.log_stream_name().unwrap_or_default().to_string(),
                    message: e.message()?.to_string(),
                })
            })
            .collect();
        let next = next_token(&page, token.as_deref());
        Ok(CapturePage { events, next })
    }
}

/// One `FilterLogEvents` page of `log_group` in `start_ms..=end_ms`, after `token`.
async fn filter_page(
    client: &aws_sdk_cloudwatchlogs::Client,
    log_group: &str,
    pattern: Option<String>,
    (start_ms, end_ms): (i64, i64),
    token: Option<String>,
) -> Result<FilterLogEventsOutput, PortError> {
    client
        .filter_log_events()
        .log_group_name(log_group)
        .set_filter_pattern(pattern)
        .start_time(start_ms)
        .end_time(end_ms)
        .set_next_token(token)
        .send()
        .await
        .map_err(|e| port_error(SERVICE, "FilterLogEvents", e))
}

/// The token of the page after `page`: none at the last page, and none on a repeated token (as
/// the SDK paginators stop).
fn next_token(page: &FilterLogEventsOutput, previous: Option<&str>) -> Option<String> {
    page.next_token()
        .filter(|next| previous != Some(*next))
        .map(str::to_owned)
}

/// The fields of one Insights result row this adapter uses.
struct Row {
    /// `@ptr`: identifies the log event.
    ptr: Option<String>,
    /// `@message`: the flow-log entry.
    message: String,
}

impl Row {
    fn new(fields: &[ResultField]) -> Option<Row> {
        let value = |name: &str| {
            fields
                .iter()
                .find(|f| f.field() == Some(name))
                .and_then(|f| f.value())
        };
        Some(Row {
            ptr: value("@ptr").map(str::to_owned),
            message: value("@message")?.to_owned(),
        })
    }
}

/// Parses one log message; a message that is not a flow-log entry is skipped with a warning (its
/// text is not logged: flow logs can hold customer input).
fn parse_into(log_group: &str, message: &str, entries: &mut Vec<FlowLogEntry>) {
    match FlowLogEntry::parse(message) {
        Ok(entry) => entries.push(entry),
        Err(e) => tracing::warn!(
            log_group,
            bytes = message.len(),
            error = %e,
            "skipping a log event that is not a flow-log entry"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strategy_parses_and_prints() {
        assert_eq!("Insights".parse(), Ok(LogStrategy::Insights));
        assert_eq!(" filter ".parse(), Ok(LogStrategy::Filter));
        assert!("grep".parse::<LogStrategy>().is_err());
        assert_eq!(LogStrategy::default().to_string(), "insights");
    }

    #[test]
    fn quoting_escapes_backslash_and_quote() {
        assert_eq!(quote(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(filter_pattern("abc-1"), Some("\"abc-1\"".into()));
        assert_eq!(filter_pattern("a\"b"), None);
    }
}
