//! The conformance targets of graceful's three adapters, and the half of
//! them that does not depend on a runtime.
//!
//! A *conformance target* is an HTTP/1.1 server that speaks the contract of
//! the `graceful-conformance` kit: its command line, the event lines it
//! prints on standard output, its routes, the SQLite store behind
//! `POST /orders`, and how it shuts down. The kit checks a target from
//! outside, as a black box; this crate is where graceful's own targets
//! live, one executable per adapter:
//!
//! - `tokio-target` (`src/bin/tokio-target.rs`): hyper 1 on a multi-thread
//!   tokio runtime, served by `graceful_tokio::serve`.
//! - `smol-target` (`src/bin/smol-target.rs`): hyper 1 on an
//!   `Arc<Executor>` of its own, served by `graceful_smol::serve`.
//! - `actix-target` (`src/bin/actix-target.rs`): an actix-web `App`, served
//!   by `graceful_actix::serve`.
//!
//! `cargo xtask targets` builds the three in release mode and prints where
//! they are; `cargo xtask conformance` runs the kit against them. The
//! crate is not published: the kit knows the targets only as programs.
//!
//! # Reading a target as an example
//!
//! Each target is also the fullest example of its adapter, and they share
//! one shape, visible in each `serve` function:
//!
//! 1. The signals and the driver start first, before anything is bound, so
//!    that a signal from then on ends the process cleanly whatever start-up
//!    is doing; a second signal exits at once with `128 + N`.
//! 2. Resources register their cleanup as they are acquired. Steps run last
//!    registered first, so the store, registered first, closes last, after
//!    every request that could still write to it.
//! 3. The listener is bound, and handed to the adapter's `serve` under the
//!    [start-up gate](gate).
//! 4. The process waits for the driver's report and exits with its code.
//!
//! What is left to each target is only what its runtime decides: setting
//! the runtime up, spawning, sleeping, the blocking call that closes the
//! store, and the bodies of the routes.
//!
//! # The shared half
//!
//! - [`options`]: the contract's command line ([`Options::parse`]), the
//!   shutdown driver it configures ([`Options::driver`]), and the cleanup
//!   steps it registers ([`Options::register_cleanup`]).
//! - [`steps`]: the cleanup steps in registration order, each [`Told`] how
//!   to end.
//! - [`events`]: the contract's lines on standard output, through one
//!   stdout lock, and the logs on standard error.
//! - [`gate`]: the start-up gate that orders the first signal against the
//!   `listening` line.
//! - [`store`]: the orders table in SQLite.
//! - [`tls`]: the TLS config of `--tls-cert` and `--tls-key`.
//! - [`store`]: the orders and jobs tables in SQLite.
//! - [`jobs`]: which job ids are queued, and the commit of a job's row.
//! - [`ticks`]: the `/events` stream, ending at the going-away moment.
//! - [`routes`]: what each request asks, decided without a runtime.
//! - [`grpc`]: the tokio target's gRPC services (health and the contract's
//!   `Contract`), and the service that sends gRPC calls to them.
//! - [`upgrade`]: rules 23 to 27 (the inherited listener, the word that
//!   the new process serves, `--upgrade-child-fails`, the upgrade's lines).
//!
//! # Examples
//!
//! The skeleton every target shares; the comments mark where the runtime's
//! adapter comes in.
//!
//! ```no_run
//! use graceful_targets::{self as target, Journal, Options, Routes};
//! use std::net::TcpListener;
//! use std::time::Duration;
//!
//! // The runtime's sleep and blocking call; stand-ins here.
//! async fn sleep(_: Duration) {}
//! async fn unblock<T>(f: impl FnOnce() -> T) -> T {
//!     f()
//! }
//!
//! let options = Options::parse("my-target");
//! let driver = options.driver();
//! let shutdown = driver.handle();
//! // Spawn `target::exit_on_signals(adapter::signals(&shutdown)?)` and the
//! // adapter's `run(driver)` here, before anything else.
//!
//! // Resources register their cleanup as they are acquired: the store,
//! // registered first, closes last.
//! let store = options.open_store(Journal::Rollback);
//! options.register_cleanup(&shutdown, store.as_ref(), sleep, |store| async move {
//!     unblock(move || store.close()).await
//! });
//!
//! let listener = TcpListener::bind(options.addr)
//!     .unwrap_or_else(|error| target::fail(format_args!("cannot listen: {error}")));
//! let addr = listener.local_addr().unwrap_or(options.addr);
//! let routes = Routes::new(shutdown.clone(), store, options.events_every);
//! target::start_serving(&shutdown, addr, || {
//!     // Spawn the adapter's `serve(listener, ...)`, with a service that
//!     // carries out `routes.route(method, path, query)`.
//!     drop((listener, routes));
//! });
//! // Then await the driver's report: `target::exit_with(&report)`.
//! ```

#![forbid(unsafe_code)]

pub mod events;
pub mod gate;
pub mod grpc;
pub mod jobs;
pub mod options;
pub mod routes;
pub mod steps;
pub mod store;
#[cfg(test)]
mod testing;
pub mod ticks;
pub mod tls;
pub mod upgrade;

pub use events::{event_line, exit, exit_with, fail, log, print_event, say};
pub use gate::{exit_on_signals, start_serving};
pub use jobs::{Jobs, Queued};
pub use options::{Options, usage_error};
pub use routes::{
    Answer, BadRequest, ChunkLines, Route, Routes, events_every, job_id, order_id, param,
};
pub use steps::{STORE, Step, Told};
pub use store::{Insert, Journal, Store};
pub use ticks::{LAST_EVENT, Ticks};
pub use upgrade::{Handover, inherit, print_progress};
