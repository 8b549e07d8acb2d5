//! The going-away moment, for handlers that never end by themselves:
//! server-sent events, WebSockets, long streamed responses.
//!
//! Such a handler is in flight for as long as it is open, so a drain that
//! only waits would wait for it until the drain deadline and then cut it
//! mid-stream (an `abandoned` exit). Instead the handler is told when to
//! wrap up: [`Shutdown::going_away`](crate::Shutdown::going_away) resolves at
//! that moment, and [`Shutdown::until_going_away`](crate::Shutdown::until_going_away)
//! ends a [`Stream`] there, after an optional last item (an SSE `retry:`
//! field, a WebSocket Close frame).
//!
//! # When the moment comes
//!
//! At `closed`: the unready delay is over, the phase has reached
//! [`Phase::Draining`], and every listener is closed. Not at the signal:
//! during the unready delay the load balancer is still routing to this
//! process, so a stream ended then would reconnect to this same process and
//! be refused a moment later. Not later than `closed` either: from then on
//! nothing new comes in, so what is open is all that keeps the drain
//! waiting. The moment also comes when the shutdown gives up on its work
//! (the deadline passed with a listener still open, or a second request
//! forced it), so a handler waiting on it never outlives the shutdown.
//!
//! Design decision: the moment is read from the same state word and
//! listener count as the driver's own `closed` wait, not from the `closed`
//! event, so waiting needs no observer and no lock, and every waiter wakes
//! from the same notification that wakes the driver.
//!
//! The handler stays in flight until it has gone away: for an HTTP response
//! the request's guard covers the stream (the adapters hold it until the
//! body's last byte); a task that outlives its request (a WebSocket after
//! the upgrade) takes its own [`OwnedGuard`](crate::OwnedGuard). The drain
//! deadline still bounds both.

use crate::inner::Inner;
use crate::state::{Phase, Snapshot};
use crate::sync::Arc;
use crate::wait::Wait;
use futures_core::Stream;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// The last event of a server-sent events stream that goes away: it only
/// sets the client's reconnection delay, to one second, so that it
/// reconnects to a process the load balancer still routes to. The SSE
/// integrations of every adapter end their stream with it.
pub const SSE_LAST_EVENT: &str = "retry: 1000\n\n";

/// Whether `s` (with `inner`'s listener count) is past the going-away
/// moment: see the module's documentation.
fn gone(inner: &Inner, s: Snapshot) -> bool {
    if s.phase() >= Phase::CleaningUp || s.forced() || s.abandoned() {
        return true;
    }
    s.phase() >= Phase::Draining && inner.listeners_closed()
}

/// Resolves at the going-away moment. See
/// [`Shutdown::going_away`](crate::Shutdown::going_away).
///
/// The moment is `closed`: the unready delay is over and every listener is
/// closed. Not at the signal, because during the unready delay the load
/// balancer still routes to this process, and a client told to go away then
/// would reconnect here; not later, because from `closed` on what is open is
/// all that keeps the drain waiting. It also comes when the shutdown gives
/// up on its work (the drain deadline, a forced shutdown), so nothing that
/// waits for it outlives the shutdown.
///
/// # Cancel safety
///
/// Cancel safe: dropping it only gives back its place in the wait list;
/// nothing is consumed, and a new one can be made at any time.
#[must_use = "futures do nothing unless polled"]
pub struct GoingAway {
    wait: Wait,
}

impl GoingAway {
    pub(crate) fn new(inner: Arc<Inner>) -> GoingAway {
        GoingAway {
            wait: Wait::new(inner),
        }
    }
}

impl Future for GoingAway {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.get_mut()
            .wait
            .poll(cx, |inner, s| gone(inner, s).then_some(()))
    }
}

impl fmt::Debug for GoingAway {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("GoingAway").finish_non_exhaustive()
    }
}

/// A stream that ends at the going-away moment, after an optional last
/// item. See [`Shutdown::until_going_away`](crate::Shutdown::until_going_away).
///
/// It yields the inner stream's items until the moment comes, then the last
/// item set with [`last`](UntilGoingAway::last) (if any), then ends. When
/// the inner stream and the moment are both ready at one poll, the moment
/// wins: no item is yielded after it. An inner stream that ends first ends
/// this one, without the last item (nothing is going away).
///
/// # Cancel safety
///
/// A stream: dropping it between items drops the inner stream and loses
/// nothing that was yielded. The last item is yielded once.
#[must_use = "streams do nothing unless polled"]
pub struct UntilGoingAway<S: Stream> {
    stream: Option<Pin<Box<S>>>,
    going_away: GoingAway,
    last: Option<S::Item>,
}

impl<S: Stream> UntilGoingAway<S> {
    pub(crate) fn new(inner: Arc<Inner>, stream: S) -> UntilGoingAway<S> {
        UntilGoingAway {
            stream: Some(Box::pin(stream)),
            going_away: GoingAway::new(inner),
            last: None,
        }
    }

    /// Sets the item yielded at the going-away moment, just before the end:
    /// an SSE event with a `retry:` field, a WebSocket Close frame.
    pub fn last(mut self, item: S::Item) -> UntilGoingAway<S> {
        self.last = Some(item);
        self
    }
}

// `Unpin` whatever `S` is: the inner stream is boxed, and the other fields
// are `Unpin` (the item is only moved out, never pinned).
impl<S: Stream> Unpin for UntilGoingAway<S> {}

impl<S: Stream> Stream for UntilGoingAway<S> {
    type Item = S::Item;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<S::Item>> {
        let this = self.get_mut();
        let Some(stream) = this.stream.as_mut() else {
            return Poll::Ready(None);
        };
        if Pin::new(&mut this.going_away).poll(cx).is_ready() {
            this.stream = None;
            return Poll::Ready(this.last.take());
        }
        match stream.as_mut().poll_next(cx) {
            Poll::Ready(None) => {
                this.stream = None;
                this.last = None;
                Poll::Ready(None)
            }
            other => other,
        }
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        match &self.stream {
            None => (0, Some(0)),
            // The moment may come at any time: no lower bound.
            Some(stream) => {
                let upper = stream.size_hint().1;
                (0, upper.and_then(|n| n.checked_add(1)))
            }
        }
    }
}

impl<S: Stream> fmt::Debug for UntilGoingAway<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("UntilGoingAway")
            .field("ended", &self.stream.is_none())
            .field("last", &self.last.is_some())
            .finish_non_exhaustive()
    }
}
