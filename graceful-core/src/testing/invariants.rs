//! The invariants every schedule is checked against, whatever the code
//! under test.
//!
//! They are checked on what the simulation saw for itself (when it admitted
//! each request, when each task ended, when each step it wrapped started
//! and ended, which signals it delivered), and the driver's events and
//! report are held against that, not taken on trust: a broken driver, timer
//! or exit mapping is caught like a broken handler.

use super::outcome::Violation;
use super::sim::Settings;
use super::trace::{Log, StepEnd};
use crate::Report;
use std::time::Duration;

/// No request is admitted, and no guard granted, once draining began.
pub const NO_GUARD_AFTER_DRAINING: &str = "no guard after draining";

/// Every request admitted and every task spawned through the simulation
/// finishes before the exit, or is counted abandoned in the report; none
/// panics.
pub const NO_LOST_WORK: &str = "no lost work";

/// Each cleanup step registered through the simulation starts once, the last
/// registered first, only after the drain ended (drained, or abandoned no
/// sooner than the drain timeout), and is not cut short before its timeout;
/// unless a second signal forced the exit, every one of them runs.
pub const CLEANUP_AFTER_DRAIN: &str = "cleanup once, in reverse, after the drain";

/// The exit code is the policy's: `128 + N` when a second signal `N` forced
/// the exit, else 0 when everything drained and every step succeeded, else
/// 1.
pub const EXIT_POLICY: &str = "exit code follows the policy";

fn violation(out: &mut Vec<Violation>, invariant: &str, detail: String) {
    out.push(Violation {
        invariant: invariant.to_owned(),
        detail,
    });
}

fn ms(duration: Duration) -> String {
    format!("{}ms", duration.as_millis())
}

/// The tasks that did not end well, as the simulation saw them at the exit.
#[derive(Debug, Default)]
pub(super) struct Leftovers {
    /// Still running at the exit.
    pub(super) lost: Vec<String>,
    /// Panicked, with their messages.
    pub(super) panicked: Vec<(String, String)>,
}

pub(super) fn check(
    log: &Log,
    settings: &Settings,
    report: Option<&Report>,
    exit_code: Option<u8>,
    leftovers: &Leftovers,
) -> Vec<Violation> {
    let mut out = Vec::new();
    no_guard_after_draining(log, &mut out);
    if let Some(report) = report {
        no_lost_work(log, report, leftovers, &mut out);
        cleanup_after_drain(log, settings, &mut out);
        if let Some(code) = exit_code {
            exit_policy(log, report, code, &mut out);
        }
    }
    out
}

fn no_guard_after_draining(log: &Log, out: &mut Vec<Violation>) {
    let Some(draining) = log.draining else {
        return;
    };
    for (mark, id, guarded) in &log.admissions {
        if mark.index > draining.index {
            let how = if *guarded {
                "with a guard"
            } else {
                "without a guard"
            };
            violation(
                out,
                NO_GUARD_AFTER_DRAINING,
                format!(
                    "request {id} was admitted {how} at {}, after draining began at {}",
                    ms(mark.at),
                    ms(draining.at)
                ),
            );
        }
    }
    if let Some((mark, from, to)) = log.rise {
        violation(
            out,
            NO_GUARD_AFTER_DRAINING,
            format!(
                "requests in flight rose from {from} to {to} at {}, after draining began at {}: \
                 a guard was granted",
                ms(mark.at),
                ms(draining.at)
            ),
        );
    }
}

fn no_lost_work(log: &Log, report: &Report, leftovers: &Leftovers, out: &mut Vec<Violation>) {
    for (name, message) in &leftovers.panicked {
        violation(out, NO_LOST_WORK, format!("{name} panicked: {message}"));
    }
    if let Some(end) = log.drain_end {
        let counted = end.abandoned.unwrap_or(0);
        if end.open > counted {
            violation(
                out,
                NO_LOST_WORK,
                format!(
                    "the drain ended at {} with {} request(s) still running, but {counted} \
                     counted abandoned",
                    ms(end.mark.at),
                    end.open
                ),
            );
        }
    }
    if log.forced_by.is_some() {
        // A forced exit drops what is left by design.
        return;
    }
    let counted = report.abandoned();
    if leftovers.lost.len() > counted {
        violation(
            out,
            NO_LOST_WORK,
            format!(
                "{} still running at the exit, but the report counts {counted} abandoned: \
                 work was lost (spawned without a guard?)",
                leftovers.lost.join(", ")
            ),
        );
    }
}

fn cleanup_after_drain(log: &Log, settings: &Settings, out: &mut Vec<Violation>) {
    if let (Some(end), Some(abandoned)) = (log.drain_end, log.drain_end.and_then(|e| e.abandoned)) {
        // The drain deadline counts from the listeners' closing, or from
        // draining when they never closed.
        let since = log.closed.or(log.draining);
        if let Some(since) = since {
            let waited = end.mark.at.saturating_sub(since.at);
            if waited < settings.drain_timeout {
                violation(
                    out,
                    CLEANUP_AFTER_DRAIN,
                    format!(
                        "the drain was abandoned with {abandoned} in flight {} after it began, \
                         before the drain timeout of {}",
                        ms(waited),
                        ms(settings.drain_timeout)
                    ),
                );
            }
        }
    }
    let mut started: Vec<(usize, &str)> = Vec::new();
    for step in &log.steps {
        if step.starts > 1 {
            violation(
                out,
                CLEANUP_AFTER_DRAIN,
                format!("step `{}` started {} times", step.name, step.starts),
            );
        }
        let Some((index, at)) = step.started else {
            if log.forced_by.is_none() {
                violation(
                    out,
                    CLEANUP_AFTER_DRAIN,
                    format!("step `{}` never ran, and no second signal came", step.name),
                );
            }
            continue;
        };
        started.push((index, &step.name));
        match log.drain_end {
            Some(end) if end.mark.index < index => {}
            _ => violation(
                out,
                CLEANUP_AFTER_DRAIN,
                format!(
                    "step `{}` started at {}, before the drain ended",
                    step.name,
                    ms(at)
                ),
            ),
        }
        if let Some((ended, StepEnd::Dropped)) = step.ended
            && log.forced_by.is_none()
            && ended.saturating_sub(at) < settings.cleanup_timeout
        {
            violation(
                out,
                CLEANUP_AFTER_DRAIN,
                format!(
                    "step `{}` was dropped {} after it started, before its timeout of {}",
                    step.name,
                    ms(ended.saturating_sub(at)),
                    ms(settings.cleanup_timeout)
                ),
            );
        }
    }
    started.sort_unstable();
    let actual: Vec<&str> = started.iter().map(|(_, name)| *name).collect();
    let expected: Vec<&str> = log
        .steps
        .iter()
        .rev()
        .filter(|step| step.started.is_some())
        .map(|step| step.name.as_str())
        .collect();
    if actual != expected {
        violation(
            out,
            CLEANUP_AFTER_DRAIN,
            format!(
                "steps started in the order {actual:?}, not last registered first ({expected:?})"
            ),
        );
    }
}

fn exit_policy(log: &Log, report: &Report, code: u8, out: &mut Vec<Violation>) {
    let (expected, why) = if let Some(signal) = log.forced_by {
        (
            128 + signal.number(),
            format!("a second signal ({signal}) forced the exit"),
        )
    } else if let Some(n) = log.drain_end.and_then(|end| end.abandoned) {
        (1, format!("the drain was abandoned with {n} in flight"))
    } else if let Some(step) = log
        .steps
        .iter()
        .find(|step| !matches!(step.ended, Some((_, StepEnd::Ok))))
    {
        (1, format!("step `{}` did not succeed", step.name))
    } else if let Some(step) = report.steps().iter().find(|step| !step.outcome().is_ok()) {
        (
            1,
            format!("step `{}` ended {}", step.name(), step.outcome()),
        )
    } else if log.drain_end.is_none() {
        (1, "the drain never ended".to_owned())
    } else {
        (0, "everything drained and every step succeeded".to_owned())
    };
    if code != expected {
        violation(
            out,
            EXIT_POLICY,
            format!("exit code {code}, but the policy says {expected}: {why}"),
        );
    }
}
