//! Deny-list policy: the contact-flow check and agent flag, EventBridge enforcement and the
//! administrative operations, over a [`DenyStore`] and a [`ContactControl`].

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};

use super::hits::PendingHit;
use super::intake::{self, Accepted};
use super::model::{DenyEntry, EntrySource};
use super::number::{mask, NumberError, E164};
use super::ports::{ContactControl, DenyStore, StopOutcome};
use crate::error::{HandlerError, PortError};
use crate::event::flow::FlowInvocation;
use crate::event::{Channel, Event, EventType, InitiationMethod};

/// How callers without a usable number (withheld / anonymous) are treated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnonymousPolicy {
    /// Treated as not listed (default).
    Allow,
    /// Treated as listed: the flow disconnects them and enforcement stops them.
    Deny,
}

/// What the contact-flow function answers when the store cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FailurePolicy {
    /// Answer "not listed" (`Success=false`, `result=error`): callers get through (default).
    FailOpen,
    /// Answer "listed" (`Success=true`, `result=error`): nobody gets through while the store is down.
    FailClosed,
}

/// Settings of the deny-list capability.
#[derive(Debug, Clone)]
pub struct DenyListConfig {
    /// ISO region for national-format numbers (e.g. `US`).
    pub default_region: Option<String>,
    pub anonymous: AnonymousPolicy,
    pub on_failure: FailurePolicy,
    /// Channels enforced on `INITIATED` events (default VOICE).
    pub enforce_channels: Vec<Channel>,
    /// Initiation methods enforced (default INBOUND; StopContact rejects TRANSFER and others).
    pub enforce_methods: Vec<InitiationMethod>,
    /// Whether a replayed event (`replay-name` present) may stop a contact
    /// (`DENYLIST_STOP_REPLAYED`, default false: a replay reports a dry run).
    pub stop_replayed: bool,
    /// The longest the contact-flow function takes to answer (`DENYLIST_FLOW_BUDGET_MS`, default
    /// 3 s): the lookup runs inside it (the hit is counted after the answer). A lookup that does not
    /// finish in time is answered with [`DenyListConfig::on_failure`], well inside the Lambda
    /// timeout (8 s, which also covers the hit count after the answer) and Connect's 8 s wait, so
    /// the flow never takes its Error branch.
    pub flow_budget: std::time::Duration,
}

/// Default [`DenyListConfig::flow_budget`].
pub const DEFAULT_FLOW_BUDGET: std::time::Duration = std::time::Duration::from_secs(3);

impl Default for DenyListConfig {
    fn default() -> Self {
        DenyListConfig {
            default_region: None,
            anonymous: AnonymousPolicy::Allow,
            on_failure: FailurePolicy::FailOpen,
            enforce_channels: vec![Channel::Voice],
            enforce_methods: vec![InitiationMethod::Inbound],
            stop_replayed: false,
            flow_budget: DEFAULT_FLOW_BUDGET,
        }
    }
}

/// The answer to "is this caller listed?".
#[derive(Debug, Clone, PartialEq)]
pub struct CheckResult {
    pub number: Result<E164, NumberError>,
    /// Set when a typed number was taken as written ([`intake::UNKNOWN_RANGE`]).
    pub warning: Option<&'static str>,
    /// The active entry, when listed.
    pub entry: Option<DenyEntry>,
    pub listed: bool,
}

/// The contact-flow answer and the hit it leaves to count ([`DenyListService::flow_answer`]).
#[derive(Debug, Clone, PartialEq)]
pub struct FlowAnswer {
    /// The flat string map the flow receives.
    pub answer: BTreeMap<String, String>,
    /// A listed caller's hit, to count with [`DenyListService::count_hit`] after answering.
    pub hit: Option<PendingHit>,
}

/// What enforcement did for one event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EnforceOutcome {
    /// Not an event this capability enforces (channel, method, event type).
    Skipped(&'static str),
    /// The contact has no usable customer number (e.g. chat) or it is invalid.
    NoNumber(&'static str),
    NotListed,
    /// Listed; StopContact was called.
    Stopped,
    /// Listed; the contact had already ended.
    AlreadyEnded,
    /// Listed; side effects disabled (replay), nothing was stopped.
    DryRun,
}

/// The deny-list capability.
pub struct DenyListService {
    store: Box<dyn DenyStore>,
    contacts: Box<dyn ContactControl>,
    config: DenyListConfig,
}

impl DenyListService {
    pub fn new(
        store: Box<dyn DenyStore>,
        contacts: Box<dyn ContactControl>,
        config: DenyListConfig,
    ) -> Self {
        DenyListService {
            store,
            contacts,
            config,
        }
    }

    pub fn store(&self) -> &dyn DenyStore {
        self.store.as_ref()
    }

    /// The contact-control port: `DescribeContact` for callers outside the deny-list flow.
    pub fn contacts(&self) -> &dyn ContactControl {
        self.contacts.as_ref()
    }

    pub fn config(&self) -> &DenyListConfig {
        &self.config
    }

    /// A typed number (CLI, import, the agent's `CustomerNumber`) under the configured default
    /// region: see [`intake::typed`].
    pub fn typed(&self, raw: &str, strict: bool) -> Result<Accepted, NumberError> {
        intake::typed(raw, self.config.default_region.as_deref(), strict)
    }

    /// A number Amazon Connect presents: see [`intake::presented`].
    pub fn presented(&self, raw: &str) -> Result<Accepted, NumberError> {
        intake::presented(raw, self.config.default_region.as_deref())
    }

    /// Look up a typed number (the CLI's `check`).
    pub async fn check(&self, raw: &str, now: DateTime<Utc>) -> Result<CheckResult, HandlerError> {
        self.lookup(self.typed(raw, false), now).await
    }

    /// Look up a number Amazon Connect presents (the contact flow, enforcement).
    pub async fn check_presented(
        &self,
        raw: &str,
        now: DateTime<Utc>,
    ) -> Result<CheckResult, HandlerError> {
        self.lookup(self.presented(raw), now).await
    }

    /// Look a number up (one consistent read). Counting the hit is the caller's: the contact flow
    /// answers first ([`FlowAnswer::hit`]).
    async fn lookup(
        &self,
        accepted: Result<Accepted, NumberError>,
        now: DateTime<Utc>,
    ) -> Result<CheckResult, HandlerError> {
        let warning = accepted.as_ref().ok().and_then(|a| a.warning);
        let number = accepted.map(|a| a.number);
        let (entry, listed) = match &number {
            Ok(n) => {
                let entry = self.store.get(n).await?.filter(|e| e.is_active(now));
                let listed = entry.is_some();
                (entry, listed)
            }
            Err(NumberError::Anonymous) => (None, self.config.anonymous == AnonymousPolicy::Deny),
            Err(_) => (None, false),
        };
        Ok(CheckResult {
            number,
            warning,
            entry,
            listed,
        })
    }

    /// Count a contact's hit on a listed number, at most once per contact id (the store's
    /// conditional write): safe to repeat after a retry, a re-delivery or a replay.
    pub async fn count_hit(&self, hit: &PendingHit) -> Result<bool, PortError> {
        self.store
            .record_hit(&hit.number, &hit.contact_id, hit.at)
            .await
    }

    /// Add (or refresh) an entry for a typed number; `strict` refuses numbers the metadata does
    /// not know. The warning, if any, is returned with the entry.
    #[allow(clippy::too_many_arguments)]
    pub async fn add(
        &self,
        raw: &str,
        reason: Option<String>,
        ttl: Option<Duration>,
        added_by: Option<String>,
        source: EntrySource,
        strict: bool,
        now: DateTime<Utc>,
    ) -> Result<(DenyEntry, Option<&'static str>), HandlerError> {
        let accepted = self
            .typed(raw, strict)
            .map_err(|e| HandlerError::InvalidInput(format!("number {}: {e}", mask(raw))))?;
        self.add_accepted(accepted, reason, ttl, added_by, source, now)
            .await
    }

    pub(super) async fn add_accepted(
        &self,
        accepted: Accepted,
        reason: Option<String>,
        ttl: Option<Duration>,
        added_by: Option<String>,
        source: EntrySource,
        now: DateTime<Utc>,
    ) -> Result<(DenyEntry, Option<&'static str>), HandlerError> {
        let mut entry = DenyEntry::new(accepted.number);
        entry.reason = reason;
        entry.added_by = added_by;
        entry.source = Some(source);
        entry.added_at = Some(now);
        entry.expires_at = ttl.map(|d| (now + d).timestamp());
        self.store.put(&entry).await?;
        Ok((entry, accepted.warning))
    }

    /// Remove an entry; `true` when it existed.
    pub async fn remove(&self, raw: &str) -> Result<bool, HandlerError> {
        let number = self
            .typed(raw, false)
            .map_err(|e| HandlerError::InvalidInput(format!("number {}: {e}", mask(raw))))?
            .number;
        Ok(self.store.remove(&number).await?)
    }

    /// The contact-flow function: `check` (default) or `flag`, per the `action` parameter.
    ///
    /// The answer is a flat map of strings (STRING_MAP). `Success` keeps the reference flow's
    /// contract: `"true"` = listed (check) or stored (flag); `check` also answers `blocked` (same
    /// value) for flows that branch on that key. `result` says why: `listed`,
    /// `not_listed`, `anonymous`, `no_number`, `invalid`, `flagged`, `error`. The function never
    /// fails the block: store failures follow [`FailurePolicy`].
    ///
    /// This is [`DenyListService::flow_answer`] with the hit counted before returning (the CLI,
    /// tests); a count that fails is logged, the answer stands.
    pub async fn flow(
        &self,
        invocation: &FlowInvocation,
        now: DateTime<Utc>,
    ) -> BTreeMap<String, String> {
        let FlowAnswer { answer, hit } = self.flow_answer(invocation, now).await;
        if let Some(hit) = hit {
            if let Err(e) = self.count_hit(&hit).await {
                tracing::warn!(error = %e, number = %hit.number.masked(), "could not count the deny-list hit");
            }
        }
        answer
    }

    /// The contact-flow answer, and the hit to count once it is sent: the answer waits for one
    /// store read, the count (a conditional write) does not delay it. The Lambda counts after
    /// posting the response and before asking for the next event (`handlers::lambda::after_response`).
    pub async fn flow_answer(&self, invocation: &FlowInvocation, now: DateTime<Utc>) -> FlowAnswer {
        let action = invocation
            .parameter("action")
            .unwrap_or_else(|| "check".into())
            .to_ascii_lowercase();
        // Which number, and how it reached us: the endpoint is presented by Connect, the
        // `CustomerNumber` parameter typed by an agent (or set by the flow from customer input).
        let presented = || invocation.customer_address().map(|a| (a.to_string(), true));
        let typed = || invocation.parameter("CustomerNumber").map(|n| (n, false));
        let raw = match action.as_str() {
            "flag" => typed().or_else(presented),
            _ => presented().or_else(typed),
        };
        let mut out = BTreeMap::new();
        let mut hit = None;
        let Some((raw, presented)) = raw.filter(|(r, _)| !r.trim().is_empty()) else {
            out.insert("Success".into(), "false".into());
            out.insert("result".into(), "no_number".into());
            return FlowAnswer { answer: out, hit };
        };
        let deadline = tokio::time::Instant::now() + self.config.flow_budget;
        match action.as_str() {
            "flag" => {
                self.flow_flag(invocation, &raw, presented, now, deadline, &mut out)
                    .await
            }
            "check" => {
                hit = self
                    .flow_check(invocation, &raw, presented, now, deadline, &mut out)
                    .await
            }
            other => {
                tracing::warn!(action = other, "unknown deny-list action");
                out.insert("Success".into(), "false".into());
                out.insert("result".into(), "unknown_action".into());
            }
        }
        FlowAnswer { answer: out, hit }
    }

    async fn flow_check(
        &self,
        invocation: &FlowInvocation,
        raw: &str,
        presented: bool,
        now: DateTime<Utc>,
        deadline: tokio::time::Instant,
        out: &mut BTreeMap<String, String>,
    ) -> Option<PendingHit> {
        let accepted = if presented {
            self.presented(raw)
        } else {
            self.typed(raw, false)
        };
        let checked = tokio::time::timeout_at(deadline, self.lookup(accepted, now))
            .await
            .unwrap_or_else(|_| Err(self.budget_exceeded("lookup").into()));
        match checked {
            Ok(result) => {
                if let Ok(n) = &result.number {
                    out.insert("normalizedNumber".into(), n.masked());
                }
                let code = match (&result.number, result.listed) {
                    (Ok(_), true) => "listed",
                    (Ok(_), false) => "not_listed",
                    (Err(NumberError::Anonymous), _) => "anonymous",
                    (Err(NumberError::Empty), _) => "no_number",
                    (Err(_), _) => "invalid",
                };
                out.insert("Success".into(), result.listed.to_string());
                // The same answer under the key flows built on `blocked` read (see the flow logs).
                out.insert("blocked".into(), result.listed.to_string());
                out.insert("result".into(), code.into());
                if let Some(reason) = result.entry.as_ref().and_then(|e| e.reason.clone()) {
                    out.insert("reason".into(), reason);
                }
                tracing::info!(
                    number = %mask(raw),
                    listed = result.listed,
                    result = code,
                    warning = result.warning,
                    "deny-list check"
                );
                let contact_id = invocation.contact_id().filter(|c| !c.is_empty());
                match (result.entry, result.number, contact_id) {
                    (Some(_), Ok(number), Some(contact_id)) => Some(PendingHit {
                        number,
                        contact_id: contact_id.to_owned(),
                        at: now,
                    }),
                    _ => None,
                }
            }
            Err(e) => {
                let listed = self.config.on_failure == FailurePolicy::FailClosed;
                tracing::error!(error = %e, number = %mask(raw), fail_closed = listed, "deny-list check failed");
                out.insert("Success".into(), listed.to_string());
                out.insert("blocked".into(), listed.to_string());
                out.insert("result".into(), "error".into());
                None
            }
        }
    }

    /// The error of a step that did not finish inside [`DenyListConfig::flow_budget`]
    /// (retryable: the store was slow, not wrong).
    fn budget_exceeded(&self, step: &str) -> PortError {
        PortError::Unavailable {
            service: "deny-list",
            message: format!(
                "{step} did not finish inside the contact-flow budget of {} ms",
                self.config.flow_budget.as_millis()
            ),
        }
    }

    async fn flow_flag(
        &self,
        invocation: &FlowInvocation,
        raw: &str,
        presented: bool,
        now: DateTime<Utc>,
        deadline: tokio::time::Instant,
        out: &mut BTreeMap<String, String>,
    ) {
        let by = invocation
            .parameter("agent")
            .or_else(|| invocation.parameter("AddedBy"))
            .or_else(|| {
                let data = &invocation.details.contact_data;
                data.previous_contact_id
                    .clone()
                    .or(data.contact_id.clone())
                    .map(|c| format!("contact:{c}"))
            });
        let reason = invocation
            .parameter("reason")
            .or_else(|| Some("flagged by agent".into()));
        let accepted = if presented {
            self.presented(raw)
        } else {
            self.typed(raw, false)
        };
        let added = match accepted {
            Ok(accepted) => tokio::time::timeout_at(
                deadline,
                self.add_accepted(accepted, reason, None, by, EntrySource::Agent, now),
            )
            .await
            .unwrap_or_else(|_| Err(self.budget_exceeded("flag").into())),
            Err(e) => Err(HandlerError::InvalidInput(e.to_string())),
        };
        match added {
            Ok((entry, warning)) => {
                tracing::info!(number = %entry.number.masked(), warning, "deny-list flag");
                out.insert("Success".into(), "true".into());
                out.insert("result".into(), "flagged".into());
                out.insert("normalizedNumber".into(), entry.number.masked());
            }
            Err(HandlerError::InvalidInput(_)) => {
                out.insert("Success".into(), "false".into());
                out.insert("result".into(), "invalid".into());
            }
            Err(e) => {
                tracing::error!(error = %e, number = %mask(raw), "deny-list flag failed");
                out.insert("Success".into(), "false".into());
                out.insert("result".into(), "error".into());
            }
        }
    }

    /// Enforce on an `INITIATED` contact event: DescribeContact → number → lookup → StopContact.
    ///
    /// A listed contact is stopped only when side effects are allowed (always in Lambda,
    /// `--allow-side-effects` in a replay) and the event is live or
    /// [`DenyListConfig::stop_replayed`] is set; otherwise it is reported as
    /// [`EnforceOutcome::DryRun`]. One rule for the Lambda and the CLI.
    pub async fn enforce(
        &self,
        event: &Event,
        now: DateTime<Utc>,
        allow_side_effects: bool,
    ) -> Result<EnforceOutcome, HandlerError> {
        let allow_stop = allow_side_effects && (!event.is_replay() || self.config.stop_replayed);
        let Some(contact) = event.contact() else {
            return Ok(EnforceOutcome::Skipped("not a contact event"));
        };
        if contact.event_type != EventType::Initiated {
            return Ok(EnforceOutcome::Skipped("not an INITIATED event"));
        }
        if !contact
            .channel
            .as_ref()
            .is_some_and(|c| self.config.enforce_channels.contains(c))
        {
            return Ok(EnforceOutcome::Skipped("channel not enforced"));
        }
        if !contact
            .initiation_method
            .as_ref()
            .is_some_and(|m| self.config.enforce_methods.contains(m))
        {
            return Ok(EnforceOutcome::Skipped("initiation method not enforced"));
        }
        let Some(instance) = contact.instance_id() else {
            return Ok(EnforceOutcome::Skipped("no instanceArn"));
        };
        let info = self
            .contacts
            .describe(instance, &contact.contact_id)
            .await?;
        let Some(raw) = info.as_ref().and_then(|i| i.customer_address.clone()) else {
            return Ok(EnforceOutcome::NoNumber("no customer endpoint"));
        };
        let result = self.check_presented(&raw, now).await?;
        if !result.listed {
            return Ok(match result.number {
                Ok(_) => EnforceOutcome::NotListed,
                Err(NumberError::Anonymous) => EnforceOutcome::NoNumber("anonymous caller"),
                Err(_) => EnforceOutcome::NoNumber("invalid number"),
            });
        }
        let masked = mask(&raw);
        if !allow_stop {
            tracing::info!(contact_id = %contact.contact_id, number = %masked, "listed caller (dry run, not stopped)");
            return Ok(EnforceOutcome::DryRun);
        }
        let outcome = match self.contacts.stop(instance, &contact.contact_id).await? {
            StopOutcome::Stopped => EnforceOutcome::Stopped,
            StopOutcome::AlreadyEnded => EnforceOutcome::AlreadyEnded,
        };
        if let Ok(n) = &result.number {
            self.store.record_hit(n, &contact.contact_id, now).await?;
        }
        tracing::info!(contact_id = %contact.contact_id, number = %masked, outcome = ?outcome, "listed caller stopped");
        Ok(outcome)
    }
}
