//! The log as `tracing` events (feature `tracing`): the lines of
//! [`crate::log`] as their messages, with the numbers as fields, at `warn`
//! for what went wrong and `info` otherwise.

use crate::report::{Event, Report};

/// One event of the driver, `line` being its log line.
pub(crate) fn event(event: &Event<'_>, line: &str) {
    match *event {
        Event::Requested { cause } => tracing::info!(%cause, "{line}"),
        Event::Abandoned { in_flight } => tracing::warn!(in_flight, "{line}"),
        Event::StepFinished { step } if step.outcome().is_ok() => {
            tracing::info!(step = step.name(), duration = ?step.duration(), "{line}")
        }
        Event::StepFinished { step } => tracing::warn!(
            step = step.name(),
            duration = ?step.duration(),
            outcome = step.outcome().as_str(),
            cut_by_grace_period = step.cut_by_grace_period(),
            "{line}"
        ),
        Event::Finished { exit_code } | Event::Forced { exit_code, .. } => {
            tracing::info!(exit_code, "{line}")
        }
        Event::Draining | Event::Closed | Event::Drained => tracing::info!("{line}"),
    }
}

/// The report at the end, `line` being its log line.
pub(crate) fn report(report: &Report, line: &str) {
    let exit_code = report.exit_code();
    if exit_code == 0 {
        tracing::info!(exit_code, "{line}");
    } else {
        tracing::warn!(exit_code, "{line}");
    }
}

/// The line of a forced shutdown.
pub(crate) fn forced(report: &Report, line: &str) {
    tracing::warn!(exit_code = report.exit_code(), "{line}");
}
