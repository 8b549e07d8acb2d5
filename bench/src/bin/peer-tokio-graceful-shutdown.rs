//! A peer: tokio-graceful-shutdown's `Toplevel` with a hyper server
//! subsystem, written the way the crate's hyper example teaches: the
//! listener subsystem stops accepting on shutdown, each connection is
//! spawned on a `TaskTracker` and told to shut down gracefully, and the
//! server subsystem waits for the tracker. `catch_signals` turns SIGTERM
//! and Ctrl+C into a shutdown, bounded by `handle_shutdown_requests`.
//!
//! `GET /sleep?ms=N` answers `slept N` after N ms, `POST /orders?ms=N`
//! answers `201 stored ID` (ID: the body) after N ms, with no store behind
//! it (the rollout's non-idempotent request), `GET /health/live` answers
//! `live`; `listening HOST:PORT` is printed once bound.

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use miette::{Context, IntoDiagnostic, Result};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::pin::pin;
use tokio::net::TcpListener;
use tokio::time::Duration;
use tokio_graceful_shutdown::errors::CancelledByShutdown;
use tokio_graceful_shutdown::{FutureExt, SubsystemBuilder, SubsystemHandle, Toplevel};
use tokio_util::task::TaskTracker;

async fn route(
    request: Request<hyper::body::Incoming>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let text = |status: StatusCode, body: String| {
        let mut response = Response::new(Full::new(Bytes::from(body)));
        *response.status_mut() = status;
        response
    };
    let ms = graceful_bench::query_number(request.uri().query(), "ms");
    Ok(match request.uri().path() {
        "/orders" if request.method() == hyper::Method::POST => match ms {
            Some(ms) => match request.into_body().collect().await {
                Ok(body) => {
                    tokio::time::sleep(Duration::from_millis(ms)).await;
                    let id = String::from_utf8_lossy(&body.to_bytes()).into_owned();
                    text(StatusCode::CREATED, format!("stored {id}"))
                }
                Err(_) => text(StatusCode::BAD_REQUEST, "unreadable body".to_owned()),
            },
            None => text(StatusCode::BAD_REQUEST, "ms must be a number".to_owned()),
        },
        "/sleep" => match ms {
            Some(ms) => {
                tokio::time::sleep(Duration::from_millis(ms)).await;
                text(StatusCode::OK, format!("slept {ms}"))
            }
            None => text(StatusCode::BAD_REQUEST, "ms must be a number".to_owned()),
        },
        "/health/live" => text(StatusCode::OK, "live".to_owned()),
        _ => text(StatusCode::NOT_FOUND, "not found".to_owned()),
    })
}

async fn connection_handler(
    subsys: &mut SubsystemHandle,
    listener: TcpListener,
    connection_tracker: TaskTracker,
) -> Result<()> {
    loop {
        let connection = match listener.accept().cancel_on_shutdown(subsys).await {
            Ok(connection) => connection,
            Err(CancelledByShutdown) => break,
        };
        let (tcp, _addr) = connection
            .into_diagnostic()
            .context("Error while waiting for connection")?;
        let io = TokioIo::new(tcp);

        // Spawn handler on connection tracker to give the parent subsystem
        // the chance to wait for the shutdown to finish
        connection_tracker.spawn({
            let cancellation_token = subsys.create_cancellation_token();
            async move {
                let mut connection =
                    pin!(http1::Builder::new().serve_connection(io, service_fn(route)));

                let result = tokio::select! {
                    e = connection.as_mut() => e,
                    () = cancellation_token.cancelled() => {
                        // If the system shuts down, shut down the connection
                        // and continue serving, as specified in the hyper docs.
                        connection.as_mut().graceful_shutdown();
                        connection.await
                    },
                };

                if let Err(err) = result {
                    eprintln!("peer-tokio-graceful-shutdown: connection: {err}");
                }
            }
        });
    }

    Ok(())
}

async fn hyper_subsystem(subsys: &mut SubsystemHandle, addr: SocketAddr) -> Result<()> {
    // Bind to the port and listen for incoming TCP connections
    let listener = TcpListener::bind(addr)
        .await
        .into_diagnostic()
        .context("Unable to start tcp server")?;
    graceful_bench::announce(listener.local_addr().into_diagnostic()?);

    // Use a tasktracker instead of spawning a subsystem for every connection,
    // as this would result in a lot of overhead.
    let connection_tracker = TaskTracker::new();

    let listener = subsys.start(SubsystemBuilder::new("Hyper Listener", {
        let connection_tracker = connection_tracker.clone();
        async move |subsys: &mut SubsystemHandle| {
            connection_handler(subsys, listener, connection_tracker).await
        }
    }));

    // Make sure no more tasks can be spawned before we close the tracker
    listener.join().await?;

    // Wait for connections to close
    connection_tracker.close();
    connection_tracker.wait().await;

    Ok(())
}

#[tokio::main]
async fn main() -> Result<()> {
    let addr = graceful_bench::ServerArgs::from_env().addr;

    // Setup and execute subsystem tree
    Toplevel::new(async move |s: &mut SubsystemHandle| {
        s.start(SubsystemBuilder::new(
            "Hyper",
            async move |subsys: &mut SubsystemHandle| hyper_subsystem(subsys, addr).await,
        ));
    })
    .catch_signals()
    .handle_shutdown_requests(Duration::from_secs(30))
    .await
    .map_err(Into::into)
}
