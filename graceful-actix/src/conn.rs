//! One HTTP/1.1 connection: its shared state, its io, and the task that
//! serves it.
//!
//! # Design
//!
//! **When a request ends, which connections close at the deadline.** The
//! core's rules ([`graceful_core::conn`]): a request stays in progress
//! until the flush after its last byte, and at the drain deadline only the
//! connections still busy with a request are closed (actix-server's own
//! graceful stop does not work that way: see the crate's README). [`Io`]
//! tells the core what actix-http's dispatcher does: it reports each
//! successful flush (the dispatcher flushes only once everything it had
//! buffered has been written) and, when dropped, that the io is gone.
//!
//! **Requests behind a `Connection: close` response.** What is actix's
//! alone. Its dispatcher reads pipelined requests ahead and calls the
//! service for the next one as soon as a response is done, even when that
//! response said `Connection: close`: the next request would be handled
//! (an order stored) and its answer written after a response that told the
//! client to stop reading. Here the middleware never begins such a
//! request: it parks it (its future stays pending, it holds no guard), and
//! the connection task closes the connection as soon as the
//! `Connection: close` response has been flushed. The client, which was
//! told the connection closes, retries the request elsewhere.

use actix_rt::net::TcpStream;
use actix_service::Service;
use graceful_core::Shutdown;
use graceful_core::conn::{ConnIo, Connection};
use std::cell::Cell;
use std::fmt;
use std::future::{Future, poll_fn};
use std::io;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::rc::Rc;
use std::task::{Context, Poll};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::Notify;

/// What a connection's requests share, beyond the core's [`Connection`]:
/// whether a response closes it, and whether a request waits behind that.
/// Connections live on one worker thread, so this is `Rc` and `Cell`.
#[derive(Debug, Default)]
pub(crate) struct Closing {
    /// A response on this connection said `Connection: close` (or its
    /// request did): no later request on it may begin.
    closing: Cell<bool>,
    /// The flush count when a request arrived after `closing`: once a flush
    /// follows, the closing response is out and the connection is closed.
    parked_at: Cell<Option<usize>>,
}

/// The connection, as the middleware finds it in the request's connection
/// data (`HttpRequest::conn_data`).
#[derive(Clone, Debug)]
pub(crate) struct ConnData {
    pub(crate) conn: Connection,
    closing: Rc<Closing>,
}

impl ConnData {
    /// No later request on this connection may begin.
    pub(crate) fn set_closing(&self) {
        self.closing.closing.set(true);
    }

    pub(crate) fn is_closing(&self) -> bool {
        self.closing.closing.get()
    }

    /// A request arrived after a closing response: it is never begun, and
    /// the connection closes once that response is flushed.
    pub(crate) fn park(&self) {
        if self.closing.parked_at.get().is_none() {
            self.closing.parked_at.set(Some(self.conn.flushes()));
        }
    }

    /// True once a request is parked and a flush has followed it: the
    /// closing response has been written, nothing else will be.
    fn should_close(&self) -> bool {
        self.closing
            .parked_at
            .get()
            .is_some_and(|parked| self.conn.flushes() > parked)
    }
}

/// The socket under [`Io`]: TCP, or TLS over it (feature `tls`). A TLS
/// stream is shared with the connection's task, which shuts it down (sends
/// `close_notify`) once the dispatcher has let go of it.
pub(crate) enum Stream {
    Plain(TcpStream),
    #[cfg(feature = "tls")]
    Tls(Rc<std::cell::RefCell<tokio_rustls::server::TlsStream<TcpStream>>>),
}

impl From<TcpStream> for Stream {
    fn from(stream: TcpStream) -> Stream {
        Stream::Plain(stream)
    }
}

/// `$call` on the stream, whichever it is, pinned as `$io`.
macro_rules! on_stream {
    ($stream:expr, $io:ident => $call:expr) => {
        match $stream {
            Stream::Plain(stream) => {
                let $io = Pin::new(stream);
                $call
            }
            #[cfg(feature = "tls")]
            Stream::Tls(stream) => {
                let mut stream = stream.borrow_mut();
                let $io = Pin::new(&mut *stream);
                $call
            }
        }
    };
}

/// The connection's socket, watched for successful flushes.
pub(crate) struct Io {
    stream: Stream,
    // Dropped with the socket: the requests waiting for a flush end then.
    conn: ConnIo,
    data: ConnData,
}

impl Io {
    pub(crate) fn new(stream: impl Into<Stream>, shutdown: &Shutdown) -> Io {
        let (conn, io) = Connection::new(shutdown);
        Io {
            stream: stream.into(),
            conn: io,
            data: ConnData {
                conn,
                closing: Rc::default(),
            },
        }
    }

    /// What the middleware finds in the connection data.
    pub(crate) fn data(&self) -> ConnData {
        self.data.clone()
    }
}

impl fmt::Debug for Io {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let tls = !matches!(self.stream, Stream::Plain(_));
        f.debug_struct("Io")
            .field("tls", &tls)
            .finish_non_exhaustive()
    }
}

impl AsyncRead for Io {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        on_stream!(&mut self.get_mut().stream, io => io.poll_read(cx, buf))
    }
}

impl AsyncWrite for Io {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        on_stream!(&mut self.get_mut().stream, io => io.poll_write(cx, buf))
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        on_stream!(&mut self.get_mut().stream, io => io.poll_write_vectored(cx, bufs))
    }

    fn is_write_vectored(&self) -> bool {
        match &self.stream {
            Stream::Plain(stream) => stream.is_write_vectored(),
            #[cfg(feature = "tls")]
            Stream::Tls(stream) => stream.borrow().is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let flushed = on_stream!(&mut this.stream, io => io.poll_flush(cx));
        if let Poll::Ready(Ok(())) = flushed {
            this.conn.flushed();
        }
        flushed
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        on_stream!(&mut self.get_mut().stream, io => io.poll_shutdown(cx))
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
///
/// With a TLS `acceptor`, the handshake comes first, under
/// `HANDSHAKE_TIMEOUT`, holding nothing (a connection still handshaking is
/// not in progress), and the TLS stream is shut down at the end, which
/// sends `close_notify`, unless the dispatcher already did.
pub(crate) async fn serve_connection<S>(
    stream: TcpStream,
    service: Rc<S>,
    shutdown: Shutdown,
    abandon: Rc<Abandon>,
    acceptor: Acceptor,
) where
    S: Service<(Io, Option<SocketAddr>)>,
    S::Error: fmt::Display,
{
    let peer = stream.peer_addr().ok();
    let Some(stream) = handshake(stream, acceptor).await else {
        return;
    };
    #[cfg(feature = "tls")]
    let shared = match &stream {
        Stream::Tls(tls) => Some(tls.clone()),
        Stream::Plain(_) => None,
    };
    drive(stream, peer, service, shutdown, abandon).await;
    #[cfg(feature = "tls")]
    if let Some(tls) = shared {
        tls::close(tls).await;
    }
}

/// The TLS acceptor of a worker's connections, if it serves TLS.
#[cfg(feature = "tls")]
pub(crate) type Acceptor = Option<tokio_rustls::TlsAcceptor>;
/// The TLS acceptor of a worker's connections: none without `tls`.
#[cfg(not(feature = "tls"))]
pub(crate) type Acceptor = Option<std::convert::Infallible>;

/// The stream to serve: `stream` itself, or TLS over it once its handshake
/// is done; `None` if the handshake failed or took too long.
async fn handshake(stream: TcpStream, acceptor: Acceptor) -> Option<Stream> {
    match acceptor {
        None => Some(Stream::Plain(stream)),
        #[cfg(feature = "tls")]
        Some(acceptor) => tls::handshake(stream, acceptor).await,
        #[cfg(not(feature = "tls"))]
        Some(never) => match never {},
    }
}

/// TLS under actix: the handshake's bound and the `close_notify` at the end,
/// as in `graceful_hyper::tls`.
#[cfg(feature = "tls")]
mod tls {
    use super::Stream;
    use actix_rt::net::TcpStream;
    use std::cell::RefCell;
    use std::pin::Pin;
    use std::rc::Rc;
    use std::time::Duration;
    use tokio::io::AsyncWrite;
    use tokio_rustls::server::TlsStream;

    /// How long the `close_notify` may take to be written: 1 s.
    const CLOSE_BOUND: Duration = Duration::from_secs(1);

    pub(super) async fn handshake(
        stream: TcpStream,
        acceptor: tokio_rustls::TlsAcceptor,
    ) -> Option<Stream> {
        let timeout = graceful_hyper::tls::HANDSHAKE_TIMEOUT;
        match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
            Ok(Ok(tls)) => Some(Stream::Tls(Rc::new(RefCell::new(tls)))),
            _ => None,
        }
    }

    /// Shuts the stream down (its `close_notify`), unless something still
    /// holds it.
    pub(super) async fn close(tls: Rc<RefCell<TlsStream<TcpStream>>>) {
        if Rc::strong_count(&tls) > 1 {
            return;
        }
        let shutdown =
            std::future::poll_fn(|cx| Pin::new(&mut *tls.borrow_mut()).poll_shutdown(cx));
        let _ = tokio::time::timeout(CLOSE_BOUND, shutdown).await;
    }
}

/// Serves the connection until it ends (see [`serve_connection`]).
async fn drive<S>(
    stream: Stream,
    peer: Option<SocketAddr>,
    service: Rc<S>,
    shutdown: Shutdown,
    abandon: Rc<Abandon>,
) where
    S: Service<(Io, Option<SocketAddr>)>,
    S::Error: fmt::Display,
{
    let io = Io::new(stream, &shutdown);
    let state = io.data();
    // Made before the first look at `fired`: a `Notified` sees every
    // `notify_waiters` that comes after it was made.
    let mut abandoned = pin!(abandon.notify.notified());
    let mut dispatcher = pin!(service.call((io, peer)));
    let mut watching = true;
    poll_fn(|cx| {
        if watching && (abandon.fired.get() || abandoned.as_mut().poll(cx).is_ready()) {
            if state.conn.is_busy() {
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
    use tokio::io::AsyncWriteExt;

    #[test]
    fn a_parked_request_closes_the_connection_after_the_next_flush() {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime")
            .block_on(async {
                let shutdown = Shutdown::builder().build().expect("build").handle();
                let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                    .await
                    .expect("bind");
                let _client = std::net::TcpStream::connect(listener.local_addr().expect("addr"))
                    .expect("connect");
                let (server, _) = listener.accept().await.expect("accept");
                let mut io = Io::new(server, &shutdown);
                let state = io.data();
                io.flush().await.expect("flush");
                assert!(!state.should_close(), "nothing parked");
                state.set_closing();
                state.park();
                assert!(
                    !state.should_close(),
                    "the closing response is not flushed yet"
                );
                state.park(); // a second parked request does not move the mark
                io.write_all(b"HTTP/1.1 200 OK\r\n\r\n")
                    .await
                    .expect("write");
                assert!(!state.should_close(), "written, not flushed");
                io.flush().await.expect("flush");
                assert!(state.should_close());
            });
    }
}
