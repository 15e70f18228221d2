//! Cold start, latency and memory of the four Lambda binaries under the Runtime API emulator
//! (harness = false, no criterion).
//!
//! ```text
//! cargo build --release --bins -p connect-events-handlers
//! cargo bench -p connect-events-tests --bench lambda_cold_start [-- --profile release|debug] [--iterations N] [--warm M] [--isolated-only]
//! ```
//!
//! For each binary of `target/<profile>/` (`release` by default; when it is missing the bench falls back
//! to `target/debug/` and says so loudly) the bench runs two scenarios, each printed as a Markdown table:
//!
//! * **isolated**: every AWS endpoint (and `OPENSEARCH_ENDPOINT`) points at `127.0.0.1:9`, where nothing
//!   listens, and each function gets an event it handles **without any network call** (see
//!   [`isolated_scenarios`]). These are the figures of the binary itself: start-up, the Lambda runtime
//!   loop, parsing, policy, logging and metrics.
//! * **local servers**: the functions' AWS clients talk to moto, osmem-server and the Connect fake (the same
//!   servers as `tests/lambda_e2e.rs`), with events that take the full path (DynamoDB lookup, DescribeContact,
//!   metrics refresh into OpenSearch, flow-log read and archive check). Latencies then include the local
//!   servers (moto is a Python server: milliseconds per call), so they are an upper bound of the code's
//!   share, not a prediction of AWS latency. Skipped with `--isolated-only` or when the venv is missing.
//!
//! Per binary and scenario:
//!
//! | column | how |
//! |---|---|
//! | size | the binary's file size |
//! | init | spawn → first `GET /runtime/invocation/next`, median (and max) over `--iterations` fresh processes |
//! | init CPU | on-CPU time of the child (all threads, `/proc/<pid>/task/*/schedstat`) at its first `/next`, median; unlike wall time it is not inflated by a busy machine |
//! | first invoke | the first event of each fresh process, sent once it waits for it: invoke → answer, median |
//! | cold total | spawn → answer of the first event (sent right away, as Lambda does), median |
//! | warm p50 / p95 | one process, 5 unmeasured invocations, then `--warm` measured ones, each sent once the runtime is back at `/next` (idle: work after the previous response is done) |
//! | peak RSS | `VmHWM` of the child: after the first event (median over the fresh processes) and after the warm loop |
//!
//! Every latency is measured at the emulator: it includes the Runtime API round trip over loopback HTTP
//! (the `/next` long poll and the `/response` post), as in Lambda. Each answer is checked, so an error path
//! is never measured by mistake.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use aws_sdk_dynamodb::types::AttributeValue;
use connect_events_handlers::aws::dynamodb::DynamoDenyStore;
use connect_events_tests::connect_fake::{ConnectFake, FakeMetrics};
use connect_events_tests::harness::{moto, unique, venv_dir};
use connect_events_tests::lambda_emulator::{LambdaProcess, Outcome};
use connect_events_tests::seed::{
    c1_ended_an_hour_ago, flow_log_group, put_log_lines, safe_bucket, Endpoints, ShiftedFlowLogs,
};
use connect_events_tests::{fixture_json, target_dir};
use serde_json::{json, Value};

const BINARIES: [&str; 4] = [
    "queue-depth",
    "deny-list-flow",
    "deny-list-enforcer",
    "flow-log-archiver",
];
const INSTANCE: &str = "8f2c6d1e-4b7a-4e39-9c5d-2a1f0b3e7d64";
const BILLING_QUEUE: &str = "a743aa55-fa47-4bd5-9323-39d0f2c689e1";
const SUPPORT_QUEUE: &str = "7b6038b4-1b68-40ff-abd0-7bc9d9b153bf";
/// Set in the environment of the bench executable re-executed as the calibration function.
const ECHO_ENV: &str = "LAMBDA_BENCH_ECHO_RUNTIME";
/// Table name of the calibration row.
const ECHO_NAME: &str = "(emulator floor)";
/// Table name of the reference design's Python function (see [`PYTHON_REFERENCE`]).
const PYTHON_NAME: &str = "(python reference)";

/// The AWS reference design's deny-list check (Knowledge Center "block callers with a DynamoDB
/// list": function B, Python + boto3): look the caller's `CustomerEndpoint.Address` up with
/// `GetItem` and answer `Success`. Preceded by a minimal Runtime API loop (the one `awslambdaric`
/// runs), so it is started and invoked exactly like our binaries, against the same moto.
const PYTHON_REFERENCE: &str = r#"
import json, os, urllib.request
import boto3

dynamodb = boto3.resource("dynamodb")
table = dynamodb.Table(os.environ["DENYLIST_TABLE"])

def lambda_handler(event, context):
    number = event["Details"]["ContactData"]["CustomerEndpoint"]["Address"]
    response = table.get_item(Key={"ContactNumber": number})
    return {"Success": "true" if "Item" in response else "false"}

opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
base = "http://%s/2018-06-01/runtime" % os.environ["AWS_LAMBDA_RUNTIME_API"]
while True:
    with opener.open(base + "/invocation/next") as r:
        rid = r.headers["Lambda-Runtime-Aws-Request-Id"]
        event = json.loads(r.read())
    body = json.dumps(lambda_handler(event, None)).encode()
    request = urllib.request.Request(base + "/invocation/" + rid + "/response", data=body,
                                     headers={"Content-Type": "application/json"}, method="POST")
    with opener.open(request) as r:
        r.read()
"#;

/// Writes [`PYTHON_REFERENCE`] as an executable script run by the tests' venv Python.
fn python_reference_script() -> Option<PathBuf> {
    use std::os::unix::fs::PermissionsExt;
    let python = venv_dir().join("bin").join("python");
    if !python.exists() {
        return None;
    }
    let path = std::env::temp_dir().join(format!("reference-denylist-{}.py", std::process::id()));
    std::fs::write(&path, format!("#!{}\n{PYTHON_REFERENCE}", python.display())).ok()?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).ok()?;
    Some(path)
}
/// Unmeasured invocations before the warm loop.
const WARMUP: usize = 5;
/// Bound of one invocation and of the wait for the first `/next`.
const TIMEOUT: Duration = Duration::from_secs(60);

fn main() -> ExitCode {
    // Re-executed as the calibration function (see `echo_runtime`).
    if std::env::var_os(ECHO_ENV).is_some() {
        return echo_runtime();
    }
    let options = match Options::parse() {
        Ok(o) => o,
        Err(e) => {
            eprintln!(
                "{e}\nusage: lambda_cold_start [--profile release|debug] [--iterations N] [--warm M] [--isolated-only]"
            );
            return ExitCode::from(2);
        }
    };
    let Some((dir, profile)) = binary_dir(&options.profile) else {
        eprintln!(
            "no Lambda binaries in {}/{{release,debug}}: run `cargo build --release --bins -p connect-events-handlers` first",
            target_dir().display()
        );
        return ExitCode::FAILURE;
    };

    let mut report = String::new();
    let _ = writeln!(
        report,
        "Lambda binaries from `{}` ({profile} profile); {} fresh processes per cold figure, {} warm invocations; {} CPUs, load average {} at start.",
        dir.display(),
        options.iterations,
        options.warm,
        std::thread::available_parallelism().map_or(0, usize::from),
        load_average()
    );
    println!("{report}");

    let mut isolated = isolated_scenarios();
    if let Some(echo) = echo_scenario() {
        isolated.push(echo);
    }
    let table = match run_scenarios(&dir, &isolated, &options) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("isolated run failed: {e}");
            return ExitCode::FAILURE;
        }
    };
    let _ = writeln!(
        report,
        "\n**Isolated** (endpoints refused, no network call; see the event column):\n\n{table}"
    );
    println!("{table}");

    if options.isolated_only {
        println!("(local-server scenario skipped: --isolated-only)");
    } else if !venv_dir().join("bin").is_dir() {
        println!(
            "(local-server scenario skipped: no Python venv with moto/osmem-server at {})",
            venv_dir().display()
        );
    } else {
        let runtime = match tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
        {
            Ok(r) => r,
            Err(e) => {
                eprintln!("cannot build a Tokio runtime: {e}");
                return ExitCode::FAILURE;
            }
        };
        let local = runtime.block_on(LocalServers::start());
        let table = match run_scenarios(&dir, &local.scenarios, &options) {
            Ok(t) => t,
            Err(e) => {
                eprintln!("local-server run failed: {e}");
                return ExitCode::FAILURE;
            }
        };
        let _ = writeln!(
            report,
            "\n**Local servers** (moto, osmem-server, Connect fake; full path):\n\n{table}"
        );
        println!("{table}");
        drop(local);
    }

    if profile != options.profile {
        println!("\n!!! {} !!!", fallback_note(&options.profile, profile));
    }
    println!("\n---- Markdown (paste into a README) ----\n{report}");
    ExitCode::SUCCESS
}

// ---------------------------------------------------------------------------------------------------
// options and binaries
// ---------------------------------------------------------------------------------------------------

struct Options {
    profile: String,
    iterations: usize,
    warm: usize,
    isolated_only: bool,
}

impl Options {
    fn parse() -> Result<Options, String> {
        let mut options = Options {
            profile: "release".into(),
            iterations: 20,
            warm: 200,
            isolated_only: false,
        };
        let mut args = std::env::args().skip(1);
        while let Some(arg) = args.next() {
            let mut value = |name: &str| args.next().ok_or(format!("{name} needs a value"));
            match arg.as_str() {
                "--profile" => {
                    options.profile = value("--profile")?;
                    if !matches!(options.profile.as_str(), "release" | "debug") {
                        return Err(format!(
                            "--profile must be release or debug, got {}",
                            options.profile
                        ));
                    }
                }
                "--iterations" => options.iterations = count(&value("--iterations")?)?,
                "--warm" => options.warm = count(&value("--warm")?)?,
                "--isolated-only" => options.isolated_only = true,
                // `cargo bench` passes `--bench`, and possibly a filter.
                _ => {}
            }
        }
        Ok(options)
    }
}

fn count(text: &str) -> Result<usize, String> {
    text.replace('_', "")
        .parse::<usize>()
        .ok()
        .filter(|n| *n > 0)
        .ok_or(format!("expected a positive number, got {text}"))
}

/// `target/<profile>` when it holds every binary, else `target/debug` (with a loud note).
fn binary_dir(profile: &str) -> Option<(PathBuf, &'static str)> {
    let complete = |dir: &Path| BINARIES.iter().all(|b| dir.join(b).is_file());
    let wanted: &'static str = if profile == "debug" {
        "debug"
    } else {
        "release"
    };
    let dir = target_dir().join(wanted);
    if complete(&dir) {
        return Some((dir, wanted));
    }
    let debug = target_dir().join("debug");
    if wanted == "release" && complete(&debug) {
        eprintln!("\n!!! {} !!!\n", fallback_note("release", "debug"));
        return Some((debug, "debug"));
    }
    None
}

fn fallback_note(wanted: &str, used: &str) -> String {
    format!(
        "{wanted} binaries are missing: these figures are for the UNOPTIMISED {used} build, not what Lambda runs. \
         Build them with `cargo build --release --bins -p connect-events-handlers` and run the bench again"
    )
}

fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .and_then(|s| s.split_whitespace().next().map(str::to_string))
        .unwrap_or_else(|| "n/a".into())
}

// ---------------------------------------------------------------------------------------------------
// scenarios
// ---------------------------------------------------------------------------------------------------

/// One binary, its environment, the event it gets and what its answer must look like.
struct Scenario {
    binary: &'static str,
    env: Vec<(String, String)>,
    event: Value,
    /// Short description of the event and the path it takes (a table column).
    what: &'static str,
    expect: Expect,
}

/// The answer a scenario must get (checked on every invocation).
enum Expect {
    /// A response whose `field` is one of the values.
    Response(&'static str, &'static [&'static str]),
    /// An error payload of this type.
    Error(&'static str),
}

impl Expect {
    fn check(&self, outcome: &Outcome) -> Result<(), String> {
        match (self, outcome) {
            (Expect::Response(field, values), Outcome::Response(v))
                if v[*field].as_str().is_some_and(|s| values.contains(&s)) =>
            {
                Ok(())
            }
            (Expect::Error(t), Outcome::Error { error_type, .. }) if error_type == t => Ok(()),
            (Expect::Response(field, values), other) => Err(format!(
                "expected a response with {field} in {values:?}, got {other:?}"
            )),
            (Expect::Error(t), other) => Err(format!("expected error {t}, got {other:?}")),
        }
    }
}

/// Events each function handles without any network call (all endpoints refused):
///
/// * `queue-depth`: the scheduled reconciliation event without `CONNECT_INSTANCE_ID` → `ignored`;
/// * `deny-list-flow`: the chat fixture (no customer number) → `no_number`;
/// * `deny-list-enforcer`: a QUEUED contact event (only INITIATED is enforced) → `skipped`;
/// * `flow-log-archiver`: it has no I/O-free success path (every contact event reads CloudWatch Logs),
///   so it gets a scheduled event, rejected as `InvalidInput` after parsing, before any AWS call.
fn isolated_scenarios() -> Vec<Scenario> {
    let endpoints = Endpoints::refused();
    let schedule = json!({
        "version": "0", "id": "bench-schedule", "detail-type": "Scheduled Event", "source": "aws.events",
        "account": "123456789012", "time": "2025-06-10T14:00:00Z", "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/bench"], "detail": {}
    });
    vec![
        Scenario {
            binary: "queue-depth",
            env: endpoints.env(&[]),
            event: schedule.clone(),
            what: "scheduled event, no instance → ignored",
            expect: Expect::Response("outcome", &["ignored"]),
        },
        Scenario {
            binary: "deny-list-flow",
            env: endpoints.env(&[]),
            event: fixture_json("flow-invocation/chat-null-endpoints.json"),
            what: "chat flow invocation → no_number",
            expect: Expect::Response("result", &["no_number"]),
        },
        Scenario {
            binary: "deny-list-enforcer",
            env: endpoints.env(&[]),
            event: fixture_json("events/voice-inbound-queued.json"),
            what: "QUEUED contact event → skipped",
            expect: Expect::Response("outcome", &["skipped"]),
        },
        Scenario {
            binary: "flow-log-archiver",
            env: endpoints.env(&[]),
            event: schedule,
            what: "scheduled event → InvalidInput error",
            expect: Expect::Error("InvalidInput"),
        },
    ]
}

/// The local servers and what the scenarios need to stay alive (the Connect fake).
struct LocalServers {
    scenarios: Vec<Scenario>,
    _connect: ConnectFake,
}

impl LocalServers {
    /// Starts (or reuses) moto and osmem-server, starts a Connect fake and seeds everything:
    ///
    /// * `queue-depth`: QUEUED event, two queues in the fake, `QUEUE_DEPTH_MIN_INTERVAL_MS=1` so every event
    ///   wins its slot → slot claim, GetCurrentMetricData, bulk write → `refreshed`;
    /// * `deny-list-flow`: voice lookup of an unlisted caller → one GetItem → `not_listed`;
    /// * `deny-list-enforcer`: INITIATED event of an unlisted caller → DescribeContact + GetItem → `not_listed`;
    /// * `flow-log-archiver`: DISCONNECTED of C1 (12 log lines seeded), FilterLogEvents → `archived` once, then
    ///   GetObject → `unchanged`.
    async fn start() -> LocalServers {
        let moto = moto().await;
        let fake = ConnectFake::start();
        fake.add_queue(INSTANCE, BILLING_QUEUE, Some("BillingQueue"), "STANDARD");
        fake.add_queue(INSTANCE, SUPPORT_QUEUE, Some("SupportQueue"), "STANDARD");
        fake.set_metrics(
            INSTANCE,
            BILLING_QUEUE,
            "VOICE",
            FakeMetrics {
                contacts_in_queue: 2,
                ..FakeMetrics::default()
            },
        );
        let endpoints = Endpoints::local(Some(&fake)).await;

        // Deny list: a table with one entry; the benchmarked caller is not listed.
        let table = unique("bench-denylist");
        let ddb = moto.dynamodb().await;
        DynamoDenyStore::from_client(ddb.clone(), &table)
            .ensure_table()
            .await
            .expect("creating the deny-list table");
        ddb.put_item()
            .table_name(&table)
            .item("ContactNumber", AttributeValue::S("+14255550100".into()))
            .send()
            .await
            .expect("seeding the deny list");
        let mut lookup = fixture_json("flow-invocation/voice-inbound-lookup.json");
        let mut listed_lookup = lookup.clone();
        listed_lookup["Details"]["ContactData"]["CustomerEndpoint"]["Address"] =
            json!("+14255550100");
        lookup["Details"]["ContactData"]["CustomerEndpoint"]["Address"] = json!("+14255550111");
        let initiated = fixture_json("events/voice-inbound-initiated.json");
        let contact_id = initiated["detail"]["contactId"]
            .as_str()
            .expect("contactId");
        let mut contact = fixture_json("api/describe-contact-voice.json")["Contact"].clone();
        if let Some(map) = contact.as_object_mut() {
            map.remove("DisconnectTimestamp");
            map.insert("Id".into(), json!(contact_id));
            map.insert(
                "CustomerEndpoint".into(),
                json!({"Type": "TELEPHONE_NUMBER", "Address": "+14255550111"}),
            );
        }
        fake.add_contact(INSTANCE, contact);

        // Flow logs (the fixtures shifted so that C1 ended an hour ago) and a bucket that passes the
        // runbook's checks.
        let ShiftedFlowLogs {
            disconnected,
            lines,
            ..
        } = c1_ended_an_hour_ago();
        let logs = moto.logs().await;
        let log_group = flow_log_group(&logs, "bench-flow-logs").await;
        put_log_lines(&logs, &log_group, "flows", &lines).await;
        let s3 = moto.s3().await;
        let bucket = safe_bucket(&s3, "bench-archive").await;

        let index = unique("bench-queue-depth");
        let scenarios = vec![
            Scenario {
                binary: "queue-depth",
                env: endpoints.env(&[
                    ("QUEUE_DEPTH_INDEX", index.as_str()),
                    ("QUEUE_DEPTH_MIN_INTERVAL_MS", "1"),
                ]),
                event: fixture_json("events/voice-inbound-queued.json"),
                what: "QUEUED → claim + metrics + bulk → refreshed",
                expect: Expect::Response("outcome", &["refreshed"]),
            },
            Scenario {
                binary: "deny-list-flow",
                env: endpoints.env(&[("DENYLIST_TABLE", table.as_str())]),
                event: lookup,
                what:
                    "voice lookup of an unlisted caller → one GetItem → not_listed",
                expect: Expect::Response("result", &["not_listed"]),
            },
            Scenario {
                binary: "deny-list-flow",
                env: endpoints.env(&[("DENYLIST_TABLE", table.as_str())]),
                event: listed_lookup.clone(),
                what: "voice lookup of a listed caller → GetItem, answer, then the hit UpdateItem → listed",
                expect: Expect::Response("result", &["listed"]),
            },
            Scenario {
                binary: PYTHON_NAME,
                env: endpoints.env(&[("DENYLIST_TABLE", table.as_str())]),
                event: listed_lookup,
                what:
                    "the reference design's Python + boto3 function B, same listed caller → GetItem",
                expect: Expect::Response("Success", &["true"]),
            },
            Scenario {
                binary: "deny-list-enforcer",
                env: endpoints.env(&[("DENYLIST_TABLE", table.as_str())]),
                event: initiated,
                what: "INITIATED → DescribeContact + GetItem → not_listed",
                expect: Expect::Response("outcome", &["not_listed"]),
            },
            Scenario {
                binary: "flow-log-archiver",
                env: endpoints.env(&[
                    ("ARCHIVE_BUCKET", bucket.as_str()),
                    ("FLOW_LOG_GROUP", log_group.as_str()),
                    ("FLOW_LOGS_SETTLE_POLLS", "1"),
                    ("FLOW_LOGS_STRATEGY", "filter"),
                ]),
                event: disconnected,
                what: "DISCONNECTED → FilterLogEvents + GetObject → unchanged",
                expect: Expect::Response("outcome", &["archived", "unchanged"]),
            },
        ];
        LocalServers {
            scenarios,
            _connect: fake,
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// calibration: the emulator's own overhead
// ---------------------------------------------------------------------------------------------------

/// The calibration row: this bench executable re-executed as a minimal Lambda function (std only, one
/// keep-alive connection, answers `{"outcome":"echo"}` at once). Its latencies are the floor the emulator,
/// the loopback HTTP round trips and the measuring side add to every figure; its size column is the bench
/// executable's.
fn echo_scenario() -> Option<Scenario> {
    std::env::current_exe().ok()?;
    let env = vec![(ECHO_ENV.to_string(), "1".to_string())];
    Some(Scenario {
        binary: ECHO_NAME,
        env,
        event: json!({"ping": true}),
        what: "std-only function answering at once",
        expect: Expect::Response("outcome", &["echo"]),
    })
}

/// The calibration function: `GET /next`, `POST /response`, forever, over one HTTP/1.1 connection.
fn echo_runtime() -> ExitCode {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpStream;

    let Ok(api) = std::env::var("AWS_LAMBDA_RUNTIME_API") else {
        eprintln!("{ECHO_ENV} is set but AWS_LAMBDA_RUNTIME_API is not");
        return ExitCode::FAILURE;
    };
    let stream = match TcpStream::connect(&api) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("cannot connect to {api}: {e}");
            return ExitCode::FAILURE;
        }
    };
    let _ = stream.set_nodelay(true);
    let Ok(mut writer) = stream.try_clone() else {
        return ExitCode::FAILURE;
    };
    let mut reader = BufReader::new(stream);
    // One request on the shared connection; returns the request-id header and drains the body.
    let mut exchange = |method: &str, path: &str, body: &[u8]| -> std::io::Result<Option<String>> {
        write!(
            writer,
            "{method} {path} HTTP/1.1\r\nHost: {api}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        )?;
        writer.write_all(body)?;
        writer.flush()?;
        let mut request_id = None;
        let mut length = 0usize;
        let mut line = String::new();
        loop {
            line.clear();
            if reader.read_line(&mut line)? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                match name.trim().to_ascii_lowercase().as_str() {
                    "content-length" => length = value.trim().parse().unwrap_or(0),
                    "lambda-runtime-aws-request-id" => request_id = Some(value.trim().to_string()),
                    _ => {}
                }
            }
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body)?;
        Ok(request_id)
    };
    loop {
        let id = match exchange("GET", "/2018-06-01/runtime/invocation/next", b"") {
            Ok(Some(id)) => id,
            Ok(None) => return ExitCode::FAILURE,
            // The emulator stopped: the bench is done with this process.
            Err(_) => return ExitCode::SUCCESS,
        };
        let path = format!("/2018-06-01/runtime/invocation/{id}/response");
        if exchange("POST", &path, br#"{"outcome":"echo"}"#).is_err() {
            return ExitCode::SUCCESS;
        }
    }
}

// ---------------------------------------------------------------------------------------------------
// measurement
// ---------------------------------------------------------------------------------------------------

/// The figures of one scenario.
struct Figures {
    binary: &'static str,
    what: &'static str,
    size: u64,
    init: Vec<Duration>,
    init_cpu: Vec<Duration>,
    first: Vec<Duration>,
    cold_total: Vec<Duration>,
    rss_first: Vec<u64>,
    warm: Vec<Duration>,
    rss_warm: Option<u64>,
}

fn run_scenarios(dir: &Path, scenarios: &[Scenario], options: &Options) -> Result<String, String> {
    let mut rows = Vec::new();
    for scenario in scenarios {
        eprintln!("measuring {} ({})", scenario.binary, scenario.what);
        rows.push(measure(dir, scenario, options)?);
    }
    Ok(table(&rows))
}

fn measure(dir: &Path, scenario: &Scenario, options: &Options) -> Result<Figures, String> {
    let binary = if scenario.binary == ECHO_NAME {
        std::env::current_exe().map_err(|e| format!("cannot find the bench executable: {e}"))?
    } else if scenario.binary == PYTHON_NAME {
        python_reference_script().ok_or("the venv's python is missing")?
    } else {
        dir.join(scenario.binary)
    };
    let size = std::fs::metadata(&binary)
        .map_err(|e| format!("{}: {e}", binary.display()))?
        .len();
    let mut figures = Figures {
        binary: scenario.binary,
        what: scenario.what,
        size,
        init: Vec::new(),
        init_cpu: Vec::new(),
        first: Vec::new(),
        cold_total: Vec::new(),
        rss_first: Vec::new(),
        warm: Vec::new(),
        rss_warm: None,
    };
    let invoke = |lambda: &LambdaProcess| {
        let invocation = lambda
            .try_invoke(&scenario.event, TIMEOUT)
            .map_err(|e| format!("{}: {e}", scenario.binary))?;
        scenario
            .expect
            .check(&invocation.outcome)
            .map_err(|e| format!("{}: {e}", scenario.binary))?;
        Ok::<_, String>(invocation.elapsed)
    };

    for _ in 0..options.iterations {
        // Init and first invocation: wait for the first /next, then send the event.
        let lambda = LambdaProcess::spawn(&binary, scenario.binary, &scenario.env);
        let init = wait_first_next(&lambda)?;
        figures.init.push(init);
        if let Some(cpu) = process_cpu(lambda.pid()) {
            figures.init_cpu.push(cpu);
        }
        figures.first.push(invoke(&lambda)?);
        if let Some(rss) = peak_rss_kb(lambda.pid()) {
            figures.rss_first.push(rss);
        }
        drop(lambda);

        // Cold total: the event is queued right after the spawn, as Lambda does on a cold start.
        let started = Instant::now();
        let lambda = LambdaProcess::spawn(&binary, scenario.binary, &scenario.env);
        invoke(&lambda)?;
        figures.cold_total.push(started.elapsed());
    }

    let lambda = LambdaProcess::spawn(&binary, scenario.binary, &scenario.env);
    // Each warm invocation goes to an idle runtime (back at /next: work after the previous
    // response, such as the flow's hit count, is done), as Lambda routes to idle environments.
    let idle = |lambda: &LambdaProcess| {
        lambda
            .wait_idle(TIMEOUT)
            .map(drop)
            .ok_or_else(|| format!("{}: runtime not back at /next", scenario.binary))
    };
    for _ in 0..WARMUP {
        idle(&lambda)?;
        invoke(&lambda)?;
    }
    for _ in 0..options.warm {
        idle(&lambda)?;
        figures.warm.push(invoke(&lambda)?);
    }
    figures.rss_warm = peak_rss_kb(lambda.pid());
    if let Some(status) = lambda.exit_status() {
        return Err(format!(
            "{} exited during the warm loop: {status}",
            scenario.binary
        ));
    }
    Ok(figures)
}

/// Polls the emulator until the process asked for its first event (bounded).
fn wait_first_next(lambda: &LambdaProcess) -> Result<Duration, String> {
    let deadline = Instant::now() + TIMEOUT;
    loop {
        if let Some(t) = lambda.time_to_first_next() {
            return Ok(t);
        }
        if let Some(status) = lambda.exit_status() {
            return Err(format!(
                "the process exited before asking for an event ({status}): {:?}\n{}",
                lambda.init_error(),
                lambda.logs().join("\n")
            ));
        }
        if Instant::now() > deadline {
            return Err(format!("no /next within {TIMEOUT:?}"));
        }
        std::thread::sleep(Duration::from_micros(200));
    }
}

/// `VmHWM` (peak resident set) of a process, in kB.
fn peak_rss_kb(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

/// On-CPU time of every thread of a process so far (`/proc/<pid>/task/*/schedstat`, nanoseconds).
fn process_cpu(pid: u32) -> Option<Duration> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?;
    let mut total = 0u64;
    for task in tasks.flatten() {
        let stat = std::fs::read_to_string(task.path().join("schedstat")).ok()?;
        total += stat.split_whitespace().next()?.parse::<u64>().ok()?;
    }
    Some(Duration::from_nanos(total))
}

// ---------------------------------------------------------------------------------------------------
// report
// ---------------------------------------------------------------------------------------------------

fn percentile<T: Copy + Ord>(values: &[T], p: f64) -> Option<T> {
    let mut sorted = values.to_vec();
    sorted.sort_unstable();
    if sorted.is_empty() {
        return None;
    }
    // Nearest rank.
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    Some(sorted[rank.clamp(1, sorted.len()) - 1])
}

fn ms(d: Option<Duration>) -> String {
    d.map_or_else(
        || "n/a".into(),
        |d| format!("{:.1} ms", d.as_secs_f64() * 1e3),
    )
}

fn ms2(d: Option<Duration>) -> String {
    d.map_or_else(
        || "n/a".into(),
        |d| format!("{:.2} ms", d.as_secs_f64() * 1e3),
    )
}

fn mib_kb(kb: Option<u64>) -> String {
    kb.map_or_else(
        || "n/a".into(),
        |kb| format!("{:.1} MiB", kb as f64 / 1024.0),
    )
}

fn table(rows: &[Figures]) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| function | event | size | init p50 (max) | init CPU p50 | first invoke p50 | cold total p50 | warm p50 | warm p95 | peak RSS first / warm |"
    );
    let _ = writeln!(out, "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        let _ = writeln!(
            out,
            "| `{}` | {} | {} | {} ({}) | {} | {} | {} | {} | {} | {} / {} |",
            r.binary,
            r.what,
            if r.binary == ECHO_NAME {
                "–".to_string()
            } else {
                format!("{:.1} MiB", r.size as f64 / (1024.0 * 1024.0))
            },
            ms(percentile(&r.init, 50.0)),
            ms(r.init.iter().max().copied()),
            ms(percentile(&r.init_cpu, 50.0)),
            ms2(percentile(&r.first, 50.0)),
            ms(percentile(&r.cold_total, 50.0)),
            ms2(percentile(&r.warm, 50.0)),
            ms2(percentile(&r.warm, 95.0)),
            mib_kb(percentile(&r.rss_first, 50.0)),
            mib_kb(r.rss_warm),
        );
    }
    out
}
