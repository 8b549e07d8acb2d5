//! Server-sent events that go away at the shutdown's going-away moment
//! (feature `sse`), as an actix-web streaming response.
//!
//! An SSE stream never ends by itself, so under a drain it would hold the
//! process until the drain deadline and then be cut mid-stream. [`sse`]
//! makes the response of a stream of events (each already written as
//! `data: ...\n\n`) that ends at the going-away moment (at `closed`, after
//! the unready delay: see [`GoingAway`](graceful_core::GoingAway)) with the
//! last event [`SSE_LAST_EVENT`] (`retry: 1000`), then the end of the body
//! (the chunked terminator): a browser's `EventSource` reconnects a second
//! later, to a process the load balancer still routes to. The request
//! stays in flight until that end is flushed, as every response does.

use actix_web::HttpResponse;
use actix_web::http::header::CACHE_CONTROL;
use actix_web::web::Bytes;
use futures_core::Stream;
use graceful_core::{SSE_LAST_EVENT, Shutdown};

/// A `200` `text/event-stream` response of `events` that ends at the
/// going-away moment of `shutdown`, after [`SSE_LAST_EVENT`].
///
/// # Examples
///
/// ```
/// use actix_web::{HttpResponse, web};
/// use futures_lite::{StreamExt, stream};
/// use std::convert::Infallible;
///
/// async fn events(shutdown: web::Data<graceful_actix::Shutdown>) -> HttpResponse {
///     let ticks = stream::iter(0..)
///         .map(|i| Ok::<_, Infallible>(web::Bytes::from(format!("data: tick {i}\n\n"))));
///     graceful_actix::sse::sse(&shutdown, ticks)
/// }
/// # let _ = events;
/// ```
pub fn sse<S, E>(shutdown: &Shutdown, events: S) -> HttpResponse
where
    S: Stream<Item = Result<Bytes, E>> + 'static,
    E: Into<Box<dyn std::error::Error>> + 'static,
{
    let last = Bytes::from_static(SSE_LAST_EVENT.as_bytes());
    let events = shutdown.until_going_away(events).last(Ok(last));
    HttpResponse::Ok()
        .content_type("text/event-stream")
        .insert_header((CACHE_CONTROL, "no-cache"))
        .streaming(events)
}
