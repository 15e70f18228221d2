//! The seven metrics as OpenSearch queries: one `_search` body per metric, and the reading of its
//! answer. The CLI's `--backend aws` report and the dashboard's visualizations
//! ([`super::dashboards`]) are built from these definitions; the contract test runs them on
//! osmem-server against [`super::metrics::evaluate`] over the same fixtures.
//!
//! Documents (mappings in `infra/opensearch/`): contact records in daily indices
//! `<ctr prefix>YYYY.MM.DD` (UTC day of the attributed time), one document per `ContactId` (its
//! newest copy: external version = `LastUpdateTimestamp`); agent events in
//! `<agent-event prefix>YYYY.MM.DD`, one per `EventId`, heartbeats not stored; queue depth in the
//! queue-depth index. Field names are Connect's (`Agent.ARN`, `DisconnectTimestamp`, …) and the
//! queue-depth document's (`channel`, `queueDepth`).
//!
//! `calls` reads the hit count (exact, one document per contact) rather than a `cardinality`
//! aggregation (approximate above 40,000 values); the two agent counts use `cardinality` with
//! the maximum `precision_threshold` (40,000: exact in practice for a contact center's agents).

use chrono::{DateTime, SecondsFormat, Utc};
use chrono_tz::Tz;
use serde_json::{json, Value};

use super::metrics::{AnalyticsReport, DayCalls};

/// Most distinct values a `cardinality` aggregation counts exactly (OpenSearch's maximum).
pub const PRECISION_THRESHOLD: u64 = 40_000;

/// One of the seven metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Metric {
    Calls,
    CallsPerDay,
    AvgAfterContactWork,
    AvgAgentInteraction,
    Agents,
    AgentsWithContacts,
    CallsInQueue,
}

impl Metric {
    pub const ALL: [Metric; 7] = [
        Metric::Calls,
        Metric::CallsPerDay,
        Metric::AvgAfterContactWork,
        Metric::AvgAgentInteraction,
        Metric::Agents,
        Metric::AgentsWithContacts,
        Metric::CallsInQueue,
    ];

    /// The report key (`analytics report --format json`).
    pub fn key(self) -> &'static str {
        match self {
            Metric::Calls => "calls",
            Metric::CallsPerDay => "calls_per_day",
            Metric::AvgAfterContactWork => "avg_after_contact_work_s",
            Metric::AvgAgentInteraction => "avg_agent_interaction_s",
            Metric::Agents => "agents",
            Metric::AgentsWithContacts => "agents_with_contacts",
            Metric::CallsInQueue => "calls_in_queue",
        }
    }

    /// A title for the dashboard.
    pub fn title(self) -> &'static str {
        match self {
            Metric::Calls => "Calls (voice contacts)",
            Metric::CallsPerDay => "Calls per day",
            Metric::AvgAfterContactWork => "Average after-contact work (s, outbound excluded)",
            Metric::AvgAgentInteraction => "Average agent interaction (s, outbound excluded)",
            Metric::Agents => "Agents online",
            Metric::AgentsWithContacts => "Agents who handled a call",
            Metric::CallsInQueue => "Calls in queue now",
        }
    }

    /// Which documents the metric reads.
    pub fn target(self) -> Target {
        match self {
            Metric::Agents => Target::AgentEvents,
            Metric::CallsInQueue => Target::QueueDepth,
            _ => Target::ContactRecords,
        }
    }
}

/// The documents a metric's query runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    ContactRecords,
    AgentEvents,
    QueueDepth,
}

/// Where the documents are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Indices {
    /// Prefix of the daily contact-record indices (`ctr-`).
    pub ctr_prefix: String,
    /// Prefix of the daily agent-event indices (`agent-events-`).
    pub agent_event_prefix: String,
    /// The queue-depth index (`queue-depth`).
    pub queue_depth: String,
}

impl Default for Indices {
    fn default() -> Self {
        Indices {
            ctr_prefix: "ctr-".into(),
            agent_event_prefix: "agent-events-".into(),
            queue_depth: "queue-depth".into(),
        }
    }
}

impl Indices {
    /// The index (pattern) a target's query runs on.
    pub fn pattern(&self, target: Target) -> String {
        match target {
            Target::ContactRecords => format!("{}*", self.ctr_prefix),
            Target::AgentEvents => format!("{}*", self.agent_event_prefix),
            Target::QueueDepth => self.queue_depth.clone(),
        }
    }
}

/// The report window and the time zone of its days.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Window {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    pub tz: Tz,
}

fn rfc3339(t: DateTime<Utc>) -> String {
    t.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// The time range of a query: a report's window, or the dashboard's time picker (OpenSearch
/// Dashboards' Vega placeholder `{"%timefilter%": true}`, replaced by the picked range), with the
/// time zone of its days.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Range {
    Window(Window),
    TimePicker(Tz),
}

/// Placeholder OpenSearch Dashboards replaces by the picked time range in a Vega query.
pub const TIMEFILTER: &str = "%timefilter%";

impl Range {
    fn on(&self, field: &str) -> Value {
        let bounds = match self {
            Range::Window(w) => json!({ "gte": rfc3339(w.from), "lt": rfc3339(w.to) }),
            Range::TimePicker(_) => json!({ TIMEFILTER: true }),
        };
        json!({ "range": { field: bounds } })
    }

    fn tz(&self) -> Tz {
        match self {
            Range::Window(w) => w.tz,
            Range::TimePicker(tz) => *tz,
        }
    }
}

/// The filter of metrics 1–4 and 6: voice contact records disconnected in the range.
pub fn voice_contacts_filter(range: &Range) -> Vec<Value> {
    vec![
        json!({ "term": { "Channel": "VOICE" } }),
        range.on("DisconnectTimestamp"),
    ]
}

/// The filter of metric 5: events in the range that show the agent online (a LOGIN, or a
/// snapshot status other than OFFLINE); heartbeats are excluded even if a store kept them.
pub fn online_agent_events_query(range: &Range) -> Value {
    json!({ "bool": {
        "filter": [ range.on("EventTimestamp") ],
        "must_not": [ { "term": { "EventType": "HEART_BEAT" } } ],
        "should": [
            { "term": { "EventType": "LOGIN" } },
            { "bool": {
                "filter": [ { "exists": { "field": "CurrentAgentSnapshot.AgentStatus.Type" } } ],
                "must_not": [ { "term": { "CurrentAgentSnapshot.AgentStatus.Type": "OFFLINE" } } ]
            } }
        ],
        "minimum_should_match": 1
    } })
}

/// The query (a `bool` over the metric's documents) and its aggregation, if any; days of
/// `calls_per_day` in the range's time zone.
pub fn metric_parts(metric: Metric, range: &Range) -> (Value, Option<Value>) {
    let tz = range.tz();
    let voice = voice_contacts_filter(range);
    let not_outbound = json!([{ "term": { "InitiationMethod": "OUTBOUND" } }]);
    let average = |field: &str| {
        let mut filter = voice.clone();
        filter.push(json!({ "exists": { "field": field } }));
        (
            json!({ "bool": { "filter": filter, "must_not": not_outbound } }),
            Some(json!({ "avg": { "field": field } })),
        )
    };
    match metric {
        Metric::Calls => (json!({ "bool": { "filter": voice } }), None),
        Metric::CallsPerDay => (
            json!({ "bool": { "filter": voice } }),
            Some(json!({ "date_histogram": {
                "field": "DisconnectTimestamp",
                "calendar_interval": "1d",
                "time_zone": tz.name(),
                "min_doc_count": 1,
                "format": "yyyy-MM-dd"
            } })),
        ),
        Metric::AvgAfterContactWork => average("Agent.AfterContactWorkDuration"),
        Metric::AvgAgentInteraction => average("Agent.AgentInteractionDuration"),
        Metric::Agents => (
            online_agent_events_query(range),
            Some(json!({ "cardinality": {
                "field": "AgentARN", "precision_threshold": PRECISION_THRESHOLD
            } })),
        ),
        Metric::AgentsWithContacts => {
            let mut filter = voice.clone();
            filter.push(json!({ "exists": { "field": "Agent.ARN" } }));
            (
                json!({ "bool": { "filter": filter } }),
                Some(json!({ "cardinality": {
                    "field": "Agent.ARN", "precision_threshold": PRECISION_THRESHOLD
                } })),
            )
        }
        Metric::CallsInQueue => (
            json!({ "bool": { "filter": [ { "term": { "channel": "VOICE" } } ] } }),
            Some(json!({ "sum": { "field": "queueDepth" } })),
        ),
    }
}

/// The `_search` body of a metric: no hits, the exact total, the aggregation as `value`.
pub fn search_body(metric: Metric, window: &Window) -> Value {
    body_for(metric, &Range::Window(*window))
}

/// [`search_body`] over any [`Range`].
pub fn body_for(metric: Metric, range: &Range) -> Value {
    let (query, agg) = metric_parts(metric, range);
    let mut body = json!({ "size": 0, "track_total_hits": true, "query": query });
    if let Some(agg) = agg {
        body["aggs"] = json!({ "value": agg });
    }
    body
}

/// A metric's value, read from its `_search` answer.
#[derive(Debug, Clone, PartialEq)]
pub enum MetricValue {
    Count(u64),
    Mean(Option<f64>),
    Days(Vec<DayCalls>),
}

/// Reads a metric's answer; the error names what is missing (the server's shape changed).
pub fn read_answer(metric: Metric, answer: &Value) -> Result<MetricValue, String> {
    let missing = |what: &str| format!("{}: the answer has no {what}", metric.key());
    let value = || answer.pointer("/aggregations/value/value");
    Ok(match metric {
        Metric::Calls => MetricValue::Count(
            answer
                .pointer("/hits/total/value")
                .and_then(Value::as_u64)
                .ok_or_else(|| missing("hits.total.value"))?,
        ),
        Metric::CallsPerDay => {
            let buckets = answer
                .pointer("/aggregations/value/buckets")
                .and_then(Value::as_array)
                .ok_or_else(|| missing("date_histogram buckets"))?;
            let mut days = Vec::with_capacity(buckets.len());
            for b in buckets {
                let date = b["key_as_string"]
                    .as_str()
                    .ok_or_else(|| missing("bucket key_as_string"))?;
                let calls = b["doc_count"]
                    .as_u64()
                    .ok_or_else(|| missing("bucket doc_count"))?;
                if calls > 0 {
                    days.push(DayCalls {
                        date: date.get(..10).unwrap_or(date).to_owned(),
                        calls,
                    });
                }
            }
            days.sort_by(|a, b| a.date.cmp(&b.date));
            MetricValue::Days(days)
        }
        Metric::AvgAfterContactWork | Metric::AvgAgentInteraction => {
            MetricValue::Mean(value().ok_or_else(|| missing("avg value"))?.as_f64())
        }
        Metric::Agents | Metric::AgentsWithContacts => MetricValue::Count(
            value()
                .and_then(Value::as_u64)
                .ok_or_else(|| missing("cardinality value"))?,
        ),
        // A sum of integers; OpenSearch answers a double.
        Metric::CallsInQueue => MetricValue::Count(
            value()
                .and_then(Value::as_f64)
                .ok_or_else(|| missing("sum value"))?
                .round() as u64,
        ),
    })
}

/// Puts one metric's value into the report.
pub fn apply(report: &mut AnalyticsReport, metric: Metric, value: MetricValue) {
    match (metric, value) {
        (Metric::Calls, MetricValue::Count(n)) => report.calls = n,
        (Metric::CallsPerDay, MetricValue::Days(d)) => report.calls_per_day = d,
        (Metric::AvgAfterContactWork, MetricValue::Mean(m)) => report.avg_after_contact_work_s = m,
        (Metric::AvgAgentInteraction, MetricValue::Mean(m)) => report.avg_agent_interaction_s = m,
        (Metric::Agents, MetricValue::Count(n)) => report.agents = n,
        (Metric::AgentsWithContacts, MetricValue::Count(n)) => report.agents_with_contacts = n,
        (Metric::CallsInQueue, MetricValue::Count(n)) => report.calls_in_queue = n,
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn window() -> Window {
        Window {
            from: "2026-03-01T00:00:00Z".parse().unwrap(),
            to: "2026-03-08T00:00:00Z".parse().unwrap(),
            tz: chrono_tz::Europe::Berlin,
        }
    }

    #[test]
    fn every_metric_has_a_body_and_reads_its_answer() {
        for metric in Metric::ALL {
            let body = search_body(metric, &window());
            assert_eq!(body["size"], 0, "{metric:?}");
            assert_eq!(
                body["aggs"].is_null(),
                metric == Metric::Calls,
                "{metric:?}"
            );
        }
        let hist = search_body(Metric::CallsPerDay, &window());
        assert_eq!(
            hist["aggs"]["value"]["date_histogram"]["time_zone"],
            "Europe/Berlin"
        );
        let answer = json!({ "hits": { "total": { "value": 3 } }, "aggregations": { "value": {
            "buckets": [ { "key_as_string": "2026-03-02", "doc_count": 2 },
                         { "key_as_string": "2026-03-01", "doc_count": 1 } ] } } });
        assert_eq!(
            read_answer(Metric::Calls, &answer),
            Ok(MetricValue::Count(3))
        );
        let MetricValue::Days(days) = read_answer(Metric::CallsPerDay, &answer).unwrap() else {
            panic!()
        };
        assert_eq!(days[0].date, "2026-03-01");
        let empty = json!({ "aggregations": { "value": { "value": null } } });
        assert_eq!(
            read_answer(Metric::AvgAgentInteraction, &empty),
            Ok(MetricValue::Mean(None))
        );
        assert!(read_answer(Metric::Agents, &json!({}))
            .unwrap_err()
            .contains("agents"));
    }
}
