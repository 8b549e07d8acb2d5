//! Server-sent events that go away at the shutdown's going-away moment
//! (feature `axum`).
//!
//! An SSE stream never ends by itself, so under a drain it would hold the
//! process until the drain deadline and then be cut mid-stream. [`sse`]
//! wraps axum's [`Sse`] so that the stream ends at the going-away moment
//! (at `closed`, after the unready delay: see
//! [`GoingAway`](graceful_core::GoingAway)) with a last event that only
//! sets the client's reconnection delay (`retry: 1000`), then the end of the
//! body: the browser's `EventSource` reconnects a second later, to a
//! process the load balancer still routes to. The request stays in flight
//! until that end is sent, as every response does.

use axum::response::sse::{Event, Sse};
use futures_core::Stream;
use graceful_core::{Shutdown, UntilGoingAway};
use std::time::Duration;

/// The reconnection delay of the last event: how long the client waits
/// before it reconnects elsewhere.
pub const RECONNECT_AFTER: Duration = Duration::from_secs(1);

/// An SSE response of `stream` that ends at the going-away moment, after a
/// last event `retry: 1000`. Add axum's `keep_alive` to it as usual.
///
/// # Examples
///
/// ```
/// use axum::response::sse::Event;
/// use futures_lite::{StreamExt, stream};
/// use graceful_tokio::Shutdown;
/// use std::convert::Infallible;
///
/// fn events(shutdown: &Shutdown) -> axum::Router {
///     let shutdown = shutdown.clone();
///     axum::Router::new().route(
///         "/events",
///         axum::routing::get(move || async move {
///             let ticks = stream::iter(0..)
///                 .map(|i| Ok::<_, Infallible>(Event::default().data(format!("tick {i}"))));
///             graceful_tokio::sse::sse(&shutdown, ticks)
///         }),
///     )
/// }
/// # let _ = events;
/// ```
pub fn sse<S, E>(shutdown: &Shutdown, stream: S) -> Sse<UntilGoingAway<S>>
where
    S: Stream<Item = Result<Event, E>> + Send + 'static,
    E: Into<axum::BoxError> + Send + 'static,
{
    let last = Event::default().retry(RECONNECT_AFTER);
    Sse::new(shutdown.until_going_away(stream).last(Ok(last)))
}
