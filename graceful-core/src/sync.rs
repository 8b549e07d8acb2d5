//! The synchronisation primitives of the crate, swapped for loom's under
//! `--cfg loom` so that the model checker sees every atomic and lock.

#[cfg(loom)]
pub(crate) use loom::sync::{
    Arc, Mutex, MutexGuard,
    atomic::{AtomicUsize, Ordering},
};
#[cfg(not(loom))]
pub(crate) use std::sync::{
    Arc, Mutex, MutexGuard,
    atomic::{AtomicUsize, Ordering},
};

/// Locks `mutex`, ignoring poisoning.
///
/// No lock of this crate is held while user code runs (cleanup steps and
/// the event observer are called with every lock released), so a poisoned
/// lock can only come from a panic inside this crate's own short critical
/// sections, which leave the data consistent.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    match mutex.lock() {
        Ok(guard) => guard,
        Err(poisoned) => poisoned.into_inner(),
    }
}
