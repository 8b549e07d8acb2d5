//! A listener served with [`serve_connection`](crate::serve_connection),
//! on any runtime: the part of serving that the tokio and smol adapters
//! share.
//!
//! The accept loop is the core's ([`graceful_core::accept`]): a runtime
//! gives it its listener ([`Accept`], whose connections are already hyper
//! io) and a way to spawn a task. Everything between (a service made per
//! connection, [`serve_connection`](crate::serve_connection) run on it,
//! its error logged) is the same for every hyper server, so it is written
//! here once.

use crate::conn::connection;
use crate::{Protocol, Spawner};
use graceful_core::accept::{Accept, accept};
use graceful_core::{Shutdown, Timer};
use http::{Request, Response};
use http_body::Body;
use hyper::body::Incoming;
use hyper::rt::{Read, Write};
use hyper::service::Service;
use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

type BoxError = Box<dyn StdError + Send + Sync>;

/// A hyper service that [`serve_listener`] can run on spawned tasks: its
/// futures move between threads, its errors box. Implemented for every
/// such service; it only names the bounds.
pub trait SpawnService<B>:
    Service<
        Request<Incoming>,
        Response = Response<B>,
        Future: Send + 'static,
        Error: Into<BoxError>,
    > + Send
    + 'static
{
}

impl<S, B> SpawnService<B> for S where
    S: Service<
            Request<Incoming>,
            Response = Response<B>,
            Future: Send + 'static,
            Error: Into<BoxError>,
        > + Send
        + 'static
{
}

/// A response body that [`serve_listener`] can send from spawned tasks.
/// Implemented for every such body; it only names the bounds.
pub trait SpawnBody: Body<Data: Send, Error: Into<BoxError>> + Send + 'static {}

impl<B> SpawnBody for B where B: Body<Data: Send, Error: Into<BoxError>> + Send + 'static {}

/// One connection's task, as [`serve_listener`] hands it to the runtime to
/// spawn: it resolves when the connection ends, having logged its error
/// (with the `tracing` feature).
pub type ConnectionTask = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// Serves `listener` until the shutdown closes it: each connection gets a
/// service from `make_service` and runs
/// [`serve_connection`](crate::serve_connection) in a task that `spawn`
/// starts; `timer` paces the accept loop's back-off.
///
/// - The listener is registered with [`Shutdown::track_listener`] at once.
///   If the shutdown is already draining that is refused: the listener is
///   closed and nothing is served.
/// - When the shutdown drains, the connections the kernel has already
///   completed are served too, then the listener is closed, then its token
///   is dropped (see [`graceful_core::accept`]), and the future resolves.
///
/// The runtime adapters call it with their listener, timer and spawner
/// (`graceful_tokio::serve`, `graceful_smol::serve`).
pub fn serve_listener<L, T, M, S, B, E>(
    listener: L,
    shutdown: &Shutdown,
    timer: T,
    make_service: M,
    spawn: E,
) -> Serve
where
    L: Accept + Send + 'static,
    L::Conn: Read + Write + Unpin + Send + 'static,
    T: Timer,
    M: Fn(&L::Conn) -> S + Send + 'static,
    S: SpawnService<B>,
    B: SpawnBody,
    E: Fn(ConnectionTask) + Send + Sync + 'static,
{
    serve_with(
        listener,
        shutdown,
        timer,
        make_service,
        spawn,
        |io, service, shutdown, spawner, timer| {
            let (connection, _) =
                connection(io, Protocol::Detect, service, &shutdown, spawner, timer);
            Box::pin(async move {
                if let Err(error) = connection.await {
                    log::connection_error(&error);
                }
            })
        },
    )
}

/// A TLS handshake as [`serve_tls_listener`] runs it, made by the runtime
/// adapter with its rustls io wrapper: the connection's io with TLS on it,
/// and the ALPN protocol the client chose.
#[cfg(feature = "tls")]
pub type Handshake<I> =
    Pin<Box<dyn Future<Output = std::io::Result<(I, Option<Vec<u8>>)>> + Send + 'static>>;

/// [`serve_listener`] over TLS: each connection's task first runs
/// `handshake` on it, then serves it with the protocol the client chose by
/// ALPN (`h2`: HTTP/2, else HTTP/1.1; see [`crate::tls`]).
///
/// - The handshake holds nothing: a connection still handshaking is not in
///   progress and never delays the drain. It is dropped if the handshake
///   fails or takes more than [`HANDSHAKE_TIMEOUT`](crate::tls::HANDSHAKE_TIMEOUT).
/// - A connection the server closes (hyper closing it, or the drain's
///   rules) is shut down, which sends the TLS `close_notify`.
///
/// The runtime adapters call it with their listener, timer, spawner and
/// rustls acceptor (`graceful_tokio::serve_tls`, `graceful_smol::serve_tls`).
#[cfg(feature = "tls")]
pub fn serve_tls_listener<L, T, M, S, B, E, H, I>(
    listener: L,
    shutdown: &Shutdown,
    timer: T,
    make_service: M,
    spawn: E,
    handshake: H,
) -> Serve
where
    L: Accept + Send + 'static,
    T: Timer,
    M: Fn(&L::Conn) -> S + Send + 'static,
    S: SpawnService<B>,
    B: SpawnBody,
    E: Fn(ConnectionTask) + Send + Sync + 'static,
    H: Fn(L::Conn) -> Handshake<I> + Send + 'static,
    I: Read + Write + Unpin + Send + 'static,
{
    use crate::serve_connection_as;
    use crate::tls::{CLOSE_BOUND, Closing, HANDSHAKE_TIMEOUT};
    serve_with(
        listener,
        shutdown,
        timer,
        make_service,
        spawn,
        move |io, service, shutdown, spawner, timer| {
            let handshake = handshake(io);
            Box::pin(async move {
                let Some(Ok((io, alpn))) = within(timer.sleep(HANDSHAKE_TIMEOUT), handshake).await
                else {
                    return;
                };
                let protocol = Protocol::from_alpn(alpn.as_deref());
                let (io, closing) = Closing::new(io);
                let connection =
                    serve_connection_as(io, protocol, service, &shutdown, spawner, timer.clone());
                if let Err(error) = connection.await {
                    log::connection_error(&error);
                }
                // Unless an upgraded session (a WebSocket) still uses it,
                // the io is the task's alone now: shut it down, which sends
                // `close_notify` if hyper has not (it is sent once).
                if let Some(mut io) = closing.into_only() {
                    let shutdown = std::future::poll_fn(|cx| Pin::new(&mut io).poll_shutdown(cx));
                    let _ = within(timer.sleep(CLOSE_BOUND), shutdown).await;
                }
            })
        },
    )
}

/// `future`'s output, or `None` if `bound` ends first.
#[cfg(feature = "tls")]
async fn within<F: Future>(mut bound: graceful_core::Sleep, future: F) -> Option<F::Output> {
    let mut future = std::pin::pin!(future);
    std::future::poll_fn(|cx| {
        if let Poll::Ready(output) = future.as_mut().poll(cx) {
            return Poll::Ready(Some(output));
        }
        bound.as_mut().poll(cx).map(|()| None)
    })
    .await
}

/// The accept loop of [`serve_listener`] and [`serve_tls_listener`]: each
/// accepted connection gets its service and a task made by `connect`.
fn serve_with<L, T, M, S, B, E>(
    listener: L,
    shutdown: &Shutdown,
    timer: T,
    make_service: M,
    spawn: E,
    connect: impl Fn(L::Conn, S, Shutdown, Spawner, Arc<dyn Timer>) -> ConnectionTask + Send + 'static,
) -> Serve
where
    L: Accept + Send + 'static,
    T: Timer,
    M: Fn(&L::Conn) -> S + Send + 'static,
    S: SpawnService<B>,
    B: SpawnBody,
    E: Fn(ConnectionTask) + Send + Sync + 'static,
{
    let Ok(token) = shutdown.track_listener() else {
        drop(listener);
        return Serve {
            future: Box::pin(async {}),
        };
    };
    let shutdown = shutdown.clone();
    let spawner = Spawner::new(spawn);
    let timer: Arc<dyn Timer> = Arc::new(timer);
    let accept_timer = timer.clone();
    let serve = move |io: L::Conn| {
        let service = make_service(&io);
        let task = connect(
            io,
            service,
            shutdown.clone(),
            spawner.clone(),
            timer.clone(),
        );
        spawner.spawn(task);
        Ok(())
    };
    let accepting = accept(listener, token, accept_timer, serve);
    Serve {
        future: Box::pin(async move {
            // Only the socket's failing to leave the reactor ends it with
            // an error (`serve` never fails); it is closed then all the
            // same.
            if let Err(error) = accepting.await {
                log::accept_error(&error);
            }
        }),
    }
}

/// A listener being served. See [`serve_listener`].
///
/// Resolves once the listener is closed and its token dropped.
///
/// # Cancel safety
///
/// Dropping it closes the listener at once, without taking the connections
/// waiting in its accept queue (the kernel resets them), and drops its token.
/// Connections already accepted go on being served. To stop serving
/// cleanly, let the shutdown close the listener instead.
#[must_use = "futures do nothing unless polled"]
pub struct Serve {
    future: Pin<Box<dyn Future<Output = ()> + Send>>,
}

impl Future for Serve {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.future.as_mut().poll(cx)
    }
}

impl fmt::Debug for Serve {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Serve").finish_non_exhaustive()
    }
}

/// Logging through `tracing` with the `tracing` feature, nothing without.
mod log {
    #[cfg(feature = "tracing")]
    pub(super) fn accept_error(error: &std::io::Error) {
        tracing::warn!(%error, "the listener failed");
    }

    #[cfg(feature = "tracing")]
    pub(super) fn connection_error(error: &hyper::Error) {
        tracing::debug!(%error, "connection ended with an error");
    }

    #[cfg(not(feature = "tracing"))]
    pub(super) fn accept_error(_: &std::io::Error) {}

    #[cfg(not(feature = "tracing"))]
    pub(super) fn connection_error(_: &hyper::Error) {}
}
