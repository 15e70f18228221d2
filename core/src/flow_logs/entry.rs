//! One Amazon Connect flow-log entry: the JSON message body of one CloudWatch Logs event in the
//! instance's flow-log group (`/aws/connect/<instance-alias>`).
//!
//! Field set of current logs (reference `amazon-connect.md` §3.2): `ContactId`, `ContactFlowId` (an ARN),
//! `ContactFlowName`, `ContactFlowModuleType`, `Identifier`, `Timestamp`, plus `Parameters`, `Results` and
//! `ExternalResults` where the block produces them. Only `ContactId` and `Timestamp` are required: every other
//! field is optional (older captures lack `ContactFlowName` and `Identifier`), and fields this module does not
//! know are kept untouched, because the archive must be lossless. Field names are matched exactly as Connect
//! writes them (a Firehose/Athena copy with lower-cased keys is not a flow-log entry for this module).
//!
//! The entry is stored once, as its *canonical JSON*: the same object with the keys of every object sorted
//! (byte order), no insignificant whitespace, strings escaped exactly as `serde_json` escapes them and numbers
//! written as `serde_json` writes them. Two deliveries of the same log event therefore have the same canonical
//! JSON even if a pipeline reordered their keys; that string is the dedupe key and the archive line. The
//! canonical form does not depend on `serde_json`'s `preserve_order` feature.

use std::borrow::Cow;
use std::fmt::{self, Write as _};
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde_json::Value;

/// `ContactId` field name.
pub const FIELD_CONTACT_ID: &str = "ContactId";
/// `Timestamp` field name (ISO-8601 / RFC 3339, UTC, milliseconds).
pub const FIELD_TIMESTAMP: &str = "Timestamp";
/// `ContactFlowModuleType` field name (block type).
pub const FIELD_MODULE_TYPE: &str = "ContactFlowModuleType";
/// `Identifier` field name (block id or custom block name).
pub const FIELD_IDENTIFIER: &str = "Identifier";
/// `ContactFlowName` field name.
pub const FIELD_CONTACT_FLOW_NAME: &str = "ContactFlowName";
/// `Results` field name (outcome of some blocks).
pub const FIELD_RESULTS: &str = "Results";
/// `ExternalResults` field name (map returned by a Lambda; absent when the Lambda failed).
pub const FIELD_EXTERNAL_RESULTS: &str = "ExternalResults";

/// Module type of the "Invoke AWS Lambda function" block.
pub const MODULE_INVOKE_EXTERNAL_RESOURCE: &str = "InvokeExternalResource";

/// Deepest nesting of arrays/objects accepted (the same limit `serde_json` applies when parsing text).
const MAX_DEPTH: usize = 128;
/// Longest field value quoted back in an error message.
const MAX_QUOTED: usize = 64;

/// One flow-log entry.
///
/// Keeps the original JSON object (all fields, unknown ones too) as its canonical JSON string so the archive is
/// lossless, plus the few parsed fields the archiver needs. There is no second copy of the raw object; use
/// [`FlowLogEntry::to_value`] to get it back as a `serde_json::Value`.
#[derive(Debug, Clone, PartialEq)]
pub struct FlowLogEntry {
    canonical: Box<str>,
    timestamp: DateTime<Utc>,
    contact_id: Box<str>,
    module_type: Option<Box<str>>,
    identifier: Option<Box<str>>,
    contact_flow_name: Option<Box<str>>,
    results: Option<Box<str>>,
    has_external_results: bool,
}

/// Why a flow-log line or object is not a usable entry. Field errors name the field.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EntryError {
    /// The line is empty or only whitespace.
    #[error("flow-log entry is empty")]
    Empty,
    /// The line is not valid JSON (or nests deeper than 128 levels).
    #[error("flow-log entry is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The JSON value is not an object.
    #[error("flow-log entry must be a JSON object, found {found}")]
    NotAnObject {
        /// JSON type found instead (`"array"`, `"string"`, ...).
        found: &'static str,
    },
    /// A required field is absent (or `null`).
    #[error("flow-log entry has no `{field}` field")]
    MissingField {
        /// Field name, e.g. `"ContactId"`.
        field: &'static str,
    },
    /// A field has the wrong JSON type.
    #[error("flow-log field `{field}` must be {expected}, found {found}")]
    WrongType {
        /// Field name.
        field: &'static str,
        /// Expected JSON type.
        expected: &'static str,
        /// JSON type found.
        found: &'static str,
    },
    /// A required string field is empty or only whitespace.
    #[error("flow-log field `{field}` is empty")]
    EmptyField {
        /// Field name.
        field: &'static str,
    },
    /// `Timestamp` is not an RFC 3339 / ISO-8601 date-time with offset (e.g. `2021-04-13T00:14:31.581Z`).
    #[error("flow-log field `Timestamp` is not an RFC 3339 timestamp: {value:?}: {source}")]
    InvalidTimestamp {
        /// The value found (cut to 64 characters).
        value: String,
        /// Parser error.
        #[source]
        source: chrono::ParseError,
    },
    /// A value built in code (not parsed from text) nests deeper than 128 levels.
    #[error("flow-log entry nests deeper than {MAX_DEPTH} levels")]
    TooDeep,
}

impl EntryError {
    /// Name of the offending field, when the error is about one field.
    pub fn field(&self) -> Option<&'static str> {
        match self {
            EntryError::MissingField { field }
            | EntryError::WrongType { field, .. }
            | EntryError::EmptyField { field } => Some(field),
            EntryError::InvalidTimestamp { .. } => Some(FIELD_TIMESTAMP),
            EntryError::Empty
            | EntryError::Json(_)
            | EntryError::NotAnObject { .. }
            | EntryError::TooDeep => None,
        }
    }
}

/// An error recorded by a flow block, as found in one flow-log entry (see [`FlowLogEntry::error`]).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub struct BlockError {
    /// `ContactFlowModuleType` (empty if the entry has none).
    pub module_type: String,
    /// `Identifier`: block id or custom block name.
    pub identifier: Option<String>,
    /// `ContactFlowName`.
    pub flow_name: Option<String>,
    /// The `Results` value that signals the error.
    pub result: String,
}

/// Case-insensitive (ASCII) substrings of a `Results` value that signal an error.
///
/// Sources: reference `amazon-connect.md` §3.3 (real logs: `"Error"`, `"The Lambda Function Returned An Error."`,
/// `"Status Code: 403; Error Code: AccessDeniedException"`; strings public tooling treats as errors: `Error`,
/// `Failed`, `Timeout`, `Exception`, `No prompt provided`, `Instance has reached concurrent Lambda thread access
/// limit`, `Unsupported`, `Invalid`, `not found`, `NotDone`, `MultipleFound`). `failure`, `timed out` and
/// `notfound` are spelling variants of the same outcomes.
pub const ERROR_RESULT_MARKERS: &[&str] = &[
    "error",
    "exception",
    "failed",
    "failure",
    "timeout",
    "timed out",
    "not found",
    "notfound",
    "invalid",
    "unsupported",
    "notdone",
    "multiplefound",
    "no prompt provided",
    "concurrent lambda thread access limit",
];

/// Does this `Results` value signal an error?
///
/// * Never an error: an empty value, `"true"`, `"false"` (any case; a `Transfer` with `"false"` is followed by
///   queueing in real logs), and numbers (e.g. digits entered in `GetUserInput`).
/// * An error: a value containing, ignoring ASCII case, one of [`ERROR_RESULT_MARKERS`] — which covers
///   `"Error"`, `"The Lambda Function Returned An Error."`, `"Status Code: 403; Error Code:
///   AccessDeniedException"`, `"Failed"`, `"Timeout"`, `"... not found"`, `"Invalid..."`, `"Unsupported..."`,
///   `"NotDone"`, `"MultipleFound"`, `"No prompt provided"`, `"Instance has reached concurrent Lambda thread access
///   limit"`.
/// * Anything else (normal outcomes such as `"Success"`, `"NoMatch"`, `"Available"`) is not an error.
///
/// Matching is by substring, so a custom outcome that merely contains a marker (say a Lex intent named
/// `ReportError`) is flagged too; the full list of Connect result strings is not published (reference §10).
///
/// An `InvokeExternalResource` entry with `Results` but no `ExternalResults` is an error whatever the text; that
/// rule needs the whole entry and lives in [`FlowLogEntry::error`].
pub fn is_error_result(results: &str) -> bool {
    let r = results.trim();
    if r.is_empty()
        || r.eq_ignore_ascii_case("true")
        || r.eq_ignore_ascii_case("false")
        || is_number(r)
    {
        return false;
    }
    ERROR_RESULT_MARKERS
        .iter()
        .any(|m| contains_ignore_ascii_case(r, m))
}

fn is_number(s: &str) -> bool {
    s.bytes().any(|b| b.is_ascii_digit()) && s.parse::<f64>().is_ok_and(f64::is_finite)
}

fn contains_ignore_ascii_case(haystack: &str, needle: &str) -> bool {
    let (h, n) = (haystack.as_bytes(), needle.as_bytes());
    n.is_empty() || (h.len() >= n.len() && h.windows(n.len()).any(|w| w.eq_ignore_ascii_case(n)))
}

/// A parsed JSON value that borrows from the input text where it can (strings without escapes, keys), so that
/// parsing a line allocates a handful of vectors instead of one allocation per key and string. Objects are
/// member lists: canonicalisation sorts them.
enum Node<'a> {
    Null,
    Bool(bool),
    Number(serde_json::Number),
    Str(Cow<'a, str>),
    Array(Vec<Node<'a>>),
    Object(Vec<(Cow<'a, str>, Node<'a>)>),
}

type Members<'a> = [(Cow<'a, str>, Node<'a>)];

impl<'a> Node<'a> {
    fn json_type(&self) -> &'static str {
        match self {
            Node::Null => "null",
            Node::Bool(_) => "a boolean",
            Node::Number(_) => "a number",
            Node::Str(_) => "a string",
            Node::Array(_) => "an array",
            Node::Object(_) => "an object",
        }
    }

    /// Borrows a `serde_json::Value` (no copy of its strings), refusing nesting deeper than [`MAX_DEPTH`].
    fn from_value(v: &'a Value, depth: usize) -> Result<Self, EntryError> {
        if depth > MAX_DEPTH {
            return Err(EntryError::TooDeep);
        }
        Ok(match v {
            Value::Null => Node::Null,
            Value::Bool(b) => Node::Bool(*b),
            Value::Number(n) => Node::Number(n.clone()),
            Value::String(s) => Node::Str(Cow::Borrowed(s)),
            Value::Array(items) => Node::Array(
                items
                    .iter()
                    .map(|i| Node::from_value(i, depth + 1))
                    .collect::<Result<_, _>>()?,
            ),
            Value::Object(map) => Node::Object(
                map.iter()
                    .map(|(k, v)| Ok((Cow::Borrowed(k.as_str()), Node::from_value(v, depth + 1)?)))
                    .collect::<Result<_, EntryError>>()?,
            ),
        })
    }
}

/// Sorts every object's members by key (byte order) and keeps the last of repeated keys, as
/// `serde_json::Value` does.
fn normalize(members: &mut Vec<(Cow<'_, str>, Node<'_>)>) {
    if !members.windows(2).all(|w| w[0].0 < w[1].0) {
        members.sort_by(|a, b| a.0.cmp(&b.0)); // stable: repeated keys stay in input order
        members.dedup_by(|later, kept| {
            let same = later.0 == kept.0;
            if same {
                std::mem::swap(later, kept);
            }
            same
        });
    }
    for (_, v) in members.iter_mut() {
        normalize_node(v);
    }
}

fn normalize_node(node: &mut Node<'_>) {
    match node {
        Node::Object(members) => normalize(members),
        Node::Array(items) => items.iter_mut().for_each(normalize_node),
        _ => {}
    }
}

/// `serde_json`'s private marker for numbers when its `arbitrary_precision` feature is on (feature unification
/// may turn it on in a larger build): such a number arrives as a one-member map `{MARKER: "digits"}`.
const ARBITRARY_PRECISION_NUMBER: &str = "$serde_json::private::Number";

/// Whether `serde_json` was built with `arbitrary_precision` (numbers then keep their text, e.g. `1.50`).
fn arbitrary_precision() -> bool {
    static ON: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *ON.get_or_init(|| {
        serde_json::from_str::<serde_json::Number>("1.50").is_ok_and(|n| n.to_string() == "1.50")
    })
}

impl<'de> serde::Deserialize<'de> for Node<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

impl<'de> serde::de::Visitor<'de> for NodeVisitor {
    type Value = Node<'de>;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }
    fn visit_unit<E>(self) -> Result<Node<'de>, E> {
        Ok(Node::Null)
    }
    fn visit_none<E>(self) -> Result<Node<'de>, E> {
        Ok(Node::Null)
    }
    fn visit_bool<E>(self, b: bool) -> Result<Node<'de>, E> {
        Ok(Node::Bool(b))
    }
    fn visit_u64<E>(self, n: u64) -> Result<Node<'de>, E> {
        Ok(Node::Number(n.into()))
    }
    fn visit_i64<E>(self, n: i64) -> Result<Node<'de>, E> {
        Ok(Node::Number(n.into()))
    }
    fn visit_f64<E: serde::de::Error>(self, n: f64) -> Result<Node<'de>, E> {
        serde_json::Number::from_f64(n)
            .map(Node::Number)
            .ok_or_else(|| E::custom("non-finite number"))
    }
    fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Node<'de>, E> {
        Ok(Node::Str(Cow::Borrowed(s)))
    }
    fn visit_str<E>(self, s: &str) -> Result<Node<'de>, E> {
        Ok(Node::Str(Cow::Owned(s.to_owned())))
    }
    fn visit_string<E>(self, s: String) -> Result<Node<'de>, E> {
        Ok(Node::Str(Cow::Owned(s)))
    }
    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Node<'de>, A::Error> {
        let mut items = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(64));
        while let Some(item) = seq.next_element()? {
            items.push(item);
        }
        Ok(Node::Array(items))
    }
    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Node<'de>, A::Error> {
        let mut members = Vec::with_capacity(map.size_hint().unwrap_or(0).clamp(8, 64));
        while let Some(Key(key)) = map.next_key()? {
            if members.is_empty() && key == ARBITRARY_PRECISION_NUMBER && arbitrary_precision() {
                let digits: String = map.next_value()?;
                return digits
                    .parse()
                    .map(Node::Number)
                    .map_err(serde::de::Error::custom);
            }
            members.push((key, map.next_value()?));
        }
        Ok(Node::Object(members))
    }
}

/// An object key, borrowed from the input when it has no escapes (serde's own `Cow<str>` always copies).
struct Key<'a>(Cow<'a, str>);

impl<'de> serde::Deserialize<'de> for Key<'de> {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct KeyVisitor;
        impl<'de> serde::de::Visitor<'de> for KeyVisitor {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object key")
            }
            fn visit_borrowed_str<E>(self, s: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(s)))
            }
            fn visit_str<E>(self, s: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(s.to_owned())))
            }
            fn visit_string<E>(self, s: String) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(s)))
            }
        }
        d.deserialize_str(KeyVisitor)
    }
}

/// Parses one line into a normalised object (keys sorted and unique at every level).
fn parse_object(line: &str) -> Result<Vec<(Cow<'_, str>, Node<'_>)>, EntryError> {
    if line.trim().is_empty() {
        return Err(EntryError::Empty);
    }
    match serde_json::from_str::<Node<'_>>(line)? {
        Node::Object(mut members) => {
            normalize(&mut members);
            Ok(members)
        }
        other => Err(EntryError::NotAnObject {
            found: other.json_type(),
        }),
    }
}

fn value_object(v: &Value) -> Result<Vec<(Cow<'_, str>, Node<'_>)>, EntryError> {
    match Node::from_value(v, 1)? {
        Node::Object(mut members) => {
            normalize(&mut members);
            Ok(members)
        }
        other => Err(EntryError::NotAnObject {
            found: other.json_type(),
        }),
    }
}

/// The fields the archive needs, borrowed from a parsed object.
struct Fields<'a> {
    timestamp: DateTime<Utc>,
    contact_id: &'a str,
    module_type: Option<&'a str>,
    identifier: Option<&'a str>,
    contact_flow_name: Option<&'a str>,
    results: Option<Cow<'a, str>>,
    has_external_results: bool,
}

impl<'a> Fields<'a> {
    fn from_members(members: &'a Members<'a>) -> Result<Self, EntryError> {
        let contact_id = required_str(members, FIELD_CONTACT_ID)?;
        let ts = required_str(members, FIELD_TIMESTAMP)?;
        let timestamp = DateTime::parse_from_rfc3339(ts)
            .map_err(|source| EntryError::InvalidTimestamp {
                value: quote(ts),
                source,
            })?
            .with_timezone(&Utc);
        let results = match get(members, FIELD_RESULTS) {
            None | Some(Node::Null) => None,
            Some(Node::Str(s)) => Some(Cow::Borrowed(s.as_ref())),
            // Some pipelines turn "true"/"false"/digits into JSON scalars; keep their text.
            Some(Node::Bool(b)) => Some(Cow::Owned(b.to_string())),
            Some(Node::Number(n)) => Some(Cow::Owned(n.to_string())),
            Some(v) => {
                return Err(EntryError::WrongType {
                    field: FIELD_RESULTS,
                    expected: "a string",
                    found: v.json_type(),
                })
            }
        };
        Ok(Fields {
            timestamp,
            contact_id,
            module_type: optional_str(members, FIELD_MODULE_TYPE)?,
            identifier: optional_str(members, FIELD_IDENTIFIER)?,
            contact_flow_name: optional_str(members, FIELD_CONTACT_FLOW_NAME)?,
            results,
            has_external_results: get(members, FIELD_EXTERNAL_RESULTS)
                .is_some_and(|v| !matches!(v, Node::Null)),
        })
    }

    fn error(&self) -> Option<BlockError> {
        block_error(
            self.module_type,
            self.identifier,
            self.contact_flow_name,
            self.results.as_deref(),
            self.has_external_results,
        )
    }
}

fn block_error(
    module_type: Option<&str>,
    identifier: Option<&str>,
    flow_name: Option<&str>,
    results: Option<&str>,
    has_external_results: bool,
) -> Option<BlockError> {
    let result = results?;
    let failed_lambda = !has_external_results
        && module_type.is_some_and(|m| {
            m.trim()
                .eq_ignore_ascii_case(MODULE_INVOKE_EXTERNAL_RESOURCE)
        });
    if !(failed_lambda || is_error_result(result)) {
        return None;
    }
    Some(BlockError {
        module_type: module_type.unwrap_or_default().to_owned(),
        identifier: identifier.map(str::to_owned),
        flow_name: flow_name.map(str::to_owned),
        result: result.to_owned(),
    })
}

/// Member lookup in a normalised (sorted, unique) member list.
fn get<'m, 'a>(members: &'m Members<'a>, field: &str) -> Option<&'m Node<'a>> {
    members
        .binary_search_by(|(k, _)| k.as_ref().cmp(field))
        .ok()
        .map(|i| &members[i].1)
}

fn required_str<'a>(members: &'a Members<'a>, field: &'static str) -> Result<&'a str, EntryError> {
    match optional_str(members, field)? {
        None => Err(EntryError::MissingField { field }),
        Some(s) if s.trim().is_empty() => Err(EntryError::EmptyField { field }),
        Some(s) => Ok(s),
    }
}

fn optional_str<'a>(
    members: &'a Members<'a>,
    field: &'static str,
) -> Result<Option<&'a str>, EntryError> {
    match get(members, field) {
        None | Some(Node::Null) => Ok(None),
        Some(Node::Str(s)) => Ok(Some(s)),
        Some(v) => Err(EntryError::WrongType {
            field,
            expected: "a string",
            found: v.json_type(),
        }),
    }
}

fn quote(s: &str) -> String {
    let cut = match s.char_indices().nth(MAX_QUOTED) {
        Some((i, _)) => format!("{}…", &s[..i]),
        None => s.to_owned(),
    };
    crate::redact::redact_numbers(&cut)
}

/// Parsed-and-canonicalised entry reduced to what the archive stores: used by the archive builder so that adding
/// a line allocates only the canonical string (and a [`BlockError`] for the rare error entry).
pub(super) struct CompactEntry {
    pub(super) canonical: Box<str>,
    pub(super) timestamp_millis: i64,
    pub(super) error: Option<BlockError>,
}

impl CompactEntry {
    pub(super) fn parse(line: &str) -> Result<Self, EntryError> {
        let members = parse_object(line)?;
        let fields = Fields::from_members(&members)?;
        Ok(CompactEntry {
            canonical: canonicalize(&members, line.len()),
            timestamp_millis: fields.timestamp.timestamp_millis(),
            error: fields.error(),
        })
    }

    pub(super) fn from_entry(entry: FlowLogEntry) -> Self {
        let error = entry.error();
        CompactEntry {
            timestamp_millis: entry.timestamp.timestamp_millis(),
            canonical: entry.canonical,
            error,
        }
    }
}

impl FlowLogEntry {
    /// Parses one CloudWatch Logs message body (one JSON object; surrounding whitespace and a trailing newline
    /// are accepted).
    pub fn parse(line: &str) -> Result<Self, EntryError> {
        Self::from_members(&parse_object(line)?, line.len())
    }

    /// Builds an entry from an already parsed JSON value.
    pub fn from_value(v: Value) -> Result<Self, EntryError> {
        Self::from_members(&value_object(&v)?, 512)
    }

    fn from_members(members: &Members<'_>, size_hint: usize) -> Result<Self, EntryError> {
        let f = Fields::from_members(members)?;
        Ok(FlowLogEntry {
            canonical: canonicalize(members, size_hint),
            timestamp: f.timestamp,
            contact_id: f.contact_id.into(),
            module_type: f.module_type.map(Into::into),
            identifier: f.identifier.map(Into::into),
            contact_flow_name: f.contact_flow_name.map(Into::into),
            results: f.results.map(|r| r.into_owned().into_boxed_str()),
            has_external_results: f.has_external_results,
        })
    }

    /// `ContactId`.
    pub fn contact_id(&self) -> &str {
        &self.contact_id
    }

    /// `Timestamp`, converted to UTC (Connect writes milliseconds).
    pub fn timestamp(&self) -> DateTime<Utc> {
        self.timestamp
    }

    /// `ContactFlowModuleType` (block type), if present.
    pub fn module_type(&self) -> Option<&str> {
        self.module_type.as_deref()
    }

    /// `Identifier` (block id or custom block name), if present.
    pub fn identifier(&self) -> Option<&str> {
        self.identifier.as_deref()
    }

    /// `ContactFlowName`, if present.
    pub fn contact_flow_name(&self) -> Option<&str> {
        self.contact_flow_name.as_deref()
    }

    /// `Results`, if present (a JSON boolean or number is given as its JSON text).
    pub fn results(&self) -> Option<&str> {
        self.results.as_deref()
    }

    /// Whether a non-null `ExternalResults` is present.
    pub fn has_external_results(&self) -> bool {
        self.has_external_results
    }

    /// Stable serialization: the whole original object with sorted keys, compact (see the module docs). Used as
    /// the dedupe key and as the archive line.
    pub fn canonical_json(&self) -> &str {
        &self.canonical
    }

    /// The whole original object (all fields, unknown ones too), parsed back from the canonical JSON.
    pub fn to_value(&self) -> serde_json::Result<Value> {
        serde_json::from_str(&self.canonical)
    }

    /// `Some` when this entry records an error:
    /// * `Results` signals an error (see [`is_error_result`]), or
    /// * an `InvokeExternalResource` (Lambda) entry has `Results` but no `ExternalResults` (Connect omits
    ///   `ExternalResults` when the Lambda returned an error).
    ///
    /// An entry without `Results` is never an error.
    pub fn error(&self) -> Option<BlockError> {
        block_error(
            self.module_type(),
            self.identifier(),
            self.contact_flow_name(),
            self.results(),
            self.has_external_results,
        )
    }
}

impl fmt::Display for FlowLogEntry {
    /// Writes the canonical JSON.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.canonical)
    }
}

impl FromStr for FlowLogEntry {
    type Err = EntryError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl TryFrom<Value> for FlowLogEntry {
    type Error = EntryError;

    fn try_from(v: Value) -> Result<Self, Self::Error> {
        Self::from_value(v)
    }
}

/// Canonical JSON of a normalised object (see the module docs).
fn canonicalize(members: &Members<'_>, size_hint: usize) -> Box<str> {
    let mut out = String::with_capacity(size_hint);
    write_object(&mut out, members);
    out.into_boxed_str()
}

fn write_node(out: &mut String, node: &Node<'_>) {
    match node {
        Node::Null => out.push_str("null"),
        Node::Bool(true) => out.push_str("true"),
        Node::Bool(false) => out.push_str("false"),
        // `Number`'s Display is exactly how serde_json serializes it (itoa / shortest round-trip float).
        Node::Number(n) => {
            let _ = write!(out, "{n}");
        }
        Node::Str(s) => write_json_string(out, s),
        Node::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_node(out, item);
            }
            out.push(']');
        }
        Node::Object(members) => write_object(out, members),
    }
}

fn write_object(out: &mut String, members: &Members<'_>) {
    out.push('{');
    for (i, (k, v)) in members.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        write_json_string(out, k);
        out.push(':');
        write_node(out, v);
    }
    out.push('}');
}

/// Writes `s` as a JSON string literal, escaped exactly like `serde_json` does (`"`, `\`, and control characters;
/// `\b \f \n \r \t` short forms, others as `\u00xx`; non-ASCII and `/` as is).
fn write_json_string(out: &mut String, s: &str) {
    out.push('"');
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let short = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0x08 => "\\b",
            0x0c => "\\f",
            0x00..=0x1f => "",
            _ => continue,
        };
        // `i` is at an ASCII byte, hence at a char boundary.
        out.push_str(&s[start..i]);
        if short.is_empty() {
            let _ = write!(out, "\\u{b:04x}");
        } else {
            out.push_str(short);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const BILLING: &str =
        include_str!("../../../tests/fixtures/flow-logs/voice-billing-answered.ndjson");
    const LAMBDA_ERROR: &str =
        include_str!("../../../tests/fixtures/flow-logs/voice-lambda-error-abandoned.ndjson");
    const CHAT_ERROR: &str =
        include_str!("../../../tests/fixtures/flow-logs/chat-input-error.ndjson");
    const TRANSFER: &str = include_str!("../../../tests/fixtures/flow-logs/voice-transfer.ndjson");
    const ALL: &str = include_str!("../../../tests/fixtures/flow-logs/all-contacts.ndjson");

    const FIXTURES: &[(&str, &str, usize)] = &[
        ("voice-billing-answered", BILLING, 12),
        ("voice-lambda-error-abandoned", LAMBDA_ERROR, 11),
        ("chat-input-error", CHAT_ERROR, 9),
        ("voice-transfer", TRANSFER, 7),
        ("all-contacts", ALL, 39),
    ];

    fn parse_all(text: &str) -> Vec<FlowLogEntry> {
        text.lines()
            .map(|l| FlowLogEntry::parse(l).unwrap())
            .collect()
    }

    fn errors(text: &str) -> Vec<BlockError> {
        parse_all(text)
            .iter()
            .filter_map(FlowLogEntry::error)
            .collect()
    }

    #[test]
    fn every_fixture_line_parses_and_canonical_json_is_lossless() {
        for (name, text, lines) in FIXTURES {
            let entries = parse_all(text);
            assert_eq!(entries.len(), *lines, "{name}");
            for (line, e) in text.lines().zip(&entries) {
                let original: Value = serde_json::from_str(line).unwrap();
                assert_eq!(
                    e.to_value().unwrap(),
                    original,
                    "{name}: canonical JSON loses data"
                );
                assert_eq!(Some(e.contact_id()), original["ContactId"].as_str());
                assert_eq!(e.module_type(), original["ContactFlowModuleType"].as_str());
                assert_eq!(e.identifier(), original["Identifier"].as_str());
                assert_eq!(e.contact_flow_name(), original["ContactFlowName"].as_str());
                assert_eq!(e.results(), original.get("Results").and_then(Value::as_str));
                assert_eq!(
                    e.has_external_results(),
                    original.get("ExternalResults").is_some()
                );
                let ts = original["Timestamp"].as_str().unwrap();
                assert_eq!(
                    e.timestamp()
                        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
                    ts
                );
                // Canonical JSON is a fixed point.
                assert_eq!(FlowLogEntry::parse(e.canonical_json()).unwrap(), *e);
                assert_eq!(e.to_string(), e.canonical_json());
            }
        }
    }

    #[test]
    fn canonical_json_sorts_keys_recursively_and_ignores_layout() {
        let a = FlowLogEntry::parse(
            r#" {"Timestamp":"2025-06-10T14:00:05.515Z","ContactId":"c1","Parameters":{"b":"2","a":[{"z":1,"y":null}]},"Extra":1.5} "#,
        )
        .unwrap();
        assert_eq!(
            a.canonical_json(),
            r#"{"ContactId":"c1","Extra":1.5,"Parameters":{"a":[{"y":null,"z":1}],"b":"2"},"Timestamp":"2025-06-10T14:00:05.515Z"}"#
        );
        let b = FlowLogEntry::parse(
            "{\n \"Extra\": 1.5, \"Parameters\": {\"a\": [{\"y\": null, \"z\": 1}], \"b\": \"2\"},\n \"ContactId\": \"c1\", \"Timestamp\": \"2025-06-10T14:00:05.515Z\"}\n",
        )
        .unwrap();
        assert_eq!(a, b);
        let c =
            FlowLogEntry::from_value(serde_json::from_str(b.canonical_json()).unwrap()).unwrap();
        assert_eq!(a, c);
    }

    #[test]
    fn canonical_json_matches_serde_json_value_semantics() {
        let lines = [
            // Repeated keys: the last one wins, as in serde_json::Value.
            r#"{"ContactId":"c","Timestamp":"2025-06-10T14:00:05.515Z","a":1,"b":{"x":1,"x":[2,{"y":3,"y":4}]},"a":2}"#,
            // Escapes in keys and values, non-ASCII, numbers of every kind.
            r#"{"ContactId":"c\u0041","Timestamp":"2025-06-10T14:00:05.515Z","k\n\"":"v\t\u00e9\ud83c\udf89","n":[-0,1.0,1e2,-12345678901234567890,0.30000000000000004,18446744073709551615]}"#,
            r#"{"ContactId":"c","Timestamp":"2025-06-10T14:00:05.515Z","":"","e":{},"f":[],"g":[[]],"h":null,"i":true}"#,
        ];
        for line in lines {
            let e = FlowLogEntry::parse(line).unwrap();
            let v: Value = serde_json::from_str(line).unwrap();
            // serde_json's default Map is sorted (unless its `preserve_order` feature is on), so then
            // to_string gives the canonical form.
            if serde_json::to_string(&json!({"b": 1, "a": 2})).unwrap() == r#"{"a":2,"b":1}"# {
                assert_eq!(
                    e.canonical_json(),
                    serde_json::to_string(&v).unwrap(),
                    "{line}"
                );
            }
            assert_eq!(e.to_value().unwrap(), v);
            assert_eq!(FlowLogEntry::from_value(v).unwrap(), e);
        }
        assert_eq!(FlowLogEntry::parse(lines[1]).unwrap().contact_id(), "cA");
        // serde_json's private number marker is an ordinary key unless `arbitrary_precision` is on.
        if !arbitrary_precision() {
            let line = r#"{"ContactId":"c","Timestamp":"2025-06-10T14:00:05.515Z","X":{"$serde_json::private::Number":"12"}}"#;
            let e = FlowLogEntry::parse(line).unwrap();
            assert_eq!(e.canonical_json(), line);
        }
    }

    #[test]
    fn string_escaping_matches_serde_json() {
        let samples = [
            "plain",
            "quote \" backslash \\ slash /",
            "new\nline\rtab\tbell\u{7}nul\u{0}bs\u{8}ff\u{c}us\u{1f}del\u{7f}",
            "unicode é ñ 日本 🎉 \u{2028}",
            "",
        ];
        for s in samples {
            let mut out = String::new();
            write_json_string(&mut out, s);
            assert_eq!(out, serde_json::to_string(s).unwrap(), "{s:?}");
        }
        let v = json!({"ContactId": "c", "Timestamp": "2025-01-01T00:00:00Z", "n": [0, -7, 18446744073709551615u64, 0.1, 1e300, -2.5e-8]});
        let e = FlowLogEntry::from_value(v.clone()).unwrap();
        assert_eq!(e.to_value().unwrap(), v);
        assert!(e.canonical_json().contains("18446744073709551615"));
    }

    #[test]
    fn errors_detected_in_error_fixtures() {
        let lambda = errors(LAMBDA_ERROR);
        assert_eq!(
            lambda,
            vec![BlockError {
                module_type: "InvokeExternalResource".into(),
                identifier: Some("Deny list lookup".into()),
                flow_name: Some("Inbound main".into()),
                result: "The Lambda Function Returned An Error.".into(),
            }]
        );
        let chat = errors(CHAT_ERROR);
        assert_eq!(
            chat,
            vec![BlockError {
                module_type: "GetUserInput".into(),
                identifier: Some("09605eae-8368-4880-abc3-2789232c349e".into()),
                flow_name: Some("Chat inbound".into()),
                result: "Error".into(),
            }]
        );
        assert_eq!(errors(ALL).len(), 2);
    }

    #[test]
    fn no_errors_in_normal_fixtures() {
        assert_eq!(errors(BILLING), vec![]);
        assert_eq!(errors(TRANSFER), vec![]);
        // Transfer with "false" and checks with "true" are normal outcomes.
        assert!(parse_all(TRANSFER)
            .iter()
            .any(|e| e.results() == Some("false")));
    }

    #[test]
    fn error_result_classification() {
        for r in [
            "Error",
            "error",
            "The Lambda Function Returned An Error.",
            "Status Code: 403; Error Code: AccessDeniedException",
            "Failed",
            "Timeout",
            "TIMEOUT",
            "ResourceNotFoundException",
            "Queue not found",
            "InvalidParameter",
            "Unsupported channel",
            "NotDone",
            "MultipleFound",
            "No prompt provided",
            "Instance has reached concurrent Lambda thread access limit",
        ] {
            assert!(is_error_result(r), "{r:?} should be an error");
        }
        for r in [
            "true",
            "false",
            "TRUE",
            " False ",
            "1",
            "42",
            "-3.5",
            "",
            "  ",
            "Success",
            "NoMatch",
            "Available",
        ] {
            assert!(!is_error_result(r), "{r:?} should not be an error");
        }
    }

    fn entry(v: Value) -> FlowLogEntry {
        FlowLogEntry::from_value(v).unwrap()
    }

    #[test]
    fn lambda_without_external_results_is_an_error() {
        let base = |extra: Value| {
            let mut v = json!({"ContactId": "c", "Timestamp": "2025-06-10T14:00:11.334Z",
                "ContactFlowModuleType": "InvokeExternalResource", "Identifier": "Deny list lookup"});
            v.as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            entry(v)
        };
        // Results but no ExternalResults: error, whatever the text.
        let e = base(json!({"Results": "false"})).error().unwrap();
        assert_eq!(e.result, "false");
        assert_eq!(e.module_type, "InvokeExternalResource");
        assert!(base(json!({"Results": "x", "ExternalResults": null}))
            .error()
            .is_some());
        // ExternalResults present: only an error result text counts.
        assert!(
            base(json!({"Results": "false", "ExternalResults": {"a": "b"}}))
                .error()
                .is_none()
        );
        assert!(base(json!({"Results": "Error", "ExternalResults": {}}))
            .error()
            .is_some());
        // No Results at all: not an error.
        assert!(base(json!({})).error().is_none());
        // Another module with "false": not an error.
        let t = entry(
            json!({"ContactId": "c", "Timestamp": "2025-06-10T14:00:11.334Z",
            "ContactFlowModuleType": "Transfer", "Results": "false"}),
        );
        assert!(t.error().is_none());
        // JSON scalars in Results keep their text.
        let n = entry(
            json!({"ContactId": "c", "Timestamp": "2025-06-10T14:00:11.334Z", "Results": true}),
        );
        assert_eq!(n.results(), Some("true"));
        assert!(n.error().is_none());
    }

    #[test]
    fn timestamps_with_offsets_are_converted_to_utc() {
        let e = entry(json!({"ContactId": "c", "Timestamp": "2025-06-10T16:00:05.515+02:00"}));
        assert_eq!(
            e.timestamp()
                .to_rfc3339_opts(chrono::SecondsFormat::Millis, true),
            "2025-06-10T14:00:05.515Z"
        );
        // The original text is kept.
        assert!(e.canonical_json().contains("+02:00"));
    }

    #[test]
    fn malformed_lines_give_typed_errors_naming_the_field() {
        let cases: &[(&str, Option<&str>)] = &[
            (
                r#"{"Timestamp":"2025-06-10T14:00:05.515Z"}"#,
                Some("ContactId"),
            ),
            (
                r#"{"ContactId":null,"Timestamp":"2025-06-10T14:00:05.515Z"}"#,
                Some("ContactId"),
            ),
            (
                r#"{"ContactId":"  ","Timestamp":"2025-06-10T14:00:05.515Z"}"#,
                Some("ContactId"),
            ),
            (
                r#"{"ContactId":42,"Timestamp":"2025-06-10T14:00:05.515Z"}"#,
                Some("ContactId"),
            ),
            (r#"{"ContactId":"c"}"#, Some("Timestamp")),
            (
                r#"{"ContactId":"c","Timestamp":"yesterday"}"#,
                Some("Timestamp"),
            ),
            (
                r#"{"ContactId":"c","Timestamp":"2025-06-10 14:00:05.515"}"#,
                Some("Timestamp"),
            ),
            (
                r#"{"ContactId":"c","Timestamp":1718028005515}"#,
                Some("Timestamp"),
            ),
            (
                r#"{"ContactId":"c","Timestamp":"2025-06-10T14:00:05Z","ContactFlowModuleType":["x"]}"#,
                Some("ContactFlowModuleType"),
            ),
            (
                r#"{"ContactId":"c","Timestamp":"2025-06-10T14:00:05Z","Identifier":{}}"#,
                Some("Identifier"),
            ),
            (
                r#"{"ContactId":"c","Timestamp":"2025-06-10T14:00:05Z","ContactFlowName":false}"#,
                Some("ContactFlowName"),
            ),
            (
                r#"{"ContactId":"c","Timestamp":"2025-06-10T14:00:05Z","Results":{"a":1}}"#,
                Some("Results"),
            ),
            ("", None),
            ("   \n", None),
            ("not json", None),
            (r#"{"ContactId":"c","#, None),
            ("[1,2]", None),
            (r#""a string""#, None),
            ("null", None),
            (
                r#"{"ContactId":"c","Timestamp":"2025-06-10T14:00:05Z"} trailing"#,
                None,
            ),
        ];
        for (line, field) in cases {
            let err = FlowLogEntry::parse(line).expect_err(line);
            assert_eq!(err.field(), *field, "{line}: {err}");
            if let Some(f) = field {
                assert!(err.to_string().contains(f), "message {err} should name {f}");
            }
        }
        assert!(matches!(FlowLogEntry::parse(""), Err(EntryError::Empty)));
        assert!(matches!(
            FlowLogEntry::parse("[]"),
            Err(EntryError::NotAnObject { found: "an array" })
        ));
        assert!(matches!(FlowLogEntry::parse("{"), Err(EntryError::Json(_))));
        assert!(matches!(
            FlowLogEntry::from_value(json!("x")),
            Err(EntryError::NotAnObject { found: "a string" })
        ));
        let long = format!(r#"{{"ContactId":"c","Timestamp":"{}"}}"#, "9".repeat(1000));
        let msg = FlowLogEntry::parse(&long).unwrap_err().to_string();
        assert!(msg.len() < 300, "{msg}");
    }

    #[test]
    fn too_deep_values_are_rejected_without_overflowing_the_stack() {
        let mut v = json!("leaf");
        for _ in 0..300 {
            v = json!([v]);
        }
        let v = json!({"ContactId": "c", "Timestamp": "2025-06-10T14:00:05Z", "Deep": v});
        assert!(matches!(
            FlowLogEntry::from_value(v),
            Err(EntryError::TooDeep)
        ));
        // Text that deep is already refused by the JSON parser.
        let text = format!(
            r#"{{"ContactId":"c","Timestamp":"2025-06-10T14:00:05Z","D":{}1{}}}"#,
            "[".repeat(200),
            "]".repeat(200)
        );
        assert!(matches!(
            FlowLogEntry::parse(&text),
            Err(EntryError::Json(_))
        ));
    }

    #[test]
    fn arbitrary_bytes_do_not_panic() {
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        let base = BILLING.lines().nth(3).unwrap().as_bytes().to_vec();
        for _ in 0..2_000 {
            let mut b = base.clone();
            for _ in 0..4 {
                seed = seed
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                let i = (seed >> 33) as usize % b.len();
                b[i] = (seed >> 13) as u8;
            }
            if let Ok(s) = std::str::from_utf8(&b) {
                if let Ok(e) = FlowLogEntry::parse(s) {
                    let _ = e.error();
                }
            }
        }
    }
}
