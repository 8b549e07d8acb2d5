//! `cargo xtask bench [--quick] [--figures 1,2,3,4,5,6] [--counts-only] [...]`:
//! the side-by-side benchmarks.
//!
//! Runs the `graceful-bench` runner in release mode, passing the arguments
//! through: it builds the targets (`cargo xtask targets`) and the peer
//! servers, measures every figure, prints the table and writes
//! `BENCHMARKS.md` and `BENCHMARKS.svg` at the workspace root. Figures 1
//! and 2 are judged on instruction counts under `valgrind --tool=callgrind`
//! (installed from Debian's packages when missing); `--counts-only` skips
//! their wall-clock half. Not part of the test run.

use crate::{Failure, cargo};

pub(crate) fn run(args: &[String]) -> Result<(), Failure> {
    let mut command: Vec<&str> = vec![
        "run",
        "--release",
        "--package",
        "graceful-bench",
        "--bin",
        "graceful-bench",
        "--",
    ];
    command.extend(args.iter().map(String::as_str));
    let status = cargo::cargo()
        .args(&command)
        .status()
        .map_err(|e| Failure::failed(format!("cannot run cargo: {e}")))?;
    match status.code() {
        Some(0) => Ok(()),
        // The runner's own usage error: it has said why.
        Some(2) => Err(Failure::usage("")),
        _ => Err(Failure::failed(format!("the benchmarks failed ({status})"))),
    }
}
