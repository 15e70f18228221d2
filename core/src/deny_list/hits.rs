//! Hits on listed numbers that the contact flow answered before counting.
//!
//! The contact-flow answer waits for one read; the hit (a conditional write, at most once per
//! contact id) is counted after the answer is sent. A count that fails with a retryable error
//! stays in the [`HitBacklog`] and is tried again after the next invocation, so a throttled or
//! briefly unreachable table delays counts instead of losing them; a count rejected for good is
//! logged (masked number) and dropped. The backlog is bounded: when it is full the oldest hit is
//! dropped with an error log, so a table that stays down cannot grow the function's memory.
//! Counting is idempotent per contact id, so a hit tried twice (a retry that did reach the table)
//! still counts once.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;

use chrono::{DateTime, Utc};

use super::number::E164;
use super::policy::DenyListService;

/// Most hits kept for another try.
pub const MAX_BACKLOG: usize = 1_000;

/// A contact's hit on an active entry, not yet counted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingHit {
    pub number: E164,
    pub contact_id: String,
    pub at: DateTime<Utc>,
}

/// What [`HitBacklog::count_all`] did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BacklogRun {
    /// Hits the store counted now (false for a contact counted before: not included).
    pub counted: usize,
    /// Hits that failed retryably and wait for the next run.
    pub waiting: usize,
    /// Hits dropped: rejected for good, or pushed out of a full backlog.
    pub dropped: usize,
}

/// Hits waiting to be counted (see the module docs).
#[derive(Debug, Default)]
pub struct HitBacklog {
    pending: Mutex<Vec<PendingHit>>,
    overflowed: AtomicUsize,
}

impl HitBacklog {
    /// Queue a hit for the next [`HitBacklog::count_all`].
    pub fn push(&self, hit: PendingHit) {
        let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
        if pending.len() >= MAX_BACKLOG {
            let oldest = pending.remove(0);
            tracing::error!(number = %oldest.number.masked(), contact_id = %oldest.contact_id, "deny-list hit backlog full: oldest hit dropped uncounted");
            self.overflowed.fetch_add(1, Ordering::Relaxed);
        }
        pending.push(hit);
    }

    /// Hits waiting.
    pub fn len(&self) -> usize {
        self.pending.lock().unwrap_or_else(|p| p.into_inner()).len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Count every waiting hit, in arrival order; retryable failures stay for the next run.
    pub async fn count_all(&self, service: &DenyListService) -> BacklogRun {
        self.count_within(service, None).await
    }

    /// [`HitBacklog::count_all`], starting no new count after `budget`: what is left waits for the
    /// next run. The Lambda bounds its work after a response so that a long backlog (after an
    /// outage) cannot run the invocation into its timeout.
    pub async fn count_within(
        &self,
        service: &DenyListService,
        budget: Option<std::time::Duration>,
    ) -> BacklogRun {
        let deadline = budget.map(|b| std::time::Instant::now() + b);
        let hits = std::mem::take(&mut *self.pending.lock().unwrap_or_else(|p| p.into_inner()));
        let mut run = BacklogRun {
            dropped: self.overflowed.swap(0, Ordering::Relaxed),
            ..BacklogRun::default()
        };
        let mut retry = Vec::new();
        let mut hits = hits.into_iter();
        while let Some(hit) = hits.next() {
            if deadline.is_some_and(|d| std::time::Instant::now() >= d) {
                retry.push(hit);
                retry.extend(hits.by_ref());
                break;
            }
            match service.count_hit(&hit).await {
                Ok(counted) => run.counted += usize::from(counted),
                Err(e) if e.retryable() => {
                    tracing::warn!(error = %e, number = %hit.number.masked(), contact_id = %hit.contact_id, "deny-list hit not counted yet: will retry after the next invocation");
                    retry.push(hit);
                }
                Err(e) => {
                    tracing::error!(error = %e, number = %hit.number.masked(), contact_id = %hit.contact_id, "deny-list hit could not be counted: dropped");
                    run.dropped += 1;
                }
            }
        }
        run.waiting = retry.len();
        if !retry.is_empty() {
            // Hits queued while this run was counting go after the older ones.
            let mut pending = self.pending.lock().unwrap_or_else(|p| p.into_inner());
            retry.append(&mut pending);
            let excess = retry.len().saturating_sub(MAX_BACKLOG);
            if excess > 0 {
                tracing::error!(
                    dropped = excess,
                    "deny-list hit backlog full: oldest hits dropped uncounted"
                );
                run.dropped += excess;
            }
            *pending = retry.split_off(excess);
        }
        run
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashSet;
    use std::sync::atomic::{AtomicBool, Ordering};

    use async_trait::async_trait;

    use super::*;
    use crate::deny_list::ports::{
        BatchOutcome, ContactControl, ContactInfo, DenyStore, StopOutcome,
    };
    use crate::deny_list::{DenyEntry, DenyListConfig};
    use crate::error::PortError;

    /// Counts hits once per contact; fails while `down` (retryably) or for `bad` contacts (for good).
    #[derive(Default)]
    struct Store {
        down: AtomicBool,
        counted: Mutex<HashSet<String>>,
    }

    #[async_trait]
    impl DenyStore for &'static Store {
        async fn get(&self, _: &E164) -> Result<Option<DenyEntry>, PortError> {
            Ok(None)
        }
        async fn put(&self, _: &DenyEntry) -> Result<(), PortError> {
            Ok(())
        }
        async fn remove(&self, _: &E164) -> Result<bool, PortError> {
            Ok(false)
        }
        async fn record_hit(
            &self,
            _: &E164,
            contact: &str,
            _: DateTime<Utc>,
        ) -> Result<bool, PortError> {
            if contact.starts_with("bad") {
                return Err(PortError::Rejected {
                    service: "test",
                    message: "validation".into(),
                });
            }
            if self.down.load(Ordering::SeqCst) {
                return Err(PortError::Throttled {
                    service: "test",
                    message: "slow down".into(),
                });
            }
            Ok(self.counted.lock().unwrap().insert(contact.to_owned()))
        }
        async fn list(&self) -> Result<Vec<DenyEntry>, PortError> {
            Ok(Vec::new())
        }
        async fn put_batch(&self, _: &[DenyEntry]) -> Result<BatchOutcome, PortError> {
            Ok(BatchOutcome::default())
        }
    }

    struct NoContacts;

    #[async_trait]
    impl ContactControl for NoContacts {
        async fn describe(&self, _: &str, _: &str) -> Result<Option<ContactInfo>, PortError> {
            Ok(None)
        }
        async fn stop(&self, _: &str, _: &str) -> Result<StopOutcome, PortError> {
            Ok(StopOutcome::AlreadyEnded)
        }
    }

    fn hit(contact: &str) -> PendingHit {
        PendingHit {
            number: "+14255550100".parse().unwrap(),
            contact_id: contact.into(),
            at: Utc::now(),
        }
    }

    #[tokio::test]
    async fn retryable_failures_wait_permanent_ones_are_dropped_repeats_count_once() {
        let store: &'static Store = Box::leak(Box::default());
        let service = DenyListService::new(
            Box::new(store),
            Box::new(NoContacts),
            DenyListConfig::default(),
        );
        let backlog = HitBacklog::default();
        assert_eq!(backlog.count_all(&service).await, BacklogRun::default());

        store.down.store(true, Ordering::SeqCst);
        backlog.push(hit("c1"));
        backlog.push(hit("bad-1"));
        let run = backlog.count_all(&service).await;
        assert_eq!(
            run,
            BacklogRun {
                counted: 0,
                waiting: 1,
                dropped: 1
            }
        );
        assert_eq!(backlog.len(), 1);

        store.down.store(false, Ordering::SeqCst);
        backlog.push(hit("c2"));
        backlog.push(hit("c1"));
        let run = backlog.count_all(&service).await;
        assert_eq!(
            run,
            BacklogRun {
                counted: 2,
                waiting: 0,
                dropped: 0
            },
            "c1 once, c2"
        );
        assert!(backlog.is_empty());
        assert_eq!(store.counted.lock().unwrap().len(), 2);
    }

    #[tokio::test]
    async fn a_spent_budget_leaves_the_rest_for_the_next_run() {
        let store: &'static Store = Box::leak(Box::default());
        let service = DenyListService::new(
            Box::new(store),
            Box::new(NoContacts),
            DenyListConfig::default(),
        );
        let backlog = HitBacklog::default();
        for i in 0..5 {
            backlog.push(hit(&format!("c{i}")));
        }
        let run = backlog
            .count_within(&service, Some(std::time::Duration::ZERO))
            .await;
        assert_eq!(
            run,
            BacklogRun {
                counted: 0,
                waiting: 5,
                dropped: 0
            }
        );
        assert_eq!(backlog.count_all(&service).await.counted, 5);
    }

    #[tokio::test]
    async fn a_full_backlog_drops_the_oldest_and_says_so() {
        let store: &'static Store = Box::leak(Box::default());
        let service = DenyListService::new(
            Box::new(store),
            Box::new(NoContacts),
            DenyListConfig::default(),
        );
        let backlog = HitBacklog::default();
        for i in 0..MAX_BACKLOG + 5 {
            backlog.push(hit(&format!("c{i}")));
        }
        assert_eq!(backlog.len(), MAX_BACKLOG);
        let run = backlog.count_all(&service).await;
        assert_eq!(
            run,
            BacklogRun {
                counted: MAX_BACKLOG,
                waiting: 0,
                dropped: 5
            }
        );
        assert!(
            !store.counted.lock().unwrap().contains("c0"),
            "the oldest went"
        );
    }
}
