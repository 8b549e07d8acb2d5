//! WebSockets that go away at the shutdown's going-away moment (feature
//! `websocket`), on async-tungstenite, which runs on any executor.
//!
//! [`upgrade`] answers a WebSocket handshake with `101 Switching Protocols`
//! and runs the handler on the upgraded connection, spawned through the
//! [`Spawn`] seam, with a [`WebSocket`]: async-tungstenite's
//! `WebSocketStream` wrapped in graceful-hyper's [`GoingAway`]. The socket
//! is counted in flight from the handshake on; at `closed` it is sent a
//! Close frame with code 1001, the messages that arrive after it are not
//! delivered, and the connection closes when the client answers or one
//! second later ([`CLOSE_BOUND`](graceful_hyper::websocket::CLOSE_BOUND)).
//! See [`graceful_hyper::websocket`] for the whole rule.

use crate::{SmolTimer, Spawn};
use async_tungstenite::WebSocketStream;
pub use async_tungstenite::tungstenite::{self, Message};
use futures_lite::{AsyncRead, AsyncWrite};
use graceful_core::Shutdown;
pub use graceful_hyper::websocket::{GoingAway, NotWebSocket};
use http::{Request, Response};
use hyper::rt::ReadBuf;
use hyper::upgrade::Upgraded;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};

/// The socket a handler gets: messages in (a `Stream`), messages out (a
/// `Sink`), going away at the shutdown's going-away moment.
pub type WebSocket = GoingAway<WebSocketStream<UpgradedIo>>;

/// hyper's upgraded connection as `futures-io`'s `AsyncRead` and
/// `AsyncWrite`, for async-tungstenite.
#[derive(Debug)]
pub struct UpgradedIo(Upgraded);

impl AsyncRead for UpgradedIo {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut [u8],
    ) -> Poll<io::Result<usize>> {
        let mut read = ReadBuf::new(buf);
        ready!(hyper::rt::Read::poll_read(
            Pin::new(&mut self.get_mut().0),
            cx,
            read.unfilled()
        ))?;
        Poll::Ready(Ok(read.filled().len()))
    }
}

impl AsyncWrite for UpgradedIo {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        hyper::rt::Write::poll_write(Pin::new(&mut self.get_mut().0), cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        hyper::rt::Write::poll_flush(Pin::new(&mut self.get_mut().0), cx)
    }

    fn poll_close(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        hyper::rt::Write::poll_shutdown(Pin::new(&mut self.get_mut().0), cx)
    }
}

/// Answers the WebSocket handshake `request` with `101`, and spawns
/// `handler` on the upgraded connection through `spawner`. Return the
/// response from the request's handler.
///
/// # Errors
///
/// [`NotWebSocket`] when `request` is no WebSocket handshake: answer it
/// `400`.
///
/// # Examples
///
/// An echo: the loop ends when the socket has gone away.
///
/// ```
/// use futures_util::{SinkExt, StreamExt};
/// use graceful_smol::websocket;
/// use http_body_util::Empty;
/// use hyper::body::{Bytes, Incoming};
/// use hyper::{Request, Response, StatusCode};
///
/// fn ws(shutdown: &graceful_smol::Shutdown, mut request: Request<Incoming>) -> Response<Empty<Bytes>> {
///     let echo = websocket::upgrade(&graceful_smol::Global, shutdown, &mut request, |mut socket| async move {
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
    spawner: &impl Spawn,
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
        Arc::new(SmolTimer),
        |task| spawner.spawn_detached(task),
        request,
        |upgraded| {
            let role = tungstenite::protocol::Role::Server;
            WebSocketStream::from_raw_socket(UpgradedIo(upgraded), role, None)
        },
        handler,
    )
}
