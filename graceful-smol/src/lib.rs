//! Graceful shutdown for smol servers.
//!
//! On `SIGTERM` a server should stop accepting, let the requests in
//! progress finish, release its resources in reverse order, and exit with a
//! code that says how it went, before the orchestrator's `SIGKILL`. The
//! logic lives in [`graceful_core`]; this crate connects it to smol and
//! async-io, in the same shape as `graceful-tokio` does to tokio:
//!
//! - [`signals`] forwards SIGTERM and SIGINT (through `async-signal`) to the
//!   shutdown; a second one forces it, and the future resolves with the
//!   exit code;
//! - [`serve`] (and `serve_tower`, for any `tower` service) accepts
//!   connections until the shutdown closes the listener, without resetting
//!   the ones the kernel had already completed, and serves each one with
//!   [`graceful_hyper`] on the executor you give it (smol's [`Global`] one,
//!   or an `Arc<Executor>` of your own: see [`Spawn`]): requests counted
//!   until their response is flushed, `503` + `Connection: close` +
//!   `Retry-After` once draining, idle keep-alive connections left open,
//!   busy ones closed at the drain deadline;
//! - [`run`] drives the shutdown on async-io's clock ([`SmolTimer`]).
//!
//! Readiness is [`Shutdown::is_ready`]: false from the first signal on.
//!
//! No tokio runtime is involved: hyper's own dependency on tokio's `sync`
//! feature is the only trace of tokio in this crate's tree
//! (`tests/no_tokio_runtime.rs` checks it).
//!
//! # Examples
//!
//! ```
//! use graceful_smol::{Shutdown, Spawn};
//! use http_body_util::Full;
//! use hyper::body::{Bytes, Incoming};
//! use hyper::service::service_fn;
//! use hyper::{Request, Response};
//! use smol::{Async, Executor};
//! use std::convert::Infallible;
//! use std::net::TcpListener;
//! use std::process::ExitCode;
//! use std::sync::Arc;
//! use std::time::Duration;
//!
//! async fn hello(_: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
//!     Ok(Response::new(Full::new(Bytes::from_static(b"hello"))))
//! }
//!
//! fn main() -> Result<ExitCode, Box<dyn std::error::Error>> {
//!     let driver = Shutdown::builder()
//!         .drain_timeout(Duration::from_secs(20))
//!         .build()?;
//!     let shutdown = driver.handle();
//!     // Before binding: from here on, SIGTERM starts a clean shutdown.
//!     let signals = graceful_smol::signals(&shutdown)?;
//!     shutdown.on_cleanup("database", || async { Ok::<_, std::io::Error>(()) })?;
//!
//!     let executor = Arc::new(Executor::new());
//!     let listener = Async::<TcpListener>::bind(([127, 0, 0, 1], 0))?;
//!     executor.spawn_detached(graceful_smol::serve(
//!         listener,
//!         service_fn(hello),
//!         &shutdown,
//!         executor.clone(),
//!     ));
//!     # let _ = shutdown.request(graceful_smol::Cause::reason("example"));
//!
//!     // The report, whether the drain finished or a second signal forced it.
//!     let report = smol::block_on(executor.run(graceful_smol::run(driver).with_signals(signals)));
//!     # assert_eq!(report.exit_code(), 0);
//!     Ok(ExitCode::from(report.exit_code()))
//! }
//! ```
//!
//! # Features
//!
//! - `tower`: `serve_tower`, for any `tower` service (off by default;
//!   hyper-util's `service` feature, no tokio).
//! - `sse`: `sse::sse`, a server-sent events response that ends at the
//!   going-away moment with a last `retry: 1000` (off by default).
//! - `websocket`: `websocket::upgrade`, WebSockets on async-tungstenite
//!   that send Close 1001 at the going-away moment and are counted in
//!   flight while open (off by default).
//! - `tracing`: `tracing` events for each step of the shutdown, and for
//!   accept errors (off by default).
//! - `tls`: `tls::serve_tls`, HTTP/1.1 and HTTP/2 (by ALPN) over TLS with
//!   rustls and futures-rustls, and loading a certificate and key from PEM
//!   files (off by default).

#![forbid(unsafe_code)]
#![doc(test(attr(deny(warnings))))]
#![cfg_attr(docsrs, feature(doc_auto_cfg))]

mod job;
mod serve;
mod signal;
mod spawn;
mod timer;
#[cfg(feature = "tls")]
pub mod tls;
#[cfg(all(unix, feature = "upgrade"))]
pub mod upgrade;
#[cfg(feature = "websocket")]
pub mod websocket;

#[cfg(feature = "sse")]
pub use graceful_hyper::sse;

pub use job::spawn_job;
#[cfg(feature = "tower")]
pub use serve::serve_tower;
pub use serve::{Serve, serve};
pub use signal::{Listeners, Signals, signals};
pub use spawn::{Global, Spawn};
pub use timer::SmolTimer;
#[cfg(all(unix, feature = "upgrade"))]
pub use upgrade::upgrade_on_sighup;

/// Resolves once the HTTP/2 streams reset at the drain deadline have been
/// sent their `RST_STREAM(CANCEL)` ([`graceful_hyper::resets_sent`] on
/// SmolTimer): await it before the process exits when the report counts
/// abandoned work, so that the exit does not cut the resets off. Within
/// about 10 ms when nothing is left, 1 s at most.
///
/// # Cancel safety
///
/// Dropping it only stops the waiting.
pub fn resets_sent() -> graceful_hyper::ResetsSent {
    graceful_hyper::resets_sent(SmolTimer)
}

/// Runs the shutdown on async-io's clock: [`Driver::run`] with
/// [`SmolTimer`].
///
/// The returned future waits for the first request (a signal forwarded by
/// [`signals`], or [`Shutdown::request`]), walks the shutdown through its
/// phases, and resolves to the [`Report`], whose
/// [`exit_code`](Report::exit_code) is the process's. It runs on any
/// executor, and under a plain `smol::block_on`.
///
/// # Cancel safety
///
/// Not cancel safe: dropping the [`Run`] stops the shutdown where it stands.
/// Drop it only when the process is exiting anyway.
pub fn run(driver: Driver) -> Run {
    driver.run(SmolTimer)
}

/// The core types a smol program uses, so that this crate is the only
/// graceful dependency it needs.
#[doc(no_inline)]
pub use graceful_core::{
    Cause, DrainOutcome, Driver, Event, GoingAway, Job, JobPanicked, Phase, Refused, Report, Run,
    Shutdown, Signal, UntilGoingAway,
};

/// systemd's service notifications (feature `systemd`).
#[cfg(feature = "systemd")]
pub use graceful_core::systemd;

/// The README's example, compiled as a doc test.
#[cfg(all(doctest, feature = "tls"))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
