//! Random sequences of shutdown events, run against the real driver and a
//! small reference model written from the specification.
//!
//! Events: guards entering and leaving, listeners opening and closing, the
//! first and second shutdown requests, virtual time advancing past the
//! deadlines, late cleanup registrations; cleanup steps that succeed, fail,
//! panic, hang or take a while. After every event, and at the end:
//!
//! - a guard is granted exactly when the model says so, never once draining
//!   began;
//! - the events the driver emits are the model's, in the same order (so
//!   cleanup starts only when nothing is in flight or the deadline passed);
//! - every step runs exactly once, last registered first, unless a forced
//!   shutdown skipped it, and no step starts while a request is in flight
//!   unless the drain was abandoned;
//! - a forced shutdown always wins, and the exit code equals the model's.
//!
//! The driver runs on the `testing` simulation's executor and clock: it is
//! polled only after its waker was called, so a lost wake-up shows as a
//! shutdown that never ends, and every sleep is on virtual time.
//!
//! The number of cases is `PROPTEST_CASES` (default 1000).

mod common;

use graceful_core::testing::{Executor, Picks, SimClock, TaskId, TaskState};
use graceful_core::{Builder, Phase, Report, Request, Shutdown, Signal, StepOutcome};
use proptest::prelude::*;
use std::future::pending;
use std::ops::ControlFlow;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The driver under test, run as a task of the simulation's executor.
struct Harness {
    shutdown: Shutdown,
    clock: SimClock,
    executor: Executor,
    driver: TaskId,
    events: Arc<Mutex<Vec<String>>>,
    report: Arc<Mutex<Option<Report>>>,
}

impl Harness {
    fn new(build: impl FnOnce(Builder) -> Builder) -> Harness {
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = events.clone();
        let driver = build(Shutdown::builder())
            .on_event(move |event| sink.lock().unwrap().push(common::describe(event)))
            .build()
            .unwrap();
        let shutdown = driver.handle();
        let clock = SimClock::new();
        let report = Arc::new(Mutex::new(None));
        let slot = report.clone();
        let run = driver.run(clock.clone());
        let mut executor = Executor::new();
        let driver = executor.spawn("driver", async move {
            *slot.lock().unwrap() = Some(run.await);
        });
        let mut harness = Harness {
            shutdown,
            clock,
            executor,
            driver,
            events,
            report,
        };
        harness.settle();
        harness
    }

    /// Polls the driver if, and only if, it was woken, until it waits.
    fn settle(&mut self) {
        let polls = self
            .executor
            .run_until_stalled(&mut Picks::default(), 10_000, |_, _| {
                ControlFlow::Continue(())
            });
        polls.expect("the driver waits, or finishes");
        if let TaskState::Panicked(message) = self.executor.state(self.driver) {
            panic!("the driver panicked: {message}");
        }
    }

    fn events(&self) -> Vec<String> {
        self.events.lock().unwrap().clone()
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Behaviour {
    Ok,
    Fail,
    Panic,
    Hang,
    /// Takes this many milliseconds.
    Slow(u64),
    /// A synchronous step that panics.
    SyncPanic,
}

#[derive(Clone, Debug)]
enum Op {
    Enter,
    Leave(usize),
    OpenListener,
    CloseListener(usize),
    Request(Signal),
    Advance(u64),
    Register(Behaviour),
}

#[derive(Clone, Copy, Debug)]
struct Config {
    unready_ms: u64,
    drain_ms: u64,
    cleanup_ms: u64,
}

fn behaviour() -> impl Strategy<Value = Behaviour> {
    prop_oneof![
        3 => Just(Behaviour::Ok),
        1 => Just(Behaviour::Fail),
        1 => Just(Behaviour::Panic),
        1 => Just(Behaviour::Hang),
        2 => (0u64..400).prop_map(Behaviour::Slow),
        1 => Just(Behaviour::SyncPanic),
    ]
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => Just(Op::Enter),
        4 => any::<usize>().prop_map(Op::Leave),
        1 => Just(Op::OpenListener),
        1 => any::<usize>().prop_map(Op::CloseListener),
        2 => prop_oneof![Just(Signal::TERM), Just(Signal::INT)].prop_map(Op::Request),
        4 => (0u64..700).prop_map(Op::Advance),
        1 => behaviour().prop_map(Op::Register),
    ]
}

fn config() -> impl Strategy<Value = Config> {
    (
        prop_oneof![Just(0u64), Just(150)],
        prop_oneof![Just(0u64), Just(300), Just(800)],
        prop_oneof![Just(100u64), Just(250)],
    )
        .prop_map(|(unready_ms, drain_ms, cleanup_ms)| Config {
            unready_ms,
            drain_ms,
            cleanup_ms,
        })
}

/// Where the model stands. Times are milliseconds of virtual time.
#[derive(Clone, Debug, PartialEq)]
enum Stage {
    Running,
    Unready {
        until: u64,
    },
    /// Draining began; waiting for the listeners to close.
    Closing {
        deadline: u64,
    },
    Draining {
        deadline: u64,
    },
    /// `queue` holds the steps left, in the order they will run; the first
    /// one started at `started`.
    Cleanup {
        queue: Vec<usize>,
        started: u64,
    },
    Done,
}

/// The specification, executed: what the driver must do.
struct Model {
    config: Config,
    now: u64,
    stage: Stage,
    guards: usize,
    listeners: usize,
    /// Whether a listener was ever opened: without one there is no delay.
    listened: bool,
    steps: Vec<Behaviour>,
    drained: bool,
    all_ok: bool,
    exit: Option<u8>,
    events: Vec<String>,
    /// Steps in the order they must start.
    started: Vec<usize>,
}

impl Model {
    fn new(config: Config, steps: Vec<Behaviour>) -> Model {
        Model {
            config,
            now: 0,
            stage: Stage::Running,
            guards: 0,
            listeners: 0,
            listened: false,
            steps,
            drained: false,
            all_ok: true,
            exit: None,
            events: Vec::new(),
            started: Vec::new(),
        }
    }

    fn phase(&self) -> Phase {
        match self.stage {
            Stage::Running => Phase::Running,
            Stage::Unready { .. } => Phase::Unready,
            Stage::Closing { .. } | Stage::Draining { .. } => Phase::Draining,
            Stage::Cleanup { .. } => Phase::CleaningUp,
            Stage::Done => Phase::Finished,
        }
    }

    fn request(&mut self, signal: Signal) -> Request {
        match self.stage {
            Stage::Running => {
                self.events.push(format!("draining {signal}"));
                let delay = if self.listened {
                    self.config.unready_ms
                } else {
                    0
                };
                self.stage = Stage::Unready {
                    until: self.now + delay,
                };
                self.settle();
                Request::Started
            }
            Stage::Done => Request::AlreadyFinished,
            _ => {
                let code = 128 + signal.number();
                self.events.push(format!("forced {code}"));
                self.exit = Some(code);
                self.stage = Stage::Done;
                Request::Forced
            }
        }
    }

    fn start_cleanup(&mut self, abandoned: usize) {
        if abandoned > 0 {
            self.events.push(format!("abandoned {abandoned}"));
        } else {
            self.drained = true;
            self.events.push("drained".into());
        }
        let queue: Vec<usize> = (0..self.steps.len()).rev().collect();
        if let Some(&first) = queue.first() {
            self.started.push(first);
        }
        self.stage = Stage::Cleanup {
            queue,
            started: self.now,
        };
    }

    /// Moves the model forward as far as the current time and counts allow.
    fn settle(&mut self) {
        loop {
            let now = self.now;
            match self.stage.clone() {
                Stage::Running | Stage::Done => return,
                Stage::Unready { until } => {
                    if now < until {
                        return;
                    }
                    self.events.push("unready-over".into());
                    self.stage = Stage::Closing {
                        deadline: now + self.config.drain_ms,
                    };
                }
                Stage::Closing { deadline } => {
                    if self.listeners == 0 {
                        self.events.push("closed".into());
                        self.stage = Stage::Draining {
                            deadline: now + self.config.drain_ms,
                        };
                    } else if now >= deadline {
                        // A listener that never closed: the drain is over,
                        // without `closed`.
                        self.start_cleanup(self.guards);
                    } else {
                        return;
                    }
                }
                Stage::Draining { deadline } => {
                    if self.guards == 0 {
                        self.start_cleanup(0);
                    } else if now >= deadline {
                        self.start_cleanup(self.guards);
                    } else {
                        return;
                    }
                }
                Stage::Cleanup { mut queue, started } => {
                    let Some(&step) = queue.first() else {
                        let code = if self.drained && self.all_ok { 0 } else { 1 };
                        self.events.push(format!("exit {code}"));
                        self.exit = Some(code);
                        self.stage = Stage::Done;
                        return;
                    };
                    let timeout = started + self.config.cleanup_ms;
                    let outcome = match self.steps[step] {
                        Behaviour::Ok => "ok",
                        Behaviour::Fail => "error",
                        Behaviour::Panic | Behaviour::SyncPanic => "panic",
                        Behaviour::Slow(ms) if now >= started + ms => "ok",
                        Behaviour::Hang | Behaviour::Slow(_) if now >= timeout => "timeout",
                        Behaviour::Hang | Behaviour::Slow(_) => return,
                    };
                    self.all_ok &= outcome == "ok";
                    self.events.push(format!("cleanup s{step} {outcome}"));
                    queue.remove(0);
                    if let Some(&next) = queue.first() {
                        self.started.push(next);
                    }
                    self.stage = Stage::Cleanup {
                        queue,
                        started: now,
                    };
                }
            }
        }
    }
}

/// What the real steps record when they start.
#[derive(Default)]
struct StepLog {
    started: Vec<usize>,
    in_flight_at_start: Vec<usize>,
}

fn register(h: &Harness, log: &Arc<Mutex<StepLog>>, index: usize, b: Behaviour) -> bool {
    let name = format!("s{index}");
    let shutdown = h.shutdown.clone();
    let clock = h.clock.clone();
    let log = log.clone();
    let note = move || {
        let mut log = log.lock().unwrap();
        log.started.push(index);
        log.in_flight_at_start.push(shutdown.in_flight());
    };
    let result = match b {
        Behaviour::SyncPanic => h
            .shutdown
            .on_cleanup_sync(name, move || -> Result<(), String> {
                note();
                panic!("step panicked")
            }),
        _ => h.shutdown.on_cleanup(name, move || {
            note();
            async move {
                match b {
                    Behaviour::Ok | Behaviour::SyncPanic => Ok(()),
                    Behaviour::Fail => Err("step failed".to_owned()),
                    Behaviour::Panic => panic!("step panicked"),
                    Behaviour::Hang => pending().await,
                    Behaviour::Slow(ms) => {
                        graceful_core::Timer::sleep(&clock, Duration::from_millis(ms)).await;
                        Ok(())
                    }
                }
            }
        }),
    };
    result.is_ok()
}

fn check(config: Config, initial: Vec<Behaviour>, ops: Vec<Op>) -> Result<(), TestCaseError> {
    let mut h = Harness::new(|b| {
        b.unready_delay(Duration::from_millis(config.unready_ms))
            .drain_timeout(Duration::from_millis(config.drain_ms))
            .cleanup_timeout(Duration::from_millis(config.cleanup_ms))
    });
    let log = Arc::new(Mutex::new(StepLog::default()));
    let mut model = Model::new(config, Vec::new());
    for b in initial {
        prop_assert!(register(&h, &log, model.steps.len(), b));
        model.steps.push(b);
    }
    let mut guards = Vec::new();
    let mut listeners = Vec::new();

    // The random events, then an end: a request if none came, and time.
    let mut ops = ops;
    ops.push(Op::Request(Signal::TERM));
    ops.extend(std::iter::repeat_n(Op::Advance(1000), 20));
    for op in ops {
        match op {
            Op::Enter => {
                let granted = h.shutdown.enter_owned();
                let phase = h.shutdown.phase();
                prop_assert_eq!(granted.is_ok(), model.phase() < Phase::Draining, "{:?}", op);
                if granted.is_ok() {
                    prop_assert!(phase < Phase::Draining || model.phase() < Phase::Draining);
                }
                if let Ok(guard) = granted {
                    guards.push(guard);
                    model.guards += 1;
                }
            }
            Op::Leave(i) if !guards.is_empty() => {
                drop(guards.swap_remove(i % guards.len()));
                model.guards -= 1;
                model.settle();
            }
            Op::OpenListener => {
                let token = h.shutdown.track_listener();
                prop_assert_eq!(token.is_ok(), model.phase() < Phase::Draining);
                if let Ok(token) = token {
                    listeners.push(token);
                    model.listeners += 1;
                    model.listened = true;
                }
            }
            Op::CloseListener(i) if !listeners.is_empty() => {
                drop(listeners.swap_remove(i % listeners.len()));
                model.listeners -= 1;
                model.settle();
            }
            Op::Request(signal) => {
                let real = h.shutdown.request(signal);
                prop_assert_eq!(real, model.request(signal));
            }
            Op::Advance(ms) => {
                h.clock.advance(Duration::from_millis(ms));
                model.now += ms;
                model.settle();
            }
            Op::Register(b) => {
                let accepted = register(&h, &log, model.steps.len(), b);
                prop_assert_eq!(accepted, model.phase() < Phase::CleaningUp);
                if accepted {
                    model.steps.push(b);
                }
            }
            Op::Leave(_) | Op::CloseListener(_) => {}
        }
        h.settle();
        prop_assert_eq!(h.shutdown.phase(), model.phase());
        prop_assert_eq!(&h.events(), &model.events);
    }

    // The end: both finished, and they agree.
    let report = h.report.lock().unwrap().take();
    let report = report.as_ref();
    prop_assert!(
        report.is_some(),
        "the driver never finished: {:?}",
        model.stage
    );
    let report = report.unwrap();
    prop_assert_eq!(Some(report.exit_code()), model.exit);
    let log = log.lock().unwrap();
    prop_assert_eq!(
        &log.started,
        &model.started,
        "steps start once each, last first"
    );
    if report.abandoned() == 0 && report.forced_by().is_none() {
        prop_assert!(log.in_flight_at_start.iter().all(|&n| n == 0));
    }
    let ran = report
        .steps()
        .iter()
        .filter(|s| s.outcome() != &StepOutcome::Skipped)
        .count();
    prop_assert!(ran <= model.steps.len());
    prop_assert_eq!(
        report.steps().len(),
        model.steps.len(),
        "every step reported"
    );
    Ok(())
}

fn cases() -> u32 {
    std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(1000)
}

proptest! {
    #![proptest_config(ProptestConfig {
        cases: cases(),
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    #[test]
    fn driver_matches_the_model(
        config in config(),
        initial in prop::collection::vec(behaviour(), 0..4),
        ops in prop::collection::vec(op(), 0..40),
    ) {
        check(config, initial, ops)?;
    }
}
