//! One connection, HTTP/1.1 or HTTP/2 (prior knowledge), served until the
//! client leaves, the server refuses it, or the drain deadline finds it busy.
//!
//! # Design
//!
//! The protocol is chosen from the first bytes: the 24-byte HTTP/2
//! connection preface means HTTP/2, anything else HTTP/1.1. Reading them
//! holds nothing (a connection that never sends a byte never delays the
//! drain); they are then replayed to hyper ([`Rewind`]).
//!
//! HTTP/2 is drained the HTTP/2 way. When the drain begins, hyper's
//! `graceful_shutdown` sends GOAWAY with the last stream id 2^31-1 and a
//! PING, and the final GOAWAY once the PING is answered; streams opened
//! before that are served ([`Connection::enter_stream`]), never `503`.
//! hyper then closes a connection with no stream left by itself, but it has
//! no timer: a client that never answers the PING, or that sent the preface
//! and no SETTINGS, would keep the connection open for ever, and accepting
//! new streams. So one second ([`GOAWAY_BOUND`]) after the GOAWAY, h2 is
//! handed the PING's ACK the client did not send ([`crate::ping_ack`]),
//! which makes it send the final GOAWAY, and a connection with no stream
//! in progress is closed here, whatever hyper is waiting for. At the drain
//! deadline the streams still in progress are reset with `CANCEL` and the
//! connection is closed once they are ([`crate::cancel`]).
//!
//! The rules are the core's ([`graceful_core::conn`]): a request stays in
//! progress until the flush after its last byte, and at the drain deadline
//! only a busy connection is closed (hyper's own `graceful_shutdown` closes
//! idle keep-alive connections at once, which a pooled client that had just
//! picked one sees as a reset). This module only tells the core what hyper
//! does: [`TrackedIo`] reports each successful flush (hyper flushes only
//! once it has written everything it buffered, with `pipeline_flush` off,
//! as here), on HTTP/2 with the streams still open on the wire
//! ([`WireStreams`]: a stream's task queues its last frame after its body
//! ended, and a flush between the two has not written it), and, when hyper
//! drops it, that the io is gone.

use crate::cancel::RESET_BOUND;
use crate::ping_ack::{AckRequest, InboundFrames};
use crate::service::GracefulService;
use crate::service::Streams;
use graceful_core::conn::{ConnIo, Connection};
use graceful_core::wire::WireStreams;
use graceful_core::{Abandoned, Phase, Reached, Shutdown, Sleep, Timer};
use http::{Request, Response};
use http_body::Body;
use hyper::body::Incoming;
use hyper::rt::{Executor, Read, ReadBuf, ReadBufCursor, Write};
use hyper::server::conn::{http1, http2};
use hyper::service::Service;
use pin_project_lite::pin_project;
use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

type BoxError = Box<dyn StdError + Send + Sync>;

/// The connection's io, watched for successful flushes, with the first
/// bytes that were read to choose the protocol replayed before the rest.
struct TrackedIo<I> {
    io: I,
    // Dropped with the io: the connection's requests waiting for a flush
    // end then.
    conn: ConnIo,
    /// The bytes [`sniff`] read, and how many of them hyper has read back.
    prefix: Vec<u8>,
    replayed: usize,
    /// HTTP/2 only: the shutdown PING's ACK, spliced in at the bound at a
    /// boundary of the inbound frames `wire` follows ([`crate::ping_ack`]).
    frames: Option<InboundFrames>,
    /// HTTP/2 only: the frames both ways, and the streams open on the
    /// wire, so that a flush releases a stream only once its last frame is
    /// written ([`WireStreams`]).
    wire: Option<WireStreams>,
    /// HTTP/2 only: where a read past the replay lands before it is
    /// followed and handed to hyper (see `poll_read_frames`).
    scratch: Vec<u8>,
    /// Set once nothing is left to replay and there are no frames to
    /// follow (HTTP/1.1 after its first read): every later read goes to
    /// the io directly. One flag checked per read, so that an HTTP/1.1
    /// read costs one branch more than the bare io's, and the replay and
    /// HTTP/2 paths stay out of line.
    direct: bool,
}

impl<I: Read + Unpin> Read for TrackedIo<I> {
    #[inline]
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if this.direct {
            return Pin::new(&mut this.io).poll_read(cx, buf);
        }
        this.poll_read_tracked(cx, buf)
    }
}

impl<I: Read + Unpin> TrackedIo<I> {
    /// A read while the sniffed prefix is replayed, or of HTTP/2's frames.
    #[inline(never)]
    fn poll_read_tracked(
        &mut self,
        cx: &mut Context<'_>,
        mut buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self;
        if let (Some(frames), Some(wire)) = (&mut this.frames, &this.wire)
            && let Some(ack) = frames.splice(buf.remaining(), wire)
        {
            buf.put_slice(ack);
            return Poll::Ready(Ok(()));
        }
        if this.replayed < this.prefix.len() {
            let n = (this.prefix.len() - this.replayed).min(buf.remaining());
            let replay = &this.prefix[this.replayed..this.replayed + n];
            if let Some(wire) = &mut this.wire {
                wire.read(replay);
                buf.put_slice(replay);
                this.replayed += n;
                return Poll::Ready(Ok(()));
            }
            buf.put_slice(replay);
            this.replayed += n;
            // HTTP/1.1: the rest of what the client sent, in the same read.
            // Given the prefix alone, hyper would hold a partial head and
            // grow its read buffer to make room for the next read (8 KiB
            // to 16 KiB, for the connection's life), and an io that fills
            // the buffer before each read (smol-hyper's `FuturesIo` zeroes
            // it) would pay for the 8 KiB more on every read. The prefix is
            // delivered whatever this read does: `Pending` leaves the waker
            // registered (a wake-up at most), and an error is left to the
            // next read, which sees it again or the end it led to.
            if this.replayed == this.prefix.len() && buf.remaining() > 0 {
                let _ = Pin::new(&mut this.io).poll_read(cx, buf);
            }
            return Poll::Ready(Ok(()));
        }
        if this.wire.is_none() {
            // Nothing more to replay, no frames to follow: from here on
            // every read is the io's own. The prefix is not needed again.
            this.direct = true;
            this.prefix = Vec::new();
            return Pin::new(&mut this.io).poll_read(cx, buf);
        }
        this.poll_read_frames(cx, buf)
    }

    /// An HTTP/2 read past the replay: through a buffer of our own, to see
    /// where the frames end.
    ///
    /// The buffer is the connection's, grown (and zeroed) once to the
    /// largest read hyper asks for, up to `SCRATCH_MAX`: `ReadBuf::new`
    /// takes it as initialised, so a read costs the copy of the bytes it
    /// read and nothing per byte of room. (A fresh zeroed buffer on the
    /// stack for each read cost about 16 000 instructions per read, more
    /// than HTTP/2's whole request; reading into hyper's own buffer and
    /// looking at the bytes afterwards would need its `unsafe` accessors.)
    #[inline(never)]
    fn poll_read_frames(
        &mut self,
        cx: &mut Context<'_>,
        mut buf: ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        /// The largest read of one call: hyper's h2 asks for its buffer's
        /// free room, and a client's frames seldom come faster.
        const SCRATCH_MAX: usize = 16 * 1024;
        let Some(wire) = &mut self.wire else {
            return Pin::new(&mut self.io).poll_read(cx, buf);
        };
        let room = buf.remaining().min(SCRATCH_MAX);
        if self.scratch.len() < room {
            self.scratch.resize(room, 0);
        }
        let mut read = ReadBuf::new(&mut self.scratch[..room]);
        ready!(Pin::new(&mut self.io).poll_read(cx, read.unfilled()))?;
        wire.read(read.filled());
        buf.put_slice(read.filled());
        Poll::Ready(Ok(()))
    }
}

impl<I: Write + Unpin> Write for TrackedIo<I> {
    #[inline]
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.io).poll_write(cx, buf);
        if let (Some(wire), Poll::Ready(Ok(n))) = (&mut this.wire, &written) {
            wire.written(&buf[..*n]);
        }
        written
    }

    #[inline]
    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let flushed = Pin::new(&mut this.io).poll_flush(cx);
        if let Poll::Ready(Ok(())) = flushed {
            match &this.wire {
                None => this.conn.flushed(),
                Some(wire) => this.conn.flushed_streams(wire.open()),
            }
        }
        flushed
    }

    #[inline]
    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }

    #[inline]
    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    #[inline]
    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        let written = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        if let (Some(wire), Poll::Ready(Ok(n))) = (&mut this.wire, &written) {
            wire.written_vectored(bufs, *n);
        }
        written
    }
}

/// The bound of the HTTP/2 GOAWAY (1 s), whose home is graceful-core.
pub use graceful_core::goaway::GOAWAY_BOUND;

/// The HTTP/2 connection preface (RFC 9113, section 3.4).
const PREFACE: &[u8; 24] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// The executor seam: how a connection spawns the tasks HTTP/2 needs (one
/// per stream). A runtime adapter makes one from its runtime's spawn; it
/// is hyper's [`Executor`] for every `Send` future.
///
/// # Examples
///
/// ```
/// use graceful_hyper::Spawner;
///
/// // A runtime adapter passes its runtime's spawn (here: run at once).
/// let spawner = Spawner::new(|task| futures_lite::future::block_on(task));
/// # drop(spawner);
/// ```
#[derive(Clone)]
pub struct Spawner {
    spawn: Arc<dyn Fn(crate::ConnectionTask) + Send + Sync>,
}

impl Spawner {
    /// A spawner that runs each task with `spawn`, which must run it to
    /// completion in the background (detached).
    pub fn new<F>(spawn: F) -> Spawner
    where
        F: Fn(crate::ConnectionTask) + Send + Sync + 'static,
    {
        Spawner {
            spawn: Arc::new(spawn),
        }
    }

    /// Runs `task` in the background.
    pub fn spawn(&self, task: crate::ConnectionTask) {
        (self.spawn)(task);
    }
}

impl<F> Executor<F> for Spawner
where
    F: Future<Output = ()> + Send + 'static,
{
    fn execute(&self, future: F) {
        (self.spawn)(Box::pin(future));
    }
}

impl fmt::Debug for Spawner {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Spawner").finish_non_exhaustive()
    }
}

/// Reads until the bytes are known not to be the HTTP/2 preface, or are
/// all of it, and keeps them in `io` to be replayed: whether they are the
/// preface, or `None` when the client left (or failed) before that.
async fn sniff<I: Read + Unpin>(io: &mut TrackedIo<I>) -> Option<bool> {
    let mut prefix = [0u8; 24];
    let mut len = 0;
    while len < PREFACE.len() {
        let read = std::future::poll_fn(|cx| {
            let mut buf = ReadBuf::new(&mut prefix[len..]);
            ready!(Pin::new(&mut io.io).poll_read(cx, buf.unfilled()))?;
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
    io.prefix = prefix[..len].to_vec();
    Some(prefix[..len] == PREFACE[..])
}

/// Serves one connection under `shutdown`, HTTP/1.1 or HTTP/2 with prior
/// knowledge, chosen from its first bytes.
///
/// Every request goes through a [`GracefulService`](crate::GracefulService)
/// around `service`. Over HTTP/1.1:
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
/// - it never closes a connection just because the shutdown began (hyper's
///   own HTTP/1 `graceful_shutdown` closes idle keep-alive connections,
///   which a pooled client that had just picked one sees as a reset).
///
/// HTTP upgrades (a WebSocket's `101 Switching Protocols`) are served: the
/// handler takes the upgraded io with `hyper::upgrade::on`. The upgrading
/// request ends when its `101` has been flushed; the session that follows
/// is not counted in flight.
///
/// Over HTTP/2 each stream is a request, in progress until the flush after
/// its last frame; streams run on tasks of `spawner`. When the shutdown
/// drains, the connection is sent GOAWAY (see the module's design notes);
/// streams opened before the final GOAWAY are served normally, never
/// `503`; a connection with no stream in progress is closed once hyper has
/// sent the final GOAWAY, or [`GOAWAY_BOUND`] after the first at the
/// latest. At the drain deadline the streams still in progress are reset
/// with `RST_STREAM(CANCEL)`, and the connection is closed once they are
/// (1 s later at the latest).
///
/// `io` is any hyper io: the runtime adapters wrap their sockets (for tokio,
/// `hyper_util::rt::TokioIo`). hyper's builders are used with their
/// defaults and no timer, so no header read timeout applies; `timer` only
/// bounds the HTTP/2 GOAWAY.
///
/// # Examples
///
/// ```
/// use graceful_core::{ManualClock, Shutdown};
/// use graceful_hyper::Spawner;
/// use http_body_util::Full;
/// use hyper::body::{Bytes, Incoming};
/// use hyper::rt::{Read, Write};
/// use hyper::service::service_fn;
/// use hyper::{Request, Response};
/// use std::convert::Infallible;
/// use std::sync::Arc;
///
/// async fn hello(_: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
///     Ok(Response::new(Full::new(Bytes::from_static(b"hello"))))
/// }
///
/// # #[allow(dead_code)] // an example of a function a runtime adapter calls
/// async fn connection<I: Read + Write + Unpin + Send + 'static>(
///     io: I,
///     shutdown: &Shutdown,
///     spawner: Spawner,
/// ) -> hyper::Result<()> {
///     let timer = Arc::new(ManualClock::new()); // a runtime's timer
///     graceful_hyper::serve_connection(io, service_fn(hello), shutdown, spawner, timer).await
/// }
/// ```
pub fn serve_connection<I, S, B>(
    io: I,
    service: S,
    shutdown: &Shutdown,
    spawner: Spawner,
    timer: Arc<dyn Timer>,
) -> ServeConnection
where
    I: Read + Write + Unpin + Send + 'static,
    S: crate::SpawnService<B>,
    B: crate::SpawnBody,
{
    serve_connection_as(io, Protocol::Detect, service, shutdown, spawner, timer)
}

/// Which protocol a connection speaks, for [`serve_connection_as`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum Protocol {
    /// Chosen from the first bytes: HTTP/2 after its connection preface
    /// (prior knowledge), HTTP/1.1 otherwise. What a plaintext listener does.
    Detect,
    /// HTTP/1.1 (a TLS connection whose client chose `http/1.1` by ALPN, or
    /// nothing).
    Http1,
    /// HTTP/2 (a TLS connection whose client chose `h2` by ALPN).
    Http2,
}

/// [`serve_connection`], with the protocol already known (from a TLS
/// handshake's ALPN) rather than read from the first bytes.
pub fn serve_connection_as<I, S, B>(
    io: I,
    protocol: Protocol,
    service: S,
    shutdown: &Shutdown,
    spawner: Spawner,
    timer: Arc<dyn Timer>,
) -> ServeConnection
where
    I: Read + Write + Unpin + Send + 'static,
    S: crate::SpawnService<B>,
    B: crate::SpawnBody,
{
    let (future, state) = connection(io, protocol, service, shutdown, spawner, timer);
    ServeConnection {
        future: Box::pin(future),
        state,
    }
}

/// The future of [`serve_connection_as`], unboxed, and the connection's
/// state: [`serve_listener`](crate::serve_listener) runs it inside its
/// task's own future, so that each poll of a connection goes through one
/// boxed future (the task), not two.
pub(crate) fn connection<I, S, B>(
    io: I,
    protocol: Protocol,
    service: S,
    shutdown: &Shutdown,
    spawner: Spawner,
    timer: Arc<dyn Timer>,
) -> (
    impl Future<Output = hyper::Result<()>> + Send + 'static,
    Connection,
)
where
    I: Read + Write + Unpin + Send + 'static,
    S: crate::SpawnService<B>,
    B: crate::SpawnBody,
{
    let (state, conn) = Connection::new(shutdown);
    let mut io = TrackedIo {
        io,
        conn,
        prefix: Vec::new(),
        replayed: 0,
        scratch: Vec::new(),
        frames: None,
        wire: None,
        direct: false,
    };
    let service = GracefulService::for_connection(service, state.clone());
    let shutdown = shutdown.clone();
    let busy = state.clone();
    let future = async move {
        let h2 = match protocol {
            Protocol::Http1 => false,
            Protocol::Http2 => true,
            Protocol::Detect => match sniff(&mut io).await {
                Some(h2) => h2,
                None => return Ok(()),
            },
        };
        if h2 {
            let ack = AckRequest::default();
            io.frames = Some(InboundFrames::new(ack.clone()));
            io.wire = Some(WireStreams::new());
            let conn = http2::Builder::new(spawner).serve_connection(io, Streams { service });
            H2 {
                conn,
                ack,
                goaway: GoAway::Waiting(shutdown.reached(Phase::Draining)),
                deadline: Deadline::new(&shutdown),
                resetting: None,
                state,
                timer,
            }
            .await
        } else {
            // The `GracefulService` itself, not `Streams`: an HTTP/1.1
            // request has no stream to reset (the deadline closes its busy
            // connection), so it carries no `Cancel` and its errors are
            // not boxed.
            let conn = http1::Builder::new()
                .keep_alive(true)
                .serve_connection(io, service)
                .with_upgrades();
            H1 {
                conn,
                deadline: Deadline::new(&shutdown),
                state,
            }
            .await
        }
    };
    (future, busy)
}

/// One connection being served. See [`serve_connection`].
///
/// Resolves when the connection ends: the client closed it, a response
/// with `Connection: close` went out, an HTTP/2 connection was drained, an
/// error occurred (`Err`), or the drain deadline found it busy (`Ok`).
///
/// # Cancel safety
///
/// Dropping it closes the connection where it stands: a response being
/// written is cut off and its request ends (its guard is released).
#[must_use = "futures do nothing unless polled"]
pub struct ServeConnection {
    future: Pin<Box<dyn Future<Output = hyper::Result<()>> + Send>>,
    state: Connection,
}

impl ServeConnection {
    /// True while a request of this connection is in progress.
    pub fn is_busy(&self) -> bool {
        self.state.is_busy()
    }
}

impl fmt::Debug for ServeConnection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServeConnection")
            .field("busy", &self.state.is_busy())
            .finish_non_exhaustive()
    }
}

impl Future for ServeConnection {
    type Output = hyper::Result<()>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.future.as_mut().poll(cx)
    }
}

/// The deadline rule of one connection ([`graceful_core::conn`], rule 2):
/// when the drain is abandoned, a busy connection is closed, an idle one
/// never.
struct Deadline {
    // `None` once it has resolved and found the connection idle: no request
    // of this connection can be in progress after that.
    abandoned: Option<Abandoned>,
}

impl Deadline {
    fn new(shutdown: &Shutdown) -> Deadline {
        Deadline {
            abandoned: Some(shutdown.abandoned()),
        }
    }

    /// Whether the connection must close now.
    #[inline]
    fn closes(&mut self, cx: &mut Context<'_>, state: &Connection) -> bool {
        if let Some(abandoned) = &mut self.abandoned
            && Pin::new(abandoned).poll(cx).is_ready()
        {
            // Requests and streams are refused from here on (the drain is
            // over), so busy can only go down: one look decides.
            if state.is_busy() {
                return true;
            }
            self.abandoned = None;
        }
        false
    }
}

pin_project! {
    /// An HTTP/1.1 connection, closed at the deadline only if busy.
    struct H1<I, S, B>
    where
        S: Service<Request<Incoming>, Response = Response<B>>,
        S::Error: Into<BoxError>,
        B: Body,
        B::Error: Into<BoxError>,
    {
        #[pin]
        conn: http1::UpgradeableConnection<TrackedIo<I>, GracefulService<S>>,
        deadline: Deadline,
        state: Connection,
    }
}

impl<I, S, B> Future for H1<I, S, B>
where
    I: Read + Write + Unpin + Send + 'static,
    S: crate::SpawnService<B>,
    B: crate::SpawnBody,
{
    type Output = hyper::Result<()>;

    // Inlined into the connection's task: its own work is the deadline's
    // fast path, a few loads.
    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if this.deadline.closes(cx, this.state) {
            return Poll::Ready(Ok(()));
        }
        this.conn.poll(cx)
    }
}

/// Where an HTTP/2 connection stands with its GOAWAY.
enum GoAway {
    /// Not sent: waiting for the drain to begin.
    Waiting(Reached),
    /// Sent (the first one): hyper sends the final one when the PING is
    /// answered; until this sleep of [`GOAWAY_BOUND`] ends at the latest.
    Sent(Sleep),
    /// Sent [`GOAWAY_BOUND`] ago or more: the final GOAWAY is sent (the
    /// PING's ACK is given to hyper if the client did not send it), and a
    /// connection with no stream in progress is closed, whatever hyper is
    /// still waiting for.
    Bounded,
}

pin_project! {
    /// An HTTP/2 connection: GOAWAY when the drain begins, closed when idle
    /// [`GOAWAY_BOUND`] after it, or busy at the deadline.
    struct H2<I, S, B>
    where
        S: Service<Request<Incoming>, Response = Response<B>>,
        S::Error: Into<BoxError>,
        B: Body,
        B::Error: Into<BoxError>,
    {
        #[pin]
        conn: http2::Connection<TrackedIo<I>, Streams<S>, Spawner>,
        // At the bound, the shutdown PING's ACK the client did not send
        // ([`crate::ping_ack`]): hyper then sends the final GOAWAY.
        ack: AckRequest,
        goaway: GoAway,
        deadline: Deadline,
        // Set at the drain deadline if busy: the streams are being reset
        // ([`crate::cancel`]), and the connection closes by this sleep.
        resetting: Option<Sleep>,
        state: Connection,
        timer: Arc<dyn Timer>,
    }
}

impl<I, S, B> Future for H2<I, S, B>
where
    I: Read + Write + Unpin + Send + 'static,
    S: crate::SpawnService<B>,
    B: crate::SpawnBody,
{
    type Output = hyper::Result<()>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        if let GoAway::Waiting(draining) = this.goaway
            && Pin::new(draining).poll(cx).is_ready()
        {
            this.conn.as_mut().graceful_shutdown();
            *this.goaway = GoAway::Sent(this.timer.sleep(GOAWAY_BOUND));
        }
        if let GoAway::Sent(bound) = this.goaway
            && bound.as_mut().poll(cx).is_ready()
        {
            *this.goaway = GoAway::Bounded;
            this.ack.request();
        }
        if this.resetting.is_none() && this.deadline.closes(cx, this.state) {
            // Its streams reset themselves with CANCEL ([`crate::cancel`]);
            // hyper sends the frames and then, with no stream left after
            // its GOAWAY, closes the connection.
            *this.resetting = Some(this.timer.sleep(RESET_BOUND));
        }
        if let Some(bound) = this.resetting
            && bound.as_mut().poll(cx).is_ready()
        {
            return Poll::Ready(Ok(()));
        }
        let polled = this.conn.poll(cx);
        if polled.is_ready() {
            return polled;
        }
        // A flush during that poll may have ended the last stream (after
        // the deadline: sent its RST_STREAM).
        let bounded = matches!(this.goaway, GoAway::Bounded) || this.resetting.is_some();
        if bounded && !this.state.is_busy() {
            return Poll::Ready(Ok(()));
        }
        Poll::Pending
    }
}
