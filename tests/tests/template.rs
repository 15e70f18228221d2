//! The SAM template is the single source of truth for routing: every function is reachable, every
//! rule reaches a handler the CLI knows, and IAM stays least-privilege.

use std::collections::BTreeMap;

use connect_events_core::dispatch::HandlerKind;
use connect_events_core::event::input::read_paths;
use connect_events_core::rules::RuleSet;
use connect_events_tests::{fixture, workspace_root};
use serde_json::Value;

fn template_path() -> std::path::PathBuf {
    workspace_root().join("infra").join("template.yaml")
}

fn rules() -> RuleSet {
    RuleSet::load(&template_path()).expect("infra/template.yaml parses")
}

#[test]
fn every_function_has_a_rule_and_every_rule_a_known_handler() {
    let set = rules();
    assert!(!set.functions.is_empty());
    for f in &set.functions {
        let handler = f.handler.unwrap_or_else(|| {
            panic!(
                "function {} builds unknown binary {}",
                f.logical_id, f.binary
            )
        });
        let has_rule = set
            .rules
            .iter()
            .any(|r| r.function == f.logical_id && r.enabled);
        if handler.is_event_target() {
            assert!(
                has_rule,
                "function {} has no EventBridge rule",
                f.logical_id
            );
        } else {
            assert!(
                f.invoked_by_connect,
                "function {} is neither routed nor invokable by Amazon Connect",
                f.logical_id
            );
        }
    }
    for r in &set.rules {
        let handler = r.handler.unwrap_or_else(|| {
            panic!(
                "rule {} targets {}, not a known handler",
                r.name, r.function
            )
        });
        assert!(
            handler.is_event_target(),
            "rule {} routes to {:?}, which EventBridge does not invoke",
            r.name,
            handler
        );
        assert!(
            r.pattern.is_some() || r.schedule.is_some(),
            "rule {} has neither pattern nor schedule",
            r.name
        );
    }
    // Each capability is wired.
    for kind in [
        HandlerKind::QueueDepth,
        HandlerKind::DenyListEnforcer,
        HandlerKind::FlowLogArchiver,
    ] {
        assert!(
            set.rules.iter().any(|r| r.handler == Some(kind)),
            "no rule routes to {kind:?}"
        );
    }
    assert!(
        set.rules
            .iter()
            .any(|r| r.handler == Some(HandlerKind::QueueDepth) && r.schedule.is_some()),
        "queue depth needs its reconciliation schedule"
    );
}

#[test]
fn rules_route_the_sample_archive_as_designed() {
    let set = rules();
    let mut routed: BTreeMap<(String, String), usize> = BTreeMap::new();
    for item in read_paths(&[fixture("events/sample-archive.ndjson")]) {
        let event = item.event.expect("sample archive is valid");
        let event_type = event
            .contact()
            .map(|c| c.event_type.to_string())
            .unwrap_or_default();
        for rule in set.route(&event.raw) {
            *routed
                .entry((format!("{:?}", rule.handler.unwrap()), event_type.clone()))
                .or_default() += 1;
        }
    }
    let kinds = |k: &str| {
        routed
            .iter()
            .filter(|((h, _), _)| h == k)
            .map(|((_, t), _)| t.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(
        kinds("QueueDepth"),
        vec!["CONNECTED_TO_AGENT", "DISCONNECTED", "QUEUED"]
    );
    assert_eq!(kinds("DenyListEnforcer"), vec!["INITIATED"]);
    assert_eq!(kinds("FlowLogArchiver"), vec!["DISCONNECTED"]);
    // Outbound failures carry `disconnectReason` and are archived too.
    let outbound = connect_events_core::event::Event::from_json_str(
        &std::fs::read_to_string(fixture("events/voice-outbound-disconnected.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(
        set.route(&outbound.raw)
            .filter(|r| r.handler == Some(HandlerKind::FlowLogArchiver))
            .count(),
        1
    );
}

/// Walk every IAM statement of the template (SAM `Policies` and `AWS::IAM::*` documents).
fn statements(v: &Value, out: &mut Vec<Value>) {
    match v {
        Value::Object(m) => {
            if m.contains_key("Effect") && (m.contains_key("Action") || m.contains_key("NotAction"))
            {
                out.push(v.clone());
            }
            m.values().for_each(|x| statements(x, out));
        }
        Value::Array(a) => a.iter().for_each(|x| statements(x, out)),
        _ => {}
    }
}

fn template_json() -> Value {
    // Short tags are irrelevant to this check: read them as plain values.
    let text = std::fs::read_to_string(template_path()).unwrap();
    let yaml: serde_norway::Value = serde_norway::from_str(&text).unwrap();
    serde_json::to_value(strip_tags(yaml)).unwrap()
}

fn strip_tags(v: serde_norway::Value) -> serde_norway::Value {
    use serde_norway::Value as Y;
    match v {
        Y::Tagged(t) => strip_tags(t.value),
        Y::Sequence(s) => Y::Sequence(s.into_iter().map(strip_tags).collect()),
        Y::Mapping(m) => Y::Mapping(m.into_iter().map(|(k, v)| (k, strip_tags(v))).collect()),
        other => other,
    }
}

#[test]
fn no_wildcard_actions_and_one_role_per_function() {
    let doc = template_json();
    let mut all = Vec::new();
    statements(&doc["Resources"], &mut all);
    assert!(
        all.len() >= 8,
        "expected the functions' statements, found {}",
        all.len()
    );
    for s in &all {
        if s["Effect"] == "Deny" {
            continue; // deny statements (TLS-only bucket policy) may use wildcards
        }
        let actions: Vec<&str> = match &s["Action"] {
            Value::String(a) => vec![a.as_str()],
            Value::Array(a) => a.iter().filter_map(Value::as_str).collect(),
            other => panic!("unexpected Action {other}"),
        };
        for a in actions {
            assert!(!a.contains('*'), "wildcard action {a} in {s}");
        }
        assert!(s.get("NotAction").is_none(), "NotAction in {s}");
    }
    // SAM creates one role per function that lists Policies; a shared Role would break that.
    for (id, res) in doc["Resources"].as_object().unwrap() {
        if res["Type"] == "AWS::Serverless::Function" {
            assert!(
                res["Properties"].get("Role").is_none(),
                "{id} uses a shared role"
            );
            assert!(
                res["Properties"].get("Policies").is_some(),
                "{id} has no policies"
            );
        }
    }
}

#[test]
fn replayed_events_never_reach_the_live_enforcer_rule() {
    let set = rules();
    let mut live: Value = serde_json::from_str(
        &std::fs::read_to_string(fixture("events/voice-inbound-initiated.json")).unwrap(),
    )
    .unwrap();
    let enforcer_rules = |ev: &Value| -> Vec<String> {
        set.route(ev)
            .filter(|r| r.handler == Some(HandlerKind::DenyListEnforcer))
            .map(|r| r.name.clone())
            .collect()
    };
    assert_eq!(
        enforcer_rules(&live),
        vec!["DenyListEnforcerFunctionContactInitiated"]
    );
    live["replay-name"] = "connect-archive-replay-20250611".into();
    assert_eq!(
        enforcer_rules(&live),
        vec!["DenyListEnforcerFunctionReplayedContactInitiated"]
    );
}

/// The capture rule sends every `aws.connect` event to the capture log group, which EventBridge may
/// write (resource policy scoped to that rule); it is infrastructure, not a route: replay does not
/// treat the log group as a function.
#[test]
fn the_capture_rule_writes_every_connect_event_to_its_log_group() {
    let doc = template_json();
    let resources = &doc["Resources"];
    let rule = &resources["ConnectEventCaptureRule"]["Properties"];
    assert_eq!(
        rule["EventPattern"],
        serde_json::json!({"source": ["aws.connect"]})
    );
    assert!(
        rule["Targets"][0]["Arn"]
            .to_string()
            .contains("CaptureLogGroup"),
        "{rule}"
    );
    let group = &resources["CaptureLogGroup"]["Properties"];
    assert!(
        group["LogGroupName"].to_string().contains("/aws/events/"),
        "{group}"
    );
    assert_eq!(
        group["RetentionInDays"],
        serde_json::json!("CaptureRetentionDays")
    );
    let policy = resources["CaptureLogGroupPolicy"]["Properties"]["PolicyDocument"].to_string();
    assert!(policy.contains("events.amazonaws.com") && policy.contains("logs:PutLogEvents"));
    assert!(
        policy.contains("aws:SourceArn"),
        "scoped to the rule: {policy}"
    );
    assert!(
        rules()
            .rules
            .iter()
            .all(|r| r.function != "CaptureLogGroup"),
        "the capture is not a route"
    );
}
