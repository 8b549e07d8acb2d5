//! Figure 5: many requests in flight at the SIGTERM. Do they all complete
//! with `200`, how long after the last one does the process exit, and how
//! much memory did it take at its peak?
//!
//! Each repetition runs in a child process of the runner
//! (`graceful-bench scale-one ...`) that starts the server, so that the
//! server is the only process that child waits for and
//! `getrusage(RUSAGE_CHILDREN)` gives exactly the server's peak resident
//! set. The child raises its open-file limit to the hard limit first; the
//! server inherits it.
//!
//! The client opens the connections 64 at a time and sends
//! `GET /sleep?ms=N` on each as soon as it is open; after each batch it
//! waits for the answer to a `GET /health/live` on a connection of its own,
//! which shows that the server has accepted the batch (so the listen
//! backlog never overflows). Once every request is written it waits a
//! little more for the server to read them, and sends the SIGTERM. `N` is
//! chosen so that no response is due before the signal; any that came
//! before it is counted and shown.

use crate::server::{self, Kind, Running, Spec};
use nix::sys::resource::{Resource, UsageWho, getrlimit, getrusage, setrlimit};
use nix::sys::signal::Signal;
use nix::unistd::Pid;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::Notify;

/// Connections opened at once: half the listen backlog the tokio servers
/// get by default (128), so that it never overflows.
const BATCH: usize = 64;

/// How long a request may wait for its response: its sleep, the drain,
/// and a wide margin.
const RESPONSE_TIMEOUT: Duration = Duration::from_secs(60);

/// How long the harness waits for an exit before it kills the process.
const EXIT_TIMEOUT: Duration = Duration::from_secs(40);

/// What figure 5 runs.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Config {
    pub(crate) connections: usize,
    pub(crate) repetitions: usize,
}

impl Config {
    /// How long each request sleeps: long enough for the client to open
    /// every connection and for the server to read every request before
    /// the signal, on two cores.
    pub(crate) fn sleep(&self) -> Duration {
        Duration::from_millis(1_500 + self.connections as u64 / 4)
    }

    /// How long after the last request is written the signal comes.
    pub(crate) fn settle(&self) -> Duration {
        Duration::from_millis(200 + self.connections as u64 / 10)
    }
}

/// One repetition's figures.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Sample {
    pub(crate) ok: usize,
    pub(crate) other: usize,
    pub(crate) errors: usize,
    /// Responses that came before the signal.
    pub(crate) before_signal: usize,
    /// From the last response to the exit, in ms.
    pub(crate) latency_ms: f64,
    /// From the last response to the server's `exit` line, in ms (`NaN`
    /// for a server that prints none): the rest, up to the exit, is the
    /// process's teardown (the runtime dropped, then the kernel closing
    /// every socket it still holds and freeing its memory).
    pub(crate) exit_line_ms: f64,
    pub(crate) peak_rss_kib: u64,
    /// From the first connect to the last batch accepted, in ms.
    pub(crate) ramp_ms: f64,
    pub(crate) ending: String,
}

impl Sample {
    fn to_line(&self) -> String {
        format!(
            "scale ok={} other={} errors={} before_signal={} latency_ms={} exit_line_ms={} peak_rss_kib={} ramp_ms={} ending={}",
            self.ok,
            self.other,
            self.errors,
            self.before_signal,
            self.latency_ms,
            self.exit_line_ms,
            self.peak_rss_kib,
            self.ramp_ms,
            self.ending.replace(' ', "_")
        )
    }

    fn from_line(line: &str) -> Option<Sample> {
        let fields: BTreeMap<&str, &str> = line
            .strip_prefix("scale ")?
            .split(' ')
            .filter_map(|kv| kv.split_once('='))
            .collect();
        Some(Sample {
            ok: fields.get("ok")?.parse().ok()?,
            other: fields.get("other")?.parse().ok()?,
            errors: fields.get("errors")?.parse().ok()?,
            before_signal: fields.get("before_signal")?.parse().ok()?,
            latency_ms: fields.get("latency_ms")?.parse().ok()?,
            exit_line_ms: fields.get("exit_line_ms")?.parse().ok()?,
            peak_rss_kib: fields.get("peak_rss_kib")?.parse().ok()?,
            ramp_ms: fields.get("ramp_ms")?.parse().ok()?,
            ending: fields.get("ending")?.replace('_', " "),
        })
    }
}

/// One server's repetitions.
#[derive(Debug, Clone, Default)]
pub(crate) struct Row {
    pub(crate) server: String,
    pub(crate) samples: Vec<Sample>,
    pub(crate) failures: Vec<String>,
}

/// Figure 5 for `spec`: each repetition in a `scale-one` child of `runner`.
pub(crate) fn measure(runner: &Path, spec: &Spec, config: &Config) -> Row {
    let mut row = Row {
        server: spec.name.clone(),
        ..Row::default()
    };
    for _ in 0..config.repetitions {
        match run_child(runner, spec, config) {
            Ok(sample) => {
                eprintln!(
                    "  {:<32} {}/{} ok, exit {:.2} ms after the last (its `exit` line {:.2} ms), peak {:.1} MiB, ramp {:.0} ms",
                    spec.name,
                    sample.ok,
                    config.connections,
                    sample.latency_ms,
                    sample.exit_line_ms,
                    sample.peak_rss_kib as f64 / 1024.0,
                    sample.ramp_ms
                );
                row.samples.push(sample);
            }
            Err(error) => {
                eprintln!("  {error}");
                row.failures.push(error);
            }
        }
    }
    row
}

fn run_child(runner: &Path, spec: &Spec, config: &Config) -> Result<Sample, String> {
    let child = Command::new(runner)
        .arg("scale-one")
        .arg("--name")
        .arg(&spec.name)
        .arg("--program")
        .arg(&spec.program)
        .arg("--connections")
        .arg(config.connections.to_string())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("{}: cannot run scale-one: {e}", spec.name))?;
    // Interrupted, it ends its server before itself.
    let pid = i32::try_from(child.id()).map(Pid::from_raw).ok();
    if let Some(pid) = pid {
        server::adopt(pid, Signal::SIGTERM);
    }
    let output = child.wait_with_output();
    if let Some(pid) = pid {
        server::release(pid);
    }
    let output = output.map_err(|e| format!("{}: scale-one: {e}", spec.name))?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    eprint!("{stderr}");
    stdout.lines().find_map(Sample::from_line).ok_or_else(|| {
        let why = stderr.lines().last().unwrap_or("no result").to_owned();
        format!("{}: {why}", spec.name)
    })
}

/// `graceful-bench scale-one --name NAME --program PATH --connections N`:
/// one repetition, its figures printed on standard output as one line.
pub(crate) fn one(args: &[String]) -> Result<String, String> {
    let mut name = None;
    let mut program = None;
    let mut connections = None;
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = || args.next().ok_or_else(|| format!("{arg} needs a value"));
        match arg.as_str() {
            "--name" => name = Some(value()?.clone()),
            "--program" => program = Some(PathBuf::from(value()?)),
            "--connections" => {
                connections = Some(
                    value()?
                        .parse::<usize>()
                        .map_err(|e| format!("--connections: {e}"))?,
                )
            }
            other => return Err(format!("scale-one: unknown argument {other:?}")),
        }
    }
    let (Some(name), Some(program), Some(connections)) = (name, program, connections) else {
        return Err("scale-one needs --name, --program and --connections".to_owned());
    };
    let config = Config {
        connections,
        repetitions: 1,
    };
    let (soft, hard) = raise_open_files()?;
    let needed = connections as u64 + 64;
    if soft < needed {
        return Err(format!(
            "the open-file limit is {soft} (hard {hard}) and {connections} connections need {needed}"
        ));
    }
    let spec = Spec {
        name,
        about: String::new(),
        kind: Kind::Target,
        runtime: "",
        program,
        args: Vec::new(),
    };
    run_one(&spec, &config).map(|sample| sample.to_line())
}

/// Raises the soft open-file limit to the hard one; returns both.
pub(crate) fn raise_open_files() -> Result<(u64, u64), String> {
    let (soft, hard) =
        getrlimit(Resource::RLIMIT_NOFILE).map_err(|e| format!("getrlimit(NOFILE): {e}"))?;
    if soft < hard {
        setrlimit(Resource::RLIMIT_NOFILE, hard, hard)
            .map_err(|e| format!("setrlimit(NOFILE, {hard}): {e}"))?;
    }
    getrlimit(Resource::RLIMIT_NOFILE).map_err(|e| format!("getrlimit(NOFILE): {e}"))
}

/// When a response was read, and its status; or what went wrong.
type Outcome = Result<(Instant, u16), String>;

fn run_one(spec: &Spec, config: &Config) -> Result<Sample, String> {
    let mut server = Running::start(spec)?;
    let addr = server.addr();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("tokio runtime: {e}"))?;
    let sleep = config.sleep();
    let path = format!("/sleep?ms={}", sleep.as_millis());
    let progress = Arc::new(Progress {
        written: AtomicUsize::new(0),
        changed: Notify::new(),
    });
    let request: Arc<[u8]> = crate::http::request(addr, &path).into();
    let live = crate::http::request(addr, "/health/live");
    let started = Instant::now();
    // Open the connections a batch at a time, each batch followed by a
    // `GET /health/live` on a connection of its own: its answer means the
    // server has accepted that connection, and so (the accept queue being
    // first in, first out) every connection before it. The listen backlog
    // never holds more than one batch.
    let ramp_budget = sleep + Duration::from_secs(30);
    let (tasks, ramp) = runtime.block_on(async {
        let deadline = tokio::time::Instant::now() + ramp_budget;
        let mut tasks = Vec::with_capacity(config.connections);
        while tasks.len() < config.connections {
            let batch = BATCH.min(config.connections - tasks.len());
            for _ in 0..batch {
                let (request, progress) = (request.clone(), progress.clone());
                tasks.push(tokio::spawn(async move {
                    request_once(addr, &request, &progress).await
                }));
            }
            let opened = tasks.len();
            let accepted = async {
                loop {
                    let changed = progress.changed.notified();
                    if progress.written.load(Ordering::SeqCst) >= opened {
                        break;
                    }
                    changed.await;
                }
                request_once(addr, &live, &Progress::default()).await
            };
            match tokio::time::timeout_at(deadline, accepted).await {
                Ok(Ok((_, 200))) => {}
                Ok(Ok((_, status))) => eprintln!("  {}: /health/live answered {status}", spec.name),
                Ok(Err(error)) => eprintln!("  {}: /health/live: {error}", spec.name),
                Err(_) => break,
            }
        }
        (tasks, started.elapsed())
    });
    std::thread::sleep(config.settle());
    let signalled = server.signal(Signal::SIGTERM)?;

    let outcomes: Vec<Outcome> = runtime.block_on(async {
        let mut outcomes = Vec::with_capacity(tasks.len());
        for task in tasks {
            outcomes.push(task.await.unwrap_or_else(|e| Err(format!("task: {e}"))));
        }
        outcomes
    });
    let exit = server.wait(EXIT_TIMEOUT)?;
    let exit_line = server.exit_line_at();
    let peak_rss_kib = getrusage(UsageWho::RUSAGE_CHILDREN)
        .map(|usage| u64::try_from(usage.max_rss()).unwrap_or(0))
        .map_err(|e| format!("getrusage: {e}"))?;
    drop(runtime);

    let mut sample = Sample {
        ok: 0,
        other: 0,
        errors: 0,
        before_signal: 0,
        latency_ms: 0.0,
        exit_line_ms: f64::NAN,
        peak_rss_kib,
        ramp_ms: ramp.as_secs_f64() * 1e3,
        ending: server::describe(exit.status),
    };
    let mut last = None::<Instant>;
    let mut first_error = None;
    for outcome in outcomes {
        match outcome {
            Ok((at, status)) => {
                if status == 200 {
                    sample.ok += 1;
                } else {
                    sample.other += 1;
                }
                if at < signalled {
                    sample.before_signal += 1;
                }
                last = Some(last.map_or(at, |l| l.max(at)));
            }
            Err(error) => {
                sample.errors += 1;
                first_error.get_or_insert(error);
            }
        }
    }
    // Connections never opened (the ramp ran out of time) failed too.
    sample.errors += config
        .connections
        .saturating_sub(sample.ok + sample.other + sample.errors);
    if let Some(error) = first_error {
        eprintln!(
            "  {}: {} of {} requests failed, the first: {error}",
            spec.name, sample.errors, config.connections
        );
    }
    sample.latency_ms = last.map_or(f64::NAN, |last| server::millis_between(last, exit.at));
    if let (Some(last), Some(line)) = (last, exit_line) {
        sample.exit_line_ms = server::millis_between(last, line);
    }
    Ok(sample)
}

/// How many requests are written (or could not be).
#[derive(Debug, Default)]
struct Progress {
    written: AtomicUsize,
    changed: Notify,
}

impl Progress {
    fn wrote(&self) {
        self.written.fetch_add(1, Ordering::SeqCst);
        // A permit is kept for a waiter that is about to wait.
        self.changed.notify_one();
    }
}

/// Opens a connection, sends the request, reads the response.
async fn request_once(addr: SocketAddr, request: &[u8], progress: &Progress) -> Outcome {
    let mut stream = {
        let stream = TcpStream::connect(addr).await;
        let mut stream = match stream {
            Ok(stream) => stream,
            Err(error) => {
                progress.wrote();
                return Err(format!("connect: {error}"));
            }
        };
        let sent = stream.write_all(request).await;
        progress.wrote();
        sent.map_err(|e| format!("write: {e}"))?;
        stream
    };
    let response = async {
        let mut buf = Vec::with_capacity(256);
        loop {
            if let Some(parsed) = crate::http::parse(&buf).map_err(|e| e.to_string())? {
                return Ok((Instant::now(), parsed.status));
            }
            buf.reserve(256);
            match stream.read_buf(&mut buf).await {
                Ok(0) => return Err("closed before a whole response".to_owned()),
                Ok(_) => {}
                Err(error) => return Err(format!("read: {error}")),
            }
        }
    };
    tokio::time::timeout(RESPONSE_TIMEOUT, response)
        .await
        .unwrap_or_else(|_| {
            Err(format!(
                "no response within {} s",
                RESPONSE_TIMEOUT.as_secs()
            ))
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_sample_goes_through_its_line() {
        let sample = Sample {
            ok: 9_998,
            other: 1,
            errors: 1,
            before_signal: 0,
            latency_ms: 27.5,
            exit_line_ms: 3.25,
            peak_rss_kib: 162_000,
            ramp_ms: 540.25,
            ending: "exit 0".to_owned(),
        };
        let line = sample.to_line();
        assert!(line.starts_with("scale ok=9998 "));
        assert_eq!(Sample::from_line(&line), Some(sample));
        assert_eq!(Sample::from_line("scale ok=1"), None);
        assert_eq!(Sample::from_line("listening 127.0.0.1:1"), None);
    }

    #[test]
    fn no_response_is_due_before_the_signal() {
        for connections in [1_000, 10_000] {
            let config = Config {
                connections,
                repetitions: 1,
            };
            // A ramp of 1 ms per 20 connections (twice what two cores take)
            // still leaves a margin.
            let ramp = Duration::from_millis(connections as u64 / 20);
            assert!(ramp + config.settle() + Duration::from_millis(500) < config.sleep());
        }
    }
}
