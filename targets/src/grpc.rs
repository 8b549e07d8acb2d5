//! The gRPC half of the tokio target (contract v2, rules 28 and 29): the
//! standard health service `grpc.health.v1.Health` and the contract's
//! `graceful.contract.v1.Contract` (`proto/contract.proto`), served on the
//! target's own port beside its HTTP routes.
//!
//! - [`routes`]: both services as tonic `Routes`; the health service is
//!   [`graceful_tokio::tonic::health`] (`NOT_SERVING` from the first signal,
//!   `Watch` ended with `OK` at `closed`), and the `Ticks` streams end at
//!   `closed` with `UNAVAILABLE` ([`graceful_tokio::tonic::until_going_away`]).
//! - [`WithGrpc`]: the one service the target serves: a request whose
//!   `content-type` is `application/grpc` (with or without a `+format`
//!   suffix) goes to the routes, any other to the HTTP service.
//!
//! Both go through `graceful_tokio::serve`, so an RPC is an HTTP/2 stream
//! like any other: in flight until its trailers are sent, and bound by the
//! same GOAWAY, bounded waits and drain deadline.

use futures_core::Stream;
use graceful_core::{Shutdown, UntilGoingAway};
use http_body_util::Either;
use hyper::body::Incoming;
use hyper::{Request, Response};
use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::time::{Instant, Sleep, sleep};
use tonic::service::Routes;
use tonic::{Status, async_trait};
use tower::ServiceExt;

/// The code generated from `proto/contract.proto`.
#[allow(missing_docs, unreachable_pub, clippy::all)]
pub mod pb {
    tonic::include_proto!("graceful.contract.v1");
}

use pb::contract_server::{Contract, ContractServer};
use pb::{SleepReply, SleepRequest, Tick, TicksRequest};

/// The gRPC routes: `grpc.health.v1.Health`, with `""` and
/// `graceful.contract.v1.Contract` `SERVING`, and the contract's service.
pub async fn routes(shutdown: &Shutdown) -> Routes {
    let (reporter, _) = tonic_health::server::health_reporter();
    reporter.set_serving::<ContractServer<Service>>().await;
    let contract = Service {
        shutdown: shutdown.clone(),
    };
    Routes::new(graceful_tokio::tonic::health(shutdown, &reporter))
        .add_service(ContractServer::new(contract))
}

/// Whether `request` is a gRPC call: its `content-type` is
/// `application/grpc`, or `application/grpc+FORMAT`.
pub fn is_grpc<B>(request: &Request<B>) -> bool {
    let Some(value) = request.headers().get(hyper::header::CONTENT_TYPE) else {
        return false;
    };
    let value = value.as_bytes();
    value
        .strip_prefix(b"application/grpc")
        .is_some_and(|rest| rest.is_empty() || rest.starts_with(b"+") || rest.starts_with(b";"))
}

/// The contract's service.
#[derive(Debug, Clone)]
pub struct Service {
    shutdown: Shutdown,
}

#[async_trait]
impl Contract for Service {
    async fn sleep(
        &self,
        request: tonic::Request<SleepRequest>,
    ) -> Result<tonic::Response<SleepReply>, Status> {
        let ms = request.into_inner().ms;
        sleep(Duration::from_millis(ms.into())).await;
        Ok(tonic::Response::new(SleepReply {
            message: format!("slept {ms}"),
        }))
    }

    type TicksStream = UntilGoingAway<Ticks>;

    async fn ticks(
        &self,
        request: tonic::Request<TicksRequest>,
    ) -> Result<tonic::Response<UntilGoingAway<Ticks>>, Status> {
        let every = Duration::from_millis(request.into_inner().ms.into());
        let ticks = Ticks {
            index: 0,
            every,
            wait: Box::pin(sleep(Duration::ZERO)),
        };
        let stream = graceful_tokio::tonic::until_going_away(&self.shutdown, ticks);
        Ok(tonic::Response::new(stream))
    }
}

/// The messages of `Ticks`: one at once, then one every `every`, forever.
#[derive(Debug)]
pub struct Ticks {
    index: u64,
    every: Duration,
    wait: Pin<Box<Sleep>>,
}

impl Stream for Ticks {
    type Item = Result<Tick, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        if self.wait.as_mut().poll(cx).is_pending() {
            return Poll::Pending;
        }
        let next = self.wait.deadline() + self.every;
        self.wait.as_mut().reset(next.max(Instant::now()));
        let index = self.index;
        self.index += 1;
        Poll::Ready(Some(Ok(Tick { index })))
    }
}

/// The target's service: gRPC calls to [`routes`], the rest to `http`.
#[derive(Debug, Clone)]
pub struct WithGrpc<S> {
    grpc: Routes,
    http: S,
}

impl<S> WithGrpc<S> {
    /// `http`, with gRPC calls sent to `grpc` instead.
    pub fn new(grpc: Routes, http: S) -> WithGrpc<S> {
        WithGrpc { grpc, http }
    }
}

/// A response of [`WithGrpc`]: the HTTP service's body, or tonic's.
pub type EitherResponse<B> = Response<Either<B, tonic::body::Body>>;

type ResponseFuture<B> =
    Pin<Box<dyn Future<Output = Result<EitherResponse<B>, Infallible>> + Send>>;

impl<S, B> hyper::service::Service<Request<Incoming>> for WithGrpc<S>
where
    S: hyper::service::Service<Request<Incoming>, Response = Response<B>, Error = Infallible>,
    S::Future: Send + 'static,
{
    type Response = EitherResponse<B>;
    type Error = Infallible;
    type Future = ResponseFuture<B>;

    fn call(&self, request: Request<Incoming>) -> ResponseFuture<B> {
        if is_grpc(&request) {
            let grpc = self.grpc.clone();
            Box::pin(async move {
                let response = grpc.oneshot(request).await?;
                Ok(response.map(Either::Right))
            })
        } else {
            let response = self.http.call(request);
            Box::pin(async move { Ok(response.await?.map(Either::Left)) })
        }
    }
}
