//! Waiting on a shutdown: the registration every waiting future holds, and
//! the named futures built on it.

use crate::inner::Inner;
use crate::state::{Phase, Snapshot};
use crate::sync::Arc;
use crate::waiters::Slot;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// A registration in the wait list, given back on drop.
pub(crate) struct Wait {
    inner: Arc<Inner>,
    slot: Slot,
}

impl Wait {
    pub(crate) fn new(inner: Arc<Inner>) -> Wait {
        Wait {
            inner,
            slot: Slot::default(),
        }
    }

    /// Ready once `ready` gives a value; registers `cx`'s waker until then,
    /// with the check / lock / re-check protocol of [`crate::waiters`].
    #[inline]
    pub(crate) fn poll<T>(
        &mut self,
        cx: &mut Context<'_>,
        mut ready: impl FnMut(&Inner, Snapshot) -> Option<T>,
    ) -> Poll<T> {
        let inner = &*self.inner;
        inner
            .waiters
            .poll_until(&mut self.slot, cx, || ready(inner, inner.state.load()))
    }
}

impl Drop for Wait {
    fn drop(&mut self) {
        self.inner.waiters.release(&mut self.slot);
    }
}

/// Resolves once the phase has reached a given phase. See
/// [`Shutdown::reached`](crate::Shutdown::reached).
///
/// # Cancel safety
///
/// Cancel safe: dropping it only gives back its place in the wait list;
/// nothing is consumed, and a new one can be made at any time.
#[must_use = "futures do nothing unless polled"]
pub struct Reached {
    wait: Wait,
    phase: Phase,
}

impl Reached {
    pub(crate) fn new(inner: Arc<Inner>, phase: Phase) -> Reached {
        Reached {
            wait: Wait::new(inner),
            phase,
        }
    }
}

impl Future for Reached {
    type Output = Phase;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Phase> {
        let this = self.get_mut();
        let target = this.phase;
        this.wait
            .poll(cx, |_, s| (s.phase() >= target).then_some(s.phase()))
    }
}

/// Resolves when nothing is in flight after draining began. See
/// [`Shutdown::drained`](crate::Shutdown::drained).
///
/// # Cancel safety
///
/// Cancel safe: dropping it only gives back its place in the wait list;
/// nothing is consumed, and a new one can be made at any time.
#[must_use = "futures do nothing unless polled"]
pub struct Drained {
    wait: Wait,
}

impl Drained {
    pub(crate) fn new(inner: Arc<Inner>) -> Drained {
        Drained {
            wait: Wait::new(inner),
        }
    }
}

impl Future for Drained {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.get_mut()
            .wait
            .poll(cx, |_, s| s.drained().then_some(()))
    }
}

/// Resolves when the shutdown gives up on the work in flight. See
/// [`Shutdown::abandoned`](crate::Shutdown::abandoned).
///
/// # Cancel safety
///
/// Cancel safe: dropping it only gives back its place in the wait list;
/// nothing is consumed, and a new one can be made at any time.
#[must_use = "futures do nothing unless polled"]
pub struct Abandoned {
    wait: Wait,
}

impl Abandoned {
    pub(crate) fn new(inner: Arc<Inner>) -> Abandoned {
        Abandoned {
            wait: Wait::new(inner),
        }
    }
}

impl Future for Abandoned {
    type Output = ();

    // Inlined: a connection polls it on each of its own polls, and its
    // fast path (not abandoned, nothing changed) is a few loads.
    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.get_mut()
            .wait
            .poll(cx, |_, s| s.abandoned().then_some(()))
    }
}

macro_rules! debug_future {
    ($($name:ident),*) => {$(
        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.debug_struct(stringify!($name)).finish_non_exhaustive()
            }
        }
    )*};
}
debug_future!(Reached, Drained, Abandoned);
