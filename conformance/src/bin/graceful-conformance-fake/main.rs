//! `graceful-conformance-fake`: a small thread-based server that speaks the
//! conformance contract, used by the kit's negative controls and handy to
//! try the kit.
//!
//! It uses plain threads (one per connection), `signal-hook` for signals and
//! SQLite for the order and job store, `tungstenite` for `/ws`; no async
//! runtime. A connection that opens with the HTTP/2 preface is served as
//! h2c (`h2.rs`, on the kit's frame code, a thread per stream). By default
//! it follows every
//! rule of the contract, so it passes every scenario of the kit. With
//! `--fault NAME` it breaks exactly one rule, so that the scenario meant to
//! catch that fault can be seen failing; `--list-faults` lists them.
//!
//! ```text
//! graceful-conformance-fake --addr 127.0.0.1:0 --cleanup db,cache
//! graceful-conformance-fake --fault late-close
//! graceful-conformance-fake --store /tmp/jobs.sqlite --events-ms 100
//! ```
//!
//! Of version 2 it serves the long-lived streams (`/events`, `/ws`,
//! `streams.rs`), the background jobs (`POST /jobs`, `jobs.rs`) and the
//! zero-downtime upgrade on `SIGHUP` (`upgrade.rs`, through
//! graceful-upgrade, as the targets do).

mod config;
mod h2;
mod jobs;
mod server;
mod streams;
mod tls;
mod upgrade;

use std::collections::{HashMap, HashSet};
use std::io::{self, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::path::Path;
use std::process;
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError, RwLock};
use std::thread;
use std::time::{Duration, Instant};

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
use signal_hook::iterator::Signals;

use config::{Config, Fault, Parsed};

/// Where the server is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    Starting,
    Serving,
    /// The first signal came; the listener is still open.
    Draining,
    /// The listener is closed.
    Closed,
    /// `drained` or `abandoned` has been decided.
    Finished,
}

/// What a connection is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum ConnState {
    /// Waiting for a request.
    Idle,
    /// Part of a request head has arrived.
    Partial,
    /// A request is in progress.
    Busy,
}

#[derive(Debug)]
struct ConnEntry {
    stream: TcpStream,
    state: ConnState,
    /// Set once the connection speaks HTTP/2; its streams count apart.
    h2: Option<Arc<h2::H2Conn>>,
}

#[derive(Debug)]
struct State {
    phase: Phase,
    signal: Option<&'static str>,
    conns: HashMap<u64, ConnEntry>,
    next_conn: u64,
    /// Background jobs in progress: from their `202` until their commit.
    jobs: usize,
    /// The ids of those jobs.
    queued: HashSet<String>,
    /// The TLS relays: bytes a response wrote that are not yet sent on.
    relays: HashMap<u64, tls::Relay>,
    next_relay: u64,
    /// The shutdown began: the first signal came, or an upgrade handed
    /// over. A later signal forces the exit.
    started: bool,
    /// From `upgrading` until the new process took over or is gone.
    upgrading: bool,
}

impl State {
    fn count(&self, state: ConnState) -> usize {
        self.conns.values().filter(|c| c.state == state).count()
    }

    /// Whether the drain is over (as the configured fault sees it).
    fn drain_done(&self, config: &Config) -> bool {
        if config.has(Fault::WaitIdle) {
            return self.conns.is_empty();
        }
        if config.has(Fault::WaitPartialHead) && self.count(ConnState::Partial) > 0 {
            return false;
        }
        if self.jobs > 0 && !config.has(Fault::JobsNotAwaited) {
            return false;
        }
        self.count(ConnState::Busy) == 0
            && self.h2_streams() == 0
            && self.relays.values().all(tls::Relay::is_empty)
    }

    /// HTTP/2 streams in progress.
    fn h2_streams(&self) -> usize {
        self.conns
            .values()
            .filter_map(|c| c.h2.as_ref())
            .map(|h| h.streams())
            .sum()
    }

    fn h2_conns(&self) -> Vec<Arc<h2::H2Conn>> {
        self.conns.values().filter_map(|c| c.h2.clone()).collect()
    }

    /// Whether long-lived streams must go away now (at `closed`, rules 18
    /// and 19).
    fn going_away(&self, config: &Config) -> bool {
        if config.has(Fault::StreamsEndAtSignal) {
            return self.phase >= Phase::Draining;
        }
        self.phase >= Phase::Closed
    }
}

/// Everything the threads share.
#[derive(Debug)]
struct Shared {
    config: Config,
    state: Mutex<State>,
    changed: Condvar,
    /// Serializes stdout, so that `exit C` really is the last line.
    out: Mutex<()>,
    /// Response heads are written under the read side; `closed` is printed
    /// under the write side, so no head written after `closed` misses
    /// `Connection: close`.
    head_gate: RwLock<()>,
    store: Mutex<Option<rusqlite::Connection>>,
    /// Set with `--tls-cert` and `--tls-key`.
    tls: Option<Arc<rustls::ServerConfig>>,
    /// The listening socket, from `listening` until the accept thread lets
    /// go of it; an upgrade passes it on from here.
    listener: Mutex<Option<TcpListener>>,
    /// The new process an upgrade is starting.
    starting: Mutex<Option<graceful_upgrade::Starting>>,
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    /// Prints one event line and flushes it.
    fn event(&self, line: &str) {
        let _out = lock(&self.out);
        let mut stdout = io::stdout().lock();
        let _ = writeln!(stdout, "{line}");
        let _ = stdout.flush();
    }

    /// Prints `exit CODE` and exits; nothing can be printed after it.
    fn exit(&self, code: i32) -> ! {
        let out = lock(&self.out);
        {
            let mut stdout = io::stdout().lock();
            let _ = writeln!(stdout, "exit {code}");
            let _ = stdout.flush();
        }
        // Exiting while holding the stdout guard keeps every other thread
        // from printing after the `exit` line.
        let _hold = out;
        process::exit(code)
    }

    fn set_state(&self, id: u64, state: ConnState) {
        let mut st = lock(&self.state);
        if let Some(c) = st.conns.get_mut(&id) {
            c.state = state;
        }
        self.changed.notify_all();
    }

    /// Wakes the drain after a change made outside the state lock (an
    /// HTTP/2 stream began or ended): taking the lock first means no
    /// waiter is between its check and its wait.
    fn poke(&self) {
        drop(lock(&self.state));
        self.changed.notify_all();
    }

    fn phase(&self) -> Phase {
        lock(&self.state).phase
    }
}

/// What began the shutdown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Begin {
    /// The first SIGTERM or SIGINT.
    Signal,
    /// An upgrade's new process serves (`upgrade PID`).
    HandOver,
}

/// A registered cleanup step.
#[derive(Debug, Clone)]
enum Step {
    Store,
    Named(String),
}

impl Step {
    fn name(&self) -> &str {
        match self {
            Self::Store => "store",
            Self::Named(name) => name,
        }
    }
}

#[allow(clippy::print_stdout)]
fn main() {
    let config = match config::parse(std::env::args_os().skip(1)) {
        Ok(Parsed::Run(config)) => *config,
        Ok(Parsed::Help) => {
            println!("{}", config::USAGE);
            return;
        }
        Ok(Parsed::ListFaults) => {
            for fault in Fault::ALL {
                println!("{:<24} {}", fault.name(), fault.description());
            }
            return;
        }
        Err(e) => {
            eprintln!("error: {e}\n{}", config::USAGE);
            process::exit(2);
        }
    };
    // Before any thread starts: the socket an upgrade passed down, if any.
    let mut inherited = graceful_upgrade::Inherited::from_env()
        .unwrap_or_else(|e| fatal(&format!("bad inherited socket: {e}")));
    if config.upgrade_child_fails && inherited.is_upgrade() {
        // Before `listening`, and without an `exit` line: on the shared
        // standard output it would read as the old process's.
        eprintln!("started by an upgrade under --upgrade-child-fails: exit 3");
        process::exit(3);
    }
    let tls = match tls::load(&config) {
        Ok(tls) => tls,
        Err(e) if config.has(Fault::TlsLenientFiles) => {
            eprintln!("ignoring: {e}");
            None
        }
        Err(e) => {
            eprintln!("error: {e}\n{}", config::USAGE);
            process::exit(2);
        }
    };
    let listened: &[i32] = if config.has(Fault::NoUpgrade) {
        &[SIGTERM, SIGINT]
    } else {
        &[SIGTERM, SIGINT, SIGHUP]
    };
    let signals = match Signals::new(listened) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: cannot handle signals: {e}");
            process::exit(1);
        }
    };
    let shared = Arc::new(Shared {
        config,
        state: Mutex::new(State {
            phase: Phase::Starting,
            signal: None,
            conns: HashMap::new(),
            next_conn: 0,
            jobs: 0,
            queued: HashSet::new(),
            relays: HashMap::new(),
            next_relay: 0,
            started: false,
            upgrading: false,
        }),
        changed: Condvar::new(),
        out: Mutex::new(()),
        head_gate: RwLock::new(()),
        store: Mutex::new(None),
        tls,
        listener: Mutex::new(None),
        starting: Mutex::new(None),
    });
    let (first_tx, first_rx) = mpsc::channel();
    {
        let shared = Arc::clone(&shared);
        thread::Builder::new()
            .name("signals".into())
            .spawn(move || on_signals(&shared, signals, &first_tx))
            .unwrap_or_else(|e| fatal(&format!("cannot start the signal thread: {e}")));
    }
    let config = &shared.config;
    if config.has(Fault::DeferEarlySignal) {
        // A slow start-up that looks at signals only when it is over.
        thread::sleep(Duration::from_millis(1200));
    }
    let mut steps = Vec::new();
    if let Some(path) = &config.store {
        match open_store(path) {
            Ok(db) => {
                *lock(&shared.store) = Some(db);
                steps.push(Step::Store);
            }
            Err(e) => fatal(&format!("cannot open the store {}: {e}", path.display())),
        }
    }
    if lock(&shared.state).signal.is_some() {
        finish_early(&shared, &steps);
    }
    steps.extend(config.cleanup.iter().cloned().map(Step::Named));
    let listener = match inherited.take_listener() {
        Ok(Some(listener)) => listener,
        Ok(None) => TcpListener::bind(config.addr)
            .unwrap_or_else(|e| fatal(&format!("cannot listen on {}: {e}", config.addr))),
        Err(e) => fatal(&format!("bad inherited listener: {e}")),
    };
    let local = listener
        .local_addr()
        .unwrap_or_else(|e| fatal(&format!("no local address: {e}")));
    *lock(&shared.listener) = Some(listener);
    {
        let mut st = lock(&shared.state);
        if st.signal.is_some() {
            drop(st);
            drop(lock(&shared.listener).take());
            finish_early(&shared, &steps);
        }
        shared.event(&format!("listening {local}"));
        st.phase = Phase::Serving;
    }
    let (close_tx, close_rx) = mpsc::channel();
    let (ack_tx, ack_rx) = mpsc::channel();
    {
        let shared = Arc::clone(&shared);
        thread::Builder::new()
            .name("accept".into())
            .spawn(move || server::accept_loop(&shared, &close_rx, &ack_tx))
            .unwrap_or_else(|e| fatal(&format!("cannot start the accept thread: {e}")));
    }
    // Serving: the process that started this one, if an upgrade did, may
    // hand over now.
    if let Err(e) = inherited.notify_ready() {
        eprintln!("cannot report to the old process: {e}");
    }
    // The signal thread has printed `draining` (or the upgrade `upgrade
    // PID`) by the time this returns.
    let Ok(begin) = first_rx.recv() else {
        fatal("the signal thread ended");
    };
    shut_down(&shared, &steps, begin, &close_tx, &ack_rx);
}

fn fatal(message: &str) -> ! {
    eprintln!("error: {message}");
    process::exit(1)
}

/// Opens the order store. A committed row must survive the death of the
/// process (SIGKILL), not a power cut: the write-ahead log without fsync
/// gives exactly that, and keeps commits fast on a busy machine.
fn open_store(path: &Path) -> rusqlite::Result<rusqlite::Connection> {
    let db = rusqlite::Connection::open(path)?;
    // Rule 27: during an upgrade two processes write to the file; a
    // writer waits for the other's transaction rather than fail.
    db.busy_timeout(Duration::from_secs(5))?;
    db.execute_batch(
        "PRAGMA journal_mode = WAL;
         PRAGMA synchronous = OFF;
         CREATE TABLE IF NOT EXISTS orders (id TEXT PRIMARY KEY);
         CREATE TABLE IF NOT EXISTS jobs (id TEXT PRIMARY KEY);",
    )?;
    Ok(db)
}

fn on_signals(shared: &Arc<Shared>, mut signals: Signals, first: &Sender<Begin>) {
    let config = &shared.config;
    for sig in signals.forever() {
        if sig == SIGHUP {
            upgrade::hangup(shared, first);
            continue;
        }
        let name = if sig == SIGTERM { "SIGTERM" } else { "SIGINT" };
        if sig == SIGTERM && config.has(Fault::IgnoreSigterm) {
            eprintln!("ignoring SIGTERM");
            continue;
        }
        let first_signal = {
            let mut st = lock(&shared.state);
            let first_signal = !st.started;
            if first_signal {
                st.started = true;
                st.signal = Some(name);
                if st.phase == Phase::Serving {
                    st.phase = Phase::Draining;
                }
                shared.event(&format!("draining {name}"));
                shared.changed.notify_all();
            }
            first_signal
        };
        if first_signal {
            // Rule 26: an upgrade under way ends with its new process.
            upgrade::cancel(shared);
            if (sig == SIGTERM && config.has(Fault::ExitAtOnce))
                || (sig == SIGINT && config.has(Fault::SigintImmediate))
            {
                shared.exit(0);
            }
            let _ = first.send(Begin::Signal);
            continue;
        }
        if config.has(Fault::IgnoreSecondSignal) {
            eprintln!("ignoring {name}");
            continue;
        }
        if config.has(Fault::DieOnSecondSignal) {
            let _ = signal_hook::low_level::emulate_default_handler(sig);
            continue;
        }
        shared.exit(128 + sig);
    }
}

/// A signal came before `listening`: clean up what is registered and go.
fn finish_early(shared: &Shared, steps: &[Step]) -> ! {
    let all_ok = run_cleanup(shared, steps);
    shared.exit(if all_ok { 0 } else { 1 })
}

fn shut_down(
    shared: &Arc<Shared>,
    steps: &[Step],
    begin: Begin,
    close: &Sender<server::Close>,
    closed: &Receiver<()>,
) -> ! {
    let config = &shared.config;
    // A hand-over has no unready delay: the new process serves already.
    if begin == Begin::Signal {
        if config.has(Fault::CloseIdle) {
            let st = lock(&shared.state);
            for c in st.conns.values().filter(|c| c.state == ConnState::Idle) {
                let _ = c.stream.shutdown(Shutdown::Both);
            }
        }
        if config.has(Fault::H2GoawayAtSignal) {
            let conns = lock(&shared.state).h2_conns();
            h2::going_away(shared, conns);
        }
        thread::sleep(config.unready_delay);
    }
    // A new process being started holds a copy of the socket: `closed`
    // waits until it is gone.
    upgrade::wait_settled(shared);
    // The accept thread takes what the kernel has already completed, then
    // drops the listener; at a hand-over it only lets go of its copy.
    let _ = close.send(match begin {
        Begin::Signal => server::Close::Drain,
        Begin::HandOver => server::Close::Release,
    });
    let _ = closed.recv();
    {
        let _gate = shared
            .head_gate
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        let mut st = lock(&shared.state);
        st.phase = Phase::Closed;
        shared.event("closed");
        // Long-lived streams wait for this moment.
        shared.changed.notify_all();
    }
    if !config.has(Fault::H2GoawayAtSignal) {
        let conns = lock(&shared.state).h2_conns();
        h2::going_away(shared, conns);
    }
    if config.has(Fault::EarlyDrained) {
        shared.event("drained");
    }
    let deadline = Instant::now() + config.drain_timeout;
    let abandoned = {
        let mut st = lock(&shared.state);
        loop {
            if st.drain_done(config) {
                st.phase = Phase::Finished;
                break None;
            }
            let now = Instant::now();
            if now >= deadline {
                st.phase = Phase::Finished;
                let mut n = 0;
                for c in st.conns.values() {
                    if let Some(h2) = &c.h2 {
                        n += h2::abandon(shared, h2);
                    } else if c.state == ConnState::Busy {
                        let _ = c.stream.shutdown(Shutdown::Both);
                        n += 1;
                    }
                }
                if !config.has(Fault::JobsDeadlineUncounted) {
                    n += st.jobs;
                }
                break Some(n);
            }
            st = shared
                .changed
                .wait_timeout(st, deadline - now)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    };
    let drained = match abandoned {
        None => {
            if !config.has(Fault::EarlyDrained) {
                shared.event("drained");
            }
            true
        }
        Some(_) if config.has(Fault::SilentDeadline) => {
            shared.event("drained");
            true
        }
        Some(n) => {
            shared.event(&format!("abandoned {n}"));
            false
        }
    };
    let all_ok = run_cleanup(shared, steps);
    shared.exit(if drained && all_ok { 0 } else { 1 })
}

/// Runs the steps, last registered first; returns whether all ended `ok`.
fn run_cleanup(shared: &Shared, steps: &[Step]) -> bool {
    let config = &shared.config;
    let order: Vec<&Step> = if config.has(Fault::CleanupInOrder) {
        steps.iter().collect()
    } else {
        steps.iter().rev().collect()
    };
    let mut all_ok = true;
    for step in order {
        let result = run_step(shared, step);
        shared.event(&format!("cleanup {} {result}", step.name()));
        if result != "ok" {
            all_ok = false;
            if config.has(Fault::CleanupStopOnError) {
                break;
            }
        }
    }
    all_ok
}

fn run_step(shared: &Shared, step: &Step) -> &'static str {
    let config = &shared.config;
    let name = match step {
        Step::Store => {
            let db = lock(&shared.store).take();
            return match db.map(rusqlite::Connection::close) {
                Some(Err((_, e))) => {
                    eprintln!("closing the store failed: {e}");
                    "error"
                }
                _ => "ok",
            };
        }
        Step::Named(name) => name.clone(),
    };
    let panics = config.cleanup_panic.contains(&name);
    if panics && config.has(Fault::CleanupPanicAborts) {
        panic!("cleanup step {name} panicked");
    }
    let hangs = config.cleanup_hang.contains(&name);
    let fails = config.cleanup_fail.contains(&name);
    let time = config.cleanup_time;
    let (tx, rx) = mpsc::channel::<Result<(), String>>();
    let spawned = thread::Builder::new()
        .name(format!("cleanup-{name}"))
        .spawn(move || {
            if hangs {
                loop {
                    thread::sleep(Duration::from_secs(3600));
                }
            }
            thread::sleep(time);
            if panics {
                panic!("cleanup step {name} panicked");
            }
            let _ = tx.send(if fails {
                Err(format!("cleanup step {name} failed"))
            } else {
                Ok(())
            });
        });
    if let Err(e) = spawned {
        eprintln!("cannot start a cleanup thread: {e}");
        return "error";
    }
    let got = if config.has(Fault::CleanupNoTimeout) {
        rx.recv().map_err(|_| RecvTimeoutError::Disconnected)
    } else {
        rx.recv_timeout(config.cleanup_timeout)
    };
    match got {
        Ok(Ok(())) => "ok",
        Ok(Err(e)) => {
            eprintln!("{e}");
            "error"
        }
        Err(RecvTimeoutError::Timeout) => "timeout",
        Err(RecvTimeoutError::Disconnected) => "panic",
    }
}
