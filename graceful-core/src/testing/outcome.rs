//! The end of a simulation: its outcome when every invariant held, the
//! failure (with the schedule to replay it) when one did not.

use super::schedule::Schedule;
use super::trace::Trace;
use crate::Report;
use std::error::Error;
use std::fmt;

/// A simulated shutdown in which every invariant held.
#[derive(Clone, Debug)]
pub struct Outcome {
    pub(super) schedule: Schedule,
    pub(super) report: Report,
    pub(super) exit_code: u8,
    pub(super) trace: Trace,
    pub(super) admitted: usize,
    pub(super) refused: usize,
}

impl Outcome {
    /// The schedule it ran.
    pub fn schedule(&self) -> &Schedule {
        &self.schedule
    }

    /// The driver's report.
    pub fn report(&self) -> &Report {
        &self.report
    }

    /// The exit code the process would exit with.
    pub fn exit_code(&self) -> u8 {
        self.exit_code
    }

    /// What happened.
    pub fn trace(&self) -> &Trace {
        &self.trace
    }

    /// Requests admitted (served).
    pub fn admitted(&self) -> usize {
        self.admitted
    }

    /// Requests refused: `503` once draining, or the listener closed.
    pub fn refused(&self) -> usize {
        self.refused
    }
}

/// One invariant that did not hold.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub(super) invariant: String,
    pub(super) detail: String,
}

impl Violation {
    /// The invariant's name: one of the [built-in ones](super#what-it-checks)
    /// or the name given to [`Sim::invariant`](super::Sim::invariant).
    pub fn invariant(&self) -> &str {
        &self.invariant
    }

    /// What happened instead.
    pub fn detail(&self) -> &str {
        &self.detail
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}] {}", self.invariant, self.detail)
    }
}

/// A schedule on which an invariant did not hold: which ones, the schedule
/// (which replays it), the trace, and the exit code if it got that far.
///
/// Its [`Display`](fmt::Display) form is what a failing test prints; like
/// any error that displays, it converts into proptest's `TestCaseError`, so
/// `?` works in a `proptest!` test.
///
/// A thin handle (one box), so that `Result<Outcome, Failure>` stays small.
#[derive(Clone, Debug)]
pub struct Failure {
    inner: Box<FailureInner>,
}

#[derive(Clone, Debug)]
struct FailureInner {
    schedule: Schedule,
    violations: Vec<Violation>,
    trace: Trace,
    exit_code: Option<u8>,
}

impl Failure {
    pub(super) fn new(
        schedule: Schedule,
        violations: Vec<Violation>,
        trace: Trace,
        exit_code: Option<u8>,
    ) -> Failure {
        Failure {
            inner: Box::new(FailureInner {
                schedule,
                violations,
                trace,
                exit_code,
            }),
        }
    }

    /// The schedule that failed.
    pub fn schedule(&self) -> &Schedule {
        &self.inner.schedule
    }

    /// The invariants that did not hold; never empty.
    pub fn violations(&self) -> &[Violation] {
        &self.inner.violations
    }

    /// Whether the invariant named `name` is among those that did not hold.
    pub fn broke(&self, name: &str) -> bool {
        self.inner.violations.iter().any(|v| v.invariant == name)
    }

    /// What happened.
    pub fn trace(&self) -> &Trace {
        &self.inner.trace
    }

    /// The exit code, when the shutdown got as far as the exit.
    pub fn exit_code(&self) -> Option<u8> {
        self.inner.exit_code
    }
}

impl fmt::Display for Failure {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.inner.violations.len();
        writeln!(
            f,
            "{n} shutdown invariant{} broken on schedule `{}`",
            if n == 1 { "" } else { "s" },
            self.inner.schedule
        )?;
        for violation in &self.inner.violations {
            writeln!(f, "  - {violation}")?;
        }
        writeln!(
            f,
            "replay: Sim::new(\"{}\".parse::<Schedule>()?)",
            self.inner.schedule
        )?;
        writeln!(f, "trace (virtual time):")?;
        write!(f, "{}", self.inner.trace)?;
        match self.inner.exit_code {
            Some(code) => write!(f, "exit code {code}"),
            None => f.write_str("no exit"),
        }
    }
}

impl Error for Failure {}
