//! The agent-workspace app's API: an agent flags the caller of the contact on screen.
//!
//! The browser is not trusted with anything: it sends a contact id (and optionally a reason and a
//! TTL), never a number, an agent or an instance. The server takes the agent from the verified
//! token ([`AgentIdentity`]), the instance from its configuration, and the number from
//! `DescribeContact`; it checks that the contact is a voice call from a telephone number handled by
//! that agent (`AgentInfo.Id` → `DescribeUser` → the same username), then writes the entry with
//! `source = agent` and `addedBy` = the agent. Flagging is idempotent: while the caller's entry is
//! active, another flag (a double click, a retry) changes nothing and answers 200; only masked
//! numbers are answered and logged.
//!
//! Routes (JSON): `GET /api/deny-list/flags/{contactId}` → whether the caller is listed;
//! `POST /api/deny-list/flags` `{"contactId", "reason"?, "ttl"?}` → 201 flagged / 200 already.
//! Errors: 401 (no verified agent), 403 (someone else's contact), 404 (no such contact), 409 (not a
//! voice call from a number, or a withheld caller), 400 (bad body), 503 (a dependency failed).

use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{json, Value};

use super::intake;
use super::model::EntrySource;
use super::number::NumberError;
use super::policy::DenyListService;
use crate::error::{HandlerError, PortError};

/// The agent a verified token names (the configured username claim).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentIdentity {
    pub username: String,
}

/// One API request, already authenticated (or not) by the transport.
#[derive(Debug, Clone)]
pub struct ApiRequest<'a> {
    pub method: &'a str,
    pub path: &'a str,
    pub body: &'a [u8],
    /// `None`: no token, or a token that did not verify.
    pub agent: Option<AgentIdentity>,
}

/// The answer: a status and a JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct ApiResponse {
    pub status: u16,
    pub body: Value,
}

fn error(status: u16, code: &str, message: impl Into<String>) -> ApiResponse {
    ApiResponse {
        status,
        body: json!({ "error": code, "message": message.into() }),
    }
}

/// The body of `POST /api/deny-list/flags`. Unknown fields (a `number` a tampered page adds) are
/// ignored: the number always comes from the contact.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct FlagBody {
    contact_id: String,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    ttl: Option<String>,
}

/// Longest reason kept.
const MAX_REASON: usize = 200;

/// Contact ids are UUIDs in Connect; anything else is refused before any call.
fn valid_contact_id(id: &str) -> bool {
    (1..=256).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

impl DenyListService {
    /// Serve one API request for the agent-workspace app on `instance_id`.
    pub async fn agent_api(
        &self,
        instance_id: &str,
        request: &ApiRequest<'_>,
        now: DateTime<Utc>,
    ) -> ApiResponse {
        let Some(agent) = &request.agent else {
            return error(401, "unauthorized", "a valid bearer token is required");
        };
        let route = request.path.trim_end_matches('/');
        match (request.method, route.strip_prefix("/api/deny-list/flags")) {
            ("GET", Some(rest)) if rest.starts_with('/') => {
                let contact_id = &rest[1..];
                self.agent_status(instance_id, agent, contact_id, now).await
            }
            ("POST", Some("")) => match serde_json::from_slice::<FlagBody>(request.body) {
                Ok(body) => self.agent_flag(instance_id, agent, body, now).await,
                Err(e) => error(
                    400,
                    "bad_request",
                    format!(
                        "expected {{\"contactId\", \"reason\"?, \"ttl\"?}}: {}",
                        crate::redact::serde_reason(&e.to_string())
                    ),
                ),
            },
            (_, Some(_)) => error(
                405,
                "method_not_allowed",
                "GET /api/deny-list/flags/{contactId} or POST /api/deny-list/flags",
            ),
            _ => error(404, "not_found", "no such route"),
        }
    }

    /// The contact's caller, checked against the agent: its number, or the error answer.
    async fn agents_caller(
        &self,
        instance_id: &str,
        agent: &AgentIdentity,
        contact_id: &str,
    ) -> Result<super::E164, ApiResponse> {
        if !valid_contact_id(contact_id) {
            return Err(error(400, "bad_request", "contactId is not a contact id"));
        }
        let unavailable = |e: PortError| {
            tracing::error!(error = %e, contact_id, "agent app: a dependency failed");
            error(503, "unavailable", "try again")
        };
        let info = self
            .contacts()
            .describe(instance_id, contact_id)
            .await
            .map_err(unavailable)?
            .ok_or_else(|| error(404, "not_found", "no such contact"))?;
        let handler = match info.agent_id.as_deref() {
            Some(id) => self
                .contacts()
                .agent_username(instance_id, id)
                .await
                .map_err(unavailable)?,
            None => None,
        };
        if handler.as_deref() != Some(agent.username.as_str()) {
            tracing::warn!(contact_id, agent = %agent.username, "agent app: not this agent's contact");
            return Err(error(403, "forbidden", "this contact is not yours"));
        }
        if info.channel.as_deref() != Some("VOICE")
            || info
                .customer_endpoint_type
                .as_deref()
                .is_some_and(|t| t != "TELEPHONE_NUMBER")
        {
            return Err(error(
                409,
                "not_a_phone_call",
                "only voice calls from a telephone number can be flagged",
            ));
        }
        let raw = info
            .customer_address
            .ok_or_else(|| error(409, "no_number", "the contact has no caller number"))?;
        match intake::presented(&raw, self.config().default_region.as_deref()) {
            Ok(accepted) => Ok(accepted.number),
            Err(NumberError::Anonymous) => {
                Err(error(409, "anonymous", "the caller's number is withheld"))
            }
            Err(_) => Err(error(
                409,
                "no_number",
                "the caller's number is not a phone number",
            )),
        }
    }

    async fn agent_status(
        &self,
        instance_id: &str,
        agent: &AgentIdentity,
        contact_id: &str,
        now: DateTime<Utc>,
    ) -> ApiResponse {
        let number = match self.agents_caller(instance_id, agent, contact_id).await {
            Ok(n) => n,
            Err(answer) => return answer,
        };
        match self.store().get(&number).await {
            Ok(entry) => {
                let active = entry.filter(|e| e.is_active(now));
                ApiResponse {
                    status: 200,
                    body: json!({
                        "contactId": contact_id,
                        "listed": active.is_some(),
                        "number": number.masked(),
                        "reason": active.as_ref().and_then(|e| e.reason.clone()),
                        "expiresAt": active.as_ref().and_then(|e| e.expires_at),
                    }),
                }
            }
            Err(e) => {
                tracing::error!(error = %e, contact_id, "agent app: lookup failed");
                error(503, "unavailable", "try again")
            }
        }
    }

    async fn agent_flag(
        &self,
        instance_id: &str,
        agent: &AgentIdentity,
        body: FlagBody,
        now: DateTime<Utc>,
    ) -> ApiResponse {
        let ttl = match body
            .ttl
            .as_deref()
            .map(crate::deny_list::import::parse_ttl)
            .transpose()
        {
            Ok(ttl) => ttl,
            Err(e) => return error(400, "bad_request", format!("ttl: {e}")),
        };
        let number = match self
            .agents_caller(instance_id, agent, &body.contact_id)
            .await
        {
            Ok(n) => n,
            Err(answer) => return answer,
        };
        let current = match self.store().get(&number).await {
            Ok(entry) => entry.filter(|e| e.is_active(now)),
            Err(e) => {
                tracing::error!(error = %e, "agent app: lookup failed");
                return error(503, "unavailable", "try again");
            }
        };
        let answer = |status: u16, entry: &super::DenyEntry| ApiResponse {
            status,
            body: json!({
                "contactId": body.contact_id,
                "listed": true,
                "number": number.masked(),
                "reason": entry.reason,
                "expiresAt": entry.expires_at,
            }),
        };
        if let Some(entry) = current {
            tracing::info!(contact_id = %body.contact_id, number = %number.masked(), agent = %agent.username, "agent app: caller already listed");
            return answer(200, &entry);
        }
        let reason: Option<String> = body
            .reason
            .as_deref()
            .map(|r| r.trim().chars().take(MAX_REASON).collect::<String>())
            .filter(|r| !r.is_empty())
            .map(|r| crate::redact::redact_numbers(&r))
            .or_else(|| Some("flagged by agent".into()));
        let accepted = intake::Accepted {
            number: number.clone(),
            warning: None,
        };
        match self
            .add_accepted(
                accepted,
                reason,
                ttl,
                Some(agent.username.clone()),
                EntrySource::Agent,
                now,
            )
            .await
        {
            Ok((entry, _)) => {
                tracing::info!(contact_id = %body.contact_id, number = %number.masked(), agent = %agent.username, "agent app: caller flagged");
                answer(201, &entry)
            }
            Err(HandlerError::Port(e)) => {
                tracing::error!(error = %e, "agent app: write failed");
                error(503, "unavailable", "try again")
            }
            Err(e) => error(400, "bad_request", e.to_string()),
        }
    }
}
