//! Readers for archived events.
//!
//! A path is a `.json` file (one event or an array of events), a `.ndjson` / `.jsonl` file (one event
//! per line, blank lines skipped) or a directory (read recursively, files in name order). Every item
//! carries its `file:line`; a malformed item is reported and reading continues.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};

use serde_json::value::RawValue;

use super::envelope::Event;
use super::error::{EventError, EventErrorKind, SourceLoc};

/// One item read from the input: its location and either the event or why it is unusable.
#[derive(Debug)]
pub struct InputItem {
    pub loc: SourceLoc,
    pub event: Result<Event, EventError>,
}

/// File name endings that hold events.
fn kind_of(path: &Path) -> Option<FileKind> {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("json") => Some(FileKind::Json),
        Some("ndjson") | Some("jsonl") => Some(FileKind::Lines),
        // Gzip NDJSON: the Firehose capture (`…/capture/2025/06/10/…gz`) and `*.ndjson.gz`.
        Some("gz") => Some(FileKind::GzipLines),
        _ => None,
    }
}

#[derive(Clone, Copy)]
enum FileKind {
    Json,
    Lines,
    GzipLines,
}

/// Expand the given paths to the event files they name, in a stable order.
/// A path that does not exist is reported as an item error by [`read_paths`].
pub fn expand_paths(paths: &[PathBuf]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for p in paths {
        if p.is_dir() {
            let mut found = Vec::new();
            walk(p, &mut found);
            found.sort();
            out.extend(found);
        } else {
            out.push(p.clone());
        }
    }
    out
}

fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let hidden = path
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.starts_with('.'));
        if hidden {
            continue;
        }
        if path.is_dir() {
            walk(&path, out);
        } else if kind_of(&path).is_some() {
            out.push(path);
        }
    }
}

/// Read every event of every path, streaming line-oriented files.
pub fn read_paths(paths: &[PathBuf]) -> impl Iterator<Item = InputItem> {
    expand_paths(paths).into_iter().flat_map(read_file)
}

/// Read one file.
pub fn read_file(path: PathBuf) -> Box<dyn Iterator<Item = InputItem>> {
    let name = path.display().to_string();
    read_file_as(path, name)
}

/// Read one file, naming its items' locations `name` (e.g. the `s3://` object it was fetched from).
pub fn read_file_as(path: PathBuf, name: String) -> Box<dyn Iterator<Item = InputItem>> {
    let unreadable = |reason: String| -> Box<dyn Iterator<Item = InputItem>> {
        let err = EventError::new(EventErrorKind::Unreadable, None, reason);
        Box::new(std::iter::once(InputItem {
            loc: SourceLoc::new(name.clone(), 0),
            event: Err(err),
        }))
    };
    match kind_of(&path) {
        None if path.exists() => {
            unreadable("not an event file (expected .json, .ndjson or .jsonl)".into())
        }
        _ if !path.exists() => unreadable("no such file or directory".into()),
        Some(FileKind::Lines) | None => match File::open(&path) {
            Ok(file) => Box::new(read_lines(name.clone(), BufReader::new(file))),
            Err(e) => unreadable(format!("cannot open: {e}")),
        },
        Some(FileKind::GzipLines) => match File::open(&path) {
            Ok(file) => Box::new(read_lines(
                name.clone(),
                BufReader::new(flate2::read::MultiGzDecoder::new(file)),
            )),
            Err(e) => unreadable(format!("cannot open: {e}")),
        },
        Some(FileKind::Json) => match std::fs::read_to_string(&path) {
            Ok(text) => Box::new(read_json_document(&name, &text).into_iter()),
            Err(e) => unreadable(format!("cannot read: {e}")),
        },
    }
}

/// One event per line; blank lines skipped.
pub fn read_lines<R: BufRead>(file: String, reader: R) -> impl Iterator<Item = InputItem> {
    // A read error (an I/O failure, corrupt gzip) ends the file: reported once, never retried in a
    // loop.
    let mut failed = false;
    reader
        .lines()
        .enumerate()
        .map_while(move |(i, line)| {
            if failed {
                return None;
            }
            let loc = SourceLoc::new(file.clone(), i + 1);
            Some(match line {
                Err(e) => {
                    failed = true;
                    Some(InputItem {
                        loc: loc.clone(),
                        event: Err(EventError::new(
                            EventErrorKind::Unreadable,
                            None,
                            format!("cannot read line: {e}"),
                        )
                        .at(loc)),
                    })
                }
                Ok(text) if text.trim().is_empty() => None,
                Ok(text) => Some(InputItem {
                    event: Event::from_json_str(&text).map_err(|e| e.at(loc.clone())),
                    loc,
                }),
            })
        })
        .flatten()
}

/// A JSON document holding one event or an array of events; each array element is located at the
/// line where it starts.
pub fn read_json_document(file: &str, text: &str) -> Vec<InputItem> {
    let trimmed = text.trim_start();
    if trimmed.starts_with('[') {
        match serde_json::from_str::<Vec<&RawValue>>(text) {
            Ok(items) => items
                .into_iter()
                .map(|raw| {
                    let offset = raw.get().as_ptr() as usize - text.as_ptr() as usize;
                    let loc = SourceLoc::new(file, line_of(text, offset));
                    InputItem {
                        event: Event::from_json_str(raw.get()).map_err(|e| e.at(loc.clone())),
                        loc,
                    }
                })
                .collect(),
            Err(e) => vec![json_error(file, e)],
        }
    } else {
        let first_line = line_of(text, text.len() - trimmed.len());
        let loc = SourceLoc::new(file, first_line);
        match serde_json::from_str::<serde_json::Value>(text) {
            Ok(v) => vec![InputItem {
                event: Event::from_value(v).map_err(|e| e.at(loc.clone())),
                loc,
            }],
            Err(e) => vec![json_error(file, e)],
        }
    }
}

fn json_error(file: &str, e: serde_json::Error) -> InputItem {
    let loc = SourceLoc::new(file, e.line());
    let reason = format!(
        "invalid JSON: {}",
        crate::redact::redact_numbers(&e.to_string())
    );
    InputItem {
        event: Err(EventError::new(EventErrorKind::InvalidJson, None, reason).at(loc.clone())),
        loc,
    }
}

fn line_of(text: &str, offset: usize) -> usize {
    text.as_bytes()[..offset.min(text.len())]
        .iter()
        .filter(|&&b| b == b'\n')
        .count()
        + 1
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `.gz` file is gzip NDJSON; a corrupt one ends with one `Unreadable` item, never a loop.
    #[test]
    fn gzip_files_are_read_and_corrupt_ones_end_with_one_error() {
        use std::io::Write as _;
        let dir = std::env::temp_dir().join(format!("gz-input-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let good = dir.join("capture.gz");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        writeln!(gz, "{{\"not\": \"an event\"}}\n").unwrap();
        std::fs::write(&good, gz.finish().unwrap()).unwrap();
        let items: Vec<InputItem> = read_file(good.clone()).collect();
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].loc.to_string(), format!("{}:1", good.display()));
        let bad = dir.join("corrupt.gz");
        std::fs::write(&bad, b"\x1f\x8b\x08\x00 definitely not deflate data").unwrap();
        let items: Vec<InputItem> = read_file(bad).collect();
        assert_eq!(items.len(), 1, "{items:?}");
        assert!(items[0].event.is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }

    const ONE: &str = r#"{"id":"1","detail-type":"Amazon Connect Contact Event","source":"aws.connect","detail":{"eventType":"QUEUED","contactId":"c1"}}"#;

    #[test]
    fn ndjson_locations_and_blank_lines() {
        let text = format!("{ONE}\n\n{{broken\n{ONE}\n");
        let items: Vec<_> = read_lines("a.ndjson".into(), text.as_bytes()).collect();
        assert_eq!(items.len(), 3);
        assert_eq!(items[1].loc.to_string(), "a.ndjson:3");
        let err = items[1].event.as_ref().unwrap_err();
        assert!(
            err.to_string().starts_with("a.ndjson:3: invalid JSON"),
            "{err}"
        );
        assert_eq!(items[2].loc.line, 4);
    }

    #[test]
    fn json_array_elements_are_located() {
        let text = format!("[\n  {ONE},\n  {{\"source\": \"aws.connect\"}}\n]\n");
        let items = read_json_document("b.json", &text);
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].loc.line, 2);
        assert_eq!(items[1].loc.line, 3);
        assert!(items[1]
            .event
            .as_ref()
            .unwrap_err()
            .to_string()
            .contains("b.json:3"));
    }

    #[test]
    fn broken_json_document() {
        let items = read_json_document("c.json", "{\n \"a\": \n");
        assert_eq!(items.len(), 1);
        assert_eq!(
            items[0].event.as_ref().unwrap_err().kind,
            EventErrorKind::InvalidJson
        );
    }

    #[test]
    fn missing_path_is_reported() {
        let items: Vec<_> = read_paths(&[PathBuf::from("/nonexistent/x.ndjson")]).collect();
        assert_eq!(items.len(), 1);
        assert_eq!(
            items[0].event.as_ref().unwrap_err().kind,
            EventErrorKind::Unreadable
        );
    }
}
