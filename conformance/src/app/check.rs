//! The checks app mode runs, and what one of them found.

use std::fmt;
use std::time::Duration;

use crate::process::Signal;

/// A check's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verdict {
    /// The server did what the rule asks.
    Pass,
    /// It did not; the report's findings say what was seen.
    Fail,
    /// The check could not be made on this server (no readiness path, a slow
    /// request too short to hold the drain, ...); the report says why.
    NotApplicable,
}

impl Verdict {
    /// `pass`, `FAIL` or `n/a`, as the table shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Fail => "FAIL",
            Self::NotApplicable => "n/a",
        }
    }

    /// `pass`, `fail` or `not-applicable`, as the JSON document has it.
    pub fn key(self) -> &'static str {
        match self {
            Self::Pass => "pass",
            Self::Fail => "fail",
            Self::NotApplicable => "not-applicable",
        }
    }
}

impl fmt::Display for Verdict {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

macro_rules! checks {
    ($( $variant:ident = $name:literal: $doc:literal; )*) => {
        /// One rule every HTTP server owes its users at `SIGTERM` and
        /// `SIGINT`, checked from outside. [`Check::all`] lists them in
        /// running order.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum Check {
            $( #[doc = $doc] $variant, )*
        }

        impl Check {
            const ALL: &'static [Check] = &[ $( Check::$variant, )* ];

            /// Every check, in running order.
            pub fn all() -> &'static [Check] {
                Self::ALL
            }

            /// The kebab-case name.
            pub fn name(self) -> &'static str {
                match self { $( Check::$variant => $name, )* }
            }

            /// One sentence on the rule.
            pub fn description(self) -> &'static str {
                match self { $( Check::$variant => $doc, )* }
            }
        }
    };
}

checks! {
    Start = "start":
        "the server starts, answers, and the slow request comes back whole with 2xx";
    InflightSigterm = "inflight-sigterm":
        "requests in flight at SIGTERM complete with whole bodies";
    InflightSigint = "inflight-sigint":
        "requests in flight at SIGINT complete with whole bodies";
    RefusedNotReset = "refused-not-reset":
        "once it stops accepting, new connections are refused, and none is reset";
    KeepaliveDuringDrain = "keepalive-during-drain":
        "a request on an open keep-alive connection during the drain is answered, not reset or dropped";
    IdleKeepaliveExit = "idle-keepalive-exit":
        "idle keep-alive connections do not delay the exit";
    HalfSentExit = "half-sent-exit":
        "connections with a half-sent request head do not delay the exit";
    ReadinessFirst = "readiness-first":
        "the readiness path fails before accepting stops, and accepting lasts the unready delay";
    CleanExit = "clean-exit":
        "after a clean drain the exit status is 0, soon after the last response";
    SecondSignal = "second-signal":
        "a second signal during the drain ends the process at once";
    LoadAtSigterm = "load-at-sigterm":
        "under steady load at SIGTERM, no request is reset or truncated";
}

impl Check {
    /// The check named `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|c| c.name() == name)
    }

    /// The signal that starts the shutdown in this check.
    pub fn signal(self) -> Signal {
        match self {
            Self::InflightSigint => Signal::Int,
            _ => Signal::Term,
        }
    }
}

impl fmt::Display for Check {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// What one check found about one server.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckReport {
    /// The check.
    pub check: Check,
    /// Its verdict.
    pub verdict: Verdict,
    /// Measured figures, headline first: `("exit-ms", "3.1")`.
    pub figures: Vec<(String, String)>,
    /// What was seen: for a failure, what broke the rule; for a check that
    /// does not apply, why.
    pub findings: Vec<String>,
    /// How long the check took.
    pub elapsed: Duration,
    /// The end of the server's standard error, kept when the check failed.
    pub stderr_tail: String,
}

impl CheckReport {
    /// The value of the figure named `key`.
    pub fn figure(&self, key: &str) -> Option<&str> {
        self.figures
            .iter()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.as_str())
    }

    /// Whether the check failed.
    pub fn failed(&self) -> bool {
        self.verdict == Verdict::Fail
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_are_unique() {
        for check in Check::all() {
            assert_eq!(Check::from_name(check.name()), Some(*check));
        }
        let mut names: Vec<_> = Check::all().iter().map(|c| c.name()).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), Check::all().len());
        assert_eq!(Check::from_name("nope"), None);
    }
}
