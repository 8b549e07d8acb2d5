//! The `/events` stream: `data: tick I\n\n` (I from 0) at once and then
//! every N ms, forever, on the runtime's [`Timer`]; and the last event it
//! goes away with.
//!
//! [`events`] wraps the ticks with
//! [`Shutdown::until_going_away`]: at `closed` the stream yields
//! [`LAST_EVENT`] and ends, so the target's response ends cleanly (the
//! chunked terminator), the request is no longer in progress, and the
//! client reconnects elsewhere a second later. Until then the request's
//! guard keeps it in progress, also during the unready delay, when it
//! flows as before.

use futures_core::Stream;
use graceful_core::{Shutdown, Sleep, Timer, UntilGoingAway};
use std::fmt;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

/// The event a `/events` stream ends with at `closed`: it only sets the
/// client's reconnection delay, to one second.
pub use graceful_core::SSE_LAST_EVENT as LAST_EVENT;

/// The ticks of `/events`, forever: the first at once, then one every
/// `every`, on a runtime's [`Timer`].
pub struct Ticks {
    next: u64,
    every: Duration,
    timer: Arc<dyn Timer>,
    wait: Option<Sleep>,
}

impl fmt::Debug for Ticks {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Ticks")
            .field("next", &self.next)
            .field("every", &self.every)
            .finish_non_exhaustive()
    }
}

impl Ticks {
    /// Ticks every `every` on `timer`.
    pub fn new(timer: Arc<dyn Timer>, every: Duration) -> Ticks {
        Ticks {
            next: 0,
            every,
            timer,
            wait: None,
        }
    }
}

impl Stream for Ticks {
    type Item = String;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<String>> {
        let this = self.get_mut();
        if let Some(wait) = this.wait.as_mut() {
            ready!(wait.as_mut().poll(cx));
        }
        let event = format!("data: tick {}\n\n", this.next);
        this.next += 1;
        this.wait = Some(this.timer.sleep(this.every));
        Poll::Ready(Some(event))
    }
}

/// The whole `/events` body: [`Ticks`] every `every` on `timer`, until the
/// going-away moment of `shutdown`, then [`LAST_EVENT`], then the end.
pub fn events(
    shutdown: &Shutdown,
    timer: Arc<dyn Timer>,
    every: Duration,
) -> UntilGoingAway<Ticks> {
    shutdown
        .until_going_away(Ticks::new(timer, every))
        .last(LAST_EVENT.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_lite::StreamExt;
    use futures_lite::future::{block_on, poll_once};
    use graceful_core::{ManualClock, Signal};

    #[test]
    fn ticks_come_at_once_then_every_interval_and_end_at_closed() {
        let driver = Shutdown::builder().quiet().build().unwrap();
        let shutdown = driver.handle();
        let clock = ManualClock::new();
        let mut events = events(
            &shutdown,
            Arc::new(clock.clone()),
            Duration::from_millis(50),
        );
        block_on(async {
            assert_eq!(events.next().await.as_deref(), Some("data: tick 0\n\n"));
            assert_eq!(poll_once(events.next()).await, None, "not before 50 ms");
            clock.advance(Duration::from_millis(50));
            assert_eq!(events.next().await.as_deref(), Some("data: tick 1\n\n"));
            // No listener and the drain begun: that is `closed`.
            let _ = shutdown.request(Signal::TERM);
            let mut run = driver.run(clock.clone());
            let _ = poll_once(&mut run).await;
            assert_eq!(events.next().await.as_deref(), Some(LAST_EVENT));
            assert_eq!(events.next().await, None);
        });
    }
}
