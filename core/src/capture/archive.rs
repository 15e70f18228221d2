//! The deployed EventBridge archive as a local replay archive.
//!
//! An archive cannot be read, only replayed, and EventBridge replays only onto the archive's own
//! bus. So [`export_archive`] starts a replay of the window onto that bus with
//! `Destination.FilterArns` = the capture rule alone (no other rule, so no function, sees the
//! copies), waits until the replay has completed, and exports what the capture rule delivered to
//! its log group ([`super::export_replay`]): the copies of this replay only (their
//! `replay-name`), without that field, each `id` once, time-ordered.
//!
//! Where the copies land in the log group: EventBridge's CloudWatch Logs target stamps a log event
//! with the event's `time` or with the delivery; [`log_ranges`] reads both.

use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

use crate::error::{HandlerError, PortError};

/// One replay of an archive's window.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayRequest {
    /// Unique per replay (EventBridge: 1 to 64 of `[.\-_A-Za-z0-9]`).
    pub name: String,
    pub archive_arn: String,
    /// The window (EventBridge replays events whose `time` is in `start..end`).
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    /// The only rules the copies reach.
    pub rule_arns: Vec<String>,
}

/// A replay's state, as `DescribeReplay` reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReplayState {
    Starting,
    Running,
    Completed,
    Cancelling,
    Cancelled,
    Failed,
}

/// Where a replay is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayProgress {
    pub state: ReplayState,
    /// Why it is in that state (failures).
    pub reason: Option<String>,
    /// The `time` of the last event replayed.
    pub last_replayed: Option<DateTime<Utc>>,
    /// When the replay started.
    pub began: Option<DateTime<Utc>>,
}

/// EventBridge's archives and replays.
#[async_trait]
pub trait ArchiveReplays: Send + Sync {
    /// The ARN of the bus the archive archives (the only bus it can be replayed onto).
    async fn source_bus(&self, archive_arn: &str) -> Result<String, PortError>;
    /// Starts the replay onto `bus_arn`.
    async fn start(&self, request: &ReplayRequest, bus_arn: &str) -> Result<(), PortError>;
    /// Where replay `name` is.
    async fn progress(&self, name: &str) -> Result<ReplayProgress, PortError>;
}

/// A replay name unique to this run: `connect-events-export-<UTC now>-<random>`.
pub fn replay_name(now: DateTime<Utc>) -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut h = std::collections::hash_map::RandomState::new().build_hasher();
    h.write_i64(now.timestamp_nanos_opt().unwrap_or_default());
    h.write_u32(std::process::id());
    format!(
        "connect-events-export-{}-{:08x}",
        now.format("%Y%m%dT%H%M%SZ"),
        h.finish() as u32
    )
}

/// How often to ask, and for how long at most.
#[derive(Debug, Clone, Copy)]
pub struct Polling {
    pub every: Duration,
    pub at_most: Duration,
}

/// Starts `request` onto the archive's bus.
pub async fn start_replay(
    replays: &dyn ArchiveReplays,
    request: &ReplayRequest,
) -> Result<(), HandlerError> {
    if request.end <= request.start {
        return Err(HandlerError::Config(
            "the window ends before it starts".into(),
        ));
    }
    let bus = replays.source_bus(&request.archive_arn).await?;
    replays.start(request, &bus).await?;
    Ok(())
}

/// Waits until replay `name` completes. A failed or cancelled replay is an error with
/// EventBridge's reason; so is one still running after `polling.at_most` (it goes on in
/// EventBridge: the message says how to export it later). Retryable errors are asked again.
pub async fn await_replay(
    replays: &dyn ArchiveReplays,
    name: &str,
    polling: Polling,
    progress: &mut dyn FnMut(&ReplayProgress),
) -> Result<ReplayProgress, HandlerError> {
    let began = std::time::Instant::now();
    loop {
        match replays.progress(name).await {
            Ok(p) => {
                progress(&p);
                match p.state {
                    ReplayState::Completed => return Ok(p),
                    ReplayState::Failed | ReplayState::Cancelled | ReplayState::Cancelling => {
                        return Err(HandlerError::Config(format!(
                            "replay {name} ended {:?}: {}",
                            p.state,
                            p.reason.as_deref().unwrap_or("no reason given")
                        )))
                    }
                    ReplayState::Starting | ReplayState::Running => {}
                }
            }
            Err(e) if e.retryable() => tracing::warn!(error = %e, "asking again"),
            Err(e) => return Err(e.into()),
        }
        if began.elapsed() >= polling.at_most {
            return Err(HandlerError::Config(format!(
                "replay {name} has not completed after {} s; it goes on in EventBridge: export it \
                 later with --replay-name {name}",
                polling.at_most.as_secs()
            )));
        }
        tokio::time::sleep(polling.every).await;
    }
}

/// Which replay an archive export exports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Replay {
    /// A new one, delivered to this rule alone (the capture rule).
    Start { capture_rule: String },
    /// One started earlier, by its name.
    Resume(String),
}

/// What to export from an archive.
#[derive(Debug, Clone)]
pub struct ArchiveExport {
    pub archive_arn: String,
    /// The window (the events' `time`).
    pub start: DateTime<Utc>,
    pub end: DateTime<Utc>,
    pub replay: Replay,
    pub polling: Polling,
    /// Time for the last deliveries to reach the log group after the replay completed.
    pub settle: Duration,
}

/// The archive's window as a local file: start a replay to the capture rule alone (or take the one
/// started earlier), wait for it, let the last deliveries land, then export its copies from the
/// capture `log_group` ([`super::export_replay`]). `on_replay` hears the replay's name first
/// (with no progress), then its progress.
pub async fn export_archive(
    replays: &dyn ArchiveReplays,
    source: &dyn super::CapturedEvents,
    log_group: &str,
    job: &ArchiveExport,
    out: &mut dyn std::io::Write,
    on_replay: &mut dyn FnMut(&str, Option<&ReplayProgress>),
    progress: &mut dyn FnMut(&super::ExportSummary),
) -> Result<super::ExportSummary, HandlerError> {
    let asked = Utc::now();
    let name = match &job.replay {
        Replay::Resume(name) => name.clone(),
        Replay::Start { capture_rule } => {
            let request = ReplayRequest {
                name: replay_name(asked),
                archive_arn: job.archive_arn.clone(),
                start: job.start,
                end: job.end,
                rule_arns: vec![capture_rule.clone()],
            };
            start_replay(replays, &request).await?;
            request.name
        }
    };
    on_replay(&name, None);
    let done = await_replay(replays, &name, job.polling, &mut |p| {
        on_replay(&name, Some(p))
    })
    .await?;
    tokio::time::sleep(job.settle).await;
    let ranges = log_ranges(job.start, job.end, done.began.unwrap_or(asked), Utc::now());
    super::export_replay(source, log_group, &ranges, &name, out, progress).await
}

/// The log-event time ranges (ms, inclusive) that hold the copies of a replay of `start..end`
/// that ran from `replay_began` to `delivered_by`: the window itself, and the replay's own span
/// (with a minute of slack each side); one range when they overlap.
pub fn log_ranges(
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    replay_began: DateTime<Utc>,
    delivered_by: DateTime<Utc>,
) -> Vec<(i64, i64)> {
    const SLACK_MS: i64 = 60_000;
    let window = (start.timestamp_millis(), end.timestamp_millis());
    let span = (
        replay_began.timestamp_millis() - SLACK_MS,
        delivered_by.timestamp_millis() + SLACK_MS,
    );
    if span.0 <= window.1 && window.0 <= span.1 {
        vec![(window.0.min(span.0), window.1.max(span.1))]
    } else {
        vec![window, span]
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    struct Scripted {
        states: Mutex<Vec<Result<ReplayProgress, PortError>>>,
        started: Mutex<Vec<(ReplayRequest, String)>>,
    }

    fn at(state: ReplayState) -> Result<ReplayProgress, PortError> {
        Ok(ReplayProgress {
            state,
            reason: Some("because".into()),
            last_replayed: None,
            began: None,
        })
    }

    #[async_trait]
    impl ArchiveReplays for Scripted {
        async fn source_bus(&self, _: &str) -> Result<String, PortError> {
            Ok("arn:aws:events:us-east-1:123456789012:event-bus/default".into())
        }
        async fn start(&self, request: &ReplayRequest, bus: &str) -> Result<(), PortError> {
            self.started
                .lock()
                .unwrap()
                .push((request.clone(), bus.to_string()));
            Ok(())
        }
        async fn progress(&self, _: &str) -> Result<ReplayProgress, PortError> {
            self.states.lock().unwrap().remove(0)
        }
    }

    fn request() -> ReplayRequest {
        let start = "2026-12-01T10:00:00Z".parse().unwrap();
        ReplayRequest {
            name: replay_name(Utc::now()),
            archive_arn: "arn:aws:events:us-east-1:123456789012:archive/a".into(),
            start,
            end: start + chrono::Duration::hours(1),
            rule_arns: vec!["arn:aws:events:us-east-1:123456789012:rule/capture".into()],
        }
    }

    const FAST: Polling = Polling {
        every: Duration::from_millis(1),
        at_most: Duration::from_secs(5),
    };

    #[tokio::test]
    async fn the_replay_goes_onto_the_archives_bus_and_is_awaited_through_blips() {
        let replays = Scripted {
            states: Mutex::new(vec![
                at(ReplayState::Starting),
                Err(PortError::Throttled {
                    service: "events",
                    message: "slow down".into(),
                }),
                at(ReplayState::Running),
                at(ReplayState::Completed),
            ]),
            started: Mutex::new(Vec::new()),
        };
        let mut seen = Vec::new();
        let r = request();
        start_replay(&replays, &r).await.unwrap();
        let done = await_replay(&replays, &r.name, FAST, &mut |p| seen.push(p.state.clone()))
            .await
            .unwrap();
        assert_eq!(done.state, ReplayState::Completed);
        assert_eq!(
            seen,
            [
                ReplayState::Starting,
                ReplayState::Running,
                ReplayState::Completed
            ]
        );
        let started = replays.started.lock().unwrap();
        assert!(started[0].1.ends_with("event-bus/default"));
    }

    #[tokio::test]
    async fn a_failed_or_endless_replay_is_an_error_that_names_it() {
        let failing = Scripted {
            states: Mutex::new(vec![at(ReplayState::Running), at(ReplayState::Failed)]),
            started: Mutex::new(Vec::new()),
        };
        let r = request();
        let e = await_replay(&failing, &r.name, FAST, &mut |_| {})
            .await
            .unwrap_err();
        assert!(
            e.to_string().contains(&r.name) && e.to_string().contains("because"),
            "{e}"
        );
        let endless = Scripted {
            states: Mutex::new((0..1000).map(|_| at(ReplayState::Running)).collect()),
            started: Mutex::new(Vec::new()),
        };
        let short = Polling {
            every: Duration::from_millis(1),
            at_most: Duration::from_millis(20),
        };
        let e = await_replay(&endless, &r.name, short, &mut |_| {})
            .await
            .unwrap_err();
        assert!(e.to_string().contains("has not completed"), "{e}");
    }

    #[test]
    fn names_are_unique_and_valid() {
        let now = Utc::now();
        let (a, b) = (replay_name(now), replay_name(now));
        assert_ne!(a, b);
        assert!(
            a.len() <= 64
                && a.bytes()
                    .all(|c| c.is_ascii_alphanumeric() || b".-_".contains(&c))
        );
    }

    #[test]
    fn both_stamps_of_the_copies_are_read() {
        let t = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let old = log_ranges(
            t("2026-12-01T10:00:00Z"),
            t("2026-12-01T11:00:00Z"),
            t("2026-12-07T15:00:00Z"),
            t("2026-12-07T15:30:00Z"),
        );
        assert_eq!(old.len(), 2);
        let recent = log_ranges(
            t("2026-12-07T14:00:00Z"),
            t("2026-12-07T15:00:30Z"),
            t("2026-12-07T15:00:00Z"),
            t("2026-12-07T15:30:00Z"),
        );
        assert_eq!(
            recent,
            [(
                t("2026-12-07T14:00:00Z").timestamp_millis(),
                t("2026-12-07T15:31:00Z").timestamp_millis()
            )]
        );
    }
}
