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
//! use graceful_core::{ManualClock, Request, Shutdown, Signal};
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
//! assert_eq!(shutdown.request(Signal::TERM), Request::Started);
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
//! # Logs
//!
//! A shutdown is visible in the logs by default: one short line per phase
//! and per cleanup step on standard error, then the report, also when a
//! second request forces the exit:
//!
//! ```text
//! graceful: shutdown requested (SIGTERM)
//! graceful: draining: new work refused, listeners closing
//! graceful: listeners closed
//! graceful: drained
//! graceful: cleanup database ok in 1.2ms
//! graceful: finished: exit 0
//! graceful: report: shutdown on SIGTERM, drained (unready 0ns, ...); database ok in 1.2ms; exit code 0
//! ```
//!
//! [`Builder::quiet`] turns them off; [`Builder::on_event`] gets every
//! event either way.
//!
//! # Features
//!
//! - `tracing`: the log lines go out as `tracing` events instead of on
//!   standard error (off by default).
//! - `net`: `listener::close`, which closes a listening socket without
//!   resetting the connections in its accept queue, and `accept`, the
//!   accept loop built on it that every adapter runs (off by default; std
//!   sockets, and `socket2` on Linux).
//! - `testing`: the `testing` module, a deterministic single-threaded simulation
//!   that runs your own handlers under a [`Shutdown`] on virtual time, with
//!   every scheduling choice drawn from a `proptest` strategy, and checks
//!   the shutdown's guarantees on every schedule (off by default; brings
//!   `proptest`, no runtime).
//! - `systemd`: the `systemd` module and `Builder::notify_systemd`: the
//!   service notifications of a `Type=notify` unit (`READY=1`,
//!   `STOPPING=1`, the stop timeout extended phase by phase), through
//!   `sd-notify` (off by default).
//!
//! Without a feature, [`conn`] holds the per-connection rules every HTTP
//! adapter applies (a request ends at the flush after its last byte; a
//! busy connection closes at the drain deadline), [`wire`] the HTTP/2
//! streams an io wrapper follows so that the first rule holds for HTTP/2,
//! and [`signal`] the
//! forwarding of signals, with [`Run::with_signals`].
//!
//! Architecture invariant: no async runtime is in this crate's dependency
//! tree, whatever its features.

#![forbid(unsafe_code)]
#![cfg_attr(docsrs, feature(doc_auto_cfg))]
#![doc(test(attr(deny(warnings))))]

#[cfg(feature = "net")]
pub mod accept;
mod builder;
mod cause;
mod cleanup;
pub mod conn;
mod driver;
mod error;
pub mod farewell;
pub mod goaway;
mod going_away;
mod guard;
mod inner;
mod job;
#[cfg(feature = "net")]
pub mod listener;
mod log;
mod progress;
mod report;
mod shutdown;
pub mod signal;
mod state;
mod sync;
#[cfg(feature = "systemd")]
pub mod systemd;
#[cfg(feature = "testing")]
pub mod testing;
mod timer;
#[cfg(feature = "tracing")]
mod trace;
mod wait;
mod waiters;
pub mod wire;

pub use builder::Builder;
pub use cause::{Cause, Signal};
pub use driver::{Driver, Run};
pub use error::{BoxError, ConfigError, Refused, RegisterError, Setting};
pub use farewell::{CloseHandshake, Farewell};
pub use going_away::{GoingAway, SSE_LAST_EVENT, UntilGoingAway};
pub use guard::{Guard, OwnedGuard};
pub use job::{Job, JobPanicked};
pub use report::{DrainOutcome, Event, PhaseDurations, Report, StepOutcome, StepReport};
pub use shutdown::{ListenerToken, Request, Shutdown};
pub use state::Phase;
pub use timer::{ManualClock, Sleep, Timer};
pub use wait::{Abandoned, Drained, Reached};

// Every public type may be sent to and shared with another thread: a
// handle, a guard or a future is made on one task and used on another, and
// a report or an error crosses into whatever the program logs from. Checked
// at compile time, so that a field added later cannot take it away
// unnoticed. (`Sleep` is a boxed `Send` future, as futures usually are.)
const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<Shutdown>();
    send_sync::<Builder>();
    send_sync::<Driver>();
    send_sync::<Run>();
    send_sync::<Guard<'static>>();
    send_sync::<OwnedGuard>();
    send_sync::<ListenerToken>();
    send_sync::<Reached>();
    send_sync::<Drained>();
    send_sync::<Abandoned>();
    send_sync::<GoingAway>();
    send_sync::<JobPanicked>();
    send_sync::<Request>();
    send_sync::<Phase>();
    send_sync::<Cause>();
    send_sync::<Signal>();
    send_sync::<Report>();
    send_sync::<StepReport>();
    send_sync::<StepOutcome>();
    send_sync::<DrainOutcome>();
    send_sync::<PhaseDurations>();
    send_sync::<Event<'static>>();
    send_sync::<ManualClock>();
    send_sync::<Refused>();
    send_sync::<RegisterError>();
    send_sync::<ConfigError>();
    send_sync::<Setting>();
    send_sync::<BoxError>();
    const fn send<T: Send>() {}
    send::<Sleep>();
};

/// The workspace README's examples, run as doc tests.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeDoctests;
