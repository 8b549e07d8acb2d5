//! The same per-request behaviour as a `tower` layer (feature `tower`).

use crate::service::{GracefulService, ResponseFuture};
use graceful_core::Shutdown;
use http::{Request, Response};
use std::task::{Context, Poll};
use tower_layer::Layer;
use tower_service::Service;

/// Applies [`GracefulService`] to a `tower` service: each request is
/// counted in flight by the shutdown until its response body has been sent,
/// responses produced while draining carry `Connection: close`, and requests
/// that arrive once draining has begun get `503` with `Connection: close` and
/// `Retry-After: 1`.
///
/// For servers that run their own accept loop. It cannot close busy
/// connections at the drain deadline (a layer sees requests, not
/// connections), and it releases a request's guard when the body hands over
/// its last frame rather than when hyper has flushed it:
/// [`serve_connection`](crate::serve_connection) does both.
///
/// # Examples
///
/// ```
/// use graceful_core::Shutdown;
/// use graceful_hyper::GracefulLayer;
/// use http_body_util::{Empty, Full};
/// use hyper::body::Bytes;
/// use hyper::{Request, Response};
/// use std::convert::Infallible;
/// use tower_layer::Layer;
/// use tower_service::Service;
///
/// let shutdown = Shutdown::builder().build()?.handle();
/// let hello = tower::service_fn(|_: Request<Empty<Bytes>>| async {
///     Ok::<_, Infallible>(Response::new(Full::new(Bytes::from_static(b"hello"))))
/// });
/// let mut service = GracefulLayer::new(shutdown.clone()).layer(hello);
///
/// let response = futures_lite::future::block_on(async {
///     std::future::poll_fn(|cx| service.poll_ready(cx)).await?;
///     service.call(Request::new(Empty::new())).await
/// })?;
/// assert_eq!(response.status(), 200);
/// assert_eq!(shutdown.in_flight(), 1, "until the body is sent or dropped");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug)]
pub struct GracefulLayer {
    shutdown: Shutdown,
}

impl GracefulLayer {
    /// A layer counting requests in `shutdown`.
    pub fn new(shutdown: Shutdown) -> GracefulLayer {
        GracefulLayer { shutdown }
    }
}

impl<S> Layer<S> for GracefulLayer {
    type Service = GracefulService<S>;

    fn layer(&self, inner: S) -> GracefulService<S> {
        GracefulService::new(inner, self.shutdown.clone())
    }
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for GracefulService<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
{
    type Response = Response<crate::GracefulBody<ResBody>>;
    type Error = S::Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), S::Error>> {
        // Readiness is the inner service's: a refused request does not use
        // it, but whether a request will be refused is only known at `call`.
        self.get_mut().poll_ready(cx)
    }

    fn call(&mut self, request: Request<ReqBody>) -> Self::Future {
        match self.enter() {
            Some(in_flight) => {
                let future = self.get_mut().call(request);
                self.respond(in_flight, future)
            }
            None => ResponseFuture::refused(),
        }
    }
}
