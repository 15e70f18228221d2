//! The refresh policy.
//!
//! **Budget.** `GetCurrentMetricData` allows 5 requests/s per account and Region, shared by every
//! tool. Lambda runs many containers at once, so coalescing cannot live in memory: each refresh first
//! claims the *slot* of `now` of its instance in the index: the interval `[start, start +
//! min_interval)` aligned on `min_interval` in wall-clock milliseconds, claimed by a lease document
//! written with external version = `start` in epoch ms. One claimant per slot wins and calls Connect;
//! the others are *coalesced*. Versions are instants, not slot numbers, so claims made with different
//! intervals (a changed `QUEUE_DEPTH_MIN_INTERVAL_MS`, a CLI with another setting than the stack)
//! stay comparable: a claim wins iff its slot starts after the newest claimed slot start. So an
//! instance costs at most one refresh per `min_interval` (default 1 s) however many events arrive
//! (a refresh of more than 100 queues costs one call per chunk and page). After an interval change
//! the first claim at the new interval wins as soon as its slot starts after the last slot claimed
//! at the old one (at most one new interval later), then refreshes run at the new rate.
//!
//! **Freshness.** A coalesced event happened after the winner of its slot may have taken its
//! snapshot, so it asks for a *trailing* refresh: the Lambda handler claims the next slot at once.
//! Winning means it waits for that slot and refreshes; losing means another invocation holds that
//! slot and refreshes after the event, so it returns immediately (one waiter per slot, not one per
//! event). Either way the index reflects a snapshot taken after the last event within
//! `min_interval` plus one API round trip.
//!
//! **Reconciliation.** Contact events are best effort; a scheduled rule refreshes every instance
//! periodically through the same slot claim.
//!
//! **Ordering.** Documents are written with external version = `DataSnapshotTime` in ms, so a stale
//! or replayed write can never overwrite a newer snapshot.

use std::collections::HashMap;
use std::sync::Mutex;

use chrono::{DateTime, Duration, TimeZone, Utc};

use super::model::{doc_id, MetricSnapshot, QueueDepthDoc, QueueMetrics, QueueRef, Trigger};
use super::ports::{MetricsSource, QueueDepthIndex};
use crate::clock::Clock;
use crate::error::HandlerError;
use crate::event::{format_millis, Channel, Event};

/// Settings of the queue-depth capability.
#[derive(Debug, Clone)]
pub struct QueueDepthConfig {
    /// At most one metrics refresh per instance per interval (default 1 s).
    pub min_interval: Duration,
    /// Channels asked for (default VOICE, CHAT, TASK).
    pub channels: Vec<Channel>,
    /// How long the queue list from `ListQueues` is reused (default 5 min).
    pub queue_cache_ttl: Duration,
    /// Instance refreshed by schedule and CLI when the event names none.
    pub default_instance_id: Option<String>,
}

impl Default for QueueDepthConfig {
    fn default() -> Self {
        QueueDepthConfig {
            min_interval: Duration::seconds(1),
            channels: vec![Channel::Voice, Channel::Chat, Channel::Task],
            queue_cache_ttl: Duration::minutes(5),
            default_instance_id: None,
        }
    }
}

/// What one invocation did.
#[derive(Debug, Clone, PartialEq)]
pub enum QueueDepthOutcome {
    /// Metrics were read and documents written.
    Refreshed {
        instance_id: String,
        api_calls: u32,
        written: usize,
        stale_skipped: usize,
        snapshot_time: DateTime<Utc>,
    },
    /// Another invocation holds this slot; a refresh claimed at or after `retry_at` covers the event.
    Coalesced {
        instance_id: String,
        retry_at: DateTime<Utc>,
        trigger: Trigger,
    },
    /// Nothing to refresh (not a contact event, or no instance known).
    Ignored { reason: &'static str },
}

/// Queue lists per instance with the time they were read.
type QueueCache = HashMap<String, (DateTime<Utc>, Vec<QueueRef>)>;

/// The queue-depth capability.
pub struct QueueDepthService {
    metrics: Box<dyn MetricsSource>,
    index: Box<dyn QueueDepthIndex>,
    config: QueueDepthConfig,
    queues: Mutex<QueueCache>,
}

impl QueueDepthService {
    pub fn new(
        metrics: Box<dyn MetricsSource>,
        index: Box<dyn QueueDepthIndex>,
        config: QueueDepthConfig,
    ) -> Self {
        QueueDepthService {
            metrics,
            index,
            config,
            queues: Mutex::new(HashMap::new()),
        }
    }

    pub fn config(&self) -> &QueueDepthConfig {
        &self.config
    }

    pub fn index(&self) -> &dyn QueueDepthIndex {
        self.index.as_ref()
    }

    /// The slot a moment falls in, as its lease version: the slot's start in epoch milliseconds,
    /// `floor(at / min_interval) * min_interval`. Comparable across intervals (see the module docs).
    pub fn slot(&self, at: DateTime<Utc>) -> i64 {
        let ms = self.interval_ms();
        at.timestamp_millis().div_euclid(ms).saturating_mul(ms)
    }

    fn interval_ms(&self) -> i64 {
        self.config.min_interval.num_milliseconds().max(1)
    }

    /// The start of the slot after the one starting at `slot`.
    fn next_slot_start(&self, slot: i64) -> DateTime<Utc> {
        Utc.timestamp_millis_opt(slot.saturating_add(self.interval_ms()))
            .single()
            .unwrap_or(DateTime::<Utc>::MAX_UTC)
    }

    /// Handle a routed event at `now`: refresh the event's instance if this invocation wins the slot.
    /// A scheduled event (no contact detail) refreshes the configured default instance.
    pub async fn on_event(
        &self,
        event: &Event,
        now: DateTime<Utc>,
    ) -> Result<QueueDepthOutcome, HandlerError> {
        let (instance, trigger) = match event.contact() {
            Some(c) => match c.instance_id() {
                Some(id) => (
                    id.to_string(),
                    Trigger::new(c.event_type.as_str(), Some(c.contact_id.clone())),
                ),
                None => {
                    return Ok(QueueDepthOutcome::Ignored {
                        reason: "contact event without instanceArn",
                    })
                }
            },
            None => match &self.config.default_instance_id {
                Some(id) => (id.clone(), Trigger::new("schedule", None)),
                None => {
                    return Ok(QueueDepthOutcome::Ignored {
                        reason: "no instance configured for scheduled refresh",
                    })
                }
            },
        };
        self.claim_and_refresh(&instance, trigger, now).await
    }

    /// Live handling (Lambda): [`Self::on_event`] at the clock's time; when coalesced, wait for the
    /// next slot (at most `max_wait`) and claim it for the trailing refresh. Losing that claim too
    /// means another invocation refreshed in a slot that began after this event.
    pub async fn on_event_live(
        &self,
        event: &Event,
        clock: &dyn Clock,
        max_wait: Duration,
    ) -> Result<QueueDepthOutcome, HandlerError> {
        let first = self.on_event(event, clock.now()).await?;
        let QueueDepthOutcome::Coalesced {
            instance_id,
            retry_at,
            trigger,
        } = &first
        else {
            return Ok(first);
        };
        let wait = *retry_at - clock.now();
        if wait > max_wait {
            return Ok(first);
        }
        // Reserve the trailing slot now. Losing means another invocation already holds it and
        // refreshes at or after `retry_at`, i.e. after this event: return without waiting, so one
        // invocation per slot waits instead of every coalesced one (bounded Lambda concurrency).
        if !self
            .index
            .try_claim(instance_id, self.slot(*retry_at))
            .await?
        {
            return Ok(first);
        }
        if let Ok(wait) = wait.to_std() {
            tokio::time::sleep(wait).await;
        }
        self.refresh(
            instance_id,
            trailing(trigger.clone()),
            clock.now().max(*retry_at),
        )
        .await
    }

    /// The trailing refresh of a coalesced event, at (or after) its `retry_at`.
    pub async fn on_retry(
        &self,
        instance_id: &str,
        trigger: Trigger,
        at: DateTime<Utc>,
    ) -> Result<QueueDepthOutcome, HandlerError> {
        self.claim_and_refresh(instance_id, trailing(trigger), at)
            .await
    }

    async fn claim_and_refresh(
        &self,
        instance: &str,
        trigger: Trigger,
        now: DateTime<Utc>,
    ) -> Result<QueueDepthOutcome, HandlerError> {
        let slot = self.slot(now);
        if !self.index.try_claim(instance, slot).await? {
            return Ok(QueueDepthOutcome::Coalesced {
                instance_id: instance.to_string(),
                retry_at: self.next_slot_start(slot),
                trigger,
            });
        }
        self.refresh(instance, trigger, now).await
    }

    /// Refresh unconditionally (after a won claim, or a one-shot CLI refresh).
    pub async fn refresh(
        &self,
        instance: &str,
        trigger: Trigger,
        now: DateTime<Utc>,
    ) -> Result<QueueDepthOutcome, HandlerError> {
        self.index.ensure_ready().await?;
        let queues = self.queues(instance, now).await?;
        if queues.is_empty() {
            return Ok(QueueDepthOutcome::Refreshed {
                instance_id: instance.to_string(),
                api_calls: 0,
                written: 0,
                stale_skipped: 0,
                snapshot_time: now,
            });
        }
        let snapshot = self
            .metrics
            .current_metrics(instance, &queues, &self.config.channels)
            .await?;
        let docs = build_docs(
            instance,
            &queues,
            &self.config.channels,
            &snapshot,
            &trigger,
            now,
        );
        let outcome = self.index.write(&docs).await?;
        Ok(QueueDepthOutcome::Refreshed {
            instance_id: instance.to_string(),
            api_calls: snapshot.api_calls,
            written: outcome.written,
            stale_skipped: outcome.stale_skipped,
            snapshot_time: snapshot.snapshot_time,
        })
    }

    async fn queues(
        &self,
        instance: &str,
        now: DateTime<Utc>,
    ) -> Result<Vec<QueueRef>, HandlerError> {
        if let Ok(cache) = self.queues.lock() {
            if let Some((at, queues)) = cache.get(instance) {
                if now - *at < self.config.queue_cache_ttl && now >= *at {
                    return Ok(queues.clone());
                }
            }
        }
        let queues = self.metrics.list_queues(instance).await?;
        if let Ok(mut cache) = self.queues.lock() {
            cache.insert(instance.to_string(), (now, queues.clone()));
        }
        Ok(queues)
    }
}

/// The trigger of a trailing refresh: names the contact (or event kind) it covers.
fn trailing(trigger: Trigger) -> Trigger {
    Trigger::new(
        "trailing",
        trigger
            .contact_id
            .or(Some(trigger.kind))
            .filter(|s| !s.is_empty()),
    )
}

/// One document per queue and channel asked for. A pair missing from the metrics answer is written
/// with zeros, so a queue that empties never keeps a stale non-zero depth.
pub fn build_docs(
    instance: &str,
    queues: &[QueueRef],
    channels: &[Channel],
    snapshot: &MetricSnapshot,
    trigger: &Trigger,
    refreshed_at: DateTime<Utc>,
) -> Vec<QueueDepthDoc> {
    let rows: HashMap<(&str, &str), &QueueMetrics> = snapshot
        .rows
        .iter()
        .map(|r| ((r.queue_id.as_str(), r.channel.as_str()), r))
        .collect();
    let snapshot_time = format_millis(&snapshot.snapshot_time);
    let refreshed_at = format_millis(&refreshed_at);
    let mut docs = Vec::with_capacity(queues.len() * channels.len());
    for q in queues {
        for ch in channels {
            let row = rows.get(&(q.id.as_str(), ch.as_str()));
            let in_queue = row.map_or(0, |r| r.contacts_in_queue);
            let scheduled = row.map_or(0, |r| r.contacts_scheduled);
            docs.push(QueueDepthDoc {
                instance_id: instance.to_string(),
                queue_id: q.id.clone(),
                queue_arn: q
                    .arn
                    .clone()
                    .or_else(|| row.and_then(|r| r.queue_arn.clone())),
                queue_name: q.name.clone(),
                channel: ch.as_str().to_string(),
                contacts_in_queue: in_queue,
                contacts_scheduled: scheduled,
                queue_depth: in_queue + scheduled,
                oldest_contact_age_seconds: row.and_then(|r| r.oldest_contact_age_seconds),
                agents_online: row.and_then(|r| r.agents_online),
                agents_available: row.and_then(|r| r.agents_available),
                snapshot_time: snapshot_time.clone(),
                refreshed_at: refreshed_at.clone(),
                trigger: trigger.clone(),
            });
        }
    }
    debug_assert!(docs
        .iter()
        .all(|d| d.id() == doc_id(&d.instance_id, &d.queue_id, &d.channel)));
    docs
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::SystemClock;
    use crate::local::LocalBackend;
    use serde_json::json;

    fn queued(contact: &str) -> Event {
        Event::from_value(json!({
            "id": contact, "detail-type": "Amazon Connect Contact Event", "source": "aws.connect",
            "time": "2025-06-10T14:00:00Z",
            "detail": {"eventType": "QUEUED", "contactId": contact, "channel": "VOICE",
                "instanceArn": "arn:aws:connect:us-east-1:123456789012:instance/i-1",
                "queueInfo": {"queueArn": "arn:aws:connect:us-east-1:123456789012:instance/i-1/queue/q-1",
                              "enqueueTimestamp": "2025-06-10T14:00:00.000Z"}}
        }))
        .unwrap()
    }

    #[tokio::test]
    async fn live_path_refreshes_once_reserves_one_trailing_refresh_and_never_waits_twice() {
        let dir = std::env::temp_dir().join(format!("qd-live-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let backend = LocalBackend::open(&dir).unwrap();
        let config = QueueDepthConfig {
            min_interval: Duration::milliseconds(200),
            ..Default::default()
        };
        let svc = QueueDepthService::new(
            Box::new(backend.model.metrics()),
            Box::new(crate::local::LocalIndex::new(backend.state.index("qd"))),
            config,
        );
        let events: Vec<Event> = (0..6).map(|i| queued(&format!("c-{i}"))).collect();
        for e in &events {
            backend.model.observe(e);
        }
        let wait = Duration::seconds(1);
        let started = std::time::Instant::now();
        let outcomes = futures_join(&svc, &events, wait).await;
        let refreshed = outcomes
            .iter()
            .filter(|o| matches!(o, QueueDepthOutcome::Refreshed { .. }))
            .count();
        let coalesced = outcomes
            .iter()
            .filter(|o| matches!(o, QueueDepthOutcome::Coalesced { .. }))
            .count();
        // One leading refresh and (unless all six fell in one slot boundary) one trailing refresh;
        // everything else returned without refreshing.
        assert!((1..=2).contains(&refreshed), "{outcomes:?}");
        assert_eq!(refreshed + coalesced, 6);
        assert!(
            started.elapsed() < std::time::Duration::from_millis(900),
            "only one invocation waits, for at most one slot"
        );
        let docs = svc.index().documents().await.unwrap();
        let voice = docs.iter().find(|d| d.channel == "VOICE").unwrap();
        assert_eq!(voice.queue_depth, 6);
    }

    async fn futures_join(
        svc: &QueueDepthService,
        e: &[Event],
        wait: Duration,
    ) -> Vec<QueueDepthOutcome> {
        let c = &SystemClock;
        let (a, b, d, f, g, h) = tokio::join!(
            svc.on_event_live(&e[0], c, wait),
            svc.on_event_live(&e[1], c, wait),
            svc.on_event_live(&e[2], c, wait),
            svc.on_event_live(&e[3], c, wait),
            svc.on_event_live(&e[4], c, wait),
            svc.on_event_live(&e[5], c, wait),
        );
        [a, b, d, f, g, h].into_iter().map(Result::unwrap).collect()
    }
}
