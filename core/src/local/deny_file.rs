//! The deny list in one JSON file.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::sync::{Mutex, MutexGuard};
use std::time::SystemTime;

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

type Items = BTreeMap<String, Item>;
type Cache = Option<(Option<SystemTime>, Items)>;

/// `denylist.json`: a map from E.164 number to entry, rewritten atomically on every change. The
/// parsed file is cached and read again only when its modification time changes (another process
/// wrote it), so warm lookups cost a `stat` and a map lookup.
pub struct LocalDenyStore {
    path: PathBuf,
    cache: Mutex<Cache>,
}

impl LocalDenyStore {
    pub fn new(path: PathBuf) -> Self {
        LocalDenyStore {
            path,
            cache: Mutex::new(None),
        }
    }

    fn modified(&self) -> Option<SystemTime> {
        std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .ok()
    }

    /// The cache, filled with the file's current content.
    fn fresh(&self) -> Result<MutexGuard<'_, Cache>, PortError> {
        let mut cache = self.cache.lock().unwrap_or_else(|p| p.into_inner());
        let mtime = self.modified();
        if cache.as_ref().is_none_or(|(cached, _)| *cached != mtime) {
            let items = match read_optional(&self.path)? {
                None => Items::new(),
                Some(b) => serde_json::from_slice(&b).map_err(|e| PortError::Rejected {
                    service: SERVICE,
                    message: format!("{}: {e}", self.path.display()),
                })?,
            };
            *cache = Some((mtime, items));
        }
        Ok(cache)
    }

    fn read<T>(&self, f: impl FnOnce(&Items) -> T) -> Result<T, PortError> {
        let cache = self.fresh()?;
        let empty = Items::new();
        Ok(f(cache.as_ref().map_or(&empty, |(_, items)| items)))
    }

    fn update<T>(&self, f: impl FnOnce(&mut Items) -> T) -> Result<T, PortError> {
        let mut cache = self.fresh()?;
        let (mtime, items) = cache.get_or_insert_with(|| (None, Items::new()));
        let out = f(items);
        let bytes = serde_json::to_vec_pretty(items).map_err(|e| PortError::Rejected {
            service: SERVICE,
            message: e.to_string(),
        })?;
        write_atomic(&self.path, &bytes)?;
        *mtime = std::fs::metadata(&self.path)
            .and_then(|m| m.modified())
            .ok();
        Ok(out)
    }
}

/// Replace an entry's attributes, keeping its hit counters.
fn upsert(items: &mut Items, entry: &DenyEntry) {
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
        self.read(|items| items.get(number.as_str()).map(|i| i.entry.clone()))
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
        self.read(|items| items.values().map(|i| i.entry.clone()).collect())
    }

    async fn put_batch(&self, entries: &[DenyEntry]) -> Result<BatchOutcome, PortError> {
        // Whole entries replace stored ones, like DynamoDB's BatchWriteItem.
        self.update(|items| {
            for entry in entries {
                let item = Item {
                    entry: entry.clone(),
                    hit_contacts: BTreeSet::new(),
                };
                items.insert(entry.number.as_str().to_string(), item);
            }
            BatchOutcome {
                written: entries.len(),
                failed: Vec::new(),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn two_stores_on_one_file_see_each_others_writes_and_count_hits_once() {
        let path = std::env::temp_dir().join(format!(
            "denylist-{}-{:?}.json",
            std::process::id(),
            std::thread::current().id()
        ));
        let _ = std::fs::remove_file(&path);
        let (a, b) = (
            LocalDenyStore::new(path.clone()),
            LocalDenyStore::new(path.clone()),
        );
        let n: E164 = "+14255550100".parse().unwrap();
        assert_eq!(b.get(&n).await.unwrap(), None);
        a.put(&DenyEntry::new(n.clone())).await.unwrap();
        assert!(
            b.get(&n).await.unwrap().is_some(),
            "b reloads after a's write"
        );
        let at = Utc::now();
        assert!(b.record_hit(&n, "c-1", at).await.unwrap());
        assert!(
            !a.record_hit(&n, "c-1", at).await.unwrap(),
            "the same contact counts once"
        );
        assert!(a.record_hit(&n, "c-2", at).await.unwrap());
        assert_eq!(b.get(&n).await.unwrap().unwrap().hit_count, 2);
        // put keeps the counters
        a.put(&DenyEntry {
            reason: Some("x".into()),
            ..DenyEntry::new(n.clone())
        })
        .await
        .unwrap();
        assert_eq!(b.get(&n).await.unwrap().unwrap().hit_count, 2);
        assert!(b.remove(&n).await.unwrap());
        assert!(!a.remove(&n).await.unwrap());
        let _ = std::fs::remove_file(&path);
    }
}
