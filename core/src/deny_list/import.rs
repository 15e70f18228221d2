//! Deny-list import and export files, and TTL strings.
//!
//! Import accepts CSV (`number[,reason[,ttl|expiresAt]]`, optional header row, quoted fields) or
//! JSON (an array of objects with `number` or `ContactNumber`, optional `reason`, `ttl`,
//! `expiresAt`). Rows that fail are reported with their line and reason; the others are imported.

use crate::redact::{redact_numbers, serde_reason};
use chrono::{DateTime, Duration, Utc};
use serde::Deserialize;

use super::intake::typed;
use super::model::{DenyEntry, EntrySource};
use super::number::mask;

/// Parse `30s`, `15m`, `8h`, `7d`, `2w` (a positive integer and a unit).
pub fn parse_ttl(text: &str) -> Result<Duration, String> {
    let t = text.trim();
    // Quoted back masked: a TTL column can hold a number pasted one column off.
    let shown = redact_numbers(t);
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: i64 = num
        .parse()
        .map_err(|_| format!("invalid TTL {shown:?}: expected e.g. 8h or 7d"))?;
    if n <= 0 {
        return Err(format!("invalid TTL {shown:?}: must be positive"));
    }
    let d = match unit {
        "s" => Duration::try_seconds(n),
        "m" => Duration::try_minutes(n),
        "h" => Duration::try_hours(n),
        "d" => Duration::try_days(n),
        "w" => Duration::try_weeks(n),
        _ => None,
    };
    d.filter(|d| *d <= Duration::days(3650))
        .ok_or_else(|| format!("invalid TTL {shown:?}: units s, m, h, d, w; at most 10 years"))
}

/// A rejected row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    pub line: usize,
    pub reason: String,
}

/// File formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ImportFormat {
    Csv,
    Json,
}

impl ImportFormat {
    /// By file name ending (`.json` → JSON, anything else CSV).
    pub fn from_path(path: &std::path::Path) -> ImportFormat {
        match path.extension().and_then(|e| e.to_str()) {
            Some(e) if e.eq_ignore_ascii_case("json") => ImportFormat::Json,
            _ => ImportFormat::Csv,
        }
    }
}

#[derive(Deserialize)]
struct JsonRow {
    #[serde(alias = "ContactNumber", alias = "contactNumber")]
    number: String,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    ttl: Option<String>,
    #[serde(default, alias = "expiresAt")]
    expires_at: Option<i64>,
}

/// Context shared by the rows of one import.
struct Row<'a> {
    default_region: Option<&'a str>,
    added_by: Option<&'a str>,
    strict: bool,
    now: DateTime<Utc>,
}

/// What an import file holds: the entries to write, the rejected rows, and the accepted rows
/// worth a second look ([`super::intake::UNKNOWN_RANGE`]).
#[derive(Debug, Clone, Default)]
pub struct Parsed {
    pub entries: Vec<DenyEntry>,
    pub errors: Vec<RowError>,
    pub warnings: Vec<RowError>,
}

impl Row<'_> {
    fn entry(
        &self,
        number: &str,
        reason: Option<String>,
        ttl: Option<&str>,
        expires_at: Option<i64>,
    ) -> Result<(DenyEntry, Option<&'static str>), String> {
        let accepted = typed(number, self.default_region, self.strict)
            .map_err(|e| format!("number {}: {e}", mask(number)))?;
        let expires = match (ttl.map(str::trim).filter(|t| !t.is_empty()), expires_at) {
            (Some(t), _) if t.chars().all(|c| c.is_ascii_digit()) => t.parse().ok(),
            (Some(t), _) => Some((self.now + parse_ttl(t)?).timestamp()),
            (None, e) => e,
        };
        let mut entry = DenyEntry::new(accepted.number);
        entry.reason = reason.filter(|r| !r.trim().is_empty());
        entry.source = Some(EntrySource::Import);
        entry.added_by = self.added_by.map(str::to_string);
        entry.added_at = Some(self.now);
        entry.expires_at = expires;
        Ok((entry, accepted.warning))
    }
}

/// Parse an import file into entries (source `import`), row errors and row warnings. Numbers are
/// typed input ([`super::intake::typed`]); `strict` refuses those the metadata does not know.
pub fn parse_import(
    text: &str,
    format: ImportFormat,
    default_region: Option<&str>,
    added_by: Option<&str>,
    strict: bool,
    now: DateTime<Utc>,
) -> Parsed {
    let mut parsed = Parsed::default();
    let row = Row {
        default_region,
        added_by,
        strict,
        now,
    };
    let mut push =
        |line: usize, result: Result<(DenyEntry, Option<&'static str>), String>| match result {
            Ok((entry, warning)) => {
                if let Some(w) = warning {
                    parsed.warnings.push(RowError {
                        line,
                        reason: format!("number {}: {w}", entry.number.masked()),
                    });
                }
                parsed.entries.push(entry);
            }
            Err(reason) => parsed.errors.push(RowError { line, reason }),
        };
    match format {
        ImportFormat::Json => match serde_json::from_str::<Vec<serde_json::Value>>(text) {
            Err(e) => push(
                e.line(),
                Err(format!("invalid JSON: {}", serde_reason(&e.to_string()))),
            ),
            Ok(rows) => {
                let lines = element_lines(text);
                for (i, value) in rows.into_iter().enumerate() {
                    let line = lines.get(i).copied().unwrap_or(1);
                    match serde_path_to_error::deserialize::<_, JsonRow>(value) {
                        Ok(r) => push(
                            line,
                            row.entry(&r.number, r.reason, r.ttl.as_deref(), r.expires_at),
                        ),
                        Err(e) => {
                            let field = e.path().to_string();
                            let reason = serde_reason(&e.into_inner().to_string());
                            let at = if field == "." {
                                String::new()
                            } else {
                                format!(" field `{field}`")
                            };
                            push(line, Err(format!("element {}{at}: {reason}", i + 1)));
                        }
                    }
                }
            }
        },
        ImportFormat::Csv => {
            let mut reader = csv::ReaderBuilder::new()
                .has_headers(false)
                .flexible(true)
                .trim(csv::Trim::All)
                .from_reader(text.as_bytes());
            for (i, record) in reader.records().enumerate() {
                let line = record
                    .as_ref()
                    .ok()
                    .and_then(|r| r.position())
                    .map_or(i + 1, |p| p.line() as usize);
                let record = match record {
                    Ok(r) => r,
                    Err(e) => {
                        push(
                            line,
                            Err(format!("invalid CSV: {}", redact_numbers(&e.to_string()))),
                        );
                        continue;
                    }
                };
                let number = record.get(0).unwrap_or_default();
                if number.is_empty() || number.starts_with('#') {
                    continue;
                }
                if i == 0 && number.chars().all(|c| c.is_ascii_alphabetic() || c == '_') {
                    continue; // header row
                }
                push(
                    line,
                    row.entry(
                        number,
                        record.get(1).map(str::to_string),
                        record.get(2),
                        None,
                    ),
                );
            }
        }
    }
    parsed
}

/// The line on which each element of a top-level JSON array starts (1-based), for `file:line`.
fn element_lines(text: &str) -> Vec<usize> {
    let mut lines = Vec::new();
    let (mut line, mut depth, mut in_string, mut escaped, mut expect) =
        (1, 0usize, false, false, false);
    for c in text.chars() {
        if c == '\n' {
            line += 1;
        }
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        if c.is_whitespace() {
            continue;
        }
        if expect && depth == 1 && c != ']' {
            lines.push(line);
            expect = false;
        }
        match c {
            '"' => in_string = true,
            '[' | '{' => {
                depth += 1;
                expect = depth == 1;
            }
            ']' | '}' => depth = depth.saturating_sub(1),
            ',' if depth == 1 => expect = true,
            _ => {}
        }
    }
    lines
}

/// Export as CSV with a header (`number,reason,addedBy,source,addedAt,expiresAt,hitCount,lastHitAt`).
pub fn to_csv(entries: &[DenyEntry]) -> String {
    let mut w = csv::Writer::from_writer(Vec::new());
    let _ = w.write_record([
        "number",
        "reason",
        "addedBy",
        "source",
        "addedAt",
        "expiresAt",
        "hitCount",
        "lastHitAt",
    ]);
    for e in entries {
        let _ = w.write_record([
            e.number.as_str().to_string(),
            e.reason.clone().unwrap_or_default(),
            e.added_by.clone().unwrap_or_default(),
            e.source
                .as_ref()
                .map(|s| s.as_str().to_string())
                .unwrap_or_default(),
            e.added_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
            e.expires_at.map(|t| t.to_string()).unwrap_or_default(),
            e.hit_count.to_string(),
            e.last_hit_at.map(|t| t.to_rfc3339()).unwrap_or_default(),
        ]);
    }
    String::from_utf8(w.into_inner().unwrap_or_default()).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_rows_are_reported_at_their_line_and_field_without_the_value() {
        let text = "[\n  {\"number\": \"+14255550100\"},\n  {\"number\": 14255550199,\n   \"reason\": \"a, [b] {c} \\\"q\\\"\"},\n  [1, 2], {\"number\": \"+1 (425) 555-0188\", \"ttl\": \"+1 (425) 555-0177\"}\n]";
        assert_eq!(element_lines(text), vec![2, 3, 5, 5]);
        let Parsed {
            entries, errors, ..
        } = parse_import(text, ImportFormat::Json, None, None, false, Utc::now());
        assert_eq!(entries.len(), 1);
        let got: Vec<(usize, &str)> = errors.iter().map(|e| (e.line, e.reason.as_str())).collect();
        assert_eq!(
            got,
            vec![
                (
                    3,
                    "element 2 field `number`: invalid type: integer, expected a string"
                ),
                (
                    5,
                    "element 3 field `[0]`: invalid type: integer, expected a string"
                ),
                (
                    5,
                    "invalid TTL \"+1 (4**) ***-**77\": expected e.g. 8h or 7d"
                ),
            ]
        );
    }

    #[test]
    fn ttl() {
        assert_eq!(parse_ttl("8h").unwrap(), Duration::hours(8));
        assert_eq!(parse_ttl("7d").unwrap(), Duration::days(7));
        assert!(parse_ttl("7").is_err());
        assert!(parse_ttl("0d").is_err());
        assert!(parse_ttl("x").is_err());
        assert!(parse_ttl("99999w").is_err());
    }

    #[test]
    fn csv_rows_and_errors_with_lines() {
        let now = Utc::now();
        let text = "number,reason,ttl\n+1 425-555-0100,\"abuse, repeated\",7d\nnot a number,x\n\n+442079460018\n+14255550123,spam,soon\n";
        let Parsed {
            entries, errors, ..
        } = parse_import(text, ImportFormat::Csv, None, Some("ops"), false, now);
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[0].number.as_str(), "+14255550100");
        assert_eq!(entries[0].reason.as_deref(), Some("abuse, repeated"));
        assert_eq!(
            entries[0].expires_at,
            Some((now + Duration::days(7)).timestamp())
        );
        assert_eq!(entries[1].expires_at, None);
        assert_eq!(
            errors.iter().map(|e| e.line).collect::<Vec<_>>(),
            vec![3, 6]
        );
        assert!(!errors[0].reason.contains("not a number") || errors[0].reason.contains('*'));
    }

    #[test]
    fn json_rows() {
        let text = r#"[{"ContactNumber": "+14255550100"}, {"number": "12"}, {"nope": 1}, {"number": "+14255550123", "expiresAt": 1900000000}]"#;
        let Parsed {
            entries, errors, ..
        } = parse_import(text, ImportFormat::Json, None, None, false, Utc::now());
        assert_eq!(entries.len(), 2);
        assert_eq!(entries[1].expires_at, Some(1_900_000_000));
        // One line holds them all: the element's position says which.
        assert_eq!(
            errors.iter().map(|e| e.line).collect::<Vec<_>>(),
            vec![1, 1]
        );
        assert!(
            errors[0].reason.starts_with("number **: "),
            "{}",
            errors[0].reason
        );
        assert!(
            errors[1]
                .reason
                .starts_with("element 3: missing field `number`"),
            "{}",
            errors[1].reason
        );
    }

    #[test]
    fn spoofed_numbers_import_with_a_warning_and_strict_refuses_them() {
        let text = "+11234567890,spoofed\n+1 (555) 555-5555,spoofed\n+14255550100,known\n";
        let lenient = parse_import(text, ImportFormat::Csv, None, None, false, Utc::now());
        assert_eq!(lenient.entries.len(), 3);
        assert!(lenient.errors.is_empty(), "{:?}", lenient.errors);
        let lines: Vec<usize> = lenient.warnings.iter().map(|w| w.line).collect();
        assert_eq!(lines, vec![1, 2]);
        assert!(lenient.warnings[0].reason.contains("+11*******90"));
        assert!(!lenient.warnings[1].reason.contains("5555555"));
        let strict = parse_import(text, ImportFormat::Csv, None, None, true, Utc::now());
        assert_eq!(strict.entries.len(), 1);
        assert_eq!(
            strict.errors.iter().map(|e| e.line).collect::<Vec<_>>(),
            vec![1, 2]
        );
    }

    #[test]
    fn csv_export_round_trips() {
        let entries = parse_import(
            "+14255550100,\"a,b\"\n",
            ImportFormat::Csv,
            None,
            None,
            false,
            Utc::now(),
        )
        .entries;
        let out = to_csv(&entries);
        let Parsed {
            entries: back,
            errors,
            ..
        } = parse_import(&out, ImportFormat::Csv, None, None, false, Utc::now());
        assert!(errors.is_empty(), "{errors:?}");
        assert_eq!(back[0].number, entries[0].number);
        assert_eq!(back[0].reason, entries[0].reason);
    }
}
