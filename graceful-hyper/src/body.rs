//! The response body that keeps its request in flight until it is sent.

use graceful_core::conn::InFlight;
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use std::fmt;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

pin_project! {
    /// A response body that holds its request's guard until the last frame
    /// has been handed over, or until the body is dropped.
    ///
    /// The request stays *in progress* (counted by the shutdown) for as long
    /// as its response is being produced: a streamed body that trickles out
    /// over minutes keeps the drain waiting, and is counted as abandoned if
    /// the drain deadline passes first.
    ///
    /// The guard is released when:
    ///
    /// - the inner body reports its end ([`Body::poll_frame`] returns
    ///   `None`, or [`Body::is_end_stream`] is true after a frame),
    /// - the inner body fails,
    /// - or the body is dropped (hyper drops it when the connection ends, and
    ///   does not poll at all a body that is empty from the start).
    ///
    /// Under [`serve_connection`] "released" means "handed to the
    /// connection", which lets go of it once hyper has flushed the last
    /// bytes to the socket (see [`graceful_core::conn`]).
    ///
    /// A refused request's body is empty and holds no guard.
    ///
    /// [`serve_connection`]: crate::serve_connection
    pub struct GracefulBody<B> {
        // `None` for a refused request's empty body.
        #[pin]
        body: Option<B>,
        in_flight: InFlight,
    }
}

impl<B> GracefulBody<B> {
    pub(crate) fn new(body: B, in_flight: InFlight) -> GracefulBody<B> {
        GracefulBody {
            body: Some(body),
            in_flight,
        }
    }

    pub(crate) fn empty() -> GracefulBody<B> {
        GracefulBody {
            body: None,
            in_flight: InFlight::none(),
        }
    }

    /// True while this body still holds its request's guard.
    pub fn is_in_flight(&self) -> bool {
        self.in_flight.is_active()
    }
}

impl<B> fmt::Debug for GracefulBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GracefulBody")
            .field("empty", &self.body.is_none())
            .field("in_flight", &self.in_flight)
            .finish_non_exhaustive()
    }
}

impl<B: Body> Body for GracefulBody<B> {
    type Data = B::Data;
    type Error = B::Error;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        let Some(mut body) = this.body.as_pin_mut() else {
            return Poll::Ready(None);
        };
        let frame = ready!(body.as_mut().poll_frame(cx));
        // hyper does not poll again after a frame that `is_end_stream` calls
        // the last one, so the request ends now rather than on a `None`
        // that may never be asked for.
        this.in_flight.finish_if(match &frame {
            None | Some(Err(_)) => true,
            Some(Ok(_)) => body.is_end_stream(),
        });
        Poll::Ready(frame)
    }

    fn is_end_stream(&self) -> bool {
        self.body.as_ref().is_none_or(Body::is_end_stream)
    }

    fn size_hint(&self) -> SizeHint {
        self.body
            .as_ref()
            .map_or_else(|| SizeHint::with_exact(0), Body::size_hint)
    }
}
