//! The grace period as a run-time promise: whatever the listeners, the
//! requests and the cleanup steps do, the outcome is decided within the
//! grace period less its margin, counted from the first request.

mod common;

use common::Harness;
use graceful_core::{Builder, DrainOutcome, Signal, StepOutcome};
use std::future::pending;
use std::time::Duration;

const S: Duration = Duration::from_secs(1);

/// 20 s of drain, 3 s per step and a 30 s grace period: the settings pass
/// the build-time check.
fn kubernetes(b: Builder) -> Builder {
    b.drain_timeout(20 * S)
        .cleanup_timeout(3 * S)
        .grace_period(30 * S)
}

/// Advances the clock one second at a time until the report is out, and
/// returns how long that took.
fn time_to_outcome(h: &mut Harness, limit: Duration) -> Duration {
    let start = h.clock.elapsed();
    while h.report.is_none() {
        assert!(
            h.clock.elapsed() - start <= limit,
            "no outcome after {limit:?}"
        );
        h.advance(S);
    }
    h.clock.elapsed() - start
}

/// Five steps that never end, `a` registered first (so run last).
fn hanging_steps(h: &Harness) {
    for name in ["a", "b", "c", "d", "e"] {
        h.shutdown
            .on_cleanup(name, || async { pending::<Result<(), String>>().await })
            .unwrap();
    }
}

/// The listener takes 19 s to close and a request never ends: without the
/// budget, 19 s of closing, 20 s of drain and five steps at 3 s take 54 s.
fn slow_close_stuck_request_hanging_steps(build: fn(Builder) -> Builder) -> Harness {
    let mut h = Harness::new(build);
    hanging_steps(&h);
    let listener = h.shutdown.track_listener().unwrap();
    let stuck = h.shutdown.enter_owned().unwrap();
    let _ = h.request(Signal::TERM);
    h.advance(19 * S);
    drop(listener);
    h.settle();
    std::mem::forget(stuck);
    h
}

#[test]
fn a_slow_close_a_stuck_request_and_hanging_steps_fit_the_grace_period() {
    let mut h = slow_close_stuck_request_hanging_steps(kubernetes);
    let took = time_to_outcome(&mut h, 60 * S) + 19 * S;
    assert!(
        took <= 29 * S,
        "the outcome took {took:?}, past 30 s less 1 s"
    );
    let report = h.report();
    assert_eq!(report.exit_code(), 1);
    // The drain ends 3 s before the budget, leaving the first step its
    // full timeout: 26 s, 7 s after the listener closed.
    assert_eq!(report.drain(), DrainOutcome::Abandoned(1));
    assert!(report.drain_cut_by_grace_period());
    assert_eq!(report.phases().draining, 7 * S);
    let steps: Vec<_> = report
        .steps()
        .iter()
        .map(|s| (s.name(), s.outcome().clone(), s.cut_by_grace_period()))
        .collect();
    assert_eq!(
        steps,
        [
            ("e", StepOutcome::Timeout, false),
            ("d", StepOutcome::Timeout, true),
            ("c", StepOutcome::Timeout, true),
            ("b", StepOutcome::Timeout, true),
            ("a", StepOutcome::Timeout, true),
        ]
    );
    assert_eq!(report.steps()[0].duration(), 3 * S);
    assert_eq!(report.steps()[1].duration(), Duration::ZERO);
    let text = report.to_string();
    assert!(
        text.contains("1 abandoned (drain cut by the grace period)"),
        "{text}"
    );
    assert!(
        text.contains("; d timeout (cut by the grace period) in 0ns"),
        "{text}"
    );
    assert!(text.contains("; e timeout in 3s"), "{text}");
}

#[test]
fn without_a_grace_period_nothing_is_cut() {
    let mut h =
        slow_close_stuck_request_hanging_steps(|b| b.drain_timeout(20 * S).cleanup_timeout(3 * S));
    let took = time_to_outcome(&mut h, 60 * S) + 19 * S;
    assert_eq!(took, 19 * S + 20 * S + 5 * 3 * S);
    let report = h.report();
    assert!(!report.drain_cut_by_grace_period());
    assert!(report.steps().iter().all(|s| !s.cut_by_grace_period()));
    assert_eq!(report.phases().draining, 20 * S);
}

#[test]
fn a_listener_that_never_closes_is_cut_by_the_drain_timeout_not_the_budget() {
    let mut h = Harness::new(kubernetes);
    hanging_steps(&h);
    let _listener = h.shutdown.track_listener().unwrap();
    let _ = h.request(Signal::TERM);
    let took = time_to_outcome(&mut h, 60 * S);
    assert!(took <= 29 * S, "the outcome took {took:?}");
    let report = h.report();
    assert_eq!(report.phases().closing, 20 * S);
    assert!(
        !report.drain_cut_by_grace_period(),
        "the drain timeout ended it"
    );
    let cut: Vec<_> = report
        .steps()
        .iter()
        .map(|s| s.cut_by_grace_period())
        .collect();
    // 9 s are left at 20 s: three steps at their full 3 s, two cut.
    assert_eq!(cut, [false, false, false, true, true]);
}

#[test]
fn a_step_whose_turn_comes_with_no_time_left_still_gets_its_first_poll() {
    let mut h = Harness::new(|b| {
        b.drain_timeout(5 * S)
            .cleanup_timeout(3 * S)
            .grace_period(10 * S)
    });
    h.shutdown
        .on_cleanup_sync("quick", || Ok::<_, String>(()))
        .unwrap();
    h.shutdown
        .on_cleanup("hangs", || async { pending::<Result<(), String>>().await })
        .unwrap();
    let listener = h.shutdown.track_listener().unwrap();
    let _stuck = h.shutdown.enter_owned().unwrap();
    let _ = h.request(Signal::TERM);
    h.advance(4 * S);
    drop(listener);
    h.settle();
    let took = time_to_outcome(&mut h, 30 * S) + 4 * S;
    assert_eq!(took, 9 * S, "10 s less the 1 s margin");
    let report = h.report();
    // Abandoned at 6 s (9 s less one cleanup timeout), 2 s into the drain.
    assert_eq!(report.drain(), DrainOutcome::Abandoned(1));
    assert!(report.drain_cut_by_grace_period());
    assert_eq!(report.phases().draining, 2 * S);
    let steps: Vec<_> = report
        .steps()
        .iter()
        .map(|s| (s.name(), s.outcome().clone()))
        .collect();
    assert_eq!(
        steps,
        [("hangs", StepOutcome::Timeout), ("quick", StepOutcome::Ok)]
    );
    assert!(!report.steps()[0].cut_by_grace_period(), "its full 3 s");
    assert_eq!(report.steps()[1].duration(), Duration::ZERO);
}

#[test]
fn a_drained_shutdown_within_the_grace_period_is_not_marked_cut() {
    let mut h = Harness::new(kubernetes);
    let guard = h.shutdown.enter_owned().unwrap();
    let _ = h.request(Signal::TERM);
    h.advance(5 * S);
    drop(guard);
    h.settle();
    let report = h.report();
    assert_eq!(report.exit_code(), 0);
    assert!(!report.drain_cut_by_grace_period());
}

#[test]
fn the_grace_period_needed_for_one_step_is_the_least_that_builds() {
    let settings = || {
        graceful_core::Shutdown::builder()
            .unready_delay(10 * S)
            .drain_timeout(15 * S)
            .cleanup_timeout(3 * S)
    };
    let needed = settings().grace_period_needed(1);
    assert_eq!(needed, 29 * S);
    assert!(settings().grace_period(needed).build().is_ok());
    let short = needed - Duration::from_millis(1);
    assert!(settings().grace_period(short).build().is_err());
    // Zero steps count as one; each further step adds its full timeout.
    assert_eq!(settings().grace_period_needed(0), needed);
    assert_eq!(settings().grace_period_needed(3), needed + 6 * S);
}
