//! A wire-level fake of the Amazon Connect API (protocol restJson1, API version `2017-08-08`).
//!
//! No emulator implements Connect's data-plane APIs, so tests point the unmodified `aws-sdk-connect`
//! client at this in-process HTTP server ([`ConnectFake::sdk_config`], or
//! `AWS_ENDPOINT_URL_CONNECT=<endpoint>` for a Lambda child process). It implements:
//!
//! | Operation | Route |
//! |---|---|
//! | `DescribeContact` | `GET /contacts/{InstanceId}/{ContactId}` |
//! | `GetCurrentMetricData` | `POST /metrics/current/{InstanceId}` |
//! | `StopContact` | `POST /contact/stop` |
//! | `ListQueues` | `GET /queues-summary/{InstanceId}?queueTypes=..&nextToken=..&maxResults=..` |
//!
//! Any other route answers 404 with `X-Amzn-ErrorType: UnknownOperationException`. Errors use the model's
//! status codes, the `X-Amzn-ErrorType` header and a `{"Message": "..."}` body, so the SDK maps them to
//! the modelled error variants and applies its real retry rules (throttling and 5xx are retried).
//!
//! Instances are addressed by id or by ARN (`arn:aws:connect:us-east-1:123456789012:instance/<id>`,
//! percent-encoded in the path as the SDK sends it). An instance exists once anything was added to it
//! ([`ConnectFake::add_instance`], [`ConnectFake::add_queue`], [`ConnectFake::set_metrics`],
//! [`ConnectFake::add_contact`]); other instances answer `ResourceNotFoundException`.
//!
//! The server runs on its own thread and Tokio runtime (see [`crate::harness`]), so it can be shared by
//! several tests and used from blocking code. Dropping the [`ConnectFake`] stops it.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{SystemTime, UNIX_EPOCH};

use aws_config::SdkConfig;
use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Value};

use crate::harness::{local_sdk_config, lock, HttpResponse, ServerThread};

/// Account id used in every ARN the fake builds.
pub const ACCOUNT_ID: &str = "123456789012";
/// Region used in every ARN the fake builds.
pub const REGION: &str = "us-east-1";

/// Operation names accepted by [`ConnectFake::inject`], [`ConnectFake::calls`] and
/// [`ConnectFake::requests`]. Requests to unknown routes are counted as `"UnknownOperation"`.
pub const OPERATIONS: [&str; 4] = [
    "DescribeContact",
    "GetCurrentMetricData",
    "StopContact",
    "ListQueues",
];

/// `LastModifiedTime` reported for every queue by ListQueues (2025-05-01T09:12:44Z, as in the fixtures).
const QUEUE_LAST_MODIFIED: f64 = 1_746_090_764.0;

/// Real-time metrics of one queue on one channel, as GetCurrentMetricData reports them.
///
/// `Default` is an idle queue: every count 0 and `oldest_contact_age_secs: Some(0.0)` (the service
/// reports `0.0`, not `null`, for an empty queue). `None` makes the fake answer `"Value": null`
/// ("cannot be computed").
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FakeMetrics {
    /// `CONTACTS_IN_QUEUE` (COUNT).
    pub contacts_in_queue: u32,
    /// `CONTACTS_SCHEDULED` (COUNT).
    pub contacts_scheduled: u32,
    /// `OLDEST_CONTACT_AGE` in seconds. Reported in seconds with groupings and, like the real service,
    /// in **milliseconds** (unit still `SECONDS`) when the request has no groupings.
    pub oldest_contact_age_secs: Option<f64>,
    /// `AGENTS_ONLINE` (COUNT).
    pub agents_online: u32,
    /// `AGENTS_AVAILABLE` (COUNT).
    pub agents_available: u32,
}

impl Default for FakeMetrics {
    fn default() -> Self {
        FakeMetrics {
            contacts_in_queue: 0,
            contacts_scheduled: 0,
            oldest_contact_age_secs: Some(0.0),
            agents_online: 0,
            agents_available: 0,
        }
    }
}

/// ARN of a Connect instance in the fake's account and region.
pub fn instance_arn(instance_id: &str) -> String {
    format!("arn:aws:connect:{REGION}:{ACCOUNT_ID}:instance/{instance_id}")
}

/// ARN of a queue: `<instance ARN>/queue/<id>` (STANDARD) or `<instance ARN>/queue/agent/<id>` (AGENT).
pub fn queue_arn(instance_id: &str, queue_id: &str, queue_type: &str) -> String {
    let instance = instance_arn(instance_id);
    if queue_type == "AGENT" {
        format!("{instance}/queue/agent/{queue_id}")
    } else {
        format!("{instance}/queue/{queue_id}")
    }
}

/// The running fake. See the [module documentation](self).
pub struct ConnectFake {
    state: Arc<Mutex<State>>,
    server: ServerThread,
}

impl std::fmt::Debug for ConnectFake {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ConnectFake")
            .field("endpoint", &self.endpoint())
            .finish_non_exhaustive()
    }
}

impl ConnectFake {
    /// Starts the fake on `127.0.0.1:<ephemeral port>`. Synchronous; callable with or without a runtime.
    pub fn start() -> ConnectFake {
        let state = Arc::new(Mutex::new(State::default()));
        let handler_state = state.clone();
        let server = ServerThread::start("connect-fake", move |req| {
            handle(handler_state.clone(), req)
        });
        ConnectFake { state, server }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> String {
        format!("http://{}", self.server.addr())
    }

    /// SDK configuration for the fake: its endpoint, `us-east-1`, test credentials, standard retries with
    /// 3 attempts and a small backoff (10 ms initial, 200 ms max).
    pub async fn sdk_config(&self) -> SdkConfig {
        self.sdk_config_with_retries(3).await
    }

    /// As [`ConnectFake::sdk_config`] with `max_attempts` attempts (1 = no retries).
    pub async fn sdk_config_with_retries(&self, max_attempts: u32) -> SdkConfig {
        local_sdk_config(&self.endpoint(), max_attempts).await
    }

    /// An `aws-sdk-connect` client built from [`ConnectFake::sdk_config`], with the endpoint also set on
    /// the service configuration (so `AWS_ENDPOINT_URL_CONNECT` in the environment cannot redirect it).
    pub async fn client(&self) -> aws_sdk_connect::Client {
        let conf = aws_sdk_connect::config::Builder::from(&self.sdk_config().await)
            .endpoint_url(self.endpoint())
            .build();
        aws_sdk_connect::Client::from_conf(conf)
    }

    /// Makes an (empty) instance known; returns its ARN.
    pub fn add_instance(&self, instance_id: &str) -> String {
        lock(&self.state).instance_mut(instance_id);
        instance_arn(instance_id)
    }

    /// Adds (or replaces) a queue; returns its ARN.
    ///
    /// `queue_type` is `"STANDARD"` or `"AGENT"`. Agent queues have no name on the wire, so `name` is
    /// ignored for them. ListQueues returns queues in the order they were added.
    ///
    /// # Panics
    ///
    /// On any other `queue_type`.
    pub fn add_queue(
        &self,
        instance_id: &str,
        queue_id: &str,
        name: Option<&str>,
        queue_type: &str,
    ) -> String {
        assert!(
            matches!(queue_type, "STANDARD" | "AGENT"),
            "add_queue: queue_type must be \"STANDARD\" or \"AGENT\", got {queue_type:?}"
        );
        let arn = queue_arn(instance_id, queue_id, queue_type);
        let queue = Queue {
            id: queue_id.to_string(),
            arn: arn.clone(),
            name: if queue_type == "AGENT" {
                None
            } else {
                name.map(str::to_string)
            },
            queue_type: queue_type.to_string(),
        };
        let mut state = lock(&self.state);
        let instance = state.instance_mut(instance_id);
        match instance.queues.iter_mut().find(|q| q.id == queue_id) {
            Some(existing) => *existing = queue,
            None => instance.queues.push(queue),
        }
        arn
    }

    /// Sets the real-time metrics of `queue_id` on `channel` (`"VOICE"`, `"CHAT"`, `"TASK"`, `"EMAIL"`).
    ///
    /// A queue with metrics takes part in GetCurrentMetricData even if it was never added with
    /// [`ConnectFake::add_queue`] (its ARN is then the STANDARD form); it does not appear in ListQueues.
    /// Queue/channel pairs without metrics report [`FakeMetrics::default`].
    pub fn set_metrics(
        &self,
        instance_id: &str,
        queue_id: &str,
        channel: &str,
        metrics: FakeMetrics,
    ) {
        lock(&self.state)
            .instance_mut(instance_id)
            .metrics
            .insert((queue_id.to_string(), channel.to_string()), metrics);
    }

    /// Fixes `DataSnapshotTime` (epoch seconds). Default: the real time of each request.
    pub fn set_snapshot_time(&self, epoch_secs: f64) {
        lock(&self.state).snapshot_time = Some(epoch_secs);
    }

    /// Adds a user (DescribeUser answers its username).
    pub fn add_user(&self, instance_id: &str, user_id: &str, username: &str) {
        lock(&self.state)
            .instance_mut(instance_id)
            .users
            .insert(user_id.to_string(), username.to_string());
    }

    /// Adds (or replaces) a contact that DescribeContact returns verbatim.
    ///
    /// `contact` is the `Contact` object in wire format (PascalCase, epoch-second timestamps); a whole
    /// DescribeContact response (`{"Contact": {...}}`, e.g. the `api/describe-contact-*.json` fixtures) is
    /// accepted too.
    ///
    /// # Panics
    ///
    /// If the contact has no string `Id`.
    pub fn add_contact(&self, instance_id: &str, contact: Value) {
        let contact = match contact {
            Value::Object(mut map) if map.len() == 1 && map.contains_key("Contact") => {
                map.remove("Contact").unwrap_or_default()
            }
            other => other,
        };
        let id = contact
            .get("Id")
            .and_then(Value::as_str)
            .unwrap_or_else(|| panic!("add_contact: the contact needs a string \"Id\": {contact}"))
            .to_string();
        lock(&self.state)
            .instance_mut(instance_id)
            .contacts
            .insert(id, contact);
    }

    /// The stored contact (as DescribeContact would return it), if any.
    pub fn contact(&self, instance_id: &str, contact_id: &str) -> Option<Value> {
        lock(&self.state)
            .instances
            .get(&instance_key(instance_id))?
            .contacts
            .get(contact_id)
            .cloned()
    }

    /// Ids of the contacts stopped through StopContact, in call order.
    pub fn stopped_contacts(&self) -> Vec<String> {
        lock(&self.state).stopped.clone()
    }

    /// Makes the next `times` calls of `op` (e.g. `"GetCurrentMetricData"`) fail with `status` and
    /// `error_type` (e.g. `429, "ThrottlingException"` or `500, "InternalServiceException"`). Injected
    /// failures are counted by [`ConnectFake::calls`] and recorded by [`ConnectFake::requests`]. Several
    /// injections for one operation are served in order.
    ///
    /// # Panics
    ///
    /// If `op` is not one of [`OPERATIONS`] or `status` is not an HTTP error status (400–599).
    pub fn inject(&self, op: &str, status: u16, error_type: &str, times: usize) {
        assert!(
            OPERATIONS.contains(&op),
            "inject: unknown operation {op:?}; expected one of {OPERATIONS:?}"
        );
        assert!(
            (400..600).contains(&status),
            "inject: status {status} is not an error status"
        );
        let mut state = lock(&self.state);
        let faults = state.faults.entry(op.to_string()).or_default();
        faults.extend((0..times).map(|_| Fault {
            status,
            error_type: error_type.to_string(),
        }));
    }

    /// Drops injected failures that have not fired yet.
    pub fn clear_faults(&self) {
        lock(&self.state).faults.clear();
    }

    /// Number of requests for `op` so far (including injected failures and rejected requests).
    pub fn calls(&self, op: &str) -> usize {
        lock(&self.state).calls.get(op).copied().unwrap_or(0)
    }

    /// The inputs of every request for `op`, in order, keyed by the model's member names: the JSON body
    /// for POST operations (plus the `InstanceId` path label for GetCurrentMetricData), and the path
    /// labels and query parameters for GET operations, e.g.
    /// `{"InstanceId": "...", "QueueTypes": ["STANDARD"], "MaxResults": 5, "NextToken": "..."}`.
    /// Path labels are percent-decoded (an ARN stays an ARN).
    pub fn requests(&self, op: &str) -> Vec<Value> {
        lock(&self.state)
            .requests
            .get(op)
            .cloned()
            .unwrap_or_default()
    }

    /// Resets [`ConnectFake::calls`] and [`ConnectFake::requests`] (state and faults are kept).
    pub fn reset_counters(&self) {
        let mut state = lock(&self.state);
        state.calls.clear();
        state.requests.clear();
    }
}

// ---------------------------------------------------------------------------------------------------
// State
// ---------------------------------------------------------------------------------------------------

#[derive(Default)]
struct State {
    /// Keyed by instance id (never by ARN).
    instances: BTreeMap<String, Instance>,
    snapshot_time: Option<f64>,
    faults: HashMap<String, VecDeque<Fault>>,
    calls: HashMap<String, usize>,
    requests: HashMap<String, Vec<Value>>,
    stopped: Vec<String>,
}

impl State {
    fn instance_mut(&mut self, instance: &str) -> &mut Instance {
        self.instances.entry(instance_key(instance)).or_default()
    }

    fn instance(&self, instance: &str) -> Result<&Instance, ApiError> {
        self.instances.get(&instance_key(instance)).ok_or_else(|| {
            ApiError::new(
                404,
                "ResourceNotFoundException",
                format!("Instance not found: {instance}"),
            )
        })
    }
}

#[derive(Default)]
struct Instance {
    queues: Vec<Queue>,
    /// Keyed by (queue id, channel).
    metrics: HashMap<(String, String), FakeMetrics>,
    contacts: HashMap<String, Value>,
    /// User id → username (DescribeUser).
    users: HashMap<String, String>,
}

struct Queue {
    id: String,
    arn: String,
    name: Option<String>,
    queue_type: String,
}

struct Fault {
    status: u16,
    error_type: String,
}

/// A modelled error response.
#[derive(Debug)]
struct ApiError {
    status: u16,
    code: String,
    message: String,
}

impl ApiError {
    fn new(status: u16, code: &str, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            code: code.to_string(),
            message: message.into(),
        }
    }

    fn invalid_parameter(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "InvalidParameterException", message)
    }

    fn invalid_request(message: impl Into<String>) -> ApiError {
        ApiError::new(400, "InvalidRequestException", message)
    }
}

/// Instance id from an id or an instance ARN (`...:instance/<id>`).
fn instance_key(raw: &str) -> String {
    match raw.split_once(":instance/") {
        Some((prefix, rest)) if prefix.starts_with("arn:") => {
            rest.split('/').next().unwrap_or(rest).to_string()
        }
        _ => raw.to_string(),
    }
}

/// Queue id from an id or a queue ARN (`.../queue/<id>` or `.../queue/agent/<id>`).
fn queue_key(raw: &str) -> &str {
    if raw.starts_with("arn:") {
        raw.rsplit('/').next().unwrap_or(raw)
    } else {
        raw
    }
}

// ---------------------------------------------------------------------------------------------------
// HTTP handling
// ---------------------------------------------------------------------------------------------------

/// A recognised operation with its decoded path labels.
enum Route {
    DescribeContact { instance: String, contact: String },
    DescribeUser { instance: String, user: String },
    GetCurrentMetricData { instance: String },
    StopContact,
    ListQueues { instance: String },
}

impl Route {
    fn parse(method: &Method, segments: &[String]) -> Option<Route> {
        let segs: Vec<&str> = segments.iter().map(String::as_str).collect();
        match (method, segs.as_slice()) {
            (&Method::GET, ["contacts", instance, contact]) => Some(Route::DescribeContact {
                instance: instance.to_string(),
                contact: contact.to_string(),
            }),
            (&Method::GET, ["users", instance, user]) => Some(Route::DescribeUser {
                instance: instance.to_string(),
                user: user.to_string(),
            }),
            (&Method::POST, ["metrics", "current", instance]) => {
                Some(Route::GetCurrentMetricData {
                    instance: instance.to_string(),
                })
            }
            (&Method::POST, ["contact", "stop"]) => Some(Route::StopContact),
            (&Method::GET, ["queues-summary", instance]) => Some(Route::ListQueues {
                instance: instance.to_string(),
            }),
            _ => None,
        }
    }

    fn operation(&self) -> &'static str {
        match self {
            Route::DescribeContact { .. } => "DescribeContact",
            Route::DescribeUser { .. } => "DescribeUser",
            Route::GetCurrentMetricData { .. } => "GetCurrentMetricData",
            Route::StopContact => "StopContact",
            Route::ListQueues { .. } => "ListQueues",
        }
    }
}

async fn handle(state: Arc<Mutex<State>>, req: Request<Incoming>) -> HttpResponse {
    let method = req.method().clone();
    let uri = req.uri().clone();
    let body = match req.into_body().collect().await {
        Ok(collected) => collected.to_bytes(),
        Err(e) => {
            return error_response(&ApiError::invalid_request(format!(
                "cannot read request body: {e}"
            )))
        }
    };
    let segments: Vec<String> = uri
        .path()
        .split('/')
        .filter(|s| !s.is_empty())
        .map(percent_decode)
        .collect();
    let query = parse_query(uri.query().unwrap_or(""));

    let mut state = lock(&state);
    let Some(route) = Route::parse(&method, &segments) else {
        *state.calls.entry("UnknownOperation".into()).or_default() += 1;
        return error_response(&ApiError::new(
            404,
            "UnknownOperationException",
            format!(
                "The Connect fake does not implement {method} {}",
                uri.path()
            ),
        ));
    };
    let op = route.operation();

    // The operation's input by model member names, for `requests()`.
    let body_json = parse_body(&body);
    let input = match (&route, &body_json) {
        (Route::DescribeContact { instance, contact }, _) => {
            json!({"InstanceId": instance, "ContactId": contact})
        }
        (Route::DescribeUser { instance, user }, _) => {
            json!({"InstanceId": instance, "UserId": user})
        }
        (Route::ListQueues { instance }, _) => {
            let mut input = json!({"InstanceId": instance});
            if let Some(types) = query.get("queueTypes") {
                input["QueueTypes"] = json!(types);
            }
            if let Some(token) = query.get("nextToken").and_then(|v| v.first()) {
                input["NextToken"] = json!(token);
            }
            if let Some(max) = query.get("maxResults").and_then(|v| v.first()) {
                input["MaxResults"] = max.parse::<i64>().map_or_else(|_| json!(max), |n| json!(n));
            }
            input
        }
        (Route::GetCurrentMetricData { instance }, Ok(Value::Object(map))) => {
            let mut map = map.clone();
            map.insert("InstanceId".into(), json!(instance));
            Value::Object(map)
        }
        (_, Ok(value)) => value.clone(),
        (_, Err(raw)) => json!({ "_unparsed_body": raw }),
    };
    *state.calls.entry(op.to_string()).or_default() += 1;
    state
        .requests
        .entry(op.to_string())
        .or_default()
        .push(input);

    if let Some(fault) = state.faults.get_mut(op).and_then(VecDeque::pop_front) {
        return error_response(&ApiError::new(
            fault.status,
            &fault.error_type,
            format!("Injected {} for {op}", fault.error_type),
        ));
    }

    let body_json = match body_json {
        Ok(value) => value,
        Err(_) => {
            return error_response(&ApiError::new(
                400,
                "SerializationException",
                "Request body is not valid JSON",
            ))
        }
    };
    let result = match &route {
        Route::DescribeContact { instance, contact } => describe_contact(&state, instance, contact),
        Route::DescribeUser { instance, user } => describe_user(&state, instance, user),
        Route::GetCurrentMetricData { instance } => {
            get_current_metric_data(&state, instance, &body_json)
        }
        Route::StopContact => stop_contact(&mut state, &body_json),
        Route::ListQueues { instance } => list_queues(&state, instance, &query),
    };
    match result {
        Ok(value) => json_response(StatusCode::OK, &value),
        Err(e) => error_response(&e),
    }
}

/// Parses a JSON body; an empty body is `{}`. On error returns the body as text.
fn parse_body(body: &Bytes) -> Result<Value, String> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(json!({}));
    }
    serde_json::from_slice(body).map_err(|_| String::from_utf8_lossy(body).into_owned())
}

fn json_response(status: StatusCode, body: &Value) -> HttpResponse {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        "content-type",
        hyper::header::HeaderValue::from_static("application/json"),
    );
    if let Ok(id) = hyper::header::HeaderValue::from_str(&request_id()) {
        headers.insert("x-amzn-requestid", id);
    }
    response
}

fn error_response(error: &ApiError) -> HttpResponse {
    let status = StatusCode::from_u16(error.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = json_response(status, &json!({ "Message": error.message }));
    if let Ok(code) = hyper::header::HeaderValue::from_str(&error.code) {
        response.headers_mut().insert("x-amzn-errortype", code);
    }
    response
}

/// A request id in UUID format (unique enough for logs).
fn request_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let v = (nanos as u64) ^ (n << 40);
    format!(
        "{:08x}-{:04x}-4{:03x}-8{:03x}-{:012x}",
        (v >> 32) as u32,
        (v >> 16) as u16,
        (v & 0xfff) as u16,
        n & 0xfff,
        (u64::from(std::process::id()) << 16) | (n & 0xffff)
    )
}

fn now_epoch_secs() -> f64 {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64());
    (secs * 1000.0).round() / 1000.0
}

// ---------------------------------------------------------------------------------------------------
// Operations
// ---------------------------------------------------------------------------------------------------

fn describe_contact(state: &State, instance: &str, contact_id: &str) -> Result<Value, ApiError> {
    let contact = state
        .instance(instance)?
        .contacts
        .get(contact_id)
        .ok_or_else(|| {
            ApiError::new(
                404,
                "ResourceNotFoundException",
                format!("Contact not found: {contact_id}"),
            )
        })?;
    Ok(json!({ "Contact": contact }))
}

fn describe_user(state: &State, instance: &str, user_id: &str) -> Result<Value, ApiError> {
    let username = state
        .instance(instance)?
        .users
        .get(user_id)
        .ok_or_else(|| {
            ApiError::new(
                404,
                "ResourceNotFoundException",
                format!("User not found: {user_id}"),
            )
        })?;
    Ok(json!({ "User": {
        "Id": user_id,
        "Arn": format!("arn:aws:connect:us-east-1:123456789012:instance/{instance}/agent/{user_id}"),
        "Username": username
    } }))
}

/// Voice contacts with these initiation methods cannot be stopped (StopContact reference).
const UNSTOPPABLE_VOICE_METHODS: [&str; 5] = [
    "DISCONNECT",
    "TRANSFER",
    "QUEUE_TRANSFER",
    "EXTERNAL_OUTBOUND",
    "MONITOR",
];

/// StopContact: an active contact (no `DisconnectTimestamp`, not stopped before) is stopped and gets a
/// `DisconnectTimestamp`; an unknown or already ended contact answers 410 `ContactNotFoundException`.
fn stop_contact(state: &mut State, body: &Value) -> Result<Value, ApiError> {
    let field = |name: &str| {
        body.get(name)
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .ok_or_else(|| ApiError::invalid_request(format!("{name} is required")))
    };
    let instance_id = field("InstanceId")?.to_string();
    let contact_id = field("ContactId")?.to_string();
    state.instance(&instance_id)?;
    let now = now_epoch_secs();
    let key = instance_key(&instance_id);
    let contact = state
        .instances
        .get_mut(&key)
        .and_then(|i| i.contacts.get_mut(&contact_id))
        .filter(|c| c.get("DisconnectTimestamp").is_none())
        .ok_or_else(|| {
            ApiError::new(
                410,
                "ContactNotFoundException",
                format!("Contact {contact_id} does not exist or has already ended"),
            )
        })?;
    let channel = contact.get("Channel").and_then(Value::as_str);
    let method = contact.get("InitiationMethod").and_then(Value::as_str);
    if let (Some("VOICE"), Some(method)) = (channel, method) {
        if UNSTOPPABLE_VOICE_METHODS.contains(&method) {
            return Err(ApiError::invalid_request(format!(
                "Voice contacts initiated by {method} cannot be stopped"
            )));
        }
    }
    if let Some(map) = contact.as_object_mut() {
        map.insert("DisconnectTimestamp".into(), json!(now));
        map.insert("LastUpdateTimestamp".into(), json!(now));
    }
    state.stopped.push(contact_id);
    Ok(json!({}))
}

fn list_queues(
    state: &State,
    instance: &str,
    query: &HashMap<String, Vec<String>>,
) -> Result<Value, ApiError> {
    let inst = state.instance(instance)?;
    let types = query.get("queueTypes").cloned().unwrap_or_default();
    if types.len() > 2 {
        return Err(ApiError::invalid_parameter(
            "QueueTypes accepts at most 2 values",
        ));
    }
    if let Some(bad) = types
        .iter()
        .find(|t| !matches!(t.as_str(), "STANDARD" | "AGENT"))
    {
        return Err(ApiError::invalid_parameter(format!(
            "Invalid QueueType: {bad}"
        )));
    }
    let max_results = match query.get("maxResults").and_then(|v| v.first()) {
        None => 100,
        Some(raw) => raw
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=1000).contains(n))
            .ok_or_else(|| {
                ApiError::invalid_parameter(format!("MaxResults must be 1-1000, got {raw}"))
            })?,
    };
    let offset = match query.get("nextToken").and_then(|v| v.first()) {
        None => 0,
        Some(token) => decode_token("ListQueues", token)?,
    };
    let queues: Vec<&Queue> = inst
        .queues
        .iter()
        .filter(|q| types.is_empty() || types.contains(&q.queue_type))
        .collect();
    let page: Vec<Value> = queues
        .iter()
        .skip(offset)
        .take(max_results)
        .map(|q| {
            let mut summary = json!({
                "Id": q.id,
                "Arn": q.arn,
                "QueueType": q.queue_type,
                "LastModifiedTime": QUEUE_LAST_MODIFIED,
                "LastModifiedRegion": REGION,
            });
            if let Some(name) = &q.name {
                summary["Name"] = json!(name);
            }
            summary
        })
        .collect();
    let mut response = json!({ "QueueSummaryList": page });
    if offset + max_results < queues.len() {
        response["NextToken"] = json!(encode_token("ListQueues", offset + max_results));
    }
    Ok(response)
}

/// Metric names GetCurrentMetricData accepts, with their units.
const CURRENT_METRICS: [(&str, &str); 14] = [
    ("AGENTS_ONLINE", "COUNT"),
    ("AGENTS_AVAILABLE", "COUNT"),
    ("AGENTS_ON_CALL", "COUNT"),
    ("AGENTS_NON_PRODUCTIVE", "COUNT"),
    ("AGENTS_AFTER_CONTACT_WORK", "COUNT"),
    ("AGENTS_ERROR", "COUNT"),
    ("AGENTS_STAFFED", "COUNT"),
    ("CONTACTS_IN_QUEUE", "COUNT"),
    ("OLDEST_CONTACT_AGE", "SECONDS"),
    ("CONTACTS_SCHEDULED", "COUNT"),
    ("AGENTS_ON_CONTACT", "COUNT"),
    ("SLOTS_ACTIVE", "COUNT"),
    ("SLOTS_AVAILABLE", "COUNT"),
    ("ESTIMATED_WAIT_TIME", "SECONDS"),
];

const CHANNELS: [&str; 4] = ["VOICE", "CHAT", "TASK", "EMAIL"];

/// GetCurrentMetricData over the stored metrics.
///
/// Rows: with `QUEUE` and `CHANNEL` groupings one row per (queue, channel), queues in filter order;
/// with one grouping one row per queue or per channel; without groupings one aggregated row with empty
/// `Dimensions`. Only queues that were added or have metrics produce rows. Channels default to VOICE,
/// CHAT and TASK. Aggregation: contact counts are summed, `OLDEST_CONTACT_AGE` is the maximum, agent
/// counts take the maximum over channels within a queue and are summed over queues. Metrics the fake
/// does not model report `0.0`.
fn get_current_metric_data(state: &State, instance: &str, body: &Value) -> Result<Value, ApiError> {
    let inst = state.instance(instance)?;

    let filters = body
        .get("Filters")
        .and_then(Value::as_object)
        .ok_or_else(|| ApiError::invalid_parameter("Filters is required"))?;
    if let Some((name, _)) = filters
        .iter()
        .find(|(k, v)| !matches!(k.as_str(), "Queues" | "Channels") && !is_empty_value(v))
    {
        return Err(ApiError::invalid_parameter(format!(
            "The Connect fake supports only the Queues and Channels filters, got {name}"
        )));
    }
    let queue_filter = string_list(filters.get("Queues"), "Filters.Queues")?;
    if queue_filter.is_empty() || queue_filter.len() > 100 {
        return Err(ApiError::invalid_parameter(format!(
            "Filters.Queues must contain 1-100 queues, got {}",
            queue_filter.len()
        )));
    }
    let mut channels = string_list(filters.get("Channels"), "Filters.Channels")?;
    if let Some(bad) = channels.iter().find(|c| !CHANNELS.contains(&c.as_str())) {
        return Err(ApiError::invalid_parameter(format!(
            "Invalid Channel: {bad}"
        )));
    }
    if channels.is_empty() {
        channels = vec!["VOICE".into(), "CHAT".into(), "TASK".into()];
    }
    dedup_in_order(&mut channels);

    let groupings = string_list(body.get("Groupings"), "Groupings")?;
    if groupings.len() > 2 {
        return Err(ApiError::invalid_parameter(
            "Groupings accepts at most 2 values",
        ));
    }
    if let Some(bad) = groupings
        .iter()
        .find(|g| !matches!(g.as_str(), "QUEUE" | "CHANNEL"))
    {
        return Err(ApiError::invalid_parameter(format!(
            "The Connect fake supports only QUEUE and CHANNEL groupings, got {bad}"
        )));
    }
    let by_queue = groupings.iter().any(|g| g == "QUEUE");
    let by_channel = groupings.iter().any(|g| g == "CHANNEL");

    let metrics = requested_metrics(body.get("CurrentMetrics"))?;

    let max_results = match body.get("MaxResults") {
        None | Some(Value::Null) => 100,
        Some(v) => v
            .as_u64()
            .filter(|n| (1..=100).contains(n))
            .ok_or_else(|| {
                ApiError::invalid_parameter(format!("MaxResults must be 1-100, got {v}"))
            })? as usize,
    };
    let offset = match body.get("NextToken").and_then(Value::as_str) {
        None => 0,
        Some(token) => decode_token("GetCurrentMetricData", token)?,
    };

    // Queues that take part: filter order, known to the instance, without duplicates.
    let mut queues: Vec<(String, String)> = Vec::new(); // (id, arn)
    for raw in &queue_filter {
        let id = queue_key(raw);
        if queues.iter().any(|(q, _)| q == id) {
            continue;
        }
        let registered = inst.queues.iter().find(|q| q.id == id);
        let has_metrics = inst.metrics.keys().any(|(q, _)| q == id);
        if let Some(queue) = registered {
            queues.push((queue.id.clone(), queue.arn.clone()));
        } else if has_metrics {
            queues.push((id.to_string(), queue_arn(instance, id, "STANDARD")));
        }
    }
    let cell = |queue: &str, channel: &str| -> FakeMetrics {
        inst.metrics
            .get(&(queue.to_string(), channel.to_string()))
            .copied()
            .unwrap_or_default()
    };

    // (dimensions, aggregated metrics, OLDEST_CONTACT_AGE multiplier)
    let mut rows: Vec<(Value, FakeMetrics, f64)> = Vec::new();
    match (by_queue, by_channel) {
        (true, true) => {
            for (id, arn) in &queues {
                for channel in &channels {
                    rows.push((
                        json!({"Queue": {"Id": id, "Arn": arn}, "Channel": channel}),
                        cell(id, channel),
                        1.0,
                    ));
                }
            }
        }
        (true, false) => {
            for (id, arn) in &queues {
                let cells: Vec<_> = channels
                    .iter()
                    .map(|c| (id.as_str(), cell(id, c)))
                    .collect();
                rows.push((
                    json!({"Queue": {"Id": id, "Arn": arn}}),
                    aggregate(&cells),
                    1.0,
                ));
            }
        }
        (false, true) => {
            if !queues.is_empty() {
                for channel in &channels {
                    let cells: Vec<_> = queues
                        .iter()
                        .map(|(id, _)| (id.as_str(), cell(id, channel)))
                        .collect();
                    rows.push((json!({"Channel": channel}), aggregate(&cells), 1.0));
                }
            }
        }
        (false, false) => {
            if !queues.is_empty() {
                let cells: Vec<_> = queues
                    .iter()
                    .flat_map(|(id, _)| channels.iter().map(move |c| (id.as_str(), c)))
                    .map(|(id, c)| (id, cell(id, c)))
                    .collect();
                // The documented quirk: without groupings OLDEST_CONTACT_AGE is in milliseconds.
                rows.push((json!({}), aggregate(&cells), 1000.0));
            }
        }
    }

    let total = rows.len();
    let page: Vec<Value> = rows
        .iter()
        .skip(offset)
        .take(max_results)
        .map(|(dimensions, values, age_factor)| {
            let collections: Vec<Value> = metrics
                .iter()
                .map(|(name, unit)| {
                    let value = metric_value(values, name).map(|v| {
                        if name == "OLDEST_CONTACT_AGE" {
                            v * age_factor
                        } else {
                            v
                        }
                    });
                    json!({"Metric": {"Name": name, "Unit": unit}, "Value": value})
                })
                .collect();
            json!({"Dimensions": dimensions, "Collections": collections})
        })
        .collect();
    let mut response = json!({
        "MetricResults": page,
        "DataSnapshotTime": state.snapshot_time.unwrap_or_else(now_epoch_secs),
        "ApproximateTotalCount": total,
    });
    if offset + max_results < total {
        response["NextToken"] = json!(encode_token("GetCurrentMetricData", offset + max_results));
    }
    Ok(response)
}

/// `CurrentMetrics` as (name, unit) pairs; the unit defaults to the metric's documented unit.
fn requested_metrics(value: Option<&Value>) -> Result<Vec<(String, String)>, ApiError> {
    let list = value
        .and_then(Value::as_array)
        .filter(|l| !l.is_empty())
        .ok_or_else(|| ApiError::invalid_parameter("CurrentMetrics is required"))?;
    list.iter()
        .map(|metric| {
            let name = metric.get("Name").and_then(Value::as_str).ok_or_else(|| {
                ApiError::invalid_parameter(
                    "The Connect fake supports only CurrentMetrics with a Name (not MetricId)",
                )
            })?;
            let &(_, default_unit) = CURRENT_METRICS
                .iter()
                .find(|(n, _)| *n == name)
                .ok_or_else(|| {
                    ApiError::invalid_parameter(format!("Invalid metric name: {name}"))
                })?;
            let unit = metric
                .get("Unit")
                .and_then(Value::as_str)
                .unwrap_or(default_unit);
            Ok((name.to_string(), unit.to_string()))
        })
        .collect()
}

fn metric_value(m: &FakeMetrics, name: &str) -> Option<f64> {
    match name {
        "CONTACTS_IN_QUEUE" => Some(f64::from(m.contacts_in_queue)),
        "CONTACTS_SCHEDULED" => Some(f64::from(m.contacts_scheduled)),
        "OLDEST_CONTACT_AGE" => m.oldest_contact_age_secs,
        "AGENTS_ONLINE" => Some(f64::from(m.agents_online)),
        "AGENTS_AVAILABLE" => Some(f64::from(m.agents_available)),
        _ => Some(0.0),
    }
}

/// Aggregates (queue id, metrics) cells: contacts summed, oldest age maximum, agents maximum per queue
/// summed over queues.
fn aggregate(cells: &[(&str, FakeMetrics)]) -> FakeMetrics {
    let mut agents: BTreeMap<&str, (u32, u32)> = BTreeMap::new();
    let mut out = FakeMetrics {
        oldest_contact_age_secs: None,
        ..FakeMetrics::default()
    };
    for (queue, m) in cells {
        out.contacts_in_queue += m.contacts_in_queue;
        out.contacts_scheduled += m.contacts_scheduled;
        out.oldest_contact_age_secs = match (out.oldest_contact_age_secs, m.oldest_contact_age_secs)
        {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        let entry = agents.entry(queue).or_default();
        entry.0 = entry.0.max(m.agents_online);
        entry.1 = entry.1.max(m.agents_available);
    }
    out.agents_online = agents.values().map(|a| a.0).sum();
    out.agents_available = agents.values().map(|a| a.1).sum();
    out
}

/// A list of strings (absent or null = empty), or InvalidParameterException.
fn string_list(value: Option<&Value>, what: &str) -> Result<Vec<String>, ApiError> {
    match value {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str().map(str::to_string).ok_or_else(|| {
                    ApiError::invalid_parameter(format!("{what} must be a list of strings"))
                })
            })
            .collect(),
        Some(_) => Err(ApiError::invalid_parameter(format!(
            "{what} must be a list"
        ))),
    }
}

fn is_empty_value(v: &Value) -> bool {
    match v {
        Value::Null => true,
        Value::Array(a) => a.is_empty(),
        Value::Object(o) => o.is_empty(),
        _ => false,
    }
}

fn dedup_in_order(items: &mut Vec<String>) {
    let mut seen = Vec::new();
    items.retain(|item| {
        if seen.contains(item) {
            false
        } else {
            seen.push(item.clone());
            true
        }
    });
}

// ---------------------------------------------------------------------------------------------------
// Tokens, percent-decoding, query strings
// ---------------------------------------------------------------------------------------------------

/// An opaque pagination token: hex of `<operation>:<offset>`.
fn encode_token(op: &str, offset: usize) -> String {
    format!("{op}:{offset}")
        .bytes()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn decode_token(op: &str, token: &str) -> Result<usize, ApiError> {
    let invalid = || ApiError::invalid_parameter(format!("Invalid or expired NextToken: {token}"));
    if !token.len().is_multiple_of(2) || !token.is_ascii() {
        return Err(invalid());
    }
    let bytes = (0..token.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&token[i..i + 2], 16))
        .collect::<Result<Vec<u8>, _>>()
        .map_err(|_| invalid())?;
    let text = String::from_utf8(bytes).map_err(|_| invalid())?;
    text.strip_prefix(op)
        .and_then(|rest| rest.strip_prefix(':'))
        .and_then(|n| n.parse().ok())
        .ok_or_else(invalid)
}

/// Decodes `%XX` escapes (invalid escapes are kept as they are).
fn percent_decode(s: &str) -> String {
    fn hex(b: u8) -> Option<u8> {
        char::from(b)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
    }
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(hi), Some(lo)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push((hi << 4) | lo);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Parses a query string into name → values (repeated names keep every value, in order).
fn parse_query(query: &str) -> HashMap<String, Vec<String>> {
    let mut map: HashMap<String, Vec<String>> = HashMap::new();
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
        map.entry(percent_decode(name))
            .or_default()
            .push(percent_decode(value));
    }
    map
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_decoding_and_keys() {
        let arn = "arn%3Aaws%3Aconnect%3Aus-east-1%3A123456789012%3Ainstance%2Finst-1";
        assert_eq!(
            percent_decode(arn),
            "arn:aws:connect:us-east-1:123456789012:instance/inst-1"
        );
        assert_eq!(instance_key(&percent_decode(arn)), "inst-1");
        assert_eq!(instance_key("inst-1"), "inst-1");
        assert_eq!(percent_decode("a%2"), "a%2");
        assert_eq!(percent_decode("100%"), "100%");
        assert_eq!(
            queue_key("arn:aws:connect:r:a:instance/i/queue/agent/ag-1"),
            "ag-1"
        );
        let q = parse_query("queueTypes=STANDARD&queueTypes=AGENT&maxResults=5");
        assert_eq!(q["queueTypes"], vec!["STANDARD", "AGENT"]);
    }

    #[test]
    fn tokens_round_trip() {
        let token = encode_token("ListQueues", 42);
        assert_eq!(decode_token("ListQueues", &token).ok(), Some(42));
        assert!(decode_token("GetCurrentMetricData", &token).is_err());
        assert!(decode_token("ListQueues", "zz").is_err());
    }
}
