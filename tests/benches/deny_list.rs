//! Deny-list benchmark: warm `check` latency on the embedded store and on DynamoDB (moto server over
//! HTTP), and import throughput of 10,000 rows (BatchWriteItem with retries).
//!
//! `cargo bench -p connect-events-tests --bench deny_list` (needs the venv of `tests/run.sh`).
//! Prints a Markdown table. Latency through moto measures our code plus a local HTTP round trip and
//! moto's Python request handling; DynamoDB in a Region answers single-digit-millisecond GetItem.

use std::time::{Duration, Instant};

use async_trait::async_trait;
use chrono::Utc;
use connect_events_core::deny_list::{
    ContactControl, ContactInfo, DenyEntry, DenyListConfig, DenyListService, DenyStore,
    StopOutcome, E164,
};
use connect_events_core::local::LocalDenyStore;
use connect_events_core::PortError;
use connect_events_handlers::aws::dynamodb::DynamoDenyStore;
use connect_events_tests::harness;

const ROWS: usize = 10_000;
const CHECKS: usize = 2_000;

/// The checks do not use contact control.
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

/// Valid US numbers +1 206 555 0100.. (the 555-01xx range is reserved for fiction; use 2065550000+i
/// spread over exchanges that libphonenumber accepts as valid).
fn number(i: usize) -> String {
    format!("+1206{:03}{:04}", 200 + (i / 10_000) % 700, i % 10_000)
}

fn entries() -> Vec<DenyEntry> {
    (0..ROWS)
        .map(|i| {
            let mut e = DenyEntry::new(number(i).parse::<E164>().expect("valid bench number"));
            e.reason = Some("bench".into());
            e
        })
        .collect()
}

struct Stats {
    median: Duration,
    p95: Duration,
    p99: Duration,
}

fn stats(mut samples: Vec<Duration>) -> Stats {
    samples.sort();
    let at = |q: f64| samples[((samples.len() as f64 - 1.0) * q).round() as usize];
    Stats {
        median: at(0.5),
        p95: at(0.95),
        p99: at(0.99),
    }
}

async fn checks(service: &DenyListService, n: usize) -> (Stats, usize) {
    let mut samples = Vec::with_capacity(n);
    let mut listed = 0;
    // Warm up: first calls open connections and fill caches.
    for i in 0..20 {
        let _ = service.check(&number(i), Utc::now()).await;
    }
    for i in 0..n {
        // Half the lookups hit listed numbers, half miss.
        let raw = if i % 2 == 0 {
            number((i * 7919) % ROWS)
        } else {
            number(ROWS + i)
        };
        let t = Instant::now();
        let r = service.check(&raw, Utc::now()).await.expect("check");
        samples.push(t.elapsed());
        listed += usize::from(r.listed);
    }
    (stats(samples), listed)
}

fn us(d: Duration) -> String {
    format!("{:.0} µs", d.as_secs_f64() * 1e6)
}

#[tokio::main]
async fn main() {
    let entries = entries();
    let mut rows = Vec::new();

    // Embedded store.
    let dir = std::env::temp_dir().join(format!("deny-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let store = LocalDenyStore::new(dir.join("denylist.json"));
    let t = Instant::now();
    store.put_batch(&entries).await.expect("embedded import");
    let import = t.elapsed();
    let service = DenyListService::new(
        Box::new(store),
        Box::new(NoContacts),
        DenyListConfig::default(),
    );
    let (s, listed) = checks(&service, CHECKS).await;
    assert_eq!(listed, CHECKS / 2);
    rows.push(("embedded (denylist.json)", import, s, CHECKS));
    let _ = std::fs::remove_dir_all(&dir);

    // DynamoDB over HTTP (moto server).
    let moto = harness::moto().await;
    let config = moto.sdk_config().await;
    let table = harness::unique("bench-deny");
    let store = DynamoDenyStore::new(&config, table.clone());
    store.ensure_table().await.expect("create table");
    let t = Instant::now();
    let outcome = store.put_batch(&entries).await.expect("import");
    let import = t.elapsed();
    assert_eq!(outcome.written, ROWS, "failed: {:?}", outcome.failed.len());
    let service = DenyListService::new(
        Box::new(store),
        Box::new(NoContacts),
        DenyListConfig::default(),
    );
    let (s, listed) = checks(&service, CHECKS / 4).await;
    assert_eq!(listed, CHECKS / 8);
    rows.push(("DynamoDB API on moto server (HTTP)", import, s, CHECKS / 4));

    println!("| store | import {ROWS} rows | rows/s | warm check median | p95 | p99 | checks |");
    println!("| --- | --- | --- | --- | --- | --- | --- |");
    for (name, import, s, n) in rows {
        println!(
            "| {name} | {:.2} s | {:.0} | {} | {} | {} | {n} |",
            import.as_secs_f64(),
            ROWS as f64 / import.as_secs_f64(),
            us(s.median),
            us(s.p95),
            us(s.p99)
        );
    }
}
