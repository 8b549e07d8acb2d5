//! Runtime-agnostic graceful shutdown: the drain state machine, in-flight
//! guards, the cleanup stack and the exit-code policy that every `graceful`
//! adapter shares.
//!
//! On `SIGTERM` a server must stop accepting new work, let the work in
//! flight finish, release its resources in the reverse order it acquired
//! them, and exit with a meaningful code before the orchestrator's
//! `SIGKILL`. This crate holds that logic once, with no runtime underneath:
//! time comes in through the [`Timer`] trait and signals through
//! [`Shutdown::request`], both supplied by the adapters (`graceful-tokio`,
//! `graceful-smol`, `graceful-actix`).
//!
//! A shutdown walks forward through its [`Phase`]s:
//!
//! | phase | readiness | new work | entered when |
//! | --- | --- | --- | --- |
//! | [`Running`](Phase::Running) | ready | accepted | at start |
//! | [`Unready`](Phase::Unready) | not ready | accepted | the first request |
//! | [`Draining`](Phase::Draining) | not ready | refused (503) | the unready delay ends |
//! | [`CleaningUp`](Phase::CleaningUp) | not ready | refused | drained, or the drain deadline |
//! | [`Finished`](Phase::Finished) | not ready | refused | cleanup ended, or a second request |
//!
//! - [`Shutdown`] is the cheap, cloneable handle: [`enter`](Shutdown::enter)
//!   counts a request in flight until its [`Guard`] drops,
//!   [`on_cleanup`](Shutdown::on_cleanup) registers a named step,
//!   [`request`](Shutdown::request) starts (or, the second time, forces) the
//!   shutdown.
//! - [`Driver`] runs it: [`Driver::run`] resolves to a [`Report`] whose
//!   [`exit_code`](Report::exit_code) is 0 when everything drained and every
//!   step succeeded, 1 when the deadline passed or a step failed, and
//!   `128 + N` when a second signal `N` forced the exit.
//! - [`ManualClock`] is a [`Timer`] on virtual time, for deterministic tests
//!   of your own shutdown races.
//!
//! # Examples
//!
//! ```
//! use graceful_core::{Event, ManualClock, Shutdown, Signal};
//! use futures_lite::future::{block_on, poll_once};
//! use std::time::Duration;
//!
//! let driver = Shutdown::builder()
//!     .drain_timeout(Duration::from_secs(10))
//!     .on_event(|event| eprintln!("{event:?}"))
//!     .build()?;
//! let shutdown = driver.handle();
//!
//! // Resources register their cleanup as they are acquired...
//! shutdown.on_cleanup("database", || async { Ok::<_, std::io::Error>(()) })?;
//! shutdown.on_cleanup("cache", || async { Ok::<_, std::io::Error>(()) })?;
//!
//! // ...and each request holds a guard while it runs.
//! let guard = shutdown.enter()?;
//!
//! let clock = ManualClock::new();
//! let mut run = driver.run(clock.clone());
//! shutdown.request(Signal::TERM);
//! assert!(block_on(poll_once(&mut run)).is_none()); // waiting for the request
//! assert!(shutdown.enter().is_err()); // new work is refused
//!
//! drop(guard);
//! let report = block_on(run);
//! assert_eq!(report.exit_code(), 0);
//! // Released in reverse order of acquisition.
//! let order: Vec<_> = report.steps().iter().map(|s| s.name()).collect();
//! assert_eq!(order, ["cache", "database"]);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Features
//!
//! - `tracing`: emit a `tracing` event at every phase transition and cleanup
//!   step (off by default).
//! - `net`: [`listener::close`], which closes a listening socket without
//!   resetting the connections in its accept queue, and [`accept`], the
//!   accept loop built on it that every adapter runs (off by default; std
//!   sockets, and `socket2` on Linux).
//!
//! Without a feature, [`conn`] holds the per-connection rules every HTTP
//! adapter applies (a request ends at the flush after its last byte; a
//! busy connection closes at the drain deadline) and [`signal`] the
//! forwarding of signals, with [`Run::with_signals`].
//!
//! Architecture invariant: no async runtime is in this crate's dependency
//! tree, whatever its features.

#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_auto_cfg))]

#[cfg(feature = "net")]
pub mod accept;
mod cause;
mod cleanup;
pub mod conn;
mod driver;
mod error;
#[cfg(feature = "net")]
pub mod listener;
mod report;
mod shutdown;
pub mod signal;
mod state;
mod sync;
mod timer;
#[cfg(feature = "tracing")]
mod trace;
mod waiters;

pub use cause::{Cause, Signal};
pub use driver::{Driver, Run};
pub use error::{BoxError, ConfigError, Refused, RegisterError};
pub use report::{DrainOutcome, Event, PhaseDurations, Report, StepOutcome, StepReport};
pub use shutdown::{
    Abandoned, Builder, Drained, Guard, ListenerToken, OwnedGuard, Reached, Request, Shutdown,
};
pub use state::Phase;
pub use timer::{ManualClock, Sleep, Timer};

/// The workspace README's examples, run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;
