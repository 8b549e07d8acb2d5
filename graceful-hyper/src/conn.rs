//! One HTTP/1.1 connection, served until the client leaves, the server
//! refuses it, or the drain deadline finds it busy.
//!
//! # Design
//!
//! **When a request ends.** A request is in progress until the last byte of
//! its response has left the process. The body knows when it has handed its
//! last frame to hyper, but hyper then still has to encode that frame and
//! write it to the socket. Releasing the guard at the body's end leaves a
//! window in which the drain completes, cleanup runs and the process exits
//! with the response's tail still in hyper's buffer: the client then sees a
//! truncated response for a request the server counted as done (an order
//! committed, its `201` lost). So under [`serve_connection`] the body hands
//! its guard to the connection instead, and the connection lets go of it
//! the next time hyper's flush of the socket succeeds, which hyper only
//! attempts once everything it had buffered has been written.
//!
//! **Which connections close at the deadline.** hyper's own
//! `graceful_shutdown` closes idle keep-alive connections at once; a pooled
//! client that had just picked one to send a request then sees a reset or an
//! EOF, which it cannot tell apart from a crash, and does not retry if the
//! request was a `POST`. Here an idle connection stays open: a request on it
//! is answered `503` with `Connection: close`, a clean answer that says when
//! to retry, and the socket closes with the process. Only at the drain
//! deadline ([`Shutdown::abandoned`]) does the server close connections, and
//! only those still busy with a request (their responses cannot complete
//! any more; the abandoned count says how many). A connection that never
//! sent a whole request head holds no guard, so it never delays the exit.

use crate::service::GracefulService;
use graceful_core::{Abandoned, OwnedGuard, Shutdown};
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
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::{Context, Poll};

type BoxError = Box<dyn StdError + Send + Sync>;

/// What one connection shares with the requests it serves.
#[derive(Debug, Default)]
pub(crate) struct ConnState {
    /// Requests of this connection whose guard is alive.
    busy: AtomicUsize,
    flushing: Mutex<Flushing>,
}

#[derive(Debug, Default)]
struct Flushing {
    /// Set once the connection's io is gone: nothing will be flushed again.
    closed: bool,
    /// Requests whose response has been handed to hyper, waiting for the
    /// next successful flush.
    waiting: Vec<Held>,
}

impl ConnState {
    fn lock(&self) -> MutexGuard<'_, Flushing> {
        // No code of ours panics while holding it, and the data stays
        // consistent whatever happens: ignore poisoning.
        self.flushing.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn is_busy(&self) -> bool {
        self.busy.load(Ordering::Acquire) > 0
    }

    /// Keeps `held` until the next successful flush, or drops it now if the
    /// connection is already gone.
    fn release_after_flush(&self, held: Held) {
        let mut flushing = self.lock();
        if flushing.closed {
            drop(flushing);
            drop(held);
        } else {
            flushing.waiting.push(held);
        }
    }

    /// Everything handed over before this flush has been written.
    fn flushed(&self) {
        let waiting = std::mem::take(&mut self.lock().waiting);
        // Dropped with the lock released: a guard's drop may wake the driver.
        drop(waiting);
    }

    /// The io is gone: release everything, now and from now on.
    fn close(&self) {
        let waiting = {
            let mut flushing = self.lock();
            flushing.closed = true;
            std::mem::take(&mut flushing.waiting)
        };
        drop(waiting);
    }
}

/// A request's guard, and its place in its connection's busy count.
#[derive(Debug)]
struct Held {
    _guard: OwnedGuard,
    conn: Option<Arc<ConnState>>,
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(conn) = &self.conn {
            conn.busy.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

/// One request in progress. Dropping it ends the request: at once for a
/// request served outside [`serve_connection`], at the connection's next
/// successful flush (or its close) for one served by it.
#[derive(Debug)]
pub(crate) struct InFlight(Option<Held>);

impl InFlight {
    pub(crate) fn new(guard: OwnedGuard, conn: Option<Arc<ConnState>>) -> InFlight {
        if let Some(conn) = &conn {
            conn.busy.fetch_add(1, Ordering::AcqRel);
        }
        InFlight(Some(Held {
            _guard: guard,
            conn,
        }))
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        let Some(held) = self.0.take() else { return };
        match held.conn.clone() {
            Some(conn) => conn.release_after_flush(held),
            None => drop(held),
        }
    }
}

/// The connection's io, watched for successful flushes.
struct TrackedIo<I> {
    io: I,
    state: Arc<ConnState>,
}

impl<I> Drop for TrackedIo<I> {
    fn drop(&mut self) {
        self.state.close();
    }
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
        // hyper flushes the io only after writing all it had buffered
        // (with `pipeline_flush` off, as here), so every response handed
        // over before this point is now out.
        if let Poll::Ready(Ok(())) = flushed {
            this.state.flushed();
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
/// async fn connection<I: Read + Write + Unpin>(io: I, shutdown: &Shutdown) -> hyper::Result<()> {
///     graceful_hyper::serve_connection(io, service_fn(hello), shutdown).await
/// }
/// ```
pub fn serve_connection<I, S, B>(io: I, service: S, shutdown: &Shutdown) -> ServeConnection<I, S, B>
where
    I: Read + Write + Unpin,
    S: Service<Request<Incoming>, Response = Response<B>>,
    S::Error: Into<BoxError>,
    B: Body + 'static,
    B::Error: Into<BoxError>,
{
    let state = Arc::new(ConnState::default());
    let io = TrackedIo {
        io,
        state: state.clone(),
    };
    let service = GracefulService::for_connection(service, shutdown.clone(), state.clone());
    let conn = http1::Builder::new()
        .keep_alive(true)
        .serve_connection(io, service);
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
        conn: http1::Connection<TrackedIo<I>, GracefulService<S>>,
        // `None` once it has resolved and found the connection idle: no
        // request of this connection can be in progress after that.
        abandoned: Option<Abandoned>,
        state: Arc<ConnState>,
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
    I: Read + Write + Unpin,
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
