//! Graceful shutdown for hyper 1 servers, on any runtime.
//!
//! [`graceful_core`] decides *when* a server drains; this crate makes a
//! hyper HTTP/1.1 and HTTP/2 (prior knowledge) server *behave* accordingly, the same way on every runtime
//! (the tokio and smol adapters both build on it):
//!
//! - every request holds a [`graceful_core::OwnedGuard`] from the moment
//!   hyper has read its head until the last byte of its response has been
//!   flushed to the socket, so the drain waits for exactly the work in
//!   progress, and the count of abandoned requests is exact;
//! - a response whose head is produced once draining has begun carries
//!   `Connection: close`, so hyper closes that connection after it;
//! - a request that arrives once draining has begun is answered `503` with
//!   `Connection: close` and `Retry-After: 1`
//!   ([`RETRY_AFTER_SECONDS`]), and its connection closes after that answer;
//! - idle keep-alive connections are left open (they answer that `503` if
//!   they are used again) and connections that never send a whole request
//!   head hold nothing, so neither delays the exit;
//! - at the drain deadline, [`serve_connection`] closes the connections that
//!   are still busy, and only those; an HTTP/2 stream still in progress is
//!   first reset with `RST_STREAM(CANCEL)`.
//!
//! The pieces:
//!
//! - [`serve_connection`] drives one connection with all of the above,
//!   HTTP/1.1 or HTTP/2 chosen by its first bytes; HTTP/2 streams are
//!   requests, drained with GOAWAY (bounded by [`GOAWAY_BOUND`]), never
//!   `503`. Runtime adapters call it once per accepted connection, with a
//!   [`Spawner`] (the executor seam HTTP/2 needs) and their timer.
//! - [`serve_listener`] runs the core's accept loop on a runtime's listener
//!   and serves each connection with `serve_connection`: the tokio and smol
//!   adapters are this, with their listener, timer and spawner.
//! - [`resets_sent`] is what a process that exits right after an abandoned
//!   drain awaits first, so that the exit does not cut off the
//!   `RST_STREAM(CANCEL)` frames of its HTTP/2 streams.
//! - [`GracefulService`] is the per-request part alone, for code that drives
//!   hyper connections itself; `GracefulLayer` (feature `tower`) applies it
//!   to any `tower` service.
//!
//! # Examples
//!
//! Serving one connection (here the io is left generic; a runtime adapter
//! passes an accepted socket):
//!
//! ```
//! use graceful_core::{Shutdown, Timer};
//! use graceful_hyper::Spawner;
//! use http_body_util::Full;
//! use hyper::body::{Bytes, Incoming};
//! use hyper::rt::{Read, Write};
//! use hyper::service::service_fn;
//! use hyper::{Request, Response};
//! use std::convert::Infallible;
//! use std::sync::Arc;
//!
//! async fn hello(_: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
//!     Ok(Response::new(Full::new(Bytes::from_static(b"hello"))))
//! }
//!
//! # #[allow(dead_code)] // an example of a function a runtime adapter calls
//! async fn handle<I>(io: I, shutdown: Shutdown, spawner: Spawner, timer: Arc<dyn Timer>)
//! where
//!     I: Read + Write + Unpin + Send + 'static,
//! {
//!     let connection = graceful_hyper::serve_connection(io, service_fn(hello), &shutdown, spawner, timer);
//!     if let Err(error) = connection.await {
//!         eprintln!("connection error: {error}");
//!     }
//! }
//! ```
//!
//! What a request sees once the shutdown is draining:
//!
//! ```
//! use graceful_core::{ManualClock, Shutdown, Signal};
//! use graceful_hyper::GracefulService;
//! use http_body_util::{Empty, Full};
//! use hyper::body::Bytes;
//! use hyper::service::{Service, service_fn};
//! use hyper::{Request, Response, StatusCode};
//! use std::convert::Infallible;
//!
//! let driver = Shutdown::builder().build()?;
//! let shutdown = driver.handle();
//! let service = GracefulService::new(
//!     service_fn(|_: Request<Empty<Bytes>>| async {
//!         Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"hello"))))
//!     }),
//!     shutdown.clone(),
//! );
//!
//! let _ = shutdown.request(Signal::TERM);
//! let run = driver.run(ManualClock::new());
//! futures_lite::future::block_on(run); // nothing in flight: drained at once
//!
//! let response = futures_lite::future::block_on(service.call(Request::new(Empty::new()))).unwrap();
//! assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
//! assert_eq!(response.headers()["connection"], "close");
//! assert_eq!(response.headers()["retry-after"], "1");
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Features
//!
//! - `tower`: `GracefulLayer`, and a `tower::Service` implementation of
//!   [`GracefulService`] (off by default).
//! - `tracing`: `tracing` events for connection and listener errors (off by
//!   default).
//! - `tls`: [`serve_tls_listener`] and the [`tls`] module, the part of
//!   serving TLS with rustls that does not depend on a runtime: the server
//!   config with ALPN, PEM loading, the handshake's bound, the protocol
//!   chosen by ALPN and `close_notify` on every connection the server
//!   closes (off by default).
//!
//! Only hyper's `http1`, `http2` and `server` features are used (and the
//! `h2` crate, for the reason a refused stream is reset with), and no runtime:
//! hyper's own dependency on `tokio`'s `sync` feature is the only trace of
//! tokio in this crate's tree. `graceful-core`'s `net` feature (std
//! sockets, and `socket2` on Linux) brings the accept loop that
//! [`serve_listener`] runs.

#![forbid(unsafe_code)]
#![doc(test(attr(deny(warnings))))]
#![cfg_attr(docsrs, feature(doc_auto_cfg))]

mod body;
mod cancel;
mod conn;
#[cfg(feature = "tower")]
mod layer;
mod ping_ack;
mod serve;
mod service;
#[cfg(feature = "sse")]
pub mod sse;
#[cfg(test)]
mod tests;
#[cfg(feature = "tls")]
pub mod tls;
#[cfg(feature = "websocket")]
pub mod websocket;

pub use body::GracefulBody;
pub use cancel::{ResetsSent, resets_sent};
pub use conn::{
    GOAWAY_BOUND, Protocol, ServeConnection, Spawner, serve_connection, serve_connection_as,
};
pub use graceful_core::conn::RETRY_AFTER_SECONDS;
#[cfg(feature = "tower")]
pub use layer::GracefulLayer;
pub use serve::{ConnectionTask, Serve, SpawnBody, SpawnService, serve_listener};
#[cfg(feature = "tls")]
pub use serve::{Handshake, serve_tls_listener};
pub use service::{GracefulService, ResponseFuture};
