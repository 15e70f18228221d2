//! A Lambda Runtime API emulator that runs a built Lambda binary as a child process.
//!
//! [`LambdaProcess::spawn`] starts an in-process Runtime API server (API version `2018-06-01`) on
//! `127.0.0.1:<ephemeral>`, then the binary with `AWS_LAMBDA_RUNTIME_API` pointing at it and the usual
//! Lambda environment. [`LambdaProcess::invoke`] queues an event, which the function receives from its
//! long-polling `GET /runtime/invocation/next`, and waits for `POST .../response` or `POST .../error`.
//!
//! | Route (prefix `/2018-06-01`) | Behaviour |
//! |---|---|
//! | `GET /runtime/invocation/next` | long poll; 200 with the event and `Lambda-Runtime-Aws-Request-Id`, `-Deadline-Ms`, `-Invoked-Function-Arn`, `-Trace-Id` |
//! | `POST /runtime/invocation/{id}/response` | 202 `{"status":"OK"}`; the body becomes [`Outcome::Response`] |
//! | `POST /runtime/invocation/{id}/error` | 202; `errorType`/`errorMessage` become [`Outcome::Error`], the `Lambda-Runtime-Function-Error-Type` header [`Invocation::function_error_type`] |
//! | `POST /runtime/init/error` | 202; the body is kept for [`LambdaProcess::init_error`] |
//!
//! The server runs on its own thread and runtime, so the blocking [`LambdaProcess::invoke`] can be
//! called from a `#[tokio::test]` without deadlocking (the other local servers also run outside the
//! test's runtime). The child's stdout and stderr are captured line by line ([`LambdaProcess::logs`]);
//! with `AWS_LAMBDA_LOG_FORMAT=JSON` each line is a JSON object.

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use http_body_util::{BodyExt, Full};
use hyper::body::{Bytes, Incoming};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::{json, Value};

use crate::harness::{assert_file, lock, HttpResponse, ServerThread};

/// Path prefix of the Runtime API.
const API_PREFIX: &str = "/2018-06-01";
/// Account used in the invoked function ARN.
const ACCOUNT_ID: &str = "123456789012";
/// Number of log lines included in failure messages.
const LOG_TAIL: usize = 30;

/// The result of one invocation.
#[derive(Debug, Clone, PartialEq)]
pub struct Invocation {
    /// The `Lambda-Runtime-Aws-Request-Id` the function received.
    pub request_id: String,
    /// What the function posted.
    pub outcome: Outcome,
    /// Time from [`LambdaProcess::invoke`] to the function's answer (includes waiting for the function
    /// to ask for the event, i.e. its initialisation on a first invoke).
    pub elapsed: Duration,
    /// The `Lambda-Runtime-Function-Error-Type` header of an `/error` post (`lambda_runtime` sends
    /// `unhandled`); `None` for responses.
    pub function_error_type: Option<String>,
}

impl Invocation {
    /// The response body.
    ///
    /// # Panics
    ///
    /// If the function reported an error, with its type and message.
    pub fn expect_response(self) -> Value {
        match self.outcome {
            Outcome::Response(value) => value,
            Outcome::Error {
                error_type,
                error_message,
            } => panic!(
                "invocation {} failed: {error_type}: {error_message}",
                self.request_id
            ),
        }
    }

    /// `(errorType, errorMessage)`.
    ///
    /// # Panics
    ///
    /// If the function returned a response.
    pub fn expect_error(self) -> (String, String) {
        match self.outcome {
            Outcome::Error {
                error_type,
                error_message,
            } => (error_type, error_message),
            Outcome::Response(value) => panic!(
                "invocation {} succeeded but an error was expected; response: {value}",
                self.request_id
            ),
        }
    }
}

/// What the function posted for an invocation.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// `POST /runtime/invocation/{id}/response`: the body as JSON (a non-JSON body becomes a JSON string).
    Response(Value),
    /// `POST /runtime/invocation/{id}/error`: `errorType` and `errorMessage` of the body.
    Error {
        error_type: String,
        error_message: String,
    },
}

/// Why [`LambdaProcess::try_invoke`] got no answer.
#[derive(Debug, Clone)]
pub enum InvokeError {
    /// Neither `/response` nor `/error` arrived within the timeout.
    Timeout {
        request_id: String,
        timeout: Duration,
        /// Whether the function had fetched the event (`/next`) at all.
        delivered: bool,
        last_logs: Vec<String>,
    },
    /// The function process exited before it answered.
    Exited {
        request_id: String,
        status: String,
        init_error: Option<Value>,
        last_logs: Vec<String>,
    },
}

impl std::fmt::Display for InvokeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InvokeError::Timeout {
                request_id,
                timeout,
                delivered,
                last_logs,
            } => write!(
                f,
                "Lambda invocation {request_id} got no answer within {timeout:?} (event {}). Last log lines:\n{}",
                if *delivered { "was delivered" } else { "was never fetched by the function" },
                last_logs.join("\n")
            ),
            InvokeError::Exited {
                request_id,
                status,
                init_error,
                last_logs,
            } => {
                write!(
                    f,
                    "Lambda process exited ({status}) before answering invocation {request_id}"
                )?;
                if let Some(init_error) = init_error {
                    write!(f, "; init error: {init_error}")?;
                }
                write!(f, ". Last log lines:\n{}", last_logs.join("\n"))
            }
        }
    }
}

impl std::error::Error for InvokeError {}

/// A Lambda binary running under the emulator. Dropping it kills the child (by pid) and stops the server.
pub struct LambdaProcess {
    function_name: String,
    pid: u32,
    child: Mutex<Child>,
    spawned_at: Instant,
    shared: Arc<Shared>,
    logs: Arc<Mutex<Vec<String>>>,
    server: ServerThread,
}

impl std::fmt::Debug for LambdaProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LambdaProcess")
            .field("function_name", &self.function_name)
            .field("pid", &self.pid)
            .field("runtime_api", &self.server.addr())
            .finish_non_exhaustive()
    }
}

impl LambdaProcess {
    /// Starts the Runtime API emulator and the function binary.
    ///
    /// The child gets `AWS_LAMBDA_RUNTIME_API`, `AWS_LAMBDA_FUNCTION_NAME`,
    /// `AWS_LAMBDA_FUNCTION_MEMORY_SIZE=128`, `AWS_LAMBDA_FUNCTION_VERSION=$LATEST`,
    /// `AWS_LAMBDA_LOG_FORMAT=JSON`, `AWS_REGION`/`AWS_DEFAULT_REGION=us-east-1`,
    /// `AWS_ACCESS_KEY_ID`/`AWS_SECRET_ACCESS_KEY=test` and `AWS_EC2_METADATA_DISABLED=true`, then `env`
    /// (which may override any of them). Every other `AWS_*` variable of the test process is removed so the
    /// developer's profile or endpoints never leak into a test.
    ///
    /// # Panics
    ///
    /// If the binary does not exist or cannot be started.
    pub fn spawn(binary: &Path, function_name: &str, env: &[(String, String)]) -> LambdaProcess {
        assert_file(binary, "Lambda binary");
        let shared = Arc::new(Shared::new(function_name));
        let handler_shared = shared.clone();
        let server = ServerThread::start("lambda-runtime-api", move |req| {
            handle(handler_shared.clone(), req)
        });

        let mut cmd = Command::new(binary);
        for (name, _) in std::env::vars_os() {
            let inherited = name.to_string_lossy();
            if inherited.starts_with("AWS_") || inherited == "_X_AMZN_TRACE_ID" {
                cmd.env_remove(&name);
            }
        }
        cmd.env("AWS_LAMBDA_RUNTIME_API", server.addr().to_string())
            .env("AWS_LAMBDA_FUNCTION_NAME", function_name)
            .env("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "128")
            .env("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST")
            .env("AWS_LAMBDA_LOG_FORMAT", "JSON")
            .env(
                "AWS_LAMBDA_LOG_GROUP_NAME",
                format!("/aws/lambda/{function_name}"),
            )
            .env("AWS_LAMBDA_LOG_STREAM_NAME", "2025/01/01/[$LATEST]emulator")
            .env("AWS_REGION", "us-east-1")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_ACCESS_KEY_ID", "test")
            .env("AWS_SECRET_ACCESS_KEY", "test")
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());

        let spawned_at = Instant::now();
        let mut child = spawn_retrying_busy(&mut cmd)
            .unwrap_or_else(|e| panic!("cannot start Lambda binary {}: {e}", binary.display()));
        let logs = Arc::new(Mutex::new(Vec::new()));
        if let Some(stdout) = child.stdout.take() {
            pump_logs(function_name, "stdout", stdout, logs.clone());
        }
        if let Some(stderr) = child.stderr.take() {
            pump_logs(function_name, "stderr", stderr, logs.clone());
        }
        LambdaProcess {
            function_name: function_name.to_string(),
            pid: child.id(),
            child: Mutex::new(child),
            spawned_at,
            shared,
            logs,
            server,
        }
    }

    /// Invokes the function with `event` and blocks until it answers.
    ///
    /// # Panics
    ///
    /// If there is no answer within `timeout` or the process exits first; the message contains the exit
    /// status, any init error and the last log lines. Use [`LambdaProcess::try_invoke`] to inspect those
    /// cases instead.
    pub fn invoke(&self, event: &Value, timeout: Duration) -> Invocation {
        self.try_invoke(event, timeout)
            .unwrap_or_else(|e| panic!("{} ({}): {e}", self.function_name, self.pid))
    }

    /// Like [`LambdaProcess::invoke`], returning the failure instead of panicking.
    pub fn try_invoke(&self, event: &Value, timeout: Duration) -> Result<Invocation, InvokeError> {
        let started = Instant::now();
        let request_id = self.shared.next_request_id();
        let deadline_ms =
            epoch_millis() + u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX / 2);
        let (tx, rx) = mpsc::channel();
        let pending = Pending {
            request_id: request_id.clone(),
            body: Bytes::from(event.to_string()),
            deadline_ms,
            trace_id: trace_id(&request_id),
            reply: tx,
        };
        if self.shared.queue_tx.send(pending).is_err() {
            return Err(self.exited_error(&request_id, "Runtime API emulator stopped".into()));
        }

        let deadline = started + timeout;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            if remaining.is_zero() {
                // A late answer is still accepted (202) and dropped, like a runtime that finishes
                // after its caller gave up.
                let delivered = lock(&self.shared.delivered).contains(&request_id);
                return Err(InvokeError::Timeout {
                    request_id,
                    timeout,
                    delivered,
                    last_logs: self.log_tail(),
                });
            }
            match rx.recv_timeout(remaining.min(Duration::from_millis(25))) {
                Ok(reply) => {
                    return Ok(Invocation {
                        request_id,
                        outcome: reply.outcome,
                        elapsed: started.elapsed(),
                        function_error_type: reply.function_error_type,
                    })
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    if let Some(status) = self.exit_status() {
                        // An answer posted just before exiting may still be in flight.
                        if let Ok(reply) = rx.recv_timeout(Duration::from_millis(100)) {
                            return Ok(Invocation {
                                request_id,
                                outcome: reply.outcome,
                                elapsed: started.elapsed(),
                                function_error_type: reply.function_error_type,
                            });
                        }
                        return Err(self.exited_error(&request_id, status.to_string()));
                    }
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    let status = self.exit_status().map_or_else(
                        || "emulator dropped the invocation".into(),
                        |s| s.to_string(),
                    );
                    return Err(self.exited_error(&request_id, status));
                }
            }
        }
    }

    fn exited_error(&self, request_id: &str, status: String) -> InvokeError {
        // Let the log readers catch the last lines the process wrote.
        std::thread::sleep(Duration::from_millis(100));
        InvokeError::Exited {
            request_id: request_id.to_string(),
            status,
            init_error: self.init_error(),
            last_logs: self.log_tail(),
        }
    }

    /// Waits until the runtime is back at `GET /runtime/invocation/next` with nothing delivered
    /// (the point where Lambda freezes the environment: work after a response is done); returns
    /// how long that took, or `None` after `timeout`.
    pub fn wait_idle(&self, timeout: Duration) -> Option<Duration> {
        let started = Instant::now();
        while started.elapsed() < timeout {
            if self.shared.waiting_next.load(Ordering::SeqCst) > 0
                && lock(&self.shared.in_flight).is_empty()
            {
                return Some(started.elapsed());
            }
            std::thread::sleep(Duration::from_micros(100));
        }
        None
    }

    /// Cold start: time from spawning the process to its first `GET /runtime/invocation/next`.
    pub fn time_to_first_next(&self) -> Option<Duration> {
        lock(&self.shared.first_next).map(|t| t.saturating_duration_since(self.spawned_at))
    }

    /// Every stdout and stderr line so far, in arrival order.
    pub fn logs(&self) -> Vec<String> {
        lock(&self.logs).clone()
    }

    /// The log lines that parse as JSON objects (the function's structured logs).
    pub fn json_logs(&self) -> Vec<Value> {
        lock(&self.logs)
            .iter()
            .filter_map(|line| serde_json::from_str::<Value>(line).ok())
            .filter(Value::is_object)
            .collect()
    }

    /// Waits (bounded by `timeout`) for a log line matching `predicate` and returns it. Log lines are
    /// read asynchronously, so a line written just before the function answered may arrive slightly
    /// after [`LambdaProcess::invoke`] returned.
    pub fn wait_for_log(
        &self,
        predicate: impl Fn(&str) -> bool,
        timeout: Duration,
    ) -> Option<String> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(line) = lock(&self.logs).iter().find(|l| predicate(l)) {
                return Some(line.clone());
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The body posted to `/runtime/init/error`, if any.
    pub fn init_error(&self) -> Option<Value> {
        lock(&self.shared.init_error).clone()
    }

    /// Process id of the function.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The value of `AWS_LAMBDA_RUNTIME_API` (`127.0.0.1:<port>`).
    pub fn runtime_api(&self) -> String {
        self.server.addr().to_string()
    }

    /// The exit status if the process has exited.
    pub fn exit_status(&self) -> Option<ExitStatus> {
        lock(&self.child).try_wait().ok().flatten()
    }

    fn log_tail(&self) -> Vec<String> {
        let logs = lock(&self.logs);
        logs[logs.len().saturating_sub(LOG_TAIL)..].to_vec()
    }
}

impl Drop for LambdaProcess {
    fn drop(&mut self) {
        let mut child = lock(&self.child);
        if matches!(child.try_wait(), Ok(None)) {
            if let Err(e) = child.kill() {
                eprintln!("lambda emulator: cannot kill pid {}: {e}", self.pid);
            }
        }
        let _ = child.wait();
        drop(child);
        self.server.stop();
    }
}

/// Spawns `cmd`, retrying briefly on `ETXTBSY`: a binary or script written just before (by a build or a
/// test) can be briefly "busy" while another thread of the test process forks.
fn spawn_retrying_busy(cmd: &mut Command) -> std::io::Result<Child> {
    const ETXTBSY: i32 = 26;
    let mut attempt = 0;
    loop {
        match cmd.spawn() {
            Err(e) if e.raw_os_error() == Some(ETXTBSY) && attempt < 10 => {
                attempt += 1;
                std::thread::sleep(Duration::from_millis(20));
            }
            result => return result,
        }
    }
}

/// Reads a child's output stream line by line into `logs` (std thread; ends at EOF).
fn pump_logs(
    function_name: &str,
    stream: &str,
    reader: impl std::io::Read + Send + 'static,
    logs: Arc<Mutex<Vec<String>>>,
) {
    use std::io::BufRead;
    let spawned = std::thread::Builder::new()
        .name(format!("{function_name}-{stream}"))
        .spawn(move || {
            let mut reader = std::io::BufReader::new(reader);
            let mut buf = Vec::new();
            loop {
                buf.clear();
                match reader.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => lock(&logs).push(String::from_utf8_lossy(&buf).trim_end().to_string()),
                }
            }
        });
    if let Err(e) = spawned {
        eprintln!("lambda emulator: cannot spawn the {stream} reader: {e}");
    }
}

// ---------------------------------------------------------------------------------------------------
// Runtime API server
// ---------------------------------------------------------------------------------------------------

/// An event waiting to be fetched by `/next`.
struct Pending {
    request_id: String,
    body: Bytes,
    deadline_ms: u64,
    trace_id: String,
    reply: mpsc::Sender<Reply>,
}

/// What the function posted for one request id.
struct Reply {
    outcome: Outcome,
    function_error_type: Option<String>,
}

/// State shared by the test-side handle and the server thread.
struct Shared {
    function_arn: String,
    queue_tx: tokio::sync::mpsc::UnboundedSender<Pending>,
    queue_rx: tokio::sync::Mutex<tokio::sync::mpsc::UnboundedReceiver<Pending>>,
    /// Delivered invocations waiting for `/response` or `/error`.
    in_flight: Mutex<HashMap<String, mpsc::Sender<Reply>>>,
    /// Request ids handed out by `/next`.
    delivered: Mutex<Vec<String>>,
    first_next: Mutex<Option<Instant>>,
    /// `/next` requests waiting for an event: the runtime is idle (Lambda would freeze it).
    waiting_next: AtomicU64,
    init_error: Mutex<Option<Value>>,
    counter: AtomicU64,
}

impl Shared {
    fn new(function_name: &str) -> Shared {
        let (queue_tx, queue_rx) = tokio::sync::mpsc::unbounded_channel();
        Shared {
            function_arn: format!("arn:aws:lambda:us-east-1:{ACCOUNT_ID}:function:{function_name}"),
            queue_tx,
            queue_rx: tokio::sync::Mutex::new(queue_rx),
            in_flight: Mutex::default(),
            delivered: Mutex::default(),
            first_next: Mutex::default(),
            waiting_next: AtomicU64::new(0),
            init_error: Mutex::default(),
            counter: AtomicU64::new(0),
        }
    }

    /// A fresh request id in UUID format.
    fn next_request_id(&self) -> String {
        let n = self.counter.fetch_add(1, Ordering::Relaxed);
        let a = splitmix64(epoch_nanos() ^ (u64::from(std::process::id()) << 32) ^ n);
        let b = splitmix64(a ^ n.rotate_left(17));
        format!(
            "{:08x}-{:04x}-4{:03x}-{:04x}-{:012x}",
            a >> 32,
            (a >> 16) & 0xffff,
            a & 0xfff,
            ((b >> 48) & 0x3fff) | 0x8000,
            b & 0xffff_ffff_ffff
        )
    }
}

async fn handle(shared: Arc<Shared>, req: Request<Incoming>) -> HttpResponse {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let error_type_header = req
        .headers()
        .get("lambda-runtime-function-error-type")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let Some(route) = path.strip_prefix(API_PREFIX) else {
        return not_found(&method, &path);
    };
    let segments: Vec<&str> = route.split('/').filter(|s| !s.is_empty()).collect();

    match (&method, segments.as_slice()) {
        (&Method::GET, ["runtime", "invocation", "next"]) => next_invocation(&shared).await,
        (&Method::POST, ["runtime", "invocation", request_id, kind @ ("response" | "error")]) => {
            let request_id = request_id.to_string();
            let is_error = *kind == "error";
            let body = read_body(req).await;
            let Some(reply_to) = lock(&shared.in_flight).remove(&request_id) else {
                return json_response(
                    StatusCode::BAD_REQUEST,
                    &json!({"errorType": "InvalidRequestID", "errorMessage": format!("Unknown request id {request_id}")}),
                );
            };
            let reply = if is_error {
                let parsed = serde_json::from_slice::<Value>(&body).ok();
                let field = |name: &str| {
                    parsed
                        .as_ref()
                        .and_then(|v| v.get(name))
                        .and_then(Value::as_str)
                        .map(str::to_string)
                };
                Reply {
                    outcome: Outcome::Error {
                        error_type: field("errorType")
                            .or_else(|| error_type_header.clone())
                            .unwrap_or_default(),
                        error_message: field("errorMessage")
                            .unwrap_or_else(|| String::from_utf8_lossy(&body).into_owned()),
                    },
                    function_error_type: error_type_header,
                }
            } else {
                let value = serde_json::from_slice::<Value>(&body)
                    .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
                Reply {
                    outcome: Outcome::Response(value),
                    function_error_type: None,
                }
            };
            // The invoker may have given up (timeout); that is not the function's problem.
            let _ = reply_to.send(reply);
            json_response(StatusCode::ACCEPTED, &json!({"status": "OK"}))
        }
        (&Method::POST, ["runtime", "init", "error"]) => {
            let body = read_body(req).await;
            let mut value = serde_json::from_slice::<Value>(&body)
                .unwrap_or_else(|_| json!({"errorMessage": String::from_utf8_lossy(&body)}));
            if let (Some(map), Some(header)) = (value.as_object_mut(), error_type_header) {
                map.entry("errorType").or_insert(Value::String(header));
            }
            *lock(&shared.init_error) = Some(value);
            json_response(StatusCode::ACCEPTED, &json!({"status": "OK"}))
        }
        _ => not_found(&method, &path),
    }
}

/// Long poll: waits for the next queued event and hands it to the function.
async fn next_invocation(shared: &Shared) -> HttpResponse {
    lock(&shared.first_next).get_or_insert_with(Instant::now);
    shared.waiting_next.fetch_add(1, Ordering::SeqCst);
    let pending = {
        let mut queue = shared.queue_rx.lock().await;
        queue.recv().await
    };
    shared.waiting_next.fetch_sub(1, Ordering::SeqCst);
    let Some(pending) = pending else {
        return json_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            &json!({"errorType": "ServiceException", "errorMessage": "emulator stopped"}),
        );
    };
    lock(&shared.in_flight).insert(pending.request_id.clone(), pending.reply);
    lock(&shared.delivered).push(pending.request_id.clone());

    let mut response = Response::new(Full::new(pending.body));
    let headers = response.headers_mut();
    let mut set = |name: &'static str, value: &str| {
        if let Ok(value) = hyper::header::HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    };
    set("content-type", "application/json");
    set("lambda-runtime-aws-request-id", &pending.request_id);
    set(
        "lambda-runtime-deadline-ms",
        &pending.deadline_ms.to_string(),
    );
    set("lambda-runtime-invoked-function-arn", &shared.function_arn);
    set("lambda-runtime-trace-id", &pending.trace_id);
    response
}

async fn read_body(req: Request<Incoming>) -> Bytes {
    req.into_body()
        .collect()
        .await
        .map(|c| c.to_bytes())
        .unwrap_or_default()
}

fn json_response(status: StatusCode, body: &Value) -> HttpResponse {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())));
    *response.status_mut() = status;
    response.headers_mut().insert(
        "content-type",
        hyper::header::HeaderValue::from_static("application/json"),
    );
    response
}

fn not_found(method: &Method, path: &str) -> HttpResponse {
    json_response(
        StatusCode::NOT_FOUND,
        &json!({"errorType": "NotFound", "errorMessage": format!("The emulator does not serve {method} {path}")}),
    )
}

fn epoch_nanos() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

fn epoch_millis() -> u64 {
    epoch_nanos() / 1_000_000
}

/// An X-Ray style trace header derived from the request id.
fn trace_id(request_id: &str) -> String {
    let seed = request_id.bytes().fold(0xcbf2_9ce4_8422_2325_u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    let a = splitmix64(seed);
    let b = splitmix64(a);
    format!(
        "Root=1-{:08x}-{:08x}{:016x};Parent={:016x};Sampled=0",
        epoch_millis() / 1000,
        a >> 32,
        b,
        splitmix64(b)
    )
}

/// SplitMix64 mixing step (good enough for unique-looking ids).
fn splitmix64(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
