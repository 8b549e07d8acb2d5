//! A peer: axum 0.8 with its own graceful shutdown,
//! `serve(..).with_graceful_shutdown(signal)`, written the way axum's
//! graceful-shutdown example teaches (Ctrl+C or SIGTERM ends the serve
//! future once the connections are done).
//!
//! `GET /events?ms=N` is a server-sent events stream of `tick I` every N
//! ms with axum's `Sse` (figure 8), `GET /sleep?ms=N` answers `slept N`
//! after N ms, `POST /orders?ms=N`
//! answers `201 stored ID` (ID: the body) after N ms, with no store behind
//! it (the rollout's non-idempotent request), `GET /health/live` answers
//! `live`; `listening HOST:PORT` is printed once bound.

use axum::Router;
use axum::extract::Query;
use axum::http::StatusCode;
use axum::response::sse::{Event, Sse};
use axum::routing::{get, post};
use serde::Deserialize;
use std::convert::Infallible;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio::signal;

#[derive(Deserialize)]
struct Sleep {
    ms: u64,
}

async fn sleep(Query(Sleep { ms }): Query<Sleep>) -> String {
    tokio::time::sleep(Duration::from_millis(ms)).await;
    format!("slept {ms}")
}

async fn order(Query(Sleep { ms }): Query<Sleep>, id: String) -> (StatusCode, String) {
    tokio::time::sleep(Duration::from_millis(ms)).await;
    (StatusCode::CREATED, format!("stored {id}"))
}

/// A stream that never ends by itself, as axum's SSE example has it.
async fn events(
    Query(Sleep { ms }): Query<Sleep>,
) -> Sse<impl futures_core::Stream<Item = Result<Event, Infallible>>> {
    let ticks = futures_lite::stream::unfold(0u64, move |i| async move {
        if i > 0 {
            tokio::time::sleep(Duration::from_millis(ms)).await;
        }
        Some((Ok(Event::default().data(format!("tick {i}"))), i + 1))
    });
    Sse::new(ticks)
}

#[tokio::main]
async fn main() -> std::io::Result<()> {
    let args = graceful_bench::ServerArgs::from_env();
    let app = Router::new()
        .route("/events", get(events))
        .route("/sleep", get(sleep))
        .route("/orders", post(order))
        .route("/health/live", get(|| async { "live" }));
    let listener = TcpListener::bind(args.addr).await?;
    graceful_bench::announce(listener.local_addr()?);
    axum::serve(listener, app)
        .with_graceful_shutdown(shutdown_signal())
        .await
}

async fn shutdown_signal() {
    let ctrl_c = async {
        signal::ctrl_c()
            .await
            .expect("failed to install Ctrl+C handler");
    };
    let terminate = async {
        signal::unix::signal(signal::unix::SignalKind::terminate())
            .expect("failed to install signal handler")
            .recv()
            .await;
    };
    tokio::select! {
        () = ctrl_c => {},
        () = terminate => {},
    }
}
