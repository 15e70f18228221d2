//! Flow-log archive benchmark (harness = false, no criterion).
//!
//! `cargo bench --bench archive` runs this binary without `--entries`; it then re-executes itself once per size
//! (10 000 and 100 000 entries) so that each peak-RSS figure (`VmHWM`) belongs to one size only.
//! `archive --entries N` runs one size in the current process.
//!
//! Each run generates a synthetic, realistic long contact (inbound flow, Lambda calls with and without errors,
//! input, checks, transfers to a related contact, queue loops) of N distinct entries of ~300-400 bytes, adds ~10 %
//! duplicate deliveries, shuffles the delivery order, then times `ArchiveBuilder::add_line` for every delivered
//! line plus `write_gzip` into `std::io::sink()`. Lines are generated on the fly from their index (as they arrive
//! page by page from CloudWatch Logs), so the process holds only the builder's copy of the entries; the time
//! spent generating lines is measured in a separate pass and subtracted.
//!
//! `--pad BYTES` adds a field of that many bytes to every entry (to see how memory and speed scale with size).
//! Times are given as wall clock and as on-CPU time (`/proc/self/schedstat`); on a busy machine the CPU figure
//! is the one that reflects the code.
//!
//! Targets (release/bench profile): peak RSS < 64 MB and >= 50 MB/s of uncompressed archive at 100 000 entries.

use std::fmt::Write as _;
use std::hint::black_box;
use std::io::{self, Write};
use std::process::{Command, ExitCode};
use std::time::{Duration, Instant};

use connect_events_core::flow_logs::archive::ArchiveBuilder;

const SIZES: [usize; 2] = [10_000, 100_000];
const RSS_TARGET_MB: f64 = 64.0;
const THROUGHPUT_TARGET_MB_S: f64 = 50.0;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    // `cargo bench` passes `--bench` (and possibly a filter); only `--entries N` selects a single run.
    let number = |flag: &str| {
        args.iter().position(|a| a == flag).map(|i| {
            args.get(i + 1)
                .and_then(|n| n.replace('_', "").parse::<usize>().ok())
        })
    };
    let style = Style {
        pad: match number("--pad") {
            None => 0,
            Some(Some(p)) => p,
            Some(None) => return usage(),
        },
        legacy: args.iter().any(|a| a == "--legacy"),
    };
    match number("--entries") {
        Some(Some(n)) if n > 0 => {
            run(n, &style);
            ExitCode::SUCCESS
        }
        Some(_) => usage(),
        None => run_all(&style),
    }
}

fn usage() -> ExitCode {
    eprintln!("usage: archive [--entries N] [--pad BYTES] [--legacy]");
    ExitCode::from(2)
}

/// Runs every size in its own process.
fn run_all(style: &Style) -> ExitCode {
    let exe = match std::env::current_exe() {
        Ok(exe) => exe,
        Err(e) => {
            eprintln!("cannot find the bench executable: {e}");
            return ExitCode::FAILURE;
        }
    };
    println!("flow-log archive bench: build (parse + dedupe) + sort + write_gzip to io::sink(), one process per size");
    for n in SIZES {
        let mut cmd = Command::new(&exe);
        cmd.args(["--entries", &n.to_string(), "--pad", &style.pad.to_string()]);
        if style.legacy {
            cmd.arg("--legacy");
        }
        match cmd.status() {
            Ok(status) if status.success() => {}
            Ok(status) => {
                eprintln!("run with --entries {n} failed: {status}");
                return ExitCode::FAILURE;
            }
            Err(e) => {
                eprintln!("cannot run {}: {e}", exe.display());
                return ExitCode::FAILURE;
            }
        }
    }
    ExitCode::SUCCESS
}

/// Wall-clock and on-CPU time of a section (on-CPU time is what contention on a shared machine does not inflate).
#[derive(Clone, Copy, Default)]
struct Span {
    wall: Duration,
    cpu: Option<Duration>,
}

impl Span {
    fn measure<T>(f: impl FnOnce() -> T) -> (T, Span) {
        let (w, c) = (Instant::now(), cpu_time());
        let out = f();
        let cpu = match (c, cpu_time()) {
            (Some(a), Some(b)) => Some(b.saturating_sub(a)),
            _ => None,
        };
        (
            out,
            Span {
                wall: w.elapsed(),
                cpu,
            },
        )
    }

    fn minus(self, other: Span) -> Span {
        Span {
            wall: self.wall.saturating_sub(other.wall),
            cpu: self.cpu.zip(other.cpu).map(|(a, b)| a.saturating_sub(b)),
        }
    }

    fn plus(self, other: Span) -> Span {
        Span {
            wall: self.wall + other.wall,
            cpu: self.cpu.zip(other.cpu).map(|(a, b)| a + b),
        }
    }

    fn ms(self) -> String {
        match self.cpu {
            Some(c) => format!(
                "{:.1} ms wall / {:.1} ms cpu",
                self.wall.as_secs_f64() * 1e3,
                c.as_secs_f64() * 1e3
            ),
            None => format!("{:.1} ms wall", self.wall.as_secs_f64() * 1e3),
        }
    }
}

/// One size: `distinct` entries plus ~10 % duplicate deliveries, shuffled.
fn run(distinct: usize, style: &Style) {
    let gen = Generator::new(distinct, style);
    let order = delivery_order(distinct, 0x5eed_0000 ^ distinct as u64);
    let rss_before = peak_rss_kb();
    let mut line = String::with_capacity(1024 + style.pad);

    // Pass 1: generation alone, to subtract it from the timed run.
    let (input_bytes, gen_span) = Span::measure(|| {
        let mut bytes = 0u64;
        for &i in &order {
            gen.line(i, &mut line);
            bytes += black_box(line.len()) as u64;
        }
        bytes
    });

    // Pass 2: generate + add, then sort + write.
    let (builder, add_span) = Span::measure(|| {
        let mut builder = ArchiveBuilder::new();
        for &i in &order {
            gen.line(i, &mut line);
            if let Err(e) = builder.add_line(&line) {
                panic!("generated line {i} rejected: {e}\n{line}");
            }
        }
        builder
    });
    let add_span = add_span.minus(gen_span);
    let mut sink = CountingSink(io::sink(), 0);
    let (summary, write_span) = Span::measure(|| builder.write_gzip(&mut sink));
    let summary = summary.unwrap_or_else(|e| panic!("write_gzip failed: {e}"));
    let peak_kb = peak_rss_kb();
    assert_eq!(
        summary.bytes_compressed, sink.1,
        "summary counts what reached the writer"
    );
    assert_eq!(
        summary.entries, distinct,
        "dedupe kept every distinct entry"
    );
    assert_eq!(summary.duplicates_removed, order.len() - distinct);

    let net = add_span.plus(write_span);
    let mb = summary.bytes_uncompressed as f64 / 1e6;
    let rate = |d: Duration, amount: f64| amount / d.as_secs_f64().max(1e-9);
    let wall_mb_s = rate(net.wall, mb);
    let cpu_mb_s = net.cpu.map(|c| rate(c, mb));
    let per_s = |d: Option<Duration>| {
        d.map_or("n/a".to_owned(), |d| {
            format!("{:.0}", rate(d, order.len() as f64))
        })
    };
    let mb_s = |d: Option<f64>| d.map_or("n/a".to_owned(), |v| format!("{v:.1}"));
    let best = cpu_mb_s.unwrap_or(wall_mb_s);

    let mut r = String::new();
    let _ = writeln!(
        r,
        "\n== {distinct} entries ({} delivered lines, {} duplicates removed)",
        order.len(),
        summary.duplicates_removed
    );
    let _ = writeln!(
        r,
        "   avg entry        {:.0} bytes ({:.1} MB delivered, {:.1} MB archive uncompressed, {} distinct block errors)",
        summary.bytes_uncompressed as f64 / distinct as f64 - 1.0,
        input_bytes as f64 / 1e6,
        mb,
        summary.errors.len()
    );
    let _ = writeln!(r, "   add (parse+dedupe) {}", add_span.ms());
    let _ = writeln!(r, "   sort+write_gzip  {}", write_span.ms());
    let _ = writeln!(r, "   (generating lines {}, not counted)", gen_span.ms());
    let _ = writeln!(
        r,
        "   entries/s        {} wall, {} cpu (delivered lines)",
        per_s(Some(net.wall)),
        per_s(net.cpu)
    );
    let _ = writeln!(
        r,
        "   MB/s uncompressed {:.1} wall, {} cpu (target >= {THROUGHPUT_TARGET_MB_S}: {})",
        wall_mb_s,
        mb_s(cpu_mb_s),
        verdict(best >= THROUGHPUT_TARGET_MB_S)
    );
    let _ = writeln!(
        r,
        "   compression      {:.1}x ({} -> {} bytes)",
        summary.bytes_uncompressed as f64 / summary.bytes_compressed.max(1) as f64,
        summary.bytes_uncompressed,
        summary.bytes_compressed
    );
    let mbytes = |kb: u64| kb as f64 * 1024.0 / 1e6;
    match peak_kb {
        Some(p) => {
            let _ = writeln!(
                r,
                "   peak RSS         {:.1} MB VmHWM ({:.1} MB before building) (target < {RSS_TARGET_MB}: {})",
                mbytes(p),
                rss_before.map_or(0.0, mbytes),
                verdict(mbytes(p) < RSS_TARGET_MB)
            );
        }
        None => {
            let _ = writeln!(r, "   peak RSS         n/a (no /proc/self/status)");
        }
    }
    print!("{r}");
    let _ = io::stdout().flush();
}

/// On-CPU time of this (single-threaded) process, from /proc/self/schedstat (nanoseconds).
fn cpu_time() -> Option<Duration> {
    let s = std::fs::read_to_string("/proc/self/schedstat").ok()?;
    Some(Duration::from_nanos(
        s.split_whitespace().next()?.parse().ok()?,
    ))
}

fn verdict(ok: bool) -> &'static str {
    if ok {
        "ok"
    } else {
        "MISSED"
    }
}

/// `VmHWM` (peak resident set size) of this process, in kB.
fn peak_rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// Counts bytes written to the wrapped writer.
struct CountingSink<W>(W, u64);

impl<W: Write> Write for CountingSink<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.0.write(buf)?;
        self.1 += n as u64;
        Ok(n)
    }
    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

/// splitmix64: small deterministic PRNG.
fn mix(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// Indices of the delivered lines: every entry once, ~10 % of them a second time, shuffled.
fn delivery_order(distinct: usize, seed: u64) -> Vec<u32> {
    let mut order: Vec<u32> = (0..distinct as u32).collect();
    let dups = distinct / 10;
    order.extend((0..dups as u64).map(|k| (mix(seed ^ k) % distinct as u64) as u32));
    let mut s = seed;
    for i in (1..order.len()).rev() {
        s = mix(s);
        order.swap(i, (s % (i as u64 + 1)) as usize);
    }
    order
}

const INSTANCE: &str =
    "arn:aws:connect:us-east-1:123456789012:instance/8f2c6d1e-4b7a-4e39-9c5d-2a1f0b3e7d64";
const FLOWS: [(&str, &str); 4] = [
    ("5d6aacaf-9021-41af-9810-9c3c4f968a58", "Inbound main"),
    (
        "ca8c764e-fbe5-4a61-8994-4fc2ef420e5c",
        "Default customer queue",
    ),
    ("7e1b2c3d-1111-4a2b-9c8d-0123456789ab", "Callback offer"),
    (
        "0f9e8d7c-2222-4b3c-8d9e-abcdef012345",
        "Default queue transfer",
    ),
];
const CONTACTS: [&str; 3] = [
    "248b1a9e-5c07-455b-8daf-f67b49e04cd4",
    "a15ee2fb-5986-4fa3-8f9a-43e024a1b2c3",
    "dd5b1dcd-f03f-4425-9f47-f98a58d4e5f6",
];

/// Synthetic entries of one long contact and its transfers, generated from their index.
/// Shape of the generated entries.
struct Style {
    /// Extra bytes per entry (a `Padding` field).
    pad: usize,
    /// Entries without `Identifier` and `ContactFlowName`, as in 2021-2023 captures (reference §3.2): ~375
    /// bytes instead of ~470.
    legacy: bool,
}

struct Generator {
    start_ms: i64,
    distinct: u64,
    pad: String,
    legacy: bool,
}

impl Generator {
    fn new(distinct: usize, style: &Style) -> Self {
        // 2025-06-10T14:00:05.515Z
        Generator {
            start_ms: 1_749_564_005_515,
            distinct: distinct.max(1) as u64,
            pad: "x".repeat(style.pad),
            legacy: style.legacy,
        }
    }

    fn line(&self, i: u32, out: &mut String) {
        out.clear();
        let r = mix(u64::from(i) ^ 0xf10f_1095);
        // ~8 ms per block on average, with many entries sharing a millisecond.
        let ms = self.start_ms + i64::from(i) * 8 + (r % 7) as i64;
        let ts = chrono::DateTime::from_timestamp_millis(ms)
            .unwrap_or_default()
            .format("%Y-%m-%dT%H:%M:%S%.3fZ");
        // The inbound contact, then the contacts it was transferred to (60 % / 25 % / 15 % of the timeline).
        let contact = match u64::from(i) * 100 / self.distinct {
            0..=59 => CONTACTS[0],
            60..=84 => CONTACTS[1],
            _ => CONTACTS[2],
        };
        let (flow_id, flow_name) = FLOWS[(r >> 8) as usize % FLOWS.len()];
        let block = r >> 16;
        let _ = write!(
            out,
            r#"{{"ContactId":"{contact}","ContactFlowId":"{INSTANCE}/contact-flow/{flow_id}","#
        );
        if !self.legacy {
            let _ = write!(out, r#""ContactFlowName":"{flow_name}","#);
        }
        let module = match block % 20 {
            0..=5 => "AddToPlayLoop",
            6..=7 => "InvokeExternalResource",
            8..=9 => "GetUserInput",
            10 => "CheckHoursOfOperation",
            11 => "CheckStaffing",
            12 => "SetQueue",
            13 => "Transfer",
            14..=15 => "SetAttributes",
            16 => "PlayPrompt",
            17 => "SetLoggingBehavior",
            18 => "InvokeFlowModule",
            _ => "CheckAttribute",
        };
        // A flow has a fixed set of blocks: a few of each type, some with custom names.
        let block_id = mix(block % 20 * 8 + (block >> 8) % 4);
        let _ = write!(out, r#""ContactFlowModuleType":"{module}","#);
        if self.legacy {
            // No Identifier in older captures.
        } else if block_id.is_multiple_of(5) {
            let _ = write!(out, r#""Identifier":"{module} {}","#, block_id % 4 + 1);
        } else {
            let (a, b, c, d) = (
                block_id as u32,
                (block_id >> 32) as u16,
                (block_id >> 48) & 0xfff,
                (block_id >> 20) & 0xfff,
            );
            let e = (block_id >> 16) & 0xffff_ffff_ffff;
            let _ = write!(
                out,
                r#""Identifier":"{a:08x}-{b:04x}-4{c:03x}-9{d:03x}-{e:012x}","#
            );
        }
        let _ = write!(out, r#""Timestamp":"{ts}""#);
        let outcome = (r >> 40) % 100;
        match module {
            "AddToPlayLoop" => {
                if outcome < 50 {
                    let _ = write!(
                        out,
                        r#","Parameters":{{"AudioPrompt":"{INSTANCE}/prompt/c88c439b-2013-4bf5-9e7a-264bb6ab61ca"}}"#
                    );
                } else {
                    out.push_str(r#","Parameters":{"Text":"Your call is important to us. Please stay on the line.","Voice":"Joanna"}"#);
                }
            }
            "InvokeExternalResource" => {
                if outcome < 3 {
                    out.push_str(r#","Results":"The Lambda Function Returned An Error.""#);
                } else if outcome < 4 {
                    out.push_str(
                        r#","Results":"Status Code: 403; Error Code: AccessDeniedException""#,
                    );
                }
                out.push_str(
                    r#","Parameters":{"FunctionArn":"arn:aws:lambda:us-east-1:123456789012:function:connect-denylist-lookup","TimeLimit":"3000"}"#,
                );
                if outcome >= 4 {
                    let _ = write!(
                        out,
                        r#","ExternalResults":{{"blocked":"false","attempt":"{}"}}"#,
                        i % 1000
                    );
                }
            }
            "GetUserInput" => {
                let result = match outcome {
                    0..=79 => "1",
                    80..=89 => "2",
                    90..=95 => "Timeout",
                    _ => "Error",
                };
                let _ = write!(
                    out,
                    r#","Results":"{result}","Parameters":{{"MaxDigits":"1","Text":"For billing, press one.\nFor support, press two.","Timeout":"5000"}}"#
                );
            }
            "CheckHoursOfOperation" | "CheckStaffing" => {
                let _ = write!(out, r#","Results":"{}","Parameters":{{}}"#, outcome < 90);
            }
            "SetQueue" => {
                let _ = write!(
                    out,
                    r#","Parameters":{{"Queue":"{INSTANCE}/queue/a743aa55-fa47-4bd5-9323-39d0f2c689e1"}}"#
                );
            }
            "Transfer" => out.push_str(r#","Results":"false","Parameters":{}"#),
            "SetAttributes" => {
                let _ = write!(
                    out,
                    r#","Parameters":{{"Key":"loopCount","Value":"{}"}}"#,
                    i % 500
                );
            }
            "PlayPrompt" => out.push_str(
                r#","Parameters":{"Text":"Thank you for calling Example Corp.","Voice":"Joanna"}"#,
            ),
            "SetLoggingBehavior" => out.push_str(r#","Parameters":{"LoggingBehavior":"Enable"}"#),
            "InvokeFlowModule" => out.push_str(
                r#","Parameters":{"FlowModuleId":"b3f1c2d4-0000-4e5f-8a9b-cdef01234567"}"#,
            ),
            _ => {
                let _ = write!(
                    out,
                    r#","Results":"{}","Parameters":{{"Attribute":"segment","ComparisonValue":"gold"}}"#,
                    if outcome < 70 { "NoMatch" } else { "gold" }
                );
            }
        }
        if !self.pad.is_empty() {
            let _ = write!(out, r#","Padding":"{}""#, self.pad);
        }
        out.push('}');
    }
}
