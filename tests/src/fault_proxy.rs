//! A fault-injecting HTTP/1.1 proxy for the local servers (moto, osmem-server, the Connect fake).
//!
//! Point an SDK (or a Lambda process) at [`FaultProxy::endpoint`] instead of the server's own
//! endpoint; every request is forwarded unchanged on a fresh upstream connection, unless a
//! [`FaultRule`] picks it. Rules choose requests by **kind** ([`request_kind`]: the operation of
//! an `X-Amz-Target` header such as `GetItem`, else `METHOD /first-path-segment`) and by **rate**
//! (every n-th matching request, deterministically, so a run is reproducible). Faults:
//!
//! * [`Fault::Delay`] — forward after a pause (a slow dependency);
//! * [`Fault::Status`] — answer an error status without forwarding (`x-amzn-ErrorType` and a JSON
//!   `__type` name the error, so the SDKs classify it like the real service's);
//! * [`Fault::Reset`] — read the request, then close the connection without an answer;
//! * [`Fault::Truncate`] — forward, then send the head and half of the body and close.
//!
//! [`FaultProxy::counts`] says how many faults of each kind were injected. The proxy runs on its
//! own thread and runtime (like the other servers here), binds loopback only, and lives as long
//! as the value.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use http_body_util::{BodyExt, Full};
use hyper::body::{Body, Bytes, Frame, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::net::{TcpListener, TcpStream};

/// What happens to a request a rule picks.
#[derive(Debug, Clone, PartialEq)]
pub enum Fault {
    /// Forward after this pause.
    Delay(Duration),
    /// Answer this status (and error type) without forwarding.
    Status(u16, &'static str),
    /// Close the connection without an answer.
    Reset,
    /// Forward, then send the head and half of the body and close.
    Truncate,
}

impl Fault {
    /// The name [`FaultProxy::counts`] uses.
    pub fn name(&self) -> String {
        match self {
            Fault::Delay(_) => "delay".into(),
            Fault::Status(status, _) => format!("status {status}"),
            Fault::Reset => "reset".into(),
            Fault::Truncate => "truncate".into(),
        }
    }
}

/// One rule: the `every`-th request of `kind` (every kind when `None`) gets `fault`.
#[derive(Debug, Clone)]
pub struct FaultRule {
    pub kind: Option<String>,
    pub every: u64,
    pub fault: Fault,
    seen: u64,
}

impl FaultRule {
    /// Every request of `kind` (`None`: of any kind) gets `fault`.
    pub fn always(kind: Option<&str>, fault: Fault) -> FaultRule {
        FaultRule::every(kind, 1, fault)
    }

    /// The `every`-th, `2 × every`-th, … request of `kind` gets `fault` (`every` ≥ 1).
    pub fn every(kind: Option<&str>, every: u64, fault: Fault) -> FaultRule {
        FaultRule {
            kind: kind.map(str::to_string),
            every: every.max(1),
            fault,
            seen: 0,
        }
    }
}

#[derive(Default)]
struct State {
    rules: Vec<FaultRule>,
    counts: BTreeMap<String, u64>,
    requests: BTreeMap<String, u64>,
}

/// The proxy; see the module documentation.
pub struct FaultProxy {
    endpoint: String,
    state: Arc<Mutex<State>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

/// The kind of a request: the operation of `X-Amz-Target` (`DynamoDB_20120810.GetItem` →
/// `GetItem`), else `METHOD /first-path-segment` (`POST /contact`, `PUT /bucket`).
pub fn request_kind<B>(request: &Request<B>) -> String {
    if let Some(target) = request
        .headers()
        .get("x-amz-target")
        .and_then(|v| v.to_str().ok())
    {
        return target.rsplit('.').next().unwrap_or(target).to_string();
    }
    let first = request
        .uri()
        .path()
        .trim_start_matches('/')
        .split('/')
        .next()
        .unwrap_or("");
    format!("{} /{first}", request.method())
}

impl FaultProxy {
    /// Starts a proxy in front of `upstream` (`http://127.0.0.1:<port>`).
    ///
    /// # Panics
    /// If `upstream` is not a loopback `http://ip:port` or the proxy cannot bind.
    pub fn start(upstream: &str) -> FaultProxy {
        let upstream: SocketAddr = upstream
            .trim_start_matches("http://")
            .trim_end_matches('/')
            .parse()
            .expect("upstream is http://<ip>:<port>");
        assert!(upstream.ip().is_loopback(), "loopback upstreams only");
        let state = Arc::new(Mutex::new(State::default()));
        let (ready_tx, ready_rx) = std::sync::mpsc::channel();
        let (shutdown_tx, shutdown_rx) = tokio::sync::oneshot::channel::<()>();
        let thread_state = state.clone();
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("fault proxy runtime");
            runtime.block_on(async move {
                let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
                ready_tx
                    .send(listener.local_addr().expect("proxy address"))
                    .expect("report address");
                let accept = async {
                    while let Ok((stream, _)) = listener.accept().await {
                        let state = thread_state.clone();
                        tokio::spawn(async move {
                            let service =
                                service_fn(move |request| handle(request, upstream, state.clone()));
                            // Resets and truncations end connections on purpose.
                            let _ = http1::Builder::new()
                                .serve_connection(TokioIo::new(stream), service)
                                .await;
                        });
                    }
                };
                tokio::select! {
                    _ = accept => {}
                    _ = shutdown_rx => {}
                }
            });
        });
        let addr = ready_rx.recv().expect("fault proxy started");
        FaultProxy {
            endpoint: format!("http://{addr}"),
            state,
            shutdown: Some(shutdown_tx),
        }
    }

    /// `http://127.0.0.1:<port>`.
    pub fn endpoint(&self) -> &str {
        &self.endpoint
    }

    /// Adds a rule; the first rule that picks a request decides its fault.
    pub fn add(&self, rule: FaultRule) {
        lock(&self.state).rules.push(rule);
    }

    /// Removes every rule: from now on requests pass unchanged.
    pub fn clear(&self) {
        lock(&self.state).rules.clear();
    }

    /// Faults injected so far, by [`Fault::name`].
    pub fn counts(&self) -> BTreeMap<String, u64> {
        lock(&self.state).counts.clone()
    }

    /// Requests seen so far, by [`request_kind`].
    pub fn requests(&self) -> BTreeMap<String, u64> {
        lock(&self.state).requests.clone()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

fn lock(state: &Mutex<State>) -> std::sync::MutexGuard<'_, State> {
    state
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// Picks the fault for a request of `kind` (advancing the rules' counters) and counts it.
fn pick(state: &Mutex<State>, kind: &str) -> Option<Fault> {
    let mut state = lock(state);
    *state.requests.entry(kind.to_string()).or_default() += 1;
    let fault = state.rules.iter_mut().find_map(|rule| {
        if rule.kind.as_deref().is_some_and(|k| k != kind) {
            return None;
        }
        rule.seen += 1;
        (rule.seen % rule.every == 0).then(|| rule.fault.clone())
    })?;
    *state.counts.entry(fault.name()).or_default() += 1;
    Some(fault)
}

async fn handle(
    request: Request<Incoming>,
    upstream: SocketAddr,
    state: Arc<Mutex<State>>,
) -> Result<Response<ProxyBody>, BoxError> {
    let kind = request_kind(&request);
    let (parts, body) = request.into_parts();
    let body = body.collect().await?.to_bytes();
    let fault = pick(&state, &kind);
    match &fault {
        Some(Fault::Delay(pause)) => tokio::time::sleep(*pause).await,
        Some(Fault::Status(status, error_type)) => {
            let body =
                format!(r#"{{"__type":"{error_type}","message":"injected by the fault proxy"}}"#);
            let response = Response::builder()
                .status(*status)
                .header("content-type", "application/x-amz-json-1.0")
                .header("x-amzn-errortype", *error_type)
                .header("content-length", body.len())
                .body(ProxyBody::full(Bytes::from(body)))?;
            return Ok(response);
        }
        Some(Fault::Reset) => return Err("reset by the fault proxy".into()),
        Some(Fault::Truncate) | None => {}
    }
    let stream = TcpStream::connect(upstream).await?;
    let (mut sender, connection) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(connection);
    let response = sender
        .send_request(Request::from_parts(parts, Full::new(body)))
        .await?;
    let (mut parts, body) = response.into_parts();
    let body = body.collect().await?.to_bytes();
    if fault == Some(Fault::Truncate) {
        parts.headers.remove("transfer-encoding");
        parts.headers.insert("content-length", body.len().into());
        return Ok(Response::from_parts(parts, ProxyBody::truncated(body)));
    }
    Ok(Response::from_parts(parts, ProxyBody::full(body)))
}

/// A whole body, or the first half of one followed by an error (which makes hyper close the
/// connection before the announced length was sent).
pub struct ProxyBody {
    data: Option<Bytes>,
    fail_after: bool,
}

impl ProxyBody {
    fn full(body: Bytes) -> ProxyBody {
        ProxyBody {
            data: Some(body),
            fail_after: false,
        }
    }

    fn truncated(body: Bytes) -> ProxyBody {
        let half = body.slice(..body.len() / 2);
        ProxyBody {
            data: Some(half),
            fail_after: true,
        }
    }
}

impl Body for ProxyBody {
    type Data = Bytes;
    type Error = BoxError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        _: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, BoxError>>> {
        if let Some(data) = self.data.take() {
            if !data.is_empty() {
                return Poll::Ready(Some(Ok(Frame::data(data))));
            }
        }
        if self.fail_after {
            self.fail_after = false;
            return Poll::Ready(Some(Err("body truncated by the fault proxy".into())));
        }
        Poll::Ready(None)
    }

    fn is_end_stream(&self) -> bool {
        self.data.is_none() && !self.fail_after
    }
}
