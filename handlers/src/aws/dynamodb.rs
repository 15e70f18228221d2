//! The deny list in DynamoDB: [`DynamoDenyStore`] implements the core [`DenyStore`] port over the
//! `DenylistingTable` of the AWS reference design (the table name is configurable).
//!
//! # Item schema
//!
//! | Attribute         | Type | Meaning                                                             |
//! |-------------------|------|---------------------------------------------------------------------|
//! | `ContactNumber`   | S    | Partition key: the E.164 number (`+14255550100`).                   |
//! | `reason`          | S    | Why the number is listed.                                           |
//! | `addedBy`         | S    | Who listed it (agent, operator).                                    |
//! | `source`          | S    | `agent`, `cli` or `import`.                                         |
//! | `addedAt`         | S    | ISO-8601 UTC with milliseconds (`2025-06-10T12:00:00.000Z`).        |
//! | `expiresAt`       | N    | Epoch seconds; the table's TTL attribute. Absent = permanent.       |
//! | `hitCount`        | N    | Contacts counted against the entry (only ever changed with `ADD`).  |
//! | `lastHitAt`       | S    | ISO-8601 like `addedAt`; never moves backwards.                     |
//! | `hitContacts`     | SS   | Contact ids counted recently (idempotency, see below).              |
//! | `hitContactsPrev` | SS   | The previous generation of `hitContacts`.                           |
//!
//! Only `ContactNumber` is required: items written by the reference design or by hand hold nothing
//! else and are permanent entries. Unknown attributes are ignored, and a descriptive attribute of
//! the wrong type is read as absent (with a warning). An expired entry (`expiresAt` in the past)
//! is still returned by [`DenyStore::get`] and [`DenyStore::list`] until DynamoDB's TTL deletes it
//! (usually within a few days); the policy filters it with `DenyEntry::is_active`. Lookups and
//! scans are strongly consistent, so an entry is enforced as soon as `put` returns.
//!
//! # Writing entries
//!
//! [`DenyStore::put`] is one `UpdateItem` that `SET`s the entry's descriptive attributes and
//! `REMOVE`s those it does not have, so re-adding a number refreshes it without losing its
//! counters. It also sets `hitCount = if_not_exists(hitCount, 0)`: that never changes an existing
//! count, and guarantees that an entry without any descriptive attribute still creates its item
//! (whether an update made only of `REMOVE` actions creates an item is not documented).
//!
//! # Idempotent hit counting
//!
//! Amazon Connect and EventBridge deliver at least once, and the same contact is seen both by the
//! contact-flow check and by enforcement, so [`DenyStore::record_hit`] counts a contact at most
//! once. The contact id goes into a string set in the same atomic `UpdateItem` that increments
//! the counter, guarded by a condition:
//!
//! ```text
//! ADD hitCount :one, hitContacts :cidset  SET lastHitAt = :at
//! IF  attribute_exists(ContactNumber)
//!     AND NOT contains(hitContacts, :cid) AND NOT contains(hitContactsPrev, :cid)
//!     AND (attribute_not_exists(hitContacts) OR size(hitContacts) < :limit)
//!     AND (attribute_not_exists(lastHitAt) OR lastHitAt <= :at)
//! ```
//!
//! A failed condition on the first two lines means "already counted" or "entry gone" (`false`).
//! Nothing is ever read and written back: every variant of the update is atomic and carries the
//! "not counted yet" condition, so concurrent deliveries cannot double count or lose a count.
//!
//! *`lastHitAt` never moves backwards.* An update expression has no `max()`, so "set it only if
//! newer" cannot be a per-attribute choice inside the single call that also counts. The common
//! case (hits arrive in order) is the single call above; the `lastHitAt <= :at` term makes it fail
//! for an out-of-order hit (stored timestamps are fixed-width ISO-8601, so string order is time
//! order). The adapter then reads the item (consistently) to learn which guard failed and sends
//! the matching variant: the same counting update *without* `SET lastHitAt`, guarded by
//! `NOT (lastHitAt <= :at)` instead. Every variant is conditioned on the state it assumes, so a
//! concurrent change makes it fail and the adapter re-reads; after [`MAX_HIT_ATTEMPTS`] calls it
//! gives up with `PortError::Conflict`. A duplicate delivery costs one failed conditional write
//! plus one read.
//!
//! *Item size.* A DynamoDB item is limited to 400 KB and every write costs one WCU per KB of the
//! *whole* item, so the set of counted contacts must stay small. `hitContacts` holds at most
//! `limit` ids ([`DEFAULT_HIT_CONTACTS_LIMIT`] = 100, about 4 KB of 36-character contact ids).
//! When it is full, the next new contact rotates the generations in the same counting call
//! (`SET hitContactsPrev = hitContacts, hitContacts = :cidset`, guarded by
//! `size(hitContacts) >= :limit`), so the most recent `limit`..`2 × limit` contacts are always
//! remembered and an item never holds more than `2 × limit` ids (about 8 KB). Duplicate
//! deliveries arrive within minutes, so a contact is only counted twice if more than `limit`
//! other contacts hit the same number between its deliveries.
//!
//! # Batch import
//!
//! [`DenyStore::put_batch`] writes with `BatchWriteItem`, 25 items per request (the API's limit)
//! and up to [`IMPORT_CONCURRENCY`] requests in flight. Rows repeating a number are collapsed
//! first (the last row wins), because DynamoDB rejects a request with duplicate keys. Items the
//! service returns as `UnprocessedItems` (throttling) are sent again with exponential back-off
//! and jitter ([`BATCH_BASE_DELAY`] doubling up to [`BATCH_MAX_DELAY`]), at most
//! [`MAX_BATCH_ATTEMPTS`] requests per chunk; rows still unprocessed are reported in
//! [`BatchOutcome::failed`]. A chunk the service rejects as a whole (e.g. one oversized item) is
//! retried item by item so that only the bad rows are reported.
//!
//! `BatchWriteItem` has no conditions and no partial updates, so **an import replaces whole
//! items**: each row is the truth, its own `hitCount`/`lastHitAt` are written (an exported list
//! re-imports losslessly; a plain CSV row starts at 0) and the set of counted contacts is cleared.
//! Keeping live counters would need a read-then-write per row (racing with concurrent hits) or
//! one `UpdateItem` per row (25 times the requests); to refresh live entries while keeping their
//! counters, use `put` (the `add` command).
//!
//! # Errors
//!
//! SDK failures are classified by [`crate::aws::port_error`]: throttling and server failures are
//! retryable; a missing table is `PortError::NotFound` (`ResourceNotFoundException`), which is not.
//! Numbers are never logged in clear (see `connect_events_core::deny_list::mask`).

use std::collections::HashMap;
use std::str::FromStr;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use aws_config::SdkConfig;
use aws_sdk_dynamodb::error::BuildError;
use aws_sdk_dynamodb::operation::update_item::builders::UpdateItemFluentBuilder;
use aws_sdk_dynamodb::operation::update_item::UpdateItemError;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, AttributeValue, BillingMode, KeySchemaElement, KeyType, PutRequest,
    ReturnValue, ScalarAttributeType, TableStatus, TimeToLiveSpecification, TimeToLiveStatus,
    WriteRequest,
};
use aws_sdk_dynamodb::Client;
use chrono::{DateTime, SecondsFormat, Utc};
use connect_events_core::deny_list::{mask, BatchOutcome, DenyEntry, DenyStore, EntrySource, E164};
use connect_events_core::PortError;
use lambda_runtime::tracing;
use tokio::task::JoinSet;

use super::port_error;

/// Service name in errors.
const SERVICE: &str = "dynamodb";

/// The reference design's table name.
pub const DEFAULT_TABLE: &str = "DenylistingTable";

/// Attribute names of a `DenylistingTable` item.
pub mod attr {
    /// Partition key (S): the E.164 number.
    pub const CONTACT_NUMBER: &str = "ContactNumber";
    pub const REASON: &str = "reason";
    pub const ADDED_BY: &str = "addedBy";
    pub const SOURCE: &str = "source";
    pub const ADDED_AT: &str = "addedAt";
    /// The TTL attribute (N, epoch seconds).
    pub const EXPIRES_AT: &str = "expiresAt";
    pub const HIT_COUNT: &str = "hitCount";
    pub const LAST_HIT_AT: &str = "lastHitAt";
    /// Contact ids counted recently (SS).
    pub const HIT_CONTACTS: &str = "hitContacts";
    /// The previous generation of [`HIT_CONTACTS`] (SS).
    pub const HIT_CONTACTS_PREV: &str = "hitContactsPrev";
}

/// Default bound of the `hitContacts` set (see the module docs).
pub const DEFAULT_HIT_CONTACTS_LIMIT: usize = 100;

/// Most `UpdateItem` calls one `record_hit` makes before reporting a conflict.
pub const MAX_HIT_ATTEMPTS: usize = 5;

/// Items per `BatchWriteItem` request (the API's limit).
pub const BATCH_WRITE_MAX: usize = 25;

/// `BatchWriteItem` requests in flight during an import.
pub const IMPORT_CONCURRENCY: usize = 4;

/// Most `BatchWriteItem` requests per chunk of 25 (the first one plus retries).
pub const MAX_BATCH_ATTEMPTS: u32 = 8;

/// Back-off before the first retry of unprocessed items; doubles with every retry.
pub const BATCH_BASE_DELAY: Duration = Duration::from_millis(50);

/// Longest back-off between two retries of unprocessed items.
pub const BATCH_MAX_DELAY: Duration = Duration::from_secs(2);

/// How long [`DynamoDenyStore::ensure_table`] waits for a new table to become `ACTIVE`.
const TABLE_ACTIVE_TIMEOUT: Duration = Duration::from_secs(120);

/// Attributes read by `get` and `list` (everything but the sets of counted contacts).
const ENTRY_ATTRIBUTES: [&str; 8] = [
    attr::CONTACT_NUMBER,
    attr::REASON,
    attr::ADDED_BY,
    attr::SOURCE,
    attr::ADDED_AT,
    attr::EXPIRES_AT,
    attr::HIT_COUNT,
    attr::LAST_HIT_AT,
];

/// A DynamoDB item.
type Item = HashMap<String, AttributeValue>;

/// The deny list in a DynamoDB table (see the module docs for the item schema).
#[derive(Debug, Clone)]
pub struct DynamoDenyStore {
    client: Client,
    table: String,
    hit_contacts_limit: usize,
}

impl DynamoDenyStore {
    /// A store over `table` with a client built from `config`.
    pub fn new(config: &SdkConfig, table: impl Into<String>) -> Self {
        Self::from_client(Client::new(config), table)
    }

    /// A store over `table` using `client`.
    pub fn from_client(client: Client, table: impl Into<String>) -> Self {
        DynamoDenyStore {
            client,
            table: table.into(),
            hit_contacts_limit: DEFAULT_HIT_CONTACTS_LIMIT,
        }
    }

    /// Bound of the `hitContacts` set (at least 1; default [`DEFAULT_HIT_CONTACTS_LIMIT`]).
    pub fn with_hit_contacts_limit(mut self, limit: usize) -> Self {
        self.hit_contacts_limit = limit.max(1);
        self
    }

    /// The table name.
    pub fn table(&self) -> &str {
        &self.table
    }

    /// Create the table if it does not exist (on-demand capacity, key `ContactNumber` S), wait
    /// until it is `ACTIVE` and enable TTL on `expiresAt`. Idempotent, and an existing table needs
    /// only `DescribeTable`/`DescribeTimeToLive` permissions; meant for local runs and tests
    /// (production tables come from the infrastructure template).
    ///
    /// Fails with `PortError::Rejected` if the table exists with another key schema or with TTL
    /// on another attribute.
    pub async fn ensure_table(&self) -> Result<(), PortError> {
        let described = self
            .client
            .describe_table()
            .table_name(&self.table)
            .send()
            .await;
        if let Err(err) = described {
            let missing = err
                .as_service_error()
                .is_some_and(|e| e.is_resource_not_found_exception());
            if !missing {
                return Err(port_error(SERVICE, "DescribeTable", err));
            }
            self.create_table().await?;
        }
        self.wait_until_active().await?;
        self.enable_ttl().await
    }

    /// `CreateTable`; a table created concurrently (`ResourceInUseException`) is fine.
    async fn create_table(&self) -> Result<(), PortError> {
        let key = KeySchemaElement::builder()
            .attribute_name(attr::CONTACT_NUMBER)
            .key_type(KeyType::Hash)
            .build()
            .map_err(|e| build_error("CreateTable", e))?;
        let definition = AttributeDefinition::builder()
            .attribute_name(attr::CONTACT_NUMBER)
            .attribute_type(ScalarAttributeType::S)
            .build()
            .map_err(|e| build_error("CreateTable", e))?;
        let created = self
            .client
            .create_table()
            .table_name(&self.table)
            .billing_mode(BillingMode::PayPerRequest)
            .key_schema(key)
            .attribute_definitions(definition)
            .send()
            .await;
        match created {
            Ok(_) => Ok(()),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(|e| e.is_resource_in_use_exception()) =>
            {
                Ok(())
            }
            Err(err) => Err(port_error(SERVICE, "CreateTable", err)),
        }
    }

    /// Poll `DescribeTable` until the table is `ACTIVE`, checking its key schema.
    async fn wait_until_active(&self) -> Result<(), PortError> {
        let started = tokio::time::Instant::now();
        let mut delay = Duration::from_millis(100);
        loop {
            let out = self
                .client
                .describe_table()
                .table_name(&self.table)
                .send()
                .await
                .map_err(|e| port_error(SERVICE, "DescribeTable", e))?;
            let table = out.table();
            let keys = table.map(|t| t.key_schema()).unwrap_or_default();
            let key_ok = keys.len() == 1
                && keys[0].attribute_name() == attr::CONTACT_NUMBER
                && keys[0].key_type() == &KeyType::Hash;
            if !key_ok {
                return Err(PortError::Rejected {
                    service: SERVICE,
                    message: format!(
                        "table {} exists without the partition key {} (S) alone",
                        self.table,
                        attr::CONTACT_NUMBER
                    ),
                });
            }
            if table.and_then(|t| t.table_status()) == Some(&TableStatus::Active) {
                return Ok(());
            }
            if started.elapsed() > TABLE_ACTIVE_TIMEOUT {
                return Err(PortError::Unavailable {
                    service: SERVICE,
                    message: format!(
                        "table {} not ACTIVE after {}s",
                        self.table,
                        TABLE_ACTIVE_TIMEOUT.as_secs()
                    ),
                });
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(2));
        }
    }

    /// Enable TTL on `expiresAt` unless it is already enabled.
    async fn enable_ttl(&self) -> Result<(), PortError> {
        let out = self
            .client
            .describe_time_to_live()
            .table_name(&self.table)
            .send()
            .await
            .map_err(|e| port_error(SERVICE, "DescribeTimeToLive", e))?;
        let ttl = out.time_to_live_description();
        let status = ttl.and_then(|t| t.time_to_live_status());
        if matches!(
            status,
            Some(TimeToLiveStatus::Enabled | TimeToLiveStatus::Enabling)
        ) {
            let attribute = ttl.and_then(|t| t.attribute_name()).unwrap_or_default();
            if attribute == attr::EXPIRES_AT {
                return Ok(());
            }
            return Err(PortError::Rejected {
                service: SERVICE,
                message: format!(
                    "table {} has TTL on `{attribute}`, not on `{}`",
                    self.table,
                    attr::EXPIRES_AT
                ),
            });
        }
        let spec = TimeToLiveSpecification::builder()
            .enabled(true)
            .attribute_name(attr::EXPIRES_AT)
            .build()
            .map_err(|e| build_error("UpdateTimeToLive", e))?;
        self.client
            .update_time_to_live()
            .table_name(&self.table)
            .time_to_live_specification(spec)
            .send()
            .await
            .map_err(|e| port_error(SERVICE, "UpdateTimeToLive", e))?;
        Ok(())
    }

    /// An `UpdateItem` call on `number`'s item with `update`'s expressions.
    fn update_item(&self, number: &E164, update: Update) -> UpdateItemFluentBuilder {
        self.client
            .update_item()
            .table_name(&self.table)
            .key(attr::CONTACT_NUMBER, key_value(number))
            .update_expression(update.expression)
            .set_condition_expression(update.condition)
            .set_expression_attribute_names(non_empty(update.expr.names))
            .set_expression_attribute_values(non_empty(update.expr.values))
    }

    /// Send one variant of the counting update: `Ok(true)` = counted, `Ok(false)` = its condition
    /// failed.
    async fn try_hit(&self, number: &E164, update: Update) -> Result<bool, PortError> {
        match self.update_item(number, update).send().await {
            Ok(_) => Ok(true),
            Err(err)
                if err
                    .as_service_error()
                    .is_some_and(UpdateItemError::is_conditional_check_failed_exception) =>
            {
                Ok(false)
            }
            Err(err) => Err(port_error(SERVICE, "UpdateItem", err)),
        }
    }

    /// The item's hit bookkeeping (`None` when the entry is gone), read consistently.
    async fn hit_state(&self, number: &E164) -> Result<Option<Item>, PortError> {
        let mut expr = Expr::default();
        let projection = [
            attr::CONTACT_NUMBER,
            attr::HIT_CONTACTS,
            attr::HIT_CONTACTS_PREV,
            attr::LAST_HIT_AT,
        ]
        .map(|a| expr.name(a))
        .join(", ");
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(attr::CONTACT_NUMBER, key_value(number))
            .consistent_read(true)
            .projection_expression(projection)
            .set_expression_attribute_names(Some(expr.names))
            .send()
            .await
            .map_err(|e| port_error(SERVICE, "GetItem", e))?;
        Ok(out.item)
    }
}

#[async_trait]
impl DenyStore for DynamoDenyStore {
    async fn get(&self, number: &E164) -> Result<Option<DenyEntry>, PortError> {
        let (projection, names) = entry_projection();
        let out = self
            .client
            .get_item()
            .table_name(&self.table)
            .key(attr::CONTACT_NUMBER, key_value(number))
            .consistent_read(true)
            .projection_expression(projection)
            .set_expression_attribute_names(Some(names))
            .send()
            .await
            .map_err(|e| port_error(SERVICE, "GetItem", e))?;
        let Some(item) = out.item else {
            return Ok(None);
        };
        let decoded = item_to_entry(&item).map_err(|e| PortError::Rejected {
            service: SERVICE,
            message: format!("GetItem: table {}: {e}", self.table),
        })?;
        warn_malformed(&decoded);
        Ok(Some(decoded.entry))
    }

    async fn put(&self, entry: &DenyEntry) -> Result<(), PortError> {
        self.update_item(&entry.number, put_update(entry))
            .send()
            .await
            .map_err(|e| port_error(SERVICE, "UpdateItem", e))?;
        Ok(())
    }

    async fn remove(&self, number: &E164) -> Result<bool, PortError> {
        let out = self
            .client
            .delete_item()
            .table_name(&self.table)
            .key(attr::CONTACT_NUMBER, key_value(number))
            .return_values(ReturnValue::AllOld)
            .send()
            .await
            .map_err(|e| port_error(SERVICE, "DeleteItem", e))?;
        Ok(out.attributes.is_some_and(|a| !a.is_empty()))
    }

    async fn record_hit(
        &self,
        number: &E164,
        contact_id: &str,
        at: DateTime<Utc>,
    ) -> Result<bool, PortError> {
        if contact_id.is_empty() {
            return Err(PortError::Rejected {
                service: SERVICE,
                message: "record_hit: empty contact id".into(),
            });
        }
        let at = iso(at);
        let limit = self.hit_contacts_limit;
        // Fast path: hits usually arrive in order and the set is rarely full.
        if self
            .try_hit(
                number,
                hit_update(contact_id, &at, limit, HitPlan::IN_ORDER),
            )
            .await?
        {
            return Ok(true);
        }
        for _ in 1..MAX_HIT_ATTEMPTS {
            let Some(item) = self.hit_state(number).await? else {
                return Ok(false); // the entry is gone
            };
            let Some(plan) = plan_hit(&item, contact_id, &at, limit) else {
                return Ok(false); // already counted
            };
            if self
                .try_hit(number, hit_update(contact_id, &at, limit, plan))
                .await?
            {
                return Ok(true);
            }
        }
        Err(PortError::Conflict {
            service: SERVICE,
            message: format!(
                "UpdateItem: hit on {} still contended after {MAX_HIT_ATTEMPTS} attempts",
                number.masked()
            ),
        })
    }

    async fn list(&self) -> Result<Vec<DenyEntry>, PortError> {
        let (projection, names) = entry_projection();
        let mut pages = self
            .client
            .scan()
            .table_name(&self.table)
            .consistent_read(true)
            .projection_expression(projection)
            .set_expression_attribute_names(Some(names))
            .into_paginator()
            .send();
        let mut entries = Vec::new();
        while let Some(page) = pages
            .try_next()
            .await
            .map_err(|e| port_error(SERVICE, "Scan", e))?
        {
            for item in page.items.unwrap_or_default() {
                match item_to_entry(&item) {
                    Ok(decoded) => {
                        warn_malformed(&decoded);
                        entries.push(decoded.entry);
                    }
                    Err(e) => {
                        tracing::warn!(table = %self.table, error = %e, "skipping a deny-list item");
                    }
                }
            }
        }
        Ok(entries)
    }

    async fn put_batch(&self, entries: &[DenyEntry]) -> Result<BatchOutcome, PortError> {
        let rows = dedupe_last_wins(entries);
        let mut outcome = BatchOutcome::default();
        let mut tasks = JoinSet::new();
        for chunk in rows.chunks(BATCH_WRITE_MAX) {
            let chunk: Vec<(DenyEntry, usize)> = chunk
                .iter()
                .map(|(entry, rows)| ((*entry).clone(), *rows))
                .collect();
            tasks.spawn(write_chunk(self.client.clone(), self.table.clone(), chunk));
            if tasks.len() >= IMPORT_CONCURRENCY {
                join_one(&mut tasks, &mut outcome).await?;
            }
        }
        while !tasks.is_empty() {
            join_one(&mut tasks, &mut outcome).await?;
        }
        Ok(outcome)
    }
}

// ---------------------------------------------------------------------------------------------
// Item mapping
// ---------------------------------------------------------------------------------------------

/// Why an item is not a deny-list entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ItemError {
    #[error("item without a string `ContactNumber`")]
    MissingKey,
    /// Carries the key masked.
    #[error("`ContactNumber` {0} is not an E.164 number")]
    InvalidKey(String),
}

/// An entry read from an item, with the attributes that were present but unusable.
#[derive(Debug, Clone, PartialEq)]
struct Decoded {
    entry: DenyEntry,
    /// Attributes of the wrong type or format, read as absent.
    malformed: Vec<&'static str>,
}

/// The ISO-8601 form stored for timestamps: UTC, milliseconds, `Z` (fixed width, so string order
/// is time order).
fn iso(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn key_value(number: &E164) -> AttributeValue {
    AttributeValue::S(number.as_str().to_owned())
}

/// The descriptive attributes of an entry (`None` = absent), in schema order.
fn descriptive_attributes(entry: &DenyEntry) -> [(&'static str, Option<AttributeValue>); 5] {
    [
        (attr::REASON, entry.reason.clone().map(AttributeValue::S)),
        (
            attr::ADDED_BY,
            entry.added_by.clone().map(AttributeValue::S),
        ),
        (
            attr::SOURCE,
            entry
                .source
                .as_ref()
                .map(|s| AttributeValue::S(s.as_str().to_owned())),
        ),
        (
            attr::ADDED_AT,
            entry.added_at.map(|t| AttributeValue::S(iso(t))),
        ),
        (
            attr::EXPIRES_AT,
            entry.expires_at.map(|t| AttributeValue::N(t.to_string())),
        ),
    ]
}

/// The whole item for an entry (as an import writes it): key, descriptive attributes present,
/// `hitCount` and `lastHitAt`.
fn entry_to_item(entry: &DenyEntry) -> Item {
    let mut item = Item::new();
    item.insert(attr::CONTACT_NUMBER.into(), key_value(&entry.number));
    for (name, value) in descriptive_attributes(entry) {
        if let Some(value) = value {
            item.insert(name.into(), value);
        }
    }
    item.insert(
        attr::HIT_COUNT.into(),
        AttributeValue::N(entry.hit_count.to_string()),
    );
    if let Some(t) = entry.last_hit_at {
        item.insert(attr::LAST_HIT_AT.into(), AttributeValue::S(iso(t)));
    }
    item
}

/// The entry stored in an item. Missing attributes take their defaults, unknown ones are ignored,
/// unusable ones are read as absent and listed in [`Decoded::malformed`].
fn item_to_entry(item: &Item) -> Result<Decoded, ItemError> {
    let raw = match item.get(attr::CONTACT_NUMBER) {
        Some(AttributeValue::S(s)) => s,
        _ => return Err(ItemError::MissingKey),
    };
    let number = E164::from_str(raw).map_err(|_| ItemError::InvalidKey(mask(raw)))?;
    let mut malformed = Vec::new();
    let mut read = |name: &'static str, decode: fn(&AttributeValue) -> Option<Value>| {
        let value = decode(item.get(name)?);
        if value.is_none() {
            malformed.push(name);
        }
        value
    };
    let reason = read(attr::REASON, as_string).and_then(Value::string);
    let added_by = read(attr::ADDED_BY, as_string).and_then(Value::string);
    let source = read(attr::SOURCE, as_string)
        .and_then(Value::string)
        .map(|s| parse_source(&s));
    let added_at = read(attr::ADDED_AT, as_time).and_then(Value::time);
    let expires_at = read(attr::EXPIRES_AT, as_i64).and_then(Value::int);
    let hit_count = read(attr::HIT_COUNT, as_i64)
        .and_then(Value::int)
        .map_or(0, |n| u64::try_from(n).unwrap_or(0));
    let last_hit_at = read(attr::LAST_HIT_AT, as_time).and_then(Value::time);
    Ok(Decoded {
        entry: DenyEntry {
            number,
            reason,
            added_by,
            source,
            added_at,
            expires_at,
            hit_count,
            last_hit_at,
        },
        malformed,
    })
}

/// A decoded attribute value.
enum Value {
    String(String),
    Int(i64),
    Time(DateTime<Utc>),
}

impl Value {
    fn string(self) -> Option<String> {
        match self {
            Value::String(s) => Some(s),
            _ => None,
        }
    }

    fn int(self) -> Option<i64> {
        match self {
            Value::Int(n) => Some(n),
            _ => None,
        }
    }

    fn time(self) -> Option<DateTime<Utc>> {
        match self {
            Value::Time(t) => Some(t),
            _ => None,
        }
    }
}

fn as_string(value: &AttributeValue) -> Option<Value> {
    match value {
        AttributeValue::S(s) => Some(Value::String(s.clone())),
        _ => None,
    }
}

/// `agent`, `cli`, `import` (any case); anything else is [`EntrySource::Unknown`].
fn parse_source(text: &str) -> EntrySource {
    [EntrySource::Agent, EntrySource::Cli, EntrySource::Import]
        .into_iter()
        .find(|s| s.as_str().eq_ignore_ascii_case(text.trim()))
        .unwrap_or(EntrySource::Unknown)
}

/// A number attribute as an integer (fractions truncated, as DynamoDB's TTL does).
fn as_i64(value: &AttributeValue) -> Option<Value> {
    number(value).map(Value::Int)
}

fn number(value: &AttributeValue) -> Option<i64> {
    let AttributeValue::N(n) = value else {
        return None;
    };
    n.parse::<i64>().ok().or_else(|| {
        n.parse::<f64>()
            .ok()
            .filter(|f| f.is_finite() && f.abs() < 9.0e15)
            .map(|f| f.trunc() as i64)
    })
}

/// A timestamp: an RFC 3339 string (ours, or hand-written), or epoch seconds as a number.
fn as_time(value: &AttributeValue) -> Option<Value> {
    let time = match value {
        AttributeValue::S(s) => DateTime::parse_from_rfc3339(s.trim())
            .ok()
            .map(|t| t.with_timezone(&Utc)),
        AttributeValue::N(_) => number(value).and_then(|s| DateTime::from_timestamp(s, 0)),
        _ => None,
    };
    time.map(Value::Time)
}

fn warn_malformed(decoded: &Decoded) {
    if !decoded.malformed.is_empty() {
        tracing::warn!(
            number = %decoded.entry.number.masked(),
            attributes = ?decoded.malformed,
            "deny-list item has attributes of the wrong type or format; read as absent"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Expressions
// ---------------------------------------------------------------------------------------------

/// Placeholders of one request. Only what an expression uses is registered (DynamoDB rejects
/// unused names and values).
#[derive(Debug, Default)]
struct Expr {
    names: HashMap<String, String>,
    values: HashMap<String, AttributeValue>,
}

impl Expr {
    /// `#attribute`, for any attribute name (reserved words such as `source` included).
    fn name(&mut self, attribute: &str) -> String {
        let placeholder = format!("#{attribute}");
        self.names.insert(placeholder.clone(), attribute.to_owned());
        placeholder
    }

    /// `:label` bound to `value`.
    fn value(&mut self, label: &str, value: AttributeValue) -> String {
        let placeholder = format!(":{label}");
        self.values.insert(placeholder.clone(), value);
        placeholder
    }
}

/// One `UpdateItem`'s expressions.
#[derive(Debug)]
struct Update {
    expression: String,
    condition: Option<String>,
    expr: Expr,
}

fn non_empty<K, V>(map: HashMap<K, V>) -> Option<HashMap<K, V>> {
    (!map.is_empty()).then_some(map)
}

/// Projection of `get`/`list` with its names.
fn entry_projection() -> (String, HashMap<String, String>) {
    let mut expr = Expr::default();
    let projection = ENTRY_ATTRIBUTES.map(|a| expr.name(a)).join(", ");
    (projection, expr.names)
}

/// `put`: SET the descriptive attributes present, REMOVE the absent ones, initialize `hitCount`
/// without changing an existing one; `hitCount`/`lastHitAt`/hit sets are otherwise untouched.
fn put_update(entry: &DenyEntry) -> Update {
    let mut expr = Expr::default();
    let mut set = Vec::new();
    let mut remove = Vec::new();
    for (attribute, value) in descriptive_attributes(entry) {
        let name = expr.name(attribute);
        match value {
            Some(value) => {
                let value = expr.value(attribute, value);
                set.push(format!("{name} = {value}"));
            }
            None => remove.push(name),
        }
    }
    let hits = expr.name(attr::HIT_COUNT);
    let zero = expr.value("zero", AttributeValue::N("0".into()));
    set.push(format!("{hits} = if_not_exists({hits}, {zero})"));
    let mut expression = format!("SET {}", set.join(", "));
    if !remove.is_empty() {
        expression.push_str(&format!(" REMOVE {}", remove.join(", ")));
    }
    Update {
        expression,
        condition: None,
        expr,
    }
}

/// Which variant of the counting update to send.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct HitPlan {
    /// `hitContacts` is full: start a new generation.
    rotate: bool,
    /// The hit is not older than `lastHitAt`: set it.
    advance_last_hit: bool,
}

impl HitPlan {
    /// The common case, tried first.
    const IN_ORDER: HitPlan = HitPlan {
        rotate: false,
        advance_last_hit: true,
    };
}

/// The counting update for `plan`, conditioned on the contact not being counted yet and on the
/// state the plan assumes.
fn hit_update(contact_id: &str, at: &str, limit: usize, plan: HitPlan) -> Update {
    let mut expr = Expr::default();
    let key = expr.name(attr::CONTACT_NUMBER);
    let count = expr.name(attr::HIT_COUNT);
    let current = expr.name(attr::HIT_CONTACTS);
    let previous = expr.name(attr::HIT_CONTACTS_PREV);
    let last = expr.name(attr::LAST_HIT_AT);
    let one = expr.value("one", AttributeValue::N("1".into()));
    let ids = expr.value("cids", AttributeValue::Ss(vec![contact_id.to_owned()]));
    let id = expr.value("cid", AttributeValue::S(contact_id.to_owned()));
    let limit = expr.value("limit", AttributeValue::N(limit.to_string()));

    let mut add = vec![format!("{count} {one}")];
    let mut set = Vec::new();
    let mut condition = vec![
        format!("attribute_exists({key})"),
        format!("NOT contains({current}, {id})"),
        format!("NOT contains({previous}, {id})"),
    ];
    if plan.rotate {
        set.push(format!("{previous} = {current}, {current} = {ids}"));
        condition.push(format!("size({current}) >= {limit}"));
    } else {
        add.push(format!("{current} {ids}"));
        condition.push(format!(
            "(attribute_not_exists({current}) OR size({current}) < {limit})"
        ));
    }
    if plan.advance_last_hit {
        let at = expr.value("at", AttributeValue::S(at.to_owned()));
        set.push(format!("{last} = {at}"));
        condition.push(format!("(attribute_not_exists({last}) OR {last} <= {at})"));
    } else {
        let at = expr.value("at", AttributeValue::S(at.to_owned()));
        condition.push(format!("attribute_exists({last}) AND NOT ({last} <= {at})"));
    }
    let mut expression = format!("ADD {}", add.join(", "));
    if !set.is_empty() {
        expression.push_str(&format!(" SET {}", set.join(", ")));
    }
    Update {
        expression,
        condition: Some(condition.join(" AND ")),
        expr,
    }
}

/// The variant that matches an item's hit bookkeeping, or `None` when the contact was already
/// counted. Mirrors DynamoDB's comparisons: strings compare by bytes, other types never compare
/// as `<=`.
fn plan_hit(item: &Item, contact_id: &str, at: &str, limit: usize) -> Option<HitPlan> {
    let set = |name| match item.get(name) {
        Some(AttributeValue::Ss(ids)) => ids.as_slice(),
        _ => &[],
    };
    let (current, previous) = (set(attr::HIT_CONTACTS), set(attr::HIT_CONTACTS_PREV));
    if current.iter().chain(previous).any(|c| c == contact_id) {
        return None;
    }
    let advance_last_hit = match item.get(attr::LAST_HIT_AT) {
        None => true,
        Some(AttributeValue::S(last)) => last.as_str() <= at,
        Some(_) => false,
    };
    Some(HitPlan {
        rotate: current.len() >= limit,
        advance_last_hit,
    })
}

// ---------------------------------------------------------------------------------------------
// Batch import
// ---------------------------------------------------------------------------------------------

/// Distinct entries with how many input rows each stands for; the last row of a number wins and
/// takes the position of its first row.
fn dedupe_last_wins(entries: &[DenyEntry]) -> Vec<(&DenyEntry, usize)> {
    let mut position: HashMap<&str, usize> = HashMap::with_capacity(entries.len());
    let mut rows: Vec<(&DenyEntry, usize)> = Vec::with_capacity(entries.len());
    for entry in entries {
        match position.get(entry.number.as_str()) {
            Some(&i) => {
                rows[i].0 = entry;
                rows[i].1 += 1;
            }
            None => {
                position.insert(entry.number.as_str(), rows.len());
                rows.push((entry, 1));
            }
        }
    }
    rows
}

/// Wait for one chunk and add its result; a chunk's fatal error ends the import.
async fn join_one(
    tasks: &mut JoinSet<Result<BatchOutcome, PortError>>,
    outcome: &mut BatchOutcome,
) -> Result<(), PortError> {
    let Some(joined) = tasks.join_next().await else {
        return Ok(());
    };
    let chunk = joined.map_err(|e| PortError::Unavailable {
        service: SERVICE,
        message: format!("BatchWriteItem task failed: {e}"),
    })??;
    outcome.written += chunk.written;
    outcome.failed.extend(chunk.failed);
    Ok(())
}

/// Back-off before retry `attempt` (1-based): exponential, capped, with jitter in the upper half.
fn backoff(attempt: u32) -> Duration {
    let full = BATCH_BASE_DELAY
        .saturating_mul(1 << attempt.saturating_sub(1).min(16))
        .min(BATCH_MAX_DELAY);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    let half = full / 2;
    half + half.mul_f64(f64::from(nanos % 1000) / 1000.0)
}

fn build_error(operation: &str, err: BuildError) -> PortError {
    PortError::Rejected {
        service: SERVICE,
        message: format!("{operation}: {err}"),
    }
}

/// The key of a put request (to map unprocessed items back to numbers).
fn request_key(request: &WriteRequest) -> Option<&str> {
    match request.put_request()?.item().get(attr::CONTACT_NUMBER)? {
        AttributeValue::S(s) => Some(s),
        _ => None,
    }
}

/// Write one chunk (≤ 25 distinct entries, each with its input row count) with `BatchWriteItem`,
/// retrying unprocessed items. `written` counts input rows; a missing table is an error.
async fn write_chunk(
    client: Client,
    table: String,
    chunk: Vec<(DenyEntry, usize)>,
) -> Result<BatchOutcome, PortError> {
    let mut numbers: HashMap<String, (E164, usize)> = HashMap::with_capacity(chunk.len());
    let mut pending = Vec::with_capacity(chunk.len());
    for (entry, rows) in &chunk {
        let put = PutRequest::builder()
            .set_item(Some(entry_to_item(entry)))
            .build()
            .map_err(|e| build_error("BatchWriteItem", e))?;
        pending.push(WriteRequest::builder().put_request(put).build());
        numbers.insert(
            entry.number.as_str().to_owned(),
            (entry.number.clone(), *rows),
        );
    }
    let mut outcome = BatchOutcome::default();
    let written = |requests: &[WriteRequest], outcome: &mut BatchOutcome| {
        for key in requests.iter().filter_map(request_key) {
            if let Some((_, rows)) = numbers.get(key) {
                outcome.written += rows;
            }
        }
    };
    let mut reason = String::new();
    for attempt in 1..=MAX_BATCH_ATTEMPTS {
        if attempt > 1 {
            tokio::time::sleep(backoff(attempt - 1)).await;
        }
        let sent = client
            .batch_write_item()
            .request_items(&table, pending.clone())
            .send()
            .await;
        match sent {
            Ok(out) => {
                let unprocessed = out
                    .unprocessed_items
                    .and_then(|mut by_table| by_table.remove(&table))
                    .unwrap_or_default();
                let done: Vec<WriteRequest> = pending
                    .into_iter()
                    .filter(|w| {
                        let key = request_key(w);
                        !unprocessed.iter().any(|u| request_key(u) == key)
                    })
                    .collect();
                written(&done, &mut outcome);
                pending = unprocessed;
                reason = format!(
                    "still unprocessed after {attempt} BatchWriteItem attempts (throughput exceeded)"
                );
            }
            Err(err) => match port_error(SERVICE, "BatchWriteItem", err) {
                e if e.retryable() => reason = e.to_string(),
                e @ PortError::NotFound { .. } => return Err(e),
                e => {
                    // The whole request was rejected (e.g. one item too large): isolate the rows.
                    tracing::warn!(error = %e, rows = pending.len(), "BatchWriteItem rejected; writing the rows one by one");
                    for request in pending {
                        let Some(put) = request.put_request else {
                            continue;
                        };
                        let key = put.item.get(attr::CONTACT_NUMBER).cloned();
                        let result = client
                            .put_item()
                            .table_name(&table)
                            .set_item(Some(put.item))
                            .send()
                            .await;
                        let Some((number, rows)) = key
                            .as_ref()
                            .and_then(|k| k.as_s().ok())
                            .and_then(|k| numbers.get(k))
                        else {
                            continue;
                        };
                        match result {
                            Ok(_) => outcome.written += rows,
                            Err(err) => match port_error(SERVICE, "PutItem", err) {
                                e @ PortError::NotFound { .. } => return Err(e),
                                e => outcome.failed.push((number.clone(), e.to_string())),
                            },
                        }
                    }
                    return Ok(outcome);
                }
            },
        }
        if pending.is_empty() {
            return Ok(outcome);
        }
    }
    for key in pending.iter().filter_map(request_key) {
        if let Some((number, _)) = numbers.get(key) {
            outcome.failed.push((number.clone(), reason.clone()));
        }
    }
    if !outcome.failed.is_empty() {
        tracing::warn!(rows = outcome.failed.len(), reason = %reason, "deny-list import rows not written");
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn number(s: &str) -> E164 {
        s.parse().expect("valid E.164")
    }

    fn time(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s)
            .expect("RFC 3339")
            .with_timezone(&Utc)
    }

    fn full_entry() -> DenyEntry {
        DenyEntry {
            number: number("+14255550100"),
            reason: Some("fraud".into()),
            added_by: Some("agent-7".into()),
            source: Some(EntrySource::Cli),
            added_at: Some(time("2025-06-10T12:00:00.123Z")),
            expires_at: Some(1_760_000_000),
            hit_count: 3,
            last_hit_at: Some(time("2025-06-11T08:30:00.5Z")),
        }
    }

    fn s(v: &str) -> AttributeValue {
        AttributeValue::S(v.into())
    }

    fn n(v: &str) -> AttributeValue {
        AttributeValue::N(v.into())
    }

    #[test]
    fn entry_to_item_uses_the_table_schema() {
        let item = entry_to_item(&full_entry());
        let expected: Item = [
            ("ContactNumber", s("+14255550100")),
            ("reason", s("fraud")),
            ("addedBy", s("agent-7")),
            ("source", s("cli")),
            ("addedAt", s("2025-06-10T12:00:00.123Z")),
            ("expiresAt", n("1760000000")),
            ("hitCount", n("3")),
            ("lastHitAt", s("2025-06-11T08:30:00.500Z")),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        assert_eq!(item, expected);
    }

    #[test]
    fn item_round_trips() {
        let entry = full_entry();
        let decoded = item_to_entry(&entry_to_item(&entry)).unwrap();
        assert_eq!(decoded.entry, entry);
        assert!(decoded.malformed.is_empty());

        let bare = DenyEntry::new(number("+14255550100"));
        let item = entry_to_item(&bare);
        assert_eq!(item.len(), 2, "{item:?}"); // key and hitCount
        assert_eq!(item_to_entry(&item).unwrap().entry, bare);
    }

    #[test]
    fn seed_items_are_permanent_entries() {
        let item: Item = [("ContactNumber".to_owned(), s("+14255550100"))].into();
        let decoded = item_to_entry(&item).unwrap();
        assert_eq!(decoded.entry, DenyEntry::new(number("+14255550100")));
        assert_eq!(decoded.entry.expires_at, None);
        assert!(decoded.malformed.is_empty());
    }

    #[test]
    fn unknown_and_malformed_attributes_are_tolerated() {
        let item: Item = [
            ("ContactNumber", s("+14255550100")),
            ("note", s("from the reference design")),
            ("reason", n("42")),
            ("source", s("Import")),
            ("addedAt", s("yesterday")),
            ("expiresAt", s("soon")),
            ("hitCount", s("many")),
            ("lastHitAt", n("1749556800.9")),
            ("hitContacts", AttributeValue::Ss(vec!["c1".into()])),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect();
        let decoded = item_to_entry(&item).unwrap();
        let entry = decoded.entry;
        assert_eq!(entry.reason, None);
        assert_eq!(entry.source, Some(EntrySource::Import));
        assert_eq!(entry.added_at, None);
        assert_eq!(entry.expires_at, None);
        assert_eq!(entry.hit_count, 0);
        assert_eq!(entry.last_hit_at, Some(time("2025-06-10T12:00:00Z")));
        assert_eq!(
            decoded.malformed,
            ["reason", "addedAt", "expiresAt", "hitCount"]
        );

        let other: Item = [
            ("ContactNumber".to_owned(), s("+14255550100")),
            ("source".to_owned(), s("reference-design")),
            ("expiresAt".to_owned(), n("1.7e9")),
            ("addedAt".to_owned(), s("2025-06-10T14:00:00+02:00")),
        ]
        .into();
        let entry = item_to_entry(&other).unwrap().entry;
        assert_eq!(entry.source, Some(EntrySource::Unknown));
        assert_eq!(entry.expires_at, Some(1_700_000_000));
        assert_eq!(entry.added_at, Some(time("2025-06-10T12:00:00Z")));
    }

    #[test]
    fn invalid_keys_are_errors_without_the_number() {
        let missing: Item = [("reason".to_owned(), s("x"))].into();
        assert_eq!(item_to_entry(&missing), Err(ItemError::MissingKey));
        let numeric: Item = [("ContactNumber".to_owned(), n("14255550100"))].into();
        assert_eq!(item_to_entry(&numeric), Err(ItemError::MissingKey));
        let spaced: Item = [("ContactNumber".to_owned(), s("+1 425 555 0100"))].into();
        let err = item_to_entry(&spaced).unwrap_err();
        assert!(matches!(err, ItemError::InvalidKey(_)));
        assert!(!err.to_string().contains("5550"), "{err}");
    }

    #[test]
    fn put_sets_present_and_removes_absent_attributes() {
        let mut entry = DenyEntry::new(number("+14255550100"));
        entry.reason = Some("spam".into());
        entry.source = Some(EntrySource::Agent);
        let update = put_update(&entry);
        assert_eq!(
            update.expression,
            "SET #reason = :reason, #source = :source, #hitCount = if_not_exists(#hitCount, :zero) \
             REMOVE #addedBy, #addedAt, #expiresAt"
        );
        assert_eq!(update.condition, None);
        assert_eq!(update.expr.values.len(), 3);
        assert_eq!(update.expr.names.len(), 6);
        assert!(!update.expression.contains("lastHitAt"));
        assert!(!update.expression.contains("hitContacts"));

        let full = put_update(&full_entry());
        assert!(!full.expression.contains("REMOVE"), "{}", full.expression);
    }

    #[test]
    fn hit_updates_always_guard_against_double_counting() {
        let at = "2025-06-10T12:00:00.000Z";
        for rotate in [false, true] {
            for advance_last_hit in [false, true] {
                let plan = HitPlan {
                    rotate,
                    advance_last_hit,
                };
                let update = hit_update("c-1", at, 100, plan);
                let condition = update.condition.unwrap();
                assert!(condition.starts_with(
                    "attribute_exists(#ContactNumber) AND NOT contains(#hitContacts, :cid) \
                     AND NOT contains(#hitContactsPrev, :cid)"
                ));
                assert!(update.expression.starts_with("ADD #hitCount :one"));
                assert_eq!(
                    update.expression.contains("#lastHitAt = :at"),
                    advance_last_hit
                );
                assert_eq!(
                    update
                        .expression
                        .contains("#hitContactsPrev = #hitContacts"),
                    rotate
                );
                // Every placeholder registered is used.
                for name in update.expr.names.keys() {
                    assert!(
                        update.expression.contains(name.as_str())
                            || condition.contains(name.as_str())
                    );
                }
                for value in update.expr.values.keys() {
                    assert!(
                        update.expression.contains(value.as_str())
                            || condition.contains(value.as_str()),
                        "{value} unused"
                    );
                }
            }
        }
        let fast = hit_update("c-1", at, 100, HitPlan::IN_ORDER);
        assert_eq!(
            fast.expression,
            "ADD #hitCount :one, #hitContacts :cids SET #lastHitAt = :at"
        );
    }

    #[test]
    fn plans_follow_the_stored_state() {
        let at = "2025-06-10T12:00:00.000Z";
        let item = |pairs: Vec<(&str, AttributeValue)>| -> Item {
            pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
        };
        let ids = |v: &[&str]| AttributeValue::Ss(v.iter().map(|s| s.to_string()).collect());
        let bare = item(vec![("ContactNumber", s("+14255550100"))]);
        assert_eq!(plan_hit(&bare, "c", at, 2), Some(HitPlan::IN_ORDER));
        let counted = item(vec![("hitContacts", ids(&["a", "c"]))]);
        assert_eq!(plan_hit(&counted, "c", at, 2), None);
        let counted_before = item(vec![("hitContactsPrev", ids(&["c"]))]);
        assert_eq!(plan_hit(&counted_before, "c", at, 2), None);
        let full_and_newer = item(vec![
            ("hitContacts", ids(&["a", "b"])),
            ("lastHitAt", s("2025-06-10T12:00:00.001Z")),
        ]);
        assert_eq!(
            plan_hit(&full_and_newer, "c", at, 2),
            Some(HitPlan {
                rotate: true,
                advance_last_hit: false
            })
        );
        let same_time = item(vec![("lastHitAt", s(at))]);
        assert_eq!(plan_hit(&same_time, "c", at, 2), Some(HitPlan::IN_ORDER));
        let foreign_type = item(vec![("lastHitAt", n("1749556800"))]);
        assert!(
            !plan_hit(&foreign_type, "c", at, 2)
                .unwrap()
                .advance_last_hit
        );
    }

    #[test]
    fn iso_timestamps_are_fixed_width_and_ordered() {
        let a = iso(time("2025-06-10T12:00:00Z"));
        let b = iso(time("2025-06-10T12:00:00.01Z"));
        assert_eq!(a, "2025-06-10T12:00:00.000Z");
        assert_eq!(b, "2025-06-10T12:00:00.010Z");
        assert!(a < b);
    }

    #[test]
    fn duplicates_collapse_to_the_last_row() {
        let mut first = DenyEntry::new(number("+14255550100"));
        first.reason = Some("first".into());
        let other = DenyEntry::new(number("+442079460018"));
        let mut last = first.clone();
        last.reason = Some("last".into());
        let entries = [first, other, last];
        let rows = dedupe_last_wins(&entries);
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].0.reason.as_deref(), Some("last"));
        assert_eq!(rows[0].1, 2);
        assert_eq!(rows[1].1, 1);
    }

    #[test]
    fn backoff_grows_and_is_bounded() {
        for attempt in 1..=MAX_BATCH_ATTEMPTS + 5 {
            let full = BATCH_BASE_DELAY
                .saturating_mul(1 << (attempt - 1).min(16))
                .min(BATCH_MAX_DELAY);
            let delay = backoff(attempt);
            assert!(delay >= full / 2 && delay <= full, "{attempt}: {delay:?}");
        }
        assert!(backoff(1) <= BATCH_BASE_DELAY);
    }
}
