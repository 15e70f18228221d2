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
        let reason = crate::redact::serde_reason(&message);
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
    #[test]
    fn serde_reasons_never_carry_a_number_in_clear() {
        let v = serde_json::json!({"Details": {"ContactData": {"CustomerEndpoint": {"Address": 14255550100u64}}}});
        let e = crate::event::flow::FlowInvocation::from_value(&v).unwrap_err();
        assert!(!e.to_string().contains("4255550100"), "{e}");
        let v = serde_json::json!({"Details": {"ContactData": {"CustomerEndpoint": "+1 (425) 555-0199"}}});
        let e = crate::event::flow::FlowInvocation::from_value(&v).unwrap_err();
        assert!(!e.to_string().contains("555"), "{e}");
    }
}
