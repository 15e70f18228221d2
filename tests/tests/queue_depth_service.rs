//! The queue-depth capability end to end over HTTP: the real policy ([`QueueDepthService`]) wired
//! with the real adapters, [`ConnectAdapter`] (unmodified `aws-sdk-connect`) against the wire-level
//! [`ConnectFake`] and [`OpenSearchIndex`] against osmem-server.
//!
//! Covered: a refresh of more than 100 queues (chunking, paging, one document per queue and
//! channel, queue names from `ListQueues`), convergence of duplicated and out-of-order events and
//! snapshots (a stale snapshot never overwrites a newer one), coalescing across containers through
//! the real slot lease (one refresh per slot, one trailing refresh), throttling (retried by the SDK;
//! persistent throttling is a retryable `Throttled` error that leaves the index untouched), and that
//! nothing deletes the index or the leases.
//!
//! Every test starts its own Connect fake and uses its own index names ([`unique`]).

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use connect_events_core::event::{format_millis, parse_timestamp, Event};
use connect_events_core::queue_depth::{
    QueueDepthConfig, QueueDepthDoc, QueueDepthIndex, QueueDepthOutcome, QueueDepthService,
    QueueRef, Trigger,
};
use connect_events_core::HandlerError;
use connect_events_handlers::aws::connect::{ConnectAdapter, MAX_QUEUES_PER_REQUEST};
use connect_events_handlers::aws::opensearch::{OpenSearchIndex, LEASE_SUFFIX};
use connect_events_tests::connect_fake::{
    instance_arn, queue_arn, ConnectFake, FakeMetrics, ACCOUNT_ID, REGION,
};
use connect_events_tests::harness::{osmem, unique};
use connect_events_tests::seed::{queue_id, standard_queues};
use opensearch::indices::IndicesExistsParts;
use serde_json::json;

const INSTANCE: &str = "8f2c6d1e-4b7a-4e39-9c5d-2a1f0b3e7d64";
const METRICS_OP: &str = "GetCurrentMetricData";
const CHANNELS: [&str; 3] = ["VOICE", "CHAT", "TASK"];
/// 2025-06-10T14:00:00.000Z in epoch milliseconds: every `now` and snapshot is an offset from it.
const BASE_MS: i64 = 1_749_564_000_000;

/// `2025-06-10T14:mm:ss.fffZ`, `offset_ms` (< 1 h) after [`BASE_MS`]: the policy's millisecond format.
fn iso(offset_ms: i64) -> String {
    assert!(
        (0..3_600_000).contains(&offset_ms),
        "offset {offset_ms} ms out of range"
    );
    format!(
        "2025-06-10T14:{:02}:{:02}.{:03}Z",
        offset_ms / 60_000,
        offset_ms / 1000 % 60,
        offset_ms % 1000
    )
}

/// The moment `offset_ms` after [`BASE_MS`], as the policy's `DateTime<Utc>` (a macro, because this
/// crate does not depend on `chrono` and so cannot name the type).
macro_rules! time {
    ($offset_ms:expr) => {
        parse_timestamp(&iso($offset_ms))
            .ok()
            .flatten()
            .expect("a valid timestamp")
    };
}

/// Fixes the fake's `DataSnapshotTime` at `offset_ms` (as an epoch-seconds double, like the wire).
fn set_snapshot(fake: &ConnectFake, offset_ms: i64) {
    fake.set_snapshot_time((BASE_MS + offset_ms) as f64 / 1000.0);
}

/// Adds `n` STANDARD queues `q-000`… named `Queue 000`…, plus one AGENT queue that must be ignored.
fn add_queues(fake: &ConnectFake, n: usize) -> Vec<QueueRef> {
    fake.add_queue(INSTANCE, "agent-queue-1", None, "AGENT");
    standard_queues(fake, INSTANCE, n)
}

/// The metrics the test believes the fake holds, per (queue id, channel); absent = idle.
type Figures = HashMap<(String, String), FakeMetrics>;

fn set_figures(fake: &ConnectFake, figures: &Figures) {
    for ((queue, channel), m) in figures {
        fake.set_metrics(INSTANCE, queue, channel, *m);
    }
}

/// Distinct, recognisable figures for one snapshot (`generation`) of every queue on VOICE and CHAT.
fn figures(queues: &[QueueRef], generation: u32) -> Figures {
    let mut out = Figures::new();
    for (i, q) in queues.iter().enumerate() {
        let i = i as u32;
        for (c, channel) in ["VOICE", "CHAT"].into_iter().enumerate() {
            let c = c as u32;
            out.insert(
                (q.id.clone(), channel.to_string()),
                FakeMetrics {
                    contacts_in_queue: generation * 1000 + i * 2 + c,
                    contacts_scheduled: (i + c) % 3,
                    oldest_contact_age_secs: Some(f64::from(i) + 0.5 + f64::from(generation)),
                    agents_online: 10 + c + generation,
                    agents_available: (i + generation) % 5,
                },
            );
        }
    }
    out
}

/// A document with the write's metadata (`refreshedAt`, `trigger`) blanked out, to compare figures.
fn figures_of(doc: &QueueDepthDoc) -> QueueDepthDoc {
    QueueDepthDoc {
        refreshed_at: String::new(),
        trigger: Trigger::new("", None),
        ..doc.clone()
    }
}

/// The documents (figures only) one refresh of `queues` must produce from `figures` at `snapshot_ms`:
/// three channels per queue, a pair without metrics at zero.
fn expected_docs(
    queues: &[QueueRef],
    figures: &Figures,
    snapshot_ms: i64,
) -> BTreeMap<String, QueueDepthDoc> {
    let mut docs = BTreeMap::new();
    for q in queues {
        for channel in CHANNELS {
            let m = figures
                .get(&(q.id.clone(), channel.to_string()))
                .copied()
                .unwrap_or_default();
            let doc = QueueDepthDoc {
                instance_id: INSTANCE.to_string(),
                queue_id: q.id.clone(),
                queue_arn: Some(queue_arn(INSTANCE, &q.id, "STANDARD")),
                queue_name: q.name.clone(),
                channel: channel.to_string(),
                contacts_in_queue: u64::from(m.contacts_in_queue),
                contacts_scheduled: u64::from(m.contacts_scheduled),
                queue_depth: u64::from(m.contacts_in_queue) + u64::from(m.contacts_scheduled),
                oldest_contact_age_seconds: m.oldest_contact_age_secs,
                agents_online: Some(u64::from(m.agents_online)),
                agents_available: Some(u64::from(m.agents_available)),
                snapshot_time: iso(snapshot_ms),
                refreshed_at: String::new(),
                trigger: Trigger::new("", None),
            };
            docs.insert(doc.id(), doc);
        }
    }
    docs
}

/// A contact event of the instance for `queue`.
fn contact_event(kind: &str, contact_id: &str, queue: &str, offset_ms: i64) -> Event {
    let at = iso(offset_ms);
    let mut detail = json!({
        "eventType": kind,
        "contactId": contact_id,
        "channel": "VOICE",
        "instanceArn": instance_arn(INSTANCE),
        "initiationMethod": "INBOUND",
        "initiationTimestamp": at,
        "queueInfo": {
            "queueArn": queue_arn(INSTANCE, queue, "STANDARD"),
            "queueType": "STANDARD",
            "enqueueTimestamp": at,
        },
    });
    if kind == "DISCONNECTED" {
        detail["disconnectTimestamp"] = json!(at);
    }
    Event::from_value(json!({
        "version": "0",
        "id": format!("{contact_id}-{kind}"),
        "detail-type": "Amazon Connect Contact Event",
        "source": "aws.connect",
        "account": ACCOUNT_ID,
        "time": at,
        "region": REGION,
        "resources": [instance_arn(INSTANCE)],
        "detail": detail,
    }))
    .unwrap_or_else(|e| panic!("test event {contact_id}/{kind}: {e}"))
}

/// One Lambda container: the policy over its own adapters (own SDK client, own queue cache, own
/// `ensure_ready`), sharing the fake and the OpenSearch index `index` with the others.
async fn container(fake: &ConnectFake, index: &str) -> QueueDepthService {
    container_with_interval(fake, index, 1000).await
}

/// A container whose `QUEUE_DEPTH_MIN_INTERVAL_MS` is `interval_ms`.
async fn container_with_interval(
    fake: &ConnectFake,
    index: &str,
    interval_ms: i64,
) -> QueueDepthService {
    QueueDepthService::new(
        Box::new(ConnectAdapter::from_client(fake.client().await)),
        Box::new(OpenSearchIndex::new(osmem().await.client(), index)),
        QueueDepthConfig {
            min_interval: chrono::Duration::milliseconds(interval_ms),
            ..QueueDepthConfig::default()
        },
    )
}

async fn documents(service: &QueueDepthService) -> BTreeMap<String, QueueDepthDoc> {
    let docs = service
        .index()
        .documents()
        .await
        .unwrap_or_else(|e| panic!("documents: {e}"));
    docs.into_iter().map(|d| (d.id(), d)).collect()
}

fn figures_only(docs: &BTreeMap<String, QueueDepthDoc>) -> BTreeMap<String, QueueDepthDoc> {
    docs.iter()
        .map(|(id, d)| (id.clone(), figures_of(d)))
        .collect()
}

/// `(api_calls, written, stale_skipped, snapshot time in ms format)` of a `Refreshed` outcome;
/// panics otherwise.
fn refreshed(
    outcome: Result<QueueDepthOutcome, HandlerError>,
    what: &str,
) -> (u32, usize, usize, String) {
    match outcome {
        Ok(QueueDepthOutcome::Refreshed {
            instance_id,
            api_calls,
            written,
            stale_skipped,
            snapshot_time,
        }) => {
            assert_eq!(instance_id, INSTANCE, "{what}");
            (
                api_calls,
                written,
                stale_skipped,
                format_millis(&snapshot_time),
            )
        }
        Ok(other) => panic!("{what}: expected Refreshed, got {other:?}"),
        Err(e) => panic!("{what}: {e}"),
    }
}

/// Nothing deleted the index: it and its lease index exist, `ensure_ready` run twice by two fresh
/// "containers" keeps every document, and the lease still remembers `claimed`, the last slot won.
async fn assert_index_kept(
    name: &str,
    expected: &BTreeMap<String, QueueDepthDoc>,
    claimed: Option<i64>,
) {
    let server = osmem().await;
    for round in 0..2 {
        let fresh = OpenSearchIndex::new(server.client(), name);
        for call in 0..2 {
            fresh
                .ensure_ready()
                .await
                .unwrap_or_else(|e| panic!("ensure_ready {round}/{call} on {name}: {e}"));
        }
        let docs: BTreeMap<String, QueueDepthDoc> = fresh
            .documents()
            .await
            .unwrap_or_else(|e| panic!("documents of {name}: {e}"))
            .into_iter()
            .map(|d| (d.id(), d))
            .collect();
        assert_eq!(
            docs, *expected,
            "ensure_ready (round {round}) changed {name}"
        );
        if let Some(slot) = claimed {
            let replayed = fresh
                .try_claim(INSTANCE, slot)
                .await
                .unwrap_or_else(|e| panic!("try_claim on {name}: {e}"));
            assert!(
                !replayed,
                "slot {slot} was claimed again: the lease index of {name} lost its lease"
            );
        }
    }
    let client = server.client();
    for index in [name.to_string(), format!("{name}{LEASE_SUFFIX}")] {
        let response = client
            .indices()
            .exists(IndicesExistsParts::Index(&[index.as_str()]))
            .send()
            .await
            .expect("HEAD index");
        assert_eq!(
            response.status_code().as_u16(),
            200,
            "{index} no longer exists"
        );
    }
}

// ---------------------------------------------------------------------------------------------------
// More than 100 queues: chunking, paging, one document per queue and channel
// ---------------------------------------------------------------------------------------------------

#[tokio::test]
async fn refresh_of_130_queues_chunks_pages_and_writes_every_queue_and_channel() {
    const QUEUES: usize = 130;
    let fake = ConnectFake::start();
    let queues = add_queues(&fake, QUEUES);
    let figures = figures(&queues, 1);
    set_figures(&fake, &figures);
    let snapshot_ms = 42_412;
    set_snapshot(&fake, snapshot_ms);
    let name = unique("qd-svc-130");
    let service = container(&fake, &name).await;
    fake.reset_counters();

    let now = time!(43_000);
    let (api_calls, written, stale_skipped, snapshot_time) = refreshed(
        service
            .refresh(INSTANCE, Trigger::new("manual", None), now)
            .await,
        "refresh",
    );

    // 130 queues = 2 chunks (100 + 30); 3 channels each = 300 rows (3 pages of 100) + 90 rows (1 page).
    let requests = fake.requests(METRICS_OP);
    let chunk_sizes: Vec<usize> = requests
        .iter()
        .map(|r| r["Filters"]["Queues"].as_array().map_or(0, |q| q.len()))
        .collect();
    assert_eq!(
        chunk_sizes,
        vec![
            MAX_QUEUES_PER_REQUEST,
            MAX_QUEUES_PER_REQUEST,
            MAX_QUEUES_PER_REQUEST,
            30
        ],
        "one request per page, the same filter on every page of a chunk"
    );
    let tokens: Vec<bool> = requests
        .iter()
        .map(|r| r.get("NextToken").is_some())
        .collect();
    assert_eq!(
        tokens,
        vec![false, true, true, false],
        "paging with NextToken"
    );
    assert_eq!(api_calls, 4);
    assert_eq!(api_calls as usize, fake.calls(METRICS_OP));
    assert_eq!(fake.calls("ListQueues"), 1);
    let asked: Vec<String> = requests
        .iter()
        .filter(|r| r.get("NextToken").is_none())
        .flat_map(|r| {
            r["Filters"]["Queues"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|q| q.as_str().map(str::to_string))
        .collect();
    let ids: Vec<String> = queues.iter().map(|q| q.id.clone()).collect();
    assert_eq!(
        asked, ids,
        "every STANDARD queue once, the AGENT queue never"
    );

    assert_eq!(written, QUEUES * CHANNELS.len());
    assert_eq!(stale_skipped, 0);
    assert_eq!(snapshot_time, iso(snapshot_ms));

    let docs = documents(&service).await;
    assert_eq!(docs.len(), QUEUES * CHANNELS.len());
    assert_eq!(
        figures_only(&docs),
        expected_docs(&queues, &figures, snapshot_ms)
    );
    for doc in docs.values() {
        assert_eq!(doc.refreshed_at, format_millis(&now));
        assert_eq!(doc.trigger, Trigger::new("manual", None));
        assert!(doc
            .queue_name
            .as_deref()
            .is_some_and(|n| n.starts_with("Queue ")));
        if doc.channel == "TASK" {
            assert_eq!(doc.queue_depth, 0, "no TASK metrics: zeros ({doc:?})");
        }
    }
    let sample = &docs[&format!("{INSTANCE}:q-129:CHAT")];
    assert_eq!(sample.queue_name.as_deref(), Some("Queue 129"));
    assert_eq!(sample.contacts_in_queue, 1000 + 129 * 2 + 1);

    assert_index_kept(&name, &docs, None).await;
}

// ---------------------------------------------------------------------------------------------------
// Duplicated and out-of-order events and snapshots converge
// ---------------------------------------------------------------------------------------------------

/// One delivery of the convergence scenario: which event, which snapshot the fake serves, and the
/// 1 s slot (`now` = slot seconds after the base) the invocation runs in.
struct Delivery {
    event: usize,
    snapshot: usize,
    slot: i64,
}

#[tokio::test]
async fn duplicated_and_out_of_order_events_converge_and_stale_snapshots_never_win() {
    let fake = ConnectFake::start();
    let queues = add_queues(&fake, 3);
    let per_refresh = queues.len() * CHANNELS.len();

    // Three snapshots of the contact centre, oldest first. In the newest one q-000 VOICE emptied and
    // q-002 got TASK contacts.
    let mut snapshots: Vec<(i64, Figures)> = vec![
        (10_101, figures(&queues, 1)),
        (20_202, figures(&queues, 2)),
        (30_303, figures(&queues, 3)),
    ];
    snapshots[2]
        .1
        .insert((queue_id(0), "VOICE".to_string()), FakeMetrics::default());
    snapshots[2].1.insert(
        (queue_id(2), "TASK".to_string()),
        FakeMetrics {
            contacts_in_queue: 7,
            ..FakeMetrics::default()
        },
    );
    // Every (queue, channel) the scenario ever sets, so that switching snapshots resets them all.
    let keys: Vec<(String, String)> = snapshots
        .iter()
        .flat_map(|(_, f)| f.keys().cloned())
        .collect();

    // The events behind the snapshots, in the order they happened.
    let events = [
        contact_event("QUEUED", "c-1", "q-000", 10_000),
        contact_event("CONNECTED_TO_AGENT", "c-1", "q-000", 20_000),
        contact_event("DISCONNECTED", "c-1", "q-000", 30_000),
    ];

    // Two delivery orders, both with duplicates and an older snapshot after a newer one.
    let orders: [Vec<Delivery>; 2] = [
        vec![
            Delivery {
                event: 1,
                snapshot: 1,
                slot: 100,
            },
            Delivery {
                event: 0,
                snapshot: 0,
                slot: 101,
            }, // older snapshot after a newer one
            Delivery {
                event: 2,
                snapshot: 2,
                slot: 102,
            },
            Delivery {
                event: 2,
                snapshot: 2,
                slot: 102,
            }, // duplicate in the same slot: coalesced
            Delivery {
                event: 2,
                snapshot: 2,
                slot: 103,
            }, // duplicate later: same snapshot, stale
            Delivery {
                event: 0,
                snapshot: 0,
                slot: 104,
            }, // late duplicate of the oldest
        ],
        vec![
            Delivery {
                event: 2,
                snapshot: 2,
                slot: 200,
            },
            Delivery {
                event: 0,
                snapshot: 0,
                slot: 201,
            },
            Delivery {
                event: 1,
                snapshot: 1,
                slot: 202,
            },
            Delivery {
                event: 1,
                snapshot: 1,
                slot: 203,
            },
            Delivery {
                event: 2,
                snapshot: 2,
                slot: 204,
            },
        ],
    ];

    let expected = expected_docs(&queues, &snapshots[2].1, snapshots[2].0);
    let mut finals = Vec::new();
    for (o, order) in orders.iter().enumerate() {
        let name = unique(&format!("qd-svc-converge-{o}"));
        let service = container(&fake, &name).await;
        let mut newest: Option<usize> = None;
        let mut last_slot = None;
        let mut stale_total = 0;
        for (d, delivery) in order.iter().enumerate() {
            let what = format!("order {o}, delivery {d}");
            let (snapshot_ms, figures) = &snapshots[delivery.snapshot];
            for key in &keys {
                let m = figures.get(key).copied().unwrap_or_default();
                fake.set_metrics(INSTANCE, &key.0, &key.1, m);
            }
            set_snapshot(&fake, *snapshot_ms);
            let now = time!(delivery.slot * 1000 + 250);
            let outcome = service.on_event(&events[delivery.event], now).await;
            if last_slot == Some(delivery.slot) {
                match outcome {
                    Ok(QueueDepthOutcome::Coalesced { retry_at, .. }) => {
                        assert_eq!(retry_at, time!((delivery.slot + 1) * 1000), "{what}");
                    }
                    other => {
                        panic!("{what}: a second delivery in one slot must coalesce: {other:?}")
                    }
                }
                continue;
            }
            last_slot = Some(delivery.slot);
            let (_, written, stale_skipped, snapshot_time) = refreshed(outcome, &what);
            assert_eq!(snapshot_time, iso(*snapshot_ms), "{what}");
            assert_eq!(written + stale_skipped, per_refresh, "{what}");
            if newest.is_some_and(|n| n >= delivery.snapshot) {
                assert_eq!(written, 0, "{what}: a stale or equal snapshot was written");
                stale_total += stale_skipped;
            } else {
                assert_eq!(stale_skipped, 0, "{what}: a newer snapshot was skipped");
                newest = Some(delivery.snapshot);
            }
            // After every delivery the index holds the newest snapshot seen so far.
            let (newest_ms, newest_figures) = &snapshots[newest.unwrap_or_default()];
            assert_eq!(
                figures_only(&documents(&service).await),
                expected_docs(&queues, newest_figures, *newest_ms),
                "{what}"
            );
        }
        let stale_deliveries = if o == 0 { 3 } else { 4 };
        assert_eq!(stale_total, stale_deliveries * per_refresh, "order {o}");

        let docs = documents(&service).await;
        assert_eq!(figures_only(&docs), expected, "order {o}");
        let emptied = &docs[&format!("{INSTANCE}:q-000:VOICE")];
        assert_eq!(
            (emptied.contacts_in_queue, emptied.queue_depth),
            (0, 0),
            "a queue that emptied keeps no stale depth"
        );
        assert_eq!(docs[&format!("{INSTANCE}:q-002:TASK")].queue_depth, 7);
        // The newest snapshot came from the DISCONNECTED event, whatever the order.
        for doc in docs.values() {
            assert_eq!(
                doc.trigger,
                Trigger::new("DISCONNECTED", Some("c-1".into()))
            );
        }
        let last = order.iter().map(|d| d.slot).max().unwrap_or_default();
        assert_index_kept(&name, &docs, Some(BASE_MS + last * 1000)).await;
        finals.push(figures_only(&docs));
    }
    assert_eq!(finals[0], finals[1], "both delivery orders converge");
}

// ---------------------------------------------------------------------------------------------------
// Coalescing across containers through the real lease
// ---------------------------------------------------------------------------------------------------

#[tokio::test]
async fn concurrent_containers_coalesce_to_one_refresh_per_slot_and_one_trailing_refresh() {
    const CONTAINERS: usize = 20;
    let fake = ConnectFake::start();
    let queues = add_queues(&fake, 4);
    set_figures(&fake, &figures(&queues, 1));
    set_snapshot(&fake, 500_100);
    let name = unique("qd-svc-coalesce");
    // Create the indices once, as a deployed function would have.
    OpenSearchIndex::new(osmem().await.client(), &name)
        .ensure_ready()
        .await
        .expect("ensure_ready");
    let mut services = Vec::new();
    for _ in 0..CONTAINERS {
        services.push(Arc::new(container(&fake, &name).await));
    }
    fake.reset_counters();

    // 20 events in 20 containers at the same moment.
    let now = time!(500_250);
    let slot = services[0].slot(now);
    let mut tasks = tokio::task::JoinSet::new();
    for (i, service) in services.iter().enumerate() {
        let service = service.clone();
        let event = contact_event("QUEUED", &format!("c-{i:02}"), &queue_id(i % 4), 500_000);
        tasks.spawn(async move { (i, service.on_event(&event, now).await) });
    }
    let mut winners = Vec::new();
    let mut losers = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let (i, outcome) = joined.expect("on_event task");
        match outcome {
            Ok(QueueDepthOutcome::Refreshed {
                api_calls, written, ..
            }) => {
                assert_eq!((api_calls, written), (1, 12), "container {i}");
                winners.push(i);
            }
            Ok(QueueDepthOutcome::Coalesced {
                instance_id,
                retry_at,
                trigger,
            }) => {
                assert_eq!(instance_id, INSTANCE);
                assert_eq!(retry_at, time!(501_000), "the start of the next slot");
                assert_eq!(trigger, Trigger::new("QUEUED", Some(format!("c-{i:02}"))));
                losers.push((i, retry_at, trigger));
            }
            other => panic!("container {i}: {other:?}"),
        }
    }
    assert_eq!(winners.len(), 1, "exactly one winner per slot: {winners:?}");
    assert_eq!(losers.len(), CONTAINERS - 1);
    assert_eq!(fake.calls(METRICS_OP), 1, "one metrics call for 20 events");
    assert_eq!(fake.calls("ListQueues"), 1, "only the winner lists queues");
    let first = documents(&services[0]).await;
    assert_eq!(first.len(), 12);
    assert!(first
        .values()
        .all(|d| d.trigger.kind == "QUEUED" && d.snapshot_time == iso(500_100)));

    // The contact centre moves on; the 19 coalesced invocations wake at retry_at together.
    let newer = figures(&queues, 2);
    set_figures(&fake, &newer);
    set_snapshot(&fake, 501_010);
    let mut tasks = tokio::task::JoinSet::new();
    for (i, retry_at, trigger) in losers {
        let service = services[i].clone();
        tasks.spawn(async move { (i, service.on_retry(INSTANCE, trigger, retry_at).await) });
    }
    let mut trailing = Vec::new();
    while let Some(joined) = tasks.join_next().await {
        let (i, outcome) = joined.expect("on_retry task");
        match outcome {
            Ok(QueueDepthOutcome::Refreshed {
                written,
                stale_skipped,
                snapshot_time,
                ..
            }) => {
                assert_eq!((written, stale_skipped), (12, 0), "container {i}");
                assert_eq!(snapshot_time, time!(501_010));
                trailing.push(i);
            }
            Ok(QueueDepthOutcome::Coalesced { retry_at, .. }) => {
                assert_eq!(retry_at, time!(502_000), "container {i}");
            }
            other => panic!("container {i}: {other:?}"),
        }
    }
    assert_eq!(
        trailing.len(),
        1,
        "exactly one trailing refresh: {trailing:?}"
    );
    assert_eq!(
        fake.calls(METRICS_OP),
        2,
        "the initial and the trailing refresh"
    );
    let docs = documents(&services[0]).await;
    assert_eq!(figures_only(&docs), expected_docs(&queues, &newer, 501_010));
    let winner = format!("c-{:02}", trailing[0]);
    assert!(
        docs.values()
            .all(|d| d.trigger == Trigger::new("trailing", Some(winner.clone()))),
        "the trailing refresh names the contact it covers"
    );

    // A late duplicate retry of the same slot changes nothing.
    let late = services[1]
        .on_retry(INSTANCE, Trigger::new("QUEUED", None), time!(501_000))
        .await;
    assert!(
        matches!(late, Ok(QueueDepthOutcome::Coalesced { .. })),
        "{late:?}"
    );
    assert_eq!(fake.calls(METRICS_OP), 2);
    assert_index_kept(&name, &docs, Some(slot + 1000)).await;
}

// ---------------------------------------------------------------------------------------------------
// Throttling
// ---------------------------------------------------------------------------------------------------

#[tokio::test]
async fn throttling_is_retried_and_persistent_throttling_leaves_the_index_untouched() {
    let fake = ConnectFake::start();
    let queues = add_queues(&fake, 3);
    let first = figures(&queues, 1);
    set_figures(&fake, &first);
    set_snapshot(&fake, 70_007);
    let name = unique("qd-svc-throttle");
    let service = container(&fake, &name).await;
    fake.reset_counters();

    // Two 429s, then success: the SDK retries (3 attempts), the policy sees one logical call.
    fake.inject(METRICS_OP, 429, "ThrottlingException", 2);
    let event = contact_event("QUEUED", "c-throttled", "q-001", 70_000);
    let (api_calls, written, _, snapshot_time) = refreshed(
        service.on_event(&event, time!(70_500)).await,
        "retried refresh",
    );
    assert_eq!(api_calls, 1);
    assert_eq!(
        fake.calls(METRICS_OP),
        3,
        "2 throttled attempts + 1 success"
    );
    assert_eq!(written, 9);
    assert_eq!(snapshot_time, iso(70_007));
    let before = documents(&service).await;
    assert_eq!(
        figures_only(&before),
        expected_docs(&queues, &first, 70_007)
    );

    // Throttled on every attempt: a retryable `Throttled` error; nothing written.
    set_figures(&fake, &figures(&queues, 2));
    set_snapshot(&fake, 71_007);
    fake.inject(METRICS_OP, 429, "ThrottlingException", 10);
    let calls = fake.calls(METRICS_OP);
    let error = match service.on_event(&event, time!(71_500)).await {
        Err(e) => e,
        Ok(outcome) => panic!("persistent throttling must fail, got {outcome:?}"),
    };
    assert!(error.retryable(), "{error}");
    assert_eq!(error.error_type(), "Throttled", "{error}");
    assert_eq!(fake.calls(METRICS_OP) - calls, 3, "the SDK's 3 attempts");
    assert_eq!(documents(&service).await, before, "the index is untouched");
    fake.clear_faults();

    // Once Connect answers again, the next slot refreshes.
    let (_, written, _, _) = refreshed(
        service.on_event(&event, time!(72_500)).await,
        "refresh after throttling",
    );
    assert_eq!(written, 9);
    let after = documents(&service).await;
    assert_eq!(
        figures_only(&after),
        expected_docs(&queues, &figures(&queues, 2), 71_007)
    );
    assert_index_kept(&name, &after, Some(BASE_MS + 72_000)).await;
}

// ---------------------------------------------------------------------------------------------------
// Other instances and events
// ---------------------------------------------------------------------------------------------------

#[tokio::test]
async fn an_instance_connect_does_not_know_is_an_error_that_writes_nothing() {
    const UNKNOWN: &str = "00000000-0000-4000-8000-000000000000";
    let fake = ConnectFake::start();
    add_queues(&fake, 2);
    let name = unique("qd-svc-unknown");
    let service = container(&fake, &name).await;
    let event = Event::from_value(json!({
        "version": "0",
        "id": "e-unknown",
        "detail-type": "Amazon Connect Contact Event",
        "source": "aws.connect",
        "time": "2025-06-10T14:00:00Z",
        "detail": {
            "eventType": "QUEUED",
            "contactId": "c-unknown",
            "instanceArn": instance_arn(UNKNOWN),
        },
    }))
    .expect("event");
    let error = match service.on_event(&event, time!(1_000)).await {
        Err(e) => e,
        Ok(outcome) => panic!("an unknown instance must fail, got {outcome:?}"),
    };
    assert_eq!(error.error_type(), "NotFound", "{error}");
    assert!(!error.retryable());
    assert!(documents(&service).await.is_empty());
    // The failed refresh still used its slot (the claim comes first): later events of that slot
    // coalesce and their trailing refresh claims the next one.
    let slot = service.slot(time!(1_000));
    assert_eq!(service.index().try_claim(UNKNOWN, slot).await, Ok(false));
    assert_eq!(service.index().try_claim(UNKNOWN, slot + 1).await, Ok(true));
    assert_index_kept(&name, &BTreeMap::new(), None).await;
}

// ---------------------------------------------------------------------------------------------------
// Changing QUEUE_DEPTH_MIN_INTERVAL_MS with live leases
// ---------------------------------------------------------------------------------------------------

/// Events every 500 ms from `from_ms` to `to_ms` (exclusive) into `service`; returns the offsets
/// (ms) at which a refresh ran (the others coalesced).
async fn drive(service: &QueueDepthService, queue: &str, from_ms: i64, to_ms: i64) -> Vec<i64> {
    let mut refreshed = Vec::new();
    let mut t = from_ms;
    while t < to_ms {
        let event = contact_event("QUEUED", &format!("c-{t}"), queue, t);
        match service.on_event(&event, time!(t)).await {
            Ok(QueueDepthOutcome::Refreshed { .. }) => refreshed.push(t),
            Ok(QueueDepthOutcome::Coalesced { .. }) => {}
            other => panic!("event at +{t} ms: {other:?}"),
        }
        t += 500;
    }
    refreshed
}

#[tokio::test]
async fn raising_and_lowering_the_interval_with_live_leases_keeps_refreshing_at_the_new_rate() {
    let fake = ConnectFake::start();
    let queues = add_queues(&fake, 2);
    set_figures(&fake, &figures(&queues, 1));
    set_snapshot(&fake, 1_000);
    let name = unique("qd-svc-interval");
    let queue = queue_id(0);

    // Seconds 0-10 at the default 1 s interval: a refresh every second.
    let one_s = container_with_interval(&fake, &name, 1_000).await;
    let before = drive(&one_s, &queue, 100, 10_100).await;
    assert_eq!(before.len(), 10, "1 s interval: {before:?}");

    // The stack is redeployed with a 5 s interval while the 1 s lease is live: refreshes go on,
    // one per 5 s (a slot-number version made every later claim lose, for years).
    let five_s = container_with_interval(&fake, &name, 5_000).await;
    let raised = drive(&five_s, &queue, 10_100, 40_100).await;
    assert_eq!(
        raised,
        vec![10_100, 15_100, 20_100, 25_100, 30_100, 35_100],
        "5 s interval after 1 s: one refresh per 5 s slot"
    );

    // Lowered back to 1 s: the next 1 s slot after the last 5 s claim wins, then every second.
    let lowered = drive(&one_s, &queue, 40_100, 50_100).await;
    assert_eq!(lowered.len(), 10, "1 s interval after 5 s: {lowered:?}");
    assert_eq!(
        lowered[0], 40_100,
        "the first 1 s slot after the 5 s claim wins"
    );

    // A CLI with a 2 s interval against the same lease (replay --backend aws) refreshes once per
    // 2 s slot and does not block the stack's claims afterwards.
    let cli = container_with_interval(&fake, &name, 2_000).await;
    let cli_runs = drive(&cli, &queue, 50_100, 54_100).await;
    assert_eq!(
        cli_runs,
        vec![50_100, 52_100],
        "2 s slots after the 1 s claim of 49 s"
    );
    let stack_again = drive(&one_s, &queue, 54_100, 56_100).await;
    assert_eq!(
        stack_again.len(),
        2,
        "the stack goes on after the CLI: {stack_again:?}"
    );
}
