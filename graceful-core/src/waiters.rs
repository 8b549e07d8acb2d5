//! A list of wakers, woken all at once when something they wait for may have
//! become true.
//!
//! The protocol that keeps wake-ups from being lost (state invariant 5):
//! a waiter checks its condition, then takes the lock, checks again and only
//! then stores its waker. A notifier changes the state first and takes the
//! lock afterwards. Either the notifier's critical section comes after the
//! waiter's, and it finds the waker; or it comes before, and then the
//! notifier's state change happens-before the waiter's second check, which
//! sees it.
//!
//! # Design: a poll that changes nothing takes no lock
//!
//! A server's connection polls its shutdown futures (the drain deadline,
//! the start of the drain) every time its task runs, that is several times
//! per request, and almost always with the same waker and nothing changed.
//! Taking the lock, cloning the waker and dropping the one it replaces on
//! each of those polls was a good part of what the shutdown cost a request.
//! So a waiter keeps a copy of the waker it stored, and the list counts its
//! notifications (`notified`, incremented under the lock as the wakers are
//! taken). A poll whose condition is still false, with a waker that
//! `will_wake` like the stored one, and no notification since the store,
//! returns `Pending` at once: the list still holds that waker, or a
//! notification has taken it and will wake it, which polls again. Any
//! other poll takes the slow path above.

use crate::sync::{AtomicUsize, Mutex, Ordering, lock};
use std::task::{Context, Poll, Waker};

#[derive(Debug, Default)]
struct Slots {
    /// One slot a waiting future; `None` once woken or not yet registered.
    wakers: Vec<Option<Waker>>,
    /// Slots whose futures were dropped, to be reused.
    free: Vec<usize>,
}

/// Wakers of futures waiting for a condition on the shutdown state.
#[derive(Debug, Default)]
pub(crate) struct WaitList {
    slots: Mutex<Slots>,
    /// How many times `notify_all` has taken the wakers; written under the
    /// lock.
    notified: AtomicUsize,
}

/// A waiting future's place in a [`WaitList`].
#[derive(Debug, Default)]
pub(crate) struct Slot {
    key: Option<usize>,
    /// The waker stored in the list, and `notified` when it was stored
    /// (see the module's design notes).
    stored: Option<(usize, Waker)>,
}

impl WaitList {
    /// Polls for `ready`, registering `cx`'s waker when it returns `None`.
    ///
    /// Inlined up to the fast path (nothing ready, the same waker stored
    /// and no notification since), which is what a connection's every poll
    /// takes for its drain deadline: a few loads and compares in the
    /// caller, no call. Registering stays out of line.
    #[inline]
    pub(crate) fn poll_until<T>(
        &self,
        slot: &mut Slot,
        cx: &mut Context<'_>,
        mut ready: impl FnMut() -> Option<T>,
    ) -> Poll<T> {
        if let Some(value) = ready() {
            self.release(slot);
            return Poll::Ready(value);
        }
        if let Some((at, waker)) = &slot.stored
            // Acquire: pairs with the Release of `notify_all`'s increment,
            // which comes before it takes the wakers; a poll caused by that
            // wake-up sees it.
            && *at == self.notified.load(Ordering::Acquire)
            && waker.will_wake(cx.waker())
        {
            return Poll::Pending;
        }
        self.register(slot, cx, ready)
    }

    /// The rest of [`poll_until`](WaitList::poll_until): under the lock,
    /// `ready` checked again, then `cx`'s waker stored.
    #[inline(never)]
    fn register<T>(
        &self,
        slot: &mut Slot,
        cx: &mut Context<'_>,
        mut ready: impl FnMut() -> Option<T>,
    ) -> Poll<T> {
        let mut slots = lock(&self.slots);
        if let Some(value) = ready() {
            slot.stored = None;
            if let Some(key) = slot.key.take() {
                slots.wakers[key] = None;
                slots.free.push(key);
            }
            return Poll::Ready(value);
        }
        // Relaxed: written only under the lock held here.
        slot.stored = Some((self.notified.load(Ordering::Relaxed), cx.waker().clone()));
        let waker = Some(cx.waker().clone());
        match slot.key {
            Some(key) => slots.wakers[key] = waker,
            None => {
                let key = match slots.free.pop() {
                    Some(key) => {
                        slots.wakers[key] = waker;
                        key
                    }
                    None => {
                        slots.wakers.push(waker);
                        slots.wakers.len() - 1
                    }
                };
                slot.key = Some(key);
            }
        }
        Poll::Pending
    }

    /// Gives `slot` back; called when a waiting future completes or drops.
    pub(crate) fn release(&self, slot: &mut Slot) {
        slot.stored = None;
        if let Some(key) = slot.key.take() {
            let mut slots = lock(&self.slots);
            slots.wakers[key] = None;
            slots.free.push(key);
        }
    }

    /// Wakes every registered waiter. Call after changing the state.
    pub(crate) fn notify_all(&self) {
        let woken: Vec<Waker> = {
            let mut slots = lock(&self.slots);
            // Release: pairs with the fast path's Acquire in `poll_until`.
            // Before the wakers are taken, under the lock: a waiter that
            // stored its waker under the lock before this sees it changed.
            self.notified.fetch_add(1, Ordering::Release);
            slots.wakers.iter_mut().filter_map(Option::take).collect()
        };
        // Wake with the lock released: a waker may poll on this thread.
        for waker in woken {
            waker.wake();
        }
    }

    /// How many futures are registered and not yet woken.
    #[cfg(test)]
    pub(crate) fn registered(&self) -> usize {
        lock(&self.slots).wakers.iter().flatten().count()
    }
}

#[cfg(all(test, not(loom)))]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Wake;

    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn registers_wakes_once_and_gives_slots_back() {
        let list = WaitList::default();
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = Waker::from(count.clone());
        let mut cx = Context::from_waker(&waker);
        let (mut a, mut b) = (Slot::default(), Slot::default());
        assert!(list.poll_until(&mut a, &mut cx, || None::<()>).is_pending());
        assert!(list.poll_until(&mut b, &mut cx, || None::<()>).is_pending());
        // Polling again replaces the waker; it does not add one.
        assert!(list.poll_until(&mut a, &mut cx, || None::<()>).is_pending());
        assert_eq!(list.registered(), 2);
        list.notify_all();
        assert_eq!(count.0.load(Ordering::SeqCst), 2);
        assert_eq!(list.registered(), 0);
        // Polled after the notification took its waker: it stores it again
        // (not the fast path of an unchanged registration).
        assert!(list.poll_until(&mut a, &mut cx, || None::<()>).is_pending());
        assert_eq!(list.registered(), 1);
        list.notify_all();
        assert_eq!(count.0.load(Ordering::SeqCst), 3);
        list.notify_all();
        assert_eq!(count.0.load(Ordering::SeqCst), 3, "a waker is woken once");
        assert!(list.poll_until(&mut a, &mut cx, || Some(())).is_ready());
        list.release(&mut b);
        assert_eq!(lock(&list.slots).free.len(), 2);
    }
}
