//! The agent-workspace app's HTTP side: the security headers of every answer, the static files
//! under `/app/` (the built front end, [`assets`]) with the page's `config.json`, and the API
//! (`core::deny_list::agent_app`) behind a bearer-token check. `connect-events app serve` runs it
//! locally ([`serve`]); the `agent-app` Lambda answers the same routes.

pub mod assets;
pub mod jwt;

use std::borrow::Cow;
use std::convert::Infallible;
use std::sync::Arc;

use connect_events_core::deny_list::agent_app::{AgentIdentity, ApiRequest};
use connect_events_core::deny_list::DenyListService;
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper::{Request, Response};
use serde_json::{json, Value};

/// Configuration of the app's origin.
#[derive(Debug, Clone, Default)]
pub struct AppConfig {
    /// The Amazon Connect instance whose contacts are flagged.
    pub instance_id: String,
    /// Origins allowed to frame the app (the instance's `https://<alias>.my.connect.aws`).
    pub frame_ancestors: Vec<String>,
    /// Extra origins the page may call (the identity provider's token endpoint when it is not on
    /// the issuer's origin, as Cognito's hosted UI is not).
    pub connect_src: Vec<String>,
    /// Issuer of the agents' tokens: the page signs in there (OIDC discovery) and the API checks it.
    pub issuer: String,
    /// The page's OAuth client id at the issuer.
    pub client_id: String,
    /// Scopes the page asks for.
    pub scope: String,
}

impl AppConfig {
    /// From the environment: `APP_FRAME_ANCESTORS`, `APP_CONNECT_SRC` (space-separated origins),
    /// `APP_JWT_ISSUER`, `APP_OIDC_CLIENT_ID` (default `APP_JWT_AUDIENCE`), `APP_OIDC_SCOPE`
    /// (default `openid`).
    pub fn from_env(instance_id: String) -> AppConfig {
        let var = |name: &str| std::env::var(name).unwrap_or_default().trim().to_string();
        let list = |name: &str| var(name).split_whitespace().map(str::to_string).collect();
        let client_id = Some(var("APP_OIDC_CLIENT_ID"))
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| var("APP_JWT_AUDIENCE"));
        let scope = Some(var("APP_OIDC_SCOPE"))
            .filter(|s| !s.is_empty())
            .unwrap_or_else(|| "openid".into());
        AppConfig {
            instance_id,
            frame_ancestors: list("APP_FRAME_ANCESTORS"),
            connect_src: list("APP_CONNECT_SRC"),
            issuer: var("APP_JWT_ISSUER"),
            client_id,
            scope,
        }
    }

    /// The page's `config.json`: where it signs the agent in.
    pub fn page_config(&self) -> Value {
        json!({ "issuer": self.issuer, "clientId": self.client_id, "scope": self.scope })
    }
}

/// `scheme://host[:port]` of a URL.
fn origin_of(url: &str) -> Option<&str> {
    let (scheme, rest) = url.split_once("://")?;
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    (!scheme.is_empty() && end > 0).then(|| &url[..scheme.len() + 3 + end])
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
    // The page fetches the issuer's discovery document and keys from the issuer's origin.
    let mut connect = vec!["'self'"];
    connect.extend(origin_of(&config.issuer));
    for extra in &config.connect_src {
        if !connect.contains(&extra.as_str()) {
            connect.push(extra);
        }
    }
    let connect = connect.join(" ");
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

/// The answer to a request outside `/api/`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Page<'a> {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Cow<'a, [u8]>,
    /// Where a redirect points.
    pub location: Option<&'static str>,
}

/// The canonical address of the app (the AccessUrl): its files are relative to it.
pub const APP_PATH: &str = "/app/";

/// Files under `/app/`, the page's configuration at `/app/config.json`; `/` redirects to `/app/`.
pub fn static_route<'a>(
    config: &AppConfig,
    assets: &'a assets::Assets,
    method: &str,
    path: &str,
) -> Page<'a> {
    let page = |status, content_type, body: Cow<'a, [u8]>| Page {
        status,
        content_type,
        body,
        location: None,
    };
    if !matches!(method, "GET" | "HEAD") {
        return page(
            405,
            "text/plain; charset=utf-8",
            Cow::Borrowed(b"method not allowed"),
        );
    }
    if matches!(path, "/" | "/app" | "/index.html") {
        return Page {
            location: Some(APP_PATH),
            ..page(
                302,
                "text/plain; charset=utf-8",
                Cow::Borrowed(b"see /app/"),
            )
        };
    }
    let name = match path.strip_prefix(APP_PATH) {
        Some("") => "index.html",
        Some(name) => name,
        None => "",
    };
    if name == "config.json" {
        return page(
            200,
            "application/json",
            Cow::Owned(config.page_config().to_string().into_bytes()),
        );
    }
    match assets.get(name).filter(|_| !name.contains('/')) {
        Some((content_type, body)) => page(200, content_type, Cow::Borrowed(body)),
        None => page(
            404,
            "text/plain; charset=utf-8",
            Cow::Borrowed(b"not found"),
        ),
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

/// Serves `listener` until the process ends; `after_write` runs after each API call (the local
/// backend saves its state).
pub async fn serve(
    listener: tokio::net::TcpListener,
    service: Arc<DenyListService>,
    verifier: Arc<jwt::Verifier>,
    config: Arc<AppConfig>,
    assets: Arc<assets::Assets>,
    after_write: Arc<dyn Fn() + Send + Sync>,
) -> std::io::Result<()> {
    loop {
        let (stream, _) = listener.accept().await?;
        let (service, verifier, config, assets, after_write) = (
            service.clone(),
            verifier.clone(),
            config.clone(),
            assets.clone(),
            after_write.clone(),
        );
        tokio::spawn(async move {
            let handler = hyper::service::service_fn(move |request: Request<Incoming>| {
                let (service, verifier, config, assets, after_write) = (
                    service.clone(),
                    verifier.clone(),
                    config.clone(),
                    assets.clone(),
                    after_write.clone(),
                );
                async move {
                    Ok::<_, Infallible>(
                        handle(
                            &service,
                            &verifier,
                            &config,
                            &assets,
                            &*after_write,
                            request,
                        )
                        .await,
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
    assets: &assets::Assets,
    after_write: &(dyn Fn() + Send + Sync),
    request: Request<Incoming>,
) -> Response<Body> {
    let method = request.method().as_str().to_string();
    let path = request.uri().path().to_string();
    if !path.starts_with("/api/") {
        let page = static_route(config, assets, &method, &path);
        let mut response = respond(
            config,
            page.status,
            page.content_type,
            page.body.into_owned(),
        );
        if let Some(location) = page.location {
            response.headers_mut().insert(
                "location",
                hyper::header::HeaderValue::from_static(location),
            );
        }
        return response;
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

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> AppConfig {
        AppConfig {
            instance_id: "i".into(),
            frame_ancestors: vec!["https://example.my.connect.aws".into()],
            connect_src: vec!["https://auth.example.com".into()],
            issuer: "https://idp.example.com/pool/x".into(),
            client_id: "client".into(),
            scope: "openid".into(),
        }
    }

    #[test]
    fn the_page_may_call_its_issuer_and_only_the_instance_may_frame_it() {
        let headers = security_headers(&config());
        let csp = &headers[0].1;
        assert!(
            csp.contains("connect-src 'self' https://idp.example.com https://auth.example.com;"),
            "{csp}"
        );
        assert!(csp.contains("frame-ancestors https://example.my.connect.aws;"));
        let none = security_headers(&AppConfig::default());
        assert!(
            none[0].1.contains("connect-src 'self';")
                && none[0].1.contains("frame-ancestors 'none'")
        );
        assert_eq!(
            origin_of("http://127.0.0.1:9/x?y"),
            Some("http://127.0.0.1:9")
        );
        assert_eq!(origin_of("https://a.b"), Some("https://a.b"));
        assert_eq!(origin_of("nonsense"), None);
    }

    #[test]
    fn app_files_live_under_app_and_the_root_redirects_there() {
        let (config, assets) = (config(), assets::Assets::placeholder());
        let root = static_route(&config, &assets, "GET", "/");
        assert_eq!((root.status, root.location), (302, Some(APP_PATH)));
        let index = static_route(&config, &assets, "GET", "/app/");
        assert_eq!(
            (index.status, index.content_type),
            (200, "text/html; charset=utf-8")
        );
        let page_config = static_route(&config, &assets, "GET", "/app/config.json");
        let parsed: Value = serde_json::from_slice(&page_config.body).unwrap();
        assert_eq!(parsed["issuer"], "https://idp.example.com/pool/x");
        assert_eq!(parsed["clientId"], "client");
        for missing in [
            "/app/nothing.js",
            "/app/../Cargo.toml",
            "/other",
            "/app/a/b.js",
        ] {
            assert_eq!(
                static_route(&config, &assets, "GET", missing).status,
                404,
                "{missing}"
            );
        }
        assert_eq!(static_route(&config, &assets, "POST", "/app/").status, 405);
    }
}
