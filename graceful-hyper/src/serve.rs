//! A listener served with [`serve_connection`], on any runtime: the part
//! of serving that the tokio and smol adapters share.
//!
//! The accept loop is the core's ([`graceful_core::accept`]): a runtime
//! gives it its listener ([`Accept`], whose connections are already hyper
//! io) and a way to spawn a task. Everything between (a service made per
//! connection, [`serve_connection`] run on it, its error logged) is the
//! same for every hyper server, so it is written here once.

use crate::{Spawner, serve_connection};
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
/// service from `make_service` and runs [`serve_connection`] in a task that
/// `spawn` starts; `timer` paces the accept loop's back-off.
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
        let connection = serve_connection(io, service, &shutdown, spawner.clone(), timer.clone());
        spawner.spawn(Box::pin(async move {
            if let Err(error) = connection.await {
                log::connection_error(&error);
            }
        }));
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
