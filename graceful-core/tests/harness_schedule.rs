//! The simulation's parts: the schedule's text form, the strategy, the
//! executor's picks, the clock, and determinism.

#![cfg(feature = "testing")]

use graceful_core::Signal;
use graceful_core::Timer;
use graceful_core::testing::{
    Arrival, Executor, Fate, Picks, Schedule, Schedules, SignalAt, Sim, SimClock, TaskState,
};
use proptest::prelude::*;
use std::future::Future;
use std::ops::ControlFlow;
use std::pin::pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn a_schedule_reads_back_from_its_line(schedule in any::<Schedule>()) {
        let line = schedule.to_string();
        let back: Schedule = line.parse().unwrap();
        prop_assert_eq!(&back, &schedule);
        prop_assert_eq!(format!("{schedule:?}"), format!("Schedule(\"{line}\")"));
    }

    #[test]
    fn drawn_schedules_keep_to_their_shape(
        schedule in Schedules::default()
            .window(Duration::from_millis(50))
            .requests(3)
            .work(Duration::from_millis(7))
            .second_signal(false)
            .steps(2, false)
            .picks(4)
            .strategy()
    ) {
        prop_assert!(schedule.signal.at < Duration::from_millis(50));
        prop_assert!(schedule.second.is_none());
        prop_assert!(schedule.arrivals.len() <= 3);
        prop_assert!(schedule.arrivals.windows(2).all(|w| w[0].at <= w[1].at));
        // At most 7 ms past the signal (or the arrival, when later).
        let bounded = schedule.arrivals.iter().all(|a| {
            a.at.max(schedule.signal.at) + Duration::from_millis(7) >= a.at + a.work
        });
        prop_assert!(bounded);
        prop_assert!(schedule.fates.len() <= 2);
        prop_assert!(schedule.fates.iter().all(|f| matches!(f, Fate::Ok | Fate::Slow(_))));
        prop_assert!(schedule.picks.len() <= 4);
    }

    /// The same schedule gives the same trace, every time.
    #[test]
    fn a_schedule_replays_exactly(schedule in any::<Schedule>()) {
        let run = |schedule: Schedule| {
            let result = Sim::new(schedule)
                .drain_timeout(Duration::from_secs(1))
                .cleanup_timeout(Duration::from_millis(300))
                .setup(|cx| {
                    for name in ["database", "cache"] {
                        cx.on_cleanup(name, || async { Ok::<_, std::io::Error>(()) }).unwrap();
                    }
                })
                .handler(|cx, req| async move {
                    cx.sleep(req.work()).await;
                    cx.note(format!("answered {}", req.id()));
                })
                .run();
            match result {
                Ok(outcome) => outcome.trace().to_string(),
                Err(failure) => panic!("{failure}"),
            }
        };
        prop_assert_eq!(run(schedule.clone()), run(schedule));
    }
}

#[test]
fn the_line_form_reads_every_part() {
    let schedule: Schedule =
        "int@5ms term@9ms req@0ms+3ms req@1ms+0ms steps=ok,slow:4ms,fail,panic,hang picks=0,255"
            .parse()
            .unwrap();
    assert_eq!(
        schedule,
        Schedule {
            signal: SignalAt {
                at: Duration::from_millis(5),
                signal: Signal::INT
            },
            second: Some(SignalAt {
                at: Duration::from_millis(9),
                signal: Signal::TERM
            }),
            arrivals: vec![
                Arrival {
                    at: Duration::ZERO,
                    work: Duration::from_millis(3)
                },
                Arrival {
                    at: Duration::from_millis(1),
                    work: Duration::ZERO
                },
            ],
            fates: vec![
                Fate::Ok,
                Fate::Slow(Duration::from_millis(4)),
                Fate::Fail,
                Fate::Panic,
                Fate::Hang
            ],
            picks: vec![0, 255],
        }
    );
}

#[test]
fn a_bad_line_gets_one_clear_error() {
    for (line, error) in [
        (
            "",
            "cannot read the schedule: it needs a first signal, such as `term@100ms`, to shut down at",
        ),
        (
            "term@5",
            "cannot read `term@5` in the schedule: times are whole milliseconds, such as `120ms`",
        ),
        (
            "term@5ms req@3ms",
            "cannot read `req@3ms` in the schedule: a request is `req@<at>ms+<work>ms`",
        ),
        (
            "term@5ms steps=ok,explode",
            "cannot read `steps=ok,explode` in the schedule: a step is `ok`, `fail`, `panic`, `hang` or `slow:<n>ms`",
        ),
        (
            "term@5ms picks=256",
            "cannot read `picks=256` in the schedule: a pick is a number from 0 to 255",
        ),
        (
            "term@5ms int@3ms",
            "cannot read `int@3ms` in the schedule: the second signal cannot come before the first",
        ),
        (
            "term@1ms int@2ms hup@3ms",
            "cannot read `hup@3ms` in the schedule: a schedule has at most two signals",
        ),
        (
            "kill@1ms",
            "cannot read `kill@1ms` in the schedule: expected a signal (`term@<n>ms`, `int@`, `hup@`, `quit@`), `req@<at>ms+<work>ms`, `steps=...` or `picks=...`",
        ),
    ] {
        let parsed = line.parse::<Schedule>();
        assert_eq!(parsed.unwrap_err().to_string(), error, "for {line:?}");
    }
}

/// Runs three tasks that each log their name at their first poll; returns
/// the order.
fn order_with(picks: Vec<u8>) -> Vec<&'static str> {
    let log = Arc::new(Mutex::new(Vec::new()));
    let mut executor = Executor::new();
    for name in ["a", "b", "c"] {
        let log = log.clone();
        executor.spawn(name, async move { log.lock().unwrap().push(name) });
    }
    let polls = executor
        .run_until_stalled(
            &mut Picks::new(picks),
            100,
            |_, _| ControlFlow::Continue(()),
        )
        .unwrap();
    assert_eq!(polls, 3);
    Arc::try_unwrap(log).unwrap().into_inner().unwrap()
}

#[test]
fn picks_choose_which_ready_task_runs_next() {
    assert_eq!(order_with(vec![]), ["a", "b", "c"]);
    assert_eq!(order_with(vec![2, 1]), ["c", "b", "a"]);
    // A pick counts modulo the ready tasks; one ready task takes no pick.
    assert_eq!(order_with(vec![4]), ["b", "a", "c"]);
}

#[test]
fn a_task_is_polled_again_only_once_woken() {
    let clock = SimClock::new();
    let polls = Arc::new(Mutex::new(0));
    let mut executor = Executor::new();
    let (counted, sleeper) = (polls.clone(), clock.clone());
    let id = executor.spawn("sleeper", async move {
        let mut sleep = sleeper.sleep(Duration::from_millis(10));
        std::future::poll_fn(|cx| {
            *counted.lock().unwrap() += 1;
            sleep.as_mut().poll(cx)
        })
        .await;
    });
    let run = |executor: &mut Executor| {
        executor
            .run_until_stalled(&mut Picks::default(), 100, |_, _| ControlFlow::Continue(()))
            .unwrap()
    };
    assert_eq!(run(&mut executor), 1);
    assert_eq!(clock.next_deadline(), Some(Duration::from_millis(10)));
    assert_eq!(run(&mut executor), 0, "not woken, not polled");
    clock.advance(Duration::from_millis(9));
    assert_eq!(run(&mut executor), 0, "not due yet");
    clock.advance(Duration::from_millis(1));
    assert_eq!(run(&mut executor), 1);
    assert_eq!(executor.state(id), TaskState::Done);
    assert_eq!(*polls.lock().unwrap(), 2);
    assert_eq!(clock.next_deadline(), None, "a finished sleep is gone");
}

#[test]
fn a_dropped_sleep_is_no_deadline() {
    let clock = SimClock::new();
    let mut sleep = clock.sleep(Duration::from_secs(5));
    let waker = Waker::noop();
    assert!(
        sleep
            .as_mut()
            .poll(&mut Context::from_waker(waker))
            .is_pending()
    );
    assert_eq!(clock.next_deadline(), Some(Duration::from_secs(5)));
    drop(sleep);
    assert_eq!(clock.next_deadline(), None);
    // A sleep of zero is due at once, and registers nothing.
    let zero = pin!(clock.sleep(Duration::ZERO));
    assert_eq!(zero.poll(&mut Context::from_waker(waker)), Poll::Ready(()));
    assert_eq!(clock.next_deadline(), None);
}
