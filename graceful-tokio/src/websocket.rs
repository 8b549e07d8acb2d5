//! WebSockets that go away at the shutdown's going-away moment (feature
//! `websocket`), on tokio-tungstenite.
//!
//! [`upgrade`] answers a WebSocket handshake with `101 Switching Protocols`
//! and runs the handler on the upgraded connection, in a task of its own,
//! with a [`WebSocket`]: tokio-tungstenite's `WebSocketStream` wrapped in
//! graceful-hyper's [`GoingAway`]. The socket is counted in flight from the
//! handshake on; at `closed` it is sent a Close frame with code 1001, the
//! messages that arrive after it are not delivered, and the connection
//! closes when the client answers or one second later
//! ([`CLOSE_BOUND`](graceful_hyper::websocket::CLOSE_BOUND)). See
//! [`graceful_hyper::websocket`] for the whole rule.

use crate::TokioTimer;
use graceful_core::Shutdown;
pub use graceful_hyper::websocket::{GoingAway, NotWebSocket};
use http::{Request, Response};
use hyper::upgrade::Upgraded;
use hyper_util::rt::TokioIo;
use std::future::Future;
use std::sync::Arc;
use tokio_tungstenite::WebSocketStream;
pub use tokio_tungstenite::tungstenite::{self, Message};

/// The socket a handler gets: messages in (a `Stream`), messages out (a
/// `Sink`), going away at the shutdown's going-away moment.
pub type WebSocket = GoingAway<WebSocketStream<TokioIo<Upgraded>>>;

/// Answers the WebSocket handshake `request` with `101`, and spawns
/// `handler` on the upgraded connection. Return the response from the
/// request's handler.
///
/// # Errors
///
/// [`NotWebSocket`] when `request` is no WebSocket handshake: answer it
/// `400`.
///
/// # Panics
///
/// Outside a tokio runtime, as [`tokio::spawn`] does.
///
/// # Examples
///
/// An echo: the loop ends when the socket has gone away.
///
/// ```
/// use futures_util::{SinkExt, StreamExt};
/// use graceful_tokio::websocket;
/// use http_body_util::Empty;
/// use hyper::body::{Bytes, Incoming};
/// use hyper::{Request, Response, StatusCode};
///
/// fn ws(shutdown: &graceful_tokio::Shutdown, mut request: Request<Incoming>) -> Response<Empty<Bytes>> {
///     let echo = websocket::upgrade(shutdown, &mut request, |mut socket| async move {
///         while let Some(Ok(message)) = socket.next().await {
///             if message.is_text() && socket.send(message).await.is_err() {
///                 break;
///             }
///         }
///     });
///     echo.unwrap_or_else(|_| {
///         let mut bad = Response::new(Empty::new());
///         *bad.status_mut() = StatusCode::BAD_REQUEST;
///         bad
///     })
/// }
/// # let _ = ws;
/// ```
pub fn upgrade<B, R, F, Fut>(
    shutdown: &Shutdown,
    request: &mut Request<B>,
    handler: F,
) -> Result<Response<R>, NotWebSocket>
where
    R: Default,
    F: FnOnce(WebSocket) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    graceful_hyper::websocket::upgrade(
        shutdown,
        Arc::new(TokioTimer),
        |task| drop(tokio::spawn(task)),
        request,
        |upgraded| {
            let role = tungstenite::protocol::Role::Server;
            WebSocketStream::from_raw_socket(TokioIo::new(upgraded), role, None)
        },
        handler,
    )
}
