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
//! succeed. This module gives it tokio's listener ([`Accept`]) and the
//! callback that spawns each connection's task.
//!
//! [`Event::Closed`]: graceful_core::Event::Closed

use crate::timer::TokioTimer;
use graceful_core::Shutdown;
use graceful_core::accept::Accept;
use graceful_hyper::{SpawnBody, SpawnService};
#[cfg(feature = "tower")]
use http::{Request, Response};
#[cfg(feature = "tower")]
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
#[cfg(feature = "tower")]
use std::error::Error as StdError;
use std::io;
use std::net::{self, SocketAddr};
use std::task::{Context, Poll};
use tokio::net::{TcpListener, TcpStream};

pub use graceful_hyper::Serve;

#[cfg(feature = "tower")]
type BoxError = Box<dyn StdError + Send + Sync>;

/// Serves `listener` with a hyper `service` until the shutdown closes it.
///
/// - The listener is registered with [`Shutdown::track_listener`] at once,
///   when `serve` is called. If the shutdown is already draining that is
///   refused: the listener is closed and nothing is served.
/// - Each accepted connection is spawned as a task (with `TCP_NODELAY` set)
///   that runs [`graceful_hyper::serve_connection`]: requests are counted in
///   flight until their response is flushed, refused with `503` once the
///   shutdown drains, and a connection is closed by the server only when the
///   drain deadline finds it busy.
/// - When the shutdown reaches [`Phase::Draining`](graceful_core::Phase::Draining),
///   the connections the kernel has already completed are accepted, then the
///   listener is closed, then the token is dropped, and the future
///   resolves. See the module's design notes.
///
/// The connection tasks outlive the future: idle keep-alive connections stay
/// open until the process exits, so that a client using one gets a clean
/// `503` rather than a reset.
///
/// For a `tower` service (axum's `Router`, for one), see
/// `serve_tower` (feature `tower`).
///
/// Must be called from within a tokio runtime (connections are spawned).
///
/// # Examples
///
/// ```
/// use graceful_core::{Cause, Shutdown};
/// use http_body_util::Full;
/// use hyper::body::{Bytes, Incoming};
/// use hyper::service::service_fn;
/// use hyper::{Request, Response};
/// use std::convert::Infallible;
/// use tokio::net::TcpListener;
///
/// async fn hello(_: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
///     Ok(Response::new(Full::new(Bytes::from_static(b"hello"))))
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let driver = Shutdown::builder().build()?;
/// let shutdown = driver.handle();
/// let listener = TcpListener::bind("127.0.0.1:0").await?;
/// let server = tokio::spawn(graceful_tokio::serve(listener, service_fn(hello), &shutdown));
///
/// let _ = shutdown.request(Cause::reason("example"));
/// let report = graceful_tokio::run(driver).await;
/// server.await?; // closed
/// assert_eq!(report.exit_code(), 0);
/// # Ok(())
/// # }
/// ```
pub fn serve<S, B>(listener: TcpListener, service: S, shutdown: &Shutdown) -> Serve
where
    S: SpawnService<B> + Clone,
    B: SpawnBody,
{
    serve_each(listener, move |_| service.clone(), shutdown)
}

/// [`serve`], with a service made for each connection from its peer's
/// address.
fn serve_each<M, S, B>(listener: TcpListener, make_service: M, shutdown: &Shutdown) -> Serve
where
    M: Fn(Option<SocketAddr>) -> S + Send + 'static,
    S: SpawnService<B>,
    B: SpawnBody,
{
    graceful_hyper::serve_listener(
        Listening(listener),
        shutdown,
        TokioTimer,
        move |io: &TokioIo<TcpStream>| make_service(io.inner().peer_addr().ok()),
        |task| drop(tokio::spawn(task)),
    )
}

/// Serves `listener` with a `tower` service, such as an axum `Router`,
/// until the shutdown closes it: [`serve`] through hyper-util's
/// `TowerToHyperService`.
///
/// With the `axum` feature, each request also carries its peer's address
/// as `axum::extract::ConnectInfo<SocketAddr>`, as under axum's
/// `into_make_service_with_connect_info`, so handlers that extract
/// `ConnectInfo<SocketAddr>` work unchanged.
///
/// # Examples
///
/// ```
/// use axum::{Router, routing::get};
/// use graceful_core::{Cause, Shutdown};
/// use tokio::net::TcpListener;
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let driver = Shutdown::builder().build()?;
/// let shutdown = driver.handle();
/// let app = Router::new()
///     .route("/", get(|| async { "hello" }))
///     .route("/health/ready", graceful_tokio::axum::readiness(&shutdown));
/// let listener = TcpListener::bind("127.0.0.1:0").await?;
/// tokio::spawn(graceful_tokio::serve_tower(listener, app, &shutdown));
///
/// let _ = shutdown.request(Cause::reason("example"));
/// assert_eq!(graceful_tokio::run(driver).await.exit_code(), 0);
/// # Ok(())
/// # }
/// ```
#[cfg(feature = "tower")]
pub fn serve_tower<S, B>(listener: TcpListener, service: S, shutdown: &Shutdown) -> Serve
where
    S: tower_service::Service<Request<Incoming>, Response = Response<B>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<BoxError>,
    B: SpawnBody,
{
    serve_each(
        listener,
        move |peer| {
            hyper_util::service::TowerToHyperService::new(WithPeer::new(service.clone(), peer))
        },
        shutdown,
    )
}

/// A `tower` service that gives each request its connection's peer
/// address, as axum's `ConnectInfo` (with the `axum` feature; without it,
/// the service as it is).
#[cfg(feature = "tower")]
#[derive(Clone, Debug)]
struct WithPeer<S> {
    inner: S,
    #[cfg(feature = "axum")]
    peer: Option<SocketAddr>,
}

#[cfg(feature = "tower")]
impl<S> WithPeer<S> {
    fn new(inner: S, peer: Option<SocketAddr>) -> WithPeer<S> {
        #[cfg(not(feature = "axum"))]
        let _ = peer;
        WithPeer {
            inner,
            #[cfg(feature = "axum")]
            peer,
        }
    }
}

#[cfg(feature = "tower")]
impl<S, R> tower_service::Service<Request<R>> for WithPeer<S>
where
    S: tower_service::Service<Request<R>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        self.inner.poll_ready(cx)
    }

    #[cfg_attr(not(feature = "axum"), allow(unused_mut))]
    fn call(&mut self, mut request: Request<R>) -> S::Future {
        #[cfg(feature = "axum")]
        if let Some(peer) = self.peer {
            request
                .extensions_mut()
                .insert(::axum::extract::ConnectInfo(peer));
        }
        self.inner.call(request)
    }
}

/// tokio's listener, as the core's accept loop uses it.
pub(crate) struct Listening(pub(crate) TcpListener);

impl Accept for Listening {
    type Conn = TokioIo<TcpStream>;

    fn poll_accept(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<TokioIo<TcpStream>>> {
        self.0
            .poll_accept(cx)
            .map_ok(|(stream, _)| connection(stream))
    }

    fn into_std(self) -> io::Result<net::TcpListener> {
        // Out of the reactor, to call `accept` directly until it would
        // block: tokio's `poll_accept` trusts its readiness cache, which
        // may not have seen the last arrivals yet. It stays non-blocking.
        self.0.into_std()
    }

    fn adopt(stream: net::TcpStream) -> io::Result<TokioIo<TcpStream>> {
        // An accepted socket does not inherit the listener's non-blocking
        // mode, which tokio needs.
        stream.set_nonblocking(true)?;
        TcpStream::from_std(stream).map(connection)
    }
}

/// An accepted socket, as hyper serves it.
fn connection(stream: TcpStream) -> TokioIo<TcpStream> {
    // Small responses go out at once rather than waiting on Nagle.
    let _ = stream.set_nodelay(true);
    TokioIo::new(stream)
}
