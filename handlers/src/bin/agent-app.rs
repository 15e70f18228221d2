//! Lambda: the agent-workspace app behind an API Gateway HTTP API (payload format 2.0). The API
//! routes carry the HTTP API's JWT authorizer, which verified the token before this runs: the
//! agent is the configured claim (`APP_USERNAME_CLAIM`, default `username`) of
//! `requestContext.authorizer.jwt.claims`. The page routes (`/app/*`) have no authorizer: the
//! built front end from `APP_ASSETS_DIR` (default `$LAMBDA_TASK_ROOT/web`, where the template's
//! build puts it), read once at init. Every answer carries the app's security headers
//! (`APP_FRAME_ANCESTORS`, `APP_CONNECT_SRC`, the issuer's origin); the API is
//! `core::deny_list::agent_app`, the same code `connect-events app serve` runs.

use base64::Engine as _;
use chrono::Utc;
use connect_events_core::deny_list::agent_app::{AgentIdentity, ApiRequest};
use connect_events_core::deny_list::DenyListService;
use connect_events_handlers::app::assets::Assets;
use connect_events_handlers::app::{security_headers, static_route, AppConfig};
use connect_events_handlers::aws::{self, config};
use connect_events_handlers::lambda::{emit_metrics, init_tracing};
use lambda_runtime::{service_fn, tracing, LambdaEvent};
use serde_json::{json, Map, Value};

const FUNCTION: &str = "agent-app";

fn answer(config: &AppConfig, status: u16, content_type: &str, body: String) -> Value {
    let mut headers: Map<String, Value> = security_headers(config)
        .into_iter()
        .map(|(k, v)| (k.to_string(), Value::String(v)))
        .collect();
    headers.insert("content-type".into(), json!(content_type));
    json!({ "statusCode": status, "headers": headers, "body": body, "isBase64Encoded": false })
}

/// The front end packaged with the function; a missing `APP_ASSETS_DIR` is an init error, a
/// package without `web/` serves the placeholder page (and says so at init).
fn assets() -> Result<Assets, String> {
    let explicit = std::env::var_os("APP_ASSETS_DIR").filter(|d| !d.is_empty());
    let packaged =
        std::path::Path::new(&std::env::var_os("LAMBDA_TASK_ROOT").unwrap_or_default()).join("web");
    let assets =
        Assets::locate(explicit.as_deref().map(std::path::Path::new), &packaged).map_err(|e| {
            match explicit {
                Some(_) => format!("APP_ASSETS_DIR: {e}"),
                None => format!("the packaged front end: {e}"),
            }
        })?;
    if !assets.is_built() {
        tracing::warn!(dir = %packaged.display(), "agent app: no front end packaged; serving a placeholder page");
    }
    Ok(assets)
}

async fn handle(
    service: &DenyListService,
    config: &AppConfig,
    assets: &Assets,
    claim: &str,
    event: LambdaEvent<Value>,
) -> Result<Value, lambda_runtime::Error> {
    let e = &event.payload;
    let method = e
        .pointer("/requestContext/http/method")
        .and_then(Value::as_str)
        .unwrap_or("GET");
    let path = e.get("rawPath").and_then(Value::as_str).unwrap_or("/");
    if !path.starts_with("/api/") {
        let page = static_route(config, assets, method, path);
        let mut response = match std::str::from_utf8(&page.body) {
            Ok(text) => answer(config, page.status, page.content_type, text.to_string()),
            // Images: API Gateway decodes a base64 body.
            Err(_) => {
                let mut r = answer(
                    config,
                    page.status,
                    page.content_type,
                    base64::engine::general_purpose::STANDARD.encode(&page.body),
                );
                r["isBase64Encoded"] = json!(true);
                r
            }
        };
        if let Some(location) = page.location {
            response["headers"]["location"] = json!(location);
        }
        return Ok(response);
    }
    let raw = e.get("body").and_then(Value::as_str).unwrap_or_default();
    let body = if e.get("isBase64Encoded") == Some(&Value::Bool(true)) {
        base64::engine::general_purpose::STANDARD
            .decode(raw)
            .unwrap_or_default()
    } else {
        raw.as_bytes().to_vec()
    };
    let agent = e
        .pointer("/requestContext/authorizer/jwt/claims")
        .and_then(|c| c.get(claim))
        .and_then(Value::as_str)
        .filter(|u| !u.is_empty())
        .map(|u| AgentIdentity {
            username: u.to_string(),
        });
    let response = service
        .agent_api(
            &config.instance_id,
            &ApiRequest {
                method,
                path,
                body: &body,
                agent,
            },
            Utc::now(),
        )
        .await;
    emit_metrics(
        FUNCTION,
        &[
            ("Requests", 1),
            (
                "DenyListAgentFlag",
                u64::from(method == "POST" && response.status == 201),
            ),
        ],
    );
    tracing::info!(method, path, status = response.status, "agent app request");
    Ok(answer(
        config,
        response.status,
        "application/json",
        response.body.to_string(),
    ))
}

#[tokio::main]
async fn main() -> Result<(), lambda_runtime::Error> {
    init_tracing();
    let settings = connect_events_handlers::lambda::settings_or_init_error().await?;
    let Some(instance_id) = settings.queue_depth.default_instance_id.clone() else {
        return Err(connect_events_handlers::lambda::init_error(
            connect_events_core::HandlerError::Config(
                "CONNECT_INSTANCE_ID is not set: the app flags contacts of one instance".into(),
            ),
        )
        .await);
    };
    let config = AppConfig::from_env(instance_id);
    let assets = match assets() {
        Ok(assets) => assets,
        Err(e) => {
            return Err(connect_events_handlers::lambda::init_error(
                connect_events_core::HandlerError::Config(e),
            )
            .await)
        }
    };
    let claim = std::env::var("APP_USERNAME_CLAIM").unwrap_or_else(|_| "username".into());
    // Contact flows are not waiting here, but agents are: interactive timeouts.
    let sdk = config::load(config::CallProfile::INTERACTIVE).await;
    let service = aws::deny_list_service(&sdk, &settings);
    let (service, config, assets, claim) = (&service, &config, &assets, claim.as_str());
    lambda_runtime::run(service_fn(move |event| {
        handle(service, config, assets, claim, event)
    }))
    .await
}
