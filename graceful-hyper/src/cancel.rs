//! HTTP/2 streams at the drain deadline: reset with `RST_STREAM(CANCEL)`.
//!
//! # Design
//!
//! When the shutdown gives up on the work in flight (the drain deadline
//! passed, or the shutdown was forced), an HTTP/1.1 connection that is busy
//! can only be closed. An HTTP/2 stream can be ended alone, and the client
//! told why: `RST_STREAM` with `CANCEL` ("no longer needed"). hyper resets a
//! stream whose service future or response body fails, with the reason it
//! finds in the error's chain of sources (`INTERNAL_ERROR` when there is
//! none), so a stream is reset here by failing it with
//! `h2::Error::from(Reason::CANCEL)`, whichever part of it is running: the
//! handler ([`Cancel`] in the stream's future) or its body ([`StreamBody`]).
//! The stream's guard goes with the failed future or body, and is released
//! at the flush that carries the `RST_STREAM` frame.
//!
//! Its connection is closed once its streams are reset (hyper has already
//! sent GOAWAY, so with no stream left it closes the connection itself), or
//! [`RESET_BOUND`] after the deadline at the latest, whatever hyper is still
//! waiting for: a stream whose client stopped reading waits for flow-control
//! window that never comes, and its body is not polled again.
//!
//! HTTP/1.1 requests carry a [`Cancel`] that never fires: the connection's
//! deadline rule closes a busy HTTP/1.1 connection instead.

use crate::body::GracefulBody;
use graceful_core::Abandoned;
use graceful_core::Shutdown;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use std::error::Error as StdError;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

type BoxError = Box<dyn StdError + Send + Sync>;

/// How long after the drain deadline an HTTP/2 connection whose streams
/// were reset is closed even if hyper has not closed it: 1 s.
pub(crate) const RESET_BOUND: Duration = Duration::from_secs(1);

/// The error a stream is failed with at the deadline: hyper resets the
/// stream with `CANCEL`, the reason it finds in it.
fn cancelled() -> BoxError {
    Box::new(h2::Error::from(h2::Reason::CANCEL))
}

/// One stream's deadline: fires when the shutdown gives up on the work in
/// flight, for an HTTP/2 stream; never for an HTTP/1.1 request.
pub(crate) struct Cancel {
    abandoned: Option<Abandoned>,
}

impl Cancel {
    /// The deadline of an HTTP/2 stream of `shutdown`.
    pub(crate) fn stream(shutdown: &Shutdown) -> Cancel {
        Cancel {
            abandoned: Some(shutdown.abandoned()),
        }
    }

    /// No deadline (HTTP/1.1).
    pub(crate) fn never() -> Cancel {
        Cancel { abandoned: None }
    }

    /// The error to fail the stream with, once the deadline has come.
    pub(crate) fn poll_cancelled(&mut self, cx: &mut Context<'_>) -> Poll<BoxError> {
        if let Some(abandoned) = &mut self.abandoned
            && Pin::new(abandoned).poll(cx).is_ready()
        {
            self.abandoned = None;
            return Poll::Ready(cancelled());
        }
        Poll::Pending
    }
}

pin_project! {
    /// A response body as [`serve_connection`](crate::serve_connection)
    /// sends it: a [`GracefulBody`], with errors boxed and, on an HTTP/2
    /// stream, the deadline's reset.
    pub(crate) struct StreamBody<B> {
        #[pin]
        body: GracefulBody<B>,
        cancel: Cancel,
    }
}

impl<B> StreamBody<B> {
    pub(crate) fn new(body: GracefulBody<B>, cancel: Cancel) -> StreamBody<B> {
        StreamBody { body, cancel }
    }
}

impl<B> Body for StreamBody<B>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    type Data = B::Data;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        if let Poll::Ready(error) = this.cancel.poll_cancelled(cx) {
            return Poll::Ready(Some(Err(error)));
        }
        this.body
            .poll_frame(cx)
            .map(|frame| frame.map(|frame| frame.map_err(Into::into)))
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}
