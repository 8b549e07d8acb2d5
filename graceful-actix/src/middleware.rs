//! The per-request part: a guard for every request, `503` once draining,
//! `Connection: close` on what is answered during the drain.

use crate::conn::{ConnData, Entered};
use actix_web::body::{BodySize, BoxBody, MessageBody};
use actix_web::dev::ResponseHead;
use actix_web::dev::{Service, ServiceRequest, ServiceResponse, Transform, forward_ready};
use actix_web::http::header::RETRY_AFTER;
use actix_web::http::{ConnectionType, StatusCode, Version};
use actix_web::web::Bytes;
use actix_web::{Error, HttpMessage, HttpRequest, HttpResponse, ResponseError};
use graceful_core::Shutdown;
use graceful_core::conn::{InFlight, RETRY_AFTER_SECONDS};
use pin_project_lite::pin_project;
use std::fmt;
use std::future::{Future, Ready, ready};
use std::marker::PhantomData;
use std::pin::Pin;
use std::task::{Context, Poll};

/// actix-web middleware that counts each request in flight in a
/// [`Shutdown`], and refuses new work once the shutdown drains.
///
/// Per request:
///
/// - [`Shutdown::enter_owned`] is called. The guard is held while the rest
///   of the app (inner middleware, extractors, the handler) runs, and then
///   by the response's [`GracefulBody`] until its last chunk has been sent
///   (or the body is dropped): a streamed response keeps its request in
///   progress to the end.
/// - A response whose head is produced while the phase is
///   [`Phase::Draining`](graceful_core::Phase::Draining) or later gets
///   `Connection: close`, so the connection closes after it and no further
///   request is read from it.
///   An error returned by inner middleware gets it too, on the response
///   actix makes of it.
/// - Once entering is refused, the rest of the app is not called: the
///   answer is `503 Service Unavailable` with `Connection: close`,
///   `Retry-After: 1` ([`RETRY_AFTER_SECONDS`]) and an empty body.
///
/// Served by [`serve`](crate::serve) or [`Server`](crate::Server), which
/// apply it themselves, outermost, it does more: a request stays in
/// progress until its response's last bytes have been flushed to the
/// socket, and a request pipelined behind a response that closes the
/// connection is never begun. Under actix-web's own `HttpServer` it
/// releases the guard when the body ends, and actix may begin such
/// pipelined requests (they are refused with `503` during the drain).
///
/// Under `HttpServer`, the shutdown does not know that a listener is open,
/// so it skips the unready delay (see
/// [`Builder::unready_delay`](graceful_core::Builder::unready_delay))
/// unless you hold a [`Shutdown::track_listener`] token while it listens:
/// the crate's README shows how.
///
/// Applied twice to the same request (by hand inside [`serve`](crate::serve),
/// which applies it too), only the outer one counts it.
///
/// # Examples
///
/// ```
/// use actix_web::{App, test, web};
/// use graceful_actix::{Graceful, Shutdown, Signal};
///
/// # actix_web::rt::System::new().block_on(async {
/// let shutdown = Shutdown::builder().build()?.handle();
/// let app = test::init_service(
///     App::new()
///         .wrap(Graceful::new(&shutdown))
///         .route("/", web::get().to(|| async { "hello" })),
/// )
/// .await;
///
/// let response = test::call_service(&app, test::TestRequest::get().to_request()).await;
/// assert_eq!(response.status(), 200);
/// // The request is in flight until its body has been sent (or dropped).
/// assert_eq!(shutdown.in_flight(), 1);
/// drop(response);
/// assert_eq!(shutdown.in_flight(), 0);
///
/// let _ = shutdown.request(Signal::TERM);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// # }).unwrap();
/// ```
#[derive(Clone, Debug)]
pub struct Graceful {
    shutdown: Shutdown,
}

impl Graceful {
    /// Counts requests in `shutdown`.
    pub fn new(shutdown: &Shutdown) -> Graceful {
        Graceful {
            shutdown: shutdown.clone(),
        }
    }
}

impl<S, B> Transform<S, ServiceRequest> for Graceful
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
    B: MessageBody,
{
    type Response = ServiceResponse<GracefulBody<B>>;
    type Error = Error;
    type Transform = GracefulMiddleware<S>;
    type InitError = ();
    type Future = Ready<Result<GracefulMiddleware<S>, ()>>;

    fn new_transform(&self, service: S) -> Self::Future {
        ready(Ok(GracefulMiddleware {
            service,
            shutdown: self.shutdown.clone(),
        }))
    }
}

/// The service made by [`Graceful`]: see there.
pub struct GracefulMiddleware<S> {
    service: S,
    // Read only by requests that no connection of `serve` counts: neither
    // kind clones it (a connection's requests are counted on its handle).
    shutdown: Shutdown,
}

impl<S> fmt::Debug for GracefulMiddleware<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GracefulMiddleware")
            .field("shutdown", &self.shutdown)
            .finish_non_exhaustive()
    }
}

/// Marks a request that is already counted, in its extensions: by an outer
/// [`Graceful`] outside [`serve`](crate::serve) (under it, the connection
/// holds the mark: `ConnData::counts`), or as an HTTP/2 stream by the
/// connection ([`crate::h2`]).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Counted;

impl<S, B> Service<ServiceRequest> for GracefulMiddleware<S>
where
    S: Service<ServiceRequest, Response = ServiceResponse<B>, Error = Error>,
    B: MessageBody,
{
    type Response = ServiceResponse<GracefulBody<B>>;
    type Error = Error;
    type Future = ResponseFuture<S::Future, B>;

    forward_ready!(service);

    fn call(&self, request: ServiceRequest) -> Self::Future {
        let (in_flight, conn) = match request.request().conn_data::<ConnData>() {
            // Served by `serve`: counted on the connection, marked on it.
            Some(conn) => {
                if conn.counts(request.head()) {
                    return ResponseFuture::counted(self.service.call(request));
                }
                if conn.is_closing() {
                    // Pipelined behind a response that closes the
                    // connection: never begun. The connection closes once
                    // that response is out.
                    conn.park();
                    return ResponseFuture { kind: Kind::Parked };
                }
                let Ok(in_flight) = conn.conn.enter() else {
                    conn.set_closing();
                    return ResponseFuture::refused(request);
                };
                (in_flight, Some(conn.entered(request.head())))
            }
            // Under another server: counted alone, marked in the request.
            None => {
                if request.extensions().contains::<Counted>() {
                    return ResponseFuture::counted(self.service.call(request));
                }
                let Ok(in_flight) = InFlight::detached(&self.shutdown) else {
                    return ResponseFuture::refused(request);
                };
                request.extensions_mut().insert(Counted);
                (in_flight, None)
            }
        };
        let client_close = request.head().connection_type() == ConnectionType::Close;
        ResponseFuture {
            kind: Kind::Called {
                future: self.service.call(request),
                called: Some(Called {
                    in_flight,
                    conn,
                    client_close,
                }),
            },
        }
    }
}

/// What an entered request carries until its response head is produced.
/// Kept small, as it is moved with the future: the phase is read through
/// `in_flight` (no `Shutdown` of its own), and of the connection it keeps
/// only the mark.
struct Called {
    in_flight: InFlight,
    conn: Option<Entered>,
    /// The request asked for the connection to close after it.
    client_close: bool,
}

pin_project! {
    /// The response of a [`GracefulMiddleware`]: the app's response with
    /// its body wrapped, or the `503` of a refused request.
    ///
    /// # Cancel safety
    ///
    /// Dropping it drops the app's future and ends the request: its guard
    /// is released.
    #[must_use = "futures do nothing unless polled"]
    pub struct ResponseFuture<F, B> {
        #[pin]
        kind: Kind<F, B>,
    }
}

pin_project! {
    #[project = KindProj]
    enum Kind<F, B> {
        Called {
            #[pin]
            future: F,
            called: Option<Called>,
        },
        Counted {
            #[pin]
            future: F,
        },
        // The `503` is made when polled, from the request alone: a whole
        // response here would make every future as large as one.
        Refused {
            request: Option<HttpRequest>,
            body: PhantomData<fn() -> B>,
        },
        // Never resolves: the connection task drops it with the connection.
        Parked,
    }
}

impl<F, B> fmt::Debug for ResponseFuture<F, B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.kind {
            Kind::Called { .. } => "called",
            Kind::Counted { .. } => "counted",
            Kind::Refused { .. } => "refused",
            Kind::Parked => "parked",
        };
        f.debug_struct("ResponseFuture")
            .field("kind", &kind)
            .finish()
    }
}

impl<F, B> Future for ResponseFuture<F, B>
where
    F: Future<Output = Result<ServiceResponse<B>, Error>>,
    B: MessageBody,
{
    type Output = Result<ServiceResponse<GracefulBody<B>>, Error>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            KindProj::Called { future, called } => {
                let result = std::task::ready!(future.poll(cx));
                let called = called.take().expect("polled after completion");
                // Checked as late as possible, when the head is handed to
                // the dispatcher, which encodes it in the same poll: a head
                // produced before the phase changes goes out without the
                // header, which is right, as it was produced while serving
                // normally.
                let draining = called.in_flight.draining();
                Poll::Ready(match result {
                    Ok(mut response) => {
                        let head = response.response_mut().head_mut();
                        let closes = says_close(head);
                        // An upgrade (a WebSocket's `101`) keeps its own
                        // `Connection` header: its body is the session.
                        if draining && !head.upgrade() {
                            head.set_connection_type(ConnectionType::Close);
                        }
                        if let Some(conn) = &called.conn
                            && (draining || closes || called.client_close)
                        {
                            conn.set_closing();
                        }
                        let in_flight = called.in_flight;
                        // Taken apart and put back together rather than
                        // `map_body`, which actix does not inline here: its
                        // by-value argument and result cost a copy of the
                        // whole response each.
                        let (request, response) = response.into_parts();
                        let (response, body) = response.into_parts();
                        let body = GracefulBody::new(body, in_flight);
                        Ok(ServiceResponse::new(request, response.set_body(body)))
                    }
                    Err(error) => {
                        if let Some(conn) = &called.conn
                            && (draining || called.client_close)
                        {
                            conn.set_closing();
                        }
                        // The guard goes with `called`: actix writes the
                        // error's response right away.
                        if draining {
                            Err(Error::from(Closing(error)))
                        } else {
                            Err(error)
                        }
                    }
                })
            }
            KindProj::Counted { future } => {
                let response = std::task::ready!(future.poll(cx))?;
                Poll::Ready(Ok(
                    response.map_body(|_, body| GracefulBody::new(body, InFlight::none()))
                ))
            }
            KindProj::Refused { request, .. } => Poll::Ready(Ok(refusal(
                request.take().expect("polled after completion"),
            ))),
            KindProj::Parked => Poll::Pending,
        }
    }
}

/// True when the response itself closes its connection: it was given
/// `Connection: close` (or is an upgrade, whose connection becomes the
/// session) by the app.
///
/// `ResponseHead::connection_type` alone does not say that before the head
/// is encoded: actix-http reuses pooled heads without resetting their
/// `version`, which the encoder sets only later, so a fresh head can still
/// carry the `HTTP/1.0` of an earlier response on the same thread, and for
/// that version "no header set" reads as `Close`. The request's own
/// `Connection` is checked separately, from its head.
fn says_close(head: &mut ResponseHead) -> bool {
    let version = std::mem::replace(&mut head.version, Version::HTTP_11);
    let closes = head.connection_type() == ConnectionType::Close;
    head.version = version;
    closes
}

impl<F, B> ResponseFuture<F, B> {
    /// The app's future for a request counted elsewhere.
    fn counted(future: F) -> ResponseFuture<F, B> {
        ResponseFuture {
            kind: Kind::Counted { future },
        }
    }

    /// The `503` of a request refused because the shutdown is draining.
    fn refused(request: ServiceRequest) -> ResponseFuture<F, B> {
        // The payload goes now; the answer needs only the request.
        let (request, _) = request.into_parts();
        ResponseFuture {
            kind: Kind::Refused {
                request: Some(request),
                body: PhantomData,
            },
        }
    }
}

/// The answer to a request refused because the shutdown is draining.
fn refusal<B>(request: HttpRequest) -> ServiceResponse<GracefulBody<B>> {
    let response = HttpResponse::build(StatusCode::SERVICE_UNAVAILABLE)
        // Without it actix would keep the connection open, and a pooled
        // client would keep sending requests that can only be refused.
        .force_close()
        .insert_header((RETRY_AFTER, RETRY_AFTER_SECONDS))
        .finish();
    ServiceResponse::new(request, response).map_body(|_, _| GracefulBody::empty())
}

/// An error from inner middleware, answered during the drain: the same
/// answer, with `Connection: close`.
struct Closing(Error);

impl fmt::Debug for Closing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.0, f)
    }
}

impl fmt::Display for Closing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.0, f)
    }
}

impl ResponseError for Closing {
    fn status_code(&self) -> StatusCode {
        self.0.as_response_error().status_code()
    }

    fn error_response(&self) -> HttpResponse<BoxBody> {
        let mut response = self.0.error_response();
        response
            .head_mut()
            .set_connection_type(ConnectionType::Close);
        response
    }
}

pin_project! {
    /// A response body that holds its request's guard until its last chunk
    /// has been handed over, or until it is dropped.
    ///
    /// The request stays *in progress* (counted by the shutdown) for as long
    /// as its response is being produced: a streamed body that trickles out
    /// over minutes keeps the drain waiting, and is counted as abandoned if
    /// the drain deadline passes first.
    ///
    /// Under [`serve`](crate::serve), "released" means "handed to the
    /// connection", which lets go of it once the dispatcher has flushed the
    /// last bytes to the socket (see [`graceful_core::conn`]).
    ///
    /// A refused request's body is empty and holds no guard.
    pub struct GracefulBody<B> {
        #[pin]
        kind: BodyKind<B>,
    }
}

pin_project! {
    #[project = BodyProj]
    enum BodyKind<B> {
        Tracked {
            #[pin]
            body: B,
            in_flight: InFlight,
        },
        Refused,
    }
}

impl<B> GracefulBody<B> {
    fn new(body: B, in_flight: InFlight) -> GracefulBody<B> {
        let kind = BodyKind::Tracked { body, in_flight };
        GracefulBody { kind }
    }

    fn empty() -> GracefulBody<B> {
        let kind = BodyKind::Refused;
        GracefulBody { kind }
    }

    /// True while this body still holds its request's guard.
    pub fn is_in_flight(&self) -> bool {
        match &self.kind {
            BodyKind::Tracked { in_flight, .. } => in_flight.is_active(),
            BodyKind::Refused => false,
        }
    }
}

impl<B> fmt::Debug for GracefulBody<B> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut debug = f.debug_struct("GracefulBody");
        if let BodyKind::Tracked { in_flight, .. } = &self.kind {
            debug.field("in_flight", in_flight);
        }
        debug.finish_non_exhaustive()
    }
}

impl<B: MessageBody> MessageBody for GracefulBody<B> {
    type Error = B::Error;

    fn size(&self) -> BodySize {
        match &self.kind {
            BodyKind::Tracked { body, .. } => body.size(),
            BodyKind::Refused => BodySize::Sized(0),
        }
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        let BodyProj::Tracked { body, in_flight } = self.project().kind.project() else {
            return Poll::Ready(None);
        };
        let chunk = std::task::ready!(body.poll_next(cx));
        // The end, or an error. (A body with no bytes at all is never
        // polled; it is dropped, which ends the request just the same.)
        in_flight.finish_if(matches!(chunk, None | Some(Err(_))));
        Poll::Ready(chunk)
    }
}
