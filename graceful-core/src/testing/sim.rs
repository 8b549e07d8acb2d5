//! The simulation: the user's handlers under a real `Shutdown` and driver,
//! on virtual time, with the harness playing the adapter.

use super::clock::SimClock;
use super::executor::{Executor, Picks, Spawner, TaskId, TaskState};
use super::invariants::{self, Leftovers};
use super::outcome::{Failure, Outcome, Violation};
use super::schedule::{Fate, Schedule};
use super::trace::{Shared, StepEnd, StepLog};
use crate::{BoxError, Driver, OwnedGuard, RegisterError, Report, Shutdown, Sleep, Timer};
use std::borrow::Cow;
use std::fmt;
use std::future::{Future, pending};
use std::ops::ControlFlow;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send + 'static>>;
type Handler = Box<dyn Fn(Cx, Req) -> BoxFuture<()>>;
type DriverFn = Box<dyn FnOnce(Driver, SimClock) -> BoxFuture<Report>>;
type Setup = Box<dyn FnOnce(&Cx)>;
type Admit = Box<dyn Fn(&Shutdown) -> Admission>;
type ExitFn = Box<dyn FnOnce(&Report) -> u8>;
type Check = Box<dyn Fn(&Outcome) -> bool>;

/// The shutdown settings a simulation runs with.
#[derive(Clone, Copy, Debug)]
pub(super) struct Settings {
    pub(super) unready_delay: Duration,
    pub(super) drain_timeout: Duration,
    pub(super) cleanup_timeout: Duration,
}

/// How long, in virtual time, a simulation may run before it counts as
/// never finishing.
const HORIZON: Duration = Duration::from_secs(24 * 60 * 60);

/// How many polls a simulation may run in all.
const POLL_BUDGET: u64 = 1_000_000;

/// Invariant: the shutdown finishes, on every schedule.
pub const FINISHES: &str = "the shutdown finishes";

/// How the adapter's part takes in one request. See [`Sim::admit`].
#[derive(Debug)]
pub enum Admission {
    /// Served, counted in flight by this guard until the handler ends.
    Guarded(OwnedGuard),
    /// Served with no guard: the shutdown does not know it is running.
    Unguarded,
    /// Refused: answered `503`.
    Refused,
}

/// One request, as the handler receives it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Req {
    id: usize,
    at: Duration,
    work: Duration,
}

impl Req {
    /// Its number: 0 for the first request of the schedule.
    pub fn id(&self) -> usize {
        self.id
    }

    /// When it arrived, in virtual time.
    pub fn at(&self) -> Duration {
        self.at
    }

    /// How much work the schedule gave it: what the handler makes of it
    /// (a database round trip, how long a client stays on a stream...) is
    /// the handler's business.
    pub fn work(&self) -> Duration {
        self.work
    }
}

/// What the simulation lends the code under test: the [`Shutdown`] it runs
/// under, the clock and the spawner. Cheap to clone.
///
/// The handler and the setup take the same [`Shutdown`], guards and
/// futures as in production; only time ([`clock`](Cx::clock), a
/// [`Timer`]) and spawning ([`spawn`](Cx::spawn)) come from here.
#[derive(Clone)]
pub struct Cx {
    shutdown: Shutdown,
    clock: SimClock,
    spawner: Spawner,
    log: Shared,
    fates: Arc<[Fate]>,
}

impl Cx {
    /// The shutdown the code runs under.
    pub fn shutdown(&self) -> &Shutdown {
        &self.shutdown
    }

    /// The virtual clock: a [`Timer`], for the code's own sleeps and
    /// deadlines.
    pub fn clock(&self) -> &SimClock {
        &self.clock
    }

    /// Sleeps `duration` of virtual time: `self.clock().sleep(duration)`.
    ///
    /// # Cancel safety
    ///
    /// Cancel safe: dropping the sleep gives back its place on the clock.
    pub fn sleep(&self, duration: Duration) -> Sleep {
        self.clock.sleep(duration)
    }

    /// Virtual time since the start.
    pub fn now(&self) -> Duration {
        self.clock.elapsed()
    }

    /// Spawns a task on the simulation, as the code would on its runtime.
    /// The task is work the exit must not lose: it must finish before the
    /// exit, or hold a guard so that it is counted abandoned
    /// ([`NO_LOST_WORK`](super::NO_LOST_WORK)).
    pub fn spawn<F>(&self, name: impl Into<String>, future: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        let name = format!("task `{}`", name.into());
        let id = self.spawner.spawn(name.clone(), future);
        let mut log = self.log.lock();
        log.push(format!("{name} spawned"));
        log.work.push((id, name));
    }

    /// Adds a line to the trace, printed with a failure.
    pub fn note(&self, text: impl Into<String>) {
        self.log.lock().push(text);
    }

    /// Registers a cleanup step, as [`Shutdown::on_cleanup`] does, with the
    /// schedule's [`Fate`] for it (the first step registered through here
    /// gets the first fate), and the simulation watching when it starts and
    /// how it ends.
    ///
    /// # Errors
    ///
    /// As for [`Shutdown::on_cleanup`].
    pub fn on_cleanup<F, Fut, E>(
        &self,
        name: impl Into<Cow<'static, str>>,
        step: F,
    ) -> Result<(), RegisterError>
    where
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = Result<(), E>> + Send + 'static,
        E: Into<BoxError>,
    {
        let name: Cow<'static, str> = name.into();
        // Holding the log's lock across the registration keeps the fates
        // and the log's list of steps in the order the core registers them.
        let mut log = self.log.lock();
        let index = log.steps.len();
        let fate = self.fates.get(index).copied().unwrap_or(Fate::Ok);
        let watched = self.log.clone();
        let clock = self.clock.clone();
        let label = name.to_string();
        let logged = label.clone();
        self.shutdown.on_cleanup(name, move || async move {
            let mut watch = StepWatch::start(watched, index, &label);
            match fate {
                Fate::Ok => {}
                Fate::Slow(by) => clock.sleep(by).await,
                Fate::Fail => {
                    watch.end(StepEnd::Error);
                    return Err(BoxError::from(format!("injected failure in `{label}`")));
                }
                // Unwinds without the panic hook, so that thousands of
                // injected panics do not flood the test's output.
                Fate::Panic => {
                    std::panic::resume_unwind(Box::new(format!("injected panic in `{label}`")))
                }
                Fate::Hang => pending::<()>().await,
            }
            let result = step().await.map_err(Into::into);
            watch.end(if result.is_ok() {
                StepEnd::Ok
            } else {
                StepEnd::Error
            });
            result
        })?;
        log.steps.push(StepLog {
            name: logged,
            started: None,
            starts: 0,
            ended: None,
        });
        Ok(())
    }
}

impl fmt::Debug for Cx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Cx")
            .field("shutdown", &self.shutdown)
            .field("clock", &self.clock)
            .finish_non_exhaustive()
    }
}

/// Watches one step from inside it: its start, and how it ended, including
/// being dropped unfinished or unwinding.
struct StepWatch {
    log: Shared,
    index: usize,
    ended: bool,
}

impl StepWatch {
    fn start(log: Shared, index: usize, name: &str) -> StepWatch {
        {
            let mut guard = log.lock();
            let mark = guard.push(format!("step `{name}` started"));
            let step = &mut guard.steps[index];
            step.starts += 1;
            step.started.get_or_insert((mark.index, mark.at));
        }
        StepWatch {
            log,
            index,
            ended: false,
        }
    }

    fn end(&mut self, how: StepEnd) {
        self.ended = true;
        let mut log = self.log.lock();
        let text = format!("step `{}` ended: {how}", log.steps[self.index].name);
        let at = log.push(text).at;
        log.steps[self.index].ended = Some((at, how));
    }
}

impl Drop for StepWatch {
    fn drop(&mut self) {
        if !self.ended {
            let how = if std::thread::panicking() {
                StepEnd::Panic
            } else {
                StepEnd::Dropped
            };
            self.end(how);
        }
    }
}

/// Ends a request: counts it finished in the log when the handler returns
/// or unwinds, before its guard leaves.
struct RequestWatch {
    log: Shared,
    id: usize,
    guarded: bool,
}

impl Drop for RequestWatch {
    fn drop(&mut self) {
        let mut log = self.log.lock();
        if self.guarded {
            log.open -= 1;
        }
        let how = if std::thread::panicking() {
            "panicked"
        } else {
            "finished"
        };
        log.push(format!("request {} {how}", self.id));
    }
}

/// A deterministic simulation of one shutdown: your handlers under a real
/// [`Shutdown`] and [`Driver`], on virtual time, with the signals, the
/// requests, the cleanup steps' faults and the order of the ready tasks
/// taken from a [`Schedule`].
///
/// The simulation plays the adapter: it opens one listener (closed once
/// draining begins), admits each request of the schedule with a guard
/// ([`Admission`]; `503` once refused), runs your handler for it, delivers
/// the signals, runs the driver and maps its report to the exit code. Then
/// it checks the [built-in invariants](super#what-it-checks) and yours.
///
/// # Examples
///
/// ```
/// use graceful_core::testing::{Schedule, Sim};
///
/// let schedule: Schedule = "term@10ms req@0ms+30ms".parse()?;
/// let outcome = Sim::new(schedule)
///     .handler(|cx, req| async move { cx.sleep(req.work()).await })
///     .run()?;
/// assert_eq!(outcome.exit_code(), 0);
/// assert_eq!(outcome.admitted(), 1);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[must_use = "a simulation does nothing until run"]
pub struct Sim {
    schedule: Schedule,
    settings: Settings,
    setup: Option<Setup>,
    handler: Option<Handler>,
    driver: Option<DriverFn>,
    admit: Option<Admit>,
    exit: Option<ExitFn>,
    invariants: Vec<(String, Check)>,
}

impl Sim {
    /// A simulation of `schedule`, with the core's default settings (no
    /// unready delay, a 20 s drain timeout, 3 s per cleanup step) and a
    /// handler that does nothing.
    pub fn new(schedule: Schedule) -> Sim {
        Sim {
            schedule,
            settings: Settings {
                unready_delay: Duration::ZERO,
                drain_timeout: Duration::from_secs(20),
                cleanup_timeout: Duration::from_secs(3),
            },
            setup: None,
            handler: None,
            driver: None,
            admit: None,
            exit: None,
            invariants: Vec::new(),
        }
    }

    /// The unready delay, as [`Builder::unready_delay`](crate::Builder::unready_delay).
    pub fn unready_delay(mut self, delay: Duration) -> Sim {
        self.settings.unready_delay = delay;
        self
    }

    /// The drain timeout, as [`Builder::drain_timeout`](crate::Builder::drain_timeout).
    pub fn drain_timeout(mut self, timeout: Duration) -> Sim {
        self.settings.drain_timeout = timeout;
        self
    }

    /// The cleanup timeout, as [`Builder::cleanup_timeout`](crate::Builder::cleanup_timeout).
    pub fn cleanup_timeout(mut self, timeout: Duration) -> Sim {
        self.settings.cleanup_timeout = timeout;
        self
    }

    /// Runs once before anything else: acquire resources, register their
    /// cleanup with [`Cx::on_cleanup`], spawn background work.
    pub fn setup(mut self, setup: impl FnOnce(&Cx) + 'static) -> Sim {
        self.setup = Some(Box::new(setup));
        self
    }

    /// The request handler: called for every admitted request, and run as
    /// its own task while the simulation holds the request's guard.
    pub fn handler<H, Fut>(mut self, handler: H) -> Sim
    where
        H: Fn(Cx, Req) -> Fut + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.handler = Some(Box::new(move |cx, req| Box::pin(handler(cx, req))));
        self
    }

    /// How the adapter's part admits a request. The default is what the
    /// adapters do: a request that comes once the listener closed is
    /// refused at the socket, the others get [`Shutdown::enter_owned`], and
    /// `503` when refused. Replace it to test your own intake (a queue
    /// consumer that takes a guard per message, say): it then sees every
    /// request of the schedule, listener or not.
    pub fn admit(mut self, admit: impl Fn(&Shutdown) -> Admission + 'static) -> Sim {
        self.admit = Some(Box::new(admit));
        self
    }

    /// How the driver is run. The default is [`Driver::run`] on the
    /// simulation's clock; replace it to test your own wrapper around it.
    pub fn driver<F, Fut>(mut self, driver: F) -> Sim
    where
        F: FnOnce(Driver, SimClock) -> Fut + 'static,
        Fut: Future<Output = Report> + Send + 'static,
    {
        self.driver = Some(Box::new(move |d, c| Box::pin(driver(d, c))));
        self
    }

    /// How the report becomes the exit code. The default is
    /// [`Report::exit_code`]; replace it to test your own `main`'s mapping.
    pub fn exit_code(mut self, exit: impl FnOnce(&Report) -> u8 + 'static) -> Sim {
        self.exit = Some(Box::new(exit));
        self
    }

    /// Adds an invariant of your own, checked at the end of every schedule
    /// that got as far as the exit: `check` returns whether it holds.
    pub fn invariant(
        mut self,
        name: impl Into<String>,
        check: impl Fn(&Outcome) -> bool + 'static,
    ) -> Sim {
        self.invariants.push((name.into(), Box::new(check)));
        self
    }

    /// Runs the schedule to the exit and checks every invariant.
    ///
    /// # Errors
    ///
    /// A [`Failure`] naming each invariant that did not hold, with the
    /// schedule and the trace. It converts into proptest's
    /// `TestCaseError`, so `?` works in a `proptest!` test.
    pub fn run(self) -> Result<Outcome, Failure> {
        let Sim {
            schedule,
            settings,
            setup,
            handler,
            driver: run_driver,
            admit,
            exit,
            invariants,
        } = self;
        let clock = SimClock::new();
        let log = Shared::new(clock.clone());
        let observer = log.clone();
        let built = Shutdown::builder()
            .unready_delay(settings.unready_delay)
            .drain_timeout(settings.drain_timeout)
            .cleanup_timeout(settings.cleanup_timeout)
            .on_event(move |event| observer.lock().event(event))
            .build();
        let fail = |log: &Shared, invariant: &str, detail: String, exit_code| {
            let violation = Violation {
                invariant: invariant.to_owned(),
                detail,
            };
            Failure::new(
                schedule.clone(),
                vec![violation],
                log.lock().trace.clone(),
                exit_code,
            )
        };
        let driver = match built {
            Ok(driver) => driver,
            Err(error) => return Err(fail(&log, "settings", error.to_string(), None)),
        };
        let shutdown = driver.handle();
        let mut executor = Executor::new();
        let cx = Cx {
            shutdown: shutdown.clone(),
            clock: clock.clone(),
            spawner: executor.spawner(),
            log: log.clone(),
            fates: schedule.fates.clone().into(),
        };

        // The adapter's listener: open from the start, closed (its token
        // dropped) once draining begins.
        let token = match shutdown.track_listener() {
            Ok(token) => token,
            Err(refused) => return Err(fail(&log, "settings", refused.to_string(), None)),
        };
        let listener_log = log.clone();
        executor.spawn("listener", async move {
            let _ = token.closing().await;
            let mut log = listener_log.lock();
            log.listener_closed = true;
            log.push("listener closed");
            // The token drops here, after the close is logged.
            drop(token);
        });

        let report_slot: Arc<Mutex<Option<Report>>> = Arc::default();
        let run = match run_driver {
            Some(driver_fn) => driver_fn(driver, clock.clone()),
            None => Box::pin(driver.run(clock.clone())),
        };
        let slot = report_slot.clone();
        let driver_task = executor.spawn("driver", async move {
            let report = run.await;
            *slot.lock().unwrap_or_else(PoisonError::into_inner) = Some(report);
        });

        if let Some(setup) = setup {
            setup(&cx);
        }

        // What the schedule delivers, in time order; at the same instant,
        // requests before signals, each in schedule order.
        enum Delivery {
            Request(usize),
            Signal(bool),
        }
        let mut deliveries: Vec<(Duration, Delivery)> = schedule
            .arrivals
            .iter()
            .enumerate()
            .map(|(id, arrival)| (arrival.at, Delivery::Request(id)))
            .collect();
        deliveries.push((schedule.signal.at, Delivery::Signal(true)));
        if let Some(second) = &schedule.second {
            deliveries.push((second.at, Delivery::Signal(false)));
        }
        deliveries.sort_by_key(|(at, _)| *at);

        let through_listener = admit.is_none();
        let admit = admit.unwrap_or_else(|| {
            Box::new(|shutdown: &Shutdown| match shutdown.enter_owned() {
                Ok(guard) => Admission::Guarded(guard),
                Err(_) => Admission::Refused,
            })
        });
        let handler = handler.unwrap_or_else(|| Box::new(|_, _| Box::pin(async {})));
        let mut picks = Picks::new(schedule.picks.clone());
        let mut next = 0;
        let (mut admitted, mut refused) = (0, 0);
        let mut stuck: Option<String> = None;
        loop {
            let ran = executor.run_until_stalled(
                &mut picks,
                POLL_BUDGET.saturating_sub(executor.polls()),
                |id, state| {
                    log.lock().sample(shutdown.in_flight());
                    if id == driver_task && *state != TaskState::Pending {
                        ControlFlow::Break(())
                    } else {
                        ControlFlow::Continue(())
                    }
                },
            );
            if let Err(livelock) = ran {
                stuck = Some(livelock.to_string());
                break;
            }
            if executor.state(driver_task) != TaskState::Pending {
                break;
            }
            let now = clock.elapsed();
            if next < deliveries.len() && deliveries[next].0 <= now {
                while next < deliveries.len() && deliveries[next].0 <= now {
                    match deliveries[next].1 {
                        Delivery::Request(id) => {
                            let req = Req {
                                id,
                                at: schedule.arrivals[id].at,
                                work: schedule.arrivals[id].work,
                            };
                            if deliver(&cx, &log, &*admit, through_listener, &handler, req) {
                                admitted += 1;
                            } else {
                                refused += 1;
                            }
                        }
                        Delivery::Signal(first) => {
                            let at = if first {
                                &schedule.signal
                            } else {
                                schedule.second.as_ref().expect("listed only when set")
                            };
                            let answer = shutdown.request(at.signal);
                            let mut log = log.lock();
                            let mark = log.push(format!("{} delivered: {answer:?}", at.signal));
                            if first {
                                log.requested.get_or_insert(mark);
                            } else {
                                log.forced_by = Some(at.signal);
                            }
                        }
                    }
                    next += 1;
                }
                continue;
            }
            let upcoming = deliveries.get(next).map(|(at, _)| *at);
            let due = match (upcoming, clock.next_deadline()) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            match due {
                Some(at) if at <= HORIZON => clock.advance_to(at),
                Some(at) => {
                    stuck = Some(format!(
                        "the next thing due is at {}ms of virtual time, past the horizon",
                        at.as_millis()
                    ));
                    break;
                }
                None => {
                    stuck = Some(
                        "nothing is ready and nothing is due, and the driver has not finished"
                            .to_owned(),
                    );
                    break;
                }
            }
        }

        let report = report_slot
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        let exit_code = report.as_ref().map(|report| match exit {
            Some(exit) => exit(report),
            None => report.exit_code(),
        });
        let mut leftovers = Leftovers::default();
        {
            let mut log = log.lock();
            if let Some(code) = exit_code {
                log.push(format!("exit {code}"));
            }
            for (id, name) in log.work.clone() {
                match executor.state(id) {
                    TaskState::Pending => leftovers.lost.push(name),
                    TaskState::Panicked(message) => leftovers.panicked.push((name, message)),
                    TaskState::Done => {}
                }
            }
        }
        let mut violations = {
            let log = log.lock();
            invariants::check(&log, &settings, report.as_ref(), exit_code, &leftovers)
        };
        if let Some(why) = stuck {
            violations.push(Violation {
                invariant: FINISHES.to_owned(),
                detail: why,
            });
        } else if let TaskState::Panicked(message) = executor.state(driver_task) {
            violations.push(Violation {
                invariant: FINISHES.to_owned(),
                detail: format!("the driver panicked: {message}"),
            });
        }
        // The trace ends at the exit: what the tasks still pending do as they
        // are dropped (the process's exit) is not part of it.
        let trace = log.lock().trace.clone();
        drop(executor);
        let (Some(report), Some(exit_code)) = (report, exit_code) else {
            return Err(Failure::new(schedule, violations, trace, exit_code));
        };
        let outcome = Outcome {
            schedule,
            report,
            exit_code,
            trace,
            admitted,
            refused,
        };
        for (name, check) in &invariants {
            if !check(&outcome) {
                violations.push(Violation {
                    invariant: name.clone(),
                    detail: "did not hold at the exit".to_owned(),
                });
            }
        }
        if violations.is_empty() {
            Ok(outcome)
        } else {
            Err(Failure::new(
                outcome.schedule,
                violations,
                outcome.trace,
                Some(outcome.exit_code),
            ))
        }
    }
}

/// Delivers one request: the listener, then the admission, then the
/// handler as a task. Returns whether it was admitted.
fn deliver(
    cx: &Cx,
    log: &Shared,
    admit: &dyn Fn(&Shutdown) -> Admission,
    through_listener: bool,
    handler: &Handler,
    req: Req,
) -> bool {
    if through_listener && log.lock().listener_closed {
        log.lock()
            .push(format!("request {} refused: connection refused", req.id));
        return false;
    }
    let admission = admit(&cx.shutdown);
    let (guard, guarded) = match admission {
        Admission::Guarded(guard) => (Some(guard), true),
        Admission::Unguarded => (None, false),
        Admission::Refused => {
            log.lock().push(format!("request {} refused: 503", req.id));
            return false;
        }
    };
    let future = handler(cx.clone(), req);
    let watch = RequestWatch {
        log: log.clone(),
        id: req.id,
        guarded,
    };
    let name = format!("request {}", req.id);
    let id: TaskId = cx.spawner.spawn(name.clone(), async move {
        // Dropped in reverse order: the watch counts the request finished,
        // then the guard leaves.
        let _guard = guard;
        let _watch = watch;
        future.await;
    });
    let mut log = log.lock();
    let how = if guarded { "" } else { " without a guard" };
    let mark = log.push(format!(
        "request {} admitted{how} (work {}ms)",
        req.id,
        req.work.as_millis()
    ));
    if guarded {
        log.open += 1;
    }
    log.admissions.push((mark, req.id, guarded));
    log.work.push((id, name));
    // An admission raises the count by one; the rise check is for guards
    // granted elsewhere.
    log.in_flight = cx.shutdown.in_flight();
    true
}

impl fmt::Debug for Sim {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Sim")
            .field("schedule", &self.schedule)
            .field("settings", &self.settings)
            .field("invariants", &self.invariants.len())
            .finish_non_exhaustive()
    }
}
