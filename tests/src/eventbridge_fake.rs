//! A wire-level fake of EventBridge's archives and replays (protocol awsJson1.1, target prefix
//! `AWSEvents`): `DescribeArchive`, `StartReplay`, `DescribeReplay`, as real EventBridge behaves
//! where moto does not (moto ignores `Destination.FilterArns` and gives replayed copies new ids).
//!
//! An archive holds events (JSON lines) of one bus. `StartReplay` checks what EventBridge checks
//! (the archive exists, the destination is the archive's own bus — "Cross event bus replay is not
//! permitted." —, the name is unused, the window is ordered, the filter rules are rules of that
//! bus), then replays in the background: each archived event whose `time` is in `start..end` is
//! delivered, with a top-level `replay-name`, to each rule in `FilterArns` (every rule of the bus
//! without it) — to the rule's CloudWatch Logs group on moto (`PutLogEvents`, stamped with the
//! delivery time), the first copy twice (delivery is at least once); the state goes STARTING →
//! RUNNING → COMPLETED. [`EventBridgeFake::fail_replays`] makes replays end FAILED instead.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use aws_sdk_cloudwatchlogs::types::InputLogEvent;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Request, Response};
use serde_json::{json, Value};

use crate::harness::{lock, HttpResponse, ServerThread};

const ACCOUNT: &str = "123456789012";
const REGION: &str = "us-east-1";

struct Archive {
    bus: String,
    events: Vec<String>,
}

#[derive(Clone)]
struct Replay {
    state: &'static str,
    reason: Option<String>,
    archive: String,
    start: f64,
    end: f64,
    started: f64,
    last: Option<f64>,
}

#[derive(Default)]
struct State {
    archives: HashMap<String, Archive>,
    /// Rule ARN → (bus ARN, the log group it targets).
    rules: HashMap<String, (String, String)>,
    replays: HashMap<String, Replay>,
    /// Rule ARN → copies delivered to it.
    delivered: HashMap<String, usize>,
    fail: bool,
}

/// The running fake. Dropping it stops the server.
pub struct EventBridgeFake {
    state: Arc<Mutex<State>>,
    server: ServerThread,
}

fn now() -> f64 {
    chrono::Utc::now().timestamp_millis() as f64 / 1000.0
}

impl EventBridgeFake {
    /// Starts the fake; replays deliver to CloudWatch Logs through `logs` (moto).
    pub fn start(logs: aws_sdk_cloudwatchlogs::Client) -> EventBridgeFake {
        let state = Arc::new(Mutex::new(State::default()));
        let shared = state.clone();
        let server = ServerThread::start("eventbridge-fake", move |req| {
            handle(shared.clone(), logs.clone(), req)
        });
        EventBridgeFake { state, server }
    }

    /// `http://127.0.0.1:<port>` (`AWS_ENDPOINT_URL_EVENTBRIDGE`).
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.server.addr())
    }

    /// The ARN of bus `name`.
    pub fn bus_arn(name: &str) -> String {
        format!("arn:aws:events:{REGION}:{ACCOUNT}:event-bus/{name}")
    }

    /// An archive of `bus` holding `events` (live events, without a `replay-name`); returns its ARN.
    pub fn add_archive(&self, name: &str, bus: &str, events: Vec<String>) -> String {
        lock(&self.state).archives.insert(
            name.to_string(),
            Archive {
                bus: Self::bus_arn(bus),
                events,
            },
        );
        format!("arn:aws:events:{REGION}:{ACCOUNT}:archive/{name}")
    }

    /// A rule of `bus` targeting `log_group`; returns its ARN.
    pub fn add_rule(&self, name: &str, bus: &str, log_group: &str) -> String {
        let arn = format!("arn:aws:events:{REGION}:{ACCOUNT}:rule/{name}");
        lock(&self.state)
            .rules
            .insert(arn.clone(), (Self::bus_arn(bus), log_group.to_string()));
        arn
    }

    /// Copies delivered to `rule_arn` so far.
    pub fn delivered(&self, rule_arn: &str) -> usize {
        lock(&self.state)
            .delivered
            .get(rule_arn)
            .copied()
            .unwrap_or(0)
    }

    /// Replays started from now on end FAILED.
    pub fn fail_replays(&self) {
        lock(&self.state).fail = true;
    }
}

fn reply(status: u16, body: Value) -> HttpResponse {
    Response::builder()
        .status(status)
        .header("content-type", "application/x-amz-json-1.1")
        .body(Full::new(Bytes::from(body.to_string())))
        .expect("a valid response")
}

fn error(kind: &str, message: &str) -> HttpResponse {
    reply(400, json!({"__type": kind, "message": message}))
}

async fn handle(
    state: Arc<Mutex<State>>,
    logs: aws_sdk_cloudwatchlogs::Client,
    req: Request<Incoming>,
) -> HttpResponse {
    let target = req
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let body = req.into_body().collect().await.map(|b| b.to_bytes());
    let Ok(input) = body.map(|b| serde_json::from_slice::<Value>(&b).unwrap_or(Value::Null)) else {
        return error("ValidationException", "unreadable body");
    };
    let text = |k: &str| input[k].as_str().unwrap_or_default().to_string();
    match target.as_str() {
        "AWSEvents.DescribeArchive" => {
            let name = text("ArchiveName");
            let st = lock(&state);
            match st.archives.get(&name) {
                Some(a) => reply(
                    200,
                    json!({"ArchiveArn": format!("arn:aws:events:{REGION}:{ACCOUNT}:archive/{name}"),
                           "ArchiveName": name, "EventSourceArn": a.bus, "State": "ENABLED",
                           "EventCount": a.events.len()}),
                ),
                None => error(
                    "ResourceNotFoundException",
                    &format!("Archive {name} does not exist."),
                ),
            }
        }
        "AWSEvents.StartReplay" => {
            let name = text("ReplayName");
            let archive = text("EventSourceArn");
            let archive = archive
                .rsplit_once(":archive/")
                .map_or(archive.clone(), |(_, n)| n.to_string());
            let bus = input["Destination"]["Arn"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            let filters: Vec<String> = input["Destination"]["FilterArns"]
                .as_array()
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default();
            let (start, end) = (
                input["EventStartTime"].as_f64().unwrap_or(0.0),
                input["EventEndTime"].as_f64().unwrap_or(0.0),
            );
            let mut st = lock(&state);
            let Some(source) = st.archives.get(&archive) else {
                return error(
                    "ResourceNotFoundException",
                    &format!("Archive {archive} does not exist."),
                );
            };
            if source.bus != bus {
                return error(
                    "ValidationException",
                    "Cross event bus replay is not permitted.",
                );
            }
            if st.replays.contains_key(&name) {
                return error(
                    "ResourceAlreadyExistsException",
                    &format!("Replay {name} already exists."),
                );
            }
            if end <= start {
                return error(
                    "ValidationException",
                    "EventStartTime must be before EventEndTime.",
                );
            }
            if let Some(bad) = filters
                .iter()
                .find(|f| st.rules.get(*f).is_none_or(|(b, _)| *b != bus))
            {
                return error(
                    "ValidationException",
                    &format!("Rule {bad} is not a rule of {bus}."),
                );
            }
            let targets: Vec<(String, String)> = st
                .rules
                .iter()
                .filter(|(arn, (b, _))| *b == bus && (filters.is_empty() || filters.contains(arn)))
                .map(|(arn, (_, group))| (arn.clone(), group.clone()))
                .collect();
            let copies: Vec<(f64, String)> = source
                .events
                .iter()
                .filter_map(|line| {
                    let v: Value = serde_json::from_str(line).ok()?;
                    let t = chrono::DateTime::parse_from_rfc3339(v["time"].as_str()?).ok()?;
                    let t = t.timestamp_millis() as f64 / 1000.0;
                    (start <= t && t < end).then(|| {
                        let body = line.trim_end().strip_suffix('}').unwrap_or(line);
                        (t, format!("{body},\"replay-name\":\"{name}\"}}"))
                    })
                })
                .collect();
            let fail = st.fail;
            st.replays.insert(
                name.clone(),
                Replay {
                    state: "STARTING",
                    reason: None,
                    archive,
                    start,
                    end,
                    started: now(),
                    last: None,
                },
            );
            drop(st);
            tokio::spawn(deliver(
                state.clone(),
                logs,
                name.clone(),
                targets,
                copies,
                fail,
            ));
            reply(
                200,
                json!({"ReplayArn": format!("arn:aws:events:{REGION}:{ACCOUNT}:replay/{name}"),
                              "State": "STARTING", "ReplayStartTime": now()}),
            )
        }
        "AWSEvents.DescribeReplay" => {
            let name = text("ReplayName");
            let st = lock(&state);
            match st.replays.get(&name) {
                Some(r) => reply(
                    200,
                    json!({"ReplayName": name, "State": r.state, "StateReason": r.reason,
                           "EventSourceArn": format!("arn:aws:events:{REGION}:{ACCOUNT}:archive/{}", r.archive),
                           "EventStartTime": r.start, "EventEndTime": r.end,
                           "ReplayStartTime": r.started, "EventLastReplayedTime": r.last}),
                ),
                None => error(
                    "ResourceNotFoundException",
                    &format!("Replay {name} does not exist."),
                ),
            }
        }
        other => error(
            "UnknownOperationException",
            &format!("the EventBridge fake does not implement {other}"),
        ),
    }
}

async fn deliver(
    state: Arc<Mutex<State>>,
    logs: aws_sdk_cloudwatchlogs::Client,
    name: String,
    targets: Vec<(String, String)>,
    copies: Vec<(f64, String)>,
    fail: bool,
) {
    let set = |state_name: &'static str, reason: Option<String>, last: Option<f64>| {
        let mut st = lock(&state);
        if let Some(r) = st.replays.get_mut(&name) {
            r.state = state_name;
            r.reason = reason;
            r.last = last.or(r.last);
        }
    };
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    set("RUNNING", None, None);
    if fail {
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
        set(
            "FAILED",
            Some("The archive could not be read.".into()),
            None,
        );
        return;
    }
    for (rule, group) in &targets {
        let stream = format!("replay-{name}");
        let _ = logs
            .create_log_stream()
            .log_group_name(group)
            .log_stream_name(&stream)
            .send()
            .await;
        let stamp = chrono::Utc::now().timestamp_millis();
        let mut events: Vec<InputLogEvent> = copies
            .iter()
            .map(|(_, m)| {
                InputLogEvent::builder()
                    .timestamp(stamp)
                    .message(m)
                    .build()
                    .expect("log event")
            })
            .collect();
        if let Some(first) = events.first().cloned() {
            events.push(first); // at least once
        }
        let delivered = events.len();
        if let Err(e) = logs
            .put_log_events()
            .log_group_name(group)
            .log_stream_name(&stream)
            .set_log_events(Some(events))
            .send()
            .await
        {
            set(
                "FAILED",
                Some(format!("delivery to {rule} failed: {e}")),
                None,
            );
            return;
        }
        *lock(&state).delivered.entry(rule.clone()).or_default() += delivered;
    }
    set(
        "COMPLETED",
        None,
        copies.iter().map(|(t, _)| *t).reduce(f64::max),
    );
}
