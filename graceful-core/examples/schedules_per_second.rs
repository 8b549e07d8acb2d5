//! How many schedules per second the simulation runs on this machine.
//!
//! Draws schedules from the default strategy and runs each one with a
//! handler that sleeps its work away and two cleanup steps, the shape of a
//! small service. Run it in release mode:
//!
//! ```sh
//! cargo run --release -p graceful-core --features testing --example schedules_per_second
//! ```
//!
//! An optional argument sets the number of schedules (default 20 000).

use graceful_core::Timer;
use graceful_core::testing::{Schedule, Sim};
use proptest::strategy::{Strategy, ValueTree};
use proptest::test_runner::TestRunner;
use std::process::ExitCode;
use std::time::{Duration, Instant};

fn main() -> ExitCode {
    let count = match std::env::args().nth(1).map(|n| n.parse::<u32>()) {
        None => 20_000,
        Some(Ok(n)) if n > 0 => n,
        Some(_) => {
            eprintln!("usage: schedules_per_second [COUNT], COUNT a positive number");
            return ExitCode::from(2);
        }
    };
    let strategy = proptest::arbitrary::any::<Schedule>();
    let mut runner = TestRunner::deterministic();
    let mut schedules = Vec::with_capacity(count as usize);
    for _ in 0..count {
        match strategy.new_tree(&mut runner) {
            Ok(tree) => schedules.push(tree.current()),
            Err(reason) => {
                eprintln!("cannot draw a schedule: {reason}");
                return ExitCode::FAILURE;
            }
        }
    }
    let started = Instant::now();
    let mut failed = 0u32;
    for schedule in schedules {
        let outcome = Sim::new(schedule)
            .drain_timeout(Duration::from_secs(2))
            .cleanup_timeout(Duration::from_millis(500))
            .setup(|cx| {
                for name in ["database", "cache"] {
                    let registered = cx.on_cleanup(name, || async { Ok::<_, std::io::Error>(()) });
                    if let Err(error) = registered {
                        cx.note(error.to_string());
                    }
                }
            })
            .handler(|cx, req| async move { cx.clock().sleep(req.work()).await })
            .run();
        if outcome.is_err() {
            failed += 1;
        }
    }
    let elapsed = started.elapsed();
    let rate = f64::from(count) / elapsed.as_secs_f64();
    eprintln!(
        "{count} schedules in {:.2} s: {rate:.0} schedules per second ({failed} broke an invariant)",
        elapsed.as_secs_f64()
    );
    if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    }
}
