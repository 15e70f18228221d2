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
    let doc = template_json();
    assert!(!set.functions.is_empty());
    for f in &set.functions {
        let bin = workspace_root()
            .join("handlers/src/bin")
            .join(format!("{}.rs", f.binary));
        assert!(
            bin.is_file(),
            "function {} builds {}, which is not a binary of the workspace ({} missing)",
            f.logical_id,
            f.binary,
            bin.display()
        );
        // Stream consumers are invoked by their event-source mappings, not by EventBridge rules or
        // contact flows (the_indexer_consumes_both_streams_without_blocking_a_shard checks them).
        if !kinesis_events(&doc, &f.logical_id).is_empty() {
            continue;
        }
        // HTTP API functions (the agent-workspace app) are invoked by API Gateway routes.
        let events = doc["Resources"][&f.logical_id]["Properties"]["Events"]
            .as_object()
            .cloned()
            .unwrap_or_default();
        if !events.is_empty() && events.values().all(|e| e["Type"] == "HttpApi") {
            continue;
        }
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

/// Every IAM statement of the template except the KMS key policies, which
/// [`key_policy_statements`] reads.
fn iam_statements(doc: &Value) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for (id, res) in doc["Resources"].as_object().unwrap() {
        if res["Type"] == "AWS::KMS::Key" {
            continue;
        }
        let mut found = Vec::new();
        statements(res, &mut found);
        out.extend(found.into_iter().map(|s| (id.clone(), s)));
    }
    out
}

fn key_policy_statements(doc: &Value) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for (id, res) in doc["Resources"].as_object().unwrap() {
        if res["Type"] == "AWS::KMS::Key" {
            let mut found = Vec::new();
            statements(&res["Properties"]["KeyPolicy"], &mut found);
            out.extend(found.into_iter().map(|s| (id.clone(), s)));
        }
    }
    out
}

/// A string or a list of strings (Action, Resource), as strings.
fn strings(v: &Value) -> Vec<String> {
    match v {
        Value::String(s) => vec![s.clone()],
        Value::Array(a) => a
            .iter()
            .map(|x| {
                x.as_str()
                    .map(str::to_string)
                    .unwrap_or_else(|| x.to_string())
            })
            .collect(),
        Value::Null => Vec::new(),
        other => vec![other.to_string()],
    }
}

/// The statement that grants `action` in the statements of resource `id`.
fn statement_with(doc: &Value, id: &str, action: &str) -> Value {
    let found: Vec<Value> = iam_statements(doc)
        .into_iter()
        .filter(|(r, s)| {
            r == id && s["Effect"] == "Allow" && strings(&s["Action"]).iter().any(|a| a == action)
        })
        .map(|(_, s)| s)
        .collect();
    assert_eq!(
        found.len(),
        1,
        "{id}: expected one statement granting {action}, found {found:?}"
    );
    found.into_iter().next().unwrap()
}

/// The `Type: Kinesis` events of a function: (event id, properties).
fn kinesis_events(doc: &Value, function: &str) -> Vec<(String, Value)> {
    doc["Resources"][function]["Properties"]["Events"]
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, ev)| ev["Type"] == "Kinesis")
        .map(|(id, ev)| (id.clone(), ev["Properties"].clone()))
        .collect()
}

#[test]
fn no_wildcard_actions_and_one_role_per_function() {
    let doc = template_json();
    let all = iam_statements(&doc);
    assert!(
        all.len() >= 8,
        "expected the functions' statements, found {}",
        all.len()
    );
    for (_, s) in &all {
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
    // A key policy's only wildcard is the standard statement that hands the key to IAM (the
    // account root); every other principal gets named actions.
    for (id, s) in key_policy_statements(&doc) {
        let actions = strings(&s["Action"]);
        if actions.iter().any(|a| a.contains('*')) {
            assert_eq!(actions, ["kms:*"], "{id}: {s}");
            let principal = s["Principal"]["AWS"].to_string();
            assert!(
                principal.contains(":root") && principal.contains("${AWS::AccountId}"),
                "{id}: kms:* for someone else than the account root: {s}"
            );
        }
        assert!(
            s.get("NotAction").is_none() && s.get("NotPrincipal").is_none(),
            "{id}: {s}"
        );
    }
    // SAM creates one role per function that lists Policies. A function may instead name its own
    // AWS::IAM::Role, used by no other function; stream consumers must, because SAM attaches the
    // managed AWSLambdaKinesisExecutionRole (kinesis read on Resource "*") to the roles it generates.
    let resources = doc["Resources"].as_object().unwrap();
    let mut role_users: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for (id, res) in resources {
        if res["Type"] != "AWS::Serverless::Function" {
            continue;
        }
        match res["Properties"].get("Role") {
            None => {
                assert!(
                    res["Properties"].get("Policies").is_some(),
                    "{id} has no policies"
                );
                assert!(
                    kinesis_events(&doc, id).is_empty(),
                    "{id} consumes a stream with a SAM-generated role, which gets AWSLambdaKinesisExecutionRole"
                );
            }
            Some(role) => {
                let role = role.as_str().unwrap_or_default();
                let name = role.strip_suffix(".Arn").unwrap_or_else(|| {
                    panic!("{id}: Role must be !GetAtt <role>.Arn of this template, is {role}")
                });
                assert_eq!(
                    resources[name]["Type"], "AWS::IAM::Role",
                    "{id}: Role {role}"
                );
                assert!(
                    resources[name]["Properties"].get("Policies").is_some(),
                    "{id}: role {name} has no inline policies"
                );
                assert!(
                    resources[name]["Properties"]
                        .get("ManagedPolicyArns")
                        .is_none(),
                    "{id}: role {name} has managed policies"
                );
                assert!(
                    res["Properties"].get("Policies").is_none(),
                    "{id}: Policies are ignored when Role is set"
                );
                role_users
                    .entry(name.to_string())
                    .or_default()
                    .push(id.clone());
            }
        }
    }
    for (role, users) in role_users {
        assert_eq!(users.len(), 1, "role {role} is shared by {users:?}");
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

// ---------------------------------------------------------------------------------------------------
// Analytics: Connect data streaming → KMS-encrypted Kinesis → analytics-indexer → OpenSearch
// ---------------------------------------------------------------------------------------------------

const STREAMS: [(&str, &str); 2] = [
    ("ContactRecordStream", "CONTACT_TRACE_RECORDS"),
    ("AgentEventStream", "AGENT_EVENTS"),
];

fn resources_of_type<'a>(doc: &'a Value, ty: &str) -> Vec<(&'a String, &'a Value)> {
    doc["Resources"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, r)| r["Type"] == ty)
        .collect()
}

#[test]
fn the_stream_key_lets_connect_write_and_leaves_the_rest_to_iam() {
    let doc = template_json();
    let key = &doc["Resources"]["AnalyticsStreamKey"];
    assert_eq!(key["Type"], "AWS::KMS::Key");
    assert_eq!(key["Condition"], "AnalyticsEnabled");
    assert_eq!(key["Properties"]["EnableKeyRotation"], true);
    let statements = key_policy_statements(&doc);
    assert_eq!(statements.len(), 2, "{statements:?}");
    let root = statements
        .iter()
        .map(|(_, s)| s)
        .find(|s| s["Principal"]["AWS"].to_string().contains(":root"))
        .expect("the account-root statement (enables IAM policies on the key)");
    assert_eq!(root["Effect"], "Allow");
    assert_eq!(
        root["Principal"]["AWS"],
        "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"
    );
    assert_eq!(strings(&root["Action"]), ["kms:*"]);
    let slr = statements
        .iter()
        .map(|(_, s)| s)
        .find(|s| s["Principal"]["AWS"] == "ConnectServiceLinkedRoleArn")
        .expect("a statement for the Connect service-linked role");
    assert_eq!(slr["Effect"], "Allow");
    // The Connect data-streaming page's statement: Connect only writes (GenerateDataKey).
    assert_eq!(strings(&slr["Action"]), ["kms:GenerateDataKey"], "{slr}");
    assert_eq!(slr["Resource"], "*", "in a key policy, * is this key");

    let param = &doc["Parameters"]["ConnectServiceLinkedRoleArn"];
    let pattern = param["AllowedPattern"].as_str().expect("AllowedPattern");
    assert!(
        pattern.contains(
            r"role/aws-service-role/connect\.amazonaws\.com/AWSServiceRoleForAmazonConnect_"
        ) && pattern.ends_with('$'),
        "{pattern}"
    );
    assert!(param["ConstraintDescription"].is_string());
    // Analytics cannot be enabled without the role (the pattern also admits "" for EnableAnalytics=false).
    let rule = doc["Rules"]["AnalyticsNeedsTheConnectServiceLinkedRole"].to_string();
    assert!(
        rule.contains("EnableAnalytics") && rule.contains("ConnectServiceLinkedRoleArn"),
        "{rule}"
    );
    let alias = &doc["Resources"]["AnalyticsStreamKeyAlias"];
    assert_eq!(alias["Properties"]["TargetKeyId"], "AnalyticsStreamKey");
}

#[test]
fn both_streams_are_kms_encrypted_and_fed_by_connect() {
    let doc = template_json();
    let configs = resources_of_type(&doc, "AWS::Connect::InstanceStorageConfig");
    assert_eq!(configs.len(), 2, "{configs:?}");
    for (stream, resource_type) in STREAMS {
        let s = &doc["Resources"][stream];
        assert_eq!(s["Type"], "AWS::Kinesis::Stream", "{stream}");
        assert_eq!(s["Condition"], "AnalyticsEnabled", "{stream}");
        let p = &s["Properties"];
        assert_eq!(
            p["StreamEncryption"],
            serde_json::json!({"EncryptionType": "KMS", "KeyId": "AnalyticsStreamKey"}),
            "{stream}"
        );
        assert_eq!(
            p["StreamModeDetails"]["StreamMode"], "ON_DEMAND",
            "{stream}"
        );
        assert_eq!(p["RetentionPeriodHours"], "AnalyticsStreamRetentionHours");

        let matching: Vec<_> = configs
            .iter()
            .filter(|(_, c)| c["Properties"]["ResourceType"] == resource_type)
            .collect();
        assert_eq!(matching.len(), 1, "one storage config for {resource_type}");
        let (id, c) = matching[0];
        assert_eq!(c["Condition"], "AnalyticsEnabled", "{id}");
        let cp = &c["Properties"];
        assert_eq!(cp["InstanceArn"], "ConnectInstanceArn", "{id}");
        assert_eq!(cp["StorageType"], "KINESIS_STREAM", "{id}");
        assert_eq!(
            cp["KinesisStreamConfig"]["StreamArn"],
            format!("{stream}.Arn"),
            "{id}"
        );
    }
}

#[test]
fn the_indexer_consumes_both_streams_without_blocking_a_shard() {
    let doc = template_json();
    let f = &doc["Resources"]["AnalyticsIndexerFunction"];
    assert_eq!(f["Type"], "AWS::Serverless::Function");
    assert_eq!(f["Condition"], "AnalyticsEnabled");
    assert_eq!(f["Metadata"]["BuildMethod"], "rust-cargolambda");
    assert_eq!(
        f["Metadata"]["BuildProperties"]["Binary"],
        "analytics-indexer"
    );
    let min_retention_s = doc["Parameters"]["AnalyticsStreamRetentionHours"]["MinValue"]
        .as_i64()
        .expect("AnalyticsStreamRetentionHours.MinValue")
        * 3600;

    let events = kinesis_events(&doc, "AnalyticsIndexerFunction");
    let mut streams: Vec<String> = events
        .iter()
        .map(|(_, p)| p["Stream"].as_str().unwrap().to_string())
        .collect();
    streams.sort();
    assert_eq!(streams, ["AgentEventStream.Arn", "ContactRecordStream.Arn"]);
    for (id, p) in &events {
        assert_eq!(p["StartingPosition"], "TRIM_HORIZON", "{id}");
        assert_eq!(p["BisectBatchOnFunctionError"], true, "{id}");
        let retries = p["MaximumRetryAttempts"]
            .as_i64()
            .expect("MaximumRetryAttempts");
        assert!(
            (0..=10).contains(&retries),
            "{id}: finite retries (the default -1 retries until the record expires), got {retries}"
        );
        let age = p["MaximumRecordAgeInSeconds"]
            .as_i64()
            .expect("MaximumRecordAgeInSeconds");
        assert!(
            (60..min_retention_s).contains(&age),
            "{id}: record age {age} s must be finite and shorter than the stream retention"
        );
        assert_eq!(
            p["FunctionResponseTypes"],
            serde_json::json!(["ReportBatchItemFailures"]),
            "{id}: without it Lambda ignores the partial-batch response"
        );
        assert_eq!(p["ParallelizationFactor"], 1, "{id}");
        assert_eq!(
            p["DestinationConfig"]["OnFailure"],
            serde_json::json!({"Type": "SQS", "Destination": "DeadLetterQueue.Arn"}),
            "{id}"
        );
        assert!(p["BatchSize"]
            .as_i64()
            .is_some_and(|n| (1..=10_000).contains(&n)));
    }

    let env = &f["Properties"]["Environment"]["Variables"];
    assert_eq!(env["OPENSEARCH_ENDPOINT"], "OpenSearchEndpoint");
    assert_eq!(
        env["ANALYTICS_DLQ_URL"], "DeadLetterQueue",
        "the queue URL (!Ref)"
    );
    assert_eq!(env["QUEUE_DEPTH_INDEX"], "QueueDepthIndex");
    // The OpenSearch permissions cover exactly the indices the function is configured with.
    let es = statement_with(&doc, "AnalyticsIndexerRole", "es:ESHttpPut");
    let es_resources = strings(&es["Resource"]);
    for var in [
        "ANALYTICS_CTR_INDEX_PREFIX",
        "ANALYTICS_AGENT_EVENT_INDEX_PREFIX",
        "ANALYTICS_AGENT_STATE_INDEX",
    ] {
        let index = env[var].as_str().unwrap_or_else(|| panic!("{var} unset"));
        let wanted = format!("${{OpenSearchDomainArn}}/{index}*");
        assert!(
            es_resources.contains(&wanted),
            "{wanted} not in {es_resources:?}"
        );
    }
    assert!(es_resources.contains(&"${OpenSearchDomainArn}/_bulk".to_string()));
    // The report reads the queue-depth index (GET, HEAD, POST _search) and never writes it.
    let queue_depth = iam_statements(&doc)
        .into_iter()
        .find(|(r, s)| r == "AnalyticsIndexerRole" && s["Sid"] == "ReadQueueDepthIndex")
        .map(|(_, s)| s)
        .expect("ReadQueueDepthIndex");
    assert!(!strings(&queue_depth["Action"]).contains(&"es:ESHttpPut".to_string()));
    assert_eq!(
        strings(&queue_depth["Resource"]),
        ["${OpenSearchDomainArn}/${QueueDepthIndex}*"]
    );
}

#[test]
fn the_indexer_role_reads_only_its_streams_and_key() {
    let doc = template_json();
    let f = &doc["Resources"]["AnalyticsIndexerFunction"];
    assert_eq!(f["Properties"]["Role"], "AnalyticsIndexerRole.Arn");
    let role = &doc["Resources"]["AnalyticsIndexerRole"];
    assert_eq!(role["Condition"], "AnalyticsEnabled");
    assert_eq!(
        role["Properties"]["AssumeRolePolicyDocument"]["Statement"][0]["Principal"]["Service"],
        "lambda.amazonaws.com"
    );
    let kinesis = statement_with(&doc, "AnalyticsIndexerRole", "kinesis:GetRecords");
    let mut actions = strings(&kinesis["Action"]);
    actions.sort();
    assert_eq!(
        actions,
        [
            "kinesis:DescribeStream",
            "kinesis:DescribeStreamSummary",
            "kinesis:GetRecords",
            "kinesis:GetShardIterator",
            "kinesis:ListShards",
        ]
    );
    assert_eq!(
        strings(&kinesis["Resource"]),
        ["ContactRecordStream.Arn", "AgentEventStream.Arn"]
    );
    let decrypt = statement_with(&doc, "AnalyticsIndexerRole", "kms:Decrypt");
    assert_eq!(strings(&decrypt["Action"]), ["kms:Decrypt"]);
    assert_eq!(strings(&decrypt["Resource"]), ["AnalyticsStreamKey.Arn"]);
    let dlq = statement_with(&doc, "AnalyticsIndexerRole", "sqs:SendMessage");
    assert_eq!(strings(&dlq["Resource"]), ["DeadLetterQueue.Arn"]);
    let logs = statement_with(&doc, "AnalyticsIndexerRole", "logs:PutLogEvents");
    assert_eq!(strings(&logs["Resource"]), ["AnalyticsIndexerLogGroup.Arn"]);
    assert_eq!(
        f["Properties"]["LoggingConfig"]["LogGroup"],
        "AnalyticsIndexerLogGroup"
    );

    // Nowhere in the template does a kinesis or kms action apply to every resource.
    for (id, s) in iam_statements(&doc) {
        let actions = strings(&s["Action"]);
        if actions
            .iter()
            .any(|a| a.starts_with("kinesis:") || a.starts_with("kms:"))
        {
            let resources = strings(&s["Resource"]);
            assert!(!resources.is_empty(), "{id}: {s}");
            assert!(
                resources.iter().all(|r| !r.contains('*')),
                "{id}: kinesis/kms on a wildcard resource: {s}"
            );
        }
    }
}

#[test]
fn the_indexer_alarms_on_iterator_age_and_errors() {
    let doc = template_json();
    let alarms: Vec<(&String, &Value)> = resources_of_type(&doc, "AWS::CloudWatch::Alarm")
        .into_iter()
        .filter(|(_, a)| {
            a["Properties"]["Dimensions"]
                == serde_json::json!([{"Name": "FunctionName", "Value": "AnalyticsIndexerFunction"}])
        })
        .collect();
    let by_metric = |m: &str| {
        alarms
            .iter()
            .find(|(_, a)| a["Properties"]["MetricName"] == m)
            .unwrap_or_else(|| panic!("no {m} alarm on the analytics indexer"))
    };
    let (id, age) = by_metric("IteratorAge");
    assert_eq!(id.as_str(), "AnalyticsIndexerIteratorAgeAlarm");
    let p = &age["Properties"];
    assert_eq!(age["Condition"], "AnalyticsEnabled");
    assert_eq!(p["Namespace"], "AWS/Lambda");
    assert_eq!(p["Statistic"], "Maximum");
    assert_eq!(p["Threshold"], 60000, "milliseconds");
    assert_eq!(p["ComparisonOperator"], "GreaterThanThreshold");
    assert_eq!(
        (p["Period"].as_i64(), p["EvaluationPeriods"].as_i64()),
        (Some(60), Some(5))
    );
    assert!(p["AlarmActions"].to_string().contains("AlarmTopicArn"));
    let (_, errors) = by_metric("Errors");
    assert_eq!(errors["Condition"], "AnalyticsEnabled");
    assert_eq!(errors["Properties"]["Namespace"], "AWS/Lambda");
    assert!(errors["Properties"]["AlarmActions"]
        .to_string()
        .contains("AlarmTopicArn"));
}

/// Whatever names an analytics resource is itself conditional, so `EnableAnalytics=false` deploys the
/// template as before; the raw archive needs `EnableRawArchive` on top.
#[test]
fn analytics_is_conditional_and_the_raw_archive_optional() {
    let doc = template_json();
    let conditions = &doc["Conditions"];
    assert!(conditions["RawArchiveEnabled"]
        .to_string()
        .contains("AnalyticsEnabled"));
    let analytics: Vec<String> = doc["Resources"]
        .as_object()
        .unwrap()
        .iter()
        .filter(|(_, r)| {
            r["Condition"] == "AnalyticsEnabled" || r["Condition"] == "RawArchiveEnabled"
        })
        .map(|(id, _)| id.clone())
        .collect();
    for id in [
        "AnalyticsStreamKey",
        "ContactRecordStream",
        "AgentEventStream",
        "AnalyticsIndexerFunction",
        "AnalyticsIndexerRole",
        "AnalyticsIndexerLogGroup",
    ] {
        assert!(
            analytics.contains(&id.to_string()),
            "{id} is not conditional"
        );
    }
    let names_analytics = |v: &Value| {
        let text = v.to_string();
        analytics.iter().any(|id| {
            text.contains(&format!("\"{id}\""))
                || text.contains(&format!("\"{id}."))
                || text.contains(&format!("${{{id}"))
        })
    };
    for (id, r) in doc["Resources"].as_object().unwrap() {
        if names_analytics(&r["Properties"]) {
            assert!(
                r["Condition"] == "AnalyticsEnabled" || r["Condition"] == "RawArchiveEnabled",
                "{id} names an analytics resource but has no analytics condition"
            );
        }
    }
    for (id, o) in doc["Outputs"].as_object().unwrap() {
        if names_analytics(&o["Value"]) {
            assert!(o["Condition"].is_string(), "output {id} needs a condition");
        }
    }
    for out in [
        "ContactRecordStreamArn",
        "AgentEventStreamArn",
        "AnalyticsStreamKeyArn",
        "AnalyticsIndexerFunctionArn",
    ] {
        assert!(doc["Outputs"][out].is_object(), "output {out}");
    }

    let firehoses: Vec<_> = resources_of_type(&doc, "AWS::KinesisFirehose::DeliveryStream")
        .into_iter()
        .filter(|(_, f)| f["Properties"]["DeliveryStreamType"] == "KinesisStreamAsSource")
        .collect();
    assert_eq!(
        firehoses.len(),
        2,
        "the two raw archives read the analytics streams"
    );
    for (stream, prefix) in [
        ("ContactRecordStream", "analytics-raw/ctr/"),
        ("AgentEventStream", "analytics-raw/agent-events/"),
    ] {
        let (id, fh) = firehoses
            .iter()
            .find(|(_, f)| {
                f["Properties"]["KinesisStreamSourceConfiguration"]["KinesisStreamARN"]
                    == format!("{stream}.Arn")
            })
            .unwrap_or_else(|| panic!("no Firehose reads {stream}"));
        assert_eq!(fh["Condition"], "RawArchiveEnabled", "{id}");
        let p = &fh["Properties"];
        assert_eq!(p["DeliveryStreamType"], "KinesisStreamAsSource", "{id}");
        let s3 = &p["ExtendedS3DestinationConfiguration"];
        assert_eq!(s3["BucketARN"], "ArchiveBucket.Arn", "{id}");
        assert_eq!(
            s3["Prefix"],
            format!("{prefix}!{{timestamp:yyyy/MM/dd}}/"),
            "{id}"
        );
        assert!(
            s3["ErrorOutputPrefix"]
                .as_str()
                .is_some_and(|e| e.contains("!{firehose:error-output-type}")),
            "{id}: a Prefix with expressions needs an ErrorOutputPrefix with the error type"
        );
        let role = s3["RoleARN"].as_str().unwrap().trim_end_matches(".Arn");
        assert_eq!(
            p["KinesisStreamSourceConfiguration"]["RoleARN"],
            s3["RoleARN"]
        );
        let read = statement_with(&doc, role, "kinesis:GetRecords");
        assert_eq!(
            strings(&read["Resource"]),
            [format!("{stream}.Arn")],
            "{role}"
        );
        // kms:Decrypt twice when the bucket is SSE-KMS: the stream key's is DecryptSourceStream.
        let decrypt = iam_statements(&doc)
            .into_iter()
            .find(|(r, s)| r == role && s["Sid"] == "DecryptSourceStream")
            .map(|(_, s)| s)
            .unwrap_or_else(|| panic!("{role}: DecryptSourceStream"));
        assert_eq!(
            strings(&decrypt["Resource"]),
            ["AnalyticsStreamKey.Arn"],
            "{role}"
        );
        let put = statement_with(&doc, role, "s3:PutObject");
        assert!(
            strings(&put["Resource"])
                .iter()
                .all(|r| r.starts_with("${ArchiveBucket.Arn}/analytics-raw/")),
            "{role}: {put}"
        );
    }
}

/// The template passes cfn-lint and `sam validate --lint` (tools from the venv that tests/run.sh
/// installs: cfn-lint in `$CONNECT_EVENTS_VENV`, aws-sam-cli in `$CONNECT_EVENTS_VENV/sam`).
#[test]
fn the_template_passes_cfn_lint_and_sam_validate() {
    let venv = connect_events_tests::harness::venv_dir();
    let template = template_path();
    let cfn_lint = venv.join("bin").join("cfn-lint");
    let sam = venv.join("sam").join("bin").join("sam");
    for tool in [&cfn_lint, &sam] {
        assert!(
            tool.is_file(),
            "{} not found: run tests/run.sh once (it installs cfn-lint into $CONNECT_EVENTS_VENV \
             and aws-sam-cli into $CONNECT_EVENTS_VENV/sam)",
            tool.display()
        );
    }
    let mut lint = std::process::Command::new(&cfn_lint);
    lint.arg(&template);
    run_checked("cfn-lint", lint);
    let mut validate = std::process::Command::new(&sam);
    validate
        .args(["validate", "--template"])
        .arg(&template)
        .args(["--region", "us-east-1", "--lint"])
        .env("SAM_CLI_TELEMETRY", "0");
    let out = run_checked("sam validate --lint", validate);
    assert!(out.contains("is a valid SAM Template"), "{out}");

    // The service-linked role pattern, with Python's re (CloudFormation matches the whole value).
    let doc = template_json();
    let pattern = doc["Parameters"]["ConnectServiceLinkedRoleArn"]["AllowedPattern"]
        .as_str()
        .unwrap();
    let mut check = std::process::Command::new(venv.join("bin").join("python"));
    check.args([
        "-c",
        "import re, sys\n\
         p = sys.argv[1]\n\
         ok = ['', 'arn:aws:iam::123456789012:role/aws-service-role/connect.amazonaws.com/AWSServiceRoleForAmazonConnect_Ab12Cd34',\n\
               'arn:aws-us-gov:iam::123456789012:role/aws-service-role/connect.amazonaws.com/AWSServiceRoleForAmazonConnect_X1']\n\
         bad = ['arn:aws:iam::123456789012:role/AWSServiceRoleForAmazonConnect_X1',\n\
                'arn:aws:iam::123456789012:role/aws-service-role/connect.amazonaws.com/AWSServiceRoleForAmazonConnect',\n\
                'arn:aws:iam::123456789012:role/aws-service-role/connectXamazonaws.com/AWSServiceRoleForAmazonConnect_X1',\n\
                'arn:aws:iam::12345:role/aws-service-role/connect.amazonaws.com/AWSServiceRoleForAmazonConnect_X1']\n\
         wrong = [v for v in ok if not re.fullmatch(p, v)] + [v for v in bad if re.fullmatch(p, v)]\n\
         print(wrong)\n\
         sys.exit(1 if wrong else 0)",
    ]);
    check.arg(pattern);
    run_checked("AllowedPattern check", check);
}

/// Runs a command with a time limit; panics with its output unless it exits 0. Returns stdout+stderr.
fn run_checked(what: &str, mut cmd: std::process::Command) -> String {
    use std::io::Read;
    use std::process::Stdio;
    let mut child = cmd
        .current_dir(workspace_root())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("{what}: cannot start: {e}"));
    let mut stdout = child.stdout.take().unwrap();
    let mut stderr = child.stderr.take().unwrap();
    let out_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stdout.read_to_string(&mut s);
        s
    });
    let err_reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = stderr.read_to_string(&mut s);
        s
    });
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(180);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{what}: no result within 180 s");
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    let output = format!(
        "{}{}",
        out_reader.join().unwrap(),
        err_reader.join().unwrap()
    );
    assert!(status.success(), "{what} failed ({status}):\n{output}");
    output
}

/// The agent-workspace app (#13): its API routes carry the JWT authorizer and its page does not;
/// the AppIntegrations application asks only for what the page uses, per contact, and is
/// associated with the instance; the function may describe contacts and agents of that instance
/// only; the CSP's frame-ancestors is the instance origin.
#[test]
fn the_agent_app_is_authorized_least_privileged_and_associated() {
    let doc = template_json();
    let res = &doc["Resources"];
    let api = &res["AgentAppHttpApi"]["Properties"]["Auth"];
    assert_eq!(api["DefaultAuthorizer"], "AgentJwt");
    assert_eq!(
        api["Authorizers"]["AgentJwt"]["IdentitySource"],
        "$request.header.Authorization"
    );
    let f = &res["AgentAppFunction"]["Properties"];
    for (name, event) in f["Events"].as_object().unwrap() {
        let none = event["Properties"]["Auth"]["Authorizer"] == "NONE";
        let api_route = event["Properties"]["Path"]
            .as_str()
            .unwrap()
            .starts_with("/api/");
        assert_eq!(none, !api_route, "{name}: only the page is open");
    }
    // Built with its front end: the Makefile at ContextPath has the function's target.
    let meta = &res["AgentAppFunction"]["Metadata"];
    assert_eq!(meta["BuildMethod"], "makefile");
    let makefile = connect_events_tests::workspace_root()
        .join("infra")
        .join(meta["ContextPath"].as_str().unwrap())
        .join("Makefile");
    let makefile = std::fs::read_to_string(&makefile).unwrap();
    assert!(makefile.contains("build-AgentAppFunction:"), "{makefile}");
    assert!(makefile.contains("$(ARTIFACTS_DIR)/web"), "{makefile}");
    let pages: Vec<_> = f["Events"]
        .as_object()
        .unwrap()
        .values()
        .filter_map(|e| e["Properties"]["Path"].as_str())
        .filter(|p| p.starts_with("/app/"))
        .collect();
    assert_eq!(pages.len(), 2, "the page and its files: {pages:?}");
    // Tags are stripped: `!Ref ConnectInstanceOrigin` reads as its operand.
    assert_eq!(
        f["Environment"]["Variables"]["APP_FRAME_ANCESTORS"],
        "ConnectInstanceOrigin"
    );
    let statements = f["Policies"][0]["Statement"].as_array().unwrap();
    for s in statements {
        let resource = s["Resource"].to_string();
        assert!(!resource.contains("\"*\""), "no wildcard resource: {s}");
    }
    let app = &res["AgentApplication"]["Properties"];
    assert_eq!(
        app["Permissions"],
        serde_json::json!(["Contact.Details.View", "User.Details.View"])
    );
    assert_eq!(
        app["ApplicationConfig"]["ContactHandling"]["Scope"],
        "PER_CONTACT"
    );
    let assoc = &res["AgentApplicationAssociation"]["Properties"];
    assert_eq!(assoc["IntegrationType"], "APPLICATION");
    assert_eq!(assoc["IntegrationArn"], "AgentApplication.ApplicationArn");
    for id in [
        "AgentAppHttpApi",
        "AgentAppFunction",
        "AgentApplication",
        "AgentApplicationAssociation",
    ] {
        assert_eq!(res[id]["Condition"], "AgentAppEnabled", "{id}");
    }
}

/// The optional Firehose capture (#14): the capture rule's second target, behind its condition,
/// gzip NDJSON into the archive bucket's `capture/` prefix (what `replay s3://…` reads), with roles
/// scoped to that stream and prefix.
#[test]
fn the_firehose_capture_is_optional_gzip_ndjson_under_capture() {
    let doc = template_json();
    let res = &doc["Resources"];
    let targets = res["ConnectEventCaptureRule"]["Properties"]["Targets"]
        .as_array()
        .unwrap();
    assert_eq!(
        targets.len(),
        2,
        "log group, and the Firehose behind its condition"
    );
    let fh = &res["CaptureDeliveryStream"];
    assert_eq!(fh["Condition"], "FirehoseCaptureEnabled");
    let s3 = &fh["Properties"]["ExtendedS3DestinationConfiguration"];
    assert_eq!(s3["CompressionFormat"], "GZIP");
    assert!(s3["Prefix"].as_str().unwrap().starts_with("capture/"));
    assert_eq!(
        s3["ProcessingConfiguration"]["Processors"][0]["Type"],
        "AppendDelimiterToRecord"
    );
    let put =
        &res["CaptureDeliveryRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"][0];
    assert_eq!(put["Resource"], "CaptureDeliveryStream.Arn");
    for id in ["CaptureFirehoseRole", "CaptureDeliveryRole"] {
        assert_eq!(res[id]["Condition"], "FirehoseCaptureEnabled", "{id}");
    }
}
