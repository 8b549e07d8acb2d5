//! The harness checks itself: each built-in invariant holds for correct
//! code, and fails against a deliberately broken admission, handler,
//! driver, timer or exit mapping.

#![cfg(feature = "testing")]

use graceful_core::testing::{
    Admission, CLEANUP_AFTER_DRAIN, Cx, EXIT_POLICY, FINISHES, Failure, NO_GUARD_AFTER_DRAINING,
    NO_LOST_WORK, Schedule, Sim,
};
use graceful_core::{Phase, Signal, Sleep, Timer};
use std::future::{pending, poll_fn};
use std::task::Poll;
use std::time::{Duration, Instant};

fn schedule(line: &str) -> Schedule {
    line.parse().expect("a valid schedule")
}

/// A handler that works for as long as the request says.
fn working(sim: Sim) -> Sim {
    sim.handler(|cx, req| async move { cx.sleep(req.work()).await })
}

/// Two cleanup steps, `database` acquired first, `cache` second.
fn two_steps(cx: &Cx) {
    for name in ["database", "cache"] {
        cx.on_cleanup(name, || async { Ok::<_, std::io::Error>(()) })
            .unwrap();
    }
}

fn broken(result: Result<graceful_core::testing::Outcome, Failure>, invariant: &str) -> Failure {
    let failure = result.expect_err("the broken part is caught");
    assert!(
        failure.broke(invariant),
        "expected [{invariant}]:\n{failure}"
    );
    failure
}

#[test]
fn correct_code_keeps_every_invariant() {
    for line in [
        "term@0ms",
        "term@10ms req@0ms+30ms req@5ms+0ms req@20ms+5ms",
        "term@10ms req@0ms+5000ms steps=ok,slow:100ms",
        "term@10ms int@20ms req@0ms+5000ms steps=hang,fail",
        "term@10ms req@0ms+30ms req@0ms+30ms steps=panic,hang picks=1,1,0,1",
    ] {
        let outcome = working(Sim::new(schedule(line)))
            .drain_timeout(Duration::from_secs(1))
            .setup(two_steps)
            .run();
        if let Err(failure) = outcome {
            panic!("{failure}");
        }
    }
}

// No guard after draining.

/// An admission that serves a request even once the shutdown refused it.
fn serves_anyway(shutdown: &graceful_core::Shutdown) -> Admission {
    match shutdown.enter_owned() {
        Ok(guard) => Admission::Guarded(guard),
        Err(_) => Admission::Unguarded,
    }
}

#[test]
fn a_request_admitted_after_draining_began_is_caught() {
    // Request 1 comes while request 0 holds the drain open.
    let line = "term@0ms req@0ms+100ms req@10ms+5ms";
    let outcome = working(Sim::new(schedule(line)))
        .run()
        .expect("the adapters' admission refuses it");
    assert_eq!((outcome.admitted(), outcome.refused()), (1, 1));
    // An intake of its own (no listener) that serves what is refused.
    let failure = broken(
        working(Sim::new(schedule(line)))
            .admit(serves_anyway)
            .drain_timeout(Duration::from_secs(1))
            .run(),
        NO_GUARD_AFTER_DRAINING,
    );
    assert!(
        failure
            .trace()
            .contains("request 1 admitted without a guard"),
        "{failure}"
    );
    // The same intake, correct, keeps the invariant.
    working(Sim::new(schedule(line)))
        .admit(|shutdown| match shutdown.enter_owned() {
            Ok(guard) => Admission::Guarded(guard),
            Err(_) => Admission::Refused,
        })
        .run()
        .expect("a correct intake");
}

#[test]
fn a_guard_a_handler_asks_for_during_the_drain_is_refused() {
    // The handler asks for a second guard (for sub-work) once the drain is
    // under way: the core refuses it. A core that granted it would show as
    // the in-flight count rising after draining began.
    let outcome = Sim::new(schedule("term@10ms req@0ms+50ms"))
        .handler(|cx, req| async move {
            cx.sleep(req.work()).await;
            match cx.shutdown().enter_owned() {
                Ok(guard) => {
                    cx.note("sub-work guard granted");
                    cx.sleep(Duration::from_millis(5)).await;
                    drop(guard);
                }
                Err(refused) => cx.note(format!("sub-work guard refused: {refused}")),
            }
        })
        .run();
    match outcome {
        Ok(outcome) => assert!(
            outcome.trace().contains("sub-work guard refused"),
            "{}",
            outcome.trace()
        ),
        Err(failure) => panic!("{failure}"),
    }
}

// No lost work.

#[test]
fn a_panicking_handler_is_caught() {
    let failure = broken(
        Sim::new(schedule("term@10ms req@0ms+5ms"))
            .handler(|_, req| async move {
                if req.id() == 0 {
                    std::panic::resume_unwind(Box::new("handler bug"));
                }
            })
            .run(),
        NO_LOST_WORK,
    );
    assert!(
        failure.violations()[0]
            .detail()
            .contains("request 0 panicked: handler bug"),
        "{failure}"
    );
}

#[test]
fn requests_served_without_a_guard_are_caught() {
    // Unguarded requests still running at the exit were never counted.
    broken(
        working(Sim::new(schedule("term@10ms req@0ms+50ms")))
            .admit(|_| Admission::Unguarded)
            .run(),
        NO_LOST_WORK,
    );
}

// Cleanup once, in reverse, after the drain.

/// A runtime timer that fires at once, whatever the duration.
struct Hasty;

impl Timer for Hasty {
    fn sleep(&self, _: Duration) -> Sleep {
        Box::pin(async {})
    }

    fn now(&self) -> Instant {
        Instant::now()
    }
}

#[test]
fn a_driver_whose_timer_fires_early_is_caught() {
    let failure = broken(
        working(Sim::new(schedule("term@10ms req@0ms+50ms")))
            .drain_timeout(Duration::from_secs(1))
            .setup(two_steps)
            .driver(|driver, _clock| driver.run(Hasty))
            .run(),
        CLEANUP_AFTER_DRAIN,
    );
    assert!(
        failure.violations()[0]
            .detail()
            .contains("before the drain timeout of 1000ms"),
        "{failure}"
    );

    // A step cut short before its cleanup timeout.
    let failure = broken(
        Sim::new(schedule("term@0ms steps=slow:50ms"))
            .setup(|cx| {
                cx.on_cleanup("database", || async { Ok::<_, std::io::Error>(()) })
                    .unwrap();
            })
            .driver(|driver, _clock| driver.run(Hasty))
            .run(),
        CLEANUP_AFTER_DRAIN,
    );
    assert!(
        failure.violations()[0]
            .detail()
            .contains("before its timeout"),
        "{failure}"
    );
}

#[test]
fn a_driver_that_forwards_each_signal_twice_is_caught() {
    // An adapter bug: two signal handlers, so one SIGTERM forces the
    // shutdown. The steps are skipped, and the exit code is 143.
    let failure = broken(
        Sim::new(schedule("term@10ms"))
            .setup(two_steps)
            .driver(|driver, clock| {
                let shutdown = driver.handle();
                let run = driver.run(clock);
                async move {
                    shutdown.reached(Phase::Unready).await;
                    let _ = shutdown.request(Signal::TERM);
                    run.await
                }
            })
            .run(),
        CLEANUP_AFTER_DRAIN,
    );
    assert!(failure.broke(EXIT_POLICY), "{failure}");
    assert!(
        failure.to_string().contains("step `cache` never ran"),
        "{failure}"
    );
    assert_eq!(failure.exit_code(), Some(143));
}

// The exit code follows the policy.

#[test]
fn an_exit_mapping_that_hides_a_failed_step_is_caught() {
    let line = "term@0ms steps=fail";
    let correct = Sim::new(schedule(line)).setup(two_steps).run();
    // The failing step is `database`'s fate; 1 is the policy's answer.
    assert_eq!(correct.expect("the real mapping").exit_code(), 1);
    let failure = broken(
        Sim::new(schedule(line))
            .setup(two_steps)
            .exit_code(|_| 0)
            .run(),
        EXIT_POLICY,
    );
    assert!(
        failure.violations()[0]
            .detail()
            .contains("exit code 0, but the policy says 1: step `database` did not succeed"),
        "{failure}"
    );
}

#[test]
fn an_exit_mapping_that_ignores_the_second_signal_is_caught() {
    let line = "term@0ms int@10ms req@0ms+5000ms";
    let correct = working(Sim::new(schedule(line))).run();
    assert_eq!(correct.expect("the real mapping").exit_code(), 130);
    broken(
        working(Sim::new(schedule(line)))
            .exit_code(|report| u8::from(report.abandoned() > 0))
            .run(),
        EXIT_POLICY,
    );
}

// The shutdown finishes.

#[test]
fn a_driver_that_never_returns_is_caught() {
    let failure = broken(
        Sim::new(schedule("term@0ms"))
            .driver(|driver, clock| async move {
                let _report = driver.run(clock).await;
                pending().await
            })
            .run(),
        FINISHES,
    );
    assert!(failure.exit_code().is_none());
}

#[test]
fn a_handler_that_wakes_itself_forever_is_caught() {
    let failure = broken(
        Sim::new(schedule("term@10ms req@0ms+0ms"))
            .handler(|_, _| {
                poll_fn(|cx| {
                    cx.waker().wake_by_ref();
                    Poll::<()>::Pending
                })
            })
            .run(),
        FINISHES,
    );
    assert!(
        failure.to_string().contains("wakes itself forever"),
        "{failure}"
    );
}
