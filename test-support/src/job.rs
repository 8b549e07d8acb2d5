//! The checks of the jobs tests: the drain waits for a job to its end, not
//! for one that panicked.

use graceful_core::{DrainOutcome, Driver, Report, Shutdown};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The driver of a jobs test: quiet, with a 30 s drain timeout.
pub fn driver() -> Driver {
    Shutdown::builder()
        .quiet()
        .drain_timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// After `run`, with one job that sets `done` after 300 ms and one that
/// panicked, `TERM` requested at `started`: the drain waited for the job
/// (`done` set, `Drained`, exit 0), one panic is counted, a job spawned
/// now was `refused` (draining), and the deadline did not hold the drain.
pub fn waited_for_the_job_not_the_panic(
    report: &Report,
    shutdown: &Shutdown,
    done: &AtomicBool,
    refused: bool,
    started: Instant,
) {
    assert!(done.load(Ordering::SeqCst), "the drain waited for the job");
    assert_eq!(report.drain(), DrainOutcome::Drained);
    assert_eq!(report.exit_code(), 0);
    assert_eq!(shutdown.job_panics(), 1);
    assert!(refused, "refused once draining");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "not held to the deadline"
    );
}
