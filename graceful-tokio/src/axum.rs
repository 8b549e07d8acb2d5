//! axum helpers (feature `axum`).
//!
//! Serve an axum `Router` with [`serve_tower`](crate::serve_tower); add
//! [`readiness`] as its readiness route.

use ::axum::http::StatusCode;
use ::axum::routing::{MethodRouter, get};
use graceful_core::Shutdown;

/// A `GET` route for a readiness probe: `200 ready` while no shutdown was
/// requested, `503 not ready` from the first signal on.
///
/// It answers from [`Shutdown::is_ready`], which turns false at the first
/// request, before the unready delay: the load balancer sees the instance
/// go unready while it still serves everything else, which is the point of
/// the delay. Liveness is a different question (is the process stuck?) and
/// should keep answering `200` during the shutdown.
///
/// # Examples
///
/// ```
/// use axum::Router;
/// use graceful_core::Shutdown;
///
/// let shutdown = Shutdown::builder().build()?.handle();
/// let app: Router = Router::new()
///     .route("/health/ready", graceful_tokio::axum::readiness(&shutdown))
///     .route("/health/live", axum::routing::get(|| async { "live" }));
/// # drop(app);
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
pub fn readiness<S>(shutdown: &Shutdown) -> MethodRouter<S>
where
    S: Clone + Send + Sync + 'static,
{
    let shutdown = shutdown.clone();
    get(move || {
        let ready = shutdown.is_ready();
        async move {
            if ready {
                (StatusCode::OK, "ready")
            } else {
                (StatusCode::SERVICE_UNAVAILABLE, "not ready")
            }
        }
    })
}
