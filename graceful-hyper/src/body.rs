//! The response body that keeps its request in flight until it is sent.

use crate::conn::InFlight;
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
    /// bytes to the socket (see there).
    ///
    /// A refused request's body is empty and holds no guard.
    ///
    /// [`serve_connection`]: crate::serve_connection
    pub struct GracefulBody<B> {
        #[pin]
        kind: Kind<B>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<B> {
        Inner {
            #[pin]
            body: B,
            in_flight: Option<InFlight>,
        },
        Empty,
    }
}

impl<B> GracefulBody<B> {
    pub(crate) fn new(body: B, in_flight: Option<InFlight>) -> GracefulBody<B> {
        GracefulBody {
            kind: Kind::Inner { body, in_flight },
        }
    }

    pub(crate) fn empty() -> GracefulBody<B> {
        GracefulBody { kind: Kind::Empty }
    }

    /// True while this body still holds its request's guard.
    pub fn is_in_flight(&self) -> bool {
        matches!(
            self.kind,
            Kind::Inner {
                in_flight: Some(_),
                ..
            }
        )
    }
}

impl<B> fmt::Debug for GracefulBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GracefulBody")
            .field("empty", &matches!(self.kind, Kind::Empty))
            .field("in_flight", &self.is_in_flight())
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
        match self.project().kind.project() {
            KindProj::Empty => Poll::Ready(None),
            KindProj::Inner {
                mut body,
                in_flight,
            } => {
                let frame = ready!(body.as_mut().poll_frame(cx));
                // The end, an error, or a last frame: the request's work is
                // done once hyper has this frame. hyper does not poll again
                // after a frame that `is_end_stream` calls the last one, so
                // the guard goes now rather than on a `None` that may never
                // be asked for.
                let last = match &frame {
                    None | Some(Err(_)) => true,
                    Some(Ok(_)) => body.is_end_stream(),
                };
                if last {
                    drop(in_flight.take());
                }
                Poll::Ready(frame)
            }
        }
    }

    fn is_end_stream(&self) -> bool {
        match &self.kind {
            Kind::Empty => true,
            Kind::Inner { body, .. } => body.is_end_stream(),
        }
    }

    fn size_hint(&self) -> SizeHint {
        match &self.kind {
            Kind::Empty => SizeHint::with_exact(0),
            Kind::Inner { body, .. } => body.size_hint(),
        }
    }
}
