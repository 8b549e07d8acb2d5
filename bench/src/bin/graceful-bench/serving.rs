//! Figure 2: requests per second of the hello route (`GET /health/live`)
//! with the adapter, against the same server without it, and against the
//! peers on the same runtime.
//!
//! The servers of one runtime are measured in interleaved rounds, so that
//! a slow patch of the machine falls on all of them alike; each server's
//! ratio is taken per round against the baseline's figure of the same
//! round. Each round starts every server afresh (so that no one process's
//! luck, such as where its memory landed, decides a figure) and takes them
//! in a rotated order (so that none is always first).

use crate::load;
use crate::server::{Kind, Running, Spec};
use crate::stats::Summary;
use nix::sched::{CpuSet, sched_getaffinity, sched_setaffinity};
use nix::unistd::Pid;

/// One server's rounds.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub(crate) server: String,
    /// The baseline it is compared to (itself, for a baseline).
    pub(crate) baseline: String,
    pub(crate) kind: Kind,
    /// Requests per second, one per round.
    pub(crate) rps: Vec<f64>,
    /// Its figure over the baseline's, one per round.
    pub(crate) ratios: Vec<f64>,
    /// The server's CPU time per request, in microseconds, one per round.
    pub(crate) cpu_us: Vec<f64>,
    /// Its CPU per request over the baseline's, one per round.
    pub(crate) cpu_ratios: Vec<f64>,
    /// Non-200 responses and failed connections over all rounds.
    pub(crate) other: u64,
    pub(crate) errors: u64,
    /// Why it has no figure, if it has none.
    pub(crate) failure: Option<String>,
}

impl Row {
    pub(crate) fn rps(&self) -> Option<Summary> {
        Summary::of(&self.rps)
    }

    pub(crate) fn ratio(&self) -> Option<Summary> {
        Summary::of(&self.ratios)
    }

    pub(crate) fn cpu_us(&self) -> Option<Summary> {
        Summary::of(&self.cpu_us)
    }

    pub(crate) fn cpu_ratio(&self) -> Option<Summary> {
        Summary::of(&self.cpu_ratios)
    }
}

/// Measures `group`: its baseline first, then the others, in `rounds`
/// interleaved rounds.
pub(crate) fn measure(
    baseline: &Spec,
    others: &[&Spec],
    rounds: usize,
    config: &load::Config,
) -> Vec<Row> {
    let specs: Vec<&Spec> = std::iter::once(baseline)
        .chain(others.iter().copied())
        .collect();
    let mut rows: Vec<Row> = specs
        .iter()
        .map(|spec| Row {
            server: spec.name.clone(),
            baseline: baseline.name.clone(),
            kind: spec.kind,
            rps: Vec::new(),
            ratios: Vec::new(),
            cpu_us: Vec::new(),
            cpu_ratios: Vec::new(),
            other: 0,
            errors: 0,
            failure: None,
        })
        .collect();
    let split = Split::of_this_machine();
    for round in 0..rounds {
        let mut measured: Vec<Option<load::Measured>> = vec![None; specs.len()];
        for k in 0..specs.len() {
            let i = (k + round) % specs.len();
            if rows[i].failure.is_some() {
                continue;
            }
            let outcome =
                on_cpus(&split.server, || Running::start(specs[i])).and_then(|mut server| {
                    let result = on_cpus(&split.load, || {
                        load::run(server.addr(), config, &|| server.cpu_ns())
                    })
                    .map_err(|error| server.failure(&format!("load: {error}")));
                    // Killed when dropped: nothing of it is measured any more.
                    drop(server);
                    result
                });
            match outcome {
                Ok(m) => {
                    eprintln!(
                        "  round {}/{rounds}  {:<24} {:>8.0} req/s {:>7.2} µs CPU/request",
                        round + 1,
                        rows[i].server,
                        m.rps,
                        m.cpu_us.unwrap_or(f64::NAN)
                    );
                    measured[i] = Some(m);
                }
                Err(error) => {
                    eprintln!("  {error}");
                    rows[i].failure = Some(error);
                }
            }
        }
        let base = measured[0];
        for (row, m) in rows.iter_mut().zip(&measured) {
            let Some(m) = m else { continue };
            row.rps.push(m.rps);
            row.other += m.other;
            row.errors += m.errors;
            if let Some(base) = base.map(|b| b.rps).filter(|b| *b > 0.0) {
                row.ratios.push(m.rps / base);
            }
            if let Some(cpu) = m.cpu_us {
                row.cpu_us.push(cpu);
                if let Some(base) = base.and_then(|b| b.cpu_us).filter(|b| *b > 0.0) {
                    row.cpu_ratios.push(cpu / base);
                }
            }
        }
    }
    rows
}

/// Which CPUs the server and the load generator run on: the last one for
/// the load generator, the others for the server, so that neither takes
/// CPU time from the other (on two cores: one each). `None` where there is
/// only one, or the affinity cannot be read.
#[derive(Debug)]
pub(crate) struct Split {
    pub(crate) server: Option<CpuSet>,
    pub(crate) load: Option<CpuSet>,
}

impl Split {
    pub(crate) fn of_this_machine() -> Split {
        let none = Split {
            server: None,
            load: None,
        };
        let Ok(mine) = sched_getaffinity(Pid::from_raw(0)) else {
            return none;
        };
        let cpus: Vec<usize> = (0..CpuSet::count())
            .filter(|&cpu| mine.is_set(cpu).unwrap_or(false))
            .collect();
        let Some((&last, rest)) = cpus.split_last() else {
            return none;
        };
        if rest.is_empty() {
            return none;
        }
        let mut server = CpuSet::new();
        let mut load = CpuSet::new();
        for &cpu in rest {
            if server.set(cpu).is_err() {
                return none;
            }
        }
        if load.set(last).is_err() {
            return none;
        }
        Split {
            server: Some(server),
            load: Some(load),
        }
    }
}

impl Split {
    /// The same with the server on the first of its CPUs only.
    pub(crate) fn with_one_server_cpu(self) -> Split {
        let server = self.server.and_then(|cpus| {
            let first = (0..CpuSet::count()).find(|&cpu| cpus.is_set(cpu).unwrap_or(false))?;
            let mut one = CpuSet::new();
            one.set(first).ok()?;
            Some(one)
        });
        Split { server, ..self }
    }
}

/// Runs `f` with this thread on `cpus` (when given), then puts it back. A
/// process started meanwhile keeps that affinity, and so do its threads.
pub(crate) fn on_cpus<T>(cpus: &Option<CpuSet>, f: impl FnOnce() -> T) -> T {
    let this = Pid::from_raw(0);
    let before = cpus.as_ref().and_then(|cpus| {
        let before = sched_getaffinity(this).ok()?;
        sched_setaffinity(this, cpus).ok()?;
        Some(before)
    });
    let result = f();
    if let Some(before) = before {
        let _ = sched_setaffinity(this, &before);
    }
    result
}
