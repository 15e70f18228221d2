//! The dashboard's seven metrics, defined once in Rust: the embedded backend's answer and the
//! oracle the OpenSearch queries are checked against.
//!
//! Scope: `Channel = VOICE` contact records whose `DisconnectTimestamp` is in `[from, to)` (Connect
//! attributes contact-record metrics to the disconnect), one record per `ContactId` (the newest
//! copy). Days are calendar days in the report's time zone.
//!
//! 1. `calls` — distinct ContactId (every leg: IVR-only, abandoned and transfer legs count).
//! 2. `calls_per_day` — the same per day, days without calls omitted, sorted.
//! 3. `avg_after_contact_work_s` — mean `Agent.AfterContactWorkDuration` over records with it,
//!    **outbound excluded** (`InitiationMethod = OUTBOUND`); `null` when none qualifies.
//! 4. `avg_agent_interaction_s` — mean `Agent.AgentInteractionDuration`, same filter.
//! 5. `agents` — distinct agents with an event in `[from, to)` that shows them online (LOGIN, or a
//!    snapshot status other than OFFLINE; heartbeats are not stored).
//! 6. `agents_with_contacts` — distinct `Agent.ARN` over the scope.
//! 7. `calls_in_queue` — now: the sum of VOICE `queueDepth` of the queue-depth index.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use serde::Serialize;

use super::record::{AgentEvent, ContactRecord};
use crate::queue_depth::QueueDepthDoc;

/// `analytics report --format json`: exactly these keys.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AnalyticsReport {
    pub calls: u64,
    pub calls_per_day: Vec<DayCalls>,
    pub avg_after_contact_work_s: Option<f64>,
    pub avg_agent_interaction_s: Option<f64>,
    pub agents: u64,
    pub agents_with_contacts: u64,
    pub calls_in_queue: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DayCalls {
    /// `YYYY-MM-DD` in the report's time zone.
    pub date: String,
    pub calls: u64,
}

/// Compute the seven metrics.
pub fn evaluate<'a>(
    ctrs: impl IntoIterator<Item = &'a ContactRecord>,
    events: impl IntoIterator<Item = &'a AgentEvent>,
    queue_docs: &[QueueDepthDoc],
    from: DateTime<Utc>,
    to: DateTime<Utc>,
    tz: Tz,
) -> AnalyticsReport {
    let in_window = |t: Option<DateTime<Utc>>| t.is_some_and(|t| t >= from && t < to);
    let mut calls = BTreeSet::new();
    let mut per_day: BTreeMap<String, BTreeSet<&str>> = BTreeMap::new();
    let (mut acw, mut interaction) = (Vec::new(), Vec::new());
    let mut handling_agents = BTreeSet::new();
    for c in ctrs {
        if c.channel.as_deref() != Some("VOICE") || !in_window(c.disconnect_timestamp) {
            continue;
        }
        calls.insert(c.contact_id.as_str());
        if let Some(t) = c.disconnect_timestamp {
            let day = t.with_timezone(&tz).format("%Y-%m-%d").to_string();
            per_day
                .entry(day)
                .or_default()
                .insert(c.contact_id.as_str());
        }
        let Some(agent) = &c.agent else { continue };
        if let Some(arn) = agent.arn.as_deref() {
            handling_agents.insert(arn);
        }
        if c.initiation_method.as_deref() == Some("OUTBOUND") {
            continue;
        }
        acw.extend(agent.after_contact_work_duration);
        interaction.extend(agent.agent_interaction_duration);
    }
    let online: BTreeSet<&str> = events
        .into_iter()
        .filter(|e| in_window(e.event_timestamp) && e.shows_online())
        .map(|e| e.agent_arn.as_str())
        .collect();
    let mean = |v: &[i64]| (!v.is_empty()).then(|| v.iter().sum::<i64>() as f64 / v.len() as f64);
    AnalyticsReport {
        calls: calls.len() as u64,
        calls_per_day: per_day
            .into_iter()
            .map(|(date, ids)| DayCalls {
                date,
                calls: ids.len() as u64,
            })
            .collect(),
        avg_after_contact_work_s: mean(&acw),
        avg_agent_interaction_s: mean(&interaction),
        agents: online.len() as u64,
        agents_with_contacts: handling_agents.len() as u64,
        calls_in_queue: calls_in_queue(queue_docs),
    }
}

/// Metric 7: the sum of VOICE `queueDepth` of the queue-depth documents.
pub fn calls_in_queue(queue_docs: &[QueueDepthDoc]) -> u64 {
    queue_docs
        .iter()
        .filter(|d| d.channel == "VOICE")
        .map(|d| d.queue_depth)
        .sum()
}
