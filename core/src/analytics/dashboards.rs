//! OpenSearch Dashboards saved objects for the seven metrics: three index patterns, one
//! visualization per metric and one dashboard, with deterministic ids (`connect-events.…`), so an
//! import with `overwrite=true` is idempotent.
//!
//! Each visualization is a Vega-Lite visualization (`type: vega`) whose data request is **the
//! metric's OpenSearch query** from [`super::queries`], with the report window replaced by the
//! dashboard's time picker (`{"%timefilter%": true}`) and the dashboard's query bar and filters
//! added (`%dashboard_context-…%` clauses). So the dashboard, the CLI's `--backend aws` report and
//! the contract test run one definition; a test substitutes a window for the placeholders and runs
//! every visualization's request on OpenSearch. The days of "calls per day" are in the time zone
//! given at generation. No `config` object is included (it would overwrite the user's advanced
//! settings): set `dateFormat:tz` there.

use chrono_tz::Tz;
use serde_json::{json, Value};

use super::queries::{body_for, Indices, Metric, Range, Target};

/// Id prefix of every object.
pub const ID_PREFIX: &str = "connect-events";

/// Dashboards' Vega clauses that carry the dashboard's query bar and filters.
const CONTEXT_MUST: &str = "%dashboard_context-must_clause%";
const CONTEXT_FILTER: &str = "%dashboard_context-filter_clause%";
const CONTEXT_MUST_NOT: &str = "%dashboard_context-must_not_clause%";

fn index_pattern_id(target: Target) -> String {
    let name = match target {
        Target::ContactRecords => "ctr",
        Target::AgentEvents => "agent-events",
        Target::QueueDepth => "queue-depth",
    };
    format!("{ID_PREFIX}.ip.{name}")
}

/// The visualization id of a metric: `connect-events.vis.<report key>`.
pub fn visualization_id(metric: Metric) -> String {
    format!("{ID_PREFIX}.vis.{}", metric.key().replace('_', "-"))
}

/// The dashboard id.
pub fn dashboard_id() -> String {
    format!("{ID_PREFIX}.dashboard.contact-center")
}

/// A metric's request as the dashboard sends it: its query with the time picker and the
/// dashboard's context clauses.
pub fn dashboard_request(metric: Metric, tz: Tz) -> Value {
    let mut body = body_for(metric, &Range::TimePicker(tz));
    let query = &mut body["query"]["bool"];
    for (clause, placeholder) in [
        ("must", CONTEXT_MUST),
        ("filter", CONTEXT_FILTER),
        ("must_not", CONTEXT_MUST_NOT),
    ] {
        let list = query[clause].as_array().cloned().unwrap_or_default();
        let mut list = list;
        list.push(Value::String(placeholder.into()));
        query[clause] = Value::Array(list);
    }
    body
}

/// The Vega-Lite spec of a metric's visualization.
fn spec(metric: Metric, indices: &Indices, tz: Tz) -> Value {
    let index = indices.pattern(metric.target());
    let url = json!({ "index": index, "body": dashboard_request(metric, tz) });
    let number = |property: &str, format: &str| {
        json!({
            "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
            "title": metric.title(),
            "data": { "url": url, "format": { "property": property } },
            "mark": { "type": "text", "fontSize": 40, "fontWeight": "bold" },
            "encoding": { "text": { "field": "value", "type": "quantitative", "format": format } }
        })
    };
    match metric {
        Metric::Calls => number("hits.total", ",d"),
        Metric::CallsPerDay => json!({
            "$schema": "https://vega.github.io/schema/vega-lite/v5.json",
            "title": format!("{} ({})", metric.title(), tz.name()),
            "data": { "url": url, "format": { "property": "aggregations.value.buckets" } },
            "mark": "bar",
            "encoding": {
                "x": { "field": "key_as_string", "type": "ordinal", "title": "day" },
                "y": { "field": "doc_count", "type": "quantitative", "title": "calls" }
            }
        }),
        Metric::AvgAfterContactWork | Metric::AvgAgentInteraction => {
            number("aggregations.value", ",.1f")
        }
        _ => number("aggregations.value", ",d"),
    }
}

/// Every saved object, in import order (index patterns, visualizations, dashboard).
pub fn saved_objects(indices: &Indices, tz: Tz) -> Vec<Value> {
    let mut objects = Vec::new();
    for (target, time_field) in [
        (Target::ContactRecords, Some("DisconnectTimestamp")),
        (Target::AgentEvents, Some("EventTimestamp")),
        (Target::QueueDepth, None),
    ] {
        let mut attributes = json!({ "title": indices.pattern(target) });
        if let Some(field) = time_field {
            attributes["timeFieldName"] = json!(field);
        }
        if target == Target::ContactRecords {
            let seconds = json!({ "id": "duration", "params": {
                "inputFormat": "seconds", "outputFormat": "humanize" } });
            attributes["fieldFormatMap"] = json!(json!({
                "Agent.AfterContactWorkDuration": seconds,
                "Agent.AgentInteractionDuration": seconds
            })
            .to_string());
        }
        objects.push(json!({
            "type": "index-pattern",
            "id": index_pattern_id(target),
            "attributes": attributes,
            "references": [],
            "migrationVersion": { "index-pattern": "7.6.0" }
        }));
    }
    let search_source =
        json!({ "query": { "query": "", "language": "kuery" }, "filter": [] }).to_string();
    for metric in Metric::ALL {
        let vis_state = json!({
            "title": metric.title(),
            "type": "vega",
            "aggs": [],
            "params": { "spec": serde_json::to_string_pretty(&spec(metric, indices, tz)).expect("JSON") }
        });
        objects.push(json!({
            "type": "visualization",
            "id": visualization_id(metric),
            "attributes": {
                "title": metric.title(),
                "description": format!("connect-events metric `{}` (see the README's metric definitions)", metric.key()),
                "visState": vis_state.to_string(),
                "uiStateJSON": "{}",
                "version": 1,
                "kibanaSavedObjectMeta": { "searchSourceJSON": search_source }
            },
            "references": [],
            "migrationVersion": { "visualization": "7.10.0" }
        }));
    }
    // Two rows of numbers, the per-day chart below.
    let mut panels = Vec::new();
    let mut references = Vec::new();
    for (n, metric) in Metric::ALL.iter().enumerate() {
        let (x, y, w, h) = match metric {
            Metric::CallsPerDay => (0, 16, 48, 15),
            _ => {
                let k = if n == 0 { 0 } else { n - 1 };
                ((k % 3) as i64 * 16, (k / 3) as i64 * 8, 16, 8)
            }
        };
        let i = (n + 1).to_string();
        panels.push(json!({
            "panelIndex": i, "gridData": { "x": x, "y": y, "w": w, "h": h, "i": i },
            "version": "2.11.0", "panelRefName": format!("panel_{n}"), "embeddableConfig": {}
        }));
        references.push(json!({ "name": format!("panel_{n}"), "type": "visualization", "id": visualization_id(*metric) }));
    }
    objects.push(json!({
        "type": "dashboard",
        "id": dashboard_id(),
        "attributes": {
            "title": "Contact center (connect-events)",
            "description": "The seven contact-center metrics of connect-events",
            "panelsJSON": Value::Array(panels).to_string(),
            "optionsJSON": json!({ "hidePanelTitles": false, "useMargins": true }).to_string(),
            "timeRestore": true,
            "timeFrom": "now-7d",
            "timeTo": "now",
            "refreshInterval": { "pause": false, "value": 60000 },
            "kibanaSavedObjectMeta": { "searchSourceJSON": search_source }
        },
        "references": references,
        "migrationVersion": { "dashboard": "7.9.3" }
    }));
    objects
}

/// The saved objects as NDJSON (one object per line), the import file format.
pub fn ndjson(indices: &Indices, tz: Tz) -> String {
    let mut out = String::new();
    for object in saved_objects(indices, tz) {
        out.push_str(&object.to_string());
        out.push('\n');
    }
    out
}

/// A visualization's request with a report window in place of the dashboard's placeholders (what
/// Dashboards sends for that time range with an empty query bar). For the structural tests.
pub fn request_for_window(request: &Value, window: &super::queries::Window) -> Value {
    fn walk(v: &Value, window: &super::queries::Window) -> Option<Value> {
        match v {
            Value::String(s) if s.starts_with("%dashboard_context-") => None,
            Value::Object(map)
                if map.get(super::queries::TIMEFILTER) == Some(&Value::Bool(true)) =>
            {
                Some(json!({
                    "gte": window.from.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                    "lt": window.to.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
                }))
            }
            Value::Object(map) => Some(Value::Object(
                map.iter()
                    .filter_map(|(k, v)| Some((k.clone(), walk(v, window)?)))
                    .collect(),
            )),
            Value::Array(items) => Some(Value::Array(
                items.iter().filter_map(|v| walk(v, window)).collect(),
            )),
            other => Some(other.clone()),
        }
    }
    walk(request, window).unwrap_or(Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_deterministic_and_every_panel_is_referenced() {
        let a = ndjson(&Indices::default(), chrono_tz::UTC);
        assert_eq!(a, ndjson(&Indices::default(), chrono_tz::UTC));
        let objects = saved_objects(&Indices::default(), chrono_tz::UTC);
        assert_eq!(objects.len(), 3 + 7 + 1);
        let dashboard = objects.last().unwrap();
        let refs = dashboard["references"].as_array().unwrap();
        assert_eq!(refs.len(), 7);
        for r in refs {
            assert!(objects.iter().any(|o| o["id"] == r["id"]), "{r}");
        }
        assert!(objects.iter().all(|o| o["type"] != "config"));
        let request = dashboard_request(Metric::Calls, chrono_tz::UTC);
        assert!(request
            .to_string()
            .contains(super::super::queries::TIMEFILTER));
    }
}
