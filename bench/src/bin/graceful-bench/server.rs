//! Server processes: start one, learn its address from its `listening`
//! line, signal it, and take the instant it exits.
//!
//! A thread blocks in `wait` for each process and takes the time as soon as
//! it returns, so an exit is timed without polling. A process still running
//! when its [`Running`] is dropped is killed, and so is every one still
//! running when the bench itself is interrupted (see
//! [`end_children_on_signals`]): a baseline server never exits by itself.

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use std::collections::VecDeque;
use std::ffi::OsString;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

/// How long a server may take to print its `listening` line.
const START_TIMEOUT: Duration = Duration::from_secs(10);

/// How many of a server's last standard error lines are kept, to explain
/// a failure.
const STDERR_TAIL: usize = 12;

/// The processes started here and not reaped yet, with the signal that ends
/// each at once.
static CHILDREN: Mutex<Vec<(Pid, Signal)>> = Mutex::new(Vec::new());

fn children() -> std::sync::MutexGuard<'static, Vec<(Pid, Signal)>> {
    CHILDREN.lock().unwrap_or_else(|e| e.into_inner())
}

/// Notes a child process, to be sent `signal` if the bench is interrupted.
pub(crate) fn adopt(pid: Pid, signal: Signal) {
    children().push((pid, signal));
}

/// Forgets a child process once it is reaped.
pub(crate) fn release(pid: Pid) {
    children().retain(|(p, _)| *p != pid);
}

/// On SIGINT, SIGTERM or SIGHUP, ends every child process still running
/// and then this one, with status 128 + the signal's number.
pub(crate) fn end_children_on_signals() -> Result<(), String> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGINT, SIGTERM, SIGHUP])
        .map_err(|e| format!("cannot handle signals: {e}"))?;
    thread::spawn(move || {
        if let Some(signal) = signals.forever().next() {
            for (pid, end) in children().drain(..) {
                let _ = kill(pid, end);
            }
            std::process::exit(128 + signal);
        }
    });
    Ok(())
}

/// Who a server is and how to start it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Spec {
    /// Its short name in the tables and the chart, such as `graceful-tokio`.
    pub(crate) name: String,
    /// What it is, in a few words.
    pub(crate) about: String,
    pub(crate) kind: Kind,
    /// The runtime it runs on: `tokio`, `smol` or `actix`.
    pub(crate) runtime: &'static str,
    pub(crate) program: PathBuf,
    /// Arguments after `--addr`, such as `--tls CERT KEY`.
    pub(crate) args: Vec<OsString>,
}

/// Ours, a peer, or a baseline without shutdown machinery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A conformance target: the adapter with the contract's routes, store
    /// and event lines.
    Target,
    /// A baseline with the adapter added the way its README teaches, and
    /// nothing else: what figure 2's goal compares to that baseline.
    Minimal,
    Peer,
    Plain,
}

/// A running server process.
#[derive(Debug)]
pub(crate) struct Running {
    name: String,
    pid: Pid,
    addr: SocketAddr,
    exit: mpsc::Receiver<(Instant, std::io::Result<ExitStatus>)>,
    exited: Arc<AtomicBool>,
    stderr: Arc<Mutex<VecDeque<String>>>,
    /// When the process printed its `exit CODE` line (the contract's last
    /// line, just before it exits), if it did: ours print it, the peers
    /// and baselines do not.
    /// Sent once, when its standard output closes.
    exit_line: mpsc::Receiver<Option<Instant>>,
    done: bool,
}

/// When a process exited, and how.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Exit {
    pub(crate) at: Instant,
    pub(crate) status: ExitStatus,
}

impl Running {
    /// Starts `spec` on a free loopback port and waits for its `listening`
    /// line.
    pub(crate) fn start(spec: &Spec) -> Result<Running, String> {
        Running::start_under(spec, &[], START_TIMEOUT)
    }

    /// Starts `spec` as [`start`](Running::start) does, but as the
    /// arguments of `wrapper` (a program and its options, such as
    /// `valgrind --tool=callgrind`) when one is given, and waits up to
    /// `timeout` for its `listening` line.
    pub(crate) fn start_under(
        spec: &Spec,
        wrapper: &[OsString],
        timeout: Duration,
    ) -> Result<Running, String> {
        let mut command = match wrapper.split_first() {
            Some((program, options)) => {
                let mut command = Command::new(program);
                command.args(options).arg(&spec.program);
                command
            }
            None => Command::new(&spec.program),
        };
        let mut child = command
            .args(["--addr", "127.0.0.1:0"])
            .args(&spec.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .map_err(|e| {
                // The file name only: reports carry no machine's paths.
                let program = spec.program.file_name().unwrap_or_default();
                format!(
                    "{}: cannot start {}: {e}",
                    spec.name,
                    program.to_string_lossy()
                )
            })?;
        let Ok(raw) = i32::try_from(child.id()) else {
            let _ = child.kill();
            let _ = child.wait();
            return Err(format!("{}: pid {} out of range", spec.name, child.id()));
        };
        let pid = Pid::from_raw(raw);
        adopt(pid, Signal::SIGKILL);
        let stdout = child.stdout.take().ok_or("no stdout pipe")?;
        let stderr = child.stderr.take().ok_or("no stderr pipe")?;

        let (listening_tx, listening_rx) = mpsc::channel();
        let (exit_line_tx, exit_line) = mpsc::channel();
        thread::spawn(move || {
            let mut told = false;
            let mut exit_line_at = None;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                // The later lines are read (and dropped, but for the time of
                // `exit`) so that the process never blocks on a full pipe.
                if told {
                    if line.starts_with("exit ") {
                        exit_line_at = Some(Instant::now());
                    }
                    continue;
                }
                if let Some(addr) = line.strip_prefix("listening ") {
                    told = true;
                    let _ = listening_tx.send(
                        addr.trim()
                            .parse::<SocketAddr>()
                            .map_err(|e| format!("`{line}`: {e}")),
                    );
                }
            }
            if !told {
                let _ = listening_tx.send(Err("standard output closed before `listening`".into()));
            }
            let _ = exit_line_tx.send(exit_line_at);
        });
        let tail = Arc::new(Mutex::new(VecDeque::new()));
        {
            let tail = tail.clone();
            thread::spawn(move || {
                for line in BufReader::new(stderr).lines() {
                    let Ok(line) = line else { break };
                    let mut tail = tail.lock().unwrap_or_else(|e| e.into_inner());
                    if tail.len() == STDERR_TAIL {
                        tail.pop_front();
                    }
                    tail.push_back(line);
                }
            });
        }
        let (exit_tx, exit_rx) = mpsc::channel();
        let exited = Arc::new(AtomicBool::new(false));
        {
            let exited = exited.clone();
            thread::spawn(move || {
                let status = child.wait();
                let at = Instant::now();
                release(pid);
                exited.store(true, Ordering::SeqCst);
                let _ = exit_tx.send((at, status));
            });
        }

        let mut running = Running {
            name: spec.name.clone(),
            pid,
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            exit: exit_rx,
            exited,
            stderr: tail,
            exit_line,
            done: false,
        };
        match listening_rx.recv_timeout(timeout) {
            Ok(Ok(addr)) => {
                running.addr = addr;
                Ok(running)
            }
            Ok(Err(error)) => Err(running.failure(&error)),
            Err(_) => Err(running.failure(&format!(
                "no `listening` line within {} s",
                timeout.as_secs()
            ))),
        }
    }

    pub(crate) fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// When the harness read the process's `exit CODE` line, if it printed
    /// one. Called after [`wait`](Running::wait): it waits (up to 1 s) for
    /// the process's standard output to close, which its exit does unless
    /// a child of its own still holds it; once only, later calls return
    /// `None`.
    pub(crate) fn exit_line_at(&self) -> Option<Instant> {
        self.exit_line
            .recv_timeout(Duration::from_secs(1))
            .ok()
            .flatten()
    }

    /// The CPU time the process's threads have run so far, in
    /// nanoseconds, from `/proc/PID/task/*/schedstat`.
    pub(crate) fn cpu_ns(&self) -> Option<u64> {
        let tasks = std::fs::read_dir(format!("/proc/{}/task", self.pid)).ok()?;
        let mut total = 0;
        for task in tasks.flatten() {
            let stat = std::fs::read_to_string(task.path().join("schedstat")).ok()?;
            total += stat.split_whitespace().next()?.parse::<u64>().ok()?;
        }
        Some(total)
    }

    /// Sends `signal`; returns the instant just before it was sent.
    pub(crate) fn signal(&self, signal: Signal) -> Result<Instant, String> {
        let at = Instant::now();
        kill(self.pid, signal).map_err(|e| format!("{}: cannot send {signal}: {e}", self.name))?;
        Ok(at)
    }

    /// Waits up to `timeout` for the process to exit. If it does not, it is
    /// killed and that is the error.
    pub(crate) fn wait(&mut self, timeout: Duration) -> Result<Exit, String> {
        match self.exit.recv_timeout(timeout) {
            Ok((at, Ok(status))) => {
                self.done = true;
                Ok(Exit { at, status })
            }
            Ok((_, Err(error))) => {
                self.done = true;
                Err(format!("{}: wait failed: {error}", self.name))
            }
            Err(RecvTimeoutError::Timeout) => Err(self.failure(&format!(
                "still running {} s after it was asked to exit",
                timeout.as_secs()
            ))),
            Err(RecvTimeoutError::Disconnected) => {
                self.done = true;
                Err(format!("{}: lost track of the process", self.name))
            }
        }
    }

    /// Kills the process (if it still runs) and describes `what` went wrong,
    /// with the last lines of its standard error.
    pub(crate) fn failure(&mut self, what: &str) -> String {
        self.kill();
        let tail = self.stderr.lock().unwrap_or_else(|e| e.into_inner());
        let mut message = format!("{}: {what}", self.name);
        if !tail.is_empty() {
            message.push_str(" (its stderr ends: ");
            message.push_str(&tail.iter().cloned().collect::<Vec<_>>().join(" | "));
            message.push(')');
        }
        message
    }

    /// Kills the process unless it has exited, and reaps it.
    fn kill(&mut self) {
        if self.done {
            return;
        }
        // The waiting thread sets `exited` as soon as `wait` returns, so a
        // pid that was reaped (and could be reused) is never signalled.
        if !self.exited.load(Ordering::SeqCst) {
            let _ = kill(self.pid, Signal::SIGKILL);
        }
        let _ = self.exit.recv_timeout(Duration::from_secs(5));
        self.done = true;
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A signed duration from `from` to `to`, in milliseconds: negative when
/// `to` came first.
pub(crate) fn millis_between(from: Instant, to: Instant) -> f64 {
    match to.checked_duration_since(from) {
        Some(d) => d.as_secs_f64() * 1e3,
        None => -(from.duration_since(to).as_secs_f64() * 1e3),
    }
}

/// How a process ended, the way a shell says it.
pub(crate) fn describe(status: ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit {code}"),
        (None, Some(signal)) => Signal::try_from(signal)
            .map_or_else(|_| format!("signal {signal}"), |s| format!("killed by {s}")),
        (None, None) => "unknown".to_owned(),
    }
}
