//! The agent-workspace app's HTTP side: the security headers of every answer, the static page and
//! the API (`core::deny_list::agent_app`) behind a bearer-token check. `connect-events app serve`
//! runs it locally ([`serve`]).

pub mod jwt;

use std::convert::Infallible;
use std::sync::Arc;

use connect_events_core::deny_list::agent_app::{AgentIdentity, ApiRequest};
use connect_events_core::deny_list::DenyListService;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Request, Response};

/// Configuration of the app's origin.
#[derive(Debug, Clone)]
pub struct AppConfig {
    /// The Amazon Connect instance whose contacts are flagged.
    pub instance_id: String,
    /// Origins allowed to frame the app (the instance's `https://<alias>.my.connect.aws`).
    pub frame_ancestors: Vec<String>,
    /// Extra origins the page may call (the identity provider's token endpoint).
    pub connect_src: Vec<String>,
}

/// Largest request body read.
const MAX_BODY: usize = 16 * 1024;

/// The headers every answer carries: a strict CSP whose `frame-ancestors` is exactly the
/// configured origins (`'none'` without any), no `X-Frame-Options` (it cannot allow-list an
/// origin and would break framing by the workspace), no sniffing, no referrer.
pub fn security_headers(config: &AppConfig) -> Vec<(&'static str, String)> {
    let ancestors = if config.frame_ancestors.is_empty() {
        "'none'".to_string()
    } else {
        config.frame_ancestors.join(" ")
    };
    let connect = std::iter::once("'self'".to_string())
        .chain(config.connect_src.iter().cloned())
        .collect::<Vec<_>>()
        .join(" ");
    vec![
        (
            "content-security-policy",
            format!(
                "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
                 connect-src {connect}; frame-ancestors {ancestors}; base-uri 'none'; \
                 form-action 'self'; object-src 'none'"
            ),
        ),
        ("x-content-type-options", "nosniff".into()),
        ("referrer-policy", "no-referrer".into()),
        ("cache-control", "no-store".into()),
    ]
}

type Body = http_body_util::Full<hyper::body::Bytes>;

/// The answer to a request outside `/api/`: the page, or 404. Status, content type, body.
pub fn static_route(method: &str, path: &str) -> (u16, &'static str, &'static [u8]) {
    match (method, path) {
        ("GET" | "HEAD", "/" | "/index.html" | "/app/" | "/app/index.html") => {
            (200, "text/html; charset=utf-8", PAGE.as_bytes())
        }
        _ => (404, "text/plain; charset=utf-8", b"not found"),
    }
}

fn respond(config: &AppConfig, status: u16, content_type: &str, body: Vec<u8>) -> Response<Body> {
    let mut response = Response::new(Body::new(body.into()));
    *response.status_mut() =
        hyper::StatusCode::from_u16(status).unwrap_or(hyper::StatusCode::INTERNAL_SERVER_ERROR);
    let headers = response.headers_mut();
    for (name, value) in security_headers(config) {
        if let Ok(v) = hyper::header::HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    }
    if let Ok(v) = hyper::header::HeaderValue::from_str(content_type) {
        headers.insert("content-type", v);
    }
    response
}

/// The page served at `/`.
pub const PAGE: &str = include_str!("placeholder.html");

/// Serves `listener` until the process ends; `after_write` runs after each API call (the local
/// backend saves its state).
pub async fn serve(
    listener: tokio::net::TcpListener,
    service: Arc<DenyListService>,
    verifier: Arc<jwt::Verifier>,
    config: Arc<AppConfig>,
    after_write: Arc<dyn Fn() + Send + Sync>,
) -> std::io::Result<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        let (service, verifier, config, after_write) = (
            service.clone(),
            verifier.clone(),
            config.clone(),
            after_write.clone(),
        );
        tokio::spawn(async move {
            let handler = hyper::service::service_fn(move |request: Request<Incoming>| {
                let (service, verifier, config, after_write) = (
                    service.clone(),
                    verifier.clone(),
                    config.clone(),
                    after_write.clone(),
                );
                async move {
                    Ok::<_, Infallible>(
                        handle(&service, &verifier, &config, &*after_write, request).await,
                    )
                }
            });
            let io = hyper_util::rt::TokioIo::new(stream);
            let _ = hyper::server::conn::http1::Builder::new()
                .serve_connection(io, handler)
                .await;
        });
    }
}

async fn handle(
    service: &DenyListService,
    verifier: &jwt::Verifier,
    config: &AppConfig,
    after_write: &(dyn Fn() + Send + Sync),
    request: Request<Incoming>,
) -> Response<Body> {
    let method = request.method().as_str().to_string();
    let path = request.uri().path().to_string();
    if !path.starts_with("/api/") {
        return match (method.as_str(), path.as_str()) {
            ("GET" | "HEAD", "/" | "/index.html" | "/app/" | "/app/index.html") => respond(
                config,
                200,
                "text/html; charset=utf-8",
                PAGE.as_bytes().to_vec(),
            ),
            _ => respond(
                config,
                404,
                "text/plain; charset=utf-8",
                b"not found".to_vec(),
            ),
        };
    }
    let token = request
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::to_string);
    let agent = token.and_then(
        |t| match verifier.verify(&t, chrono::Utc::now().timestamp()) {
            Ok(username) => Some(AgentIdentity { username }),
            Err(e) => {
                tracing::warn!(error = %e, "agent app: token refused");
                None
            }
        },
    );
    let body = match http_body_util::Limited::new(request.into_body(), MAX_BODY)
        .collect()
        .await
    {
        Ok(b) => b.to_bytes(),
        Err(_) => {
            return respond(
                config,
                413,
                "application/json",
                br#"{"error":"too_large"}"#.to_vec(),
            )
        }
    };
    let answer = service
        .agent_api(
            &config.instance_id,
            &ApiRequest {
                method: &method,
                path: &path,
                body: &body,
                agent,
            },
            chrono::Utc::now(),
        )
        .await;
    if method == "POST" {
        after_write();
    }
    respond(
        config,
        answer.status,
        "application/json",
        answer.body.to_string().into_bytes(),
    )
}
