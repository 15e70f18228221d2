//! OpenSearch Dashboards saved-objects import: `POST <url>/api/saved_objects/_import?overwrite=true`,
//! multipart form data with one `file` field named `*.ndjson`, header `osd-xsrf: true`, and the
//! `securitytenant` header for a tenant. On Amazon OpenSearch Service the URL ends in `/_dashboards`.
//! Requests are signed with SigV4 (service `es`, the environment's credentials) unless
//! `OPENSEARCH_DASHBOARDS_USER` / `OPENSEARCH_DASHBOARDS_PASSWORD` ask for basic authentication
//! (fine-grained access control with an internal user).

use ::opensearch::auth::Credentials;
use ::opensearch::http::headers::{HeaderMap, HeaderName, HeaderValue, CONTENT_TYPE};
use ::opensearch::http::transport::{SingleNodeConnectionPool, TransportBuilder};
use ::opensearch::http::Method;
use connect_events_core::PortError;
use serde_json::Value;

use super::opensearch::{base_url, read, rejected, response_error, transport_error};

/// Multipart boundary (never in the NDJSON: that is JSON, one object per line).
const BOUNDARY: &str = "connect-events-saved-objects-boundary-7f1d";

/// Imports `ndjson` with overwrite; returns the server's answer (`{"success":true,…}`).
pub async fn import(url: &str, tenant: Option<&str>, ndjson: &str) -> Result<Value, PortError> {
    let endpoint = base_url(url, "Dashboards URL")?;
    let mut builder = TransportBuilder::new(SingleNodeConnectionPool::new(endpoint));
    match (
        std::env::var("OPENSEARCH_DASHBOARDS_USER"),
        std::env::var("OPENSEARCH_DASHBOARDS_PASSWORD"),
    ) {
        (Ok(user), Ok(password)) => builder = builder.auth(Credentials::Basic(user, password)),
        _ => {
            let config = super::config::load(super::config::CallProfile::BACKGROUND).await;
            let credentials = Credentials::try_from(&config)
                .map_err(|e| rejected(format!("SigV4 signing for Dashboards: {e}")))?;
            builder = builder.auth(credentials).service_name("es");
        }
    }
    let transport = builder
        .build()
        .map_err(|e| rejected(format!("building the Dashboards transport: {e}")))?;

    let mut headers = HeaderMap::new();
    let content_type = format!("multipart/form-data; boundary={BOUNDARY}");
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_str(&content_type).map_err(|e| rejected(e.to_string()))?,
    );
    headers.insert(
        HeaderName::from_static("osd-xsrf"),
        HeaderValue::from_static("true"),
    );
    if let Some(tenant) = tenant {
        headers.insert(
            HeaderName::from_static("securitytenant"),
            HeaderValue::from_str(tenant)
                .map_err(|_| rejected(format!("invalid tenant {tenant:?}")))?,
        );
    }
    let body = format!(
        "--{BOUNDARY}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"connect-events-dashboards.ndjson\"\r\n\
         Content-Type: application/ndjson\r\n\r\n{ndjson}\r\n--{BOUNDARY}--\r\n"
    );
    let context = "POST api/saved_objects/_import";
    let response = transport
        .send(
            Method::Post,
            "api/saved_objects/_import",
            headers,
            Some(&[("overwrite", "true")]),
            Some(body.into_bytes()),
            None,
        )
        .await
        .map_err(|e| transport_error(context, &e))?;
    let (status, answer) = read(response, context).await?;
    if !(200..300).contains(&status) {
        return Err(response_error(context, status, &answer));
    }
    // Dashboards answers 200 with per-object errors when some objects were refused.
    if answer["success"] != Value::Bool(true) {
        return Err(PortError::Rejected {
            service: "opensearch-dashboards",
            message: format!("{context}: not every object was imported: {answer}"),
        });
    }
    Ok(answer)
}
