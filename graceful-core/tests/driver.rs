//! The driver walked through each path on a manual clock, polled by hand so
//! that every wake-up it needs is checked: a future is only polled again
//! after its waker was called.

mod common;

use common::{Flag, Harness, poll_once};
use graceful_core::{
    Cause, ConfigError, DrainOutcome, Phase, RegisterError, Request, Setting, Shutdown, Signal,
    StepOutcome,
};
use std::future::{Future, pending};
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::task::{Context, Waker};
use std::time::Duration;

const MS: Duration = Duration::from_millis(1);

#[test]
fn clean_shutdown_waits_for_the_last_guard_and_exits_0() {
    let mut h = Harness::new(|b| b);
    let guard = h.shutdown.enter_owned().unwrap();
    assert_eq!(h.request(Signal::TERM), Request::Started);
    assert_eq!(h.shutdown.phase(), Phase::Draining);
    assert!(h.shutdown.enter().is_err(), "no guard after draining began");
    h.advance(Duration::from_secs(5));
    assert!(h.report.is_none(), "still one request in flight");
    drop(guard);
    h.settle();
    assert_eq!(h.report().exit_code(), 0);
    assert_eq!(h.report().drain(), DrainOutcome::Drained);
    assert_eq!(h.report().phases().draining, Duration::from_secs(5));
    assert_eq!(
        h.events(),
        [
            "draining SIGTERM",
            "unready-over",
            "closed",
            "drained",
            "exit 0"
        ]
    );
}

#[test]
fn unready_delay_keeps_accepting_and_reports_not_ready() {
    let mut h = Harness::new(|b| b.unready_delay(100 * MS));
    let listener = h.shutdown.track_listener().unwrap();
    assert!(h.shutdown.is_ready());
    let _ = h.request(Signal::INT);
    assert!(!h.shutdown.is_ready());
    assert_eq!(h.shutdown.phase(), Phase::Unready);
    let guard = h
        .shutdown
        .enter_owned()
        .expect("work is still accepted while unready");
    h.advance(99 * MS);
    assert_eq!(h.shutdown.phase(), Phase::Unready);
    drop(guard);
    h.advance(MS);
    assert_eq!(h.shutdown.phase(), Phase::Draining);
    drop(listener);
    h.settle();
    assert_eq!(h.report().exit_code(), 0);
    assert_eq!(h.report().phases().unready, 100 * MS);
    assert_eq!(h.report().cause(), &Cause::Signal(Signal::INT));
}

#[test]
fn a_request_before_any_listener_skips_the_unready_delay() {
    let mut h = Harness::new(|b| b.unready_delay(Duration::from_secs(3)));
    let _ = h.request(Signal::TERM);
    assert_eq!(h.report().exit_code(), 0, "stopped at once, no time passed");
    assert_eq!(h.report().phases().unready, Duration::ZERO);
}

#[test]
fn the_delay_is_decided_by_what_listened_when_the_request_came() {
    let driver = Shutdown::builder()
        .unready_delay(Duration::from_secs(3))
        .build()
        .unwrap();
    let shutdown = driver.handle();
    let _ = shutdown.request(Signal::TERM);
    // A listener registered after the request, before the driver first
    // runs: still no delay, since nothing listened when the signal came.
    let listener = shutdown.track_listener().unwrap();
    let mut run = driver.run(graceful_core::ManualClock::new());
    assert!(poll_once(&mut run).is_pending(), "waits for the listener");
    assert_eq!(shutdown.phase(), Phase::Draining, "no unready delay");
    drop(listener);
    assert!(poll_once(&mut run).is_ready());
}

#[test]
fn closed_waits_for_every_listener_token() {
    let mut h = Harness::new(|b| b);
    let first = h.shutdown.track_listener().unwrap();
    let second = h.shutdown.track_listener().unwrap();
    let _ = h.request(Signal::TERM);
    assert!(h.shutdown.track_listener().is_err(), "too late to listen");
    drop(first);
    h.settle();
    assert!(!h.events().contains(&"closed".to_owned()));
    h.advance(7 * MS);
    drop(second);
    h.settle();
    assert_eq!(h.report().phases().closing, 7 * MS);
    assert_eq!(h.events()[2], "closed");
}

#[test]
fn drain_deadline_abandons_counts_and_still_cleans_up() {
    let mut h = Harness::new(|b| b.drain_timeout(Duration::from_secs(2)));
    h.shutdown
        .on_cleanup_sync("db", || Ok::<_, String>(()))
        .unwrap();
    let stuck: Vec<_> = (0..3).map(|_| h.shutdown.enter_owned().unwrap()).collect();
    let _ = h.request(Signal::TERM);
    let mut abandoned = h.shutdown.abandoned();
    h.advance(1999 * MS);
    assert!(h.report.is_none());
    assert!(poll_once(&mut abandoned).is_pending());
    h.advance(MS);
    assert!(poll_once(&mut abandoned).is_ready());
    assert_eq!(h.report().drain(), DrainOutcome::Abandoned(3));
    assert_eq!(h.report().abandoned(), 3);
    assert_eq!(h.report().exit_code(), 1);
    assert_eq!(h.events()[3..], ["abandoned 3", "cleanup db ok", "exit 1"]);
    drop(stuck);
}

#[test]
fn steps_run_last_registered_first_and_failures_do_not_stop_the_rest() {
    let mut h = Harness::new(|b| b.cleanup_timeout(Duration::from_secs(1)));
    let s = &h.shutdown;
    s.on_cleanup("first", || async { Ok::<_, String>(()) })
        .unwrap();
    s.on_cleanup("fails", || async { Err::<(), _>("disk full") })
        .unwrap();
    s.on_cleanup("panics", || async { panic!("boom") as Result<(), String> })
        .unwrap();
    s.on_cleanup("hangs", || async { pending::<Result<(), String>>().await })
        .unwrap();
    s.on_cleanup_sync("sync-panics", || -> Result<(), String> {
        panic!("sync boom")
    })
    .unwrap();
    let _ = h.request(Signal::TERM);
    h.advance(Duration::from_secs(1));
    let report = h.report();
    let steps: Vec<_> = report
        .steps()
        .iter()
        .map(|s| (s.name(), s.outcome().clone()))
        .collect();
    assert_eq!(
        steps,
        [
            ("sync-panics", StepOutcome::Panic("sync boom".into())),
            ("hangs", StepOutcome::Timeout),
            ("panics", StepOutcome::Panic("boom".into())),
            ("fails", StepOutcome::Error("disk full".into())),
            ("first", StepOutcome::Ok),
        ]
    );
    assert_eq!(report.steps()[1].duration(), Duration::from_secs(1));
    assert_eq!(report.exit_code(), 1);
}

#[test]
fn a_second_signal_forces_at_once_in_every_phase() {
    // Forced while unready, while draining, while a step runs.
    for (stage, expected_skipped) in [(0, 2), (1, 2), (2, 2)] {
        let mut h = Harness::new(|b| b.unready_delay(Duration::from_secs(1)));
        h.shutdown
            .on_cleanup("a", || async { Ok::<_, String>(()) })
            .unwrap();
        h.shutdown
            .on_cleanup("b", || async { pending::<Result<(), String>>().await })
            .unwrap();
        let listener = h.shutdown.track_listener().unwrap();
        let guard = h.shutdown.enter_owned().unwrap();
        let _ = h.request(Signal::TERM);
        if stage >= 1 {
            h.advance(Duration::from_secs(1));
            assert_eq!(h.shutdown.phase(), Phase::Draining);
            drop(listener);
        }
        if stage >= 2 {
            drop(guard);
            h.settle();
            assert_eq!(h.shutdown.phase(), Phase::CleaningUp);
        }
        assert!(h.report.is_none());
        assert_eq!(h.request(Signal::INT), Request::Forced);
        let report = h.report();
        assert_eq!(report.exit_code(), 130, "stage {stage}");
        assert_eq!(report.forced_by(), Some(&Cause::Signal(Signal::INT)));
        let skipped = report
            .steps()
            .iter()
            .filter(|s| s.outcome() == &StepOutcome::Skipped)
            .count();
        assert_eq!(skipped, expected_skipped, "stage {stage}");
        assert_eq!(h.events().last().unwrap(), "forced 130");
        assert_eq!(h.shutdown.request(Signal::TERM), Request::AlreadyFinished);
    }
}

#[test]
fn registration_after_cleanup_started_is_an_error() {
    let mut h = Harness::new(|b| b);
    let shutdown = h.shutdown.clone();
    let late = Arc::new(Mutex::new(None));
    let seen = late.clone();
    h.shutdown
        .on_cleanup_sync("registers-late", move || {
            *seen.lock().unwrap() = Some(shutdown.on_cleanup_sync("late", || Ok::<_, String>(())));
            Ok::<_, String>(())
        })
        .unwrap();
    assert_eq!(
        h.shutdown
            .on_cleanup_sync("registers-late", || Ok::<_, String>(())),
        Err(RegisterError::Duplicate {
            name: "registers-late".into()
        })
    );
    assert!(matches!(
        h.shutdown
            .on_cleanup_sync("two words", || Ok::<_, String>(())),
        Err(RegisterError::BadName { .. })
    ));
    let _ = h.request(Signal::TERM);
    assert_eq!(h.report().exit_code(), 0);
    assert_eq!(
        late.lock().unwrap().clone().unwrap(),
        Err(RegisterError::CleanupStarted {
            name: "late".into()
        })
    );
}

#[test]
fn drained_future_is_woken_by_the_last_guard_only() {
    let mut h = Harness::new(|b| b);
    let a = h.shutdown.enter_owned().unwrap();
    let b = h.shutdown.enter_owned().unwrap();
    let _ = h.request(Signal::TERM);
    assert_eq!(h.shutdown.phase(), Phase::Draining);
    let mut drained = h.shutdown.drained();
    let flag = Arc::new(Flag::default());
    let waker = Waker::from(flag.clone());
    let mut cx = Context::from_waker(&waker);
    assert!(Pin::new(&mut drained).poll(&mut cx).is_pending());
    drop(a);
    assert!(
        !flag.0.load(Ordering::SeqCst),
        "one request still in flight"
    );
    drop(b);
    assert!(
        flag.0.load(Ordering::SeqCst),
        "the last guard's drop wakes it"
    );
    assert!(Pin::new(&mut drained).poll(&mut cx).is_ready());
    h.settle();
    assert_eq!(h.report().exit_code(), 0);
}

#[test]
fn a_reason_forces_with_exit_code_1() {
    let mut h = Harness::new(|b| b);
    let _guard = h.shutdown.enter_owned().unwrap();
    let _ = h.shutdown.request(Cause::reason("deploy"));
    assert_eq!(h.shutdown.request(Cause::reason("again")), Request::Forced);
    h.settle();
    assert_eq!(h.report().exit_code(), 1);
    assert_eq!(h.report().drain(), DrainOutcome::Interrupted(1));
}

#[test]
fn nonsense_configurations_fail_to_build() {
    let err = |b: graceful_core::Builder| b.build().unwrap_err();
    assert_eq!(
        err(Shutdown::builder().cleanup_timeout(Duration::ZERO)),
        ConfigError::ZeroCleanupTimeout
    );
    assert!(matches!(
        err(Shutdown::builder().drain_timeout(Duration::from_secs(90_000))),
        ConfigError::TooLong {
            setting: Setting::DrainTimeout,
            ..
        }
    ));
    assert_eq!(
        err(Shutdown::builder().cleanup_timeout(Duration::ZERO)).setting(),
        Setting::CleanupTimeout
    );
    assert_eq!(
        err(Shutdown::builder().unready_delay(Duration::from_secs(90_000))).setting(),
        Setting::UnreadyDelay
    );
    let over = err(Shutdown::builder()
        .unready_delay(Duration::from_secs(5))
        .drain_timeout(Duration::from_secs(25))
        .grace_period(Duration::from_secs(30)));
    assert_eq!(
        over.to_string(),
        "unready delay + drain timeout + cleanup timeout (33s) exceed the grace period (30s) less its 1s margin"
    );
    // The margin is kept back: 27 s + 3 s fill 30 s, so they do not fit.
    let at_the_margin = |drain| {
        Shutdown::builder()
            .drain_timeout(Duration::from_secs(drain))
            .grace_period(Duration::from_secs(30))
            .build()
    };
    assert!(at_the_margin(26).is_ok());
    assert_eq!(
        at_the_margin(27).unwrap_err(),
        ConfigError::OverBudget {
            needed: Duration::from_secs(30),
            grace_period: Duration::from_secs(30),
            margin: graceful_core::Builder::GRACE_MARGIN,
        }
    );
    assert_eq!(
        err(Shutdown::builder().grace_period(Duration::from_secs(90_000))).setting(),
        Setting::GracePeriod
    );
    assert_eq!(over.setting(), Setting::GracePeriod);
    assert_eq!(
        err(Shutdown::builder().unready_delay(Duration::from_secs(90_000))).to_string(),
        "unready delay of 90000s is longer than the maximum of 86400s"
    );
    // The defaults fit Kubernetes' 30 s.
    assert!(
        Shutdown::builder()
            .grace_period(Duration::from_secs(30))
            .build()
            .is_ok()
    );
}

#[test]
fn guards_leave_on_panic() {
    let shutdown = Shutdown::builder().build().unwrap().handle();
    let s = shutdown.clone();
    let result = std::panic::catch_unwind(move || {
        let _guard = s.enter().unwrap();
        assert_eq!(s.in_flight(), 1);
        panic!("request handler panicked");
    });
    assert!(result.is_err());
    assert_eq!(shutdown.in_flight(), 0);
}

#[test]
fn an_upgrade_hand_over_skips_the_unready_delay_and_never_forces() {
    let mut h = Harness::new(|b| b.unready_delay(Duration::from_secs(3)));
    let listener = h.shutdown.track_listener().unwrap();
    let guard = h.shutdown.enter_owned().unwrap();
    assert!(h.shutdown.hand_over(4242));
    h.settle();
    assert!(
        !h.shutdown.is_ready(),
        "readiness turns false at the hand-over"
    );
    assert_eq!(
        h.shutdown.phase(),
        Phase::Draining,
        "no unready delay: no time passed"
    );
    assert_eq!(h.shutdown.cause(), Some(Cause::Upgrade { pid: 4242 }));
    assert!(
        !h.shutdown.hand_over(4243),
        "a second hand-over does nothing"
    );
    assert!(!h.shutdown.is_forced());
    drop(listener);
    drop(guard);
    h.settle();
    assert_eq!(h.report().exit_code(), 0);
    assert_eq!(h.report().cause(), &Cause::Upgrade { pid: 4242 });
}

#[test]
fn a_hand_over_after_a_signal_does_nothing() {
    let mut h = Harness::new(|b| b);
    let _listener = h.shutdown.track_listener().unwrap();
    let _ = h.request(Signal::TERM);
    assert!(!h.shutdown.hand_over(4242), "the signal came first");
    assert!(!h.shutdown.is_forced());
    assert_eq!(h.shutdown.cause(), Some(Cause::Signal(Signal::TERM)));
}
