//! Capture → replay: what the deployed system saw, exported as a local replay archive.
//!
//! The template's capture rule sends every `aws.connect` event to a CloudWatch Logs group, one
//! event (the JSON EventBridge delivered, unchanged) per log event. [`export`] reads a window of it
//! page by page through a [`CapturedEvents`] port and writes NDJSON: one event per line, exactly
//! as captured, each `id` once (EventBridge delivers at least once), ordered by the event's `time`
//! (then `id`). Memory is bounded: a reorder buffer of [`REORDER_WINDOW_MS`] of events and a
//! 128-bit digest per distinct id — never the whole window.
//!
//! Copies of events made by an EventBridge replay carry a top-level `replay-name`: a plain export
//! leaves them out (they are not what the system saw live); [`export_replay`] keeps only the copies
//! of one replay and writes them without that field, as the events were archived ([`archive`]
//! starts that replay: the deployed archive becomes a local file).

pub mod archive;

use std::collections::{BTreeMap, HashSet};
use std::hash::{BuildHasher, Hasher};
use std::io::Write;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::Deserialize;

use crate::error::{HandlerError, PortError};

/// How far out of order captured events may come back from the store and still be written in time
/// order. CloudWatch Logs returns events sorted by timestamp per page; EventBridge's retries of a
/// delivery arrive within minutes.
pub const REORDER_WINDOW_MS: i64 = 5 * 60 * 1000;

/// Most malformed records kept for the summary (the rest are counted).
pub const MAX_REPORTED: usize = 100;

/// One captured log event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CapturedEvent {
    /// The log event's timestamp (ms) and stream: where to find it again.
    pub timestamp_ms: i64,
    pub stream: String,
    /// The event JSON as captured.
    pub message: String,
}

/// A page of captured events and the token of the next one.
#[derive(Debug, Clone, Default)]
pub struct CapturePage {
    pub events: Vec<CapturedEvent>,
    pub next: Option<String>,
}

/// Where captured events are read from (CloudWatch Logs: `FilterLogEvents`).
#[async_trait]
pub trait CapturedEvents: Send + Sync {
    /// The page of `log_group` in `start_ms..=end_ms` after `token`.
    async fn page(
        &self,
        log_group: &str,
        start_ms: i64,
        end_ms: i64,
        token: Option<String>,
    ) -> Result<CapturePage, PortError>;
}

/// A captured record that is not an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadRecord {
    pub stream: String,
    pub timestamp_ms: i64,
    pub reason: String,
}

/// What an export did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportSummary {
    pub read: usize,
    pub written: usize,
    pub duplicates: usize,
    /// Events left out: replayed copies (plain export), or events not of the replay exported.
    pub skipped: usize,
    pub malformed: usize,
    /// The first [`MAX_REPORTED`] malformed records.
    pub bad: Vec<BadRecord>,
    pub pages: usize,
}

#[derive(Deserialize)]
struct Keys {
    id: String,
    time: DateTime<Utc>,
    #[serde(default, rename = "replay-name")]
    replay_name: Option<String>,
}

/// The top-level field EventBridge adds to a replayed copy of an event.
const REPLAY_NAME: &str = "replay-name";

/// Export `log_group`'s events of `start..=end` to `out`, leaving out replayed copies; `progress`
/// is called after each page.
pub async fn export(
    source: &dyn CapturedEvents,
    log_group: &str,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    out: &mut dyn Write,
    progress: &mut dyn FnMut(&ExportSummary),
) -> Result<ExportSummary, HandlerError> {
    let range = (start.timestamp_millis(), end.timestamp_millis());
    export_ranges(source, log_group, &[range], None, out, progress).await
}

/// Export the copies replay `replay_name` delivered to `log_group`, without their `replay-name`,
/// from the log-event time ranges `ranges` (ms, inclusive) in turn: each `id` once, time-ordered.
pub async fn export_replay(
    source: &dyn CapturedEvents,
    log_group: &str,
    ranges: &[(i64, i64)],
    replay_name: &str,
    out: &mut dyn Write,
    progress: &mut dyn FnMut(&ExportSummary),
) -> Result<ExportSummary, HandlerError> {
    export_ranges(source, log_group, ranges, Some(replay_name), out, progress).await
}

/// `line` without its top-level `replay-name`, the rest byte for byte when the field can be cut
/// out of the text (checked by parsing both), else re-serialized.
fn without_replay_name(line: &str) -> Option<String> {
    let mut expected: serde_json::Value = serde_json::from_str(line).ok()?;
    expected.as_object_mut()?.remove(REPLAY_NAME)?;
    // The field as it stands in the text (the top-level one: a nested `replay-name` does not
    // pass the check), with the comma that joined it to its neighbour.
    let key = format!("\"{REPLAY_NAME}\"");
    let cut = |at: usize| -> Option<String> {
        let colon = line[at + key.len()..].trim_start().strip_prefix(':')?;
        let value_at = line.len() - colon.len();
        let mut values =
            serde_json::Deserializer::from_str(&line[value_at..]).into_iter::<serde_json::Value>();
        values.next()?.ok()?;
        let (mut from, mut to) = (at, value_at + values.byte_offset());
        let rest = line[to..].trim_start();
        if let Some(after_comma) = rest.strip_prefix(',') {
            to = line.len() - after_comma.len();
        } else {
            from = line[..from].trim_end().strip_suffix(',')?.len();
        }
        let text = format!("{}{}", &line[..from], &line[to..]);
        (serde_json::from_str::<serde_json::Value>(&text).ok()? == expected).then_some(text)
    };
    line.match_indices(&key)
        .find_map(|(at, _)| cut(at))
        .or_else(|| serde_json::to_string(&expected).ok())
}

/// The line `event` adds to the export — its time (ms), id and text — or `None` (counted in
/// `summary`): not an event, not of `replay` (a replayed copy in a plain export), or an `id` seen.
fn select(
    event: CapturedEvent,
    replay: Option<&str>,
    seen: &mut IdDigests,
    summary: &mut ExportSummary,
) -> Option<(i64, String, String)> {
    summary.read += 1;
    let message = event.message.trim_end_matches(['\n', '\r']);
    let keys = match serde_json::from_str::<Keys>(message) {
        Ok(k) => k,
        Err(e) => {
            summary.malformed += 1;
            if summary.bad.len() < MAX_REPORTED {
                summary.bad.push(BadRecord {
                    stream: event.stream,
                    timestamp_ms: event.timestamp_ms,
                    reason: format!(
                        "not an EventBridge event: {}",
                        crate::redact::serde_reason(&e.to_string())
                    ),
                });
            }
            return None;
        }
    };
    if keys.replay_name.as_deref() != replay {
        summary.skipped += 1;
        return None;
    }
    if !seen.insert(&keys.id) {
        summary.duplicates += 1;
        return None;
    }
    let line = match replay {
        Some(_) => without_replay_name(message).unwrap_or_else(|| message.to_string()),
        None => message.to_string(),
    };
    Some((keys.time.timestamp_millis(), keys.id, line))
}

async fn export_ranges(
    source: &dyn CapturedEvents,
    log_group: &str,
    ranges: &[(i64, i64)],
    replay: Option<&str>,
    out: &mut dyn Write,
    progress: &mut dyn FnMut(&ExportSummary),
) -> Result<ExportSummary, HandlerError> {
    let mut summary = ExportSummary::default();
    let mut seen = IdDigests::default();
    // (time ms, id) → line, flushed once older than the newest time by the reorder window.
    let mut buffer: BTreeMap<(i64, String), String> = BTreeMap::new();
    let mut newest = i64::MIN;
    let write = |line: &str, out: &mut dyn Write| {
        out.write_all(line.as_bytes())
            .and_then(|()| out.write_all(b"\n"))
            .map_err(|e| HandlerError::Config(format!("writing the export: {e}")))
    };
    for &(start_ms, end_ms) in ranges {
        let mut token = None;
        loop {
            let page = source
                .page(log_group, start_ms, end_ms, token.take())
                .await?;
            summary.pages += 1;
            for event in page.events {
                if let Some((at, id, line)) = select(event, replay, &mut seen, &mut summary) {
                    newest = newest.max(at);
                    buffer.insert((at, id), line);
                }
            }
            while let Some(entry) = buffer.first_entry() {
                if entry.key().0 >= newest.saturating_sub(REORDER_WINDOW_MS) {
                    break;
                }
                write(&entry.remove(), out)?;
                summary.written += 1;
            }
            progress(&summary);
            match page.next {
                Some(next) => token = Some(next),
                None => break,
            }
        }
    }
    for (_, line) in std::mem::take(&mut buffer) {
        write(&line, out)?;
        summary.written += 1;
    }
    out.flush()
        .map_err(|e| HandlerError::Config(format!("writing the export: {e}")))?;
    Ok(summary)
}

/// Distinct ids as 128-bit digests (two independently keyed SipHash values): 16 bytes an id.
#[derive(Default)]
struct IdDigests {
    keys: (
        std::collections::hash_map::RandomState,
        std::collections::hash_map::RandomState,
    ),
    seen: HashSet<u128>,
}

impl IdDigests {
    fn insert(&mut self, id: &str) -> bool {
        let half = |s: &std::collections::hash_map::RandomState| {
            let mut h = s.build_hasher();
            h.write(id.as_bytes());
            h.finish()
        };
        let digest = (u128::from(half(&self.keys.0)) << 64) | u128::from(half(&self.keys.1));
        self.seen.insert(digest)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    struct Pages(Mutex<Vec<CapturePage>>);

    #[async_trait]
    impl CapturedEvents for Pages {
        async fn page(
            &self,
            _: &str,
            _: i64,
            _: i64,
            _: Option<String>,
        ) -> Result<CapturePage, PortError> {
            Ok(self.0.lock().unwrap().remove(0))
        }
    }

    fn event(id: &str, time: &str) -> CapturedEvent {
        CapturedEvent {
            timestamp_ms: 0,
            stream: "s".into(),
            message: format!(r#"{{"id":"{id}","time":"{time}","detail":{{}}}}"#),
        }
    }

    #[tokio::test]
    async fn pages_are_deduplicated_ordered_and_bad_records_reported() {
        let pages = Pages(Mutex::new(vec![
            CapturePage {
                events: vec![
                    event("b", "2025-06-10T13:00:02Z"),
                    event("a", "2025-06-10T13:00:01Z"),
                    CapturedEvent {
                        timestamp_ms: 7,
                        stream: "s".into(),
                        message: "+1 (425) 555-0199".into(),
                    },
                ],
                next: Some("t".into()),
            },
            CapturePage {
                events: vec![
                    event("a", "2025-06-10T13:00:01Z"),
                    event("c", "2025-06-10T13:20:00Z"),
                ],
                next: None,
            },
        ]));
        let mut out = Vec::new();
        let start = Utc::now();
        let summary = export(&pages, "g", start, start, &mut out, &mut |_| {})
            .await
            .unwrap();
        let text = String::from_utf8(out).unwrap();
        let ids: Vec<&str> = text.lines().map(|l| &l[7..8]).collect();
        assert_eq!(ids, ["a", "b", "c"]);
        assert_eq!(
            (
                summary.read,
                summary.written,
                summary.duplicates,
                summary.malformed
            ),
            (5, 3, 1, 1)
        );
        assert_eq!(summary.bad[0].timestamp_ms, 7);
        assert!(
            !summary.bad[0].reason.contains("555"),
            "{}",
            summary.bad[0].reason
        );
    }
    #[test]
    fn a_replayed_copy_loses_only_its_replay_name() {
        let original = r#"{"version":"0","id":"e1","detail-type":"x","time":"2026-12-01T10:00:00Z","detail":{"replay-name":"kept"}}"#;
        for copy in [
            r#"{"version":"0","id":"e1","detail-type":"x","time":"2026-12-01T10:00:00Z","detail":{"replay-name":"kept"},"replay-name":"r1"}"#,
            r#"{"replay-name": "r1", "version":"0","id":"e1","detail-type":"x","time":"2026-12-01T10:00:00Z","detail":{"replay-name":"kept"}}"#,
        ] {
            let cut = without_replay_name(copy).unwrap();
            let parsed: serde_json::Value = serde_json::from_str(&cut).unwrap();
            assert_eq!(
                parsed,
                serde_json::from_str::<serde_json::Value>(original).unwrap()
            );
            assert!(!cut.contains("\"r1\""), "{cut}");
        }
        // Cut out of the text, the rest unchanged byte for byte.
        assert_eq!(
            without_replay_name(&original.replace("}}", r#"},"replay-name":"r1"}"#)).unwrap(),
            original
        );
        assert_eq!(without_replay_name(original), None, "not a replayed copy");
    }

    #[tokio::test]
    async fn a_plain_export_leaves_replayed_copies_out_and_a_replay_export_keeps_only_its_own() {
        let copy = |id: &str, replay: &str| CapturedEvent {
            timestamp_ms: 0,
            stream: "s".into(),
            message: format!(
                r#"{{"id":"{id}","time":"2025-06-10T13:00:01Z","detail":{{}},"replay-name":"{replay}"}}"#
            ),
        };
        let pages = || {
            Pages(Mutex::new(vec![CapturePage {
                events: vec![
                    event("live", "2025-06-10T13:00:00Z"),
                    copy("a", "mine"),
                    copy("a", "mine"),
                    copy("b", "other"),
                ],
                next: None,
            }]))
        };
        let mut out = Vec::new();
        let start = Utc::now();
        let plain = export(&pages(), "g", start, start, &mut out, &mut |_| {})
            .await
            .unwrap();
        assert_eq!((plain.written, plain.skipped), (1, 3));
        let mut out = Vec::new();
        let mine = export_replay(&pages(), "g", &[(0, 1)], "mine", &mut out, &mut |_| {})
            .await
            .unwrap();
        assert_eq!((mine.written, mine.duplicates, mine.skipped), (1, 1, 2));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "{\"id\":\"a\",\"time\":\"2025-06-10T13:00:01Z\",\"detail\":{}}\n"
        );
    }
}
