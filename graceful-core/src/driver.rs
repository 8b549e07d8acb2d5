//! The driver: the one future that walks a shutdown through its phases.

use crate::cleanup::Ended;
use crate::inner::Inner;
use crate::progress::{Progress, SharedTimer, Timed};
use crate::report::{DrainOutcome, Event, Report, StepOutcome, StepReport};
use crate::shutdown::Shutdown;
use crate::state::{Flags, Phase, Snapshot};
use crate::sync::{Arc, lock};
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
    /// With a [grace period](crate::Builder::grace_period), every wait is
    /// also cut to fit in it. A second request resolves it at once with the
    /// forced outcome.
    ///
    /// [`ListenerToken`]: crate::ListenerToken
    pub fn run<T: Timer>(self, timer: T) -> Run {
        Run {
            future: std::sync::Mutex::new(Box::pin(run(
                self.shutdown.inner,
                std::sync::Arc::new(timer),
            ))),
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

/// The driver's side of the run: the clock, the budget, and the progress
/// it keeps in the shared state.
struct Runner {
    inner: Arc<Inner>,
    timer: SharedTimer,
    /// When the grace period's budget runs out, if one was set.
    deadline: Option<Instant>,
}

impl Runner {
    fn now(&self) -> Instant {
        self.timer.now()
    }

    /// `f` on the progress, under the lock.
    fn progress<R>(&self, f: impl FnOnce(&mut Progress) -> R) -> R {
        let mut shared = lock(&self.inner.shared);
        f(shared
            .progress
            .as_mut()
            .expect("the run records its progress before it goes on"))
    }

    /// Charges the time since the last lap to the phase being timed, and
    /// starts timing `next`.
    fn lap(&self, next: Timed) {
        let now = self.now();
        self.progress(|progress| progress.lap(now, next));
    }

    /// How long to wait for something allowed `timeout`, when it must also
    /// be over by `end`; and whether `end` is what shortened it.
    fn limit(&self, timeout: Duration, end: Option<Instant>) -> (Duration, bool) {
        match end.map(|end| end.saturating_duration_since(self.now())) {
            Some(left) if left < timeout => (left, true),
            _ => (timeout, false),
        }
    }

    /// The forced outcome, as the request that forced the shutdown wrote
    /// it.
    fn forced(&self) -> Report {
        let report = lock(&self.inner.shared)
            .forced
            .clone()
            .expect("the forcing request writes the report under the lock it sets the flag under");
        let cause = report.forced_by().expect("a forced report names its cause");
        self.inner.emit(Event::Forced {
            cause,
            exit_code: report.exit_code(),
        });
        report
    }
}

async fn run(inner: Arc<Inner>, timer: SharedTimer) -> Report {
    let config = inner.config;
    until(&inner, |_, s| (s.phase() >= Phase::Unready).then_some(())).await;
    let started = timer.now();
    let (cause, listened) = {
        let mut shared = lock(&inner.shared);
        let cause = shared
            .cause
            .clone()
            .expect("the first request records its cause before moving the phase");
        shared.progress = Some(Progress::new(timer.clone(), cause.clone(), started));
        (cause, shared.listened_at_request)
    };
    inner.emit(Event::Requested { cause: &cause });
    let run = Runner {
        inner: inner.clone(),
        timer,
        deadline: config.budget.map(|budget| started + budget),
    };

    // 1. The unready delay: serving on, readiness false. Skipped when
    // nothing ever listened (see `Builder::unready_delay`), and for an
    // upgrade: the socket stays open in the new process, so there is no
    // load balancer to wait for.
    if listened && !cause.is_upgrade() && !config.unready_delay.is_zero() {
        let (delay, _) = run.limit(config.unready_delay, run.deadline);
        if let Either::Right(()) = race(run.timer.sleep(delay), forced(&inner)).await {
            return run.forced();
        }
    }
    run.lap(Timed::Closing);

    // 2. Draining: listeners close, then the work in flight ends. Both
    // waits together end in time to leave one cleanup step its full
    // timeout; the build-time check makes that at least the drain timeout.
    if inner.advance(Phase::Draining).is_none() {
        return run.forced();
    }
    inner.emit(Event::Draining);
    let drain_end = config
        .budget
        .map(|budget| started + budget.saturating_sub(config.cleanup_timeout));
    enum Stop {
        Done,
        Forced,
    }
    let closing = until(&inner, |inner, s| {
        if s.forced() {
            Some(Stop::Forced)
        } else {
            inner.listeners_closed().then_some(Stop::Done)
        }
    });
    let (limit, mut cut) = run.limit(config.drain_timeout, drain_end);
    let closed = match race(closing, run.timer.sleep(limit)).await {
        Either::Left(Stop::Forced) => return run.forced(),
        Either::Left(Stop::Done) => true,
        // A listener that does not close within the drain timeout: treat
        // the drain as over, and abandon what is in flight.
        Either::Right(()) => false,
    };
    run.lap(Timed::Draining);
    let mut drain = DrainOutcome::Interrupted(0);
    if closed {
        inner.emit(Event::Closed);
        let drained = until(&inner, |_, s| {
            if s.forced() {
                Some(Stop::Forced)
            } else {
                (s.in_flight() == 0).then_some(Stop::Done)
            }
        });
        let limit;
        (limit, cut) = run.limit(config.drain_timeout, drain_end);
        match race(drained, run.timer.sleep(limit)).await {
            Either::Left(Stop::Forced) => return run.forced(),
            Either::Left(Stop::Done) => drain = DrainOutcome::Drained,
            Either::Right(()) => {}
        }
    }
    if drain != DrainOutcome::Drained {
        drain = match inner.state.mark_abandoned() {
            Some(in_flight) => DrainOutcome::Abandoned(in_flight),
            // The last request ended as the deadline passed.
            None => DrainOutcome::Drained,
        };
        inner.waiters.notify_all();
    }
    // Cut by the budget when the wait that ended the drain was shortened
    // by it, and something was abandoned.
    let cut = cut && drain != DrainOutcome::Drained;
    let now = run.now();
    run.progress(|progress| {
        progress.lap(now, Timed::Cleanup);
        progress.report.drain = drain;
        progress.report.drain_cut = cut;
    });
    match drain {
        DrainOutcome::Abandoned(in_flight) => inner.emit(Event::Abandoned { in_flight }),
        _ => inner.emit(Event::Drained),
    }

    // 3. Cleanup, last registered first, each step under the cleanup
    // timeout or what is left of the budget, whichever is less.
    let mut left = {
        let mut shared = lock(&inner.shared);
        if inner
            .state
            .advance(Phase::CleaningUp, Flags::NONE)
            .is_none()
        {
            drop(shared);
            return run.forced();
        }
        let steps = std::mem::take(&mut shared.steps);
        if let Some(progress) = shared.progress.as_mut() {
            progress.queue(&steps);
        }
        steps
    };
    inner.waiters.notify_all();
    while let Some(step) = left.pop() {
        let name = step.name.clone();
        let started = run.now();
        run.progress(|progress| progress.start_step(started));
        let (limit, cut) = run.limit(config.cleanup_timeout, run.deadline);
        let ran = race(race(step.start(), run.timer.sleep(limit)), forced(&inner)).await;
        let outcome = match ran {
            Either::Left(Either::Left(Ended::Ok)) => StepOutcome::Ok,
            Either::Left(Either::Left(Ended::Error(message))) => StepOutcome::Error(message),
            Either::Left(Either::Left(Ended::Panic(message))) => StepOutcome::Panic(message),
            Either::Left(Either::Right(())) => StepOutcome::Timeout,
            Either::Right(()) => return run.forced(),
        };
        let step = StepReport {
            name,
            cut: cut && outcome == StepOutcome::Timeout,
            duration: run.now().saturating_duration_since(started),
            outcome,
        };
        // Recorded under the lock the forcing request takes: a step is in
        // the report either as it ended or as skipped, never both.
        let recorded = {
            let mut shared = lock(&inner.shared);
            match shared.progress.as_mut() {
                Some(progress) if !inner.state.load().forced() => {
                    progress.finish_step(step.clone());
                    true
                }
                _ => false,
            }
        };
        if !recorded {
            return run.forced();
        }
        inner.emit(Event::StepFinished { step: &step });
    }

    // 4. Finished, unless a second request won the race to decide.
    let now = run.now();
    let report = {
        let mut shared = lock(&inner.shared);
        if inner.state.advance(Phase::Finished, Flags::NONE).is_none() {
            drop(shared);
            return run.forced();
        }
        let progress = shared
            .progress
            .as_mut()
            .expect("the run records its progress before it goes on");
        progress.lap(now, Timed::Cleanup);
        progress.report.clone()
    };
    inner.waiters.notify_all();
    inner.emit(Event::Finished {
        exit_code: report.exit_code(),
    });
    inner.log.finished(&report);
    report
}
