//! The accept loop: serve until the shutdown closes the listener, and close
//! it without resetting a connection the kernel had already completed.
//!
//! # Design
//!
//! The accept loop is the core's ([`graceful_core::accept`]), the same on
//! every runtime: it accepts until the shutdown drains, then reads the
//! kernel's queue to the end (those connections are served too, and
//! answered `503`), closes the socket, and only then drops the
//! listener's [`ListenerToken`](graceful_core::ListenerToken), so that
//! [`Event::Closed`] is never reported while a connect could still
//! succeed. This module gives it async-io's listener ([`Accept`]) and the
//! callback that spawns each connection's task on the executor.
//!
//! "The socket is closed" holds only if the loop owns the socket alone.
//! That is why [`serve`] takes the listener as an `Async<TcpListener>`: a
//! `smol::net::TcpListener` shares its socket with its clones, so
//! dropping one of them closes nothing.
//!
//! [`Event::Closed`]: graceful_core::Event::Closed

use crate::spawn::Spawn;
use crate::timer::SmolTimer;
use async_io::Async;
use graceful_core::Shutdown;
use graceful_core::accept::Accept;
use graceful_hyper::{SpawnBody, SpawnService};
#[cfg(feature = "tower")]
use http::{Request, Response};
#[cfg(feature = "tower")]
use hyper::body::Incoming;
use smol_hyper::rt::FuturesIo;
#[cfg(feature = "tower")]
use std::error::Error as StdError;
use std::io;
use std::net::{TcpListener, TcpStream};
use std::task::{Context, Poll, ready};

pub use graceful_hyper::Serve;

#[cfg(feature = "tower")]
type BoxError = Box<dyn StdError + Send + Sync>;

/// Serves `listener` with a hyper `service` until the shutdown closes it,
/// running each connection on `executor`.
///
/// - The listener is registered with [`Shutdown::track_listener`] at once,
///   when `serve` is called. If the shutdown is already draining that is
///   refused: the listener is closed and nothing is served.
/// - Each accepted connection is spawned on `executor` (with `TCP_NODELAY`
///   set) as a task that runs [`graceful_hyper::serve_connection`]:
///   requests are counted in flight until their response is flushed,
///   refused with `503` once the shutdown drains, and a connection is
///   closed by the server only when the drain deadline finds it busy.
///   `executor` is [`Global`](crate::Global) for smol's global executor, or
///   an `Arc<Executor>` of your own: see [`Spawn`].
/// - When the shutdown reaches [`Phase::Draining`](graceful_core::Phase::Draining),
///   the connections the kernel has already completed are accepted, then the
///   listener is closed, then the token is dropped, and the future
///   resolves. See the module's design notes.
///
/// The connection tasks outlive the future: idle keep-alive connections stay
/// open until the process exits, so that a client using one gets a clean
/// `503` rather than a reset.
///
/// The listener is an [`Async<TcpListener>`](async_io::Async), made with
/// `Async::<TcpListener>::bind(addr)` or `Async::new(std_listener)`, not a
/// `smol::net::TcpListener`, whose clones share one socket: `serve` must
/// own the socket to close it (see the module's design notes).
///
/// For a `tower` service, see `serve_tower` (feature `tower`).
///
/// # Examples
///
/// ```
/// use graceful_core::{Cause, Shutdown};
/// use graceful_smol::Global;
/// use http_body_util::Full;
/// use hyper::body::{Bytes, Incoming};
/// use hyper::service::service_fn;
/// use hyper::{Request, Response};
/// use smol::Async;
/// use std::convert::Infallible;
/// use std::net::TcpListener;
///
/// async fn hello(_: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
///     Ok(Response::new(Full::new(Bytes::from_static(b"hello"))))
/// }
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// smol::block_on(async {
///     let driver = Shutdown::builder().build()?;
///     let shutdown = driver.handle();
///     let listener = Async::<TcpListener>::bind(([127, 0, 0, 1], 0))?;
///     let server = smol::spawn(graceful_smol::serve(listener, service_fn(hello), &shutdown, Global));
///
///     let _ = shutdown.request(Cause::reason("example"));
///     let report = graceful_smol::run(driver).await;
///     server.await; // closed
///     assert_eq!(report.exit_code(), 0);
///     Ok(())
/// })
/// # }
/// ```
pub fn serve<S, B, E>(
    listener: Async<TcpListener>,
    service: S,
    shutdown: &Shutdown,
    executor: E,
) -> Serve
where
    S: SpawnService<B> + Clone,
    B: SpawnBody,
    E: Spawn,
{
    graceful_hyper::serve_listener(
        Listening(listener),
        shutdown,
        SmolTimer,
        move |_: &FuturesIo<Async<TcpStream>>| service.clone(),
        move |task| executor.spawn_detached(task),
    )
}

/// Serves `listener` with a `tower` service until the shutdown closes it:
/// [`serve`] through hyper-util's `TowerToHyperService` (which brings no
/// tokio with it).
///
/// # Examples
///
/// ```
/// use graceful_core::{Cause, Shutdown};
/// use graceful_smol::Global;
/// use http_body_util::Full;
/// use hyper::body::{Bytes, Incoming};
/// use hyper::{Request, Response};
/// use smol::Async;
/// use std::convert::Infallible;
/// use std::future::{Ready, ready};
/// use std::net::TcpListener;
/// use std::task::{Context, Poll};
///
/// #[derive(Clone)]
/// struct Hello;
///
/// impl tower_service::Service<Request<Incoming>> for Hello {
///     type Response = Response<Full<Bytes>>;
///     type Error = Infallible;
///     type Future = Ready<Result<Self::Response, Infallible>>;
///
///     fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
///         Poll::Ready(Ok(()))
///     }
///
///     fn call(&mut self, _: Request<Incoming>) -> Self::Future {
///         ready(Ok(Response::new(Full::new(Bytes::from_static(b"hello")))))
///     }
/// }
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// smol::block_on(async {
///     let driver = Shutdown::builder().build()?;
///     let shutdown = driver.handle();
///     let listener = Async::<TcpListener>::bind(([127, 0, 0, 1], 0))?;
///     smol::spawn(graceful_smol::serve_tower(listener, Hello, &shutdown, Global)).detach();
///
///     let _ = shutdown.request(Cause::reason("example"));
///     assert_eq!(graceful_smol::run(driver).await.exit_code(), 0);
///     Ok(())
/// })
/// # }
/// ```
#[cfg(feature = "tower")]
pub fn serve_tower<S, B, E>(
    listener: Async<TcpListener>,
    service: S,
    shutdown: &Shutdown,
    executor: E,
) -> Serve
where
    S: tower_service::Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: SpawnBody,
    E: Spawn,
{
    serve(
        listener,
        hyper_util::service::TowerToHyperService::new(service),
        shutdown,
        executor,
    )
}

/// async-io's listener, as the core's accept loop uses it.
pub(crate) struct Listening(pub(crate) Async<TcpListener>);

impl Accept for Listening {
    type Conn = FuturesIo<Async<TcpStream>>;

    fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<Self::Conn>> {
        loop {
            match self.0.get_ref().accept() {
                Ok((stream, _)) => return Poll::Ready(Self::adopt(stream)),
                Err(error) if error.kind() == io::ErrorKind::WouldBlock => {
                    ready!(self.0.poll_readable(cx))?;
                }
                Err(error) => return Poll::Ready(Err(error)),
            }
        }
    }

    fn into_std(self) -> io::Result<TcpListener> {
        // Out of the reactor (deregistered, still non-blocking), to call
        // `accept` directly until it would block rather than wait for
        // readiness the reactor may not have reported yet.
        self.0.into_inner()
    }

    fn adopt(stream: TcpStream) -> io::Result<Self::Conn> {
        // Small responses go out at once rather than waiting on Nagle.
        let _ = stream.set_nodelay(true);
        // An accepted socket does not inherit the listener's non-blocking
        // mode: `Async::new` sets it.
        Async::new(stream).map(FuturesIo::new)
    }
}
