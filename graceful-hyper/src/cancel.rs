//! HTTP/2 streams at the drain deadline: reset with `RST_STREAM(CANCEL)`.
//!
//! # Design
//!
//! When the shutdown gives up on the work in flight (the drain deadline
//! passed, or the shutdown was forced), an HTTP/1.1 connection that is busy
//! can only be closed. An HTTP/2 stream can be ended alone, and the client
//! told why: `RST_STREAM` with `CANCEL` ("no longer needed"). hyper resets a
//! stream whose service future or response body fails, with the reason it
//! finds in the error's chain of sources (`INTERNAL_ERROR` when there is
//! none), so a stream is reset here by failing it with
//! `h2::Error::from(Reason::CANCEL)`, whichever part of it is running: the
//! handler ([`Cancel`] in the stream's future) or its body ([`StreamBody`]).
//! The stream's guard goes with the failed future or body, and is released
//! at the flush that carries the `RST_STREAM` frame.
//!
//! Its connection is closed once its streams are reset (hyper has already
//! sent GOAWAY, so with no stream left it closes the connection itself), or
//! [`RESET_BOUND`] after the deadline at the latest, whatever hyper is still
//! waiting for: a stream whose client stopped reading waits for flow-control
//! window that never comes, and its body is not polled again.
//!
//! HTTP/1.1 requests carry no [`Cancel`]: the connection's deadline rule
//! closes a busy HTTP/1.1 connection instead.
//!
//! The resets are sent by the connections' tasks, woken at the deadline
//! like the driver: a process that exits as soon as the driver's report is
//! out can exit before they run. [`resets_sent`] is what such a process
//! awaits first: it resolves once no HTTP/2 stream of the process is left
//! (every [`Cancel`] of a stream counts one, from the stream's start until
//! its future or body is dropped), and a few milliseconds more for the
//! connections to flush their `RST_STREAM` frames, or after
//! [`RESET_BOUND`].

use crate::body::GracefulBody;
use graceful_core::Abandoned;
use graceful_core::Shutdown;
use graceful_core::{Sleep, Timer};
use http_body::{Body, Frame, SizeHint};
use pin_project_lite::pin_project;
use std::error::Error as StdError;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::task::{Context, Poll};
use std::time::Duration;

/// HTTP/2 streams of this process in progress (their [`Cancel`] alive).
static STREAMS: AtomicUsize = AtomicUsize::new(0);

/// How often [`resets_sent`] looks at [`STREAMS`], and how long it then
/// leaves the connections to flush their last frames.
const SETTLE: Duration = Duration::from_millis(5);

type BoxError = Box<dyn StdError + Send + Sync>;

/// How long after the drain deadline an HTTP/2 connection whose streams
/// were reset is closed even if hyper has not closed it: 1 s.
pub(crate) const RESET_BOUND: Duration = Duration::from_secs(1);

/// The error a stream is failed with at the deadline: hyper resets the
/// stream with `CANCEL`, the reason it finds in it.
fn cancelled() -> BoxError {
    Box::new(h2::Error::from(h2::Reason::CANCEL))
}

/// One HTTP/2 stream's deadline: fires when the shutdown gives up on the
/// work in flight.
pub(crate) struct Cancel {
    abandoned: Option<Abandoned>,
    /// Counted in [`STREAMS`] (an HTTP/2 stream's).
    counted: bool,
}

impl Drop for Cancel {
    fn drop(&mut self) {
        if self.counted {
            STREAMS.fetch_sub(1, Ordering::AcqRel);
        }
    }
}

impl Cancel {
    /// The deadline of an HTTP/2 stream of `shutdown`.
    pub(crate) fn stream(shutdown: &Shutdown) -> Cancel {
        STREAMS.fetch_add(1, Ordering::AcqRel);
        Cancel {
            abandoned: Some(shutdown.abandoned()),
            counted: true,
        }
    }

    /// No deadline: what is left once the stream's future has handed its
    /// `Cancel` to the body.
    pub(crate) fn never() -> Cancel {
        Cancel {
            abandoned: None,
            counted: false,
        }
    }

    /// The error to fail the stream with, once the deadline has come.
    pub(crate) fn poll_cancelled(&mut self, cx: &mut Context<'_>) -> Poll<BoxError> {
        if let Some(abandoned) = &mut self.abandoned
            && Pin::new(abandoned).poll(cx).is_ready()
        {
            self.abandoned = None;
            return Poll::Ready(cancelled());
        }
        Poll::Pending
    }
}

pin_project! {
    /// A response body as [`serve_connection`](crate::serve_connection)
    /// sends it: a [`GracefulBody`], with errors boxed and, on an HTTP/2
    /// stream, the deadline's reset.
    pub(crate) struct StreamBody<B> {
        #[pin]
        body: GracefulBody<B>,
        cancel: Cancel,
    }
}

impl<B> StreamBody<B> {
    pub(crate) fn new(body: GracefulBody<B>, cancel: Cancel) -> StreamBody<B> {
        StreamBody { body, cancel }
    }
}

impl<B> Body for StreamBody<B>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    type Data = B::Data;
    type Error = BoxError;

    fn poll_frame(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Self::Data>, Self::Error>>> {
        let this = self.project();
        if let Poll::Ready(error) = this.cancel.poll_cancelled(cx) {
            return Poll::Ready(Some(Err(error)));
        }
        this.body
            .poll_frame(cx)
            .map(|frame| frame.map(|frame| frame.map_err(Into::into)))
    }

    fn is_end_stream(&self) -> bool {
        self.body.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.body.size_hint()
    }
}

/// Resolves once the HTTP/2 streams reset at the drain deadline have been
/// sent their `RST_STREAM(CANCEL)`: once no HTTP/2 stream of the process is
/// left and the connections have had a few milliseconds to flush, or after
/// 1 s at the latest, paced by `timer`.
///
/// A process that exits as soon as the shutdown's report is out awaits it
/// first, when the report counts abandoned work: the resets are sent by the
/// connections' tasks, which may not have run yet. When no HTTP/2 stream is
/// left it resolves within about 10 ms.
///
/// # Examples
///
/// ```
/// use futures_lite::future::{block_on, poll_once};
/// use graceful_core::ManualClock;
/// use std::time::Duration;
///
/// // No HTTP/2 stream in this process: resolves after the settling time.
/// let clock = ManualClock::new();
/// let mut sent = std::pin::pin!(graceful_hyper::resets_sent(clock.clone()));
/// assert!(block_on(poll_once(&mut sent)).is_none());
/// clock.advance(Duration::from_millis(5));
/// assert!(block_on(poll_once(&mut sent)).is_none());
/// clock.advance(Duration::from_millis(5));
/// assert!(block_on(poll_once(&mut sent)).is_some());
/// ```
pub fn resets_sent<T: Timer>(timer: T) -> ResetsSent {
    ResetsSent {
        bound: timer.sleep(RESET_BOUND),
        tick: timer.sleep(SETTLE),
        settling: false,
        timer: Box::new(timer),
    }
}

/// The future of [`resets_sent`].
///
/// # Cancel safety
///
/// Dropping it only stops the waiting: the resets go on being sent.
#[must_use = "futures do nothing unless polled"]
pub struct ResetsSent {
    bound: Sleep,
    tick: Sleep,
    /// No stream was left at the last tick: the next one ends the wait.
    settling: bool,
    timer: Box<dyn Timer>,
}

impl Future for ResetsSent {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        if this.bound.as_mut().poll(cx).is_ready() {
            return Poll::Ready(());
        }
        while this.tick.as_mut().poll(cx).is_ready() {
            if this.settling {
                return Poll::Ready(());
            }
            this.settling = STREAMS.load(Ordering::Acquire) == 0;
            this.tick = this.timer.sleep(SETTLE);
        }
        Poll::Pending
    }
}

impl fmt::Debug for ResetsSent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResetsSent")
            .field("settling", &self.settling)
            .finish_non_exhaustive()
    }
}
