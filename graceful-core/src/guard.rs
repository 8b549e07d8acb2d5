//! The guards that count one request in flight each.

use crate::inner::Inner;
use crate::sync::Arc;
use std::fmt;

/// One request in flight, counted until dropped. See
/// [`Shutdown::enter`](crate::Shutdown::enter).
#[must_use = "the request is counted only while the guard is alive"]
pub struct Guard<'a> {
    inner: &'a Inner,
}

impl<'a> Guard<'a> {
    /// Counts one request in `inner`, if it still takes new work.
    #[inline]
    pub(crate) fn enter(inner: &'a Inner) -> Result<Guard<'a>, crate::Phase> {
        inner.state.try_enter().map(|()| Guard { inner })
    }
}

impl Drop for Guard<'_> {
    #[inline]
    fn drop(&mut self) {
        self.inner.leave();
    }
}

impl fmt::Debug for Guard<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guard").finish_non_exhaustive()
    }
}

/// One request in flight that owns its handle. See
/// [`Shutdown::enter_owned`](crate::Shutdown::enter_owned).
///
/// Not `Clone`: each guard counts one request, and a clone would count a
/// request that does not exist.
#[must_use = "the request is counted only while the guard is alive"]
pub struct OwnedGuard {
    pub(crate) inner: Arc<Inner>,
}

impl OwnedGuard {
    /// Counts one request in `inner`, if it still takes new work.
    #[inline]
    pub(crate) fn enter(inner: &Arc<Inner>) -> Result<OwnedGuard, crate::Phase> {
        inner.state.try_enter().map(|()| OwnedGuard {
            inner: inner.clone(),
        })
    }
}

impl Drop for OwnedGuard {
    #[inline]
    fn drop(&mut self) {
        self.inner.leave();
    }
}

impl fmt::Debug for OwnedGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("OwnedGuard").finish_non_exhaustive()
    }
}

// Unwind safety: a panic never leaves the shutdown inconsistent (see the
// same impls on `Shutdown`), so a guard may cross a `catch_unwind`, which
// is exactly where a request's guard must still leave.
impl std::panic::UnwindSafe for OwnedGuard {}
impl std::panic::RefUnwindSafe for OwnedGuard {}
impl std::panic::UnwindSafe for Guard<'_> {}
impl std::panic::RefUnwindSafe for Guard<'_> {}
