//! Figure 10: requests failed during 10 zero-downtime upgrades under load,
//! against 10 stop-then-start restarts of the same target on the same port
//! in the same run (what `targets/tests/upgrade.rs` asserts for the tokio
//! target, measured here for each of them).
//!
//! For each of graceful's targets, two runs of [`Config::restarts`]
//! restarts each, under the same steady load:
//!
//! - **upgrade**: `SIGHUP` (contract rules 23 to 27): the target prints
//!   `upgrading`, starts a new process of itself that inherits the
//!   listening socket, and once that one prints `listening` the old one
//!   prints `upgrade PID`, drains and exits. The next `SIGHUP` goes to the
//!   new pid once the old process has printed `exit`.
//! - **stop, then start**: `SIGTERM`, wait for the exit, start the same
//!   program again on the same port: what a restart without an upgrade is.
//!
//! The load: [`Config::fresh_clients`] clients sending `GET /sleep?ms=N`
//! each on a new connection (`Connection: close`), and
//! [`Config::kept_clients`] on keep-alive connections, reconnecting when a
//! response says `Connection: close`. A request fails unless it gets its
//! `200`, and each failure is counted by what the client saw: `refused`
//! (nothing listened), `reset`, `EOF` (closed before any byte), another
//! status (by its code), `truncated`, `timed out`, `other`. Two answers are
//! retried once instead, on a new connection, as the kit's upgrade scenario
//! and any HTTP client do: a `503` with `Retry-After` (rule 4's answer to
//! new work on a kept-alive connection once the process is draining), and a
//! kept-alive connection closed before any byte of the answer (the race
//! every HTTP/1.1 client meets when a server closes an idle connection;
//! RFC 9112, section 9.3.1, lets it retry an idempotent request). A retry
//! counts under `retried` by its reason, and its own outcome counts.
//!
//! The clients are the conformance kit's (`graceful_conformance::http`),
//! and its `Process` follows the upgraded processes through their shared
//! standard output, as the kit's upgrade scenarios do.

use crate::server::Spec;
use graceful_conformance::Target;
use graceful_conformance::http::{self, Conn, Outcome, Request};
use graceful_conformance::process::{Process, Signal};
use nix::sys::signal::{Signal as Nix, kill};
use nix::unistd::Pid;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::{Duration, Instant};

/// How long a process may take to print `listening`, and an upgrade to hand
/// over (rule 25's 10 s, plus slack for a busy machine).
const READY_BOUND: Duration = Duration::from_secs(15);
/// How long a process may take to exit once asked to.
const EXIT_BOUND: Duration = Duration::from_secs(15);
/// How long a client waits for one answer.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// What the figure runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Config {
    /// Restarts in a row, each way.
    pub(crate) restarts: usize,
    pub(crate) fresh_clients: usize,
    pub(crate) kept_clients: usize,
    /// How long each request takes on the server (`/sleep?ms=N`): long
    /// enough to be in flight at a hand-over.
    pub(crate) work_ms: u64,
    /// The load before the first restart, and between two restarts.
    pub(crate) pause: Duration,
}

impl Config {
    /// The quick run is the same: ten restarts each way take seconds.
    pub(crate) fn new(_quick: bool) -> Config {
        Config {
            restarts: 10,
            fresh_clients: 4,
            kept_clients: 4,
            work_ms: 20,
            pause: Duration::from_millis(200),
        }
    }
}

/// How the target is restarted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum How {
    Upgrade,
    StopThenStart,
}

impl How {
    pub(crate) fn label(self) -> &'static str {
        match self {
            How::Upgrade => "SIGHUP upgrade",
            How::StopThenStart => "stop, then start",
        }
    }
}

/// What one kind of client saw.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Tally {
    /// Requests sent (a retry is not a second request).
    pub(crate) requests: u64,
    /// Failed requests by what the client saw.
    pub(crate) failures: BTreeMap<String, u64>,
    /// Requests retried on a new connection, by why: `503` (with
    /// `Retry-After`), `EOF` (a kept-alive connection closed before any
    /// byte).
    pub(crate) retried: BTreeMap<String, u64>,
}

impl Tally {
    pub(crate) fn failed(&self) -> u64 {
        self.failures.values().sum()
    }

    fn fail(&mut self, kind: String) {
        *self.failures.entry(kind).or_default() += 1;
    }

    fn add(&mut self, other: &Tally) {
        self.requests += other.requests;
        for (mine, theirs) in [
            (&mut self.failures, &other.failures),
            (&mut self.retried, &other.retried),
        ] {
            for (kind, n) in theirs {
                *mine.entry(kind.clone()).or_default() += n;
            }
        }
    }
}

/// The figure's name for what a client saw.
fn kind(outcome: &Outcome) -> String {
    match outcome {
        Outcome::Response(r) => r.status().to_string(),
        Outcome::Refused => "refused".to_owned(),
        Outcome::Closed { reset: true } => "reset".to_owned(),
        Outcome::Closed { reset: false } => "EOF".to_owned(),
        Outcome::Truncated { .. } => "truncated".to_owned(),
        Outcome::TimedOut { .. } => "timed out".to_owned(),
        Outcome::Malformed(_) | Outcome::Failed(_) => "other".to_owned(),
    }
}

/// Why a request is retried on a new connection, if it is: see the
/// module's documentation.
fn retry_reason(outcome: &Outcome, reused: bool) -> Option<&'static str> {
    match outcome {
        Outcome::Response(r) if r.status() == 503 && r.head.header("retry-after").is_some() => {
            Some("503")
        }
        Outcome::Closed { reset: false } if reused => Some("EOF"),
        _ => None,
    }
}

/// One run: a target restarted [`Config::restarts`] times one way.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Row {
    pub(crate) server: String,
    pub(crate) how: How,
    /// Restarts that completed: for an upgrade, the old process handed over
    /// (`upgrade PID`) and exited.
    pub(crate) done: usize,
    /// The clients on new connections, and on keep-alive ones.
    pub(crate) fresh: Tally,
    pub(crate) kept: Tally,
    /// From each `SIGHUP` (or `SIGTERM`) to the new process's `listening`
    /// line, in milliseconds.
    pub(crate) listening_ms: Vec<f64>,
    /// From each `SIGHUP` (or `SIGTERM`) to the old process's exit (its
    /// `exit` line for an upgrade), in milliseconds.
    pub(crate) exit_ms: Vec<f64>,
    /// What went wrong: a failed upgrade, a process that did not exit.
    pub(crate) failures: Vec<String>,
}

impl Row {
    pub(crate) fn failed(&self) -> u64 {
        self.fresh.failed() + self.kept.failed()
    }

    pub(crate) fn requests(&self) -> u64 {
        self.fresh.requests + self.kept.requests
    }

    /// Both kinds of client together.
    pub(crate) fn all(&self) -> Tally {
        let mut all = self.fresh.clone();
        all.add(&self.kept);
        all
    }
}

/// The figure's results.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Figure {
    pub(crate) config: Config,
    pub(crate) rows: Vec<Row>,
}

/// One client until `stop`: `GET /sleep` in a loop, on a new connection
/// each time or on a kept-alive one.
fn client(addr: SocketAddr, keep_alive: bool, work_ms: u64, stop: &AtomicBool) -> Tally {
    let mut tally = Tally::default();
    let path = format!("/sleep?ms={work_ms}");
    let request = if keep_alive {
        Request::get(path)
    } else {
        Request::get(path).header("Connection", "close")
    };
    let mut conn: Option<Conn> = None;
    // Relaxed: a flag polled between requests; the results are read after
    // the join.
    while !stop.load(Ordering::Relaxed) {
        tally.requests += 1;
        let mut retried = false;
        let failed = loop {
            let (mut open, reused) = match conn.take() {
                Some(open) => (open, true),
                None => match http::connect(addr, REQUEST_TIMEOUT) {
                    Ok(open) => (open, false),
                    Err(outcome) => break Some(kind(&outcome)),
                },
            };
            match open.exchange(&request, REQUEST_TIMEOUT) {
                Outcome::Response(r) if r.status() == 200 => {
                    if keep_alive && !r.head.connection_close() {
                        conn = Some(open);
                    }
                    break None;
                }
                other => match retry_reason(&other, reused) {
                    Some(reason) if !retried => {
                        *tally.retried.entry(reason.to_owned()).or_default() += 1;
                        retried = true;
                    }
                    _ => break Some(kind(&other)),
                },
            }
        };
        if let Some(failed) = failed {
            tally.fail(failed);
            // Nothing may listen for a while: no busy loop meanwhile.
            thread::sleep(Duration::from_millis(5));
        }
    }
    tally
}

fn millis(from: Instant, to: Instant) -> f64 {
    crate::server::millis_between(from, to)
}

/// Sends `signal` to `pid`, a process of the target's that is not our
/// child (an upgrade's new process).
fn send(pid: u32, signal: Nix) -> Result<Instant, String> {
    let raw = i32::try_from(pid).map_err(|_| format!("pid {pid} out of range"))?;
    let at = Instant::now();
    kill(Pid::from_raw(raw), signal).map_err(|e| format!("cannot send {signal} to {pid}: {e}"))?;
    Ok(at)
}

/// Where a restart of either kind is: the process whose standard output
/// is followed, and the pid serving now.
struct Serving {
    process: Process,
    pid: u32,
    /// Lines of `process` already accounted for.
    seen: usize,
    /// Processes stopped by stop-then-start, kept until the end (dropping
    /// one kills its process group).
    stopped: Vec<Process>,
}

/// The timings of one restart that completed.
struct Restarted {
    listening_ms: f64,
    exit_ms: f64,
}

/// One `SIGHUP` upgrade, followed to the old process's `exit` line.
fn upgrade(serving: &mut Serving) -> Result<Restarted, String> {
    let hup = send(serving.pid, Nix::SIGHUP)?;
    let process = &serving.process;
    let (i, line) = process
        .wait_line_from(serving.seen, READY_BOUND, |l| {
            l.starts_with("upgrade ") || l.starts_with("upgrade-failed")
        })
        .ok_or_else(|| {
            format!(
                "no `upgrade PID` within {} s of SIGHUP",
                READY_BOUND.as_secs()
            )
        })?;
    let Some(new_pid) = line
        .text
        .strip_prefix("upgrade ")
        .and_then(|p| p.trim().parse::<u32>().ok())
    else {
        serving.seen = i + 1;
        return Err(format!("`{}`", line.text));
    };
    // The new process's `listening` is the first after this `upgrading`.
    let lines = process.lines();
    let listening = lines[..i]
        .iter()
        .skip(serving.seen)
        .skip_while(|l| l.text != "upgrading")
        .find(|l| l.text.starts_with("listening "))
        .cloned()
        .ok_or_else(|| format!("`upgrade {new_pid}` came before the new process's `listening`"))?;
    let (e, exit) = process
        .wait_line_from(i + 1, EXIT_BOUND, |l| l.starts_with("exit "))
        .ok_or_else(|| format!("the old process printed no `exit` after `upgrade {new_pid}`"))?;
    serving.seen = e + 1;
    serving.pid = new_pid;
    Ok(Restarted {
        listening_ms: millis(hup, listening.at),
        exit_ms: millis(hup, exit.at),
    })
}

/// Starts the target on `addr` and waits for its `listening` line.
fn start(target: &Target, addr: SocketAddr) -> Result<Process, String> {
    let mut process = Process::spawn(target, &["--addr".to_owned(), addr.to_string()])
        .map_err(|e| format!("cannot start it: {e}"))?;
    let at = process.wait_listening(READY_BOUND)?;
    if at != addr {
        return Err(format!("it listens on {at}, not {addr}"));
    }
    Ok(process)
}

/// `SIGTERM`, the exit, and the same program started again on `addr`.
fn stop_then_start(
    serving: &mut Serving,
    target: &Target,
    addr: SocketAddr,
) -> Result<Restarted, String> {
    let term = serving
        .process
        .send(Signal::Term)
        .map_err(|e| e.to_string())?;
    let exit = serving
        .process
        .wait_exit(EXIT_BOUND)
        .ok_or_else(|| format!("still running {} s after SIGTERM", EXIT_BOUND.as_secs()))?;
    let next = start(target, addr)?;
    let listening = next
        .lines()
        .into_iter()
        .find(|l| l.text.starts_with("listening "))
        .map_or_else(Instant::now, |l| l.at);
    serving.pid = next.pid();
    serving.seen = next.lines().len();
    serving
        .stopped
        .push(std::mem::replace(&mut serving.process, next));
    Ok(Restarted {
        listening_ms: millis(term, listening),
        exit_ms: millis(term, exit.at),
    })
}

/// A loopback port free now, for a run's processes to share.
fn free_port() -> Result<SocketAddr, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map_err(|e| format!("cannot find a free port: {e}"))
}

/// One run: `spec` restarted `config.restarts` times the `how` way, under
/// load.
pub(crate) fn run(spec: &Spec, how: How, config: &Config) -> Row {
    let mut row = Row {
        server: spec.name.clone(),
        how,
        done: 0,
        fresh: Tally::default(),
        kept: Tally::default(),
        listening_ms: Vec::new(),
        exit_ms: Vec::new(),
        failures: Vec::new(),
    };
    let target = Target::new(spec.name.clone(), &spec.program);
    let started = free_port().and_then(|addr| start(&target, addr).map(|p| (addr, p)));
    let (addr, process) = match started {
        Ok(started) => started,
        Err(error) => {
            row.failures.push(format!("{}: {error}", spec.name));
            return row;
        }
    };
    let mut serving = Serving {
        pid: process.pid(),
        seen: process.lines().len(),
        process,
        stopped: Vec::new(),
    };
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<(bool, thread::JoinHandle<Tally>)> = (0..config.fresh_clients)
        .map(|_| false)
        .chain((0..config.kept_clients).map(|_| true))
        .map(|keep_alive| {
            let stop = stop.clone();
            let work_ms = config.work_ms;
            (
                keep_alive,
                thread::spawn(move || client(addr, keep_alive, work_ms, &stop)),
            )
        })
        .collect();
    thread::sleep(config.pause);
    for n in 1..=config.restarts {
        let restarted = match how {
            How::Upgrade => upgrade(&mut serving),
            How::StopThenStart => stop_then_start(&mut serving, &target, addr),
        };
        match restarted {
            Ok(r) => {
                row.done += 1;
                row.listening_ms.push(r.listening_ms);
                row.exit_ms.push(r.exit_ms);
            }
            Err(error) => {
                row.failures.push(format!("{} {n}: {error}", how.label()));
                // A stop-then-start that lost its process cannot go on; a
                // failed upgrade leaves the old process serving (rule 25).
                if how == How::StopThenStart {
                    break;
                }
            }
        }
        thread::sleep(config.pause);
    }
    // Relaxed: the clients poll it; their tallies come back through join.
    stop.store(true, Ordering::Relaxed);
    for (keep_alive, client) in clients {
        let tally = client.join().unwrap_or_default();
        if keep_alive {
            row.kept.add(&tally);
        } else {
            row.fresh.add(&tally);
        }
    }
    // The last process: SIGTERM, then the end of the shared standard output
    // (every process of the run gone). Dropping `serving` kills whatever is
    // left of the process group.
    let ended = send(serving.pid, Nix::SIGTERM)
        .map(|_| serving.process.wait_stdout_end(EXIT_BOUND))
        .unwrap_or(false);
    if !ended {
        row.failures.push(format!(
            "the last process did not exit within {} s of SIGTERM",
            EXIT_BOUND.as_secs()
        ));
    }
    eprintln!(
        "  {:<16} {:<17} {} of {} done, {} of {} requests failed{}",
        row.server,
        how.label(),
        row.done,
        config.restarts,
        row.failed(),
        row.requests(),
        if row.failures.is_empty() {
            String::new()
        } else {
            format!(" ({})", row.failures.join("; "))
        }
    );
    row
}

/// The figure: each target upgraded, then stopped and started, under the
/// same load.
pub(crate) fn measure(targets: &[&Spec], config: &Config) -> Figure {
    let mut rows = Vec::new();
    for spec in targets {
        for how in [How::Upgrade, How::StopThenStart] {
            rows.push(run(spec, how, config));
        }
    }
    Figure {
        config: *config,
        rows,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_what_the_client_saw() {
        assert_eq!(kind(&Outcome::Refused), "refused");
        assert_eq!(kind(&Outcome::Closed { reset: true }), "reset");
        assert_eq!(kind(&Outcome::Closed { reset: false }), "EOF");
        assert_eq!(kind(&Outcome::TimedOut { received: 0 }), "timed out");
    }

    #[test]
    fn a_tally_adds_up_by_kind() {
        let mut a = Tally {
            requests: 3,
            ..Tally::default()
        };
        a.fail("refused".to_owned());
        a.fail("refused".to_owned());
        let mut b = Tally {
            requests: 2,
            retried: [("EOF".to_owned(), 1)].into(),
            ..Tally::default()
        };
        b.fail("reset".to_owned());
        a.add(&b);
        assert_eq!((a.requests, a.failed()), (5, 3));
        assert_eq!(a.retried["EOF"], 1);
        assert_eq!(a.failures["refused"], 2);
    }

    /// Nothing listens on a port just released: the load counts every
    /// request as refused, never as served.
    #[test]
    fn a_client_with_nothing_listening_counts_refusals() {
        let addr = free_port().unwrap();
        let stop = Arc::new(AtomicBool::new(false));
        let handle = {
            let stop = stop.clone();
            thread::spawn(move || client(addr, true, 1, &stop))
        };
        thread::sleep(Duration::from_millis(100));
        stop.store(true, Ordering::Relaxed);
        let tally = handle.join().unwrap();
        assert!(tally.requests > 0);
        assert_eq!(tally.failed(), tally.requests);
        assert_eq!(tally.failures.keys().collect::<Vec<_>>(), ["refused"]);
    }
}
