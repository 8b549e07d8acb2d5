//! `tracing` events for each step of the shutdown (feature `tracing`).

use crate::report::{Event, StepOutcome};

pub(crate) fn event(event: &Event<'_>) {
    match *event {
        Event::Requested { cause } => tracing::info!(%cause, "shutdown requested"),
        Event::Draining => tracing::info!("draining: listeners closing, new work refused"),
        Event::Closed => tracing::info!("listeners closed"),
        Event::Drained => tracing::info!("drained: nothing in flight"),
        Event::Abandoned { in_flight } => {
            tracing::warn!(in_flight, "drain deadline passed, requests abandoned")
        }
        Event::StepFinished { step } => match step.outcome() {
            StepOutcome::Ok => {
                tracing::info!(step = step.name(), duration = ?step.duration(), "cleanup step ok")
            }
            outcome => {
                tracing::warn!(step = step.name(), duration = ?step.duration(), %outcome, "cleanup step failed")
            }
        },
        Event::Forced { cause, exit_code } => {
            tracing::warn!(%cause, exit_code, "shutdown forced")
        }
        Event::Finished { exit_code } => tracing::info!(exit_code, "shutdown finished"),
    }
}
