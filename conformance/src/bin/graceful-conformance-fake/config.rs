//! The command line: the contract's options, plus `--fault`.

use std::ffi::OsString;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::time::Duration;

pub(crate) const USAGE: &str = "\
usage: graceful-conformance-fake [--addr HOST:PORT] [--drain-timeout-ms N] [--unready-delay-ms N]
       [--cleanup A,B,C] [--cleanup-ms N] [--cleanup-timeout-ms N] [--cleanup-fail NAME]
       [--cleanup-panic NAME] [--cleanup-hang NAME] [--store PATH] [--events-ms N]
       [--fault NAME] [--tls-cert PATH --tls-key PATH] [--upgrade-child-fails]
       graceful-conformance-fake --list-faults";

macro_rules! faults {
    ($( $variant:ident = $name:literal: $doc:literal; )*) => {
        /// One broken rule.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub(crate) enum Fault {
            $( #[doc = $doc] $variant, )*
        }

        impl Fault {
            pub(crate) const ALL: &'static [Fault] = &[ $( Fault::$variant, )* ];

            pub(crate) fn name(self) -> &'static str {
                match self { $( Fault::$variant => $name, )* }
            }

            pub(crate) fn description(self) -> &'static str {
                match self { $( Fault::$variant => $doc, )* }
            }
        }
    };
}

faults! {
    ExitAtOnce = "exit-at-once": "exits 0 at once on SIGTERM, cutting off requests in progress";
    IgnoreSigterm = "ignore-sigterm": "ignores SIGTERM (SIGINT still works)";
    SigintImmediate = "sigint-immediate": "treats SIGINT as an immediate stop (exit 0, no drain)";
    IgnoreSecondSignal = "ignore-second-signal": "ignores every signal after the first";
    DieOnSecondSignal = "die-on-second-signal": "dies of the second signal instead of exiting with 128 + N";
    CleanupInOrder = "cleanup-in-order": "runs cleanup steps first registered first";
    CleanupStopOnError = "cleanup-stop-on-error": "stops the cleanup at the first step that does not end ok";
    CleanupPanicAborts = "cleanup-panic-aborts": "lets a panicking cleanup step take the process down";
    CleanupNoTimeout = "cleanup-no-timeout": "waits for a cleanup step however long it takes";
    No503 = "no-503": "serves requests on open connections normally after `closed` instead of 503";
    CloseIdle = "close-idle": "closes idle keep-alive connections at the signal";
    WaitIdle = "wait-idle": "waits for every connection to close before `drained`";
    WaitPartialHead = "wait-partial-head": "counts a request as in progress from its first byte";
    NoConnectionClose = "no-connection-close": "leaves out `Connection: close` on heads sent after `closed`";
    LateClose = "late-close": "prints `closed` but keeps accepting connections";
    EarlyDrained = "early-drained": "prints `drained` right after `closed`, before requests finish";
    SilentDeadline = "silent-deadline": "at the drain deadline, cuts requests off but prints `drained` and exits 0";
    Ready200 = "ready-200": "keeps /health/ready at 200 after the signal";
    StopAcceptAtSignal = "stop-accept-at-signal": "stops accepting at the signal and drops the listener with its backlog at the close";
    DeferEarlySignal = "defer-early-signal": "takes 1.2 s to start and handles a start-up signal only then";
    LenientArgs = "lenient-args": "ignores unknown options and bad values";
    StdoutNoise = "stdout-noise": "logs each new connection on standard output";
    TruncateStream = "truncate-stream": "ends chunked streams early once `closed` is printed";
    IgnoreSlowBody = "ignore-slow-body": "begins a request only once its body has arrived";
    ServePipelined = "serve-pipelined": "answers requests pipelined behind a `Connection: close` response";
    SkipCommit = "skip-commit": "answers 201 to orders without storing them";
    NoLive = "no-live": "answers 404 to /health/live";
    // Long-lived streams and background jobs (contract v2, rules 17-22).
    V1Only = "v1-only": "answers 404 to /events, /ws and /jobs, as a version 1 target does";
    StreamsEndAtSignal = "streams-end-at-signal": "tells /events and /ws to go away at the signal instead of at `closed`";
    EventsNoRetry = "events-no-retry": "ends /events streams at `closed` without the `retry: 1000` event";
    EventsHold = "events-hold": "keeps /events streams going after `closed`, so they hold the drain to the deadline";
    WsNoClose = "ws-no-close": "drops /ws connections at `closed` without a Close frame";
    WsClose1000 = "ws-close-1000": "closes /ws connections at `closed` with code 1000 instead of 1001";
    WsEchoAfterClose = "ws-echo-after-close": "still echoes messages that arrive after its Close frame";
    WsHang = "ws-hang": "never closes a /ws connection's TCP after its Close frame";
    JobsNotAwaited = "jobs-not-awaited": "does not wait for background jobs before `drained`";
    JobsDeadlineUncounted = "jobs-deadline-uncounted": "leaves unfinished jobs out of `abandoned N`";
    JobsAfterClose = "jobs-after-close": "accepts new jobs after `closed` instead of 503";
    JobsWithoutStore = "jobs-without-store": "answers 202 to jobs without a --store, and loses them";
    JobsDuplicateQueued = "jobs-duplicate-queued": "accepts an id that is queued but not yet stored";
    EventsIgnoreMs = "events-ignore-ms": "ticks every /events stream at --events-ms, whatever its ?ms=";
    WsCloseEarly = "ws-close-early": "closes a /ws connection's TCP right after its Close frame, without waiting for the answer";
    JobsSync202 = "jobs-sync-202": "runs the job before answering, so the 202 comes only once it is committed";
    // HTTP/2 (rules 11, 13 to 16).
    NoH2 = "no-h2": "does not speak HTTP/2: the preface is read as an HTTP/1.1 request";
    H2GoawayAtSignal = "h2-goaway-at-signal": "sends HTTP/2 GOAWAY at the signal instead of at `closed`";
    H2NoGoaway = "h2-no-goaway": "sends no GOAWAY at `closed`, leaving HTTP/2 connections open";
    H2ServeAfterGoaway = "h2-serve-after-goaway": "processes HTTP/2 streams above the final GOAWAY's last stream id";
    H2Status503 = "h2-503": "answers 503 to HTTP/2 streams begun after `closed`";
    H2ResetAtClosed = "h2-reset-at-closed": "resets HTTP/2 streams in progress at `closed`";
    H2WaitPing = "h2-wait-ping": "counts an HTTP/2 connection in progress until its GOAWAY PING is answered";
    H2WaitPreface = "h2-wait-preface": "counts a connection in progress while its HTTP/2 preface is unfinished";
    H2DeadlineEof = "h2-deadline-eof": "at the drain deadline, closes HTTP/2 connections without RST_STREAM";
    // TLS (rules 11, 12).
    TlsWaitHandshake = "tls-wait-handshake": "counts a TLS connection in progress from its accept, handshake included";
    TlsNoCloseNotify = "tls-no-close-notify": "closes TLS connections without a close_notify";
    TlsNoAlpn = "tls-no-alpn": "offers no ALPN protocol, so a TLS client never gets h2";
    TlsLenientFiles = "tls-lenient-files": "serves plaintext when --tls-cert/--tls-key are incomplete or unreadable";
    // The zero-downtime upgrade (rules 23 to 27).
    NoUpgrade = "no-upgrade": "has no upgrade: SIGHUP ends it, and --upgrade-child-fails is an unknown option";
    UpgradeRebinds = "upgrade-rebinds": "closes its listener at SIGHUP and binds the address again for the new process, refusing connects in between";
    UpgradeDrainsEarly = "upgrade-drains-early": "hands over as soon as the new process is started, before it reports that it serves";
    UpgradeFiltersSharedSocket = "upgrade-filters-shared-socket": "closes its copy of the shared socket at the hand-over with the drop-all socket filter, so the new process completes no handshake";
}

/// The parsed command line.
#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) addr: SocketAddr,
    pub(crate) drain_timeout: Duration,
    pub(crate) unready_delay: Duration,
    pub(crate) cleanup: Vec<String>,
    pub(crate) cleanup_time: Duration,
    pub(crate) cleanup_timeout: Duration,
    pub(crate) cleanup_fail: Vec<String>,
    pub(crate) cleanup_panic: Vec<String>,
    pub(crate) cleanup_hang: Vec<String>,
    pub(crate) store: Option<PathBuf>,
    /// The default interval of `/events`.
    pub(crate) events_interval: Duration,
    pub(crate) fault: Option<Fault>,
    pub(crate) tls_cert: Option<PathBuf>,
    pub(crate) tls_key: Option<PathBuf>,
    /// A process started by an upgrade exits with code 3 before
    /// `listening` (rule 25's failing new process).
    pub(crate) upgrade_child_fails: bool,
}

impl Config {
    pub(crate) fn has(&self, fault: Fault) -> bool {
        self.fault == Some(fault)
    }
}

impl Default for Config {
    fn default() -> Self {
        Self {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            drain_timeout: Duration::from_millis(30_000),
            unready_delay: Duration::ZERO,
            cleanup: Vec::new(),
            cleanup_time: Duration::ZERO,
            cleanup_timeout: Duration::from_millis(5_000),
            cleanup_fail: Vec::new(),
            cleanup_panic: Vec::new(),
            cleanup_hang: Vec::new(),
            store: None,
            events_interval: Duration::from_millis(1_000),
            fault: None,
            tls_cert: None,
            tls_key: None,
            upgrade_child_fails: false,
        }
    }
}

/// What the command line asks for.
#[derive(Debug)]
pub(crate) enum Parsed {
    Run(Box<Config>),
    Help,
    ListFaults,
}

fn millis(option: &str, value: &str) -> Result<Duration, String> {
    value
        .parse::<u64>()
        .map(Duration::from_millis)
        .map_err(|_| {
            format!(
                "invalid value '{value}' for '{option}': expected a whole number of milliseconds"
            )
        })
}

/// Parses the arguments after the program name.
pub(crate) fn parse(args: impl IntoIterator<Item = OsString>) -> Result<Parsed, String> {
    let args: Vec<String> = args
        .into_iter()
        .map(|a| {
            a.into_string()
                .map_err(|a| format!("argument {a:?} is not UTF-8"))
        })
        .collect::<Result<_, _>>()?;
    let lenient = args
        .windows(2)
        .any(|w| w[0] == "--fault" && w[1] == Fault::LenientArgs.name())
        || args.iter().any(|a| a == "--fault=lenient-args");
    let no_upgrade = args
        .windows(2)
        .any(|w| w[0] == "--fault" && w[1] == Fault::NoUpgrade.name())
        || args.iter().any(|a| a == "--fault=no-upgrade");
    let mut config = Config::default();
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        i += 1;
        let (option, inline) = match arg.split_once('=') {
            Some((o, v)) if o.starts_with("--") => (o, Some(v.to_owned())),
            _ => (arg.as_str(), None),
        };
        match option {
            "--help" | "-h" => return Ok(Parsed::Help),
            "--list-faults" => return Ok(Parsed::ListFaults),
            // A flag of rule 25, unknown to a target without an upgrade.
            "--upgrade-child-fails" if inline.is_none() && !no_upgrade => {
                config.upgrade_child_fails = true;
                continue;
            }
            _ => {}
        }
        let takes_value = matches!(
            option,
            "--addr"
                | "--drain-timeout-ms"
                | "--unready-delay-ms"
                | "--cleanup"
                | "--cleanup-ms"
                | "--cleanup-timeout-ms"
                | "--cleanup-fail"
                | "--cleanup-panic"
                | "--cleanup-hang"
                | "--store"
                | "--events-ms"
                | "--fault"
                | "--tls-cert"
                | "--tls-key"
        );
        if !takes_value {
            if lenient {
                continue;
            }
            return Err(format!("unknown option '{arg}'"));
        }
        let value = match inline {
            Some(v) => v,
            None if i < args.len() && !args[i].starts_with("--") => {
                i += 1;
                args[i - 1].clone()
            }
            None if lenient => continue,
            None => return Err(format!("a value is required for '{option}'")),
        };
        let applied = apply(&mut config, option, &value);
        if let Err(e) = applied
            && !lenient
        {
            return Err(e);
        }
    }
    Ok(Parsed::Run(Box::new(config)))
}

fn apply(config: &mut Config, option: &str, value: &str) -> Result<(), String> {
    let names = |v: &str| -> Vec<String> {
        v.split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_owned)
            .collect()
    };
    match option {
        "--addr" => {
            config.addr = value
                .to_socket_addrs()
                .ok()
                .and_then(|mut a| a.next())
                .ok_or_else(|| {
                    format!("invalid value '{value}' for '--addr': expected HOST:PORT")
                })?;
        }
        "--drain-timeout-ms" => config.drain_timeout = millis(option, value)?,
        "--unready-delay-ms" => config.unready_delay = millis(option, value)?,
        "--cleanup" => config.cleanup = names(value),
        "--cleanup-ms" => config.cleanup_time = millis(option, value)?,
        "--cleanup-timeout-ms" => config.cleanup_timeout = millis(option, value)?,
        "--cleanup-fail" => config.cleanup_fail.push(value.to_owned()),
        "--cleanup-panic" => config.cleanup_panic.push(value.to_owned()),
        "--cleanup-hang" => config.cleanup_hang.push(value.to_owned()),
        "--store" => config.store = Some(PathBuf::from(value)),
        "--events-ms" => config.events_interval = millis(option, value)?,
        "--tls-cert" => config.tls_cert = Some(PathBuf::from(value)),
        "--tls-key" => config.tls_key = Some(PathBuf::from(value)),
        "--fault" => {
            config.fault = Some(
                Fault::ALL
                    .iter()
                    .copied()
                    .find(|f| f.name() == value)
                    .ok_or_else(|| {
                        format!("invalid value '{value}' for '--fault': see --list-faults")
                    })?,
            );
        }
        _ => return Err(format!("unknown option '{option}'")),
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str]) -> Result<Config, String> {
        match parse(args.iter().map(OsString::from))? {
            Parsed::Run(c) => Ok(*c),
            other => Err(format!("{other:?}")),
        }
    }

    #[test]
    fn parses_every_option() {
        let c = run(&[
            "--addr",
            "127.0.0.1:8080",
            "--drain-timeout-ms=10",
            "--unready-delay-ms",
            "20",
            "--cleanup",
            "a,b",
            "--cleanup-ms",
            "3",
            "--cleanup-timeout-ms",
            "4",
            "--cleanup-fail",
            "a",
            "--cleanup-panic",
            "b",
            "--cleanup-hang",
            "c",
            "--store",
            "x.sqlite",
            "--events-ms",
            "250",
            "--fault",
            "late-close",
            "--tls-cert",
            "c.pem",
            "--tls-key=k.pem",
            "--upgrade-child-fails",
        ])
        .unwrap();
        assert_eq!(c.addr.port(), 8080);
        assert_eq!(c.drain_timeout, Duration::from_millis(10));
        assert_eq!(c.unready_delay, Duration::from_millis(20));
        assert_eq!(c.cleanup, ["a", "b"]);
        assert_eq!(c.cleanup_time, Duration::from_millis(3));
        assert_eq!(c.cleanup_timeout, Duration::from_millis(4));
        assert_eq!(
            (
                c.cleanup_fail.len(),
                c.cleanup_panic.len(),
                c.cleanup_hang.len()
            ),
            (1, 1, 1)
        );
        assert_eq!(c.store, Some(PathBuf::from("x.sqlite")));
        assert_eq!(c.events_interval, Duration::from_millis(250));
        assert_eq!(c.fault, Some(Fault::LateClose));
        assert_eq!(c.tls_cert, Some(PathBuf::from("c.pem")));
        assert_eq!(c.tls_key, Some(PathBuf::from("k.pem")));
        assert!(c.upgrade_child_fails);
    }

    #[test]
    fn no_upgrade_fault_refuses_the_upgrade_flag() {
        let err = run(&["--fault", "no-upgrade", "--upgrade-child-fails"]).unwrap_err();
        assert!(err.contains("--upgrade-child-fails"), "{err}");
        assert!(!run(&[]).unwrap().upgrade_child_fails);
    }

    #[test]
    fn errors_name_the_option() {
        for (args, option) in [
            (&["--bogus"][..], "--bogus"),
            (&["--drain-timeout-ms", "abc"][..], "--drain-timeout-ms"),
            (&["--drain-timeout-ms"][..], "--drain-timeout-ms"),
            (&["--cleanup-ms", "1.5"][..], "--cleanup-ms"),
            (&["--addr", "nowhere"][..], "--addr"),
            (&["--events-ms", "soon"][..], "--events-ms"),
            (&["--fault", "nope"][..], "--fault"),
        ] {
            let err = run(args).unwrap_err();
            assert!(err.contains(option), "{args:?}: {err}");
        }
    }

    #[test]
    fn lenient_args_fault_ignores_errors() {
        let c = run(&[
            "--bogus",
            "--drain-timeout-ms",
            "abc",
            "--fault",
            "lenient-args",
        ])
        .unwrap();
        assert_eq!(c.drain_timeout, Duration::from_millis(30_000));
    }
}
