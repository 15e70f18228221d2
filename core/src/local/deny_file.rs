//! The deny list in one JSON file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::{read_optional, write_atomic};
use crate::deny_list::{BatchOutcome, DenyEntry, DenyStore, E164};
use crate::error::PortError;

const SERVICE: &str = "local deny list";

#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Item {
    #[serde(flatten)]
    entry: DenyEntry,
    /// Contacts whose hit was counted (makes hit counting idempotent, like the DynamoDB adapter).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    hit_contacts: BTreeSet<String>,
}

/// `denylist.json`: a map from E.164 number to entry, rewritten atomically on every change.
pub struct LocalDenyStore {
    path: PathBuf,
    lock: Mutex<()>,
}

impl LocalDenyStore {
    pub fn new(path: PathBuf) -> Self {
        LocalDenyStore {
            path,
            lock: Mutex::new(()),
        }
    }

    fn load(&self) -> Result<BTreeMap<String, Item>, PortError> {
        match read_optional(&self.path)? {
            None => Ok(BTreeMap::new()),
            Some(b) => serde_json::from_slice(&b).map_err(|e| PortError::Rejected {
                service: SERVICE,
                message: format!("{}: {e}", self.path.display()),
            }),
        }
    }

    fn save(&self, items: &BTreeMap<String, Item>) -> Result<(), PortError> {
        let bytes = serde_json::to_vec_pretty(items).map_err(|e| PortError::Rejected {
            service: SERVICE,
            message: e.to_string(),
        })?;
        write_atomic(&self.path, &bytes)
    }

    fn update<T>(&self, f: impl FnOnce(&mut BTreeMap<String, Item>) -> T) -> Result<T, PortError> {
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        let mut items = self.load()?;
        let out = f(&mut items);
        self.save(&items)?;
        Ok(out)
    }
}

/// Replace an entry's attributes, keeping its hit counters.
fn upsert(items: &mut BTreeMap<String, Item>, entry: &DenyEntry) {
    let item = items
        .entry(entry.number.as_str().to_string())
        .or_insert_with(|| Item {
            entry: entry.clone(),
            hit_contacts: BTreeSet::new(),
        });
    let (hit_count, last_hit_at) = (item.entry.hit_count, item.entry.last_hit_at);
    item.entry = DenyEntry {
        hit_count,
        last_hit_at,
        ..entry.clone()
    };
}

#[async_trait]
impl DenyStore for LocalDenyStore {
    async fn get(&self, number: &E164) -> Result<Option<DenyEntry>, PortError> {
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        Ok(self.load()?.remove(number.as_str()).map(|i| i.entry))
    }

    async fn put(&self, entry: &DenyEntry) -> Result<(), PortError> {
        self.update(|items| upsert(items, entry))
    }

    async fn remove(&self, number: &E164) -> Result<bool, PortError> {
        self.update(|items| items.remove(number.as_str()).is_some())
    }

    async fn record_hit(
        &self,
        number: &E164,
        contact_id: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, PortError> {
        self.update(|items| {
            let Some(item) = items.get_mut(number.as_str()) else {
                return false;
            };
            if !item.hit_contacts.insert(contact_id.to_string()) {
                return false;
            }
            item.entry.hit_count += 1;
            item.entry.last_hit_at = Some(item.entry.last_hit_at.map_or(at, |t| t.max(at)));
            true
        })
    }

    async fn list(&self) -> Result<Vec<DenyEntry>, PortError> {
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        Ok(self.load()?.into_values().map(|i| i.entry).collect())
    }

    async fn put_batch(&self, entries: &[DenyEntry]) -> Result<BatchOutcome, PortError> {
        self.update(|items| {
            for entry in entries {
                upsert(items, entry);
            }
            BatchOutcome {
                written: entries.len(),
                failed: Vec::new(),
            }
        })
    }
}
