//! `spawn_job` on tokio: the drain waits for a job to its end, not for one
//! that panicked, and the panic is counted.

use graceful_test_support::job;
use graceful_tokio::{Signal, spawn_job};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

#[tokio::test]
async fn the_drain_waits_for_a_job_and_not_for_one_that_panicked() {
    let driver = job::driver();
    let shutdown = driver.handle();
    let done = Arc::new(AtomicBool::new(false));
    let flag = done.clone();
    let _job = spawn_job(&shutdown, async move {
        tokio::time::sleep(Duration::from_millis(300)).await;
        flag.store(true, Ordering::SeqCst);
    })
    .unwrap();
    let _panics = spawn_job(&shutdown, async { panic!("the job broke") }).unwrap();
    let started = Instant::now();
    let _ = shutdown.request(Signal::TERM);
    let report = graceful_tokio::run(driver).await;
    let refused = spawn_job(&shutdown, async {}).is_err();
    job::waited_for_the_job_not_the_panic(&report, &shutdown, &done, refused, started);
}
