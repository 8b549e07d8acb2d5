//! Conformance kit for graceful-shutdown HTTP servers: real processes, real
//! signals, real HTTP.
//!
//! The kit starts a server as a child process, talks HTTP/1.1 to it over
//! 127.0.0.1, sends it `SIGTERM`, `SIGINT` or `SIGKILL`, reads the events it
//! prints on standard output, collects its exit status and, for the order
//! scenarios, opens the SQLite file it wrote. It knows the server only
//! through the [`contract`], so it checks a server written in any language
//! with any runtime, as long as it speaks that contract.
//!
//! # The contract
//!
//! A target takes `--addr`, `--drain-timeout-ms`, `--unready-delay-ms`, the
//! `--cleanup*` options and `--store`; prints only the events `listening`,
//! `draining SIGNAL`, `closed`, `drained` or `abandoned N`,
//! `cleanup NAME RESULT` and `exit CODE`; answers `/sleep`, `/stream`,
//! `/health/ready`, `/health/live` and `POST /orders`; and shuts down by ten
//! rules: drain what is in progress, refuse new connections, answer 503 on
//! open ones, never wait for idle or half-sent connections, clean up last
//! registered first, exit at once on a second signal. The [`contract`]
//! module states it in full, with the bounds the kit holds a target to and
//! how the kit reads the points the contract leaves open.
//!
//! # Scenarios
//!
//! Every rule of the contract has at least one named [`Scenario`]. Running a
//! scenario against a [`Target`] gives a [`ScenarioReport`]: whether it
//! passed, the figures it measured (latencies in milliseconds, counts) and,
//! when it failed, what went wrong and the tail of the target's standard
//! error. The [`report`] module prints reports as a table or as JSON.
//!
//! The crate also ships two programs:
//!
//! - `graceful-conformance`, the command-line front end:
//!   `graceful-conformance [--scenario NAME]... [--json FILE] [--list] -- COMMAND [ARGS...]`
//!   runs the scenarios against any command, prints the table and exits 0
//!   when everything passed, 1 when something failed, 2 on a usage error.
//! - `graceful-conformance-fake`, a small thread-based server that speaks the
//!   contract, used by the kit's negative controls and handy to try the kit.
//!   By default it follows every rule, so it passes every scenario; with
//!   `--fault NAME` it breaks exactly one rule, and the scenario meant to
//!   catch that fault fails (`--list-faults` names them all).
//!
//! The building blocks are public too: [`process`] (the child-process
//! harness), [`http`] (the raw HTTP/1.1 client) and [`contract`] (the event
//! grammar).
//!
//! The kit links no server: graceful's own targets, one per adapter, are
//! programs like any other to it.
//!
//! # Examples
//!
//! Run every scenario against a server written in Python:
//!
//! ```no_run
//! use graceful_conformance::{Scenario, Target, report, run_scenario};
//!
//! let target = Target::new("python", "python3").arg("server.py");
//! let reports: Vec<_> = Scenario::all()
//!     .iter()
//!     .map(|scenario| run_scenario(&target, *scenario))
//!     .collect();
//! eprint!("{}", report::table(&target.name, &reports));
//! assert!(reports.iter().all(|r| r.passed));
//! ```
//!
//! Check a single rule:
//!
//! ```no_run
//! use graceful_conformance::{Scenario, Target, run_scenario};
//!
//! let target = Target::new("mine", "./target/release/my-server");
//! let scenario = Scenario::from_name("keepalive-503-during-drain").unwrap();
//! let report = run_scenario(&target, scenario);
//! for failure in &report.failures {
//!     eprintln!("{failure}");
//! }
//! ```

pub mod contract;
pub mod http;
pub mod process;
pub mod report;
mod scenario;
mod tmp;

pub use process::{Signal, Target};
pub use report::ScenarioReport;
pub use scenario::{Kind, Scenario, run_scenario, run_scenarios};
