//! `spawn_job` on smol's global executor: the drain waits for a job to its end, not for one
//! that panicked, and the panic is counted.

use graceful_smol::{Global, Signal, spawn_job};
use graceful_test_support::job;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

#[test]
fn the_drain_waits_for_a_job_and_not_for_one_that_panicked() {
    smol::block_on(test());
}

async fn test() {
    let driver = job::driver();
    let shutdown = driver.handle();
    let done = Arc::new(AtomicBool::new(false));
    let flag = done.clone();
    spawn_job(&Global, &shutdown, async move {
        smol::Timer::after(Duration::from_millis(300)).await;
        flag.store(true, Ordering::SeqCst);
    })
    .unwrap();
    spawn_job(&Global, &shutdown, async { panic!("the job broke") }).unwrap();
    let started = Instant::now();
    let _ = shutdown.request(Signal::TERM);
    let report = graceful_smol::run(driver).await;
    let refused = spawn_job(&Global, &shutdown, async {}).is_err();
    job::waited_for_the_job_not_the_panic(&report, &shutdown, &done, refused, started);
}
