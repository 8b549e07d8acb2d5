//! Virtual time that knows when its next sleep is due.

use crate::{Sleep, Timer};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

/// The simulation's clock: a [`Timer`] on virtual time that moves only when
/// the simulation moves it, and that can say when the next sleep is due, so
/// the simulation jumps straight to it instead of ticking.
///
/// It is what [`ManualClock`](crate::ManualClock) is, plus
/// [`next_deadline`](SimClock::next_deadline). Clones share the same time. A
/// sleep is due its duration after it was first polled.
///
/// Design: sleeps live in a slab of slots so that a dropped sleep (the loser
/// of a race) gives its slot back at once and never keeps the clock jumping
/// to a deadline nobody waits for.
#[derive(Clone)]
pub struct SimClock {
    inner: Arc<Inner>,
}

struct Inner {
    start: Instant,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    now: Duration,
    sleepers: Vec<Option<Sleeper>>,
    free: Vec<usize>,
}

struct Sleeper {
    due: Duration,
    waker: Option<Waker>,
}

impl SimClock {
    /// A clock at virtual time zero, standing still.
    pub fn new() -> SimClock {
        SimClock {
            inner: Arc::new(Inner {
                start: Instant::now(),
                state: Mutex::new(State::default()),
            }),
        }
    }

    /// How far the clock has moved since it was made.
    pub fn elapsed(&self) -> Duration {
        self.state().now
    }

    /// Moves the clock forward by `by` and wakes the sleeps that are due.
    pub fn advance(&self, by: Duration) {
        let to = self.elapsed() + by;
        self.advance_to(to);
    }

    /// Moves the clock to `to` (if it is ahead) and wakes the sleeps that
    /// are due.
    pub fn advance_to(&self, to: Duration) {
        let due: Vec<Waker> = {
            let mut state = self.state();
            if to <= state.now {
                return;
            }
            state.now = to;
            state
                .sleepers
                .iter_mut()
                .flatten()
                .filter(|sleeper| sleeper.due <= to)
                .filter_map(|sleeper| sleeper.waker.take())
                .collect()
        };
        // Woken with no lock held: a waker may run arbitrary code.
        for waker in due {
            waker.wake();
        }
    }

    /// The earliest time, ahead of now, at which a live sleep is due.
    pub fn next_deadline(&self) -> Option<Duration> {
        let state = self.state();
        state
            .sleepers
            .iter()
            .flatten()
            .map(|sleeper| sleeper.due)
            .filter(|&due| due > state.now)
            .min()
    }

    fn state(&self) -> MutexGuard<'_, State> {
        // Poisoning is ignored: the state is a few plain fields, always
        // left consistent, and a handler's panic must not stop the clock.
        self.inner
            .state
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
    }
}

impl Default for SimClock {
    fn default() -> SimClock {
        SimClock::new()
    }
}

impl fmt::Debug for SimClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SimClock")
            .field("elapsed", &self.elapsed())
            .field("next_deadline", &self.next_deadline())
            .finish()
    }
}

impl Timer for SimClock {
    fn sleep(&self, duration: Duration) -> Sleep {
        Box::pin(SimSleep {
            clock: self.clone(),
            duration,
            slot: None,
        })
    }

    fn now(&self) -> Instant {
        self.inner.start + self.elapsed()
    }
}

/// A sleep on a [`SimClock`].
///
/// # Cancel safety
///
/// Cancel safe: dropping it gives back its slot; nothing else is consumed.
#[must_use = "futures do nothing unless polled"]
struct SimSleep {
    clock: SimClock,
    duration: Duration,
    /// Set at the first poll, unless the sleep was due at once.
    slot: Option<(usize, Duration)>,
}

impl Future for SimSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.get_mut();
        let mut state = this.clock.state();
        let now = state.now;
        match this.slot {
            None => {
                let due = now + this.duration;
                if due <= now {
                    return Poll::Ready(());
                }
                let sleeper = Some(Sleeper {
                    due,
                    waker: Some(cx.waker().clone()),
                });
                let index = match state.free.pop() {
                    Some(index) => {
                        state.sleepers[index] = sleeper;
                        index
                    }
                    None => {
                        state.sleepers.push(sleeper);
                        state.sleepers.len() - 1
                    }
                };
                this.slot = Some((index, due));
                Poll::Pending
            }
            Some((index, due)) => {
                if now >= due {
                    state.sleepers[index] = None;
                    state.free.push(index);
                    this.slot = None;
                    // The slot is given back; a later poll must not sleep
                    // again.
                    this.duration = Duration::ZERO;
                    return Poll::Ready(());
                }
                if let Some(sleeper) = &mut state.sleepers[index] {
                    sleeper.waker = Some(cx.waker().clone());
                }
                Poll::Pending
            }
        }
    }
}

impl Drop for SimSleep {
    fn drop(&mut self) {
        if let Some((index, _)) = self.slot.take() {
            let mut state = self.clock.state();
            state.sleepers[index] = None;
            state.free.push(index);
        }
    }
}
