//! Graceful shutdown for actix-web 4.
//!
//! On `SIGTERM` a server should stop accepting, let the requests in
//! progress finish, release its resources in reverse order, and exit with a
//! code that says how it went, before the orchestrator's `SIGKILL`. The
//! logic lives in [`graceful_core`]; this crate connects it to actix-web,
//! and replaces the parts of actix's own shutdown that work against it:
//!
//! - [`signals`] forwards SIGTERM and SIGINT to the shutdown (actix stops at
//!   once on SIGINT; here both drain); a second one forces it, and the
//!   future resolves with the exit code;
//! - [`serve`] (and [`Server`], for worker count and timeouts) serves an
//!   actix-web `App` on a listener until the shutdown closes it, without
//!   resetting the connections the kernel had already completed, and with
//!   the [`Graceful`] middleware applied: requests counted until their
//!   response is flushed, `503` + `Connection: close` + `Retry-After` once
//!   draining, idle keep-alive connections left open, busy ones closed at
//!   the drain deadline; HTTP/2 (h2c, and `h2` by ALPN under TLS) drained
//!   with GOAWAY, its streams reset with `CANCEL` at the deadline
//!   ([`resets_sent`] is what a process exiting right after awaits);
//! - [`run`] drives the shutdown on actix-rt's clock ([`ActixTimer`]): the
//!   report's exit code is 1 when the deadline cut requests off, never a
//!   silent success.
//!
//! Readiness is [`Shutdown::is_ready`]: false from the first signal on.
//! [`readiness`] is a ready-made route, [`Readiness`] a responder.
//!
//! The README explains how this differs from `HttpServer`'s
//! `shutdown_timeout`, and why it does not use actix-server.
//!
//! # Examples
//!
//! ```
//! use actix_web::{App, web};
//! use graceful_actix::Shutdown;
//! use std::net::TcpListener;
//! use std::process::ExitCode;
//! use std::time::Duration;
//!
//! #[actix_web::main]
//! async fn main() -> Result<ExitCode, Box<dyn std::error::Error>> {
//!     let driver = Shutdown::builder()
//!         .drain_timeout(Duration::from_secs(20))
//!         .build()?;
//!     let shutdown = driver.handle();
//!     // Before binding: from here on, SIGTERM starts a clean shutdown.
//!     let signals = graceful_actix::signals(&shutdown)?;
//!     shutdown.on_cleanup("database", || async { Ok::<_, std::io::Error>(()) })?;
//!
//!     let listener = TcpListener::bind("127.0.0.1:0")?;
//!     let app = {
//!         let shutdown = shutdown.clone();
//!         move || {
//!             App::new()
//!                 .route("/", web::get().to(|| async { "hello" }))
//!                 .route("/health/ready", graceful_actix::readiness(&shutdown))
//!         }
//!     };
//!     actix_web::rt::spawn(graceful_actix::serve(listener, app, &shutdown));
//!     # let _ = shutdown.request(graceful_actix::Cause::reason("example"));
//!
//!     // The report, whether the drain finished or a second signal forced it.
//!     let report = graceful_actix::run(driver).with_signals(signals).await;
//!     # assert_eq!(report.exit_code(), 0);
//!     Ok(ExitCode::from(report.exit_code()))
//! }
//! ```
//!
//! # Features
//!
//! - `http2`: HTTP/2 on every listener, driven by the `h2` crate (on by
//!   default).
//! - `tls`: `tls::serve_tls` and `Server::tls`, rustls with HTTP/2 or
//!   HTTP/1.1 by ALPN (off by default).
//! - `sse`: `sse::sse`, a server-sent events response that ends at the
//!   going-away moment with a last `retry: 1000` (off by default).
//! - `websocket`: `websocket::handle`, actix-ws WebSockets that send Close
//!   1001 at the going-away moment (off by default).
//! - `tracing`: `tracing` events for each step of the shutdown, for accept
//!   errors and for apps that fail to start (off by default).
//!
//! actix-web is used without its default features: enable the ones your app
//! needs (compression, cookies, macros...) on your own actix-web dependency.

#![forbid(unsafe_code)]
#![doc(test(attr(deny(warnings))))]
#![cfg_attr(docsrs, feature(doc_auto_cfg))]

mod conn;
#[cfg(feature = "http2")]
mod h2;
mod job;
mod middleware;
mod readiness;
mod serve;
mod signal;
#[cfg(feature = "sse")]
pub mod sse;
mod timer;
#[cfg(feature = "tls")]
pub mod tls;
#[cfg(all(unix, feature = "upgrade"))]
pub mod upgrade;
#[cfg(feature = "websocket")]
pub mod websocket;

pub use graceful_core::conn::RETRY_AFTER_SECONDS;
#[cfg(feature = "http2")]
pub use h2::{ResetsSent, resets_sent};
pub use job::spawn_job;
pub use middleware::{Graceful, GracefulBody, GracefulMiddleware, ResponseFuture};
pub use readiness::{Readiness, readiness};
pub use serve::{Serve, Server, serve};
pub use signal::{Listeners, Signals, signals};
pub use timer::ActixTimer;
#[cfg(all(unix, feature = "upgrade"))]
pub use upgrade::upgrade_on_sighup;

/// Runs the shutdown on actix-rt's clock: [`Driver::run`] with
/// [`ActixTimer`].
///
/// The returned future waits for the first request (a signal forwarded by
/// [`signals`], or [`Shutdown::request`]), walks the shutdown through its
/// phases, and resolves to the [`Report`], whose
/// [`exit_code`](Report::exit_code) is the process's.
///
/// # Cancel safety
///
/// Not cancel safe: dropping the [`Run`] stops the shutdown where it stands.
/// Drop it only when the process is exiting anyway.
pub fn run(driver: Driver) -> Run {
    driver.run(ActixTimer)
}

/// The core types an actix program uses, so that this crate is the only
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
