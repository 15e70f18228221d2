//! What reading one contact's flow logs costs, as traffic grows (harness = false).
//!
//! ```text
//! cargo bench -p connect-events-tests --bench flow_log_cost
//! ```
//!
//! For 1,000 and 10,000 contacts per hour, the bench fills a CloudWatch Logs group on moto with an
//! hour of flow logs (12 entries per contact over its 3 minutes, ~400 bytes each, contacts evenly
//! spread), then reads 20 contacts from the middle of the hour through the real adapter
//! (`CloudWatchFlowLogs`) with the archiver's window (`initiationTimestamp − 5 min` …
//! `disconnectTimestamp + 15 min`), once per strategy, behind a proxy that counts the API calls.
//!
//! Per archived contact it prints: API calls, log events returned to the function, and log events in
//! the window — what the service reads for the query. Logs Insights bills those bytes ($0.005 per GB
//! scanned), so its cost per contact grows with total traffic; `FilterLogEvents` with the contact id
//! as a term pattern returns only the contact's events and is not billed per byte scanned. (moto
//! answers FilterLogEvents in one page; CloudWatch Logs may page through a large window with empty
//! pages, so the real call count can be higher at high volume.)

use std::process::ExitCode;

use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use chrono::{DateTime, Duration, TimeZone, Utc};
use connect_events_core::flow_logs::{FlowLogQuery, FlowLogSource};
use connect_events_handlers::aws::logs::{CloudWatchFlowLogs, LogStrategy};
use connect_events_tests::fault_proxy::FaultProxy;
use connect_events_tests::harness::{local_sdk_config, moto, unique};

const RATES: [usize; 2] = [1_000, 10_000];
const ENTRIES_PER_CONTACT: usize = 12;
const SAMPLED: usize = 20;
/// The archiver's default margins (`FlowLogConfig`).
const BEFORE_MIN: i64 = 5;
const AFTER_MIN: i64 = 15;

fn main() -> ExitCode {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(run())
}

async fn run() -> ExitCode {
    let moto = moto().await;
    let proxy = FaultProxy::start(moto.endpoint());
    let config = local_sdk_config(proxy.endpoint(), 3).await;
    let logs = aws_sdk_cloudwatchlogs::Client::new(&local_sdk_config(moto.endpoint(), 3).await);
    println!(
        "| contacts/h | strategy | API calls / contact | events returned / contact | events in the window (read by the service) / contact | Insights GB scanned per 1,000 archived contacts |"
    );
    println!("|---|---|---|---|---|---|");
    for rate in RATES {
        let group = format!("/aws/connect/{}", unique("cost"));
        logs.create_log_group()
            .log_group_name(&group)
            .send()
            .await
            .expect("CreateLogGroup");
        logs.create_log_stream()
            .log_group_name(&group)
            .log_stream_name("flows")
            .send()
            .await
            .expect("CreateLogStream");
        let start = Utc::now() - Duration::hours(2);
        let contacts = contacts(rate, start);
        let mut events: Vec<(i64, String)> = contacts
            .iter()
            .flat_map(|c| c.lines.iter().cloned())
            .collect();
        events.sort();
        let bytes_per_event =
            events.iter().map(|(_, m)| m.len() + 26).sum::<usize>() as f64 / events.len() as f64;
        for batch in events.chunks(2_000) {
            let input: Vec<InputLogEvent> = batch
                .iter()
                .map(|(ts, m)| {
                    InputLogEvent::builder()
                        .timestamp(*ts)
                        .message(m)
                        .build()
                        .expect("log event")
                })
                .collect();
            logs.put_log_events()
                .log_group_name(&group)
                .log_stream_name("flows")
                .set_log_events(Some(input))
                .send()
                .await
                .expect("PutLogEvents");
        }
        let step = contacts.len() / (SAMPLED + 2);
        let sampled: Vec<&Contact> = (1..=SAMPLED).map(|i| &contacts[i * step]).collect();
        for strategy in [LogStrategy::Insights, LogStrategy::Filter] {
            let source = CloudWatchFlowLogs::new(&config, strategy);
            let before: u64 = proxy.requests().values().sum();
            let (mut returned, mut in_window) = (0usize, 0usize);
            for c in &sampled {
                let query = FlowLogQuery {
                    log_group: group.clone(),
                    contact_ids: vec![c.id.clone()],
                    start: c.initiated - Duration::minutes(BEFORE_MIN),
                    end: c.disconnected + Duration::minutes(AFTER_MIN),
                };
                let entries = source.entries(&query).await.expect("read flow logs");
                let own = entries.iter().filter(|e| e.contact_id() == c.id).count();
                assert_eq!(
                    own, ENTRIES_PER_CONTACT,
                    "{strategy}: every entry of {}",
                    c.id
                );
                returned += entries.len();
                let (from, to) = (query.start.timestamp_millis(), query.end.timestamp_millis());
                in_window += events
                    .iter()
                    .filter(|(ts, _)| (from..=to).contains(ts))
                    .count();
            }
            let calls: u64 = proxy.requests().values().sum::<u64>() - before;
            let n = sampled.len() as f64;
            let scanned_gb = match strategy {
                LogStrategy::Insights => format!(
                    "{:.3}",
                    in_window as f64 / n * bytes_per_event * 1000.0 / 1e9
                ),
                LogStrategy::Filter => "0 (not billed per byte)".into(),
            };
            println!(
                "| {rate} | {strategy} | {:.1} | {:.1} | {:.0} | {scanned_gb} |",
                calls as f64 / n,
                returned as f64 / n,
                in_window as f64 / n,
            );
        }
    }
    ExitCode::SUCCESS
}

struct Contact {
    id: String,
    initiated: DateTime<Utc>,
    disconnected: DateTime<Utc>,
    lines: Vec<(i64, String)>,
}

/// An hour of contacts from `start`, `rate` per hour, each with its flow-log entries.
fn contacts(rate: usize, start: DateTime<Utc>) -> Vec<Contact> {
    let flow = "arn:aws:connect:us-east-1:123456789012:instance/8f2c6d1e-4b7a-4e39-9c5d-2a1f0b3e7d64/contact-flow/5d6aacaf-9021-41af-9810-9c3c4f968a58";
    let modules = [
        "SetLoggingBehavior",
        "SetVoice",
        "PlayPrompt",
        "InvokeExternalResource",
        "CheckAttribute",
        "SetAttributes",
        "GetUserInput",
        "SetWorkingQueue",
        "CheckHoursOfOperation",
        "SetQueue",
        "PlayPrompt",
        "Transfer",
    ];
    (0..rate)
        .map(|i| {
            let id = format!("{:08x}-0000-4000-8000-{i:012}", rate);
            let initiated = start + Duration::milliseconds((i as i64 * 3_600_000) / rate as i64);
            let lines = (0..ENTRIES_PER_CONTACT)
                .map(|k| {
                    let at = initiated + Duration::seconds(15 * k as i64);
                    let ts = Utc
                        .timestamp_millis_opt(at.timestamp_millis())
                        .single()
                        .expect("time");
                    let message = serde_json::json!({
                        "ContactId": id,
                        "ContactFlowId": flow,
                        "ContactFlowName": "Inbound main",
                        "ContactFlowModuleType": modules[k],
                        "Identifier": format!("block-{k}"),
                        "Timestamp": ts.to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                        "Parameters": {"Text": "Thank you for calling Example Corp."},
                    })
                    .to_string();
                    (ts.timestamp_millis(), message)
                })
                .collect();
            Contact {
                id,
                initiated,
                disconnected: initiated + Duration::seconds(15 * ENTRIES_PER_CONTACT as i64),
                lines,
            }
        })
        .collect()
}
