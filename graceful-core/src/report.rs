//! What a shutdown did: the report, and the events it emits on the way.

use crate::Cause;
use std::borrow::Cow;
use std::fmt;
use std::time::Duration;

/// How one cleanup step ended.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum StepOutcome {
    /// It returned `Ok`.
    Ok,
    /// It returned an error, with its message.
    Error(String),
    /// It panicked; the panic was caught. With the panic's message.
    Panic(String),
    /// It did not finish within the cleanup timeout, or within what was
    /// left of the grace period ([`StepReport::cut_by_grace_period`]), and
    /// was dropped.
    Timeout,
    /// It never ran, or was dropped unfinished: a second request forced the
    /// shutdown.
    Skipped,
}

impl StepOutcome {
    /// One lowercase word: `ok`, `error`, `panic`, `timeout` or `skipped`.
    pub fn as_str(&self) -> &'static str {
        match self {
            StepOutcome::Ok => "ok",
            StepOutcome::Error(_) => "error",
            StepOutcome::Panic(_) => "panic",
            StepOutcome::Timeout => "timeout",
            StepOutcome::Skipped => "skipped",
        }
    }

    /// True for [`StepOutcome::Ok`].
    pub fn is_ok(&self) -> bool {
        matches!(self, StepOutcome::Ok)
    }
}

impl fmt::Display for StepOutcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StepOutcome::Error(message) | StepOutcome::Panic(message) => {
                write!(f, "{}: {message}", self.as_str())
            }
            _ => f.write_str(self.as_str()),
        }
    }
}

/// One cleanup step in the [`Report`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StepReport {
    pub(crate) name: Cow<'static, str>,
    pub(crate) outcome: StepOutcome,
    pub(crate) duration: Duration,
    pub(crate) cut: bool,
}

impl StepReport {
    /// The name the step was registered under.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// How it ended.
    pub fn outcome(&self) -> &StepOutcome {
        &self.outcome
    }

    /// How long it ran (zero when skipped).
    pub fn duration(&self) -> Duration {
        self.duration
    }

    /// True when it timed out because the [grace
    /// period](crate::Builder::grace_period) was running out, before its own
    /// cleanup timeout: its outcome is then [`StepOutcome::Timeout`].
    pub fn cut_by_grace_period(&self) -> bool {
        self.cut
    }
}

impl fmt::Display for StepReport {
    /// `NAME OUTCOME in DURATION`, with `(cut by the grace period)` after a
    /// timeout the grace period called.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", self.name, self.outcome)?;
        if self.cut {
            f.write_str(" (cut by the grace period)")?;
        }
        write!(f, " in {:?}", self.duration)
    }
}

/// How the drain ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DrainOutcome {
    /// Every request in flight finished.
    Drained,
    /// The drain deadline passed with this many requests still in flight.
    Abandoned(usize),
    /// A second request forced the shutdown before the drain ended, with
    /// this many requests still in flight.
    Interrupted(usize),
}

/// Time spent in each phase. A phase that was never reached, or was cut
/// short by a forced shutdown, counts the time until it ended.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PhaseDurations {
    /// From the request to the end of the unready delay.
    pub unready: Duration,
    /// From the end of the unready delay until every listener was closed.
    pub closing: Duration,
    /// From the listeners' closing until drained or abandoned.
    pub draining: Duration,
    /// All cleanup steps together.
    pub cleanup: Duration,
}

/// The outcome of a shutdown, returned by [`Run`](crate::Run).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    pub(crate) cause: Cause,
    pub(crate) forced_by: Option<Cause>,
    pub(crate) drain: DrainOutcome,
    pub(crate) drain_cut: bool,
    pub(crate) phases: PhaseDurations,
    pub(crate) steps: Vec<StepReport>,
}

impl Report {
    /// The report of a shutdown that `cause` just asked for: nothing
    /// decided yet.
    pub(crate) fn new(cause: Cause) -> Report {
        Report {
            cause,
            forced_by: None,
            drain: DrainOutcome::Interrupted(0),
            drain_cut: false,
            phases: PhaseDurations::default(),
            steps: Vec::new(),
        }
    }

    /// What asked for the shutdown first.
    pub fn cause(&self) -> &Cause {
        &self.cause
    }

    /// What forced it, if a second request came before it finished.
    pub fn forced_by(&self) -> Option<&Cause> {
        self.forced_by.as_ref()
    }

    /// How the drain ended.
    pub fn drain(&self) -> DrainOutcome {
        self.drain
    }

    /// True when the requests in flight were abandoned before the drain
    /// timeout had run its course, because the [grace
    /// period](crate::Builder::grace_period) was running out (the listeners
    /// took long to close, say): the drain outcome is then
    /// [`DrainOutcome::Abandoned`].
    pub fn drain_cut_by_grace_period(&self) -> bool {
        self.drain_cut
    }

    /// How many requests were still in flight when the drain deadline
    /// passed, or when the shutdown was forced during the drain.
    pub fn abandoned(&self) -> usize {
        match self.drain {
            DrainOutcome::Abandoned(n) | DrainOutcome::Interrupted(n) => n,
            DrainOutcome::Drained => 0,
        }
    }

    /// Time spent in each phase.
    pub fn phases(&self) -> PhaseDurations {
        self.phases
    }

    /// Every registered cleanup step, in the order they ran (last registered
    /// first); those a forced shutdown skipped come last, marked
    /// [`StepOutcome::Skipped`].
    pub fn steps(&self) -> &[StepReport] {
        &self.steps
    }

    /// The process exit code this outcome calls for:
    ///
    /// - `128 + N` when signal `N` forced the shutdown (1 when the program
    ///   forced it with a reason);
    /// - `0` when every request drained and every cleanup step ended `ok`;
    /// - `1` otherwise: the drain deadline passed, or a step failed,
    ///   panicked or timed out.
    pub fn exit_code(&self) -> u8 {
        if let Some(cause) = &self.forced_by {
            return cause.forced_exit_code();
        }
        let clean = self.drain == DrainOutcome::Drained
            && self.steps.iter().all(|step| step.outcome.is_ok());
        if clean { 0 } else { 1 }
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "shutdown on {}", self.cause)?;
        if let Some(forced) = &self.forced_by {
            write!(f, ", forced by {forced}")?;
        }
        match self.drain {
            DrainOutcome::Drained => f.write_str(", drained")?,
            DrainOutcome::Abandoned(n) => write!(f, ", {n} abandoned")?,
            DrainOutcome::Interrupted(n) => write!(f, ", drain interrupted with {n} in flight")?,
        }
        if self.drain_cut {
            f.write_str(" (drain cut by the grace period)")?;
        }
        let p = self.phases;
        write!(
            f,
            " (unready {:?}, closing {:?}, draining {:?}, cleanup {:?})",
            p.unready, p.closing, p.draining, p.cleanup
        )?;
        for step in &self.steps {
            write!(f, "; {step}")?;
        }
        write!(f, "; exit code {}", self.exit_code())
    }
}

/// A step of the shutdown, passed to the observer set with
/// [`Builder::on_event`](crate::Builder::on_event) as it happens.
///
/// Events come from the [`Run`](crate::Run) future, in this order:
/// `Requested`, `Draining`, `Closed`, then `Drained` or `Abandoned`, one
/// `StepFinished` per cleanup step, `Finished`. A forced shutdown ends the
/// sequence early with `Forced`.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub enum Event<'a> {
    /// The first request arrived; readiness reports false.
    Requested {
        /// What asked.
        cause: &'a Cause,
    },
    /// The unready delay ended: listeners are to close, new work is refused.
    Draining,
    /// Every listener is closed: a new connection is refused from here on.
    Closed,
    /// Nothing is in flight any more.
    Drained,
    /// The drain deadline passed with requests still in flight.
    Abandoned {
        /// How many.
        in_flight: usize,
    },
    /// One cleanup step ended.
    StepFinished {
        /// Its name, outcome and duration.
        step: &'a StepReport,
    },
    /// A second request decided the outcome; what was left is skipped.
    Forced {
        /// What forced it.
        cause: &'a Cause,
        /// The exit code it calls for.
        exit_code: u8,
    },
    /// The shutdown ended normally.
    Finished {
        /// The exit code it calls for.
        exit_code: u8,
    },
}
