//! Real signals, sent to this test process: SIGTERM and SIGINT both start
//! the shutdown; a second one forces it, and `Signals` resolves with
//! `128 + N`. One test in its own binary, as a signal reaches every
//! listener of the process.

use actix_web::rt::time::timeout;
use graceful_actix::{Cause, Phase, Shutdown, Signal};
use std::process::Command;
use std::time::{Duration, Instant};

fn kill(signal: Signal) {
    let status = Command::new("kill")
        .arg(format!("-{}", signal.number()))
        .arg(std::process::id().to_string())
        .status()
        .expect("run kill");
    assert!(status.success(), "kill -{} failed", signal.number());
}

async fn eventually(what: &str, condition: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while !condition() {
        assert!(Instant::now() < deadline, "{what}: not within 10 s");
        actix_web::rt::time::sleep(Duration::from_millis(2)).await;
    }
}

#[actix_web::test]
async fn sigterm_and_sigint_start_the_shutdown_and_a_second_one_forces_it() {
    for (first, second, code) in [
        (Signal::TERM, Signal::INT, 130),
        (Signal::INT, Signal::TERM, 143),
    ] {
        // The driver is not run: the shutdown stays in its first phase
        // until the second signal forces it.
        let driver = Shutdown::builder().build().expect("build");
        let shutdown = driver.handle();
        let signals = graceful_actix::signals(&shutdown).expect("install the handlers");
        let forced = actix_web::rt::spawn(signals);

        kill(first);
        eventually("the first signal starts the shutdown", || {
            shutdown.cause() == Some(Cause::Signal(first))
        })
        .await;
        assert_eq!(
            shutdown.phase(),
            Phase::Unready,
            "{first} drains, it does not stop at once"
        );
        assert!(!shutdown.is_forced());

        kill(second);
        let exit_code = timeout(Duration::from_secs(10), forced)
            .await
            .expect("the second signal resolves `Signals`")
            .expect("the signals task");
        assert_eq!(exit_code, code);
        assert!(shutdown.is_forced());
        assert_eq!(shutdown.phase(), Phase::Finished);
        drop(driver);
    }
}
