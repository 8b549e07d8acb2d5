//! gRPC with tonic (feature `tonic`): a tonic [`Routes`] served through
//! graceful's own serving path, a health service that follows the shutdown,
//! and server streams that end at the going-away moment.
//!
//! tonic's own `Server::serve_with_shutdown` drains without a deadline (its
//! connection tasks are spawned, so a time-out around the call does not
//! stop them), waits on clients that never send their preface or never
//! answer the shutdown PING, and its health `Watch` streams never end, so a
//! single watching client holds the shutdown until it is killed. Here:
//!
//! - [`serve`] serves the routes with [`serve_tower`](crate::serve_tower):
//!   every RPC is an HTTP/2 stream counted in flight until its trailers are
//!   sent; at `closed` each connection is sent GOAWAY, the streams it had
//!   opened complete, idle connections close, and a client that never
//!   answers the PING or never sends its preface does not delay the exit;
//!   the drain deadline resets what is left.
//! - [`health`] wraps a `tonic-health` [`HealthReporter`]: from the first
//!   signal every service it knows answers `NOT_SERVING` (the load balancer
//!   stops routing new work here while the unready delay still serves it),
//!   and every `Watch` stream sends `NOT_SERVING` at the signal and ends with
//!   status `OK` at `closed`.
//! - [`until_going_away`] ends a server stream (server-streaming or
//!   bidirectional) at `closed` with status `UNAVAILABLE` ("shutting down"),
//!   which gRPC clients treat as "retry elsewhere". A handler that needs the
//!   moment itself awaits [`Shutdown::going_away`].
//!
//! Unary RPCs in progress at the signal complete as any request does.
//!
//! # Examples
//!
//! ```
//! use graceful_tokio::{Cause, Shutdown};
//! use tokio::net::TcpListener;
//! use tonic::service::Routes;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let driver = Shutdown::builder().build()?;
//! let shutdown = driver.handle();
//! let (reporter, _) = tonic_health::server::health_reporter();
//! let routes = Routes::new(graceful_tokio::tonic::health(&shutdown, &reporter));
//! let listener = TcpListener::bind("127.0.0.1:0").await?;
//! tokio::spawn(graceful_tokio::tonic::serve(listener, routes, &shutdown));
//!
//! let _ = shutdown.request(Cause::reason("example"));
//! assert_eq!(graceful_tokio::run(driver).await.exit_code(), 0);
//! # Ok(())
//! # }
//! ```

use crate::Serve;
use ::tonic::service::Routes;
use ::tonic::{Request, Response, Status};
use futures_core::Stream;
use graceful_core::{GoingAway, Phase, Reached, Shutdown, UntilGoingAway};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};
use tokio::net::TcpListener;
use tonic_health::pb::health_check_response::ServingStatus;
use tonic_health::pb::health_server::{Health, HealthServer};
use tonic_health::pb::{HealthCheckRequest, HealthCheckResponse};
use tonic_health::server::{HealthReporter, HealthService, WatchStream};

/// The message of the `UNAVAILABLE` status that ends a stream at the
/// going-away moment.
pub const SHUTTING_DOWN: &str = "shutting down";

/// Serves `listener` with tonic's `routes` until the shutdown closes it:
/// [`serve_tower`](crate::serve_tower) with the routes as the service, so
/// HTTP/2 with prior knowledge (what gRPC clients speak in plaintext) is
/// served with every rule of [`serve`](crate::serve): each RPC is in flight
/// until its trailers are sent, GOAWAY at `closed`, bounded waits on
/// clients that never answer, the drain deadline.
///
/// Build `routes` with [`Routes::new`] and [`Routes::add_service`] (or
/// tonic's `RoutesBuilder`); add [`health`] among them.
///
/// Must be called from within a tokio runtime (connections are spawned).
pub fn serve(listener: TcpListener, routes: Routes, shutdown: &Shutdown) -> Serve {
    crate::serve_tower(listener, routes, shutdown)
}

/// The `grpc.health.v1.Health` service of `reporter`, following the
/// shutdown: see [`GracefulHealth`].
///
/// Register the services with the reporter as usual
/// (`reporter.set_serving::<MyServer<_>>()`); the overall health (`""`)
/// is there from the start.
pub fn health(shutdown: &Shutdown, reporter: &HealthReporter) -> HealthServer<GracefulHealth> {
    HealthServer::new(GracefulHealth {
        inner: HealthService::from_health_reporter(reporter.clone()),
        shutdown: shutdown.clone(),
    })
}

/// tonic-health's service, with the shutdown's view of health on top.
///
/// - `Check`: the reporter's status until the first signal; `NOT_SERVING`
///   for every service the reporter knows from then on, whatever the
///   reporter is told later. An unknown service is `NOT_FOUND` as before.
/// - `Watch`: the reporter's changes until the first signal; then one
///   `NOT_SERVING` at once (the stream is not left waiting for a change the
///   reporter never makes), and at `closed` the stream ends with status
///   `OK`, so that a watching client never holds the drain.
pub struct GracefulHealth {
    inner: HealthService,
    shutdown: Shutdown,
}

impl fmt::Debug for GracefulHealth {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GracefulHealth").finish_non_exhaustive()
    }
}

#[::tonic::async_trait]
impl Health for GracefulHealth {
    async fn check(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthCheckResponse>, Status> {
        let mut response = self.inner.check(request).await?;
        if !self.shutdown.is_ready() {
            response.get_mut().status = ServingStatus::NotServing as i32;
        }
        Ok(response)
    }

    type WatchStream = HealthWatch;

    async fn watch(
        &self,
        request: Request<HealthCheckRequest>,
    ) -> Result<Response<HealthWatch>, Status> {
        let inner = self.inner.watch(request).await?.into_inner();
        Ok(Response::new(HealthWatch {
            inner,
            signal: Some(self.shutdown.reached(Phase::Unready)),
            going_away: Some(self.shutdown.going_away()),
            shutdown: self.shutdown.clone(),
            last: None,
        }))
    }
}

/// A `Watch` stream of [`GracefulHealth`]: the reporter's statuses, each
/// sent once, `NOT_SERVING` from the first signal on, and the end (status
/// `OK`) at the going-away moment.
///
/// # Cancel safety
///
/// A stream: dropping it between items loses nothing that was yielded.
#[must_use = "streams do nothing unless polled"]
pub struct HealthWatch {
    inner: WatchStream,
    shutdown: Shutdown,
    // `None` once the signal was seen.
    signal: Option<Reached>,
    // `None` once the stream ended.
    going_away: Option<GoingAway>,
    last: Option<i32>,
}

impl HealthWatch {
    /// `status`, unless it repeats the last one sent.
    fn send(&mut self, status: i32) -> Option<HealthCheckResponse> {
        (self.last != Some(status)).then(|| {
            self.last = Some(status);
            HealthCheckResponse { status }
        })
    }
}

impl Stream for HealthWatch {
    type Item = Result<HealthCheckResponse, Status>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.going_away.is_none() {
            return Poll::Ready(None);
        }
        // The signal first, so that `NOT_SERVING` is sent even when the
        // going-away moment follows it at once (no unready delay).
        if let Some(signal) = this.signal.as_mut()
            && Pin::new(signal).poll(cx).is_ready()
        {
            this.signal = None;
            if let Some(response) = this.send(ServingStatus::NotServing as i32) {
                return Poll::Ready(Some(Ok(response)));
            }
        }
        if let Some(going_away) = this.going_away.as_mut()
            && Pin::new(going_away).poll(cx).is_ready()
        {
            this.going_away = None;
            return Poll::Ready(None);
        }
        loop {
            match ready!(Pin::new(&mut this.inner).poll_next(cx)) {
                None => {
                    this.going_away = None;
                    return Poll::Ready(None);
                }
                Some(Err(status)) => return Poll::Ready(Some(Err(status))),
                Some(Ok(response)) => {
                    let status = if this.shutdown.is_ready() {
                        response.status
                    } else {
                        ServingStatus::NotServing as i32
                    };
                    if let Some(response) = this.send(status) {
                        return Poll::Ready(Some(Ok(response)));
                    }
                }
            }
        }
    }
}

impl fmt::Debug for HealthWatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HealthWatch")
            .field("ended", &self.going_away.is_none())
            .field("last", &self.last)
            .finish_non_exhaustive()
    }
}

/// `stream`, the messages of a server stream (server-streaming or
/// bidirectional RPC), ended at the going-away moment (`closed`) with status
/// `UNAVAILABLE` and the message [`SHUTTING_DOWN`]: the client retries the
/// call elsewhere. Return it as the handler's response stream.
///
/// A stream that ends by itself first ends as it would have.
///
/// # Examples
///
/// ```
/// use futures_lite::{StreamExt, stream};
/// use graceful_tokio::Shutdown;
/// use tonic::Status;
///
/// # fn main() -> Result<(), Box<dyn std::error::Error>> {
/// let shutdown = Shutdown::builder().build()?.handle();
/// let ticks = stream::iter(0u64..).map(Ok::<_, Status>);
/// let response = graceful_tokio::tonic::until_going_away(&shutdown, ticks);
/// # drop(response);
/// # Ok(())
/// # }
/// ```
pub fn until_going_away<S, T>(shutdown: &Shutdown, stream: S) -> UntilGoingAway<S>
where
    S: Stream<Item = Result<T, Status>>,
{
    shutdown
        .until_going_away(stream)
        .last(Err(Status::unavailable(SHUTTING_DOWN)))
}
