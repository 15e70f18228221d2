//! The contact-center model: what Amazon Connect would know, rebuilt from contact events.
//!
//! Order-independent and idempotent: a contact is *waiting* when a QUEUED event was seen and no
//! CONNECTED_TO_AGENT, DISCONNECTED or COMPLETED event, whatever order they arrive in and however
//! often. The queue of a contact is the one of its latest `enqueueTimestamp`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use chrono::{TimeZone, Utc};
use serde::{Deserialize, Serialize};

use super::{read_optional, write_atomic, StateDir};
use crate::deny_list::{ContactControl, ContactInfo, StopOutcome};
use crate::error::PortError;
use crate::event::{Channel, Event, EventType};
use crate::queue_depth::{MetricSnapshot, MetricsSource, QueueMetrics, QueueRef};

const SERVICE: &str = "local contact-center model";

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ContactState {
    channel: Option<String>,
    queue_id: Option<String>,
    queue_arn: Option<String>,
    enqueued_at_ms: Option<i64>,
    queued: bool,
    connected: bool,
    ended: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    customer_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    initiated_ms: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    disconnected_ms: Option<i64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct InstanceState {
    /// The account of the instance's ARN, as contact events carry it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    account_id: Option<String>,
    queues: BTreeMap<String, QueueRef>,
    contacts: BTreeMap<String, ContactState>,
    /// The model's clock (ms): the latest step time seen, moved 1 ms forward by any change that
    /// does not advance it (an out-of-order event). It is the `DataSnapshotTime` of the answers, so
    /// documents get a newer version exactly when the state changed, and a replay of events already
    /// seen changes nothing.
    latest_ms: i64,
}

/// The model and its persistence.
#[derive(Debug, Default, Serialize, Deserialize)]
pub struct ContactCenterModel {
    instances: BTreeMap<String, InstanceState>,
    #[serde(default)]
    stopped: BTreeSet<String>,
    /// Per instance, the waiting contacts by (queue, channel): derived from `contacts`, built on
    /// the first snapshot and kept up to date by `observe`, so a refresh costs the queues it
    /// reports, not every contact ever seen.
    #[serde(skip)]
    waiting: BTreeMap<String, WaitingIndex>,
}

/// `(queue id, channel)` → `(enqueued at ms or i64::MAX, contact id)` of the contacts waiting there.
type WaitingIndex = BTreeMap<(String, String), BTreeSet<(i64, String)>>;

/// Where a contact waits, if it does: its index key and entry.
fn waiting_slot(contact_id: &str, s: &ContactState) -> Option<((String, String), (i64, String))> {
    if !s.queued || s.connected || s.ended {
        return None;
    }
    let key = (s.queue_id.clone()?, s.channel.clone()?);
    Some((
        key,
        (s.enqueued_at_ms.unwrap_or(i64::MAX), contact_id.to_string()),
    ))
}

fn build_waiting(contacts: &BTreeMap<String, ContactState>) -> WaitingIndex {
    let mut index = WaitingIndex::new();
    for (id, s) in contacts {
        if let Some((key, entry)) = waiting_slot(id, s) {
            index.entry(key).or_default().insert(entry);
        }
    }
    index
}

impl ContactCenterModel {
    /// Apply one contact event. Returns whether the model changed.
    pub fn observe(&mut self, event: &Event) -> bool {
        let Some(c) = event.contact() else {
            return false;
        };
        let Some(instance) = c.instance_id() else {
            return false;
        };
        let inst = self.instances.entry(instance.to_string()).or_default();
        let account_changed = match c.account_id() {
            Some(a) if inst.account_id.as_deref() != Some(a) => {
                inst.account_id = Some(a.to_string());
                true
            }
            _ => false,
        };
        let before = inst.contacts.get(&c.contact_id).cloned();
        let mut state = before.clone().unwrap_or_default();
        // Every event of a contact carries the same timestamps; the earliest / latest seen wins
        // should they ever differ, whatever the arrival order.
        if let Some(t) = c.initiation_timestamp.map(|t| t.timestamp_millis()) {
            state.initiated_ms = Some(state.initiated_ms.map_or(t, |s| s.min(t)));
        }
        if let Some(t) = c.disconnect_timestamp.map(|t| t.timestamp_millis()) {
            state.disconnected_ms = Some(state.disconnected_ms.map_or(t, |s| s.max(t)));
        }
        if let Some(ch) = &c.channel {
            state.channel = Some(ch.as_str().to_string());
        }
        if let Some(q) = &c.queue_info {
            if let Some(id) = q.queue_id() {
                inst.queues
                    .entry(id.to_string())
                    .or_insert_with(|| QueueRef {
                        id: id.to_string(),
                        arn: q.queue_arn.clone(),
                        name: None,
                    });
                let at = q.enqueue_timestamp.map(|t| t.timestamp_millis());
                // The queue of the latest enqueue wins, independent of arrival order.
                if state.queue_id.is_none() || at > state.enqueued_at_ms {
                    state.queue_id = Some(id.to_string());
                    state.queue_arn = q.queue_arn.clone();
                    state.enqueued_at_ms = at.or(state.enqueued_at_ms);
                }
            }
        }
        match c.event_type {
            EventType::Queued => state.queued = true,
            EventType::ConnectedToAgent => state.connected = true,
            EventType::Disconnected | EventType::Completed => state.ended = true,
            _ => {}
        }
        if let Some(n) = c.tags.get("customerNumber").filter(|n| !n.is_empty()) {
            state.customer_number = Some(n.clone());
        }
        let step_ms = c
            .step_time()
            .or(event.envelope.time)
            .map_or(0, |t| t.timestamp_millis());
        let state_changed = before.as_ref() != Some(&state);
        let advanced = step_ms > inst.latest_ms;
        if advanced {
            inst.latest_ms = step_ms;
        } else if state_changed {
            inst.latest_ms += 1;
        }
        if state_changed {
            if let Some(index) = self.waiting.get_mut(instance) {
                let old = before.as_ref().and_then(|b| waiting_slot(&c.contact_id, b));
                if let Some((key, entry)) = old {
                    if let Some(set) = index.get_mut(&key) {
                        set.remove(&entry);
                    }
                }
                if let Some((key, entry)) = waiting_slot(&c.contact_id, &state) {
                    index.entry(key).or_default().insert(entry);
                }
            }
            inst.contacts.insert(c.contact_id.clone(), state);
        }
        state_changed || advanced || account_changed
    }

    fn snapshot(
        &mut self,
        instance: &str,
        queues: &[QueueRef],
        channels: &[Channel],
    ) -> MetricSnapshot {
        let inst = self.instances.entry(instance.to_string()).or_default();
        let snapshot_ms = inst.latest_ms;
        let index = self
            .waiting
            .entry(instance.to_string())
            .or_insert_with(|| build_waiting(&inst.contacts));
        let mut rows = Vec::new();
        for q in queues {
            for ch in channels {
                let waiting = index.get(&(q.id.clone(), ch.as_str().to_string()));
                let oldest = waiting
                    .and_then(|w| w.first())
                    .map(|(t, _)| *t)
                    .filter(|t| *t != i64::MAX);
                rows.push(QueueMetrics {
                    queue_id: q.id.clone(),
                    queue_arn: q.arn.clone(),
                    channel: ch.clone(),
                    contacts_in_queue: waiting.map_or(0, |w| w.len() as u64),
                    contacts_scheduled: 0,
                    oldest_contact_age_seconds: oldest
                        .map(|t| ((snapshot_ms - t).max(0) as f64) / 1000.0),
                    agents_online: None,
                    agents_available: None,
                });
            }
        }
        MetricSnapshot {
            snapshot_time: Utc
                .timestamp_millis_opt(snapshot_ms)
                .single()
                .unwrap_or_else(Utc::now),
            rows,
            api_calls: crate::queue_depth::model::metric_api_calls(queues.len(), channels.len()),
        }
    }

    fn queues(&self, instance: &str) -> Vec<QueueRef> {
        self.instances
            .get(instance)
            .map(|i| i.queues.values().cloned().collect())
            .unwrap_or_default()
    }
}

/// The model shared by the metrics and contact ports, persisted in `connect/model.json`.
#[derive(Debug, Clone)]
pub struct SharedModel {
    inner: Arc<Mutex<ContactCenterModel>>,
    path: PathBuf,
    contacts_dir: PathBuf,
    users_dir: PathBuf,
}

impl SharedModel {
    /// Load the model of a state directory (empty when absent).
    pub fn open(state: &StateDir) -> Result<SharedModel, PortError> {
        let path = state.model();
        let model = match read_optional(&path)? {
            Some(bytes) => serde_json::from_slice(&bytes).map_err(|e| PortError::Rejected {
                service: SERVICE,
                message: format!("{}: {e}", path.display()),
            })?,
            None => ContactCenterModel::default(),
        };
        Ok(SharedModel {
            inner: Arc::new(Mutex::new(model)),
            path,
            contacts_dir: state.contacts(),
            users_dir: state.users(),
        })
    }

    fn lock(&self) -> MutexGuard<'_, ContactCenterModel> {
        self.inner
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Feed one event.
    pub fn observe(&self, event: &Event) -> bool {
        self.lock().observe(event)
    }

    /// Persist (pretty, stable order).
    pub fn save(&self) -> Result<(), PortError> {
        let bytes = serde_json::to_vec_pretty(&*self.lock()).map_err(|e| PortError::Rejected {
            service: SERVICE,
            message: e.to_string(),
        })?;
        write_atomic(&self.path, &bytes)
    }

    /// Instance ids the model knows.
    pub fn instances(&self) -> Vec<String> {
        self.lock().instances.keys().cloned().collect()
    }

    pub fn metrics(&self) -> LocalMetrics {
        LocalMetrics(self.clone())
    }

    pub fn contacts(&self) -> LocalContacts {
        LocalContacts(self.clone())
    }
}

/// [`MetricsSource`] answered by the model.
pub struct LocalMetrics(SharedModel);

#[async_trait]
impl MetricsSource for LocalMetrics {
    async fn list_queues(&self, instance_id: &str) -> Result<Vec<QueueRef>, PortError> {
        Ok(self.0.lock().queues(instance_id))
    }

    async fn current_metrics(
        &self,
        instance_id: &str,
        queues: &[QueueRef],
        channels: &[Channel],
    ) -> Result<MetricSnapshot, PortError> {
        Ok(self.0.lock().snapshot(instance_id, queues, channels))
    }
}

/// [`ContactControl`] answered by the model: the caller's number comes from the contact tag
/// `customerNumber` or from `connect/contacts/<contactId>.json` (a DescribeContact answer).
pub struct LocalContacts(SharedModel);

impl LocalContacts {
    /// `<state>/contacts/<id>.json`, a DescribeContact answer (`{"Contact": {…}}`), if any.
    fn described(&self, contact_id: &str) -> Result<Option<serde_json::Value>, PortError> {
        // The id names a file: an id that could be a path is no contact (as Connect would say).
        if crate::event::unsafe_id_reason(contact_id).is_some() {
            return Ok(None);
        }
        read_json(&self.0.contacts_dir.join(format!("{contact_id}.json")))
    }
}

/// A JSON file of the model (a saved API answer), `None` when it does not exist.
fn read_json(path: &std::path::Path) -> Result<Option<serde_json::Value>, PortError> {
    let Some(bytes) = read_optional(path)? else {
        return Ok(None);
    };
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| PortError::Rejected {
            service: SERVICE,
            message: format!("{}: {e}", path.display()),
        })
}

#[async_trait]
impl ContactControl for LocalContacts {
    async fn describe(
        &self,
        instance_id: &str,
        contact_id: &str,
    ) -> Result<Option<ContactInfo>, PortError> {
        let (state, account_id) = {
            let model = self.0.lock();
            let stopped = model.stopped.contains(contact_id);
            let instance = model.instances.get(instance_id);
            (
                instance
                    .and_then(|i| i.contacts.get(contact_id))
                    .cloned()
                    .map(|s| (s, stopped)),
                instance.and_then(|i| i.account_id.clone()),
            )
        };
        let at = |ms: Option<i64>| ms.and_then(|ms| Utc.timestamp_millis_opt(ms).single());
        let described = self.described(contact_id)?;
        let field = |pointer: &str| {
            described
                .as_ref()
                .and_then(|v| v.pointer(pointer))
                .and_then(|a| a.as_str())
                .map(str::to_string)
        };
        let (number, agent_id, endpoint_type, channel) = (
            field("/Contact/CustomerEndpoint/Address"),
            field("/Contact/AgentInfo/Id"),
            field("/Contact/CustomerEndpoint/Type"),
            field("/Contact/Channel"),
        );
        let described = described.map(|_| number);
        Ok(match (state, described) {
            (None, None) => None,
            (state, described) => Some(ContactInfo {
                customer_address: state
                    .as_ref()
                    .and_then(|(s, _)| s.customer_number.clone())
                    .or(described.flatten()),
                channel: state
                    .as_ref()
                    .and_then(|(s, _)| s.channel.clone())
                    .or(channel),
                initiation_method: None,
                initiated: at(state.as_ref().and_then(|(s, _)| s.initiated_ms)),
                disconnected: at(state.as_ref().and_then(|(s, _)| s.disconnected_ms)),
                account_id,
                ended: state.is_some_and(|(s, stopped)| s.ended || stopped),
                agent_id,
                customer_endpoint_type: endpoint_type,
            }),
        })
    }

    /// `<state>/connect/users/<id>.json`, a DescribeUser answer (`{"User": {"Id", "Username"}}`).
    async fn agent_username(
        &self,
        _instance_id: &str,
        user_id: &str,
    ) -> Result<Option<String>, PortError> {
        if crate::event::unsafe_id_reason(user_id).is_some() {
            return Ok(None);
        }
        Ok(
            read_json(&self.0.users_dir.join(format!("{user_id}.json")))?
                .and_then(|v| v.pointer("/User/Username")?.as_str().map(str::to_string)),
        )
    }

    async fn stop(&self, instance_id: &str, contact_id: &str) -> Result<StopOutcome, PortError> {
        // Like Connect: StopContact on a contact it does not know answers
        // `ContactNotFoundException`, which the port reports as `AlreadyEnded`.
        let known_number = self
            .described(contact_id)?
            .is_some_and(|v| v.pointer("/Contact/CustomerEndpoint/Address").is_some());
        let mut model = self.0.lock();
        let contact = model
            .instances
            .get(instance_id)
            .and_then(|i| i.contacts.get(contact_id));
        if contact.is_none() && !known_number {
            return Ok(StopOutcome::AlreadyEnded);
        }
        let ended = contact.is_some_and(|s| s.ended);
        if ended || !model.stopped.insert(contact_id.to_string()) {
            return Ok(StopOutcome::AlreadyEnded);
        }
        Ok(StopOutcome::Stopped)
    }
}
