//! Graceful shutdown for tokio servers.
//!
//! On `SIGTERM` a server should stop accepting, let the requests in
//! progress finish, release its resources in reverse order, and exit with a
//! code that says how it went, before the orchestrator's `SIGKILL`. The
//! logic lives in [`graceful_core`]; this crate connects it to tokio:
//!
//! - [`signals`] forwards SIGTERM and SIGINT to the shutdown; a second one
//!   forces it, and the future resolves with the exit code;
//! - [`serve`] (and `serve_tower`, for axum and other `tower` services)
//!   accepts connections until the shutdown closes the listener, without
//!   resetting the ones the kernel had already completed, and serves each
//!   one with [`graceful_hyper`]: requests counted until their response is
//!   flushed, `503` + `Connection: close` + `Retry-After` once draining,
//!   idle keep-alive connections left open, busy ones closed at the drain
//!   deadline;
//! - [`run`] drives the shutdown on tokio's clock ([`TokioTimer`]).
//!
//! Readiness is [`Shutdown::is_ready`]: false from the first signal on.
//! With the `axum` feature, `axum::readiness` is a ready-made route.
//!
//! # Examples
//!
//! ```
//! use graceful_tokio::Shutdown;
//! use http_body_util::Full;
//! use hyper::body::{Bytes, Incoming};
//! use hyper::service::service_fn;
//! use hyper::{Request, Response};
//! use std::convert::Infallible;
//! use std::process::ExitCode;
//! use std::time::Duration;
//! use tokio::net::TcpListener;
//!
//! async fn hello(_: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
//!     Ok(Response::new(Full::new(Bytes::from_static(b"hello"))))
//! }
//!
//! #[tokio::main]
//! async fn main() -> Result<ExitCode, Box<dyn std::error::Error>> {
//!     let driver = Shutdown::builder()
//!         .drain_timeout(Duration::from_secs(20))
//!         .build()?;
//!     let shutdown = driver.handle();
//!     // Before binding: from here on, SIGTERM starts a clean shutdown.
//!     let signals = graceful_tokio::signals(&shutdown)?;
//!     shutdown.on_cleanup("database", || async { Ok::<_, std::io::Error>(()) })?;
//!
//!     let listener = TcpListener::bind("127.0.0.1:0").await?;
//!     tokio::spawn(graceful_tokio::serve(listener, service_fn(hello), &shutdown));
//!     # let _ = shutdown.request(graceful_tokio::Cause::reason("example"));
//!
//!     // The report, whether the drain finished or a second signal forced it.
//!     let report = graceful_tokio::run(driver).with_signals(signals).await;
//!     # assert_eq!(report.exit_code(), 0);
//!     Ok(ExitCode::from(report.exit_code()))
//! }
//! ```
//!
//! # Features
//!
//! - `tower`: `serve_tower`, for any `tower` service (off by default).
//! - `axum`: `tower`, and `axum::readiness`, a readiness route for axum
//!   0.8 (off by default).
//! - `tonic`: `tower`, and the [`tonic`](mod@tonic) module: tonic's `Routes`
//!   served with every HTTP/2 rule, a health service that turns
//!   `NOT_SERVING` at the first signal and ends its `Watch` streams at
//!   `closed`, and server streams ended at `closed` with `UNAVAILABLE`
//!   (off by default).
//! - `websocket`: `websocket::upgrade`, WebSockets on tokio-tungstenite
//!   that send Close 1001 at the going-away moment and are counted in
//!   flight while open (off by default).
//! - `tracing`: `tracing` events for each step of the shutdown, and for
//!   accept errors (off by default).
//! - `tls`: `tls::serve_tls`, HTTP/1.1 and HTTP/2 (by ALPN) over TLS with
//!   rustls and tokio-rustls, and loading a certificate and key from PEM
//!   files (off by default).

#![forbid(unsafe_code)]
#![doc(test(attr(deny(warnings))))]
#![cfg_attr(docsrs, feature(doc_auto_cfg))]

#[cfg(feature = "axum")]
pub mod axum;
mod job;
mod serve;
mod signal;
#[cfg(feature = "axum")]
pub mod sse;
mod timer;
#[cfg(feature = "tls")]
pub mod tls;
#[cfg(feature = "tonic")]
pub mod tonic;
#[cfg(all(unix, feature = "upgrade"))]
pub mod upgrade;
#[cfg(feature = "websocket")]
pub mod websocket;

pub use job::spawn_job;
#[cfg(feature = "tower")]
pub use serve::serve_tower;
pub use serve::{Serve, serve};
pub use signal::{Listeners, Signals, signals};
pub use timer::TokioTimer;
#[cfg(all(unix, feature = "upgrade"))]
pub use upgrade::upgrade_on_sighup;

/// Resolves once the HTTP/2 streams reset at the drain deadline have been
/// sent their `RST_STREAM(CANCEL)` ([`graceful_hyper::resets_sent`] on
/// TokioTimer): await it before the process exits when the report counts
/// abandoned work, so that the exit does not cut the resets off. Within
/// about 10 ms when nothing is left, 1 s at most.
///
/// # Cancel safety
///
/// Dropping it only stops the waiting.
pub fn resets_sent() -> graceful_hyper::ResetsSent {
    graceful_hyper::resets_sent(TokioTimer)
}

/// Runs the shutdown on tokio's clock: [`Driver::run`] with [`TokioTimer`].
///
/// The returned future waits for the first request (a signal forwarded by
/// [`signals`], or [`Shutdown::request`]),
/// walks the shutdown through its phases, and resolves to the
/// [`Report`], whose
/// [`exit_code`](Report::exit_code) is the process's.
///
/// # Cancel safety
///
/// Not cancel safe: dropping the [`Run`] stops the shutdown where it stands.
/// Drop it only when the process is exiting anyway.
pub fn run(driver: Driver) -> Run {
    driver.run(TokioTimer)
}

/// The core types a tokio program uses, so that this crate is the only
/// dependency it needs.
#[doc(no_inline)]
pub use graceful_core::{
    Cause, DrainOutcome, Driver, Event, GoingAway, Job, JobPanicked, Phase, Refused, Report, Run,
    Shutdown, Signal, UntilGoingAway,
};

/// systemd's service notifications (feature `systemd`).
#[cfg(feature = "systemd")]
pub use graceful_core::systemd;

/// The README's example, compiled as a doc test.
#[cfg(all(doctest, feature = "axum", feature = "tls", feature = "tonic"))]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;
