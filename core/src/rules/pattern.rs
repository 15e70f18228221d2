//! EventBridge event-pattern matching.
//!
//! A [`Pattern`] is compiled once from the JSON of an EventBridge event pattern and can then be
//! tested against any number of events with [`Pattern::matches`], which does not allocate.
//!
//! # Semantics
//!
//! Sources: the EventBridge user guide pages `eb-event-patterns`, `eb-create-pattern-operators`,
//! `eb-event-patterns-content-based-filtering`, `eb-event-patterns-arrays`,
//! `eb-event-patterns-null-values`, and the README and sources of `aws/event-ruler`, the matcher
//! EventBridge uses.
//!
//! * A pattern mirrors the structure of the event. Only the fields it names are tested, and all of
//!   them must match (AND). Nested objects nest.
//! * A leaf is an array of allowed values, any one of which may match (OR). Values are JSON
//!   strings (case-sensitive, no normalisation), numbers, booleans and `null`. `null` and `""` are
//!   different values, and `[null]` does not match a missing field.
//! * If the event value is an array, the leaf matches when any element matches (the "non-empty
//!   intersection" rule). Nested arrays are looked through. If the event holds an array of objects
//!   where the pattern has a nested object, the nested pattern must match within a single element
//!   (event-ruler's array-consistent `rulesForJSONEvent` behaviour).
//! * Operators are one-key objects inside a leaf array: `prefix` and `suffix` (each also with
//!   `{"equals-ignore-case": ..}`), `equals-ignore-case`, `wildcard`, `anything-but`, `numeric`,
//!   `exists`, `cidr`. `$or` takes an array of sub-patterns at any object level and is ANDed with
//!   its sibling fields.
//! * Operators only look at leaf values. An object at a leaf position is not a leaf value, so
//!   `exists: false` matches a missing key, a key holding an object, and an empty array.
//!   `exists: true` matches any leaf value, `null` included.
//! * `anything-but` matches a leaf value that is present and not excluded. It is evaluated for
//!   each element of an array, so `{"anything-but": "a"}` matches `["a", "b"]` because of `"b"`.
//!   event-ruler flattens arrays into repeated name/value pairs and runs its byte machine once
//!   for each value (`ByteMachine.transitionOn`), and the arrays page says that an array matches
//!   when any of its elements matches. A value of another JSON type is never excluded by a
//!   string exclusion, so `{"anything-but": "a"}` matches `null` and `5`. An empty `prefix` or
//!   `suffix` inside `anything-but` is refused, as event-ruler refuses it.
//! * `numeric` only matches JSON numbers. Its operands must lie within ±5.0e9. The comparison is
//!   done at the documented precision of six decimal places.
//! * A pattern whose `$or` expands to more than [`MAX_OR_COMBINATIONS`] combinations is
//!   rejected, like `InvalidEventPatternException` from PutRule.
//! * Invalid patterns give a [`PatternError`] that names the JSON path of the offending part, e.g.
//!   `detail.eventType[1]: unknown operator "prefixx"`.
//!
//! # Deliberate deviations
//!
//! * **Number text.** The docs say exact number matching compares the text form, so `300`,
//!   `300.0` and `3.0e2` all differ. serde_json (without `arbitrary_precision`) does not keep
//!   the text, so numbers are compared as serde_json parsed them. Integers and floats are still
//!   different (`300` does not match `300.0`), but `300.0` and `3.0e2` are both the float 300
//!   and so match each other. `anything-but` number lists use the same equality. Use `numeric`
//!   to compare by value.
//! * **Numeric precision.** Both sides are rounded to the nearest millionth with `f64`
//!   arithmetic. EventBridge's internal encoding can differ past the 15th significant digit.
//! * **Empty top-level pattern.** `{}` is accepted and matches every event, which is handy for
//!   catch-all routes. Whether EventBridge's PutRule accepts `{}` was not checked; empty nested
//!   objects and empty value arrays are rejected here, as event-ruler rejects them.
//! * **`$or` is always the operator.** It needs at least two non-empty alternatives. event-ruler's
//!   backward-compatible reading of a malformed `$or` as a plain field name is not supported.
//! * **Keys containing dots** are matched structurally. event-ruler may conflate `{"a.b": ..}`
//!   with `{"a": {"b": ..}}`, which its README says not to rely on.
//! * **Case folding** uses Rust's per-character `char::to_lowercase` on both sides. A few rare
//!   characters may fold differently from Java.
//! * **Nesting limits.** A pattern deeper than [`MAX_DEPTH`] path segments is rejected, and
//!   event arrays nested deeper than [`MAX_DEPTH`] are not looked into, so neither parsing nor
//!   matching can overflow the stack. serde_json's own parser stops at 128 levels anyway.
//! * EventBridge's pattern size limits are not enforced.

use std::fmt::{self, Write as _};
use std::net::IpAddr;

use serde_json::{Map, Number, Value};

/// The largest number of combinations a pattern's `$or` operators may expand to.
pub const MAX_OR_COMBINATIONS: usize = 1000;

/// The deepest pattern accepted (in JSON path segments), and the deepest nesting of event
/// arrays that matching looks through.
pub const MAX_DEPTH: usize = 128;

/// Bounds of `numeric` matching, inclusive (event-ruler README).
const NUMERIC_LIMIT: f64 = 5.0e9;

/// A compiled EventBridge event pattern.
#[derive(Debug, Clone)]
pub struct Pattern {
    root: ObjectPattern,
}

/// Why a pattern could not be compiled.
#[derive(Debug, thiserror::Error)]
pub enum PatternError {
    /// The pattern text is not JSON.
    #[error("pattern is not valid JSON: {0}")]
    Json(#[source] serde_json::Error),
    /// Part of the pattern is malformed. `path` is its JSON path, e.g. `detail.eventType[1]`.
    #[error("{path}: {message}")]
    Invalid {
        /// JSON path of the offending part of the pattern (`(root)` for the pattern itself).
        path: String,
        /// What is wrong with it.
        message: String,
    },
    /// The `$or` operators expand to too many combinations. `count` saturates at `usize::MAX`.
    #[error(
        "(root): `$or` expands the pattern to {count} combinations; at most {max} are allowed"
    )]
    TooManyCombinations {
        /// How many combinations the pattern expands to.
        count: usize,
        /// The limit, [`MAX_OR_COMBINATIONS`].
        max: usize,
    },
}

impl PatternError {
    /// The JSON path of the invalid part, when the error concerns one.
    pub fn path(&self) -> Option<&str> {
        match self {
            Self::Invalid { path, .. } => Some(path),
            Self::TooManyCombinations { .. } => Some(ROOT),
            Self::Json(_) => None,
        }
    }
}

impl Pattern {
    /// Compiles a pattern from its JSON value.
    pub fn parse(pattern: &Value) -> Result<Pattern, PatternError> {
        let mut parser = Parser { path: Vec::new() };
        let Value::Object(map) = pattern else {
            return Err(parser.err(format!(
                "an event pattern must be a JSON object, found {}",
                kind(pattern)
            )));
        };
        let root = parser.object(map, true)?;
        let count = root.combinations();
        if count > MAX_OR_COMBINATIONS {
            return Err(PatternError::TooManyCombinations {
                count,
                max: MAX_OR_COMBINATIONS,
            });
        }
        Ok(Pattern { root })
    }

    /// Compiles a pattern from JSON text. Of repeated keys, the last one wins, as in EventBridge.
    pub fn from_json_str(s: &str) -> Result<Pattern, PatternError> {
        let value: Value = serde_json::from_str(s).map_err(PatternError::Json)?;
        Self::parse(&value)
    }

    /// Whether `event` matches the pattern. Never panics and does not allocate.
    pub fn matches(&self, event: &Value) -> bool {
        self.root.matches_value(Some(event))
    }
}

// ---------------------------------------------------------------------------------------------
// Compiled form
// ---------------------------------------------------------------------------------------------

/// The fields of one pattern object, ANDed, plus its `$or` alternatives (empty when absent).
#[derive(Debug, Clone, Default)]
struct ObjectPattern {
    fields: Vec<(String, FieldPattern)>,
    any_of: Vec<ObjectPattern>,
}

#[derive(Debug, Clone)]
enum FieldPattern {
    Leaf(Leaf),
    Nested(ObjectPattern),
}

/// A leaf match list: any matcher matching any leaf value, or an `exists` condition.
#[derive(Debug, Clone, Default)]
struct Leaf {
    matchers: Vec<Matcher>,
    /// `{"exists": true}` is in the list.
    if_present: bool,
    /// `{"exists": false}` is in the list.
    if_absent: bool,
}

#[derive(Debug, Clone)]
enum Matcher {
    String(String),
    Number(Number),
    Bool(bool),
    Null,
    Prefix(String),
    /// Holds the lowercased prefix.
    PrefixIgnoreCase(String),
    Suffix(String),
    /// Holds the lowercased suffix.
    SuffixIgnoreCase(String),
    /// Holds the lowercased value.
    EqualsIgnoreCase(String),
    Wildcard(Wildcard),
    Numeric(NumericRange),
    Cidr(Cidr),
    AnythingBut(Exclusion),
}

/// What an `anything-but` excludes.
#[derive(Debug, Clone)]
enum Exclusion {
    Strings(Vec<String>),
    Numbers(Vec<Number>),
    Prefix(String),
    Suffix(String),
    /// Lowercased values.
    EqualsIgnoreCase(Vec<String>),
    Wildcard(Vec<Wildcard>),
}

/// A wildcard pattern split at its unescaped `*`s: `parts.len()` is the number of stars plus one.
#[derive(Debug, Clone)]
struct Wildcard {
    parts: Vec<String>,
}

/// Bounds in millionths, each with whether it is inclusive.
#[derive(Debug, Clone, Copy)]
struct NumericRange {
    lower: Option<(i64, bool)>,
    upper: Option<(i64, bool)>,
}

#[derive(Debug, Clone, Copy)]
enum Cidr {
    V4 { network: u32, mask: u32 },
    V6 { network: u128, mask: u128 },
}

impl ObjectPattern {
    /// Matches the pattern against the value at its position: an object, an array whose object
    /// elements are tried one by one, or anything else (which has none of the fields).
    fn matches_value(&self, value: Option<&Value>) -> bool {
        match value {
            Some(Value::Object(map)) => self.matches_object(Some(map)),
            Some(array @ Value::Array(_)) => {
                let mut saw_object = false;
                let hit = any_object(array, 0, &mut |map| {
                    saw_object = true;
                    self.matches_object(Some(map))
                });
                hit || (!saw_object && self.matches_object(None))
            }
            _ => self.matches_object(None),
        }
    }

    fn matches_object(&self, map: Option<&Map<String, Value>>) -> bool {
        self.fields.iter().all(|(name, field)| {
            let value = map.and_then(|m| m.get(name));
            match field {
                FieldPattern::Leaf(leaf) => leaf.matches(value),
                FieldPattern::Nested(nested) => nested.matches_value(value),
            }
        }) && (self.any_of.is_empty() || self.any_of.iter().any(|alt| alt.matches_object(map)))
    }

    /// How many plain patterns the `$or`s expand to, saturating.
    fn combinations(&self) -> usize {
        let nested = self
            .fields
            .iter()
            .fold(1usize, |n, (_, field)| match field {
                FieldPattern::Nested(p) => n.saturating_mul(p.combinations()),
                FieldPattern::Leaf(_) => n,
            });
        if self.any_of.is_empty() {
            return nested;
        }
        let alternatives = self
            .any_of
            .iter()
            .fold(0usize, |n, alt| n.saturating_add(alt.combinations()));
        nested.saturating_mul(alternatives)
    }
}

impl Leaf {
    fn matches(&self, value: Option<&Value>) -> bool {
        let Some(value) = value else {
            return self.if_absent;
        };
        let mut present = false;
        let hit = any_scalar(value, 0, &mut |scalar| {
            present = true;
            self.if_present || self.matchers.iter().any(|m| m.matches(scalar))
        });
        hit || (!present && self.if_absent)
    }
}

impl Matcher {
    /// Tests one leaf value (never an array or object).
    fn matches(&self, value: &Value) -> bool {
        let text = value.as_str();
        match self {
            Self::String(s) => text == Some(s.as_str()),
            Self::Number(n) => matches!(value, Value::Number(v) if v == n),
            Self::Bool(b) => value.as_bool() == Some(*b),
            Self::Null => value.is_null(),
            Self::Prefix(p) => text.is_some_and(|s| s.starts_with(p.as_str())),
            Self::PrefixIgnoreCase(p) => text.is_some_and(|s| starts_with_ignore_case(s, p)),
            Self::Suffix(p) => text.is_some_and(|s| s.ends_with(p.as_str())),
            Self::SuffixIgnoreCase(p) => text.is_some_and(|s| ends_with_ignore_case(s, p)),
            Self::EqualsIgnoreCase(p) => text.is_some_and(|s| equals_ignore_case(s, p)),
            Self::Wildcard(w) => text.is_some_and(|s| w.matches(s)),
            Self::Numeric(range) => match value {
                Value::Number(n) => n
                    .as_f64()
                    .and_then(to_micros)
                    .is_some_and(|v| range.contains(v)),
                _ => false,
            },
            Self::Cidr(cidr) => text.is_some_and(|s| cidr.contains(s)),
            Self::AnythingBut(exclusion) => !exclusion.excludes(value),
        }
    }
}

impl Exclusion {
    fn excludes(&self, value: &Value) -> bool {
        let text = value.as_str();
        match self {
            Self::Strings(list) => text.is_some_and(|s| list.iter().any(|x| x == s)),
            Self::Numbers(list) => matches!(value, Value::Number(n) if list.contains(n)),
            Self::Prefix(p) => text.is_some_and(|s| s.starts_with(p.as_str())),
            Self::Suffix(p) => text.is_some_and(|s| s.ends_with(p.as_str())),
            Self::EqualsIgnoreCase(list) => {
                text.is_some_and(|s| list.iter().any(|x| equals_ignore_case(s, x)))
            }
            Self::Wildcard(list) => text.is_some_and(|s| list.iter().any(|w| w.matches(s))),
        }
    }
}

impl Wildcard {
    fn matches(&self, s: &str) -> bool {
        let Some((first, rest)) = self.parts.split_first() else {
            return false;
        };
        let Some((last, middle)) = rest.split_last() else {
            return s == first;
        };
        if s.len() < first.len() + last.len() || !s.starts_with(first.as_str()) {
            return false;
        }
        if !s.ends_with(last.as_str()) {
            return false;
        }
        // Both bounds are char boundaries: `s` starts with `first` and ends with `last`.
        let Some(mut rest) = s.get(first.len()..s.len() - last.len()) else {
            return false;
        };
        for part in middle {
            match rest
                .find(part.as_str())
                .and_then(|i| rest.get(i + part.len()..))
            {
                Some(after) => rest = after,
                None => return false,
            }
        }
        true
    }
}

impl NumericRange {
    fn contains(&self, v: i64) -> bool {
        let above = match self.lower {
            Some((bound, inclusive)) => v > bound || (inclusive && v == bound),
            None => true,
        };
        let below = match self.upper {
            Some((bound, inclusive)) => v < bound || (inclusive && v == bound),
            None => true,
        };
        above && below
    }
}

impl Cidr {
    fn contains(&self, text: &str) -> bool {
        match (self, text.parse::<IpAddr>()) {
            (Self::V4 { network, mask }, Ok(IpAddr::V4(ip))) => u32::from(ip) & mask == *network,
            (Self::V6 { network, mask }, Ok(IpAddr::V6(ip))) => u128::from(ip) & mask == *network,
            _ => false,
        }
    }
}

/// Calls `f` on each leaf value at this position, looking through arrays and skipping objects,
/// until `f` returns true.
fn any_scalar(value: &Value, depth: usize, f: &mut impl FnMut(&Value) -> bool) -> bool {
    match value {
        Value::Array(items) => {
            depth < MAX_DEPTH && items.iter().any(|v| any_scalar(v, depth + 1, f))
        }
        Value::Object(_) => false,
        scalar => f(scalar),
    }
}

/// Calls `f` on each object at this position, looking through arrays, until `f` returns true.
fn any_object(
    value: &Value,
    depth: usize,
    f: &mut impl FnMut(&Map<String, Value>) -> bool,
) -> bool {
    match value {
        Value::Array(items) => {
            depth < MAX_DEPTH && items.iter().any(|v| any_object(v, depth + 1, f))
        }
        Value::Object(map) => f(map),
        _ => false,
    }
}

fn lowercase(s: &str) -> String {
    s.chars().flat_map(char::to_lowercase).collect()
}

fn equals_ignore_case(s: &str, lower: &str) -> bool {
    s.chars().flat_map(char::to_lowercase).eq(lower.chars())
}

fn starts_with_ignore_case(s: &str, lower: &str) -> bool {
    let mut folded = s.chars().flat_map(char::to_lowercase);
    lower.chars().all(|c| folded.next() == Some(c))
}

fn ends_with_ignore_case(s: &str, lower: &str) -> bool {
    let mut folded = s.chars().rev().flat_map(|c| c.to_lowercase().rev());
    lower.chars().rev().all(|c| folded.next() == Some(c))
}

/// A number in millionths, if it is within the numeric-matching bounds.
fn to_micros(x: f64) -> Option<i64> {
    // |x| <= 5e9, so |x * 1e6| <= 5e15 < 2^53: the cast to i64 cannot saturate.
    (x.is_finite() && x.abs() <= NUMERIC_LIMIT).then(|| (x * 1e6).round() as i64)
}

fn kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

// ---------------------------------------------------------------------------------------------
// Parsing
// ---------------------------------------------------------------------------------------------

const ROOT: &str = "(root)";

/// The operator names accepted inside a match list.
const OPERATORS: [&str; 8] = [
    "prefix",
    "suffix",
    "equals-ignore-case",
    "wildcard",
    "anything-but",
    "numeric",
    "exists",
    "cidr",
];

#[derive(Clone, Copy)]
enum Segment<'a> {
    Key(&'a str),
    Index(usize),
}

struct PathDisplay<'p, 'a>(&'p [Segment<'a>]);

impl fmt::Display for PathDisplay<'_, '_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.is_empty() {
            return f.write_str(ROOT);
        }
        for (i, segment) in self.0.iter().enumerate() {
            match segment {
                Segment::Key(key) if is_plain_key(key) => {
                    if i > 0 {
                        f.write_char('.')?;
                    }
                    f.write_str(key)?;
                }
                Segment::Key(key) => write!(f, "[{}]", Value::from(*key))?,
                Segment::Index(index) => write!(f, "[{index}]")?,
            }
        }
        Ok(())
    }
}

fn is_plain_key(key: &str) -> bool {
    !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '$' | ':' | '@' | '/'))
}

/// Walks the pattern JSON, keeping the path of the current position for error messages.
struct Parser<'a> {
    path: Vec<Segment<'a>>,
}

type Parsed<T> = Result<T, PatternError>;

impl<'a> Parser<'a> {
    fn err(&self, message: impl Into<String>) -> PatternError {
        PatternError::Invalid {
            path: PathDisplay(&self.path).to_string(),
            message: message.into(),
        }
    }

    /// An error at `segment` below the current position.
    fn err_at(&mut self, segment: Segment<'a>, message: impl Into<String>) -> PatternError {
        self.path.push(segment);
        let error = self.err(message);
        self.path.pop();
        error
    }

    /// Runs `f` with `segment` appended to the path. On error the path is left as it was at the
    /// failure, which is fine since the parse is abandoned.
    fn at<T>(&mut self, segment: Segment<'a>, f: impl FnOnce(&mut Self) -> Parsed<T>) -> Parsed<T> {
        self.path.push(segment);
        let result = f(self)?;
        self.path.pop();
        Ok(result)
    }

    fn object(&mut self, map: &'a Map<String, Value>, top_level: bool) -> Parsed<ObjectPattern> {
        if self.path.len() > MAX_DEPTH {
            return Err(self.err(format!(
                "pattern is nested more than {MAX_DEPTH} levels deep"
            )));
        }
        if map.is_empty() && !top_level {
            return Err(self.err("empty objects are not allowed; name at least one field"));
        }
        let mut pattern = ObjectPattern::default();
        for (key, value) in map {
            self.at(Segment::Key(key), |p| {
                if key == "$or" {
                    pattern.any_of = p.or(value)?;
                    return Ok(());
                }
                let field = match value {
                    Value::Array(items) => FieldPattern::Leaf(p.leaf(items)?),
                    Value::Object(nested) => FieldPattern::Nested(p.object(nested, false)?),
                    other => {
                        return Err(p.err(format!(
                            "expected an array of match values or a nested object, found {}",
                            kind(other)
                        )))
                    }
                };
                pattern.fields.push((key.clone(), field));
                Ok(())
            })?;
        }
        Ok(pattern)
    }

    fn or(&mut self, value: &'a Value) -> Parsed<Vec<ObjectPattern>> {
        let Value::Array(items) = value else {
            return Err(self.err(format!(
                "`$or` takes an array of pattern objects, found {}",
                kind(value)
            )));
        };
        if items.len() < 2 {
            return Err(self.err("`$or` needs at least two alternatives"));
        }
        let mut alternatives = Vec::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            let alternative = self.at(Segment::Index(i), |p| match item {
                Value::Object(map) => p.object(map, false),
                other => Err(p.err(format!(
                    "`$or` alternatives must be pattern objects, found {}",
                    kind(other)
                ))),
            })?;
            alternatives.push(alternative);
        }
        Ok(alternatives)
    }

    fn leaf(&mut self, items: &'a [Value]) -> Parsed<Leaf> {
        if items.is_empty() {
            return Err(self.err("empty arrays are not allowed; list at least one value"));
        }
        let mut leaf = Leaf::default();
        for (i, item) in items.iter().enumerate() {
            self.at(Segment::Index(i), |p| {
                let matcher = match item {
                    Value::String(s) => Matcher::String(s.clone()),
                    Value::Number(n) => Matcher::Number(n.clone()),
                    Value::Bool(b) => Matcher::Bool(*b),
                    Value::Null => Matcher::Null,
                    Value::Array(_) => {
                        return Err(p.err("arrays cannot be nested inside a match list"))
                    }
                    Value::Object(op) => match p.operator(op)? {
                        Operator::Matcher(m) => m,
                        Operator::Exists(true) => {
                            leaf.if_present = true;
                            return Ok(());
                        }
                        Operator::Exists(false) => {
                            leaf.if_absent = true;
                            return Ok(());
                        }
                    },
                };
                leaf.matchers.push(matcher);
                Ok(())
            })?;
        }
        Ok(leaf)
    }

    fn operator(&mut self, op: &'a Map<String, Value>) -> Parsed<Operator> {
        let (name, operand) = match single_entry(op) {
            Ok(entry) => entry,
            Err(0) => return Err(self.err("empty operator object")),
            Err(n) => {
                return Err(self.err(format!(
                    "an operator object must have exactly one key, found {n}"
                )))
            }
        };
        if !OPERATORS.contains(&name.as_str()) {
            return Err(self.err(format!("unknown operator {}", Value::from(name.as_str()))));
        }
        self.at(Segment::Key(name), |p| p.operand(name, operand))
    }

    /// The operand of operator `name`, one of [`OPERATORS`]; the path already ends with `name`.
    fn operand(&mut self, name: &str, operand: &'a Value) -> Parsed<Operator> {
        let matcher = match name {
            "exists" => {
                return match operand {
                    Value::Bool(b) => Ok(Operator::Exists(*b)),
                    other => Err(self.err(format!(
                        "`exists` takes true or false, found {}",
                        kind(other)
                    ))),
                }
            }
            "prefix" => self.affix(operand, name, Matcher::Prefix, Matcher::PrefixIgnoreCase)?,
            "suffix" => self.affix(operand, name, Matcher::Suffix, Matcher::SuffixIgnoreCase)?,
            "equals-ignore-case" => {
                Matcher::EqualsIgnoreCase(lowercase(self.string(operand, name)?))
            }
            "wildcard" => Matcher::Wildcard(self.wildcard(operand)?),
            "anything-but" => Matcher::AnythingBut(self.anything_but(operand)?),
            "numeric" => Matcher::Numeric(self.numeric(operand)?),
            "cidr" => Matcher::Cidr(self.cidr(operand)?),
            other => return Err(self.err(format!("unknown operator {}", Value::from(other)))),
        };
        Ok(Operator::Matcher(matcher))
    }

    fn string<'v>(&self, operand: &'v Value, operator: &str) -> Parsed<&'v str> {
        operand.as_str().ok_or_else(|| {
            self.err(format!(
                "`{operator}` takes a string, found {}",
                kind(operand)
            ))
        })
    }

    /// `prefix` / `suffix`: a string, or `{"equals-ignore-case": string}`.
    fn affix(
        &mut self,
        operand: &'a Value,
        operator: &str,
        exact: fn(String) -> Matcher,
        ignore_case: fn(String) -> Matcher,
    ) -> Parsed<Matcher> {
        match operand {
            Value::String(s) => Ok(exact(s.clone())),
            Value::Object(map) => match single_entry(map) {
                Ok((key, Value::String(s))) if key == "equals-ignore-case" => {
                    Ok(ignore_case(lowercase(s)))
                }
                Ok((key, other)) if key == "equals-ignore-case" => Err(self.err_at(
                    Segment::Key(key),
                    format!("`equals-ignore-case` takes a string, found {}", kind(other)),
                )),
                _ => Err(self.err(format!(
                    "`{operator}` takes a string or {{\"equals-ignore-case\": string}}"
                ))),
            },
            other => Err(self.err(format!(
                "`{operator}` takes a string or {{\"equals-ignore-case\": string}}, found {}",
                kind(other)
            ))),
        }
    }

    fn wildcard(&self, operand: &Value) -> Parsed<Wildcard> {
        let text = self.string(operand, "wildcard")?;
        let mut parts = vec![String::new()];
        let mut chars = text.chars();
        let mut previous_was_star = false;
        while let Some(c) = chars.next() {
            let literal = match c {
                '*' if previous_was_star => {
                    return Err(self.err("consecutive `*` wildcards are not allowed"))
                }
                '*' => {
                    parts.push(String::new());
                    previous_was_star = true;
                    continue;
                }
                '\\' => match chars.next() {
                    Some(escaped @ ('*' | '\\')) => escaped,
                    Some(other) => {
                        return Err(self.err(format!(
                            "invalid escape `\\{other}`; only `\\*` and `\\\\` are allowed"
                        )))
                    }
                    None => return Err(self.err("a wildcard cannot end with a lone `\\`")),
                },
                other => other,
            };
            previous_was_star = false;
            if let Some(last) = parts.last_mut() {
                last.push(literal);
            }
        }
        Ok(Wildcard { parts })
    }

    fn anything_but(&mut self, operand: &'a Value) -> Parsed<Exclusion> {
        const EXPECTED: &str = "`anything-but` takes a string, a number, a list of only strings \
            or only numbers, or an object with `prefix`, `suffix`, `equals-ignore-case` or `wildcard`";
        match operand {
            Value::String(s) => Ok(Exclusion::Strings(vec![s.clone()])),
            Value::Number(n) => Ok(Exclusion::Numbers(vec![n.clone()])),
            Value::Array(items) => {
                if items.is_empty() {
                    return Err(self.err("`anything-but` list cannot be empty"));
                }
                if items.iter().all(Value::is_number) {
                    return Ok(Exclusion::Numbers(
                        items.iter().filter_map(Value::as_number).cloned().collect(),
                    ));
                }
                let mut strings = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    match item {
                        Value::String(s) => strings.push(s.clone()),
                        other => {
                            return Err(self.err_at(
                                Segment::Index(i),
                                format!(
                                    "`anything-but` lists hold only strings or only numbers, \
                                     found {}",
                                    kind(other)
                                ),
                            ))
                        }
                    }
                }
                Ok(Exclusion::Strings(strings))
            }
            Value::Object(map) => {
                let (key, inner) = match single_entry(map) {
                    Ok(entry) => entry,
                    Err(_) => return Err(self.err(EXPECTED)),
                };
                self.at(Segment::Key(key), |p| match key.as_str() {
                    // event-ruler refuses an empty affix here: it would exclude every string.
                    "prefix" => Ok(Exclusion::Prefix(p.non_empty_affix(inner, "prefix")?)),
                    "suffix" => Ok(Exclusion::Suffix(p.non_empty_affix(inner, "suffix")?)),
                    "equals-ignore-case" => Ok(Exclusion::EqualsIgnoreCase(
                        p.string_or_list(inner, "equals-ignore-case")?
                            .into_iter()
                            .map(lowercase)
                            .collect(),
                    )),
                    "wildcard" => {
                        let mut list = Vec::new();
                        match inner {
                            Value::Array(items) => {
                                for (i, item) in items.iter().enumerate() {
                                    list.push(p.at(Segment::Index(i), |p| p.wildcard(item))?);
                                }
                            }
                            single => list.push(p.wildcard(single)?),
                        }
                        if list.is_empty() {
                            return Err(p.err("`wildcard` list cannot be empty"));
                        }
                        Ok(Exclusion::Wildcard(list))
                    }
                    other => Err(p.err(format!(
                        "operator {} is not supported inside `anything-but`",
                        Value::from(other)
                    ))),
                })
            }
            other => Err(self.err(format!("{EXPECTED}, found {}", kind(other)))),
        }
    }

    /// The string operand of `anything-but`'s `prefix` / `suffix`, which must not be empty.
    fn non_empty_affix(&self, operand: &Value, operator: &str) -> Parsed<String> {
        let s = self.string(operand, operator)?;
        if s.is_empty() {
            return Err(self.err(format!(
                "`{operator}` inside `anything-but` cannot be empty (it would exclude every string)"
            )));
        }
        Ok(s.to_owned())
    }

    /// A string or a non-empty list of strings.
    fn string_or_list(&mut self, operand: &'a Value, operator: &str) -> Parsed<Vec<&'a str>> {
        match operand {
            Value::String(s) => Ok(vec![s.as_str()]),
            Value::Array(items) if !items.is_empty() => {
                let mut out = Vec::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    out.push(self.at(Segment::Index(i), |p| p.string(item, operator))?);
                }
                Ok(out)
            }
            other => Err(self.err(format!(
                "`{operator}` takes a string or a non-empty list of strings, found {}",
                kind(other)
            ))),
        }
    }

    fn numeric(&mut self, operand: &'a Value) -> Parsed<NumericRange> {
        const SHAPE: &str = "`numeric` takes one comparison such as [\">\", 0] or a range such as \
                             [\">\", 0, \"<=\", 5]";
        let Value::Array(items) = operand else {
            return Err(self.err(format!("{SHAPE}, found {}", kind(operand))));
        };
        if items.len() != 2 && items.len() != 4 {
            return Err(self.err(format!("{SHAPE}, found {} elements", items.len())));
        }
        let mut comparisons = Vec::with_capacity(2);
        for (i, pair) in items.chunks_exact(2).enumerate() {
            let [op, value] = pair else { continue };
            let op = self.at(Segment::Index(2 * i), |p| match op.as_str() {
                Some(s @ ("=" | "<" | "<=" | ">" | ">=")) => Ok(s),
                Some(other) => Err(p.err(format!(
                    "unknown numeric operator {}; use =, <, <=, > or >=",
                    Value::from(other)
                ))),
                None => Err(p.err(format!(
                    "expected a numeric operator (=, <, <=, > or >=), found {}",
                    kind(op)
                ))),
            })?;
            let micros = self.at(Segment::Index(2 * i + 1), |p| {
                value
                    .as_number()
                    .and_then(Number::as_f64)
                    .ok_or_else(|| p.err(format!("expected a number, found {}", kind(value))))
                    .and_then(|x| {
                        to_micros(x).ok_or_else(|| {
                            p.err(format!("{x} is outside the numeric range -5.0e9 to 5.0e9"))
                        })
                    })
            })?;
            comparisons.push((op, micros));
        }
        let bound = |op: &str, v: i64| (v, op.contains('='));
        match comparisons.as_slice() {
            [("=", v)] => Ok(NumericRange {
                lower: Some((*v, true)),
                upper: Some((*v, true)),
            }),
            [(op @ (">" | ">="), v)] => Ok(NumericRange {
                lower: Some(bound(op, *v)),
                upper: None,
            }),
            [(op, v)] => Ok(NumericRange {
                lower: None,
                upper: Some(bound(op, *v)),
            }),
            [(lo @ (">" | ">="), low), (hi @ ("<" | "<="), high)] => {
                if low >= high {
                    return Err(self.err("the lower bound must be less than the upper bound"));
                }
                Ok(NumericRange {
                    lower: Some(bound(lo, *low)),
                    upper: Some(bound(hi, *high)),
                })
            }
            _ if comparisons.iter().any(|(op, _)| *op == "=") => {
                Err(self.err("`=` cannot be combined with another comparison"))
            }
            _ => Err(self.err(
                "a numeric range gives its lower bound (> or >=) first, then its upper bound \
                 (< or <=)",
            )),
        }
    }

    fn cidr(&self, operand: &Value) -> Parsed<Cidr> {
        let text = self.string(operand, "cidr")?;
        let invalid = || {
            self.err(format!(
                "invalid CIDR block {}; expected e.g. \"10.0.0.0/24\" or \"2001:db8::/32\"",
                Value::from(text)
            ))
        };
        let (address, length) = text.split_once('/').ok_or_else(invalid)?;
        let address: IpAddr = address.parse().map_err(|_| invalid())?;
        let length: u32 = length.parse().map_err(|_| invalid())?;
        match address {
            IpAddr::V4(ip) if length <= 32 => {
                let mask = u32::MAX.checked_shl(32 - length).unwrap_or(0);
                Ok(Cidr::V4 {
                    network: u32::from(ip) & mask,
                    mask,
                })
            }
            IpAddr::V6(ip) if length <= 128 => {
                let mask = u128::MAX.checked_shl(128 - length).unwrap_or(0);
                Ok(Cidr::V6 {
                    network: u128::from(ip) & mask,
                    mask,
                })
            }
            _ => Err(invalid()),
        }
    }
}

enum Operator {
    Matcher(Matcher),
    Exists(bool),
}

/// The only entry of a map, or the number of entries.
fn single_entry(map: &Map<String, Value>) -> Result<(&String, &Value), usize> {
    let mut entries = map.iter();
    match (entries.next(), entries.next()) {
        (Some(entry), None) => Ok(entry),
        _ => Err(map.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const QUEUED: &str = include_str!("../../../tests/fixtures/events/voice-inbound-queued.json");

    /// The example event of the event-ruler README and of `eb-event-patterns-content-based-filtering`.
    const RULER_EVENT: &str = r#"{"version": "0", "id": "ddddd4-aaaa-7777-4444-345dd43cc333",
        "detail-type": "EC2 Instance State-change Notification", "source": "aws.ec2",
        "account": "012345679012", "time": "2017-10-02T16:24:49Z", "region": "us-east-1",
        "resources": ["arn:aws:ec2:us-east-1:123456789012:instance/i-000000aaaaaa00000"],
        "detail": {"c-count": 5, "d-count": 3, "x-limit": 301.8, "source-ip": "10.0.0.33",
                   "instance-id": "i-000000aaaaaa00000", "state": "running"}}"#;

    fn value(text: &str) -> Value {
        match text {
            "@queued" => value(QUEUED),
            "@ruler" => value(RULER_EVENT),
            _ => serde_json::from_str(text).unwrap_or_else(|e| panic!("test JSON {text}: {e}")),
        }
    }

    /// Runs a table of `pattern | event | expected` lines. `...` as the pattern repeats the
    /// previous line's pattern, `@queued` and `@ruler` name the fixture events, and `#` starts a
    /// comment line.
    #[track_caller]
    fn cases(table: &str) {
        let mut pattern = None;
        for line in table.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let columns: Vec<&str> = line.split(" | ").map(str::trim).collect();
            let [text, event, expected] = columns[..] else {
                panic!("malformed case: {line}");
            };
            if text != "..." {
                let compiled = Pattern::from_json_str(text);
                pattern = Some(compiled.unwrap_or_else(|e| panic!("{line}: {e}")));
            }
            let Some(compiled) = &pattern else {
                panic!("`...` without a previous pattern: {line}");
            };
            let expected: bool = expected.parse().expect("expected is true or false");
            assert_eq!(compiled.matches(&value(event)), expected, "{line}");
        }
    }

    /// Runs a table of `pattern | start of the error message` lines (`#` starts a comment).
    #[track_caller]
    fn errors(table: &str) {
        for line in table.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((pattern, message)) = line.split_once(" | ") else {
                panic!("malformed case: {line}");
            };
            match Pattern::from_json_str(pattern) {
                Ok(_) => panic!("should be rejected: {pattern}"),
                Err(e) => assert!(e.to_string().starts_with(message), "{line}\n  got: {e}"),
            }
        }
    }

    // ---- structure and exact values (eb-event-patterns, eb-event-patterns-null-values) -------

    #[test]
    fn fields_are_anded_and_values_ored() {
        cases(
            r#"
            # The EC2 example of eb-event-patterns.
            {"source": ["aws.ec2"], "detail": {"state": ["terminated"]}} | {"source": "aws.ec2", "region": "x", "detail": {"state": "terminated"}} | true
            ... | {"source": "aws.ec2", "detail": {"state": "running"}} | false
            ... | {"source": "aws.ec2"} | false
            {"source": ["aws.ec2", "aws.fargate"]} | {"source": "aws.fargate"} | true
            {"source": ["aws.ec2"], "region": ["eu-west-1"]} | @ruler | false
            {"detail": {"state": ["running"]}, "source": ["aws.ec2"]} | @ruler | true
            "#,
        );
    }

    #[test]
    fn exact_values_are_case_sensitive_and_typed() {
        cases(
            r#"
            {"s": ["aws.ec2"]} | {"s": "AWS.EC2"} | false
            {"n": ["5"]} | {"n": 5} | false
            {"n": [5]} | {"n": "5"} | false
            {"n": [5]} | {"n": 5} | true
            {"b": [true]} | {"b": "true"} | false
            {"b": [true]} | {"b": true} | true
            {"b": [false]} | {"b": true} | false
            "#,
        );
    }

    #[test]
    fn nesting_must_agree() {
        cases(
            r#"
            {"state": ["terminated"]} | {"detail": {"state": "terminated"}} | false
            {"detail": {"state": {"x": ["terminated"]}}} | {"detail": {"state": "terminated"}} | false
            {"detail": {"state": ["terminated"]}} | {"detail": "terminated"} | false
            {"a": {"b": {"c": ["d"]}}} | {"a": {"b": {"c": "d"}}} | true
            "#,
        );
    }

    /// Numbers match by serde_json's parsed form (see the module docs).
    #[test]
    fn docs_macie_numbers() {
        cases(
            r#"
            {"detail": {"risk-score": [80], "trigger": {"risk": [8]}}} | {"detail": {"risk-score": 80, "trigger": {"risk": 8}}} | true
            {"detail": {"risk-score": [80.0]}} | {"detail": {"risk-score": 80}} | false
            {"x": [300]} | {"x": 3.0e2} | false
            {"x": [300.0]} | {"x": 3.0e2} | true
            {"x": [-1]} | {"x": -1} | true
            "#,
        );
    }

    #[test]
    fn docs_null_and_empty_string_differ() {
        cases(
            r#"
            {"detail": {"eventVersion": [""]}} | {"detail": {"eventVersion": "", "responseElements": null}} | true
            {"detail": {"responseElements": [null]}} | {"detail": {"eventVersion": "", "responseElements": null}} | true
            {"detail": {"responseElements": [""]}} | {"detail": {"responseElements": null}} | false
            {"detail": {"eventVersion": [null]}} | {"detail": {"eventVersion": ""}} | false
            {"detail": {"missing": [null]}} | {"detail": {}} | false
            "#,
        );
    }

    #[test]
    fn repeated_key_last_one_wins_and_empty_pattern_matches_all() {
        cases(
            r#"
            {"source": ["aws.s3"], "source": ["aws.ec2"]} | {"source": "aws.ec2"} | true
            {} | @ruler | true
            {} | null | true
            "#,
        );
    }

    // ---- arrays (eb-event-patterns-arrays, event-ruler "JSON Array Matching") ----------------

    #[test]
    fn docs_arrays_match_on_non_empty_intersection() {
        cases(
            r#"
            {"resources": ["arn:ec2:i-b188560f", "arn:ec2:111122223333:i-b188560f"]} | {"resources": ["arn:autoscaling:ASGTerminate", "arn:ec2:i-b188560f"]} | true
            ... | {"resources": ["arn:s3:::bucket"]} | false
            ... | {"resources": []} | false
            {"a": [3]} | {"a": [[1, 2], [3]]} | true
            {"a": [4]} | {"a": [[1, 2], [3]]} | false
            "#,
        );
    }

    #[test]
    fn ruler_arrays_of_objects_match_within_one_element() {
        cases(
            r#"
            {"employees": {"firstName": ["Anna"]}} | {"employees": [{"firstName": "John", "lastName": "Doe"}, {"firstName": "Anna", "lastName": "Smith"}, {"firstName": "Peter", "lastName": "Jones"}]} | true
            {"employees": {"firstName": ["Anna"], "lastName": ["Smith"]}} | {"employees": [{"firstName": "John", "lastName": "Doe"}, {"firstName": "Anna", "lastName": "Smith"}, {"firstName": "Peter", "lastName": "Jones"}]} | true
            {"employees": {"firstName": ["Anna"], "lastName": ["Jones"]}} | {"employees": [{"firstName": "John", "lastName": "Doe"}, {"firstName": "Anna", "lastName": "Smith"}, {"firstName": "Peter", "lastName": "Jones"}]} | false
            # Multi-level arrays.
            {"employees": {"firstName": ["Peter"]}} | {"employees": [[{"firstName": "John"}, {"firstName": "Anna"}], [{"firstName": "Peter"}]]} | true
            "#,
        );
    }

    // ---- prefix, suffix, equals-ignore-case --------------------------------------------------

    #[test]
    fn prefix() {
        cases(
            r#"
            {"time": [{"prefix": "2017-10-02"}]} | {"time": "2017-10-02T18:43:48Z"} | true
            ... | {"time": "2017-10-03T18:43:48Z"} | false
            ... | {"time": 20171002} | false
            ... | {} | false
            {"s": [{"prefix": ""}]} | {"s": "anything"} | true
            "#,
        );
    }

    #[test]
    fn prefix_equals_ignore_case() {
        cases(
            r#"
            {"detail": {"service": [{"prefix": {"equals-ignore-case": "EventB"}}]}} | {"detail": {"service": "EventBridge"}} | true
            ... | {"detail": {"service": "EVENTBRIDGE"}} | true
            ... | {"detail": {"service": "eventb"}} | true
            ... | {"detail": {"service": "Event"}} | false
            ... | {"detail": {"service": "SNS"}} | false
            "#,
        );
    }

    #[test]
    fn suffix_with_and_without_case() {
        cases(
            r#"
            {"FileName": [{"suffix": ".png"}]} | {"FileName": "image.png"} | true
            ... | {"FileName": "image.PNG"} | false
            ... | {"FileName": "png"} | false
            {"FileName": [{"suffix": {"equals-ignore-case": ".png"}}]} | {"FileName": "IMAGE.PNG"} | true
            ... | {"FileName": "image.jpg"} | false
            {"s": [{"suffix": {"equals-ignore-case": "ÉE"}}]} | {"s": "année"} | true
            "#,
        );
    }

    #[test]
    fn equals_ignore_case() {
        cases(
            r#"
            {"Name": [{"equals-ignore-case": "alice"}]} | {"Name": "Alice"} | true
            ... | {"Name": "ALICE"} | true
            ... | {"Name": "Alicia"} | false
            ... | {"Name": null} | false
            {"s": [{"equals-ignore-case": "École"}]} | {"s": "ÉCOLE"} | true
            "#,
        );
    }

    // ---- wildcard ----------------------------------------------------------------------------

    #[test]
    fn wildcard() {
        cases(
            r#"
            # eb-create-pattern-operators
            {"source": [{"wildcard": "Simple*Service"}]} | {"source": "SimpleNotificationService"} | true
            ... | {"source": "SimpleService"} | true
            ... | {"source": "SimpleQueue"} | false
            # event-ruler MachineTest.testWildcardMatching
            {"a": [{"wildcard": "*bc"}]} | {"a": "bc"} | true
            ... | {"a": "abc"} | true
            ... | {"a": "xyz"} | false
            {"b": [{"wildcard": "d*f"}]} | {"b": "dexef"} | true
            ... | {"b": "de"} | false
            ... | {"b": "ef"} | false
            {"c": [{"wildcard": "xy*"}]} | {"c": "xyzzz"} | true
            ... | {"c": "abcxyz"} | false
            {"d": [{"wildcard": "12*4*"}]} | {"d": "12345"} | true
            ... | {"d": "1235"} | false
            # Edges and escapes.
            {"a": [{"wildcard": "*"}]} | {"a": ""} | true
            ... | {"a": 5} | false
            {"a": [{"wildcard": "a*a"}]} | {"a": "aa"} | true
            ... | {"a": "a"} | false
            {"a": [{"wildcard": "a\\*b"}]} | {"a": "a*b"} | true
            ... | {"a": "axb"} | false
            {"a": [{"wildcard": "a\\\\b"}]} | {"a": "a\\b"} | true
            {"a": [{"wildcard": "\\**"}]} | {"a": "*tail"} | true
            ... | {"a": "tail"} | false
            "#,
        );
    }

    // ---- anything-but ------------------------------------------------------------------------

    #[test]
    fn anything_but_strings_and_numbers() {
        cases(
            r#"
            {"detail": {"state": [{"anything-but": "initializing"}]}} | @ruler | true
            ... | {"detail": {"state": "initializing"}} | false
            # Only present leaf values can match.
            ... | {"detail": {"state": {"nested": 1}}} | false
            ... | {"detail": {}} | false
            # A value of another type is never excluded (event-ruler compares JSON text).
            ... | {"detail": {"state": null}} | true
            ... | {"detail": {"state": 5}} | true
            {"state": [{"anything-but": ["stopped", "overloaded"]}]} | {"state": "running"} | true
            ... | {"state": "overloaded"} | false
            {"x": [{"anything-but": 123}]} | {"x": 124} | true
            ... | {"x": 123} | false
            {"detail": {"x-limit": [{"anything-but": [100, 200, 300]}]}} | @ruler | true
            ... | {"detail": {"x-limit": 300}} | false
            ... | {"detail": {"x-limit": "300"}} | true
            "#,
        );
    }

    #[test]
    fn anything_but_prefix_suffix_ignore_case_wildcard() {
        cases(
            r#"
            {"Region": [{"anything-but": {"prefix": "us-"}}]} | {"Region": "eu-west-1"} | true
            ... | {"Region": "us-east-1"} | false
            {"FileName": [{"anything-but": {"suffix": ".png"}}]} | {"FileName": "a.jpg"} | true
            ... | {"FileName": "a.png"} | false
            {"state": [{"anything-but": {"equals-ignore-case": "initializing"}}]} | {"state": "running"} | true
            ... | {"state": "INITIALIZING"} | false
            {"state": [{"anything-but": {"equals-ignore-case": ["a", "B"]}}]} | {"state": "b"} | false
            ... | {"state": "c"} | true
            {"FilePath": [{"anything-but": {"wildcard": "*/lib/*"}}]} | {"FilePath": "/usr/bin/x"} | true
            ... | {"FilePath": "/usr/lib/x"} | false
            {"FilePath": [{"anything-but": {"wildcard": ["*/lib/*", "*.tmp"]}}]} | {"FilePath": "a.tmp"} | false
            ... | {"FilePath": "a.txt"} | true
            "#,
        );
    }

    /// Arrays: anything-but holds per element. eb-event-patterns-arrays says an array matches
    /// when any element matches. event-ruler flattens `["banned", "ok"]` into two `tags` values
    /// and `ByteMachine.transitionOn` tests each on its own, so `"ok"` satisfies the
    /// anything-but (event-ruler `correctness-cases.json`: "primarray: anything-but in array").
    #[test]
    fn anything_but_on_event_arrays_matches_if_any_element_is_not_excluded() {
        cases(
            r#"
            {"d": {"tags": [{"anything-but": "banned"}]}} | {"d": {"tags": ["banned", "ok"]}} | true
            ... | {"d": {"tags": ["banned"]}} | false
            ... | {"d": {"tags": ["banned", "banned"]}} | false
            ... | {"d": {"tags": []}} | false
            # Objects in an array: all fields are judged inside one element ("anything-but array").
            {"u": {"s": [{"anything-but": "banned"}], "n": [{"exists": true}]}} | {"u": [{"n": "alice", "s": "banned"}, {"n": "bob", "s": "active"}]} | true
            ... | {"u": [{"n": "alice", "s": "banned"}, {"s": "active"}]} | false
            "#,
        );
    }

    // ---- numeric -----------------------------------------------------------------------------

    #[test]
    fn numeric() {
        cases(
            r#"
            # eb-event-patterns-content-based-filtering
            {"detail": {"c-count": [{"numeric": [">", 0, "<=", 5]}], "d-count": [{"numeric": ["<", 10]}], "x-limit": [{"numeric": ["=", 3.018e2]}]}} | @ruler | true
            ... | {"detail": {"c-count": 6, "d-count": 3, "x-limit": 301.8}} | false
            ... | {"detail": {"c-count": 5, "d-count": 3, "x-limit": 301.81}} | false
            {"x": [{"numeric": [">=", 5]}]} | {"x": 5} | true
            ... | {"x": 4.9} | false
            {"x": [{"numeric": [">", 5]}]} | {"x": 5} | false
            ... | {"x": 5.000001} | true
            {"x": [{"numeric": ["<=", 5]}]} | {"x": 5} | true
            ... | {"x": 6} | false
            {"x": [{"numeric": ["<", 5]}]} | {"x": 5} | false
            ... | {"x": -5e9} | true
            {"x": [{"numeric": [">", 0, "<", 1]}]} | {"x": 0.5} | true
            ... | {"x": 1} | false
            # numeric compares values, unlike exact matching.
            {"x": [{"numeric": ["=", 300]}]} | {"x": 300.0} | true
            {"x": [{"numeric": [">", 0]}]} | {"x": "5"} | false
            ... | {"x": null} | false
            ... | {"x": 6e9} | false
            ... | {"x": 0.0000001} | false
            ... | {"x": [-3, 2]} | true
            "#,
        );
    }

    // ---- exists ------------------------------------------------------------------------------

    #[test]
    fn exists() {
        cases(
            r#"
            # eb-event-patterns-content-based-filtering
            {"detail": {"c-count": [{"exists": true}]}} | @ruler | true
            ... | {"detail": {"state": ["initializing", "running"]}} | false
            ... | {"detail": {"state": "running", "c-count": {"c1": 100}}} | false
            {"detail": {"c-count": [{"exists": false}]}} | @ruler | false
            ... | {"detail": {"state": ["initializing", "running"]}} | true
            # c-count is not a leaf node here, so exists:false matches.
            ... | {"detail": {"state": "running", "c-count": {"c1": 100}}} | true
            {"x": [{"exists": true}]} | {"x": null} | true
            ... | {"x": ["a"]} | true
            ... | {"x": []} | false
            ... | {"x": [{"y": 1}]} | false
            {"x": [{"exists": false}]} | {"x": null} | false
            ... | {"x": []} | true
            ... | {"y": 1} | true
            {"d": {"x": [{"exists": false}]}} | {} | true
            ... | {"d": [{"y": 1}]} | true
            ... | {"d": [{"y": 1}, {"x": 1}]} | true
            ... | {"d": [{"x": 1}]} | false
            {"x": [{"exists": false}, "a"]} | {} | true
            ... | {"x": "a"} | true
            ... | {"x": "b"} | false
            "#,
        );
    }

    // ---- cidr --------------------------------------------------------------------------------

    #[test]
    fn cidr() {
        cases(
            r#"
            {"detail": {"source-ip": [{"cidr": "10.0.0.0/24"}]}} | @ruler | true
            ... | {"detail": {"source-ip": "10.0.1.1"}} | false
            ... | {"detail": {"source-ip": "not an ip"}} | false
            ... | {"detail": {"source-ip": "::ffff:10.0.0.1"}} | false
            ... | {"detail": {"source-ip": 10}} | false
            {"ip": [{"cidr": "10.0.0.77/8"}]} | {"ip": "10.200.1.1"} | true
            {"ip": [{"cidr": "0.0.0.0/0"}]} | {"ip": "8.8.8.8"} | true
            ... | {"ip": "::1"} | false
            {"ip": [{"cidr": "1.2.3.4/32"}]} | {"ip": "1.2.3.4"} | true
            ... | {"ip": "1.2.3.5"} | false
            {"ip": [{"cidr": "2001:db8::/32"}]} | {"ip": "2001:db8::1"} | true
            ... | {"ip": "2001:0DB8:ffff::"} | true
            ... | {"ip": "2001:db9::1"} | false
            ... | {"ip": "10.0.0.1"} | false
            {"ip": [{"cidr": "::/0"}]} | {"ip": "fe80::1"} | true
            "#,
        );
    }

    // ---- $or (event-ruler README examples) ---------------------------------------------------

    #[test]
    fn or_at_top_level_and_nested() {
        cases(
            r#"
            # "Normal Or": source AND (metricName OR namespace).
            {"source": ["aws.cloudwatch"], "$or": [{"metricName": ["CPUUtilization", "ReadLatency"]}, {"namespace": ["AWS/EC2", "AWS/ES"]}]} | {"source": "aws.cloudwatch", "metricName": "ReadLatency"} | true
            ... | {"source": "aws.cloudwatch", "namespace": "AWS/ES"} | true
            ... | {"source": "aws.cloudwatch", "namespace": "AWS/S3"} | false
            ... | {"source": "aws.ec2", "metricName": "ReadLatency"} | false
            # "Parallel Or", one of them nested under detail.
            {"$or": [{"metricName": ["CPU"]}, {"namespace": ["AWS/EC2"]}], "detail": {"$or": [{"source": ["aws.cloudwatch"]}, {"detail-type": ["Alarm"]}]}} | {"namespace": "AWS/EC2", "detail": {"detail-type": "Alarm"}} | true
            ... | {"namespace": "AWS/EC2", "detail": {"source": "aws.ec2"}} | false
            ... | {"detail": {"source": "aws.cloudwatch"}} | false
            # "Nested Or and And".
            {"source": ["cw"], "$or": [{"metricName": ["CPU"]}, {"metricType": ["MT"], "namespace": ["AWS/EC2"], "$or": [{"metricId": [1234]}, {"spaceId": [1000]}]}, {"scope": ["Service"]}]} | {"source": "cw", "scope": "Service"} | true
            ... | {"source": "cw", "metricType": "MT", "namespace": "AWS/EC2", "spaceId": 1000} | true
            ... | {"source": "cw", "metricType": "MT", "namespace": "AWS/EC2"} | false
            ... | {"source": "cw", "metricType": "MT", "spaceId": 1000} | false
            # An alternative that does not name a missing field can match it.
            {"$or": [{"a": [1]}, {"b": [{"exists": false}]}]} | {} | true
            ... | {"a": 2, "b": 3} | false
            # In an array of objects, the alternatives are judged per element.
            {"d": {"$or": [{"a": [1]}, {"b": [2]}], "c": [3]}} | {"d": [{"a": 1}, {"c": 3}]} | false
            ... | {"d": [{"a": 5}, {"b": 2, "c": 3}]} | true
            "#,
        );
    }

    #[test]
    fn or_expansion_limit() {
        let or_of =
            |n: usize| json!({"$or": (0..n).map(|i| json!({"k": [i]})).collect::<Vec<_>>()});
        let exactly_1000 = json!({"a": or_of(10), "b": or_of(10), "c": or_of(10)});
        assert!(Pattern::parse(&exactly_1000).is_ok());
        let too_many = json!({"a": or_of(6), "b": or_of(6), "c": or_of(6), "d": or_of(6)});
        let e = Pattern::parse(&too_many).unwrap_err();
        let expected = PatternError::TooManyCombinations {
            count: 1296,
            max: 1000,
        };
        assert_eq!(e.to_string(), expected.to_string());
        let alternatives = json!({"$or": [or_of(600), or_of(401)]});
        assert!(
            Pattern::parse(&alternatives).is_err(),
            "alternatives add up: 1001"
        );
    }

    // ---- Amazon Connect ----------------------------------------------------------------------

    #[test]
    fn connect_patterns() {
        cases(
            r#"
            {"source": ["aws.connect"], "detail-type": ["Amazon Connect Contact Event"], "detail": {"eventType": ["DISCONNECTED"]}} | @queued | false
            ... | {"source": "aws.connect", "detail-type": "Amazon Connect Contact Event", "detail": {"eventType": "DISCONNECTED"}} | true
            {"source": ["aws.connect"], "detail-type": ["Amazon Connect Contact Event"], "detail": {"eventType": ["QUEUED"]}} | @queued | true
            {"replay-name": [{"exists": false}]} | @queued | true
            ... | {"replay-name": "replay-2025-06-10", "source": "aws.connect"} | false
            {"detail": {"eventType": [{"anything-but": ["CONTACT_DATA_UPDATED"]}]}} | @queued | true
            ... | {"detail": {"eventType": "CONTACT_DATA_UPDATED"}} | false
            ... | {"detail": {"eventType": "DISCONNECTED"}} | true
            ... | {"detail": {}} | false
            {"source": ["aws.connect"], "resources": [{"wildcard": "arn:aws:connect:*:123456789012:instance/*/contact/*"}]} | @queued | true
            {"detail": {"channel": ["VOICE"], "$or": [{"initiationMethod": ["INBOUND"]}, {"initiationMethod": ["TRANSFER"]}]}} | @queued | true
            {"detail": {"queueInfo": {"queueType": ["STANDARD"]}, "tags": {"aws:connect:systemEndpoint": [{"prefix": "+1800"}]}}} | @queued | true
            {"detail": {"agentInfo": {"agentArn": [{"exists": true}]}}} | @queued | false
            "#,
        );
    }

    #[test]
    fn queued_fixture_edited() {
        let live_only = Pattern::from_json_str(r#"{"replay-name": [{"exists": false}]}"#).unwrap();
        let not_updates = Pattern::parse(&json!(
            {"detail": {"eventType": [{"anything-but": ["CONTACT_DATA_UPDATED"]}]}}
        ))
        .unwrap();
        let mut event = value(QUEUED);
        assert!(live_only.matches(&event) && not_updates.matches(&event));
        event["replay-name"] = json!("nightly");
        event["detail"]["eventType"] = json!("CONTACT_DATA_UPDATED");
        assert!(!live_only.matches(&event) && !not_updates.matches(&event));
    }

    // ---- invalid patterns --------------------------------------------------------------------

    #[test]
    fn errors_name_the_json_path() {
        errors(
            r#"
            {"detail": {"eventType": ["QUEUED", {"prefixx": "a"}]}} | detail.eventType[1]: unknown operator "prefixx"
            {"detail": {"eventType": "QUEUED"}} | detail.eventType: expected an array of match values or a nested object, found a string
            [1] | (root): an event pattern must be a JSON object, found an array
            {"a.b": {"c d": 1}} | ["a.b"]["c d"]: expected an array
            {"x": [{"numeric": [">", "0"]}]} | x[0].numeric[1]: expected a number, found a string
            {"$or": [{"a": [1]}, {"b": "x"}]} | $or[1].b: expected an array
            {"a": [{"anything-but": ["x", 1]}]} | a[0].anything-but[1]: `anything-but` lists hold only strings or only numbers
            {"a": [{"prefix": {"equals-ignore-case": 1}}]} | a[0].prefix.equals-ignore-case: `equals-ignore-case` takes a string
            {"a": [{"anything-but": {"wildcard": ["x", "a**"]}}]} | a[0].anything-but.wildcard[1]: consecutive `*`
            {"a": [{"wildcard": "a\\nb"}]} | a[0].wildcard: invalid escape `\n`
            {"a": [{"wildcard": "ab\\"}]} | a[0].wildcard: a wildcard cannot end with a lone `\`
            "#,
        );
        let e = Pattern::from_json_str(r#"{"detail": {"eventType": "QUEUED"}}"#).unwrap_err();
        assert_eq!(e.path(), Some("detail.eventType"));
        assert!(matches!(
            Pattern::from_json_str("{"),
            Err(PatternError::Json(_))
        ));
    }

    #[test]
    fn structural_errors() {
        errors(
            r#"
            {"a": []} | a: empty arrays are not allowed
            {"a": {}} | a: empty objects are not allowed
            {"a": [[1]]} | a[0]: arrays cannot be nested
            {"a": 1} | a: expected an array of match values or a nested object, found a number
            {"a": [{}]} | a[0]: empty operator object
            {"a": [{"prefix": "a", "suffix": "b"}]} | a[0]: an operator object must have exactly one key, found 2
            {"$or": [{"a": [1]}]} | $or: `$or` needs at least two alternatives
            {"$or": {"a": [1]}} | $or: `$or` takes an array of pattern objects, found an object
            {"$or": [{"a": [1]}, 5]} | $or[1]: `$or` alternatives must be pattern objects
            {"$or": [{"a": [1]}, {}]} | $or[1]: empty objects are not allowed
            "#,
        );
    }

    #[test]
    fn operand_errors() {
        errors(
            r#"
            {"a": [{"prefix": 5}]} | a[0].prefix: `prefix` takes a string or {"equals-ignore-case": string}, found a number
            {"a": [{"prefix": {"other": "x"}}]} | a[0].prefix: `prefix` takes a string or
            {"a": [{"suffix": ["x"]}]} | a[0].suffix: `suffix` takes a string or
            {"a": [{"equals-ignore-case": ["x"]}]} | a[0].equals-ignore-case: `equals-ignore-case` takes a string
            {"a": [{"wildcard": 1}]} | a[0].wildcard: `wildcard` takes a string
            {"a": [{"exists": "true"}]} | a[0].exists: `exists` takes true or false
            {"a": [{"cidr": "10.0.0.0"}]} | a[0].cidr: invalid CIDR block "10.0.0.0"
            {"a": [{"cidr": "10.0.0.0/33"}]} | a[0].cidr: invalid CIDR block
            {"a": [{"cidr": "2001:db8::/129"}]} | a[0].cidr: invalid CIDR block
            {"a": [{"cidr": "bogus/8"}]} | a[0].cidr: invalid CIDR block
            {"a": [{"anything-but": null}]} | a[0].anything-but: `anything-but` takes a string
            {"a": [{"anything-but": true}]} | a[0].anything-but: `anything-but` takes a string
            {"a": [{"anything-but": []}]} | a[0].anything-but: `anything-but` list cannot be empty
            {"a": [{"anything-but": [null]}]} | a[0].anything-but[0]: `anything-but` lists hold only
            {"a": [{"anything-but": {"prefix": ["a", "b"]}}]} | a[0].anything-but.prefix: `prefix` takes a string
            {"a": [{"anything-but": {"numeric": [">", 1]}}]} | a[0].anything-but.numeric: operator "numeric" is not supported inside `anything-but`
            {"a": [{"anything-but": {"prefix": "a", "suffix": "b"}}]} | a[0].anything-but: `anything-but` takes a string
            {"a": [{"anything-but": {"wildcard": []}}]} | a[0].anything-but.wildcard: `wildcard` list cannot be empty
            {"a": [{"anything-but": {"prefix": ""}}]} | a[0].anything-but.prefix: `prefix` inside `anything-but` cannot be empty
            {"a": [{"anything-but": {"suffix": ""}}]} | a[0].anything-but.suffix: `suffix` inside `anything-but` cannot be empty
            {"a": [{"anything-but": {"equals-ignore-case": [1]}}]} | a[0].anything-but.equals-ignore-case[0]: `equals-ignore-case` takes a string
            "#,
        );
    }

    #[test]
    fn numeric_errors() {
        errors(
            r#"
            {"a": [{"numeric": 5}]} | a[0].numeric: `numeric` takes one comparison
            {"a": [{"numeric": [">"]}]} | a[0].numeric: `numeric` takes one comparison such as [">", 0] or a range such as [">", 0, "<=", 5], found 1 elements
            {"a": [{"numeric": ["<", 5, ">", 0]}]} | a[0].numeric: a numeric range gives its lower bound (> or >=) first
            {"a": [{"numeric": [">", 0, ">", 5]}]} | a[0].numeric: a numeric range gives its lower bound
            {"a": [{"numeric": ["=", 0, "<", 5]}]} | a[0].numeric: `=` cannot be combined with another comparison
            {"a": [{"numeric": [">", 5, "<", 5]}]} | a[0].numeric: the lower bound must be less than the upper bound
            {"a": [{"numeric": ["!=", 5]}]} | a[0].numeric[0]: unknown numeric operator "!="
            {"a": [{"numeric": [">", 6e9]}]} | a[0].numeric[1]: 6000000000 is outside the numeric range
            {"a": [{"numeric": [5, ">"]}]} | a[0].numeric[0]: expected a numeric operator
            "#,
        );
    }

    // ---- robustness --------------------------------------------------------------------------

    #[test]
    fn odd_events_and_deep_nesting() {
        cases(
            r#"
            {"detail": {"eventType": ["QUEUED"]}} | null | false
            ... | 1 | false
            ... | [] | false
            ... | {"detail": null} | false
            ... | {"detail": [1, "QUEUED"]} | false
            ... | [{"detail": {"eventType": "QUEUED"}}] | true
            "#,
        );
        let mut deep = json!("QUEUED");
        for _ in 0..MAX_DEPTH + 10 {
            deep = json!([deep]);
        }
        let pattern = Pattern::from_json_str(r#"{"x": ["QUEUED"]}"#).unwrap();
        assert!(
            !pattern.matches(&json!({ "x": deep })),
            "arrays beyond MAX_DEPTH are skipped"
        );
        let mut deep_pattern = json!({"x": [1]});
        for _ in 0..MAX_DEPTH + 5 {
            deep_pattern = json!({ "n": deep_pattern });
        }
        let e = Pattern::parse(&deep_pattern).unwrap_err().to_string();
        assert!(e.contains("nested more than 128 levels"), "{e}");
    }

    /// Random patterns and events built from operator-ish pieces: nothing may panic.
    #[test]
    fn random_inputs_never_panic() {
        const KEYS: &[&str] = &[
            "a",
            "b",
            "$or",
            "prefix",
            "suffix",
            "anything-but",
            "numeric",
            "exists",
            "cidr",
            "wildcard",
            "equals-ignore-case",
        ];
        const ATOMS: &[&str] = &[
            "null",
            "true",
            "0",
            "-1.5",
            "6e9",
            r#""""#,
            r#""a*b""#,
            r#""\\""#,
            r#""**""#,
            r#""é""#,
            r#""10.0.0.1""#,
            r#""::1""#,
            r#""10.0.0.0/8""#,
            r#"">""#,
            r#""<=""#,
            r#""=""#,
        ];
        fn build(depth: u32, next: &mut dyn FnMut() -> usize) -> Value {
            let r = next();
            match r % 4 {
                0 if depth > 0 => {
                    Value::Array((0..r % 5).map(|_| build(depth - 1, next)).collect())
                }
                1 if depth > 0 => Value::Object(
                    (0..r % 4)
                        .map(|_| (KEYS[next() % KEYS.len()].to_owned(), build(depth - 1, next)))
                        .collect(),
                ),
                _ => value(ATOMS[r % ATOMS.len()]),
            }
        }
        let mut seed = 0x9E37_79B9_7F4A_7C15_u64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed >> 16) as usize
        };
        let mut compiled = 0;
        for _ in 0..5000 {
            let (pattern, event) = (build(4, &mut next), build(4, &mut next));
            if let Ok(p) = Pattern::parse(&pattern) {
                compiled += 1;
                p.matches(&event);
            }
        }
        assert!(compiled > 50, "only {compiled} random patterns compiled");
    }
}
