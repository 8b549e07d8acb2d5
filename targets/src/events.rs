//! Standard output and standard error: the contract's lines, and the logs.
//!
//! Standard output carries the contract's lines and nothing else, one a
//! line, each flushed at once and written through the one stdout lock, so
//! that two tasks never interleave a line: [`say`] for any line,
//! [`print_event`] (the [`event_line`] of each core [`Event`]) as the
//! shutdown's observer, and [`exit`], which prints `exit CODE` and ends the
//! process while it holds the lock, so that its line is the last one.
//! Everything else is a log on standard error, under the target's name
//! ([`log`]).

use graceful_core::{Cause, Event, Report};
use std::fmt;
use std::io::{self, Write};
use std::sync::OnceLock;

/// The target's name, for its usage errors and its logs; set once, by
/// [`Options::parse`](crate::Options::parse).
static NAME: OnceLock<&'static str> = OnceLock::new();

/// Names the process; the first name given stays.
pub(crate) fn set_name(name: &'static str) {
    let _ = NAME.set(name);
}

/// The target's name, `target` until it is named.
pub(crate) fn name() -> &'static str {
    NAME.get().copied().unwrap_or("target")
}

/// Writes one line on standard error, after the target's name.
pub fn log(message: impl fmt::Display) {
    eprintln!("{}: {message}", name());
}

/// Prints one contract line, flushed, through the one stdout lock.
pub fn say(line: fmt::Arguments<'_>) {
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "{line}").and_then(|()| out.flush());
}

/// The contract's line for an event, if it has one: `draining SIGNAL`
/// (`upgrade PID` for an upgrade's hand-over), `closed`, `drained`, `abandoned N`, `cleanup NAME RESULT`.
///
/// The other events have none: `exit CODE` is printed by whoever ends the
/// process ([`exit`]).
pub fn event_line(event: &Event<'_>) -> Option<String> {
    match event {
        // An upgrade's hand-over: rule 24's line instead of `draining`.
        Event::Requested {
            cause: Cause::Upgrade { pid },
        } => Some(format!("upgrade {pid}")),
        Event::Requested { cause } => Some(format!("draining {cause}")),
        Event::Closed => Some("closed".to_owned()),
        Event::Drained => Some("drained".to_owned()),
        Event::Abandoned { in_flight } => Some(format!("abandoned {in_flight}")),
        Event::StepFinished { step } => Some(format!(
            "cleanup {} {}",
            step.name(),
            step.outcome().as_str()
        )),
        _ => None,
    }
}

/// The shutdown's observer: prints each event's [`event_line`], and logs
/// why a cleanup step did not end `ok`.
pub fn print_event(event: &Event<'_>) {
    if let Event::StepFinished { step } = event
        && !step.outcome().is_ok()
    {
        log(format_args!("cleanup {}: {}", step.name(), step.outcome()));
    }
    if let Some(line) = event_line(event) {
        say(format_args!("{line}"));
    }
}

/// Prints `exit CODE` and exits with CODE. The stdout lock is kept until
/// the process is gone, so that nothing prints after this line, and a
/// second caller (the driver and the signal task can race to a forced exit)
/// never prints a second one.
pub fn exit(code: u8) -> ! {
    let mut out = io::stdout().lock();
    let _ = writeln!(out, "exit {code}").and_then(|()| out.flush());
    std::process::exit(code.into())
}

/// [`exit`]s with the code of the shutdown's report. The core has already
/// logged the report on standard error.
pub fn exit_with(report: &Report) -> ! {
    exit(report.exit_code())
}

/// A start-up failure that is not a usage error, such as a failed bind:
/// the reason on standard error, then `exit 1`.
pub fn fail(reason: impl fmt::Display) -> ! {
    log(reason);
    exit(1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::lines_of;
    use graceful_core::Signal;

    #[test]
    fn events_print_as_the_contract_says() {
        let lines = lines_of(|shutdown| {
            shutdown
                .on_cleanup_sync("db", || Ok::<(), io::Error>(()))
                .unwrap();
            shutdown
                .on_cleanup_sync("cache", || Err(io::Error::other("no")))
                .unwrap();
            let _ = shutdown.request(Signal::TERM);
        });
        assert_eq!(
            lines,
            [
                "draining SIGTERM",
                "closed",
                "drained",
                "cleanup cache error",
                "cleanup db ok"
            ]
        );
    }

    #[test]
    fn an_abandoned_drain_prints_how_many() {
        let lines = lines_of(|shutdown| {
            let guards = [
                shutdown.enter_owned().unwrap(),
                shutdown.enter_owned().unwrap(),
            ];
            let _ = shutdown.request(Signal::INT);
            guards
        });
        assert_eq!(lines, ["draining SIGINT", "closed", "abandoned 2"]);
    }
}
