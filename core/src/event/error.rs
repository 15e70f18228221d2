use std::fmt;

/// Where an input came from: `file:line` (line is 1-based; 0 when unknown).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub struct SourceLoc {
    pub file: String,
    pub line: usize,
}

impl SourceLoc {
    pub fn new(file: impl Into<String>, line: usize) -> Self {
        SourceLoc {
            file: file.into(),
            line,
        }
    }
}

impl fmt::Display for SourceLoc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file, self.line)
    }
}

/// What kind of problem made an input unusable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventErrorKind {
    /// Not JSON at all (syntax error, truncated input).
    InvalidJson,
    /// JSON, but a required field is missing.
    MissingField,
    /// JSON, but a field has the wrong type or an unusable value.
    InvalidField,
    /// A file could not be read.
    Unreadable,
}

/// A malformed event: what is wrong, in which field, and where the input came from.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct EventError {
    pub kind: EventErrorKind,
    /// Dotted path of the offending field, e.g. `detail.contactId`.
    pub field: Option<String>,
    pub reason: String,
    pub location: Option<SourceLoc>,
}

impl EventError {
    pub fn new(kind: EventErrorKind, field: Option<String>, reason: impl Into<String>) -> Self {
        EventError {
            kind,
            field,
            reason: reason.into(),
            location: None,
        }
    }

    pub fn missing(field: &str) -> Self {
        Self::new(
            EventErrorKind::MissingField,
            Some(field.to_string()),
            format!("missing field `{field}`"),
        )
    }

    pub fn invalid(field: &str, reason: impl Into<String>) -> Self {
        Self::new(
            EventErrorKind::InvalidField,
            Some(field.to_string()),
            reason,
        )
    }

    /// Attach (or replace) the source location.
    pub fn at(mut self, loc: SourceLoc) -> Self {
        self.location = Some(loc);
        self
    }

    /// Build from a `serde_path_to_error` failure, prefixing the path (e.g. `detail`).
    pub(crate) fn from_path_error(
        prefix: &str,
        err: serde_path_to_error::Error<serde_json::Error>,
    ) -> Self {
        let path = err.path().to_string();
        let inner = err.into_inner();
        let message = inner.to_string();
        // serde reports a missing field at the parent path; name the field itself.
        if let Some(name) = message
            .strip_prefix("missing field `")
            .and_then(|m| m.split('`').next())
        {
            let field = join_path(prefix, &join_path(&path, name));
            return EventError::missing(&field);
        }
        let field = join_path(prefix, &path);
        let reason = redact_digit_runs(&strip_position(&message));
        EventError::new(EventErrorKind::InvalidField, Some(field), reason)
    }
}

fn join_path(prefix: &str, path: &str) -> String {
    let prefix = if prefix == "." { "" } else { prefix };
    match (prefix.is_empty(), path.is_empty() || path == ".") {
        (_, true) => prefix.to_string(),
        (true, false) => path.to_string(),
        (false, false) => format!("{prefix}.{path}"),
    }
}

/// serde quotes the offending value ("invalid type: integer `14255550100`"), which can be a caller's
/// number: mask every run of five or more digits, keeping its first two and last two.
pub(crate) fn redact_digit_runs(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut run = String::new();
    let flush = |run: &mut String, out: &mut String| {
        if run.len() >= 5 {
            out.push_str(&run[..2]);
            out.extend(std::iter::repeat_n('*', run.len() - 4));
            out.push_str(&run[run.len() - 2..]);
        } else {
            out.push_str(run);
        }
        run.clear();
    };
    for c in text.chars() {
        if c.is_ascii_digit() {
            run.push(c);
        } else {
            flush(&mut run, &mut out);
            out.push(c);
        }
    }
    flush(&mut run, &mut out);
    out
}

/// serde_json appends " at line 1 column 20" for errors from a string; our locations come from the
/// source file instead.
fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) if message[i..].contains(" column ") => message[..i].to_string(),
        _ => message.to_string(),
    }
}

impl fmt::Display for EventError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(loc) = &self.location {
            write!(f, "{loc}: ")?;
        }
        match &self.field {
            Some(field) if !self.reason.contains(&format!("`{field}`")) => {
                write!(f, "field `{field}`: {}", self.reason)
            }
            _ => f.write_str(&self.reason),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_reasons_never_carry_a_number_in_clear() {
        assert_eq!(
            redact_digit_runs("invalid type: integer `14255550100`"),
            "invalid type: integer `14*******00`"
        );
        assert_eq!(
            redact_digit_runs("string \"+1 425 555 0100\" at 2025"),
            "string \"+1 425 555 0100\" at 2025"
        );
        let v = serde_json::json!({"Details": {"ContactData": {"CustomerEndpoint": {"Address": 14255550100u64}}}});
        let e = crate::event::flow::FlowInvocation::from_value(&v).unwrap_err();
        assert!(!e.to_string().contains("4255550100"), "{e}");
    }
}
