//! WebSockets that go away at the shutdown's going-away moment (feature
//! `websocket`), for any `Stream + Sink` of [`tungstenite::Message`]s:
//! tokio-tungstenite's and async-tungstenite's `WebSocketStream` alike.
//!
//! A WebSocket never ends by itself, and once upgraded it is no longer a
//! request, so a drain would neither wait for it nor end it. [`GoingAway`]
//! wraps the socket so that it does both, with the core's [`Farewell`]
//! (the going-away handshake every adapter shares):
//!
//! - while open, it holds a guard: the connection is in progress, and the
//!   drain deadline bounds it;
//! - at the going-away moment (`closed`, after the unready delay: see
//!   [`graceful_core::GoingAway`]) it sends a Close frame with code 1001
//!   (going away), and from then on delivers no message that arrives (so a
//!   handler echoing what it reads echoes nothing after it), and drops what
//!   the handler sends;
//! - when the client answers with its Close frame, or [`CLOSE_BOUND`] after
//!   the server's, whichever comes first, it drops the socket (closing the
//!   TCP connection), gives its guard back, and the stream ends.
//!
//! [`upgrade`] answers the upgrade request and makes the socket's task:
//! the handshake ([`accept_key`], [`switching_protocols`]: RFC 6455's,
//! computed by tungstenite), the guard taken while the request is still in
//! flight, hyper's upgrade awaited, the socket made by the adapter's
//! WebSocket crate and wrapped in [`GoingAway`]. An adapter only names its
//! crate's socket type, its timer and its way to spawn.

use futures_core::Stream;
use futures_sink::Sink;
pub use graceful_core::farewell::CLOSE_BOUND;
use graceful_core::{CloseHandshake, Farewell, OwnedGuard, Shutdown, Timer};
use http::header::{CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, UPGRADE};
use http::{HeaderValue, Request, Response, StatusCode};
use hyper::upgrade::Upgraded;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tungstenite::Message;
use tungstenite::protocol::CloseFrame;
use tungstenite::protocol::frame::coding::CloseCode;

/// Why an upgrade request is not a WebSocket handshake.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct NotWebSocket;

impl fmt::Display for NotWebSocket {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("not a websocket upgrade request")
    }
}

impl std::error::Error for NotWebSocket {}

/// The `Sec-WebSocket-Accept` value for `request`, if it asks for a
/// WebSocket (`Upgrade: websocket` and a `Sec-WebSocket-Key`).
///
/// # Errors
///
/// [`NotWebSocket`] when it does not.
pub fn accept_key<B>(request: &Request<B>) -> Result<HeaderValue, NotWebSocket> {
    let headers = request.headers();
    let upgrade = headers.get(UPGRADE).and_then(|v| v.to_str().ok());
    if !upgrade.is_some_and(|v| v.eq_ignore_ascii_case("websocket")) {
        return Err(NotWebSocket);
    }
    let key = headers.get(SEC_WEBSOCKET_KEY).ok_or(NotWebSocket)?;
    let accept = tungstenite::handshake::derive_accept_key(key.as_bytes());
    HeaderValue::from_str(&accept).map_err(|_| NotWebSocket)
}

/// The `101 Switching Protocols` answer to a WebSocket handshake whose key
/// gave `accept` (see [`accept_key`]).
pub fn switching_protocols<B: Default>(accept: HeaderValue) -> Response<B> {
    let mut response = Response::new(B::default());
    *response.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    let headers = response.headers_mut();
    headers.insert(CONNECTION, HeaderValue::from_static("upgrade"));
    headers.insert(UPGRADE, HeaderValue::from_static("websocket"));
    headers.insert(SEC_WEBSOCKET_ACCEPT, accept);
    response
}

/// Answers the WebSocket handshake `request` with `101 Switching Protocols`
/// and hands `spawn` the task that runs `handler` on the socket, once hyper
/// has upgraded the connection: `socket` makes it from the upgraded
/// connection (`WebSocketStream::from_raw_socket`, say), and the handler
/// gets it as a [`GoingAway`], timed by `timer`. Return the response from
/// the request's handler. The runtime adapters' `websocket::upgrade` is
/// this, with their WebSocket crate, timer and spawner.
///
/// The guard is taken here, while the request is still in flight, so the
/// drain cannot end between the handshake and the socket. If the shutdown
/// already refuses new work, the socket is sent its Close frame at once.
/// An upgrade that never completes (the client went away after the `101`)
/// ends the task and gives the guard back.
///
/// # Errors
///
/// [`NotWebSocket`] when `request` is no WebSocket handshake (answer it
/// `400`); nothing is spawned then.
pub fn upgrade<B, R, S, M, F, Fut>(
    shutdown: &Shutdown,
    timer: Arc<dyn Timer>,
    spawn: impl FnOnce(crate::ConnectionTask),
    request: &mut Request<B>,
    socket: impl FnOnce(Upgraded) -> M + Send + 'static,
    handler: F,
) -> Result<Response<R>, NotWebSocket>
where
    R: Default,
    M: Future<Output = S> + Send,
    S: Send + 'static,
    F: FnOnce(GoingAway<S>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let accept = accept_key(request)?;
    let guard = shutdown.enter_owned().ok();
    let upgrade = hyper::upgrade::on(request);
    let shutdown = shutdown.clone();
    spawn(Box::pin(async move {
        let Ok(upgraded) = upgrade.await else { return };
        let socket = socket(upgraded).await;
        handler(GoingAway::with_guard(&shutdown, timer, guard, socket)).await;
    }));
    Ok(switching_protocols(accept))
}

/// A WebSocket that goes away at the shutdown's going-away moment: see the
/// [module's documentation](self). A `Stream` of the messages that arrive
/// before that moment and a `Sink` of the messages to send (dropped once
/// the moment has come).
///
/// Poll it for messages (as any handler reading its socket does): the
/// Close frame, and the end, are sent and noticed while it is polled.
///
/// # Cancel safety
///
/// A stream and a sink: dropping it drops the socket, closing the
/// connection without a Close frame, and gives the guard back.
#[must_use = "streams do nothing unless polled"]
pub struct GoingAway<S> {
    socket: Option<Socket<S>>,
    farewell: Farewell,
}

/// A tungstenite socket behind the core's [`CloseHandshake`] seam.
struct Socket<S>(S);

impl<S> fmt::Debug for GoingAway<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GoingAway")
            .field("farewell", &self.farewell)
            .finish_non_exhaustive()
    }
}

impl<S> GoingAway<S> {
    /// Wraps `socket`, counted in flight on `shutdown` from now on; `timer`
    /// bounds the wait for the client's Close frame.
    ///
    /// Make it in the upgrade request's handler, before the `101` is sent,
    /// so that the drain cannot end between the request and the socket;
    /// see [`GoingAway::with_guard`] for a socket made later. Once the
    /// shutdown refuses new work, the socket is not counted, and is sent
    /// its Close frame at once.
    pub fn new(shutdown: &Shutdown, timer: Arc<dyn Timer>, socket: S) -> GoingAway<S> {
        GoingAway::with_guard(shutdown, timer, shutdown.enter_owned().ok(), socket)
    }

    /// Like [`GoingAway::new`], with a guard taken earlier
    /// ([`Shutdown::enter_owned`] in the upgrade request's handler, for a
    /// socket that exists only once the upgrade is done). Without a guard
    /// the socket is sent its Close frame at once.
    pub fn with_guard(
        shutdown: &Shutdown,
        timer: Arc<dyn Timer>,
        guard: Option<OwnedGuard>,
        socket: S,
    ) -> GoingAway<S> {
        GoingAway {
            socket: Some(Socket(socket)),
            farewell: Farewell::new(shutdown, timer, guard),
        }
    }

    /// Whether the going-away moment has come for this socket.
    pub fn is_going_away(&self) -> bool {
        !self.farewell.is_open()
    }

    /// The socket while it delivers messages.
    fn open(&mut self) -> Option<Pin<&mut S>>
    where
        S: Unpin,
    {
        match self.socket.as_mut() {
            Some(Socket(socket)) if self.farewell.is_open() => Some(Pin::new(socket)),
            _ => None,
        }
    }
}

/// The Close frame sent at the going-away moment: 1001, going away.
fn going_away_frame() -> Message {
    Message::Close(Some(CloseFrame {
        code: CloseCode::Away,
        reason: "going away".into(),
    }))
}

impl<S, E> CloseHandshake for Socket<S>
where
    S: Stream<Item = Result<Message, E>> + Sink<Message, Error = E> + Unpin,
{
    type Message = Message;
    type Error = E;

    fn poll_message(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Message, E>>> {
        Pin::new(&mut self.get_mut().0).poll_next(cx)
    }

    fn poll_send_going_away(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), E>> {
        let mut socket = Pin::new(&mut self.get_mut().0);
        match socket.as_mut().poll_ready(cx) {
            Poll::Ready(Ok(())) => Poll::Ready(socket.start_send(going_away_frame())),
            other => other,
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), E>> {
        Pin::new(&mut self.get_mut().0).poll_flush(cx)
    }

    fn is_close(message: &Message) -> bool {
        message.is_close()
    }
}

// Unpin whatever `S` is: the socket is only polled through `Pin::new` when
// it is `Unpin`, which every `WebSocketStream` is.
impl<S> Unpin for GoingAway<S> {}

impl<S, E> Stream for GoingAway<S>
where
    S: Stream<Item = Result<Message, E>> + Sink<Message, Error = E> + Unpin,
{
    type Item = Result<Message, E>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        this.farewell.poll_next(&mut this.socket, cx)
    }
}

impl<S, E> Sink<Message> for GoingAway<S>
where
    S: Sink<Message, Error = E> + Unpin,
{
    type Error = E;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), E>> {
        match self.get_mut().open() {
            Some(socket) => socket.poll_ready(cx),
            None => Poll::Ready(Ok(())),
        }
    }

    fn start_send(self: Pin<&mut Self>, message: Message) -> Result<(), E> {
        match self.get_mut().open() {
            Some(socket) => socket.start_send(message),
            // Dropped: the socket is going away.
            None => Ok(()),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), E>> {
        match self.get_mut().open() {
            Some(socket) => socket.poll_flush(cx),
            None => Poll::Ready(Ok(())),
        }
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), E>> {
        match self.get_mut().open() {
            Some(socket) => socket.poll_close(cx),
            None => Poll::Ready(Ok(())),
        }
    }
}
