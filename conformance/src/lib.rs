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
//! Version 2 of the contract adds, among others, long-lived streams
//! (`GET /events`, server-sent events, and `GET /ws`, a WebSocket echo,
//! which end at `closed` with `retry: 1000` and a Close frame 1001) and
//! background jobs (`POST /jobs`, in progress from their `202` until their
//! row is committed): rules 17 to 22, each with its scenarios.
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
//! # gRPC (feature `grpc`)
//!
//! A target may also serve gRPC on its port (HTTP/2 with prior knowledge):
//! the standard health service and the contract's `graceful.contract.v1.Contract`
//! (`Sleep`, a unary call that waits; `Ticks`, a server stream that never
//! ends by itself). Its shutdown then owes gRPC clients what it owes HTTP
//! ones, in gRPC's terms: health turns `NOT_SERVING` for every service at
//! the first signal, and an open health `Watch` is told so at once and ends
//! with status `OK` once the listener is closed; calls in progress at the
//! signal complete; a `Ticks` stream keeps ticking through the unready delay
//! and ends at `closed` with `UNAVAILABLE`, so its client retries elsewhere;
//! and clients that stay silent (no preface, or a preface and then no
//! answer to the server's PING) never hold the exit. The scenarios of
//! [`GrpcScenario`] check exactly that with tonic's client
//! ([`grpc`]); they are not among [`Scenario::all`], since only targets that
//! serve gRPC owe them (of graceful's, the tokio target). Run one with
//! [`run_grpc_scenario`].
//! The HTTP/2 scenarios (`h2c-served`, `h2-*`) speak h2c through [`h2`], a
//! small blocking frame-level client; the fake serves h2c on the same port
//! with the same frame code. The TLS scenarios (`tls-*`) use [`tls`]: a
//! self-signed pair the kit writes, and a blocking rustls client; the fake
//! terminates TLS in front of its plaintext server.
//!
//! # Check your own server
//!
//! A server that does not speak the contract (a user's own service, in any
//! language) is checked by [`app`] mode: `graceful-conformance app` is told
//! the command that starts the server, how to give it a port, and one
//! request that takes a while; it then checks, from outside only, the rules
//! every HTTP server owes its users at `SIGTERM` and `SIGINT` (requests in
//! flight complete, new connections are refused rather than reset, open
//! keep-alive connections are answered during the drain, idle and half-sent
//! connections do not hold the exit, readiness flips first, the exit status
//! is 0, a second signal ends it, no request is lost under load):
//!
//! ```text
//! graceful-conformance app --slow '/sleep?ms={ms}' --ready /health/ready \
//!     --unready-delay-ms 1000 --json conformance.json -- ./target/release/my-server --listen {addr}
//! ```
//!
//! It prints a table, writes `--json FILE`, ends with one summary line and
//! exits 0 when no check failed, 1 when one did and 2 on a usage error. In
//! CI, a GitHub Actions job:
//!
//! ```yaml
//! shutdown-conformance:
//!   runs-on: ubuntu-latest
//!   steps:
//!     - uses: actions/checkout@v4
//!     - run: cargo build --release --bin my-server
//!     - run: cargo install graceful-conformance --locked
//!     - run: >
//!         graceful-conformance app --slow '/sleep?ms={ms}' --ready /health/ready
//!         --json conformance.json -- ./target/release/my-server --listen {addr}
//!     - uses: actions/upload-artifact@v4
//!       if: always()
//!       with: { name: conformance, path: conformance.json }
//! ```
//!
//! or a plain shell step (`set -e` makes a failed check fail the build):
//!
//! ```text
//! set -e
//! make server                     # however the server is built
//! graceful-conformance app --port-env PORT --slow 'POST /orders' --slow-body 'order-{n}' \
//!     -- ./bin/server
//! ```
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

pub mod app;
pub mod contract;
#[cfg(feature = "grpc")]
pub mod grpc;
pub mod h2;
pub mod http;
pub mod process;
pub mod report;
mod scenario;
pub mod tls;
mod tmp;

pub use process::{Signal, Target};
pub use report::ScenarioReport;
#[cfg(feature = "grpc")]
pub use scenario::{GrpcScenario, run_grpc_scenario};
pub use scenario::{Kind, Scenario, run_scenario, run_scenarios};
