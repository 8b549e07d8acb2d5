//! The workspace's task runner: `cargo xtask TASK [ARGS]`.
//!
//! One module per task; this file only dispatches.
//!
//! - `cargo xtask targets`: build every conformance target in release mode,
//!   in one cargo invocation, and print `NAME PATH` per target (nothing else
//!   on stdout; progress on stderr).
//! - `cargo xtask conformance [--adapter NAME]... [--scenario NAME]... [--json FILE]`:
//!   build the targets and run the conformance kit against each, printing
//!   a table of scenarios × targets. `--adapter fake` runs the kit against
//!   its own fake target, which shows the kit working end to end.
//! - `cargo xtask bench [--quick] [--figures LIST]`: the side-by-side
//!   benchmarks; writes `BENCHMARKS.md` and `BENCHMARKS.svg`.
//! - `cargo xtask mutants [--list] [--timeout SECS] [--jobs N] [--file GLOB]... [-- ARGS...]`:
//!   mutation testing of graceful-core with cargo-mutants.
//! - `cargo xtask rollout [--adapter NAME]... [--lb haproxy|nginx]... [--instances N] [--clients N]
//!   [--unready-delay-ms N] [--replace-delay-ms N] [--controls] [--peers] [--json PATH]`:
//!   a rolling restart of each target's instances behind a real load
//!   balancer under steady load; prints what the clients saw (`--peers`:
//!   the benchmark's peers too, side by side).

mod bench;
mod cargo;
mod conformance;
mod mutants;
mod rollout;
mod targets;

use std::process::ExitCode;

const USAGE: &str = "\
usage: cargo xtask TASK [ARGS]

tasks:
  targets                      build the conformance targets (release) and print `NAME PATH` lines
  conformance [--adapter NAME]... [--scenario NAME]... [--json FILE]
                               build the targets and run the conformance kit against them;
                               adapters: tokio, smol, actix, and fake (the kit's own fake target)
  bench [--quick] [--figures 1,2,3,4,5,6]
                               the side-by-side benchmarks against the peers; writes
                               BENCHMARKS.md and BENCHMARKS.svg (not part of the tests)
  mutants [--list] [--timeout SECS] [--jobs N] [--file GLOB]... [-- ARGS...]
                               mutation testing of graceful-core with cargo-mutants (installed
                               when missing); results in target/mutants.out (not part of CI)
  rollout [--adapter NAME]... [--lb haproxy|nginx]... [--instances N] [--clients N] [--unready-delay-ms N]
          [--replace-delay-ms N] [--controls] [--peers] [--json PATH]
                               restart each target's instances one by one behind HAProxy and nginx
                               (installed when missing) under steady load; exit 1 on any failed
                               request, lost order or job, or unclean exit; --controls: its negative
                               controls; --peers: the benchmark's peers after the targets, reported
                               beside them";

/// A task's failure: a message and the exit code it deserves.
#[derive(Debug)]
pub(crate) struct Failure {
    pub(crate) message: String,
    pub(crate) code: u8,
}

impl Failure {
    /// A usage problem or a missing target: exit code 2.
    pub(crate) fn usage(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            code: 2,
        }
    }

    /// Something ran and failed: exit code 1.
    pub(crate) fn failed(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            code: 1,
        }
    }
}

fn main() -> ExitCode {
    let mut args = std::env::args().skip(1);
    let task = args.next();
    let rest: Vec<String> = args.collect();
    let result = match task.as_deref() {
        Some("targets") => targets::run(&rest),
        Some("conformance") => conformance::run(&rest),
        Some("bench") => bench::run(&rest),
        Some("mutants") => mutants::run(&rest),
        Some("rollout") => rollout::run(&rest),
        Some("help" | "--help" | "-h") => {
            eprintln!("{USAGE}");
            return ExitCode::SUCCESS;
        }
        Some(other) => Err(Failure::usage(format!("unknown task {other:?}\n{USAGE}"))),
        None => Err(Failure::usage(USAGE)),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => {
            if !failure.message.is_empty() {
                eprintln!("error: {}", failure.message);
            }
            ExitCode::from(failure.code)
        }
    }
}
