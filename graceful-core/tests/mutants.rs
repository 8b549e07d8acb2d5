//! Behaviours that mutation testing (`cargo xtask mutants`) found no test
//! for: each test here fails on at least one mutant that the other tests
//! let through (but the last, which pins down the flag the equivalent
//! mutants of the state word touch). Written against the public API only,
//! so that they hold whatever shape the crate's internals take.
//!
//! The mutants no test can kill, and why:
//!
//! - `Shutdown::builder` returning `Default::default()`: it is
//!   `Builder::default()` already.
//! - `Step`'s `Debug`: nothing formats a step (it is not public).
//! - `MAX_COUNT` computed with `<<`: the guard count never comes near
//!   either limit.
//! - `|` to `^` in the state word's flag writes: disjoint bits, or a flag
//!   set twice only in a race no test can stage.
//! - `listener::close` stopping on a per-connection `accept` error: Linux
//!   does not report them for a loopback queue, so no test can stage one.

use futures_lite::future::{block_on, poll_once};
use graceful_core::{
    Cause, ConfigError, ManualClock, Phase, Request, Setting, Shutdown, Signal, StepOutcome, Timer,
};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Wake, Waker};
use std::time::Duration;

/// A waker that counts its wake-ups.
#[derive(Default)]
struct Count(AtomicUsize);

impl Wake for Count {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::SeqCst);
    }
}

impl Count {
    fn get(&self) -> usize {
        self.0.load(Ordering::SeqCst)
    }
}

#[test]
fn signals_have_their_names() {
    assert_eq!(Signal::TERM.name(), "SIGTERM");
    assert_eq!(Signal::INT.name(), "SIGINT");
    assert_eq!(Signal::new(10, "SIGUSR1").name(), "SIGUSR1");
}

#[test]
fn handles_and_futures_say_what_they_are_in_debug_output() {
    let driver = Shutdown::builder().build().unwrap();
    let shutdown = driver.handle();
    let _guard = shutdown.enter().unwrap();
    assert_eq!(
        format!("{driver:?}"),
        "Driver { shutdown: Shutdown { phase: Running, in_flight: 1, forced: false, .. } }"
    );
    let run = driver.run(ManualClock::new());
    assert_eq!(format!("{run:?}"), "Run { .. }");
    let owned = shutdown.enter_owned().unwrap();
    let token = shutdown.track_listener().unwrap();
    assert_eq!(format!("{_guard:?}"), "Guard { .. }");
    assert_eq!(format!("{owned:?}"), "OwnedGuard { .. }");
    assert_eq!(format!("{token:?}"), "ListenerToken { .. }");
    assert_eq!(
        format!("{:?}", shutdown.reached(Phase::Draining)),
        "Reached { .. }"
    );
    assert_eq!(format!("{:?}", shutdown.drained()), "Drained { .. }");
    assert_eq!(format!("{:?}", shutdown.abandoned()), "Abandoned { .. }");
    let builder = Shutdown::builder()
        .unready_delay(Duration::from_secs(1))
        .grace_period(Duration::from_secs(30));
    assert_eq!(
        format!("{builder:?}"),
        "Builder { unready_delay: 1s, drain_timeout: 20s, cleanup_timeout: 3s, \
         grace_period: Some(30s), observer: false, quiet: false }"
    );
    let clock = ManualClock::new();
    clock.advance(Duration::from_millis(1500));
    assert_eq!(format!("{clock:?}"), "ManualClock { elapsed: 1.5s }");
}

#[test]
fn outcomes_and_reports_print_what_happened() {
    assert_eq!(StepOutcome::Ok.to_string(), "ok");
    assert_eq!(StepOutcome::Timeout.to_string(), "timeout");
    assert_eq!(StepOutcome::Skipped.to_string(), "skipped");
    assert_eq!(
        StepOutcome::Error("disk full".into()).to_string(),
        "error: disk full"
    );
    assert_eq!(StepOutcome::Panic("oops".into()).to_string(), "panic: oops");

    let driver = Shutdown::builder().build().unwrap();
    let shutdown = driver.handle();
    shutdown
        .on_cleanup_sync("db", || Err(std::io::Error::other("disk full")))
        .unwrap();
    shutdown
        .on_cleanup_sync("cache", || Ok::<_, std::io::Error>(()))
        .unwrap();
    let _ = shutdown.request(Signal::TERM);
    let report = block_on(driver.run(ManualClock::new()));
    assert_eq!(
        report.to_string(),
        "shutdown on SIGTERM, drained (unready 0ns, closing 0ns, draining 0ns, cleanup 0ns); \
         cache ok in 0ns; db error: disk full in 0ns; exit code 1"
    );

    let driver = Shutdown::builder().build().unwrap();
    let shutdown = driver.handle();
    shutdown
        .on_cleanup_sync("db", || Ok::<_, std::io::Error>(()))
        .unwrap();
    let _guard = shutdown.enter().unwrap();
    let mut run = driver.run(ManualClock::new());
    let _ = shutdown.request(Cause::reason("deploy"));
    assert!(block_on(poll_once(&mut run)).is_none());
    let _ = shutdown.request(Signal::INT);
    let report = block_on(run);
    assert_eq!(
        report.to_string(),
        "shutdown on deploy, forced by SIGINT, drain interrupted with 1 in flight \
         (unready 0ns, closing 0ns, draining 0ns, cleanup 0ns); db skipped in 0ns; exit code 130"
    );
}

/// A future that is dropped gives its place in the wait list back: a later
/// notification does not wake it.
#[test]
fn dropped_waiters_are_not_woken() {
    let driver = Shutdown::builder().build().unwrap();
    let shutdown = driver.handle();
    let count = Arc::new(Count::default());
    let waker = Waker::from(count.clone());
    let mut cx = Context::from_waker(&waker);

    let mut reached = shutdown.reached(Phase::Finished);
    assert!(Pin::new(&mut reached).poll(&mut cx).is_pending());
    drop(reached);

    let clock = ManualClock::new();
    let mut sleep = clock.sleep(Duration::from_secs(1));
    assert!(sleep.as_mut().poll(&mut cx).is_pending());
    drop(sleep);

    let _ = shutdown.request(Signal::TERM);
    clock.advance(Duration::from_secs(1));
    assert_eq!(count.get(), 0, "a dropped future was woken");
    assert_eq!(block_on(driver.run(clock)).exit_code(), 0);
}

/// A second request that arrives while a step runs, and that the step
/// outlives in the same poll, still decides the outcome: no later step
/// runs, and they are reported skipped.
#[test]
fn a_step_that_forces_the_shutdown_is_the_last_to_run() {
    let driver = Shutdown::builder().build().unwrap();
    let shutdown = driver.handle();
    let ran = Arc::new(AtomicUsize::new(0));
    let counter = ran.clone();
    shutdown
        .on_cleanup_sync("first-registered", move || {
            counter.fetch_add(1, Ordering::SeqCst);
            Ok::<_, std::io::Error>(())
        })
        .unwrap();
    let handle = shutdown.clone();
    shutdown
        .on_cleanup_sync("forces", move || {
            assert_eq!(handle.request(Signal::INT), Request::Forced);
            Ok::<_, std::io::Error>(())
        })
        .unwrap();
    let _ = shutdown.request(Signal::TERM);
    let report = block_on(driver.run(ManualClock::new()));
    assert_eq!(ran.load(Ordering::SeqCst), 0, "a step ran after the force");
    let steps: Vec<_> = report
        .steps()
        .iter()
        .map(|step| (step.name(), step.outcome().clone()))
        .collect();
    assert_eq!(
        steps,
        // The forced report is written by the forcing request, while
        // `forces` is still running: it never ended as far as the report
        // knows, so it is skipped like the step after it.
        [
            ("forces", StepOutcome::Skipped),
            ("first-registered", StepOutcome::Skipped),
        ]
    );
    assert_eq!(report.exit_code(), 130);
}

/// With the `tracing` feature, every step of the shutdown is a `tracing`
/// event, at `INFO` when things go to plan and `WARN` when they do not.
#[cfg(feature = "tracing")]
mod tracing_events {
    use super::*;
    use std::sync::Mutex;
    use tracing::field::{Field, Visit};
    use tracing::span::{Attributes, Id, Record};
    use tracing::{Level, Metadata};

    /// A subscriber that keeps each event's level and message.
    #[derive(Clone, Default)]
    struct Recorder(Arc<Mutex<Vec<(Level, String)>>>);

    struct Message(Option<String>);

    impl Visit for Message {
        fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
            if field.name() == "message" {
                self.0 = Some(format!("{value:?}"));
            }
        }
    }

    impl tracing::Subscriber for Recorder {
        fn enabled(&self, _: &Metadata<'_>) -> bool {
            true
        }
        fn new_span(&self, _: &Attributes<'_>) -> Id {
            Id::from_u64(1)
        }
        fn record(&self, _: &Id, _: &Record<'_>) {}
        fn record_follows_from(&self, _: &Id, _: &Id) {}
        fn event(&self, event: &tracing::Event<'_>) {
            let mut message = Message(None);
            event.record(&mut message);
            self.0
                .lock()
                .unwrap()
                .push((*event.metadata().level(), message.0.unwrap_or_default()));
        }
        fn enter(&self, _: &Id) {}
        fn exit(&self, _: &Id) {}
    }

    #[test]
    fn every_step_of_the_shutdown_is_an_event() {
        let recorder = Recorder::default();
        tracing::subscriber::with_default(recorder.clone(), || {
            let driver = Shutdown::builder().build().unwrap();
            let shutdown = driver.handle();
            shutdown
                .on_cleanup_sync("fails", || Err(std::io::Error::other("disk full")))
                .unwrap();
            shutdown
                .on_cleanup_sync("works", || Ok::<_, std::io::Error>(()))
                .unwrap();
            let _ = shutdown.request(Signal::TERM);
            assert_eq!(block_on(driver.run(ManualClock::new())).exit_code(), 1);
        });
        let events = recorder.0.lock().unwrap().clone();
        let expected = [
            (Level::INFO, "shutdown requested (SIGTERM)"),
            (Level::INFO, "draining: new work refused, listeners closing"),
            (Level::INFO, "listeners closed"),
            (Level::INFO, "drained"),
            (Level::INFO, "cleanup works ok in 0ns"),
            (Level::WARN, "cleanup fails error: disk full in 0ns"),
            (Level::INFO, "finished: exit 1"),
            (
                Level::WARN,
                "report: shutdown on SIGTERM, drained (unready 0ns, closing 0ns, draining 0ns, cleanup 0ns); works ok in 0ns; fails error: disk full in 0ns; exit code 1",
            ),
        ];
        let events: Vec<(Level, &str)> = events.iter().map(|(l, m)| (*l, m.as_str())).collect();
        assert_eq!(events, expected);
    }
}

#[test]
fn errors_say_what_went_wrong() {
    let driver = Shutdown::builder().build().unwrap();
    let shutdown = driver.handle();
    let noop = || Ok::<_, std::io::Error>(());
    assert_eq!(
        shutdown
            .on_cleanup_sync("two words", noop)
            .unwrap_err()
            .to_string(),
        "cleanup step name `two words` must be one word: not empty, no white space"
    );
    shutdown.on_cleanup_sync("db", noop).unwrap();
    assert_eq!(
        shutdown
            .on_cleanup_sync("db", noop)
            .unwrap_err()
            .to_string(),
        "a cleanup step named `db` is already registered"
    );
    let _ = shutdown.request(Signal::TERM);
    let _ = block_on(driver.run(ManualClock::new()));
    assert_eq!(
        shutdown
            .on_cleanup_sync("late", noop)
            .unwrap_err()
            .to_string(),
        "cleanup step `late` registered after cleanup started: it would never run"
    );
    let refused = shutdown.enter().unwrap_err();
    assert_eq!(refused.phase(), Phase::Finished);
    assert_eq!(
        refused.to_string(),
        "shutting down (finished): new work is refused"
    );
}

/// `listener::close` on Linux: what reaches the accept loop and what stops
/// it.
#[cfg(all(feature = "net", target_os = "linux"))]
mod listener {
    use graceful_core::listener::{close, is_per_connection};
    use std::io::{self, ErrorKind};
    use std::net::{TcpListener, TcpStream, UdpSocket};
    use std::os::fd::OwnedFd;
    use std::sync::mpsc;
    use std::time::Duration;

    #[test]
    fn only_errors_about_one_connection_are_per_connection() {
        for kind in [
            ErrorKind::ConnectionAborted,
            ErrorKind::ConnectionReset,
            ErrorKind::ConnectionRefused,
            ErrorKind::Interrupted,
        ] {
            assert!(is_per_connection(&io::Error::from(kind)), "{kind:?}");
        }
        for kind in [
            ErrorKind::WouldBlock,
            ErrorKind::InvalidInput,
            ErrorKind::Unsupported,
            ErrorKind::OutOfMemory,
        ] {
            assert!(!is_per_connection(&io::Error::from(kind)), "{kind:?}");
        }
    }

    /// An `accept` error about the listener itself ends `close` with that
    /// error, at once. (A UDP socket cannot accept: `EOPNOTSUPP`.)
    #[test]
    fn an_error_of_the_listener_itself_is_returned() {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        let listener = TcpListener::from(OwnedFd::from(socket));
        let (tx, rx) = mpsc::channel();
        // On a thread, so that a `close` that loops on the error fails the
        // test instead of hanging it.
        std::thread::spawn(move || {
            let _ = tx.send(close(listener, |_| Ok(())));
        });
        let result = rx
            .recv_timeout(Duration::from_secs(60))
            .expect("close returns");
        assert_eq!(result.unwrap_err().kind(), ErrorKind::Unsupported);
    }

    /// Once `close` has begun, no handshake completes: a client that
    /// connects while the queue is being read is not let in.
    #[test]
    fn no_connection_completes_while_the_queue_is_read() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let _queued = TcpStream::connect(addr).unwrap();
        let mut late = Vec::new();
        close(listener, |_stream| {
            if late.is_empty() {
                late.push(TcpStream::connect_timeout(
                    &addr,
                    Duration::from_millis(500),
                ));
            }
            Ok(())
        })
        .unwrap();
        assert_eq!(late.len(), 1, "the queued connection was handed over");
        let error = late.pop().unwrap().expect_err("a late client got in");
        assert_eq!(error.kind(), ErrorKind::TimedOut);
    }
}

#[test]
fn settings_are_checked_at_their_exact_limits() {
    const DAY: Duration = Duration::from_secs(24 * 60 * 60);
    const NS: Duration = Duration::from_nanos(1);
    type Setter = fn(graceful_core::Builder, Duration) -> graceful_core::Builder;
    let setters: [(Setting, Setter); 3] = [
        (Setting::UnreadyDelay, graceful_core::Builder::unready_delay),
        (Setting::DrainTimeout, graceful_core::Builder::drain_timeout),
        (
            Setting::CleanupTimeout,
            graceful_core::Builder::cleanup_timeout,
        ),
    ];
    for (setting, set) in setters {
        assert!(set(Shutdown::builder(), DAY).build().is_ok(), "{setting}");
        let error = set(Shutdown::builder(), DAY + NS).build().unwrap_err();
        assert_eq!(
            error,
            ConfigError::TooLong {
                setting,
                value: DAY + NS,
                max: DAY
            }
        );
        assert_eq!(error.setting(), setting);
        assert_eq!(
            error.to_string(),
            format!("{setting} of 86400.000000001s is longer than the maximum of 86400s")
        );
    }
    assert_eq!(
        ConfigError::ZeroCleanupTimeout.to_string(),
        "cleanup timeout is zero: every cleanup step would time out"
    );

    // Unready delay + drain timeout + cleanup timeout, against the grace
    // period less its margin: equal fits, a nanosecond more does not.
    let budget = |grace: Duration| {
        Shutdown::builder()
            .unready_delay(Duration::from_secs(5))
            .drain_timeout(Duration::from_secs(20))
            .cleanup_timeout(Duration::from_secs(5))
            .grace_period(grace)
            .build()
    };
    let fits = Duration::from_secs(30) + graceful_core::Builder::GRACE_MARGIN;
    assert!(budget(fits).is_ok());
    assert_eq!(
        budget(fits - NS).unwrap_err(),
        ConfigError::OverBudget {
            needed: Duration::from_secs(30),
            grace_period: fits - NS,
            margin: graceful_core::Builder::GRACE_MARGIN,
        }
    );
}

#[test]
fn the_handle_reports_the_count_the_cause_and_the_force() {
    let driver = Shutdown::builder().build().unwrap();
    let shutdown = driver.handle();
    assert_eq!(shutdown.in_flight(), 0);
    let a = shutdown.enter().unwrap();
    let b = shutdown.enter_owned().unwrap();
    assert_eq!(shutdown.in_flight(), 2);
    drop(a);
    assert_eq!(shutdown.in_flight(), 1);
    assert_eq!(shutdown.cause(), None);
    assert!(!shutdown.is_forced());

    let mut run = driver.run(ManualClock::new());
    assert_eq!(shutdown.request(Signal::TERM), Request::Started);
    assert_eq!(shutdown.cause(), Some(Cause::Signal(Signal::TERM)));
    assert!(block_on(poll_once(&mut run)).is_none());
    assert!(!shutdown.is_forced(), "one request does not force");
    assert_eq!(shutdown.request(Signal::INT), Request::Forced);
    assert!(shutdown.is_forced());
    assert_eq!(shutdown.cause(), Some(Cause::Signal(Signal::TERM)));
    assert_eq!(block_on(run).exit_code(), 130);
    drop(b);
    assert_eq!(shutdown.in_flight(), 0);
}

#[test]
fn phases_have_lowercase_names() {
    let names: Vec<String> = [
        Phase::Running,
        Phase::Unready,
        Phase::Draining,
        Phase::CleaningUp,
        Phase::Finished,
    ]
    .iter()
    .map(|phase| {
        assert_eq!(phase.to_string(), phase.as_str());
        phase.to_string()
    })
    .collect();
    assert_eq!(
        names,
        ["running", "unready", "draining", "cleaning up", "finished"]
    );
}

/// `reached(phase)` resolves at once for the current phase or an earlier
/// one, and not before the phase is reached.
#[test]
fn reached_resolves_from_its_phase_on() {
    let driver = Shutdown::builder().build().unwrap();
    let shutdown = driver.handle();
    assert_eq!(
        block_on(poll_once(shutdown.reached(Phase::Running))),
        Some(Phase::Running)
    );
    assert_eq!(block_on(poll_once(shutdown.reached(Phase::Unready))), None);
    let _ = shutdown.request(Signal::TERM);
    assert_eq!(
        block_on(poll_once(shutdown.reached(Phase::Running))),
        Some(Phase::Unready)
    );
    drop(driver);
}

/// Forcing a shutdown whose drain was already abandoned keeps it
/// abandoned: a server that asks only then still closes its connections
/// (state invariant 3, flags are never cleared). cargo-mutants' `|` to `^`
/// mutants of the flag writes survive this test, and every other: the bits
/// they join are disjoint, and `^` binds tighter than `|`, so each mutant
/// computes the same word.
#[test]
fn a_force_after_the_drain_deadline_keeps_the_work_abandoned() {
    let driver = Shutdown::builder()
        .drain_timeout(Duration::from_secs(1))
        .build()
        .unwrap();
    let shutdown = driver.handle();
    shutdown
        .on_cleanup("hangs", std::future::pending::<Result<(), std::io::Error>>)
        .unwrap();
    let _guard = shutdown.enter().unwrap();
    let clock = ManualClock::new();
    let mut run = driver.run(clock.clone());
    let _ = shutdown.request(Signal::TERM);
    assert!(block_on(poll_once(&mut run)).is_none());
    clock.advance(Duration::from_secs(1));
    assert!(block_on(poll_once(&mut run)).is_none());
    assert_eq!(shutdown.phase(), Phase::CleaningUp);
    assert_eq!(block_on(poll_once(shutdown.abandoned())), Some(()));
    assert_eq!(shutdown.request(Signal::INT), Request::Forced);
    assert_eq!(block_on(poll_once(shutdown.abandoned())), Some(()));
    assert_eq!(block_on(run).exit_code(), 130);
}
