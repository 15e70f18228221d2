//! Reading CTR and agent-event archives: NDJSON (one record per line), JSON (an array of records,
//! one record, or a saved Lambda Kinesis event whose `Records[].kinesis.data` is base64), files or
//! directories (recursively, in name order). Every record comes with where it was found.

use std::path::{Path, PathBuf};

use base64::Engine as _;
use serde_json::Value;

/// One record, or why there is none, at `file:line` (`#n`: the n-th record of a JSON document).
#[derive(Debug)]
pub struct RecordItem {
    pub location: String,
    pub record: Result<Value, String>,
}

/// Every record of `paths`.
pub fn read_records(paths: &[PathBuf]) -> Vec<RecordItem> {
    let mut out = Vec::new();
    for path in paths {
        read_path(path, &mut out);
    }
    out
}

fn read_path(path: &Path, out: &mut Vec<RecordItem>) {
    let shown = path.display().to_string();
    let bad = |out: &mut Vec<RecordItem>, reason: String| {
        out.push(RecordItem {
            location: shown.clone(),
            record: Err(reason),
        })
    };
    let meta = match std::fs::metadata(path) {
        Ok(m) => m,
        Err(e) => return bad(out, format!("cannot read: {e}")),
    };
    if meta.is_dir() {
        let mut entries: Vec<PathBuf> = match std::fs::read_dir(path) {
            Ok(rd) => rd.flatten().map(|e| e.path()).collect(),
            Err(e) => return bad(out, format!("cannot list: {e}")),
        };
        entries.sort();
        for e in entries {
            read_path(&e, out);
        }
        return;
    }
    if !meta.is_file() {
        return bad(out, "not a regular file".into());
    }
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) => return bad(out, format!("cannot read: {e}")),
    };
    let text = text.strip_prefix('\u{feff}').unwrap_or(&text);
    let json_doc = path.extension().is_some_and(|e| e == "json");
    if json_doc {
        match serde_json::from_str::<Value>(text) {
            Ok(v) => records_of(&shown, v, out),
            Err(e) => out.push(RecordItem {
                location: format!("{shown}:{}", e.line()),
                record: Err(format!(
                    "invalid JSON: {}",
                    crate::redact::redact_numbers(&e.to_string())
                )),
            }),
        }
        return;
    }
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let location = format!("{shown}:{}", i + 1);
        match serde_json::from_str::<Value>(line) {
            Ok(v) if v.get("Records").is_some() => records_of(&location, v, out),
            Ok(v) => out.push(RecordItem {
                location,
                record: Ok(v),
            }),
            Err(e) => out.push(RecordItem {
                location,
                record: Err(format!(
                    "invalid JSON: {}",
                    crate::redact::redact_numbers(&e.to_string())
                )),
            }),
        }
    }
}

/// The records of one JSON document.
fn records_of(location: &str, v: Value, out: &mut Vec<RecordItem>) {
    match v {
        Value::Array(items) => {
            for (i, item) in items.into_iter().enumerate() {
                out.push(RecordItem {
                    location: format!("{location}#{}", i + 1),
                    record: Ok(item),
                });
            }
        }
        Value::Object(ref map) if map.get("Records").is_some_and(Value::is_array) => {
            let records = map["Records"].as_array().cloned().unwrap_or_default();
            for (i, r) in records.into_iter().enumerate() {
                let at = format!(
                    "{location}#{} (sequence {})",
                    i + 1,
                    r["kinesis"]["sequenceNumber"].as_str().unwrap_or("?")
                );
                let record = r["kinesis"]["data"]
                    .as_str()
                    .ok_or_else(|| "Kinesis record without kinesis.data".to_string())
                    .and_then(|d| {
                        base64::engine::general_purpose::STANDARD
                            .decode(d)
                            .map_err(|e| format!("kinesis.data is not base64: {e}"))
                    })
                    .and_then(|bytes| {
                        serde_json::from_slice::<Value>(&bytes).map_err(|e| {
                            format!(
                                "kinesis.data is not JSON: {}",
                                crate::redact::redact_numbers(&e.to_string())
                            )
                        })
                    });
                out.push(RecordItem {
                    location: at,
                    record,
                });
            }
        }
        other => out.push(RecordItem {
            location: location.to_string(),
            record: Ok(other),
        }),
    }
}

/// Whether a file holds streamed records (contact records, agent events, or a saved Lambda Kinesis
/// event) rather than EventBridge events: judged by its first JSON value (the first non-blank line
/// of NDJSON, the document or the first element of an array). A file that cannot be read is not.
pub fn holds_stream_records(path: &Path) -> bool {
    use std::io::BufRead;
    let Ok(file) = std::fs::File::open(path) else {
        return false;
    };
    let first: Option<Value> = if path.extension().is_some_and(|e| e == "json") {
        match serde_json::from_reader::<_, Value>(std::io::BufReader::new(file)) {
            Ok(Value::Array(items)) => items.into_iter().next(),
            Ok(v) => Some(v),
            Err(_) => None,
        }
    } else {
        std::io::BufReader::new(file)
            .lines()
            .map_while(Result::ok)
            .find(|l| !l.trim().is_empty())
            .and_then(|l| serde_json::from_str(l.trim_start_matches('\u{feff}')).ok())
    };
    let Some(v) = first else { return false };
    let is_event = v.get("detail-type").is_some() || v.get("detail").is_some();
    let is_kinesis = v.pointer("/Records/0/kinesis").is_some();
    !is_event && (is_kinesis || v.get("ContactId").is_some() || v.get("AgentARN").is_some())
}
