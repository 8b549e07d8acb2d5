//! The driver: the one future that walks a shutdown through its phases.

use crate::cleanup::{Ended, Step};
use crate::inner::Inner;
use crate::report::{DrainOutcome, Event, PhaseDurations, Report, StepOutcome, StepReport};
use crate::shutdown::Shutdown;
use crate::state::{Flags, Phase, Snapshot};
use crate::sync::{Arc, Ordering, lock};
use crate::timer::Timer;
use crate::wait::Wait;
use std::fmt;
use std::future::{Future, poll_fn};
use std::pin::{Pin, pin};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// Runs a shutdown. Made by [`Builder::build`](crate::Builder::build).
///
/// Not `Clone`, and [`run`](Driver::run) takes it by value: exactly one
/// place walks the shutdown through its phases, so the report has one
/// author and the events one order. Everything else holds a [`Shutdown`].
pub struct Driver {
    shutdown: Shutdown,
}

impl Driver {
    pub(crate) fn new(shutdown: Shutdown) -> Driver {
        Driver { shutdown }
    }

    /// A handle on the shutdown this driver runs.
    pub fn handle(&self) -> Shutdown {
        self.shutdown.clone()
    }

    /// Waits for the first request, then walks the shutdown through its
    /// phases, with `timer` for the delays and deadlines:
    ///
    /// 1. [`Phase::Unready`] for the unready delay;
    /// 2. [`Phase::Draining`]: waits for every [`ListenerToken`] to drop
    ///    ([`Event::Closed`]), then for nothing to be in flight
    ///    ([`Event::Drained`]) or for the drain timeout
    ///    ([`Event::Abandoned`]);
    /// 3. [`Phase::CleaningUp`]: the steps, last registered first, each under
    ///    the cleanup timeout;
    /// 4. [`Phase::Finished`], and the [`Report`].
    ///
    /// A second request resolves it at once with the forced outcome.
    ///
    /// [`ListenerToken`]: crate::ListenerToken
    pub fn run<T: Timer>(self, timer: T) -> Run {
        Run {
            future: std::sync::Mutex::new(Box::pin(run(self.shutdown.inner, timer))),
        }
    }
}

impl fmt::Debug for Driver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Driver")
            .field("shutdown", &self.shutdown)
            .finish()
    }
}

/// The shutdown being run; resolves to its [`Report`]. See [`Driver::run`].
///
/// # Cancel safety
///
/// Not cancel safe: dropping it stops the shutdown where it stands (a
/// cleanup step in progress is dropped, the rest never run). Drop it only
/// when the process is exiting anyway.
#[must_use = "futures do nothing unless polled"]
pub struct Run {
    // The mutex is never locked: polling takes `&mut self`, and
    // `Mutex::get_mut` reaches the future without locking. It is there so
    // that `Run` is `Sync` although the future inside (timer sleeps, cleanup
    // steps) is only `Send`: a shared `&Run` gives access to nothing.
    future: std::sync::Mutex<Pin<Box<dyn Future<Output = Report> + Send>>>,
}

impl Future for Run {
    type Output = Report;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Report> {
        let future = match self.get_mut().future.get_mut() {
            Ok(future) => future,
            // Never locked, so never poisoned.
            Err(poisoned) => poisoned.into_inner(),
        };
        future.as_mut().poll(cx)
    }
}

impl fmt::Debug for Run {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Run").finish_non_exhaustive()
    }
}

enum Either<A, B> {
    Left(A),
    Right(B),
}

/// Polls `a`, then `b`; the first ready wins (`a` on a tie).
async fn race<A: Future, B: Future>(a: A, b: B) -> Either<A::Output, B::Output> {
    let mut a = pin!(a);
    let mut b = pin!(b);
    poll_fn(|cx| {
        if let Poll::Ready(out) = a.as_mut().poll(cx) {
            return Poll::Ready(Either::Left(out));
        }
        if let Poll::Ready(out) = b.as_mut().poll(cx) {
            return Poll::Ready(Either::Right(out));
        }
        Poll::Pending
    })
    .await
}

/// Waits until `ready` gives a value, woken through the wait list.
async fn until<T>(inner: &Arc<Inner>, mut ready: impl FnMut(&Inner, Snapshot) -> Option<T>) -> T {
    let mut wait = Wait::new(inner.clone());
    poll_fn(|cx| wait.poll(cx, &mut ready)).await
}

/// Resolves when a second request forced the shutdown.
async fn forced(inner: &Arc<Inner>) {
    until(inner, |_, s| s.forced().then_some(())).await;
}

/// The phase whose time is being counted.
#[derive(Clone, Copy)]
enum Timed {
    Unready,
    Closing,
    Draining,
    Cleanup,
}

/// The report being written, and the clock it is timed with.
struct Runner<T> {
    inner: Arc<Inner>,
    timer: T,
    report: Report,
    timed: Timed,
    /// When the phase being timed began.
    since: Instant,
}

impl<T: Timer> Runner<T> {
    /// Charges the time since the last lap to the phase being timed, and
    /// starts timing `next`.
    fn lap(&mut self, next: Timed) {
        let now = self.timer.now();
        let lap = now.saturating_duration_since(self.since);
        let phases = &mut self.report.phases;
        *match self.timed {
            Timed::Unready => &mut phases.unready,
            Timed::Closing => &mut phases.closing,
            Timed::Draining => &mut phases.draining,
            Timed::Cleanup => &mut phases.cleanup,
        } += lap;
        self.timed = next;
        self.since = now;
    }

    /// The forced outcome. `left` are the taken steps that will never run,
    /// in the order they would have run.
    fn forced(mut self, mut left: Vec<Step>) -> Report {
        self.lap(self.timed);
        let cause = {
            let mut shared = lock(&self.inner.shared);
            // Steps not yet taken for cleanup are still registered.
            left.extend(shared.steps.drain(..).rev());
            shared.forced_by.clone()
        };
        let cause = cause.expect("forcing records its cause before setting the flag");
        if let DrainOutcome::Interrupted(n) = &mut self.report.drain {
            *n = self.inner.state.load().in_flight();
        }
        self.report
            .steps
            .extend(left.into_iter().map(|step| StepReport {
                name: step.name,
                outcome: StepOutcome::Skipped,
                duration: Duration::ZERO,
            }));
        let exit_code = cause.forced_exit_code();
        self.inner.emit(Event::Forced {
            cause: &cause,
            exit_code,
        });
        self.report.forced_by = Some(cause);
        self.report
    }
}

async fn run<T: Timer>(inner: Arc<Inner>, timer: T) -> Report {
    let config = inner.config;
    until(&inner, |_, s| (s.phase() >= Phase::Unready).then_some(())).await;
    let cause = lock(&inner.shared)
        .cause
        .clone()
        .expect("the first request records its cause before moving the phase");
    inner.emit(Event::Requested { cause: &cause });
    let since = timer.now();
    let mut run = Runner {
        inner: inner.clone(),
        timer,
        report: Report {
            cause,
            forced_by: None,
            drain: DrainOutcome::Interrupted(0),
            phases: PhaseDurations::default(),
            steps: Vec::new(),
        },
        timed: Timed::Unready,
        since,
    };

    // 1. The unready delay: serving on, readiness false. Skipped when
    // nothing ever listened (see `Builder::unready_delay`).
    let listened = lock(&inner.shared).listened_at_request;
    if listened && !config.unready_delay.is_zero() {
        let delay = run.timer.sleep(config.unready_delay);
        if let Either::Right(()) = race(delay, forced(&inner)).await {
            return run.forced(Vec::new());
        }
    }
    run.lap(Timed::Closing);

    // 2. Draining: listeners close, then the work in flight ends.
    if inner.advance(Phase::Draining).is_none() {
        return run.forced(Vec::new());
    }
    inner.emit(Event::Draining);
    enum Stop {
        Done,
        Forced,
    }
    let closing = until(&inner, |inner, s| {
        if s.forced() {
            Some(Stop::Forced)
        } else {
            // Acquire: pairs with the Release of the last token's drop.
            (inner.listeners.load(Ordering::Acquire) == 0).then_some(Stop::Done)
        }
    });
    let closed = match race(closing, run.timer.sleep(config.drain_timeout)).await {
        Either::Left(Stop::Forced) => return run.forced(Vec::new()),
        Either::Left(Stop::Done) => true,
        // A listener that does not close within the drain timeout: treat
        // the drain as over, and abandon what is in flight.
        Either::Right(()) => false,
    };
    run.lap(Timed::Draining);
    if closed {
        inner.emit(Event::Closed);
        let drained = until(&inner, |_, s| {
            if s.forced() {
                Some(Stop::Forced)
            } else {
                (s.in_flight() == 0).then_some(Stop::Done)
            }
        });
        match race(drained, run.timer.sleep(config.drain_timeout)).await {
            Either::Left(Stop::Forced) => return run.forced(Vec::new()),
            Either::Left(Stop::Done) => run.report.drain = DrainOutcome::Drained,
            Either::Right(()) => {}
        }
    }
    if run.report.drain != DrainOutcome::Drained {
        run.report.drain = match inner.state.mark_abandoned() {
            Some(in_flight) => DrainOutcome::Abandoned(in_flight),
            // The last request ended as the deadline passed.
            None => DrainOutcome::Drained,
        };
        inner.waiters.notify_all();
    }
    run.lap(Timed::Cleanup);
    match run.report.drain {
        DrainOutcome::Abandoned(in_flight) => inner.emit(Event::Abandoned { in_flight }),
        _ => inner.emit(Event::Drained),
    }

    // 3. Cleanup, last registered first.
    let steps = {
        let mut shared = lock(&inner.shared);
        if inner
            .state
            .advance(Phase::CleaningUp, Flags::NONE)
            .is_none()
        {
            drop(shared);
            return run.forced(Vec::new());
        }
        std::mem::take(&mut shared.steps)
    };
    inner.waiters.notify_all();
    let mut left = steps;
    while let Some(step) = left.pop() {
        let name = step.name.clone();
        let started = run.timer.now();
        let ran = race(
            race(step.start(), run.timer.sleep(config.cleanup_timeout)),
            forced(&inner),
        )
        .await;
        let outcome = match ran {
            Either::Left(Either::Left(Ended::Ok)) => StepOutcome::Ok,
            Either::Left(Either::Left(Ended::Error(message))) => StepOutcome::Error(message),
            Either::Left(Either::Left(Ended::Panic(message))) => StepOutcome::Panic(message),
            Either::Left(Either::Right(())) => StepOutcome::Timeout,
            Either::Right(()) => StepOutcome::Skipped,
        };
        let duration = run.timer.now().saturating_duration_since(started);
        if outcome == StepOutcome::Skipped || inner.state.load().forced() {
            // Forced while the step ran: it was dropped (or ended unseen).
            run.report.steps.push(StepReport {
                name,
                outcome,
                duration,
            });
            left.reverse();
            return run.forced(left);
        }
        run.report.steps.push(StepReport {
            name,
            outcome,
            duration,
        });
        inner.emit(Event::StepFinished {
            step: run.report.steps.last().expect("just pushed"),
        });
    }

    // 4. Finished, unless a second request won the race to decide.
    if inner.advance(Phase::Finished).is_none() {
        return run.forced(Vec::new());
    }
    run.lap(Timed::Cleanup);
    let exit_code = run.report.exit_code();
    inner.emit(Event::Finished { exit_code });
    run.report
}
