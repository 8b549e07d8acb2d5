//! What a shutdown writes to the logs: one short line per phase and per
//! cleanup step, then the report, also after a forced exit.
//!
//! Lines go to standard error, each prefixed [`PREFIX`] (with the `tracing`
//! feature, as `tracing` events instead), unless the builder was told
//! [`quiet`](crate::Builder::quiet). Standard error, because the programs
//! this crate runs in often keep standard output for themselves (the
//! conformance targets print their contract lines there). The log is
//! written apart from the observer, which gets every event either way.
//!
//! A forced shutdown's line and report are written by the request that
//! forced it, at once: the program may exit right after, without polling
//! the driver again. So the driver writes no line for
//! [`Event::Forced`].

use crate::report::{Event, Report};
#[cfg(not(feature = "tracing"))]
use std::io::{self, Write};

/// What starts every line on standard error.
#[cfg(not(feature = "tracing"))]
pub(crate) const PREFIX: &str = "graceful: ";

/// Where a shutdown's log goes, and whether it is written at all.
#[derive(Debug, Default)]
pub(crate) struct Log {
    /// Nothing is written: [`Builder::quiet`](crate::Builder::quiet).
    pub(crate) quiet: bool,
    pub(crate) sink: Sink,
}

/// Where the lines go.
#[derive(Debug, Default)]
pub(crate) enum Sink {
    /// Standard error, or `tracing` with that feature: the default.
    #[default]
    Standard,
    /// Collected, for the tests of this module.
    #[cfg(test)]
    Capture(std::sync::Arc<std::sync::Mutex<Vec<String>>>),
}

impl Log {
    /// Logs one event of the driver (nothing for [`Event::Forced`], see the
    /// module's documentation).
    pub(crate) fn event(&self, event: &Event<'_>) {
        if self.quiet {
            return;
        }
        let Some(line) = line(event) else { return };
        match &self.sink {
            #[cfg(feature = "tracing")]
            Sink::Standard => crate::trace::event(event, &line),
            #[cfg(not(feature = "tracing"))]
            Sink::Standard => write(&line),
            #[cfg(test)]
            Sink::Capture(lines) => lines.lock().unwrap().push(line),
        }
    }

    /// Logs the report of a shutdown that finished normally.
    pub(crate) fn finished(&self, report: &Report) {
        if self.quiet {
            return;
        }
        let line = report_line(report);
        match &self.sink {
            #[cfg(feature = "tracing")]
            Sink::Standard => crate::trace::report(report, &line),
            #[cfg(not(feature = "tracing"))]
            Sink::Standard => write(&line),
            #[cfg(test)]
            Sink::Capture(lines) => lines.lock().unwrap().push(line),
        }
    }

    /// Logs that a background job panicked (see [`crate::job`]).
    pub(crate) fn job_panicked(&self, message: &str) {
        if self.quiet {
            return;
        }
        let line = format!("background job panicked: {message}");
        match &self.sink {
            #[cfg(feature = "tracing")]
            Sink::Standard => tracing::warn!("{line}"),
            #[cfg(not(feature = "tracing"))]
            Sink::Standard => write(&line),
            #[cfg(test)]
            Sink::Capture(lines) => lines.lock().unwrap().push(line),
        }
    }

    /// Logs that a request forced the shutdown, and its report.
    pub(crate) fn forced(&self, report: &Report) {
        if self.quiet {
            return;
        }
        let (forced, line) = (forced_line(report), report_line(report));
        match &self.sink {
            #[cfg(feature = "tracing")]
            Sink::Standard => {
                crate::trace::forced(report, &forced);
                crate::trace::report(report, &line);
            }
            #[cfg(not(feature = "tracing"))]
            Sink::Standard => {
                write(&forced);
                write(&line);
            }
            #[cfg(test)]
            Sink::Capture(lines) => lines.lock().unwrap().extend([forced, line]),
        }
    }
}

/// Writes one line on standard error, in one write. A failed write is
/// dropped: a log that cannot be written must not stop the shutdown (which
/// is why this is not `eprintln!`, which panics then).
#[cfg(not(feature = "tracing"))]
fn write(line: &str) {
    let line = format!("{PREFIX}{line}\n");
    let _ = io::stderr().lock().write_all(line.as_bytes());
}

/// The line for one event, without the prefix; `None` for the events that
/// have none ([`Event::Forced`]: see [`forced_line`]).
pub(crate) fn line(event: &Event<'_>) -> Option<String> {
    Some(match event {
        Event::Requested { cause } => format!("shutdown requested ({cause})"),
        Event::Draining => "draining: new work refused, listeners closing".to_owned(),
        Event::Closed => "listeners closed".to_owned(),
        Event::Drained => "drained".to_owned(),
        Event::Abandoned { in_flight } => format!("drain deadline: {in_flight} abandoned"),
        Event::StepFinished { step } => format!("cleanup {step}"),
        Event::Finished { exit_code } => format!("finished: exit {exit_code}"),
        Event::Forced { .. } => return None,
    })
}

/// The line of a forced shutdown, without the prefix.
pub(crate) fn forced_line(report: &Report) -> String {
    match report.forced_by() {
        Some(cause) => format!("forced ({cause}): exit {}", report.exit_code()),
        None => format!("exit {}", report.exit_code()),
    }
}

/// The report's line, without the prefix.
pub(crate) fn report_line(report: &Report) -> String {
    format!("report: {report}")
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use crate::{Builder, Driver, ManualClock, Request, Shutdown, Signal};
    use futures_lite::future::{block_on, poll_once};
    use std::sync::{Arc, Mutex};
    use std::time::Duration;

    type Lines = Arc<Mutex<Vec<String>>>;

    /// A driver whose log is collected, with a step that succeeds and one
    /// that fails.
    fn driver(build: impl FnOnce(Builder) -> Builder) -> (Driver, Lines) {
        let lines = Lines::default();
        let driver = build(Shutdown::builder().log_to(Sink::Capture(lines.clone())))
            .build()
            .unwrap();
        let shutdown = driver.handle();
        shutdown
            .on_cleanup_sync("db", || Ok::<_, String>(()))
            .unwrap();
        shutdown
            .on_cleanup_sync("cache", || Err::<(), _>("disk full"))
            .unwrap();
        (driver, lines)
    }

    fn taken(lines: &Lines) -> Vec<String> {
        std::mem::take(&mut *lines.lock().unwrap())
    }

    #[test]
    fn by_default_a_shutdown_is_logged_and_stderr_is_where() {
        let builder = Shutdown::builder();
        assert!(!builder.log.quiet);
        assert!(matches!(builder.log.sink, Sink::Standard));
        assert!(format!("{builder:?}").contains("quiet: false"));
    }

    #[test]
    fn one_line_per_phase_and_per_step_then_the_report() {
        let (driver, lines) = driver(|b| b);
        let shutdown = driver.handle();
        let _ = shutdown.request(Signal::TERM);
        let report = block_on(driver.run(ManualClock::new()));
        assert_eq!(
            taken(&lines),
            [
                "shutdown requested (SIGTERM)",
                "draining: new work refused, listeners closing",
                "listeners closed",
                "drained",
                "cleanup cache error: disk full in 0ns",
                "cleanup db ok in 0ns",
                "finished: exit 1",
                "report: shutdown on SIGTERM, drained (unready 0ns, closing 0ns, \
                 draining 0ns, cleanup 0ns); cache error: disk full in 0ns; \
                 db ok in 0ns; exit code 1",
            ]
        );
        assert_eq!(report_line(&report), format!("report: {report}"));
    }

    #[test]
    fn quiet_logs_nothing_and_the_observer_still_sees_every_event() {
        let seen = Lines::default();
        let sink = seen.clone();
        let (driver, lines) = driver(|b| {
            b.quiet()
                .on_event(move |event| sink.lock().unwrap().push(format!("{event:?}")))
        });
        let shutdown = driver.handle();
        let _ = shutdown.request(Signal::TERM);
        let mut run = driver.run(ManualClock::new());
        assert!(block_on(poll_once(&mut run)).is_some());
        let second = Shutdown::builder()
            .log_to(Sink::Capture(lines.clone()))
            .quiet()
            .build()
            .unwrap();
        let forced = second.handle();
        let _ = forced.request(Signal::TERM);
        assert_eq!(forced.request(Signal::INT), Request::Forced);
        assert!(taken(&lines).is_empty(), "quiet, also when forced");
        assert_eq!(seen.lock().unwrap().len(), 7, "{:?}", seen.lock().unwrap());
    }

    #[test]
    fn a_forced_shutdown_logs_its_report_at_once_without_the_run() {
        let (driver, lines) = driver(|b| b);
        let shutdown = driver.handle();
        let clock = ManualClock::new();
        let _guard = shutdown.enter().unwrap();
        let mut run = driver.run(clock.clone());
        let _ = shutdown.request(Signal::TERM);
        assert!(block_on(poll_once(&mut run)).is_none());
        clock.advance(Duration::from_secs(2));
        taken(&lines);
        // The second signal: the program may exit right after this call.
        assert_eq!(shutdown.request(Signal::INT), Request::Forced);
        let logged = taken(&lines);
        assert_eq!(
            logged,
            [
                "forced (SIGINT): exit 130",
                "report: shutdown on SIGTERM, forced by SIGINT, drain interrupted \
                 with 1 in flight (unready 0ns, closing 0ns, draining 2s, cleanup 0ns); \
                 cache skipped in 0ns; db skipped in 0ns; exit code 130",
            ]
        );
        // Polled again, the run returns the report that was logged, and logs
        // nothing more.
        let report = block_on(run);
        assert_eq!(logged[1], report_line(&report));
        assert!(taken(&lines).is_empty());
    }

    #[test]
    fn a_step_cut_by_the_grace_period_says_so() {
        let step = crate::report::StepReport {
            name: "db".into(),
            outcome: crate::StepOutcome::Timeout,
            duration: Duration::from_millis(1500),
            cut: true,
        };
        let event = Event::StepFinished { step: &step };
        assert_eq!(
            line(&event).unwrap(),
            "cleanup db timeout (cut by the grace period) in 1.5s"
        );
        let abandoned = Event::Abandoned { in_flight: 3 };
        assert_eq!(line(&abandoned).unwrap(), "drain deadline: 3 abandoned");
    }
}
