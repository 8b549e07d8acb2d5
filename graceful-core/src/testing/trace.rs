//! What happened in one simulated shutdown: the trace printed with a
//! failure, and the observations the built-in invariants are checked on.

use super::clock::SimClock;
use super::executor::TaskId;
use crate::{Event, Signal};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// One line of a [`Trace`]: when, and what.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Entry {
    at: Duration,
    text: String,
}

impl Entry {
    /// Virtual time from the start.
    pub fn at(&self) -> Duration {
        self.at
    }

    /// What happened, in words.
    pub fn text(&self) -> &str {
        &self.text
    }
}

/// Everything that happened in one simulated shutdown, in order: the
/// signals, each request's admission and end, the driver's events, the
/// cleanup steps, the notes the code under test added with
/// [`Cx::note`](super::Cx::note), and the exit.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Trace {
    entries: Vec<Entry>,
}

impl Trace {
    /// The entries, in order.
    pub fn entries(&self) -> &[Entry] {
        &self.entries
    }

    /// Whether some entry's text contains `text`.
    pub fn contains(&self, text: &str) -> bool {
        self.entries.iter().any(|entry| entry.text.contains(text))
    }
}

impl fmt::Display for Trace {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for entry in &self.entries {
            writeln!(f, "{:>9}ms  {}", entry.at.as_millis(), entry.text)?;
        }
        Ok(())
    }
}

/// How a cleanup step registered through the simulation ended, as the step
/// itself saw it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum StepEnd {
    Ok,
    Error,
    Panic,
    /// Dropped unfinished: timed out, or skipped by a forced shutdown.
    Dropped,
}

impl fmt::Display for StepEnd {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            StepEnd::Ok => "ok",
            StepEnd::Error => "error",
            StepEnd::Panic => "panic",
            StepEnd::Dropped => "dropped unfinished",
        })
    }
}

#[derive(Debug)]
pub(super) struct StepLog {
    pub(super) name: String,
    pub(super) started: Option<(usize, Duration)>,
    pub(super) starts: usize,
    pub(super) ended: Option<(Duration, StepEnd)>,
}

/// A point in the trace: its index and its time.
#[derive(Clone, Copy, Debug)]
pub(super) struct Mark {
    pub(super) index: usize,
    pub(super) at: Duration,
}

#[derive(Clone, Copy, Debug)]
pub(super) struct DrainEnd {
    pub(super) mark: Mark,
    /// `Some(n)` when the driver abandoned `n` requests.
    pub(super) abandoned: Option<usize>,
    /// Requests admitted with a guard and not finished, by the simulation's
    /// own count.
    pub(super) open: usize,
}

/// The observations, written by the simulation, its tasks and the driver's
/// event observer.
#[derive(Debug)]
pub(super) struct Log {
    clock: SimClock,
    pub(super) trace: Trace,
    pub(super) requested: Option<Mark>,
    pub(super) draining: Option<Mark>,
    pub(super) closed: Option<Mark>,
    pub(super) drain_end: Option<DrainEnd>,
    /// `(mark, request id, guarded)` for every admitted request.
    pub(super) admissions: Vec<(Mark, usize, bool)>,
    /// The first rise of the in-flight count after draining began.
    pub(super) rise: Option<(Mark, usize, usize)>,
    pub(super) in_flight: usize,
    /// Guarded requests admitted and not finished.
    pub(super) open: usize,
    pub(super) steps: Vec<StepLog>,
    /// The work the exit must not lose: requests and spawned tasks.
    pub(super) work: Vec<(TaskId, String)>,
    pub(super) listener_closed: bool,
    /// The second signal, delivered before the exit.
    pub(super) forced_by: Option<Signal>,
}

impl Log {
    pub(super) fn new(clock: SimClock) -> Log {
        Log {
            clock,
            trace: Trace::default(),
            requested: None,
            draining: None,
            closed: None,
            drain_end: None,
            admissions: Vec::new(),
            rise: None,
            in_flight: 0,
            open: 0,
            steps: Vec::new(),
            work: Vec::new(),
            listener_closed: false,
            forced_by: None,
        }
    }

    /// Adds an entry; returns where it stands.
    pub(super) fn push(&mut self, text: impl Into<String>) -> Mark {
        let at = self.clock.elapsed();
        self.trace.entries.push(Entry {
            at,
            text: text.into(),
        });
        Mark {
            index: self.trace.entries.len() - 1,
            at,
        }
    }

    /// Records the in-flight count, and its first rise after draining
    /// began.
    pub(super) fn sample(&mut self, in_flight: usize) {
        if in_flight > self.in_flight && self.draining.is_some() && self.rise.is_none() {
            let mark = self.push(format!(
                "in flight: {} -> {in_flight} after draining began",
                self.in_flight
            ));
            self.rise = Some((mark, self.in_flight, in_flight));
        }
        self.in_flight = in_flight;
    }

    pub(super) fn event(&mut self, event: &Event<'_>) {
        match event {
            Event::Requested { cause } => {
                self.push(format!("driver: shutdown requested ({cause})"));
            }
            Event::Draining => {
                let mark = self.push("driver: draining, new work refused");
                self.draining = Some(mark);
            }
            Event::Closed => {
                let mark = self.push("driver: listeners closed");
                self.closed = Some(mark);
            }
            Event::Drained => {
                let mark = self.push("driver: drained");
                self.drain_end = Some(DrainEnd {
                    mark,
                    abandoned: None,
                    open: self.open,
                });
            }
            Event::Abandoned { in_flight } => {
                let mark = self.push(format!(
                    "driver: drain abandoned with {in_flight} in flight"
                ));
                self.drain_end = Some(DrainEnd {
                    mark,
                    abandoned: Some(*in_flight),
                    open: self.open,
                });
            }
            Event::StepFinished { step } => {
                self.push(format!("driver: step `{}` {}", step.name(), step.outcome()));
            }
            Event::Forced { cause, exit_code } => {
                self.push(format!("driver: forced by {cause}, exit code {exit_code}"));
            }
            Event::Finished { exit_code } => {
                self.push(format!("driver: finished, exit code {exit_code}"));
            }
        }
    }
}

/// The log, shared by everything that writes to it.
#[derive(Clone, Debug)]
pub(super) struct Shared(Arc<Mutex<Log>>);

impl Shared {
    pub(super) fn new(clock: SimClock) -> Shared {
        Shared(Arc::new(Mutex::new(Log::new(clock))))
    }

    pub(super) fn lock(&self) -> MutexGuard<'_, Log> {
        // Poisoning is ignored: a panic in a handler must not hide what
        // happened before it, and the log is left consistent at every
        // unlock.
        self.0.lock().unwrap_or_else(PoisonError::into_inner)
    }
}
