//! One HTTP/1.1 connection: its shared state, its io, and the task that
//! serves it.
//!
//! # Design
//!
//! **When a request ends.** A request is in progress until the last byte of
//! its response has left the process. The response body knows when it has
//! handed its last chunk to actix-http's dispatcher, but the dispatcher then
//! still has to encode that chunk and write it to the socket. Releasing the
//! guard at the body's end would leave a window in which the drain
//! completes, cleanup runs and the process exits with the response's tail
//! still in the dispatcher's buffer. So the body hands its guard to the
//! connection instead ([`ConnState::release_after_flush`]), and the
//! connection lets go of it the next time the dispatcher flushes the socket,
//! which it does only once everything it had buffered has been written.
//!
//! **Requests behind a `Connection: close` response.** actix-http's
//! dispatcher reads pipelined requests ahead and calls the service for the
//! next one as soon as a response is done, even when that response said
//! `Connection: close`: the next request would be handled (an order stored)
//! and its answer written after a response that told the client to stop
//! reading. Here the middleware never begins such a request: it parks it
//! (its future stays pending, it holds no guard), and the connection task
//! closes the connection as soon as the `Connection: close` response has
//! been flushed. The client, which was told the connection closes, retries
//! the request elsewhere.
//!
//! **Which connections close at the drain deadline.** Only those still busy
//! with a request: an idle keep-alive connection stays open, and a request
//! on it gets a clean `503` with `Connection: close`, until the process
//! exits. actix-server's own graceful stop does not work that way (see the
//! crate's README).

use actix_rt::net::TcpStream;
use actix_service::Service;
use graceful_core::OwnedGuard;
use std::cell::{Cell, RefCell};
use std::fmt;
use std::future::{Future, poll_fn};
use std::io;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::rc::Rc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;

/// What one connection shares with the requests it serves. Connections live
/// on one worker thread, so this is `Rc` and `Cell`.
#[derive(Debug, Default)]
pub(crate) struct ConnState {
    /// Requests of this connection whose guard is alive.
    busy: Cell<usize>,
    /// Set once the connection's io is gone: nothing will be flushed again.
    closed: Cell<bool>,
    /// Requests whose response has been handed to the dispatcher, waiting
    /// for its next successful flush.
    waiting: RefCell<Vec<Held>>,
    /// Successful flushes so far.
    flushes: Cell<u64>,
    /// A response on this connection said `Connection: close` (or its
    /// request did): no later request on it may begin.
    closing: Cell<bool>,
    /// The flush count when a request arrived after `closing`: once a flush
    /// follows, the closing response is out and the connection is closed.
    parked_at: Cell<Option<u64>>,
}

impl ConnState {
    pub(crate) fn is_busy(&self) -> bool {
        self.busy.get() > 0
    }

    /// No later request on this connection may begin.
    pub(crate) fn set_closing(&self) {
        self.closing.set(true);
    }

    pub(crate) fn is_closing(&self) -> bool {
        self.closing.get()
    }

    /// A request arrived after a closing response: it is never begun, and
    /// the connection closes once that response is flushed.
    pub(crate) fn park(&self) {
        if self.parked_at.get().is_none() {
            self.parked_at.set(Some(self.flushes.get()));
        }
    }

    /// True once a request is parked and a flush has followed it: the
    /// closing response has been written, nothing else will be.
    fn should_close(&self) -> bool {
        self.parked_at
            .get()
            .is_some_and(|parked| self.flushes.get() > parked)
    }

    /// Keeps `held` until the next successful flush, or drops it now if the
    /// connection is already gone.
    fn release_after_flush(&self, held: Held) {
        if self.closed.get() {
            drop(held);
        } else {
            self.waiting.borrow_mut().push(held);
        }
    }

    /// Everything handed over before this flush has been written.
    fn flushed(&self) {
        self.flushes.set(self.flushes.get() + 1);
        let waiting = std::mem::take(&mut *self.waiting.borrow_mut());
        // Dropped with the borrow released: dropping a `Held` touches `busy`.
        drop(waiting);
    }

    /// The io is gone: release everything, now and from now on.
    fn close(&self) {
        self.closed.set(true);
        let waiting = std::mem::take(&mut *self.waiting.borrow_mut());
        drop(waiting);
    }
}

/// A request's guard, and its place in its connection's busy count.
#[derive(Debug)]
struct Held {
    _guard: OwnedGuard,
    conn: Option<Rc<ConnState>>,
}

impl Drop for Held {
    fn drop(&mut self) {
        if let Some(conn) = &self.conn {
            conn.busy.set(conn.busy.get() - 1);
        }
    }
}

/// One request in progress. Dropping it ends the request: at once for a
/// request served outside this crate's server (plain `HttpServer`), at the
/// connection's next successful flush (or its close) for one served by it.
#[derive(Debug)]
pub(crate) struct InFlight(Option<Held>);

impl InFlight {
    pub(crate) fn new(guard: OwnedGuard, conn: Option<Rc<ConnState>>) -> InFlight {
        if let Some(conn) = &conn {
            conn.busy.set(conn.busy.get() + 1);
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

/// The connection's state, as the middleware finds it in the request's
/// connection data (`HttpRequest::conn_data`).
#[derive(Clone, Debug)]
pub(crate) struct ConnData(pub(crate) Rc<ConnState>);

/// The connection's socket, watched for successful flushes.
pub(crate) struct Io {
    stream: TcpStream,
    state: Rc<ConnState>,
}

impl Io {
    pub(crate) fn new(stream: TcpStream, state: Rc<ConnState>) -> Io {
        Io { stream, state }
    }

    /// What the middleware finds in the connection data.
    pub(crate) fn data(&self) -> ConnData {
        ConnData(self.state.clone())
    }
}

impl fmt::Debug for Io {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Io")
            .field("stream", &self.stream)
            .finish_non_exhaustive()
    }
}

impl Drop for Io {
    fn drop(&mut self) {
        self.state.close();
    }
}

impl AsyncRead for Io {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_read(cx, buf)
    }
}

impl AsyncWrite for Io {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().stream).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.stream.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let flushed = Pin::new(&mut this.stream).poll_flush(cx);
        // The dispatcher flushes the io only after writing all it had
        // buffered, so every response handed over before this point is out.
        if let Poll::Ready(Ok(())) = flushed {
            this.state.flushed();
        }
        flushed
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().stream).poll_shutdown(cx)
    }
}

/// The drain deadline, as seen by one worker's connections: one task per
/// worker waits for [`Shutdown::abandoned`](graceful_core::Shutdown::abandoned)
/// and fires this, so that connections do not each poll the shutdown.
#[derive(Debug, Default)]
pub(crate) struct Abandon {
    fired: Cell<bool>,
    notify: Notify,
}

impl Abandon {
    pub(crate) fn fire(&self) {
        self.fired.set(true);
        self.notify.notify_waiters();
    }
}

/// Serves one connection with `service` (an HTTP/1 service over [`Io`]),
/// until the dispatcher is done, the connection must close after a closing
/// response, or the drain deadline finds it busy. The socket closes when
/// this returns.
pub(crate) async fn serve_connection<S>(stream: TcpStream, service: Rc<S>, abandon: Rc<Abandon>)
where
    S: Service<(Io, Option<SocketAddr>)>,
    S::Error: fmt::Display,
{
    let peer = stream.peer_addr().ok();
    let state = Rc::new(ConnState::default());
    // Made before the first look at `fired`: a `Notified` sees every
    // `notify_waiters` that comes after it was made.
    let mut abandoned = pin!(abandon.notify.notified());
    let mut dispatcher = pin!(service.call((Io::new(stream, state.clone()), peer)));
    let mut watching = true;
    poll_fn(|cx| {
        if watching && (abandon.fired.get() || abandoned.as_mut().poll(cx).is_ready()) {
            if state.is_busy() {
                // Its response cannot complete any more: cut it off.
                return Poll::Ready(());
            }
            // New requests are refused from here on, so an idle connection
            // stays idle: leave it open until the process exits.
            watching = false;
        }
        if let Poll::Ready(result) = dispatcher.as_mut().poll(cx) {
            if let Err(error) = result {
                log::connection_error(&error);
            }
            return Poll::Ready(());
        }
        if state.should_close() {
            return Poll::Ready(());
        }
        Poll::Pending
    })
    .await;
}

/// Logging through `tracing` with the `tracing` feature, nothing without.
mod log {
    use std::fmt::Display;

    #[cfg(feature = "tracing")]
    pub(super) fn connection_error(error: &dyn Display) {
        tracing::debug!(%error, "connection ended with an error");
    }

    #[cfg(not(feature = "tracing"))]
    pub(super) fn connection_error(_: &dyn Display) {}
}

#[cfg(test)]
mod tests {
    use super::*;
    use graceful_core::Shutdown;
    use tokio::io::AsyncWriteExt;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
    }

    /// The server side of a connection on 127.0.0.1, and its client.
    async fn socket() -> (TcpStream, std::net::TcpStream) {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let client =
            std::net::TcpStream::connect(listener.local_addr().expect("addr")).expect("connect");
        (listener.accept().await.expect("accept").0, client)
    }

    #[test]
    fn a_request_ends_at_the_first_flush_after_its_body() {
        runtime().block_on(async {
            let shutdown = Shutdown::builder().build().expect("build").handle();
            let state = Rc::new(ConnState::default());
            let (server, _client) = socket().await;
            let mut io = Io::new(server, state.clone());

            let in_flight =
                InFlight::new(shutdown.enter_owned().expect("enter"), Some(state.clone()));
            assert!(state.is_busy());
            drop(in_flight); // the body ended: handed to the dispatcher
            assert_eq!(shutdown.in_flight(), 1, "not flushed yet");
            assert!(state.is_busy());

            io.write_all(b"HTTP/1.1 200 OK\r\n\r\n")
                .await
                .expect("write");
            assert_eq!(shutdown.in_flight(), 1, "written, not flushed");
            io.flush().await.expect("flush");
            assert_eq!(shutdown.in_flight(), 0);
            assert!(!state.is_busy());

            // Once the io is gone, a request ends when its body does.
            let in_flight =
                InFlight::new(shutdown.enter_owned().expect("enter"), Some(state.clone()));
            drop(io);
            assert_eq!(shutdown.in_flight(), 1);
            drop(in_flight);
            assert_eq!(shutdown.in_flight(), 0);
        });
    }

    #[test]
    fn closing_the_io_releases_what_waits_for_a_flush() {
        runtime().block_on(async {
            let shutdown = Shutdown::builder().build().expect("build").handle();
            let state = Rc::new(ConnState::default());
            let (server, _client) = socket().await;
            let io = Io::new(server, state.clone());
            drop(InFlight::new(
                shutdown.enter_owned().expect("enter"),
                Some(state.clone()),
            ));
            assert_eq!(shutdown.in_flight(), 1);
            drop(io);
            assert_eq!(shutdown.in_flight(), 0);
        });
    }

    #[test]
    fn a_parked_request_closes_the_connection_after_the_next_flush() {
        let state = ConnState::default();
        state.flushed();
        assert!(!state.should_close(), "nothing parked");
        state.set_closing();
        state.park();
        assert!(
            !state.should_close(),
            "the closing response is not flushed yet"
        );
        state.park(); // a second parked request does not move the mark
        state.flushed();
        assert!(state.should_close());
    }
}
