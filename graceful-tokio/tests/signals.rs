//! Real signals to this test process. Alone in its binary: the handlers
//! that `signals` installs stay for the life of the process.
#![cfg(unix)]

use graceful_tokio::{Phase, Shutdown};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::low_level::raise;
use std::future::Future;
use std::io;
use std::time::Duration;

async fn bounded<F: Future>(future: F) -> F::Output {
    tokio::time::timeout(Duration::from_secs(10), future)
        .await
        .expect("took longer than the generous bound")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_first_signal_starts_the_shutdown_and_a_second_forces_it() {
    let driver = Shutdown::builder().build().unwrap();
    let shutdown = driver.handle();
    let (step_started, started) = tokio::sync::oneshot::channel();
    shutdown
        .on_cleanup("hangs", move || {
            let _ = step_started.send(());
            std::future::pending::<io::Result<()>>()
        })
        .unwrap();
    let signals = tokio::spawn(graceful_tokio::signals(&shutdown).unwrap());
    let run = tokio::spawn(graceful_tokio::run(driver));

    raise(SIGTERM).unwrap();
    bounded(shutdown.reached(Phase::Unready)).await;
    assert_eq!(
        shutdown.cause().map(|cause| cause.to_string()).as_deref(),
        Some("SIGTERM")
    );
    // The driver is stuck in the cleanup step: only a second signal ends it.
    bounded(started).await.unwrap();
    assert!(!signals.is_finished());
    assert!(!shutdown.is_forced());

    raise(SIGINT).unwrap();
    let exit_code = bounded(signals).await.unwrap();
    assert_eq!(exit_code, 130);
    assert!(shutdown.is_forced());
    let report = bounded(run).await.unwrap();
    assert_eq!(report.exit_code(), 130);
}
