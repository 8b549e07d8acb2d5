//! One HTTP/1.1 connection, served until the client leaves, the server
//! refuses it, or the drain deadline finds it busy.
//!
//! # Design
//!
//! The rules are the core's ([`graceful_core::conn`]): a request stays in
//! progress until the flush after its last byte, and at the drain deadline
//! only a busy connection is closed (hyper's own `graceful_shutdown` closes
//! idle keep-alive connections at once, which a pooled client that had just
//! picked one sees as a reset). This module only tells the core what hyper
//! does: [`TrackedIo`] reports each successful flush (hyper flushes only
//! once it has written everything it buffered, with `pipeline_flush` off,
//! as here) and, when hyper drops it, that the io is gone.

use crate::service::GracefulService;
use graceful_core::conn::{ConnIo, Connection};
use graceful_core::{Abandoned, Shutdown};
use http::{Request, Response};
use http_body::Body;
use hyper::body::Incoming;
use hyper::rt::{Read, ReadBufCursor, Write};
use hyper::server::conn::http1;
use hyper::service::Service;
use pin_project_lite::pin_project;
use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

type BoxError = Box<dyn StdError + Send + Sync>;

/// The connection's io, watched for successful flushes.
struct TrackedIo<I> {
    io: I,
    // Dropped with the io: the connection's requests waiting for a flush
    // end then.
    conn: ConnIo,
}

impl<I: Read + Unpin> Read for TrackedIo<I> {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl<I: Write + Unpin> Write for TrackedIo<I> {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let flushed = Pin::new(&mut this.io).poll_flush(cx);
        if let Poll::Ready(Ok(())) = flushed {
            this.conn.flushed();
        }
        flushed
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }
}

/// Serves one HTTP/1.1 connection under `shutdown`.
///
/// Every request goes through a [`GracefulService`] around `service`, and
/// the connection behaves as follows:
///
/// - keep-alive is on; no request is read from a connection after a
///   response that carries `Connection: close` (every response whose head is
///   produced once the shutdown drains, and every `503` of a refused
///   request), and hyper closes it once that response is out;
/// - a request stays in progress until its response's last bytes have been
///   flushed to `io`;
/// - when [`Shutdown::abandoned`] resolves (the drain deadline passed, or
///   the shutdown was forced), the connection is closed at once if a request
///   of it is still in progress, and the future resolves with `Ok(())`; an
///   idle connection is left open, and answers `503` if it is used again;
/// - it never closes a connection just because the shutdown began: see the
///   module's design notes, and the trap they avoid in hyper's own
///   `graceful_shutdown`.
///
/// HTTP upgrades (a WebSocket's `101 Switching Protocols`) are served: the
/// handler takes the upgraded io with `hyper::upgrade::on`. The upgrading
/// request ends when its `101` has been flushed; the session that follows
/// is not counted in flight (it neither delays the drain nor is cut off at
/// its deadline: it ends with the process, or when either side closes it).
///
/// `io` is any hyper io: the runtime adapters wrap their sockets (for tokio,
/// `hyper_util::rt::TokioIo`). hyper's `http1::Builder` is used with its
/// defaults and no timer, so no header read timeout applies.
///
/// # Examples
///
/// ```
/// use graceful_core::Shutdown;
/// use http_body_util::Full;
/// use hyper::body::{Bytes, Incoming};
/// use hyper::rt::{Read, Write};
/// use hyper::service::service_fn;
/// use hyper::{Request, Response};
/// use std::convert::Infallible;
///
/// async fn hello(_: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
///     Ok(Response::new(Full::new(Bytes::from_static(b"hello"))))
/// }
///
/// # #[allow(dead_code)] // an example of a function a runtime adapter calls
/// async fn connection<I: Read + Write + Unpin + Send + 'static>(io: I, shutdown: &Shutdown) -> hyper::Result<()> {
///     graceful_hyper::serve_connection(io, service_fn(hello), shutdown).await
/// }
/// ```
pub fn serve_connection<I, S, B>(io: I, service: S, shutdown: &Shutdown) -> ServeConnection<I, S, B>
where
    I: Read + Write + Unpin + Send + 'static,
    S: Service<Request<Incoming>, Response = Response<B>>,
    S::Error: Into<BoxError>,
    B: Body + 'static,
    B::Error: Into<BoxError>,
{
    let (state, conn) = Connection::new(shutdown);
    let io = TrackedIo { io, conn };
    let service = GracefulService::for_connection(service, state.clone());
    let conn = http1::Builder::new()
        .keep_alive(true)
        .serve_connection(io, service)
        .with_upgrades();
    ServeConnection {
        conn,
        abandoned: Some(shutdown.abandoned()),
        state,
    }
}

pin_project! {
    /// One connection being served. See [`serve_connection`].
    ///
    /// Resolves when the connection ends: the client closed it, a response
    /// with `Connection: close` went out, an error occurred (`Err`), or the
    /// drain deadline found it busy (`Ok`).
    ///
    /// # Cancel safety
    ///
    /// Dropping it closes the connection where it stands: a response being
    /// written is cut off and its request ends (its guard is released).
    #[must_use = "futures do nothing unless polled"]
    pub struct ServeConnection<I, S, B>
    where
        S: Service<Request<Incoming>, Response = Response<B>>,
        S::Error: Into<BoxError>,
        B: Body,
    {
        #[pin]
        conn: http1::UpgradeableConnection<TrackedIo<I>, GracefulService<S>>,
        // `None` once it has resolved and found the connection idle: no
        // request of this connection can be in progress after that.
        abandoned: Option<Abandoned>,
        state: Connection,
    }
}

impl<I, S, B> ServeConnection<I, S, B>
where
    S: Service<Request<Incoming>, Response = Response<B>>,
    S::Error: Into<BoxError>,
    B: Body,
{
    /// True while a request of this connection is in progress.
    pub fn is_busy(&self) -> bool {
        self.state.is_busy()
    }
}

impl<I, S, B> fmt::Debug for ServeConnection<I, S, B>
where
    S: Service<Request<Incoming>, Response = Response<B>>,
    S::Error: Into<BoxError>,
    B: Body,
{
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServeConnection")
            .field("busy", &self.state.is_busy())
            .finish_non_exhaustive()
    }
}

impl<I, S, B> Future for ServeConnection<I, S, B>
where
    I: Read + Write + Unpin + Send + 'static,
    S: Service<Request<Incoming>, Response = Response<B>>,
    S::Error: Into<BoxError>,
    B: Body + 'static,
    B::Error: Into<BoxError>,
{
    type Output = hyper::Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Some(abandoned) = this.abandoned
            && Pin::new(abandoned).poll(cx).is_ready()
        {
            // Requests are refused from here on (the phase is at least
            // `Draining`), so busy can only go down: one look decides.
            if this.state.is_busy() {
                return Poll::Ready(Ok(()));
            }
            *this.abandoned = None;
        }
        this.conn.poll(cx)
    }
}
