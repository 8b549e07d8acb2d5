//! WebSockets that go away at the shutdown's going-away moment (feature
//! `websocket`), on actix-ws.
//!
//! [`handle`] is `actix_ws::handle` with the core's [`Farewell`] (the
//! going-away handshake every adapter shares) on the reading half: the
//! handler reads [`Messages`] and writes through actix-ws's [`Session`] as
//! usual. At `closed` the socket is sent a Close frame with code 1001, the
//! messages that arrive after it are not delivered, and the connection
//! closes when the client answers or one second later ([`CLOSE_BOUND`]).
//! The socket is in progress while open: the `101` response's body lasts as
//! long as the socket, and [`Graceful`](crate::Graceful) holds the
//! request's guard until its last byte.
//!
//! actix-ws ends the response body (and so the connection) right after a
//! Close frame; here the body is held open until the handshake is over, so
//! that the client's answer still reaches the server.

use crate::ActixTimer;
use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::web::{Bytes, Payload};
use actix_web::{HttpRequest, HttpResponse};
pub use actix_ws::{CloseCode, CloseReason, Message, ProtocolError, Session};
use futures_core::Stream;
use futures_sink::Sink;
pub use graceful_core::farewell::CLOSE_BOUND;
use graceful_core::{CloseHandshake, Farewell, Shutdown};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tokio::sync::oneshot;

/// Begins a WebSocket as `actix_ws::handle` does, going away at the
/// shutdown's going-away moment: return the response from the handler,
/// spawn the socket's work with the session and the messages.
///
/// # Errors
///
/// actix-ws's, when `request` is no WebSocket handshake (a `400`).
///
/// # Examples
///
/// An echo: the loop ends when the socket has gone away.
///
/// ```
/// use actix_web::{HttpRequest, HttpResponse, web};
/// use futures_lite::StreamExt;
/// use graceful_actix::websocket::{self, Message};
///
/// async fn ws(
///     request: HttpRequest,
///     body: web::Payload,
///     shutdown: web::Data<graceful_actix::Shutdown>,
/// ) -> actix_web::Result<HttpResponse> {
///     let (response, mut session, mut messages) = websocket::handle(&shutdown, &request, body)?;
///     actix_web::rt::spawn(async move {
///         while let Some(Ok(message)) = messages.next().await {
///             if let Message::Text(text) = message
///                 && session.text(text).await.is_err()
///             {
///                 break;
///             }
///         }
///     });
///     Ok(response)
/// }
/// # let _ = ws;
/// ```
pub fn handle(
    shutdown: &Shutdown,
    request: &HttpRequest,
    body: Payload,
) -> Result<(HttpResponse, Session, Messages), actix_web::Error> {
    let (response, session, stream) = actix_ws::handle(request, body)?;
    let (over, held) = oneshot::channel();
    let response = response
        .map_body(|_, body| {
            BoxBody::new(HeldOpen {
                body,
                ended: false,
                over: held,
            })
        })
        .map_into_boxed_body();
    let messages = Messages {
        socket: Some(Halves {
            stream,
            session: session.clone(),
            _over: over,
        }),
        // The request's guard covers the socket: its body lasts as long.
        farewell: Farewell::covered(shutdown, Arc::new(ActixTimer)),
    };
    Ok((response, session, messages))
}

/// The messages of a socket begun with [`handle`], until it has gone away.
///
/// # Cancel safety
///
/// A stream: dropping it ends the socket's going-away handshake where it
/// stands and lets the connection close.
#[must_use = "streams do nothing unless polled"]
pub struct Messages {
    socket: Option<Halves>,
    farewell: Farewell,
}

impl fmt::Debug for Messages {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Messages")
            .field("farewell", &self.farewell)
            .finish_non_exhaustive()
    }
}

impl Messages {
    /// Whether the going-away moment has come for this socket.
    pub fn is_going_away(&self) -> bool {
        !self.farewell.is_open()
    }
}

impl Stream for Messages {
    type Item = Result<Message, ProtocolError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        this.farewell.poll_next(&mut this.socket, cx)
    }
}

/// actix-ws's two halves behind the core's [`CloseHandshake`] seam; when
/// dropped, the held-open body ends.
struct Halves {
    stream: actix_ws::MessageStream,
    session: Session,
    _over: oneshot::Sender<()>,
}

impl CloseHandshake for Halves {
    type Message = Message;
    type Error = ProtocolError;

    fn poll_message(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Message, ProtocolError>>> {
        Pin::new(&mut self.get_mut().stream).poll_next(cx)
    }

    fn poll_send_going_away(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Result<(), ProtocolError>> {
        let mut session = Pin::new(&mut self.get_mut().session);
        let close = Message::Close(Some(CloseReason {
            code: CloseCode::Away,
            description: Some("going away".into()),
        }));
        let sent = match session.as_mut().poll_ready(cx) {
            Poll::Pending => return Poll::Pending,
            Poll::Ready(ready) => ready.and_then(|()| session.start_send(close)),
        };
        Poll::Ready(sent.map_err(|_| closed()))
    }

    fn poll_flush(self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Result<(), ProtocolError>> {
        // Nothing to do: a message the session took is in the body's
        // channel, and the session refuses everything once the Close frame
        // has gone through it.
        Poll::Ready(Ok(()))
    }

    fn is_close(message: &Message) -> bool {
        matches!(message, Message::Close(_))
    }
}

/// The session is closed (the connection is gone).
fn closed() -> ProtocolError {
    ProtocolError::Io(std::io::Error::from(std::io::ErrorKind::NotConnected))
}

/// actix-ws's response body, held open after its end until the going-away
/// handshake is over.
struct HeldOpen {
    /// Kept after its end: dropping it tells actix-ws's message stream that
    /// the connection is gone.
    body: BoxBody,
    ended: bool,
    over: oneshot::Receiver<()>,
}

impl MessageBody for HeldOpen {
    type Error = Box<dyn std::error::Error>;

    fn size(&self) -> BodySize {
        BodySize::Stream
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        let this = self.get_mut();
        if !this.ended {
            match Pin::new(&mut this.body).poll_next(cx) {
                Poll::Ready(None) => this.ended = true,
                other => return other,
            }
        }
        // Sent or dropped: either way the handshake is over.
        Pin::new(&mut this.over).poll(cx).map(|_| None)
    }
}
