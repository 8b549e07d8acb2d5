//! The per-request part: a guard for every request, `503` once draining.

use crate::body::GracefulBody;
use crate::cancel::{Cancel, StreamBody};
use graceful_core::Shutdown;
use graceful_core::conn::{Connection, InFlight, RETRY_AFTER_SECONDS};
use http::header::{CONNECTION, HeaderValue, RETRY_AFTER};
use http::{Request, Response, StatusCode};
use pin_project_lite::pin_project;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

/// Wraps a service so that each request is counted in flight by a
/// [`Shutdown`], and refused once the shutdown drains.
///
/// Per request:
///
/// - [`Shutdown::enter_owned`] is called. The guard is held while the inner
///   service runs and then by the response's [`GracefulBody`], until its last
///   frame has been handed over (and, under [`serve_connection`], until that
///   frame has been flushed to the socket), or until the body is dropped.
/// - A response whose head is produced while the phase is
///   [`Phase::Draining`](graceful_core::Phase::Draining) or later gets
///   `Connection: close`: hyper closes the connection after sending it, so
///   no further request is read from it.
/// - Once entering is refused, the inner service is not called: the answer
///   is `503 Service Unavailable` with `Connection: close`,
///   `Retry-After: 1` ([`RETRY_AFTER_SECONDS`]) and an empty body.
///
/// It implements [`hyper::service::Service`] for any request body, and,
/// with the `tower` feature, `tower::Service` (see `GracefulLayer`).
///
/// [`serve_connection`]: crate::serve_connection
///
/// # Examples
///
/// ```
/// use graceful_core::Shutdown;
/// use graceful_hyper::GracefulService;
/// use http_body_util::{Empty, Full};
/// use hyper::body::Bytes;
/// use hyper::service::{Service, service_fn};
/// use hyper::{Request, Response};
/// use std::convert::Infallible;
///
/// let shutdown = Shutdown::builder().build()?.handle();
/// let service = GracefulService::new(
///     service_fn(|_: Request<Empty<Bytes>>| async {
///         Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"hello"))))
///     }),
///     shutdown.clone(),
/// );
///
/// let response = futures_lite::future::block_on(service.call(Request::new(Empty::new())))?;
/// // The request is in flight until its body has been sent (or dropped).
/// assert_eq!(shutdown.in_flight(), 1);
/// drop(response);
/// assert_eq!(shutdown.in_flight(), 0);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct GracefulService<S> {
    inner: S,
    shutdown: Shutdown,
    /// The connection it serves, under [`serve_connection`](crate::serve_connection).
    conn: Option<Connection>,
}

impl<S> GracefulService<S> {
    /// Wraps `inner`, counting its requests in `shutdown`.
    pub fn new(inner: S, shutdown: Shutdown) -> GracefulService<S> {
        GracefulService {
            inner,
            shutdown,
            conn: None,
        }
    }

    /// The same, tied to one connection's state.
    pub(crate) fn for_connection(inner: S, conn: Connection) -> GracefulService<S> {
        GracefulService {
            inner,
            shutdown: conn.shutdown().clone(),
            conn: Some(conn),
        }
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The shutdown the requests are counted in.
    pub fn shutdown(&self) -> &Shutdown {
        &self.shutdown
    }

    /// Unwraps the service.
    pub fn into_inner(self) -> S {
        self.inner
    }

    /// Enters the shutdown for one request; `None` when it is refused.
    #[inline]
    pub(crate) fn enter(&self) -> Option<InFlight> {
        match &self.conn {
            Some(conn) => conn.enter().ok(),
            None => InFlight::detached(&self.shutdown).ok(),
        }
    }

    /// The response future of an entered request.
    ///
    /// It holds no handle on the shutdown of its own: the phase is read
    /// through the request's [`InFlight`], which the connection (or, for a
    /// detached request, its guard) already owns, so a request costs no
    /// `Arc` clone here.
    #[inline]
    pub(crate) fn respond<F>(&self, in_flight: InFlight, future: F) -> ResponseFuture<F> {
        ResponseFuture {
            kind: Kind::Called { future, in_flight },
        }
    }
}

impl<S: fmt::Debug> fmt::Debug for GracefulService<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GracefulService")
            .field("inner", &self.inner)
            .field("shutdown", &self.shutdown)
            .finish_non_exhaustive()
    }
}

impl<S, ReqBody, ResBody> hyper::service::Service<Request<ReqBody>> for GracefulService<S>
where
    S: hyper::service::Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<GracefulBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    // Inlined, with `enter` and `respond`, so that the inner service's
    // future can be built where hyper keeps it rather than moved there
    // (a request's future holds the whole request).
    #[inline]
    fn call(&self, request: Request<ReqBody>) -> Self::Future {
        match self.enter() {
            Some(in_flight) => self.respond(in_flight, self.inner.call(request)),
            None => ResponseFuture::refused(),
        }
    }
}

pin_project! {
    /// The response of a [`GracefulService`]: the inner service's response
    /// with its body wrapped, or the `503` of a refused request.
    ///
    /// # Cancel safety
    ///
    /// Dropping it drops the inner service's future and ends the request:
    /// its guard is released (under [`serve_connection`], at the
    /// connection's next flush or close).
    ///
    /// [`serve_connection`]: crate::serve_connection
    #[must_use = "futures do nothing unless polled"]
    pub struct ResponseFuture<F> {
        #[pin]
        kind: Kind<F>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F> {
        Called {
            #[pin]
            future: F,
            in_flight: InFlight,
        },
        Refused,
    }
}

impl<F> ResponseFuture<F> {
    pub(crate) fn refused() -> ResponseFuture<F> {
        ResponseFuture {
            kind: Kind::Refused,
        }
    }
}

impl<F> fmt::Debug for ResponseFuture<F> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let refused = matches!(self.kind, Kind::Refused);
        f.debug_struct("ResponseFuture")
            .field("refused", &refused)
            .finish_non_exhaustive()
    }
}

impl<F, B, E> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<GracefulBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Refused => Poll::Ready(Ok(refusal())),
            KindProj::Called { future, in_flight } => {
                // An error drops the guard here: hyper closes the connection
                // without a response, so the request is over.
                let mut response = ready!(future.poll(cx))?;
                // Checked as late as possible, when the head is handed to
                // hyper, which writes it in the same poll: a head produced
                // before the phase changes goes out without the header,
                // which is right, as it was produced while serving normally.
                // An upgrade keeps its own `Connection` header: what follows
                // its `101` is the session, not another request.
                if in_flight.draining() && response.status() != StatusCode::SWITCHING_PROTOCOLS {
                    response
                        .headers_mut()
                        .insert(CONNECTION, HeaderValue::from_static("close"));
                }
                let in_flight = std::mem::replace(in_flight, InFlight::none());
                Poll::Ready(Ok(response.map(|body| GracefulBody::new(body, in_flight))))
            }
        }
    }
}

/// The answer to a request refused because the shutdown is draining.
fn refusal<B>() -> Response<GracefulBody<B>> {
    let mut response = Response::new(GracefulBody::empty());
    *response.status_mut() = StatusCode::SERVICE_UNAVAILABLE;
    let headers = response.headers_mut();
    // Without it hyper would keep the connection open, and a pooled client
    // would keep sending requests that can only be refused.
    headers.insert(CONNECTION, HeaderValue::from_static("close"));
    headers.insert(RETRY_AFTER, HeaderValue::from(RETRY_AFTER_SECONDS));
    response
}

/// The service [`serve_connection`](crate::serve_connection) gives hyper
/// for an HTTP/2 connection (an HTTP/1.1 one gets the [`GracefulService`]
/// itself, with none of this: no [`Cancel`], no boxed error), for the
/// HTTP/2 rule: a stream is entered while the drain is not over
/// ([`Connection::enter_stream`]) and never answered `503`; one that comes
/// after it is reset with `REFUSED_STREAM` (not processed, so the client
/// retries it); and one still in progress at the drain deadline is reset
/// with `CANCEL` ([`crate::cancel`]). Errors are boxed, so that a reset can
/// carry its reason to hyper, which resets the stream with the reason it
/// finds in the error.
pub(crate) struct Streams<S> {
    pub(crate) service: GracefulService<S>,
}

impl<S, ReqBody, ResBody> hyper::service::Service<Request<ReqBody>> for Streams<S>
where
    S: hyper::service::Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Error: Into<BoxError>,
{
    type Response = Response<StreamBody<ResBody>>;
    type Error = BoxError;
    type Future = StreamFuture<S::Future>;

    fn call(&self, request: Request<ReqBody>) -> Self::Future {
        let entered = self.service.conn.as_ref().map(Connection::enter_stream);
        match entered {
            Some(Ok(in_flight)) => StreamFuture {
                future: Some(
                    self.service
                        .respond(in_flight, self.service.inner.call(request)),
                ),
                cancel: Some(Cancel::stream(&self.service.shutdown)),
            },
            _ => StreamFuture {
                future: None,
                cancel: None,
            },
        }
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

pin_project! {
    /// A [`Streams`] response: `None` for a refused HTTP/2 stream.
    #[must_use = "futures do nothing unless polled"]
    pub(crate) struct StreamFuture<F> {
        #[pin]
        future: Option<ResponseFuture<F>>,
        // Handed to the body with the response.
        cancel: Option<Cancel>,
    }
}

impl<F, B, E> Future for StreamFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
    E: Into<BoxError>,
{
    type Output = Result<Response<StreamBody<B>>, BoxError>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        let (Some(future), Some(cancel)) = (this.future.as_pin_mut(), this.cancel.as_mut()) else {
            return Poll::Ready(Err(Box::new(h2::Error::from(h2::Reason::REFUSED_STREAM))));
        };
        if let Poll::Ready(error) = cancel.poll_cancelled(cx) {
            return Poll::Ready(Err(error));
        }
        let response = ready!(future.poll(cx)).map_err(Into::into)?;
        let cancel = this.cancel.take().unwrap_or_else(Cancel::never);
        Poll::Ready(Ok(response.map(|body| StreamBody::new(body, cancel))))
    }
}
