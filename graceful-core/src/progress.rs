//! The report being written while a shutdown runs.
//!
//! It lives in the shared state rather than in the driver because a forced
//! shutdown is decided by the request that forces it, on whatever task got
//! the second signal, and the program may exit right then without polling
//! the [`Run`](crate::Run) again (that is what the adapters' `signals`
//! futures are for). So that request finishes the report here, under the
//! lock it sets the `FORCED` flag under, and the driver, if it is polled
//! again, returns that same report.

use crate::cause::Cause;
use crate::cleanup::Step;
use crate::report::{DrainOutcome, Report, StepOutcome, StepReport};
use crate::timer::Timer;
use std::borrow::Cow;
use std::time::{Duration, Instant};

/// The driver's clock, shared with the request that may force the shutdown.
///
/// A std `Arc` even under loom: it is not a synchronisation point, and
/// loom's `Arc` cannot hold a trait object.
pub(crate) type SharedTimer = std::sync::Arc<dyn Timer>;

/// The phase whose time is being counted.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Timed {
    Unready,
    Closing,
    Draining,
    Cleanup,
}

/// The run so far, from the moment the driver saw the first request.
pub(crate) struct Progress {
    pub(crate) timer: SharedTimer,
    pub(crate) report: Report,
    timed: Timed,
    /// When the phase being timed began.
    since: Instant,
    /// The step running, and when it started.
    running: Option<(Cow<'static, str>, Instant)>,
    /// The steps taken for cleanup and not started yet; the next one last.
    queued: Vec<Cow<'static, str>>,
}

impl Progress {
    pub(crate) fn new(timer: SharedTimer, cause: Cause, now: Instant) -> Progress {
        Progress {
            timer,
            report: Report::new(cause),
            timed: Timed::Unready,
            since: now,
            running: None,
            queued: Vec::new(),
        }
    }

    /// Charges the time since the last lap to the phase being timed, and
    /// starts timing `next`.
    pub(crate) fn lap(&mut self, now: Instant, next: Timed) {
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

    /// The steps taken for cleanup, in registration order (they run from
    /// the last).
    pub(crate) fn queue(&mut self, steps: &[Step]) {
        self.queued = steps.iter().map(|step| step.name.clone()).collect();
    }

    /// The next queued step starts.
    pub(crate) fn start_step(&mut self, now: Instant) {
        self.running = self.queued.pop().map(|name| (name, now));
    }

    /// The running step ended.
    pub(crate) fn finish_step(&mut self, step: StepReport) {
        self.running = None;
        self.report.steps.push(step);
    }
}

/// The forced outcome, written by the request that forced the shutdown.
///
/// `progress` is the run so far, `None` when the driver had not seen the
/// first request yet; `now` the driver's clock, read by the request (`None`
/// when it had no clock to read); `registered` the steps not yet taken for
/// cleanup. What was left to do is reported skipped, in the order it would
/// have run: the running step (with the time it ran), the queued ones, the
/// registered ones.
pub(crate) fn forced(
    progress: Option<&mut Progress>,
    cause: &Cause,
    forced_by: Cause,
    now: Option<Instant>,
    in_flight: usize,
    registered: &[Step],
) -> Report {
    let skipped = |name, duration| StepReport {
        name,
        outcome: StepOutcome::Skipped,
        duration,
        cut: false,
    };
    let mut report = match progress {
        Some(progress) => {
            if let Some(now) = now {
                progress.lap(now, progress.timed);
            }
            let mut report = progress.report.clone();
            if let Some((name, started)) = progress.running.take() {
                let ran = now.map_or(Duration::ZERO, |now| now.saturating_duration_since(started));
                report.steps.push(skipped(name, ran));
            }
            let queued = progress.queued.drain(..).rev();
            report
                .steps
                .extend(queued.map(|name| skipped(name, Duration::ZERO)));
            report
        }
        None => Report::new(cause.clone()),
    };
    let registered = registered.iter().rev();
    report
        .steps
        .extend(registered.map(|step| skipped(step.name.clone(), Duration::ZERO)));
    if let DrainOutcome::Interrupted(n) = &mut report.drain {
        *n = in_flight;
    }
    report.forced_by = Some(forced_by);
    report
}
