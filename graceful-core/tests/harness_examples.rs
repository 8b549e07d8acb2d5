//! Three real shutdown bugs, each found by the simulation, shrunk to a
//! minimal schedule, replayed from the schedule's printed line, and passing
//! once fixed:
//!
//! 1. an order handler that commits after the store's cleanup step closed
//!    the store;
//! 2. a background job spawned without a guard, lost at the exit;
//! 3. a stream that ignores the going-away signal and holds the drain until
//!    its deadline.
//!
//! The handlers are written as they would be in production: they take the
//! `Shutdown`, a `Timer` and a spawner; only those come from the harness.

#![cfg(feature = "testing")]

use futures_lite::future;
use graceful_core::testing::{Cx, Failure, NO_LOST_WORK, Outcome, Schedule, Schedules, Sim};
use graceful_core::{Phase, Shutdown, Timer};
use proptest::prelude::*;
use proptest::test_runner::{Config, RngAlgorithm, TestError, TestRng, TestRunner};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Runs `case` on schedules of `shape` until one fails, and returns the
/// shrunk schedule and its failure. Deterministic: a fixed seed.
fn shrunk(shape: &Schedules, case: impl Fn(Schedule) -> Result<Outcome, Failure>) -> Schedule {
    let config = Config {
        cases: 512,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha));
    match runner.run(&shape.strategy(), |schedule| {
        case(schedule)?;
        Ok(())
    }) {
        Err(TestError::Fail(reason, minimal)) => {
            // What a `proptest!` test would print; shown with `--nocapture`.
            eprintln!("{reason}\nminimal failing input: {minimal:?}\n");
            minimal
        }
        other => panic!("expected the bug to be found, got {other:?}"),
    }
}

/// Replays a schedule from its printed line, as a user would, and expects
/// the same failure.
fn replay(line: &str, case: impl Fn(Schedule) -> Result<Outcome, Failure>) -> Failure {
    let schedule: Schedule = line.parse().expect("the printed line reads back");
    assert_eq!(schedule.to_string(), line);
    case(schedule).expect_err("the replay fails again")
}

/// Checks the fixed code on many schedules.
fn passes(shape: &Schedules, case: impl Fn(Schedule) -> Result<Outcome, Failure>) {
    let config = Config {
        cases: 512,
        failure_persistence: None,
        ..Config::default()
    };
    let mut runner =
        TestRunner::new_with_rng(config, TestRng::deterministic_rng(RngAlgorithm::ChaCha));
    if let Err(error) = runner.run(&shape.strategy(), |schedule| {
        case(schedule)?;
        Ok(())
    }) {
        panic!("the fixed code fails: {error}");
    }
}

// 1. Orders.

/// The store: writes are refused (and remembered) once it is closed.
#[derive(Clone, Default)]
struct Store(Arc<Mutex<StoreState>>);

#[derive(Default)]
struct StoreState {
    closed: bool,
    committed: Vec<usize>,
    answered: Vec<usize>,
    late_writes: Vec<usize>,
}

impl Store {
    fn commit(&self, order: usize) {
        let mut state = self.0.lock().unwrap();
        if state.closed {
            state.late_writes.push(order);
        } else {
            state.committed.push(order);
        }
    }

    fn answer(&self, order: usize) {
        self.0.lock().unwrap().answered.push(order);
    }

    fn close(&self) {
        self.0.lock().unwrap().closed = true;
    }

    fn no_late_write(&self) -> bool {
        self.0.lock().unwrap().late_writes.is_empty()
    }

    fn every_commit_answered(&self) -> bool {
        let state = self.0.lock().unwrap();
        state.committed.iter().all(|o| state.answered.contains(o))
    }
}

/// The buggy handler: checks the payment (which takes `work`), then
/// commits, whatever happened to the shutdown meanwhile. When the drain is
/// abandoned, the store's cleanup step closes the store under it, and the
/// commit lands while the telemetry step still runs.
async fn place_order_buggy(clock: impl Timer, store: Store, order: usize, work: Duration) {
    clock.sleep(work).await;
    store.commit(order);
    store.answer(order);
}

/// The fix: give up (nothing committed; the client sees its connection
/// closed and retries) once the drain is abandoned. `abandoned` is polled
/// first, so that a payment check ending at the very moment of the deadline
/// does not commit into a store about to close.
async fn place_order(
    shutdown: Shutdown,
    clock: impl Timer,
    store: Store,
    order: usize,
    work: Duration,
) {
    let checked = future::or(
        async {
            shutdown.abandoned().await;
            false
        },
        async {
            clock.sleep(work).await;
            true
        },
    )
    .await;
    if checked {
        store.commit(order);
        store.answer(order);
    }
}

/// A near-fix: the same race, with the payment check polled first. When
/// the check ends at the very instant of the drain deadline and the driver
/// runs first, the store is closed by the time the check is seen done.
async fn place_order_check_first(
    shutdown: Shutdown,
    clock: impl Timer,
    store: Store,
    order: usize,
    work: Duration,
) {
    let checked = future::or(
        async {
            clock.sleep(work).await;
            true
        },
        async {
            shutdown.abandoned().await;
            false
        },
    )
    .await;
    if checked {
        store.commit(order);
        store.answer(order);
    }
}

#[derive(Clone, Copy)]
enum Handler {
    Buggy,
    CheckFirst,
    Fixed,
}

fn orders(schedule: Schedule, fixed: bool) -> Result<Outcome, Failure> {
    orders_with(
        schedule,
        if fixed {
            Handler::Fixed
        } else {
            Handler::Buggy
        },
    )
}

fn orders_with(schedule: Schedule, handler: Handler) -> Result<Outcome, Failure> {
    let store = Store::default();
    let (for_setup, for_handler, late, answered) =
        (store.clone(), store.clone(), store.clone(), store);
    Sim::new(schedule)
        .drain_timeout(Duration::from_secs(1))
        .cleanup_timeout(Duration::from_millis(500))
        .setup(move |cx: &Cx| {
            // Acquired first, released last: telemetry, flushed in 200 ms.
            let clock = cx.clock().clone();
            cx.on_cleanup("telemetry", move || async move {
                clock.sleep(Duration::from_millis(200)).await;
                Ok::<_, std::io::Error>(())
            })
            .unwrap();
            cx.on_cleanup("store", move || async move {
                for_setup.close();
                Ok::<_, std::io::Error>(())
            })
            .unwrap();
        })
        .handler(move |cx, req| {
            let store = for_handler.clone();
            let clock = cx.clock().clone();
            let shutdown = cx.shutdown().clone();
            async move {
                let (id, work) = (req.id(), req.work());
                match handler {
                    Handler::Fixed => place_order(shutdown, clock, store, id, work).await,
                    Handler::CheckFirst => {
                        place_order_check_first(shutdown, clock, store, id, work).await;
                    }
                    Handler::Buggy => place_order_buggy(clock, store, id, work).await,
                }
            }
        })
        .invariant("no write after the store closed", move |_| {
            late.no_late_write()
        })
        .invariant("every committed order got its answer", move |_| {
            answered.every_commit_answered()
        })
        .run()
}

#[test]
fn an_order_committed_after_the_store_closed_is_caught_and_shrunk() {
    let shape = Schedules::default();
    let minimal = shrunk(&shape, |s| orders(s, false));
    // The smallest schedule: one order, slower than the drain timeout.
    assert_eq!(minimal.arrivals.len(), 1, "{minimal}");
    assert!(
        minimal.arrivals[0].work >= Duration::from_secs(1),
        "{minimal}"
    );
    assert!(minimal.second.is_none(), "{minimal}");
    let failure = replay(&minimal.to_string(), |s| orders(s, false));
    assert!(
        failure.broke("no write after the store closed"),
        "{failure}"
    );
    passes(&shape, |s| orders(s, true));
}

#[test]
fn the_order_of_the_race_matters_at_the_deadline() {
    // The payment check ends exactly at the drain deadline, and the picks
    // poll the driver first: it abandons the drain and closes the store.
    let tie = "term@0ms req@0ms+1000ms picks=1,1";
    let failure = replay(tie, |s| orders_with(s, Handler::CheckFirst));
    assert!(
        failure.broke("no write after the store closed"),
        "{failure}"
    );
    orders_with(tie.parse().unwrap(), Handler::Fixed).expect("abandonment seen first");
    // Polled the other way round, the check wins the tie.
    let other = "term@0ms req@0ms+1000ms";
    orders_with(other.parse().unwrap(), Handler::CheckFirst).expect("the check comes first");
}

// 2. A background job.

#[derive(Clone, Default)]
struct Mailer(Arc<Mutex<Vec<usize>>>);

/// The buggy handler: answers at once and sends the welcome mail in the
/// background, with no guard: the shutdown does not know it runs.
fn sign_up_buggy(cx: &Cx, mailer: Mailer, user: usize, work: Duration) {
    let clock = cx.clock().clone();
    cx.spawn("welcome-mail", async move {
        clock.sleep(work).await;
        mailer.0.lock().unwrap().push(user);
    });
}

/// The fix: the job holds a guard of its own; once new work is refused,
/// the handler sends the mail itself before it answers.
async fn sign_up(cx: Cx, mailer: Mailer, user: usize, work: Duration) {
    let clock = cx.clock().clone();
    let send = async move {
        clock.sleep(work).await;
        mailer.0.lock().unwrap().push(user);
    };
    match cx.shutdown().enter_owned() {
        Ok(guard) => cx.spawn("welcome-mail", async move {
            send.await;
            drop(guard);
        }),
        Err(_) => send.await,
    }
}

fn sign_ups(schedule: Schedule, fixed: bool) -> Result<Outcome, Failure> {
    let mailer = Mailer::default();
    Sim::new(schedule)
        .drain_timeout(Duration::from_secs(1))
        .handler(move |cx, req| {
            let mailer = mailer.clone();
            async move {
                if fixed {
                    sign_up(cx, mailer, req.id(), req.work()).await;
                } else {
                    sign_up_buggy(&cx, mailer, req.id(), req.work());
                }
            }
        })
        .run()
}

#[test]
fn a_background_job_without_a_guard_is_caught_and_shrunk() {
    let shape = Schedules::default();
    let minimal = shrunk(&shape, |s| sign_ups(s, false));
    // One sign-up at the signal, whose mail takes 1 ms: the exit comes
    // first.
    assert_eq!(minimal.to_string(), "term@0ms req@0ms+1ms");
    let failure = replay(&minimal.to_string(), |s| sign_ups(s, false));
    assert!(failure.broke(NO_LOST_WORK), "{failure}");
    assert!(
        failure.trace().contains("task `welcome-mail` spawned"),
        "{failure}"
    );
    passes(&shape, |s| sign_ups(s, true));
}

// 3. A stream.

const TICK: Duration = Duration::from_millis(100);

/// The buggy stream: sends a price every tick for as long as the client
/// stays, and never looks at the shutdown.
async fn prices_buggy(clock: impl Timer, stays: Duration) {
    let mut sent = Duration::ZERO;
    while sent < stays {
        clock.sleep(TICK).await;
        sent += TICK;
    }
}

/// The fix: the going-away signal ends the stream (with a last event
/// telling the client to reconnect elsewhere).
async fn prices(shutdown: Shutdown, clock: impl Timer, stays: Duration) {
    let mut sent = Duration::ZERO;
    while sent < stays {
        let going_away = future::or(
            async {
                shutdown.reached(Phase::Draining).await;
                true
            },
            async {
                clock.sleep(TICK).await;
                false
            },
        )
        .await;
        if going_away {
            return;
        }
        sent += TICK;
    }
}

fn streams(schedule: Schedule, fixed: bool) -> Result<Outcome, Failure> {
    Sim::new(schedule)
        .drain_timeout(Duration::from_secs(2))
        .handler(move |cx, req| {
            let clock = cx.clock().clone();
            let shutdown = cx.shutdown().clone();
            async move {
                if fixed {
                    prices(shutdown, clock, req.work()).await;
                } else {
                    prices_buggy(clock, req.work()).await;
                }
            }
        })
        .invariant(
            "streams end at going-away: the drain never times out",
            |o| o.report().forced_by().is_some() || o.report().abandoned() == 0,
        )
        .run()
}

#[test]
fn a_stream_that_ignores_going_away_is_caught_and_shrunk() {
    let shape = Schedules::default().work(Duration::from_secs(10));
    let minimal = shrunk(&shape, |s| streams(s, false));
    // One client that stays 1 ms past the drain timeout.
    assert_eq!(minimal.to_string(), "term@0ms req@0ms+2001ms");
    let failure = replay(&minimal.to_string(), |s| streams(s, false));
    assert!(
        failure.broke("streams end at going-away: the drain never times out"),
        "{failure}"
    );
    passes(&shape, |s| streams(s, true));
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: 256,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// The fixed order handler, as a user's own test would read.
    #[test]
    fn orders_survive_any_shutdown(schedule in any::<Schedule>()) {
        orders(schedule, true)?;
    }
}
