//! Read routing rules from `infra/template.yaml`.
//!
//! Understood: `AWS::Serverless::Function` resources with `EventBridgeRule` / `CloudWatchEvent`
//! events (`Pattern`) and `Schedule` / `ScheduleV2` events, `AWS::Events::Rule` resources whose
//! targets name a function with `!GetAtt F.Arn` / `!Ref F`, and `AWS::Lambda::Permission` resources
//! granting `connect.amazonaws.com` (functions invoked by contact flows). A function's handler is its
//! binary, `Metadata.BuildProperties.Binary` (what `sam build` with `BuildMethod: rust-cargolambda`
//! builds). CloudFormation short tags (`!Ref`, `!Sub`, `!GetAtt`, …) are read as their long forms;
//! inside patterns `Ref` and `Fn::Sub` resolve to parameter defaults and overrides.
//!
//! A rule's name is its `RuleName` / `Name` when set literally, otherwise its logical id (SAM names an
//! event's rule `<FunctionId><EventId>`).

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Map, Value};

use super::pattern::Pattern;
use crate::dispatch::HandlerKind;

/// A problem in the template, naming the resource and property.
#[derive(Debug, thiserror::Error)]
#[error("{location}: {message}")]
pub struct TemplateError {
    pub location: String,
    pub message: String,
}

fn err(location: impl Into<String>, message: impl Into<String>) -> TemplateError {
    TemplateError {
        location: location.into(),
        message: message.into(),
    }
}

/// A Lambda function of the template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FunctionDef {
    pub logical_id: String,
    pub binary: String,
    pub handler: Option<HandlerKind>,
    /// A permission lets Amazon Connect invoke it (contact flows).
    pub invoked_by_connect: bool,
}

/// One EventBridge rule targeting a function.
#[derive(Debug)]
pub struct Rule {
    pub name: String,
    pub logical_id: String,
    /// Logical id of the target function.
    pub function: String,
    pub handler: Option<HandlerKind>,
    pub pattern: Option<Pattern>,
    pub pattern_json: Option<Value>,
    pub schedule: Option<String>,
    pub enabled: bool,
}

/// What Amazon Connect streams into a Kinesis stream (`AWS::Connect::InstanceStorageConfig`
/// `ResourceType`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum StreamContent {
    /// `CONTACT_TRACE_RECORDS`.
    ContactRecords,
    /// `AGENT_EVENTS`.
    AgentEvents,
}

impl StreamContent {
    fn from_resource_type(t: &str) -> Option<StreamContent> {
        match t {
            "CONTACT_TRACE_RECORDS" => Some(StreamContent::ContactRecords),
            "AGENT_EVENTS" => Some(StreamContent::AgentEvents),
            _ => None,
        }
    }
}

/// A Kinesis event source of a function: the stream, what Connect writes into it, the handler.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamSource {
    /// `<FunctionId>.<EventId>` (how replay reports count it).
    pub name: String,
    /// Logical id of the function.
    pub function: String,
    pub handler: Option<HandlerKind>,
    /// Logical id of the stream.
    pub stream: String,
    /// What the instance's storage configs stream into it.
    pub carries: Vec<StreamContent>,
}

/// Every function and rule of a template.
#[derive(Debug, Default)]
pub struct RuleSet {
    pub functions: Vec<FunctionDef>,
    pub rules: Vec<Rule>,
    /// Kinesis event sources (`Type: Kinesis` events), with what each stream carries.
    pub streams: Vec<StreamSource>,
}

impl RuleSet {
    /// Load from a file with the parameters' defaults.
    pub fn load(path: &Path) -> Result<RuleSet, TemplateError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| err(path.display().to_string(), format!("cannot read: {e}")))?;
        RuleSet::from_yaml(&text, &BTreeMap::new())
            .map_err(|e| err(format!("{}: {}", path.display(), e.location), e.message))
    }

    /// Parse template text; `overrides` replace parameter defaults.
    pub fn from_yaml(
        text: &str,
        overrides: &BTreeMap<String, String>,
    ) -> Result<RuleSet, TemplateError> {
        let yaml: serde_norway::Value = serde_norway::from_str(text).map_err(|e| {
            let at = e
                .location()
                .map(|l| format!("line {}", l.line()))
                .unwrap_or_else(|| "template".into());
            err(at, format!("invalid YAML: {e}"))
        })?;
        let doc = yaml_to_json(yaml);
        let params = parameters(&doc, overrides);
        let resources = doc
            .get("Resources")
            .and_then(Value::as_object)
            .ok_or_else(|| err("Resources", "missing"))?;

        let mut set = RuleSet::default();
        let mut connect_invoked = Vec::new();
        let mut storage: Vec<(String, StreamContent)> = Vec::new();
        for (id, res) in resources {
            match res.get("Type").and_then(Value::as_str) {
                Some("AWS::Serverless::Function") => {
                    let binary = res
                        .pointer("/Metadata/BuildProperties/Binary")
                        .and_then(Value::as_str)
                        .ok_or_else(|| {
                            err(
                                format!("Resources.{id}"),
                                "function without Metadata.BuildProperties.Binary",
                            )
                        })?;
                    set.functions.push(FunctionDef {
                        logical_id: id.clone(),
                        binary: binary.to_string(),
                        handler: HandlerKind::from_binary(binary),
                        invoked_by_connect: false,
                    });
                    let events = res.pointer("/Properties/Events").and_then(Value::as_object);
                    for (event_id, ev) in events.into_iter().flatten() {
                        if ev.get("Type").and_then(Value::as_str) == Some("Kinesis") {
                            let stream = ev
                                .pointer("/Properties/Stream")
                                .and_then(function_ref)
                                .ok_or_else(|| {
                                    err(
                                        format!("Resources.{id}.Properties.Events.{event_id}"),
                                        "Kinesis event without a Stream reference (!GetAtt S.Arn)",
                                    )
                                })?;
                            set.streams.push(StreamSource {
                                name: format!("{id}.{event_id}"),
                                function: id.clone(),
                                handler: HandlerKind::from_binary(binary),
                                stream,
                                carries: Vec::new(),
                            });
                            continue;
                        }
                        if let Some(rule) = sam_event_rule(id, binary, event_id, ev, &params)? {
                            set.rules.push(rule);
                        }
                    }
                }
                Some("AWS::Events::Rule") => set.rules.extend(events_rule(id, res, &params)?),
                Some("AWS::Connect::InstanceStorageConfig") => {
                    let props = res.get("Properties");
                    let content = props
                        .and_then(|p| p.get("ResourceType"))
                        .and_then(Value::as_str)
                        .and_then(StreamContent::from_resource_type);
                    let stream = props
                        .and_then(|p| p.pointer("/KinesisStreamConfig/StreamArn"))
                        .and_then(function_ref);
                    if let (Some(content), Some(stream)) = (content, stream) {
                        storage.push((stream, content));
                    }
                }
                Some("AWS::Lambda::Permission") => {
                    let props = res.get("Properties");
                    let principal = props
                        .and_then(|p| p.get("Principal"))
                        .and_then(Value::as_str);
                    if principal == Some("connect.amazonaws.com") {
                        if let Some(f) = props
                            .and_then(|p| p.get("FunctionName"))
                            .and_then(function_ref)
                        {
                            connect_invoked.push(f);
                        }
                    }
                }
                _ => {}
            }
        }
        for f in &mut set.functions {
            f.invoked_by_connect = connect_invoked.contains(&f.logical_id);
        }
        for source in &mut set.streams {
            source.carries = storage
                .iter()
                .filter(|(stream, _)| *stream == source.stream)
                .map(|(_, content)| *content)
                .collect();
        }
        let binaries: BTreeMap<&str, &str> = set
            .functions
            .iter()
            .map(|f| (f.logical_id.as_str(), f.binary.as_str()))
            .collect();
        // A rule may also target what is not a function (the capture log group): not routed here.
        set.rules
            .retain(|r| binaries.contains_key(r.function.as_str()) || r.handler.is_some());
        for rule in &mut set.rules {
            if rule.handler.is_none() {
                rule.handler = binaries
                    .get(rule.function.as_str())
                    .and_then(|b| HandlerKind::from_binary(b));
            }
        }
        Ok(set)
    }

    /// The enabled rules whose pattern matches the event, in template order.
    pub fn route<'a>(&'a self, event: &'a Value) -> impl Iterator<Item = &'a Rule> + 'a {
        self.rules
            .iter()
            .filter(move |r| r.enabled && r.pattern.as_ref().is_some_and(|p| p.matches(event)))
    }

    /// The Kinesis event sources whose stream carries `content`, in template order.
    pub fn stream_route(&self, content: StreamContent) -> impl Iterator<Item = &StreamSource> + '_ {
        self.streams
            .iter()
            .filter(move |s| s.carries.contains(&content))
    }

    /// Rules with an event pattern (schedules excluded).
    pub fn pattern_rules(&self) -> impl Iterator<Item = &Rule> {
        self.rules.iter().filter(|r| r.pattern.is_some())
    }
}

fn parameters(doc: &Value, overrides: &BTreeMap<String, String>) -> BTreeMap<String, Value> {
    let mut out = BTreeMap::new();
    for (name, p) in doc
        .get("Parameters")
        .and_then(Value::as_object)
        .into_iter()
        .flatten()
    {
        if let Some(d) = p.get("Default") {
            out.insert(name.clone(), d.clone());
        }
    }
    for (k, v) in overrides {
        out.insert(k.clone(), Value::String(v.clone()));
    }
    out.entry("AWS::Region".into())
        .or_insert_with(|| Value::String("us-east-1".into()));
    out.entry("AWS::Partition".into())
        .or_insert_with(|| Value::String("aws".into()));
    out
}

fn sam_event_rule(
    function: &str,
    binary: &str,
    event_id: &str,
    ev: &Value,
    params: &BTreeMap<String, Value>,
) -> Result<Option<Rule>, TemplateError> {
    let at = format!("Resources.{function}.Properties.Events.{event_id}");
    let props = ev.get("Properties").cloned().unwrap_or(Value::Null);
    let logical_id = format!("{function}{event_id}");
    let name = props
        .get("RuleName")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| logical_id.clone());
    let enabled = state_enabled(&props);
    let handler = HandlerKind::from_binary(binary);
    match ev.get("Type").and_then(Value::as_str) {
        Some("EventBridgeRule") | Some("CloudWatchEvent") => {
            let raw = props
                .get("Pattern")
                .ok_or_else(|| err(&at, "EventBridgeRule without Pattern"))?;
            let (pattern, json) = compile(&format!("{at}.Properties.Pattern"), raw, params)?;
            Ok(Some(Rule {
                name,
                logical_id,
                function: function.into(),
                handler,
                pattern: Some(pattern),
                pattern_json: Some(json),
                schedule: None,
                enabled,
            }))
        }
        Some("Schedule") | Some("ScheduleV2") => {
            let schedule = props
                .get("Schedule")
                .or_else(|| props.get("ScheduleExpression"))
                .map(|s| {
                    s.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| s.to_string())
                });
            Ok(Some(Rule {
                name,
                logical_id,
                function: function.into(),
                handler,
                pattern: None,
                pattern_json: None,
                schedule,
                enabled,
            }))
        }
        _ => Ok(None),
    }
}

fn events_rule(
    id: &str,
    res: &Value,
    params: &BTreeMap<String, Value>,
) -> Result<Vec<Rule>, TemplateError> {
    let at = format!("Resources.{id}.Properties");
    let props = res.get("Properties").cloned().unwrap_or(Value::Null);
    let name = props
        .get("Name")
        .and_then(Value::as_str)
        .map(str::to_string)
        .unwrap_or_else(|| id.to_string());
    let enabled = state_enabled(&props);
    let compiled = match props.get("EventPattern") {
        Some(Value::String(s)) => {
            let v: Value = serde_json::from_str(s)
                .map_err(|e| err(format!("{at}.EventPattern"), format!("invalid JSON: {e}")))?;
            Some(compile(&format!("{at}.EventPattern"), &v, params)?)
        }
        Some(v) => Some(compile(&format!("{at}.EventPattern"), v, params)?),
        None => None,
    };
    let schedule = props
        .get("ScheduleExpression")
        .and_then(Value::as_str)
        .map(str::to_string);
    let targets = props
        .get("Targets")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut rules = Vec::new();
    for t in targets {
        let Some(function) = t.get("Arn").and_then(function_ref) else {
            continue;
        };
        let (pattern, pattern_json) = match &compiled {
            Some((_, json)) => {
                let (p, j) = compile(&format!("{at}.EventPattern"), json, params)?;
                (Some(p), Some(j))
            }
            None => (None, None),
        };
        rules.push(Rule {
            name: name.clone(),
            logical_id: id.to_string(),
            function,
            handler: None,
            pattern,
            pattern_json,
            schedule: schedule.clone(),
            enabled,
        });
    }
    Ok(rules)
}

fn state_enabled(props: &Value) -> bool {
    let state = props.get("State").and_then(Value::as_str);
    let enabled = props.get("Enabled").and_then(Value::as_bool);
    state != Some("DISABLED") && enabled != Some(false)
}

/// The logical id named by `!GetAtt F.Arn`, `{"Fn::GetAtt": ["F", "Arn"]}` or `!Ref F`.
fn function_ref(v: &Value) -> Option<String> {
    if let Some(s) = v.get("Ref").and_then(Value::as_str) {
        return Some(s.to_string());
    }
    match v.get("Fn::GetAtt")? {
        Value::String(s) => s.split('.').next().map(str::to_string),
        Value::Array(parts) => parts.first().and_then(Value::as_str).map(str::to_string),
        _ => None,
    }
}

fn compile(
    at: &str,
    raw: &Value,
    params: &BTreeMap<String, Value>,
) -> Result<(Pattern, Value), TemplateError> {
    let resolved = resolve(at, raw, params)?;
    let pattern =
        Pattern::parse(&resolved).map_err(|e| err(at, format!("invalid event pattern: {e}")))?;
    Ok((pattern, resolved))
}

/// Resolve `Ref` and `Fn::Sub` against parameters inside a pattern.
fn resolve(at: &str, v: &Value, params: &BTreeMap<String, Value>) -> Result<Value, TemplateError> {
    match v {
        Value::Object(map) if map.len() == 1 && map.contains_key("Ref") => {
            let name = map["Ref"].as_str().unwrap_or_default();
            params.get(name).cloned().ok_or_else(|| {
                err(
                    at,
                    format!("!Ref {name}: no parameter default to resolve it"),
                )
            })
        }
        Value::Object(map) if map.len() == 1 && map.contains_key("Fn::Sub") => {
            let text = map["Fn::Sub"]
                .as_str()
                .ok_or_else(|| err(at, "only the string form of !Sub is supported in patterns"))?;
            Ok(Value::String(substitute(at, text, params)?))
        }
        Value::Object(map) => {
            let mut out = Map::new();
            for (k, val) in map {
                out.insert(k.clone(), resolve(&format!("{at}.{k}"), val, params)?);
            }
            Ok(Value::Object(out))
        }
        Value::Array(items) => items
            .iter()
            .enumerate()
            .map(|(i, x)| resolve(&format!("{at}[{i}]"), x, params))
            .collect::<Result<_, _>>()
            .map(Value::Array),
        other => Ok(other.clone()),
    }
}

fn substitute(
    at: &str,
    text: &str,
    params: &BTreeMap<String, Value>,
) -> Result<String, TemplateError> {
    let mut out = String::new();
    let mut rest = text;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| err(at, "unterminated ${ in !Sub"))?;
        let name = &after[..end];
        match params.get(name) {
            Some(Value::String(s)) => out.push_str(s),
            Some(other) => out.push_str(&other.to_string()),
            None => {
                return Err(err(
                    at,
                    format!("!Sub ${{{name}}}: no parameter default to resolve it"),
                ))
            }
        }
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// YAML → JSON, turning CloudFormation short tags into their long forms.
fn yaml_to_json(v: serde_norway::Value) -> Value {
    use serde_norway::Value as Y;
    match v {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(b),
        Y::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                n.as_f64()
                    .and_then(serde_json::Number::from_f64)
                    .map_or(Value::Null, Value::Number)
            }
        }
        Y::String(s) => Value::String(s),
        Y::Sequence(items) => Value::Array(items.into_iter().map(yaml_to_json).collect()),
        Y::Mapping(map) => {
            let mut out = Map::new();
            for (k, val) in map {
                let key = match k {
                    Y::String(s) => s,
                    other => serde_norway::to_string(&other)
                        .unwrap_or_default()
                        .trim()
                        .to_string(),
                };
                out.insert(key, yaml_to_json(val));
            }
            Value::Object(out)
        }
        Y::Tagged(tagged) => {
            let tag = tagged.tag.to_string();
            let tag = tag.trim_start_matches('!');
            let inner = yaml_to_json(tagged.value);
            let key = if tag == "Ref" || tag == "Condition" {
                tag.to_string()
            } else {
                format!("Fn::{tag}")
            };
            let inner = match (tag, inner) {
                ("GetAtt", Value::String(s)) => {
                    let mut parts = s.splitn(2, '.');
                    let res = parts.next().unwrap_or_default().to_string();
                    let attr = parts.next().unwrap_or_default().to_string();
                    Value::Array(vec![Value::String(res), Value::String(attr)])
                }
                (_, other) => other,
            };
            let mut m = Map::new();
            m.insert(key, inner);
            Value::Object(m)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// The deployed template routes each kind of streamed record to the analytics indexer through
    /// its Kinesis event source on the stream the instance's storage config writes.
    #[test]
    fn the_template_streams_records_to_the_indexer() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../infra/template.yaml");
        let set = RuleSet::load(&path).expect("template");
        for content in [StreamContent::ContactRecords, StreamContent::AgentEvents] {
            let sources: Vec<&StreamSource> = set.stream_route(content).collect();
            assert_eq!(sources.len(), 1, "{content:?}: {:?}", set.streams);
            assert_eq!(sources[0].handler, Some(HandlerKind::AnalyticsIndexer));
        }
        assert!(set
            .rules
            .iter()
            .all(|r| r.handler != Some(HandlerKind::AnalyticsIndexer)));
    }

    const TEMPLATE: &str = r#"
AWSTemplateFormatVersion: '2010-09-09'
Transform: AWS::Serverless-2016-10-31
Parameters:
  ConnectInstanceArn:
    Type: String
    Default: arn:aws:connect:us-east-1:123456789012:instance/abc
Resources:
  QueueDepthFunction:
    Type: AWS::Serverless::Function
    Metadata:
      BuildMethod: rust-cargolambda
      BuildProperties:
        Binary: queue-depth
    Properties:
      Role: !GetAtt QueueDepthRole.Arn
      Events:
        Contact:
          Type: EventBridgeRule
          Properties:
            RuleName: !Sub "${AWS::StackName}-queue-depth"
            Pattern:
              source: [aws.connect]
              detail:
                instanceArn: [!Ref ConnectInstanceArn]
                eventType: [QUEUED]
        Reconcile:
          Type: Schedule
          Properties:
            Schedule: rate(1 minute)
  FlowFunction:
    Type: AWS::Serverless::Function
    Metadata:
      BuildProperties:
        Binary: deny-list-flow
  FlowPermission:
    Type: AWS::Lambda::Permission
    Properties:
      Principal: connect.amazonaws.com
      FunctionName: !GetAtt FlowFunction.Arn
  ArchiveRule:
    Type: AWS::Events::Rule
    Properties:
      EventPattern: {"source": ["aws.connect"], "detail": {"eventType": ["DISCONNECTED"]}}
      Targets:
        - Arn: !GetAtt ArchiveFunction.Arn
          Id: archive
  ArchiveFunction:
    Type: AWS::Serverless::Function
    Metadata:
      BuildProperties:
        Binary: flow-log-archiver
"#;

    #[test]
    fn reads_sam_and_cfn_rules_with_short_tags() {
        let set = RuleSet::from_yaml(TEMPLATE, &BTreeMap::new()).unwrap();
        assert_eq!(set.functions.len(), 3);
        let flow = set
            .functions
            .iter()
            .find(|f| f.logical_id == "FlowFunction")
            .unwrap();
        assert!(flow.invoked_by_connect);
        assert_eq!(flow.handler, Some(HandlerKind::DenyListFlow));
        let names: Vec<_> = set.rules.iter().map(|r| r.name.as_str()).collect();
        assert!(names.contains(&"QueueDepthFunctionContact"), "{names:?}");
        assert!(names.contains(&"QueueDepthFunctionReconcile"));
        assert!(names.contains(&"ArchiveRule"));
        let archive = set.rules.iter().find(|r| r.name == "ArchiveRule").unwrap();
        assert_eq!(archive.handler, Some(HandlerKind::FlowLogArchiver));

        let queued = json!({"source": "aws.connect", "detail": {"eventType": "QUEUED", "instanceArn": "arn:aws:connect:us-east-1:123456789012:instance/abc"}});
        let routed: Vec<_> = set.route(&queued).map(|r| r.name.as_str()).collect();
        assert_eq!(routed, vec!["QueueDepthFunctionContact"]);
        let other_instance =
            json!({"source": "aws.connect", "detail": {"eventType": "QUEUED", "instanceArn": "x"}});
        assert_eq!(set.route(&other_instance).count(), 0);
    }

    #[test]
    fn overrides_replace_defaults() {
        let mut o = BTreeMap::new();
        o.insert("ConnectInstanceArn".to_string(), "x".to_string());
        let set = RuleSet::from_yaml(TEMPLATE, &o).unwrap();
        let ev =
            json!({"source": "aws.connect", "detail": {"eventType": "QUEUED", "instanceArn": "x"}});
        assert_eq!(set.route(&ev).count(), 1);
    }

    #[test]
    fn errors_name_the_place() {
        let bad = TEMPLATE.replace("eventType: [QUEUED]", "eventType: QUEUED");
        let e = RuleSet::from_yaml(&bad, &BTreeMap::new()).unwrap_err();
        assert!(e.location.contains("QueueDepthFunction"), "{e}");
        assert!(RuleSet::from_yaml("a: [", &BTreeMap::new()).is_err());
    }
}
