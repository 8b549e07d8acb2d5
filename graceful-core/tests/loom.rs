//! Loom models of the guard counter, the listener count and the wake-ups
//! that end the drain. Run with:
//!
//! ```text
//! RUSTFLAGS="--cfg loom" cargo test -p graceful-core --test loom --release
//! ```
//!
//! Each model runs the real driver with `loom::future::block_on`; a lost
//! wake-up leaves it waiting forever, which loom reports as a deadlock.

#![cfg(loom)]
#![allow(missing_docs, clippy::print_stdout)]

use graceful_core::{DrainOutcome, ManualClock, Request, Shutdown, Signal};
use loom::future::block_on;
use loom::thread;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Runs `f` under loom and prints how many interleavings were explored.
fn model(name: &str, f: impl Fn() + Sync + Send + 'static) {
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    RUNS.store(0, Ordering::SeqCst);
    loom::model(move || {
        RUNS.fetch_add(1, Ordering::SeqCst);
        f();
    });
    println!("loom {name}: {} interleavings", RUNS.load(Ordering::SeqCst));
}

#[test]
fn last_guard_drops_while_draining_starts() {
    model("last guard vs draining", || {
        let driver = Shutdown::builder().quiet().build().unwrap();
        let shutdown = driver.handle();
        let guard = shutdown.enter_owned().unwrap();
        let request = thread::spawn(move || drop(guard));
        let _ = shutdown.request(Signal::TERM);
        let report = block_on(driver.run(ManualClock::new()));
        assert_eq!(report.drain(), DrainOutcome::Drained);
        assert_eq!(report.exit_code(), 0);
        request.join().unwrap();
    });
}

#[test]
fn no_guard_is_granted_once_draining_began() {
    model("enter vs draining", || {
        let driver = Shutdown::builder().quiet().build().unwrap();
        let shutdown = driver.handle();
        let worker = shutdown.clone();
        let request = thread::spawn(move || {
            if let Ok(guard) = worker.enter() {
                // Granted, so the drain cannot have ended yet.
                assert_ne!(worker.phase(), graceful_core::Phase::Finished);
                assert_eq!(worker.in_flight(), 1);
                drop(guard);
            }
        });
        let _ = shutdown.request(Signal::TERM);
        let report = block_on(driver.run(ManualClock::new()));
        assert_eq!(report.drain(), DrainOutcome::Drained);
        request.join().unwrap();
    });
}

#[test]
fn listener_closes_while_draining_starts() {
    model("listener close vs draining", || {
        let driver = Shutdown::builder().quiet().build().unwrap();
        let shutdown = driver.handle();
        let token = shutdown.track_listener().unwrap();
        let listener = thread::spawn(move || drop(token));
        let _ = shutdown.request(Signal::TERM);
        let report = block_on(driver.run(ManualClock::new()));
        assert_eq!(report.exit_code(), 0);
        listener.join().unwrap();
    });
}

#[test]
fn a_second_request_always_decides_the_exit_code() {
    model("second request vs finishing", || {
        let driver = Shutdown::builder().quiet().build().unwrap();
        let shutdown = driver.handle();
        let _ = shutdown.request(Signal::TERM);
        let second = shutdown.clone();
        let signal = thread::spawn(move || second.request(Signal::INT));
        let report = block_on(driver.run(ManualClock::new()));
        let forced = signal.join().unwrap() == Request::Forced;
        assert_eq!(report.exit_code(), if forced { 130 } else { 0 });
    });
}
