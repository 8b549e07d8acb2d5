//! The scenarios: one or more per rule of the contract.

mod basic;
mod cleanup;
mod drain;
#[cfg(feature = "grpc")]
mod grpc;
mod orders;
mod signals;
// Contract v2: HTTP/2 and TLS (rules 11-16), long-lived streams and
// background jobs (rules 17-22), the upgrade (rules 23-27).
mod h2;
mod jobs;
mod streams;
mod tls;
mod upgrade;

use std::fmt::{self, Display};
use std::net::SocketAddr;
use std::panic::{self, AssertUnwindSafe};
use std::time::{Duration, Instant};

use crate::contract::{CleanupResult, Event, check_grammar};
use crate::http::{self, Outcome, Request};
use crate::process::{Exit, Line, Process, Signal, Target};
use crate::report::ScenarioReport;

/// The contract's latency bound, in milliseconds.
pub(crate) const BOUND_MS: f64 = 500.0;
/// How long the kit waits for `listening`.
pub(crate) const START_TIMEOUT: Duration = Duration::from_secs(10);
/// How long the kit waits for an exit beyond what the scenario expects,
/// before it calls the target stuck and kills it.
pub(crate) const PATIENCE: Duration = Duration::from_secs(3);
/// Time-out for a single request that should be answered promptly.
pub(crate) const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How much earlier than the kit's own observation an event may really have
/// happened (pipes and threads add a little delay to every observation).
pub(crate) const SLACK_MS: f64 = 50.0;

/// Whether a scenario checks a rule or demonstrates what no rule can prevent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Kind {
    /// Passes when the target follows the rule.
    Check,
    /// An expected violation: passes when the kit shows the damage the
    /// scenario is about (answers lost to `SIGKILL`), proving the check
    /// behind it can fail.
    Demonstration,
}

impl Kind {
    /// `check` or `demonstration`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Check => "check",
            Self::Demonstration => "demonstration",
        }
    }
}

macro_rules! scenarios {
    ($( $variant:ident = $name:literal, $kind:ident, $run:path, $doc:literal; )*) => {
        /// A named scenario. [`Scenario::all`] lists them in the order the
        /// kit runs them.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Scenario {
            $( #[doc = $doc] $variant, )*
        }

        impl Scenario {
            const ALL: &'static [Scenario] = &[ $( Scenario::$variant, )* ];

            /// Every scenario, in running order.
            pub fn all() -> &'static [Scenario] {
                Self::ALL
            }

            /// The kebab-case name.
            pub fn name(self) -> &'static str {
                match self { $( Scenario::$variant => $name, )* }
            }

            /// One sentence on what the scenario checks.
            pub fn description(self) -> &'static str {
                match self { $( Scenario::$variant => $doc, )* }
            }

            /// Check or demonstration.
            pub fn kind(self) -> Kind {
                match self { $( Scenario::$variant => Kind::$kind, )* }
            }

            fn runner(self) -> fn(&mut Ctx<'_>) -> Result<(), String> {
                match self { $( Scenario::$variant => $run, )* }
            }
        }
    };
}

scenarios! {
    HealthLive = "health-live", Check, basic::health_live,
        "/health/live and /health/ready answer 200 while serving; /sleep, 404s; then a clean exit.";
    BadCommandLine = "bad-command-line", Check, basic::bad_command_line,
        "An unknown option, a bad value or a missing value: exit 2, stderr names the option, nothing on stdout.";
    IdleExitFast = "idle-exit-fast", Check, basic::idle_exit_fast,
        "With nothing in progress, SIGTERM ends the process with code 0 within 500 ms.";
    StopsAcceptingAfterClosed = "stops-accepting-after-closed", Check, basic::stops_accepting_after_closed,
        "Once `closed` is printed, a connect is refused (while a request still drains).";
    InflightSleepCompletes = "inflight-sleep-completes", Check, drain::inflight_sleep_completes,
        "Requests in progress at the signal complete; heads sent after `closed` carry Connection: close.";
    InflightStreamCompletes = "inflight-stream-completes", Check, drain::inflight_stream_completes,
        "A chunked stream in progress at the signal is delivered whole; the next request on its connection gets 503.";
    SlowBodyCompletes = "slow-body-completes", Check, drain::slow_body_completes,
        "A request whose body is still arriving is in progress: the drain waits for it and it gets its 201.";
    PipelinedAfterCloseNotBegun = "pipelined-after-close-not-begun", Check, drain::pipelined_after_close_not_begun,
        "A request pipelined behind a `Connection: close` response is not begun: no answer, no row.";
    Keepalive503DuringDrain = "keepalive-503-during-drain", Check, drain::keepalive_503_during_drain,
        "A request on an open keep-alive connection after `closed` gets 503 + Connection: close + Retry-After, then the connection closes.";
    IdleKeepaliveDoesNotDelayExit = "idle-keepalive-does-not-delay-exit", Check, drain::idle_keepalive_does_not_delay_exit,
        "Idle keep-alive connections do not delay the exit (500 ms).";
    PartialHeadDoesNotDelayExit = "partial-head-does-not-delay-exit", Check, drain::partial_head_does_not_delay_exit,
        "Connections with half a request head, or nothing sent, do not delay the exit (500 ms).";
    CleanupReverseOrderAfterLastResponse = "cleanup-reverse-order-after-last-response", Check, cleanup::reverse_order_after_last_response,
        "`drained` follows the last response (500 ms), then cleanup runs one step at a time, last registered first.";
    DrainDeadlineAbandons = "drain-deadline-abandons", Check, drain::drain_deadline_abandons,
        "At the drain deadline: `abandoned N` with the right N (within 500 ms), connections cut, cleanup still runs, exit 1.";
    CleanupError = "cleanup-error", Check, cleanup::cleanup_error,
        "A failing cleanup step is reported `error`, later steps still run, exit 1.";
    CleanupPanic = "cleanup-panic", Check, cleanup::cleanup_panic,
        "A panicking cleanup step is reported `panic`, later steps still run, exit 1.";
    CleanupTimeout = "cleanup-timeout", Check, cleanup::cleanup_timeout,
        "A hanging cleanup step is reported `timeout` at its time-out, later steps still run, exit 1.";
    SigintLikeSigterm = "sigint-like-sigterm", Check, signals::sigint_like_sigterm,
        "SIGINT drains like SIGTERM: `draining SIGINT`, the in-flight request completes, exit 0.";
    SecondSignalForces = "second-signal-forces", Check, signals::second_signal_forces,
        "A second signal exits at once (500 ms) with 143 (SIGTERM) or 130 (SIGINT), as an exit, not a death by signal.";
    UnreadyDelayServes = "unready-delay-serves", Check, signals::unready_delay_serves,
        "During --unready-delay-ms /health/ready is 503 while everything else, new connections included, is served; then `closed`.";
    BacklogAcceptedNotReset = "backlog-accepted-not-reset", Check, drain::backlog_accepted_not_reset,
        "Connections completed before the close are answered (503), not reset.";
    SignalBeforeListening = "signal-before-listening", Check, signals::signal_before_listening,
        "A SIGTERM during start-up ends the process within 1 s with a well-formed shutdown, even with an unready delay set.";
    StdoutEventsOnlyAndOrdered = "stdout-events-only-and-ordered", Check, basic::stdout_events_only_and_ordered,
        "Stdout carries only contract events, flushed at once, in order, `exit C` last and true.";
    OrdersUnderLoad = "orders-under-load", Check, orders::orders_under_load,
        "SIGTERM under concurrent POST /orders load: every 201 has its row, every row had its 201, resets <= 0.5 %.";
    OrdersUnderSigkill = "orders-under-sigkill", Demonstration, orders::orders_under_sigkill,
        "Expected violation: SIGKILL under the same load loses answers of stored orders, and the store check sees it.";
    // Contract v2: long-lived streams (rules 17-20).
    StreamsServedDuringUnreadyDelay = "streams-served-during-unready-delay", Check, streams::streams_served_during_unready_delay,
        "During --unready-delay-ms /events streams keep ticking and /ws keeps echoing, new ones included; they end only at `closed`.";
    EventsEndWithRetry = "events-end-with-retry", Check, streams::events_end_with_retry,
        "/events ticks at once then every N ms; at `closed` (500 ms) its last event is `retry: 1000` and the chunked body ends cleanly.";
    WsClose1001 = "ws-close-1001", Check, streams::ws_close_1001,
        "At `closed` (500 ms) /ws gets a Close frame with code 1001; a message sent after it is not echoed; TCP closes after our answer (500 ms).";
    WsCloseBound = "ws-close-bound", Check, streams::ws_close_bound,
        "A /ws client that never answers the Close is cut 1 s after it (500 ms), and the drain and the exit wait for nothing more.";
    StreamsExitClean = "streams-exit-clean", Check, streams::streams_exit_clean,
        "With only streams in progress, `drained` follows the last stream's end within 500 ms and the exit code is 0.";
    // Contract v2: background jobs (rules 21-22).
    JobsComplete = "jobs-complete", Check, jobs::jobs_complete,
        "Jobs queued (202 at once) before the signal commit their rows before `drained` (500 ms after the last one); exit 0.";
    JobsDeadlineAbandons = "jobs-deadline-abandons", Check, jobs::jobs_deadline_abandons,
        "A job longer than the drain deadline is counted in `abandoned N` at the deadline (500 ms); exit 1; the short job is stored.";
    JobsUnderSigterm = "jobs-under-sigterm", Check, jobs::jobs_under_sigterm,
        "SIGTERM under POST /jobs load: every 202 has its row after exit 0; a new job after `closed` gets 503 + Connection: close + Retry-After.";
    JobsNoStore = "jobs-no-store", Check, jobs::jobs_no_store,
        "POST /jobs answers 202 with a --store and 404 without one.";
    JobsDuplicate = "jobs-duplicate", Check, jobs::jobs_duplicate,
        "POST /jobs with an id already queued, or already stored, answers 409.";
    UpgradeUnderLoad = "upgrade-under-load", Check, upgrade::upgrade_under_load,
        "Ten SIGHUP upgrades in a row under order load: `upgrade PID` after the new `listening`, each old process drains and exits 0, nothing refused, reset or lost, every 201 has its row.";
    UpgradeChildFails = "upgrade-child-fails", Check, upgrade::upgrade_child_fails,
        "With --upgrade-child-fails, SIGHUP gives `upgrade-failed exited`, twice, and the old process serves on and exits 0 on SIGTERM.";
    SighupIgnored = "sighup-ignored", Check, upgrade::sighup_ignored,
        "A SIGHUP during an upgrade starts no second one; a SIGHUP after SIGTERM is ignored and the drain ends with exit 0.";
    SigtermDuringUpgrade = "sigterm-during-upgrade", Check, upgrade::sigterm_during_upgrade,
        "SIGTERM while the new process is not up ends it and shuts down (exit 0); a new process silent for 10 s gives `upgrade-failed timeout`.";
    // HTTP/2 with prior knowledge (h2c): rules 11 and 13 to 16.
    H2cServed = "h2c-served", Check, h2::h2c_served,
        "Every endpoint answers over HTTP/2 with prior knowledge as over HTTP/1.1, on the same port, streams served at once.";
    H2UnreadyDelayServes = "h2-unready-delay-serves", Check, h2::h2_unready_delay_serves,
        "During --unready-delay-ms HTTP/2 is served as before: new streams, new connections, no GOAWAY before `closed`.";
    H2GoawayAtClosed = "h2-goaway-at-closed", Check, h2::h2_goaway_at_closed,
        "At `closed` every HTTP/2 connection gets GOAWAY NO_ERROR, the final one within 1 s; streams opened before it are served, never 503.";
    H2InflightCompletes = "h2-inflight-completes", Check, h2::h2_inflight_completes,
        "HTTP/2 streams in progress at the signal complete whole; `drained` follows the last (500 ms).";
    H2IdleClosed = "h2-idle-closed", Check, h2::h2_idle_closed,
        "An idle HTTP/2 connection is closed by the server once its final GOAWAY is sent, while the drain goes on.";
    H2NoPingAnswer = "h2-no-ping-answer", Check, h2::h2_no_ping_answer,
        "An HTTP/2 client that never answers the server's PING does not delay the exit (500 ms).";
    H2NoPreface = "h2-no-preface", Check, h2::h2_no_preface,
        "Connections that never finish the HTTP/2 preface do not delay the exit (500 ms).";
    H2DeadlineResets = "h2-deadline-resets", Check, h2::h2_deadline_resets,
        "At the drain deadline HTTP/2 streams get RST_STREAM CANCEL (500 ms), count in `abandoned N`, connections close, exit 1.";
    // TLS: rules 11 (ALPN) and 12.
    TlsServed = "tls-served", Check, tls::tls_served,
        "With --tls-cert/--tls-key (a self-signed pair), ALPN http/1.1 and h2 are both chosen and served.";
    TlsHandshakeDoesNotDelayExit = "tls-handshake-does-not-delay-exit", Check, tls::tls_handshake_does_not_delay_exit,
        "TCP connections that never finish their TLS handshake do not delay the exit (500 ms).";
    TlsCloseNotify = "tls-close-notify", Check, tls::tls_close_notify,
        "TLS connections the server closes during the drain (idle h2 after its GOAWAY, HTTP/1.1 after its 503) get a close_notify first.";
    TlsBadFiles = "tls-bad-files", Check, tls::tls_bad_files,
        "--tls-cert without --tls-key (or the reverse), a missing file, a file that is not PEM: exit 2, nothing served.";
}

impl Scenario {
    /// The scenario with that name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|s| s.name() == name)
    }
}

impl Display for Scenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Runs one scenario against `target`. Never panics: a problem in the kit
/// itself is reported as a failure.
pub fn run_scenario(target: &Target, scenario: Scenario) -> ScenarioReport {
    run_runner(target, scenario.name(), scenario.kind(), scenario.runner())
}

/// Runs the scenario `runner` named `name` against `target`; never panics.
fn run_runner(
    target: &Target,
    name: &'static str,
    kind: Kind,
    runner: fn(&mut Ctx<'_>) -> Result<(), String>,
) -> ScenarioReport {
    let started = Instant::now();
    let mut ctx = Ctx::new(target);
    let result = panic::catch_unwind(AssertUnwindSafe(|| runner(&mut ctx)));
    match result {
        Ok(Ok(())) => {}
        Ok(Err(why)) => ctx.fail(why),
        Err(payload) => {
            let why = payload
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| payload.downcast_ref::<&str>().map(|s| (*s).to_owned()))
                .unwrap_or_else(|| "unknown panic".to_owned());
            ctx.fail(format!("kit error: {why}"));
        }
    }
    let passed = ctx.failures.is_empty();
    let stderr_tail = if passed {
        String::new()
    } else {
        ctx.stderr_tail()
    };
    ScenarioReport {
        name,
        kind,
        passed,
        figures: ctx.figures,
        failures: ctx.failures,
        elapsed: started.elapsed(),
        stderr_tail,
    }
}

/// Runs `scenarios` one after the other (timings stay meaningful that way)
/// and calls `progress` after each.
pub fn run_scenarios(
    target: &Target,
    scenarios: &[Scenario],
    mut progress: impl FnMut(&ScenarioReport),
) -> Vec<ScenarioReport> {
    scenarios
        .iter()
        .map(|s| {
            let report = run_scenario(target, *s);
            progress(&report);
            report
        })
        .collect()
}

type StderrSource = Box<dyn Fn() -> String>;

/// What a scenario accumulates while it runs.
pub(crate) struct Ctx<'a> {
    pub(crate) target: &'a Target,
    figures: Vec<(String, String)>,
    failures: Vec<String>,
    stderr: Vec<(String, StderrSource)>,
}

impl<'a> Ctx<'a> {
    fn new(target: &'a Target) -> Self {
        Self {
            target,
            figures: Vec::new(),
            failures: Vec::new(),
            stderr: Vec::new(),
        }
    }

    pub(crate) fn fail(&mut self, why: impl Into<String>) {
        self.failures.push(why.into());
    }

    /// Records a failure unless `ok`; returns `ok`.
    pub(crate) fn check(&mut self, ok: bool, why: impl FnOnce() -> String) -> bool {
        if !ok {
            self.fail(why());
        }
        ok
    }

    pub(crate) fn figure(&mut self, key: &str, value: impl Display) {
        self.figures.push((key.to_owned(), value.to_string()));
    }

    /// Records a figure in milliseconds, one decimal.
    pub(crate) fn ms(&mut self, key: &str, ms: f64) {
        self.figure(key, format!("{ms:.1}"));
    }

    /// Moves the figure named `key` to the front: it becomes the headline.
    pub(crate) fn promote(&mut self, key: &str) {
        if let Some(i) = self.figures.iter().position(|(k, _)| k == key) {
            let f = self.figures.remove(i);
            self.figures.insert(0, f);
        }
    }

    /// Checks `ms <= BOUND_MS` and records the figure.
    pub(crate) fn bounded(&mut self, key: &str, what: &str, ms: f64) {
        self.ms(key, ms);
        self.check(ms <= BOUND_MS, || {
            format!("{what} took {ms:.1} ms (the contract allows {BOUND_MS:.0} ms)")
        });
    }

    fn stderr_tail(&self) -> String {
        let mut out = String::new();
        for (label, source) in &self.stderr {
            let text = source();
            let lines: Vec<&str> = text.lines().collect();
            let from = lines.len().saturating_sub(20);
            if lines.is_empty() {
                continue;
            }
            if self.stderr.len() > 1 {
                out.push_str(&format!("[{label}]\n"));
            }
            for line in &lines[from..] {
                out.push_str(line);
                out.push('\n');
            }
        }
        out
    }

    /// Starts the target with `args` and keeps its stderr for the report.
    pub(crate) fn spawn(&mut self, label: &str, args: &[String]) -> Result<Process, String> {
        let process = Process::spawn(self.target, args).map_err(|e| {
            format!(
                "could not start {}: {e}",
                self.target.program.to_string_lossy()
            )
        })?;
        self.stderr
            .push((label.to_owned(), process.stderr_source()));
        Ok(process)
    }

    /// Starts the target on 127.0.0.1:0 with `args` and waits for
    /// `listening`.
    pub(crate) fn start(&mut self, args: &[&str]) -> Result<Running, String> {
        let mut all = vec!["--addr".to_owned(), "127.0.0.1:0".to_owned()];
        all.extend(args.iter().map(|a| (*a).to_owned()));
        let mut process = self.spawn(&format!("run {}", self.stderr.len() + 1), &all)?;
        let addr = process.wait_listening(START_TIMEOUT)?;
        Ok(Running { process, addr })
    }
}

/// A started target.
pub(crate) struct Running {
    pub(crate) process: Process,
    pub(crate) addr: SocketAddr,
}

impl Running {
    pub(crate) fn get(&self, target: &str) -> Outcome {
        http::request(self.addr, &Request::get(target), REQUEST_TIMEOUT)
    }

    pub(crate) fn signal(&mut self, sig: Signal) -> Result<Instant, String> {
        self.process
            .send(sig)
            .map_err(|e| format!("could not send {sig}: {e}"))
    }

    /// Waits for a line equal to `text`, or starting with `text ` when
    /// `text` ends with a space.
    pub(crate) fn wait_event(&self, text: &str, timeout: Duration) -> Result<Instant, String> {
        let prefix = text.ends_with(' ');
        self.process
            .wait_line(timeout, |l| {
                if prefix {
                    l.starts_with(text)
                } else {
                    l == text
                }
            })
            .map(|l| l.at)
            .ok_or_else(|| {
                format!(
                    "no `{}` line within {} ms",
                    text.trim_end(),
                    timeout.as_millis()
                )
            })
    }
}

/// How a shutdown is expected to end.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Ending {
    /// `closed`, `drained`, the cleanup lines, `exit`.
    Drained,
    /// `closed`, `abandoned N`, the cleanup lines, `exit`.
    Abandoned(u64),
    /// A second signal: `exit C` right after whatever came before.
    Forced,
}

/// What the end of a run must look like.
#[derive(Debug, Clone)]
pub(crate) struct Expect {
    pub(crate) signal: Signal,
    pub(crate) ending: Ending,
    pub(crate) cleanup: Vec<(String, CleanupResult)>,
    pub(crate) code: i32,
}

impl Expect {
    /// A clean SIGTERM shutdown without cleanup steps.
    pub(crate) fn clean() -> Self {
        Self {
            signal: Signal::Term,
            ending: Ending::Drained,
            cleanup: Vec::new(),
            code: 0,
        }
    }

    pub(crate) fn cleanup(mut self, steps: &[(&str, CleanupResult)]) -> Self {
        self.cleanup = steps.iter().map(|(n, r)| ((*n).to_owned(), *r)).collect();
        self
    }
}

/// A finished run: the exit and the parsed events with their times.
pub(crate) struct Finished {
    pub(crate) exit: Exit,
    pub(crate) events: Vec<(Event, Instant)>,
}

impl Finished {
    pub(crate) fn at(&self, pred: impl Fn(&Event) -> bool) -> Option<Instant> {
        self.events.iter().find(|(e, _)| pred(e)).map(|(_, at)| *at)
    }

    pub(crate) fn cleanup_lines(&self) -> Vec<(String, CleanupResult, Instant)> {
        self.events
            .iter()
            .filter_map(|(e, at)| match e {
                Event::Cleanup { name, result } => Some((name.clone(), *result, *at)),
                _ => None,
            })
            .collect()
    }
}

/// Milliseconds from `from` to `to`, negative when `to` came first.
pub(crate) fn ms_between(from: Instant, to: Instant) -> f64 {
    if to >= from {
        (to - from).as_secs_f64() * 1000.0
    } else {
        -((from - to).as_secs_f64() * 1000.0)
    }
}

/// Reads every stdout line of a finished process and checks it against the
/// grammar; records the problems.
pub(crate) fn collect_events(
    ctx: &mut Ctx<'_>,
    process: &Process,
    exit: &Exit,
) -> Vec<(Event, Instant)> {
    if !process.wait_stdout_end(Duration::from_secs(2)) {
        ctx.fail("standard output stayed open 2 s after the exit");
    }
    let lines: Vec<Line> = process.lines();
    let texts: Vec<&str> = lines.iter().map(|l| l.text.as_str()).collect();
    let (_, problems) = check_grammar(&texts, exit.code());
    for p in problems {
        ctx.fail(p);
    }
    lines
        .iter()
        .filter_map(|l| Event::parse(&l.text).ok().map(|e| (e, l.at)))
        .collect()
}

/// Waits for the exit (at most `wait`), then checks the whole stdout and
/// the exit code against `expect`. `None` when the process did not exit
/// (it is killed) — the failure is recorded.
pub(crate) fn finish(
    ctx: &mut Ctx<'_>,
    run: &mut Running,
    wait: Duration,
    expect: &Expect,
) -> Option<Finished> {
    let Some(exit) = run.process.wait_exit(wait) else {
        ctx.fail(format!(
            "the process did not exit within {} ms",
            wait.as_millis()
        ));
        run.process.kill();
        return None;
    };
    let events = collect_events(ctx, &run.process, &exit);
    match exit.code() {
        Some(code) => {
            ctx.check(code == expect.code, || {
                format!("exit code {code}, expected {}", expect.code)
            });
        }
        None => ctx.fail(format!(
            "the process died ({}) instead of exiting with code {}",
            exit.describe(),
            expect.code
        )),
    }
    let has = |pred: &dyn Fn(&Event) -> bool| events.iter().any(|(e, _)| pred(e));
    let sig = expect.signal.name();
    if !has(&|e| matches!(e, Event::Listening(_))) {
        ctx.fail("no `listening` line");
    }
    if !has(&|e| matches!(e, Event::Draining(s) if s == sig)) {
        ctx.fail(format!("no `draining {sig}` line"));
    }
    if !has(&|e| matches!(e, Event::Exit(_))) {
        ctx.fail("no `exit` line");
    }
    match &expect.ending {
        Ending::Drained | Ending::Abandoned(_) => {
            if !has(&|e| matches!(e, Event::Closed)) {
                ctx.fail("no `closed` line");
            }
        }
        Ending::Forced => {}
    }
    match &expect.ending {
        Ending::Drained => {
            if !has(&|e| matches!(e, Event::Drained)) {
                let instead = events
                    .iter()
                    .find(|(e, _)| matches!(e, Event::Abandoned(_)))
                    .map(|(e, _)| format!(" (got `{e}`)"))
                    .unwrap_or_default();
                ctx.fail(format!("no `drained` line{instead}"));
            }
        }
        Ending::Abandoned(n) => {
            let got = events.iter().find_map(|(e, _)| match e {
                Event::Abandoned(k) => Some(*k),
                _ => None,
            });
            match got {
                Some(k) => {
                    ctx.check(k == *n, || {
                        format!("`abandoned {k}`, expected `abandoned {n}`")
                    });
                }
                None => ctx.fail(format!("no `abandoned {n}` line")),
            }
        }
        Ending::Forced => {
            for (e, _) in &events {
                if matches!(e, Event::Cleanup { .. }) {
                    ctx.fail(format!(
                        "`{e}` printed although the second signal came first"
                    ));
                }
            }
        }
    }
    if expect.ending != Ending::Forced {
        let got: Vec<String> = events
            .iter()
            .filter_map(|(e, _)| match e {
                Event::Cleanup { name, result } => Some(format!("{name} {result}")),
                _ => None,
            })
            .collect();
        let want: Vec<String> = expect
            .cleanup
            .iter()
            .map(|(n, r)| format!("{n} {r}"))
            .collect();
        ctx.check(got == want, || {
            format!(
                "cleanup lines [{}], expected [{}]",
                got.join(", "),
                want.join(", ")
            )
        });
    }
    Some(Finished { exit, events })
}

/// Checks that `outcome` is a whole response with `status` (and `body`, when
/// given); records a failure naming `what` otherwise.
pub(crate) fn expect_response(
    ctx: &mut Ctx<'_>,
    what: &str,
    outcome: &Outcome,
    status: u16,
    body: Option<&str>,
) -> bool {
    match outcome {
        Outcome::Response(r) if r.status() == status => match body {
            Some(want) if r.text() != want => {
                ctx.fail(format!("{what}: body {:?}, expected {want:?}", r.text()));
                false
            }
            _ => true,
        },
        other => {
            ctx.fail(format!("{what}: {other}, expected {status}"));
            false
        }
    }
}

/// Checks `drained` against the time the last in-flight response arrived.
pub(crate) fn drained_after(ctx: &mut Ctx<'_>, drained: Option<Instant>, last_response: Instant) {
    let Some(drained) = drained else { return };
    let ms = ms_between(last_response, drained);
    ctx.ms("drained-after-last-response-ms", ms);
    ctx.promote("drained-after-last-response-ms");
    ctx.check(ms >= -SLACK_MS, || {
        format!(
            "`drained` came {:.1} ms before the last in-flight response was delivered",
            -ms
        )
    });
    ctx.check(ms <= BOUND_MS, || {
        format!("`drained` came {ms:.1} ms after the last response (the contract allows {BOUND_MS:.0} ms)")
    });
}

/// The gRPC scenarios (feature `grpc`): rules 28 and 29, and rule 15 for
/// gRPC clients. They apply only to targets that serve the contract's gRPC
/// section (the tokio target), so they are not among [`Scenario::all`].
#[cfg(feature = "grpc")]
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GrpcScenario {
    /// `grpc-health-flips`.
    HealthFlips,
    /// `grpc-watch-ends-at-closed`.
    WatchEndsAtClosed,
    /// `grpc-sleep-completes`.
    SleepCompletes,
    /// `grpc-ticks-unavailable`.
    TicksUnavailable,
    /// `grpc-ping-less-does-not-delay-exit`.
    PingLess,
    /// `grpc-preface-less-does-not-delay-exit`.
    PrefaceLess,
}

#[cfg(feature = "grpc")]
impl GrpcScenario {
    const ALL: &'static [GrpcScenario] = &[
        GrpcScenario::HealthFlips,
        GrpcScenario::WatchEndsAtClosed,
        GrpcScenario::SleepCompletes,
        GrpcScenario::TicksUnavailable,
        GrpcScenario::PingLess,
        GrpcScenario::PrefaceLess,
    ];

    /// Every gRPC scenario, in running order.
    pub fn all() -> &'static [GrpcScenario] {
        Self::ALL
    }

    /// The kebab-case name.
    pub fn name(self) -> &'static str {
        match self {
            Self::HealthFlips => "grpc-health-flips",
            Self::WatchEndsAtClosed => "grpc-watch-ends-at-closed",
            Self::SleepCompletes => "grpc-sleep-completes",
            Self::TicksUnavailable => "grpc-ticks-unavailable",
            Self::PingLess => "grpc-ping-less-does-not-delay-exit",
            Self::PrefaceLess => "grpc-preface-less-does-not-delay-exit",
        }
    }

    /// One sentence on what the scenario checks.
    pub fn description(self) -> &'static str {
        match self {
            Self::HealthFlips => {
                "Health/Check is SERVING for \"\" and the Contract until the signal, NOT_SERVING after it; an open Watch sends NOT_SERVING within 500 ms."
            }
            Self::WatchEndsAtClosed => {
                "Health/Watch streams end with status OK at `closed` (500 ms), not before; `drained` follows."
            }
            Self::SleepCompletes => {
                "Contract/Sleep calls in progress at the signal complete; `drained` follows the last (500 ms)."
            }
            Self::TicksUnavailable => {
                "Contract/Ticks streams tick through the unready delay and end at `closed` (500 ms) with UNAVAILABLE."
            }
            Self::PingLess => {
                "HTTP/2 clients that sent their preface and never answer (SETTINGS, PING) do not delay the exit (500 ms)."
            }
            Self::PrefaceLess => {
                "Connections that never sent the HTTP/2 preface do not delay the exit (500 ms)."
            }
        }
    }

    /// The scenario with that name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|s| s.name() == name)
    }

    fn runner(self) -> fn(&mut Ctx<'_>) -> Result<(), String> {
        match self {
            Self::HealthFlips => grpc::health_flips,
            Self::WatchEndsAtClosed => grpc::watch_ends_at_closed,
            Self::SleepCompletes => grpc::sleep_completes,
            Self::TicksUnavailable => grpc::ticks_unavailable,
            Self::PingLess => grpc::ping_less,
            Self::PrefaceLess => grpc::preface_less,
        }
    }
}

#[cfg(feature = "grpc")]
impl Display for GrpcScenario {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// Runs one gRPC scenario against `target` (feature `grpc`). Never panics.
#[cfg(feature = "grpc")]
pub fn run_grpc_scenario(target: &Target, scenario: GrpcScenario) -> ScenarioReport {
    run_runner(target, scenario.name(), Kind::Check, scenario.runner())
}
