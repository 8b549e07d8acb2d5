//! Real signals to this test process. Alone in its binary: the handlers
//! that `signals` installs stay for the life of the process.
#![cfg(unix)]

use futures_lite::future;
use graceful_smol::{Phase, Shutdown};
use signal_hook::consts::{SIGINT, SIGTERM};
use signal_hook::low_level::raise;
use smol::Timer;
use std::future::Future;
use std::io;
use std::time::Duration;

async fn bounded<F: Future>(future: F) -> F::Output {
    future::or(future, async {
        Timer::after(Duration::from_secs(10)).await;
        panic!("took longer than the generous bound")
    })
    .await
}

#[test]
fn the_first_signal_starts_the_shutdown_and_a_second_forces_it() {
    let driver = Shutdown::builder().build().unwrap();
    let shutdown = driver.handle();
    let (step_started, started) = smol::channel::bounded(1);
    shutdown
        .on_cleanup("hangs", move || {
            let _ = step_started.try_send(());
            std::future::pending::<io::Result<()>>()
        })
        .unwrap();
    let signals = graceful_smol::signals(&shutdown).unwrap();

    // Installed when `signals` returns: a signal before the future is first
    // polled neither kills the process nor gets lost.
    raise(SIGTERM).unwrap();
    assert_eq!(shutdown.phase(), Phase::Running, "nothing polled yet");
    let signals = smol::spawn(signals);
    let run = smol::spawn(graceful_smol::run(driver));

    smol::block_on(async {
        bounded(shutdown.reached(Phase::Unready)).await;
        assert_eq!(
            shutdown.cause().map(|cause| cause.to_string()).as_deref(),
            Some("SIGTERM")
        );
        // The driver is stuck in the cleanup step: only a second signal
        // ends it.
        bounded(started.recv()).await.unwrap();
        assert!(!signals.is_finished());
        assert!(!shutdown.is_forced());

        raise(SIGINT).unwrap();
        let exit_code = bounded(signals).await;
        assert_eq!(exit_code, 130);
        assert!(shutdown.is_forced());
        let report = bounded(run).await;
        assert_eq!(report.exit_code(), 130);
    });
}
