//! Local servers for integration tests: moto (S3, DynamoDB, CloudWatch Logs) and osmem-server (OpenSearch).
//!
//! Both run as child processes from the project's Python venv ([`venv_dir`]). [`moto`] and [`osmem`] start
//! **one** server per test process on first use and share it between all tests; tests isolate themselves
//! with [`unique`] names. Tests that need a private server use [`Moto::start_dedicated`] /
//! [`Osmem::start_dedicated`], whose handle kills the child when dropped.
//!
//! Lifetime of the shared servers: the harness keeps the write end of each child's stdin pipe in a
//! `static`. When the test process exits (normally, by panic or by a signal) the OS closes that pipe; the
//! servers watch their stdin and exit on EOF (osmem-server natively, moto through a tiny Python wrapper),
//! so no server outlives the test binary.
//!
//! The shared servers are not tied to any Tokio runtime: they are plain [`std::process::Child`]ren whose
//! output is drained by std threads, so every `#[tokio::test]` (each with its own runtime) can use them.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::future::Future;
use std::io::{BufRead, BufReader, Read};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex, MutexGuard, OnceLock, PoisonError};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use aws_config::retry::RetryConfig;
use aws_config::timeout::TimeoutConfig;
use aws_config::{BehaviorVersion, Region, SdkConfig};
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use opensearch::http::transport::{SingleNodeConnectionPool, TransportBuilder};
use opensearch::http::Url;
use opensearch::OpenSearch;

use crate::workspace_root;

/// Region used by every local SDK configuration.
pub const REGION: &str = "us-east-1";

/// How long a server child may take to print its ready line.
pub const STARTUP_TIMEOUT: Duration = Duration::from_secs(30);

/// Command that creates the venv the harness expects.
const VENV_INSTALL_HINT: &str = "python3 -m venv .venv-local && .venv-local/bin/pip install \
     \"moto[server]==5.2.5\" \"osmem-server==0.1.6\" \"cfn-lint==1.58.0\" \
     (run in the workspace root, or point CONNECT_EVENTS_VENV at an existing venv)";

/// Python wrapper around `moto.server.main`: exits the interpreter as soon as stdin reaches EOF, i.e. when
/// the test process that holds the pipe's write end exits or drops it.
const MOTO_WRAPPER: &str = r#"
import os, sys, threading
from moto.server import main

def _exit_on_stdin_eof():
    try:
        while sys.stdin.buffer.read(65536):
            pass
    finally:
        os._exit(0)

threading.Thread(target=_exit_on_stdin_eof, daemon=True).start()
main(sys.argv[1:])
"#;

/// Number of recent output lines kept per server child for diagnostics.
const OUTPUT_LINES_KEPT: usize = 200;

/// The Python virtual environment with moto and osmem-server: `CONNECT_EVENTS_VENV` if set, else
/// `<workspace>/.venv-local`.
pub fn venv_dir() -> PathBuf {
    match std::env::var_os("CONNECT_EVENTS_VENV") {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => workspace_root().join(".venv-local"),
    }
}

/// A name that is unique per test process and call, valid as an S3 bucket, DynamoDB table, log group and
/// OpenSearch index name: lowercase `[a-z0-9-]`, starts with a letter or digit, at most 63 characters.
///
/// `unique("Contact Events")` → `contact-events-12345-0`.
pub fn unique(prefix: &str) -> String {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let n = COUNTER.fetch_add(1, Ordering::Relaxed);
    let mut clean: String = prefix
        .chars()
        .map(|c| {
            let c = c.to_ascii_lowercase();
            if c.is_ascii_lowercase() || c.is_ascii_digit() {
                c
            } else {
                '-'
            }
        })
        .collect();
    clean.truncate(32);
    let clean = clean.trim_matches('-');
    let clean = if clean.is_empty() { "t" } else { clean };
    format!("{clean}-{}-{n}", std::process::id())
}

/// An [`SdkConfig`] for a local server: the given endpoint, region `us-east-1`, static test credentials,
/// standard retries with `max_attempts` attempts (10 ms initial backoff, at most 200 ms) and short timeouts
/// (connect 2 s, attempt 10 s, operation 30 s).
///
/// Caveat (aws-config behaviour): a service-specific `AWS_ENDPOINT_URL_<SERVICE>` variable in the test
/// process environment (or an `endpoint_url` in a profile's `services` section) still overrides this
/// endpoint when a client is built with `Client::new(&sdk_config)`. Never set those variables in the test
/// process (pass them to child processes only); the convenience clients of this module
/// ([`Moto::s3`], [`Moto::dynamodb`], [`Moto::logs`], `ConnectFake::client`) set the endpoint on the
/// service configuration itself and are immune.
pub async fn local_sdk_config(endpoint: &str, max_attempts: u32) -> SdkConfig {
    let retry = RetryConfig::standard()
        .with_max_attempts(max_attempts)
        .with_initial_backoff(Duration::from_millis(10))
        .with_max_backoff(Duration::from_millis(200));
    let timeouts = TimeoutConfig::builder()
        .connect_timeout(Duration::from_secs(2))
        .operation_attempt_timeout(Duration::from_secs(10))
        .operation_timeout(Duration::from_secs(30))
        .build();
    aws_config::defaults(BehaviorVersion::latest())
        .endpoint_url(endpoint)
        .region(Region::new(REGION))
        .test_credentials()
        .retry_config(retry)
        .timeout_config(timeouts)
        .load()
        .await
}

// ---------------------------------------------------------------------------------------------------
// moto
// ---------------------------------------------------------------------------------------------------

/// A running moto server (S3, DynamoDB, CloudWatch Logs, ... on one port).
///
/// The shared instance from [`moto`] lives until the test process exits. A handle from
/// [`Moto::start_dedicated`] kills its server when dropped.
pub struct Moto {
    /// `http://127.0.0.1:<port>`.
    pub endpoint: String,
    /// Process id of the server (the Python interpreter).
    pub pid: u32,
    process: ServerProcess,
}

impl std::fmt::Debug for Moto {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Moto")
            .field("endpoint", &self.endpoint)
            .field("pid", &self.pid)
            .finish()
    }
}

/// The moto server shared by all tests of this process, started on first use.
///
/// # Panics
///
/// If the server cannot be started (venv missing, moto not installed, no ready line within
/// [`STARTUP_TIMEOUT`]), with a message that says what to do. The failure is remembered, so later callers
/// fail immediately with the same message. Tests never skip silently.
pub async fn moto() -> &'static Moto {
    static MOTO: OnceLock<Result<Moto, String>> = OnceLock::new();
    shared_server(&MOTO, Moto::spawn).await
}

impl Moto {
    /// Starts a private moto server; dropping the handle (or [`Moto::stop`]) kills it.
    ///
    /// # Panics
    ///
    /// As [`moto`].
    pub async fn start_dedicated() -> Moto {
        run_blocking(Moto::spawn)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn spawn() -> Result<Moto, String> {
        let python = venv_python()?;
        let mut cmd = Command::new(&python);
        cmd.arg("-c")
            .arg(MOTO_WRAPPER)
            .args(["-H", "127.0.0.1", "-p", "0"])
            // Unbuffered output so the ready line arrives as soon as it is printed.
            .env("PYTHONUNBUFFERED", "1");
        let (process, endpoint) =
            ServerProcess::spawn("moto", cmd, parse_moto_ready, STARTUP_TIMEOUT)?;
        Ok(Moto {
            pid: process.pid,
            endpoint,
            process,
        })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Process id of the server.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// SDK configuration for this server: endpoint, `us-east-1`, test credentials, standard retries with
    /// 2 attempts and short timeouts (see [`local_sdk_config`]).
    pub async fn sdk_config(&self) -> SdkConfig {
        local_sdk_config(&self.endpoint, 2).await
    }

    /// An S3 client for this server. Path-style addressing is forced (the endpoint is an IP address, so
    /// the SDK would pick it anyway).
    pub async fn s3(&self) -> aws_sdk_s3::Client {
        let conf = aws_sdk_s3::config::Builder::from(&self.sdk_config().await)
            .endpoint_url(&self.endpoint)
            .force_path_style(true)
            .build();
        aws_sdk_s3::Client::from_conf(conf)
    }

    /// A DynamoDB client for this server.
    pub async fn dynamodb(&self) -> aws_sdk_dynamodb::Client {
        let conf = aws_sdk_dynamodb::config::Builder::from(&self.sdk_config().await)
            .endpoint_url(&self.endpoint)
            .build();
        aws_sdk_dynamodb::Client::from_conf(conf)
    }

    /// An SQS client for this server.
    pub async fn sqs(&self) -> aws_sdk_sqs::Client {
        let conf = aws_sdk_sqs::config::Builder::from(&self.sdk_config().await)
            .endpoint_url(&self.endpoint)
            .build();
        aws_sdk_sqs::Client::from_conf(conf)
    }

    /// A CloudWatch Logs client for this server.
    pub async fn logs(&self) -> aws_sdk_cloudwatchlogs::Client {
        let conf = aws_sdk_cloudwatchlogs::config::Builder::from(&self.sdk_config().await)
            .endpoint_url(&self.endpoint)
            .build();
        aws_sdk_cloudwatchlogs::Client::from_conf(conf)
    }

    /// The last lines the server wrote to stdout/stderr (ANSI codes removed), for diagnostics.
    pub fn recent_output(&self) -> Vec<String> {
        self.process.recent_output()
    }

    /// Kills the server now (same as dropping the handle).
    pub fn stop(self) {}
}

impl Drop for Moto {
    fn drop(&mut self) {
        self.process.kill();
    }
}

/// Extracts `http://127.0.0.1:<port>` from moto's ` * Running on http://127.0.0.1:<port>` line.
fn parse_moto_ready(line: &str) -> Option<String> {
    let rest = line.split("Running on ").nth(1)?;
    let url = rest.split_whitespace().next()?.trim_end_matches('/');
    (url.starts_with("http://") && url.rsplit(':').next()?.parse::<u16>().is_ok())
        .then(|| url.to_string())
}

// ---------------------------------------------------------------------------------------------------
// osmem-server
// ---------------------------------------------------------------------------------------------------

/// A running osmem-server (in-memory OpenSearch API 3.x).
///
/// The shared instance from [`osmem`] lives until the test process exits. A handle from
/// [`Osmem::start_dedicated`] kills its server when dropped.
pub struct Osmem {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    /// Process id of the server.
    pub pid: u32,
    process: ServerProcess,
}

impl std::fmt::Debug for Osmem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Osmem")
            .field("url", &self.url)
            .field("pid", &self.pid)
            .finish()
    }
}

/// The osmem-server shared by all tests of this process, started on first use.
///
/// # Panics
///
/// If the server cannot be started, with a message that says what to do (see [`moto`]).
pub async fn osmem() -> &'static Osmem {
    static OSMEM: OnceLock<Result<Osmem, String>> = OnceLock::new();
    shared_server(&OSMEM, Osmem::spawn).await
}

impl Osmem {
    /// Starts a private osmem-server; dropping the handle (or [`Osmem::stop`]) kills it.
    ///
    /// # Panics
    ///
    /// As [`osmem`].
    pub async fn start_dedicated() -> Osmem {
        run_blocking(Osmem::spawn)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    fn spawn() -> Result<Osmem, String> {
        let binary = osmem_binary()?;
        let mut cmd = Command::new(&binary);
        cmd.args(["-addr", "127.0.0.1:0"]);
        let (process, url) =
            ServerProcess::spawn("osmem-server", cmd, parse_osmem_ready, STARTUP_TIMEOUT)?;
        Ok(Osmem {
            pid: process.pid,
            url,
            process,
        })
    }

    /// `http://127.0.0.1:<port>`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Process id of the server.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// An unauthenticated `opensearch` client for this server.
    pub fn client(&self) -> OpenSearch {
        self.build_client(None)
    }

    /// An `opensearch` client that signs every request with SigV4 (service `es`) using the credentials
    /// and region of `sdk_config`, exactly like the production transport. osmem-server accepts and
    /// ignores the signature.
    pub fn client_sigv4(&self, sdk_config: &SdkConfig) -> OpenSearch {
        let credentials = opensearch::auth::Credentials::try_from(sdk_config)
            .expect("SdkConfig for SigV4 needs a credentials provider and a region");
        self.build_client(Some(credentials))
    }

    fn build_client(&self, credentials: Option<opensearch::auth::Credentials>) -> OpenSearch {
        let url = Url::parse(&self.url)
            .unwrap_or_else(|e| panic!("osmem-server URL {:?} is invalid: {e}", self.url));
        let mut builder = TransportBuilder::new(SingleNodeConnectionPool::new(url))
            .disable_proxy()
            .timeout(Duration::from_secs(30));
        if let Some(credentials) = credentials {
            builder = builder.auth(credentials).service_name("es");
        }
        let transport = builder
            .build()
            .expect("building the opensearch transport for osmem-server");
        OpenSearch::new(transport)
    }

    /// The last lines the server wrote to stdout/stderr, for diagnostics.
    pub fn recent_output(&self) -> Vec<String> {
        self.process.recent_output()
    }

    /// Kills the server now (same as dropping the handle).
    pub fn stop(self) {}
}

impl Drop for Osmem {
    fn drop(&mut self) {
        self.process.kill();
    }
}

/// Extracts `url` from osmem-server's JSON ready line
/// (`{"url":"http://127.0.0.1:40393","pid":10643,...}`).
fn parse_osmem_ready(line: &str) -> Option<String> {
    let line = line.trim();
    if !line.starts_with('{') {
        return None;
    }
    let value: serde_json::Value = serde_json::from_str(line).ok()?;
    Some(
        value
            .get("url")?
            .as_str()?
            .trim_end_matches('/')
            .to_string(),
    )
}

/// Locates the osmem-server binary through the Python package (honours `OSMEM_SERVER_BIN`).
fn osmem_binary() -> Result<PathBuf, String> {
    let python = venv_python()?;
    let mut cmd = Command::new(&python);
    cmd.args([
        "-c",
        "import osmem_server; print(osmem_server.resolve_binary())",
    ]);
    let (status, stdout, stderr) = run_with_timeout(cmd, Duration::from_secs(20))
        .map_err(|e| format!("cannot locate osmem-server with {}: {e}", python.display()))?;
    let path = stdout.trim();
    if !status.success() || path.is_empty() {
        return Err(format!(
            "cannot locate osmem-server: `{} -c 'import osmem_server; ...'` failed ({status}): {}\n\
             Install it with: {VENV_INSTALL_HINT}",
            python.display(),
            stderr.trim()
        ));
    }
    let path = PathBuf::from(path);
    if !path.is_file() {
        return Err(format!(
            "osmem_server.resolve_binary() returned {}, which does not exist",
            path.display()
        ));
    }
    Ok(path)
}

// ---------------------------------------------------------------------------------------------------
// Server child processes
// ---------------------------------------------------------------------------------------------------

/// The venv's Python interpreter, or an actionable error.
fn venv_python() -> Result<PathBuf, String> {
    let venv = venv_dir();
    let python = venv.join("bin").join("python");
    if python.exists() {
        Ok(python)
    } else {
        Err(format!(
            "Python venv for the local test servers not found ({} does not exist).\n\
             Create it with: {VENV_INSTALL_HINT}",
            python.display()
        ))
    }
}

/// Starts a shared server once per process; caches failures so every caller gets the same message fast.
async fn shared_server<T: Send + Sync + 'static>(
    cell: &'static OnceLock<Result<T, String>>,
    start: fn() -> Result<T, String>,
) -> &'static T {
    let result = match cell.get() {
        Some(result) => result,
        // Waiting for the ready line blocks, so do it off the test's runtime threads.
        None => run_blocking(move || cell.get_or_init(start)).await,
    };
    match result {
        Ok(server) => server,
        Err(message) => panic!("{message}"),
    }
}

/// Runs blocking start-up code on Tokio's blocking pool and re-raises its panics.
async fn run_blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    match tokio::task::spawn_blocking(f).await {
        Ok(value) => value,
        Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
        Err(e) => panic!("server start-up task was cancelled: {e}"),
    }
}

/// Shared ring buffer of a child's most recent output lines.
type OutputLog = Arc<Mutex<VecDeque<String>>>;

/// A server child process: stdin kept open (the server exits on EOF), stdout and stderr drained by
/// threads into a small ring buffer so the child never blocks on a full pipe.
struct ServerProcess {
    name: &'static str,
    pid: u32,
    child: Mutex<Child>,
    /// Write end of the child's stdin. Never written; dropping it (or process exit) stops the server.
    stdin: Mutex<Option<ChildStdin>>,
    output: OutputLog,
}

impl ServerProcess {
    /// Spawns `cmd` and waits until `ready` recognises a line on stdout or stderr; returns the value it
    /// extracted. On failure the child is killed and the error names the cause and the child's output.
    fn spawn(
        name: &'static str,
        mut cmd: Command,
        ready: fn(&str) -> Option<String>,
        timeout: Duration,
    ) -> Result<(ServerProcess, String), String> {
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let program = cmd.get_program().to_string_lossy().into_owned();
        let mut child = cmd
            .spawn()
            .map_err(|e| format!("cannot start {name} ({program}): {e}"))?;
        let output: OutputLog = Arc::default();
        let (tx, rx) = mpsc::channel::<String>();
        if let Some(stdout) = child.stdout.take() {
            pump_lines(name, "stdout", stdout, output.clone(), Some(tx.clone()));
        }
        if let Some(stderr) = child.stderr.take() {
            pump_lines(name, "stderr", stderr, output.clone(), Some(tx));
        }
        let process = ServerProcess {
            name,
            pid: child.id(),
            stdin: Mutex::new(child.stdin.take()),
            child: Mutex::new(child),
            output,
        };

        let deadline = Instant::now() + timeout;
        loop {
            let remaining = deadline.saturating_duration_since(Instant::now());
            match rx.recv_timeout(remaining) {
                Ok(line) => {
                    if let Some(value) = ready(&line) {
                        return Ok((process, value));
                    }
                }
                Err(mpsc::RecvTimeoutError::Timeout) => {
                    process.kill();
                    return Err(format!(
                        "{name} ({program}, pid {}) printed no ready line within {timeout:?}; killed it. Output:\n{}",
                        process.pid,
                        process.recent_output().join("\n")
                    ));
                }
                Err(mpsc::RecvTimeoutError::Disconnected) => {
                    // Both pipes closed: the child is gone or about to be.
                    let status = process
                        .wait_exit(Duration::from_secs(2))
                        .map_or_else(|| "still running".to_string(), |s| s.to_string());
                    process.kill();
                    return Err(format!(
                        "{name} ({program}) exited before it was ready ({status}). Output:\n{}\n\
                         If a Python module is missing, (re)create the venv: {VENV_INSTALL_HINT}",
                        process.recent_output().join("\n")
                    ));
                }
            }
        }
    }

    fn recent_output(&self) -> Vec<String> {
        lock(&self.output).iter().cloned().collect()
    }

    /// Waits up to `timeout` for the child to exit.
    fn wait_exit(&self, timeout: Duration) -> Option<ExitStatus> {
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(Some(status)) = lock(&self.child).try_wait() {
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Closes stdin, kills the child by pid (SIGKILL) and reaps it. Idempotent.
    fn kill(&self) {
        drop(lock(&self.stdin).take());
        let mut child = lock(&self.child);
        if matches!(child.try_wait(), Ok(None)) {
            if let Err(e) = child.kill() {
                eprintln!("harness: cannot kill {} (pid {}): {e}", self.name, self.pid);
            }
        }
        let _ = child.wait();
    }
}

/// Reads `reader` line by line on a std thread: strips ANSI escape codes, keeps the line in `log` (at most
/// [`OUTPUT_LINES_KEPT`]) and forwards it to `tx` while somebody listens. Ends at EOF.
fn pump_lines(
    name: &str,
    stream: &str,
    reader: impl Read + Send + 'static,
    log: OutputLog,
    tx: Option<mpsc::Sender<String>>,
) {
    let spawned = std::thread::Builder::new()
        .name(format!("{name}-{stream}"))
        .spawn(move || {
            let mut reader = BufReader::new(reader);
            let mut buf = Vec::new();
            let mut tx = tx;
            loop {
                buf.clear();
                match reader.read_until(b'\n', &mut buf) {
                    Ok(0) | Err(_) => break,
                    Ok(_) => {
                        let line = strip_ansi(String::from_utf8_lossy(&buf).trim_end());
                        {
                            let mut log = lock(&log);
                            if log.len() == OUTPUT_LINES_KEPT {
                                log.pop_front();
                            }
                            log.push_back(line.clone());
                        }
                        if tx.as_ref().is_some_and(|tx| tx.send(line).is_err()) {
                            tx = None;
                        }
                    }
                }
            }
        });
    if let Err(e) = spawned {
        eprintln!("harness: cannot spawn the {stream} reader for {name}: {e}");
    }
}

/// Removes ANSI CSI escape sequences (`ESC [ ... final-byte`) such as moto's colour codes.
pub(crate) fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\u{1b}' {
            if chars.peek() == Some(&'[') {
                chars.next();
                // Parameter and intermediate bytes, then one final byte in 0x40..=0x7E.
                for c in chars.by_ref() {
                    if ('\u{40}'..='\u{7e}').contains(&c) {
                        break;
                    }
                }
            }
            continue;
        }
        out.push(c);
    }
    out
}

/// Runs a short command with a bound on its run time; returns status, stdout and stderr.
fn run_with_timeout(
    mut cmd: Command,
    timeout: Duration,
) -> Result<(ExitStatus, String, String), String> {
    cmd.stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = cmd.spawn().map_err(|e| e.to_string())?;
    let read_all = |r: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut s = String::new();
            if let Some(mut r) = r {
                let _ = r.read_to_string(&mut s);
            }
            s
        })
    };
    let out = read_all(
        child
            .stdout
            .take()
            .map(|r| Box::new(r) as Box<dyn Read + Send>),
    );
    let err = read_all(
        child
            .stderr
            .take()
            .map(|r| Box::new(r) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + timeout;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("did not finish within {timeout:?}"));
            }
            Err(e) => return Err(e.to_string()),
        }
    };
    let stdout = out.join().unwrap_or_default();
    let stderr = err.join().unwrap_or_default();
    Ok((status, stdout, stderr))
}

/// Locks a mutex, ignoring poisoning (a panicking test must not break the shared servers for others).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Checks that `path` is an existing file, with a readable panic otherwise.
pub(crate) fn assert_file(path: &Path, what: &str) {
    assert!(
        path.is_file(),
        "{what} not found at {}: build it first (`cargo build --workspace --bins`)",
        path.display()
    );
}

// ---------------------------------------------------------------------------------------------------
// In-process HTTP servers (Connect fake, Runtime API emulator)
// ---------------------------------------------------------------------------------------------------

/// Response type of the in-process servers.
pub(crate) type HttpResponse = Response<Full<Bytes>>;

/// An HTTP/1.1 server on `127.0.0.1:<ephemeral>` running on its own std thread with a current-thread Tokio
/// runtime, independent of the runtime of the test that created it. Dropping it stops the server and
/// joins the thread.
pub(crate) struct ServerThread {
    addr: SocketAddr,
    shutdown: Mutex<Option<tokio::sync::oneshot::Sender<()>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl ServerThread {
    /// Binds the listener (so the port is known when this returns) and starts serving with `handler`.
    pub(crate) fn start<H, F>(name: &str, handler: H) -> ServerThread
    where
        H: Fn(Request<Incoming>) -> F + Send + Sync + 'static,
        F: Future<Output = HttpResponse> + Send + 'static,
    {
        let listener = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap_or_else(|e| panic!("{name}: cannot bind 127.0.0.1:0: {e}"));
        listener
            .set_nonblocking(true)
            .unwrap_or_else(|e| panic!("{name}: cannot make the listener non-blocking: {e}"));
        let addr = listener
            .local_addr()
            .unwrap_or_else(|e| panic!("{name}: no local address: {e}"));
        let (shutdown_tx, shutdown_rx) = tokio::sync::oneshot::channel();
        let handler = Arc::new(handler);
        let thread_name = name.to_string();
        let thread = std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .unwrap_or_else(|e| panic!("{thread_name}: cannot build a Tokio runtime: {e}"));
                runtime.block_on(serve(listener, handler, shutdown_rx));
            })
            .unwrap_or_else(|e| panic!("{name}: cannot spawn the server thread: {e}"));
        ServerThread {
            addr,
            shutdown: Mutex::new(Some(shutdown_tx)),
            thread: Mutex::new(Some(thread)),
        }
    }

    /// The bound address (`127.0.0.1:<port>`).
    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting, drops open connections and joins the thread. Idempotent.
    pub(crate) fn stop(&self) {
        if let Some(tx) = lock(&self.shutdown).take() {
            let _ = tx.send(());
        }
        if let Some(thread) = lock(&self.thread).take() {
            let _ = thread.join();
        }
    }
}

impl Drop for ServerThread {
    fn drop(&mut self) {
        self.stop();
    }
}

async fn serve<H, F>(
    listener: std::net::TcpListener,
    handler: Arc<H>,
    mut shutdown: tokio::sync::oneshot::Receiver<()>,
) where
    H: Fn(Request<Incoming>) -> F + Send + Sync + 'static,
    F: Future<Output = HttpResponse> + Send + 'static,
{
    let listener = match tokio::net::TcpListener::from_std(listener) {
        Ok(listener) => listener,
        Err(e) => {
            eprintln!("harness: cannot register the listener with Tokio: {e}");
            return;
        }
    };
    loop {
        tokio::select! {
            // A send or a dropped sender both mean "stop".
            _ = &mut shutdown => break,
            accepted = listener.accept() => {
                let stream = match accepted {
                    Ok((stream, _)) => stream,
                    Err(_) => {
                        // E.g. EMFILE: back off briefly instead of spinning.
                        tokio::time::sleep(Duration::from_millis(10)).await;
                        continue;
                    }
                };
                let handler = handler.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req| {
                        let response = handler(req);
                        async move { Ok::<_, Infallible>(response.await) }
                    });
                    // Connection errors (client hung up) are not interesting to tests.
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        }
    }
}
