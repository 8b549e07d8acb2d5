//! The small tools every check uses: a request in flight on its own thread,
//! the findings a check collects, and figures in milliseconds.

use std::fmt::Display;
use std::net::SocketAddr;
use std::sync::mpsc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::check::Verdict;
use crate::http::{self, Outcome, Request};
use crate::process::{Exit, Process};

/// How much later than the process's real exit the kit may see it (it polls
/// every millisecond, and a dying process closes its sockets a little
/// before its status can be collected). A request lost within this much of
/// the exit is lost to the exit itself.
pub(crate) const EXIT_SLACK: Duration = Duration::from_millis(50);
/// How long the kit waits for an end it expects, beyond its bound, before it
/// calls the server stuck.
pub(crate) const PATIENCE: Duration = Duration::from_secs(5);

/// Milliseconds with one decimal: `12.3`.
pub(crate) fn ms(d: Duration) -> String {
    format!("{:.1}", d.as_secs_f64() * 1000.0)
}

/// `later - earlier` in milliseconds, `-` when `later` came first.
pub(crate) fn ms_since(later: Instant, earlier: Instant) -> String {
    match later.checked_duration_since(earlier) {
        Some(d) => ms(d),
        None => format!("-{}", ms(earlier - later)),
    }
}

/// Whether `outcome` is a whole response with a `2xx` status.
pub(crate) fn is_whole_2xx(outcome: &Outcome) -> bool {
    outcome
        .status()
        .is_some_and(|status| (200..300).contains(&status))
}

/// What a check saw: figures, and findings that make it fail or not apply.
#[derive(Debug, Default)]
pub(crate) struct Seen {
    pub(crate) figures: Vec<(String, String)>,
    pub(crate) findings: Vec<String>,
    failed: bool,
    not_applicable: bool,
}

impl Seen {
    /// Records a figure.
    pub(crate) fn figure(&mut self, key: &str, value: impl Display) {
        self.figures.push((key.to_owned(), value.to_string()));
    }

    /// The rule was broken: `what` says how.
    pub(crate) fn fail(&mut self, what: impl Into<String>) {
        self.failed = true;
        self.findings.push(what.into());
    }

    /// The check cannot be made: `why` says why.
    pub(crate) fn not_applicable(&mut self, why: impl Into<String>) {
        self.not_applicable = true;
        self.findings.push(why.into());
    }

    /// A failure outweighs a reason not to apply, which outweighs a pass.
    pub(crate) fn verdict(&self) -> Verdict {
        if self.failed {
            Verdict::Fail
        } else if self.not_applicable {
            Verdict::NotApplicable
        } else {
            Verdict::Pass
        }
    }
}

/// How a request in flight ended.
#[derive(Debug)]
pub(crate) struct Finished {
    pub(crate) outcome: Outcome,
    /// When the outcome was known.
    pub(crate) at: Instant,
}

/// A request sent on its own connection, answered on its own thread.
/// Dropping it detaches the thread, which ends at the request's time-out.
#[derive(Debug)]
#[must_use = "a request in flight is only checked when it is finished"]
pub(crate) struct InFlight {
    sent: mpsc::Receiver<Instant>,
    handle: JoinHandle<Finished>,
}

impl InFlight {
    /// Connects, sends `req` and reads its answer for at most `timeout`.
    pub(crate) fn send(addr: SocketAddr, req: Request, timeout: Duration) -> Self {
        let (tell, sent) = mpsc::channel();
        let handle = thread::spawn(move || {
            let mut conn = match http::connect(addr, timeout) {
                Ok(conn) => conn,
                Err(outcome) => {
                    return Finished {
                        outcome,
                        at: Instant::now(),
                    };
                }
            };
            if let Err(e) = conn.send(&req) {
                return Finished {
                    outcome: Outcome::Failed(format!("send: {e}")),
                    at: Instant::now(),
                };
            }
            let _ = tell.send(Instant::now());
            let outcome = conn.read_response(timeout);
            Finished {
                outcome,
                at: Instant::now(),
            }
        });
        Self { sent, handle }
    }

    /// Waits until the request is on the wire; `None` when it could not be
    /// sent within `timeout`.
    pub(crate) fn wait_sent(&self, timeout: Duration) -> Option<Instant> {
        self.sent.recv_timeout(timeout).ok()
    }

    /// Waits for the answer (the thread's own time-out bounds the wait).
    pub(crate) fn finish(self) -> Finished {
        self.handle.join().unwrap_or_else(|_| Finished {
            outcome: Outcome::Failed("the request thread panicked".into()),
            at: Instant::now(),
        })
    }
}

/// Waits at most `patience` for the exit; on time-out records a failure
/// that says how long the server ran after `since`, and kills it.
pub(crate) fn expect_exit(
    process: &mut Process,
    since: Instant,
    signal: &str,
    patience: Duration,
    seen: &mut Seen,
) -> Option<Exit> {
    if let Some(exit) = process.wait_exit(patience) {
        return Some(exit);
    }
    seen.fail(format!(
        "still running {} ms after {signal}; killed",
        ms(since.elapsed())
    ));
    process.kill();
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn failure_outweighs_not_applicable() {
        let mut seen = Seen::default();
        assert_eq!(seen.verdict(), Verdict::Pass);
        seen.not_applicable("no readiness path");
        assert_eq!(seen.verdict(), Verdict::NotApplicable);
        seen.fail("reset");
        assert_eq!(seen.verdict(), Verdict::Fail);
    }

    #[test]
    fn millisecond_figures() {
        assert_eq!(ms(Duration::from_micros(12_345)), "12.3");
        let now = Instant::now();
        let later = now + Duration::from_millis(5);
        assert_eq!(ms_since(later, now), "5.0");
        assert_eq!(ms_since(now, later), "-5.0");
    }
}
