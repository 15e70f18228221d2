//! Flow-log archive of one contact (or several related contacts, e.g. a transfer chain): gzip-compressed NDJSON,
//! one canonical JSON object per `\n`-terminated line (see [`FlowLogEntry::canonical_json`]).
//!
//! * **Dedupe.** Flow logs are delivered at least once (reference `amazon-connect.md` §3.1). Two entries with the
//!   same canonical JSON are the same log event; the archive keeps one. The comparison is exact: an index from a
//!   64-bit keyed hash (SipHash with per-builder random keys, so not craftable) to the stored entry, and a hit is
//!   confirmed by comparing the strings.
//! * **Order.** Lines are sorted by (`Timestamp` in milliseconds, then canonical JSON), a total order on distinct
//!   entries, so the output does not depend on the order entries were added in.
//! * **Deterministic bytes.** The gzip header has `mtime` 0, no file name and OS byte 255 ("unknown"); the
//!   compression level is fixed (default 6, see [`ArchiveBuilder::with_compression`]). Archiving the same set of
//!   entries again gives the same bytes — with the same flate2 backend and version, since a different deflate
//!   implementation may pick different (equally valid) encodings.
//! * **Merge.** Re-archiving later (replay, late log lines) must never lose what was stored: load the stored
//!   archive first ([`ArchiveBuilder::from_gzip`] / [`ArchiveBuilder::merge_gzip`]), then add the new entries.
//!   The result is a superset of the stored archive. Reading is strict — a truncated or corrupt gzip stream or
//!   an unparsable line is an error, never a silently shorter archive — and a failed merge consumes the builder,
//!   so a partial merge cannot be written over the stored object.
//! * **Memory.** Each distinct entry is held once, as its compact canonical `Box<str>` in a `Vec` of 32-byte
//!   records (text, timestamp in milliseconds, and a boxed [`BlockError`] for the rare error entry) and a 16-byte
//!   index slot: about 75 bytes per entry on top of the JSON text, allocator and growth slack included (measured
//!   by `benches/archive.rs`: 100 000 entries of ~470 bytes peak at ~57 MB RSS). Duplicates are dropped on
//!   arrival.
//!   Writing frees the index, sorts the records in place and streams them through a buffered
//!   [`GzEncoder`](flate2::write::GzEncoder), freeing each entry once written; the uncompressed file is never
//!   built in memory. Reading streams through [`MultiGzDecoder`] line by line.

use std::collections::hash_map::{Entry, HashMap, RandomState};
use std::collections::HashSet;
use std::fmt;
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};
use std::io::{self, BufRead, BufReader, BufWriter, Read, Write};

use chrono::{DateTime, Utc};
use flate2::read::MultiGzDecoder;
use flate2::{Compression, GzBuilder};

use super::entry::{BlockError, CompactEntry, EntryError, FlowLogEntry};

/// Longest archive line accepted when reading (8 MiB). CloudWatch Logs events are at most 1 MB, so a longer line
/// means a damaged or foreign file; the limit keeps such a file from exhausting memory.
pub const MAX_LINE_BYTES: usize = 8 << 20;

/// Default compression level: 6, zlib's and gzip's default (good ratio on repetitive JSON at tens of MB/s).
pub const DEFAULT_COMPRESSION_LEVEL: u32 = 6;

/// OS byte written in the gzip header: 255 = unknown, so the bytes do not depend on the machine.
const GZIP_OS_UNKNOWN: u8 = 255;

/// Size of the buffer in front of the gzip encoder: lines are handed to the compressor in 64 KiB blocks.
const WRITE_BUFFER_BYTES: usize = 64 << 10;

/// Why an archive could not be read.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ArchiveError {
    /// I/O error, including a gzip stream that is not gzip, is truncated or fails its CRC check.
    #[error("cannot read flow-log archive: {0}")]
    Io(#[from] io::Error),
    /// A line (1-based) is not a valid flow-log entry.
    #[error("flow-log archive line {line}: {source}")]
    Entry {
        /// 1-based line number in the uncompressed NDJSON.
        line: usize,
        /// What is wrong with it.
        #[source]
        source: EntryError,
    },
    /// A line (1-based) is not UTF-8.
    #[error("flow-log archive line {line} is not valid UTF-8")]
    Utf8 {
        /// 1-based line number.
        line: usize,
    },
    /// A line (1-based) is longer than [`MAX_LINE_BYTES`].
    #[error("flow-log archive line {line} is longer than {max} bytes")]
    LineTooLong {
        /// 1-based line number.
        line: usize,
        /// The limit, [`MAX_LINE_BYTES`].
        max: usize,
    },
}

/// What [`ArchiveBuilder::write_gzip`] wrote.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ArchiveSummary {
    /// Lines written (distinct entries).
    pub entries: usize,
    /// Entries dropped because an identical one was already in the builder (including entries already present
    /// in a merged archive).
    pub duplicates_removed: usize,
    /// Block errors recorded by the entries ([`FlowLogEntry::error`]), in archive order, each distinct error
    /// (module type, identifier, flow name, result) once.
    pub errors: Vec<BlockError>,
    /// `!errors.is_empty()`.
    pub has_errors: bool,
    /// Timestamp of the first line (millisecond precision), `None` for an empty archive.
    pub first_timestamp: Option<DateTime<Utc>>,
    /// Timestamp of the last line (millisecond precision), `None` for an empty archive.
    pub last_timestamp: Option<DateTime<Utc>>,
    /// Size of the NDJSON before compression (lines plus their `\n`).
    pub bytes_uncompressed: u64,
    /// Bytes written to the output (the whole gzip stream).
    pub bytes_compressed: u64,
}

/// One distinct entry as the builder stores it.
struct Record {
    timestamp_millis: i64,
    canonical: Box<str>,
    error: Option<Box<BlockError>>,
}

impl Record {
    fn new(c: CompactEntry) -> Self {
        Record {
            timestamp_millis: c.timestamp_millis,
            canonical: c.canonical,
            error: c.error.map(Box::new),
        }
    }
}

/// Hasher for keys that already are keyed hashes: passes the `u64` through.
#[derive(Default)]
struct PassThrough(u64);

impl Hasher for PassThrough {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        // Only `write_u64` is used; fold anything else in anyway.
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

/// Collects the flow-log entries of one contact (or several related contacts) and writes them as a deterministic
/// gzip NDJSON archive. See the module docs for the guarantees.
///
/// ```
/// # use connect_events_core::flow_logs::archive::{ArchiveBuilder, read_gzip_ndjson};
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let stored: Vec<u8> = Vec::new(); // no archive yet; otherwise the stored object's bytes
/// let mut builder = if stored.is_empty() { ArchiveBuilder::new() } else { ArchiveBuilder::from_gzip(&stored[..])? };
/// builder.add_line(r#"{"ContactId":"c1","Timestamp":"2025-06-10T14:00:05.515Z","ContactFlowModuleType":"PlayPrompt"}"#)?;
/// let mut out = Vec::new();
/// let summary = builder.write_gzip(&mut out)?;
/// assert_eq!(summary.entries, 1);
/// assert_eq!(read_gzip_ndjson(&out[..])?.len(), 1);
/// # Ok(()) }
/// ```
pub struct ArchiveBuilder {
    /// Distinct entries, in arrival order.
    records: Vec<Record>,
    /// Keyed hash of the canonical JSON → index in `records` (the first entry seen with that hash).
    index: HashMap<u64, u32, BuildHasherDefault<PassThrough>>,
    hash_keys: RandomState,
    duplicates_removed: usize,
    compression: Compression,
}

impl Default for ArchiveBuilder {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Debug for ArchiveBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ArchiveBuilder")
            .field("entries", &self.records.len())
            .field("duplicates_removed", &self.duplicates_removed)
            .field("compression", &self.compression.level())
            .finish()
    }
}

impl ArchiveBuilder {
    /// An empty builder with the default compression level ([`DEFAULT_COMPRESSION_LEVEL`]).
    pub fn new() -> Self {
        ArchiveBuilder {
            records: Vec::new(),
            index: HashMap::default(),
            hash_keys: RandomState::new(),
            duplicates_removed: 0,
            compression: Compression::new(DEFAULT_COMPRESSION_LEVEL),
        }
    }

    /// A builder holding the entries of a stored archive (`r` = the gzip bytes). Add the new entries next; the
    /// archive written afterwards is a superset of the stored one.
    pub fn from_gzip<R: Read>(r: R) -> Result<Self, ArchiveError> {
        Self::new().merge_gzip(r)
    }

    /// Uses another compression level. Output bytes are deterministic for a given level. Changing the level of
    /// an existing archive rewrites its bytes once (the entries are unchanged).
    pub fn with_compression(mut self, compression: Compression) -> Self {
        self.compression = compression;
        self
    }

    /// Adds every entry of a stored archive (streamed, never all in memory twice). On error the builder is
    /// consumed, so a partially merged archive cannot be written by mistake.
    pub fn merge_gzip<R: Read>(mut self, r: R) -> Result<Self, ArchiveError> {
        let mut lines = LineReader::new(r);
        while let Some(next) = lines.next_line() {
            let (line, text) = next?;
            let entry =
                CompactEntry::parse(text).map_err(|source| ArchiveError::Entry { line, source })?;
            self.insert(entry);
        }
        Ok(self)
    }

    /// Adds an entry; returns `false` if an identical entry (same canonical JSON) was already there.
    pub fn add(&mut self, entry: FlowLogEntry) -> bool {
        self.insert(CompactEntry::from_entry(entry))
    }

    /// Parses a CloudWatch Logs message body and adds it; `Ok(false)` for a duplicate. Cheaper than
    /// [`FlowLogEntry::parse`] + [`add`](Self::add): only the canonical string is kept.
    pub fn add_line(&mut self, line: &str) -> Result<bool, EntryError> {
        Ok(self.insert(CompactEntry::parse(line)?))
    }

    fn insert(&mut self, entry: CompactEntry) -> bool {
        let hash = self.hash_keys.hash_one(&*entry.canonical);
        let position = u32::try_from(self.records.len()).ok();
        let duplicate = match (self.index.entry(hash), position) {
            (Entry::Occupied(slot), _) => {
                let first = &self.records[*slot.get() as usize];
                // Same hash, different text (chance ~ n²/2⁶⁵): fall back to a scan, still exact.
                first.canonical == entry.canonical
                    || self.records.iter().any(|r| r.canonical == entry.canonical)
            }
            (Entry::Vacant(slot), Some(position)) => {
                slot.insert(position);
                false
            }
            // More than 4 billion entries: no index slot; scan.
            (Entry::Vacant(_), None) => self.records.iter().any(|r| r.canonical == entry.canonical),
        };
        if duplicate {
            self.duplicates_removed += 1;
            return false;
        }
        self.records.push(Record::new(entry));
        true
    }

    /// Number of distinct entries so far. Compare it before and after adding new entries to a merged archive
    /// to know whether there is anything new to store.
    pub fn len(&self) -> usize {
        self.records.len()
    }

    /// No entry yet.
    pub fn is_empty(&self) -> bool {
        self.records.is_empty()
    }

    /// Entries dropped as duplicates so far.
    pub fn duplicates_removed(&self) -> usize {
        self.duplicates_removed
    }

    /// Writes the archive: entries sorted by (timestamp, canonical JSON), one per `\n`-terminated line, through a
    /// streaming gzip encoder (header `mtime` 0, OS unknown). Flushes `w` at the end. On error the archive is not
    /// complete and must not be stored; build it again.
    pub fn write_gzip<W: Write>(self, w: W) -> io::Result<ArchiveSummary> {
        let ArchiveBuilder {
            mut records,
            index,
            hash_keys: _,
            duplicates_removed,
            compression,
        } = self;
        drop(index);
        // Keys are distinct after dedupe, so the unstable sort has one possible result.
        records.sort_unstable_by(|a, b| {
            a.timestamp_millis
                .cmp(&b.timestamp_millis)
                .then_with(|| a.canonical.cmp(&b.canonical))
        });
        let millis = |r: Option<&Record>| {
            r.and_then(|r| DateTime::from_timestamp_millis(r.timestamp_millis))
        };
        let first_timestamp = millis(records.first());
        let last_timestamp = millis(records.last());
        let count = records.len();

        let encoder = GzBuilder::new()
            .mtime(0)
            .operating_system(GZIP_OS_UNKNOWN)
            .write(CountingWriter { inner: w, bytes: 0 }, compression);
        let mut out = BufWriter::with_capacity(WRITE_BUFFER_BYTES, encoder);
        let mut errors = Vec::new();
        let mut seen_errors = HashSet::new();
        let mut bytes_uncompressed = 0u64;
        // By value: each entry's text is freed as soon as it is in the encoder's buffer.
        for record in records {
            out.write_all(record.canonical.as_bytes())?;
            out.write_all(b"\n")?;
            bytes_uncompressed += record.canonical.len() as u64 + 1;
            if let Some(error) = record.error {
                if !seen_errors.contains(&*error) {
                    seen_errors.insert((*error).clone());
                    errors.push(*error);
                }
            }
        }
        let encoder = out.into_inner().map_err(io::IntoInnerError::into_error)?;
        let mut counter = encoder.finish()?;
        counter.flush()?;

        Ok(ArchiveSummary {
            entries: count,
            duplicates_removed,
            has_errors: !errors.is_empty(),
            errors,
            first_timestamp,
            last_timestamp,
            bytes_uncompressed,
            bytes_compressed: counter.bytes,
        })
    }
}

impl Extend<FlowLogEntry> for ArchiveBuilder {
    fn extend<I: IntoIterator<Item = FlowLogEntry>>(&mut self, iter: I) {
        for entry in iter {
            self.add(entry);
        }
    }
}

impl FromIterator<FlowLogEntry> for ArchiveBuilder {
    fn from_iter<I: IntoIterator<Item = FlowLogEntry>>(iter: I) -> Self {
        let mut builder = Self::new();
        builder.extend(iter);
        builder
    }
}

/// Counts the bytes that reach the caller's writer.
struct CountingWriter<W> {
    inner: W,
    bytes: u64,
}

impl<W: Write> Write for CountingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.bytes += n as u64;
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Reads the entries of a gzip NDJSON archive (streaming; concatenated gzip members are read as one stream;
/// blank lines and `\r\n` endings are accepted). Any error — not gzip, truncated, CRC mismatch, an unparsable
/// line — fails the whole read.
pub fn read_gzip_ndjson<R: Read>(r: R) -> Result<Vec<FlowLogEntry>, ArchiveError> {
    GzNdjsonReader::new(r).collect()
}

/// Iterator over the entries of a gzip NDJSON archive, for callers that do not want them all in memory. Yields
/// at most one error, then ends.
pub struct GzNdjsonReader<R: Read> {
    lines: LineReader<R>,
}

impl<R: Read> GzNdjsonReader<R> {
    /// Reads from the gzip bytes in `r`.
    pub fn new(r: R) -> Self {
        GzNdjsonReader {
            lines: LineReader::new(r),
        }
    }
}

impl<R: Read> Iterator for GzNdjsonReader<R> {
    type Item = Result<FlowLogEntry, ArchiveError>;

    fn next(&mut self) -> Option<Self::Item> {
        let result = match self.lines.next_line()? {
            Ok((line, text)) => {
                FlowLogEntry::parse(text).map_err(|source| ArchiveError::Entry { line, source })
            }
            Err(e) => Err(e),
        };
        if result.is_err() {
            self.lines.done = true;
        }
        Some(result)
    }
}

impl<R: Read> fmt::Debug for GzNdjsonReader<R> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GzNdjsonReader")
            .field("line", &self.lines.line)
            .finish_non_exhaustive()
    }
}

/// Decompresses and splits into lines, reusing one buffer.
struct LineReader<R: Read> {
    inner: BufReader<MultiGzDecoder<R>>,
    buf: Vec<u8>,
    line: usize,
    done: bool,
}

impl<R: Read> LineReader<R> {
    fn new(r: R) -> Self {
        LineReader {
            inner: BufReader::new(MultiGzDecoder::new(r)),
            buf: Vec::new(),
            line: 0,
            done: false,
        }
    }

    /// Next non-blank line with its 1-based number, without its line ending.
    fn next_line(&mut self) -> Option<Result<(usize, &str), ArchiveError>> {
        loop {
            if self.done {
                return None;
            }
            self.buf.clear();
            let limit = MAX_LINE_BYTES as u64 + 1;
            match (&mut self.inner)
                .take(limit)
                .read_until(b'\n', &mut self.buf)
            {
                Ok(0) => {
                    self.done = true;
                    return None;
                }
                Ok(_) => {}
                Err(e) => {
                    self.done = true;
                    return Some(Err(ArchiveError::Io(e)));
                }
            }
            self.line += 1;
            let mut end = self.buf.len();
            if self.buf.last() == Some(&b'\n') {
                end -= 1;
            } else if end > MAX_LINE_BYTES {
                self.done = true;
                return Some(Err(ArchiveError::LineTooLong {
                    line: self.line,
                    max: MAX_LINE_BYTES,
                }));
            }
            if end > 0 && self.buf[end - 1] == b'\r' {
                end -= 1;
            }
            if self.buf[..end].iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let line = self.line;
            return Some(match std::str::from_utf8(&self.buf[..end]) {
                Ok(text) => Ok((line, text)),
                Err(_) => {
                    self.done = true;
                    Err(ArchiveError::Utf8 { line })
                }
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use flate2::write::GzEncoder;

    const BILLING: &str =
        include_str!("../../../tests/fixtures/flow-logs/voice-billing-answered.ndjson");
    const LAMBDA_ERROR: &str =
        include_str!("../../../tests/fixtures/flow-logs/voice-lambda-error-abandoned.ndjson");
    const CHAT_ERROR: &str =
        include_str!("../../../tests/fixtures/flow-logs/chat-input-error.ndjson");
    const TRANSFER: &str = include_str!("../../../tests/fixtures/flow-logs/voice-transfer.ndjson");
    const ALL: &str = include_str!("../../../tests/fixtures/flow-logs/all-contacts.ndjson");

    fn build<'a>(lines: impl IntoIterator<Item = &'a str>) -> ArchiveBuilder {
        let mut b = ArchiveBuilder::new();
        for l in lines {
            b.add_line(l).unwrap();
        }
        b
    }

    fn write(b: ArchiveBuilder) -> (Vec<u8>, ArchiveSummary) {
        let mut out = Vec::new();
        let summary = b.write_gzip(&mut out).unwrap();
        (out, summary)
    }

    fn gunzip(bytes: &[u8]) -> String {
        let mut s = String::new();
        MultiGzDecoder::new(bytes).read_to_string(&mut s).unwrap();
        s
    }

    /// Deterministic Fisher-Yates shuffle (no external RNG).
    fn shuffled<'a>(lines: &[&'a str], mut seed: u64) -> Vec<&'a str> {
        let mut v = lines.to_vec();
        for i in (1..v.len()).rev() {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            v.swap(i, (seed >> 33) as usize % (i + 1));
        }
        v
    }

    fn canonical_lines(text: &str) -> Vec<String> {
        text.lines()
            .map(|l| FlowLogEntry::parse(l).unwrap().canonical_json().to_owned())
            .collect()
    }

    #[test]
    fn duplicate_delivery_is_removed() {
        let (out, s) = write(build(BILLING.lines()));
        assert_eq!(BILLING.lines().count(), 12);
        assert_eq!(s.entries, 11);
        assert_eq!(s.duplicates_removed, 1);
        assert!(!s.has_errors && s.errors.is_empty());
        assert_eq!(
            s.first_timestamp.unwrap().to_rfc3339(),
            "2025-06-10T14:00:05.515+00:00"
        );
        assert_eq!(
            s.last_timestamp.unwrap().to_rfc3339(),
            "2025-06-10T14:00:13.574+00:00"
        );
        let text = gunzip(&out);
        assert_eq!(text.lines().count(), 11);
        assert!(text.ends_with('\n') && !text.ends_with("\n\n"));
        assert_eq!(s.bytes_uncompressed, text.len() as u64);
        assert_eq!(s.bytes_compressed, out.len() as u64);
        // Every input entry is there, in timestamp order, as canonical JSON.
        let mut expected = canonical_lines(BILLING);
        expected.sort_by_key(|l| (FlowLogEntry::parse(l).unwrap().timestamp(), l.clone()));
        expected.dedup();
        assert_eq!(
            text.lines().map(str::to_owned).collect::<Vec<_>>(),
            expected
        );
    }

    #[test]
    fn errors_are_summarised() {
        let (_, s) = write(build(LAMBDA_ERROR.lines()));
        assert!(s.has_errors);
        assert_eq!(s.errors.len(), 1);
        assert_eq!(s.errors[0].result, "The Lambda Function Returned An Error.");
        assert_eq!(s.errors[0].identifier.as_deref(), Some("Deny list lookup"));

        let (_, s) = write(build(CHAT_ERROR.lines()));
        assert!(s.has_errors);
        assert_eq!(s.errors.len(), 1);
        assert_eq!(
            (
                s.errors[0].module_type.as_str(),
                s.errors[0].result.as_str()
            ),
            ("GetUserInput", "Error")
        );

        for clean in [BILLING, TRANSFER] {
            let (_, s) = write(build(clean.lines()));
            assert!(!s.has_errors && s.errors.is_empty());
        }

        // All contacts: both errors, in archive (time) order.
        let (_, s) = write(build(ALL.lines()));
        assert_eq!(s.entries, 38);
        assert_eq!(s.duplicates_removed, 1);
        let results: Vec<_> = s.errors.iter().map(|e| e.result.as_str()).collect();
        assert_eq!(results, ["The Lambda Function Returned An Error.", "Error"]);
        assert!(serde_json::to_value(&s).unwrap()["errors"].is_array());
    }

    #[test]
    fn the_same_block_error_is_listed_once() {
        let chat_error = CHAT_ERROR
            .lines()
            .find(|l| l.contains(r#""Results":"Error""#))
            .unwrap();
        let later = chat_error.replace("14:03:03.470Z", "14:03:09.999Z");
        let (_, s) = write(build([chat_error, later.as_str()]));
        assert_eq!(s.entries, 2);
        assert_eq!(s.errors.len(), 1);
    }

    #[test]
    fn input_order_and_key_order_do_not_change_the_bytes() {
        let lines: Vec<&str> = ALL.lines().collect();
        let (reference, _) = write(build(lines.iter().copied()));
        // gzip header: magic, deflate, no flags, mtime 0, OS unknown.
        assert_eq!(&reference[..4], &[0x1f, 0x8b, 8, 0]);
        assert_eq!(&reference[4..8], &[0, 0, 0, 0]);
        assert_eq!(reference[9], 255);
        for seed in 1..20 {
            let (out, _) = write(build(shuffled(&lines, seed)));
            assert_eq!(out, reference, "seed {seed}");
        }
        let reversed: Vec<&str> = lines.iter().rev().copied().collect();
        assert_eq!(write(build(reversed)).0, reference);
        // Same entries, pretty-printed with reversed key order (through preserve-order-independent values), via add().
        let mut b = ArchiveBuilder::new();
        for l in shuffled(&lines, 99) {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            let pretty = serde_json::to_string_pretty(&v).unwrap();
            b.add(FlowLogEntry::parse(&pretty).unwrap());
        }
        assert_eq!(write(b).0, reference);
    }

    #[test]
    fn write_then_read_round_trips() {
        let b = build(ALL.lines());
        let (out, s) = write(b);
        let entries = read_gzip_ndjson(&out[..]).unwrap();
        assert_eq!(entries.len(), s.entries);
        let mut expected: Vec<FlowLogEntry> = ALL
            .lines()
            .map(|l| FlowLogEntry::parse(l).unwrap())
            .collect();
        expected.sort_by(|a, b| {
            (a.timestamp(), a.canonical_json()).cmp(&(b.timestamp(), b.canonical_json()))
        });
        expected.dedup();
        assert_eq!(entries, expected);
        // Re-archiving what was read gives identical bytes.
        let again: ArchiveBuilder = entries.into_iter().collect();
        assert_eq!(write(again).0, out);
        // The streaming reader yields the same.
        assert_eq!(GzNdjsonReader::new(&out[..]).count(), s.entries);
    }

    #[test]
    fn merge_with_stored_archive_is_a_superset() {
        let billing: Vec<&str> = BILLING.lines().collect();
        // First run: the logs available so far.
        let (stored, first) = write(build(billing[..6].iter().copied()));
        assert_eq!(first.entries, 6);
        // Later run (replay + late lines + the transfer contact): stored archive first, then new entries.
        let mut b = ArchiveBuilder::from_gzip(&stored[..]).unwrap();
        assert_eq!(b.len(), 6);
        for l in billing[4..]
            .iter()
            .chain(TRANSFER.lines().collect::<Vec<_>>().iter())
        {
            b.add_line(l).unwrap();
        }
        let (merged, s) = write(b);
        let old: HashSet<String> = gunzip(&stored).lines().map(str::to_owned).collect();
        let new: HashSet<String> = gunzip(&merged).lines().map(str::to_owned).collect();
        assert!(new.is_superset(&old));
        assert_eq!(s.entries, 11 + 7);
        // Duplicates: lines 4 and 5 (already stored) and the second delivery of the Lambda entry.
        assert_eq!(s.duplicates_removed, 3);
        // Same bytes as archiving everything at once.
        let all_at_once = build(BILLING.lines().chain(TRANSFER.lines()));
        assert_eq!(write(all_at_once).0, merged);
        // Merging an archive with nothing new is idempotent.
        let (again, s2) = write(ArchiveBuilder::from_gzip(&merged[..]).unwrap());
        assert_eq!(again, merged);
        assert_eq!(s2.duplicates_removed, 0);
        // merge_gzip chains.
        let both = ArchiveBuilder::new()
            .merge_gzip(&stored[..])
            .unwrap()
            .merge_gzip(&merged[..])
            .unwrap();
        assert_eq!(both.len(), 18);
        assert_eq!(both.duplicates_removed(), 6);
    }

    #[test]
    fn damaged_archives_fail_instead_of_merging_a_subset() {
        let (good, _) = write(build(ALL.lines()));
        // Truncated stream.
        for cut in [good.len() - 1, good.len() - 8, good.len() / 2, 12, 3] {
            let r = ArchiveBuilder::from_gzip(&good[..cut]);
            assert!(matches!(r, Err(ArchiveError::Io(_))), "cut at {cut}: {r:?}");
            assert!(read_gzip_ndjson(&good[..cut]).is_err());
        }
        // CRC mismatch.
        let mut bad_crc = good.clone();
        let n = bad_crc.len();
        bad_crc[n - 8] ^= 0xff;
        assert!(matches!(
            ArchiveBuilder::from_gzip(&bad_crc[..]),
            Err(ArchiveError::Io(_))
        ));
        // Not gzip at all.
        assert!(matches!(
            read_gzip_ndjson(ALL.as_bytes()),
            Err(ArchiveError::Io(_))
        ));
        // A bad line: typed error with its line number and the field.
        let mut text = ALL.lines().take(3).collect::<Vec<_>>().join("\n");
        text.push_str("\n{\"ContactId\":\"c\",\"Timestamp\":\"soon\"}\n");
        let gz = gzip(text.as_bytes());
        match ArchiveBuilder::from_gzip(&gz[..]) {
            Err(ArchiveError::Entry { line: 4, source }) => {
                assert_eq!(source.field(), Some("Timestamp"))
            }
            other => panic!("{other:?}"),
        }
        let err = read_gzip_ndjson(&gz[..]).unwrap_err();
        assert!(
            err.to_string().contains("line 4") && err.to_string().contains("Timestamp"),
            "{err}"
        );
        // Invalid UTF-8.
        let gz = gzip(b"{\"ContactId\":\"\xff\"}\n");
        assert!(matches!(
            read_gzip_ndjson(&gz[..]),
            Err(ArchiveError::Utf8 { line: 1 })
        ));
        // The iterator stops after its error.
        let mut it = GzNdjsonReader::new(&good[..40]);
        assert!(it.next().unwrap().is_err());
        assert!(it.next().is_none());
    }

    #[test]
    fn corrupted_archives_never_panic() {
        let (good, _) = write(build(ALL.lines()));
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for _ in 0..500 {
            let mut bad = good.clone();
            for _ in 0..3 {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let i = (seed >> 8) as usize % bad.len();
                bad[i] ^= (seed as u8) | 1;
            }
            // Any outcome but a panic; a successful read must not invent entries.
            if let Ok(entries) = read_gzip_ndjson(&bad[..]) {
                assert!(entries.len() <= 38);
            }
            let _ = ArchiveBuilder::from_gzip(&bad[..]);
        }
    }

    fn gzip(bytes: &[u8]) -> Vec<u8> {
        let mut e = GzEncoder::new(Vec::new(), Compression::default());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    #[test]
    fn overlong_line_is_refused() {
        let mut big = vec![b' '; MAX_LINE_BYTES + 10];
        big[0] = b'x';
        let gz = gzip(&big);
        assert!(matches!(
            read_gzip_ndjson(&gz[..]),
            Err(ArchiveError::LineTooLong { line: 1, .. })
        ));
    }

    #[test]
    fn reader_accepts_blank_lines_crlf_and_concatenated_members() {
        let lines: Vec<&str> = ALL.lines().collect();
        let text = format!("\n{}\r\n\r\n   \n{}\n", lines[0], lines[1]);
        let mut gz = gzip(text.as_bytes());
        gz.extend(gzip(format!("{}\n", lines[2]).as_bytes()));
        let entries = read_gzip_ndjson(&gz[..]).unwrap();
        assert_eq!(entries.len(), 3);
        assert_eq!(entries[2], FlowLogEntry::parse(lines[2]).unwrap());
    }

    #[test]
    fn empty_archive() {
        let (out, s) = write(ArchiveBuilder::new());
        assert_eq!(s.entries, 0);
        assert_eq!((s.first_timestamp, s.last_timestamp), (None, None));
        assert_eq!(s.bytes_uncompressed, 0);
        assert_eq!(s.bytes_compressed, out.len() as u64);
        assert!(read_gzip_ndjson(&out[..]).unwrap().is_empty());
        assert!(ArchiveBuilder::from_gzip(&out[..]).unwrap().is_empty());
    }

    #[test]
    fn add_reports_duplicates_and_bad_lines() {
        let mut b = ArchiveBuilder::new();
        let first = ALL.lines().next().unwrap();
        assert!(b.add_line(first).unwrap());
        assert!(!b.add_line(first).unwrap());
        assert!(!b.add(FlowLogEntry::parse(first).unwrap()));
        assert_eq!((b.len(), b.duplicates_removed()), (1, 2));
        let err = b
            .add_line(r#"{"Timestamp":"2025-06-10T14:00:05.515Z"}"#)
            .unwrap_err();
        assert_eq!(err.field(), Some("ContactId"));
        assert_eq!(b.len(), 1);
        assert!(format!("{b:?}").contains("entries: 1"));
    }

    #[test]
    fn hash_collisions_do_not_merge_different_entries() {
        let lines: Vec<&str> = ALL.lines().collect();
        let mut b = ArchiveBuilder::new();
        b.add_line(lines[0]).unwrap();
        // Simulate a 64-bit collision: make lines[1]'s hash point at lines[0]'s record.
        let other = FlowLogEntry::parse(lines[1]).unwrap();
        let h = b.hash_keys.hash_one(other.canonical_json());
        b.index.insert(h, 0);
        assert!(
            b.add_line(lines[1]).unwrap(),
            "a different entry with the same hash is kept"
        );
        assert!(
            !b.add_line(lines[1]).unwrap(),
            "and its duplicate is still found"
        );
        assert!(!b.add_line(lines[0]).unwrap());
        assert_eq!((b.len(), b.duplicates_removed()), (2, 2));
        let (out, s) = write(b);
        assert_eq!(s.entries, 2);
        assert_eq!(gunzip(&out).lines().count(), 2);
    }

    #[test]
    fn compression_level_is_configurable_and_deterministic() {
        let fast = || build(ALL.lines()).with_compression(Compression::fast());
        let (a, sa) = write(fast());
        let (b, _) = write(fast());
        assert_eq!(a, b);
        assert_eq!(gunzip(&a), gunzip(&write(build(ALL.lines())).0));
        assert!(sa.bytes_compressed > 0);
    }

    /// Fails after `left` bytes.
    struct FailingWriter {
        left: usize,
    }

    impl Write for FailingWriter {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            if self.left == 0 {
                return Err(io::Error::other("disk full"));
            }
            let n = buf.len().min(self.left);
            self.left -= n;
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn write_errors_are_returned() {
        for left in [0, 5, 100] {
            let err = build(ALL.lines())
                .write_gzip(FailingWriter { left })
                .unwrap_err();
            assert_eq!(err.to_string(), "disk full");
        }
    }

    #[test]
    fn output_is_streamed_in_bounded_chunks() {
        /// Records the largest single write.
        struct MaxChunk(usize, usize);
        impl Write for MaxChunk {
            fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
                self.0 = self.0.max(buf.len());
                self.1 += buf.len();
                Ok(buf.len())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let lines: Vec<String> = (0..5_000)
            .map(|i| {
                format!(
                    r#"{{"ContactId":"c","Timestamp":"2025-06-10T14:{:02}:{:02}.{:03}Z","Results":"{}","n":{}}}"#,
                    i / 60_000 % 60,
                    i / 1000 % 60,
                    i % 1000,
                    i * 7919 % 10007,
                    i
                )
            })
            .collect();
        let mut w = MaxChunk(0, 0);
        let s = build(lines.iter().map(String::as_str))
            .write_gzip(&mut w)
            .unwrap();
        assert_eq!(s.bytes_compressed, w.1 as u64);
        assert!(s.bytes_uncompressed > 300_000);
        assert!(w.0 <= 64 << 10, "largest write {}", w.0);
    }
}
