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

use crate::sync::{Mutex, lock};
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
}

/// A waiting future's place in a [`WaitList`].
#[derive(Debug, Default)]
pub(crate) struct Slot(Option<usize>);

impl WaitList {
    /// Polls for `ready`, registering `cx`'s waker when it returns `None`.
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
        let mut slots = lock(&self.slots);
        if let Some(value) = ready() {
            if let Some(key) = slot.0.take() {
                slots.wakers[key] = None;
                slots.free.push(key);
            }
            return Poll::Ready(value);
        }
        let waker = Some(cx.waker().clone());
        match slot.0 {
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
                slot.0 = Some(key);
            }
        }
        Poll::Pending
    }

    /// Gives `slot` back; called when a waiting future completes or drops.
    pub(crate) fn release(&self, slot: &mut Slot) {
        if let Some(key) = slot.0.take() {
            let mut slots = lock(&self.slots);
            slots.wakers[key] = None;
            slots.free.push(key);
        }
    }

    /// Wakes every registered waiter. Call after changing the state.
    pub(crate) fn notify_all(&self) {
        let woken: Vec<Waker> = {
            let mut slots = lock(&self.slots);
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
        list.notify_all();
        assert_eq!(count.0.load(Ordering::SeqCst), 2, "a waker is woken once");
        assert!(list.poll_until(&mut a, &mut cx, || Some(())).is_ready());
        list.release(&mut b);
        assert_eq!(lock(&list.slots).free.len(), 2);
    }
}
