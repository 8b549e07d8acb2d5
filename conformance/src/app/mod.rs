//! App mode: the checks every HTTP server owes its users at `SIGTERM` and
//! `SIGINT`, on a server that does not speak the target contract.
//!
//! The [contract](crate::contract) asks a lot of a server: its options, its
//! event lines, its endpoints. A user's own service has none of that. App
//! mode asks only for what any server has: the command that starts it, how
//! it is told its port, and one request that takes a while. It then checks,
//! from outside (HTTP on loopback, signals, the exit status and the clock),
//! the rules of the contract that make sense for every server:
//!
//! | check | rule |
//! | --- | --- |
//! | `start` | the server starts and the slow request comes back whole |
//! | `inflight-sigterm`, `inflight-sigint` | requests in flight at the signal complete with whole bodies |
//! | `refused-not-reset` | once it stops accepting, new connections are refused, none is reset |
//! | `keepalive-during-drain` | a request on an open keep-alive connection during the drain is answered (`503` + `Connection: close`, or served), not reset or dropped |
//! | `idle-keepalive-exit` | idle keep-alive connections do not delay the exit |
//! | `half-sent-exit` | half-sent request heads do not delay the exit |
//! | `readiness-first` | the readiness path fails before accepting stops, and accepting lasts the unready delay |
//! | `clean-exit` | the exit status is 0 after a clean drain, soon after the last response |
//! | `second-signal` | a second signal ends the process within 500 ms |
//! | `load-at-sigterm` | under steady load at `SIGTERM`, no request is reset or truncated |
//!
//! Each check starts the server afresh and ends with a [`Verdict`]: pass,
//! fail with what was seen, or not applicable with why (no readiness path
//! was given; the slow request is too short to hold the drain open). The
//! bounds are [`Bounds`], the contract's values by default.
//!
//! # Telling app mode about the server
//!
//! - **The command**, after `--`. `{port}` and `{addr}` in its words become
//!   a free loopback port and `127.0.0.1:PORT`; `--port-env PORT` also puts
//!   the port in the environment; `--addr HOST:PORT` is for a server that
//!   always listens on one address. The command must be the server itself
//!   (or `exec` it), since that is the process the signals go to.
//! - **A slow request**, `--slow`: `/sleep?ms={ms}` when the server has an
//!   endpoint told how long to take (the best: every check can hold the
//!   drain open as long as it needs), or any request that takes a while,
//!   `POST /orders` with `--slow-body`.
//! - **Optionally** a readiness path (`--ready /health/ready`) and its
//!   unready delay (`--unready-delay-ms`), and a quick path for the
//!   keep-alive checks (`--probe`, default `/`; any status will do).
//!
//! # Why these checks and not others
//!
//! Everything the contract says about event lines, cleanup steps and the
//! SQLite store is invisible from outside a server that does not print
//! them, and `503` with `Retry-After` is one good answer on a keep-alive
//! connection during the drain, not the only one: a server that serves the
//! request, or answers and closes, loses nothing. What every server must
//! not do is lose a request it could have answered: cut one off, reset a
//! connection, close an idle connection under a client that is about to use
//! it, or keep the process alive for clients that are not doing anything.
//!
//! # Examples
//!
//! ```no_run
//! use graceful_conformance::app::{self, Options, Reach, SlowRequest};
//!
//! let options = Options::new(
//!     "mine",
//!     vec!["./target/release/my-server".into(), "--listen".into(), "{addr}".into()],
//!     Reach::Placeholder,
//!     SlowRequest::parse("/sleep?ms={ms}").unwrap(),
//! );
//! let reports = app::run(&options, app::Check::all(), |_| {});
//! print!("{}", app::report::table(&options.name, &reports));
//! assert!(app::report::passed(&reports));
//! ```

mod check;
mod checks;
pub mod cli;
mod load;
mod observe;
mod options;
pub mod report;
mod server;

use std::panic::{self, AssertUnwindSafe};
use std::time::Instant;

pub use check::{Check, CheckReport, Verdict};
pub use options::{Bounds, Options, OptionsError, Reach, SlowRequest};

/// Runs `checks` against the server `options` describes, one fresh start
/// each, calling `each` with every report as it comes. `start` always runs
/// first (it measures the slow request); when it fails, nothing else runs.
pub fn run(
    options: &Options,
    checks: &[Check],
    mut each: impl FnMut(&CheckReport),
) -> Vec<CheckReport> {
    let mut ctx = checks::Context::new(options);
    let mut reports = Vec::new();
    let began = Instant::now();
    let (seen, stderr, measured) =
        guarded(|| checks::start(&ctx), |seen| (seen, String::new(), None));
    let start = finish(Check::Start, seen, stderr, began);
    each(&start);
    let started = !start.failed();
    reports.push(start);
    if !started {
        return reports;
    }
    if let Some((took, request, body)) = measured {
        ctx.slow_took = took;
        ctx.reference = Some((request, body));
    }
    for &check in checks.iter().filter(|c| **c != Check::Start) {
        let began = Instant::now();
        let (seen, stderr) = guarded(|| checks::run(&ctx, check), |seen| (seen, String::new()));
        let report = finish(check, seen, stderr, began);
        each(&report);
        reports.push(report);
    }
    reports
}

/// `f`'s result, or, when the kit itself panics, a failure made by
/// `on_panic` (a bug in a check must not pass for the server's success).
fn guarded<T>(f: impl FnOnce() -> T, on_panic: impl FnOnce(observe::Seen) -> T) -> T {
    panic::catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|payload| {
        let why = payload
            .downcast_ref::<&str>()
            .map(|s| (*s).to_owned())
            .or_else(|| payload.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "a panic".to_owned());
        let mut seen = observe::Seen::default();
        seen.fail(format!("the check itself failed: {why}"));
        on_panic(seen)
    })
}

fn finish(check: Check, seen: observe::Seen, stderr: String, began: Instant) -> CheckReport {
    let verdict = seen.verdict();
    CheckReport {
        check,
        verdict,
        figures: seen.figures,
        findings: seen.findings,
        elapsed: began.elapsed(),
        stderr_tail: if verdict == Verdict::Fail {
            stderr
        } else {
            String::new()
        },
    }
}
