//! Replay: route archived events through the template's rules to the capabilities, in process.
//!
//! * Every valid event is routed by the rules; each matching rule invokes its function's handler,
//!   as EventBridge would.
//! * An event whose envelope `id` was already seen in this run is a *duplicate*: counted, not routed.
//! * "Now" for the policies is the event's time, so a replay is deterministic and coalesces like the
//!   live system would have; each instance then gets a trailing queue-depth refresh after the last
//!   event.
//! * Destructive actions run only with `allow_side_effects`; otherwise they are reported as dry runs.
//! * Streamed records (contact records, agent events: Connect's data streaming) go to the
//!   functions of the template's Kinesis event sources ([`Replayer::run_records`]).
//! * Nothing is lost: a malformed input or a failing handler becomes an entry of `errors`.

use std::collections::{BTreeMap, HashSet};
use std::io::IsTerminal;

use chrono::{DateTime, Utc};
use serde::Serialize;

use crate::analytics::input::RecordItem;
use crate::analytics::{Incoming, IngestOutcome, INGEST_CHUNK};
use crate::deny_list::EnforceOutcome;
use crate::dispatch::{Capabilities, HandlerKind, InvocationContext, Outcome};
use crate::event::input::InputItem;
use crate::event::Event;
use crate::flow_logs::ArchiveOutcome;
use crate::queue_depth::{QueueDepthOutcome, Trigger};
use crate::rules::{RuleSet, StreamContent};

/// Options of a replay.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReplayOptions {
    /// Execute StopContact for listed callers.
    pub allow_side_effects: bool,
    /// Print a progress line to stderr (only when stderr is a terminal).
    pub progress: bool,
    /// Use the wall clock as "now" instead of the events' time (for replays against live AWS
    /// resources, whose refresh slots follow the wall clock).
    pub wall_clock: bool,
}

/// Counts of the input.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct EventCounts {
    pub read: usize,
    pub valid: usize,
    pub malformed: usize,
    pub duplicates: usize,
}

/// Counts of the streamed records of the input.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RecordCounts {
    pub read: usize,
    pub valid: usize,
    pub malformed: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct QueueDepthActions {
    pub refreshes: usize,
    pub metric_api_calls: usize,
    pub coalesced: usize,
    pub stale_writes_skipped: usize,
    pub documents_written: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct DenyListActions {
    /// Callers looked up (a number was known).
    pub checked: usize,
    pub listed: usize,
    pub stopped: usize,
    pub already_ended: usize,
    /// Listed callers not stopped because side effects were off.
    pub dry_run_stops: usize,
    pub no_number: usize,
    pub skipped: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct FlowLogActions {
    pub archived: usize,
    /// Distinct entries in the archives written or confirmed.
    pub entries: usize,
    pub with_errors: usize,
    pub skipped_no_logs: usize,
    /// Archives already complete (e.g. a second replay).
    pub unchanged: usize,
}

/// What the analytics indexer did with the streamed records.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AnalyticsActions {
    pub contact_records_stored: usize,
    /// Copies not newer than the stored one (re-deliveries, older copies).
    pub contact_records_unchanged: usize,
    pub agent_events_stored: usize,
    pub agent_events_unchanged: usize,
    pub heartbeats: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Actions {
    pub queue_depth: QueueDepthActions,
    pub deny_list: DenyListActions,
    pub flow_logs: FlowLogActions,
    pub analytics: AnalyticsActions,
}

/// One failed event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReportError {
    /// `file:line`.
    pub source: String,
    pub event_id: Option<String>,
    /// The rule whose handler failed (absent for malformed input).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<String>,
    pub error_type: String,
    pub reason: String,
    pub retryable: bool,
}

/// The replay report (`--report json` prints it as one JSON object).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Report {
    pub events: EventCounts,
    /// Streamed records (contact records, agent events) routed through Kinesis event sources.
    pub records: RecordCounts,
    pub by_event_type: BTreeMap<String, usize>,
    /// Distinct events routed per rule (every pattern rule of the template is listed).
    pub rules: BTreeMap<String, usize>,
    pub actions: Actions,
    pub errors: Vec<ReportError>,
}

impl Report {
    /// Whether every event was handled (exit code 0).
    pub fn ok(&self) -> bool {
        self.events.malformed == 0 && self.records.malformed == 0 && self.errors.is_empty()
    }

    /// A readable summary.
    pub fn to_text(&self) -> String {
        use std::fmt::Write;
        let mut s = String::new();
        let e = &self.events;
        let _ = writeln!(
            s,
            "events     read {}  valid {}  malformed {}  duplicates {}",
            e.read, e.valid, e.malformed, e.duplicates
        );
        if self.records.read > 0 {
            let r = &self.records;
            let _ = writeln!(
                s,
                "records    read {}  valid {}  malformed {}  (contact records, agent events)",
                r.read, r.valid, r.malformed
            );
        }
        let _ = writeln!(s, "\nby event type");
        for (k, v) in &self.by_event_type {
            let _ = writeln!(s, "  {k:<28} {v:>6}");
        }
        let _ = writeln!(s, "\nrules (distinct events routed)");
        for (k, v) in &self.rules {
            let _ = writeln!(s, "  {k:<52} {v:>6}");
        }
        let q = &self.actions.queue_depth;
        let d = &self.actions.deny_list;
        let f = &self.actions.flow_logs;
        let _ = writeln!(s, "\nqueue depth  refreshes {}  metric API calls {}  coalesced {}  stale writes skipped {}  documents written {}",
            q.refreshes, q.metric_api_calls, q.coalesced, q.stale_writes_skipped, q.documents_written);
        let _ = writeln!(s, "deny list    checked {}  listed {}  stopped {}  already ended {}  dry-run stops {}  no number {}  skipped {}",
            d.checked, d.listed, d.stopped, d.already_ended, d.dry_run_stops, d.no_number, d.skipped);
        let _ = writeln!(s, "flow logs    archived {}  entries {}  with errors {}  skipped (no logs) {}  unchanged {}",
            f.archived, f.entries, f.with_errors, f.skipped_no_logs, f.unchanged);
        if self.records.read > 0 {
            let a = &self.actions.analytics;
            let _ = writeln!(s, "analytics    contact records stored {}  unchanged {}  agent events stored {}  unchanged {}  heartbeats {}",
                a.contact_records_stored, a.contact_records_unchanged, a.agent_events_stored, a.agent_events_unchanged, a.heartbeats);
        }
        if self.errors.is_empty() {
            let _ = writeln!(s, "\nerrors       none");
        } else {
            let _ = writeln!(s, "\nerrors       {}", self.errors.len());
            for err in &self.errors {
                let retry = if err.retryable {
                    "retryable"
                } else {
                    "not retryable"
                };
                let _ = writeln!(
                    s,
                    "  {}: [{}] {} ({retry})",
                    err.source, err.error_type, err.reason
                );
            }
        }
        s
    }
}

/// Feeds events to a backend's model of the world before the handlers run (the local backend's
/// contact-center model); the AWS backend has none.
pub trait Observer {
    fn observe(&self, event: &Event);
}

/// The replay engine.
pub struct Replayer<'a> {
    rules: &'a RuleSet,
    caps: &'a Capabilities,
    observer: Option<&'a dyn Observer>,
    options: ReplayOptions,
}

impl<'a> Replayer<'a> {
    pub fn new(
        rules: &'a RuleSet,
        caps: &'a Capabilities,
        observer: Option<&'a dyn Observer>,
        options: ReplayOptions,
    ) -> Self {
        Replayer {
            rules,
            caps,
            observer,
            options,
        }
    }

    /// Replay every item and report.
    pub async fn run(&self, items: impl Iterator<Item = InputItem>) -> Report {
        let mut report = Report::default();
        for rule in self.rules.pattern_rules() {
            report.rules.entry(rule.name.clone()).or_insert(0);
        }
        let mut seen: HashSet<String> = HashSet::new();
        // Instances with queue-depth activity, with the latest trigger: each gets a trailing refresh.
        let mut trailing: BTreeMap<String, Trigger> = BTreeMap::new();
        let mut last_now: Option<DateTime<Utc>> = None;
        let progress = self.options.progress && std::io::stderr().is_terminal();
        for item in items {
            report.events.read += 1;
            if progress && report.events.read % 500 == 0 {
                eprint!("\rreplayed {} events", report.events.read);
            }
            let event = match item.event {
                Ok(e) => e,
                Err(e) => {
                    report.events.malformed += 1;
                    report.errors.push(ReportError {
                        source: item.loc.to_string(),
                        event_id: None,
                        rule: None,
                        error_type: "MalformedEvent".into(),
                        reason: e.to_string(),
                        retryable: false,
                    });
                    continue;
                }
            };
            report.events.valid += 1;
            if let Some(c) = event.contact() {
                *report
                    .by_event_type
                    .entry(c.event_type.as_str().to_string())
                    .or_insert(0) += 1;
            }
            if let Some(id) = event.id() {
                if !seen.insert(id.to_string()) {
                    report.events.duplicates += 1;
                    continue;
                }
            }
            if let Some(observer) = self.observer {
                observer.observe(&event);
            }
            let event_time = event
                .envelope
                .time
                .or_else(|| event.contact().and_then(|c| c.step_time()));
            let now = if self.options.wall_clock {
                Utc::now()
            } else {
                event_time.unwrap_or_else(Utc::now)
            };
            last_now = last_now.max(Some(now));
            let ctx = InvocationContext {
                now,
                allow_side_effects: self.options.allow_side_effects,
            };
            for rule in self.rules.route(&event.raw) {
                *report.rules.entry(rule.name.clone()).or_insert(0) += 1;
                let Some(kind) = rule.handler else {
                    report.errors.push(ReportError {
                        source: item.loc.to_string(),
                        event_id: event.id().map(str::to_string),
                        rule: Some(rule.name.clone()),
                        error_type: "Configuration".into(),
                        reason: format!(
                            "rule {} targets {}, which is not a known handler",
                            rule.name, rule.function
                        ),
                        retryable: false,
                    });
                    continue;
                };
                match self.caps.handle(kind, &event, ctx).await {
                    Ok(outcome) => {
                        if let Outcome::QueueDepth(
                            QueueDepthOutcome::Refreshed { instance_id, .. }
                            | QueueDepthOutcome::Coalesced { instance_id, .. },
                        ) = &outcome
                        {
                            let trigger = Trigger::new(
                                "trailing",
                                event.contact().map(|c| c.contact_id.clone()),
                            );
                            trailing.insert(instance_id.clone(), trigger);
                        }
                        record(&mut report.actions, &outcome);
                    }
                    Err(e) => report.errors.push(ReportError {
                        source: item.loc.to_string(),
                        event_id: event.id().map(str::to_string),
                        rule: Some(rule.name.clone()),
                        error_type: e.error_type().into(),
                        reason: e.to_string(),
                        retryable: e.retryable(),
                    }),
                }
            }
        }
        // The trailing refresh of each instance, in a slot after every event: the index ends on a
        // snapshot taken after the last event (a no-op, stale-skipped write when nothing changed).
        let at = last_now.unwrap_or_else(Utc::now) + self.caps.queue_depth.config().min_interval;
        for (instance, trigger) in trailing {
            match self.caps.queue_depth.on_retry(&instance, trigger, at).await {
                Ok(outcome) => record(&mut report.actions, &Outcome::QueueDepth(outcome)),
                Err(e) => report.errors.push(ReportError {
                    source: format!("trailing refresh of {instance}"),
                    event_id: None,
                    rule: None,
                    error_type: e.error_type().into(),
                    reason: e.to_string(),
                    retryable: e.retryable(),
                }),
            }
        }
        if progress {
            eprintln!("\rreplayed {} events", report.events.read);
        }
        report
    }

    /// Route streamed records (contact records, agent events) as Kinesis would: each to the
    /// functions whose Kinesis event source reads the stream the instance's storage config writes
    /// that kind into ([`RuleSet::stream_route`]), in chunks of [`INGEST_CHUNK`] records.
    pub async fn run_records(&self, items: Vec<RecordItem>, report: &mut Report) {
        let mut valid: Vec<(String, Incoming)> = Vec::new();
        for item in items {
            report.records.read += 1;
            match item.record.and_then(Incoming::from_value) {
                Ok(record) => {
                    report.records.valid += 1;
                    valid.push((item.location, record));
                }
                Err(reason) => {
                    report.records.malformed += 1;
                    report.errors.push(ReportError {
                        source: item.location,
                        event_id: None,
                        rule: None,
                        error_type: "MalformedRecord".into(),
                        reason,
                        retryable: false,
                    });
                }
            }
        }
        for source in &self.rules.streams {
            report.rules.entry(source.name.clone()).or_insert(0);
        }
        for chunk in valid.chunks(INGEST_CHUNK) {
            for source in &self.rules.streams {
                let carried: Vec<&(String, Incoming)> = chunk
                    .iter()
                    .filter(|(_, r)| source.carries.contains(&content_of(r)))
                    .collect();
                if carried.is_empty() {
                    continue;
                }
                *report.rules.entry(source.name.clone()).or_insert(0) += carried.len();
                let analytics = match (source.handler, self.caps.analytics.as_ref()) {
                    (Some(HandlerKind::AnalyticsIndexer), Some(a)) => Ok(a),
                    (Some(HandlerKind::AnalyticsIndexer), None) => Err(
                        "the analytics store is not configured (OPENSEARCH_ENDPOINT)".to_string(),
                    ),
                    _ => Err(format!(
                        "{} reads the stream, and is not the analytics indexer",
                        source.function
                    )),
                };
                let analytics = match analytics {
                    Ok(a) => a,
                    Err(reason) => {
                        for (location, _) in carried {
                            report.errors.push(ReportError {
                                source: location.clone(),
                                event_id: None,
                                rule: Some(source.name.clone()),
                                error_type: "Configuration".into(),
                                reason: reason.clone(),
                                retryable: false,
                            });
                        }
                        continue;
                    }
                };
                let records: Vec<Incoming> = carried.iter().map(|(_, r)| r.clone()).collect();
                let results = analytics.ingest_many(&records).await;
                let a = &mut report.actions.analytics;
                for ((location, _), result) in carried.iter().zip(results) {
                    match result {
                        Ok(IngestOutcome::CtrStored) => a.contact_records_stored += 1,
                        Ok(IngestOutcome::CtrStale) => a.contact_records_unchanged += 1,
                        Ok(IngestOutcome::AgentEventStored) => a.agent_events_stored += 1,
                        Ok(IngestOutcome::AgentEventDuplicate) => a.agent_events_unchanged += 1,
                        Ok(IngestOutcome::Heartbeat) => a.heartbeats += 1,
                        Err(e) => report.errors.push(ReportError {
                            source: location.clone(),
                            event_id: None,
                            rule: Some(source.name.clone()),
                            error_type: e.error_type().into(),
                            reason: e.to_string(),
                            retryable: e.retryable(),
                        }),
                    }
                }
            }
        }
        // A kind no event source carries is reported, not dropped.
        for content in [StreamContent::ContactRecords, StreamContent::AgentEvents] {
            if self.rules.stream_route(content).next().is_some() {
                continue;
            }
            for (location, _) in valid.iter().filter(|(_, r)| content_of(r) == content) {
                report.errors.push(ReportError {
                    source: location.clone(),
                    event_id: None,
                    rule: None,
                    error_type: "Configuration".into(),
                    reason: format!("no Kinesis event source of the template reads a stream of {content:?} (AWS::Connect::InstanceStorageConfig)"),
                    retryable: false,
                });
            }
        }
    }
}

fn content_of(record: &Incoming) -> StreamContent {
    match record {
        Incoming::Ctr(_) => StreamContent::ContactRecords,
        Incoming::AgentEvent(_) => StreamContent::AgentEvents,
    }
}

fn record(actions: &mut Actions, outcome: &Outcome) {
    match outcome {
        Outcome::QueueDepth(QueueDepthOutcome::Refreshed {
            api_calls,
            written,
            stale_skipped,
            ..
        }) => {
            let q = &mut actions.queue_depth;
            q.refreshes += 1;
            q.metric_api_calls += *api_calls as usize;
            q.documents_written += written;
            q.stale_writes_skipped += stale_skipped;
        }
        Outcome::QueueDepth(QueueDepthOutcome::Coalesced { .. }) => {
            actions.queue_depth.coalesced += 1
        }
        Outcome::QueueDepth(QueueDepthOutcome::Ignored { .. }) => {}
        Outcome::DenyList(o) => {
            let d = &mut actions.deny_list;
            match o {
                EnforceOutcome::Skipped(_) => d.skipped += 1,
                EnforceOutcome::NoNumber(_) => d.no_number += 1,
                EnforceOutcome::NotListed => d.checked += 1,
                EnforceOutcome::Stopped | EnforceOutcome::AlreadyEnded | EnforceOutcome::DryRun => {
                    d.checked += 1;
                    d.listed += 1;
                    match o {
                        EnforceOutcome::Stopped => d.stopped += 1,
                        EnforceOutcome::AlreadyEnded => d.already_ended += 1,
                        _ => d.dry_run_stops += 1,
                    }
                }
            }
        }
        Outcome::FlowLogs(o) => {
            let f = &mut actions.flow_logs;
            match o {
                ArchiveOutcome::Archived { summary, .. } => {
                    f.archived += 1;
                    f.entries += summary.entries;
                    f.with_errors += usize::from(summary.has_errors);
                }
                ArchiveOutcome::Unchanged { summary, .. } => {
                    f.unchanged += 1;
                    f.entries += summary.entries;
                    f.with_errors += usize::from(summary.has_errors);
                }
                ArchiveOutcome::SkippedNoLogs { .. } => f.skipped_no_logs += 1,
            }
        }
    }
}
