//! Behaviours that mutation testing (`cargo xtask mutants`) found no test
//! for: each test here fails on at least one mutant that the other tests
//! let through. Written against the public API only, so that they hold
//! whatever shape the crate's internals take.

use futures_lite::future::block_on;
use graceful_core::{ManualClock, Phase, Request, Shutdown, Signal, StepOutcome, Timer};
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
        [
            ("forces", StepOutcome::Ok),
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
            (Level::INFO, "shutdown requested"),
            (Level::INFO, "draining: listeners closing, new work refused"),
            (Level::INFO, "listeners closed"),
            (Level::INFO, "drained: nothing in flight"),
            (Level::INFO, "cleanup step ok"),
            (Level::WARN, "cleanup step failed"),
            (Level::INFO, "shutdown finished"),
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
