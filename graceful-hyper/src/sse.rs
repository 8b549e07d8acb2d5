//! Server-sent events that go away at the shutdown's going-away moment, for
//! hyper without a framework.
//!
//! An SSE stream never ends by itself, so under a drain it would hold the
//! process until the drain deadline and then be cut mid-stream. [`sse`]
//! makes the response of a stream of events (each already written as
//! `data: ...\n\n`) that ends at the going-away moment (at `closed`, after
//! the unready delay: see [`GoingAway`](graceful_core::GoingAway)) with a
//! last event [`LAST_EVENT`], which only sets the client's reconnection
//! delay, then the end of the body (the chunked terminator): a browser's
//! `EventSource` reconnects a second later, to a process the load balancer
//! still routes to. The request stays in flight until that end is sent, as
//! every response does.

use futures_core::Stream;
use graceful_core::{Shutdown, UntilGoingAway};
use http::header::{CACHE_CONTROL, CONTENT_TYPE};
use http::{HeaderValue, Response};
use http_body::{Body, Frame};
use hyper::body::Bytes;
use std::convert::Infallible;
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll};

/// The event an SSE stream ends with at the going-away moment: reconnect
/// in one second.
pub use graceful_core::SSE_LAST_EVENT as LAST_EVENT;

/// The body of [`sse`]: the events, then [`LAST_EVENT`] at the going-away
/// moment, then the end.
#[must_use = "bodies do nothing unless polled"]
pub struct SseBody<S: Stream> {
    events: UntilGoingAway<S>,
}

impl<S: Stream> fmt::Debug for SseBody<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SseBody").finish_non_exhaustive()
    }
}

impl<S> Body for SseBody<S>
where
    S: Stream,
    S::Item: Into<Bytes>,
{
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        let events = Pin::new(&mut self.get_mut().events);
        events
            .poll_next(cx)
            .map(|event| event.map(|event| Ok(Frame::data(event.into()))))
    }
}

/// A `200` `text/event-stream` response of `events` (each an event written
/// out, `data: ...\n\n`) that ends at the going-away moment of `shutdown`,
/// after [`LAST_EVENT`].
///
/// # Examples
///
/// ```
/// use futures_lite::{StreamExt, stream};
/// use graceful_core::Shutdown;
///
/// let driver = Shutdown::builder().quiet().build().unwrap();
/// let ticks = stream::iter(0..).map(|i| format!("data: tick {i}\n\n"));
/// let response = graceful_hyper::sse::sse(&driver.handle(), ticks);
/// assert_eq!(response.headers()["content-type"], "text/event-stream");
/// ```
pub fn sse<S>(shutdown: &Shutdown, events: S) -> Response<SseBody<S>>
where
    S: Stream,
    S::Item: Into<Bytes> + From<&'static str>,
{
    let events = shutdown
        .until_going_away(events)
        .last(S::Item::from(LAST_EVENT));
    let mut response = Response::new(SseBody { events });
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}
