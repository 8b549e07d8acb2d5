//! One connection: its shared state, its io, and the task that serves it,
//! HTTP/1.1 through actix-http's dispatcher or HTTP/2 through [`crate::h2`]
//! (feature `http2`).
//!
//! # Design
//!
//! **Which protocol.** Over TLS, the one the handshake's ALPN chose (`h2`
//! or anything else, which is HTTP/1.1). Over plaintext, the first bytes
//! decide: the 24-byte HTTP/2 connection preface means HTTP/2 with prior
//! knowledge (h2c), anything else HTTP/1.1. Reading them holds nothing (a
//! connection that never sends a byte never delays the drain, and is
//! dropped after the client request timeout, as actix would); [`Io`] then
//! replays them, so that neither protocol loses a byte.
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

use actix_http::RequestHead;
use actix_rt::net::TcpStream;
use actix_service::Service;
use graceful_core::Shutdown;
use graceful_core::conn::{ConnIo, Connection};
#[cfg(feature = "http2")]
use graceful_core::goaway::InboundFrames;
#[cfg(feature = "http2")]
use graceful_core::wire::WireStreams;
use std::cell::Cell;
use std::fmt;
use std::future::{Future, poll_fn};
use std::io;
use std::net::SocketAddr;
use std::pin::{Pin, pin};
use std::rc::Rc;
use std::task::{Context, Poll, Waker};
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
    /// The address of the head of the request an outer `Graceful` counted
    /// and has not answered yet (0: none), so that an inner one lets it
    /// through. This replaces a marker in the request's extensions, whose
    /// type-map insert cost a hash and a probe on every request. The address
    /// is only compared, never followed; it cannot name a later request
    /// (actix pools heads) because [`Entered`] clears it when the outer
    /// middleware's future resolves or is dropped, and every inner call of
    /// that request happens before then.
    counted: Cell<usize>,
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

    /// True when `head` is the head of the request an outer `Graceful` of
    /// this connection counted and has not answered yet.
    pub(crate) fn counts(&self, head: &RequestHead) -> bool {
        self.closing.counted.get() == address(head)
    }

    /// Marks `head` as counted until the [`Entered`] returned is dropped.
    pub(crate) fn entered(&self, head: &RequestHead) -> Entered {
        self.closing.counted.set(address(head));
        Entered {
            closing: self.closing.clone(),
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

/// A request's head as the number [`Closing::counted`] compares: never 0.
fn address(head: &RequestHead) -> usize {
    std::ptr::from_ref(head).addr()
}

/// A request counted by the outermost `Graceful` of its connection, from
/// its call until its response head is produced: what the middleware keeps
/// of the connection (an `Rc`, not a clone of the whole [`ConnData`] with
/// the core's `Arc`). Dropping it ends the mark [`ConnData::counts`] reads.
pub(crate) struct Entered {
    closing: Rc<Closing>,
}

impl Entered {
    /// No later request on this connection may begin.
    pub(crate) fn set_closing(&self) {
        self.closing.closing.set(true);
    }
}

impl Drop for Entered {
    fn drop(&mut self) {
        self.closing.counted.set(0);
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

/// The connection's socket, watched for successful flushes, with the bytes
/// read to choose the protocol replayed first.
pub(crate) struct Io {
    stream: Stream,
    // Dropped with the socket: the requests waiting for a flush end then.
    conn: ConnIo,
    data: ConnData,
    /// The bytes [`Io::sniff`] read, and how many of them were read back.
    prefix: Vec<u8>,
    replayed: usize,
    /// HTTP/2 only: the shutdown PING's ACK, spliced in at the bound at a
    /// boundary of the inbound frames `wire` follows ([`graceful_core::goaway`]).
    #[cfg(feature = "http2")]
    frames: Option<InboundFrames>,
    /// HTTP/2 only: the frames both ways, and the streams open on the
    /// wire, so that a flush releases a stream only once its last frame is
    /// written ([`WireStreams`]).
    #[cfg(feature = "http2")]
    wire: Option<WireStreams>,
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
            prefix: Vec::new(),
            replayed: 0,
            #[cfg(feature = "http2")]
            frames: None,
            #[cfg(feature = "http2")]
            wire: None,
        }
    }

    /// Follows the HTTP/2 frames from here on (the replayed bytes
    /// included), both ways: splicing in the ACK `frames` is asked for, and
    /// counting the streams open on the wire for each flush.
    #[cfg(feature = "http2")]
    pub(crate) fn follow_frames(&mut self, frames: InboundFrames) {
        self.frames = Some(frames);
        self.wire = Some(WireStreams::new());
    }

    /// Reads until the bytes are known not to be the HTTP/2 preface, or are
    /// all of it, and keeps them to be replayed: whether they are the
    /// preface, or `None` when the client left (or failed) before that.
    #[cfg(feature = "http2")]
    async fn sniff(&mut self) -> Option<bool> {
        let mut prefix = [0u8; PREFACE.len()];
        let mut len = 0;
        while len < PREFACE.len() {
            let read = poll_fn(|cx| {
                let mut buf = ReadBuf::new(&mut prefix[len..]);
                std::task::ready!(on_stream!(&mut self.stream, io => io.poll_read(cx, &mut buf)))?;
                Poll::Ready(io::Result::Ok(buf.filled().len()))
            })
            .await;
            match read {
                Ok(0) | Err(_) => return None,
                Ok(n) => len += n,
            }
            if prefix[..len] != PREFACE[..len] {
                break;
            }
        }
        self.prefix = prefix[..len].to_vec();
        Some(prefix[..len] == PREFACE[..])
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
        let this = self.get_mut();
        // HTTP/2 follows its frames through a function of its own, so that
        // an HTTP/1.1 read costs two checks on top of the socket's, and
        // none of the HTTP/2 path's registers.
        #[cfg(feature = "http2")]
        if let (Some(frames), Some(wire)) = (&mut this.frames, &mut this.wire) {
            let (stream, prefix) = (&mut this.stream, &this.prefix[..]);
            return poll_read_h2(stream, frames, wire, prefix, &mut this.replayed, cx, buf);
        }
        if replay(&this.prefix, &mut this.replayed, buf).is_some() {
            return Poll::Ready(Ok(()));
        }
        on_stream!(&mut this.stream, io => io.poll_read(cx, buf))
    }
}

/// [`AsyncRead::poll_read`] on an HTTP/2 connection: the shutdown PING's
/// ACK spliced in at its bound, and every byte read (the replayed ones
/// too) followed.
#[cfg(feature = "http2")]
#[inline(never)]
fn poll_read_h2(
    stream: &mut Stream,
    frames: &mut InboundFrames,
    wire: &mut WireStreams,
    prefix: &[u8],
    replayed: &mut usize,
    cx: &mut Context<'_>,
    buf: &mut ReadBuf<'_>,
) -> Poll<io::Result<()>> {
    if let Some(ack) = frames.splice(buf.remaining(), wire) {
        buf.put_slice(ack);
        return Poll::Ready(Ok(()));
    }
    if let Some(replay) = replay(prefix, replayed, buf) {
        wire.read(replay);
        return Poll::Ready(Ok(()));
    }
    let before = buf.filled().len();
    std::task::ready!(on_stream!(stream, io => io.poll_read(cx, buf)))?;
    wire.read(&buf.filled()[before..]);
    Poll::Ready(Ok(()))
}

/// Puts the next of the `prefix` bytes not yet read back (`replayed` of
/// them were) into `buf`: the bytes put, or `None` once all were read back.
fn replay<'a>(prefix: &'a [u8], replayed: &mut usize, buf: &mut ReadBuf<'_>) -> Option<&'a [u8]> {
    if *replayed >= prefix.len() {
        return None;
    }
    let n = (prefix.len() - *replayed).min(buf.remaining());
    let bytes = &prefix[*replayed..*replayed + n];
    buf.put_slice(bytes);
    *replayed += n;
    Some(bytes)
}

impl AsyncWrite for Io {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = on_stream!(&mut this.stream, io => io.poll_write(cx, buf));
        #[cfg(feature = "http2")]
        if let (Some(wire), Poll::Ready(Ok(n))) = (&mut this.wire, &written) {
            wire.written(&buf[..*n]);
        }
        written
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = on_stream!(&mut this.stream, io => io.poll_write_vectored(cx, bufs));
        #[cfg(feature = "http2")]
        if let (Some(wire), Poll::Ready(Ok(n))) = (&mut this.wire, &written) {
            wire.written_vectored(bufs, *n);
        }
        written
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
            #[cfg(feature = "http2")]
            if let Some(wire) = &this.wire {
                this.conn.flushed_streams(wire.open());
                return flushed;
            }
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

    /// The deadline as one connection's task watches it, from now on.
    pub(crate) fn deadline(&self) -> Deadline<'_> {
        Deadline {
            abandon: self,
            // Made before the first look at `fired`: a `Notified` sees
            // every `notify_waiters` that comes after it was made.
            notified: self.notify.notified(),
            registered: None,
        }
    }
}

pin_project_lite::pin_project! {
    /// The drain deadline, watched by one connection's task (HTTP/1's
    /// dispatcher or the HTTP/2 driver), polled on every wake of it.
    pub(crate) struct Deadline<'a> {
        abandon: &'a Abandon,
        #[pin]
        notified: tokio::sync::futures::Notified<'a>,
        // The waker `notified` was last polled with. `Notified` wakes the
        // waker of its latest poll, and `fire` sets `fired` before it
        // notifies, so once registered it is polled again only if the
        // task's waker changed: polling it on every wake of the connection
        // took the `Notify`'s lock each time, some 90 instructions per
        // HTTP/1.1 request and 150 per HTTP/2 stream.
        registered: Option<Waker>,
    }
}

impl Deadline<'_> {
    /// True once the deadline has come; else the task is woken when it
    /// comes.
    pub(crate) fn poll_come(self: Pin<&mut Self>, cx: &mut Context<'_>) -> bool {
        let this = self.project();
        if this.abandon.fired.get() {
            return true;
        }
        if this
            .registered
            .as_ref()
            .is_some_and(|w| w.will_wake(cx.waker()))
        {
            return false;
        }
        *this.registered = Some(cx.waker().clone());
        this.notified.poll(cx).is_ready()
    }
}

/// The HTTP/2 connection preface (RFC 9113, section 3.4).
#[cfg(feature = "http2")]
const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The app's service, as a worker built it: the `App` under its
/// [`Graceful`](crate::Graceful) middleware, for actix-http's `Request`.
pub(crate) trait AppService<B>:
    Service<
        actix_http::Request,
        Response = actix_web::dev::ServiceResponse<B>,
        Error = actix_web::Error,
    > + 'static
{
}

impl<S, B> AppService<B> for S where
    S: Service<
            actix_http::Request,
            Response = actix_web::dev::ServiceResponse<B>,
            Error = actix_web::Error,
        > + 'static
{
}

/// What a worker serves its connections with: the HTTP/1 service over
/// [`Io`] (actix-http's dispatcher) and the app itself, which HTTP/2 calls
/// once per stream; the TLS acceptor, if any; and how long a plaintext
/// connection may take to send the bytes that choose its protocol.
pub(crate) struct Services<H, A> {
    pub(crate) h1: H,
    #[cfg_attr(not(feature = "http2"), allow(dead_code))]
    pub(crate) app: Rc<A>,
    pub(crate) acceptor: Acceptor,
    #[cfg_attr(not(feature = "http2"), allow(dead_code))]
    pub(crate) first_bytes_timeout: std::time::Duration,
}

/// Serves one connection, HTTP/1.1 or HTTP/2 (see the module's design
/// notes), until its protocol's driver is done: for HTTP/1.1, the
/// dispatcher ended, the connection must close after a closing response,
/// or the drain deadline finds it busy; for HTTP/2, see [`crate::h2`]. The
/// socket closes when this returns.
///
/// With a TLS acceptor, the handshake comes first, under
/// `HANDSHAKE_TIMEOUT`, holding nothing (a connection still handshaking is
/// not in progress), and the TLS stream is shut down at the end, which
/// sends `close_notify`, unless the dispatcher already did.
pub(crate) async fn serve_connection<H, A, B>(
    stream: TcpStream,
    services: Rc<Services<H, A>>,
    shutdown: Shutdown,
    abandon: Rc<Abandon>,
) where
    H: Service<(Io, Option<SocketAddr>)>,
    H::Error: fmt::Display,
    A: AppService<B>,
    B: actix_web::body::MessageBody + 'static,
{
    let peer = stream.peer_addr().ok();
    let Some(stream) = handshake(stream, &services.acceptor).await else {
        return;
    };
    #[cfg(feature = "tls")]
    let shared = match &stream {
        Stream::Tls(tls) => Some(tls.clone()),
        Stream::Plain(_) => None,
    };
    #[cfg_attr(not(feature = "http2"), allow(unused_mut))]
    let mut io = Io::new(stream, &shutdown);
    #[cfg(feature = "http2")]
    {
        let h2 = match &io.stream {
            #[cfg(feature = "tls")]
            Stream::Tls(tls) => Some(tls.borrow().get_ref().1.alpn_protocol() == Some(&b"h2"[..])),
            Stream::Plain(_) => {
                let timeout = services.first_bytes_timeout;
                if timeout.is_zero() {
                    io.sniff().await
                } else {
                    tokio::time::timeout(timeout, io.sniff())
                        .await
                        .ok()
                        .flatten()
                }
            }
        };
        match h2 {
            // The client left, or sent nothing in time: nothing to serve.
            None => {}
            // Boxed: the HTTP/2 driver's state is kept out of every
            // connection's future, where it made an HTTP/1.1 connection's
            // task 4 512 bytes instead of 2 096 (one allocation per HTTP/2
            // connection instead).
            Some(true) => {
                Box::pin(crate::h2::serve(
                    io,
                    services.app.clone(),
                    peer,
                    shutdown,
                    abandon,
                ))
                .await
            }
            Some(false) => drive(io, peer, &services.h1, abandon).await,
        }
    }
    #[cfg(not(feature = "http2"))]
    drive(io, peer, &services.h1, abandon).await;
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
async fn handshake(stream: TcpStream, acceptor: &Acceptor) -> Option<Stream> {
    match acceptor {
        None => Some(Stream::Plain(stream)),
        #[cfg(feature = "tls")]
        Some(acceptor) => tls::handshake(stream, acceptor.clone()).await,
        #[cfg(not(feature = "tls"))]
        Some(never) => match *never {},
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

/// Serves an HTTP/1.1 connection until it ends (see [`serve_connection`]).
async fn drive<S>(io: Io, peer: Option<SocketAddr>, service: &S, abandon: Rc<Abandon>)
where
    S: Service<(Io, Option<SocketAddr>)>,
    S::Error: fmt::Display,
{
    let state = io.data();
    let mut deadline = pin!(abandon.deadline());
    let mut dispatcher = pin!(service.call((io, peer)));
    let mut watching = true;
    poll_fn(|cx| {
        if watching && deadline.as_mut().poll_come(cx) {
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
    fn a_request_is_marked_counted_until_its_mark_is_dropped() {
        let shutdown = Shutdown::builder().build().expect("build").handle();
        let data = ConnData {
            conn: Connection::new(&shutdown).0,
            closing: Rc::default(),
        };
        let (first, second) = (RequestHead::default(), RequestHead::default());
        assert!(!data.counts(&first), "nothing marked yet");
        let mark = data.entered(&first);
        assert!(data.counts(&first));
        assert!(
            !data.counts(&second),
            "another request is not the marked one"
        );
        drop(mark);
        // actix pools heads: the next request may have the same address.
        assert!(!data.counts(&first), "the mark ends with its request");
        let mark = data.entered(&second);
        mark.set_closing();
        assert!(data.is_closing());
        assert!(data.counts(&second));
    }

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
