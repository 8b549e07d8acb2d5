//! WebSockets that go away at the shutdown's going-away moment (feature
//! `websocket`), for any `Stream + Sink` of [`tungstenite::Message`]s:
//! tokio-tungstenite's and async-tungstenite's `WebSocketStream` alike.
//!
//! A WebSocket never ends by itself, and once upgraded it is no longer a
//! request, so a drain would neither wait for it nor end it. [`GoingAway`]
//! wraps the socket so that it does both:
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
//! [`accept_key`] and [`switching_protocols`] answer the upgrade request
//! (RFC 6455's handshake, computed by tungstenite); the adapters spawn the
//! socket's task on their runtime.

use futures_core::Stream;
use futures_sink::Sink;
use graceful_core::{OwnedGuard, Shutdown, Sleep, Timer};
use http::header::{CONNECTION, SEC_WEBSOCKET_ACCEPT, SEC_WEBSOCKET_KEY, UPGRADE};
use http::{HeaderValue, Request, Response, StatusCode};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;
use tungstenite::Message;
use tungstenite::protocol::CloseFrame;
use tungstenite::protocol::frame::coding::CloseCode;

/// How long after the server's Close frame the connection is closed when
/// the client has not answered it.
pub const CLOSE_BOUND: Duration = Duration::from_secs(1);

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

/// The moment the socket is at.
enum State {
    /// Delivering messages both ways.
    Open,
    /// The going-away moment came: the Close frame is to be sent.
    Closing,
    /// The Close frame is sent: waiting for the client's, or the bound.
    Closed(Sleep),
    /// The socket is dropped and the guard given back.
    Done,
}

/// A WebSocket that goes away at the shutdown's going-away moment: see the
/// [module's documentation](self). A `Stream` of the messages that arrive
/// before that moment and a `Sink` of the messages to send.
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
    socket: Option<S>,
    going_away: graceful_core::GoingAway,
    guard: Option<OwnedGuard>,
    timer: Arc<dyn Timer>,
    state: State,
}

impl<S> fmt::Debug for GoingAway<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match self.state {
            State::Open => "open",
            State::Closing => "closing",
            State::Closed(_) => "closed",
            State::Done => "done",
        };
        f.debug_struct("GoingAway")
            .field("state", &state)
            .field("guarded", &self.guard.is_some())
            .finish_non_exhaustive()
    }
}

/// The Close frame sent at the going-away moment: 1001, going away.
fn going_away_frame() -> Message {
    Message::Close(Some(CloseFrame {
        code: CloseCode::Away,
        reason: "going away".into(),
    }))
}

impl<S> GoingAway<S> {
    /// Wraps `socket`, counted in flight on `shutdown` from now on; `timer`
    /// bounds the wait for the client's Close frame.
    ///
    /// Make it in the upgrade request's handler, before the `101` is sent,
    /// so that the drain cannot end between the request and the socket;
    /// see [`GoingAway::with_guard`] for a socket made later. Once the shutdown
    /// refuses new work, the socket is not counted, and is sent its Close
    /// frame at once.
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
        let state = if guard.is_some() {
            State::Open
        } else {
            State::Closing
        };
        GoingAway {
            socket: Some(socket),
            going_away: shutdown.going_away(),
            guard,
            timer,
            state,
        }
    }

    /// Whether the going-away moment has come for this socket.
    pub fn is_going_away(&self) -> bool {
        !matches!(self.state, State::Open)
    }

    /// Drops the socket (closing the connection) and gives the guard back.
    fn finish(&mut self) {
        self.socket = None;
        self.guard = None;
        self.state = State::Done;
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
        loop {
            let Some(socket) = this.socket.as_mut() else {
                return Poll::Ready(None);
            };
            match &mut this.state {
                State::Open => {
                    if Pin::new(&mut this.going_away).poll(cx).is_ready() {
                        this.state = State::Closing;
                        continue;
                    }
                    match ready!(Pin::new(socket).poll_next(cx)) {
                        Some(message) => return Poll::Ready(Some(message)),
                        // The client went first, and its Close is answered.
                        None => this.finish(),
                    }
                }
                State::Closing => {
                    let mut socket = Pin::new(socket);
                    let sent = match ready!(socket.as_mut().poll_ready(cx)) {
                        Ok(()) => socket.start_send(going_away_frame()).is_ok(),
                        Err(_) => false,
                    };
                    if sent {
                        this.state = State::Closed(this.timer.sleep(CLOSE_BOUND));
                    } else {
                        this.finish();
                    }
                }
                State::Closed(bound) => {
                    if bound.as_mut().poll(cx).is_ready() {
                        this.finish();
                        continue;
                    }
                    let mut socket = Pin::new(socket);
                    if let Poll::Ready(Err(_)) = socket.as_mut().poll_flush(cx) {
                        this.finish();
                        continue;
                    }
                    match ready!(socket.poll_next(cx)) {
                        // Not delivered: the socket is going away.
                        Some(Ok(Message::Close(_))) | Some(Err(_)) | None => this.finish(),
                        Some(Ok(_)) => {}
                    }
                }
                State::Done => return Poll::Ready(None),
            }
        }
    }
}

impl<S, E> Sink<Message> for GoingAway<S>
where
    S: Sink<Message, Error = E> + Unpin,
{
    type Error = E;

    fn poll_ready(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), E>> {
        let this = self.get_mut();
        match (&this.state, this.socket.as_mut()) {
            (State::Open, Some(socket)) => Pin::new(socket).poll_ready(cx),
            _ => Poll::Ready(Ok(())),
        }
    }

    fn start_send(self: Pin<&mut Self>, message: Message) -> Result<(), E> {
        let this = self.get_mut();
        match (&this.state, this.socket.as_mut()) {
            (State::Open, Some(socket)) => Pin::new(socket).start_send(message),
            // Dropped: the socket is going away.
            _ => Ok(()),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), E>> {
        let this = self.get_mut();
        match (&this.state, this.socket.as_mut()) {
            (State::Open, Some(socket)) => Pin::new(socket).poll_flush(cx),
            _ => Poll::Ready(Ok(())),
        }
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Result<(), E>> {
        let this = self.get_mut();
        match (&this.state, this.socket.as_mut()) {
            (State::Open, Some(socket)) => Pin::new(socket).poll_close(cx),
            _ => Poll::Ready(Ok(())),
        }
    }
}
