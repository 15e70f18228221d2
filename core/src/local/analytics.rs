//! The embedded analytics store: `analytics/contact-records.json` (ContactId → newest copy) and
//! `analytics/agent-events.json` (EventId → event), kept in memory while a command runs and
//! written by [`LocalAnalytics::flush`] ([`super::LocalBackend::save`]). Records are stored as
//! delivered; the version rule is OpenSearch's external one (newer `LastUpdateTimestamp` wins).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::Value;

use super::{read_optional, write_atomic};
use crate::analytics::queries::Window;
use crate::analytics::{
    evaluate, AgentEvent, AnalyticsReport, AnalyticsStore, ContactRecord, Incoming,
};
use crate::error::PortError;

const SERVICE: &str = "local analytics store";

#[derive(Clone)]
pub struct LocalAnalytics {
    inner: Arc<Inner>,
}

struct Inner {
    dir: PathBuf,
    state: Mutex<Option<State>>,
}

#[derive(Default)]
struct State {
    ctrs: BTreeMap<String, ContactRecord>,
    events: BTreeMap<String, AgentEvent>,
    dirty: bool,
}

impl LocalAnalytics {
    pub fn new(dir: PathBuf) -> Self {
        LocalAnalytics {
            inner: Arc::new(Inner {
                dir,
                state: Mutex::new(None),
            }),
        }
    }

    fn with<T>(&self, f: impl FnOnce(&mut State) -> T) -> Result<T, PortError> {
        let mut guard = self.inner.state.lock().unwrap_or_else(|p| p.into_inner());
        if guard.is_none() {
            *guard = Some(self.load()?);
        }
        Ok(f(guard.as_mut().expect("loaded")))
    }

    fn load(&self) -> Result<State, PortError> {
        let mut state = State::default();
        for (file, is_ctr) in [("contact-records.json", true), ("agent-events.json", false)] {
            let path = self.inner.dir.join(file);
            let Some(bytes) = read_optional(&path)? else {
                continue;
            };
            let map: BTreeMap<String, Value> =
                serde_json::from_slice(&bytes).map_err(|e| PortError::Rejected {
                    service: SERVICE,
                    message: format!("{}: {e}", path.display()),
                })?;
            for (key, raw) in map {
                match Incoming::from_value(raw) {
                    Ok(Incoming::Ctr(c)) if is_ctr => {
                        state.ctrs.insert(key, c);
                    }
                    Ok(Incoming::AgentEvent(e)) if !is_ctr => {
                        state.events.insert(key, e);
                    }
                    _ => {
                        return Err(PortError::Rejected {
                            service: SERVICE,
                            message: format!("{}: entry {key} is not readable", path.display()),
                        })
                    }
                }
            }
        }
        Ok(state)
    }

    /// Write the documents if anything changed.
    pub fn flush(&self) -> Result<(), PortError> {
        let mut guard = self.inner.state.lock().unwrap_or_else(|p| p.into_inner());
        let Some(state) = guard.as_mut().filter(|s| s.dirty) else {
            return Ok(());
        };
        let ctrs: BTreeMap<&String, &Value> = state.ctrs.iter().map(|(k, c)| (k, &c.raw)).collect();
        let events: BTreeMap<&String, &Value> =
            state.events.iter().map(|(k, e)| (k, &e.raw)).collect();
        for (file, bytes) in [
            ("contact-records.json", serde_json::to_vec_pretty(&ctrs)),
            ("agent-events.json", serde_json::to_vec_pretty(&events)),
        ] {
            let bytes = bytes.map_err(|e| PortError::Rejected {
                service: SERVICE,
                message: e.to_string(),
            })?;
            write_atomic(&self.inner.dir.join(file), &bytes)?;
        }
        state.dirty = false;
        Ok(())
    }
}

#[async_trait]
impl AnalyticsStore for LocalAnalytics {
    async fn put_ctr(&self, ctr: &ContactRecord) -> Result<bool, PortError> {
        self.with(|s| {
            let newer = s
                .ctrs
                .get(&ctr.contact_id)
                .is_none_or(|stored| ctr.version() > stored.version());
            if newer {
                s.ctrs.insert(ctr.contact_id.clone(), ctr.clone());
                s.dirty = true;
            }
            newer
        })
    }

    async fn put_agent_event(&self, event: &AgentEvent) -> Result<bool, PortError> {
        self.with(|s| {
            let new = !s.events.contains_key(&event.event_id);
            if new {
                s.events.insert(event.event_id.clone(), event.clone());
                s.dirty = true;
            }
            new
        })
    }

    async fn metrics(&self, window: &Window) -> Result<AnalyticsReport, PortError> {
        self.with(|s| {
            evaluate(
                s.ctrs.values(),
                s.events.values(),
                &[],
                window.from,
                window.to,
                window.tz,
            )
        })
    }
}
