//! Time, as the adapters provide it, and a manual clock for tests.

use crate::sync::{Arc, Mutex, lock};
use crate::waiters::{Slot, WaitList};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

/// A sleep future made by a [`Timer`].
pub type Sleep = Pin<Box<dyn Future<Output = ()> + Send + 'static>>;

/// The runtime's clock: the one seam through which the core sees time.
///
/// The adapters implement it on their runtime's timers (`tokio::time`,
/// `async_io::Timer`, actix's). The core only sleeps while shutting down, so
/// one boxed future per sleep costs nothing that matters.
///
/// [`ManualClock`] implements it on virtual time.
pub trait Timer: Send + Sync + 'static {
    /// A future that completes once `duration` has passed.
    fn sleep(&self, duration: Duration) -> Sleep;

    /// The current time.
    fn now(&self) -> Instant;
}

impl<T: Timer + ?Sized> Timer for Arc<T> {
    fn sleep(&self, duration: Duration) -> Sleep {
        (**self).sleep(duration)
    }

    fn now(&self) -> Instant {
        (**self).now()
    }
}

impl<T: Timer + ?Sized> Timer for Box<T> {
    fn sleep(&self, duration: Duration) -> Sleep {
        (**self).sleep(duration)
    }

    fn now(&self) -> Instant {
        (**self).now()
    }
}

/// A clock that moves only when told to, so tests can drive a shutdown
/// through its deadlines deterministically, without waiting.
///
/// Clones share the same time. A sleep completes once the clock has been
/// [advanced](ManualClock::advance) by at least its duration since the sleep
/// was first polled.
///
/// # Examples
///
/// ```
/// use graceful_core::{ManualClock, Timer};
/// use std::time::Duration;
///
/// let clock = ManualClock::new();
/// let start = clock.now();
/// let mut sleep = clock.sleep(Duration::from_secs(30));
/// assert!(futures_lite::future::block_on(futures_lite::future::poll_once(&mut sleep)).is_none());
/// clock.advance(Duration::from_secs(30));
/// futures_lite::future::block_on(sleep);
/// assert_eq!(clock.now() - start, Duration::from_secs(30));
/// ```
#[derive(Clone)]
pub struct ManualClock {
    inner: Arc<ClockInner>,
}

struct ClockInner {
    start: Instant,
    elapsed: Mutex<Duration>,
    sleepers: WaitList,
}

impl ManualClock {
    /// A clock that starts at the current instant and stands still.
    pub fn new() -> ManualClock {
        ManualClock {
            inner: Arc::new(ClockInner {
                start: Instant::now(),
                elapsed: Mutex::new(Duration::ZERO),
                sleepers: WaitList::default(),
            }),
        }
    }

    /// Moves the clock forward by `duration` and wakes the sleeps that are
    /// due.
    pub fn advance(&self, duration: Duration) {
        *lock(&self.inner.elapsed) += duration;
        self.inner.sleepers.notify_all();
    }

    /// How far the clock has been advanced since it was made.
    pub fn elapsed(&self) -> Duration {
        *lock(&self.inner.elapsed)
    }
}

impl Default for ManualClock {
    fn default() -> ManualClock {
        ManualClock::new()
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManualClock")
            .field("elapsed", &self.elapsed())
            .finish()
    }
}

impl Timer for ManualClock {
    fn sleep(&self, duration: Duration) -> Sleep {
        Box::pin(ManualSleep {
            clock: self.clone(),
            duration,
            due: None,
            slot: Slot::default(),
        })
    }

    fn now(&self) -> Instant {
        self.inner.start + self.elapsed()
    }
}

struct ManualSleep {
    clock: ManualClock,
    duration: Duration,
    /// Set at the first poll: the elapsed time at which the sleep is due.
    due: Option<Duration>,
    slot: Slot,
}

impl Future for ManualSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let clock = &this.clock.inner;
        let due = *this
            .due
            .get_or_insert_with(|| *lock(&clock.elapsed) + this.duration);
        clock.sleepers.poll_until(&mut this.slot, cx, || {
            (*lock(&clock.elapsed) >= due).then_some(())
        })
    }
}

impl Drop for ManualSleep {
    fn drop(&mut self) {
        self.clock.inner.sleepers.release(&mut self.slot);
    }
}
